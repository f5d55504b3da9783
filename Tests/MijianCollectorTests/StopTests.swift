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
    /// reads nor writes (nor answers a TLS close_notify) until it is killed.
    static let idleClient = """
        import socket, ssl, sys, time
        port, tls = int(sys.argv[1]), sys.argv[2] == "tls"
        s = socket.create_connection(("127.0.0.1", port))
        if tls:
            context = ssl.create_default_context(cafile=sys.argv[3])
            s = context.wrap_socket(s, server_hostname="127.0.0.1")
        s.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: keep-alive\\r\\n\\r\\n")
        answer = s.recv(4096)
        print("idle" if answer.startswith(b"HTTP/1.1 200") else "answer: %r" % answer, flush=True)
        time.sleep(120)
        """

    /// Seconds from SIGTERM to the server's exit with one idle keep-alive client connected.
    func stopTime(tls: Bool) async throws -> (seconds: Double, status: Int32) {
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
        let client = try Spawned("/usr/bin/python3", ["-c", Self.idleClient, "\(port)", tls ? "tls" : "plain", certificate.certificate])
        defer { client.kill() }
        guard await client.waitForOutput(seconds: 30, { $0.contains("idle") }) else {
            throw MijianError(.io, "the client made no keep-alive request: \(client.output)")
        }
        let stopping = ContinuousClock.now
        server.signal(SIGTERM)
        let status = await server.waitForExit(seconds: 10)
        let elapsed = ContinuousClock.now - stopping
        return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, status ?? -1)
    }

    @Test(arguments: [true, false])
    func anIdleKeepAliveClientDoesNotHoldTheStop(tls: Bool) async throws {
        let (seconds, status) = try await stopTime(tls: tls)
        #expect(status == 0, "exit status after SIGTERM")
        #expect(seconds < 1, "\(tls ? "HTTPS" : "HTTP"): stopped \(seconds) s after SIGTERM")
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
