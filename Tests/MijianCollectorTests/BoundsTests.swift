import Foundation
import MijianCollector
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

/// Numbers and names an enrolled machine (or whoever holds its key) puts in a report.
@Suite("Bounds on what a signed report may say: seq, epoch, identity")
struct BoundsTests {
    func outcome(_ result: Result<IngestResult, IngestRefusal>) -> String {
        switch result {
        case .success(let value): return value.outcome.rawValue
        case .failure(let refusal): return refusal.reason
        }
    }

    /// A machine with a normal chain of two reports, seq 0 and 1.
    func chainOfTwo(_ collector: Collector, index: Int) async throws -> TestMachine {
        let machine = try TestMachine(index: index, hostname: "ws-\(index)", assetID: "JSJ-\(index)", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        for day in 1...2 {
            let envelope = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day))
            #expect(outcome(await collector.submit(envelope, source: "test", receivedAt: TestUnit.day(day))) != "")
        }
        return machine
    }

    @Test(arguments: [Int64.max, Int64.max - 1, ChainLimits().maxSeqJump + 3])
    func aSeqJumpPastTheBoundIsRefusedAndTheChainStays(seq: Int64) async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try await chainOfTwo(collector, index: 50)
        let far = machine.report(findings: [], issuedAt: TestUnit.day(3), seq: seq)
        let result = await collector.submit(try machine.envelope(far), source: "test", receivedAt: TestUnit.day(3))
        #expect(outcome(result) == "seq-jump")
        if case .failure(let refusal) = result {
            #expect(refusal.detail.contains("seq \(seq)"))
            #expect(CollectorServer.httpStatus(refusal.code) == 400)
        }
        let host = try #require(try collector.store.hosts().first)
        #expect(host.chain.seq == 1)
        #expect(host.missingCount == 0)
        #expect(try collector.store.gaps(hostID: machine.host.hostID).isEmpty)
        // The machine's real next report still takes its place.
        let next = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(4)), issuedAt: TestUnit.day(4))
        #expect(outcome(await collector.submit(next, source: "test", receivedAt: TestUnit.day(4))) == "accepted")
    }

    @Test func aGapUpToTheBoundIsAGap() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try await chainOfTwo(collector, index: 51)
        machine.seq = 1 + 1 + ChainLimits().maxSeqJump
        let envelope = try machine.next(findings: [], issuedAt: TestUnit.day(3))
        #expect(outcome(await collector.submit(envelope, source: "test", receivedAt: TestUnit.day(3))) == "gap")
        #expect(try collector.store.hosts().first?.missingCount == ChainLimits().maxSeqJump)
    }

    @Test func aFirstReportFarIntoItsChainIsRefused() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 52, hostname: "ws-52", assetID: "JSJ-52", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        machine.seq = Int64.max
        let envelope = try machine.envelope(machine.report(findings: [], issuedAt: TestUnit.day(1)))
        #expect(outcome(await collector.submit(envelope, source: "test", receivedAt: TestUnit.day(1))) == "seq-jump")
        #expect(try collector.store.hosts().isEmpty)
    }

    @Test func anEpochPastTheYear9999IsRefusedAndTheChainStays() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try await chainOfTwo(collector, index: 53)
        machine.epoch = Int64.max
        let far = machine.report(findings: [], issuedAt: TestUnit.day(3), seq: 0, prev: "")
        #expect(outcome(await collector.submit(try machine.envelope(far), source: "test", receivedAt: TestUnit.day(3))) == "bad-chain")
        #expect(try collector.store.hosts().first?.chain.epoch == 0)
        machine.epoch = 0
        let next = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(4)), issuedAt: TestUnit.day(4))
        #expect(outcome(await collector.submit(next, source: "test", receivedAt: TestUnit.day(4))) == "accepted")
        // A new epoch as agents number them (the Unix time it starts) is taken.
        machine.epoch = Int64(TestUnit.day(5).timeIntervalSince1970)
        machine.seq = 0
        machine.prev = ""
        let renewed = try machine.next(findings: [], issuedAt: TestUnit.day(5))
        #expect(outcome(await collector.submit(renewed, source: "test", receivedAt: TestUnit.day(5))) == "new-epoch")
    }

    @Test func aNegativeSeqIsRefused() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try await chainOfTwo(collector, index: 54)
        let negative = machine.report(findings: [], issuedAt: TestUnit.day(3), seq: -1)
        #expect(outcome(await collector.submit(try machine.envelope(negative), source: "test", receivedAt: TestUnit.day(3))) == "malformed")
        #expect(try collector.store.hosts().first?.chain.seq == 1)
    }

    @Test func gapsSpanningAllOfInt64AreCountedWithoutATrap() async throws {
        // A store from before seq jumps were bounded: let it take them, as it once did.
        var limits = ChainLimits()
        limits.maxSeqJump = Int64.max
        limits.maxEpoch = Int64.max
        let store = try CollectorStore(directory: try TestSupport.temporaryDirectory("collector-gaps").path, chainLimits: limits)
        let collector = Collector(store: store, verifier: EvidenceSubmissionVerifier(store: store), logger: TestUnit.logger)
        let machine = try TestMachine(index: 55, hostname: "ws-55", assetID: "JSJ-55", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        for epoch: Int64 in [1, 2] {
            machine.epoch = epoch
            machine.seq = Int64.max - 1
            machine.prev = ""
            let envelope = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(Int(epoch))), issuedAt: TestUnit.day(Int(epoch)))
            #expect(outcome(await collector.submit(envelope, source: "test", receivedAt: TestUnit.day(Int(epoch)))) != "")
        }
        #expect(try store.gaps(hostID: machine.host.hostID).count == 2)
        #expect(try store.hosts().first?.missingCount == Int64.max)
        let gaps = try store.gaps(hostID: machine.host.hostID)
        #expect(GapRecord.missing(gaps) == Int64.max)
        #expect(GapRecord.missing([gaps[0]]) == Int64.max - 1)
        // The assessment names the gaps instead of trapping on their sum.
        let settings = UnitSettings(policies: try CollectorSetup.policies([]))
        let result = AssessmentBuilder.build(snapshot: try store.snapshot(year: 2026), table: try CollectorSetup.table(nil), answers: .none, settings: settings, now: TestUnit.day(3))
        #expect(result.unitFindings.contains { $0.detailEN.contains("missing \(Int64.max) reports") })
    }

    @Test(arguments: ["hostname", "asset_id", "responsible", "unit", "os", "kernel", "agent.version", "agent.name", "policy.id", "policy.version"])
    func anIdentityFieldPastTheBoundIsRefused(field: String) async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 56, hostname: "ws-56", assetID: "JSJ-56", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        var report = machine.report(findings: [], issuedAt: TestUnit.day(1))
        let long = String(repeating: "名", count: 86)  // 258 bytes
        switch field {
        case "hostname": report.host.hostname = long
        case "asset_id": report.host.assetID = long
        case "responsible": report.host.responsible = long
        case "unit": report.host.unit = long
        case "os": report.host.os = long
        case "kernel": report.host.kernel = long
        case "agent.version": report.agent.version = long
        case "agent.name": report.agent.name = long
        case "policy.id": report.policy.id = long
        default: report.policy.version = long
        }
        let result = await collector.submit(try machine.envelope(report), source: "test", receivedAt: TestUnit.day(1))
        #expect(outcome(result) == "identity-too-long")
        if case .failure(let refusal) = result { #expect(refusal.detail.contains(field) && refusal.detail.contains("258 bytes"), "\(refusal.detail)") }
        #expect(try collector.store.hosts().isEmpty)
    }

    @Test func aTwelveMegabyteHostNameIsRefusedAndNeverStored() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 57, hostname: "ws-57", assetID: "JSJ-57", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        var report = machine.report(findings: [], issuedAt: TestUnit.day(1))
        report.host.hostname = String(repeating: "h", count: 12_000_000)
        let result = await collector.submit(try machine.envelope(report), source: "test", receivedAt: TestUnit.day(1))
        #expect(outcome(result) == "identity-too-long")
        #expect(try collector.store.hosts().isEmpty)
        // The refusal row is bounded like every other.
        let rows = try collector.store.refusals()
        #expect(rows.map(\.reason) == ["identity-too-long"])
        #expect(rows.allSatisfy { $0.detail.utf8.count <= IngestRefusal.maxDetailBytes })
        // At the bound the name is taken.
        report.host.hostname = String(repeating: "h", count: IdentityBounds.maxFieldBytes)
        #expect(outcome(await collector.submit(try machine.envelope(report), source: "test", receivedAt: TestUnit.day(1))) == "first")
    }

    @Test func aControlCharacterInAnIdentityIsRefused() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 58, hostname: "ws-58", assetID: "JSJ-58", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        var report = machine.report(findings: [], issuedAt: TestUnit.day(1))
        report.host.hostname = "ws-58\u{1B}[2J"
        #expect(outcome(await collector.submit(try machine.envelope(report), source: "test", receivedAt: TestUnit.day(1))) == "identity-control")
        #expect(try collector.store.hosts().isEmpty)
    }

    @Test func aRuleIDPastTheBoundsOfAnIdentityIsRefused() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 60, hostname: "ws-60", assetID: "JSJ-60", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        let day = TestUnit.day(1)
        func findings(_ ids: [String]) -> [Finding] {
            ids.map { machine.finding(RuleInfo(id: $0, title: "vendor rule", titleZH: "厂商规则", references: [], defaultSeverity: .high), "host", .fail, "found", at: day) }
        }
        // Two rules that share their bytes up to a NUL: SQLite's driver cut both to `vendor.rule`
        // and counted them as one; PostgreSQL refused the text as a server error.
        let nul = machine.report(findings: findings(["vendor.rule\u{0}a", "vendor.rule\u{0}b"]), issuedAt: day)
        #expect(outcome(await collector.submit(try machine.envelope(nul), source: "test", receivedAt: day)) == "identity-control")
        let escape = machine.report(findings: findings(["vendor.rule\u{1B}[2J"]), issuedAt: day)
        #expect(outcome(await collector.submit(try machine.envelope(escape), source: "test", receivedAt: day)) == "identity-control")
        let long = machine.report(findings: findings([String(repeating: "r", count: IdentityBounds.maxFieldBytes + 1)]), issuedAt: day)
        #expect(outcome(await collector.submit(try machine.envelope(long), source: "test", receivedAt: day)) == "identity-too-long")
        #expect(try collector.store.hosts().isEmpty)
        #expect(try collector.store.refusals().first { $0.reason == "identity-control" }?.detail.contains("report.findings[].rule.id") == true)
        // Rules the catalogue does not know, within the bounds, are counted under the ids signed, byte for byte.
        let ids = ["vendor.rule-甲", "vendor.rule-乙", "", String(repeating: "r", count: IdentityBounds.maxFieldBytes)]
        let report = machine.report(findings: findings(ids), issuedAt: day)
        #expect(outcome(await collector.submit(try machine.envelope(report), source: "test", receivedAt: day)) == "first")
        let rules = try collector.store.snapshot(year: CollectorCalendar.year(of: day)).hosts.first?.rules
        #expect(rules?.ruleIDs == ids.sorted())
        #expect(rules?.counts.map(\.fail) == [1, 1, 1, 1])
    }

    @Test func aNULInTextTheStoresKeepIsWrittenOrRefused() async throws {
        // SQLite's driver cut such text at the NUL; PostgreSQL refused it as a server error.
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 61, hostname: "ws-61", assetID: "JSJ-61", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        let day = TestUnit.day(1)
        // A device string cannot hold a NUL (sysfs): a report that says one does is forged.
        let stick: JSONValue = ["devices": [["vendor": "0781", "product": "5583", "serial": "4C53\u{0}0001"]]]
        let forged = machine.report(findings: [machine.finding(RuleCatalogue.usbStorage, "1-2", .fail, "a stick", at: day, data: stick)], issuedAt: day)
        let result = await collector.submit(try machine.envelope(forged), source: "test", receivedAt: day)
        #expect(outcome(result) == "malformed")
        if case .failure(let refusal) = result { #expect(refusal.detail.hasPrefix("a removable medium's serial in the evidence of usb.storage")) }
        #expect(try collector.store.hosts().isEmpty)
        // A subject or detail may quote a file holding a NUL: taken, the NUL written as ␀ in the
        // stored finding (the envelope keeps the text as signed).
        let quoted = machine.report(findings: [machine.finding(RuleCatalogue.internetRoute, "table main\u{0}x", .fail, "a route\u{0}hidden", at: day)], issuedAt: day)
        #expect(outcome(await collector.submit(try machine.envelope(quoted), source: "test", receivedAt: day)) == "first")
        let stored = try collector.store.snapshot(year: CollectorCalendar.year(of: day)).findings
        #expect(stored.map(\.subject) == ["table main\u{2400}x"])
        #expect(stored.map(\.detail) == ["a route\u{2400}hidden"])
    }

    @Test func anEnrolmentRequestWithAnOverlongNameIsNotApproved() throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 59, hostname: String(repeating: "n", count: 4096), assetID: "JSJ-59", classification: .confidential)
        #expect(throws: MijianError.self) { try TestUnit.enrol([machine], into: collector) }
        #expect(try collector.store.keys().isEmpty)
    }
}
