import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import MijianCore
import NIOCore

/// Limits of the HTTP API, set explicitly rather than left at a library's defaults.
public struct ServerLimits: Sendable {
    /// Largest request body (one envelope), in bytes.
    public var maxBodyBytes: Int = 16 << 20
    /// Time allowed to receive a request body.
    public var bodyTimeout: Duration = .seconds(30)
    /// An idle connection is closed after this long.
    public var idleTimeout: Duration = .seconds(60)
    /// Connections queued before accept.
    public var backlog: Int = 256

    /// The defaults: 16 MiB, 30 s for a body, 60 s idle.
    public init() {}
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

/// The request context of the API: Hummingbird's core context and the client's address, which
/// the log line of every refused report names.
public struct CollectorRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The connected client.
    public let remoteAddress: SocketAddress?

    /// Makes the context for a request on a channel.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// The HTTP API on Hummingbird: `POST /v1/reports`, `GET /v1/hosts`, `GET /v1/hosts/{host_id}`,
/// `GET /v1/assessment?year=`, `GET /healthz`, `GET /metrics`.
public enum CollectorServer {
    /// A request body that did not arrive in time.
    struct BodyTimeout: Error {}

    /// The router with every route.
    public static func router(collector: Collector, sources: AssessmentSources, limits: ServerLimits, now: @escaping @Sendable () -> Date = { Date() }) -> Router<CollectorRequestContext> {
        let router = Router(context: CollectorRequestContext.self)
        router.get("/healthz") { _, _ -> Response in
            text(.ok, "ok\n")
        }
        router.post("/v1/reports") { request, context -> Response in
            let source = "http \(context.remoteAddress.map(ClientAddress.text) ?? "unknown")"
            if let length = request.headers[.contentLength].flatMap(Int.init), length > limits.maxBodyBytes {
                let refusal = IngestRefusal(reason: "too-large", detail: "\(length) bytes exceeds the limit of \(limits.maxBodyBytes)")
                return refusalResponse(collector.refuse(refusal, receivedAt: now(), source: source))
            }
            let body: [UInt8]
            do {
                body = try await withBodyTimeout(limits.bodyTimeout) {
                    var buffer = try await request.body.collect(upTo: limits.maxBodyBytes)
                    return buffer.readBytes(length: buffer.readableBytes) ?? []
                }
            } catch is BodyTimeout {
                let refusal = IngestRefusal(reason: "timeout", detail: "the body did not arrive within \(limits.bodyTimeout)")
                return refusalResponse(collector.refuse(refusal, receivedAt: now(), source: source), status: .requestTimeout)
            } catch {
                let refusal = IngestRefusal(reason: "too-large", detail: "the body exceeds the limit of \(limits.maxBodyBytes) bytes")
                return refusalResponse(collector.refuse(refusal, receivedAt: now(), source: source))
            }
            switch await collector.submit(body, source: source, receivedAt: now()) {
            case .success(let result):
                return json(result.outcome.isConflict ? .conflict : .accepted, result.json)
            case .failure(let refusal):
                return refusalResponse(refusal)
            }
        }
        router.get("/v1/hosts") { _, _ -> Response in
            let hosts = try collector.store.hosts()
            return json(.ok, ["hosts": .array(hosts.map { HostsView.json($0, now: now(), silentAfterDays: sources.settings.silentAfterDays, currentPolicies: sources.settings.currentPolicyDigests) })])
        }
        router.get("/v1/hosts/{host_id}") { _, context -> Response in
            let id = context.parameters.get("host_id") ?? ""
            guard let host = try collector.store.hosts().first(where: { $0.hostID == id }) else {
                return json(.notFound, ["error": "not-found", "detail": .string("no host \(id)")])
            }
            var body = HostsView.json(host, now: now(), silentAfterDays: sources.settings.silentAfterDays, currentPolicies: sources.settings.currentPolicyDigests)
            if case .object(var members) = body {
                members.append(("report_history", .array(try collector.store.reports(hostID: id))))
                members.append(("gaps", .array(try collector.store.gaps(hostID: id).map { ["epoch": .int($0.epoch), "from": .int($0.fromSeq), "to": .int($0.toSeq), "report_sha256": .string($0.reportSHA256)] })))
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
                snapshot: try collector.store.snapshot(year: year), table: sources.table, answers: sources.answers, settings: sources.settings, now: now())
            let bytes = AssessmentRenderer(language: language).render(result, format: format)
            let type: String
            switch format {
            case .json: type = "application/json"
            case .md: type = "text/markdown; charset=utf-8"
            case .html: type = "text/html; charset=utf-8"
            }
            return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("/metrics") { _, _ -> Response in
            let hosts = try collector.store.hosts()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: Metrics.text(collector.metrics.values, hosts: hosts, now: now(), silentAfterDays: sources.settings.silentAfterDays))))
        }
        return router
    }

    /// Builds the application: HTTP/1.1, inside TLS when `tls` is given.
    public static func application(
        collector: Collector, sources: AssessmentSources, host: String, port: Int, limits: ServerLimits, tls: CollectorTLS? = nil,
        logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws(MijianError) -> some ApplicationProtocol {
        let idle = TimeAmount.nanoseconds(Int64(limits.idleTimeout.components.seconds) * 1_000_000_000)
        let http = HTTP1Channel.Configuration(idleTimeout: idle)
        let server: HTTPServerBuilder
        if let tls {
            do {
                server = try tls.serverBuilder(http: http, metrics: collector.metrics, logger: logger)
            } catch {
                throw MijianError(.tls, "cannot set up TLS with \(tls.certificatePath) and \(tls.keyPath): \(error)", path: tls.certificatePath)
            }
        } else {
            server = .http1(configuration: http)
        }
        return Application(
            router: router(collector: collector, sources: sources, limits: limits), server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: "mijian-collector", backlog: limits.backlog),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
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

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        var bytes = value.serialized()
        bytes.append(0x0A)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func refusalResponse(_ refusal: IngestRefusal, status: HTTPResponse.Status? = nil) -> Response {
        json(status ?? HTTPResponse.Status(code: refusal.httpStatus), ["error": .string(refusal.reason), "detail": .string(refusal.detail)])
    }
}

/// The `/metrics` page in Prometheus text format.
public enum Metrics {
    /// Counters and gauges as text.
    public static func text(_ counters: [String: Int], hosts: [HostRecord], now: Date, silentAfterDays: Int) -> String {
        var out = "# HELP mijian_collector_reports_total Reports received since start, by chain outcome.\n# TYPE mijian_collector_reports_total counter\n"
        for outcome in ChainOutcome.allCases {
            out += "mijian_collector_reports_total{outcome=\"\(outcome.rawValue)\"} \(counters["outcome/\(outcome.rawValue)"] ?? 0)\n"
        }
        out += "# HELP mijian_collector_refused_total Reports refused since start, by reason.\n# TYPE mijian_collector_refused_total counter\n"
        let reasons = Set(["bad-signature", "unknown-key", "wrong-type", "malformed", "too-large", "key-mismatch", "duplicate-key", "revoked", "host-mismatch", "timeout", "internal", "tls-required", "tls-handshake"])
            .union(counters.keys.filter { $0.hasPrefix("refused/") }.map { String($0.dropFirst("refused/".count)) })
        for reason in reasons.sorted() {
            out += "mijian_collector_refused_total{reason=\"\(reason)\"} \(counters["refused/\(reason)"] ?? 0)\n"
        }
        let silent = hosts.count(where: { HostsView.silentDays($0, now: now) > silentAfterDays })
        out += "# HELP mijian_collector_hosts Machines that have sent an accepted report.\n# TYPE mijian_collector_hosts gauge\nmijian_collector_hosts \(hosts.count)\n"
        out += "# HELP mijian_collector_hosts_silent Machines with no report for longer than the policy allows.\n# TYPE mijian_collector_hosts_silent gauge\nmijian_collector_hosts_silent \(silent)\n"
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
