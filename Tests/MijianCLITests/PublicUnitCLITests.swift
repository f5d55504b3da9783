import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianCLI

/// `mijian audit` with a policy whose unit networks reach public space: refused without the
/// explicit key; with it, the text report says so once in its header and every network finding
/// says so in its detail and evidence.
@Suite struct PublicUnitCLITests {
    let mijian = TestSupport.productPath("mijian")
    static let root = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/wired-desktop").path

    static func policy(_ networks: String) -> String {
        "id: p\nversion: \"1\"\nprofile: classified\nnetworks:\n\(networks)\ndns:\n  resolvers: [10.0.0.53]\n"
    }

    @Test(arguments: [
        ("  unit: [0.0.0.0/0]", ":5: networks.unit[0]: 0.0.0.0/0 covers public address space"),
        ("  unit: [\"::/0\"]", ":5: networks.unit[0]: ::/0 covers public address space"),
        ("  unit: [0.0.0.0/1, 128.0.0.0/1]", ":5: networks.unit[0]: 0.0.0.0/1 covers public address space"),
        ("  unit:\n    - 10.0.0.0/8\n    - 8.0.0.0/8", ":7: networks.unit[1]: 8.0.0.0/8 covers public address space"),
        ("  unit: [0.0.0.0/0]\n  covers_public_space: true", ":5: networks.unit: these prefixes cover"),
    ])
    func theAuditRefusesThePolicy(networks: String, expected: String) throws {
        let directory = try TestSupport.temporaryDirectory("mijian-public-unit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("unit.yaml").path
        try Data(Self.policy(networks).utf8).write(to: URL(fileURLWithPath: path))
        let result = try TestSupport.run(mijian, ["audit", "--root", Self.root, "--policy", path])
        #expect(result.status == 2)
        #expect(result.stderr.contains(path + expected), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test func withTheKeyEveryNetworkFindingAndTheTextHeaderSaySo() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-public-unit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("unit.yaml").path
        try Data(Self.policy("  unit: [10.0.0.0/8, 8.8.8.0/24]\n  covers_public_space: true").utf8).write(to: URL(fileURLWithPath: path))
        let options = try AuditOptions.parse(["--root", Self.root, "--policy", path])
        let fixed = TestSupport.fixedDate
        let report = try AuditRun.perform(options, now: { fixed }).report
        let sentence = "By the policy's explicit choice (networks.covers_public_space: true), the unit's networks include public address space (8.8.8.0/24); addresses there are not judged as outside."

        let network = report.findings.filter { $0.rule.id.hasPrefix("net.") }
        #expect(Set(network.map(\.rule.id)) == ["net.internet-route", "net.public-dns", "net.interfaces", "net.sockets", "net.history"])
        for finding in network {
            #expect(finding.statusDetail.hasSuffix(" " + sentence), "\(finding.rule.id): \(finding.statusDetail)")
            #expect(finding.evidence.contains { $0.kind == "policy" && $0.source == "networks.covers_public_space" }, "\(finding.rule.id)")
        }
        for finding in report.findings where !finding.rule.id.hasPrefix("net.") {
            #expect(!finding.statusDetail.contains("explicit choice"), "\(finding.rule.id)")
        }

        let text = TextReport.render(report, colour: false)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count > 3 && lines[2] == "NOTE: " + sentence, "\(lines.prefix(4))")
        #expect(lines.filter { $0.hasPrefix("NOTE: ") }.count == 1)

        // The binary's JSON carries the same statement in each network finding.
        let result = try TestSupport.run(mijian, ["audit", "--root", Self.root, "--policy", path, "--format", "json"])
        #expect(result.status == 0 || result.status == 1, "\(result.stderr)")
        let decoded = try Report(json: try JSONParser().parse(Array(result.stdout.utf8)))
        let stated = decoded.findings.filter { PublicSpace.statement(in: [$0]) == sentence }
        #expect(stated.map(\.rule.id).sorted() == network.map(\.rule.id).sorted())
    }

    /// net.history says it too when it finds nobody's browser to judge: a root without users.
    @Test func netHistoryWithNoHomeSaysItToo() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-public-unit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("unit.yaml").path
        try Data(Self.policy("  unit: [10.0.0.0/8, 8.8.8.0/24]\n  covers_public_space: true").utf8).write(to: URL(fileURLWithPath: path))
        let root = directory.appendingPathComponent("root")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("etc"), withIntermediateDirectories: true)
        try Data("0123456789abcdef0123456789abcdef\n".utf8).write(to: root.appendingPathComponent("etc/machine-id"))
        let options = try AuditOptions.parse(["--root", root.path, "--policy", path, "--rule", "net.history"])
        let fixed = TestSupport.fixedDate
        let findings = try AuditRun.perform(options, now: { fixed }).report.findings.filter { $0.rule.id == "net.history" }
        #expect(findings.map(\.status) == [.notapplicable])
        for finding in findings {
            #expect(PublicSpace.statement(in: [finding]) != nil, "\(finding.statusDetail)")
            #expect(finding.evidence.contains { $0.kind == "policy" && $0.source == "networks.covers_public_space" })
        }
    }

    /// `traffic.egress` judges packets against the same inside: a packet to the public block the
    /// policy calls the unit's own passes, and both the pass and a fail elsewhere say why, in the file
    /// mode and (through the same call) in the service.
    @Test(arguments: [("8.8.8.8", Int32(0), "pass"), ("1.1.1.1", Int32(1), "fail")])
    func trafficFindingsSayItToo(destination: String, exit: Int32, status: String) async throws {
        let directory = try TestSupport.temporaryDirectory("mijian-public-unit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("unit.yaml").path
        try Data(Self.policy("  unit: [10.0.0.0/8, 8.8.8.0/24]\n  covers_public_space: true").utf8).write(to: URL(fileURLWithPath: path))
        var writer = PcapWriter(linkType: 1)
        writer.add(PacketBuilder.ethernet(
            etherType: 0x0800, payload: PacketBuilder.ipv4(src: "10.1.1.1", dst: destination, proto: 6, payload: PacketBuilder.tcp(src: 40000, dst: 443))))
        let capture = try writer.write(to: directory, name: "in.pcap")
        let result = try TestSupport.run(mijian, ["traffic", "--read", capture.path, "--policy", path, "--format", "json"])
        #expect(result.status == exit, "\(result.stderr)")
        let report = try JSONParser().parse(Array(result.stdout.utf8))
        let finding = try #require(report["findings"]?.arrayValue?.first { $0["rule"]?["id"]?.stringValue == "traffic.egress" })
        #expect(finding["status"]?.stringValue == status)
        #expect(finding["status_detail"]?.stringValue?.contains("By the policy's explicit choice (networks.covers_public_space: true)") == true)
        #expect(finding["evidence"]?.arrayValue?.contains { $0["kind"]?.stringValue == "policy" && $0["source"]?.stringValue == "networks.covers_public_space" } == true)
    }
}
