import Foundation
import GRDB
import MijianCore
import MijianEvidence

/// A report that passed signature verification, ready for the chain check.
public struct VerifiedSubmission: Sendable {
    /// The key that signed it.
    public var keyid: String
    /// The exact payload bytes that were verified.
    public var payload: [UInt8]
    /// SHA-256 (hex) of the payload.
    public var payloadSHA256: String
    /// The parsed report.
    public var report: Report

    /// Makes a submission.
    public init(keyid: String, payload: [UInt8], payloadSHA256: String, report: Report) {
        self.keyid = keyid
        self.payload = payload
        self.payloadSHA256 = payloadSHA256
        self.report = report
    }
}

/// What happened to one stored or refused submission.
public struct IngestResult: Sendable, Equatable {
    /// The chain outcome.
    public var outcome: ChainOutcome
    /// The host.
    public var hostID: String
    /// The payload digest.
    public var payloadSHA256: String
    /// The report's epoch.
    public var epoch: Int64
    /// The report's seq.
    public var seq: Int64
    /// Seqs found missing, for a gap.
    public var missing: ClosedRange<Int64>?
    /// One sentence.
    public var detail: String
    /// The report's clock was off: `ahead` or `backwards` and issue minus receive time in seconds,
    /// or `epoch-ahead` and epoch minus receive time.
    public var clockSkew: (kind: String, seconds: Int64)? = nil
    /// For an outcome anyone can repeat without new signed content (a duplicate, a replay): how
    /// many times its row of the repeat table has counted it in this window, this one included;
    /// nil for every other outcome or when the row could not be read. Bookkeeping for the log
    /// throttle, not part of the result's identity.
    public var repeatCount: Int64? = nil

    /// Results are equal when every field is.
    public static func == (lhs: IngestResult, rhs: IngestResult) -> Bool {
        lhs.outcome == rhs.outcome && lhs.hostID == rhs.hostID && lhs.payloadSHA256 == rhs.payloadSHA256 && lhs.epoch == rhs.epoch
            && lhs.seq == rhs.seq && lhs.missing == rhs.missing && lhs.detail == rhs.detail
            && lhs.clockSkew?.kind == rhs.clockSkew?.kind && lhs.clockSkew?.seconds == rhs.clockSkew?.seconds
    }

    /// The answer's JSON body.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("outcome", .string(outcome.rawValue)), ("payload_sha256", .string(payloadSHA256)), ("host_id", .string(hostID)),
            ("epoch", .int(epoch)), ("seq", .int(seq)),
        ]
        if let missing { members.append(("missing", ["from": .int(missing.lowerBound), "to": .int(missing.upperBound)])) }
        members.append(("detail", .string(detail)))
        if let clockSkew {
            members.append(("clock_skew", ["kind": .string(clockSkew.kind), "seconds": .int(clockSkew.seconds), "detail": .string(ClockSkew.describe(clockSkew.kind, seconds: clockSkew.seconds))]))
        }
        return .object(members)
    }
}

/// A submission the collector refused, with the reason callers match and a sentence for people.
///
/// Every refusal is made here, and the detail of a refusal often repeats what a client sent (a
/// keyid, a payloadType, a host name): the initialiser bounds and escapes it, once for the log
/// line, the refusal table and the HTTP answer alike, so no client text reaches any of them
/// unbounded. The fields cannot be set afterwards, past that check.
public struct IngestRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Most UTF-8 bytes of a refusal's detail.
    public static let maxDetailBytes = UntrustedText.maxDetailBytes

    /// Why, as the refusal table, the logs and the answers spell it.
    public let code: RefusalReason
    /// What exactly was wrong, at most `maxDetailBytes` bytes, escaped.
    public let detail: String
    /// How many refusals the row of the refusal table counting this one holds, this one included,
    /// when the store counted it; nil otherwise. Bookkeeping for the log throttle (see
    /// `RefusalLogLimits.logs`), not part of the refusal's identity.
    public internal(set) var windowCount: Int64? = nil

    /// Makes a refusal; the detail is bounded and escaped (see `UntrustedText`).
    public init(_ code: RefusalReason, detail: String) {
        self.code = code
        self.detail = UntrustedText.bounded(detail, limit: Self.maxDetailBytes)
    }

    /// The reason's text: `bad-signature`, `unknown-key`, `revoked`, … (see `RefusalReason`).
    public var reason: String { code.rawValue }

    /// `reason: detail`.
    public var description: String { "\(reason): \(detail)" }

    /// Refusals are equal when their reasons and details are.
    public static func == (lhs: IngestRefusal, rhs: IngestRefusal) -> Bool { lhs.code == rhs.code && lhs.detail == rhs.detail }
}

/// The collector's SQLite store as the console and the command line reach it synchronously: a
/// thin face over `SQLiteStore` (the backend every request handler and the ingest path use,
/// asynchronously, through the storage protocols). Both share one database writer.
public final class CollectorStore: Sendable {
    /// The backend.
    public let sqlite: SQLiteStore
    /// The database file (`:memory:` for a store in memory).
    public var path: String { sqlite.path ?? ":memory:" }
    /// The database.
    var pool: any DatabaseWriter { sqlite.writer }
    /// How far a report may move its host's chain.
    public var chainLimits: ChainLimits { sqlite.chainLimits }
    /// How much of the refusal log is kept.
    public var refusalLimits: RefusalLogLimits { sqlite.refusalLimits }

    /// Counts approvals and revocations made through this store, so caches of the registry know when to read it again.
    public var registryGeneration: Int { sqlite.registryGeneration }

    /// Opens (creating when needed) `collector.sqlite` in `directory` and runs the migrations.
    public convenience init(directory: String, chainLimits: ChainLimits = ChainLimits(), refusalLimits: RefusalLogLimits = RefusalLogLimits()) throws(MijianError) {
        do {
            self.init(sqlite: try SQLiteStore(directory: directory, chainLimits: chainLimits, refusalLimits: refusalLimits))
        } catch {
            throw MijianError(.database, error.description, path: FilePathText.join(directory, "collector.sqlite"))
        }
    }

    /// The face of an open backend.
    public init(sqlite: SQLiteStore) { self.sqlite = sqlite }

    private func blocking<T>(_ what: String, write: Bool = false, _ block: (Database) throws -> T) throws(MijianError) -> T {
        do {
            return try write ? pool.write(block) : pool.read(block)
        } catch let error as StoreError {
            throw error.mijianError
        } catch {
            throw MijianError.database(what, error, path: path)
        }
    }

    // MARK: - Ingest

    /// Decides and stores one report in its own transaction, synchronously (tests, tools).
    public func record(_ submission: VerifiedSubmission, envelope: [UInt8], receivedAt: Date, source: String) throws(MijianError) -> Result<IngestResult, IngestRefusal> {
        let item = IngestSubmission(submission, envelope: envelope, receivedAt: receivedAt, source: source)
        let chainLimits = chainLimits
        let refusalLimits = refusalLimits
        return try blocking("cannot store the report", write: true) { db in
            try SQLiteStore.apply(db, IngestRules.decide(context: try SQLiteStore.loadContext(db, item.lookup), submission: item, limits: chainLimits), to: item, limits: refusalLimits)
        }
    }

    /// Most UTF-8 bytes of a source (a client's address, a file) as logged and stored.
    public static let maxSourceBytes = 256

    /// A source bounded and escaped, as every log line and row holds it.
    public static func boundedSource(_ source: String) -> String { UntrustedText.bounded(source, limit: maxSourceBytes) }

    /// The address a refusal is counted under: the source without the client's port, which
    /// changes with every connection (`http 192.0.2.7:51234` → `http 192.0.2.7`), and an IPv6
    /// client by its /64, which one client holds whole (`http [2001:db8::1]:443` →
    /// `http [2001:db8::]/64`); any other source as it is.
    public static func refusalAddress(_ source: String) -> String {
        guard let colon = source.lastIndex(of: ":") else { return source }
        let port = source[source.index(after: colon)...]
        let host = source[..<colon]
        guard !port.isEmpty, port.utf8.allSatisfy({ (0x30...0x39).contains($0) }), host.hasSuffix("]") || !host.contains(":") else { return source }
        guard let open = host.lastIndex(of: "["), let address = IPAddress(host[host.index(after: open)..<host.index(before: host.endIndex)]) else {
            return String(host)
        }
        if let v4 = address.mappedV4 { return "\(host[..<open])\(v4)" }
        guard address.isV6, let network = IPNetwork(address: address, prefixLength: 64) else { return String(host) }
        return "\(host[..<open])[\(network.address)]/64"
    }

    /// The counted duplicates and replays, newest window first.
    public func repeats(limit: Int = 1000) throws(MijianError) -> [RepeatRecord] { try blocking("cannot read the repeats") { db in try SQLiteStore.repeats(db, limit: limit) } }

    /// The counted refusals, newest window first.
    public func refusals(limit: Int = 1000) throws(MijianError) -> [RefusalRecord] { try blocking("cannot read the refusals") { db in try SQLiteStore.refusals(db, limit: limit) } }

    /// Windows of the refusal table dropped to keep it within its bound, and the refusals they counted.
    public func refusalDrops() throws(MijianError) -> (windows: Int64, requests: Int64) {
        let drops = try blocking("cannot read the refusals", SQLiteStore.refusalDrops)
        return (drops.windows, drops.requests)
    }

    // MARK: - Registry

    /// Adds a key to the registry; when it replaces `previousKeyID`, that key is revoked in the same transaction.
    public func approve(_ record: KeyRecord) throws(MijianError) {
        do {
            try pool.write { db in try SQLiteStore.approve(db, record) }
        } catch let error as StoreError {
            throw error.mijianError
        } catch {
            throw MijianError.database("cannot approve the key", error, path: path)
        }
        sqlite.registryChanged()
    }

    /// Revokes a key; reports it signed are refused from now on (those already stored stay).
    public func revoke(keyid: String, at date: Date, reason: String) throws(MijianError) {
        do {
            try pool.write { db in try SQLiteStore.revoke(db, keyid: keyid, at: date, reason: reason) }
        } catch let error as StoreError {
            throw error.mijianError
        } catch {
            throw MijianError.database("cannot revoke the key", error, path: path)
        }
        sqlite.registryChanged()
    }

    /// Every key of the registry, oldest approval first.
    public func keys() throws(MijianError) -> [KeyRecord] { try blocking("cannot read the registry", SQLiteStore.keys) }

    /// The key with this id, active or not.
    public func key(_ keyid: String) throws(MijianError) -> KeyRecord? { try blocking("cannot read the registry") { db in try SQLiteStore.key(db, keyid) } }

    /// A key's PEM and revocation time, for a verifier; nil when the key was never enrolled
    /// (or the database cannot be read, which refuses rather than accepts).
    public func registryEntry(_ keyid: String) -> (pem: String, revokedAt: Date?)? {
        guard let key = try? pool.read({ db in try SQLiteStore.key(db, keyid) }) else { return nil }
        return (key.pem, key.revokedAt)
    }

    static func date(_ text: String?) -> Date { SQLiteStore.date(text) }

    // MARK: - Queries

    /// Every machine that has sent an accepted report, by host name.
    public func hosts() throws(MijianError) -> [HostRecord] { try blocking("cannot read the hosts") { db in try SQLiteStore.hosts(db) } }

    /// The stored reports of a host, newest first: digest, epoch, seq, outcome, times.
    public func reports(hostID: String, limit: Int = 100) throws(MijianError) -> [JSONValue] {
        try blocking("cannot read the reports") { db in try SQLiteStore.reports(db, hostID: hostID, limit: limit) }.map(\.json)
    }

    /// Recorded gaps of a host.
    public func gaps(hostID: String) throws(MijianError) -> [GapRecord] { try blocking("cannot read the gaps") { db in try SQLiteStore.gaps(db, hostID: hostID) } }

    /// The envelope a machine's report with this payload digest was stored with, byte for byte.
    public func envelope(hostID: String, payloadSHA256: String) throws(MijianError) -> [UInt8]? {
        try blocking("cannot read the envelope") { db in try SQLiteStore.envelope(db, hostID: hostID, payloadSHA256: payloadSHA256) }
    }

    /// How many reports are stored per outcome, and how many log entries per outcome and reason
    /// (refusals as `refused/REASON`, duplicates and replays as they are, summed over their counted rows).
    public func counts() throws(MijianError) -> (stored: [String: Int], log: [String: Int]) {
        let counts = try blocking("cannot count the reports", SQLiteStore.counts)
        return (counts.stored, counts.log)
    }

    /// Everything the assessment of `year` reads, in one consistent read.
    public func snapshot(year: Int) throws(MijianError) -> UnitSnapshot { try blocking("cannot read the year \(year)") { db in try SQLiteStore.snapshot(db, year: year) } }
}
