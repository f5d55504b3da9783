import Foundation
import MijianCollector
import MijianCore
import MijianTestSupport
import Testing

/// The assessment of a small generated unit, compared byte for byte with the files in
/// `Tests/MijianCollectorTests/Golden/`. To regenerate after an intended change:
///
///     MIJIAN_REGENERATE_GOLDEN=1 swift test --filter AssessmentGoldenTests
///
/// then read the diff (`git diff Tests/MijianCollectorTests/Golden`) before committing it.
@Suite("Assessment of a five-machine unit (golden files)")
struct AssessmentGoldenTests {
    static let stick = ["vendor": "0781", "product": "5583", "serial": "4C530001230615117204"]
    static let registeredStick = ["vendor": "090c", "product": "1000", "serial": "AA00000000012345"]
    static let now = TestUnit.day(30)

    static let answersYAML = """
        unit: 某局办公室
        prepared_by: 保密办 李四
        answers:
          三.3: {verdict: 不符合, note: 2 名新上岗涉密人员未参加保密培训}
          九.3: {verdict: 不适用, note: 本年度无涉密采购项目}
          十.1: {verdict: 不适用, note: 本单位无涉外工作}
          十.2: {verdict: 不适用}
          十.3: {verdict: 不适用}
          七.12: {verdict: 符合, note: 打印机均为本地连接的涉密专用打印机}
          "54": {cases: 0}
          "59": {verdict: 符合}
        """

    static func medium(_ fields: [String: String]) -> JSONValue {
        .object([("vendor", .string(fields["vendor"] ?? "")), ("product", .string(fields["product"] ?? "")), ("serial", .string(fields["serial"] ?? ""))])
    }

    /// Builds the unit through the real ingest path and returns the assessment.
    static func build() async throws -> AssessmentResult {
        let (collector, _) = try TestUnit.collector()
        let ws1 = try TestMachine(index: 201, hostname: "ws-01", assetID: "JSJ-2026-0001", classification: .confidential)
        let ws2 = try TestMachine(index: 202, hostname: "ws-02", assetID: "JSJ-2026-0002", classification: .secret)
        let ws3 = try TestMachine(index: 203, hostname: "ws-03", assetID: "JSJ-2026-0003", classification: .confidential)
        let ws4 = try TestMachine(index: 204, hostname: "pc-04", assetID: "FM-2026-0101", classification: .unclassified)
        let ws5 = try TestMachine(index: 205, hostname: "ws-05", assetID: "JSJ-2026-0005", classification: .confidential, responsible: nil)
        let machines = [ws1, ws2, ws3, ws4, ws5]
        try TestUnit.enrol(machines, into: collector)

        func submit(_ bytes: [UInt8]) async throws {
            if case .failure(let refusal) = await collector.submit(bytes, source: "golden", receivedAt: now) { throw refusal }
        }
        for day in 26...29 {
            let at = TestUnit.day(day)
            // ws-01: clean, with a registered stick attached.
            var f1 = ws1.cleanFindings(at: at).filter { $0.rule.id != "usb.storage" }
            f1.append(ws1.finding(RuleCatalogue.usbStorage, "1-2", .pass, "registered medium 秘-U-0012", at: at, data: ["devices": [medium(registeredStick)]]))
            try await submit(try ws1.next(findings: f1, issuedAt: at))
            // ws-02: a default route to the internet on two days.
            var f2 = ws2.cleanFindings(at: at)
            if day >= 28 {
                f2 = f2.filter { $0.rule.id != "net.internet-route" }
                f2.append(ws2.finding(RuleCatalogue.internetRoute, "table main: default via 203.0.113.1 dev eth1", .fail,
                    "A route in table main reaches public address space (0.0.0.0/0 via 203.0.113.1).", at: at,
                    data: ["table": "main", "destination": "0.0.0.0/0", "gateway": "203.0.113.1", "dev": "eth1"]))
            }
            try await submit(try ws2.next(findings: f2, issuedAt: at))
            // ws-03: an unregistered stick.
            var f3 = ws3.cleanFindings(at: at).filter { $0.rule.id != "usb.storage" }
            f3.append(ws3.finding(RuleCatalogue.usbStorage, "1-4", day == 29 ? .fail : .pass,
                day == 29 ? "USB mass storage 0781:5583 (SanDisk) is not in the media ledger." : "No USB mass storage attached.", at: at,
                data: day == 29 ? ["devices": [medium(stick)]] : ["devices": []]))
            try await submit(try ws3.next(findings: f3, issuedAt: at))
            // pc-04: an unclassified computer whose USB history names the same stick.
            let f4 = [ws4.finding(RuleCatalogue.usbHistory, "journal", .informational, "1 USB storage connection in the journal.", at: at,
                data: ["connections": [.object([("first_seen", "2026-01-20T09:12:00Z")] + (medium(stick).objectValue ?? []))]])]
            try await submit(try ws4.next(findings: f4, issuedAt: at, policy: TestUnit.unclassifiedPolicy))
        }
        // ws-05: no responsible person on record, and reports 1 and 2 never arrived.
        try await submit(try ws5.next(findings: ws5.cleanFindings(at: TestUnit.day(26)), issuedAt: TestUnit.day(26)))
        ws5.seq = 3
        try await submit(try ws5.next(findings: ws5.cleanFindings(at: TestUnit.day(29)), issuedAt: TestUnit.day(29)))

        let table = try CollectorSetup.table(nil)
        let answers = try AssessmentAnswers.parse(Array(answersYAML.utf8), file: "answers.yaml", table: table)
        var settings = UnitSettings(policies: try CollectorSetup.policies([]))
        settings.ledger = [Policy.LedgerEntry(vendor: "090c", product: "1000", serial: "AA00000000012345", label: "秘-U-0012", classification: .confidential, responsible: "张三")]
        return AssessmentBuilder.build(snapshot: try collector.store.snapshot(year: 2026), table: table, answers: answers, settings: settings, now: now)
    }

    static var goldenDirectory: URL { TestSupport.repositoryRoot.appendingPathComponent("Tests/MijianCollectorTests/Golden") }

    static func compare(_ bytes: [UInt8], _ name: String) throws {
        let url = goldenDirectory.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["MIJIAN_REGENERATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: goldenDirectory, withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
        }
        let expected = try #require(FileManager.default.contents(atPath: url.path), "missing golden file \(name); regenerate as the suite's comment says")
        #expect(Array(expected) == bytes, "\(name) differs from the golden file; if the change is intended, regenerate and review the diff")
    }

    @Test func theDocumentMatchesTheGoldenFiles() async throws {
        let result = try await Self.build()
        try Self.compare(AssessmentRenderer(language: .zh).render(result, format: .md), "assessment.zh.md")
        try Self.compare(AssessmentRenderer(language: .zh).render(result, format: .html), "assessment.zh.html")
        try Self.compare(AssessmentRenderer(language: .zh).render(result, format: .json), "assessment.zh.json")
        try Self.compare(AssessmentRenderer(language: .en).render(result, format: .md), "assessment.en.md")
    }

    @Test func theVerdictsFollowTheEvidence() async throws {
        let result = try await Self.build()
        func item(_ id: String) -> ItemResult? { result.items.first { $0.item.id == id } }
        #expect(result.hostCount == 5)
        #expect(result.classifiedCount == 4)
        #expect(item("七.7")?.verdict == .fails)
        #expect(item("七.7")?.problems.contains { $0.text.contains("ws-02") } == true)
        #expect(item("七.3")?.verdict == .fails)
        #expect(item("七.9")?.verdict == .fails)
        #expect(item("七.9")?.problems.first?.evidence.map(\.hostname).sorted() == ["pc-04", "ws-03"])
        #expect(item("七.11")?.verdict == .fails)
        #expect(item("七.11")?.problems.contains { $0.text.contains("ws-05") && $0.text.contains("责任人") } == true)
        #expect(item("七.10")?.verdict == .fails)
        #expect(item("七.13")?.verdict == .meets)
        #expect(item("七.12")?.verdict == .meets)
        // print.devices and sharing decide 七.12 now; the answer given for it is kept as a note.
        #expect(item("七.12")?.decidedBy == "machine")
        #expect(item("七.1")?.verdict == .pending)
        #expect(item("三.3")?.verdict == .fails)
        #expect(item("十.1")?.verdict == .notApplicable)
        #expect(result.deductions.first { $0.deduction.id == "53" }?.cases == 1)
        #expect(result.deductions.first { $0.deduction.id == "55" }?.cases == 1)
        #expect(result.deductions.first { $0.deduction.id == "54" }?.decidedBy == "people")
        #expect(result.deductedPoints == 8)
        #expect(result.applicablePoints == 96)
        #expect(result.overall == "待确认")
        // Every evidence row names the signed report it rests on.
        for problem in result.items.flatMap(\.problems) {
            for row in problem.evidence { #expect(row.reportSHA256?.count == 64) }
        }
    }
}
