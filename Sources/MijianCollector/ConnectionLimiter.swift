import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// Caps the connections of the HTTP API per client (an IPv4 address, an IPv6 /64) and in total.
///
/// A connection that has not yet sent a whole request head is *fresh*. When a client reaches its
/// cap, or the collector its total, the oldest fresh connection (of that client, or of anyone) is
/// closed to make room. When none is fresh, a client at its cap has its new connection closed;
/// at the total, the oldest connection of the client holding the most makes room, as long as
/// it holds at least two more than the newcomer's client; otherwise the new connection is closed. A connection
/// that sends no request head within the first-request time is closed. So idle connections, which
/// cost nothing to open, can never keep the descriptors or the memory that enrolled machines
/// need, and a machine that connects and sends its report at once is never the one closed.
public final class ConnectionLimiter: Sendable {
    /// One open connection.
    struct Entry {
        let client: String
        let channel: any Channel
        /// Order of opening: lower is older.
        let order: UInt64
        var fresh = true
        /// The client closed its side (it may still read).
        var hungUp = false
    }

    struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var perClient: [String: Int] = [:]
        var nextOrder: UInt64 = 0
    }

    /// Why a connection was closed by the limiter, as `/metrics` counts it.
    enum Closing: String {
        case perClient = "connections-per-client"
        case total = "connections-total"
        case firstRequest = "first-request-timeout"
    }

    /// Most connections open at once.
    public let maxConnections: Int
    /// Most connections open at once from one client address.
    public let maxConnectionsPerClient: Int
    /// Time a new connection has to send its first request head.
    public let firstRequestTimeout: Duration
    private let state = Mutex(State())
    private let metrics: CollectorMetrics
    private let notices: NoticeThrottle

    /// A limiter with the limits' caps that counts what it closes in `metrics`.
    public init(limits: ServerLimits, metrics: CollectorMetrics, logger: Logger) {
        maxConnections = max(1, limits.maxConnections)
        maxConnectionsPerClient = max(1, min(limits.maxConnectionsPerClient, limits.maxConnections))
        firstRequestTimeout = limits.firstRequestTimeout
        self.metrics = metrics
        notices = NoticeThrottle(logger: logger)
    }

    /// Connections open now.
    public var openConnections: Int { state.withLock { $0.entries.count } }

    /// Registers a new connection; returns false when it must be closed at once. Connections
    /// evicted to make room for it are closed here.
    func open(_ channel: any Channel) -> Bool {
        let client = ClientAddress.key(channel.remoteAddress)
        let id = ObjectIdentifier(channel)
        var evicted: [(any Channel, Closing)] = []
        let admitted = state.withLock { state -> Bool in
            if state.perClient[client, default: 0] >= maxConnectionsPerClient {
                guard let victim = Self.oldestFresh(state, client: client).flatMap({ Self.remove(&state, $0) }) else { return false }
                evicted.append((victim, .perClient))
            }
            if state.entries.count >= maxConnections {
                let candidate = Self.oldestFresh(state, client: nil) ?? Self.oldestOfHeaviest(state, newcomer: client)
                guard let victim = candidate.flatMap({ Self.remove(&state, $0) }) else { return false }
                evicted.append((victim, .total))
            }
            state.entries[id] = Entry(client: client, channel: channel, order: state.nextOrder)
            state.nextOrder &+= 1
            state.perClient[client, default: 0] += 1
            return true
        }
        for (victim, reason) in evicted {
            closed(reason, client: ClientAddress.key(victim.remoteAddress), detail: "an idle connection that sent no request was closed to make room")
            victim.close(promise: nil)
        }
        if !admitted {
            let total = state.withLock { $0.entries.count }
            let reason: Closing = total >= maxConnections ? .total : .perClient
            closed(reason, client: client, detail: "a new connection was closed: every connection of \(reason == .total ? "the collector" : "this client") is in use")
        }
        return admitted
    }

    /// The connection sent a whole request head: it is no longer the first to be closed.
    func requested(_ channel: any Channel) {
        state.withLock { $0.entries[ObjectIdentifier(channel)]?.fresh = false }
    }

    /// The client closed its side of the connection.
    func hungUp(_ channel: any Channel) {
        state.withLock { $0.entries[ObjectIdentifier(channel)]?.hungUp = true }
    }

    /// Whether the client has gone: closed its side, or the connection is closed.
    func isGone(_ channel: any Channel) -> Bool {
        state.withLock { $0.entries[ObjectIdentifier(channel)].map(\.hungUp) ?? true }
    }

    /// The connection sent no request in time: counts it (it is closed by the caller).
    func timedOut(_ channel: any Channel) {
        closed(.firstRequest, client: ClientAddress.key(channel.remoteAddress), detail: "no request within \(firstRequestTimeout)")
    }

    /// The connection is gone.
    func closed(_ channel: any Channel) {
        state.withLock { state in
            _ = Self.remove(&state, ObjectIdentifier(channel))
        }
    }

    private func closed(_ reason: Closing, client: String, detail: String) {
        metrics.count(refusal: reason.rawValue)
        notices.note(reason.rawValue, client: client, detail: detail)
    }

    private static func oldestFresh(_ state: State, client: String?) -> ObjectIdentifier? {
        oldest(state) { $0.fresh && (client == nil || $0.client == client) }
    }

    private static func oldest(_ state: State, where matches: (Entry) -> Bool) -> ObjectIdentifier? {
        var best: (ObjectIdentifier, UInt64)?
        for (id, entry) in state.entries where matches(entry) {
            if best.map({ entry.order < $0.1 }) ?? true { best = (id, entry.order) }
        }
        return best?.0
    }

    /// When every connection has sent a request: the oldest connection of the client holding
    /// the most, if it holds at least two more than the newcomer's client. So a few addresses
    /// that fill the total with requests they never finish cannot keep out a machine that holds
    /// none, and a client never loses a connection to make room for a heavier one.
    private static func oldestOfHeaviest(_ state: State, newcomer: String) -> ObjectIdentifier? {
        guard let (heaviest, count) = state.perClient.max(by: { $0.value < $1.value }),
            count >= state.perClient[newcomer, default: 0] + 2
        else { return nil }
        return oldest(state) { $0.client == heaviest }
    }

    private static func remove(_ state: inout State, _ id: ObjectIdentifier) -> (any Channel)? {
        guard let entry = state.entries.removeValue(forKey: id) else { return nil }
        let left = state.perClient[entry.client, default: 1] - 1
        state.perClient[entry.client] = left > 0 ? left : nil
        return entry.channel
    }
}

/// Logs connections closed by the limiter at most once per reason every ten seconds, with how
/// many were closed since the last line: a flood is said, but does not become a flood of log lines.
final class NoticeThrottle: Sendable {
    private struct Slot {
        var last: ContinuousClock.Instant
        var suppressed: Int
    }

    private let logger: Logger
    private let interval: Duration
    private let slots = Mutex<[String: Slot]>([:])

    init(logger: Logger, interval: Duration = .seconds(10)) {
        self.logger = logger
        self.interval = interval
    }

    func note(_ reason: String, client: String, detail: String) {
        let now = ContinuousClock.now
        let suppressed: Int? = slots.withLock { slots in
            if var slot = slots[reason], now - slot.last < interval {
                slot.suppressed += 1
                slots[reason] = slot
                return nil
            }
            let earlier = slots[reason]?.suppressed ?? 0
            slots[reason] = Slot(last: now, suppressed: 0)
            return earlier
        }
        guard let suppressed else { return }
        logger.notice("connection closed", metadata: [
            "collector.reason": "\(reason)", "collector.detail": "\(detail)", "collector.client": "\(client)",
            "collector.more_since_last_line": "\(suppressed)",
        ])
    }
}

/// Wraps the child channel (plain HTTP or TLS) with a `ConnectionGuard` that registers the
/// connection with the limiter and watches for its first request head.
struct LimitedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let limiter: ConnectionLimiter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let limiter = limiter
        // Each connection's bytes wait in NIO (a few reads' worth) before a body takes them from
        // the budget: reads of at most 16 KiB keep that part of every connection's memory small.
        try? channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 16 << 10))
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let watcher = ConnectionGuard(limiter: limiter)
            // Behind TLS the guard reads the decrypted bytes; without it, the bytes as they come.
            if let tls = try? operations.handler(type: NIOSSLServerHandler.self) {
                try operations.addHandler(watcher, position: .after(tls))
            } else {
                try operations.addHandler(watcher, position: .first)
            }
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Registers its connection with the limiter (closing it when there is no room), closes it when
/// no request head (the blank line that ends the header block) arrives in time, and tells the
/// limiter when one has arrived and when the connection is gone.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limiter: ConnectionLimiter
    private var registered = false
    private var requested = false
    /// The last bytes seen, to find CR LF CR LF across reads.
    private var tail: UInt32 = 0
    private var timer: Scheduled<Void>?

    init(limiter: ConnectionLimiter) { self.limiter = limiter }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        guard limiter.open(channel) else {
            context.close(promise: nil)
            return
        }
        registered = true
        let limiter = limiter
        let nanoseconds = limiter.firstRequestTimeout.components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let delay = TimeAmount.nanoseconds(nanoseconds.overflow ? .max : nanoseconds.partialValue)
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            guard let self, !self.requested else { return }
            limiter.timedOut(channel)
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context.channel)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Seen here before the HTTP decoder, which reports a body cut short as a parse error.
        if let event = event as? ChannelEvent, event == .inputClosed { limiter.hungUp(context.channel) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !requested {
            let buffer = unwrapInboundIn(data)
            let found = buffer.withUnsafeReadableBytes { bytes -> Bool in
                for byte in bytes {
                    tail = (tail << 8) | UInt32(byte)
                    if tail == 0x0D0A_0D0A { return true }
                }
                return false
            }
            if found {
                requested = true
                timer?.cancel()
                timer = nil
                limiter.requested(context.channel)
            }
        }
        context.fireChannelRead(data)
    }

    private func finish(_ channel: any Channel) {
        timer?.cancel()
        timer = nil
        if registered {
            registered = false
            limiter.closed(channel)
        }
    }
}
