import ArgumentParser
import Foundation
import MijianCollector
import MijianCore

/// `mijian-collector migrate --from DIR --to postgres://…`: moves a unit to PostgreSQL.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy a unit's SQLite store into an empty PostgreSQL database, then count and digest every table on both sides.",
        discussion: """
            Stop every `serve` of the unit first: reports that arrive during the copy would be in neither store. \
            The copy is one transaction: when a table does not verify, nothing is kept.
            """)
    @Option(help: "The data directory of the SQLite store (holding collector.sqlite).") var from: String
    @Option(help: "The PostgreSQL database: postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full&sslrootcert=FILE&password_file=FILE.")
    var to: String
    @Option(name: .customLong("database-password-file"), help: "A file holding the PostgreSQL password (or password_file= in the URL).")
    var databasePasswordFile: String?

    func run() async throws {
        var location = try PostgresLocation.parse(to)
        if let databasePasswordFile {
            if let named = location.passwordFile, named != databasePasswordFile {
                throw MijianError(.usage, "the URL's password_file=\(named) and --database-password-file \(databasePasswordFile) name two files: give one")
            }
            location.passwordFile = databasePasswordFile
        }
        let summary: PostgresMigration.Summary
        do {
            summary = try await PostgresMigration.copy(from: from, to: location, logger: makeLogger())
        } catch {
            throw error.mijianError
        }
        var text = "copied \(from) to \(location) in one transaction:\n"
        for table in summary.tables {
            text += "  \(table.name): \(table.rows) rows, sha256 \(table.digest)\n"
        }
        text += "  envelopes: \(summary.envelopeBytes) bytes\n"
        for name in summary.skipped { text += "  not copied: \(name)\n" }
        text += "verified: every table has as many rows in PostgreSQL as in SQLite and the same SHA-256 over its rows (envelopes by their SHA-256)\n"
        try write(text)
    }
}
