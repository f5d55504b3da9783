import Foundation
import MijianCore
import MijianEvidence

// The seam between the collector and its database. The collector speaks to storage through three
// roles: the ingest ledger (the chain and the evidence), the key registry, and the queries the
// assessment, the correlation and the `/v1/` reads need. A backend (SQLite, PostgreSQL) implements
// all three; code that only reads takes `any StoreQueries`.
//
// What a report does to its host's chain is decided in one place, `IngestRules.decide`, a pure
// function over what is stored for that host (`HostLedgerContext`) and the submission. A backend
// only loads the context of one host and applies the plan it gets back, both inside one
// transaction that no other decision about the same host can interleave with.

// MARK: - Refusals

/// Why a submission was refused: the one list of reasons, as the refusal table, the logs and the
/// HTTP answers spell them. HTTP statuses are chosen by the HTTP layer, not here.
public enum RefusalReason: String, Sendable, CaseIterable {
    /// The signature does not verify with the key its keyid names.
    case badSignature = "bad-signature"
    /// No enrolled key has the signature's keyid.
    case unknownKey = "unknown-key"
    /// The envelope's payload type is not a report.
    case wrongType = "wrong-type"
    /// The envelope or the report is not what the format says.
    case malformed
    /// The body is larger than the limit.
    case tooLarge = "too-large"
    /// The keyid does not name the key that verified.
    case keyMismatch = "key-mismatch"
    /// The JSON repeats a key.
    case duplicateKey = "duplicate-key"
    /// The key was revoked.
    case revoked
    /// The envelope could not be read.
    case unreadable
    /// The key is enrolled for another machine than the report names.
    case hostMismatch = "host-mismatch"
    /// An identity field is longer than the collector keeps.
    case identityTooLong = "identity-too-long"
    /// An identity field holds control or direction characters.
    case identityControl = "identity-control"
    /// The report would skip more of its chain than the limit allows.
    case seqJump = "seq-jump"
    /// The report's place in the chain cannot exist (negative, past the last epoch).
    case badChain = "bad-chain"
    /// The collector holds too many bodies already.
    case busy
    /// The body did not arrive in time.
    case timeout
    /// The connection ended before the body did.
    case disconnected
    /// The collector could not store the report.
    case `internal`

    /// The reason a failed envelope verification gives.
    public init(_ verification: VerificationFailure.Reason) {
        switch verification {
        case .badSignature: self = .badSignature
        case .unknownKey: self = .unknownKey
        case .wrongType: self = .wrongType
        case .malformed: self = .malformed
        case .tooLarge: self = .tooLarge
        case .keyMismatch: self = .keyMismatch
        case .duplicateKey: self = .duplicateKey
        case .revoked: self = .revoked
        case .unreadable: self = .unreadable
        }
    }
}

// MARK: - Errors

/// A change to the key registry its rules forbid.
public enum RegistryRefusal: Sendable, Equatable, CustomStringConvertible {
    /// The key is in the registry already (revoked at the date, when it was).
    case keyExists(keyid: String, revokedAt: Date?)
    /// A rotation names a previous key the registry does not hold.
    case previousKeyUnknown(keyid: String)
    /// A rotation names a previous key of another machine.
    case previousKeyOfOtherHost(keyid: String, hostID: String, expected: String)
    /// A rotation names a previous key that was revoked.
    case previousKeyRevoked(keyid: String, at: Date)
    /// No such key in the registry.
    case unknownKey(keyid: String)
    /// The key was revoked already.
    case alreadyRevoked(keyid: String, at: Date)

    /// One sentence.
    public var description: String {
        switch self {
        case .keyExists(let keyid, let revokedAt):
            return "key \(keyid) is already in the registry\(revokedAt.map { " (revoked at \(RFC3339.string(from: $0)); a revoked key cannot come back)" } ?? "")"
        case .previousKeyUnknown(let keyid): return "the rotation names previous key \(keyid), which is not in the registry"
        case .previousKeyOfOtherHost(let keyid, let hostID, let expected): return "the previous key \(keyid) belongs to host \(hostID), not to \(expected)"
        case .previousKeyRevoked(let keyid, let at):
            return "the previous key \(keyid) was revoked at \(RFC3339.string(from: at)); enrol the machine afresh instead"
        case .unknownKey(let keyid): return "no key \(keyid) in the registry (see `mijian-collector enroll list`)"
        case .alreadyRevoked(let keyid, let at): return "key \(keyid) was already revoked at \(RFC3339.string(from: at))"
        }
    }
}

/// What went wrong in a store. The database's own error is kept as it is, so a caller can tell a
/// lost connection from a full disk; the text is made only when it is shown.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The database failed while the store did something (`doing`: "store the report", "read the hosts").
    case database(doing: String, underlying: any Error)
    /// The store could not be opened or reached: location, connection, TLS, credentials, schema.
    case unavailable(String, underlying: (any Error)?)
    /// A registry change its rules forbid.
    case registry(RegistryRefusal)
    /// A kind of store this build does not hold.
    case unsupported(String)

    /// One sentence, with the database's own error.
    public var description: String {
        switch self {
        case .database(let doing, let underlying): return "cannot \(doing): \(underlying)"
        case .unavailable(let what, let underlying): return underlying.map { "\(what): \($0)" } ?? what
        case .registry(let refusal): return refusal.description
        case .unsupported(let what): return what
        }
    }

    /// The error as the command line reports it.
    public var mijianError: MijianError {
        switch self {
        case .database(_, let underlying as MijianError): return underlying
        case .database: return MijianError(.database, description)
        case .unavailable: return MijianError(.database, description)
        case .registry(.unknownKey): return MijianError(.notFound, description)
        case .registry: return MijianError(.enrolment, description)
        case .unsupported: return MijianError(.usage, description)
        }
    }
}

// MARK: - The ingest decision

/// A verified report as it reaches the ledger, with everything its storing needs worked out
/// before the ledger's transaction (the digest of its findings is computed here, in parallel).
public struct IngestSubmission: Sendable {
    /// The verified report.
    public var verified: VerifiedSubmission
    /// The envelope, byte for byte: the evidence that is kept.
    public var envelope: [UInt8]
    /// When the collector received it (its own clock).
    public var receivedAt: Date
    /// Where it came from (`http ADDRESS:PORT`, `file:PATH`), bounded.
    public var source: String
    /// What the assessment keeps of its findings.
    let digest: ReportDigest
    /// The envelope as the SQLite store writes it, made on the request's thread before the one
    /// writer takes the submission (`SQLiteStore.record`); nil until then.
    var packed: EnvelopeCodec.Packed?

    /// Makes a submission; bounds the source and digests the findings.
    public init(_ verified: VerifiedSubmission, envelope: [UInt8], receivedAt: Date, source: String) {
        self.init(verified, envelope: envelope, receivedAt: receivedAt, source: source, digest: ReportDigest(report: verified.report))
    }

    init(_ verified: VerifiedSubmission, envelope: [UInt8], receivedAt: Date, source: String, digest: ReportDigest) {
        self.verified = verified
        self.envelope = envelope
        self.receivedAt = receivedAt
        self.source = CollectorStore.boundedSource(source)
        self.digest = digest
    }

    /// The host the report names.
    public var hostID: String { verified.report.host.hostID }
}

/// Everything stored that the decision about one submission reads, all of it about one host:
/// a backend loads it in the transaction that will apply the plan, after taking that host's lock.
public struct HostLedgerContext: Sendable, Equatable {
    /// The registry's entry for the submission's key.
    public struct EnrolledKey: Sendable, Equatable {
        /// The machine the key is enrolled for.
        public var hostID: String
        /// When it was revoked, if it was.
        public var revokedAt: Date?

        /// Makes an entry.
        public init(hostID: String, revokedAt: Date?) {
            self.hostID = hostID
            self.revokedAt = revokedAt
        }
    }

    /// Where the host's chain stands.
    public struct Head: Sendable, Equatable {
        /// Epoch, seq and digest of the last report that advanced the chain.
        public var chain: ChainState
        /// That report's issue time (the machine's clock), for the clock check.
        public var lastIssuedAt: Date?

        /// Makes a head.
        public init(chain: ChainState, lastIssuedAt: Date?) {
            self.chain = chain
            self.lastIssuedAt = lastIssuedAt
        }
    }

    /// The submission's key as the registry holds it; nil when it is not enrolled.
    public var key: EnrolledKey?
    /// Whether a report with the submission's payload digest is stored for the host already.
    public var alreadyStored: Bool
    /// The host's chain head; nil before its first accepted report.
    public var head: Head?

    /// Makes a context.
    public init(key: EnrolledKey?, alreadyStored: Bool, head: Head?) {
        self.key = key
        self.alreadyStored = alreadyStored
        self.head = head
    }

    /// What a backend looks up to build the context of a submission.
    public struct Lookup: Sendable, Hashable {
        /// The registry row: `keys.keyid`.
        public var keyid: String
        /// The host: its head and its stored reports.
        public var hostID: String
        /// The stored report it may duplicate: `(host_id, payload_sha256)`.
        public var payloadSHA256: String
    }
}

extension IngestSubmission {
    /// What the backend must load for this submission.
    public var lookup: HostLedgerContext.Lookup {
        HostLedgerContext.Lookup(keyid: verified.keyid, hostID: hostID, payloadSHA256: verified.payloadSHA256)
    }
}

/// One line of the ingest log (`ingest_log`) a stored report writes.
public struct IngestLogEntry: Sendable, Equatable {
    /// The chain outcome, or `clock-skew`.
    public var outcome: String
    /// A conflict's outcome, or the kind of clock skew.
    public var reason: String?
    /// One sentence.
    public var detail: String
}

/// What a stored report writes.
public struct StoragePlan: Sendable, Equatable {
    /// The answer (outcome, gap, clock skew).
    public var result: IngestResult
    /// Ingest log lines, in order.
    public var log: [IngestLogEntry]
    /// The report's clock skew kind (`ahead`, `backwards`, `epoch-ahead`), or nil.
    public var skew: String?
    /// Issue minus receive time (or epoch minus receive time for `epoch-ahead`), seconds.
    public var skewSeconds: Int64
    /// Failing findings in the report.
    public var failCount: Int

    /// Whether the report moves the head and counts in the year's aggregates (hosts, host_years,
    /// host_rules, findings, media); a fork is stored but does not.
    public var advances: Bool { result.outcome.advances }
    /// The seqs recorded missing (a `gaps` row), only when the report advances.
    public var gap: ClosedRange<Int64>? { advances ? result.missing : nil }
}

/// What the ledger does with one submission, decided by `IngestRules.decide`.
public enum IngestPlan: Sendable, Equatable {
    /// Refused: nothing stored; counted in the refusal table (address, reason, window).
    case refuse(IngestRefusal)
    /// Nothing new (a duplicate, a replay): nothing stored; counted in the repeat table (host,
    /// digest, outcome, window), `reason` the conflict (`replay`) or nil.
    case repeated(IngestResult, reason: String?)
    /// Stored: the envelope as a `reports` row, and when it advances, the host's head and the year's aggregates.
    case store(StoragePlan)
}

/// The ingest rules: key checks, duplicates, the chain matrix, clock skew. Pure: the same context
/// and submission give the same plan on every backend and every instance.
public enum IngestRules {
    /// Decides what `submission` does, given what is stored for its host.
    public static func decide(context: HostLedgerContext, submission: IngestSubmission, limits: ChainLimits = ChainLimits()) -> IngestPlan {
        let report = submission.verified.report
        let keyid = submission.verified.keyid
        let hostID = report.host.hostID
        // The key must still be enrolled for this very machine.
        guard let key = context.key else { return .refuse(IngestRefusal(.unknownKey, detail: "key \(keyid) is not enrolled")) }
        if let revoked = key.revokedAt {
            return .refuse(IngestRefusal(.revoked, detail: "key \(keyid) was revoked at \(RFC3339.string(from: revoked))"))
        }
        // Identity text is stored with the host and shown everywhere: bounded before anything else reads it.
        if let refusal = IdentityBounds.refusal(for: report) ?? submission.digest.textRefusal { return .refuse(refusal) }
        guard key.hostID == hostID else {
            return .refuse(IngestRefusal(.hostMismatch, detail: "key \(keyid) is enrolled for host \(key.hostID), but the report names host \(hostID)"))
        }
        func result(_ outcome: ChainOutcome, _ missing: ClosedRange<Int64>?, _ detail: String) -> IngestResult {
            IngestResult(
                outcome: outcome, hostID: hostID, payloadSHA256: submission.verified.payloadSHA256, epoch: report.epoch, seq: report.seq, missing: missing,
                detail: detail)
        }
        // An exact copy of anything already stored for this host is a duplicate, wherever it sits.
        if context.alreadyStored {
            return .repeated(result(.duplicate, nil, "already stored (epoch \(report.epoch), seq \(report.seq))"), reason: nil)
        }
        let state = context.head?.chain
        if let refusal = ChainMatrix.refusal(state: state, epoch: report.epoch, seq: report.seq, receivedAt: submission.receivedAt, limits: limits) {
            return .refuse(refusal)
        }
        let decision = ChainMatrix.decide(state: state, epoch: report.epoch, seq: report.seq, prev: report.prevSHA256, digest: submission.verified.payloadSHA256)
        var outcome = result(decision.outcome, decision.missing, decision.detail)
        let conflict = decision.outcome.isConflict ? decision.outcome.rawValue : nil
        // Whatever is not stored (a replay, a duplicate of the head) can be sent again and again.
        guard decision.outcome.isStored else { return .repeated(outcome, reason: conflict) }
        var log = [IngestLogEntry(outcome: decision.outcome.rawValue, reason: conflict, detail: decision.detail)]
        let receivedAt = submission.receivedAt
        let skew = ClockSkew.judge(
            issuedAt: report.issuedAt, receivedAt: receivedAt, previousIssuedAt: decision.outcome.advances ? context.head?.lastIssuedAt : nil, epoch: report.epoch)
        let skewSeconds = skew == "epoch-ahead"
            ? ClockSkew.epochSeconds(epoch: report.epoch, receivedAt: receivedAt) : ClockSkew.seconds(issuedAt: report.issuedAt, receivedAt: receivedAt)
        if let skew {
            outcome.clockSkew = (skew, skewSeconds)
            log.append(IngestLogEntry(outcome: "clock-skew", reason: skew, detail: ClockSkew.describe(skew, seconds: skewSeconds)))
        }
        return .store(StoragePlan(
            result: outcome, log: log, skew: skew, skewSeconds: skewSeconds, failCount: report.findings.count(where: { $0.status == .fail })))
    }
}

// MARK: - Roles

/// The chain and the evidence: where verified reports are decided and kept.
///
/// `record` must, in ONE transaction: take the host's lock (SQLite: the single writer is the
/// lock; PostgreSQL: `pg_advisory_xact_lock` on the host id), load `HostLedgerContext` for
/// `submission.lookup`, call `IngestRules.decide(context:submission:limits:)`, apply the plan
/// (`.store`: the `reports` row, and when `advances`, the head, the year's aggregates and a gap;
/// `.repeated`: count in the repeat table and set `repeatCount`; `.refuse`: count in the refusal
/// table and set `windowCount`), and commit before answering. Two instances deciding about one
/// host therefore decide as one instance would.
public protocol IngestLedger: Sendable {
    /// How far a report may move its host's chain.
    var chainLimits: ChainLimits { get }
    /// Decides and stores one submission (see the protocol). A refusal or a replay is a result,
    /// not an error; an error means nothing of the submission was stored.
    func record(_ submission: IngestSubmission) async throws(StoreError) -> Result<IngestResult, IngestRefusal>
    /// Counts a submission refused before the chain check (bad signature, malformed, …) in the
    /// row of its address, reason and window; the row's count. Throws when the row could not be
    /// written: the refusal stands all the same, and the caller says that its record is missing.
    func logRefusal(_ refusal: IngestRefusal, receivedAt: Date, source: String) async throws(StoreError) -> Int64
}

/// The enrolled keys.
public protocol KeyRegistry: Sendable {
    /// Adds a key; when it replaces `previousKeyID`, that key is revoked in the same transaction.
    func approve(_ record: KeyRecord) async throws(StoreError)
    /// Revokes a key: reports it signs are refused from now on (those stored stay).
    func revoke(keyid: String, at date: Date, reason: String) async throws(StoreError)
    /// Every key, oldest approval first.
    func keys() async throws(StoreError) -> [KeyRecord]
    /// The key with this id, active or not.
    func key(_ keyid: String) async throws(StoreError) -> KeyRecord?
    /// Changes made through this store object, counted, so that caches of the registry know when
    /// to read it again. Changes made elsewhere (another process, another instance) are not
    /// counted: the ledger checks the key again inside the transaction that stores a report.
    var registryGeneration: Int { get }
}

/// What the assessment, the correlation and the `/v1/` reads need.
public protocol StoreQueries: Sendable {
    /// Every machine that has sent an accepted report, by host name.
    func hosts() async throws(StoreError) -> [HostRecord]
    /// At most `limit` machines of that list, those after `after` (from the start when nil).
    func hosts(after: HostPosition?, limit: Int) async throws(StoreError) -> [HostRecord]
    /// How many machines have sent an accepted report, and how many of them have been silent
    /// since `silentSince` or longer (the earlier of their last report's issue and receive times
    /// at or before it): counted by the database, no machine's row read out.
    func hostCounts(silentSince: Date) async throws(StoreError) -> HostCounts
    /// One machine, or nil.
    func host(_ hostID: String) async throws(StoreError) -> HostRecord?
    /// A machine's stored reports, newest first.
    func reports(hostID: String, limit: Int) async throws(StoreError) -> [ReportSummary]
    /// A machine's recorded gaps.
    func gaps(hostID: String) async throws(StoreError) -> [GapRecord]
    /// The envelope a machine's report with this payload digest was stored with, byte for byte:
    /// found by the (host, digest) key both backends keep unique.
    func envelope(hostID: String, payloadSHA256: String) async throws(StoreError) -> [UInt8]?
    /// Stored reports per outcome, log entries per outcome and reason.
    func counts() async throws(StoreError) -> StoreCounts
    /// Everything the assessment of `year` reads, in one consistent read.
    func snapshot(year: Int) async throws(StoreError) -> UnitSnapshot
    /// The counted duplicates and replays, newest window first.
    func repeats(limit: Int) async throws(StoreError) -> [RepeatRecord]
    /// The counted refusals, newest window first.
    func refusals(limit: Int) async throws(StoreError) -> [RefusalRecord]
    /// Windows of the refusal table dropped to keep it within its bound, and what they counted.
    func refusalDrops() async throws(StoreError) -> RefusalDrops
}

/// The machines `/metrics` counts.
public struct HostCounts: Sendable, Equatable {
    /// Machines that have sent an accepted report.
    public var hosts: Int
    /// Those of them silent for longer than the policy allows.
    public var silent: Int

    public init(hosts: Int, silent: Int) {
        self.hosts = hosts
        self.silent = silent
    }
}

extension StoreQueries {
    /// At most `limit` machines of the list, those after the machine `hostID` names (from the
    /// start when nil); nil when no machine has that host id.
    public func hosts(afterHostID hostID: String?, limit: Int) async throws(StoreError) -> [HostRecord]? {
        guard let hostID else { return try await hosts(after: nil, limit: limit) }
        guard let host = try await host(hostID) else { return nil }
        return try await hosts(after: HostPosition(host), limit: limit)
    }
}

/// A whole backend: the three roles over one database.
public protocol CollectorStorage: IngestLedger, KeyRegistry, StoreQueries {
    /// Where the data is, for messages (a file path, a URL without its password).
    var locationDescription: String { get }
}

// MARK: - Typed results

/// One stored report of a machine, as its history lists it.
public struct ReportSummary: Sendable, Equatable {
    /// The payload's digest.
    public var payloadSHA256: String
    /// Epoch.
    public var epoch: Int64
    /// Seq.
    public var seq: Int64
    /// Its chain outcome.
    public var outcome: ChainOutcome
    /// Issue time (the machine's clock), as sent.
    public var issuedAt: String
    /// Receive time (the collector's clock).
    public var receivedAt: String
    /// Failing findings.
    public var failCount: Int
    /// Where it came from.
    public var source: String

    /// Makes a summary.
    public init(payloadSHA256: String, epoch: Int64, seq: Int64, outcome: ChainOutcome, issuedAt: String, receivedAt: String, failCount: Int, source: String) {
        self.payloadSHA256 = payloadSHA256
        self.epoch = epoch
        self.seq = seq
        self.outcome = outcome
        self.issuedAt = issuedAt
        self.receivedAt = receivedAt
        self.failCount = failCount
        self.source = source
    }

    /// As `/v1/hosts/{id}` shows it.
    public var json: JSONValue {
        [
            "payload_sha256": .string(payloadSHA256), "epoch": .int(epoch), "seq": .int(seq), "outcome": .string(outcome.rawValue),
            "issued_at": .string(issuedAt), "received_at": .string(receivedAt), "fail_count": .int(Int64(failCount)), "source": .string(source),
        ]
    }
}

/// How many reports are stored per outcome, and log entries per outcome and reason (refusals as
/// `refused/REASON`, duplicates and replays summed over their counted rows).
public struct StoreCounts: Sendable, Equatable {
    /// Stored reports per chain outcome.
    public var stored: [String: Int]
    /// Log entries per `outcome` or `outcome/reason`.
    public var log: [String: Int]

    /// Makes counts.
    public init(stored: [String: Int], log: [String: Int]) {
        self.stored = stored
        self.log = log
    }
}

/// What was dropped from a bounded counted table.
public struct RefusalDrops: Sendable, Equatable {
    /// Windows dropped.
    public var windows: Int64
    /// Submissions they counted.
    public var requests: Int64

    /// Makes a count.
    public init(windows: Int64, requests: Int64) {
        self.windows = windows
        self.requests = requests
    }
}
