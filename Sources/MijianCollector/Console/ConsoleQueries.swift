import Foundation
import GRDB
import MijianCore
import MijianEvidence

/// A machine's state on the console. Each machine has exactly one, by precedence: its key
/// revoked, then silent, failing, could not check (error), compliant; machines enrolled that
/// never reported are counted from the registry.
enum MachineState: String, Sendable, CaseIterable {
    case compliant, failing, error, silent, never, revoked
}

/// A row read for a page: GRDB's `Row` does not cross threads, so its values are copied.
struct ConsoleRow: Sendable {
    private var values: [String: DatabaseValue] = [:]

    init(_ row: Row) {
        for (column, value) in row { values[column] = value }
    }

    /// The column as text; "" when NULL or absent.
    func text(_ column: String) -> String { optional(column) ?? "" }

    /// The column as text, nil when NULL.
    func optional(_ column: String) -> String? { values[column].flatMap { String.fromDatabaseValue($0) } }

    /// The column as an integer; 0 when NULL.
    func int(_ column: String) -> Int64 { values[column].flatMap { Int64.fromDatabaseValue($0) } ?? 0 }
}

/// What the machines list is asked for.
struct MachineFilter: Sendable {
    var department: String?
    var classification: String?
    var state: MachineState?
    var rule: String?
    var search: String?
    var sort: String = "name"
    var page: Int = 1
    var pageSize: Int = 50

    /// The sorts offered, each backed by an index (or by the primary key).
    static let sorts: [String: String] = [
        "name": "h.hostname, h.host_id", "asset": "h.asset_id, h.host_id", "department": "h.unit, h.hostname, h.host_id",
        "last": "h.last_issued_at DESC, h.host_id", "fails": "h.last_fail_count DESC, h.hostname, h.host_id",
    ]
}

/// One row of the machines list.
struct MachineRow: Sendable {
    var hostID: String
    var hostname: String
    var assetID: String?
    var classification: String?
    var responsible: String?
    var department: String?
    var state: MachineState
    var lastIssuedAt: Date?
    var lastFailCount: Int
    var failingSince: Date?
    var keyid: String?
}

/// The overview's counts.
struct OverviewCounts: Sendable {
    var states: [MachineState: Int] = [:]
    /// Per department: machines per state.
    var departments: [(name: String, states: [MachineState: Int])] = []
    var total: Int { states.values.reduce(0, +) }
}

/// The console's reads: SQL over the collector's tables (and the console's indexes), never a
/// whole-table load, so that a page stays fast at 100,000 machines.
struct ConsoleQueries: Sendable {
    let store: CollectorStore
    /// Days without a report after which a machine is silent.
    let silentAfterDays: Int

    /// Outcomes of reports that moved their chain.
    static let advancing = "('first', 'accepted', 'gap', 'new-epoch')"

    /// A machine is silent when its last report (the earlier of issue and receive time) is more
    /// than `silentAfterDays` whole days old: at or before this instant.
    func silentCutoff(now: Date) -> String {
        RFC3339.string(from: HostsView.silentSince(now: now, silentAfterDays: silentAfterDays))
    }

    /// Host ids with keys, none of them active: their machines' state is "key revoked". A small
    /// set (revocations are rare), so the conditions below test membership instead of looking
    /// every machine's keys up.
    /// Read through the `keys_revoked` partial index: only revoked keys are visited.
    static let revokedHosts = """
        (SELECT k.host_id FROM keys k WHERE k.revoked_at IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM keys a WHERE a.host_id = k.host_id AND a.revoked_at IS NULL))
        """
    /// Digests of reports that carried a finding the machine could not check (by the
    /// `findings_status_current` index): a machine whose newest report is one of them is in error.
    static let errorReports = "(SELECT last_report_sha256 FROM findings WHERE status = 'error')"

    /// The state of the machine in row `h`, with one argument: the silence cutoff.
    static let stateSQL = """
        CASE WHEN h.host_id IN \(revokedHosts) THEN 'revoked'
             WHEN min(h.last_issued_at, h.last_received_at) <= ? THEN 'silent'
             WHEN h.last_fail_count > 0 THEN 'failing'
             WHEN h.digest IN \(errorReports) THEN 'error'
             ELSE 'compliant' END
        """

    /// The condition that row `h` is in `state`, as plain predicates (so that counting a state
    /// never computes every machine's state), with its arguments.
    static func condition(_ state: MachineState, cutoff: String) -> (sql: String, arguments: [any DatabaseValueConvertible]) {
        let live = "h.host_id NOT IN \(revokedHosts)"
        let recent = "min(h.last_issued_at, h.last_received_at) > ?"
        switch state {
        case .revoked: return ("h.host_id IN \(revokedHosts)", [])
        case .silent: return ("\(live) AND min(h.last_issued_at, h.last_received_at) <= ?", [cutoff])
        case .failing: return ("\(live) AND \(recent) AND h.last_fail_count > 0", [cutoff])
        case .error:
            return ("h.host_id IN (SELECT host_id FROM findings WHERE status = 'error') AND \(live) AND \(recent) AND h.last_fail_count = 0 AND h.digest IN \(errorReports)", [cutoff])
        case .compliant: return ("\(live) AND \(recent) AND h.last_fail_count = 0 AND h.digest NOT IN \(errorReports)", [cutoff])
        case .never: return ("0", [])
        }
    }

    /// One page of machines, and how many match in all.
    func machines(_ filter: MachineFilter, now: Date) async throws(MijianError) -> (total: Int, rows: [MachineRow]) {
        let cutoff = silentCutoff(now: now)
        if filter.state == .never { return try await neverReported(filter) }
        return try await store.consoleRead("cannot list the machines") { db in
            var conditions: [String] = []
            var arguments: [any DatabaseValueConvertible] = []
            if let department = filter.department {
                // Written so that the department index serves it.
                if department.isEmpty {
                    conditions.append("(h.unit IS NULL OR h.unit = '')")
                } else {
                    conditions.append("h.unit = ?")
                    arguments.append(department)
                }
            }
            if let classification = filter.classification {
                if classification == "-" {
                    conditions.append("h.classification IS NULL")
                } else {
                    conditions.append("h.classification = ?")
                    arguments.append(classification)
                }
            }
            if let rule = filter.rule {
                // Driven by the findings of the rule (the findings_rule_current index), not by every machine.
                conditions.append("""
                    h.host_id IN (SELECT host_id FROM findings WHERE rule_id = ? AND status = 'fail')
                    AND h.digest IN (SELECT last_report_sha256 FROM findings WHERE rule_id = ? AND status = 'fail')
                    """)
                arguments += [rule, rule]
            }
            if let search = filter.search {
                let pattern = "%" + search.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
                conditions.append("(h.hostname LIKE ? ESCAPE '\\' OR h.asset_id LIKE ? ESCAPE '\\' OR h.responsible LIKE ? ESCAPE '\\')")
                arguments += [pattern, pattern, pattern]
            }
            if let state = filter.state {
                let condition = Self.condition(state, cutoff: cutoff)
                conditions.append(condition.sql)
                arguments += condition.arguments
            }
            let order = MachineFilter.sorts[filter.sort] ?? MachineFilter.sorts["name"] ?? "h.hostname"
            let page = """
                SELECT h.host_id, h.hostname, h.asset_id, h.classification, h.responsible, h.unit, h.last_issued_at, h.last_fail_count, h.keyid,
                    \(Self.stateSQL) AS state FROM hosts h
                """
            let filters = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM hosts h \(filters)", arguments: StatementArguments(arguments)) ?? 0
            let offset = max(filter.page - 1, 0) * filter.pageSize
            var rows: [MachineRow] = []
            // The state is worked out for the rows of the page only.
            for row in try Row.fetchAll(
                db, sql: "\(page) \(filters) ORDER BY \(order) LIMIT ? OFFSET ?", arguments: StatementArguments([cutoff] + arguments + [filter.pageSize, offset]))
            {
                let state = MachineState(rawValue: row["state"]) ?? .error
                var machine = MachineRow(
                    hostID: row["host_id"], hostname: row["hostname"], assetID: row["asset_id"], classification: row["classification"],
                    responsible: row["responsible"], department: row["unit"], state: state,
                    lastIssuedAt: (row["last_issued_at"] as String?).flatMap(RFC3339.date(from:)), lastFailCount: row["last_fail_count"], failingSince: nil,
                    keyid: row["keyid"])
                if machine.lastFailCount > 0 { machine.failingSince = try Self.failingSince(db, hostID: machine.hostID) }
                rows.append(machine)
            }
            return (total, rows)
        }
    }

    private func neverReported(_ filter: MachineFilter) async throws(MijianError) -> (total: Int, rows: [MachineRow]) {
        try await store.consoleRead("cannot list the machines") { db in
            let base = """
                FROM keys k WHERE k.revoked_at IS NULL AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.host_id = k.host_id)
                """
            let total = try Int.fetchOne(db, sql: "SELECT count(*) \(base)") ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT k.* \(base) ORDER BY k.hostname, k.host_id LIMIT ? OFFSET ?",
                arguments: [filter.pageSize, max(filter.page - 1, 0) * filter.pageSize])
            return (total, rows.map { row in
                MachineRow(
                    hostID: row["host_id"], hostname: row["hostname"], assetID: row["asset_id"], classification: row["classification"],
                    responsible: row["responsible"], department: nil, state: .never, lastIssuedAt: nil, lastFailCount: 0, failingSince: nil, keyid: row["keyid"])
            })
        }
    }

    /// The issue time of the first report of the machine's current failing run: the first
    /// failing report after the last report with no failure, in chain order.
    static func failingSince(_ db: Database, hostID: String) throws -> Date? {
        let lastPass = try Row.fetchOne(db, sql: """
            SELECT epoch, seq FROM reports WHERE host_id = ? AND outcome IN \(advancing) AND fail_count = 0 ORDER BY epoch DESC, seq DESC LIMIT 1
            """, arguments: [hostID])
        let epoch: Int64 = lastPass?["epoch"] ?? Int64.min
        let seq: Int64 = lastPass?["seq"] ?? Int64.min
        let first = try String.fetchOne(db, sql: """
            SELECT issued_at FROM reports WHERE host_id = ? AND outcome IN \(advancing) AND fail_count > 0 AND (epoch > ? OR (epoch = ? AND seq > ?))
            ORDER BY epoch, seq LIMIT 1
            """, arguments: [hostID, epoch, epoch, seq])
        return first.flatMap(RFC3339.date(from:))
    }

    /// Distinct departments and classifications, for the filter menus.
    func facets() async throws(MijianError) -> (departments: [String], classifications: [String]) {
        try await store.consoleRead("cannot list the departments") { db in
            // Each by its index, without reading the machines' rows.
            let departments = try String.fetchAll(db, sql: "SELECT coalesce(unit, '') FROM hosts GROUP BY unit ORDER BY 1")
            let classes = try String.fetchAll(db, sql: "SELECT classification FROM hosts WHERE classification IS NOT NULL GROUP BY classification ORDER BY 1")
            return (departments, classes)
        }
    }

    /// Per rule failing now: the machines, and since when (the first failing observation of the rule in the year).
    func failingRules(limitPerRule: Int = 100) async throws(MijianError) -> [(rule: String, machines: [(hostID: String, hostname: String, assetID: String?, since: Date)], total: Int)] {
        try await store.consoleRead("cannot list the failing rules") { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT f.rule_id, f.host_id, h.hostname, h.asset_id, min(f.first_observed_at) AS since
                FROM findings f JOIN hosts h ON h.host_id = f.host_id AND h.digest = f.last_report_sha256
                WHERE f.status = 'fail' GROUP BY f.rule_id, f.host_id ORDER BY f.rule_id, since, h.hostname
                """)
            var byRule: [(rule: String, machines: [(hostID: String, hostname: String, assetID: String?, since: Date)], total: Int)] = []
            for row in rows {
                let rule: String = row["rule_id"]
                if byRule.last?.rule != rule { byRule.append((rule, [], 0)) }
                let index = byRule.count - 1
                byRule[index].total += 1
                if byRule[index].machines.count < limitPerRule {
                    byRule[index].machines.append((row["host_id"], row["hostname"], row["asset_id"], CollectorStore.date(row["since"])))
                }
            }
            return byRule
        }
    }

    /// The host row of a machine with the state as of `now`.
    func host(_ hostID: String, now: Date) async throws(MijianError) -> ConsoleRow? {
        let cutoff = silentCutoff(now: now)
        return try await store.consoleRead("cannot read the machine") { db in
            try Row.fetchOne(db, sql: "SELECT h.*, \(Self.stateSQL) AS state FROM hosts h WHERE h.host_id = ?", arguments: [cutoff, hostID]).map(ConsoleRow.init)
        }
    }

    /// A machine's stored reports in chain order, newest first.
    func reports(_ hostID: String, limit: Int) async throws(MijianError) -> [ConsoleRow] {
        try await store.consoleRead("cannot read the reports") { db in
            try Row.fetchAll(db, sql: """
                SELECT payload_sha256, epoch, seq, outcome, issued_at, received_at, fail_count, source, skew FROM reports
                WHERE host_id = ? ORDER BY epoch DESC, seq DESC, id DESC LIMIT ?
                """, arguments: [hostID, limit]).map(ConsoleRow.init)
        }
    }

    /// The digest of the report in force at `date`: the last report that moved the chain and was
    /// issued (and received) by then.
    func reportInForce(_ hostID: String, at date: Date) async throws(MijianError) -> String? {
        let at = RFC3339.string(from: date)
        return try await store.consoleRead("cannot read the reports") { db in
            try String.fetchOne(db, sql: """
                SELECT payload_sha256 FROM reports WHERE host_id = ? AND outcome IN \(Self.advancing) AND issued_at <= ? AND received_at <= ?
                ORDER BY epoch DESC, seq DESC LIMIT 1
                """, arguments: [hostID, at, at])
        }
    }

    /// The digest of a machine's report at a chain place.
    func reportDigest(_ hostID: String, epoch: Int64?, seq: Int64) async throws(MijianError) -> String? {
        try await store.consoleRead("cannot read the reports") { db in try Self.reportDigest(db, hostID, epoch: epoch, seq: seq) }
    }

    /// The digest of a machine's report at `seq` in `epoch`, or in the newest epoch holding that
    /// seq: one range of the (host, epoch, seq) index, never a scan of every machine's reports.
    static func reportDigest(_ db: Database, _ hostID: String, epoch: Int64?, seq: Int64) throws -> String? {
        if let epoch {
            return try String.fetchOne(db, sql: reportDigestInEpochSQL, arguments: [hostID, epoch, seq])
        }
        return try String.fetchOne(db, sql: reportDigestSQL, arguments: [hostID, seq])
    }

    static let reportDigestInEpochSQL = "SELECT payload_sha256 FROM reports WHERE host_id = ? AND epoch = ? AND seq = ? ORDER BY id LIMIT 1"
    static let reportDigestSQL = "SELECT payload_sha256 FROM reports WHERE host_id = ? AND seq = ? ORDER BY epoch DESC, id LIMIT 1"

    /// The machine's keys, oldest first.
    func keys(_ hostID: String) async throws(MijianError) -> [ConsoleRow] {
        try await store.consoleRead("cannot read the keys") { db in
            try Row.fetchAll(db, sql: "SELECT keyid, approved_at, revoked_at, revoke_reason, previous_keyid, note FROM keys WHERE host_id = ? ORDER BY approved_at, keyid", arguments: [hostID]).map(ConsoleRow.init)
        }
    }

    /// Forks stored for the machine.
    func forks(_ hostID: String) async throws(MijianError) -> [ConsoleRow] {
        try await store.consoleRead("cannot read the forks") { db in
            try Row.fetchAll(db, sql: "SELECT epoch, seq, payload_sha256, received_at FROM reports WHERE host_id = ? AND outcome = 'fork' ORDER BY epoch, seq", arguments: [hostID]).map(ConsoleRow.init)
        }
    }

    /// Finds a machine by host id, host name or asset number (exact).
    func resolve(_ text: String) async throws(MijianError) -> [String] {
        try await store.consoleRead("cannot find the machine") { db in try Self.resolve(db, text) }
    }

    static func resolve(_ db: Database, _ text: String) throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT host_id FROM hosts WHERE host_id = ? OR hostname = ? OR asset_id = ?
            UNION SELECT host_id FROM keys WHERE host_id = ? OR hostname = ? OR asset_id = ?
            """, arguments: [text, text, text, text, text, text])
    }

    /// A machine's stored report, parsed from its envelope (stored only after its signature
    /// verified): found by the (host, digest) key, not by a scan of every machine's reports.
    func report(sha256: String, hostID: String) async throws(MijianError) -> Report? {
        let found = try await store.consoleRead("cannot read the report") { db in
            try SQLiteStore.envelope(db, hostID: hostID, payloadSHA256: sha256)
        }
        guard let bytes = found else { return nil }
        let envelope: Envelope
        do {
            envelope = try Envelope.parse(bytes)
        } catch {
            throw MijianError(.malformed, "the stored envelope sha256:\(sha256) does not parse: \(error)")
        }
        if let report = Report.decodingDirectly(envelope.payload, maxDepth: 32) { return report }
        do {
            return try Report(json: try JSONParser(maxDepth: 32).parse(envelope.payload))
        } catch {
            throw MijianError(.malformed, "the stored report sha256:\(sha256) does not parse: \(error)")
        }
    }
}
