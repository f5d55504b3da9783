import Foundation
import MijianCollector
import MijianCore
import MijianTestSupport
import Testing

/// Deduction items counted per machine from a list of rules: item 53 counts each classified
/// machine with a failing `net.history`, `traffic.egress`, `net.internet-route` or `unit.internet`
/// finding once; item 54 each unclassified machine with a failing `data.markings` finding.
@Suite("Deductions per machine (53, 54, 55)")
struct DeductionTests {
    static let now = TestUnit.day(30)

    /// A unit of four machines over two days: ws-02 fails three rules of item 53 with five
    /// findings, ws-03 fails net.history alone, pc-04 (unclassified) fails net.history (not a
    /// case of 53) and data.markings twice, ws-01 is clean.
    static func build(answers: String = "answers: {}\n", onlyClean: Bool = false) async throws -> AssessmentResult {
        let (collector, _) = try TestUnit.collector()
        let ws1 = try TestMachine(index: 301, hostname: "ws-01", assetID: "JSJ-2026-0101", classification: .confidential)
        let ws2 = try TestMachine(index: 302, hostname: "ws-02", assetID: "JSJ-2026-0102", classification: .secret)
        let ws3 = try TestMachine(index: 303, hostname: "ws-03", assetID: "JSJ-2026-0103", classification: .confidential)
        let pc4 = try TestMachine(index: 304, hostname: "pc-04", assetID: "FM-2026-0104", classification: .unclassified)
        try TestUnit.enrol([ws1, ws2, ws3, pc4], into: collector)
        func submit(_ bytes: [UInt8]) async throws {
            if case .failure(let refusal) = await collector.submit(bytes, source: "deductions", receivedAt: now) { throw refusal }
        }
        func replacing(_ machine: TestMachine, _ at: Date, _ failing: [Finding]) -> [Finding] {
            let failed = Set(failing.map(\.rule.id))
            return machine.cleanFindings(at: at).filter { !failed.contains($0.rule.id) } + failing
        }
        for day in 27...28 {
            let at = TestUnit.day(day)
            try await submit(try ws1.next(findings: ws1.cleanFindings(at: at), issuedAt: at))
            let f2 = onlyClean ? ws2.cleanFindings(at: at) : replacing(ws2, at, [
                ws2.finding(RuleCatalogue.browserHistory, "zhang/firefox/abcd.default-esr:www.baidu.com", .fail, "Firefox of zhang visited www.baidu.com.", at: at),
                ws2.finding(RuleCatalogue.browserHistory, "zhang/firefox/abcd.default-esr:news.qq.com", .fail, "Firefox of zhang visited news.qq.com.", at: at),
                ws2.finding(RuleCatalogue.browserHistory, "zhang/chromium/Default:hsts", .fail, "Chromium of zhang holds 12 HSTS entries of public hosts.", at: at),
                ws2.finding(RuleCatalogue.internetRoute, "table main: default via 203.0.113.1 dev eth1", .fail, "A route reaches public address space.", at: at),
            ])
            try await submit(try ws2.next(findings: f2, issuedAt: at))
            let f3 = onlyClean ? ws3.cleanFindings(at: at) : replacing(ws3, at, [
                ws3.finding(RuleCatalogue.browserHistory, "li/chromium/Default:www.bing.com", .fail, "Chromium of li visited www.bing.com.", at: at)
            ])
            try await submit(try ws3.next(findings: f3, issuedAt: at))
            var f4 = [
                pc4.finding(RuleCatalogue.dataMarkings, "/home/wang/a.docx", onlyClean ? .pass : .fail, "a.docx is marked 秘密.", at: at),
                pc4.finding(RuleCatalogue.browserHistory, "wang/firefox/x.default:www.baidu.com", onlyClean ? .pass : .fail, "Firefox of wang visited www.baidu.com.", at: at),
            ]
            if !onlyClean { f4.append(pc4.finding(RuleCatalogue.dataMarkings, "/home/wang/b.pdf", .fail, "b.pdf is marked 机密.", at: at)) }
            try await submit(try pc4.next(findings: f4, issuedAt: at, policy: TestUnit.unclassifiedPolicy))
        }
        let table = try CollectorSetup.table(nil)
        let parsed = try AssessmentAnswers.parse(Array(answers.utf8), file: "answers.yaml", table: table)
        let settings = UnitSettings(policies: try CollectorSetup.policies([]))
        return AssessmentBuilder.build(snapshot: try collector.store.snapshot(year: 2026), table: table, answers: parsed, settings: settings, now: now)
    }

    @Test("53: each classified machine with a public visit, route or egress is one case, however many findings and rules")
    func item53PerMachine() async throws {
        let result = try await Self.build()
        let item = try #require(result.deductions.first { $0.deduction.id == "53" })
        #expect(item.deduction.rules == ["net.history", "traffic.egress", "net.internet-route", "unit.internet"])
        #expect(item.decidedBy == "machine")
        #expect(item.cases == 2)
        #expect(item.deducted == 8)
        #expect(item.problems.map { $0.evidence.first?.hostname } == ["ws-02", "ws-03"])
        let ws2 = try #require(item.problems.first)
        #expect(ws2.text.hasPrefix("涉密计算机 ws-02（设备编号 JSJ-2026-0102）：net.history, net.internet-route, unit.internet 不符合，计 1 例"))
        // Three net.history findings and the route finding; unit.internet's evidence (the route again) is not repeated.
        #expect(ws2.evidence.filter { $0.ruleID == "net.history" }.count == 3)
        #expect(ws2.evidence.filter { $0.ruleID == "net.internet-route" }.count == 1)
        #expect(ws2.text.contains("（4 条证据）"))
        #expect(ws2.evidence.allSatisfy { $0.hostname == "ws-02" && $0.reportSHA256?.count == 64 })
        #expect(!item.problems.contains { $0.text.contains("pc-04") }, "an unclassified machine is not a case of 53")
    }

    @Test("54: each unclassified machine with a failing data.markings finding is one case")
    func item54PerMachine() async throws {
        let result = try await Self.build()
        let item = try #require(result.deductions.first { $0.deduction.id == "54" })
        #expect(item.deduction.scope == .unclassified)
        #expect(item.decidedBy == "machine")
        #expect(item.cases == 1)
        #expect(item.problems.first?.text.hasPrefix("非涉密计算机 pc-04（设备编号 FM-2026-0104）：data.markings 不符合，计 1 例（2 条证据）") == true)
        #expect(result.items.first { $0.item.id == "七.8" }?.verdict == .fails)
    }

    @Test("machines that reported the rules and passed decide zero cases; people's count is not taken over machine evidence")
    func cleanUnit() async throws {
        let result = try await Self.build(answers: "answers:\n  \"53\": {cases: 3}\n", onlyClean: true)
        let item = try #require(result.deductions.first { $0.deduction.id == "53" })
        #expect(item.decidedBy == "machine")
        #expect(item.cases == 0)
        #expect(item.deducted == 0)
        #expect(result.deductions.first { $0.deduction.id == "54" }?.cases == 0)
    }

    @Test("55 still counts each medium that crossed (per finding of the unit rule)")
    func item55PerFinding() throws {
        let table = try CollectorSetup.table(nil)
        let item = try #require(table.deductions.first { $0.id == "55" })
        #expect(item.per == .finding)
        #expect(item.rules == ["unit.media-crossuse"])
    }

    @Test("the table refuses an unknown rule and per: finding over machine rules, naming the key")
    func tableErrors() throws {
        let base = EmbeddedAssessmentTable.selfAssessmentZH
        let unknown = base.replacingOccurrences(of: "rules: [data.markings], hosts: unclassified, per: machine", with: "rules: [data.marking], hosts: unclassified, per: machine")
        #expect(unknown != base)
        #expect(throws: MijianError.self) { try AssessmentTable.parse(Array(unknown.utf8), file: "t.yaml") }
        do {
            _ = try AssessmentTable.parse(Array(unknown.utf8), file: "t.yaml")
        } catch {
            #expect(error.description.contains("deductions[1].rules[0]"))
            #expect(error.description.contains("data.marking"))
        }
        // A table written before per-machine counting (`rule:` of one unit rule) still counts per finding.
        let legacy = base.replacingOccurrences(of: "rules: [unit.media-crossuse], per: finding", with: "rule: unit.media-crossuse")
        #expect(legacy != base)
        let legacyItem = try #require(try AssessmentTable.parse(Array(legacy.utf8), file: "t.yaml").deductions.first { $0.id == "55" })
        #expect(legacyItem.rules == ["unit.media-crossuse"] && legacyItem.per == .finding && legacyItem.scope == .classified)
        let wrong = base.replacingOccurrences(of: "rules: [data.markings], hosts: unclassified, per: machine", with: "rules: [data.markings], hosts: unclassified, per: finding")
        #expect(throws: MijianError.self) { try AssessmentTable.parse(Array(wrong.utf8), file: "t.yaml") }
    }
}
