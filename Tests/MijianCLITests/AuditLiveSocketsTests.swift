import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianCLI

/// `mijian audit` on the live machine starts the kernel's TCP dump before it reads the policy:
/// the sockets rule reads that dump, and a policy that disables the rule still gets no finding
/// from it.
@Suite struct AuditLiveSocketsTests {
    func audit(_ policy: String) throws -> Report {
        let directory = try TestSupport.temporaryDirectory("mijian-live-policy")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("policy.yaml")
        try Data(policy.utf8).write(to: file)
        let options = try AuditOptions.parse(["--policy", file.path, "--rule", "net.sockets"])
        return try AuditRun.perform(options).report
    }

    static let policy = "id: live\nversion: \"1\"\nprofile: classified\nnetworks:\n  unit: [10.0.0.0/8]\n"

    @Test func theSocketsRuleReadsTheDumpStartedFirst() throws {
        let report = try audit(Self.policy)
        let finding = try #require(report.findings.first { $0.rule.id == "net.sockets" })
        #expect(finding.status != .error && finding.status != .notchecked, "\(finding.statusDetail)")
        let evidence = String(decoding: report.json.prettySerialized(), as: UTF8.self)
        #expect(evidence.contains("sock_diag TCPDIAG_GETSOCK"), "the evidence names the kernel dump as its source")
        #expect(report.windowStart <= report.issuedAt)
    }

    @Test func aPolicyThatDisablesTheRuleGetsNotCheckedAndNoSockets() throws {
        let report = try audit(Self.policy + "rules:\n  net.sockets:\n    enabled: false\n")
        let finding = try #require(report.findings.first { $0.rule.id == "net.sockets" })
        #expect(finding.status == .notchecked)
        #expect(finding.statusDetail.contains("Disabled by policy live"))
        #expect(!String(decoding: report.json.prettySerialized(), as: UTF8.self).contains("TCPDIAG_GETSOCK"))
    }
}
