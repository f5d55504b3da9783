#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Synchronization
import Testing

/// `mijian-collector serve` as systemd stops it: SIGTERM while a client keeps an idle
/// keep-alive connection open, as a delivering agent does between reports.
@Suite("mijian-collector serve stops on SIGTERM", .serialized)
struct StopTests {
    /// A client that makes one request on a keep-alive connection, says `idle`, and then neither
    /// reads nor writes (nor answers a TLS close_notify) until it is killed. It watches, every
    /// millisecond, the kernel's state of its socket and the server process, and says when (on
    /// CLOCK_MONOTONIC, in seconds) the server's FIN arrived (`closed T`) and the server exited
    /// (`exited T`): the times are taken here, not by the test, whose tasks may wait for a thread
    /// while other suites run.
    static let idleClient = """
        import socket, ssl, sys, time
        port, tls, pid = int(sys.argv[1]), sys.argv[2] == "tls", sys.argv[4]
        s = socket.create_connection(("127.0.0.1", port))
        if tls:
            context = ssl.create_default_context(cafile=sys.argv[3])
            s = context.wrap_socket(s, server_hostname="127.0.0.1")
        s.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: keep-alive\\r\\n\\r\\n")
        answer = s.recv(4096)
        print("idle" if answer.startswith(b"HTTP/1.1 200") else "answer: %r" % answer, flush=True)
        def gone():
            try:
                with open("/proc/%s/stat" % pid) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
            except OSError:
                return True
        closed = exited = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (closed and exited):
            # TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LAST_ACK: the server closed its side.
            if not closed and s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] in (7, 8, 9):
                closed = True
                print("closed %.6f" % time.monotonic(), flush=True)
            if not exited and gone():
                exited = True
                print("exited %.6f" % time.monotonic(), flush=True)
            time.sleep(0.001)
        time.sleep(120)
        """

    /// Seconds from SIGTERM to the server closing the idle client's connection and to its exit,
    /// as the client saw them; nil for what did not happen within 10 s.
    func stopTimes(tls: Bool) async throws -> (closed: Double?, exited: Double?, status: Int32) {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let data = try TestSupport.temporaryDirectory("collector-stop").path
        let port = try Self.freePort()
        var arguments = ["serve", "--data", data, "--listen", "127.0.0.1:\(port)"]
        if tls { arguments += ["--tls-cert", certificate.certificate, "--tls-key", certificate.key] }
        let server = try Spawned(TestSupport.productPath("mijian-collector"), arguments)
        defer { server.kill() }
        guard await server.waitForOutput(seconds: 30, { $0.contains("listening on 127.0.0.1:\(port)") }) else {
            throw MijianError(.io, "the collector did not start: \(server.output)")
        }
        let client = try Spawned(
            "/usr/bin/python3", ["-c", Self.idleClient, "\(port)", tls ? "tls" : "plain", certificate.certificate, "\(server.process.processIdentifier)"])
        defer { client.kill() }
        guard await client.waitForOutput(seconds: 30, { $0.contains("idle") }) else {
            throw MijianError(.io, "the client made no keep-alive request: \(client.output)")
        }
        #expect(!client.output.contains("closed"), "the server closed the idle connection before it was asked to stop")
        let signalled = Self.monotonicNow()
        server.signal(SIGTERM)
        let status = await server.waitForExit(seconds: 10)
        _ = await client.waitForOutput(seconds: 2) { $0.contains("exited") }
        func seen(_ word: String) -> Double? {
            for line in client.output.split(separator: "\n") where line.hasPrefix(word + " ") {
                if let time = Double(line.dropFirst(word.count + 1)) { return time - signalled }
            }
            return nil
        }
        return (seen("closed"), seen("exited"), status ?? -1)
    }

    /// CLOCK_MONOTONIC in seconds, the clock of Python's `time.monotonic()`.
    static func monotonicNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// The idle connection is closed at once (TLS: close_notify, then at most 250 ms for the
    /// client's answer), and the process exits with 0 within 1 s of SIGTERM.
    @Test(arguments: [true, false])
    func anIdleKeepAliveClientDoesNotHoldTheStop(tls: Bool) async throws {
        let (closed, exited, status) = try await stopTimes(tls: tls)
        let scheme = tls ? "HTTPS" : "HTTP"
        #expect(status == 0, "exit status after SIGTERM")
        let closedAfter = try #require(closed, "\(scheme): the client never saw its connection closed")
        let exitedAfter = try #require(exited, "\(scheme): the client never saw the server exit")
        #expect(closedAfter < 1, "\(scheme): the idle connection was closed \(closedAfter) s after SIGTERM")
        #expect(exitedAfter < 1, "\(scheme): the server exited \(exitedAfter) s after SIGTERM")
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MijianError(.io, "socket", errno: errno) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { throw MijianError(.io, "bind", errno: errno) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A child process whose standard output and error are collected as they come.
final class Spawned: Sendable {
    let process: Process
    private let text = Mutex<String>("")

    init(_ path: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        self.process = process
        pipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                return
            }
            self.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var output: String { text.withLock { $0 } }

    func waitForOutput(seconds: Double, _ condition: (String) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition(output) { return true }
            if !process.isRunning { return condition(output) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(output)
    }

    func signal(_ number: Int32) { _ = Glibc.kill(process.processIdentifier, number) }

    /// The exit status, or nil when it is still running after `seconds`.
    func waitForExit(seconds: Double) async -> Int32? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func kill() {
        guard process.isRunning else { return }
        signal(SIGKILL)
        process.waitUntilExit()
    }

    deinit { kill() }
}
