// bench-collector: two figures the collector issue sets goals for.
//
//   1. Reports ingested per second over HTTP on loopback, with signature verification, the chain
//      check and storage (goal ≥ 1,000/s).
//   2. Time to build the self-assessment for 10,000 machines' year (goal < 5 s).
//
// Run: cd Benchmarks && swift run -c release bench-collector [machines-for-http] [reports-each] [machines-for-assessment] [reports-each]
import Crypto
import Foundation
import Logging
import MijianCollector
import MijianCore
import MijianEvidence
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let httpMachines = arguments.count > 0 ? arguments[0] : 200
let httpReports = arguments.count > 1 ? arguments[1] : 25
let yearMachines = arguments.count > 2 ? arguments[2] : 10_000
let yearReports = arguments.count > 3 ? arguments[3] : 12
let concurrency = 16

let logger: Logger = {
    var logger = Logger(label: "bench-collector")
    logger.logLevel = .error
    return logger
}()

func temporaryDirectory(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "bench-collector-\(name)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

enum SHA {
    static func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }
}

let start2026 = Date(timeIntervalSince1970: 1_767_225_600)

func host(_ index: Int, classified: Bool) -> HostInfo {
    HostInfo(
        hostID: HostInfo.hostID(machineID: "bench-\(index)"), hostname: String(format: "ws-%05d", index), assetID: String(format: "JSJ-%05d", index),
        classification: classified ? .confidential : .unclassified, responsible: "张三", unit: "某局", os: "Debian GNU/Linux 12", kernel: "6.1.0")
}

func findings(_ host: HostInfo, at date: Date, index: Int, report: Int) -> [Finding] {
    RuleCatalogue.auditRules.map { rule in
        let fail = rule.id == "net.internet-route" && index % 500 == 0 && report == 3
        let usb = rule.id == "usb.storage" && index % 200 == 0
        let data: JSONValue = usb ? ["devices": [["vendor": "0781", "product": "5583", "serial": .string("SER\(index % 400)")]]] : [:]
        return Finding(
            uid: Finding.uid(hostID: host.hostID, ruleID: rule.id, subject: "host"), rule: rule, subject: "host", severity: rule.defaultSeverity,
            status: fail ? .fail : .pass, statusDetail: fail ? "default route via 203.0.113.1" : "nothing found", observedAt: date,
            evidence: [Evidence(kind: "bench", source: "generated", observedAt: date, data: data)])
    }
}

// MARK: 1. HTTP ingest

func benchHTTP() async throws {
    let directory = try temporaryDirectory("http")
    let store = try CollectorStore(directory: directory)
    let collector = Collector(store: store, verifier: EvidenceSubmissionVerifier(store: store), logger: logger)
    let policy = PolicyInfo(id: "classified-workstation", version: "2026.1", sha256: String(repeating: "0", count: 64))
    var chains: [[[UInt8]]] = []
    for index in 0..<httpMachines {
        let key = try SigningKey.generate()
        let info = host(index, classified: true)
        _ = try Enrolment.approve(requestBytes: try EnrolmentRequest.signed(key: key, previous: nil, host: info, at: start2026).serialized(), note: nil, store: store)
        var prev = ""
        var chain: [[UInt8]] = []
        for seq in 0..<httpReports {
            let at = start2026.addingTimeInterval(Double(seq) * 86_400)
            let report = Report(
                epoch: 0, seq: Int64(seq), prevSHA256: prev, issuedAt: at, windowStart: at, windowEnd: at, agent: AgentInfo(keyid: key.keyid), host: info,
                policy: policy, findings: findings(info, at: at, index: index, report: seq))
            let payload = report.payloadBytes()
            prev = SHA.hex(payload)
            chain.append(try DSSE.sign(payload: payload, type: PayloadType.report, key: key).serialized())
        }
        chains.append(chain)
    }
    let portBox = PortBox()
    let table = try CollectorSetup.table(nil)
    let sources = AssessmentSources(table: table, answers: .none, settings: UnitSettings(policies: try CollectorSetup.policies([])))
    let app = try CollectorServer.application(
        collector: collector, sources: sources, host: "127.0.0.1", port: 0, limits: ServerLimits(), logger: logger,
        onRunning: { port in await portBox.set(port) })
    let server = Task { try await app.run() }
    let port = await portBox.wait()
    let configuration = URLSessionConfiguration.ephemeral
    configuration.httpMaximumConnectionsPerHost = concurrency
    let session = URLSession(configuration: configuration)
    guard let url = URL(string: "http://127.0.0.1:\(port)/v1/reports") else { return }
    let total = chains.reduce(0) { $0 + $1.count }
    let clock = ContinuousClock()
    let startTime = clock.now
    let accepted = try await withThrowingTaskGroup(of: Int.self) { group in
        // `concurrency` workers, each taking whole machines so every chain arrives in order.
        let queue = WorkQueue(chains)
        for _ in 0..<concurrency {
            group.addTask {
                var ok = 0
                while let chain = await queue.next() {
                    for envelope in chain {
                        var request = URLRequest(url: url)
                        request.httpMethod = "POST"
                        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                        request.httpBody = Data(envelope)
                        let (_, response) = try await session.data(for: request)
                        if (response as? HTTPURLResponse)?.statusCode == 202 { ok += 1 }
                    }
                }
                return ok
            }
        }
        var sum = 0
        for try await part in group { sum += part }
        return sum
    }
    let elapsed = clock.now - startTime
    server.cancel()
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print(String(format: "http ingest: %d reports (%d machines × %d), %d accepted, %.2f s, %.0f reports/s (goal ≥ 1000/s), %d concurrent connections",
        total, httpMachines, httpReports, accepted, seconds, Double(total) / seconds, concurrency))
    let envelopeSize = chains.first?.first?.count ?? 0
    print("  envelope size \(envelopeSize) bytes; database \(directory)/collector.sqlite")
}

actor PortBox {
    var port: Int?
    var waiters: [CheckedContinuation<Int, Never>] = []
    func set(_ value: Int) {
        port = value
        for waiter in waiters { waiter.resume(returning: value) }
        waiters = []
    }
    func wait() async -> Int {
        if let port { return port }
        return await withCheckedContinuation { waiters.append($0) }
    }
}

actor WorkQueue {
    var items: [[[UInt8]]]
    init(_ items: [[[UInt8]]]) { self.items = items.reversed() }
    func next() -> [[UInt8]]? { items.popLast() }
}

// MARK: 2. Assessment of a year

func benchAssessment() throws {
    let directory = try temporaryDirectory("year")
    let store = try CollectorStore(directory: directory)
    let policies = try CollectorSetup.policies([])
    let clock = ContinuousClock()
    let fillStart = clock.now
    for index in 0..<yearMachines {
        let classified = index % 10 != 9
        let info = host(index, classified: classified)
        let keyid = "sha256:" + SHA.hex(Array(info.hostID.utf8))
        try store.approve(KeyRecord(
            keyid: keyid, pem: "bench", hostID: info.hostID, hostname: info.hostname, assetID: info.assetID, classification: info.classification,
            responsible: info.responsible, agentVersion: "bench", previousKeyID: nil, note: nil, requestedAt: start2026, approvedAt: start2026, requestSHA256: ""))
        var prev = ""
        for seq in 0..<yearReports {
            let at = start2026.addingTimeInterval(Double(seq) * 30 * 86_400 + Double(index))
            let report = Report(
                epoch: 0, seq: Int64(seq), prevSHA256: prev, issuedAt: at, windowStart: at, windowEnd: at, agent: AgentInfo(keyid: keyid), host: info,
                policy: (classified ? policies[0] : policies[1]).info, findings: findings(info, at: at, index: index, report: seq))
            let payload = report.payloadBytes()
            let sha = SHA.hex(payload)
            prev = sha
            _ = try store.record(VerifiedSubmission(keyid: keyid, payload: payload, payloadSHA256: sha, report: report), envelope: payload, receivedAt: at, source: "bench")
        }
    }
    let fill = clock.now - fillStart
    print("assessment: filled \(yearMachines) machines × \(yearReports) reports in \(fill) (direct store writes, no HTTP)")
    let table = try CollectorSetup.table(nil)
    var best = Duration.seconds(1_000)
    for _ in 0..<3 {
        let begin = clock.now
        let snapshot = try store.snapshot(year: 2026)
        let result = AssessmentBuilder.build(snapshot: snapshot, table: table, answers: .none, settings: UnitSettings(policies: policies), now: start2026.addingTimeInterval(365 * 86_400))
        let html = AssessmentRenderer(language: .zh).render(result, format: .html)
        let elapsed = clock.now - begin
        best = min(best, elapsed)
        print("  snapshot + correlation + scoring + HTML (\(html.count) bytes, \(result.hostCount) hosts, \(result.unitFindings.count) unit findings): \(elapsed)")
    }
    print("assessment for \(yearMachines) machines' year: best \(best) (goal < 5 s); database \(directory)/collector.sqlite")
}

try await benchHTTP()
try benchAssessment()
