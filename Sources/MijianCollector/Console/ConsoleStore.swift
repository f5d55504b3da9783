import Crypto
import Foundation
import GRDB
import MijianCore

/// A console account's role: officers change things, viewers only read.
public enum ConsoleRole: String, Sendable, CaseIterable {
    /// 保密员: records waivers, approves and revokes keys.
    case officer
    /// Reads every page, changes nothing.
    case viewer
}

/// One console account.
public struct ConsoleUser: Sendable, Equatable {
    /// The login name.
    public var name: String
    /// What it may do.
    public var role: ConsoleRole
    /// A disabled account cannot log in, and its sessions end.
    public var disabled: Bool
}

/// A logged-in session as the store keeps it (the id itself is never stored, only its SHA-256).
public struct ConsoleSession: Sendable, Equatable {
    /// The account.
    public var user: ConsoleUser
    /// The per-session CSRF token every form carries.
    public var csrf: String
    /// When it ends.
    public var expiresAt: Date
}

/// A waiver: a finding accepted for a while, with a written reason and an approver. It never hides the finding.
public struct Waiver: Sendable, Equatable {
    /// Row id.
    public var id: Int64
    /// The machine, for machine × rule; nil for department × rule.
    public var hostID: String?
    /// The department (the hosts' `unit`), for department × rule.
    public var department: String?
    /// The rule.
    public var ruleID: String
    /// Why the finding is accepted.
    public var reason: String
    /// Who approved it.
    public var approver: String
    /// When it ends by itself.
    public var expiresAt: Date
    /// The account that recorded it, and when.
    public var createdBy: String
    /// When it was recorded.
    public var createdAt: Date
    /// When it was withdrawn before its expiry, if it was.
    public var withdrawnAt: Date?

    /// Whether it is in force at `date`.
    public func isActive(at date: Date) -> Bool { withdrawnAt == nil && expiresAt > date && createdAt <= date }

    /// Whether it covers a finding of `ruleID` on a machine of `hostID` in `department`.
    public func covers(hostID: String, department: String?, ruleID: String) -> Bool {
        guard ruleID == self.ruleID else { return false }
        if let host = self.hostID { return host == hostID }
        return department != nil && department == self.department
    }
}

/// One entry of the waivers' append-only audit log.
public struct WaiverLogEntry: Sendable, Equatable {
    /// The waiver.
    public var waiverID: Int64
    /// `recorded` or `withdrawn`.
    public var action: String
    /// The account.
    public var by: String
    /// When.
    public var at: Date
    /// What changed, as a sentence.
    public var detail: String
}

/// An enrolment request waiting for the office's decision.
public struct PendingEnrolment: Sendable, Equatable {
    /// SHA-256 of the request file.
    public var sha256: String
    /// The request file's bytes.
    public var request: [UInt8]
    /// Who submitted it, and when.
    public var submittedBy: String
    /// When it was submitted.
    public var submittedAt: Date
}

/// The console's tables in the collector database: accounts, sessions, waivers and their log,
/// enrolment requests waiting for a decision. Registered after the collector's own migrations.
public enum ConsoleSchema {
    /// Appends the console's migrations to the collector's.
    static func register(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v5-console") { db in
            try db.execute(sql: """
                CREATE TABLE console_users (
                    name TEXT PRIMARY KEY NOT NULL, role TEXT NOT NULL, password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
                    created_at TEXT NOT NULL, changed_at TEXT NOT NULL);
                CREATE TABLE console_sessions (
                    id_sha256 TEXT PRIMARY KEY NOT NULL, user TEXT NOT NULL REFERENCES console_users(name), csrf TEXT NOT NULL,
                    created_at TEXT NOT NULL, expires_at TEXT NOT NULL, address TEXT NOT NULL);
                CREATE INDEX console_sessions_user ON console_sessions(user);
                CREATE TABLE console_waivers (
                    id INTEGER PRIMARY KEY, host_id TEXT, department TEXT, rule_id TEXT NOT NULL, reason TEXT NOT NULL, approver TEXT NOT NULL,
                    expires_at TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL, withdrawn_at TEXT, withdrawn_by TEXT,
                    CHECK ((host_id IS NULL) != (department IS NULL)));
                CREATE INDEX console_waivers_host ON console_waivers(host_id);
                CREATE TABLE console_waiver_log (
                    id INTEGER PRIMARY KEY, waiver_id INTEGER NOT NULL, action TEXT NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL, detail TEXT NOT NULL);
                CREATE TRIGGER console_waiver_log_no_update BEFORE UPDATE ON console_waiver_log
                    BEGIN SELECT RAISE(ABORT, 'the waiver log is append-only'); END;
                CREATE TRIGGER console_waiver_log_no_delete BEFORE DELETE ON console_waiver_log
                    BEGIN SELECT RAISE(ABORT, 'the waiver log is append-only'); END;
                CREATE TABLE console_enrolments (
                    sha256 TEXT PRIMARY KEY NOT NULL, request BLOB NOT NULL, submitted_by TEXT NOT NULL, submitted_at TEXT NOT NULL,
                    decision TEXT, decided_by TEXT, decided_at TEXT);
                CREATE INDEX hosts_hostname ON hosts(hostname, host_id);
                CREATE INDEX hosts_unit ON hosts(unit, hostname);
                CREATE INDEX hosts_asset ON hosts(asset_id);
                CREATE INDEX hosts_last_issued ON hosts(last_issued_at);
                CREATE INDEX findings_rule_current ON findings(rule_id, status, last_report_sha256);
                CREATE INDEX findings_status_current ON findings(status, last_report_sha256);
                """)
        }
        migrator.registerMigration("v6-console-indexes") { db in
            // The machines list filters by failure and classification at 100,000 machines.
            try db.execute(sql: """
                CREATE INDEX hosts_failing ON hosts(last_fail_count) WHERE last_fail_count > 0;
                CREATE INDEX hosts_classification ON hosts(classification, hostname);
                CREATE INDEX keys_revoked ON keys(host_id) WHERE revoked_at IS NOT NULL;
                """)
        }
    }
}

extension CollectorStore {
    /// Wraps a database error for the console.
    fileprivate func consoleError(_ what: String, _ error: any Error) -> MijianError {
        if let error = error as? MijianError { return error }
        return MijianError.database(what, error, path: path)
    }

    /// Runs a read-only block on one of the pool's readers, awaited: the request's task waits,
    /// no thread of the server blocks on SQLite.
    func consoleRead<T: Sendable>(_ what: String, _ block: @Sendable (Database) throws -> T) async throws(MijianError) -> T {
        do {
            return try await pool.read(block)
        } catch {
            throw consoleError(what, error)
        }
    }

    /// Runs a block in a write transaction, awaited.
    func consoleWrite<T: Sendable>(_ what: String, _ block: @Sendable (Database) throws -> T) async throws(MijianError) -> T {
        do {
            return try await pool.write(block)
        } catch {
            throw consoleError(what, error)
        }
    }

    /// The same read, blocking: for the command line only.
    func consoleReadBlocking<T>(_ what: String, _ block: (Database) throws -> T) throws(MijianError) -> T {
        do {
            return try pool.read(block)
        } catch {
            throw consoleError(what, error)
        }
    }

    /// The same write, blocking: for the command line only.
    private func consoleWriteBlocking<T>(_ what: String, _ block: (Database) throws -> T) throws(MijianError) -> T {
        do {
            return try pool.write(block)
        } catch {
            throw consoleError(what, error)
        }
    }

    // MARK: - Accounts (the command line)

    /// Adds an account with an already hashed password.
    public func addUser(name: String, role: ConsoleRole, passwordHash: String, at date: Date) throws(MijianError) {
        try consoleWriteBlocking("cannot add the account") { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM console_users WHERE name = ?", arguments: [name]) != nil {
                throw MijianError(.usage, "the account \(name) exists already (use `users passwd` or `users disable`)")
            }
            let at = RFC3339.string(from: date)
            try db.execute(
                sql: "INSERT INTO console_users (name, role, password_hash, disabled, created_at, changed_at) VALUES (?, ?, ?, 0, ?, ?)",
                arguments: [name, role.rawValue, passwordHash, at, at])
        }
    }

    /// Sets an account's password (and role, when given), enables it again, and ends its sessions.
    public func setPassword(name: String, passwordHash: String, role: ConsoleRole?, at date: Date) throws(MijianError) {
        try consoleWriteBlocking("cannot change the account") { db in
            try db.execute(
                sql: "UPDATE console_users SET password_hash = ?, role = coalesce(?, role), disabled = 0, changed_at = ? WHERE name = ?",
                arguments: [passwordHash, role?.rawValue, RFC3339.string(from: date), name])
            guard db.changesCount == 1 else { throw MijianError(.notFound, "no account \(name) (see `mijian-collector users list`)") }
            try db.execute(sql: "DELETE FROM console_sessions WHERE user = ?", arguments: [name])
        }
    }

    /// Disables an account and ends its sessions.
    public func disableUser(name: String, at date: Date) throws(MijianError) {
        try consoleWriteBlocking("cannot disable the account") { db in
            try db.execute(sql: "UPDATE console_users SET disabled = 1, changed_at = ? WHERE name = ?", arguments: [RFC3339.string(from: date), name])
            guard db.changesCount == 1 else { throw MijianError(.notFound, "no account \(name) (see `mijian-collector users list`)") }
            try db.execute(sql: "DELETE FROM console_sessions WHERE user = ?", arguments: [name])
        }
    }

    /// Every account.
    public func users() throws(MijianError) -> [ConsoleUser] {
        try consoleReadBlocking("cannot read the accounts") { db in
            try Row.fetchAll(db, sql: "SELECT name, role, disabled FROM console_users ORDER BY name").compactMap(Self.user)
        }
    }

    private static func user(_ row: Row) -> ConsoleUser? {
        guard let role = ConsoleRole(rawValue: row["role"]) else { return nil }
        return ConsoleUser(name: row["name"], role: role, disabled: (row["disabled"] as Int) != 0)
    }

    // MARK: - Logins and sessions (the console)

    /// An account and its password hash, for the login check.
    func credentials(name: String) async throws(MijianError) -> (user: ConsoleUser, hash: String)? {
        let found = try await consoleRead("cannot read the account") { db -> Credentials? in
            guard let row = try Row.fetchOne(db, sql: "SELECT name, role, disabled, password_hash FROM console_users WHERE name = ?", arguments: [name]),
                let user = Self.user(row)
            else { return nil }
            return Credentials(user: user, hash: row["password_hash"])
        }
        return found.map { ($0.user, $0.hash) }
    }

    private struct Credentials: Sendable {
        var user: ConsoleUser
        var hash: String
    }

    /// Stores a session under the SHA-256 of its id; sessions past their expiry are removed on the way.
    func createSession(idSHA256: String, user: String, csrf: String, at date: Date, expiresAt: Date, address: String) async throws(MijianError) {
        try await consoleWrite("cannot store the session") { db in
            try db.execute(sql: "DELETE FROM console_sessions WHERE expires_at <= ?", arguments: [RFC3339.string(from: date)])
            try db.execute(
                sql: "INSERT INTO console_sessions (id_sha256, user, csrf, created_at, expires_at, address) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [idSHA256, user, csrf, RFC3339.string(from: date), RFC3339.string(from: expiresAt), address])
        }
    }

    /// The session of this id hash when it exists, has not expired and its account is enabled.
    func session(idSHA256: String, at date: Date) async throws(MijianError) -> ConsoleSession? {
        try await consoleRead("cannot read the session") { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT u.name, u.role, u.disabled, s.csrf, s.expires_at FROM console_sessions s JOIN console_users u ON u.name = s.user
                WHERE s.id_sha256 = ? AND s.expires_at > ? AND u.disabled = 0
                """, arguments: [idSHA256, RFC3339.string(from: date)]), let user = Self.user(row)
            else { return nil }
            return ConsoleSession(user: user, csrf: row["csrf"], expiresAt: Self.date(row["expires_at"]))
        }
    }

    /// Ends a session.
    func deleteSession(idSHA256: String) async throws(MijianError) {
        try await consoleWrite("cannot end the session") { db in try db.execute(sql: "DELETE FROM console_sessions WHERE id_sha256 = ?", arguments: [idSHA256]) }
    }

    // MARK: - Waivers

    /// Records a waiver and its log entry in one transaction; returns its id.
    func addWaiver(
        hostID: String?, department: String?, ruleID: String, reason: String, approver: String, expiresAt: Date, by user: String, at date: Date
    ) async throws(MijianError) -> Int64 {
        try await consoleWrite("cannot record the waiver") { db in
            let at = RFC3339.string(from: date)
            try db.execute(sql: """
                INSERT INTO console_waivers (host_id, department, rule_id, reason, approver, expires_at, created_by, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [hostID, department, ruleID, reason, approver, RFC3339.string(from: expiresAt), user, at])
            let id = db.lastInsertedRowID
            let scope = hostID.map { "host \($0)" } ?? "department \(department ?? "")"
            try db.execute(
                sql: "INSERT INTO console_waiver_log (waiver_id, action, by, at, detail) VALUES (?, 'recorded', ?, ?, ?)",
                arguments: [id, user, at, "\(scope) × \(ruleID); reason: \(reason); approver: \(approver); expires \(RFC3339.string(from: expiresAt))"])
            return id
        }
    }

    /// Withdraws a waiver before its expiry, with the reason in the log.
    func withdrawWaiver(id: Int64, reason: String, by user: String, at date: Date) async throws(MijianError) {
        try await consoleWrite("cannot withdraw the waiver") { db in
            let at = RFC3339.string(from: date)
            try db.execute(sql: "UPDATE console_waivers SET withdrawn_at = ?, withdrawn_by = ? WHERE id = ? AND withdrawn_at IS NULL", arguments: [at, user, id])
            guard db.changesCount == 1 else { throw MijianError(.notFound, "no waiver \(id) in force") }
            try db.execute(
                sql: "INSERT INTO console_waiver_log (waiver_id, action, by, at, detail) VALUES (?, 'withdrawn', ?, ?, ?)", arguments: [id, user, at, reason])
        }
    }

    /// Every waiver, newest first; with `hostID`, those of that machine and of its department.
    public func waivers(hostID: String? = nil, department: String? = nil) throws(MijianError) -> [Waiver] {
        try consoleReadBlocking("cannot read the waivers") { db in try Self.waivers(db, hostID: hostID, department: department) }
    }

    /// The same, awaited.
    func consoleWaivers(hostID: String? = nil, department: String? = nil) async throws(MijianError) -> [Waiver] {
        try await consoleRead("cannot read the waivers") { db in try Self.waivers(db, hostID: hostID, department: department) }
    }

    private static func waivers(_ db: Database, hostID: String?, department: String?) throws -> [Waiver] {
        let rows: [Row]
        if let hostID {
            rows = try Row.fetchAll(
                db, sql: "SELECT * FROM console_waivers WHERE host_id = ? OR (department IS NOT NULL AND department = ?) ORDER BY id DESC",
                arguments: [hostID, department])
        } else {
            rows = try Row.fetchAll(db, sql: "SELECT * FROM console_waivers ORDER BY id DESC")
        }
        return rows.map { row in
            Waiver(
                id: row["id"], hostID: row["host_id"], department: row["department"], ruleID: row["rule_id"], reason: row["reason"],
                approver: row["approver"], expiresAt: Self.date(row["expires_at"]), createdBy: row["created_by"],
                createdAt: Self.date(row["created_at"]), withdrawnAt: (row["withdrawn_at"] as String?).flatMap(RFC3339.date(from:)))
        }
    }

    /// The waivers' audit log, newest first.
    public func waiverLog(limit: Int = 500) throws(MijianError) -> [WaiverLogEntry] {
        try consoleReadBlocking("cannot read the waiver log") { db in try Self.waiverLog(db, limit: limit) }
    }

    /// The same, awaited.
    func consoleWaiverLog(limit: Int = 500) async throws(MijianError) -> [WaiverLogEntry] {
        try await consoleRead("cannot read the waiver log") { db in try Self.waiverLog(db, limit: limit) }
    }

    private static func waiverLog(_ db: Database, limit: Int) throws -> [WaiverLogEntry] {
        try Row.fetchAll(db, sql: "SELECT * FROM console_waiver_log ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
            WaiverLogEntry(waiverID: row["waiver_id"], action: row["action"], by: row["by"], at: Self.date(row["at"]), detail: row["detail"])
        }
    }

    // MARK: - Enrolment requests

    /// Keeps a request file for the office's decision; the same file twice is one request.
    func submitEnrolment(_ bytes: [UInt8], by user: String, at date: Date) async throws(MijianError) -> String {
        let sha = Hex.lower(SHA256.hash(data: bytes))
        try await consoleWrite("cannot keep the request") { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO console_enrolments (sha256, request, submitted_by, submitted_at) VALUES (?, ?, ?, ?)",
                arguments: [sha, Data(bytes), user, RFC3339.string(from: date)])
        }
        return sha
    }

    /// Requests without a decision, oldest first.
    public func pendingEnrolments() throws(MijianError) -> [PendingEnrolment] {
        try consoleReadBlocking("cannot read the requests", Self.pendingEnrolments)
    }

    /// The same, awaited.
    func consolePendingEnrolments() async throws(MijianError) -> [PendingEnrolment] {
        try await consoleRead("cannot read the requests", Self.pendingEnrolments)
    }

    private static func pendingEnrolments(_ db: Database) throws -> [PendingEnrolment] {
        try Row.fetchAll(db, sql: "SELECT * FROM console_enrolments WHERE decision IS NULL ORDER BY submitted_at, sha256").map { row in
            PendingEnrolment(
                sha256: row["sha256"], request: Array(row["request"] as Data), submittedBy: row["submitted_by"], submittedAt: Self.date(row["submitted_at"]))
        }
    }

    /// Marks a request decided (`approved` or `rejected`).
    func decideEnrolment(sha256: String, decision: String, by user: String, at date: Date) async throws(MijianError) {
        try await consoleWrite("cannot record the decision") { db in
            try db.execute(
                sql: "UPDATE console_enrolments SET decision = ?, decided_by = ?, decided_at = ? WHERE sha256 = ? AND decision IS NULL",
                arguments: [decision, user, RFC3339.string(from: date), sha256])
        }
    }
}
