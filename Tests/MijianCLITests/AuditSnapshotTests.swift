import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianCLI

/// The audit's text and JSON output on fixture hosts, compared with recorded snapshots.
/// Record again after an intended change: `MIJIAN_UPDATE_SNAPSHOTS=1 swift test --filter Snapshot`.
@Suite struct AuditSnapshotTests {
    static let hosts = ["wired-desktop", "phone-tethering", "usb-stick-registered", "laptop-wifi-bt"]

    /// The ledger that registers the fixture's SanDisk stick.
    static let ledgerPolicy = """
        id: snapshot-unit
        version: "1"
        profile: classified
        networks:
          unit: [10.0.0.0/8]
        dns:
          resolvers: [10.0.0.53]
          allowed_suffixes: [unit.internal]
        media:
          ledger:
            - vendor: "0781"
              product: "5583"
              serial: "4C530001230615117204"
              label: "秘-U-0012"
              classification: 秘密
              responsible: 张三
        """

    /// When the fixtures' machine-id files count as written: 2026-12-06T21:21:34Z.
    static let machineIDWritten = Date(timeIntervalSince1970: 1_796_592_094)

    func report(_ host: String, rules: [String] = [], policy text: String = ledgerPolicy) throws -> Report {
        try outcome(host, rules: rules, policy: text).report
    }

    func outcome(_ host: String, rules: [String] = [], policy text: String = ledgerPolicy) throws -> AuditRun.Outcome {
        let root = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/\(host)").path
        // `host.installation` dates the machine-id by its modification time, which a checkout sets
        // to the time of the checkout: pinned, so that a snapshot does not change with the day the
        // tests run (a clone made after 10:00 UTC on 7 December read 36 days where it had read 35).
        let machineID = root + "/etc/machine-id"
        if FileManager.default.fileExists(atPath: machineID) {
            try FileManager.default.setAttributes([.modificationDate: Self.machineIDWritten], ofItemAtPath: machineID)
        }
        let policy = try TestSupport.temporaryDirectory("mijian-policy").appendingPathComponent("unit.yaml")
        defer { try? FileManager.default.removeItem(at: policy.deletingLastPathComponent()) }
        try Data(text.utf8).write(to: policy)
        let options = try AuditOptions.parse(["--root", root, "--policy", policy.path] + rules.flatMap { ["--rule", $0] })
        let fixed = TestSupport.fixedDate
        var outcome = try AuditRun.perform(options, now: { fixed }, reportID: UUID(uuid: (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)))
        // The policy file's path is a temporary one; its digest is what the report carries.
        outcome.report.policy = PolicyInfo(id: outcome.report.policy.id, version: outcome.report.policy.version, sha256: outcome.report.policy.sha256)
        return outcome
    }

    /// A policy that disables a rule has no facts observed for the groups only that rule reads;
    /// the other findings are those of the audit with every rule enabled.
    @Test(arguments: hosts) func disablingARuleChangesOnlyThatRule(host: String) throws {
        let everything = try outcome(host)
        let disabling = try outcome(host, policy: Self.ledgerPolicy + "\nrules:\n  log.retention:\n    enabled: false\n")
        #expect(everything.collected == FactSet.all)
        #expect(disabling.collected == FactSet.all.subtracting([.logRetention]), "only log.retention reads that group")
        let (all, without) = (everything.report, disabling.report)
        func lines(_ report: Report) -> [String] {
            report.findings.filter { $0.rule.id != "log.retention" }.map { "\($0.rule.id) \($0.subject) \($0.status) \($0.statusDetail)" }
        }
        #expect(lines(without) == lines(all))
        let disabled = without.findings.filter { $0.rule.id == "log.retention" }
        #expect(disabled.count == 1 && disabled.first?.status == .notchecked)
        #expect(all.findings.contains { $0.rule.id == "log.retention" && $0.status != .notchecked })
    }

    @Test(arguments: hosts) func text(host: String) throws {
        try TestSupport.assertSnapshot(TextReport.render(try report(host), colour: false), target: "MijianCLITests", name: "audit-\(host).txt")
    }

    @Test(arguments: hosts) func json(host: String) throws {
        let bytes = try report(host).json.prettySerialized()
        // File modification times come from the checkout, not from the fixture: mask them.
        let text = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.contains("\"modified\": \"") ? line.prefix { $0 != "\"" } + "\"modified\": \"(checkout time)\"," : line
        }.joined(separator: "\n")
        try TestSupport.assertSnapshot(text, target: "MijianCLITests", name: "audit-\(host).json")
        // What is written parses back strictly and decodes as a report.
        let parsed = try JSONParser().parse(bytes)
        #expect(try Report(json: parsed).findings.count == (try report(host).findings.count))
    }

    @Test func verdictsPerFixture() throws {
        #expect(try report("wired-desktop").isCompliant)
        let phone = try report("phone-tethering")
        let failed = Set(phone.findings.filter { $0.status == .fail }.map(\.rule.id))
        #expect(failed.isSuperset(of: ["net.internet-route", "net.interfaces", "usb.phone", "wireless.hardware"]))
        let stick = try report("usb-stick-registered")
        #expect(stick.findings.contains { $0.rule.id == "usb.storage" && $0.status == .pass && $0.statusDetail.contains("秘-U-0012") })
    }

    /// `--rule` observes only what the rule reads, and still says exactly what the full audit says of it.
    @Test(arguments: hosts) func selectedRulesMatchTheFullAudit(host: String) throws {
        let full = try report(host).findings
        for rule in MijianChecksRegistry.ruleIDs {
            let alone = try report(host, rules: [rule]).findings
            #expect(!alone.isEmpty)
            #expect(alone == full.filter { $0.rule.id == rule }, "\(rule) on \(host)")
        }
        let pair = try report(host, rules: ["usb.history", "net.sockets"]).findings
        #expect(pair == full.filter { $0.rule.id == "net.sockets" || $0.rule.id == "usb.history" })
    }

    @Test func colourOnlyWhenAsked() throws {
        let report = try report("phone-tethering")
        #expect(TextReport.render(report, colour: true).contains("\u{1B}[1;31mfail"))
        #expect(!TextReport.render(report, colour: false).contains("\u{1B}"))
    }
}
