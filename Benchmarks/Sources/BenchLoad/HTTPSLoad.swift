// The load client of the ingest benchmarks: POSTs prepared envelopes over keep-alive HTTP/1.1
// connections, inside TLS when given a CA to trust (as an agent does), on swift-nio's own event
// loops. Each connection sends its list in order, one request at a time, the next when the
// previous answer has ended, so a machine's chain given to one connection arrives in order.
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

public enum HTTPSLoad {
    /// What a run did: answers by HTTP status (0: the connection broke before an answer), the
    /// time from the first connection to the last answer, and this process's CPU seconds over it.
    public struct Outcome: Sendable {
        public var statuses: [Int: Int]
        public var seconds: Double
        public var cpuSeconds: Double
        public var total: Int { statuses.values.reduce(0, +) }

        /// `202: 1000, 409: 3`.
        public var statusText: String { statuses.keys.sorted().map { "\($0): \(statuses[$0] ?? 0)" }.joined(separator: ", ") }
    }

    /// One connection's work: the port it connects to and the bodies it posts, in order.
    public struct Plan: Sendable {
        public var port: Int
        public var bodies: [[UInt8]]

        public init(port: Int, bodies: [[UInt8]]) {
            self.port = port
            self.bodies = bodies
        }
    }

    /// Connections made from one source address: the collector allows 64 per client address,
    /// and a unit's machines each come from their own.
    public static let connectionsPerAddress = 32

    /// Posts every plan's bodies to `path` on 127.0.0.1, one connection per plan, all at once;
    /// connection c comes from 127.0.1.(1 + c / 32), as that many machines' addresses would.
    /// `trustedCA`: the PEM file of the CA the server's certificate is checked against (TLS);
    /// nil: plain HTTP. `threads`: the client's event loops.
    public static func run(_ plans: [Plan], path: String = "/v1/reports", trustedCA: String?, threads: Int = 1) async throws -> Outcome {
        let context: NIOSSLContext?
        if let trustedCA {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(trustedCA))
            // The certificate is checked against the CA; its name is 127.0.0.1's, the address dialled.
            configuration.certificateVerification = .noHostnameVerification
            configuration.minimumTLSVersion = .tlsv12
            context = try NIOSSLContext(configuration: configuration)
        } else {
            context = nil
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let buffers = plans.map { plan in plan.bodies.map { ByteBuffer(bytes: $0) } }
        let cpuBefore = processCPUSeconds()
        let clock = ContinuousClock()
        let start = clock.now
        var futures: [EventLoopFuture<[Int: Int]>] = []
        for (index, (plan, bodies)) in zip(plans, buffers).enumerated() {
            let loop = group.next()
            let done = loop.makePromise(of: [Int: Int].self)
            let source = try SocketAddress(ipAddress: "127.0.1.\(1 + (index / connectionsPerAddress) % 250)", port: 0)
            let connected = ClientBootstrap(group: loop)
                .bind(to: source)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let context {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(PostSequence(path: path, bodies: bodies, done: done))
                    }
                }
                .connect(host: "127.0.0.1", port: plan.port)
            connected.whenFailure { _ in done.succeed([0: bodies.count]) }
            futures.append(done.futureResult)
        }
        var statuses: [Int: Int] = [:]
        for future in futures {
            for (status, count) in try await future.get() { statuses[status, default: 0] += count }
        }
        let elapsed = clock.now - start
        let cpu = processCPUSeconds() - cpuBefore
        try await group.shutdownGracefully()
        return Outcome(statuses: statuses, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, cpuSeconds: cpu)
    }

    /// User plus system CPU time of this process so far.
    public static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Makes a throwaway CA and a server certificate for 127.0.0.1 with `openssl` in `directory`;
    /// returns the paths of the CA's certificate, the server's chain and its key.
    public static func makeCertificates(in directory: String) throws -> (ca: String, certificate: String, key: String) {
        let script = """
            set -e
            cd "$1"
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj '/CN=bench CA' -keyout ca.key -out ca.pem \
              -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=127.0.0.1' -keyout server.key -out server.csr 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' >server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem 2>/dev/null
            chmod 600 server.key ca.key
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, "sh", directory]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CertificateFailure() }
        return (directory + "/ca.pem", directory + "/server.pem", directory + "/server.key")
    }

    struct CertificateFailure: Error, CustomStringConvertible {
        var description: String { "openssl could not make the benchmark's certificates" }
    }
}

/// One connection: posts its bodies one after the other and counts the answers' statuses.
final class PostSequence: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let path: String
    private let bodies: [ByteBuffer]
    private let done: EventLoopPromise<[Int: Int]>
    private var next = 0
    private var status = 0
    private var counts: [Int: Int] = [:]
    private var finished = false

    init(path: String, bodies: [ByteBuffer], done: EventLoopPromise<[Int: Int]>) {
        self.path = path
        self.bodies = bodies
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
        context.fireChannelActive()
    }

    private func send(_ context: ChannelHandlerContext) {
        guard next < bodies.count else {
            finish()
            context.close(promise: nil)
            return
        }
        let body = bodies[next]
        next += 1
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "Host", value: "127.0.0.1")
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body: break
        case .end:
            counts[status, default: 0] += 1
            send(context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    /// Answers the run once; requests never answered count as status 0.
    private func finish() {
        guard !finished else { return }
        finished = true
        let unanswered = bodies.count - counts.values.reduce(0, +)
        if unanswered > 0 { counts[0, default: 0] += unanswered }
        done.succeed(counts)
    }
}
