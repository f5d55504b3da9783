import Foundation
import GRDB
import MijianCore
import MijianEvidence
import Synchronization

/// A report that passed signature verification, ready for the chain check.
public struct VerifiedSubmission: Sendable {
    /// The key that signed it.
    public var keyid: String
    /// The exact payload bytes that were verified.
    public var payload: [UInt8]
    /// SHA-256 (hex) of the payload.
    public var payloadSHA256: String
    /// The parsed report.
    public var report: Report

    /// Makes a submission.
    public init(keyid: String, payload: [UInt8], payloadSHA256: String, report: Report) {
        self.keyid = keyid
        self.payload = payload
        self.payloadSHA256 = payloadSHA256
        self.report = report
    }
}

/// What happened to one stored or refused submission.
public struct IngestResult: Sendable, Equatable {
    /// The chain outcome.
    public var outcome: ChainOutcome
    /// The host.
    public var hostID: String
    /// The payload digest.
    public var payloadSHA256: String
    /// The report's epoch.
    public var epoch: Int64
    /// The report's seq.
    public var seq: Int64
    /// Seqs found missing, for a gap.
    public var missing: ClosedRange<Int64>?
    /// One sentence.
    public var detail: String
    /// The report's clock was off: `ahead` or `backwards` and issue minus receive time in seconds,
    /// or `epoch-ahead` and epoch minus receive time.
    public var clockSkew: (kind: String, seconds: Int64)? = nil
    /// For an outcome anyone can repeat without new signed content (a duplicate, a replay): how
    /// many times its row of the repeat table has counted it in this window, this one included;
    /// nil for every other outcome or when the row could not be read. Bookkeeping for the log
    /// throttle, not part of the result's identity.
    public var repeatCount: Int64? = nil

    /// Results are equal when every field is.
    public static func == (lhs: IngestResult, rhs: IngestResult) -> Bool {
        lhs.outcome == rhs.outcome && lhs.hostID == rhs.hostID && lhs.payloadSHA256 == rhs.payloadSHA256 && lhs.epoch == rhs.epoch
            && lhs.seq == rhs.seq && lhs.missing == rhs.missing && lhs.detail == rhs.detail
            && lhs.clockSkew?.kind == rhs.clockSkew?.kind && lhs.clockSkew?.seconds == rhs.clockSkew?.seconds
    }

    /// The answer's JSON body.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("outcome", .string(outcome.rawValue)), ("payload_sha256", .string(payloadSHA256)), ("host_id", .string(hostID)),
            ("epoch", .int(epoch)), ("seq", .int(seq)),
        ]
        if let missing { members.append(("missing", ["from": .int(missing.lowerBound), "to": .int(missing.upperBound)])) }
        members.append(("detail", .string(detail)))
        if let clockSkew {
            members.append(("clock_skew", ["kind": .string(clockSkew.kind), "seconds": .int(clockSkew.seconds), "detail": .string(ClockSkew.describe(clockSkew.kind, seconds: clockSkew.seconds))]))
        }
        return .object(members)
    }
}

/// A submission the collector refused, with the reason callers match and a sentence for people.
///
/// Every refusal is made here, and the detail of a refusal often repeats what a client sent (a
/// keyid, a payloadType, a host name): the initialiser bounds and escapes it, once for the log
/// line, the refusal table and the HTTP answer alike, so no client text reaches any of them
/// unbounded. The fields cannot be set afterwards, past that check.
public struct IngestRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Most UTF-8 bytes of a refusal's reason.
    public static let maxReasonBytes = 64
    /// Most UTF-8 bytes of a refusal's detail.
    public static let maxDetailBytes = UntrustedText.maxDetailBytes

    /// `bad-signature`, `unknown-key`, `wrong-type`, `malformed`, `too-large`, `key-mismatch`,
    /// `duplicate-key`, `revoked`, `host-mismatch`, `identity-too-long`, `identity-control`,
    /// `seq-jump`, `bad-chain`, `replay`, `fork`, `internal`.
    public let reason: String
    /// What exactly was wrong, at most `maxDetailBytes` bytes, escaped.
    public let detail: String
    /// How many refusals the row of the refusal table counting this one holds, this one included,
    /// when the store counted it; nil otherwise. Bookkeeping for the log throttle (see
    /// `RefusalLogLimits.logs`), not part of the refusal's identity.
    public internal(set) var windowCount: Int64? = nil

    /// Makes a refusal; the reason and the detail are bounded and escaped (see `UntrustedText`).
    public init(reason: String, detail: String) {
        self.reason = UntrustedText.bounded(reason, limit: Self.maxReasonBytes)
        self.detail = UntrustedText.bounded(detail, limit: Self.maxDetailBytes)
    }

    /// `reason: detail`.
    public var description: String { "\(reason): \(detail)" }

    /// Refusals are equal when their reasons and details are.
    public static func == (lhs: IngestRefusal, rhs: IngestRefusal) -> Bool { lhs.reason == rhs.reason && lhs.detail == rhs.detail }

    /// The HTTP status that says it.
    public var httpStatus: Int {
        switch reason {
        case "too-large": return 413
        case "unknown-key", "revoked", "host-mismatch", "key-mismatch": return 403
        case "replay", "fork": return 409
        case "wrong-type": return 415
        case "internal": return 500
        default: return 400
        }
    }
}

/// The collector's SQLite database (GRDB, WAL mode, migrations): the key registry, every
/// envelope verbatim, chain heads, and the per-year aggregates the assessment reads.
public final class CollectorStore: Sendable {
    /// The database file.
    public let path: String
    let pool: DatabasePool
    /// How far a report may move its host's chain.
    public let chainLimits: ChainLimits
    /// How much of the refusal log is kept.
    public let refusalLimits: RefusalLogLimits
    private let group = GroupCommit()
    private let registryChanges = ChangeCounter()

    /// Counts approvals and revocations made through this store, so caches of the registry know when to read it again.
    public var registryGeneration: Int { registryChanges.value }

    /// Opens (creating when needed) `collector.sqlite` in `directory` and runs the migrations.
    public init(directory: String, chainLimits: ChainLimits = ChainLimits(), refusalLimits: RefusalLogLimits = RefusalLogLimits()) throws(MijianError) {
        self.chainLimits = chainLimits
        self.refusalLimits = refusalLimits
        do {
            try EvidenceFiles.ensureDirectory(directory, mode: 0o700)
        } catch {
            throw MijianError(error.code, "cannot create the data directory \(directory)\(error.errno == nil ? ": " + error.message : "")", path: directory, errno: error.errno)
        }
        let path = FilePathText.join(directory, "collector.sqlite")
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL: readers never block the writer; NORMAL: a commit survives a crash of the process,
            // and the database stays consistent after a power loss (the last commits may be lost).
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator(refusalLimits: refusalLimits).migrate(pool)
        } catch {
            throw MijianError.database("cannot open the collector database", error, path: path)
        }
    }

    static func migrator(refusalLimits: RefusalLogLimits) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE keys (
                    keyid TEXT PRIMARY KEY NOT NULL, pem TEXT NOT NULL, host_id TEXT NOT NULL, hostname TEXT NOT NULL,
                    asset_id TEXT, classification TEXT, responsible TEXT, agent_version TEXT NOT NULL,
                    previous_keyid TEXT, note TEXT, requested_at TEXT NOT NULL, approved_at TEXT NOT NULL,
                    request_sha256 TEXT NOT NULL, revoked_at TEXT, revoke_reason TEXT);
                CREATE INDEX keys_host ON keys(host_id);
                CREATE TABLE hosts (
                    host_id TEXT PRIMARY KEY NOT NULL, hostname TEXT NOT NULL, asset_id TEXT, classification TEXT,
                    responsible TEXT, unit TEXT, os TEXT NOT NULL, kernel TEXT NOT NULL, keyid TEXT NOT NULL,
                    epoch INTEGER NOT NULL, seq INTEGER NOT NULL, digest TEXT NOT NULL,
                    last_issued_at TEXT NOT NULL, last_received_at TEXT NOT NULL, first_received_at TEXT NOT NULL,
                    policy_id TEXT NOT NULL, policy_version TEXT NOT NULL, policy_sha256 TEXT NOT NULL,
                    agent_version TEXT NOT NULL, last_fail_count INTEGER NOT NULL);
                CREATE TABLE reports (
                    id INTEGER PRIMARY KEY, payload_sha256 TEXT NOT NULL, host_id TEXT NOT NULL, keyid TEXT NOT NULL,
                    epoch INTEGER NOT NULL, seq INTEGER NOT NULL, prev_sha256 TEXT NOT NULL, issued_at TEXT NOT NULL,
                    received_at TEXT NOT NULL, year INTEGER NOT NULL, outcome TEXT NOT NULL, source TEXT NOT NULL,
                    policy_sha256 TEXT NOT NULL, fail_count INTEGER NOT NULL, envelope BLOB NOT NULL,
                    UNIQUE(host_id, payload_sha256));
                CREATE INDEX reports_chain ON reports(host_id, epoch, seq);
                CREATE INDEX reports_outcome ON reports(outcome, year);
                CREATE TABLE ingest_log (
                    id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, source TEXT NOT NULL, host_id TEXT, keyid TEXT,
                    epoch INTEGER, seq INTEGER, payload_sha256 TEXT, outcome TEXT NOT NULL, reason TEXT, detail TEXT NOT NULL);
                CREATE TABLE gaps (
                    id INTEGER PRIMARY KEY, host_id TEXT NOT NULL, epoch INTEGER NOT NULL, from_seq INTEGER NOT NULL,
                    to_seq INTEGER NOT NULL, year INTEGER NOT NULL, report_sha256 TEXT NOT NULL, detected_at TEXT NOT NULL);
                CREATE INDEX gaps_year ON gaps(year);
                CREATE TABLE host_years (
                    host_id TEXT NOT NULL, year INTEGER NOT NULL, hostname TEXT NOT NULL, asset_id TEXT,
                    classification TEXT, responsible TEXT, reports INTEGER NOT NULL, last_issued_at TEXT NOT NULL,
                    last_report_sha256 TEXT NOT NULL, policy_id TEXT NOT NULL, policy_sha256 TEXT NOT NULL,
                    PRIMARY KEY(host_id, year)) WITHOUT ROWID;
                CREATE TABLE host_rules (
                    host_id TEXT NOT NULL, year INTEGER NOT NULL, rule_id TEXT NOT NULL, pass INTEGER NOT NULL,
                    fail INTEGER NOT NULL, error INTEGER NOT NULL, other INTEGER NOT NULL,
                    PRIMARY KEY(host_id, year, rule_id)) WITHOUT ROWID;
                CREATE TABLE findings (
                    host_id TEXT NOT NULL, year INTEGER NOT NULL, rule_id TEXT NOT NULL, subject TEXT NOT NULL,
                    status TEXT NOT NULL, detail TEXT NOT NULL, count INTEGER NOT NULL,
                    first_observed_at TEXT NOT NULL, last_observed_at TEXT NOT NULL,
                    first_report_sha256 TEXT NOT NULL, last_report_sha256 TEXT NOT NULL,
                    PRIMARY KEY(host_id, year, rule_id, subject, status)) WITHOUT ROWID;
                CREATE INDEX findings_year ON findings(year);
                CREATE TABLE media (
                    host_id TEXT NOT NULL, year INTEGER NOT NULL, vendor TEXT NOT NULL, product TEXT NOT NULL,
                    serial TEXT NOT NULL, source TEXT NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
                    report_sha256 TEXT NOT NULL, PRIMARY KEY(host_id, year, vendor, product, serial)) WITHOUT ROWID;
                CREATE INDEX media_year ON media(year);
                """)
        }
        migrator.registerMigration("v2-clock-skew") { db in
            try db.execute(sql: """
                ALTER TABLE reports ADD COLUMN skew_seconds INTEGER;
                ALTER TABLE reports ADD COLUMN skew TEXT;
                ALTER TABLE hosts ADD COLUMN last_skew_seconds INTEGER;
                ALTER TABLE hosts ADD COLUMN last_skew TEXT;
                ALTER TABLE hosts ADD COLUMN skewed_reports INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX reports_skew ON reports(year) WHERE skew IS NOT NULL;
                """)
        }
        migrator.registerMigration("v3-refusals") { db in
            // Refusals are counted per client address, reason and window instead of one row per
            // request, and the table is bounded: a flood of junk cannot take the disk reports need.
            try db.execute(sql: """
                CREATE TABLE refusals (
                    id INTEGER PRIMARY KEY, address TEXT NOT NULL, reason TEXT NOT NULL, window_start TEXT NOT NULL,
                    count INTEGER NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL, source TEXT NOT NULL, detail TEXT NOT NULL,
                    UNIQUE(address, reason, window_start));
                CREATE INDEX refusals_window ON refusals(window_start, id);
                CREATE TABLE refusal_drops (id INTEGER PRIMARY KEY CHECK (id = 1), windows INTEGER NOT NULL, requests INTEGER NOT NULL);
                INSERT INTO refusal_drops (id, windows, requests) VALUES (1, 0, 0);
                """)
            // Refusals logged one row each before move into the counted table, bounded on the way.
            let old = try Row.fetchCursor(db, sql: "SELECT received_at, source, reason, substr(detail, 1, 4096) AS detail FROM ingest_log WHERE outcome = 'refused' ORDER BY id")
            while let row = try old.next() {
                let refusal = IngestRefusal(reason: row["reason"] ?? "refused", detail: row["detail"] ?? "")
                try Self.logRefusal(db, refusal, receivedAt: Self.date(row["received_at"]), source: row["source"] ?? "", limits: refusalLimits)
            }
            try db.execute(sql: "DELETE FROM ingest_log WHERE outcome = 'refused'")
        }
        migrator.registerMigration("v4-repeats") { db in
            // What anyone holding a copy of an envelope can send again and again (a duplicate, a
            // replay) brings no new signed content: it is counted per host, report and window in
            // a bounded table, as refusals are, instead of one row per request.
            try db.execute(sql: """
                CREATE TABLE repeats (
                    id INTEGER PRIMARY KEY, host_id TEXT NOT NULL, payload_sha256 TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT,
                    window_start TEXT NOT NULL, count INTEGER NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL,
                    source TEXT NOT NULL, keyid TEXT, epoch INTEGER, seq INTEGER, detail TEXT NOT NULL,
                    UNIQUE(host_id, payload_sha256, outcome, window_start));
                CREATE INDEX repeats_window ON repeats(window_start, id);
                CREATE TABLE repeat_drops (id INTEGER PRIMARY KEY CHECK (id = 1), windows INTEGER NOT NULL, requests INTEGER NOT NULL);
                INSERT INTO repeat_drops (id, windows, requests) VALUES (1, 0, 0);
                """)
            // Duplicates and replays logged one row each before move into the counted table.
            let old = try Row.fetchCursor(db, sql: """
                SELECT received_at, source, host_id, keyid, epoch, seq, payload_sha256, outcome, reason, substr(detail, 1, 4096) AS detail
                FROM ingest_log WHERE outcome IN ('duplicate', 'replay') ORDER BY id
                """)
            while let row = try old.next() {
                let repeated = Repeat(
                    hostID: row["host_id"] ?? "", payloadSHA256: row["payload_sha256"] ?? "", outcome: row["outcome"] ?? "duplicate", reason: row["reason"],
                    keyid: row["keyid"], epoch: row["epoch"], seq: row["seq"], detail: UntrustedText.bounded(row["detail"] ?? ""))
                try Self.logRepeat(db, repeated, receivedAt: Self.date(row["received_at"]), source: row["source"] ?? "", limits: refusalLimits)
            }
            try db.execute(sql: "DELETE FROM ingest_log WHERE outcome IN ('duplicate', 'replay')")
        }
        ConsoleSchema.register(&migrator)
        return migrator
    }

    // MARK: - Ingest

    /// Applies the chain matrix to a verified report and stores it, all in one transaction:
    /// after a crash the report is either wholly stored or not at all. Replays and forks come
    /// back as results (their outcome says so); a key or host that does not match is a refusal.
    public func record(_ submission: VerifiedSubmission, envelope: [UInt8], receivedAt: Date, source: String) throws(MijianError) -> Result<IngestResult, IngestRefusal> {
        do {
            let digest = ReportDigest(report: submission.report)
            let source = Self.boundedSource(source)
            return try pool.write { db in try self.record(db, submission, digest: digest, envelope: envelope, receivedAt: receivedAt, source: source) }
        } catch {
            throw MijianError.database("cannot store the report", error, path: path)
        }
    }

    /// The async form of `record`, for request handlers: group commit. Submissions that arrive
    /// while the writer is busy wait together and are then applied in arrival order in one
    /// transaction, each in its own savepoint (one that fails is rolled back alone and answered
    /// with its error). Nobody is answered before the transaction holding their report has
    /// committed, and a crash before the commit leaves every report of the group absent.
    public func record(_ submission: VerifiedSubmission, envelope: [UInt8], receivedAt: Date, source: String) async throws(MijianError) -> Result<IngestResult, IngestRefusal> {
        // The digest of the findings is worked out here, in parallel, not in the writer's turn.
        let digest = ReportDigest(report: submission.report)
        let outcome: Result<Result<IngestResult, IngestRefusal>, MijianError> = await withCheckedContinuation { continuation in
            let pending = GroupCommit.Pending(
                submission: submission, digest: digest, envelope: envelope, receivedAt: receivedAt, source: Self.boundedSource(source), continuation: continuation)
            if group.enqueue(pending) {
                group.queue.async { self.drainGroups() }
            }
        }
        return try outcome.get()
    }

    /// Commits waiting groups until none is left.
    private func drainGroups() {
        while let items = group.take() {
            let results = commitGroup(items)
            for (item, result) in zip(items, results) { item.continuation.resume(returning: result) }
        }
    }

    private func commitGroup(_ items: [GroupCommit.Pending]) -> [Result<Result<IngestResult, IngestRefusal>, MijianError>] {
        do {
            return try pool.write { db in
                var results: [Result<Result<IngestResult, IngestRefusal>, MijianError>] = []
                results.reserveCapacity(items.count)
                for item in items {
                    var value: Result<IngestResult, IngestRefusal>?
                    do {
                        try db.inSavepoint {
                            value = try self.record(db, item.submission, digest: item.digest, envelope: item.envelope, receivedAt: item.receivedAt, source: item.source)
                            return .commit
                        }
                    } catch {
                        // SQLite may have rolled the whole transaction back (disk full, I/O
                        // error): then nothing of the group stands and every member hears so.
                        guard db.isInsideTransaction else { throw error }
                        results.append(.failure(MijianError.database("cannot store the report", error, path: path)))
                        continue
                    }
                    // One answer per submission, always: a waiting request is never left without one.
                    results.append(value.map { .success($0) } ?? .failure(MijianError(.database, "the report was not stored", path: path)))
                }
                return results
            }
        } catch {
            let failure = MijianError.database("cannot store the report", error, path: path)
            return items.map { _ in .failure(failure) }
        }
    }

    private func record(_ db: Database, _ submission: VerifiedSubmission, digest: ReportDigest, envelope: [UInt8], receivedAt: Date, source: String) throws -> Result<IngestResult, IngestRefusal> {
        let report = submission.report
        let hostID = report.host.hostID
        let sha = submission.payloadSHA256
        let received = RFC3339.string(from: receivedAt)
        func log(_ outcome: String, reason: String?, detail: String) throws {
            try db.cachedStatement(sql: """
                INSERT INTO ingest_log (received_at, source, host_id, keyid, epoch, seq, payload_sha256, outcome, reason, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [received, source, hostID, submission.keyid, report.epoch, report.seq, sha, outcome, reason, detail])
        }
        // Refusals are counted with every other refusal, one row per address, reason and window.
        func refuse(_ refusal: IngestRefusal) throws -> Result<IngestResult, IngestRefusal> {
            var refusal = refusal
            refusal.windowCount = try Self.logRefusal(db, refusal, receivedAt: receivedAt, source: source, limits: refusalLimits)
            return .failure(refusal)
        }
        // What anyone can send again without new signed content is counted, one row per report and window.
        func repeated(_ outcome: IngestResult, reason: String?) throws -> Result<IngestResult, IngestRefusal> {
            var outcome = outcome
            let entry = Repeat(
                hostID: hostID, payloadSHA256: sha, outcome: outcome.outcome.rawValue, reason: reason, keyid: submission.keyid, epoch: report.epoch,
                seq: report.seq, detail: outcome.detail)
            outcome.repeatCount = try Self.logRepeat(db, entry, receivedAt: receivedAt, source: source, limits: refusalLimits)
            return .success(outcome)
        }
        // The key must still be enrolled for this very machine.
        guard let keyRow = try Row.fetchOne(db.cachedStatement(sql: "SELECT host_id, revoked_at FROM keys WHERE keyid = ?"), arguments: [submission.keyid]) else {
            return try refuse(IngestRefusal(reason: "unknown-key", detail: "key \(submission.keyid) is not enrolled"))
        }
        if let revoked: String = keyRow["revoked_at"] {
            return try refuse(IngestRefusal(reason: "revoked", detail: "key \(submission.keyid) was revoked at \(revoked)"))
        }
        // Identity text is stored with the host and shown everywhere: bounded before anything else reads it.
        if let refusal = IdentityBounds.refusal(for: report) { return try refuse(refusal) }
        let enrolledHost: String = keyRow["host_id"]
        guard enrolledHost == hostID else {
            return try refuse(IngestRefusal(reason: "host-mismatch", detail: "key \(submission.keyid) is enrolled for host \(enrolledHost), but the report names host \(hostID)"))
        }
        func result(_ outcome: ChainOutcome, _ missing: ClosedRange<Int64>?, _ detail: String) -> IngestResult {
            IngestResult(outcome: outcome, hostID: hostID, payloadSHA256: sha, epoch: report.epoch, seq: report.seq, missing: missing, detail: detail)
        }
        // An exact copy of anything already stored for this host is a duplicate, wherever it sits.
        if try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM reports WHERE host_id = ? AND payload_sha256 = ?"), arguments: [hostID, sha]) != nil {
            return try repeated(result(.duplicate, nil, "already stored (epoch \(report.epoch), seq \(report.seq))"), reason: nil)
        }
        let head = try Row.fetchOne(db.cachedStatement(sql: "SELECT epoch, seq, digest, last_issued_at FROM hosts WHERE host_id = ?"), arguments: [hostID])
        let state = head.map { ChainState(epoch: $0["epoch"], seq: $0["seq"], digest: $0["digest"]) }
        let previousIssuedAt = head.flatMap { ($0["last_issued_at"] as String?).flatMap(RFC3339.date(from:)) }
        if let refusal = ChainMatrix.refusal(state: state, epoch: report.epoch, seq: report.seq, receivedAt: receivedAt, limits: chainLimits) {
            return try refuse(refusal)
        }
        let decision = ChainMatrix.decide(state: state, epoch: report.epoch, seq: report.seq, prev: report.prevSHA256, digest: sha)
        var outcome = result(decision.outcome, decision.missing, decision.detail)
        // Whatever is not stored (a replay, a duplicate of the head) can be sent again and again.
        guard decision.outcome.isStored else {
            return try repeated(outcome, reason: decision.outcome.isConflict ? decision.outcome.rawValue : nil)
        }
        try log(decision.outcome.rawValue, reason: decision.outcome.isConflict ? decision.outcome.rawValue : nil, detail: decision.detail)
        let skew = ClockSkew.judge(
            issuedAt: report.issuedAt, receivedAt: receivedAt, previousIssuedAt: decision.outcome.advances ? previousIssuedAt : nil, epoch: report.epoch)
        let skewSeconds = skew == "epoch-ahead"
            ? ClockSkew.epochSeconds(epoch: report.epoch, receivedAt: receivedAt) : ClockSkew.seconds(issuedAt: report.issuedAt, receivedAt: receivedAt)
        if let skew {
            outcome.clockSkew = (skew, skewSeconds)
            try log("clock-skew", reason: skew, detail: ClockSkew.describe(skew, seconds: skewSeconds))
        }
        let issued = RFC3339.string(from: report.issuedAt)
        let failCount = report.findings.count(where: { $0.status == .fail })
        try db.cachedStatement(sql: """
            INSERT INTO reports (payload_sha256, host_id, keyid, epoch, seq, prev_sha256, issued_at, received_at, year, outcome, source, policy_sha256, fail_count, envelope, skew_seconds, skew)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                sha, hostID, submission.keyid, report.epoch, report.seq, report.prevSHA256, issued, received, digest.year,
                decision.outcome.rawValue, source, report.policy.sha256, failCount, Data(envelope), skewSeconds, skew,
            ])
        guard decision.outcome.advances else { return .success(outcome) }
        try Self.advance(db, submission, digest: digest, issued: issued, received: received, failCount: failCount, skewSeconds: skewSeconds, skew: skew)
        if let missing = decision.missing {
            try db.cachedStatement(sql: "INSERT INTO gaps (host_id, epoch, from_seq, to_seq, year, report_sha256, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .execute(arguments: [hostID, report.epoch, missing.lowerBound, missing.upperBound, digest.year, sha, received])
        }
        return .success(outcome)
    }

    private static func advance(_ db: Database, _ submission: VerifiedSubmission, digest: ReportDigest, issued: String, received: String, failCount: Int, skewSeconds: Int64, skew: String?) throws {
        let report = submission.report
        let host = report.host
        let sha = submission.payloadSHA256
        try db.cachedStatement(sql: """
            INSERT INTO hosts (host_id, hostname, asset_id, classification, responsible, unit, os, kernel, keyid, epoch, seq, digest,
                last_issued_at, last_received_at, first_received_at, policy_id, policy_version, policy_sha256, agent_version, last_fail_count,
                last_skew_seconds, last_skew, skewed_reports)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(host_id) DO UPDATE SET hostname = excluded.hostname, asset_id = excluded.asset_id,
                classification = excluded.classification, responsible = excluded.responsible, unit = excluded.unit,
                os = excluded.os, kernel = excluded.kernel, keyid = excluded.keyid, epoch = excluded.epoch, seq = excluded.seq,
                digest = excluded.digest, last_issued_at = excluded.last_issued_at, last_received_at = excluded.last_received_at,
                policy_id = excluded.policy_id, policy_version = excluded.policy_version, policy_sha256 = excluded.policy_sha256,
                agent_version = excluded.agent_version, last_fail_count = excluded.last_fail_count,
                last_skew_seconds = excluded.last_skew_seconds, last_skew = excluded.last_skew, skewed_reports = skewed_reports + excluded.skewed_reports
            """).execute(arguments: [
                host.hostID, host.hostname, host.assetID, host.classification?.rawValue, host.responsible, host.unit, host.os, host.kernel,
                submission.keyid, report.epoch, report.seq, sha, issued, received, received, report.policy.id, report.policy.version,
                report.policy.sha256, report.agent.version, failCount, skewSeconds, skew, skew == nil ? 0 : 1,
            ])
        try db.cachedStatement(sql: """
            INSERT INTO host_years (host_id, year, hostname, asset_id, classification, responsible, reports, last_issued_at, last_report_sha256, policy_id, policy_sha256)
            VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
            ON CONFLICT(host_id, year) DO UPDATE SET hostname = excluded.hostname, asset_id = excluded.asset_id,
                classification = excluded.classification, responsible = excluded.responsible, reports = reports + 1,
                last_issued_at = excluded.last_issued_at, last_report_sha256 = excluded.last_report_sha256,
                policy_id = excluded.policy_id, policy_sha256 = excluded.policy_sha256
            """).execute(arguments: [
                host.hostID, digest.year, host.hostname, host.assetID, host.classification?.rawValue, host.responsible, issued, sha,
                report.policy.id, report.policy.sha256,
            ])
        var counts: [String: RuleCount] = [:]
        for finding in digest.findings {
            var count = counts[finding.ruleID] ?? RuleCount()
            switch finding.status {
            case .pass: count.pass += 1
            case .fail: count.fail += 1
            case .error: count.error += 1
            case .notapplicable, .notchecked, .informational: count.other += 1
            }
            counts[finding.ruleID] = count
        }
        let ruleStatement = try db.cachedStatement(sql: """
            INSERT INTO host_rules (host_id, year, rule_id, pass, fail, error, other) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(host_id, year, rule_id) DO UPDATE SET pass = pass + excluded.pass, fail = fail + excluded.fail,
                error = error + excluded.error, other = other + excluded.other
            """)
        for (rule, count) in counts.sorted(by: { $0.key < $1.key }) {
            try ruleStatement.execute(arguments: [host.hostID, digest.year, rule, count.pass, count.fail, count.error, count.other])
        }
        let findingStatement = try db.cachedStatement(sql: """
            INSERT INTO findings (host_id, year, rule_id, subject, status, detail, count, first_observed_at, last_observed_at, first_report_sha256, last_report_sha256)
            VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
            ON CONFLICT(host_id, year, rule_id, subject, status) DO UPDATE SET detail = excluded.detail, count = count + 1,
                first_observed_at = min(first_observed_at, excluded.first_observed_at),
                last_observed_at = max(last_observed_at, excluded.last_observed_at), last_report_sha256 = excluded.last_report_sha256
            """)
        for finding in digest.findings where finding.status == .fail || finding.status == .error {
            let observed = RFC3339.string(from: finding.observedAt)
            try findingStatement.execute(arguments: [
                host.hostID, digest.year, finding.ruleID, finding.subject, finding.status.rawValue, finding.detail, observed, observed, sha, sha,
            ])
        }
        let mediumStatement = try db.cachedStatement(sql: """
            INSERT INTO media (host_id, year, vendor, product, serial, source, first_seen, last_seen, report_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(host_id, year, vendor, product, serial) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
                last_seen = max(last_seen, excluded.last_seen), report_sha256 = excluded.report_sha256
            """)
        for medium in digest.media {
            try mediumStatement.execute(arguments: [
                host.hostID, digest.year, medium.identity.vendor, medium.identity.product, medium.identity.serial, medium.source, issued, issued, sha,
            ])
        }
    }

    /// Records a submission refused before the chain check (bad signature, malformed, …): counted
    /// in the row of its address, reason and window (see `RefusalLogLimits`). Returns the row's
    /// count with this refusal, or nil when it could not be written.
    @discardableResult
    public func logRefusal(_ refusal: IngestRefusal, receivedAt: Date, source: String) -> Int64? {
        // A refusal log that cannot be written must not turn the refusal into a server error.
        try? pool.write { db in try Self.logRefusal(db, refusal, receivedAt: receivedAt, source: source, limits: refusalLimits) }
    }

    /// Most UTF-8 bytes of a source (a client's address, a file) as logged and stored.
    public static let maxSourceBytes = 256

    /// A source bounded and escaped, as every log line and row holds it.
    public static func boundedSource(_ source: String) -> String { UntrustedText.bounded(source, limit: maxSourceBytes) }

    /// The address a refusal is counted under: the source without the client's port, which
    /// changes with every connection (`http 192.0.2.7:51234` → `http 192.0.2.7`), and an IPv6
    /// client by its /64, which one client holds whole (`http [2001:db8::1]:443` →
    /// `http [2001:db8::]/64`); any other source as it is.
    public static func refusalAddress(_ source: String) -> String {
        guard let colon = source.lastIndex(of: ":") else { return source }
        let port = source[source.index(after: colon)...]
        let host = source[..<colon]
        guard !port.isEmpty, port.utf8.allSatisfy({ (0x30...0x39).contains($0) }), host.hasSuffix("]") || !host.contains(":") else { return source }
        guard let open = host.lastIndex(of: "["), let address = IPAddress(host[host.index(after: open)..<host.index(before: host.endIndex)]) else {
            return String(host)
        }
        if let v4 = address.mappedV4 { return "\(host[..<open])\(v4)" }
        guard address.isV6, let network = IPNetwork(address: address, prefixLength: 64) else { return String(host) }
        return "\(host[..<open])[\(network.address)]/64"
    }

    /// Counts one refusal in its (address, reason, window) row, making the row when it is the
    /// window's first; a new row past `maxRows` drops the oldest windows and counts what it dropped.
    /// Returns the row's count with this refusal.
    @discardableResult
    static func logRefusal(_ db: Database, _ refusal: IngestRefusal, receivedAt: Date, source: String, limits: RefusalLogLimits) throws -> Int64 {
        let source = boundedSource(source)
        let address = refusalAddress(source)
        let at = RFC3339.string(from: receivedAt)
        let window = windowStart(receivedAt, limits: limits)
        let counted = try Int64.fetchOne(db.cachedStatement(sql: """
            UPDATE refusals SET count = count + 1, first_at = min(first_at, ?), last_at = max(last_at, ?)
            WHERE address = ? AND reason = ? AND window_start = ? RETURNING count
            """), arguments: [at, at, address, refusal.reason, window])
        if let counted { return counted }
        try db.cachedStatement(sql: """
            INSERT INTO refusals (address, reason, window_start, count, first_at, last_at, source, detail) VALUES (?, ?, ?, 1, ?, ?, ?, ?)
            """).execute(arguments: [address, refusal.reason, window, at, at, source, refusal.detail])
        try dropOldestWindows(db, table: "refusals", drops: "refusal_drops", limits: limits)
        return 1
    }

    /// An outcome anyone can repeat without new signed content, as the repeat table counts it.
    struct Repeat {
        var hostID: String
        var payloadSHA256: String
        var outcome: String
        var reason: String?
        var keyid: String?
        var epoch: Int64?
        var seq: Int64?
        var detail: String
    }

    /// Counts one repeat in its (host, report, outcome, window) row, making the row when it is the
    /// window's first; a new row past `maxRows` drops the oldest windows and counts what it
    /// dropped, as the refusal table does. Returns the row's count with this repeat.
    @discardableResult
    static func logRepeat(_ db: Database, _ entry: Repeat, receivedAt: Date, source: String, limits: RefusalLogLimits) throws -> Int64 {
        let source = boundedSource(source)
        let at = RFC3339.string(from: receivedAt)
        let window = windowStart(receivedAt, limits: limits)
        let counted = try Int64.fetchOne(db.cachedStatement(sql: """
            UPDATE repeats SET count = count + 1, first_at = min(first_at, ?), last_at = max(last_at, ?)
            WHERE host_id = ? AND payload_sha256 = ? AND outcome = ? AND window_start = ? RETURNING count
            """), arguments: [at, at, entry.hostID, entry.payloadSHA256, entry.outcome, window])
        if let counted { return counted }
        try db.cachedStatement(sql: """
            INSERT INTO repeats (host_id, payload_sha256, outcome, reason, window_start, count, first_at, last_at, source, keyid, epoch, seq, detail)
            VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                entry.hostID, entry.payloadSHA256, entry.outcome, entry.reason, window, at, at, source, entry.keyid, entry.epoch, entry.seq, entry.detail,
            ])
        try dropOldestWindows(db, table: "repeats", drops: "repeat_drops", limits: limits)
        return 1
    }

    /// Keeps a counted table (`refusals`, `repeats`) within `maxRows`: past it the oldest windows
    /// are dropped, and how many windows and submissions they counted is added to `drops`. The
    /// table names are the two constants above, never input.
    private static func dropOldestWindows(_ db: Database, table: String, drops: String, limits: RefusalLogLimits) throws {
        let rows = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM \(table)")) ?? 0
        let excess = rows - max(limits.maxRows, 1)
        guard excess > 0 else { return }
        let oldest = "SELECT id FROM \(table) ORDER BY window_start, id LIMIT ?"
        let dropped = try Int64.fetchOne(db, sql: "SELECT coalesce(sum(count), 0) FROM \(table) WHERE id IN (\(oldest))", arguments: [excess]) ?? 0
        try db.execute(sql: "DELETE FROM \(table) WHERE id IN (\(oldest))", arguments: [excess])
        try db.execute(sql: "UPDATE \(drops) SET windows = windows + ?, requests = requests + ? WHERE id = 1", arguments: [excess, dropped])
    }

    /// The start of the window `date` falls in, as stored. Whole windows since 1970, in floating
    /// point: a receive time far out cannot trap.
    static func windowStart(_ date: Date, limits: RefusalLogLimits) -> String {
        let width = Double(max(limits.windowSeconds, 1))
        return RFC3339.string(from: Date(timeIntervalSince1970: (date.timeIntervalSince1970 / width).rounded(.down) * width))
    }

    /// The counted duplicates and replays, newest window first.
    public func repeats(limit: Int = 1000) throws(MijianError) -> [RepeatRecord] {
        do {
            return try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM repeats ORDER BY window_start DESC, id DESC LIMIT ?", arguments: [limit]).map { row in
                    RepeatRecord(
                        hostID: row["host_id"], payloadSHA256: row["payload_sha256"], outcome: row["outcome"], windowStart: Self.date(row["window_start"]),
                        count: row["count"], firstAt: Self.date(row["first_at"]), lastAt: Self.date(row["last_at"]), source: row["source"],
                        epoch: row["epoch"], seq: row["seq"], detail: row["detail"])
                }
            }
        } catch {
            throw MijianError.database("cannot read the repeats", error, path: path)
        }
    }

    /// The counted refusals, newest window first.
    public func refusals(limit: Int = 1000) throws(MijianError) -> [RefusalRecord] {
        do {
            return try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM refusals ORDER BY window_start DESC, id DESC LIMIT ?", arguments: [limit]).map { row in
                    RefusalRecord(
                        address: row["address"], reason: row["reason"], windowStart: Self.date(row["window_start"]), count: row["count"],
                        firstAt: Self.date(row["first_at"]), lastAt: Self.date(row["last_at"]), source: row["source"], detail: row["detail"])
                }
            }
        } catch {
            throw MijianError.database("cannot read the refusals", error, path: path)
        }
    }

    /// Windows of the refusal table dropped to keep it within its bound, and the refusals they counted.
    public func refusalDrops() throws(MijianError) -> (windows: Int64, requests: Int64) {
        do {
            return try pool.read { db in
                let row = try Row.fetchOne(db, sql: "SELECT windows, requests FROM refusal_drops WHERE id = 1")
                return (row?["windows"] ?? 0, row?["requests"] ?? 0)
            }
        } catch {
            throw MijianError.database("cannot read the refusals", error, path: path)
        }
    }

    // MARK: - Registry

    /// Adds a key to the registry; when it replaces `previousKeyID`, that key is revoked in the same transaction.
    public func approve(_ record: KeyRecord) throws(MijianError) {
        do {
            try pool.write { db in
                if let existing = try Row.fetchOne(db, sql: "SELECT host_id, revoked_at FROM keys WHERE keyid = ?", arguments: [record.keyid]) {
                    let revoked: String? = existing["revoked_at"]
                    throw MijianError(.enrolment, "key \(record.keyid) is already in the registry\(revoked.map { " (revoked at \($0); a revoked key cannot come back)" } ?? "")")
                }
                if let previous = record.previousKeyID {
                    guard let old = try Row.fetchOne(db, sql: "SELECT host_id, revoked_at FROM keys WHERE keyid = ?", arguments: [previous]) else {
                        throw MijianError(.enrolment, "the rotation names previous key \(previous), which is not in the registry")
                    }
                    let oldHost: String = old["host_id"]
                    guard oldHost == record.hostID else {
                        throw MijianError(.enrolment, "the previous key \(previous) belongs to host \(oldHost), not to \(record.hostID)")
                    }
                    if let revoked: String = old["revoked_at"] {
                        throw MijianError(.enrolment, "the previous key \(previous) was revoked at \(revoked); enrol the machine afresh instead")
                    }
                    try db.execute(sql: "UPDATE keys SET revoked_at = ?, revoke_reason = ? WHERE keyid = ?",
                        arguments: [RFC3339.string(from: record.approvedAt), "rotated to \(record.keyid)", previous])
                }
                try db.execute(sql: """
                    INSERT INTO keys (keyid, pem, host_id, hostname, asset_id, classification, responsible, agent_version, previous_keyid, note, requested_at, approved_at, request_sha256)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [
                        record.keyid, record.pem, record.hostID, record.hostname, record.assetID, record.classification?.rawValue,
                        record.responsible, record.agentVersion, record.previousKeyID, record.note,
                        RFC3339.string(from: record.requestedAt), RFC3339.string(from: record.approvedAt), record.requestSHA256,
                    ])
            }
        } catch {
            throw MijianError.database("cannot approve the key", error, path: path)
        }
        registryChanges.increment()
    }

    /// Revokes a key; reports it signed are refused from now on (those already stored stay).
    public func revoke(keyid: String, at date: Date, reason: String) throws(MijianError) {
        do {
            try pool.write { db in
                guard let row = try Row.fetchOne(db, sql: "SELECT revoked_at FROM keys WHERE keyid = ?", arguments: [keyid]) else {
                    throw MijianError(.notFound, "no key \(keyid) in the registry (see `mijian-collector enroll list`)")
                }
                if let revoked: String = row["revoked_at"] { throw MijianError(.enrolment, "key \(keyid) was already revoked at \(revoked)") }
                try db.execute(sql: "UPDATE keys SET revoked_at = ?, revoke_reason = ? WHERE keyid = ?", arguments: [RFC3339.string(from: date), reason, keyid])
            }
        } catch {
            throw MijianError.database("cannot revoke the key", error, path: path)
        }
        registryChanges.increment()
    }

    /// Every key of the registry, oldest approval first.
    public func keys() throws(MijianError) -> [KeyRecord] {
        do {
            return try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM keys ORDER BY approved_at, keyid").map(Self.keyRecord) }
        } catch {
            throw MijianError.database("cannot read the registry", error, path: path)
        }
    }

    /// The key with this id, active or not.
    public func key(_ keyid: String) throws(MijianError) -> KeyRecord? {
        do {
            return try pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM keys WHERE keyid = ?", arguments: [keyid]).map(Self.keyRecord) }
        } catch {
            throw MijianError.database("cannot read the registry", error, path: path)
        }
    }

    /// A key's PEM and revocation time, for the verifier; nil when the key was never enrolled
    /// (or the database cannot be read, which refuses rather than accepts).
    public func registryEntry(_ keyid: String) -> (pem: String, revokedAt: Date?)? {
        let row = try? pool.read { db in try Row.fetchOne(db.cachedStatement(sql: "SELECT pem, revoked_at FROM keys WHERE keyid = ?"), arguments: [keyid]) }
        guard let row, let pem: String = row["pem"] else { return nil }
        return (pem, (row["revoked_at"] as String?).flatMap(RFC3339.date(from:)))
    }

    private static func keyRecord(_ row: Row) -> KeyRecord {
        KeyRecord(
            keyid: row["keyid"], pem: row["pem"], hostID: row["host_id"], hostname: row["hostname"], assetID: row["asset_id"],
            classification: (row["classification"] as String?).flatMap(Classification.init(rawValue:)), responsible: row["responsible"],
            agentVersion: row["agent_version"], previousKeyID: row["previous_keyid"], note: row["note"],
            requestedAt: date(row["requested_at"]), approvedAt: date(row["approved_at"]), requestSHA256: row["request_sha256"],
            revokedAt: (row["revoked_at"] as String?).flatMap(RFC3339.date(from:)), revokeReason: row["revoke_reason"])
    }

    static func date(_ text: String?) -> Date { text.flatMap(RFC3339.date(from:)) ?? Date(timeIntervalSince1970: 0) }

    // MARK: - Queries

    /// Every machine that has sent an accepted report, by host name.
    public func hosts() throws(MijianError) -> [HostRecord] {
        do {
            return try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT h.*, (SELECT count(*) FROM reports r WHERE r.host_id = h.host_id) AS report_count,
                        (SELECT count(*) FROM reports r WHERE r.host_id = h.host_id AND r.outcome = 'fork') AS fork_count,
                        (SELECT CAST(min(total(to_seq - from_seq + 1), 9223372036854775807.0) AS INTEGER) FROM gaps g WHERE g.host_id = h.host_id) AS missing_count
                    FROM hosts h ORDER BY h.hostname, h.host_id
                    """).map(Self.hostRecord)
            }
        } catch {
            throw MijianError.database("cannot read the hosts", error, path: path)
        }
    }

    private static func hostRecord(_ row: Row) -> HostRecord {
        HostRecord(
            hostID: row["host_id"], hostname: row["hostname"], assetID: row["asset_id"],
            classification: (row["classification"] as String?).flatMap(Classification.init(rawValue:)), responsible: row["responsible"],
            keyid: row["keyid"], chain: ChainState(epoch: row["epoch"], seq: row["seq"], digest: row["digest"]),
            lastIssuedAt: date(row["last_issued_at"]), lastReceivedAt: date(row["last_received_at"]), policyID: row["policy_id"],
            policySHA256: row["policy_sha256"], lastFailCount: row["last_fail_count"], reportCount: row["report_count"],
            forkCount: row["fork_count"], missingCount: row["missing_count"], lastSkewSeconds: row["last_skew_seconds"], lastSkew: row["last_skew"],
            skewedReports: row["skewed_reports"])
    }

    /// The stored reports of a host, newest first: digest, epoch, seq, outcome, times.
    public func reports(hostID: String, limit: Int = 100) throws(MijianError) -> [JSONValue] {
        do {
            return try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT payload_sha256, epoch, seq, outcome, issued_at, received_at, fail_count, source FROM reports
                    WHERE host_id = ? ORDER BY epoch DESC, seq DESC, id DESC LIMIT ?
                    """, arguments: [hostID, limit]).map { row -> JSONValue in
                    [
                        "payload_sha256": .string(row["payload_sha256"]), "epoch": .int(row["epoch"]), "seq": .int(row["seq"]),
                        "outcome": .string(row["outcome"]), "issued_at": .string(row["issued_at"]), "received_at": .string(row["received_at"]),
                        "fail_count": .int(row["fail_count"]), "source": .string(row["source"]),
                    ]
                }
            }
        } catch {
            throw MijianError.database("cannot read the reports", error, path: path)
        }
    }

    /// Recorded gaps of a host.
    public func gaps(hostID: String) throws(MijianError) -> [GapRecord] {
        do {
            return try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM gaps WHERE host_id = ? ORDER BY epoch, from_seq", arguments: [hostID]).map(Self.gapRecord)
            }
        } catch {
            throw MijianError.database("cannot read the gaps", error, path: path)
        }
    }

    private static func gapRecord(_ row: Row) -> GapRecord {
        GapRecord(hostID: row["host_id"], epoch: row["epoch"], fromSeq: row["from_seq"], toSeq: row["to_seq"], reportSHA256: row["report_sha256"], detectedAt: date(row["detected_at"]))
    }

    /// The envelope stored for a payload digest, byte for byte.
    public func envelope(payloadSHA256: String) throws(MijianError) -> [UInt8]? {
        do {
            return try pool.read { db in
                try Data.fetchOne(db, sql: "SELECT envelope FROM reports WHERE payload_sha256 = ? ORDER BY id LIMIT 1", arguments: [payloadSHA256]).map { Array($0) }
            }
        } catch {
            throw MijianError.database("cannot read the envelope", error, path: path)
        }
    }

    /// How many reports are stored per outcome, and how many log entries per outcome and reason
    /// (refusals as `refused/REASON`, duplicates and replays as they are, summed over their counted rows).
    public func counts() throws(MijianError) -> (stored: [String: Int], log: [String: Int]) {
        do {
            return try pool.read { db in
                var stored: [String: Int] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT outcome, count(*) AS n FROM reports GROUP BY outcome") { stored[row["outcome"]] = row["n"] }
                var log: [String: Int] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT outcome || coalesce('/' || reason, '') AS k, count(*) AS n FROM ingest_log GROUP BY k") { log[row["k"]] = row["n"] }
                for row in try Row.fetchAll(db, sql: "SELECT outcome || coalesce('/' || reason, '') AS k, sum(count) AS n FROM repeats GROUP BY k") {
                    log[row["k"], default: 0] += row["n"] as Int
                }
                for row in try Row.fetchAll(db, sql: "SELECT 'refused/' || reason AS k, sum(count) AS n FROM refusals GROUP BY reason") {
                    log[row["k"], default: 0] += row["n"] as Int
                }
                return (stored, log)
            }
        } catch {
            throw MijianError.database("cannot count the reports", error, path: path)
        }
    }

    /// Everything the assessment of `year` reads, in one consistent read.
    public func snapshot(year: Int) throws(MijianError) -> UnitSnapshot {
        do {
            return try pool.read { db in
                var hosts: [String: HostYear] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT * FROM host_years WHERE year = ?", arguments: [year]) {
                    let id: String = row["host_id"]
                    hosts[id] = HostYear(
                        hostID: id, hostname: row["hostname"], assetID: row["asset_id"],
                        classification: (row["classification"] as String?).flatMap(Classification.init(rawValue:)), responsible: row["responsible"],
                        reports: row["reports"], lastIssuedAt: Self.date(row["last_issued_at"]), lastReportSHA256: row["last_report_sha256"],
                        policySHA256: row["policy_sha256"], policyID: row["policy_id"], rules: [:])
                }
                let cursor = try Row.fetchCursor(db, sql: "SELECT host_id, rule_id, pass, fail, error, other FROM host_rules WHERE year = ?", arguments: [year])
                while let row = try cursor.next() {
                    let id: String = row["host_id"]
                    var count = RuleCount()
                    count.pass = row["pass"]
                    count.fail = row["fail"]
                    count.error = row["error"]
                    count.other = row["other"]
                    hosts[id]?.rules[row["rule_id"]] = count
                }
                // Machines with an active key that sent nothing this year still belong to the unit.
                let yearEnd = RFC3339.string(from: CollectorCalendar.end(of: year))
                for row in try Row.fetchAll(db, sql: "SELECT * FROM keys WHERE revoked_at IS NULL AND approved_at < ?", arguments: [yearEnd]) {
                    let key = Self.keyRecord(row)
                    guard hosts[key.hostID] == nil else { continue }
                    hosts[key.hostID] = HostYear(
                        hostID: key.hostID, hostname: key.hostname, assetID: key.assetID, classification: key.classification,
                        responsible: key.responsible, reports: 0, lastIssuedAt: nil, lastReportSHA256: nil, policySHA256: nil, policyID: nil, rules: [:])
                }
                let findings = try Row.fetchAll(db, sql: "SELECT * FROM findings WHERE year = ? ORDER BY host_id, rule_id, subject, status", arguments: [year]).compactMap { row -> FindingRecord? in
                    guard let status = Status(rawValue: row["status"]) else { return nil }
                    return FindingRecord(
                        hostID: row["host_id"], ruleID: row["rule_id"], subject: row["subject"], status: status, detail: row["detail"],
                        count: row["count"], firstObservedAt: Self.date(row["first_observed_at"]), lastObservedAt: Self.date(row["last_observed_at"]),
                        firstReportSHA256: row["first_report_sha256"], lastReportSHA256: row["last_report_sha256"])
                }
                let media = try Row.fetchAll(db, sql: "SELECT * FROM media WHERE year = ? ORDER BY vendor, product, serial, host_id", arguments: [year]).map { row in
                    MediumSighting(
                        hostID: row["host_id"], identity: MediumIdentity(vendor: row["vendor"], product: row["product"], serial: row["serial"]),
                        source: row["source"], firstSeen: Self.date(row["first_seen"]), lastSeen: Self.date(row["last_seen"]), reportSHA256: row["report_sha256"])
                }
                let gaps = try Row.fetchAll(db, sql: "SELECT * FROM gaps WHERE year = ? ORDER BY host_id, epoch, from_seq", arguments: [year]).map(Self.gapRecord)
                let forks = try Row.fetchAll(db, sql: "SELECT host_id, epoch, seq, payload_sha256, received_at FROM reports WHERE outcome = 'fork' AND year = ? ORDER BY host_id, epoch, seq", arguments: [year]).map { row in
                    ForkRecord(hostID: row["host_id"], epoch: row["epoch"], seq: row["seq"], reportSHA256: row["payload_sha256"], receivedAt: Self.date(row["received_at"]))
                }
                let skews = try Row.fetchAll(db, sql: """
                    SELECT host_id, epoch, seq, payload_sha256, skew, skew_seconds, issued_at, received_at FROM reports
                    WHERE skew IS NOT NULL AND year = ? ORDER BY host_id, epoch, seq
                    """, arguments: [year]).map { row in
                    SkewRecord(
                        hostID: row["host_id"], epoch: row["epoch"], seq: row["seq"], reportSHA256: row["payload_sha256"], kind: row["skew"],
                        seconds: row["skew_seconds"], issuedAt: Self.date(row["issued_at"]), receivedAt: Self.date(row["received_at"]))
                }
                return UnitSnapshot(
                    year: year, hosts: hosts.values.sorted { ($0.hostname, $0.hostID) < ($1.hostname, $1.hostID) }, findings: findings,
                    media: media, gaps: gaps, forks: forks, skews: skews)
            }
        } catch {
            throw MijianError.database("cannot read the year \(year)", error, path: path)
        }
    }
}

/// Submissions waiting for the writer, and whether a writer turn is running.
final class GroupCommit: Sendable {
    /// One waiting submission and the request that waits for its answer.
    struct Pending: Sendable {
        var submission: VerifiedSubmission
        var digest: ReportDigest
        var envelope: [UInt8]
        var receivedAt: Date
        var source: String
        var continuation: CheckedContinuation<Result<Result<IngestResult, IngestRefusal>, MijianError>, Never>
    }

    /// Most reports in one transaction.
    static let maxGroup = 256

    /// The writer's turns run here, off the cooperative thread pool, since they block on SQLite.
    let queue = DispatchQueue(label: "mijian.collector.group-commit")
    private let state = Mutex<(waiting: [Pending], running: Bool)>(([], false))

    /// Adds a submission; true when the caller must start a writer turn.
    func enqueue(_ pending: Pending) -> Bool {
        state.withLock { state in
            state.waiting.append(pending)
            if state.running { return false }
            state.running = true
            return true
        }
    }

    /// The next group in arrival order, or nil (and the turn ends) when nothing waits.
    func take() -> [Pending]? {
        state.withLock { state in
            guard !state.waiting.isEmpty else {
                state.running = false
                return nil
            }
            let count = min(state.waiting.count, Self.maxGroup)
            let group = Array(state.waiting.prefix(count))
            state.waiting.removeFirst(count)
            return group
        }
    }
}

/// A counter shared between threads.
final class ChangeCounter: Sendable {
    private let count = Atomic<Int>(0)

    /// The current count.
    var value: Int { count.load(ordering: .acquiring) }

    /// Adds one.
    func increment() { count.add(1, ordering: .releasing) }
}
