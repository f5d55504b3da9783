import Foundation
import GRDB
import MijianCore
import MijianEvidence

extension SQLiteStore {
    // MARK: - Queries

    /// Every machine that has sent an accepted report, by host name.
    public func hosts() async throws(StoreError) -> [HostRecord] { try await read("read the hosts") { db in try Self.hosts(db) } }

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

    /// An envelope, byte for byte.
    public func envelope(payloadSHA256: String) async throws(StoreError) -> [UInt8]? {
        try await read("read the envelope") { db in try Self.envelope(db, payloadSHA256: payloadSHA256) }
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

    static func hosts(_ db: Database, hostID: String? = nil) throws -> [HostRecord] {
        let columns = """
            SELECT h.*, (SELECT count(*) FROM reports r WHERE r.host_id = h.host_id) AS report_count,
                (SELECT count(*) FROM reports r WHERE r.host_id = h.host_id AND r.outcome = 'fork') AS fork_count,
                (SELECT CAST(min(total(to_seq - from_seq + 1), 9223372036854775807.0) AS INTEGER) FROM gaps g WHERE g.host_id = h.host_id) AS missing_count
            FROM hosts h
            """
        if let hostID {
            return try Row.fetchAll(db.cachedStatement(sql: columns + " WHERE h.host_id = ?"), arguments: [hostID]).map(hostRecord)
        }
        return try Row.fetchAll(db, sql: columns + " ORDER BY h.hostname, h.host_id").map(hostRecord)
    }

    static func hostRecord(_ row: Row) -> HostRecord {
        HostRecord(
            hostID: row["host_id"], hostname: row["hostname"], assetID: row["asset_id"],
            classification: (row["classification"] as String?).flatMap(Classification.init(rawValue:)), responsible: row["responsible"],
            keyid: row["keyid"], chain: ChainState(epoch: row["epoch"], seq: row["seq"], digest: row["digest"]),
            lastIssuedAt: date(row["last_issued_at"]), lastReceivedAt: date(row["last_received_at"]), policyID: row["policy_id"],
            policySHA256: row["policy_sha256"], lastFailCount: row["last_fail_count"], reportCount: row["report_count"],
            forkCount: row["fork_count"], missingCount: row["missing_count"], lastSkewSeconds: row["last_skew_seconds"], lastSkew: row["last_skew"],
            skewedReports: row["skewed_reports"])
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

    static func envelope(_ db: Database, payloadSHA256: String) throws -> [UInt8]? {
        try Data.fetchOne(db, sql: "SELECT envelope FROM reports WHERE payload_sha256 = ? ORDER BY id LIMIT 1", arguments: [payloadSHA256]).map { Array($0) }
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

    static func snapshot(_ db: Database, year: Int) throws -> UnitSnapshot {
        var hosts: [String: HostYear] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT * FROM host_years WHERE year = ?", arguments: [year]) {
            let id: String = row["host_id"]
            hosts[id] = HostYear(
                hostID: id, hostname: row["hostname"], assetID: row["asset_id"],
                classification: (row["classification"] as String?).flatMap(Classification.init(rawValue:)), responsible: row["responsible"],
                reports: row["reports"], lastIssuedAt: date(row["last_issued_at"]), lastReportSHA256: row["last_report_sha256"],
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
            let key = keyRecord(row)
            guard hosts[key.hostID] == nil else { continue }
            hosts[key.hostID] = HostYear(
                hostID: key.hostID, hostname: key.hostname, assetID: key.assetID, classification: key.classification,
                responsible: key.responsible, reports: 0, lastIssuedAt: nil, lastReportSHA256: nil, policySHA256: nil, policyID: nil, rules: [:])
        }
        let findings = try Row.fetchAll(db, sql: "SELECT * FROM findings WHERE year = ? ORDER BY host_id, rule_id, subject, status", arguments: [year]).compactMap { row -> FindingRecord? in
            guard let status = Status(rawValue: row["status"]) else { return nil }
            return FindingRecord(
                hostID: row["host_id"], ruleID: row["rule_id"], subject: row["subject"], status: status, detail: row["detail"],
                count: row["count"], firstObservedAt: date(row["first_observed_at"]), lastObservedAt: date(row["last_observed_at"]),
                firstReportSHA256: row["first_report_sha256"], lastReportSHA256: row["last_report_sha256"])
        }
        let media = try Row.fetchAll(db, sql: "SELECT * FROM media WHERE year = ? ORDER BY vendor, product, serial, host_id", arguments: [year]).map { row in
            MediumSighting(
                hostID: row["host_id"], identity: MediumIdentity(vendor: row["vendor"], product: row["product"], serial: row["serial"]),
                source: row["source"], firstSeen: date(row["first_seen"]), lastSeen: date(row["last_seen"]), reportSHA256: row["report_sha256"])
        }
        let gaps = try Row.fetchAll(db, sql: "SELECT * FROM gaps WHERE year = ? ORDER BY host_id, epoch, from_seq", arguments: [year]).map(gapRecord)
        let forks = try Row.fetchAll(db, sql: "SELECT host_id, epoch, seq, payload_sha256, received_at FROM reports WHERE outcome = 'fork' AND year = ? ORDER BY host_id, epoch, seq", arguments: [year]).map { row in
            ForkRecord(hostID: row["host_id"], epoch: row["epoch"], seq: row["seq"], reportSHA256: row["payload_sha256"], receivedAt: date(row["received_at"]))
        }
        let skews = try Row.fetchAll(db, sql: """
            SELECT host_id, epoch, seq, payload_sha256, skew, skew_seconds, issued_at, received_at FROM reports
            WHERE skew IS NOT NULL AND year = ? ORDER BY host_id, epoch, seq
            """, arguments: [year]).map { row in
            SkewRecord(
                hostID: row["host_id"], epoch: row["epoch"], seq: row["seq"], reportSHA256: row["payload_sha256"], kind: row["skew"],
                seconds: row["skew_seconds"], issuedAt: date(row["issued_at"]), receivedAt: date(row["received_at"]))
        }
        return UnitSnapshot(
            year: year, hosts: hosts.values.sorted { ($0.hostname, $0.hostID) < ($1.hostname, $1.hostID) }, findings: findings,
            media: media, gaps: gaps, forks: forks, skews: skews)
    }
}
