import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import MijianCore
import NIOCore
import Synchronization

/// Limits of the HTTP API, set explicitly rather than left at a library's defaults.
public struct ServerLimits: Sendable {
    /// Largest request body (one envelope), in bytes. A day's report is some tens of kilobytes,
    /// and the agent seals at most 1 MiB of events into one report (a burst goes into several),
    /// about 1.4 MiB of envelope; a `413` is final for the agent, so the default leaves room.
    public var maxBodyBytes: Int = 4 << 20
    /// Most request-body bytes held in memory at once, across every connection.
    public var maxBufferedBytes: Int = 64 << 20
    /// Most request-body bytes held in memory at once for one client address: with the reserved
    /// quarter, it takes twelve addresses to fill what clients never seen may hold.
    public var maxBufferedBytesPerClient: Int = 4 << 20
    /// Most connections open at once; past it, the oldest connection that has sent no request is closed.
    public var maxConnections: Int = 1024
    /// Most connections open at once from one client address.
    public var maxConnectionsPerClient: Int = 64
    /// A new connection that sends no request head within this time is closed.
    public var firstRequestTimeout: Duration = .seconds(10)
    /// Time allowed to receive a request body.
    public var bodyTimeout: Duration = .seconds(30)
    /// An idle connection is closed after this long.
    public var idleTimeout: Duration = .seconds(60)
    /// Connections queued before accept.
    public var backlog: Int = 256
    /// Seconds a client is asked to wait (`Retry-After`) when the body budget is full.
    public var retryAfterSeconds: Int = 5
    /// Percent of `maxBufferedBytes` and of `maxConnections` kept for clients that have had a
    /// report accepted: addresses that never delivered one cannot fill them.
    public var reservedPercent: Int = 25
    /// Most clients remembered as having had a report accepted (the least recently seen is forgotten).
    public var knownClients: Int = 65_536

    /// The defaults: 4 MiB a body, 64 MiB of bodies in all and 4 MiB per client; 1,024
    /// connections, 64 per client, 10 s to the first request; 30 s for a body, 60 s idle; a
    /// quarter of the bodies' bytes and of the connections kept for machines that delivered a report.
    public init() {}

    /// The reserved part of `total`: `reservedPercent` of it, rounded down.
    public func reserved(of total: Int) -> Int {
        let percent = min(max(reservedPercent, 0), 100)
        let total = max(total, 0)
        // In two parts, so that no total can overflow.
        return total / 100 * percent + total % 100 * percent / 100
    }
}

/// What the assessment endpoint needs besides the store.
public struct AssessmentSources: Sendable {
    /// The self-assessment table.
    public var table: AssessmentTable
    /// People's answers.
    public var answers: AssessmentAnswers
    /// The unit's ledger, current policies and silence limit.
    public var settings: UnitSettings

    /// Makes the sources.
    public init(table: AssessmentTable, answers: AssessmentAnswers, settings: UnitSettings) {
        self.table = table
        self.answers = answers
        self.settings = settings
    }
}

/// The request context of the API: Hummingbird's core context, the client's address, which
/// the log line of every refused report names, and the connection, which a refusal closes.
public struct CollectorRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The connected client.
    public let remoteAddress: SocketAddress?
    /// The connection the request came on.
    public let channel: any Channel

    /// Makes the context for a request on a channel.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }
}

/// The HTTP API on Hummingbird: `POST /v1/reports`, `GET /v1/hosts[?limit=N&after=HOST_ID]`, `GET /v1/hosts/{host_id}`,
/// `GET /v1/assessment?year=`, `GET /healthz`, `GET /metrics`.
public enum CollectorServer {
    /// The most machines one page of `GET /v1/hosts?limit=` may ask for.
    static let hostsPageLimit = 10_000

    /// A request body that did not arrive in time.
    struct BodyTimeout: Error {}

    /// Why a request body was not read whole.
    enum BodyProblem: Error {
        /// More bytes than the limit (declared or sent).
        case tooLarge(String)
        /// The body budget (all clients' or this client's) is full.
        case busy(String)
        /// Not valid HTTP/1.1 framing (a bad chunk size, say).
        case malformed(String)
        /// The client went away before the body's end.
        case disconnected(String)
    }

    /// The router with every route. `budget` bounds the bodies held in memory (one is made
    /// from `limits` when not given); `limiter` adds its open connections to `/metrics`, and its
    /// known clients (a set of its own when there is no limiter) learn every client that has a report accepted.
    public static func router(
        collector: Collector, sources: AssessmentSources, limits: ServerLimits, budget: BodyBudget? = nil, limiter: ConnectionLimiter? = nil,
        now: @escaping @Sendable () -> Date = { Date() }
    ) -> Router<CollectorRequestContext> {
        let router = Router(context: CollectorRequestContext.self)
        let budget = budget ?? Self.budget(limits)
        let known = limiter?.known ?? KnownClients(capacity: limits.knownClients)
        router.get("/healthz") { _, _ -> Response in
            text(.ok, "ok\n")
        }
        router.post("/v1/reports") { request, context -> Response in
            let source = "http \(context.remoteAddress.map(ClientAddress.text) ?? "unknown")"
            let client = ClientAddress.key(context.remoteAddress)
            let hold = BodyHold(budget: budget, client: client, known: known.contains(client))
            defer { hold.giveBack() }
            let body: [UInt8]
            do {
                body = try await withBodyTimeout(limits.bodyTimeout) {
                    try await readBody(request, limit: limits.maxBodyBytes, hold: hold, channel: context.channel, limiter: limiter)
                }
            } catch is BodyTimeout {
                let refusal = IngestRefusal(.timeout, detail: "the body did not arrive within \(limits.bodyTimeout)")
                return closingRefusal(await collector.refuse(refusal, receivedAt: now(), source: source), status: .requestTimeout, channel: context.channel)
            } catch let problem as BodyProblem {
                switch problem {
                case .tooLarge(let detail):
                    return closingRefusal(await collector.refuse(IngestRefusal(.tooLarge, detail: detail), receivedAt: now(), source: source), channel: context.channel)
                case .busy(let detail):
                    let refusal = await collector.refuse(IngestRefusal(.busy, detail: detail), receivedAt: now(), source: source)
                    return closingRefusal(refusal, status: .serviceUnavailable, headers: [.retryAfter: "\(limits.retryAfterSeconds)"], channel: context.channel)
                case .malformed(let detail):
                    return closingRefusal(await collector.refuse(IngestRefusal(.malformed, detail: detail), receivedAt: now(), source: source), channel: context.channel)
                case .disconnected(let detail):
                    // Nobody is left to read an answer; the reason is counted and logged.
                    await collector.refuse(IngestRefusal(.disconnected, detail: detail), receivedAt: now(), source: source)
                    context.channel.close(promise: nil)
                    return Response(status: .badRequest)
                }
            } catch {
                // Whatever else ends the body stream (the connection reset) is the client going away.
                await collector.refuse(IngestRefusal(.disconnected, detail: "the connection ended before the body did"), receivedAt: now(), source: source)
                context.channel.close(promise: nil)
                return Response(status: .badRequest)
            }
            switch await collector.submit(body, source: source, receivedAt: now()) {
            case .success(let result):
                // A report that moves its chain proves the client: from now on it may use the reserved part.
                if result.outcome.advances { known.note(client) }
                return json(result.outcome.isConflict ? .conflict : .accepted, result.json)
            case .failure(let refusal):
                return refusalResponse(refusal)
            }
        }
        router.get("/v1/hosts") { request, _ -> Response in
            // Without `limit` the whole list; with it one page in the list's order, starting after
            // the machine `after` names, and `next_after` when more may follow.
            let query = request.uri.queryParameters
            let view: @Sendable (HostRecord) -> JSONValue = {
                HostsView.json($0, now: now(), silentAfterDays: sources.settings.silentAfterDays, currentPolicies: sources.settings.currentPolicyDigests)
            }
            guard let limitText = query.get("limit") else {
                guard query.get("after") == nil else { return json(.badRequest, ["error": "usage", "detail": "after pages the list: give limit too"]) }
                return json(.ok, ["hosts": .array(try await collector.storage.hosts().map(view))])
            }
            guard let limit = Int(limitText), (1...Self.hostsPageLimit).contains(limit) else {
                return json(.badRequest, ["error": "usage", "detail": .string("limit must be a whole number from 1 to \(Self.hostsPageLimit)")])
            }
            let after = query.get("after")
            guard let page = try await collector.storage.hosts(afterHostID: after, limit: limit) else {
                return json(.badRequest, ["error": "usage", "detail": .string("after: no machine has the host id \(after ?? "")")])
            }
            var members: [(String, JSONValue)] = [("hosts", .array(page.map(view)))]
            if page.count == limit, let last = page.last { members.append(("next_after", .string(last.hostID))) }
            return json(.ok, .object(members))
        }
        router.get("/v1/hosts/{host_id}") { _, context -> Response in
            let id = context.parameters.get("host_id") ?? ""
            guard let host = try await collector.storage.host(id) else {
                return json(.notFound, ["error": "not-found", "detail": .string("no host \(id)")])
            }
            var body = HostsView.json(host, now: now(), silentAfterDays: sources.settings.silentAfterDays, currentPolicies: sources.settings.currentPolicyDigests)
            if case .object(var members) = body {
                members.append(("report_history", .array(try await collector.storage.reports(hostID: id, limit: 100).map(\.json))))
                members.append(("gaps", .array(try await collector.storage.gaps(hostID: id).map { ["epoch": .int($0.epoch), "from": .int($0.fromSeq), "to": .int($0.toSeq), "report_sha256": .string($0.reportSHA256)] })))
                body = .object(members)
            }
            return json(.ok, body)
        }
        router.get("/v1/assessment") { request, _ -> Response in
            let query = request.uri.queryParameters
            guard let yearText = query.get("year"), let year = Int(yearText), (1970...9999).contains(year) else {
                return json(.badRequest, ["error": "usage", "detail": "give ?year=YYYY"])
            }
            let language = query.get("lang").flatMap(AssessmentLanguage.init(rawValue:)) ?? .zh
            let format = query.get("format").flatMap(AssessmentFormat.init(rawValue:)) ?? .json
            let result = AssessmentBuilder.build(
                snapshot: try await collector.storage.snapshot(year: year), table: sources.table, answers: sources.answers, settings: sources.settings, now: now())
            let bytes = AssessmentRenderer(language: language).render(result, format: format)
            let type: String
            switch format {
            case .json: type = "application/json"
            case .md: type = "text/markdown; charset=utf-8"
            case .html: type = "text/html; charset=utf-8"
            }
            return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        Console.register(on: router, collector: collector, sources: sources, now: now)
        router.get("/metrics") { _, _ -> Response in
            // Counted by the database: a scrape reads no machine's row (it read every one, a second
            // at 300,000 machines).
            let counts = try await collector.storage.hostCounts(silentSince: HostsView.silentSince(now: now(), silentAfterDays: sources.settings.silentAfterDays))
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: Metrics.text(
                    collector.metrics.values, hosts: counts, connections: limiter?.openConnections, bufferedBytes: budget.heldBytes))))
        }
        return router
    }

    /// Builds the application: HTTP/1.1, inside TLS when `tls` is given.
    public static func application(
        collector: Collector, sources: AssessmentSources, host: String, port: Int, limits: ServerLimits, tls: CollectorTLS? = nil,
        logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws(MijianError) -> some ApplicationProtocol {
        let idle = TimeAmount.nanoseconds(Int64(clamping: limits.idleTimeout.components.seconds).multipliedReportingOverflow(by: 1_000_000_000).partialValue)
        let http = HTTP1Channel.Configuration(idleTimeout: idle)
        let known = KnownClients(capacity: limits.knownClients)
        do {
            // Over the SQLite store; over another backend machines become known as they deliver.
            if let store = collector.sqlite {
                let count = try known.seed(from: store)
                logger.info("clients known from stored reports", metadata: ["collector.known_clients": "\(count)"])
            }
        } catch {
            // Only the reserved part waits for these machines' next reports; nothing is refused for it.
            logger.warning("the addresses of earlier reports cannot be read: machines become known again as they deliver", metadata: ["collector.error": "\(error)"])
        }
        let limiter = ConnectionLimiter(limits: limits, metrics: collector.metrics, logger: logger, known: known)
        let budget = Self.budget(limits)
        let server: HTTPServerBuilder
        if let tls {
            do {
                server = try tls.serverBuilder(http: http, metrics: collector.metrics, limiter: limiter, logger: logger)
            } catch {
                throw MijianError(.tls, "cannot set up TLS with \(tls.certificatePath) and \(tls.keyPath): \(error)", path: tls.certificatePath)
            }
        } else {
            server = HTTPServerBuilder { responder in LimitedChannel(base: HTTP1Channel(responder: responder, configuration: http), limiter: limiter) }
        }
        return Application(
            router: router(collector: collector, sources: sources, limits: limits, budget: budget, limiter: limiter), server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: "mijian-collector", backlog: limits.backlog),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
    }

    /// The body budget of `limits`, with its reserved part. A client may always hold one body of
    /// the largest size allowed: a per-client bound below it would refuse such a body for ever.
    static func budget(_ limits: ServerLimits) -> BodyBudget {
        BodyBudget(
            maxBytes: limits.maxBufferedBytes, maxBytesPerClient: max(limits.maxBufferedBytesPerClient, limits.maxBodyBytes),
            reservedBytes: limits.reserved(of: limits.maxBufferedBytes))
    }

    static func withBodyTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw BodyTimeout()
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw BodyTimeout() }
            return first
        }
    }

    /// Reads a request body into memory within `limit` bytes, taking what it occupies from the
    /// budget as it grows; says what went wrong when it cannot.
    static func readBody(_ request: Request, limit: Int, hold: BodyHold, channel: any Channel, limiter: ConnectionLimiter?) async throws -> [UInt8] {
        var declared: Int?
        if let text = request.headers[.contentLength] {
            // The decoder has checked the framing; a length past the limit is refused before any of the body is read.
            guard let length = Int(text), length >= 0 else { throw BodyProblem.malformed("Content-Length is not a number of bytes") }
            guard length <= limit else { throw BodyProblem.tooLarge("\(length) bytes exceeds the limit of \(limit)") }
            declared = length
        }
        var bytes: [UInt8] = []
        var parts = request.body.makeAsyncIterator()
        while true {
            let part: ByteBuffer?
            do {
                part = try await parts.next()
            } catch {
                // The parser reports a connection that ends inside a body as a parse error: the
                // connection's state tells a client that went away from one that sent bad framing.
                if !channel.isActive || limiter?.isGone(channel) == true {
                    throw BodyProblem.disconnected("the client went away after \(bytes.count) bytes of the body")
                }
                throw BodyProblem.malformed("the request body is not valid HTTP/1.1 (\(error)) after \(bytes.count) bytes")
            }
            guard let part else { break }
            let (count, overflow) = bytes.count.addingReportingOverflow(part.readableBytes)
            guard !overflow, count <= limit else { throw BodyProblem.tooLarge("the body exceeds the limit of \(limit) bytes") }
            if count > bytes.capacity {
                // Grow by doubling (never past the limit), and hold the memory the array will occupy.
                let capacity = max(count, min(limit, max(4096, bytes.capacity.multipliedReportingOverflow(by: 2).partialValue)))
                guard hold.grow(to: capacity) else {
                    throw BodyProblem.busy(
                        "the collector holds as many request bodies as it may (\(hold.budget.maxBytes) bytes in all, \(hold.budget.maxBytesPerClient) per client); send it again later")
                }
                bytes.reserveCapacity(capacity)
            }
            bytes.append(contentsOf: part.readableBytesView)
        }
        if let declared, bytes.count < declared {
            throw BodyProblem.disconnected("the body ended after \(bytes.count) of \(declared) bytes")
        }
        return bytes
    }

    /// A refusal answered on a connection that is then closed: the rest of a body that was not
    /// read is not waited for. The answer goes out first; the connection is half-closed (the
    /// client reads the answer and the end), then closed a second later whatever the client does.
    static func closingRefusal(_ refusal: IngestRefusal, status: HTTPResponse.Status? = nil, headers: HTTPFields = [:], channel: any Channel) -> Response {
        var bytes = JSONValue.object([("error", .string(refusal.reason)), ("detail", .string(refusal.detail))]).serialized()
        bytes.append(0x0A)
        let buffer = ByteBuffer(bytes: bytes)
        var fields = headers
        fields[.contentType] = "application/json"
        fields[.connection] = "close"
        return Response(
            status: status ?? HTTPResponse.Status(code: Self.httpStatus(refusal.code)), headers: fields,
            body: ResponseBody(contentLength: buffer.readableBytes) { writer in
                try await writer.write(buffer)
                try await writer.finish(nil)
                channel.close(mode: .output, promise: nil)
                channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
            })
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        var bytes = value.serialized()
        bytes.append(0x0A)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The HTTP status that says a refusal: the only place refusal reasons meet HTTP.
    public static func httpStatus(_ reason: RefusalReason) -> Int {
        switch reason {
        case .tooLarge: return 413
        case .unknownKey, .revoked, .hostMismatch, .keyMismatch: return 403
        case .wrongType: return 415
        case .internal: return 500
        case .badSignature, .malformed, .duplicateKey, .unreadable, .identityTooLong, .identityControl, .seqJump, .badChain, .busy, .timeout, .disconnected:
            return 400
        }
    }

    static func refusalResponse(_ refusal: IngestRefusal, status: HTTPResponse.Status? = nil) -> Response {
        json(status ?? HTTPResponse.Status(code: Self.httpStatus(refusal.code)), ["error": .string(refusal.reason), "detail": .string(refusal.detail)])
    }
}

/// The part of the body budget one request holds; given back when the request is answered.
final class BodyHold: Sendable {
    let budget: BodyBudget
    let client: String
    /// The client had had a report accepted when the request came: it may take from the reserved part.
    let known: Bool
    private let taken = Mutex(0)

    init(budget: BodyBudget, client: String, known: Bool) {
        self.budget = budget
        self.client = client
        self.known = known
    }

    /// Holds `bytes` in all for this body: takes the difference; false when the budget has no room for it.
    func grow(to bytes: Int) -> Bool {
        taken.withLock { taken in
            guard bytes > taken else { return true }
            guard budget.take(bytes - taken, client: client, known: known) else { return false }
            taken = bytes
            return true
        }
    }

    /// Gives back everything held.
    func giveBack() {
        let held = taken.withLock { taken in
            defer { taken = 0 }
            return taken
        }
        budget.give(held, client: client)
    }
}

/// The `/metrics` page in Prometheus text format.
public enum Metrics {
    /// Counters and gauges as text.
    /// `connections` and `bufferedBytes`, when given, are the HTTP server's open connections and
    /// the request-body bytes it holds.
    public static func text(_ counters: [String: Int], hosts: HostCounts, connections: Int? = nil, bufferedBytes: Int? = nil) -> String {
        var out = "# HELP mijian_collector_reports_total Reports received since start, by chain outcome.\n# TYPE mijian_collector_reports_total counter\n"
        for outcome in ChainOutcome.allCases {
            out += "mijian_collector_reports_total{outcome=\"\(outcome.rawValue)\"} \(counters["outcome/\(outcome.rawValue)"] ?? 0)\n"
        }
        out += "# HELP mijian_collector_refused_total Reports refused since start, by reason.\n# TYPE mijian_collector_refused_total counter\n"
        let reasons = Set(["bad-signature", "unknown-key", "wrong-type", "malformed", "too-large", "key-mismatch", "duplicate-key", "revoked", "host-mismatch", "timeout", "internal", "tls-required", "tls-handshake",
            "busy", "disconnected", "connections-per-client", "connections-total", "first-request-timeout",
        ])
            .union(counters.keys.filter { $0.hasPrefix("refused/") }.map { String($0.dropFirst("refused/".count)) })
        for reason in reasons.sorted() {
            out += "mijian_collector_refused_total{reason=\"\(reason)\"} \(counters["refused/\(reason)"] ?? 0)\n"
        }
        out += "# HELP mijian_collector_hosts Machines that have sent an accepted report.\n# TYPE mijian_collector_hosts gauge\nmijian_collector_hosts \(hosts.hosts)\n"
        out += "# HELP mijian_collector_hosts_silent Machines with no report for longer than the policy allows.\n# TYPE mijian_collector_hosts_silent gauge\nmijian_collector_hosts_silent \(hosts.silent)\n"
        if let connections {
            out += "# HELP mijian_collector_connections HTTP connections open.\n# TYPE mijian_collector_connections gauge\nmijian_collector_connections \(connections)\n"
        }
        if let bufferedBytes {
            out += "# HELP mijian_collector_body_bytes Request-body bytes held in memory.\n# TYPE mijian_collector_body_bytes gauge\nmijian_collector_body_bytes \(bufferedBytes)\n"
        }
        return out
    }
}

/// The `hosts` listing: every machine, its last report, status and silent days.
public enum HostsView {
    /// Whole days since the machine's last report, counted from the earlier of its issue time and
    /// the collector's receive time: a report carried across an air gap counts from when it was
    /// made, and a clock set ahead cannot keep a machine from ever looking silent.
    public static func silentDays(_ host: HostRecord, now: Date) -> Int {
        CollectorCalendar.days(from: min(host.lastIssuedAt, host.lastReceivedAt), to: now)
    }

    /// The instant at or before which that earlier time makes a machine silent: more than
    /// `silentAfterDays` whole days before `now`, as `silentDays` counts them (for the queries that
    /// count silent machines in the database instead of reading each one).
    public static func silentSince(now: Date, silentAfterDays: Int) -> Date {
        now.addingTimeInterval(-Double(silentAfterDays + 1) * 86_400)
    }

    /// A machine's status words: `ok`, `failing`, `silent`, `forked`, `gaps`, `old-policy`, `clock-skew`.
    public static func status(_ host: HostRecord, now: Date, silentAfterDays: Int, currentPolicies: Set<String>) -> [String] {
        var words: [String] = []
        if silentDays(host, now: now) > silentAfterDays { words.append("silent") }
        if host.forkCount > 0 { words.append("forked") }
        if host.missingCount > 0 { words.append("gaps") }
        if !currentPolicies.isEmpty, !currentPolicies.contains(host.policySHA256) { words.append("old-policy") }
        if host.lastSkew != nil { words.append("clock-skew") }
        if host.lastFailCount > 0 { words.append("failing") }
        return words.isEmpty ? ["ok"] : words
    }

    /// One machine as JSON.
    public static func json(_ host: HostRecord, now: Date, silentAfterDays: Int, currentPolicies: Set<String>) -> JSONValue {
        [
            "host_id": .string(host.hostID), "hostname": .string(host.hostname), "asset_id": .optional(host.assetID),
            "classification": .optional(host.classification?.rawValue), "responsible": .optional(host.responsible), "keyid": .string(host.keyid),
            "epoch": .int(host.chain.epoch), "seq": .int(host.chain.seq), "last_report_sha256": .string(host.chain.digest),
            "last_issued_at": .string(RFC3339.string(from: host.lastIssuedAt)), "last_received_at": .string(RFC3339.string(from: host.lastReceivedAt)),
            "silent_days": .integer(silentDays(host, now: now)), "policy_id": .string(host.policyID),
            "policy_sha256": .string(host.policySHA256), "last_fail_count": .integer(host.lastFailCount), "reports": .integer(host.reportCount),
            "forks": .integer(host.forkCount), "missing_reports": .int(host.missingCount),
            "clock_skew_seconds": host.lastSkewSeconds.map { .int($0) } ?? .null, "clock_skew": .optional(host.lastSkew),
            "clock_skewed_reports": .integer(host.skewedReports),
            "status": .strings(status(host, now: now, silentAfterDays: silentAfterDays, currentPolicies: currentPolicies)),
        ]
    }

    /// The table people read.
    public static func text(_ hosts: [HostRecord], now: Date, silentAfterDays: Int, currentPolicies: Set<String>) -> String {
        var rows = [["HOST", "ASSET", "CLASS", "EPOCH:SEQ", "LAST REPORT", "SILENT DAYS", "FAILS", "STATUS"]]
        for host in hosts {
            rows.append([
                host.hostname, host.assetID ?? "-", host.classification?.rawValue ?? "-", "\(host.chain.epoch):\(host.chain.seq)",
                RFC3339.string(from: host.lastIssuedAt), "\(silentDays(host, now: now))", "\(host.lastFailCount)",
                status(host, now: now, silentAfterDays: silentAfterDays, currentPolicies: currentPolicies).joined(separator: ","),
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}
