import Foundation
import Logging
import MijianCore
import MijianEvidence
import NIOCore
import PostgresNIO

extension PostgresStore {
    // MARK: - Queries

    /// Every machine that has sent an accepted report, by host name (bytewise, as SQLite
    /// orders): the `hosts_name_c` index in order, each row carrying its counts (kept by triggers,
    /// `summaryStatements`).
    public func hosts() async throws(StoreError) -> [HostRecord] {
        try await attempt("read the hosts") {
            try await rows(PostgresQuery(unsafeSQL: "SELECT * FROM hosts ORDER BY hostname COLLATE \"C\", host_id COLLATE \"C\"")).map(Self.hostRecord)
        }
    }

    /// The machines and the silent ones, counted by the database (the times are RFC 3339 text of
    /// whole seconds in UTC, compared byte by byte).
    public func hostCounts(silentSince: Date) async throws(StoreError) -> HostCounts {
        let cutoff = RFC3339.string(from: silentSince)
        return try await attempt("count the hosts") {
            let query: PostgresQuery = """
                SELECT count(*)::BIGINT, (count(*) FILTER (WHERE LEAST(last_issued_at COLLATE "C", last_received_at COLLATE "C") <= \(cutoff) COLLATE "C"))::BIGINT FROM hosts
                """
            for try await (hosts, silent) in try await client.query(query, logger: logger).decode((Int64, Int64).self) {
                return HostCounts(hosts: Int(hosts), silent: Int(silent))
            }
            return HostCounts(hosts: 0, silent: 0)
        }
    }

    /// At most `limit` machines of the list, those after `after`: a range of `hosts_name_c`.
    public func hosts(after: HostPosition?, limit: Int) async throws(StoreError) -> [HostRecord] {
        try await attempt("read the hosts") {
            let limit = max(limit, 0)
            guard let after else {
                return try await rows("SELECT * FROM hosts ORDER BY hostname COLLATE \"C\", host_id COLLATE \"C\" LIMIT \(limit)").map(Self.hostRecord)
            }
            return try await rows("""
                SELECT * FROM hosts WHERE (hostname COLLATE "C", host_id COLLATE "C") > (\(after.hostname), \(after.hostID))
                ORDER BY hostname COLLATE "C", host_id COLLATE "C" LIMIT \(limit)
                """).map(Self.hostRecord)
        }
    }

    /// One machine.
    public func host(_ hostID: String) async throws(StoreError) -> HostRecord? {
        try await attempt("read the host") {
            try await rows("SELECT * FROM hosts WHERE host_id = \(hostID)").first.map(Self.hostRecord)
        }
    }

    /// Indexes and summaries the queries read (as SQLite's, `registerQueryMigrations`): each
    /// machine's counts of reports, forks and missing reports in its row, kept by triggers in the
    /// transaction that stores the report or the gap; the list's order as an index (bytewise,
    /// whatever the database's collation). A machine's row starts at zero and each report and gap
    /// stored adds itself: the ledger writes a machine's first report and its row in one statement,
    /// and a row trigger runs after the whole statement, so it finds the row; a unit moved in
    /// copies the machines before their reports and gaps.
    static let summaryStatements: [String] = [
        "ALTER TABLE hosts ADD COLUMN report_count BIGINT NOT NULL DEFAULT 0, ADD COLUMN fork_count BIGINT NOT NULL DEFAULT 0, ADD COLUMN missing_count BIGINT NOT NULL DEFAULT 0",
        "UPDATE hosts SET \(recountSQL("hosts.host_id"))",
        "CREATE INDEX hosts_name_c ON hosts(hostname COLLATE \"C\", host_id COLLATE \"C\")",
        """
        CREATE FUNCTION hosts_counts_start() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.report_count := 0;
            NEW.fork_count := 0;
            NEW.missing_count := 0;
            RETURN NEW;
        END $$
        """,
        "CREATE TRIGGER hosts_counts_start BEFORE INSERT ON hosts FOR EACH ROW EXECUTE FUNCTION hosts_counts_start()",
        """
        CREATE FUNCTION reports_count() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE hosts SET report_count = report_count + 1, fork_count = fork_count + (NEW.outcome = 'fork')::int WHERE host_id = NEW.host_id;
            RETURN NULL;
        END $$
        """,
        "CREATE TRIGGER reports_count AFTER INSERT ON reports FOR EACH ROW EXECUTE FUNCTION reports_count()",
        """
        CREATE FUNCTION gaps_count() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE hosts SET missing_count = LEAST(missing_count::numeric + (NEW.to_seq::numeric - NEW.from_seq + 1), 9223372036854775807)::bigint
            WHERE host_id = NEW.host_id;
            RETURN NULL;
        END $$
        """,
        "CREATE TRIGGER gaps_count AFTER INSERT ON gaps FOR EACH ROW EXECUTE FUNCTION gaps_count()",
    ]

    /// The three counts of the machine `host` from the tables (for the rows there before the triggers).
    static func recountSQL(_ host: String) -> String {
        """
        report_count = (SELECT count(*) FROM reports r WHERE r.host_id = \(host)),
            fork_count = (SELECT count(*) FROM reports r WHERE r.host_id = \(host) AND r.outcome = 'fork'),
            missing_count = (SELECT LEAST(coalesce(sum(to_seq::numeric - from_seq + 1), 0), 9223372036854775807)::bigint FROM gaps g WHERE g.host_id = \(host))
        """
    }

    static func hostRecord(_ row: PostgresRandomAccessRow) throws -> HostRecord {
        HostRecord(
            hostID: try row["host_id"].decode(String.self), hostname: try row["hostname"].decode(String.self), assetID: try row["asset_id"].decode(String?.self),
            classification: try row["classification"].decode(String?.self).flatMap(Classification.init(rawValue:)),
            responsible: try row["responsible"].decode(String?.self), keyid: try row["keyid"].decode(String.self),
            chain: ChainState(epoch: try row["epoch"].decode(Int64.self), seq: try row["seq"].decode(Int64.self), digest: try row["digest"].decode(String.self)),
            lastIssuedAt: SQLiteStore.date(try row["last_issued_at"].decode(String.self)),
            lastReceivedAt: SQLiteStore.date(try row["last_received_at"].decode(String.self)), policyID: try row["policy_id"].decode(String.self),
            policySHA256: try row["policy_sha256"].decode(String.self), lastFailCount: try row["last_fail_count"].decode(Int.self),
            reportCount: try row["report_count"].decode(Int.self), forkCount: try row["fork_count"].decode(Int.self),
            missingCount: try row["missing_count"].decode(Int64.self), lastSkewSeconds: try row["last_skew_seconds"].decode(Int64?.self),
            lastSkew: try row["last_skew"].decode(String?.self), skewedReports: try row["skewed_reports"].decode(Int.self))
    }

    /// A machine's stored reports, newest first.
    public func reports(hostID: String, limit: Int) async throws(StoreError) -> [ReportSummary] {
        try await attempt("read the reports") {
            try await rows("""
                SELECT payload_sha256, epoch, seq, outcome, issued_at, received_at, fail_count, source FROM reports
                WHERE host_id = \(hostID) ORDER BY epoch DESC, seq DESC, id DESC LIMIT \(limit)
                """).map { row in
                ReportSummary(
                    payloadSHA256: try row["payload_sha256"].decode(String.self), epoch: try row["epoch"].decode(Int64.self), seq: try row["seq"].decode(Int64.self),
                    outcome: ChainOutcome(rawValue: try row["outcome"].decode(String.self)) ?? .fork, issuedAt: try row["issued_at"].decode(String.self),
                    receivedAt: try row["received_at"].decode(String.self), failCount: try row["fail_count"].decode(Int.self), source: try row["source"].decode(String.self))
            }
        }
    }

    /// A machine's recorded gaps.
    public func gaps(hostID: String) async throws(StoreError) -> [GapRecord] {
        try await attempt("read the gaps") {
            try await rows("SELECT * FROM gaps WHERE host_id = \(hostID) ORDER BY epoch, from_seq").map(Self.gapRecord)
        }
    }

    static func gapRecord(_ row: PostgresRandomAccessRow) throws -> GapRecord {
        GapRecord(
            hostID: try row["host_id"].decode(String.self), epoch: try row["epoch"].decode(Int64.self), fromSeq: try row["from_seq"].decode(Int64.self),
            toSeq: try row["to_seq"].decode(Int64.self), reportSHA256: try row["report_sha256"].decode(String.self),
            detectedAt: SQLiteStore.date(try row["detected_at"].decode(String.self)))
    }

    /// The envelope a machine's report with this payload digest was stored with, byte for byte.
    public func envelope(hostID: String, payloadSHA256: String) async throws(StoreError) -> [UInt8]? {
        try await attempt("read the envelope") {
            try await client.query("SELECT envelope FROM reports WHERE host_id = \(hostID) AND payload_sha256 = \(payloadSHA256) ORDER BY id LIMIT 1", logger: logger)
                .collect().first.map { Array(try $0.decode(ByteBuffer.self).readableBytesView) }
        }
    }

    /// Stored reports per outcome, log entries per outcome and reason.
    public func counts() async throws(StoreError) -> StoreCounts {
        try await attempt("count the reports") {
            var stored: [String: Int] = [:]
            for try await (outcome, count) in try await client.query("SELECT outcome, count(*) FROM reports GROUP BY outcome", logger: logger).decode((String, Int).self) {
                stored[outcome] = count
            }
            var log: [String: Int] = [:]
            for try await (key, count) in try await client.query("""
                SELECT outcome || coalesce('/' || reason, ''), count(*) FROM ingest_log GROUP BY 1
                UNION ALL SELECT outcome || coalesce('/' || reason, ''), sum(count)::bigint FROM repeats GROUP BY 1
                UNION ALL SELECT 'refused/' || reason, sum(count)::bigint FROM refusals GROUP BY reason
                """, logger: logger).decode((String, Int).self) {
                log[key, default: 0] += count
            }
            return StoreCounts(stored: stored, log: log)
        }
    }

    /// Everything the assessment of `year` reads, in one consistent read (a repeatable-read transaction).
    public func snapshot(year: Int) async throws(StoreError) -> UnitSnapshot {
        let logger = self.logger
        return try await attempt("read the year \(year)") {
            try await client.withConnection { connection in
                try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
                do {
                    let snapshot = try await Self.snapshot(connection, year: year, logger: logger)
                    try await connection.query("COMMIT", logger: logger)
                    return snapshot
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        }
    }

    private static func snapshot(_ connection: PostgresConnection, year: Int, logger: Logger) async throws -> UnitSnapshot {
        var hosts: [String: HostYear] = [:]
        for row in try await rows(connection, "SELECT * FROM host_years WHERE year = \(year)", logger: logger) {
            let id = try row["host_id"].decode(String.self)
            hosts[id] = HostYear(
                hostID: id, hostname: try row["hostname"].decode(String.self), assetID: try row["asset_id"].decode(String?.self),
                classification: try row["classification"].decode(String?.self).flatMap(Classification.init(rawValue:)),
                responsible: try row["responsible"].decode(String?.self), reports: try row["reports"].decode(Int.self),
                lastIssuedAt: SQLiteStore.date(try row["last_issued_at"].decode(String.self)),
                lastReportSHA256: try row["last_report_sha256"].decode(String.self), policySHA256: try row["policy_sha256"].decode(String.self),
                policyID: try row["policy_id"].decode(String.self), rules: [:])
        }
        let ruleRows = try await connection.query("SELECT host_id, rule_id, pass, fail, error, other FROM host_rules WHERE year = \(year)", logger: logger)
        for try await (id, rule, pass, fail, error, other) in ruleRows.decode((String, String, Int, Int, Int, Int).self) {
            var count = RuleCount()
            count.pass = pass
            count.fail = fail
            count.error = error
            count.other = other
            hosts[id]?.rules[rule] = count
        }
        // Machines with an active key that sent nothing this year still belong to the unit.
        let yearEnd = RFC3339.string(from: CollectorCalendar.end(of: year))
        for row in try await rows(connection, "SELECT * FROM keys WHERE revoked_at IS NULL AND approved_at < \(yearEnd)", logger: logger) {
            let key = try keyRecord(row)
            guard hosts[key.hostID] == nil else { continue }
            hosts[key.hostID] = HostYear(
                hostID: key.hostID, hostname: key.hostname, assetID: key.assetID, classification: key.classification,
                responsible: key.responsible, reports: 0, lastIssuedAt: nil, lastReportSHA256: nil, policySHA256: nil, policyID: nil, rules: [:])
        }
        let findings = try await rows(connection, """
            SELECT * FROM findings WHERE year = \(year) ORDER BY host_id COLLATE "C", rule_id COLLATE "C", subject COLLATE "C", status COLLATE "C"
            """, logger: logger).compactMap { row -> FindingRecord? in
            guard let status = Status(rawValue: try row["status"].decode(String.self)) else { return nil }
            return FindingRecord(
                hostID: try row["host_id"].decode(String.self), ruleID: try row["rule_id"].decode(String.self), subject: try row["subject"].decode(String.self),
                status: status, detail: try row["detail"].decode(String.self), count: try row["count"].decode(Int.self),
                firstObservedAt: SQLiteStore.date(try row["first_observed_at"].decode(String.self)),
                lastObservedAt: SQLiteStore.date(try row["last_observed_at"].decode(String.self)),
                firstReportSHA256: try row["first_report_sha256"].decode(String.self), lastReportSHA256: try row["last_report_sha256"].decode(String.self))
        }
        let media = try await rows(connection, """
            SELECT * FROM media WHERE year = \(year) ORDER BY vendor COLLATE "C", product COLLATE "C", serial COLLATE "C", host_id COLLATE "C"
            """, logger: logger).map { row in
            MediumSighting(
                hostID: try row["host_id"].decode(String.self),
                identity: MediumIdentity(vendor: try row["vendor"].decode(String.self), product: try row["product"].decode(String.self), serial: try row["serial"].decode(String.self)),
                source: try row["source"].decode(String.self), firstSeen: SQLiteStore.date(try row["first_seen"].decode(String.self)),
                lastSeen: SQLiteStore.date(try row["last_seen"].decode(String.self)), reportSHA256: try row["report_sha256"].decode(String.self))
        }
        let gaps = try await rows(connection, "SELECT * FROM gaps WHERE year = \(year) ORDER BY host_id COLLATE \"C\", epoch, from_seq", logger: logger).map(gapRecord)
        let forks = try await rows(connection, """
            SELECT host_id, epoch, seq, payload_sha256, received_at FROM reports WHERE outcome = 'fork' AND year = \(year) ORDER BY host_id COLLATE "C", epoch, seq
            """, logger: logger).map { row in
            ForkRecord(
                hostID: try row["host_id"].decode(String.self), epoch: try row["epoch"].decode(Int64.self), seq: try row["seq"].decode(Int64.self),
                reportSHA256: try row["payload_sha256"].decode(String.self), receivedAt: SQLiteStore.date(try row["received_at"].decode(String.self)))
        }
        let skews = try await rows(connection, """
            SELECT host_id, epoch, seq, payload_sha256, skew, skew_seconds, issued_at, received_at FROM reports
            WHERE skew IS NOT NULL AND year = \(year) ORDER BY host_id COLLATE "C", epoch, seq
            """, logger: logger).map { row in
            SkewRecord(
                hostID: try row["host_id"].decode(String.self), epoch: try row["epoch"].decode(Int64.self), seq: try row["seq"].decode(Int64.self),
                reportSHA256: try row["payload_sha256"].decode(String.self), kind: try row["skew"].decode(String.self),
                seconds: try row["skew_seconds"].decode(Int64.self), issuedAt: SQLiteStore.date(try row["issued_at"].decode(String.self)),
                receivedAt: SQLiteStore.date(try row["received_at"].decode(String.self)))
        }
        return UnitSnapshot(
            year: year, hosts: hosts.values.sorted { ($0.hostname, $0.hostID) < ($1.hostname, $1.hostID) }, findings: findings,
            media: media, gaps: gaps, forks: forks, skews: skews)
    }

    /// The counted duplicates and replays, newest window first.
    public func repeats(limit: Int) async throws(StoreError) -> [RepeatRecord] {
        try await attempt("read the repeats") {
            try await rows("SELECT * FROM repeats ORDER BY window_start COLLATE \"C\" DESC, id DESC LIMIT \(limit)").map { row in
                RepeatRecord(
                    hostID: try row["host_id"].decode(String.self), payloadSHA256: try row["payload_sha256"].decode(String.self),
                    outcome: try row["outcome"].decode(String.self), windowStart: SQLiteStore.date(try row["window_start"].decode(String.self)),
                    count: try row["count"].decode(Int64.self), firstAt: SQLiteStore.date(try row["first_at"].decode(String.self)),
                    lastAt: SQLiteStore.date(try row["last_at"].decode(String.self)), source: try row["source"].decode(String.self),
                    epoch: try row["epoch"].decode(Int64?.self), seq: try row["seq"].decode(Int64?.self), detail: try row["detail"].decode(String.self))
            }
        }
    }

    /// The counted refusals, newest window first.
    public func refusals(limit: Int) async throws(StoreError) -> [RefusalRecord] {
        try await attempt("read the refusals") {
            try await rows("SELECT * FROM refusals ORDER BY window_start COLLATE \"C\" DESC, id DESC LIMIT \(limit)").map { row in
                RefusalRecord(
                    address: try row["address"].decode(String.self), reason: try row["reason"].decode(String.self),
                    windowStart: SQLiteStore.date(try row["window_start"].decode(String.self)), count: try row["count"].decode(Int64.self),
                    firstAt: SQLiteStore.date(try row["first_at"].decode(String.self)), lastAt: SQLiteStore.date(try row["last_at"].decode(String.self)),
                    source: try row["source"].decode(String.self), detail: try row["detail"].decode(String.self))
            }
        }
    }

    /// Windows of the refusal table dropped, and what they counted.
    public func refusalDrops() async throws(StoreError) -> RefusalDrops {
        try await attempt("read the refusals") {
            let row = try await client.query("SELECT windows, requests FROM refusal_drops WHERE id = 1", logger: logger).collect().first?.decode((Int64, Int64).self)
            return RefusalDrops(windows: row?.0 ?? 0, requests: row?.1 ?? 0)
        }
    }
}
