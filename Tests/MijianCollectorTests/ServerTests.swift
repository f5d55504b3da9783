import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import Logging
import MijianCollector
import MijianCore
import MijianEvidence
import Testing

/// Learns the port the server bound (port 0 picks a free one).
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

/// A real collector server on a loopback port, and a plain HTTP client for it.
struct LiveClient: Sendable {
    let base: String
    let session: URLSession

    /// Runs `body` against a server that is stopped afterwards.
    static func with<T: Sendable>(
        _ collector: Collector, limits: ServerLimits = ServerLimits(), tls: CollectorTLS? = nil, logger: Logger = TestUnit.logger,
        _ body: @Sendable (LiveClient) async throws -> T
    ) async throws -> T {
        let table = try CollectorSetup.table(nil)
        let sources = AssessmentSources(table: table, answers: .none, settings: UnitSettings(policies: try CollectorSetup.policies([])))
        let box = PortBox()
        let app = try CollectorServer.application(
            collector: collector, sources: sources, host: "127.0.0.1", port: 0, limits: limits, tls: tls, logger: logger,
            onRunning: { port in await box.set(port) })
        let server = Task { try await app.run() }
        let port = await box.wait()
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 16
        configuration.timeoutIntervalForRequest = 60
        let client = LiveClient(base: "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)", session: URLSession(configuration: configuration))
        do {
            let value = try await body(client)
            server.cancel()
            _ = await server.result
            return value
        } catch {
            server.cancel()
            _ = await server.result
            throw error
        }
    }

    func request(_ path: String, method: String = "GET", body: [UInt8]? = nil) async throws -> (Int, [UInt8]) {
        guard let url = URL(string: base + path) else { throw MijianError(.usage, "bad url \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await session.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, Array(data))
    }

    func post(_ bytes: [UInt8]) async throws -> (Int, JSONValue?) {
        let (status, body) = try await request("/v1/reports", method: "POST", body: bytes)
        return (status, try? JSONParser().parse(body))
    }

    func json(_ path: String) async throws -> (Int, JSONValue?) {
        let (status, body) = try await request(path)
        return (status, try? JSONParser().parse(body))
    }

    func text(_ path: String) async throws -> String { String(decoding: try await request(path).1, as: UTF8.self) }
}

@Suite("HTTP API on a real loopback server")
struct ServerTests {
    @Test func theMachineListPagesInNameOrder() async throws {
        let (collector, _) = try TestUnit.collector()
        let machines = try (0..<5).map { try TestMachine(index: 40 + $0, hostname: "ws-\(4 - $0)", assetID: "JSJ-4\($0)", classification: .confidential) }
        try TestUnit.enrol(machines, into: collector)
        try await LiveClient.with(collector) { client in
            for machine in machines {
                let report = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
                #expect(try await client.post(report).0 == 202)
            }
            let whole = try #require(try await client.json("/v1/hosts").1?["hosts"]?.arrayValue)
            #expect(whole.compactMap { $0["hostname"]?.stringValue } == ["ws-0", "ws-1", "ws-2", "ws-3", "ws-4"])
            var paged: [String] = []
            var path = "/v1/hosts?limit=2"
            var pages = 0
            while pages < 10 {
                pages += 1
                let (status, body) = try await client.json(path)
                #expect(status == 200)
                paged += body?["hosts"]?.arrayValue?.compactMap { $0["hostname"]?.stringValue } ?? []
                guard let next = body?["next_after"]?.stringValue else { break }
                path = "/v1/hosts?limit=2&after=\(next)"
            }
            #expect(paged == ["ws-0", "ws-1", "ws-2", "ws-3", "ws-4"])
            #expect(pages == 3)
            for bad in ["/v1/hosts?limit=0", "/v1/hosts?limit=x", "/v1/hosts?limit=10001", "/v1/hosts?after=\(machines[0].host.hostID)", "/v1/hosts?limit=2&after=nope"] {
                let (status, body) = try await client.json(bad)
                #expect(status == 400, "\(bad)")
                #expect(body?["error"]?.stringValue == "usage", "\(bad)")
            }
        }
    }

    @Test func postsAnswerWithStatusAndReason() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 11, hostname: "ws-11", assetID: "JSJ-11", classification: .confidential)
        let stranger = try TestMachine(index: 12, hostname: "ws-12", assetID: "JSJ-12", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        var limits = ServerLimits()
        limits.maxBodyBytes = 256 << 10
        try await LiveClient.with(collector, limits: limits) { client in
            let r0 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
            let (status, body) = try await client.post(r0)
            #expect(status == 202)
            #expect(body?["outcome"]?.stringValue == "first")
            #expect(body?["payload_sha256"]?.stringValue?.count == 64)
            // Idempotent retry.
            let (again, againBody) = try await client.post(r0)
            #expect(again == 202)
            #expect(againBody?["outcome"]?.stringValue == "duplicate")
            // Fork and replay are conflicts.
            let r1 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(2)), issuedAt: TestUnit.day(2))
            #expect(try await client.post(r1).0 == 202)
            let fork = try machine.envelope(machine.report(findings: [], issuedAt: TestUnit.day(2), seq: 1, prev: String(repeating: "0", count: 64)))
            let (forkStatus, forkBody) = try await client.post(fork)
            #expect(forkStatus == 409)
            #expect(forkBody?["outcome"]?.stringValue == "fork")
            let replay = try machine.envelope(machine.report(findings: [], issuedAt: TestUnit.day(1), seq: 0, prev: ""))
            #expect(try await client.post(replay).0 == 409)
            // Forged, malformed, foreign, oversized.
            var forged = try DSSE.sign(payload: Array("{}".utf8), type: PayloadType.report, key: stranger.key)
            forged.signatures = forged.signatures.map { Envelope.Signature(keyid: machine.key.keyid, sig: $0.sig) }
            let (forgedStatus, forgedBody) = try await client.post(forged.serialized())
            #expect(forgedStatus == 400)
            #expect(forgedBody?["error"]?.stringValue == "bad-signature")
            let (malformed, malformedBody) = try await client.post(Array("{\"payloadType\":".utf8))
            #expect(malformed == 400)
            #expect(malformedBody?["error"]?.stringValue == "malformed")
            let foreign = try stranger.envelope(stranger.report(findings: [], issuedAt: TestUnit.day(1)))
            #expect(try await client.post(foreign).0 == 403)
            let (large, largeBody) = try await client.post([UInt8](repeating: 0x20, count: (256 << 10) + 1))
            #expect(large == 413)
            #expect(largeBody?["error"]?.stringValue == "too-large")

            let hosts = try #require(try await client.json("/v1/hosts").1)
            #expect(hosts["hosts"]?.arrayValue?.count == 1)
            #expect(hosts["hosts"]?.arrayValue?.first?["seq"]?.intValue == 1)
            let one = try await client.json("/v1/hosts/\(machine.host.hostID)")
            #expect(one.0 == 200)
            #expect(one.1?["report_history"]?.arrayValue?.count == 3)
            #expect(one.1?["forks"]?.intValue == 1)
            #expect(try await client.json("/v1/hosts/nope").0 == 404)
            #expect(try await client.text("/healthz") == "ok\n")
            let metrics = try await client.text("/metrics")
            #expect(metrics.contains("mijian_collector_reports_total{outcome=\"first\"} 1"))
            #expect(metrics.contains("mijian_collector_reports_total{outcome=\"fork\"} 1"))
            #expect(metrics.contains("mijian_collector_refused_total{reason=\"bad-signature\"} 1"))
            #expect(metrics.contains("mijian_collector_refused_total{reason=\"too-large\"} 1"))
            #expect(metrics.contains("mijian_collector_hosts 1"))
            let assessment = try await client.json("/v1/assessment?year=2026")
            #expect(assessment.0 == 200)
            #expect(assessment.1?["year"]?.intValue == 2026)
            #expect(try await client.json("/v1/assessment").0 == 400)
        }
    }

    @Test func hundredConcurrentPostsNothingLostOrDoubled() async throws {
        let (collector, _) = try TestUnit.collector()
        let machines = try (0..<25).map { try TestMachine(index: 100 + $0, hostname: "ws-c\($0)", assetID: "JSJ-C\($0)", classification: .confidential) }
        try TestUnit.enrol(machines, into: collector)
        // Four reports per machine, prepared up front: 100 envelopes.
        var chains: [[[UInt8]]] = []
        for machine in machines {
            chains.append(try (1...4).map { day in try machine.next(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day)) })
        }
        let prepared = chains
        try await LiveClient.with(collector) { client in
            // Every machine posts its chain in order, all machines at once; then every envelope again at once.
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for chain in prepared {
                    group.addTask {
                        var out: [Int] = []
                        for envelope in chain { out.append(try await client.post(envelope).0) }
                        return out
                    }
                }
                var all: [Int] = []
                for try await part in group { all += part }
                return all
            }
            #expect(statuses.count == 100)
            #expect(statuses.allSatisfy { $0 == 202 })
            let retries = try await withThrowingTaskGroup(of: String?.self) { group in
                for envelope in prepared.flatMap({ $0 }) {
                    group.addTask { try await client.post(envelope).1?["outcome"]?.stringValue }
                }
                var all: [String?] = []
                for try await outcome in group { all.append(outcome) }
                return all
            }
            #expect(retries.count == 100)
            #expect(retries.allSatisfy { $0 == "duplicate" })
        }
        let hosts = try collector.store.hosts()
        #expect(hosts.count == 25)
        #expect(hosts.allSatisfy { $0.chain.seq == 3 && $0.reportCount == 4 && $0.missingCount == 0 && $0.forkCount == 0 })
        #expect(try collector.store.counts().stored == ["first": 25, "accepted": 75])
    }

    @Test func aServerRestartInTheMiddleContinuesTheChain() async throws {
        let (collector, path) = try TestUnit.collector()
        let machine = try TestMachine(index: 13, hostname: "ws-13", assetID: "JSJ-13", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        try await LiveClient.with(collector) { client in
            for day in 1...2 {
                let envelope = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day))
                let (status, _) = try await client.post(envelope)
                #expect(status == 202)
            }
        }
        // The server stopped; a new one opens the same database.
        let (reopened, _) = try TestUnit.collector(directory: path)
        try await LiveClient.with(reopened) { client in
            let (status, body) = try await client.post(try machine.next(findings: machine.cleanFindings(at: TestUnit.day(3)), issuedAt: TestUnit.day(3)))
            #expect(status == 202)
            #expect(body?["outcome"]?.stringValue == "accepted")
        }
        #expect(try reopened.store.hosts().first?.reportCount == 3)
        #expect(try reopened.store.hosts().first?.missingCount == 0)
    }
}
