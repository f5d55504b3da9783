#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemPackage
import MijianCore
import NIOSSL
import PostgresNIO

/// Where a collector's PostgreSQL database is and how to reach it, from a URL such as
/// `postgres://mijian@db.unit.example:5432/mijian?sslmode=verify-full&sslrootcert=/etc/mijian/db-ca.pem&password_file=/etc/mijian/db-password`.
///
/// The password is never part of the URL (a command line is visible to every user of the
/// machine): it is read from `password_file`, a file only its owner may read. Over TCP the
/// connection is TLS, verified against `sslrootcert` (or the system's roots) and the host name
/// unless `sslmode` says otherwise; only a local socket (`?host=/run/postgresql`) may go without.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    /// How the server is reached.
    public enum Endpoint: Sendable, Equatable {
        /// Host name or address and port.
        case tcp(host: String, port: Int)
        /// The server's socket file (`DIR/.s.PGSQL.PORT`).
        case unixSocket(path: String)
    }

    /// How far the server's TLS certificate is checked (libpq's `sslmode` names).
    public enum TLSMode: String, Sendable, Equatable, CaseIterable {
        /// No TLS: only over a local socket.
        case disable
        /// TLS, the certificate not checked (guards against reading, not against a stand-in server).
        case require
        /// TLS, the certificate checked against the roots, not the host name.
        case verifyCA = "verify-ca"
        /// TLS, the certificate checked against the roots and the host name (the default over TCP).
        case verifyFull = "verify-full"
    }

    /// The server.
    public var endpoint: Endpoint
    /// The role the collector logs in as.
    public var username: String
    /// The database.
    public var database: String
    /// TLS to the server.
    public var tlsMode: TLSMode
    /// PEM file of the certificate authorities the server's certificate must chain to; nil: the system's.
    public var rootCertificate: String?
    /// The file holding the role's password (its first line); nil when the server asks none (peer or certificate login).
    public var passwordFile: String?
    /// Most connections this process keeps to the server.
    public var maxConnections: Int

    /// Most bytes of a password file.
    static let maxPasswordFileBytes = 4096

    /// True when `text` names a PostgreSQL database rather than a data directory.
    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses a database URL; every error says what to write instead.
    public static func parse(_ text: String) throws(MijianError) -> PostgresLocation {
        guard isURL(text), let components = URLComponents(string: text) else {
            throw MijianError(.usage, "not a database URL: expected postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full&sslrootcert=FILE&password_file=FILE")
        }
        if components.password != nil {
            throw MijianError(.usage, "the database URL holds a password, which every user of this machine can read in the process list: put it in a file only the collector's user can read and name it with ?password_file=FILE")
        }
        guard let username = components.user?.removingPercentEncoding, !username.isEmpty else {
            throw MijianError(.usage, "the database URL names no user: postgres://USER@HOST/DATABASE")
        }
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        guard let decoded = database.removingPercentEncoding, !decoded.isEmpty, !decoded.contains("/") else {
            throw MijianError(.usage, "the database URL names no database: postgres://USER@HOST/DATABASE")
        }
        var socketDirectory: String?
        var tlsMode: TLSMode?
        var rootCertificate: String?
        var passwordFile: String?
        var maxConnections = 16
        for item in components.queryItems ?? [] {
            guard let value = item.value, !value.isEmpty else { throw MijianError(.usage, "the database URL's parameter \(item.name) has no value") }
            switch item.name {
            case "host": socketDirectory = value
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw MijianError(.usage, "sslmode=\(value) is not known: give one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tlsMode = mode
            case "sslrootcert": rootCertificate = value
            case "password_file": passwordFile = value
            case "pool_max":
                guard let count = Int(value), (1...1024).contains(count) else { throw MijianError(.usage, "pool_max=\(value) must be a number of connections from 1 to 1024") }
                maxConnections = count
            default:
                throw MijianError(.usage, "the database URL's parameter \(item.name) is not known (known: host, sslmode, sslrootcert, password_file, pool_max)")
            }
        }
        let port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw MijianError(.usage, "port \(port) is out of range") }
        let endpoint: Endpoint
        if let socketDirectory {
            guard socketDirectory.hasPrefix("/") else { throw MijianError(.usage, "host=\(socketDirectory) must be the absolute path of the server's socket directory") }
            endpoint = .unixSocket(path: FilePathText.join(socketDirectory, ".s.PGSQL.\(port)"))
        } else {
            var host = components.host ?? ""
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else {
                throw MijianError(.usage, "the database URL names no host: postgres://USER@HOST/DATABASE, or ?host=/run/postgresql for the local socket")
            }
            endpoint = .tcp(host: host, port: port)
        }
        let mode: TLSMode
        switch endpoint {
        case .unixSocket:
            // A local socket is guarded by the file system; postgres-nio speaks no TLS over it.
            guard tlsMode == nil || tlsMode == .disable else {
                throw MijianError(.usage, "sslmode=\(tlsMode?.rawValue ?? "") cannot apply to a local socket (host=\(socketDirectory ?? "")): leave it out or give sslmode=disable")
            }
            mode = .disable
        case .tcp:
            mode = tlsMode ?? .verifyFull
            guard mode != .disable else {
                throw MijianError(.usage, "sslmode=disable over TCP would send the reports and the password in clear: use TLS (sslmode=verify-full) or the local socket (?host=/run/postgresql)")
            }
        }
        if rootCertificate != nil, mode == .disable || mode == .require {
            throw MijianError(.usage, "sslrootcert is only read with sslmode=verify-ca or verify-full")
        }
        return PostgresLocation(
            endpoint: endpoint, username: username, database: decoded, tlsMode: mode, rootCertificate: rootCertificate, passwordFile: passwordFile,
            maxConnections: maxConnections)
    }

    /// The URL without anything secret (there is nothing secret in it), for logs and messages.
    public var description: String {
        var text = "postgres://\(username)@"
        var query: [String] = []
        switch endpoint {
        case .tcp(let host, let port): text += "\(host.contains(":") ? "[\(host)]" : host):\(port)"
        case .unixSocket(let path):
            let directory = FilePath(path).removingLastComponent()
            query.append("host=\(directory.isEmpty ? "." : directory.string)")
        }
        text += "/\(database)"
        if tlsMode != .disable { query.append("sslmode=\(tlsMode.rawValue)") }
        if let rootCertificate { query.append("sslrootcert=\(rootCertificate)") }
        if let passwordFile { query.append("password_file=\(passwordFile)") }
        return query.isEmpty ? text : text + "?" + query.joined(separator: "&")
    }

    /// Reads the password file: its first line. A file others may read is refused, as libpq does.
    func password() throws(MijianError) -> String? {
        guard let passwordFile else { return nil }
        var info = stat()
        guard stat(passwordFile, &info) == 0 else {
            throw MijianError(.io, "cannot read the database password file", path: passwordFile, errno: Glibc.errno)
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw MijianError(.io, "the database password file is not a regular file", path: passwordFile) }
        guard info.st_mode & 0o077 == 0 else {
            throw MijianError(
                .permission, "the database password file may be read by others (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 it", path: passwordFile)
        }
        let bytes: [UInt8]
        do {
            bytes = try CollectorSetup.read(passwordFile, limit: Self.maxPasswordFileBytes)
        } catch {
            throw MijianError(error.code, "cannot read the database password file: \(error.message)", path: passwordFile, errno: error.errno)
        }
        let line = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        let password = String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
        guard !password.isEmpty else { throw MijianError(.malformed, "the database password file's first line is empty", path: passwordFile) }
        return password
    }

    /// The password read and the TLS settings made (nil over a local socket).
    private func credentials() throws(MijianError) -> (password: String?, tls: TLSConfiguration?) {
        let password = try password()
        guard case .tcp = endpoint else { return (password, nil) }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        switch tlsMode {
        case .disable: break
        case .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        if let rootCertificate {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificate))
            } catch {
                throw MijianError(.crypto, "cannot read the database's root certificates: \(error)", path: rootCertificate)
            }
        }
        return (password, tls)
    }

    /// postgres-nio's pool configuration: the password read, the roots loaded.
    func clientConfiguration() throws(MijianError) -> PostgresClient.Configuration {
        let (password, tls) = try credentials()
        var configuration: PostgresClient.Configuration
        switch endpoint {
        case .unixSocket(let path):
            configuration = PostgresClient.Configuration(unixSocketPath: path, username: username, password: password, database: database)
        case .tcp(let host, let port):
            configuration = PostgresClient.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: .require(tls ?? .makeClientConfiguration()))
        }
        configuration.options.maximumConnections = maxConnections
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }

    /// One connection's configuration, for the first connection that says at once why the
    /// server cannot be used (the pool would only retry).
    func connectionConfiguration() throws(MijianError) -> PostgresConnection.Configuration {
        let (password, tls) = try credentials()
        switch endpoint {
        case .unixSocket(let path):
            return PostgresConnection.Configuration(unixSocketPath: path, username: username, password: password, database: database)
        case .tcp(let host, let port):
            let context: NIOSSLContext
            do {
                context = try NIOSSLContext(configuration: tls ?? .makeClientConfiguration())
            } catch {
                throw MijianError(.crypto, "cannot set up TLS to the database: \(error)")
            }
            var configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: .require(context))
            configuration.options.connectTimeout = .seconds(10)
            return configuration
        }
    }
}
