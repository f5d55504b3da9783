import Foundation
import Logging
import MijianCore
import PostgresNIO

/// The collector's PostgreSQL schema as versioned migrations, applied at start by every instance:
/// each one is applied once, in order, and recorded in `schema_migrations`; instances starting
/// at the same moment wait for each other on an advisory lock, so one of them applies what is
/// missing and the others find it done.
///
/// The tables and their columns are SQLite's (`CollectorStore.migrator`) after all its
/// migrations, with the same meaning and the same text for times (RFC 3339 in UTC, which sorts
/// as time does), so both backends answer every query alike and a unit moves between them
/// unchanged. Retention: envelopes are kept for ever; what grows is `reports`, and nothing reads
/// it whole. A year's assessment reads the per-year aggregates (`host_years`, `host_rules`,
/// `findings`, `media`, `gaps`, all keyed or indexed by year) and the year's forks and skewed
/// reports through partial indexes; a machine's timeline is a range of the (host, epoch, seq)
/// index; the receive time has a BRIN index (a few pages for years of an append-only table)
/// for reading or exporting a period. `reports` is not partitioned: PostgreSQL's unique
/// constraints on a partitioned table must hold the partition key, and the one that makes a
/// report a duplicate — (host, payload digest) across all years — would have been lost.
enum PostgresSchema {
    /// One migration: its version and its statements.
    struct Migration: Sendable {
        var version: String
        var statements: [String]
    }

    /// The advisory lock key (two int4) migrations take: "mijian", "schema".
    static let lockKeys: (Int32, Int32) = (0x6D69_6A69, 0x7363_6865)

    /// Every migration, oldest first. A released one is never edited: a change is a new one.
    static let migrations: [Migration] = [
        Migration(version: "1-collector", statements: [
            """
            CREATE TABLE keys (
                keyid TEXT PRIMARY KEY, pem TEXT NOT NULL, host_id TEXT NOT NULL, hostname TEXT NOT NULL,
                asset_id TEXT, classification TEXT, responsible TEXT, agent_version TEXT NOT NULL,
                previous_keyid TEXT, note TEXT, requested_at TEXT NOT NULL, approved_at TEXT NOT NULL,
                request_sha256 TEXT NOT NULL, revoked_at TEXT, revoke_reason TEXT)
            """,
            "CREATE INDEX keys_host ON keys(host_id)",
            """
            CREATE TABLE hosts (
                host_id TEXT PRIMARY KEY, hostname TEXT NOT NULL, asset_id TEXT, classification TEXT,
                responsible TEXT, unit TEXT, os TEXT NOT NULL, kernel TEXT NOT NULL, keyid TEXT NOT NULL,
                epoch BIGINT NOT NULL, seq BIGINT NOT NULL, digest TEXT NOT NULL,
                last_issued_at TEXT NOT NULL, last_received_at TEXT NOT NULL, first_received_at TEXT NOT NULL,
                policy_id TEXT NOT NULL, policy_version TEXT NOT NULL, policy_sha256 TEXT NOT NULL,
                agent_version TEXT NOT NULL, last_fail_count BIGINT NOT NULL,
                last_skew_seconds BIGINT, last_skew TEXT, skewed_reports BIGINT NOT NULL DEFAULT 0)
            """,
            "CREATE INDEX hosts_name ON hosts(hostname, host_id)",
            """
            CREATE TABLE reports (
                id BIGSERIAL PRIMARY KEY, payload_sha256 TEXT NOT NULL, host_id TEXT NOT NULL, keyid TEXT NOT NULL,
                epoch BIGINT NOT NULL, seq BIGINT NOT NULL, prev_sha256 TEXT NOT NULL, issued_at TEXT NOT NULL,
                received_at TEXT NOT NULL, year BIGINT NOT NULL, outcome TEXT NOT NULL, source TEXT NOT NULL,
                policy_sha256 TEXT NOT NULL, fail_count BIGINT NOT NULL, envelope BYTEA NOT NULL,
                skew_seconds BIGINT, skew TEXT,
                UNIQUE(host_id, payload_sha256))
            """,
            "CREATE INDEX reports_chain ON reports(host_id, epoch, seq, id)",
            "CREATE INDEX reports_digest ON reports(payload_sha256)",
            "CREATE INDEX reports_forks ON reports(year, host_id, epoch, seq) WHERE outcome = 'fork'",
            "CREATE INDEX reports_skew ON reports(year, host_id, epoch, seq) WHERE skew IS NOT NULL",
            "CREATE INDEX reports_received ON reports USING brin(received_at)",
            """
            CREATE TABLE ingest_log (
                id BIGSERIAL PRIMARY KEY, received_at TEXT NOT NULL, source TEXT NOT NULL, host_id TEXT, keyid TEXT,
                epoch BIGINT, seq BIGINT, payload_sha256 TEXT, outcome TEXT NOT NULL, reason TEXT, detail TEXT NOT NULL)
            """,
            """
            CREATE TABLE gaps (
                id BIGSERIAL PRIMARY KEY, host_id TEXT NOT NULL, epoch BIGINT NOT NULL, from_seq BIGINT NOT NULL,
                to_seq BIGINT NOT NULL, year BIGINT NOT NULL, report_sha256 TEXT NOT NULL, detected_at TEXT NOT NULL)
            """,
            "CREATE INDEX gaps_year ON gaps(year)",
            "CREATE INDEX gaps_host ON gaps(host_id, epoch, from_seq)",
            """
            CREATE TABLE host_years (
                host_id TEXT NOT NULL, year BIGINT NOT NULL, hostname TEXT NOT NULL, asset_id TEXT,
                classification TEXT, responsible TEXT, reports BIGINT NOT NULL, last_issued_at TEXT NOT NULL,
                last_report_sha256 TEXT NOT NULL, policy_id TEXT NOT NULL, policy_sha256 TEXT NOT NULL,
                PRIMARY KEY(host_id, year))
            """,
            "CREATE INDEX host_years_year ON host_years(year)",
            """
            CREATE TABLE host_rules (
                host_id TEXT NOT NULL, year BIGINT NOT NULL, rule_id TEXT NOT NULL, pass BIGINT NOT NULL,
                fail BIGINT NOT NULL, error BIGINT NOT NULL, other BIGINT NOT NULL,
                PRIMARY KEY(host_id, year, rule_id))
            """,
            "CREATE INDEX host_rules_year ON host_rules(year)",
            """
            CREATE TABLE findings (
                host_id TEXT NOT NULL, year BIGINT NOT NULL, rule_id TEXT NOT NULL, subject TEXT NOT NULL,
                status TEXT NOT NULL, detail TEXT NOT NULL, count BIGINT NOT NULL,
                first_observed_at TEXT NOT NULL, last_observed_at TEXT NOT NULL,
                first_report_sha256 TEXT NOT NULL, last_report_sha256 TEXT NOT NULL,
                PRIMARY KEY(host_id, year, rule_id, subject, status))
            """,
            "CREATE INDEX findings_year ON findings(year)",
            """
            CREATE TABLE media (
                host_id TEXT NOT NULL, year BIGINT NOT NULL, vendor TEXT NOT NULL, product TEXT NOT NULL,
                serial TEXT NOT NULL, source TEXT NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
                report_sha256 TEXT NOT NULL, PRIMARY KEY(host_id, year, vendor, product, serial))
            """,
            "CREATE INDEX media_year ON media(year)",
            """
            CREATE TABLE refusals (
                id BIGSERIAL PRIMARY KEY, address TEXT NOT NULL, reason TEXT NOT NULL, window_start TEXT NOT NULL,
                count BIGINT NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL, source TEXT NOT NULL, detail TEXT NOT NULL,
                UNIQUE(address, reason, window_start))
            """,
            "CREATE INDEX refusals_window ON refusals(window_start, id)",
            "CREATE TABLE refusal_drops (id BIGINT PRIMARY KEY CHECK (id = 1), windows BIGINT NOT NULL, requests BIGINT NOT NULL)",
            "INSERT INTO refusal_drops (id, windows, requests) VALUES (1, 0, 0)",
            """
            CREATE TABLE repeats (
                id BIGSERIAL PRIMARY KEY, host_id TEXT NOT NULL, payload_sha256 TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT,
                window_start TEXT NOT NULL, count BIGINT NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL,
                source TEXT NOT NULL, keyid TEXT, epoch BIGINT, seq BIGINT, detail TEXT NOT NULL,
                UNIQUE(host_id, payload_sha256, outcome, window_start))
            """,
            "CREATE INDEX repeats_window ON repeats(window_start, id)",
            "CREATE TABLE repeat_drops (id BIGINT PRIMARY KEY CHECK (id = 1), windows BIGINT NOT NULL, requests BIGINT NOT NULL)",
            "INSERT INTO repeat_drops (id, windows, requests) VALUES (1, 0, 0)",
        ]),
        Migration(version: "2-host-summaries", statements: PostgresStore.summaryStatements),
    ]

    /// The newest version this build knows.
    static var current: String { migrations.last?.version ?? "" }

    /// Applies what is missing, in one transaction under the schema lock; returns the versions
    /// applied now (none when the schema was current). A database whose schema is newer than
    /// this build is refused: an older collector must not write into it.
    static func migrate(_ client: PostgresClient, logger: Logger) async throws -> [String] {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(lockKeys.0), \(lockKeys.1))", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())", logger: logger)
            var applied: Set<String> = []
            for try await version in try await connection.query("SELECT version FROM schema_migrations", logger: logger).decode(String.self) {
                applied.insert(version)
            }
            let known = Set(migrations.map(\.version))
            if let unknown = applied.subtracting(known).sorted().first {
                throw MijianError(.database, "the database's schema has migration \(unknown), which this collector does not know: it was made by a newer mijian-collector; run that one")
            }
            var done: [String] = []
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO schema_migrations (version) VALUES (\(migration.version))", logger: logger)
                done.append(migration.version)
            }
            return done
        }
    }
}
