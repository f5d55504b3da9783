import Foundation
import HummingbirdCore
import HummingbirdTLS
import Logging
import MijianCore
import MijianEvidence
import NIOCore
import NIOSSL
import NIOTLS

extension MijianError.Code {
    /// A TLS certificate or key file cannot be used.
    public static let tls = MijianError.Code("collector.tls")
}

/// The server's TLS identity: a PEM certificate chain and its private key, loaded and checked
/// before the server listens, so a bad file stops `serve` with its name instead of failing each
/// connection later.
public struct CollectorTLS: Sendable {
    /// The certificate chain file (leaf first).
    public let certificatePath: String
    /// The private key file.
    public let keyPath: String
    /// The leaf certificate's expiry.
    public let notValidAfter: Date
    /// How long a closing connection waits for the client's close_notify.
    public static let shutdownTimeout = TimeAmount.milliseconds(250)
    /// The checked configuration: TLS 1.2 or newer, no client certificates.
    public let configuration: TLSConfiguration

    /// Largest certificate or key file read, in bytes.
    public static let maxFileBytes = 1 << 20

    /// `--tls-cert` and `--tls-key` together, or neither (plain HTTP); one without the other is a usage error.
    public static func load(certificate: String?, key: String?) throws(MijianError) -> CollectorTLS? {
        switch (certificate, key) {
        case (nil, nil): return nil
        case (let certificate?, let key?): return try CollectorTLS(certificatePath: certificate, keyPath: key)
        case (nil, _?): throw MijianError(.usage, "--tls-key needs --tls-cert (the server's PEM certificate chain)")
        case (_?, nil): throw MijianError(.usage, "--tls-cert needs --tls-key (the PEM private key of that certificate)")
        }
    }

    /// Reads and checks both files: each must be PEM of its kind, and the key must be the certificate's.
    public init(certificatePath: String, keyPath: String) throws(MijianError) {
        let certificateBytes = try Self.readFile(certificatePath, what: "TLS certificate")
        let keyBytes = try Self.readFile(keyPath, what: "TLS private key")
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(certificateBytes)
        } catch {
            throw MijianError(.tls, "the TLS certificate file \(certificatePath) holds no readable PEM certificate (\(error)); give the server's certificate chain, leaf first", path: certificatePath)
        }
        guard let leaf = chain.first else {
            throw MijianError(.tls, "the TLS certificate file \(certificatePath) holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path: certificatePath)
        }
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw MijianError(.tls, "the TLS private key file \(keyPath) holds no readable, unencrypted PEM private key (\(error))", path: keyPath)
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .none
        // A stop closes idle keep-alive connections with close_notify; a client that does not
        // answer it (an agent's pooled connection is not read while idle) would hold the stop for
        // NIOSSL's default 5 s before the unclean close that follows anyway.
        configuration.shutdownTimeout = CollectorTLS.shutdownTimeout
        do {
            // Loading the key into a context checks that it belongs to the leaf certificate.
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw MijianError(.tls, "the TLS private key file \(keyPath) does not belong to the certificate in \(certificatePath) (\(error))", path: keyPath)
        }
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.notValidAfter = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        self.configuration = configuration
    }

    private static func readFile(_ path: String, what: String) throws(MijianError) -> [UInt8] {
        let data: [UInt8]
        do {
            data = try EvidenceFiles.read(path, limit: maxFileBytes)
        } catch where error.code == .tooLarge {
            throw MijianError(.tooLarge, "the \(what) file \(path) is larger than the \(maxFileBytes) bytes a PEM file needs", path: path)
        } catch {
            throw MijianError(error.code, "the \(what) file \(path) cannot be read\(error.errno == nil ? ": " + error.message : "")", path: path, errno: error.errno)
        }
        guard !data.isEmpty else { throw MijianError(.tls, "the \(what) file \(path) is empty", path: path) }
        return Array(data)
    }

    /// The server builder: HTTP/1.1 inside TLS, with a gate that counts plain-text connections
    /// and the connection caps of `limiter` (the same as plain HTTP's).
    func serverBuilder(http: HTTP1Channel.Configuration, metrics: CollectorMetrics, limiter: ConnectionLimiter, logger: Logger) throws -> HTTPServerBuilder {
        let configuration = configuration
        return HTTPServerBuilder { responder in
            LimitedChannel(
                base: PlainTextGateChannel(
                    base: try TLSChannel(HTTP1Channel(responder: responder, configuration: http), tlsConfiguration: configuration), metrics: metrics, logger: logger),
                limiter: limiter)
        }
    }
}

/// Wraps the TLS child channel with two watchers: one in front of the TLS handler that sees the
/// first bytes a client sends (anything that is not a TLS handshake record, such as plain HTTP
/// sent to the TLS port, is counted as `tls-required`), and one behind it that counts a
/// handshake that fails for any other reason (an agent that does not trust the certificate, an
/// old protocol version) as `tls-handshake`. Both log the client's address; TLS closes the
/// connection either way.
struct PlainTextGateChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let metrics: CollectorMetrics
    let logger: Logger

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let metrics = metrics
        let log = self.logger
        return channel.eventLoop.makeCompletedFuture {
            let connection = TLSConnectionState(metrics: metrics, logger: log, client: channel.remoteAddress.map(ClientAddress.text) ?? "unknown")
            try channel.pipeline.syncOperations.addHandler(PlainTextGate(connection: connection), position: .first)
            return connection
        }.flatMap { connection in
            base.setup(channel: channel, logger: logger).flatMapThrowing { value in
                let tls = try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
                try channel.pipeline.syncOperations.addHandler(HandshakeWatch(connection: connection), position: .after(tls))
                return value
            }
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// What the two watchers of one connection share; used on the connection's event loop only.
final class TLSConnectionState: @unchecked Sendable {
    let metrics: CollectorMetrics
    let logger: Logger
    let client: String
    var refused = false
    var handshaken = false

    init(metrics: CollectorMetrics, logger: Logger, client: String) {
        self.metrics = metrics
        self.logger = logger
        self.client = client
    }

    /// Counts and logs the connection's refusal, once.
    func refuse(_ reason: String, _ detail: String) {
        guard !refused, !handshaken else { return }
        refused = true
        metrics.count(refusal: reason)
        logger.notice("connection refused", metadata: ["collector.reason": "\(reason)", "collector.detail": "\(detail)", "collector.client": "\(client)"])
    }
}

/// Looks at the first byte of a connection: TLS records of the handshake start with 22.
final class PlainTextGate: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let connection: TLSConnectionState
    private var looked = false

    init(connection: TLSConnectionState) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !looked {
            let buffer = unwrapInboundIn(data)
            if let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
                looked = true
                if first != 0x16 { connection.refuse("tls-required", "the client sent plain text to the TLS port (first byte \(first))") }
            }
        }
        context.fireChannelRead(data)
    }
}

/// Behind the TLS handler: notes a completed handshake and counts one that failed.
final class HandshakeWatch: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let connection: TLSConnectionState

    init(connection: TLSConnectionState) { self.connection = connection }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { connection.handshaken = true }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOSSLError || error is BoringSSLError { connection.refuse("tls-handshake", "the TLS handshake failed: \(error)") }
        context.fireErrorCaught(error)
    }
}

/// A client's address as logs show it: `IP:PORT`.
enum ClientAddress {
    static func text(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// The client the per-client limits count: an IPv4 address, or an IPv6 client's /64, which
    /// one client holds whole (as the refusal table counts it).
    static func key(_ address: SocketAddress?) -> String {
        address.map { CollectorStore.refusalAddress(text($0)) } ?? "unknown"
    }
}
