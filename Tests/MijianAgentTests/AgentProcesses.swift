#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianEvidence
import MijianTestSupport
import Synchronization

/// Text a child process writes, collected as it arrives.
final class OutputCollector: Sendable {
    private let text = Mutex<String>("")

    func attach(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                return
            }
            text.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
    }

    var all: String { text.withLock { $0 } }
}

/// Polls `condition` every 100 ms until it holds or `seconds` pass; sleeps without holding a
/// thread of the shared pool, which in-process servers of other suites need.
func eventually(_ seconds: Double, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return try condition()
}

/// A machine for the agent: a key in a state directory, a host file, an agent.yaml.
struct AgentMachine {
    let directory: URL
    var state: String { directory.appendingPathComponent("state").path }
    var spool: String { directory.appendingPathComponent("state/spool").path }
    var config: String { directory.appendingPathComponent("agent.yaml").path }
    var hostFile: String { directory.appendingPathComponent("host.yaml").path }

    init() throws {
        directory = try TestSupport.temporaryDirectory("agent-machine")
        try sh(TestSupport.productPath("mijian"), ["keys", "init", "--key-dir", state])
        try Data("asset_id: JSJ-AGENT-1\nclassification: 秘密\nresponsible: 张三\nunit: 测试单位\n".utf8).write(to: URL(fileURLWithPath: hostFile))
    }

    /// Writes agent.yaml; the USB watch is off unless the text says otherwise (it has tests of its
    /// own, and on a machine without a USB bus its error event asks for a report of its own).
    func writeConfig(_ yaml: String) throws {
        let ended = yaml.hasSuffix("\n") ? yaml : yaml + "\n"
        let text = yaml.contains("usb:") ? yaml : ended + "usb: {enabled: false}\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: config))
    }

    /// An enrolment request for the collector.
    func enrolmentRequest() throws -> String {
        let path = directory.appendingPathComponent("request.json").path
        try sh(TestSupport.productPath("mijian"), ["enroll", "--key-dir", state, "--host-file", hostFile, "--output", path])
        return path
    }

    /// The spooled reports, in chain order: (file name, payload).
    func spooled(in directory: String? = nil) throws -> [(name: String, payload: JSONValue, digest: String)] {
        let dir = directory ?? spool
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".dsse.json") && !$0.hasPrefix(".") }.sorted()
        return try names.compactMap { name in
            guard let data = FileManager.default.contents(atPath: "\(dir)/\(name)") else { return nil }
            let envelope = try Envelope.parse(Array(data))
            return (name, try JSONParser().parse(envelope.payload), envelope.payloadSHA256)
        }
    }
}

/// `mijian run` as a child process.
final class AgentProcess: Sendable {
    let process: Process
    let log = OutputCollector()

    init(_ machine: AgentMachine, policy: String? = nil, environment: [String: String] = [:], prefix: [String] = []) throws {
        let process = Process()
        var arguments = ["run", "--config", machine.config, "--key-dir", machine.state, "--host-file", machine.hostFile]
        if let policy { arguments += ["--policy", policy] }
        if prefix.isEmpty {
            process.executableURL = URL(fileURLWithPath: TestSupport.productPath("mijian"))
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: prefix[0])
            process.arguments = Array(prefix.dropFirst()) + [TestSupport.productPath("mijian")] + arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = nil
        env["WATCHDOG_USEC"] = nil
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        log.attach(errors)
        try process.run()
        self.process = process
    }

    var pid: Int32 { process.processIdentifier }

    func signal(_ number: Int32) { _ = kill(process.processIdentifier, number) }

    /// Waits for the exit; nil when it did not come within `seconds`.
    func waitForExit(seconds: Double) async -> Int32? {
        guard await eventually(seconds, { !process.isRunning }) else { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func kill9() {
        signal(SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning {
            _ = kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A unix datagram socket standing in for systemd's NOTIFY_SOCKET (a path, or an abstract name with `@`).
final class NotifySocket {
    let fd: Int32
    let name: String

    init(name: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MijianError(.io, "socket", errno: errno) }
        self.name = name
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let count = bytes.count
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for index in 0..<count { raw[index] = bytes[index] } }
        let length = socklen_t(2 + count)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw MijianError(.io, "bind \(name)", errno: errno) }
    }

    deinit {
        close(fd)
        if name.hasPrefix("/") { unlink(name) }
    }

    /// Every message that arrives within `seconds`, until `until` returns true for the collected list.
    func receive(seconds: Double, until: ([String]) -> Bool) async -> [String] {
        var messages: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline, !until(messages) {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 0) > 0 else {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { messages.append(String(decoding: buffer[0..<count], as: UTF8.self)) }
        }
        return messages
    }
}

/// `mijian-collector serve` over TLS on a fixed loopback port (so it can be restarted on the same one).
final class CollectorProcess: Sendable {
    let process: Process
    let log = OutputCollector()

    init(data: String, port: Int, certificate: String, key: String) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.productPath("mijian-collector"))
        process.arguments = ["serve", "--data", data, "--listen", "127.0.0.1:\(port)", "--tls-cert", certificate, "--tls-key", key]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        log.attach(errors)
        try process.run()
        self.process = process
        let log = self.log
        guard await eventually(30, { log.all.contains("listening on 127.0.0.1:\(port)") }) else {
            kill(process.processIdentifier, SIGKILL)
            throw MijianError(.io, "the collector did not start: \(log.all)")
        }
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }

    /// `mijian-collector hosts --format json` for this data directory.
    static func hosts(data: String) throws -> [JSONValue] {
        let out = try sh(TestSupport.productPath("mijian-collector"), ["hosts", "--data", data, "--format", "json"])
        let parsed = try JSONParser().parse(Array(out.utf8))
        return parsed["hosts"]?.arrayValue ?? parsed.arrayValue ?? []
    }

    /// A loopback port nobody listens on now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw MijianError(.io, "no free port", errno: errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A self-signed certificate for 127.0.0.1 (the office's CA, as far as the agent is concerned).
func makeCertificate(in directory: URL) throws -> (certificate: String, key: String) {
    let certificate = directory.appendingPathComponent("cert.pem").path
    let key = directory.appendingPathComponent("key.pem").path
    try sh("/usr/bin/openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-subj", "/CN=mijian-collector.test", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate,
    ])
    return (certificate, key)
}
