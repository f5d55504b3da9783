import Foundation
import GRDB
import GRDBSQLite
import MijianCore
import MijianEvidence
import Synchronization

/// The SQLite backend of the collector's store (GRDB, WAL mode on disk, versioned migrations):
/// the key registry, every envelope as it was signed (in a Zstandard frame when that is smaller, `EnvelopeCodec`), chain heads, and the per-year aggregates the
/// assessment reads. Opened from any GRDB `DatabaseWriter`: a `DatabasePool` over a directory
/// in service, a `DatabaseQueue` in memory for tests. Every access is GRDB's async access, so
/// no request handler blocks its thread on SQLite.
///
/// SQLite has one writer: the write transaction is the per-host lock the ingest ledger asks for.
/// Reports that arrive while the writer is busy are committed together (group commit).
public final class SQLiteStore: CollectorStorage {
    /// The database.
    public let writer: any DatabaseWriter
    /// The database file, or nil in memory.
    public let path: String?
    /// How far a report may move its host's chain.
    public let chainLimits: ChainLimits
    /// How much of the refusal log is kept.
    public let refusalLimits: RefusalLogLimits
    private let group = GroupCommit()
    /// The thread groups are committed on, one after the other: GRDB's synchronous write, so
    /// that between two groups the writer waits for nothing (awaited, each group's end resumed
    /// the lane on Swift's cooperative pool, behind every request's verification queued there).
    /// No request's task or event loop ever waits on this thread; they await their answer.
    private let lane = DispatchQueue(label: "mijian.collector.writer")
    private let registryChanges = ChangeCounter()
    /// Copies the write-ahead log into the database beside the writer (nil in memory).
    private let checkpointer: Checkpointer?
    /// What the writer did since the store was opened.
    public let statistics = WriterStatistics()

    /// Counts approvals and revocations made through this store.
    public var registryGeneration: Int { registryChanges.value }

    /// Says that the registry changed through this store's writer.
    func registryChanged() { registryChanges.increment() }

    /// The file, or "an in-memory database".
    public var locationDescription: String { path ?? "an in-memory database" }

    /// Opens a store over `writer` and runs the migrations.
    public init(writer: any DatabaseWriter, path: String? = nil, chainLimits: ChainLimits = ChainLimits(), refusalLimits: RefusalLogLimits = RefusalLogLimits()) throws(StoreError) {
        self.writer = writer
        self.path = path
        self.chainLimits = chainLimits
        self.refusalLimits = refusalLimits
        do {
            try Self.migrator(refusalLimits: refusalLimits).migrate(writer)
        } catch {
            throw StoreError.unavailable("cannot migrate the collector database\(path.map { " \($0)" } ?? "")", underlying: error)
        }
        // A checkpoint needs a connection of its own: on the writer's it would hold every report behind it.
        checkpointer = writer is DatabasePool ? path.flatMap { try? Checkpointer(path: $0) } : nil
    }

    /// Opens (creating when needed) `collector.sqlite` in `directory`.
    public convenience init(directory: String, chainLimits: ChainLimits = ChainLimits(), refusalLimits: RefusalLogLimits = RefusalLogLimits()) throws(StoreError) {
        do {
            try EvidenceFiles.ensureDirectory(directory, mode: 0o700)
        } catch {
            throw StoreError.unavailable("cannot create the data directory \(directory)", underlying: error)
        }
        let path = FilePathText.join(directory, "collector.sqlite")
        let pool: DatabasePool
        do {
            // On a small data disk the writer copies the log itself sooner (`writerPages(freeBytes:)`).
            pool = try DatabasePool(path: path, configuration: Self.configuration(writerPages: Self.writerPages(freeBytes: Self.freeBytes(directory))))
        } catch {
            throw StoreError.unavailable("cannot open the collector database \(path)", underlying: error)
        }
        try self.init(writer: pool, path: path, chainLimits: chainLimits, refusalLimits: refusalLimits)
    }

    /// The writer's own checkpoint threshold, in pages of 4 KiB, on a data disk with `freeBytes`
    /// free when the store opens: `Checkpointer.writerPages` (16 MiB of log), or a quarter of the
    /// free space when that is less, never under 256 pages (1 MiB). The log grows to the threshold
    /// only when the checkpointer's copies fall behind (a flood on a loaded machine); on a 16 MiB
    /// data disk a 16 MiB log cannot fit, and a write that finds the disk full is lost (a refusal's
    /// count) or answered with an error. Unknown free space keeps the default.
    static func writerPages(freeBytes: Int64?) -> Int {
        guard let freeBytes, freeBytes >= 0 else { return Checkpointer.writerPages }
        return max(256, min(Checkpointer.writerPages, Int(freeBytes / 4 / 4_096)))
    }

    /// Bytes an unprivileged writer may still use on the file system holding `directory`, or nil.
    static func freeBytes(_ directory: String) -> Int64? {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }

    /// A store in memory, for tests: gone when the last reference goes.
    public static func inMemory(chainLimits: ChainLimits = ChainLimits(), refusalLimits: RefusalLogLimits = RefusalLogLimits()) throws(StoreError) -> SQLiteStore {
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(configuration: configuration())
        } catch {
            throw StoreError.unavailable("cannot open an in-memory database", underlying: error)
        }
        return try SQLiteStore(writer: queue, chainLimits: chainLimits, refusalLimits: refusalLimits)
    }

    /// The connection settings every collector database is opened with.
    public static func configuration() -> Configuration { configuration(writerPages: Checkpointer.writerPages) }

    /// The same, with the writer's own checkpoint threshold (`writerPages(freeBytes:)` for a data directory).
    static func configuration(writerPages: Int) -> Configuration {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL: readers never block the writer; NORMAL: a commit survives a crash of the process,
            // and the database stays consistent after a power loss (the last commits may be lost).
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // The log is copied into the database by a connection of its own (`Checkpointer`); the
            // writer does it itself only when the log has grown past this many pages (about 16 MiB,
            // less on a small data disk).
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(writerPages)")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            if !db.configuration.readonly {
                // The writer (and the checkpointer's connection, which copies the log without its
                // page cache, so the cache below is never filled there). Each report of a group is
                // applied in a savepoint of its own, and SQLite keeps the pages a savepoint changes
                // in a sub-journal, a temporary file by default: in memory instead (at most the group's changed pages, a few MiB), the
                // writes to it halve what the process writes (about 175 → 80 KB a report, the rest
                // the log and its copy into the database). And a page cache of 32 MiB instead of
                // 2 MiB keeps the indexes a group touches (machines' rows, rule counts, chain and
                // digest keys) from being read again from the kernel for every group: what it
                // reads falls from about 110 to 45 KB a report (`Benchmarks/ingest.sh`, docs/collector.md).
                try db.execute(sql: "PRAGMA temp_store = MEMORY")
                try db.execute(sql: "PRAGMA cache_size = -32768")
            }
        }
        return configuration
    }

    /// Reads in one consistent snapshot, off the caller's thread.
    func read<T: Sendable>(_ doing: String, _ block: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        do {
            return try await writer.read(block)
        } catch {
            throw Self.storeError(doing, error)
        }
    }

    /// Writes in one transaction, off the caller's thread.
    func write<T: Sendable>(_ doing: String, _ block: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        do {
            return try await writer.write(block)
        } catch {
            throw Self.storeError(doing, error)
        }
    }

    static func storeError(_ doing: String, _ error: any Error) -> StoreError {
        if let error = error as? StoreError { return error }
        return .database(doing: doing, underlying: error)
    }

    static func date(_ text: String?) -> Date { text.flatMap(RFC3339.date(from:)) ?? Date(timeIntervalSince1970: 0) }

    // MARK: - Ingest

    /// Group commit: submissions that arrive while the writer is busy wait together and are then
    /// applied in arrival order in one transaction, each in its own savepoint (one that fails is
    /// rolled back alone and answered with its error). Nobody is answered before the transaction
    /// holding their report has committed, and a crash before the commit leaves every report of
    /// the group absent.
    public func record(_ submission: IngestSubmission) async throws(StoreError) -> Result<IngestResult, IngestRefusal> {
        var submission = submission
        // Compressed here, on the request's thread, not by the one writer.
        submission.packed = EnvelopeCodec.pack(submission.envelope)
        return try await group.answer(submission) { self.lane.async { self.drainGroups() } }
    }

    /// Commits waiting groups until none is left, on the lane's own thread (`lane`).
    private func drainGroups() {
        group.drain(blocking: { submissions in
            let results = commitGroup(submissions)
            checkpointer?.committed(bytes: submissions.reduce(0) { $0 + ($1.packed?.bytes.count ?? $1.envelope.count) })
            return results
        })
    }

    private func commitGroup(_ items: [IngestSubmission]) -> [Result<Result<IngestResult, IngestRefusal>, StoreError>] {
        let chainLimits = chainLimits
        let refusalLimits = refusalLimits
        do {
            let began = ContinuousClock.now
            let statistics = statistics
            defer { statistics.add(groups: 1, reports: items.count, busy: ContinuousClock.now - began) }
            return try writer.write { db in
                let cpu = WriterStatistics.threadCPUNanoseconds()
                defer { statistics.add(cpuNanoseconds: WriterStatistics.threadCPUNanoseconds() - cpu) }
                var results: [Result<Result<IngestResult, IngestRefusal>, StoreError>] = []
                results.reserveCapacity(items.count)
                for item in items {
                    var value: Result<IngestResult, IngestRefusal>?
                    do {
                        try db.inSavepoint {
                            let context = try Self.loadContext(db, item.lookup)
                            value = try Self.apply(db, IngestRules.decide(context: context, submission: item, limits: chainLimits), to: item, limits: refusalLimits)
                            return .commit
                        }
                    } catch {
                        // SQLite may have rolled the whole transaction back (disk full, I/O
                        // error): then nothing of the group stands and every member hears so.
                        guard db.isInsideTransaction else { throw error }
                        results.append(.failure(.database(doing: "store the report", underlying: error)))
                        continue
                    }
                    // One answer per submission, always: a waiting request is never left without one.
                    results.append(value.map { .success($0) } ?? .failure(.database(doing: "store the report", underlying: MijianError(.database, "the report was not stored"))))
                }
                return results
            }
        } catch {
            let failure = Self.storeError("store the report", error)
            return items.map { _ in .failure(failure) }
        }
    }

    /// Counts a refusal decided before the chain check; throws when the table could not be
    /// written (the caller keeps the refusal and says its record is missing).
    public func logRefusal(_ refusal: IngestRefusal, receivedAt: Date, source: String) async throws(StoreError) -> Int64 {
        let limits = refusalLimits
        let row: Int64
        do {
            row = try await writer.write { db in try Self.logRefusal(db, refusal, receivedAt: receivedAt, source: source, limits: limits) }
        } catch {
            throw Self.storeError("record a refusal", error)
        }
        // A flood of refusals writes the log too (a row, its window, the trim): the copy must keep
        // up with it as with reports, or the log would fill a small data disk.
        checkpointer?.committed(bytes: Checkpointer.refusalBytes)
        return row
    }

    /// Copies the write-ahead log into the database and empties it (a measurement's bytes on disk, an orderly stop).
    public func checkpoint() async throws(StoreError) {
        do {
            _ = try await writer.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        } catch {
            throw Self.storeError("checkpoint the database", error)
        }
    }

    // MARK: - Schema

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
                try Self.logRefusal(db, reason: row["reason"] ?? "refused", detail: UntrustedText.bounded(row["detail"] ?? ""), receivedAt: Self.date(row["received_at"]), source: row["source"] ?? "", limits: refusalLimits)
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
        registerQueryMigrations(&migrator)
        // Envelopes kept in a Zstandard frame when it is smaller (`EnvelopeCodec`); the rows
        // stored before keep theirs as sent (0), nothing is rewritten.
        migrator.registerMigration("v8-envelope-encoding") { db in
            try db.execute(sql: "ALTER TABLE reports ADD COLUMN envelope_encoding INTEGER NOT NULL DEFAULT 0")
        }
        return migrator
    }

    // MARK: - Applying a plan

    /// What is stored for the submission's host, read inside the writer's transaction.
    static func loadContext(_ db: Database, _ lookup: HostLedgerContext.Lookup) throws -> HostLedgerContext {
        // One statement: the key's row, whether the report is stored, the host's head.
        let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT k.host_id AS key_host, k.revoked_at, EXISTS (SELECT 1 FROM reports WHERE host_id = ?2 AND payload_sha256 = ?3) AS stored,
                h.epoch, h.seq, h.digest, h.last_issued_at
            FROM (SELECT 1) LEFT JOIN keys k ON k.keyid = ?1 LEFT JOIN hosts h ON h.host_id = ?2
            """), arguments: [lookup.keyid, lookup.hostID, lookup.payloadSHA256])
        guard let row else { return HostLedgerContext(key: nil, alreadyStored: false, head: nil) }
        let key = (row["key_host"] as String?).map { host in
            HostLedgerContext.EnrolledKey(hostID: host, revokedAt: (row["revoked_at"] as String?).map { Self.date($0) })
        }
        let head: HostLedgerContext.Head? = (row["epoch"] as Int64?).map { epoch in
            HostLedgerContext.Head(
                chain: ChainState(epoch: epoch, seq: row["seq"], digest: row["digest"]), lastIssuedAt: (row["last_issued_at"] as String?).flatMap(RFC3339.date(from:)))
        }
        return HostLedgerContext(key: key, alreadyStored: row["stored"], head: head)
    }

    /// Applies a plan inside the writer's transaction.
    static func apply(_ db: Database, _ plan: IngestPlan, to item: IngestSubmission, limits: RefusalLogLimits) throws -> Result<IngestResult, IngestRefusal> {
        let submission = item.verified
        let report = submission.report
        let hostID = report.host.hostID
        let sha = submission.payloadSHA256
        let received = RFC3339.string(from: item.receivedAt)
        switch plan {
        case .refuse(var refusal):
            // Refusals are counted with every other refusal, one row per address, reason and window.
            refusal.windowCount = try logRefusal(db, refusal, receivedAt: item.receivedAt, source: item.source, limits: limits)
            return .failure(refusal)
        case .repeated(var outcome, let reason):
            // What anyone can send again without new signed content is counted, one row per report and window.
            let entry = Repeat(
                hostID: hostID, payloadSHA256: sha, outcome: outcome.outcome.rawValue, reason: reason, keyid: submission.keyid, epoch: report.epoch,
                seq: report.seq, detail: outcome.detail)
            outcome.repeatCount = try logRepeat(db, entry, receivedAt: item.receivedAt, source: item.source, limits: limits)
            return .success(outcome)
        case .store(let plan):
            for line in plan.log {
                try db.cachedStatement(sql: """
                    INSERT INTO ingest_log (received_at, source, host_id, keyid, epoch, seq, payload_sha256, outcome, reason, detail)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [received, item.source, hostID, submission.keyid, report.epoch, report.seq, sha, line.outcome, line.reason, line.detail])
            }
            let issued = RFC3339.string(from: report.issuedAt)
            var insert = try DirectBinding(db.cachedStatement(sql: """
                INSERT INTO reports (payload_sha256, host_id, keyid, epoch, seq, prev_sha256, issued_at, received_at, year, outcome, source, policy_sha256, fail_count, envelope, envelope_encoding, skew_seconds, skew)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """), db)
            try insert.bind(sha)
            try insert.bind(hostID)
            try insert.bind(submission.keyid)
            try insert.bind(report.epoch)
            try insert.bind(report.seq)
            try insert.bind(report.prevSHA256)
            try insert.bind(issued)
            try insert.bind(received)
            try insert.bind(item.digest.year)
            try insert.bind(plan.result.outcome.rawValue)
            try insert.bind(item.source)
            try insert.bind(report.policy.sha256)
            try insert.bind(plan.failCount)
            let packed = item.packed ?? EnvelopeCodec.pack(item.envelope)
            try insert.bind(blob: packed.bytes)
            try insert.bind(packed.encoding.rawValue)
            try insert.bind(plan.skewSeconds)
            try insert.bind(plan.skew)
            try insert.execute()
            guard plan.advances else { return .success(plan.result) }
            try advance(db, submission, digest: item.digest, issued: issued, received: received, failCount: plan.failCount, skewSeconds: plan.skewSeconds, skew: plan.skew)
            if let missing = plan.gap {
                try db.cachedStatement(sql: "INSERT INTO gaps (host_id, epoch, from_seq, to_seq, year, report_sha256, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
                    .execute(arguments: [hostID, report.epoch, missing.lowerBound, missing.upperBound, item.digest.year, sha, received])
            }
            return .success(plan.result)
        }
    }

    /// Most rules counted by one `host_rules` statement: 2 + 5 parameters a rule stays below the 999 of old SQLite builds.
    static let rulesPerStatement = 64

    static func advance(_ db: Database, _ submission: VerifiedSubmission, digest: ReportDigest, issued: String, received: String, failCount: Int, skewSeconds: Int64, skew: String?) throws {
        let report = submission.report
        let host = report.host
        let sha = submission.payloadSHA256
        let hostStatement = try db.cachedStatement(sql: """
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
            """)
        var head = try DirectBinding(hostStatement, db)
        for text in [host.hostID, host.hostname, host.assetID, host.classification?.rawValue, host.responsible, host.unit, host.os, host.kernel, submission.keyid] {
            try head.bind(text)
        }
        try head.bind(report.epoch)
        try head.bind(report.seq)
        for text in [sha, issued, received, received, report.policy.id, report.policy.version, report.policy.sha256, report.agent.version] {
            try head.bind(text)
        }
        try head.bind(failCount)
        try head.bind(skewSeconds)
        try head.bind(skew)
        try head.bind(skew == nil ? 0 : 1)
        try head.execute()
        var year = try DirectBinding(db.cachedStatement(sql: """
            INSERT INTO host_years (host_id, year, hostname, asset_id, classification, responsible, reports, last_issued_at, last_report_sha256, policy_id, policy_sha256)
            VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
            ON CONFLICT(host_id, year) DO UPDATE SET hostname = excluded.hostname, asset_id = excluded.asset_id,
                classification = excluded.classification, responsible = excluded.responsible, reports = reports + 1,
                last_issued_at = excluded.last_issued_at, last_report_sha256 = excluded.last_report_sha256,
                policy_id = excluded.policy_id, policy_sha256 = excluded.policy_sha256
            """), db)
        try year.bind(host.hostID)
        try year.bind(digest.year)
        for text in [host.hostname, host.assetID, host.classification?.rawValue, host.responsible, issued, sha, report.policy.id, report.policy.sha256] {
            try year.bind(text)
        }
        try year.execute()
        // Every rule's counts in one statement (a row per rule): one call instead of one per rule,
        // its values bound directly (`DirectBinding`).
        let counts = digest.ruleCounts
        for chunk in stride(from: 0, to: counts.count, by: Self.rulesPerStatement) {
            let rows = counts[chunk..<min(counts.count, chunk + Self.rulesPerStatement)]
            var ruleStatement = try DirectBinding(db.cachedStatement(sql: """
                INSERT INTO host_rules (host_id, year, rule_id, pass, fail, error, other)
                VALUES \(Array(repeating: "(?1, ?2, ?, ?, ?, ?, ?)", count: rows.count).joined(separator: ", "))
                ON CONFLICT(host_id, year, rule_id) DO UPDATE SET pass = pass + excluded.pass, fail = fail + excluded.fail,
                    error = error + excluded.error, other = other + excluded.other
                """), db)
            try ruleStatement.bind(host.hostID)
            try ruleStatement.bind(digest.year)
            for (rule, count) in rows {
                try ruleStatement.bind(rule)
                try ruleStatement.bind(count.pass)
                try ruleStatement.bind(count.fail)
                try ruleStatement.bind(count.error)
                try ruleStatement.bind(count.other)
            }
            try ruleStatement.execute()
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

    /// Counts one refusal in its (address, reason, window) row, making the row when it is the
    /// window's first; a new row past `maxRows` drops the oldest windows and counts what it dropped.
    /// Returns the row's count with this refusal.
    @discardableResult
    static func logRefusal(_ db: Database, _ refusal: IngestRefusal, receivedAt: Date, source: String, limits: RefusalLogLimits) throws -> Int64 {
        try logRefusal(db, reason: refusal.reason, detail: refusal.detail, receivedAt: receivedAt, source: source, limits: limits)
    }

    /// `logRefusal` for a reason as text: the refusals of old stores move in with theirs.
    @discardableResult
    static func logRefusal(_ db: Database, reason: String, detail: String, receivedAt: Date, source: String, limits: RefusalLogLimits) throws -> Int64 {
        let source = CollectorStore.boundedSource(source)
        let address = CollectorStore.refusalAddress(source)
        let at = RFC3339.string(from: receivedAt)
        let window = windowStart(receivedAt, limits: limits)
        let counted = try Int64.fetchOne(db.cachedStatement(sql: """
            UPDATE refusals SET count = count + 1, first_at = min(first_at, ?), last_at = max(last_at, ?)
            WHERE address = ? AND reason = ? AND window_start = ? RETURNING count
            """), arguments: [at, at, address, reason, window])
        if let counted { return counted }
        try db.cachedStatement(sql: """
            INSERT INTO refusals (address, reason, window_start, count, first_at, last_at, source, detail) VALUES (?, ?, ?, 1, ?, ?, ?, ?)
            """).execute(arguments: [address, reason, window, at, at, source, detail])
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
        let source = CollectorStore.boundedSource(source)
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
    static func dropOldestWindows(_ db: Database, table: String, drops: String, limits: RefusalLogLimits) throws {
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

    // MARK: - Registry

    /// Adds a key; a rotation revokes the previous key in the same transaction.
    public func approve(_ record: KeyRecord) async throws(StoreError) {
        try await write("approve the key") { db in try Self.approve(db, record) }
        registryChanges.increment()
    }

    /// Adds many keys in one transaction, each under the rules of `approve` (a unit moved in, a benchmark's registry).
    public func approve(contentsOf records: [KeyRecord]) async throws(StoreError) {
        try await write("approve the keys") { db in
            for record in records { try Self.approve(db, record) }
        }
        registryChanges.increment()
    }

    /// Revokes a key.
    public func revoke(keyid: String, at date: Date, reason: String) async throws(StoreError) {
        try await write("revoke the key") { db in try Self.revoke(db, keyid: keyid, at: date, reason: reason) }
        registryChanges.increment()
    }

    /// Every key, oldest approval first.
    public func keys() async throws(StoreError) -> [KeyRecord] { try await read("read the registry", Self.keys) }

    /// One key, active or not.
    public func key(_ keyid: String) async throws(StoreError) -> KeyRecord? { try await read("read the registry") { db in try Self.key(db, keyid) } }

    static func approve(_ db: Database, _ record: KeyRecord) throws {
        if let existing = try Row.fetchOne(db, sql: "SELECT host_id, revoked_at FROM keys WHERE keyid = ?", arguments: [record.keyid]) {
            throw StoreError.registry(.keyExists(keyid: record.keyid, revokedAt: (existing["revoked_at"] as String?).map { date($0) }))
        }
        if let previous = record.previousKeyID {
            guard let old = try Row.fetchOne(db, sql: "SELECT host_id, revoked_at FROM keys WHERE keyid = ?", arguments: [previous]) else {
                throw StoreError.registry(.previousKeyUnknown(keyid: previous))
            }
            let oldHost: String = old["host_id"]
            guard oldHost == record.hostID else { throw StoreError.registry(.previousKeyOfOtherHost(keyid: previous, hostID: oldHost, expected: record.hostID)) }
            if let revoked: String = old["revoked_at"] { throw StoreError.registry(.previousKeyRevoked(keyid: previous, at: date(revoked))) }
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

    static func revoke(_ db: Database, keyid: String, at date: Date, reason: String) throws {
        guard let row = try Row.fetchOne(db, sql: "SELECT revoked_at FROM keys WHERE keyid = ?", arguments: [keyid]) else {
            throw StoreError.registry(.unknownKey(keyid: keyid))
        }
        if let revoked: String = row["revoked_at"] { throw StoreError.registry(.alreadyRevoked(keyid: keyid, at: Self.date(revoked))) }
        try db.execute(sql: "UPDATE keys SET revoked_at = ?, revoke_reason = ? WHERE keyid = ?", arguments: [RFC3339.string(from: date), reason, keyid])
    }

    static func keys(_ db: Database) throws -> [KeyRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM keys ORDER BY approved_at, keyid").map(keyRecord)
    }

    static func key(_ db: Database, _ keyid: String) throws -> KeyRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM keys WHERE keyid = ?"), arguments: [keyid]).map(keyRecord)
    }

    static func keyRecord(_ row: Row) -> KeyRecord {
        KeyRecord(
            keyid: row["keyid"], pem: row["pem"], hostID: row["host_id"], hostname: row["hostname"], assetID: row["asset_id"],
            classification: (row["classification"] as String?).flatMap(Classification.init(rawValue:)), responsible: row["responsible"],
            agentVersion: row["agent_version"], previousKeyID: row["previous_keyid"], note: row["note"],
            requestedAt: date(row["requested_at"]), approvedAt: date(row["approved_at"]), requestSHA256: row["request_sha256"],
            revokedAt: (row["revoked_at"] as String?).flatMap(RFC3339.date(from:)), revokeReason: row["revoke_reason"])
    }
}

/// Submissions waiting for the writer, and whether a writer turn is running.
final class GroupCommit: Sendable {
    /// One waiting submission and the request that waits for its answer.
    struct Pending: Sendable {
        var submission: IngestSubmission
        var continuation: CheckedContinuation<Result<Result<IngestResult, IngestRefusal>, StoreError>, Never>
    }

    /// Most reports in one transaction.
    static let maxGroup = 256

    /// Groups in flight at once: 1 for SQLite's one writer; more where the database runs transactions side by side.
    let lanes: Int
    private let state = Mutex<(waiting: [Pending], running: Int)>(([], 0))

    /// Takes submissions for up to `lanes` groups in flight at once.
    init(lanes: Int = 1) { self.lanes = max(1, lanes) }

    /// Adds a submission; true when the caller must start a writer turn.
    func enqueue(_ pending: Pending) -> Bool {
        state.withLock { state in
            state.waiting.append(pending)
            if state.running >= lanes { return false }
            state.running += 1
            return true
        }
    }

    /// Waits for a submission's answer; starts a lane (`start`, which must run `drain` off the
    /// caller's task) when fewer than `lanes` run.
    func answer(_ submission: IngestSubmission, start: @escaping @Sendable () -> Void) async throws(StoreError) -> Result<IngestResult, IngestRefusal> {
        let outcome: Result<Result<IngestResult, IngestRefusal>, StoreError> = await withCheckedContinuation { continuation in
            if enqueue(Pending(submission: submission, continuation: continuation)) { start() }
        }
        return try outcome.get()
    }

    /// One lane: takes groups until none waits; `commit` gives each member of a group its answer, in order.
    func drain(_ commit: ([IngestSubmission]) async -> [Result<Result<IngestResult, IngestRefusal>, StoreError>]) async {
        while let items = take() {
            let results = await commit(items.map(\.submission))
            for (item, result) in zip(items, results) { item.continuation.resume(returning: result) }
        }
    }

    /// The same lane on the calling thread, for a backend whose writes are synchronous: between
    /// two groups it waits for nothing (an awaited lane resumes on the cooperative pool, behind
    /// every request's verification queued there).
    func drain(blocking commit: ([IngestSubmission]) -> [Result<Result<IngestResult, IngestRefusal>, StoreError>]) {
        while let items = take() {
            let results = commit(items.map(\.submission))
            for (item, result) in zip(items, results) { item.continuation.resume(returning: result) }
        }
    }

    /// The next group in arrival order, or nil (and the turn ends) when nothing waits.
    func take() -> [Pending]? {
        state.withLock { state in
            guard !state.waiting.isEmpty else {
                state.running -= 1
                return nil
            }
            let count = min(state.waiting.count, Self.maxGroup)
            let group = Array(state.waiting.prefix(count))
            state.waiting.removeFirst(count)
            return group
        }
    }
}

/// Copies the write-ahead log into the database on a connection of its own, beside the writer
/// (a passive checkpoint takes no lock the writer needs), once enough has been committed since
/// the last copy; one copy at a time. The writer copies the log itself only past
/// `writerPages`, when these copies fall behind.
final class Checkpointer: Sendable {
    /// The writer's own automatic checkpoint, in pages (of 4 KiB): about 16 MiB of log, so that
    /// the log stays bounded on a small data disk when these copies fall behind. It was SQLite's
    /// default of 1,000 pages (4 MiB), which one group of a hundred reports (about ten pages
    /// each) passes alone: the writer then copied the log itself, holding the next group, after
    /// nearly every commit (1,789 – 1,934 against 2,022 – 2,088 reports/s, `bench-collector
    /// 20000 5 1 1 256 --enrolled 20000`, alternated).
    static let writerPages = 4_000
    /// Bytes of envelopes committed (as stored: frames, `EnvelopeCodec`) between two copies:
    /// about 55 reports of the benchmark's 4.5 KB frames (15 when envelopes were stored as sent),
    /// whose log stays well under the writer's threshold while a copy runs.
    static let everyBytes = 256 << 10
    /// What one refusal is counted as: the log pages its transaction writes (its row, its
    /// window's counters, the trim), at most about four pages of 4 KiB.
    static let refusalBytes = 16 << 10

    private let connection: DatabaseQueue
    private let state = Mutex<(committed: Int, running: Bool)>((0, false))

    init(path: String) throws {
        connection = try DatabaseQueue(path: path, configuration: SQLiteStore.configuration())
    }

    /// Counts committed bytes; starts a copy when enough have been committed and none is running.
    func committed(bytes: Int) {
        let start = state.withLock { state in
            state.committed += bytes
            guard state.committed >= Self.everyBytes, !state.running else { return false }
            state.committed = 0
            state.running = true
            return true
        }
        guard start else { return }
        Task {
            // A copy that cannot run now (another checkpoint holds the lock) is left to the next one.
            _ = try? await connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            state.withLock { $0.running = false }
        }
    }
}

/// What the writer did: groups and reports committed, the time from taking a group to its
/// commit (waiting for the writer's queue included), and the writer thread's CPU time inside
/// the transactions. A benchmark reads how busy the one writer was.
public final class WriterStatistics: Sendable {
    private let groups = Atomic<Int>(0)
    private let reports = Atomic<Int>(0)
    private let busyNanoseconds = Atomic<Int>(0)
    private let cpuNanoseconds = Atomic<Int>(0)

    /// Groups committed (or failed).
    public var groupCount: Int { groups.load(ordering: .relaxed) }
    /// Submissions in them.
    public var reportCount: Int { reports.load(ordering: .relaxed) }
    /// Seconds from taking each group to its answer, summed.
    public var busySeconds: Double { Double(busyNanoseconds.load(ordering: .relaxed)) / 1e9 }
    /// CPU seconds the writer's thread spent inside the transactions (the statements; not the commit).
    public var cpuSeconds: Double { Double(cpuNanoseconds.load(ordering: .relaxed)) / 1e9 }

    func add(groups: Int, reports: Int, busy: Duration) {
        self.groups.add(groups, ordering: .relaxed)
        self.reports.add(reports, ordering: .relaxed)
        busyNanoseconds.add(Int(busy.components.seconds) * 1_000_000_000 + Int(busy.components.attoseconds / 1_000_000_000), ordering: .relaxed)
    }

    func add(cpuNanoseconds: Int) { self.cpuNanoseconds.add(cpuNanoseconds, ordering: .relaxed) }

    static func threadCPUNanoseconds() -> Int {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return spec.tv_sec * 1_000_000_000 + spec.tv_nsec
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

/// A cached statement whose values are bound straight to its parameters, then run by GRDB (which
/// keeps its transaction bookkeeping, and drops a statement that failed from its cache). GRDB's
/// `StatementArguments` box every value, convert it, and count the parameters again at every
/// run: for the writer's statement of some two hundred and fifty values a report, more work than
/// SQLite's own. Values are bound in the order of the statement's parameters, and `execute` runs
/// only when every one was bound (none is left from a previous run: the bindings are cleared
/// first); text is copied by SQLite when bound.
struct DirectBinding {
    let statement: Statement
    private let db: Database
    /// Parameters bound so far: the next value goes to parameter `bound + 1`.
    private var bound: Int32 = 0

    /// Resets the statement and clears its bindings.
    init(_ statement: Statement, _ db: Database) throws {
        self.statement = statement
        self.db = db
        let code = sqlite3_reset(statement.sqliteStatement)
        guard code == SQLITE_OK else { throw failure(code) }
        // No values: GRDB resets again, clears the bindings and takes the statement's parameters as bound.
        statement.setUncheckedArguments(StatementArguments())
    }

    private func failure(_ code: Int32, _ message: String? = nil) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: message ?? db.lastErrorMessage, sql: statement.sql)
    }

    /// Binds the next parameter with `binding` (given the statement and the parameter's index).
    private mutating func next(_ binding: (OpaquePointer, Int32) -> Int32) throws {
        let code = binding(statement.sqliteStatement, bound + 1)
        guard code == SQLITE_OK else { throw failure(code) }
        bound += 1
    }

    /// Binds text to the next parameter.
    mutating func bind(_ text: String) throws {
        var text = text
        try next { handle, index in
            text.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars -> Int32 in
                    guard chars.count <= Int(Int32.max) else { return SQLITE_TOOBIG }
                    // An empty buffer may have no address, and a null pointer would bind NULL, not "".
                    guard let base = chars.baseAddress else { return sqlite3_bind_text(handle, index, "", 0, Self.transient) }
                    return sqlite3_bind_text(handle, index, base, Int32(chars.count), Self.transient)
                }
            }
        }
    }

    /// Binds text, or NULL.
    mutating func bind(_ text: String?) throws {
        guard let text else { return try next { handle, index in sqlite3_bind_null(handle, index) } }
        try bind(text)
    }

    /// Binds an integer.
    mutating func bind(_ value: Int) throws { try bind(Int64(value)) }

    /// Binds an integer.
    mutating func bind(_ value: Int64) throws { try next { handle, index in sqlite3_bind_int64(handle, index, value) } }

    /// Binds bytes as a blob (copied by SQLite).
    mutating func bind(blob: [UInt8]) throws {
        try next { handle, index in
            blob.withUnsafeBytes { bytes -> Int32 in
                guard bytes.count <= Int(Int32.max) else { return SQLITE_TOOBIG }
                // An empty blob is bound as a zero-filled blob of no bytes, never as NULL.
                guard let base = bytes.baseAddress else { return sqlite3_bind_zeroblob(handle, index, 0) }
                return sqlite3_bind_blob(handle, index, base, Int32(bytes.count), Self.transient)
            }
        }
    }

    /// Runs the statement to its end; an error, before anything runs, unless every parameter was bound.
    func execute() throws {
        let parameters = sqlite3_bind_parameter_count(statement.sqliteStatement)
        guard bound == parameters else { throw failure(SQLITE_RANGE, "\(bound) of the statement's \(parameters) parameters bound") }
        try statement.execute()
    }

    /// SQLite's `SQLITE_TRANSIENT`: copy the value now.
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
}
