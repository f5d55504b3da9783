import Foundation
import Logging
import MijianCollector
import MijianCore
import MijianTestSupport
import Synchronization
import Testing

/// Log lines kept in memory, so a test can read what the server said.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    /// A logger writing here, at `notice` and above.
    var logger: Logger {
        var logger = Logger(label: "collector-test-capture") { _ in CapturingLogHandler(capture: self) }
        logger.logLevel = .notice
        return logger
    }

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    var all: [String] { lines.withLock { $0 } }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .notice

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(event.message) \(fields)")
    }
}

/// A self-signed certificate for 127.0.0.1 made with openssl, a second key that does not match it,
/// and files that are not what they claim to be.
struct TestCertificate {
    let directory: URL
    var certificate: String { directory.appendingPathComponent("cert.pem").path }
    var key: String { directory.appendingPathComponent("key.pem").path }
    var otherKey: String { directory.appendingPathComponent("other-key.pem").path }

    init() throws {
        directory = try TestSupport.temporaryDirectory("collector-tls")
        let made = try TestSupport.run("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=mijian-collector.test", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", directory.appendingPathComponent("key.pem").path, "-out", directory.appendingPathComponent("cert.pem").path,
        ])
        guard made.status == 0 else { throw MijianError(.io, "openssl req failed: \(made.stderr)") }
        let other = try TestSupport.run("/usr/bin/openssl", [
            "genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", directory.appendingPathComponent("other-key.pem").path,
        ])
        guard other.status == 0 else { throw MijianError(.io, "openssl genpkey failed: \(other.stderr)") }
    }

    func file(_ name: String, _ contents: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// curl, the HTTPS client of these tests: `--cacert` trusts only the test certificate.
struct Curl {
    struct Answer {
        var exitStatus: Int32
        var httpStatus: Int
        var body: JSONValue?
        var text: String
        var stderr: String
    }

    let directory: URL

    /// `from`: the local address to connect from (`--interface`).
    func call(_ url: String, body: [UInt8]? = nil, cacert: String?, from source: String? = nil) throws -> Answer {
        let name = UUID().uuidString
        let output = directory.appendingPathComponent("answer-\(name)")
        var arguments = ["-sS", "--max-time", "30", "-o", output.path, "-w", "%{http_code}"]
        if let source { arguments += ["--interface", source] }
        if let cacert { arguments += ["--cacert", cacert] }
        if let body {
            let file = directory.appendingPathComponent("body-\(name)")
            try Data(body).write(to: file)
            arguments += ["-H", "Content-Type: application/json", "--data-binary", "@\(file.path)"]
        }
        let result = try TestSupport.run("/usr/bin/curl", arguments + [url])
        let bytes = (try? Data(contentsOf: output)).map(Array.init) ?? []
        return Answer(
            exitStatus: result.status, httpStatus: Int(result.stdout) ?? 0, body: try? JSONParser().parse(bytes),
            text: String(decoding: bytes, as: UTF8.self), stderr: result.stderr)
    }
}

@Suite("HTTPS: the collector's own TLS on a real loopback server")
struct TLSTests {
    @Test func signedReportOverHTTPSIsStoredAndPlainTextIsNot() async throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 21, hostname: "ws-21", assetID: "JSJ-21", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        let tls = try CollectorTLS(certificatePath: certificate.certificate, keyPath: certificate.key)
        let r0 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        let r0Digest = machine.prev
        let r1 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(2)), issuedAt: TestUnit.day(2))
        let r1Digest = machine.prev
        let curl = Curl(directory: certificate.directory)
        try await LiveClient.with(collector, tls: tls) { client in
            #expect(client.base.hasPrefix("https://127.0.0.1:"))
            let plainBase = client.base.replacingOccurrences(of: "https://", with: "http://")

            let stored = try curl.call(client.base + "/v1/reports", body: r0, cacert: certificate.certificate)
            #expect(stored.exitStatus == 0, "curl: \(stored.stderr)")
            #expect(stored.httpStatus == 202)
            #expect(stored.body?["outcome"]?.stringValue == "first")
            #expect(stored.body?["payload_sha256"]?.stringValue == r0Digest)

            // A client that does not trust the certificate stops at the handshake: this is TLS with our certificate.
            let untrusted = try curl.call(client.base + "/healthz", cacert: nil)
            #expect(untrusted.exitStatus == 60, "curl: \(untrusted.stderr)")

            // Plain HTTP to the TLS port: no answer, nothing stored, counted.
            let plain = try curl.call(plainBase + "/v1/reports", body: r1, cacert: nil)
            #expect(plain.exitStatus != 0)
            #expect(plain.httpStatus != 202)
            #expect(try collector.store.hosts().first?.reportCount == 1)
            // Both refusals are counted once each; the client's handshake failure reaches the server
            // asynchronously, so the page is read until it shows (a bounded number of times).
            var metrics = try curl.call(client.base + "/metrics", cacert: certificate.certificate)
            for _ in 0..<100 where !metrics.text.contains("reason=\"tls-handshake\"} 1") {
                try await Task.sleep(for: .milliseconds(50))
                metrics = try curl.call(client.base + "/metrics", cacert: certificate.certificate)
            }
            #expect(metrics.httpStatus == 200)
            #expect(metrics.text.contains("mijian_collector_refused_total{reason=\"tls-required\"} 1\n"))
            #expect(metrics.text.contains("mijian_collector_refused_total{reason=\"tls-handshake\"} 1\n"))

            // The same report over HTTPS is the next link of the chain.
            let next = try curl.call(client.base + "/v1/reports", body: r1, cacert: certificate.certificate)
            #expect(next.httpStatus == 202)
            #expect(next.body?["outcome"]?.stringValue == "accepted")
            #expect(next.body?["payload_sha256"]?.stringValue == r1Digest)
        }
        let host = try #require(try collector.store.hosts().first)
        #expect(host.reportCount == 2)
        #expect(host.chain.digest == r1Digest)
    }

    @Test func badCertificateOrKeyFilesAreNamed() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let garbage = try certificate.file("garbage.pem", "this is not PEM at all\n")
        let empty = try certificate.file("empty.pem", "")
        let missing = certificate.directory.appendingPathComponent("missing.pem").path
        let directory = certificate.directory.path

        func failure(_ cert: String, _ key: String) -> MijianError? {
            #expect(throws: MijianError.self) { try CollectorTLS(certificatePath: cert, keyPath: key) }
        }
        let noCert = failure(missing, certificate.key)
        #expect(noCert?.code == .notFound)
        #expect(noCert?.message.contains(missing) == true)
        let noKey = failure(certificate.certificate, missing)
        #expect(noKey?.code == .notFound)
        #expect(noKey?.message.contains(missing) == true)
        let unreadable = failure(directory, certificate.key)
        #expect(unreadable?.code == .io)
        #expect(unreadable?.message.contains(directory) == true)
        let garbageCert = failure(garbage, certificate.key)
        #expect(garbageCert?.code == .tls)
        #expect(garbageCert?.message.contains(garbage) == true)
        let keyAsCert = failure(certificate.key, certificate.key)
        #expect(keyAsCert?.code == .tls)
        #expect(keyAsCert?.message.contains(certificate.key) == true)
        let garbageKey = failure(certificate.certificate, garbage)
        #expect(garbageKey?.code == .tls)
        #expect(garbageKey?.message.contains(garbage) == true)
        let emptyKey = failure(certificate.certificate, empty)
        #expect(emptyKey?.code == .tls)
        #expect(emptyKey?.message.contains(empty) == true)
        let mismatch = failure(certificate.certificate, certificate.otherKey)
        #expect(mismatch?.code == .tls)
        #expect(mismatch?.message.contains(certificate.otherKey) == true)
        #expect(mismatch?.message.contains("does not belong") == true)

        #expect(try CollectorTLS.load(certificate: nil, key: nil) == nil)
        #expect(try CollectorTLS.load(certificate: certificate.certificate, key: certificate.key)?.keyPath == certificate.key)
        #expect((#expect(throws: MijianError.self) { try CollectorTLS.load(certificate: certificate.certificate, key: nil) })?.code == .usage)
        #expect((#expect(throws: MijianError.self) { try CollectorTLS.load(certificate: nil, key: certificate.key) })?.code == .usage)
    }

    @Test func serveStopsWithStatusTwoBeforeListening() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let binary = TestSupport.productPath("mijian-collector")
        #expect(FileManager.default.isExecutableFile(atPath: binary))
        let data = certificate.directory.appendingPathComponent("data").path
        let garbage = try certificate.file("garbage.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
        let bad = try TestSupport.run(binary, ["serve", "--data", data, "--listen", "127.0.0.1:0", "--tls-cert", garbage, "--tls-key", certificate.key])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains(garbage))
        #expect(!bad.stderr.contains("listening"))
        let mismatch = try TestSupport.run(binary, ["serve", "--data", data, "--listen", "127.0.0.1:0", "--tls-cert", certificate.certificate, "--tls-key", certificate.otherKey])
        #expect(mismatch.status == 2)
        #expect(mismatch.stderr.contains(certificate.otherKey))
        let half = try TestSupport.run(binary, ["serve", "--data", data, "--listen", "127.0.0.1:0", "--tls-cert", certificate.certificate])
        #expect(half.status == 2)
        #expect(half.stderr.contains("--tls-key"))
    }
}

@Suite("Refusals name the client")
struct RefusalLogTests {
    @Test func everyRefusedPostIsLoggedWithTheClientAddress() async throws {
        let capture = LogCapture()
        let (collector, _) = try TestUnit.collector(logger: capture.logger)
        let machine = try TestMachine(index: 22, hostname: "ws-22", assetID: "JSJ-22", classification: .confidential)
        let stranger = try TestMachine(index: 23, hostname: "ws-23", assetID: "JSJ-23", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        var limits = ServerLimits()
        limits.maxBodyBytes = 64 << 10
        try await LiveClient.with(collector, limits: limits, logger: capture.logger) { client in
            #expect(try await client.post(Array("{\"payloadType\":".utf8)).0 == 400)
            #expect(try await client.post([UInt8](repeating: 0x20, count: (64 << 10) + 1)).0 == 413)
            let foreign = try stranger.envelope(stranger.report(findings: [], issuedAt: TestUnit.day(1)))
            #expect(try await client.post(foreign).0 == 403)
            #expect(try await client.post(try machine.next(findings: [], issuedAt: TestUnit.day(1))).0 == 202)
            #expect(try await client.post(try machine.next(findings: [], issuedAt: TestUnit.day(2))).0 == 202)
            let replay = try machine.envelope(machine.report(findings: [], issuedAt: TestUnit.day(3), seq: 0, prev: ""))
            let (status, body) = try await client.post(replay)
            #expect(status == 409)
            #expect(body?["outcome"]?.stringValue == "replay")
        }
        let lines = capture.all
        for reason in ["malformed", "too-large", "unknown-key"] {
            let line = lines.first { $0.contains("collector.reason=\(reason)") }
            #expect(line?.contains("collector.source=http 127.0.0.1:") == true, "no line for \(reason) with the client: \(lines)")
        }
        let replayLine = lines.first { $0.contains("chain replay") }
        #expect(replayLine?.contains("collector.source=http 127.0.0.1:") == true, "no replay line with the client: \(lines)")
        #expect(try collector.store.hosts().first?.reportCount == 2)
    }
}
