#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import Synchronization

/// A throwaway PostgreSQL cluster for tests: Debian's `initdb` and `pg_ctl` in a temporary
/// directory, run as the `postgres` user when the tests run as root (PostgreSQL refuses to run as
/// root), listening on a socket in that directory and on 127.0.0.1 at a free port with TLS
/// (a certificate authority and a server certificate made with openssl for the run) and a
/// password role `mijian` owning database `mijian`. It is stopped and its directory removed by
/// `stop()`, and at the latest when the test process exits.
public final class PostgresCluster: Sendable {
    /// The temporary directory holding everything of the cluster.
    public let directory: String
    /// The TCP port on 127.0.0.1.
    public let port: Int
    /// The directory of the server's socket.
    public let socketDirectory: String
    /// The certificate authority that signed the server's certificate (PEM).
    public let caFile: String
    /// The file holding the `mijian` role's password, mode 0600.
    public let passwordFile: String
    /// The operating-system user the server runs as, also its superuser role.
    public let superuser: String
    private let binDirectory: String
    private let dataDirectory: String
    private let stopped = Mutex<Bool>(false)
    private let databases = Mutex<Int>(0)

    /// The role the collector logs in as.
    public let username = "mijian"

    /// The URL of database `name` over TCP with TLS verified against the run's authority.
    public func url(database: String = "mijian", sslmode: String = "verify-full") -> String {
        "postgres://\(username)@127.0.0.1:\(port)/\(database)?sslmode=\(sslmode)&sslrootcert=\(caFile)&password_file=\(passwordFile)"
    }

    /// The directory of Debian's PostgreSQL programs (the newest installed), or nil when none is.
    public static var installedBinDirectory: String? {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).compactMap(Int.init).sorted()
        return versions.reversed().map { "\(base)/\($0)/bin" }.first { FileManager.default.isExecutableFile(atPath: "\($0)/pg_ctl") }
    }

    /// One cluster shared by the tests of this process, started on first use; tests take a
    /// database of their own from it with `newDatabase()`.
    public static func shared() throws -> PostgresCluster {
        try sharedCluster.withLock { cluster in
            if let cluster { return cluster }
            let started = try PostgresCluster.start()
            cluster = started
            return started
        }
    }

    private static let sharedCluster = Mutex<PostgresCluster?>(nil)

    /// Makes a new cluster and starts it. `durable: false` turns fsync off, for tests that do
    /// not measure or crash the server itself.
    public static func start(durable: Bool = false) throws -> PostgresCluster {
        guard let bin = installedBinDirectory else {
            throw MijianError(.notFound, "PostgreSQL is not installed (apt-get install postgresql): no /usr/lib/postgresql/*/bin/pg_ctl")
        }
        let root = try TestSupport.temporaryDirectory("mijian-pg").path
        var lastError: (any Error)?
        for _ in 0..<3 {
            do {
                return try PostgresCluster(root: root, bin: bin, port: try freePort(), durable: durable)
            } catch {
                // The port may have been taken between finding it free and the server binding it.
                lastError = error
                _ = try? TestSupport.run("/bin/sh", ["-c", "rm -rf '\(root)/pg'"])
            }
        }
        throw lastError ?? MijianError(.io, "cannot start PostgreSQL")
    }

    private init(root: String, bin: String, port: Int, durable: Bool) throws {
        self.directory = root
        self.port = port
        self.binDirectory = bin
        let home = "\(root)/pg"
        self.socketDirectory = "\(home)/socket"
        self.dataDirectory = "\(home)/data"
        self.caFile = "\(root)/ca.pem"
        self.passwordFile = "\(root)/password"
        let asRoot = getuid() == 0
        superuser = asRoot ? "postgres" : (ProcessInfo.processInfo.environment["USER"] ?? "postgres")
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        // The server's user must reach its own directory below this one.
        chmod(root, 0o755)

        // The run's certificate authority and the server's certificate for 127.0.0.1 and localhost.
        try Self.check(TestSupport.run("/bin/sh", ["-c", """
            set -e; cd '\(root)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj '/CN=Mijian test database CA' \
              -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=localhost' -keyout pg/server.key -out server.csr 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out pg/server.pem 2>/dev/null
            chmod 600 pg/server.key
            """]), "make the database's certificates")
        let password = (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        try Data("\(password)\n".utf8).write(to: URL(fileURLWithPath: passwordFile))
        chmod(passwordFile, 0o600)
        let superPassword = "\(home)/superuser-password"
        try Data("\(password)-super\n".utf8).write(to: URL(fileURLWithPath: superPassword))
        if asRoot {
            try Self.check(TestSupport.run("/bin/chown", ["-R", "postgres:postgres", home]), "chown the cluster's directory")
        }
        try run("\(bin)/initdb", ["-D", dataDirectory, "-U", superuser, "--pwfile", superPassword, "-E", "UTF8", "--locale", "C.UTF-8", "-A", "scram-sha-256"], "initdb")
        try Data("""
            local all \(superuser) peer
            local all all scram-sha-256
            hostssl all all 127.0.0.1/32 scram-sha-256
            hostnossl all all 0.0.0.0/0 reject

            """.utf8).write(to: URL(fileURLWithPath: "\(dataDirectory)/pg_hba.conf"))
        let settings = """

            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(socketDirectory)'
            ssl = on
            ssl_cert_file = '\(home)/server.pem'
            ssl_key_file = '\(home)/server.key'
            max_connections = 200
            shared_buffers = 128MB
            fsync = \(durable ? "on" : "off")
            synchronous_commit = \(durable ? "on" : "off")
            full_page_writes = \(durable ? "on" : "off")
            log_min_messages = warning

            """
        let conf = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dataDirectory)/postgresql.conf"))
        try conf.seekToEnd()
        try conf.write(contentsOf: Data(settings.utf8))
        try conf.close()
        if asRoot { _ = try TestSupport.run("/bin/chown", ["-R", "postgres:postgres", home]) }
        try startServer(log: "\(home)/server.log")
        Self.running.withLock { $0.append(self) }
        Self.installExitHandler()
        try psql("CREATE ROLE \(username) LOGIN PASSWORD '\(password)'")
        try psql("CREATE DATABASE mijian OWNER \(username)")
    }

    /// Runs SQL as the superuser over the socket and returns what psql printed (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try run("\(binDirectory)/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", "\(port)", "-U", superuser, "-d", database, "-At", "-c", sql], "psql")
    }

    /// A new empty database owned by the collector's role; returns its URL.
    public func newDatabase() throws -> String {
        let number = databases.withLock { count -> Int in
            count += 1
            return count
        }
        let name = "test_\(getpid())_\(number)"
        try psql("CREATE DATABASE \(name) OWNER \(username)")
        return url(database: name)
    }

    /// The database a URL names.
    public static func databaseName(of url: String) -> String {
        String((URLComponents(string: url)?.path ?? "").dropFirst())
    }

    /// Stops the server at once and removes its directory; a second call does nothing.
    public func stop() {
        let first = stopped.withLock { stopped -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        _ = try? run("\(binDirectory)/pg_ctl", ["-D", dataDirectory, "-m", "immediate", "-w", "stop"], "pg_ctl stop")
        try? FileManager.default.removeItem(atPath: directory)
        Self.running.withLock { $0.removeAll { $0 === self } }
    }

    /// The server's log, for a failing test's message.
    public var serverLog: String { (try? String(contentsOfFile: "\(directory)/pg/server.log", encoding: .utf8)) ?? "" }

    private static let running = Mutex<[PostgresCluster]>([])
    private static let exitHandler = Mutex<Bool>(false)

    private static func installExitHandler() {
        let install = exitHandler.withLock { installed -> Bool in
            defer { installed = true }
            return !installed
        }
        if install {
            atexit {
                for cluster in PostgresCluster.running.withLock({ $0 }) { cluster.stop() }
            }
        }
    }

    /// `pg_ctl start`, its output to files: the server it leaves running holds whatever it was
    /// given, and a pipe it held would never reach its end.
    private func startServer(log: String) throws {
        let pgctl = "\(binDirectory)/pg_ctl"
        let arguments = ["-D", dataDirectory, "-l", log, "-w", "-t", "60", "start"]
        // posix_spawn and waitpid (TestSupport.runRaw): Foundation's Process was seen never to
        // notice the end of runuser here once pg_ctl had left the server running.
        let command = getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", pgctl] + arguments : [pgctl] + arguments
        let result = try TestSupport.runRaw(command[0], command.dropFirst().map { Array($0.utf8) }, in: directory, seconds: 90)
        guard result.status == 0 else {
            throw MijianError(.io, "pg_ctl start failed (\(result.status.map { "exit \($0)" } ?? "timed out")): \(result.stderr.suffix(1000)) \(serverLog.suffix(2000))")
        }
    }

    /// Runs a PostgreSQL program as the cluster's user (through runuser when the tests are root).
    @discardableResult
    private func run(_ program: String, _ arguments: [String], _ what: String) throws -> String {
        let result = getuid() == 0
            ? try TestSupport.run("/usr/sbin/runuser", ["-u", "postgres", "--", program] + arguments)
            : try TestSupport.run(program, arguments)
        return try Self.check(result, what)
    }

    @discardableResult
    private static func check(_ result: TestSupport.ProcessResult, _ what: String) throws -> String {
        guard result.status == 0 else {
            throw MijianError(.io, "\(what) failed (exit \(result.status)): \(result.stderr.suffix(2000))\(result.stdout.suffix(1000))")
        }
        return result.stdout
    }

    /// A TCP port on 127.0.0.1 nobody listens on now.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MijianError(.io, "socket", errno: errno) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw MijianError(.io, "bind", errno: errno) }
        let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard named == 0 else { throw MijianError(.io, "getsockname", errno: errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
