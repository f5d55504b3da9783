import Foundation
import Logging
import MijianCore

/// Where the collector's data is: a directory holding `collector.sqlite` (the default), or a
/// PostgreSQL database named by a `postgres://` or `postgresql://` URL. A URL never carries the
/// password: it is read from a file (`--database-password-file`), so it appears in no process
/// listing and no shell history.
public enum StoreLocation: Sendable, Equatable, CustomStringConvertible {
    /// A directory with the SQLite database.
    case sqlite(directory: String)
    /// A PostgreSQL URL (without a password) and the file holding the password, if any.
    case postgres(url: String, passwordFile: String?)

    /// Reads `--database`: a `postgres://` or `postgresql://` URL, or else a directory.
    public static func parse(_ text: String, passwordFile: String? = nil) throws(MijianError) -> StoreLocation {
        let lowered = text.lowercased()
        guard lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") else {
            guard !text.isEmpty else { throw MijianError(.usage, "--database is empty: give a directory or a postgres:// URL") }
            if passwordFile != nil { throw MijianError(.usage, "--database-password-file is for a postgres:// database, not the directory \(text)") }
            return .sqlite(directory: text)
        }
        // user:password@ — a password on the command line is refused, not used.
        if let authority = text.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).dropFirst(2).first,
            let at = authority.lastIndex(of: "@"), authority[..<at].contains(":")
        {
            throw MijianError(.usage, "the database URL holds a password: put it in a file readable only by the collector and give --database-password-file FILE")
        }
        return .postgres(url: text, passwordFile: passwordFile)
    }

    /// The location for messages.
    public var description: String {
        switch self {
        case .sqlite(let directory): return FilePathText.join(directory, "collector.sqlite")
        case .postgres(let url, _): return url
        }
    }
}

/// Opens the store at `location`: the one way every command and the server open their storage.
public func openStore(
    _ location: StoreLocation, chainLimits: ChainLimits = ChainLimits(), refusalLimits: RefusalLogLimits = RefusalLogLimits(),
    logger: Logger = Logger(label: "mijian-collector.store")
) async throws(StoreError) -> any CollectorStorage {
    switch location {
    case .sqlite(let directory):
        return try SQLiteStore(directory: directory, chainLimits: chainLimits, refusalLimits: refusalLimits)
    case .postgres(let url, let passwordFile):
        return try await openPostgresStore(url: url, passwordFile: passwordFile, chainLimits: chainLimits, refusalLimits: refusalLimits, logger: logger)
    }
}

/// Opens a PostgreSQL store (`PostgresStore`); the password file may be named by
/// `--database-password-file` or by the URL's `password_file=`, not by both differently.
func openPostgresStore(
    url: String, passwordFile: String?, chainLimits: ChainLimits, refusalLimits: RefusalLogLimits, logger: Logger
) async throws(StoreError) -> any CollectorStorage {
    var location: PostgresLocation
    do {
        location = try PostgresLocation.parse(url)
    } catch {
        throw StoreError.unavailable("the database URL cannot be used", underlying: error)
    }
    if let passwordFile {
        if let named = location.passwordFile, named != passwordFile {
            throw StoreError.unavailable("the URL's password_file=\(named) and --database-password-file \(passwordFile) name two files: give one", underlying: nil)
        }
        location.passwordFile = passwordFile
    }
    return try await PostgresStore.open(location, chainLimits: chainLimits, refusalLimits: refusalLimits, logger: logger)
}
