import Foundation
import GRDB
import HummingbirdCore
import Logging
import MijianCore
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
///
/// `reservedConnections` of the total are kept for clients that have had a report accepted
/// (`KnownClients`): the others together hold at most the rest, and make room among themselves
/// only. A known client at the total takes the room of an unknown client's connection (the oldest
/// fresh one, else the oldest of the unknown client holding the most), so addresses that never
/// delivered a report cannot keep out the machines that have.
public final class ConnectionLimiter: Sendable {
    /// One open connection.
    struct Entry {
        let client: String
        let channel: any Channel
        /// Order of opening: lower is older.
        let order: UInt64
        /// The client was known (had a report accepted) when the connection opened.
        let known: Bool
        var fresh = true
        /// The client closed its side (it may still read).
        var hungUp = false
    }

    struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var perClient: [String: Int] = [:]
        var nextOrder: UInt64 = 0
        /// Open connections of clients that were not known when they opened.
        var unknown = 0
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
    /// Connections of the total only known clients may hold.
    public let reservedConnections: Int
    /// Time a new connection has to send its first request head.
    public let firstRequestTimeout: Duration
    /// The clients that have had a report accepted.
    public let known: KnownClients
    private let state = Mutex(State())
    private let metrics: CollectorMetrics
    private let notices: NoticeThrottle

    /// A limiter with the limits' caps that counts what it closes in `metrics`; `known` (one is
    /// made when not given) says which clients the reserved connections are for.
    public init(limits: ServerLimits, metrics: CollectorMetrics, logger: Logger, known: KnownClients? = nil) {
        maxConnections = max(1, limits.maxConnections)
        maxConnectionsPerClient = max(1, min(limits.maxConnectionsPerClient, limits.maxConnections))
        // Never so many that an unknown client could not open its whole share.
        reservedConnections = max(0, min(limits.reserved(of: maxConnections), maxConnections - maxConnectionsPerClient))
        firstRequestTimeout = limits.firstRequestTimeout
        self.known = known ?? KnownClients(capacity: limits.knownClients)
        self.metrics = metrics
        notices = NoticeThrottle(logger: logger)
    }

    /// Connections open now.
    public var openConnections: Int { state.withLock { $0.entries.count } }

    /// Registers a new connection; returns false when it must be closed at once. Connections
    /// evicted to make room for it are closed here.
    func open(_ channel: any Channel) -> Bool {
        let client = ClientAddress.key(channel.remoteAddress)
        let known = known.contains(client)
        let id = ObjectIdentifier(channel)
        var evicted: [(any Channel, Closing)] = []
        let admitted = state.withLock { state -> Bool in
            if state.perClient[client, default: 0] >= maxConnectionsPerClient {
                guard let victim = Self.oldestFresh(state, client: client).flatMap({ Self.remove(&state, $0) }) else { return false }
                evicted.append((victim, .perClient))
            }
            if !known, state.unknown >= maxConnections - reservedConnections {
                // The unknown clients' part is full: room is made among them, never from the reserved part.
                let candidate = Self.oldest(state) { $0.fresh && !$0.known } ?? Self.oldestOfHeaviest(state, newcomer: client, unknownOnly: true)
                guard let victim = candidate.flatMap({ Self.remove(&state, $0) }) else { return false }
                evicted.append((victim, .total))
            }
            if state.entries.count >= maxConnections {
                let candidate: ObjectIdentifier?
                if known {
                    // A machine that has delivered a report goes before any client that has not.
                    candidate = Self.oldest(state) { $0.fresh && !$0.known } ?? Self.oldestOfHeaviestUnknown(state)
                        ?? Self.oldestFresh(state, client: nil) ?? Self.oldestOfHeaviest(state, newcomer: client, unknownOnly: false)
                } else {
                    // The unknown part has room, so known clients hold more than their reserved part: room is made as for anyone.
                    candidate = Self.oldestFresh(state, client: nil) ?? Self.oldestOfHeaviest(state, newcomer: client, unknownOnly: false)
                }
                guard let victim = candidate.flatMap({ Self.remove(&state, $0) }) else { return false }
                evicted.append((victim, .total))
            }
            state.entries[id] = Entry(client: client, channel: channel, order: state.nextOrder, known: known)
            state.nextOrder &+= 1
            state.perClient[client, default: 0] += 1
            if !known { state.unknown += 1 }
            return true
        }
        for (victim, reason) in evicted {
            closed(reason, client: ClientAddress.key(victim.remoteAddress), detail: "an idle connection that sent no request was closed to make room")
            victim.close(promise: nil)
        }
        if !admitted {
            let atClientCap = state.withLock { $0.perClient[client, default: 0] >= maxConnectionsPerClient }
            let reason: Closing = atClientCap ? .perClient : .total
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
    /// none, and a client never loses a connection to make room for a heavier one. With
    /// `unknownOnly`, only connections of clients that were not known count.
    private static func oldestOfHeaviest(_ state: State, newcomer: String, unknownOnly: Bool) -> ObjectIdentifier? {
        let counts = unknownOnly ? unknownCounts(state) : state.perClient
        guard let (heaviest, count) = counts.max(by: { $0.value < $1.value }),
            count >= counts[newcomer, default: 0] + 2
        else { return nil }
        return oldest(state) { $0.client == heaviest && (!unknownOnly || !$0.known) }
    }

    /// The oldest connection of the unknown client holding the most connections, whatever it is doing.
    private static func oldestOfHeaviestUnknown(_ state: State) -> ObjectIdentifier? {
        guard let (heaviest, _) = unknownCounts(state).max(by: { $0.value < $1.value }) else { return nil }
        return oldest(state) { $0.client == heaviest && !$0.known }
    }

    private static func unknownCounts(_ state: State) -> [String: Int] {
        var counts: [String: Int] = [:]
        for entry in state.entries.values where !entry.known { counts[entry.client, default: 0] += 1 }
        return counts
    }

    private static func remove(_ state: inout State, _ id: ObjectIdentifier) -> (any Channel)? {
        guard let entry = state.entries.removeValue(forKey: id) else { return nil }
        if !entry.known { state.unknown -= 1 }
        let left = state.perClient[entry.client, default: 1] - 1
        state.perClient[entry.client] = left > 0 ? left : nil
        return entry.channel
    }
}

/// The clients (as `ClientAddress.key` counts them) that have had a report accepted since start,
/// or, seeded from the store, recently before it: the machines that have proved themselves, for
/// whom part of the body budget and of the connection cap is kept. At most `capacity`; past it the
/// client seen least recently is forgotten.
public final class KnownClients: Sendable {
    private struct State {
        /// Each client and when it was last seen (a counter).
        var seen: [String: UInt64] = [:]
        /// Clients in the order they were seen; an entry whose stamp is not the client's latest is stale.
        var order: [(client: String, stamp: UInt64)] = []
        var head = 0
        var next: UInt64 = 0
    }

    /// Most clients remembered.
    public let capacity: Int
    private let state = Mutex(State())

    /// An empty set of at most `capacity` clients.
    public init(capacity: Int = 65_536) { self.capacity = max(1, capacity) }

    /// Clients remembered now.
    public var count: Int { state.withLock { $0.seen.count } }

    /// Whether `client` has had a report accepted.
    public func contains(_ client: String) -> Bool { state.withLock { $0.seen[client] != nil } }

    /// `client` has had a report accepted: remembered, as the most recently seen.
    public func note(_ client: String) {
        state.withLock { state in
            let stamp = state.next
            state.next &+= 1
            state.seen[client] = stamp
            state.order.append((client, stamp))
            while state.seen.count > capacity, state.head < state.order.count {
                let oldest = state.order[state.head]
                state.head += 1
                if state.seen[oldest.client] == oldest.stamp { state.seen[oldest.client] = nil }
            }
            // Stale entries are dropped once they outnumber the live ones, so the order stays within twice the capacity.
            if state.order.count - state.head > 2 * capacity || state.head > capacity {
                state.order = state.seen.map { (client: $0.key, stamp: $0.value) }.sorted { $0.stamp < $1.stamp }
                state.head = 0
            }
        }
    }

    /// Remembers the addresses the newest reports of each machine in `store` came from over HTTP,
    /// the most recent last, so that the machines that delivered reports before a restart are
    /// known at once. Reads only, in one statement: each machine's newest `reportsPerHost` reports
    /// by the chain index, of which the `capacity` received last (0.2 s at 100,000 machines, where
    /// reading each machine's reports in turn took seconds before `serve` could listen). Returns
    /// how many clients are known after it.
    @discardableResult
    public func seed(from store: CollectorStore, reportsPerHost: Int = 4) throws(MijianError) -> Int {
        let advancing = ChainOutcome.allCases.filter(\.advances).map { "'\($0.rawValue)'" }.joined(separator: ", ")
        let capacity = capacity
        let found = try store.consoleReadBlocking("cannot read the addresses of earlier reports") { db in
            try Row.fetchAll(db, sql: """
                SELECT r.source FROM hosts h JOIN reports r ON r.id IN (
                    SELECT id FROM reports WHERE host_id = h.host_id ORDER BY epoch DESC, seq DESC, id DESC LIMIT ?)
                WHERE r.outcome IN (\(advancing)) AND r.source LIKE 'http %'
                ORDER BY r.received_at DESC LIMIT ?
                """, arguments: [reportsPerHost, capacity]).map { row in row["source"] as String }
        }
        // Newest first from the query; noted oldest first, so the newest are the most recently seen.
        for source in found.reversed() { note(CollectorStore.refusalAddress(String(source.dropFirst("http ".count)))) }
        return count
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
    /// A byte other than CR and LF has come: the request line has begun.
    private var begun = false
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
                    // The parser skips empty lines before a request line: they begin no request,
                    // so CR LF CR LF among them is no head, and the connection stays fresh.
                    if !begun {
                        guard byte != 0x0D, byte != 0x0A else { continue }
                        begun = true
                    }
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
