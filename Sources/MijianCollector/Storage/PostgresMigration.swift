import Crypto
import Foundation
import GRDB
import Logging
import MijianCore
import NIOCore
import PostgresNIO

/// Moving a unit from its SQLite store to PostgreSQL: every table of the ledger and the registry
/// copied row for row (ids kept) in one transaction, then counted and digested on both sides.
public enum PostgresMigration {
    /// What one table's copy did.
    public struct Table: Sendable, Equatable {
        /// The table.
        public var name: String
        /// Rows copied.
        public var rows: Int
        /// SHA-256 of the rows as both sides list them (id order; envelopes by their own SHA-256), hex.
        public var digest: String
    }

    /// What the migration did.
    public struct Summary: Sendable {
        /// Each table copied, in the order copied.
        public var tables: [Table]
        /// Bytes of envelopes copied.
        public var envelopeBytes: Int64
        /// Tables of the source not copied, with why.
        public var skipped: [String]
    }

    /// The ledger's tables in copy order, each with its columns and the column that orders it.
    static let tables: [(name: String, order: String)] = [
        ("keys", "keyid"), ("hosts", "host_id"), ("reports", "id"), ("ingest_log", "id"), ("gaps", "id"), ("host_years", "host_id, year"),
        ("host_rules", "host_id, year, rule_id"), ("findings", "host_id, year, rule_id, subject, status"),
        ("media", "host_id, year, vendor, product, serial"), ("refusals", "id"), ("refusal_drops", "id"), ("repeats", "id"), ("repeat_drops", "id"),
    ]

    /// Tables with a serial id whose sequence must continue after the copied ids.
    static let serials = ["reports", "ingest_log", "gaps", "refusals", "repeats"]

    /// Rows per INSERT.
    static let batch = 400

    /// Copies the store in `directory` into the (empty) database at `location` and verifies it.
    public static func copy(from directory: String, to location: PostgresLocation, logger: Logger) async throws(StoreError) -> Summary {
        // Opening the store brings an older file to the current schema first, as `serve` would.
        let source = try SQLiteStore(directory: directory)
        let target = try await PostgresStore.open(location, logger: logger)
        defer { target.close() }
        do {
            let summary = try await copy(source.writer, into: target, logger: logger)
            try await target.reloadRegistry()
            return summary
        } catch {
            throw PostgresStore.storeError("copy the store", error)
        }
    }

    private static func copy(_ pool: any DatabaseWriter, into target: PostgresStore, logger: Logger) async throws -> Summary {
        let client = target.client
        let sourceTables = try await pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%'") }
        let skipped = sourceTables.filter { name in !tables.contains { $0.name == name } }.sorted().map { name in
            name.hasPrefix("console_") ? "\(name) (the console keeps its users, sessions and waivers in SQLite; it is not served from PostgreSQL)" : name
        }
        return try await client.withTransaction(logger: logger) { connection in
            // An empty target only: a migration never merges two units' ledgers.
            let present = try await connection.query("SELECT (SELECT count(*) FROM keys) + (SELECT count(*) FROM reports) + (SELECT count(*) FROM hosts)", logger: logger)
            if let count = try await present.collect().first?.decode(Int64.self), count > 0 {
                throw MijianError(.database, "the target database already holds \(count) keys, hosts or reports: migrate into an empty database")
            }
            // The drop counters exist with one row each; the source's replace them.
            try await connection.query("DELETE FROM refusal_drops", logger: logger)
            try await connection.query("DELETE FROM repeat_drops", logger: logger)
            var copied: [Table] = []
            // The first rows of each table as listed, to show what differs when a digest does not verify.
            var firstLines: [String: [String]] = [:]
            var envelopeBytes: Int64 = 0
            for table in tables {
                let name = table.name
                let columns = try await copiedColumns(pool, name)
                var offset = 0
                var hasher = SHA256()
                var rows = 0
                while true {
                    let sql = "SELECT * FROM \(table.name) ORDER BY \(table.order) LIMIT \(batch) OFFSET \(offset)"
                    let page = try await pool.read { db in try Row.fetchAll(db, sql: sql).map { row in try copiedValues(row, columns: columns) } }
                    if page.isEmpty { break }
                    offset += page.count
                    var binds = PostgresBindings(capacity: page.count * columns.count)
                    var tuples: [String] = []
                    for row in page {
                        var placeholders: [String] = []
                        for value in row {
                            switch value.storage {
                            case .null: binds.appendNull()
                            case .int64(let number): binds.append(number)
                            case .double(let number): binds.append(number)
                            case .string(let text): binds.append(text)
                            case .blob(let data):
                                envelopeBytes += Int64(data.count)
                                var buffer = ByteBuffer()
                                buffer.writeBytes(data)
                                binds.append(buffer)
                            }
                            placeholders.append("$\(binds.count)")
                        }
                        tuples.append("(\(placeholders.joined(separator: ", ")))")
                        let text = line(row)
                        hasher.update(data: Array(text.utf8))
                        if firstLines[table.name, default: []].count < 3 { firstLines[table.name, default: []].append(text) }
                        rows += 1
                    }
                    let insert = "INSERT INTO \(table.name) (\(columns.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", "))"
                    try await connection.query(PostgresQuery(unsafeSQL: insert, binds: binds), logger: logger)
                }
                copied.append(Table(name: table.name, rows: rows, digest: hasher.finalize().map { String(format: "%02x", $0) }.joined()))
            }
            for table in serials {
                try await connection.query(PostgresQuery(unsafeSQL: "SELECT setval(pg_get_serial_sequence('\(table)', 'id'), coalesce((SELECT max(id) FROM \(table)), 0) + 1, false)"), logger: logger)
            }
            // Verify inside the same transaction: every table counted and digested as PostgreSQL holds it.
            for table in copied {
                let name = table.name
                let columns = try await copiedColumns(pool, name)
                let order = tables.first { $0.name == table.name }?.order ?? "1"
                let collated = order.split(separator: ",").map { column -> String in
                    let name = column.trimmingCharacters(in: .whitespaces)
                    // Qualified: the bare name would be the output column, its text.
                    return ["id", "year"].contains(name) ? "\(table.name).\(name)" : "\(table.name).\(name) COLLATE \"C\""
                }.joined(separator: ", ")
                let listed = columns.map { $0 == "envelope" ? "encode(sha256(envelope), 'hex') AS envelope" : "\($0)::text AS \($0)" }.joined(separator: ", ")
                var hasher = SHA256()
                var rows = 0
                var mismatch: String?
                for try await row in try await connection.query(PostgresQuery(unsafeSQL: "SELECT \(listed) FROM \(table.name) ORDER BY \(collated)"), logger: logger) {
                    let cells = row.makeRandomAccess()
                    let text = try columns.map { column -> String in (try cells[column].decode(String?.self)).map { "s:\($0)" } ?? "null" }
                    let rowText = text.joined(separator: "\u{1F}") + "\n"
                    hasher.update(data: Array(rowText.utf8))
                    if rows < 3, let expected = firstLines[table.name]?[rows], expected != rowText {
                        mismatch = mismatch ?? "row \(rows + 1) reads \(expected.debugDescription) in SQLite and \(rowText.debugDescription) in PostgreSQL"
                    }
                    rows += 1
                }
                let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
                guard rows == table.rows, digest == table.digest else {
                    throw MijianError(.database, "table \(table.name) does not verify after the copy: \(table.rows) rows read, \(rows) in PostgreSQL; digest \(table.digest) against \(digest)\(mismatch.map { "; \($0)" } ?? ""); nothing was kept")
                }
            }
            return Summary(tables: copied, envelopeBytes: envelopeBytes, skipped: skipped)
        }
    }

    /// The columns copied from a SQLite table: all of them but how an envelope is stored there
    /// (`envelope_encoding`: PostgreSQL keeps envelopes as sent and compresses them itself).
    private static func copiedColumns(_ pool: any DatabaseWriter, _ table: String) async throws -> [String] {
        try await pool.read { db in try db.columns(in: table).map(\.name) }.filter { $0 != "envelope_encoding" }
    }

    /// A row's values in `columns`' order, an envelope as it was signed (a stored frame
    /// decompressed; one that cannot be is an error naming the report, and nothing is kept).
    static func copiedValues(_ row: Row, columns: [String]) throws -> [DatabaseValue] {
        try columns.map { column -> DatabaseValue in
            guard column == "envelope", row.hasColumn("envelope_encoding") else { return row[column] as DatabaseValue }
            return Data(try SQLiteStore.storedEnvelope(row, hostID: row["host_id"] ?? "?", payloadSHA256: row["payload_sha256"] ?? "?")).databaseValue
        }
    }

    /// A row as text both sides can list alike: each value as text (integers in decimal), a
    /// blob by its SHA-256, NULL apart.
    static func line(_ row: [DatabaseValue]) -> String {
        row.map { value -> String in
            switch value.storage {
            case .null: return "null"
            case .int64(let number): return "s:\(number)"
            case .double(let number): return "s:\(number)"
            case .string(let text): return "s:\(text)"
            case .blob(let data): return "s:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            }
        }.joined(separator: "\u{1F}") + "\n"
    }
}
