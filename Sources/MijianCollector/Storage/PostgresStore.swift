import Foundation
import Logging
import MijianCore
import MijianEvidence
import NIOCore
import PostgresNIO
import Synchronization

/// The collector's store on PostgreSQL (postgres-nio and its connection pool), for a unit that
/// runs several `serve` instances on one database.
///
/// Every decision about a host's chain is made inside one transaction that first takes an
/// advisory lock on that host (`pg_advisory_xact_lock(namespace, hashtext(host_id))`), then
/// loads the host's context, asks `IngestRules.decide`, applies the plan and commits: two
/// instances receiving one host's reports at the same moment decide one after the other, as
/// one instance would. Hosts do not wait for each other.
///
/// The key registry lives in the database only. The verifier's view of it (`keyLookup`) is a
/// copy of the `keys` table kept current by LISTEN/NOTIFY: every approval and revocation, made
/// by any instance or command, notifies channel `mijian_registry` in its transaction, and every
/// instance reads the changed key again; the copy is read whole again whenever the listening
/// connection is made anew. A revocation is also checked inside the ingest transaction, so a
/// report signed by a revoked key is refused even in the moment before the notice arrives.
public final class PostgresStore: CollectorStorage {
    /// Where the database is.
    public let location: PostgresLocation
    /// How far a report may move its host's chain.
    public let chainLimits: ChainLimits
    /// How much of the refusal and repeat tables is kept.
    public let refusalLimits: RefusalLogLimits
    /// The migrations this open applied (empty when the schema was current).
    public let appliedMigrations: [String]
    let client: PostgresClient
    let logger: Logger
    private let tasks: Mutex<[Task<Void, Never>]>
    private let registryChanges = ChangeCounter()
    let registry = PostgresRegistryCopy()
    /// Submissions waiting for a transaction; up to `groupLanes` groups in flight at once.
    private let group = GroupCommit(lanes: PostgresStore.groupLanes)
    /// Transactions of grouped submissions one instance runs at once.
    static let groupLanes = 4

    /// The advisory lock namespace of host decisions: "host".
    static let hostLockNamespace: Int32 = 0x686F_7374
    /// The advisory lock of the counted tables' trimming, per table.
    static let trimLockNamespace: Int32 = 0x7472_696D
    /// A logger for postgres-nio that says only errors.
    public static var quietLogger: Logger {
        var logger = Logger(label: "mijian-collector.postgres")
        logger.logLevel = .error
        return logger
    }

    /// The channel registry changes are announced on.
    static let registryChannel = "mijian_registry"

    /// Where the data is, for messages.
    public var locationDescription: String { location.description }

    /// Changes made through this object, counted.
    public var registryGeneration: Int { registryChanges.value }

    /// The registry as the envelope verifier reads it: without a database round trip per report.
    public var keyLookup: any KeyLookup { registry }

    private init(location: PostgresLocation, client: PostgresClient, run: Task<Void, Never>, chainLimits: ChainLimits, refusalLimits: RefusalLogLimits, applied: [String], logger: Logger) {
        self.location = location
        self.client = client
        self.chainLimits = chainLimits
        self.refusalLimits = refusalLimits
        self.appliedMigrations = applied
        self.logger = logger
        self.tasks = Mutex([run])
    }

    /// Connects, applies the schema's missing migrations, loads the registry and starts
    /// listening for its changes. Fails, saying why, when the server cannot be reached or
    /// refuses the login or the TLS handshake.
    public static func open(
        _ location: PostgresLocation, chainLimits: ChainLimits = ChainLimits(), refusalLimits: RefusalLogLimits = RefusalLogLimits(),
        logger: Logger = PostgresStore.quietLogger
    ) async throws(StoreError) -> PostgresStore {
        let configuration: PostgresClient.Configuration
        do {
            configuration = try location.clientConfiguration()
        } catch {
            throw StoreError.unavailable("cannot reach the database \(location)", underlying: error)
        }
        // One connection first: a refused login, a certificate that does not verify or a server
        // that is not there is said at once, with the server's or the TLS library's own words.
        do {
            let probe = try await PostgresConnection.connect(configuration: try location.connectionConfiguration(), id: 0, logger: logger)
            try await probe.close()
        } catch {
            throw StoreError.unavailable("cannot open the database \(location)", underlying: PostgresFailure(error))
        }
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let run = Task { await client.run() }
        let applied: [String]
        do {
            applied = try await PostgresSchema.migrate(client, logger: logger)
        } catch {
            run.cancel()
            throw StoreError.unavailable("cannot open the database \(location)", underlying: PostgresFailure(error))
        }
        let store = PostgresStore(
            location: location, client: client, run: run, chainLimits: chainLimits, refusalLimits: refusalLimits, applied: applied, logger: logger)
        do {
            try await store.reloadRegistry()
        } catch {
            store.close()
            throw StoreError.unavailable("cannot read the registry of \(location)", underlying: PostgresFailure(error))
        }
        store.startListening()
        return store
    }

    /// Stops listening and closes the connections.
    public func close() {
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }

    deinit { close() }

    // MARK: - Running statements

    /// Runs `body`; any failure becomes a `StoreError` that keeps the database's own error.
    func attempt<T>(_ doing: String, _ body: () async throws -> T) async throws(StoreError) -> T {
        do {
            return try await body()
        } catch {
            throw Self.storeError(doing, error)
        }
    }

    static func storeError(_ doing: String, _ error: any Error) -> StoreError {
        if let error = error as? StoreError { return error }
        if let failure = error as? PostgresTransactionError, let inner = failure.closureError, let error = inner as? StoreError { return error }
        return .database(doing: doing, underlying: PostgresFailure(error))
    }

    /// Rows of a query, by column name.
    static func rows(_ connection: PostgresConnection, _ query: PostgresQuery, logger: Logger) async throws -> [PostgresRandomAccessRow] {
        try await connection.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
    }

    func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await client.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
    }

    // MARK: - Ingest ledger

    /// Group commit, as on SQLite: submissions that arrive while this instance's transactions
    /// are busy are decided and stored together, several hosts in one transaction, each host
    /// under its own advisory lock (taken together, in one order, so that two instances never
    /// wait on each other in a circle). Nobody is answered before the transaction holding their
    /// report has committed. A group whose transaction fails is tried again one submission per
    /// transaction, so each submission gets its own answer and one bad report takes no other with it.
    public func record(_ submission: IngestSubmission) async throws(StoreError) -> Result<IngestResult, IngestRefusal> {
        try await group.answer(submission) { Task { await self.drainGroups() } }
    }

    /// Commits waiting groups until none is left (one of the group's lanes).
    private func drainGroups() async {
        await group.drain { submissions in
            do {
                return try await recordGroup(submissions).map { .success($0) }
            } catch {
                // Each again in a transaction of its own: the one that fails answers for itself alone.
                var alone: [Result<Result<IngestResult, IngestRefusal>, StoreError>] = []
                for submission in submissions {
                    do {
                        let answer = try await recordGroup([submission]).first
                        alone.append(answer.map { .success($0) } ?? .failure(.database(doing: "store the report", underlying: MijianError(.database, "the report was not stored"))))
                    } catch {
                        alone.append(.failure(Self.storeError("store the report", error)))
                    }
                }
                return alone
            }
        }
    }

    /// Decides and stores submissions in one transaction, in order, under their hosts' locks.
    private func recordGroup(_ submissions: [IngestSubmission]) async throws(StoreError) -> [Result<IngestResult, IngestRefusal>] {
        let logger = self.logger
        let limits = chainLimits
        let refusalLimits = self.refusalLimits
        return try await attempt("store the report") {
            try await client.withTransaction(logger: logger) { connection in
                // Every host's lock at once, in the order of the lock key.
                let hosts = Array(Set(submissions.map(\.hostID))).sorted()
                // Its rows are read: an error (a deadlock found) comes with them, and must not go unseen.
                _ = try await connection.query("""
                    SELECT pg_advisory_xact_lock(\(Self.hostLockNamespace), hashtext(h)) FROM unnest(\(hosts)::text[]) AS h ORDER BY hashtext(h), h
                    """, logger: logger).collect()
                // The context of every host met once in the group, in one query; a host met again
                // is read again after its earlier submission is applied.
                var seen: [String: Int] = [:]
                for submission in submissions { seen[submission.hostID, default: 0] += 1 }
                var contexts = try await Self.contexts(connection, submissions.filter { seen[$0.hostID] == 1 }.map(\.lookup), logger: logger)
                var results: [Result<IngestResult, IngestRefusal>] = []
                results.reserveCapacity(submissions.count)
                for submission in submissions {
                    let lookup = submission.lookup
                    let context: HostLedgerContext
                    if seen[submission.hostID] == 1, let loaded = contexts.removeValue(forKey: lookup) {
                        context = loaded
                    } else {
                        context = try await Self.context(connection, lookup, logger: logger)
                    }
                    switch IngestRules.decide(context: context, submission: submission, limits: limits) {
                    case .refuse(var refusal):
                        refusal.windowCount = try await Self.countRefusal(
                            connection, refusal, receivedAt: submission.receivedAt, source: submission.source, limits: refusalLimits, logger: logger)
                        results.append(.failure(refusal))
                    case .repeated(var result, let reason):
                        result.repeatCount = try await Self.countRepeat(connection, submission, result: result, reason: reason, limits: refusalLimits, logger: logger)
                        results.append(.success(result))
                    case .store(let plan):
                        try await Self.apply(connection, plan, submission, logger: logger)
                        results.append(.success(plan.result))
                    }
                }
                return results
            }
        }
    }

    /// The contexts of several submissions of different hosts, in one query.
    static func contexts(_ connection: PostgresConnection, _ lookups: [HostLedgerContext.Lookup], logger: Logger) async throws -> [HostLedgerContext.Lookup: HostLedgerContext] {
        guard !lookups.isEmpty else { return [:] }
        let found = try await rows(connection, """
            SELECT l.n, k.host_id AS key_host, k.revoked_at,
                EXISTS (SELECT 1 FROM reports r WHERE r.host_id = l.host_id AND r.payload_sha256 = l.sha) AS stored,
                h.epoch, h.seq, h.digest, h.last_issued_at
            FROM unnest(\(lookups.map(\.keyid))::text[], \(lookups.map(\.hostID))::text[], \(lookups.map(\.payloadSHA256))::text[])
                WITH ORDINALITY AS l(keyid, host_id, sha, n)
            LEFT JOIN keys k ON k.keyid = l.keyid LEFT JOIN hosts h ON h.host_id = l.host_id
            """, logger: logger)
        var out: [HostLedgerContext.Lookup: HostLedgerContext] = [:]
        for row in found {
            let index = Int(try row["n"].decode(Int64.self)) - 1
            guard lookups.indices.contains(index) else { continue }
            out[lookups[index]] = try context(row)
        }
        return out
    }

    /// What is stored about the submission's host and key, read after the host's lock is held.
    static func context(_ connection: PostgresConnection, _ lookup: HostLedgerContext.Lookup, logger: Logger) async throws -> HostLedgerContext {
        let found = try await rows(connection, """
            SELECT k.host_id AS key_host, k.revoked_at,
                EXISTS (SELECT 1 FROM reports r WHERE r.host_id = \(lookup.hostID) AND r.payload_sha256 = \(lookup.payloadSHA256)) AS stored,
                h.epoch, h.seq, h.digest, h.last_issued_at
            FROM (SELECT 1) AS one LEFT JOIN keys k ON k.keyid = \(lookup.keyid) LEFT JOIN hosts h ON h.host_id = \(lookup.hostID)
            """, logger: logger)
        guard let row = found.first else { return HostLedgerContext(key: nil, alreadyStored: false, head: nil) }
        return try context(row)
    }

    /// A context from a row of `context` or `contexts`.
    static func context(_ row: PostgresRandomAccessRow) throws -> HostLedgerContext {
        let key = try row["key_host"].decode(String?.self).map { host in
            HostLedgerContext.EnrolledKey(hostID: host, revokedAt: try row["revoked_at"].decode(String?.self).flatMap(RFC3339.date(from:)))
        }
        var head: HostLedgerContext.Head?
        if let epoch = try row["epoch"].decode(Int64?.self) {
            head = HostLedgerContext.Head(
                chain: ChainState(epoch: epoch, seq: try row["seq"].decode(Int64.self), digest: try row["digest"].decode(String.self)),
                lastIssuedAt: try row["last_issued_at"].decode(String?.self).flatMap(RFC3339.date(from:)))
        }
        return HostLedgerContext(key: key, alreadyStored: try row["stored"].decode(Bool.self), head: head)
    }

    /// Writes a stored report: its row and log lines, and when it advances, the head, the
    /// year's aggregates and a gap: one statement (its parts in one data-modifying `WITH`), so a
    /// report costs one round trip, not one per table.
    static func apply(_ connection: PostgresConnection, _ plan: StoragePlan, _ submission: IngestSubmission, logger: Logger) async throws {
        let report = submission.verified.report
        let host = report.host
        let sha = submission.verified.payloadSHA256
        let keyid = submission.verified.keyid
        let received = RFC3339.string(from: submission.receivedAt)
        let issued = RFC3339.string(from: report.issuedAt)
        let year = submission.digest.year
        let source = submission.source
        for line in plan.log {
            try await connection.query("""
                INSERT INTO ingest_log (received_at, source, host_id, keyid, epoch, seq, payload_sha256, outcome, reason, detail)
                VALUES (\(received), \(source), \(host.hostID), \(keyid), \(report.epoch), \(report.seq), \(sha), \(line.outcome), \(line.reason), \(line.detail))
                """, logger: logger)
        }
        var envelope = ByteBuffer()
        envelope.writeBytes(submission.envelope)
        let outcome = plan.result.outcome.rawValue
        guard plan.advances else {
            try await connection.query("""
                INSERT INTO reports (payload_sha256, host_id, keyid, epoch, seq, prev_sha256, issued_at, received_at, year, outcome, source, policy_sha256,
                    fail_count, envelope, skew_seconds, skew)
                VALUES (\(sha), \(host.hostID), \(keyid), \(report.epoch), \(report.seq), \(report.prevSHA256), \(issued), \(received), \(year), \(outcome),
                    \(source), \(report.policy.sha256), \(plan.failCount), \(envelope), \(plan.skewSeconds), \(plan.skew))
                """, logger: logger)
            return
        }
        let skewed: Int64 = plan.skew == nil ? 0 : 1
        // The rule counts, the failing findings and the media as arrays, unnested.
        let counts = submission.digest.ruleCounts
        let rules = counts.map(\.rule)
        let pass = counts.map { Int64($0.count.pass) }
        let fail = counts.map { Int64($0.count.fail) }
        let error = counts.map { Int64($0.count.error) }
        let other = counts.map { Int64($0.count.other) }
        // One row per (rule, subject, status), as SQLite's one upsert per finding leaves it:
        // counted as often as it occurs, the last detail, the earliest and latest observation.
        struct FindingKey: Hashable {
            var rule: String
            var subject: String
            var status: String
        }
        var order: [FindingKey] = []
        var merged: [FindingKey: (detail: String, count: Int64, first: String, last: String)] = [:]
        for finding in submission.digest.findings where finding.status == .fail || finding.status == .error {
            let key = FindingKey(rule: finding.ruleID, subject: finding.subject, status: finding.status.rawValue)
            let observed = RFC3339.string(from: finding.observedAt)
            if let existing = merged[key] {
                merged[key] = (finding.detail, existing.count + 1, min(existing.first, observed), max(existing.last, observed))
            } else {
                order.append(key)
                merged[key] = (finding.detail, 1, observed, observed)
            }
        }
        let values = order.compactMap { merged[$0] }
        // A medium seen twice in one report keeps its first source, as SQLite's upserts do.
        var seen: Set<MediumIdentity> = []
        let media = submission.digest.media.filter { seen.insert($0.identity).inserted }
        let gap = plan.gap
        // The statement's one row is read: an error in any of its parts (a constraint, a trigger)
        // comes in place of that row, and would otherwise go unseen until the commit rolled back.
        _ = try await connection.query("""
            WITH report AS (
                INSERT INTO reports (payload_sha256, host_id, keyid, epoch, seq, prev_sha256, issued_at, received_at, year, outcome, source, policy_sha256,
                    fail_count, envelope, skew_seconds, skew)
                VALUES (\(sha), \(host.hostID), \(keyid), \(report.epoch), \(report.seq), \(report.prevSHA256), \(issued), \(received), \(year), \(outcome),
                    \(source), \(report.policy.sha256), \(plan.failCount), \(envelope), \(plan.skewSeconds), \(plan.skew))),
            head AS (
                INSERT INTO hosts (host_id, hostname, asset_id, classification, responsible, unit, os, kernel, keyid, epoch, seq, digest,
                    last_issued_at, last_received_at, first_received_at, policy_id, policy_version, policy_sha256, agent_version, last_fail_count,
                    last_skew_seconds, last_skew, skewed_reports)
                VALUES (\(host.hostID), \(host.hostname), \(host.assetID), \(host.classification?.rawValue), \(host.responsible), \(host.unit), \(host.os),
                    \(host.kernel), \(keyid), \(report.epoch), \(report.seq), \(sha), \(issued), \(received), \(received), \(report.policy.id),
                    \(report.policy.version), \(report.policy.sha256), \(report.agent.version), \(plan.failCount), \(plan.skewSeconds), \(plan.skew), \(skewed))
                ON CONFLICT (host_id) DO UPDATE SET hostname = excluded.hostname, asset_id = excluded.asset_id,
                    classification = excluded.classification, responsible = excluded.responsible, unit = excluded.unit,
                    os = excluded.os, kernel = excluded.kernel, keyid = excluded.keyid, epoch = excluded.epoch, seq = excluded.seq,
                    digest = excluded.digest, last_issued_at = excluded.last_issued_at, last_received_at = excluded.last_received_at,
                    policy_id = excluded.policy_id, policy_version = excluded.policy_version, policy_sha256 = excluded.policy_sha256,
                    agent_version = excluded.agent_version, last_fail_count = excluded.last_fail_count,
                    last_skew_seconds = excluded.last_skew_seconds, last_skew = excluded.last_skew, skewed_reports = hosts.skewed_reports + excluded.skewed_reports),
            yearly AS (
                INSERT INTO host_years (host_id, year, hostname, asset_id, classification, responsible, reports, last_issued_at, last_report_sha256, policy_id, policy_sha256)
                VALUES (\(host.hostID), \(year), \(host.hostname), \(host.assetID), \(host.classification?.rawValue), \(host.responsible), 1, \(issued), \(sha),
                    \(report.policy.id), \(report.policy.sha256))
                ON CONFLICT (host_id, year) DO UPDATE SET hostname = excluded.hostname, asset_id = excluded.asset_id,
                    classification = excluded.classification, responsible = excluded.responsible, reports = host_years.reports + 1,
                    last_issued_at = excluded.last_issued_at, last_report_sha256 = excluded.last_report_sha256,
                    policy_id = excluded.policy_id, policy_sha256 = excluded.policy_sha256),
            rules AS (
                INSERT INTO host_rules (host_id, year, rule_id, pass, fail, error, other)
                SELECT \(host.hostID), \(year), * FROM unnest(\(rules)::text[], \(pass)::bigint[], \(fail)::bigint[], \(error)::bigint[], \(other)::bigint[])
                ON CONFLICT (host_id, year, rule_id) DO UPDATE SET pass = host_rules.pass + excluded.pass, fail = host_rules.fail + excluded.fail,
                    error = host_rules.error + excluded.error, other = host_rules.other + excluded.other),
            found AS (
                INSERT INTO findings (host_id, year, rule_id, subject, status, detail, count, first_observed_at, last_observed_at, first_report_sha256, last_report_sha256)
                SELECT \(host.hostID), \(year), f.rule_id, f.subject, f.status, f.detail, f.count, f.first_at, f.last_at, \(sha), \(sha)
                FROM unnest(\(order.map(\.rule))::text[], \(order.map(\.subject))::text[], \(order.map(\.status))::text[], \(values.map(\.detail))::text[],
                    \(values.map(\.count))::bigint[], \(values.map(\.first))::text[], \(values.map(\.last))::text[])
                    AS f(rule_id, subject, status, detail, count, first_at, last_at)
                ON CONFLICT (host_id, year, rule_id, subject, status) DO UPDATE SET detail = excluded.detail, count = findings.count + excluded.count,
                    first_observed_at = LEAST(findings.first_observed_at, excluded.first_observed_at),
                    last_observed_at = GREATEST(findings.last_observed_at, excluded.last_observed_at), last_report_sha256 = excluded.last_report_sha256),
            medium AS (
                INSERT INTO media (host_id, year, vendor, product, serial, source, first_seen, last_seen, report_sha256)
                SELECT \(host.hostID), \(year), m.vendor, m.product, m.serial, m.source, \(issued), \(issued), \(sha)
                FROM unnest(\(media.map(\.identity.vendor))::text[], \(media.map(\.identity.product))::text[], \(media.map(\.identity.serial))::text[],
                    \(media.map(\.source))::text[]) AS m(vendor, product, serial, source)
                ON CONFLICT (host_id, year, vendor, product, serial) DO UPDATE SET first_seen = LEAST(media.first_seen, excluded.first_seen),
                    last_seen = GREATEST(media.last_seen, excluded.last_seen), report_sha256 = excluded.report_sha256),
            missing AS (
                INSERT INTO gaps (host_id, epoch, from_seq, to_seq, year, report_sha256, detected_at)
                SELECT \(host.hostID), \(report.epoch), \(gap?.lowerBound ?? 0), \(gap?.upperBound ?? 0), \(year), \(sha), \(received) WHERE \(gap != nil))
            SELECT 1
            """, logger: logger).collect()
    }

    /// Counts a refusal made before the chain check.
    public func logRefusal(_ refusal: IngestRefusal, receivedAt: Date, source: String) async throws(StoreError) -> Int64 {
        let logger = self.logger
        let limits = refusalLimits
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await Self.countRefusal(connection, refusal, receivedAt: receivedAt, source: source, limits: limits, logger: logger)
            }
        } catch {
            throw Self.storeError("record a refusal", error)
        }
    }

    /// Counts one refusal in its (address, reason, window) row; a new row past the bound trims the oldest windows.
    static func countRefusal(
        _ connection: PostgresConnection, _ refusal: IngestRefusal, receivedAt: Date, source: String, limits: RefusalLogLimits, logger: Logger
    ) async throws -> Int64 {
        let source = CollectorStore.boundedSource(source)
        let address = CollectorStore.refusalAddress(source)
        let at = RFC3339.string(from: receivedAt)
        let window = SQLiteStore.windowStart(receivedAt, limits: limits)
        let counted: PostgresRowSequence = try await connection.query("""
            INSERT INTO refusals (address, reason, window_start, count, first_at, last_at, source, detail)
            VALUES (\(address), \(refusal.reason), \(window), 1, \(at), \(at), \(source), \(refusal.detail))
            ON CONFLICT (address, reason, window_start) DO UPDATE SET count = refusals.count + 1,
                first_at = LEAST(refusals.first_at, excluded.first_at), last_at = GREATEST(refusals.last_at, excluded.last_at)
            RETURNING count
            """, logger: logger)
        let count = try await counted.collect().first?.decode(Int64.self) ?? 1
        if count == 1 { try await trim(connection, table: .refusals, limits: limits, logger: logger) }
        return count
    }

    /// Counts a duplicate or a replay in its (host, report, outcome, window) row.
    static func countRepeat(
        _ connection: PostgresConnection, _ submission: IngestSubmission, result: IngestResult, reason: String?, limits: RefusalLogLimits, logger: Logger
    ) async throws -> Int64 {
        let at = RFC3339.string(from: submission.receivedAt)
        let window = SQLiteStore.windowStart(submission.receivedAt, limits: limits)
        let report = submission.verified.report
        let counted: PostgresRowSequence = try await connection.query("""
            INSERT INTO repeats (host_id, payload_sha256, outcome, reason, window_start, count, first_at, last_at, source, keyid, epoch, seq, detail)
            VALUES (\(result.hostID), \(result.payloadSHA256), \(result.outcome.rawValue), \(reason), \(window), 1, \(at), \(at), \(submission.source),
                \(submission.verified.keyid), \(report.epoch), \(report.seq), \(result.detail))
            ON CONFLICT (host_id, payload_sha256, outcome, window_start) DO UPDATE SET count = repeats.count + 1,
                first_at = LEAST(repeats.first_at, excluded.first_at), last_at = GREATEST(repeats.last_at, excluded.last_at)
            RETURNING count
            """, logger: logger)
        let count = try await counted.collect().first?.decode(Int64.self) ?? 1
        if count == 1 { try await trim(connection, table: .repeats, limits: limits, logger: logger) }
        return count
    }

    /// The counted tables and their drop counters (constants, never input).
    enum CountedTable: String {
        case refusals, repeats
        var drops: String { self == .refusals ? "refusal_drops" : "repeat_drops" }
        var lockKey: Int32 { self == .refusals ? 1 : 2 }
    }

    /// Keeps a counted table within `maxRows`, one trimmer at a time across instances. A row
    /// another transaction is counting into is skipped rather than waited for (that transaction
    /// may itself wait for this trimmer's lock): the next trim takes it.
    static func trim(_ connection: PostgresConnection, table: CountedTable, limits: RefusalLogLimits, logger: Logger) async throws {
        _ = try await connection.query("SELECT pg_advisory_xact_lock(\(trimLockNamespace), \(table.lockKey))", logger: logger).collect()
        let maxRows = Int64(max(limits.maxRows, 1))
        try await connection.query(PostgresQuery(unsafeSQL: """
            WITH old AS (
                SELECT id FROM \(table.rawValue) ORDER BY window_start, id
                LIMIT GREATEST((SELECT count(*) FROM \(table.rawValue)) - $1, 0) FOR UPDATE SKIP LOCKED),
            gone AS (DELETE FROM \(table.rawValue) WHERE id IN (SELECT id FROM old) RETURNING count)
            UPDATE \(table.drops) SET windows = windows + (SELECT count(*) FROM gone), requests = requests + (SELECT coalesce(sum(count), 0) FROM gone)
            WHERE id = 1 AND EXISTS (SELECT 1 FROM gone)
            """, binds: { var binds = PostgresBindings(); binds.append(maxRows); return binds }()), logger: logger)
    }

    // MARK: - Key registry

    /// Adds a key (revoking the one it replaces) and tells every instance.
    public func approve(_ record: KeyRecord) async throws(StoreError) {
        let logger = self.logger
        try await attempt("approve the key") {
            try await client.withTransaction(logger: logger) { connection in
                let existing = try await Self.rows(connection, "SELECT host_id, revoked_at FROM keys WHERE keyid = \(record.keyid) FOR UPDATE", logger: logger)
                if let row = existing.first {
                    throw StoreError.registry(.keyExists(keyid: record.keyid, revokedAt: try row["revoked_at"].decode(String?.self).flatMap(RFC3339.date(from:))))
                }
                if let previous = record.previousKeyID {
                    guard let old = try await Self.rows(connection, "SELECT host_id, revoked_at FROM keys WHERE keyid = \(previous) FOR UPDATE", logger: logger).first else {
                        throw StoreError.registry(.previousKeyUnknown(keyid: previous))
                    }
                    let oldHost = try old["host_id"].decode(String.self)
                    guard oldHost == record.hostID else {
                        throw StoreError.registry(.previousKeyOfOtherHost(keyid: previous, hostID: oldHost, expected: record.hostID))
                    }
                    if let revoked = try old["revoked_at"].decode(String?.self) {
                        throw StoreError.registry(.previousKeyRevoked(keyid: previous, at: SQLiteStore.date(revoked)))
                    }
                    let rotated = "rotated to \(record.keyid)"
                    let at = RFC3339.string(from: record.approvedAt)
                    try await connection.query("UPDATE keys SET revoked_at = \(at), revoke_reason = \(rotated) WHERE keyid = \(previous)", logger: logger)
                    try await connection.query("SELECT pg_notify(\(Self.registryChannel), \(previous))", logger: logger)
                }
                try await connection.query("""
                    INSERT INTO keys (keyid, pem, host_id, hostname, asset_id, classification, responsible, agent_version, previous_keyid, note, requested_at,
                        approved_at, request_sha256)
                    VALUES (\(record.keyid), \(record.pem), \(record.hostID), \(record.hostname), \(record.assetID), \(record.classification?.rawValue),
                        \(record.responsible), \(record.agentVersion), \(record.previousKeyID), \(record.note), \(RFC3339.string(from: record.requestedAt)),
                        \(RFC3339.string(from: record.approvedAt)), \(record.requestSHA256))
                    """, logger: logger)
                try await connection.query("SELECT pg_notify(\(Self.registryChannel), \(record.keyid))", logger: logger)
            }
        }
        registryChanges.increment()
        try? await reloadKey(record.keyid)
        if let previous = record.previousKeyID { try? await reloadKey(previous) }
    }

    /// Revokes a key and tells every instance.
    public func revoke(keyid: String, at date: Date, reason: String) async throws(StoreError) {
        let logger = self.logger
        try await attempt("revoke the key") {
            try await client.withTransaction(logger: logger) { connection in
                guard let row = try await Self.rows(connection, "SELECT revoked_at FROM keys WHERE keyid = \(keyid) FOR UPDATE", logger: logger).first else {
                    throw StoreError.registry(.unknownKey(keyid: keyid))
                }
                if let revoked = try row["revoked_at"].decode(String?.self) {
                    throw StoreError.registry(.alreadyRevoked(keyid: keyid, at: SQLiteStore.date(revoked)))
                }
                try await connection.query(
                    "UPDATE keys SET revoked_at = \(RFC3339.string(from: date)), revoke_reason = \(reason) WHERE keyid = \(keyid)", logger: logger)
                try await connection.query("SELECT pg_notify(\(Self.registryChannel), \(keyid))", logger: logger)
            }
        }
        registryChanges.increment()
        try? await reloadKey(keyid)
    }

    /// Every key, oldest approval first.
    public func keys() async throws(StoreError) -> [KeyRecord] {
        try await attempt("read the registry") {
            try await rows("SELECT * FROM keys ORDER BY approved_at COLLATE \"C\", keyid COLLATE \"C\"").map(Self.keyRecord)
        }
    }

    /// The key with this id.
    public func key(_ keyid: String) async throws(StoreError) -> KeyRecord? {
        try await attempt("read the registry") {
            try await rows("SELECT * FROM keys WHERE keyid = \(keyid)").first.map(Self.keyRecord)
        }
    }

    static func keyRecord(_ row: PostgresRandomAccessRow) throws -> KeyRecord {
        KeyRecord(
            keyid: try row["keyid"].decode(String.self), pem: try row["pem"].decode(String.self), hostID: try row["host_id"].decode(String.self),
            hostname: try row["hostname"].decode(String.self), assetID: try row["asset_id"].decode(String?.self),
            classification: try row["classification"].decode(String?.self).flatMap(Classification.init(rawValue:)),
            responsible: try row["responsible"].decode(String?.self), agentVersion: try row["agent_version"].decode(String.self),
            previousKeyID: try row["previous_keyid"].decode(String?.self), note: try row["note"].decode(String?.self),
            requestedAt: SQLiteStore.date(try row["requested_at"].decode(String.self)), approvedAt: SQLiteStore.date(try row["approved_at"].decode(String.self)),
            requestSHA256: try row["request_sha256"].decode(String.self),
            revokedAt: try row["revoked_at"].decode(String?.self).flatMap(RFC3339.date(from:)), revokeReason: try row["revoke_reason"].decode(String?.self))
    }

    /// Reads the whole registry into the verifier's copy.
    func reloadRegistry() async throws {
        var entries: [String: PostgresRegistryCopy.Entry] = [:]
        for try await (keyid, pem, revoked) in try await client.query("SELECT keyid, pem, revoked_at FROM keys", logger: logger).decode((String, String, String?).self) {
            entries[keyid] = PostgresRegistryCopy.Entry(pem: pem, revokedAt: revoked.flatMap(RFC3339.date(from:)))
        }
        registry.replace(entries)
    }

    /// Reads one key again into the verifier's copy.
    func reloadKey(_ keyid: String) async throws {
        let found = try await client.query("SELECT pem, revoked_at FROM keys WHERE keyid = \(keyid)", logger: logger).collect().first?.decode((String, String?).self)
        registry.update(keyid, found.map { PostgresRegistryCopy.Entry(pem: $0.0, revokedAt: $0.1.flatMap(RFC3339.date(from:))) })
    }

    /// Listens for registry changes on a connection of its own; when it is lost, listens again
    /// and reads the whole registry (a change may have been missed meanwhile).
    private func startListening() {
        let listener = Task { [weak self, client, logger] in
            var first = true
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: Self.registryChannel) { notifications in
                            if !first { try await self?.reloadRegistry() }
                            first = false
                            for try await notice in notifications {
                                try await self?.reloadKey(notice.payload)
                            }
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("the registry's change notices stopped (\(PostgresFailure(error))); listening again")
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        tasks.withLock { $0.append(listener) }
    }
}

/// The verifier's copy of the registry: keyid → PEM and revocation, each key parsed once.
final class PostgresRegistryCopy: KeyLookup, Sendable {
    struct Entry: Sendable {
        var pem: String
        var revokedAt: Date?
        var key: VerifyingKey? = nil
    }

    private let entries = Mutex<[String: Entry]>([:])

    func replace(_ all: [String: Entry]) { entries.withLock { $0 = all } }

    func update(_ keyid: String, _ entry: Entry?) { entries.withLock { $0[keyid] = entry } }

    func key(for keyid: String) -> VerifyingKey? {
        guard let entry = entries.withLock({ $0[keyid] }) else { return nil }
        if let key = entry.key { return key }
        // A keyid is the SHA-256 of its key: a PEM that is not that key is no key at all.
        guard let key = try? VerifyingKey(pem: entry.pem), key.keyid == keyid else { return nil }
        entries.withLock { $0[keyid]?.key = key }
        return key
    }

    func revocation(for keyid: String) -> Date? { entries.withLock { $0[keyid]?.revokedAt } }
}

/// A PostgreSQL failure as the collector reports it: the server's SQLSTATE and message (which
/// postgres-nio keeps out of its own description), or the connection's error; the original is kept.
public struct PostgresFailure: Error, Sendable, CustomStringConvertible {
    /// The error postgres-nio threw.
    public let underlying: any Error

    /// Wraps an error, unwrapping a transaction's.
    public init(_ error: any Error) {
        if let failure = error as? PostgresFailure {
            underlying = failure.underlying
        } else if let transaction = error as? PostgresTransactionError {
            underlying = transaction.closureError ?? transaction.beginError ?? transaction.commitError ?? transaction.rollbackError ?? error
        } else {
            underlying = error
        }
    }

    /// The server's SQLSTATE, when the server answered with an error.
    public var sqlState: String? { (underlying as? PSQLError)?.serverInfo?[.sqlState] }

    /// One line.
    public var description: String {
        guard let error = underlying as? PSQLError else { return "\(underlying)" }
        if let info = error.serverInfo {
            var text = "\(info[.severity] ?? "ERROR") \(info[.sqlState] ?? "?????"): \(info[.message] ?? "")"
            if let detail = info[.detail] { text += " (\(detail))" }
            return text
        }
        return "\(error.code)\(error.underlying.map { ": \($0)" } ?? "")"
    }
}
