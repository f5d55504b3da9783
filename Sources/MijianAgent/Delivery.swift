#if canImport(Glibc)
import Glibc
#endif
import AsyncHTTPClient
import Foundation
import Logging
import MijianCore
import MijianEvidence
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// What the collector (or the drop directory) made of one envelope.
public enum DeliveryOutcome: Sendable, Equatable {
    /// Stored (or already stored, byte for byte): the envelope leaves the spool.
    case delivered(String)
    /// Refused for good (a fork, a replay, a malformed envelope): moved aside, told in `agent.health`.
    case refused(String)
    /// Not now (network, server error, key not yet enrolled): try again later.
    case retry(String)
}

/// Exponential back-off with full jitter between `base` and `cap`.
public struct Backoff: Sendable {
    /// The first wait.
    public var base: Duration = .seconds(1)
    /// The longest wait.
    public var cap: Duration = .seconds(300)
    /// Failures in a row.
    public private(set) var failures = 0

    /// Starts with no failure.
    public init(base: Duration = .seconds(1), cap: Duration = .seconds(300)) {
        self.base = base
        self.cap = cap
    }

    /// Counts a failure and returns how long to wait: a random time between half and all of
    /// `base · 2^failures`, at most `cap`, so agents that lost the collector together do not return together.
    public mutating func next() -> Duration {
        var random = SystemRandomNumberGenerator()
        return next(using: &random)
    }

    /// `next()` with the jitter drawn from `random` (a seeded one in tests).
    public mutating func next<R: RandomNumberGenerator>(using random: inout R) -> Duration {
        let exponent = min(failures, 20)
        failures += 1
        let ceiling = min(Backoff.seconds(base) * pow(2, Double(exponent)), Backoff.seconds(cap))
        return .milliseconds(Int64(ceiling * 1000 * Double.random(in: 0.5...1.0, using: &random)))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// A success resets the back-off.
    public mutating func reset() { failures = 0 }
}

/// Sends one envelope somewhere.
public protocol ReportTransport: Sendable {
    /// `https` or `drop_dir`.
    var mode: String { get }
    /// Delivers one envelope of the spool.
    func deliver(_ entry: SpoolEntry, bytes: [UInt8]) async -> DeliveryOutcome
    /// Releases connections.
    func shutdown() async
}

/// HTTPS POST to `<url>/v1/reports`, trusting only the configured CA.
public final class HTTPSTransport: ReportTransport {
    /// `https`.
    public let mode = "https"
    private let client: HTTPClient
    private let endpoint: String
    private let logger: Logger

    /// The largest CA file read: a bundle of a few hundred certificates.
    public static let maxCAFileBytes = 1 << 20

    /// A client for `url` that trusts only the certificates in `caFile` (read now, so a bad file stops the start).
    public init(url: String, caFile: String, logger: Logger) throws(MijianError) {
        let roots: [NIOSSLCertificate]
        // The size is checked on the open descriptor before a byte is read.
        let pem: [UInt8]
        do {
            pem = try EvidenceFiles.read(caFile, limit: HTTPSTransport.maxCAFileBytes)
        } catch {
            throw MijianError(error.code == .tooLarge ? .tooLarge : .configInvalid, "delivery.ca_file \(caFile): \(error.message)", path: caFile, errno: error.errno)
        }
        do {
            roots = try NIOSSLCertificate.fromPEMBytes(pem)
        } catch {
            throw MijianError(.configInvalid, "delivery.ca_file \(caFile): not a readable PEM certificate file (\(error))", path: caFile)
        }
        guard !roots.isEmpty else { throw MijianError(.configInvalid, "delivery.ca_file \(caFile) holds no certificate", path: caFile) }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(roots)
        tls.minimumTLSVersion = .tlsv12
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(5), read: .seconds(30))
        configuration.redirectConfiguration = .disallow
        // A connection that fails fails this attempt at once: left on, the pool retries it inside
        // the request until the connect timeout, adding seconds to every back-off step.
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        endpoint = url + "/v1/reports"
        self.logger = logger
    }

    /// POSTs the envelope; only a 202 naming this payload's digest (or a 409 saying the collector
    /// already holds this very report) counts as delivered.
    public func deliver(_ entry: SpoolEntry, bytes: [UInt8]) async -> DeliveryOutcome {
        guard let envelope = try? Envelope.parse(bytes) else { return .refused("the spooled file is not an envelope") }
        let digest = envelope.payloadSHA256
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let status: Int
        let body: JSONValue?
        do {
            let response = try await client.execute(request, timeout: .seconds(40))
            status = Int(response.status.code)
            var buffer = try await response.body.collect(upTo: 1 << 20)
            body = try? JSONParser(maxDepth: 8, maxBytes: 1 << 20).parse(buffer.readBytes(length: buffer.readableBytes) ?? [])
        } catch {
            return .retry("\(endpoint): \(DeliveryFailure.describe(error))")
        }
        return Self.judge(status: status, body: body, digest: digest)
    }

    /// The decision on a collector's answer (pure, for tests).
    public static func judge(status: Int, body: JSONValue?, digest: String) -> DeliveryOutcome {
        let outcome = body?["outcome"]?.stringValue
        let answered = body?["payload_sha256"]?.stringValue
        let reason = body?["error"]?.stringValue ?? outcome ?? "no reason given"
        let detail = body?["detail"]?.stringValue.map { ": \($0)" } ?? ""
        switch status {
        case 202:
            guard answered == digest else { return .retry("202 named digest \(answered ?? "(none)"), not this report's \(digest)") }
            return .delivered(outcome ?? "accepted")
        case 409:
            // The collector answers an exact copy with 202 `duplicate`; a 409 `duplicate` is taken the same way.
            if outcome == "duplicate", answered == digest { return .delivered("duplicate") }
            return .refused("409 \(reason)\(detail)")
        case 400, 413, 415:
            return .refused("\(status) \(reason)\(detail)")
        default:
            // 403 (key not enrolled yet, revoked), 408, 429, 5xx: the office can fix it; keep the report.
            return .retry("\(status) \(reason)\(detail)")
        }
    }

    /// Closes the connections.
    public func shutdown() async {
        try? await client.shutdown()
    }
}

/// What went wrong with a delivery, in plain words: NIO's own text for a socket error reads
/// "connection reset (error set): Connection refused) (errno: 111)".
public enum DeliveryFailure {
    /// The words for a failed request.
    public static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return socket(error.errnoCode) }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "no connection within the connect timeout (the collector's host does not answer)"
            case .readTimeout: return "the collector did not answer within the read timeout"
            case .deadlineExceeded: return "the collector did not answer within the request's deadline"
            case .remoteConnectionClosed: return "the collector closed the connection before answering"
            default: return "\(error)"
            }
        }
        if let error = error as? NIOSSLError { return "TLS: \(error)" }
        if let error = error as? NIOConnectionError {
            if let dns = error.dnsAError ?? error.dnsAAAAError { return "the collector's name \(error.host) does not resolve: \(dns)" }
            let tried = error.connectionErrors.map { "\($0.target): \(describe($0.error))" }
            return tried.isEmpty ? "no address of \(error.host) could be tried" : tried.joined(separator: "; ")
        }
        return "\(error)"
    }

    /// A socket's errno as words, with its number.
    public static func socket(_ code: Int32) -> String {
        let words: String
        switch code {
        case ECONNREFUSED: words = "connection refused: nothing listens at that address and port"
        case ECONNRESET: words = "the connection was reset by the other end"
        case EHOSTUNREACH: words = "no route to the collector's host"
        case ENETUNREACH: words = "the collector's network is unreachable"
        case ETIMEDOUT: words = "the connection timed out"
        default: words = String(cString: strerror(code))
        }
        return "\(words) (errno \(code))"
    }
}

/// Copies envelopes into a directory (atomically, under their spool names) for an officer to
/// carry to `mijian-collector ingest`. Only envelopes the sealer verified as this machine's
/// reports reach it (see `Sealer.nextForDelivery`).
public struct DropDirectoryTransport: ReportTransport {
    /// `drop_dir`.
    public let mode = "drop_dir"
    /// The mode of every file written: the officer who carries the medium reads them as root or
    /// as the medium's owner; nobody else on this machine needs to.
    public static let fileMode: mode_t = 0o600
    /// The directory.
    public let directory: String

    /// A transport into `directory`.
    public init(directory: String) { self.directory = directory }

    /// Writes the envelope into the directory; a full or missing medium means try again later.
    public func deliver(_ entry: SpoolEntry, bytes: [UInt8]) async -> DeliveryOutcome {
        var info = stat()
        let directory = self.directory
        guard (try? Syscall.call("cannot stat \(directory)", path: directory, { stat(directory, &info) })) != nil,
            (info.st_mode & S_IFMT) == S_IFDIR
        else { return .retry("the drop directory \(directory) is not there (medium not mounted?)") }
        do {
            // Written relative to the directory's descriptor: a new file (O_EXCL | O_NOFOLLOW) renamed into place.
            try DirectoryHandle.open(directory).write(bytes, to: entry.name, mode: DropDirectoryTransport.fileMode)
            return .delivered("copied")
        } catch {
            return .retry("\(error)")
        }
    }

    /// Nothing to close.
    public func shutdown() async {}
}


/// The delivery service: sends spooled envelopes in chain order, one at a time, backing off
/// while the collector is away; at shutdown it keeps trying for `flushTime`, then leaves the
/// rest in the spool for the next start. Its waits run on `clock`, its jitter comes from `random`.
public struct DeliveryService<C: Clock>: Service where C.Duration == Duration {
    let sealer: Sealer
    let transport: any ReportTransport
    let wakeup: Wakeup<WakeReason>
    let logger: Logger
    let flushTime: Duration
    let maxBackoff: Duration
    let clock: C
    let random: SeededRandom?

    /// A delivery service; `wakeup` is fired when a report is sealed. Without `random`, the
    /// jitter is the system's.
    public init(
        sealer: Sealer, transport: any ReportTransport, wakeup: Wakeup<WakeReason>, logger: Logger, flushTime: Duration = .seconds(2),
        maxBackoff: Duration = .seconds(300), clock: C, random: SeededRandom? = nil
    ) {
        self.sealer = sealer
        self.transport = transport
        self.wakeup = wakeup
        self.logger = logger
        self.flushTime = flushTime
        self.maxBackoff = maxBackoff
        self.clock = clock
        self.random = random
    }

    /// While the spool refuses reports (they are held in memory), writing them is tried again this
    /// often. Otherwise nothing is looked at until a report is sealed: only the sealer adds to the spool.
    public static var idleLook: Duration { .seconds(5) }

    /// Runs until graceful shutdown, then flushes briefly.
    public func run() async throws {
        var backoff = Backoff(cap: maxBackoff)
        var delivered = 0
        var lastError: String?
        var lastSuccess: Date?
        var shutdownAt: C.Instant?
        var seeded = random
        var system = SystemRandomNumberGenerator()
        let clock = self.clock
        await withGracefulShutdownHandler {
            while true {
                if shutdownAt == nil, Task.isShuttingDownGracefully { shutdownAt = clock.now }
                if let shutdownAt, shutdownAt.duration(to: clock.now) > flushTime { break }
                if Task.isCancelled { break }
                guard let next = await sealer.nextForDelivery() else {
                    if shutdownAt != nil { break }
                    _ = await wakeup.wait(timeout: await sealer.holdsUnwritten ? Self.idleLook : nil, clock: clock)
                    continue
                }
                let entry = next.entry
                let outcome = await transport.deliver(entry, bytes: next.bytes)
                switch outcome {
                case .delivered(let how):
                    await sealer.delivered(entry)
                    delivered += 1
                    lastSuccess = sealer.now()
                    backoff.reset()
                    logger.info("delivered report seq \(entry.seq) (\(how))", metadata: ["agent.epoch": "\(entry.epoch)", "agent.seq": "\(entry.seq)"])
                case .refused(let why):
                    logger.error("the collector refused report seq \(entry.seq): \(why)", metadata: ["agent.seq": "\(entry.seq)"])
                    await sealer.reject(entry, why: why)
                    lastError = why
                case .retry(let why):
                    lastError = why
                    let wait: Duration
                    if var generator = seeded {
                        wait = backoff.next(using: &generator)
                        seeded = generator
                    } else {
                        wait = backoff.next(using: &system)
                    }
                    logger.warning("report seq \(entry.seq) not delivered, retrying in \(wait): \(why)", metadata: ["agent.seq": "\(entry.seq)"])
                    await sealer.setDeliveryStatus(status(delivered, lastError, lastSuccess, backoff.failures))
                    if shutdownAt != nil { break }
                    // A seal in the meantime must not cut the back-off short; shutdown does.
                    let deadline = clock.now.advanced(by: wait)
                    while clock.now < deadline, !Task.isShuttingDownGracefully, !Task.isCancelled {
                        if await wakeup.wait(timeout: clock.now.duration(to: deadline), clock: clock) == .shutdown { break }
                    }
                    continue
                }
                await sealer.setDeliveryStatus(status(delivered, lastError, lastSuccess, backoff.failures))
            }
        } onGracefulShutdown: {
            wakeup.fire(.shutdown)
        }
        await transport.shutdown()
    }

    private func status(_ delivered: Int, _ lastError: String?, _ lastSuccess: Date?, _ failures: Int) -> JSONValue {
        [
            "mode": .string(transport.mode), "delivered": .integer(delivered),
            "failures_in_a_row": .integer(failures), "last_error": .optional(lastError),
            "last_success_at": .optional(lastSuccess.map { RFC3339.string(from: $0) }),
        ]
    }
}

extension DeliveryService where C == ContinuousClock {
    /// A delivery service on the continuous clock, with the system's jitter.
    public init(
        sealer: Sealer, transport: any ReportTransport, wakeup: Wakeup<WakeReason>, logger: Logger, flushTime: Duration = .seconds(2),
        maxBackoff: Duration = .seconds(300)
    ) {
        self.init(
            sealer: sealer, transport: transport, wakeup: wakeup, logger: logger, flushTime: flushTime, maxBackoff: maxBackoff,
            clock: ContinuousClock())
    }
}
