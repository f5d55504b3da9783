import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianCLI

/// The audit command as a user meets it: exit status, messages, files.
@Suite struct AuditCLITests {
    /// A minimal host tree: identity files only.
    static func minimalRoot() throws -> URL {
        let root = try TestSupport.temporaryDirectory("mijian-root")
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("etc"), withIntermediateDirectories: true)
        try Data("0123456789abcdef0123456789abcdef\n".utf8).write(to: root.appendingPathComponent("etc/machine-id"))
        try Data("ws-test\n".utf8).write(to: root.appendingPathComponent("etc/hostname"))
        return root
    }

    let mijian = TestSupport.productPath("mijian")

    @Test func malformedPolicyIsExitTwoNamingFileLineAndKey() throws {
        let root = try Self.minimalRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let policy = root.appendingPathComponent("bad.yaml")
        try Data("id: p\nversion: \"1\"\nprofile: classified\nnetworks:\n  unit: [10.0.0.0/8]\n  alowed_destinations: []\n".utf8).write(to: policy)
        let result = try TestSupport.run(mijian, ["audit", "--root", root.path, "--policy", policy.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(policy.path):6: networks.alowed_destinations: unknown key"))
        #expect(result.stdout.isEmpty)
    }

    @Test func anOutputThatIsADeviceOrStandardOutputIsWrittenNotReplaced() throws {
        let root = try Self.minimalRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        // A null device of our own (the real one's numbers): `--output` to it leaves it a device.
        let null = root.path + "/null"
        try #require(mknod(null, S_IFCHR | 0o666, dev_t((1 << 8) | 3)) == 0, "mknod needs root")
        let audit = ["audit", "--root", root.path, "--rule", "net.public-dns", "--format", "json"]
        let quiet = try TestSupport.run(mijian, audit + ["--output", null])
        #expect([0, 1].contains(quiet.status), "\(quiet.stderr)")
        var info = stat()
        #expect(lstat(null, &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
        // /dev/stdout is a link to the process's own standard output (a pipe here): the report
        // arrives there, and the link is not replaced by a file.
        let piped = try TestSupport.run(mijian, audit + ["--output", "/dev/stdout"])
        #expect([0, 1].contains(piped.status) && piped.stdout.contains("\"findings\""), "\(piped.stderr)")
        #expect(lstat("/dev/stdout", &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
    }

    @Test func usageErrorsAreExitTwo() throws {
        let root = try Self.minimalRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let badRule = try TestSupport.run(mijian, ["audit", "--root", root.path, "--rule", "net.nothing"])
        #expect(badRule.status == 2)
        #expect(badRule.stderr.contains("unknown rule 'net.nothing'"))
        let badRoot = try TestSupport.run(mijian, ["audit", "--root", root.path + "/absent"])
        #expect(badRoot.status == 2)
        #expect(badRoot.stderr.contains("no such directory"))
        let badFormat = try TestSupport.run(mijian, ["audit", "--format", "xml"])
        #expect(badFormat.status == 2)
        let missingPolicy = try TestSupport.run(mijian, ["audit", "--root", root.path, "--policy", "/nonexistent/p.yaml"])
        #expect(missingPolicy.status == 2)
        #expect(missingPolicy.stderr.contains("cannot read policy /nonexistent/p.yaml"))
    }

    @Test func hostWithoutMachineIDIsAnErrorNotAGuess() throws {
        let root = try TestSupport.temporaryDirectory("mijian-root")
        defer { try? FileManager.default.removeItem(at: root) }
        let result = try TestSupport.run(mijian, ["audit", "--root", root.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("machine-id is missing or empty"))
    }

    @Test func badHostFileIsExitTwo() throws {
        let root = try Self.minimalRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let host = root.appendingPathComponent("host.yaml")
        try Data("asset_id: A\nclassification: topsecretish\n".utf8).write(to: host)
        let result = try TestSupport.run(mijian, ["audit", "--root", root.path, "--host-file", host.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(host.path):2: classification: expected 绝密"))
    }

    @Test func outputGoesToTheFileAndJSONIsTheReportPayload() throws {
        let root = try Self.minimalRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let out = root.appendingPathComponent("report.json")
        let result = try TestSupport.run(mijian, ["audit", "--root", root.path, "--format", "json", "--output", out.path])
        #expect(result.status == 0 || result.status == 1)
        #expect(result.stdout.isEmpty)
        let payload = try JSONParser().parse(Array(try Data(contentsOf: out)))
        #expect(payload["schema"] == "mijian.report/v1")
        #expect(payload["seq"]?.intValue == 0)
        #expect(payload["host"]?["hostname"] == "ws-test")
        #expect(payload["host"]?["host_id"] == .string(HostInfo.hostID(machineID: "0123456789abcdef0123456789abcdef")))
        #expect(payload["policy"]?["id"] == "classified-workstation")
        let issued = try #require(payload["issued_at"]?.stringValue)
        #expect(RFC3339.date(from: issued) != nil && issued.hasSuffix("Z"))
        let keys = payload.objectValue?.map(\.0) ?? []
        #expect(keys == ["schema", "report_id", "epoch", "seq", "prev_sha256", "issued_at", "window", "agent", "host", "policy", "summary", "findings", "events"])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)
    }

    /// Yams takes its default encoding from YAMS_DEFAULT_ENCODING and says so on standard output;
    /// the policy and host files are read as UTF-8 whatever the environment holds, and the JSON on
    /// standard output is the report alone.
    @Test func yamsEncodingVariableChangesNothing() throws {
        let root = try Self.minimalRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let host = root.appendingPathComponent("host.yaml")
        try Data("asset_id: 密-0001\nresponsible: 张三\n".utf8).write(to: host)
        for value in ["UTF16", "utf8"] {
            let result = try TestSupport.run(
                mijian, ["audit", "--root", root.path, "--host-file", host.path, "--format", "json"], environment: ["YAMS_DEFAULT_ENCODING": value])
            #expect(result.status == 0 || result.status == 1, "\(result.stderr)")
            #expect(result.stdout.hasPrefix("{"), "\(result.stdout.prefix(200))")
            let payload = try JSONParser().parse(Array(result.stdout.utf8))
            #expect(payload["host"]?["asset_id"] == "密-0001" && payload["host"]?["responsible"] == "张三")
        }
    }

    @Test func unwritableOutputIsExitTwo() throws {
        let root = try Self.minimalRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let result = try TestSupport.run(mijian, ["audit", "--root", root.path, "--output", root.path + "/no/such/dir/r.json"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("cannot create"))
    }

    @Test func missingResolverConfigurationIsNotAPass() throws {
        let root = try Self.minimalRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        // On an offline disk /etc/resolv.conf is often a link into an absent /run.
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("etc/resolv.conf").path, withDestinationPath: "../run/systemd/resolve/stub-resolv.conf")
        let unknown = try TestSupport.run(mijian, ["audit", "--root", root.path, "--rule", "net.public-dns", "--format", "json"])
        let statuses = try JSONParser().parse(Array(unknown.stdout.utf8))["findings"]?.arrayValue?.compactMap { $0["status"]?.stringValue }
        #expect(statuses == ["notchecked"])
        try FileManager.default.removeItem(at: root.appendingPathComponent("etc/resolv.conf"))
        try Data("nameserver 10.0.0.53\n".utf8).write(to: root.appendingPathComponent("etc/resolv.conf"))
        let known = try TestSupport.run(mijian, ["audit", "--root", root.path, "--rule", "net.public-dns", "--format", "json"])
        let passed = try JSONParser().parse(Array(known.stdout.utf8))["findings"]?.arrayValue?.compactMap { $0["status"]?.stringValue }
        #expect(passed == ["pass"])
    }
}
