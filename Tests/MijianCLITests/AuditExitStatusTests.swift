#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// The built `mijian audit` over copies of fixture hosts in which a source stands as the wrong
/// type: the exit status says whether every rule was judged (0), a rule failed (1) or none failed
/// but some could not look (3), so a script that checks `$?` never takes an unjudged machine for
/// a clean one; and a directory replaced by a file is an error, never a vanished device.
@Suite("audit exit status and sources of the wrong type")
struct AuditExitStatusTests {
    let mijian = TestSupport.productPath("mijian")

    /// A copy of fixture host `name` whose signatures are as fresh at the real time as the
    /// committed fixture's are at the fixed time.
    static func copy(_ name: String) throws -> URL {
        try TestSupport.hostCopy(name)
    }

    /// The copy with the kernel release file replaced by a directory: the module tree cannot be
    /// found, so every rule that judges from it is `error`.
    static func withoutKernelRelease(_ name: String) throws -> URL {
        let root = try copy(name)
        let release = root.appendingPathComponent("proc/sys/kernel/osrelease").path
        try #require(unlink(release) == 0 && mkdir(release, 0o755) == 0)
        return root
    }

    static func summary(_ output: String) -> String {
        output.split(separator: "\n").last { $0.hasPrefix("Summary:") }.map(String.init) ?? ""
    }

    @Test("an untouched host with no fail exits 0")
    func cleanExitsZero() throws {
        let result = try TestSupport.run(mijian, ["audit", "--root", try Self.copy("wired-desktop").path])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(Self.summary(result.stdout).hasSuffix("— no rule failed"), "\(Self.summary(result.stdout))")
    }

    /// Audits a copy of `fixture` without its kernel release; expects `status` and a summary line
    /// that contains `summary`. Returns the copy and the text report.
    func auditWithoutKernelRelease(_ fixture: String, status: Int32, summary: String) throws -> (root: URL, output: String) {
        let root = try Self.withoutKernelRelease(fixture)
        let result = try TestSupport.run(mijian, ["audit", "--root", root.path])
        #expect(result.status == status, "\(result.stdout)\(result.stderr)")
        #expect(Self.summary(result.stdout).contains(summary), "\(Self.summary(result.stdout))")
        return (root, result.stdout)
    }

    @Test("no fail but rules that could not look: exit 3, the report written and the rules named")
    func errorsOnlyExitThree() throws {
        let (root, text) = try auditWithoutKernelRelease(
            "wired-desktop", status: 3,
            summary: "no rule failed, but 4 rules could not look (error): wireless.hardware, wireless.modules, usb.storage, hardware.channels")
        #expect(!text.contains(" fail "), "\(text)")

        // The same to a file, and signed: the report is there and the status still says 3.
        let dir = root.deletingLastPathComponent()
        let output = dir.appendingPathComponent("report.json").path
        let json = try TestSupport.run(mijian, ["audit", "--root", root.path, "--format", "json", "--output", output])
        #expect(json.status == 3, "\(json.stderr)")
        let report = try JSONParser(maxDepth: 64, maxBytes: 64 << 20).parse(Array(try Data(contentsOf: URL(fileURLWithPath: output))))
        #expect(report["findings"] != nil)
        let keys = dir.appendingPathComponent("keys").path
        let made = try TestSupport.run(mijian, ["keys", "init", "--key-dir", keys])
        try #require(made.status == 0, "\(made.stderr)")
        let signedPath = dir.appendingPathComponent("signed.json").path
        let signed = try TestSupport.run(mijian, ["audit", "--root", root.path, "--sign", "--key-dir", keys, "--output", signedPath])
        #expect(signed.status == 3, "\(signed.stderr)")
        let envelope = try JSONParser(maxDepth: 64, maxBytes: 64 << 20).parse(Array(try Data(contentsOf: URL(fileURLWithPath: signedPath))))
        #expect(envelope["payload"] != nil && envelope["signatures"] != nil, "not an envelope")
    }

    @Test("a fail is never hidden by an error: exit 1")
    func failAndErrorExitOne() throws {
        _ = try auditWithoutKernelRelease("usb-stick-unregistered", status: 1, summary: "NOT COMPLIANT: at least one rule failed; 4 rules could not look (error)")
    }

    @Test("a USB interface directory replaced by a file is an error on every device rule, not a vanished interface")
    func interfaceDirectoryAsFile() throws {
        let root = try Self.copy("wifi-vendor-class")
        // The Realtek NIC's vendor-class interface: wireless.hardware fails on it when it can be read.
        let interface = root.appendingPathComponent("sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0").path
        let before = try TestSupport.run(mijian, ["audit", "--root", root.path, "--rule", "wireless.hardware"])
        #expect(before.status == 1, "\(before.stdout)")
        try #require(TestSupport.run("/bin/rm", ["-rf", interface]).status == 0)
        try #require(FileManager.default.createFile(atPath: interface, contents: Data("x\n".utf8)))

        let result = try TestSupport.run(
            mijian, ["audit", "--root", root.path, "--rule", "wireless.hardware", "--rule", "usb.phone", "--rule", "usb.storage", "--format", "json"])
        #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
        let report = try JSONParser(maxDepth: 64, maxBytes: 64 << 20).parse(Array(result.stdout.utf8))
        guard case .array(let findings)? = report["findings"] else {
            Issue.record("no findings in \(result.stdout.prefix(300))")
            return
        }
        for rule in ["wireless.hardware", "usb.phone", "usb.storage"] {
            let mine = findings.filter { $0["rule"]?["id"]?.stringValue == rule }
            let statuses = mine.map { "\($0["subject"]?.stringValue ?? "?") \($0["status"]?.stringValue ?? "?")" }
            // usb.storage's storage-control finding judges the module tree, not the devices.
            #expect(!mine.contains { $0["status"]?.stringValue == "pass" && $0["subject"]?.stringValue != "usb-storage-control" }, "\(rule): \(statuses)")
            #expect(
                mine.contains {
                    $0["status"]?.stringValue == "error" && $0["subject"]?.stringValue == "/sys/bus/usb/devices/1-2:1.0"
                        && ($0["status_detail"]?.stringValue ?? "").contains(MijianError.strerror(ENOTDIR))
                }, "\(rule): \(statuses)")
        }
    }
}
