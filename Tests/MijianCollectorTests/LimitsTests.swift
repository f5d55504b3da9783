import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import MijianCollector
import MijianCore
import NIOCore
import MijianTestSupport
import Testing

/// A plain TCP connection to the collector, from a chosen loopback source address, that sends
/// exactly the bytes a test gives it (partial heads, broken chunks, bodies it never finishes).
final class RawConnection: @unchecked Sendable {
    let fd: Int32
    private var received: [UInt8] = []

    /// Connects to `127.0.0.1:port` from `source` (any address of 127.0.0.0/8); a send waits at most `sendTimeout` seconds.
    init(port: Int, from source: String = "127.0.0.1", sendTimeout: Int = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MijianError(.io, "socket", errno: errno) }
        var timeout = timeval(tv_sec: sendTimeout, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var local = Self.address(source, port: 0)
        var remote = Self.address("127.0.0.1", port: port)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        // On a throw below the object is whole, and deinit closes the socket: closing it here too
        // would close whatever descriptor took its number in the meantime.
        guard bound == 0 else { throw MijianError(.io, "bind \(source)", errno: errno) }
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { throw MijianError(.io, "connect to port \(port) from \(source)", errno: errno) }
    }

    private var open = true

    deinit { hangUp() }

    /// Closes this side, as a client that goes away does.
    func hangUp() {
        if open { close(fd) }
        open = false
    }

    static func address(_ ip: String, port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port)).bigEndian
        _ = inet_pton(AF_INET, ip, &address.sin_addr)
        return address
    }

    /// Sends every byte (or throws: the server closed the connection).
    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0, errno == EINTR { continue }
            guard sent > 0 else { throw MijianError(.io, "send", errno: errno) }
            offset += sent
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads what arrives within `seconds`; true when the server ended the connection (EOF or reset).
    /// Waits on a thread of its own: the server in this process answers on the shared pool.
    func readUntilClosed(within seconds: Double) async -> Bool {
        await Blocking.run { self.readUntilClosedNow(within: seconds) }
    }

    private func readUntilClosedNow(within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return false }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, left * 1000)))
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { return false }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return true }
            received += buffer[0..<count]
        }
    }

    /// Reads one HTTP response (head, and a body of its Content-Length) within `seconds`: its
    /// status, its head as text and its body (status 0 when none came).
    func response(within seconds: Double = 10) async -> (status: Int, head: String, body: [UInt8]) {
        await Blocking.run { self.responseNow(within: seconds) }
    }

    private func responseNow(within seconds: Double) -> (status: Int, head: String, body: [UInt8]) {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while deadline.timeIntervalSinceNow > 0 {
            if let parsed = Self.parse(received) { return parsed }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000)))
            guard ready > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            received += buffer[0..<count]
        }
        return Self.parse(received) ?? (0, String(decoding: received, as: UTF8.self), [])
    }

    private static func parse(_ bytes: [UInt8]) -> (status: Int, head: String, body: [UInt8])? {
        let marker: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4, let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == marker }) else { return nil }
        let head = String(decoding: bytes[0..<end], as: UTF8.self)
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") } ?? 0
        guard bytes.count >= end + 4 + length else { return nil }
        return (status, head, Array(bytes[(end + 4)..<(end + 4 + length)]))
    }

    /// A POST of `body` to `/v1/reports`, whole, on this connection; the server closes after answering.
    func post(_ body: [UInt8]) async throws -> (status: Int, head: String, body: [UInt8]) {
        try send("POST /v1/reports HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n")
        try send(body)
        return await response()
    }
}

/// Runs blocking socket calls on a thread of their own, so that they never hold one of the few
/// threads the in-process server needs to answer them.
enum Blocking {
    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }
}

/// Helpers shared by the limits tests.
enum Front {
    /// The port of a running server (from the client's base URL).
    static func port(_ client: LiveClient) -> Int { Int(client.base.split(separator: ":").last ?? "") ?? 0 }

    /// A counter of `/metrics` (0 when missing).
    static func metric(_ text: String, _ name: String) -> Int {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    /// Reads `/metrics` until `done` holds (a bounded number of times): what a connection did reaches the counters asynchronously.
    static func metrics(_ client: LiveClient, until done: (String) -> Bool) async throws -> String {
        var text = try await client.text("/metrics")
        for _ in 0..<100 where !done(text) {
            try await Task.sleep(for: .milliseconds(50))
            text = try await client.text("/metrics")
        }
        return text
    }

    /// Raises this process's open-file limit to at least `count` (tests run as root).
    static func raiseFileLimit(to count: Int) throws {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0 else { throw MijianError(.io, "getrlimit", errno: errno) }
        guard limit.rlim_cur < rlim_t(count) else { return }
        limit.rlim_cur = rlim_t(count)
        limit.rlim_max = max(limit.rlim_max, rlim_t(count))
        guard setrlimit(resource, &limit) == 0 else { throw MijianError(.io, "setrlimit \(count)", errno: errno) }
    }

    /// Resident memory of this process, in bytes.
    static func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kib * 1024
    }
}

@Suite("Body errors say what happened")
struct BodyErrorTests {
    @Test func malformedChunkedBodyIsBadRequestNotTooLarge() async throws {
        let (collector, _) = try TestUnit.collector()
        try await LiveClient.with(collector) { client in
            let connection = try RawConnection(port: Front.port(client))
            try connection.send("POST /v1/reports HTTP/1.1\r\nHost: collector\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
            let answer = await connection.response()
            #expect(answer.status == 400, "\(answer.head)")
            #expect((try? JSONParser().parse(answer.body))?["error"]?.stringValue == "malformed")
            let metrics = try await client.text("/metrics")
            #expect(metrics.contains("mijian_collector_refused_total{reason=\"too-large\"} 0\n"))
        }
    }

    @Test func clientLeavingMidBodyIsCountedAsDisconnected() async throws {
        let (collector, _) = try TestUnit.collector()
        try await LiveClient.with(collector) { client in
            let connection = try RawConnection(port: Front.port(client))
            try connection.send("POST /v1/reports HTTP/1.1\r\nHost: collector\r\nContent-Length: 100000\r\n\r\n")
            try connection.send([UInt8](repeating: 0x20, count: 1000))
            try await Task.sleep(for: .milliseconds(100))
            connection.hangUp()
            let metrics = try await Front.metrics(client) { $0.contains("reason=\"disconnected\"} 1\n") }
            #expect(metrics.contains("mijian_collector_refused_total{reason=\"disconnected\"} 1\n"))
            #expect(metrics.contains("mijian_collector_refused_total{reason=\"too-large\"} 0\n"))
            #expect(metrics.contains("mijian_collector_refused_total{reason=\"malformed\"} 0\n"))
        }
    }

    @Test func declaredTooLargeBodyIsRefusedUnreadAndTheConnectionClosed() async throws {
        let (collector, _) = try TestUnit.collector()
        var limits = ServerLimits()
        limits.maxBodyBytes = 64 << 10
        try await LiveClient.with(collector, limits: limits) { client in
            let connection = try RawConnection(port: Front.port(client))
            // The head alone: the answer must not wait for 10 MiB that never come.
            try connection.send("POST /v1/reports HTTP/1.1\r\nHost: collector\r\nContent-Length: 10485760\r\n\r\n")
            let answer = await connection.response(within: 30)
            #expect(answer.status == 413, "\(answer.head)")
            #expect((try? JSONParser().parse(answer.body))?["error"]?.stringValue == "too-large")
            #expect(await connection.readUntilClosed(within: 30), "the connection stayed open for a body that was refused")
            // Sent past the limit without a length (chunked): 413 too, and closed.
            let chunked = try RawConnection(port: Front.port(client))
            try chunked.send("POST /v1/reports HTTP/1.1\r\nHost: collector\r\nTransfer-Encoding: chunked\r\n\r\n")
            let chunk = [UInt8]("10000\r\n".utf8) + [UInt8](repeating: 0x20, count: 0x10000) + [13, 10]
            try chunked.send(chunk)
            try chunked.send(chunk)
            let second = await chunked.response(within: 30)
            #expect(second.status == 413, "\(second.head)")
            #expect(await chunked.readUntilClosed(within: 30))
        }
    }
}

/// A POST head with a `Content-Length` and the first `sent` bytes of a body that is never finished.
func heldBody(port: Int, from source: String, length: Int, sent: Int, sendTimeout: Int = 5) throws -> RawConnection {
    let connection = try RawConnection(port: port, from: source, sendTimeout: sendTimeout)
    try connection.send("POST /v1/reports HTTP/1.1\r\nHost: collector\r\nContent-Length: \(length)\r\n\r\n")
    try connection.send([UInt8](repeating: 0x20, count: sent))
    return connection
}

@Suite("Bodies held in memory are bounded")
struct BodyBudgetTests {
    @Test func bodiesPastTheBudgetAreRefusedWith503AndTheRestServed() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 41, hostname: "ws-41", assetID: "JSJ-41", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        var limits = ServerLimits()
        limits.maxBodyBytes = 256 << 10
        limits.maxBufferedBytesPerClient = 256 << 10
        limits.maxBufferedBytes = 512 << 10
        // The whole budget for everyone: the part kept for known clients has tests of its own.
        limits.reservedPercent = 0
        try await LiveClient.with(collector, limits: limits) { client in
            let port = Front.port(client)
            // One client holds a body as large as its share; its second body does not fit.
            let first = try heldBody(port: port, from: "127.0.0.1", length: 250 << 10, sent: 200 << 10)
            _ = try await Front.metrics(client) { Front.metric($0, "mijian_collector_body_bytes") >= 200 << 10 }
            let second = try heldBody(port: port, from: "127.0.0.1", length: 250 << 10, sent: 64 << 10)
            let refused = await second.response(within: 30)
            #expect(refused.status == 503, "\(refused.head)")
            #expect(refused.head.lowercased().contains("retry-after: 5"))
            #expect((try? JSONParser().parse(refused.body))?["error"]?.stringValue == "busy")
            #expect(await second.readUntilClosed(within: 30))
            // Another machine is served from what is left of the budget.
            let report = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
            #expect(try await RawConnection(port: port, from: "127.0.0.2").post(report).status == 202)
            // A second client fills the rest: now nobody else's body fits, and nothing past the bound is held.
            let third = try heldBody(port: port, from: "127.0.0.3", length: 250 << 10, sent: 200 << 10)
            let full = try await Front.metrics(client) { Front.metric($0, "mijian_collector_body_bytes") >= 400 << 10 }
            #expect(Front.metric(full, "mijian_collector_body_bytes") <= 512 << 10)
            let next = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(2)), issuedAt: TestUnit.day(2))
            #expect(try await RawConnection(port: port, from: "127.0.0.2").post(next).status == 503)
            // The holders go away: their bytes come back, and the same report is taken.
            first.hangUp()
            third.hangUp()
            _ = try await Front.metrics(client) { Front.metric($0, "mijian_collector_body_bytes") == 0 }
            let again = try await RawConnection(port: port, from: "127.0.0.2").post(next)
            #expect(again.status == 202, "\(again.head)")
            let metrics = try await client.text("/metrics")
            #expect(Front.metric(metrics, "mijian_collector_refused_total{reason=\"busy\"}") == 2)
            #expect(Front.metric(metrics, "mijian_collector_refused_total{reason=\"disconnected\"}") == 2)
        }
        #expect(try collector.store.hosts().first?.reportCount == 2)
    }
}

@Suite("Machines that have delivered a report keep a share of the budget and of the connections")
struct ReservedShareTests {
    /// Limits where four addresses holding one body each fill the whole budget, as the defaults' 4 x 16 MiB fill 64 MiB.
    static func limits() -> ServerLimits {
        var limits = ServerLimits()
        limits.maxBodyBytes = 256 << 10
        limits.maxBufferedBytesPerClient = 256 << 10
        limits.maxBufferedBytes = 1024 << 10
        return limits
    }

    /// The machine's report of `day`, posted from `source`: the answer.
    static func deliver(_ machine: TestMachine, day: Int, port: Int, from source: String) async throws -> (status: Int, head: String, body: [UInt8]) {
        let report = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day))
        return try await RawConnection(port: port, from: source).post(report)
    }

    /// Four addresses, 127.0.0.3-6, each holding one unfinished body as large as a client may
    /// hold; one after the other (two growing at once could both be refused), each once the server
    /// has taken all it will of the one before (its whole share, or a refusal).
    static func fillBudget(_ client: LiveClient) async throws -> [RawConnection] {
        let port = Front.port(client)
        var holders: [RawConnection] = []
        for address in 3...6 {
            holders.append(try heldBody(port: port, from: "127.0.0.\(address)", length: 250 << 10, sent: 200 << 10))
            let held = holders.count << 18
            _ = try await Front.metrics(client) {
                Front.metric($0, "mijian_collector_body_bytes") >= held || Front.metric($0, "mijian_collector_refused_total{reason=\"busy\"}") >= 1
            }
        }
        return holders
    }

    @Test func aMachineThatDeliveredAReportIsServedWhileFourAddressesFillTheBudget() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 47, hostname: "ws-47", assetID: "JSJ-47", classification: .confidential)
        let newcomer = try TestMachine(index: 48, hostname: "ws-48", assetID: "JSJ-48", classification: .confidential)
        try TestUnit.enrol([machine, newcomer], into: collector)
        try await LiveClient.with(collector, limits: Self.limits()) { client in
            let port = Front.port(client)
            #expect(try await Self.deliver(machine, day: 1, port: port, from: "127.0.0.2").status == 202)
            let holders = try await Self.fillBudget(client)
            let full = try await client.text("/metrics")
            // Addresses that never delivered a report hold at most the unreserved three quarters.
            #expect(Front.metric(full, "mijian_collector_body_bytes") <= 768 << 10)
            let answer = try await Self.deliver(machine, day: 2, port: port, from: "127.0.0.2")
            #expect(answer.status == 202, "\(answer.head)")
            // An address never seen shares the unknown part, which is full.
            let refused = try await Self.deliver(newcomer, day: 2, port: port, from: "127.0.0.7")
            #expect(refused.status == 503, "\(refused.head)")
            withExtendedLifetime(holders) {}
        }
        #expect(try collector.store.hosts().first { $0.hostname == "ws-47" }?.reportCount == 2)
    }

    @Test func machinesKnownFromTheStoreAreServedAfterARestart() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 49, hostname: "ws-49", assetID: "JSJ-49", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        try await LiveClient.with(collector, limits: Self.limits()) { client in
            let answer = try await Self.deliver(machine, day: 1, port: Front.port(client), from: "127.0.0.2")
            #expect(answer.status == 202, "\(answer.head)")
        }
        // A new server over the same store knows the machine before it sends anything.
        try await LiveClient.with(collector, limits: Self.limits()) { client in
            let holders = try await Self.fillBudget(client)
            let answer = try await Self.deliver(machine, day: 2, port: Front.port(client), from: "127.0.0.2")
            #expect(answer.status == 202, "\(answer.head)")
            withExtendedLifetime(holders) {}
        }
    }

    @Test func aKnownMachineTakesTheRoomOfAnUnknownClientAtTheConnectionCap() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 50, hostname: "ws-50", assetID: "JSJ-50", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        // Sixteen connections, four per client: a quarter, four, kept for known clients.
        var limits = ServerLimits()
        (limits.maxConnections, limits.maxConnectionsPerClient) = (16, 4)
        try await LiveClient.with(collector, limits: limits) { client in
            let port = Front.port(client)
            #expect(try await Self.deliver(machine, day: 1, port: port, from: "127.0.0.2").status == 202)
            // Sixteen addresses hold one unfinished request each: none is fresh, and no client holds two
            // more than the machine, so the room could not come from the heaviest.
            let holders = try (10..<26).map { address in try heldBody(port: port, from: "127.0.0.\(address)", length: 1000, sent: 10) }
            // /metrics is read from the machine's address: an unknown reader's connection could be the one closed.
            var reading = ""
            for _ in 0..<100 {
                let page = try await Blocking.run { try RawConnection(port: port, from: "127.0.0.2") }
                try page.send("GET /metrics HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n")
                reading = String(decoding: await page.response(within: 30).body, as: UTF8.self)
                // Settled: a connection closed to make room gives its body back when its close is done.
                if Front.metric(reading, "mijian_collector_body_bytes") == 12 * 4096, Front.metric(reading, "mijian_collector_connections") <= 13,
                    Front.metric(reading, "mijian_collector_refused_total{reason=\"connections-total\"}") >= 1
                {
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            // Unknown clients hold three quarters of the cap; the rest is kept.
            #expect(Front.metric(reading, "mijian_collector_connections") <= 13)
            #expect(Front.metric(reading, "mijian_collector_body_bytes") == 12 * 4096)
            let answer = try await Self.deliver(machine, day: 2, port: port, from: "127.0.0.2")
            #expect(answer.status == 202, "\(answer.head)")
            withExtendedLifetime(holders) {}
        }
    }
}

@Suite("Client keys")
struct ClientKeyTests {
    @Test func anIPv4MappedAddressIsItsIPv4Client() throws {
        let mapped = try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 40001)
        let plain = try SocketAddress(ipAddress: "127.0.0.1", port: 40002)
        #expect(ClientAddress.key(mapped) == ClientAddress.key(plain))
        #expect(ClientAddress.key(plain) == "127.0.0.1")
        // ::1 is an IPv6 client of its own, counted by its /64.
        #expect(ClientAddress.key(try SocketAddress(ipAddress: "::1", port: 40003)) != ClientAddress.key(plain))
        // One budget: the mapped and the plain address share one client's share.
        let budget = BodyBudget(maxBytes: 1 << 20, maxBytesPerClient: 64 << 10)
        #expect(budget.take(40 << 10, client: ClientAddress.key(mapped), known: false))
        #expect(!budget.take(40 << 10, client: ClientAddress.key(plain), known: false))
    }
}

@Suite("Connections are capped per client and in total")
struct ConnectionCapTests {
    @Test func aClientPastItsCapLosesItsOldestIdleConnectionsOthersAreServed() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 42, hostname: "ws-42", assetID: "JSJ-42", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        var limits = ServerLimits()
        limits.maxConnectionsPerClient = 8
        // Only the cap closes connections here, however slowly a busy machine runs the test.
        limits.firstRequestTimeout = .seconds(600)
        try await LiveClient.with(collector, limits: limits) { client in
            let port = Front.port(client)
            let idle = try (0..<20).map { _ in try RawConnection(port: port, from: "127.0.0.3") }
            // Twelve are closed by the server (the oldest as the server registered them: two
            // event loops may take them in another order than they connected), eight stay.
            let metrics = try await Front.metrics(client) { Front.metric($0, "mijian_collector_refused_total{reason=\"connections-per-client\"}") >= 12 }
            #expect(Front.metric(metrics, "mijian_collector_refused_total{reason=\"connections-per-client\"}") == 12)
            var closed = 0
            for connection in idle where await connection.readUntilClosed(within: 0.3) { closed += 1 }
            #expect(closed == 12)
            let report = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
            #expect(try await RawConnection(port: port, from: "127.0.0.2").post(report).status == 202)
            withExtendedLifetime(idle) {}
        }
    }

    @Test func atTheTotalCapTheOldestConnectionWithoutARequestMakesRoom() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 43, hostname: "ws-43", assetID: "JSJ-43", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        var limits = ServerLimits()
        limits.maxConnections = 10
        limits.maxConnectionsPerClient = 10
        limits.firstRequestTimeout = .seconds(600)
        limits.bodyTimeout = .seconds(600)
        try await LiveClient.with(collector, limits: limits) { client in
            let port = Front.port(client)
            // The oldest connection is in the middle of a request: it is not the one closed.
            let busy = try heldBody(port: port, from: "127.0.0.1", length: 1000, sent: 10)
            _ = try await Front.metrics(client) { Front.metric($0, "mijian_collector_body_bytes") > 0 }
            // Nine more: ten in all, or eleven with the connection /metrics came on, if that is still open.
            let idle = try (0..<9).map { _ in try RawConnection(port: port, from: "127.0.0.3") }
            let report = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
            let answer = try await RawConnection(port: port, from: "127.0.0.2").post(report)
            #expect(answer.status == 202, "\(answer.head)")
            var closed = 0
            for connection in idle where await connection.readUntilClosed(within: 0.5) { closed += 1 }
            #expect(closed >= 1, "no idle connection was closed to make room")
            #expect(!(await busy.readUntilClosed(within: 0.5)), "the connection in the middle of a request was closed")
            let metrics = try await client.text("/metrics")
            #expect(Front.metric(metrics, "mijian_collector_refused_total{reason=\"connections-total\"}") >= 1)
            #expect(Front.metric(metrics, "mijian_collector_connections") <= 10)
            withExtendedLifetime(idle) {}
        }
    }

    @Test func requestsNeverFinishedFromAFewAddressesDoNotKeepOutAMachineWithNone() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 46, hostname: "ws-46", assetID: "JSJ-46", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        var limits = ServerLimits()
        limits.maxConnections = 11
        limits.maxConnectionsPerClient = 11
        limits.firstRequestTimeout = .seconds(600)
        limits.bodyTimeout = .seconds(600)
        try await LiveClient.with(collector, limits: limits) { client in
            let port = Front.port(client)
            // Ten connections send their head and hold an unfinished body (4 KiB of budget each once
            // the server reads it); with the one /metrics is read on, the total is full and none is fresh.
            let holders = try (0..<10).map { index in try heldBody(port: port, from: index < 7 ? "127.0.0.3" : "127.0.0.4", length: 1000, sent: 10) }
            let reading = try await Front.metrics(client) { Front.metric($0, "mijian_collector_body_bytes") == 10 * 4096 }
            #expect(Front.metric(reading, "mijian_collector_connections") == 11)
            let full = try await Blocking.run { try RawConnection(port: port, from: "127.0.0.2") }
            let report = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
            let answer = try await full.post(report)
            #expect(answer.status == 202, "\(answer.head)")
            // The room came from the client holding the most (127.0.0.3), not from 127.0.0.4.
            var closed: [Bool] = []
            for holder in holders { closed.append(await holder.readUntilClosed(within: 0.3)) }
            #expect(closed[0..<7].contains(true))
            #expect(!closed[7...].contains(true))
        }
    }

    @Test func aConnectionThatSendsNoRequestIsClosedAfterTheFirstRequestTime() async throws {
        let (collector, _) = try TestUnit.collector()
        var limits = ServerLimits()
        limits.firstRequestTimeout = .seconds(1)
        try await LiveClient.with(collector, limits: limits) { client in
            let port = Front.port(client)
            let silent = try RawConnection(port: port)
            // Half a head is not a request.
            let partial = try RawConnection(port: port)
            try partial.send("GET /healthz HTTP/1.1\r\nHost: coll")
            let asked = try RawConnection(port: port)
            try asked.send("GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
            #expect(await asked.response(within: 30).status == 200)
            #expect(await silent.readUntilClosed(within: 30))
            #expect(await partial.readUntilClosed(within: 30))
            #expect(!(await asked.readUntilClosed(within: 1)), "a connection that sent a request was closed by the first-request timer")
            let metrics = try await client.text("/metrics")
            #expect(Front.metric(metrics, "mijian_collector_refused_total{reason=\"first-request-timeout\"}") == 2)
        }
    }

    @Test func emptyLinesAreNoRequestAndKeepNoConnectionFromTheFirstRequestTimer() async throws {
        let (collector, _) = try TestUnit.collector()
        var limits = ServerLimits()
        limits.firstRequestTimeout = .seconds(1)
        try await LiveClient.with(collector, limits: limits) { client in
            let blank = try RawConnection(port: Front.port(client))
            // Empty lines, which the parser skips before a request line: CR LF CR LF, but no head.
            try blank.send("\r\n\r\n\r\n")
            #expect(await blank.readUntilClosed(within: 30), "empty lines kept the connection from the first-request timer")
            let metrics = try await client.text("/metrics")
            #expect(Front.metric(metrics, "mijian_collector_refused_total{reason=\"first-request-timeout\"}") == 1)
        }
    }

    @Test func emptyLinesLeaveAConnectionFreshForEviction() async throws {
        let (collector, _) = try TestUnit.collector()
        var limits = ServerLimits()
        limits.maxConnectionsPerClient = 2
        try await LiveClient.with(collector, limits: limits) { client in
            let port = Front.port(client)
            let blank = try RawConnection(port: port, from: "127.0.0.3")
            try blank.send("\r\n\r\n")
            _ = try await Front.metrics(client) { Front.metric($0, "mijian_collector_connections") >= 2 }
            let asking = try RawConnection(port: port, from: "127.0.0.3")
            try asking.send("GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
            #expect(await asking.response(within: 30).status == 200)
            // A third: the client is at its cap, and the connection that sent only empty lines is the fresh one.
            let third = try RawConnection(port: port, from: "127.0.0.3")
            #expect(await blank.readUntilClosed(within: 30), "the connection that sent only empty lines was not evicted as fresh")
            #expect(!(await asking.readUntilClosed(within: 0.5)))
            withExtendedLifetime(third) {}
        }
    }

    @Test func theTLSPortHasTheSameCaps() async throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 44, hostname: "ws-44", assetID: "JSJ-44", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        let tls = try CollectorTLS(certificatePath: certificate.certificate, keyPath: certificate.key)
        var limits = ServerLimits()
        limits.maxConnectionsPerClient = 4
        limits.firstRequestTimeout = .seconds(2)
        let curl = Curl(directory: certificate.directory)
        let report = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        try await LiveClient.with(collector, limits: limits, tls: tls) { client in
            let port = Front.port(client)
            let idle = try (0..<6).map { _ in try RawConnection(port: port, from: "127.0.0.1") }
            #expect(await idle[0].readUntilClosed(within: 30))
            #expect(await idle[1].readUntilClosed(within: 30))
            // An HTTPS report from another address is served while they are open.
            let stored = try await Blocking.run {
                try curl.call(client.base + "/v1/reports", body: report, cacert: certificate.certificate, from: "127.0.0.2")
            }
            #expect(stored.httpStatus == 202, "curl: \(stored.stderr)")
            // The four left never handshake: the first-request timer closes them.
            for connection in idle.dropFirst(2) { #expect(await connection.readUntilClosed(within: 30)) }
            let metrics = try await Blocking.run { try curl.call(client.base + "/metrics", cacert: certificate.certificate, from: "127.0.0.2") }
            #expect(Front.metric(metrics.text, "mijian_collector_refused_total{reason=\"connections-per-client\"}") == 2)
            #expect(Front.metric(metrics.text, "mijian_collector_refused_total{reason=\"first-request-timeout\"}") == 4)
            #expect(Front.metric(metrics.text, "mijian_collector_refused_total{reason=\"tls-required\"}") == 0)
        }
    }
}

@Suite("serve's limit options")
struct ServeLimitOptionsTests {
    @Test func impossibleLimitsStopServeBeforeItListens() throws {
        let binary = TestSupport.productPath("mijian-collector")
        let data = try TestSupport.temporaryDirectory("collector-limits").appendingPathComponent("data").path
        let serve = ["serve", "--data", data, "--listen", "127.0.0.1:0"]
        // A hard open-file limit below what --max-connections needs: said with both numbers, not found out in a flood.
        // (`timeout`: a serve that does not stop would listen for ever.)
        let low = try TestSupport.run("/usr/bin/timeout", ["20", "/usr/bin/prlimit", "--nofile=512:512", binary] + serve)
        #expect(low.status == 2)
        #expect(low.stderr.contains("--max-connections 1024 needs 1152 open files, but the hard limit is 512"), "\(low.stderr)")
        #expect(!low.stderr.contains("listening"))
        for (options, words) in [
            (["--max-body", "32M"], "--max-body 32M must be between 1K and 16M"),
            (["--max-body", "12Q"], "--max-body 12Q is not a size"),
            (["--max-body", "99999999999999999999G"], "--max-body 99999999999999999999G is not a size"),
            (["--max-body", "8M", "--max-buffered-per-client", "4M"], "smaller than --max-body"),
            (["--max-buffered", "2M"], "--max-buffered 2M is smaller than --max-buffered-per-client"),
            (["--max-connections", "10", "--max-connections-per-client", "20"], "must be between 1 and --max-connections (10)"),
            (["--first-request-timeout", "0"], "--first-request-timeout 0 must be between 1 and 3600"),
            (["--reserved-percent", "95"], "--reserved-percent 95 must be between 0 and 90"),
        ] {
            let result = try TestSupport.run("/usr/bin/timeout", ["20", binary] + serve + options)
            #expect(result.status == 2, "\(options)")
            #expect(result.stderr.contains(words), "\(options): \(result.stderr)")
        }
    }
}
