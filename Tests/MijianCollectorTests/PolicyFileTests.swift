import Foundation
import MijianCollector
import MijianCore
import MijianTestSupport
import Testing

@Suite("Policy files and the self-assessment table")
struct PolicyFileTests {
    func file(_ name: String) throws -> String {
        let url = TestSupport.repositoryRoot.appendingPathComponent("Policies/\(name)")
        return String(decoding: try #require(FileManager.default.contents(atPath: url.path)), as: UTF8.self)
    }

    @Test func embeddedCopiesEqualTheFiles() throws {
        #expect(EmbeddedAssessmentTable.selfAssessmentZH == (try file("self-assessment.zh.yaml")))
        #expect(EmbeddedPolicies.unclassifiedWorkstation == (try file("unclassified-workstation.yaml")))
    }

    @Test func theUnclassifiedPolicyAllowsTheInternetAndStillReportsUSB() throws {
        let policy = try Policy.parse(Array(try file("unclassified-workstation.yaml").utf8), file: "unclassified-workstation.yaml")
        #expect(policy.profile == .unclassified)
        #expect(policy.isAllowedPeer(IPAddress("8.8.8.8") ?? .v4(0)))
        #expect(!policy.isEnabled("net.internet-route"))
        #expect(policy.isEnabled("usb.storage"))
        #expect(policy.isEnabled("usb.history"))
    }

    @Test func theTableHasFourteenAreasWorthAHundredPoints() throws {
        let table = try CollectorSetup.table(nil)
        #expect(table.areas.map(\.id) == ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "十三", "十四"])
        #expect(table.areas.flatMap(\.items).reduce(0) { $0 + $1.points } == 100)
        #expect(table.areas.first { $0.id == "七" }?.items.count == 13)
        #expect(table.deductions.map(\.id) == ["53", "54", "55"])
        #expect(table.meetsPercent == 90)
        #expect(table.basicallyPercent == 80)
    }

    @Test func aTableNamingAnUnknownRuleIsRefusedWithFileAndLine() {
        let yaml = "id: t\nversion: \"1\"\nareas:\n  - id: 一\n    title: x\n    items:\n      - {id: 一.1, points: 1, text: x, rules: [net.nothing]}\n"
        #expect {
            try AssessmentTable.parse(Array(yaml.utf8), file: "t.yaml")
        } throws: { error in
            "\(error)".contains("t.yaml:7") && "\(error)".contains("net.nothing")
        }
    }

    @Test func answersNamingNoSuchItemOrVerdictAreRefused() throws {
        let table = try CollectorSetup.table(nil)
        #expect(throws: MijianError.self) { try AssessmentAnswers.parse(Array("answers:\n  七.99: {verdict: 符合}\n".utf8), file: "a.yaml", table: table) }
        #expect(throws: MijianError.self) { try AssessmentAnswers.parse(Array("answers:\n  七.1: {verdict: maybe}\n".utf8), file: "a.yaml", table: table) }
        let ok = try AssessmentAnswers.parse(Array("answers:\n  七.1: {verdict: meets, note: 资质齐全}\n".utf8), file: "a.yaml", table: table)
        #expect(ok.answers["七.1"]?.verdict == .meets)
    }

    @Test func htmlAndMarkdownEscapeWhatMachinesSend() {
        #expect(AssessmentRenderer.escape("<script>alert('x')</script>&\"") == "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;")
        // A Markdown viewer renders raw HTML: a host name's tags arrive as text, on one line, in one cell.
        #expect(AssessmentRenderer.markdownCell("ws<img src=x onerror=alert(1)>|x\ny") == "ws&lt;img src=x onerror=alert(1)>\\|x y")
    }

    @Test func mediaAreFoundAtAnyDepthOfTheEvidence() {
        let data: JSONValue = ["a": ["b": [["vendor": "0781", "product": "5583", "serial": " S1 "], ["vendor": "0781", "product": "5583", "serial": ""]]]]
        #expect(MediumIdentity.all(in: data) == [MediumIdentity(vendor: "0781", product: "5583", serial: "S1")])
    }

    @Test func listenAddressesParse() throws {
        #expect(try CollectorSetup.listenAddress("127.0.0.1:8443") == ("127.0.0.1", 8443))
        #expect(try CollectorSetup.listenAddress("[::1]:9000") == ("::1", 9000))
        #expect(throws: MijianError.self) { try CollectorSetup.listenAddress("8443") }
        #expect(CollectorSetup.isLoopback("127.0.0.1"))
        #expect(!CollectorSetup.isLoopback("192.0.2.10"))
    }
}
