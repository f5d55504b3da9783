import Foundation
import Logging
import MijianCollector
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

/// A generated workstation: a deterministic signing key, a host identity, and its chain.
final class TestMachine: @unchecked Sendable {
    let key: SigningKey
    var host: HostInfo
    var epoch: Int64 = 0
    var seq: Int64 = 0
    var prev = ""
    let index: Int

    /// Machine `index` of a unit; the key comes from a fixed seed so digests are the same every run.
    init(index: Int, hostname: String, assetID: String?, classification: Classification?, responsible: String? = "张三") throws {
        self.index = index
        key = try SigningKey(seed: (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index &* 31 &+ 1) })
        host = HostInfo(
            hostID: HostInfo.hostID(machineID: "machine-\(index)"), hostname: hostname, assetID: assetID, classification: classification,
            responsible: responsible, unit: "某局办公室", os: "Debian GNU/Linux 12 (bookworm)", kernel: "6.1.0-26-amd64")
    }

    /// The signed enrolment request, as `mijian enroll` writes it.
    func enrolmentRequest(previous: SigningKey? = nil, at date: Date = TestUnit.start) throws -> [UInt8] {
        try EnrolmentRequest.signed(key: key, previous: previous, host: host, at: date).serialized()
    }

    /// A report at the chain's next place (without moving the chain).
    func report(findings: [Finding], issuedAt: Date, events: [Event] = [], policy: PolicyInfo = TestUnit.classifiedPolicy, seq: Int64? = nil, prev: String? = nil) -> Report {
        Report(
            reportID: UUID(uuidString: String(format: "00000000-0000-4000-8000-%04x%08x", index, Int(seq ?? self.seq))) ?? UUID(),
            epoch: epoch, seq: seq ?? self.seq, prevSHA256: prev ?? self.prev, issuedAt: issuedAt,
            windowStart: issuedAt.addingTimeInterval(-86_400), windowEnd: issuedAt, agent: AgentInfo(keyid: key.keyid), host: host,
            policy: policy, findings: findings, events: events)
    }

    /// Signs a report into envelope bytes.
    func envelope(_ report: Report) throws -> [UInt8] {
        try DSSE.sign(payload: report.payloadBytes(), type: PayloadType.report, key: key).serialized()
    }

    /// Makes, signs and advances: the next envelope of this machine's chain.
    func next(findings: [Finding], issuedAt: Date, events: [Event] = [], policy: PolicyInfo = TestUnit.classifiedPolicy) throws -> [UInt8] {
        let report = report(findings: findings, issuedAt: issuedAt, events: events, policy: policy)
        let bytes = try envelope(report)
        prev = TestUnit.sha256(report.payloadBytes())
        seq += 1
        return bytes
    }

    /// A finding of a catalogue rule on this machine.
    func finding(_ rule: RuleInfo, _ subject: String, _ status: Status, _ detail: String, at date: Date, data: JSONValue = [:]) -> Finding {
        Finding(
            uid: Finding.uid(hostID: host.hostID, ruleID: rule.id, subject: subject), rule: rule, subject: subject, severity: rule.defaultSeverity,
            status: status, statusDetail: detail, observedAt: date, evidence: [Evidence(kind: "test", source: "generated", observedAt: date, data: data)])
    }

    /// A clean audit: every audit rule passes.
    func cleanFindings(at date: Date) -> [Finding] {
        RuleCatalogue.auditRules.map { finding($0, "host", .pass, "nothing found", at: date) }
    }
}

extension Collector {
    /// The SQLite store's face the tests read through; every test collector has one.
    var store: CollectorStore {
        get throws { try #require(sqlite) }
    }
}

/// Helpers for a generated unit.
enum TestUnit {
    static let start = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z
    static func day(_ n: Int) -> Date { start.addingTimeInterval(Double(n) * 86_400) }

    static var classifiedPolicy: PolicyInfo {
        (try? CollectorSetup.policies([]).first?.info) ?? PolicyInfo(id: "classified-workstation", version: "2026.1", sha256: "")
    }

    static var unclassifiedPolicy: PolicyInfo {
        (try? CollectorSetup.policies([]).last?.info) ?? PolicyInfo(id: "unclassified-workstation", version: "2026.1", sha256: "")
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        DSSEDigest.hex(bytes)
    }

    static var logger: Logger {
        var logger = Logger(label: "collector-test")
        logger.logLevel = .critical
        return logger
    }

    /// A fresh data directory with an open store and a collector verifying through the registry.
    static func collector(directory: String? = nil, logger: Logger = TestUnit.logger) throws -> (Collector, String) {
        let path = try directory ?? TestSupport.temporaryDirectory("collector").path
        let store = try CollectorStore(directory: path)
        return (Collector(store: store, verifier: EvidenceSubmissionVerifier(store: store), logger: logger), path)
    }

    /// Enrols machines into a collector's registry.
    static func enrol(_ machines: [TestMachine], into collector: Collector) throws {
        for machine in machines { _ = try Enrolment.approve(requestBytes: try machine.enrolmentRequest(), note: "test", store: collector.store, now: start) }
    }
}

import Crypto

/// SHA-256 hex, as the collector names payloads.
enum DSSEDigest {
    static func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }
}
