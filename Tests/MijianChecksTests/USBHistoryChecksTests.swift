import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianChecks

@Suite struct USBHistoryChecksTests {
    let now = TestSupport.fixedDate

    func evaluate(_ history: USBHistoryFacts, ledger: String = "") throws -> [Finding] {
        let policy = try TestSupport.policy("""
            id: t
            version: "1"
            profile: classified
            media:
              ledger:
            \(ledger)
            """)
        let facts = AuditFacts(root: "/", live: false, observedAt: now, usbHistory: history)
        return USBHistoryChecks.evaluate(facts, CheckContext(policy: policy, hostID: "h", observedAt: now))
    }

    var okSource: USBHistoryFacts.Source {
        .init(kind: "file", path: "/var/log/kern.log", state: "ok", lines: 10, oldest: now.addingTimeInterval(-86_400 * 30), newest: now)
    }

    func stick(_ serial: String?, storage: Bool = true) -> USBHistoryFacts.Connection {
        .init(time: now.addingTimeInterval(-3600), busPath: "1-1", vendor: "0781", product: "5583", serial: serial, isStorage: storage, source: "/var/log/kern.log:7")
    }

    @Test func noReadableSourceIsAnErrorNotAPass() throws {
        let findings = try evaluate(USBHistoryFacts(sources: [.init(kind: "file", path: "/var/log/kern.log", state: "missing", detail: "no kern.log")]))
        #expect(findings.map(\.status) == [.error])
        #expect(findings[0].statusDetail.contains("/var/log/kern.log: missing"))
    }

    @Test func cleanHistorySaysHowFarBackItLooked() throws {
        let findings = try evaluate(USBHistoryFacts(sources: [okSource], connections: [stick("X", storage: false)]))
        #expect(findings.map(\.status) == [.pass])
        #expect(findings[0].statusDetail.contains("(30 day(s))"))
        #expect(findings[0].statusDetail.contains("1 other USB device"))
        #expect(findings[0].evidence.first?.source == "/var/log/kern.log")
    }

    @Test func unregisteredStickFailsWithItsIdentityInEvidence() throws {
        let findings = try evaluate(USBHistoryFacts(sources: [okSource], connections: [stick("ABC"), stick("ABC")]))
        #expect(findings.map(\.status) == [.fail])
        #expect(findings[0].statusDetail.contains("not in the media ledger"))
        #expect(findings[0].statusDetail.contains("2 time(s)"))
        let data = try #require(findings[0].evidence.first?.data)
        #expect(data["vendor"] == "0781" && data["product"] == "5583" && data["serial"] == "ABC")
        #expect(data["connections"]?.arrayValue?.count == 2)
    }

    @Test func registeredStickPassesNamingItsLabel() throws {
        let ledger = """
                - vendor: "0781"
                  product: "5583"
                  serial: "ABC"
                  label: "秘-U-0012"
            """
        let findings = try evaluate(USBHistoryFacts(sources: [okSource], connections: [stick("ABC")]), ledger: ledger)
        #expect(findings.map(\.status) == [.pass])
        #expect(findings[0].statusDetail.contains("秘-U-0012"))
    }

    @Test func stickWithoutSerialCannotMatchTheLedger() throws {
        let findings = try evaluate(USBHistoryFacts(sources: [okSource], connections: [stick(nil)]))
        #expect(findings.map(\.status) == [.fail])
        #expect(findings[0].statusDetail.contains("no serial number"))
    }
}
