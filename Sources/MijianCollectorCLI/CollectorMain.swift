#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import MijianCollector
import MijianCommandLine
import MijianCore

/// The `mijian-collector` command line, callable from the thin executable.
public enum CollectorMain {
    /// Parses the process arguments, runs the command and exits: 0 success, 1 a command's
    /// failing verdict, 2 usage or runtime errors.
    public static func run() async -> Never {
        let code = await run(arguments: Array(CommandLine.arguments.dropFirst()))
        exit(code)
    }

    /// Runs with explicit arguments and returns the exit status.
    public static func run(arguments: [String]) async -> Int32 {
        await CommandRunner.run(CollectorCommand.self, name: "mijian-collector", arguments: arguments)
    }
}

/// `mijian-collector`: the secrecy office's side of Mijian.
struct CollectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mijian-collector",
        abstract: "Verify every machine's signed reports and write the unit's self-assessment.",
        version: MijianVersion.current,
        subcommands: [
            EnrollCommand.self, IngestCommand.self, ServeCommand.self, HostsCommand.self, AssessmentCommand.self, UsersCommand.self, ReportsCommand.self,
            ReportCommand.self, MigrateCommand.self,
        ]
    )
}

/// Options every command shares: where the data is.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "Directory of the SQLite database and the key registry (the same as --database DIR).")
    var data: String = CollectorSetup.defaultDataDirectory

    @Option(name: .long, help: "The database: a directory (SQLite, the default) or a postgres:// or postgresql:// URL without a password.")
    var database: String?

    @Option(name: .customLong("database-password-file"), help: "A file holding the PostgreSQL password (never on the command line).")
    var databasePasswordFile: String?

    /// Where the data is: `--database` when given, else `--data`.
    func location() throws(MijianError) -> StoreLocation {
        guard let database else {
            if databasePasswordFile != nil { throw MijianError(.usage, "--database-password-file goes with --database postgres://…") }
            return .sqlite(directory: data)
        }
        return try StoreLocation.parse(database, passwordFile: databasePasswordFile)
    }

    /// The store, opened through `openStore`.
    func storage(logger: Logger = makeLogger()) async throws(MijianError) -> any CollectorStorage {
        let location = try location()
        do {
            return try await openStore(location, logger: logger)
        } catch {
            throw error.mijianError
        }
    }

    /// The SQLite store's synchronous face, for the console's commands; they need the SQLite store.
    func store() throws(MijianError) -> CollectorStore {
        switch try location() {
        case .sqlite(let directory): return try CollectorStore(directory: directory)
        case .postgres: throw MijianError(.usage, "this command works on the SQLite store (--database DIR); the console's accounts and pages are kept there")
        }
    }
}

/// A store error as the command line reports it.
func reported<T>(_ body: () async throws(StoreError) -> T) async throws(MijianError) -> T {
    do {
        return try await body()
    } catch {
        throw error.mijianError
    }
}

/// Options for commands that judge machines against the unit's policies.
struct UnitOptions: ParsableArguments {
    @Option(name: .long, help: "A policy file the unit has in force (repeat; default: the built-in classified and unclassified policies).")
    var policy: [String] = []

    @Option(name: .long, help: "The self-assessment table (default: the built-in Policies/self-assessment.zh.yaml).")
    var table: String?
}

func makeLogger() -> Logger {
    var logger = Logger(label: "mijian-collector") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = ProcessInfo.processInfo.environment["MIJIAN_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .notice
    return logger
}

/// Writes to standard output, all of it or an error (`StandardStreams`).
func write(_ text: String) throws(MijianError) { try StandardStreams.out(Array(text.utf8)) }

struct EnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll", abstract: "Manage the registry of machines' keys.",
        subcommands: [Approve.self, List.self, Revoke.self])

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Verify a machine's enrolment request (from `mijian enroll`) and add its key.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The signed request file.") var request: String
        @Option(help: "A note kept with the key (who approved, why).") var note: String?

        func run() async throws {
            let storage = try await data.storage()
            let record = try await Enrolment.approve(requestBytes: try CollectorSetup.read(request, limit: 1 << 20), note: note, registry: storage)
            try write("approved \(record.keyid) for \(record.hostname) (host \(record.hostID))\(record.previousKeyID.map { ", replacing \($0)" } ?? "")\n")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys of the registry.")
        @OptionGroup var data: DataOptions
        @Option(help: "text or json.") var format: String = "text"

        func run() async throws {
            let storage = try await data.storage()
            let keys = try await reported { () async throws(StoreError) in try await storage.keys() }
            if format == "json" {
                try write(String(decoding: JSONValue.array(keys.map(\.json)).prettySerialized(), as: UTF8.self))
                return
            }
            guard format == "text" else { throw ValidationError("--format must be text or json") }
            for key in keys {
                let state = key.revokedAt.map { "revoked \(RFC3339.string(from: $0)) (\(key.revokeReason ?? ""))" } ?? "active"
                try write("\(key.keyid)  \(key.hostname)  \(key.assetID ?? "-")  \(key.classification?.rawValue ?? "-")  approved \(RFC3339.string(from: key.approvedAt))  \(state)\n")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key: its reports are refused from now on.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The key id (sha256:…).") var keyid: String
        @Option(help: "Why (kept in the registry).") var reason: String = "revoked by the office"

        func run() async throws {
            let storage = try await data.storage()
            try await reported { () async throws(StoreError) in try await storage.revoke(keyid: keyid, at: Date(), reason: reason) }
            try write("revoked \(keyid)\n")
        }
    }
}

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest", abstract: "Verify and store envelope files or directories of them (air-gapped transfer).")
    @OptionGroup var data: DataOptions
    @Argument(help: "Envelope files or directories.") var paths: [String]

    func run() async throws {
        guard !paths.isEmpty else { throw ValidationError("give at least one file or directory") }
        let storage = try await data.storage()
        let collector = Collector(storage: storage, verifier: EvidenceSubmissionVerifier(registry: storage), logger: makeLogger())
        let lines = try await collector.ingest(paths: paths)
        var refused = 0
        for line in lines {
            try write("\(line.outcome)\t\(line.path)\t\(line.detail)\n")
            if !["first", "accepted", "gap", "new-epoch", "duplicate"].contains(line.outcome) { refused += 1 }
        }
        try write("\(lines.count) files, \(lines.count - refused) stored or already present, \(refused) refused or conflicting\n")
        if refused > 0 { throw ExitCode(1) }
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Receive reports over HTTP(S) on the unit LAN.")
    @OptionGroup var data: DataOptions
    @OptionGroup var unit: UnitOptions
    @Option(help: "Address and port to listen on.") var listen: String = "127.0.0.1:8443"
    @Option(name: .customLong("tls-cert"), help: "Server certificate chain, PEM, leaf first (with --tls-key: serve HTTPS).") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "The certificate's private key, PEM, unencrypted (with --tls-cert).") var tlsKey: String?
    @Option(help: "People's answers for /v1/assessment.") var answers: String?
    @OptionGroup var limitOptions: LimitOptions

    func run() async throws {
        let (host, port) = try CollectorSetup.listenAddress(listen)
        let limits = try limitOptions.limits()
        try FileLimit.ensure(forConnections: limits.maxConnections)
        // Both files are read and checked before anything listens: a bad one stops here, named.
        let tls = try CollectorTLS.load(certificate: tlsCert, key: tlsKey)
        let logger = makeLogger()
        if let tls, tls.notValidAfter < Date() {
            logger.warning("the TLS certificate in \(tls.certificatePath) expired at \(RFC3339.string(from: tls.notValidAfter)); agents that check it will refuse to connect")
        }
        if tls == nil, !CollectorSetup.isLoopback(host) {
            logger.warning("serving plain HTTP on \(host): reports are signed, so nobody can forge or alter them, but anyone on the LAN can read them; give --tls-cert and --tls-key to serve HTTPS")
        }
        let storage = try await data.storage(logger: logger)
        let table = try CollectorSetup.table(unit.table)
        let sources = AssessmentSources(
            table: table, answers: try CollectorSetup.answers(answers, table: table), settings: UnitSettings(policies: try CollectorSetup.policies(unit.policy)))
        let collector = Collector(storage: storage, verifier: EvidenceSubmissionVerifier(registry: storage), logger: logger)
        let scheme = tls == nil ? "HTTP" : "HTTPS"
        let app = try CollectorServer.application(
            collector: collector, sources: sources, host: host, port: port, limits: limits, tls: tls, logger: logger,
            onRunning: { port in logger.notice("listening on \(host):\(port) (\(scheme))") })
        try await app.runService()
    }
}

/// The HTTP server's limits on bodies and connections.
struct LimitOptions: ParsableArguments {
    @Option(name: .customLong("max-body"), help: "Largest report body (bytes, or with K, M suffix; at most 16M).")
    var maxBody: String = "4M"
    @Option(name: .customLong("max-buffered"), help: "Most request-body bytes held in memory across all connections (K, M, G suffix).")
    var maxBuffered: String = "64M"
    @Option(name: .customLong("max-buffered-per-client"), help: "Most request-body bytes held in memory for one client address (at least --max-body).")
    var maxBufferedPerClient: String = "4M"
    @Option(name: .customLong("max-connections"), help: "Most connections open at once; past it the oldest that sent no request is closed.")
    var maxConnections: Int = 1024
    @Option(name: .customLong("max-connections-per-client"), help: "Most connections open at once from one client address.")
    var maxConnectionsPerClient: Int = 64
    @Option(name: .customLong("first-request-timeout"), help: "Seconds a new connection has to send its first request.")
    var firstRequestTimeout: Int = 10
    @Option(name: .customLong("reserved-percent"), help: "Percent of --max-buffered and --max-connections kept for addresses that have delivered a report.")
    var reservedPercent: Int = 25

    /// The limits, checked against each other.
    func limits() throws(MijianError) -> ServerLimits {
        var limits = ServerLimits()
        limits.maxBodyBytes = try ByteSize.parse(maxBody, option: "--max-body")
        limits.maxBufferedBytes = try ByteSize.parse(maxBuffered, option: "--max-buffered")
        limits.maxBufferedBytesPerClient = try ByteSize.parse(maxBufferedPerClient, option: "--max-buffered-per-client")
        guard (1 << 10...16 << 20).contains(limits.maxBodyBytes) else {
            throw MijianError(.usage, "--max-body \(maxBody) must be between 1K and 16M (the envelope limit every verifier applies)")
        }
        guard limits.maxBufferedBytesPerClient >= limits.maxBodyBytes else {
            throw MijianError(.usage, "--max-buffered-per-client \(maxBufferedPerClient) is smaller than --max-body \(maxBody): no body that large could ever be read")
        }
        guard limits.maxBufferedBytes >= limits.maxBufferedBytesPerClient else {
            throw MijianError(.usage, "--max-buffered \(maxBuffered) is smaller than --max-buffered-per-client \(maxBufferedPerClient)")
        }
        guard (1...1_000_000).contains(maxConnections) else { throw MijianError(.usage, "--max-connections \(maxConnections) must be between 1 and 1000000") }
        guard (1...maxConnections).contains(maxConnectionsPerClient) else {
            throw MijianError(.usage, "--max-connections-per-client \(maxConnectionsPerClient) must be between 1 and --max-connections (\(maxConnections))")
        }
        guard (1...3600).contains(firstRequestTimeout) else {
            throw MijianError(.usage, "--first-request-timeout \(firstRequestTimeout) must be between 1 and 3600 seconds")
        }
        guard (0...90).contains(reservedPercent) else {
            throw MijianError(.usage, "--reserved-percent \(reservedPercent) must be between 0 and 90")
        }
        limits.reservedPercent = reservedPercent
        limits.maxConnections = maxConnections
        limits.maxConnectionsPerClient = maxConnectionsPerClient
        limits.firstRequestTimeout = .seconds(firstRequestTimeout)
        return limits
    }
}

/// A byte count as options give it: digits with an optional K, M or G (powers of 1024).
enum ByteSize {
    static func parse(_ text: String, option: String) throws(MijianError) -> Int {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = Substring(text)
        var unit = 1
        if let last = digits.last, let scale = units[Character(last.uppercased())] {
            unit = scale
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let value = Int(digits) else {
            throw MijianError(.usage, "\(option) \(text) is not a size (bytes, or a number with K, M or G)")
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: unit)
        guard !overflow else { throw MijianError(.usage, "\(option) \(text) is too large") }
        return bytes
    }
}

/// The descriptors the server needs: one per connection, and some for the database, the
/// listener and logging. systemd's default soft limit (1,024) is below the default connection
/// cap, so the soft limit is raised to what is needed when the hard limit allows; otherwise
/// `serve` stops here, naming both numbers, instead of failing to accept when the flood comes.
enum FileLimit {
    /// Descriptors kept for everything that is not a client connection.
    static let reserve = 128

    static func ensure(forConnections connections: Int) throws(MijianError) {
        let needed = connections + reserve
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            throw MijianError(.io, "cannot read the open-file limit (RLIMIT_NOFILE)", errno: errno)
        }
        // rlim_t.max is RLIM_INFINITY (no limit).
        if limit.rlim_cur != rlim_t.max, limit.rlim_cur < rlim_t(needed) {
            guard limit.rlim_max == rlim_t.max || limit.rlim_max >= rlim_t(needed) else {
                throw MijianError(
                    .usage,
                    "--max-connections \(connections) needs \(needed) open files, but the hard limit is \(limit.rlim_max): raise LimitNOFILE= (or ulimit -Hn) or lower --max-connections")
            }
            limit.rlim_cur = rlim_t(needed)
            guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
                throw MijianError(.io, "cannot raise the open-file limit to \(needed) for --max-connections \(connections)", errno: errno)
            }
        }
    }
}

struct HostsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hosts", abstract: "Every machine: last report, status, silent days.")
    @OptionGroup var data: DataOptions
    @OptionGroup var unit: UnitOptions
    @Option(help: "text or json.") var format: String = "text"
    @Option(help: "At most this many machines (a page of the list; the next page starts --after the last one's host id).") var limit: Int?
    @Option(help: "Start after this machine (its host id) in the list's order.") var after: String?

    func run() async throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if after != nil, limit == nil { throw ValidationError("--after pages the list: give --limit too") }
        let storage = try await data.storage()
        let page = try await reported { () async throws(StoreError) -> [HostRecord]? in
            guard let limit else { return try await storage.hosts() }
            return try await storage.hosts(afterHostID: after, limit: limit)
        }
        guard let hosts = page else { throw ValidationError("--after \(after ?? ""): no machine has this host id") }
        let settings = UnitSettings(policies: try CollectorSetup.policies(unit.policy))
        let now = Date()
        switch format {
        case "json":
            try write(String(decoding: JSONValue.array(hosts.map {
                HostsView.json($0, now: now, silentAfterDays: settings.silentAfterDays, currentPolicies: settings.currentPolicyDigests)
            }).prettySerialized(), as: UTF8.self))
        case "text":
            try write(HostsView.text(hosts, now: now, silentAfterDays: settings.silentAfterDays, currentPolicies: settings.currentPolicyDigests))
        default:
            throw ValidationError("--format must be text or json")
        }
    }
}

struct AssessmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "assessment", abstract: "Write the unit's self-assessment for a year.")
    @OptionGroup var data: DataOptions
    @OptionGroup var unit: UnitOptions
    @Option(help: "The year assessed.") var year: Int
    @Option(help: "People's answers (符合/不符合/不适用 with a note) for the items machines cannot decide.") var answers: String?
    @Option(help: "zh or en.") var lang: String = "zh"
    @Option(help: "md, html or json.") var format: String = "md"
    @Option(help: "Write to this file instead of standard output.") var output: String?

    func run() async throws {
        guard let language = AssessmentLanguage(rawValue: lang) else { throw ValidationError("--lang must be zh or en") }
        guard let format = AssessmentFormat(rawValue: format) else { throw ValidationError("--format must be md, html or json") }
        guard (1970...9999).contains(year) else { throw ValidationError("--year \(year) is not a plausible year") }
        let table = try CollectorSetup.table(unit.table)
        let storage = try await data.storage()
        let snapshot = try await reported { () async throws(StoreError) in try await storage.snapshot(year: year) }
        let result = AssessmentBuilder.build(
            snapshot: snapshot, table: table, answers: try CollectorSetup.answers(answers, table: table),
            settings: UnitSettings(policies: try CollectorSetup.policies(unit.policy)), now: Date())
        let bytes = AssessmentRenderer(language: language).render(result, format: format)
        if let output {
            try AtomicFile.writeOutput(bytes, to: output, mode: 0o640)
        } else {
            try StandardStreams.out(bytes)
        }
    }
}
