import Foundation
import GRDB
import GRDBSQLite
import MijianCore
import MijianEvidence

extension SQLiteStore {
    // MARK: - Queries

    /// Every machine that has sent an accepted report, by host name.
    public func hosts() async throws(StoreError) -> [HostRecord] { try await read("read the hosts") { db in try Self.hosts(db) } }

    /// The machines and the silent ones, counted in one pass over the `hosts` table (its times
    /// are RFC 3339 text of whole seconds in UTC, so their order as text is their order in time).
    public func hostCounts(silentSince: Date) async throws(StoreError) -> HostCounts {
        let cutoff = RFC3339.string(from: silentSince)
        return try await read("count the hosts") { db in
            let row = try Row.fetchOne(db, sql: "SELECT count(*), coalesce(sum(min(last_issued_at, last_received_at) <= ?), 0) FROM hosts", arguments: [cutoff])
            return HostCounts(hosts: row?[0] ?? 0, silent: row?[1] ?? 0)
        }
    }

    /// One machine: its row alone, by its key.
    public func host(_ hostID: String) async throws(StoreError) -> HostRecord? {
        try await read("read the host") { db in try Self.hosts(db, hostID: hostID).first }
    }

    /// A machine's reports, newest first.
    public func reports(hostID: String, limit: Int) async throws(StoreError) -> [ReportSummary] {
        try await read("read the reports") { db in try Self.reports(db, hostID: hostID, limit: limit) }
    }

    /// A machine's gaps.
    public func gaps(hostID: String) async throws(StoreError) -> [GapRecord] { try await read("read the gaps") { db in try Self.gaps(db, hostID: hostID) } }

    /// The envelope a machine's report with this payload digest was stored with, byte for byte.
    public func envelope(hostID: String, payloadSHA256: String) async throws(StoreError) -> [UInt8]? {
        try await read("read the envelope") { db in try Self.envelope(db, hostID: hostID, payloadSHA256: payloadSHA256) }
    }

    /// Reports per outcome, log entries per outcome and reason.
    public func counts() async throws(StoreError) -> StoreCounts { try await read("count the reports", Self.counts) }

    /// The year the assessment reads.
    public func snapshot(year: Int) async throws(StoreError) -> UnitSnapshot { try await read("read the year \(year)") { db in try Self.snapshot(db, year: year) } }

    /// The counted duplicates and replays.
    public func repeats(limit: Int) async throws(StoreError) -> [RepeatRecord] { try await read("read the repeats") { db in try Self.repeats(db, limit: limit) } }

    /// The counted refusals.
    public func refusals(limit: Int) async throws(StoreError) -> [RefusalRecord] { try await read("read the refusals") { db in try Self.refusals(db, limit: limit) } }

    /// What the refusal table dropped.
    public func refusalDrops() async throws(StoreError) -> RefusalDrops { try await read("read the refusals", Self.refusalDrops) }

    /// At most `limit` machines of the list, those after `after`: a range of the `hosts_hostname` index.
    public func hosts(after: HostPosition?, limit: Int) async throws(StoreError) -> [HostRecord] {
        try await read("read the hosts") { db in try Self.hosts(db, after: after, limit: limit) }
    }

    /// Each machine's counts of reports, forks and missing reports are columns of its row, kept by
    /// triggers in the transaction that stores a report or a gap (`registerQueryMigrations`): the
    /// list reads one table in the order of its index.
    static func hosts(_ db: Database, hostID: String? = nil) throws -> [HostRecord] {
        if let hostID {
            return try Row.fetchAll(db.cachedStatement(sql: "SELECT \(hostColumns) FROM hosts WHERE host_id = ?"), arguments: [hostID]).map(hostRecord)
        }
        // Decoded from the statement's own row as the cursor passes (no copy of each row first).
        return try Array(Row.fetchCursor(db, sql: "SELECT \(hostColumns) FROM hosts ORDER BY hostname, host_id").map(hostRecord))
    }

    static func hosts(_ db: Database, after: HostPosition?, limit: Int) throws -> [HostRecord] {
        guard let after else {
            return try Row.fetchAll(db.cachedStatement(sql: "SELECT \(hostColumns) FROM hosts ORDER BY hostname, host_id LIMIT ?"), arguments: [max(limit, 0)]).map(hostRecord)
        }
        return try Row.fetchAll(
            db.cachedStatement(sql: "SELECT \(hostColumns) FROM hosts WHERE (hostname, host_id) > (?, ?) ORDER BY hostname, host_id LIMIT ?"),
            arguments: [after.hostname, after.hostID, max(limit, 0)]).map(hostRecord)
    }

    /// The columns `hostRecord` reads, in its order.
    static let hostColumns = """
        host_id, hostname, asset_id, classification, responsible, keyid, epoch, seq, digest, last_issued_at, last_received_at,
        policy_id, policy_sha256, last_fail_count, report_count, fork_count, missing_count, last_skew_seconds, last_skew, skewed_reports
        """

    /// A row of `hostColumns`, read by position.
    static func hostRecord(_ row: Row) -> HostRecord {
        HostRecord(
            hostID: row[0], hostname: row[1], assetID: row[2], classification: (row[3] as String?).flatMap(Classification.init(rawValue:)), responsible: row[4],
            keyid: row[5], chain: ChainState(epoch: row[6], seq: row[7], digest: row[8]), lastIssuedAt: date(row[9]), lastReceivedAt: date(row[10]),
            policyID: row[11], policySHA256: row[12], lastFailCount: row[13], reportCount: row[14], forkCount: row[15], missingCount: row[16],
            lastSkewSeconds: row[17], lastSkew: row[18], skewedReports: row[19])
    }

    static func reports(_ db: Database, hostID: String, limit: Int) throws -> [ReportSummary] {
        try Row.fetchAll(db, sql: """
            SELECT payload_sha256, epoch, seq, outcome, issued_at, received_at, fail_count, source FROM reports
            WHERE host_id = ? ORDER BY epoch DESC, seq DESC, id DESC LIMIT ?
            """, arguments: [hostID, limit]).map { row in
            ReportSummary(
                payloadSHA256: row["payload_sha256"], epoch: row["epoch"], seq: row["seq"], outcome: ChainOutcome(rawValue: row["outcome"]) ?? .fork,
                issuedAt: row["issued_at"], receivedAt: row["received_at"], failCount: row["fail_count"], source: row["source"])
        }
    }

    static func gaps(_ db: Database, hostID: String) throws -> [GapRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM gaps WHERE host_id = ? ORDER BY epoch, from_seq", arguments: [hostID]).map(gapRecord)
    }

    static func gapRecord(_ row: Row) -> GapRecord {
        GapRecord(hostID: row["host_id"], epoch: row["epoch"], fromSeq: row["from_seq"], toSeq: row["to_seq"], reportSHA256: row["report_sha256"], detectedAt: date(row["detected_at"]))
    }

    /// One row of the `UNIQUE(host_id, payload_sha256)` index (the digest alone has no index here).
    static let envelopeSQL = "SELECT envelope, envelope_encoding FROM reports WHERE host_id = ? AND payload_sha256 = ? ORDER BY id LIMIT 1"

    /// The envelope byte for byte as it was signed (a stored frame decompressed, `EnvelopeCodec`);
    /// a row that cannot give it back is an error naming the report, never other bytes.
    static func envelope(_ db: Database, hostID: String, payloadSHA256: String) throws -> [UInt8]? {
        guard let row = try Row.fetchOne(db, sql: envelopeSQL, arguments: [hostID, payloadSHA256]) else { return nil }
        return try storedEnvelope(row, hostID: hostID, payloadSHA256: payloadSHA256)
    }

    /// The envelope of a row holding `envelope` and `envelope_encoding`.
    static func storedEnvelope(_ row: Row, hostID: String, payloadSHA256: String) throws -> [UInt8] {
        let stored: Data = row["envelope"]
        let encoding: Int64 = row["envelope_encoding"]
        do {
            return try EnvelopeCodec.unpack(Array(stored), encoding: encoding)
        } catch {
            throw MijianError(.database, "the stored envelope of machine \(hostID)'s report sha256:\(payloadSHA256) cannot be read: \(error.description)")
        }
    }

    static func counts(_ db: Database) throws -> StoreCounts {
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
        return StoreCounts(stored: stored, log: log)
    }

    static func repeats(_ db: Database, limit: Int) throws -> [RepeatRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM repeats ORDER BY window_start DESC, id DESC LIMIT ?", arguments: [limit]).map { row in
            RepeatRecord(
                hostID: row["host_id"], payloadSHA256: row["payload_sha256"], outcome: row["outcome"], windowStart: date(row["window_start"]),
                count: row["count"], firstAt: date(row["first_at"]), lastAt: date(row["last_at"]), source: row["source"],
                epoch: row["epoch"], seq: row["seq"], detail: row["detail"])
        }
    }

    static func refusals(_ db: Database, limit: Int) throws -> [RefusalRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM refusals ORDER BY window_start DESC, id DESC LIMIT ?", arguments: [limit]).map { row in
            RefusalRecord(
                address: row["address"], reason: row["reason"], windowStart: date(row["window_start"]), count: row["count"],
                firstAt: date(row["first_at"]), lastAt: date(row["last_at"]), source: row["source"], detail: row["detail"])
        }
    }

    static func refusalDrops(_ db: Database) throws -> RefusalDrops {
        let row = try Row.fetchOne(db, sql: "SELECT windows, requests FROM refusal_drops WHERE id = 1")
        return RefusalDrops(windows: row?["windows"] ?? 0, requests: row?["requests"] ?? 0)
    }

    /// Everything the year's assessment reads. Each query is a range of an index on the year (or
    /// a key lookup from one), so other years stored cost nothing; columns are read by position.
    static func snapshot(_ db: Database, year: Int) throws -> UnitSnapshot {
        // The year's machines in host-id order (the index holds the key), then their rule counts
        // in the same order through the key of host_rules: each machine's counts arrive together.
        var machines: [HostYear] = []
        let yearRows = try Row.fetchCursor(db, sql: """
            SELECT host_id, hostname, asset_id, classification, responsible, reports, last_issued_at, last_report_sha256, policy_sha256, policy_id
            FROM host_years WHERE year = ? ORDER BY host_id
            """, arguments: [year])
        while let row = try yearRows.next() {
            machines.append(HostYear(
                hostID: row[0], hostname: row[1], assetID: row[2], classification: (row[3] as String?).flatMap(Classification.init(rawValue:)), responsible: row[4],
                reports: row[5], lastIssuedAt: date(row[6]), lastReportSHA256: row[7], policySHA256: row[8], policyID: row[9], rules: RuleCounts()))
        }
        try readRuleCounts(db, year: year, into: &machines)
        // Machines with an active key that sent nothing this year still belong to the unit: the
        // keys of machines the year already holds stay in the database (a key lookup each), and a
        // machine with several keys is taken once, from its first.
        let yearEnd = RFC3339.string(from: CollectorCalendar.end(of: year))
        var silent = Set<String>()
        for row in try Row.fetchAll(db, sql: """
            SELECT host_id, hostname, asset_id, classification, responsible FROM keys k WHERE revoked_at IS NULL AND approved_at < ?
            AND NOT EXISTS (SELECT 1 FROM host_years y WHERE y.host_id = k.host_id AND y.year = ?)
            """, arguments: [yearEnd, year]) {
            let id: String = row[0]
            guard silent.insert(id).inserted else { continue }
            machines.append(HostYear(
                hostID: id, hostname: row[1], assetID: row[2], classification: (row[3] as String?).flatMap(Classification.init(rawValue:)),
                responsible: row[4], reports: 0, lastIssuedAt: nil, lastReportSHA256: nil, policySHA256: nil, policyID: nil, rules: RuleCounts()))
        }
        let findings = try Row.fetchAll(db, sql: """
            SELECT host_id, rule_id, subject, status, detail, count, first_observed_at, last_observed_at, first_report_sha256, last_report_sha256
            FROM findings WHERE year = ? ORDER BY host_id, rule_id, subject, status
            """, arguments: [year]).compactMap { row -> FindingRecord? in
            guard let status = Status(rawValue: row[3]) else { return nil }
            return FindingRecord(
                hostID: row[0], ruleID: row[1], subject: row[2], status: status, detail: row[4], count: row[5], firstObservedAt: date(row[6]),
                lastObservedAt: date(row[7]), firstReportSHA256: row[8], lastReportSHA256: row[9])
        }
        let media = try Row.fetchAll(db, sql: """
            SELECT host_id, vendor, product, serial, source, first_seen, last_seen, report_sha256 FROM media WHERE year = ? ORDER BY vendor, product, serial, host_id
            """, arguments: [year]).map { row in
            MediumSighting(
                hostID: row[0], identity: MediumIdentity(vendor: row[1], product: row[2], serial: row[3]), source: row[4], firstSeen: date(row[5]),
                lastSeen: date(row[6]), reportSHA256: row[7])
        }
        let gaps = try Row.fetchAll(db, sql: "SELECT * FROM gaps WHERE year = ? ORDER BY host_id, epoch, from_seq", arguments: [year]).map(gapRecord)
        let forks = try Row.fetchAll(db, sql: "SELECT host_id, epoch, seq, payload_sha256, received_at FROM reports WHERE outcome = 'fork' AND year = ? ORDER BY host_id, epoch, seq", arguments: [year]).map { row in
            ForkRecord(hostID: row[0], epoch: row[1], seq: row[2], reportSHA256: row[3], receivedAt: date(row[4]))
        }
        let skews = try Row.fetchAll(db, sql: """
            SELECT host_id, epoch, seq, payload_sha256, skew, skew_seconds, issued_at, received_at FROM reports
            WHERE skew IS NOT NULL AND year = ? ORDER BY host_id, epoch, seq
            """, arguments: [year]).map { row in
            SkewRecord(
                hostID: row[0], epoch: row[1], seq: row[2], reportSHA256: row[3], kind: row[4], seconds: row[5], issuedAt: date(row[6]), receivedAt: date(row[7]))
        }
        machines.sort { ($0.hostname, $0.hostID) < ($1.hostname, $1.hostID) }
        return UnitSnapshot(year: year, hosts: machines, findings: findings, media: media, gaps: gaps, forks: forks, skews: skews)
    }

    /// The year's rule counts of every machine, some fifty rows a machine, read straight from the
    /// statement's columns: a rule id is found again by its bytes among those already read (one
    /// String per distinct id, not one per row), a machine only when the host id changes, as the
    /// next of `machines` (the rows come in the host-id order `machines` were read in), and
    /// machines that count the same rules share one array of ids.
    static func readRuleCounts(_ db: Database, year: Int, into machines: inout [HostYear]) throws {
        let sql = """
            SELECT r.host_id, r.rule_id, r.pass, r.fail, r.error, r.other FROM host_years y CROSS JOIN host_rules r
            WHERE y.year = ? AND r.host_id = y.host_id AND r.year = y.year ORDER BY y.host_id
            """
        let statement = try db.makeStatement(sql: sql)
        let handle = statement.sqliteStatement
        func failure(_ code: Int32) -> DatabaseError {
            DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: sql)
        }
        let bound = sqlite3_bind_int64(handle, 1, Int64(year))
        guard bound == SQLITE_OK else { throw failure(bound) }
        defer { sqlite3_reset(handle) }

        /// The distinct rule ids read so far: their bytes and their one String.
        var known: [(bytes: [UInt8], id: String)] = []
        /// The machine whose rows are being read, by its bytes and its place in `machines`.
        var hostBytes: [UInt8] = []
        var current: Int?
        /// The machine the next host id should be; any other is looked up by id (a machine of the
        /// year without rule counts is passed over).
        var next = 0
        var position: [String: Int]?
        func locate(_ id: String) -> Int? {
            if next < machines.count, machines[next].hostID == id {
                next += 1
                return next - 1
            }
            if position == nil {
                var table: [String: Int] = Dictionary(minimumCapacity: machines.count)
                for index in machines.indices where table[machines[index].hostID] == nil { table[machines[index].hostID] = index }
                position = table
            }
            guard let found = position?[id] else { return nil }
            next = found + 1
            return found
        }
        var ruleIndexes: [Int] = []
        var counts: [RuleCount] = []
        /// The previous machine's rules: ids shared when the next machine counts the same ones.
        var sharedIndexes: [Int] = []
        var sharedIDs: [String] = []
        var sharedAscending = true
        /// Where the next row's rule id is likeliest to be among `known`: after the previous one.
        var hint = 0

        func equal(_ bytes: [UInt8], _ pointer: UnsafePointer<UInt8>?, _ length: Int) -> Bool {
            guard bytes.count == length else { return false }
            guard length > 0, let pointer else { return true }
            return bytes.withUnsafeBufferPointer { buffer in buffer.baseAddress.map { memcmp($0, pointer, length) == 0 } ?? false }
        }
        func finish() {
            guard let index = current else { return }
            if ruleIndexes != sharedIndexes {
                sharedIndexes = ruleIndexes
                sharedIDs = ruleIndexes.map { known[$0].id }
                sharedAscending = RuleCounts.isAscending(sharedIDs)
            }
            if sharedAscending {
                machines[index].rules = RuleCounts(ascending: sharedIDs, counts: counts)
            } else {
                var rules = RuleCounts()
                for (rule, count) in zip(sharedIDs, counts) { rules[rule] = count }
                machines[index].rules = rules
            }
        }

        while true {
            let step = sqlite3_step(handle)
            if step == SQLITE_DONE { break }
            guard step == SQLITE_ROW else { throw failure(step) }
            let hostPointer = sqlite3_column_text(handle, 0)
            let hostLength = Int(sqlite3_column_bytes(handle, 0))
            if !equal(hostBytes, hostPointer, hostLength) {
                finish()
                hostBytes = hostPointer.map { Array(UnsafeBufferPointer(start: $0, count: hostLength)) } ?? []
                current = locate(String(decoding: hostBytes, as: UTF8.self))
                ruleIndexes = []
                ruleIndexes.reserveCapacity(sharedIndexes.count)
                counts = []
                counts.reserveCapacity(sharedIndexes.count)
                hint = 0
            }
            let rulePointer = sqlite3_column_text(handle, 1)
            let ruleLength = Int(sqlite3_column_bytes(handle, 1))
            let rule: Int
            if hint < known.count, equal(known[hint].bytes, rulePointer, ruleLength) {
                rule = hint
            } else if let found = known.firstIndex(where: { equal($0.bytes, rulePointer, ruleLength) }) {
                rule = found
            } else {
                let bytes = rulePointer.map { Array(UnsafeBufferPointer(start: $0, count: ruleLength)) } ?? []
                known.append((bytes, String(decoding: bytes, as: UTF8.self)))
                rule = known.count - 1
            }
            hint = rule + 1
            var count = RuleCount()
            count.pass = Int(sqlite3_column_int64(handle, 2))
            count.fail = Int(sqlite3_column_int64(handle, 3))
            count.error = Int(sqlite3_column_int64(handle, 4))
            count.other = Int(sqlite3_column_int64(handle, 5))
            ruleIndexes.append(rule)
            counts.append(count)
        }
        finish()
    }

    // MARK: - Schema for the queries

    /// Indexes and summaries the queries read, so that the machine list, a machine's timeline and
    /// a year's assessment cost the same however many years the store holds (envelopes are kept
    /// for ever):
    /// * `hosts.report_count`, `fork_count`, `missing_count`: kept by triggers in the
    ///   transaction that stores the report or the gap (a machine's first row counts what is
    ///   already stored for it), so the list reads no other table;
    /// * `gaps_host`: a machine's gaps without reading every machine's;
    /// * `host_years_year`: the year's machines without reading the other years'; a year's rule
    ///   counts are then read through the `host_rules` key, machine by machine.
    /// A machine's timeline is a range of `reports_chain`; the year's forks and skewed reports
    /// have their own indexes.
    static func registerQueryMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v7-host-summaries") { db in
            try db.execute(sql: """
                CREATE INDEX gaps_host ON gaps(host_id, epoch, from_seq);
                CREATE INDEX host_years_year ON host_years(year);
                ALTER TABLE hosts ADD COLUMN report_count INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE hosts ADD COLUMN fork_count INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE hosts ADD COLUMN missing_count INTEGER NOT NULL DEFAULT 0;
                UPDATE hosts SET \(recountSQL("hosts.host_id"));
                CREATE TRIGGER hosts_counts_first AFTER INSERT ON hosts BEGIN
                    UPDATE hosts SET \(recountSQL("NEW.host_id")) WHERE host_id = NEW.host_id;
                END;
                CREATE TRIGGER reports_count AFTER INSERT ON reports BEGIN
                    UPDATE hosts SET report_count = report_count + 1, fork_count = fork_count + (NEW.outcome = 'fork') WHERE host_id = NEW.host_id;
                END;
                CREATE TRIGGER gaps_count AFTER INSERT ON gaps BEGIN
                    UPDATE hosts SET missing_count = CAST(min(missing_count + (CAST(NEW.to_seq AS REAL) - NEW.from_seq + 1), 9223372036854775807.0) AS INTEGER)
                    WHERE host_id = NEW.host_id;
                END;
                """)
        }
    }

    /// The three counts of the machine `host` from the tables (missing reports summed in floating
    /// point and held at the largest integer, as seqs far apart may overflow).
    static func recountSQL(_ host: String) -> String {
        """
        report_count = (SELECT count(*) FROM reports r WHERE r.host_id = \(host)),
            fork_count = (SELECT count(*) FROM reports r WHERE r.host_id = \(host) AND r.outcome = 'fork'),
            missing_count = (SELECT CAST(min(total(to_seq - from_seq + 1), 9223372036854775807.0) AS INTEGER) FROM gaps g WHERE g.host_id = \(host))
        """
    }
}
