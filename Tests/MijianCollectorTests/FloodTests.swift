import Foundation
import MijianCollector
import MijianCore
import Synchronization
import Testing

/// One client address opening idle connections and bodies it never finishes, on a thread of its own.
final class Flood: Sendable {
    let port: Int
    let source: String
    private let held = Mutex<[RawConnection]>([])
    private let stopped = Mutex(false)
    /// Connections opened, and connections the server refused or cut while they were being opened.
    let counts = Mutex((opened: 0, cut: 0))

    init(port: Int, source: String) {
        self.port = port
        self.source = source
    }

    /// Opens `idle` idle connections and `bodies` POSTs that announce 1 MiB, send 256 KiB and stop.
    func wave(idle: Int, bodies: Int) {
        let every = max(1, (idle + bodies) / max(1, bodies))
        var made: [RawConnection] = []
        for index in 0..<(idle + bodies) {
            do {
                if index % every == 0, index / every < bodies {
                    made.append(try heldBody(port: port, from: source, length: 1 << 20, sent: 256 << 10, sendTimeout: 1))
                } else {
                    made.append(try RawConnection(port: port, from: source, sendTimeout: 1))
                }
                counts.withLock { $0.opened += 1 }
            } catch {
                counts.withLock { $0.cut += 1 }
            }
        }
        held.withLock { $0 += made }
    }

    /// Every second until stopped: another wave, keeping the newest `keep` connections open.
    func keepGoing(idle: Int, bodies: Int, keep: Int) {
        Thread {
            while !self.stopped.withLock({ $0 }) {
                self.wave(idle: idle, bodies: bodies)
                self.held.withLock { if $0.count > keep { $0.removeFirst($0.count - keep) } }
                Thread.sleep(forTimeInterval: 1)
            }
        }.start()
    }

    func stop() {
        stopped.withLock { $0 = true }
        held.withLock { $0.removeAll() }
    }
}

@Suite("Flood: enrolled machines are served while one address floods the collector")
struct FloodTests {
    /// `/metrics`, asked from the machine's address: 127.0.0.1 (the test client's own) is the flood's.
    func metrics(port: Int) async throws -> String {
        let page = try await Blocking.run { try RawConnection(port: port, from: "127.0.0.2") }
        try page.send("GET /metrics HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n")
        return String(decoding: await page.response(within: 5).body, as: UTF8.self)
    }

    /// The load test of the front door with the default limits: 1,200 idle connections and 100
    /// held bodies from 127.0.0.1 (and 100 idle and 10 held bodies more every second), while the
    /// machine at 127.0.0.2 posts one report a second. Every report must be answered 202 within a
    /// second, the server must hold no more connections and body bytes than its caps for that
    /// address, and every report must be stored.
    @Test func reportsAreAnsweredWithinASecondThroughAFlood() async throws {
        try Front.raiseFileLimit(to: 8192)
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 45, hostname: "ws-45", assetID: "JSJ-45", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        let reports = try (1...10).map { day in try machine.next(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day)) }
        let limits = ServerLimits()
        let before = Front.residentBytes()
        try await LiveClient.with(collector) { client in
            let port = Front.port(client)
            // The flood, from one address.
            let flood = Flood(port: port, source: "127.0.0.1")
            await Blocking.run { flood.wave(idle: 1200, bodies: 100) }
            flood.keepGoing(idle: 100, bodies: 10, keep: 1300)
            // The machine starts once the server has taken in the first wave (all but 64 of its
            // connections closed); the waves go on while it posts.
            for _ in 0..<100 {
                let page = try await metrics(port: port)
                if Front.metric(page, "mijian_collector_refused_total{reason=\"connections-per-client\"}") >= 1236 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            defer { flood.stop() }
            var peak = Front.residentBytes()
            var slowest = Duration.zero
            for report in reports {
                let started = ContinuousClock.now
                let answer = try await Blocking.run { try RawConnection(port: port, from: "127.0.0.2") }.post(report)
                let elapsed = ContinuousClock.now - started
                slowest = max(slowest, elapsed)
                #expect(answer.status == 202, "\(answer.head)")
                #expect(elapsed < .seconds(1), "a report waited \(elapsed)")
                let health = try await Blocking.run { try RawConnection(port: port, from: "127.0.0.2") }
                try health.send("GET /healthz HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n")
                #expect(await health.response(within: 1).status == 200)
                peak = max(peak, Front.residentBytes())
                try await Task.sleep(until: started + .seconds(1))
            }
            let metrics = try await metrics(port: port)
            let connections = Front.metric(metrics, "mijian_collector_connections")
            let bodyBytes = Front.metric(metrics, "mijian_collector_body_bytes")
            #expect(connections <= limits.maxConnectionsPerClient + 4)
            #expect(bodyBytes <= limits.maxBufferedBytesPerClient)
            #expect(Front.metric(metrics, "mijian_collector_refused_total{reason=\"connections-per-client\"}") >= 1200)
            let opened = flood.counts.withLock { $0 }
            // The process's resident memory holds every test that runs beside this one, so it is
            // printed, not judged: the server's own bounds are its gauges above, and
            // Benchmarks/collector-flood.sh measures the real server's memory from /proc.
            print("flood: \(opened.opened) connections opened (\(opened.cut) cut while opening), slowest report \(slowest), "
                + "server connections \(connections), body bytes held \(bodyBytes), resident \(before >> 20) MiB before, \(peak >> 20) MiB at most")
        }
        let host = try #require(try collector.store.hosts().first)
        #expect(host.reportCount == 10)
        #expect(host.missingCount == 0)
    }
}
