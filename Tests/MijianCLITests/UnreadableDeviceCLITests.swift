#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// The built `mijian` over a copy of a fixture in which an unregistered stick's sysfs directory is
/// mode 000, run without the capabilities that override file modes (`setpriv` from util-linux
/// drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so the exec'd `mijian`,
/// though uid 0, is refused by the kernel itself): the stick is never a pass, never "no
/// interfaces", never allowed.
@Suite("an unreadable USB device, refused by the kernel")
struct UnreadableDeviceCLITests {
    let mijian = TestSupport.productPath("mijian")

    /// A copy of usb-stick-unregistered with the unregistered stick's device directory (2-1, a
    /// Kingston DataTraveler whose usb.storage finding fails when it can be read) mode 000.
    static func lockedCopy() throws -> (root: URL, stick: URL) {
        let dir = try TestSupport.temporaryDirectory("mijian-unreadable")
        let source = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/usb-stick-unregistered")
        let copy = dir.appendingPathComponent("host")
        // cp -a keeps the links links (sysfs trees have link cycles a recursive copy would follow).
        let copied = try TestSupport.run("/bin/cp", ["-a", source.path, copy.path])
        #expect(copied.status == 0, "\(copied.stderr)")
        let stick = copy.appendingPathComponent("sys/devices/pci0000:00/0000:00:14.0/usb2/2-1")
        #expect(chmod(stick.path, 0) == 0)
        return (copy, stick)
    }

    /// Runs `mijian` as uid 0 without DAC override, as an administrator's shell in a confined unit would.
    func runConfined(_ arguments: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run("/usr/bin/setpriv", ["--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--", mijian] + arguments)
    }

    static func findings(_ output: String) throws -> [JSONValue] {
        let report = try JSONParser(maxDepth: 64, maxBytes: 64 << 20).parse(Array(output.utf8))
        guard case .array(let findings)? = report["findings"] else {
            Issue.record("no findings in \(output.prefix(300))")
            return []
        }
        return findings
    }

    @Test("usb.storage and usb.phone are errors naming the refusal, never a pass")
    func auditNeverPasses() throws {
        let (root, stick) = try Self.lockedCopy()
        defer { _ = chmod(stick.path, 0o755) }
        // The kernel really refuses: the confined process cannot list the stick's directory.
        let probe = try runConfinedShell("ls \(stick.path)")
        #expect(probe.status != 0 && probe.stderr.contains("Permission denied"), "setpriv did not drop DAC override: \(probe)")

        let result = try runConfined(["audit", "--root", root.path, "--format", "json"])
        #expect(result.status != 0, "\(result.stderr)")
        let findings = try Self.findings(result.stdout)
        for rule in ["usb.storage", "usb.phone"] {
            let mine = findings.filter { $0["rule"]?["id"]?.stringValue == rule }
            let statuses = mine.map { $0["status"]?.stringValue ?? "?" }
            let subjects = mine.map { $0["subject"]?.stringValue ?? "?" }
            #expect(!mine.isEmpty, "\(rule) gave no finding")
            // The storage-control finding is about the module tree, not about devices.
            #expect(!zip(subjects, statuses).contains { $0.0 != "usb-storage-control" && $0.1 == "pass" }, "\(rule): \(Array(zip(subjects, statuses)))")
            let errors = mine.filter { $0["status"]?.stringValue == "error" }
            #expect(!errors.isEmpty, "\(rule) has no error: \(Array(zip(subjects, statuses)))")
            #expect(errors.contains { ($0["status_detail"]?.stringValue ?? "").contains("Permission denied") }, "\(rule): the refusal is not named")
        }
    }

    @Test("mijian devices does not judge the stick allowed")
    func devicesNeverAllow() throws {
        let (root, stick) = try Self.lockedCopy()
        defer { _ = chmod(stick.path, 0o755) }
        let result = try runConfined(["devices", "--root", root.path, "--format", "json"])
        #expect(result.status == 1, "\(result.stderr)")
        let report = try JSONParser(maxDepth: 64, maxBytes: 64 << 20).parse(Array(result.stdout.utf8))
        guard case .array(let devices)? = report["devices"] else {
            Issue.record("no devices in \(result.stdout.prefix(300))")
            return
        }
        let judged = devices.first { $0["device"]?["name"]?.stringValue == "2-1" }
        let listedUnreadable: Bool = {
            guard case .array(let parts)? = report["unreadable"] else { return false }
            return parts.contains { ($0["path"]?.stringValue ?? "").contains("2-1") }
        }()
        #expect(judged != nil || listedUnreadable, "the stick is neither judged nor named as unreadable")
        if let judged {
            #expect(judged["decision"]?.stringValue != "allow", "\(judged)")
            #expect(judged["whole_device"]?.stringValue != "allow", "\(judged)")
        }
    }

    func runConfinedShell(_ command: String) throws -> TestSupport.ProcessResult {
        try TestSupport.run("/usr/bin/setpriv", ["--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--", "/bin/sh", "-c", command])
    }
}
