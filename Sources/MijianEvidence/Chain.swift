#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import MijianCore

/// Where a machine keeps its key and chain: `agent.key`, `agent.pub`, `chain.json`.
public struct KeyStore: Sendable, Equatable {
    /// The default state directory.
    public static let defaultDirectory = "/var/lib/mijian"

    /// The directory holding the files.
    public let directory: String

    /// A store in `directory`.
    public init(directory: String) {
        self.directory = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
    }

    /// `--key-dir` first, then the policy's `state_dir`, then `/var/lib/mijian`.
    public static func resolve(keyDir: String?, policy: Policy?) -> KeyStore {
        KeyStore(directory: keyDir ?? policy?.stateDir ?? defaultDirectory)
    }

    /// The private key file (mode 0600).
    public var keyPath: String { "\(directory)/agent.key" }
    /// The public key file.
    public var publicKeyPath: String { "\(directory)/agent.pub" }
    /// The chain state file.
    public var chainPath: String { "\(directory)/chain.json" }
    /// The lock serialising signers.
    var lockPath: String { "\(directory)/chain.lock" }

    /// Creates the directory when missing and refuses one that another user could change: the
    /// chain state and its lock are read and written by path inside it (see `DirectoryHandle.openPrivate`).
    public func prepareDirectory() throws(MijianError) {
        try EvidenceFiles.ensureDirectory(directory, mode: 0o700)
        _ = try DirectoryHandle.openPrivate(directory, what: "the state directory")
    }

    /// Creates a key; refuses when `agent.key` exists.
    public func initialise() throws(MijianError) -> SigningKey {
        try EvidenceFiles.ensureDirectory(directory, mode: 0o700)
        if EvidenceFiles.exists(keyPath) {
            throw MijianError(
                .exists, "\(keyPath) already exists; refusing to overwrite it (to rotate, move it aside first and enrol with --previous-key)",
                path: keyPath)
        }
        let key = try SigningKey.generate()
        try key.write(to: keyPath)
        try AtomicFile.write(Array(key.publicKey.pem.utf8), to: publicKeyPath, mode: 0o644)
        return key
    }

    /// Loads the private key (refusing a file others can read).
    public func signingKey() throws(MijianError) -> SigningKey {
        try SigningKey.load(from: keyPath)
    }
}

/// Where the next signed report goes in this machine's chain, persisted between runs.
public struct ChainState: Sendable, Equatable {
    /// The key the chain belongs to; another key starts a new epoch.
    public var keyid: String
    /// The epoch: the Unix time the epoch started, above any earlier epoch of this machine.
    public var epoch: Int64
    /// The seq the next report gets.
    public var seq: Int64
    /// SHA-256 (hex) of the last released payload; what the next report's `prev_sha256` says ("" at seq 0).
    public var prevSHA256: String
    /// The last released report's id, to explain a gap.
    public var lastReportID: String?
    /// When the state was last written.
    public var updatedAt: Date

    /// Makes a state.
    public init(keyid: String, epoch: Int64, seq: Int64, prevSHA256: String, lastReportID: String? = nil, updatedAt: Date) {
        self.keyid = keyid
        self.epoch = epoch
        self.seq = seq
        self.prevSHA256 = prevSHA256
        self.lastReportID = lastReportID
        self.updatedAt = updatedAt
    }

    /// A new epoch at seq 0 for `keyid`, numbered after `previous` when there was one; an error
    /// when `previous` (read from the state file) left no epoch after it.
    public static func newEpoch(keyid: String, after previous: ChainState?, now: Date) throws(MijianError) -> ChainState {
        let seconds = now.timeIntervalSince1970.rounded(.down)
        var epoch = Int64(exactly: seconds) ?? (seconds > 0 ? Int64.max : 0)
        if let previous, epoch <= previous.epoch {
            let (next, overflow) = previous.epoch.addingReportingOverflow(1)
            guard !overflow else {
                throw MijianError(
                    .state, "the chain state's epoch \(previous.epoch) leaves no epoch after it; the state file is not one this agent wrote: restore it, or move it aside")
            }
            epoch = next
        }
        return ChainState(keyid: keyid, epoch: max(epoch, 0), seq: 0, prevSHA256: "", updatedAt: now)
    }

    /// The seq after `seq`, or an error naming the exhausted chain.
    static func seq(after seq: Int64) throws(MijianError) -> Int64 {
        let (next, overflow) = seq.addingReportingOverflow(1)
        guard !overflow else {
            throw MijianError(.state, "the chain's seq \(seq) is the last there is; start a new epoch with a new key (a state or spool file saying so was not written by this agent)")
        }
        return next
    }

    /// The state file's JSON.
    public var json: JSONValue {
        [
            "schema": "mijian.chain/v1", "keyid": .string(keyid), "epoch": .int(epoch), "seq": .int(seq),
            "prev_sha256": .string(prevSHA256), "last_report_id": .optional(lastReportID),
            "updated_at": .string(RFC3339.string(from: updatedAt)),
        ]
    }

    /// Decodes the state file strictly.
    public init(json: JSONValue) throws(MijianError) {
        let object = try StrictJSONObject(json, path: "chain")
        try object.only(["schema", "keyid", "epoch", "seq", "prev_sha256", "last_report_id", "updated_at"])
        guard try object.string("schema") == "mijian.chain/v1" else { throw MijianError(.malformed, "chain.schema is not mijian.chain/v1") }
        keyid = try object.string("keyid")
        epoch = try object.int("epoch")
        seq = try object.int("seq")
        prevSHA256 = try object.string("prev_sha256")
        lastReportID = try object.optionalString("last_report_id")
        updatedAt = try object.date("updated_at")
        guard epoch >= 0, seq >= 0 else { throw MijianError(.malformed, "chain.epoch and chain.seq must not be negative") }
    }

    /// Loads the state, or nil when there is none yet; a damaged file is an error, never a silent restart.
    public static func load(from path: String) throws(MijianError) -> ChainState? {
        let bytes: [UInt8]
        do {
            bytes = try EvidenceFiles.read(path, limit: 64 << 10)
        } catch where error.code == .notFound {
            return nil
        }
        do {
            return try ChainState(json: try JSONParser(maxDepth: 4, maxBytes: 64 << 10).parse(bytes))
        } catch let failure as JSONParser.Failure {
            throw damaged(path, failure.description)
        } catch let error as MijianError {
            throw damaged(path, error.message)
        } catch {
            throw damaged(path, "\(error)")
        }
    }

    private static func damaged(_ path: String, _ why: String) -> MijianError {
        MijianError(
            .state,
            "the chain state \(path) is damaged (\(why)); refusing to guess the next seq. Restore it, or move it aside to start a new epoch the collector will see as a break",
            path: path)
    }

    /// Writes the state atomically (temporary file, fsync, rename, directory fsync).
    public func save(to path: String) throws(MijianError) {
        try AtomicFile.write(json.prettySerialized(), to: path, mode: 0o600)
    }
}

/// An exclusive `flock` on the chain's lock file, released when the owner goes away.
final class ChainLock {
    private let file: FileDescriptor

    init(path: String) throws(MijianError) {
        file = try FileDescriptor(path: path, flags: O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600)
        let fd = file.fd
        try Syscall.call("cannot lock \(path)", path: path) { flock(fd, LOCK_EX) }
    }

    deinit { flock(file.fd, LOCK_UN) }
}

/// Signs reports as the next link of this machine's chain.
public struct ReportSigner: Sendable {
    /// Where the key and chain live.
    public let store: KeyStore
    /// The machine key.
    public let key: SigningKey

    /// A signer with the store's key.
    public init(store: KeyStore) throws(MijianError) {
        self.store = store
        self.key = try store.signingKey()
    }

    /// A signer with an explicit key (tests, rotation).
    public init(store: KeyStore, key: SigningKey) {
        self.store = store
        self.key = key
    }

    /// Gives `report` its place in the chain, signs it and persists the new chain state before
    /// returning the envelope, so a crash can skip a seq (the collector sees and flags the gap)
    /// but never issue one seq twice.
    public func sign(_ report: Report, now: Date = Date()) throws(MijianError) -> (envelope: Envelope, report: Report) {
        var out: (Envelope, Report)?
        try sign(report, now: now, after: nil) { envelope, signed in out = (envelope, signed) }
        guard let out else { throw MijianError(.state, "the report was not signed") }
        return out
    }

    /// Signs `report` as the next link and hands the envelope to `release` *before* the chain
    /// state is saved, so a service can make the envelope durable first: a crash then leaves the
    /// envelope on disk with the state one behind, and `released` (the newest envelope the caller
    /// holds) moves the state past it on the next call instead of issuing its seq again. If
    /// `release` throws (the envelope could not be written), the state is not saved and the seq is
    /// issued again next time: no link is missing. If saving the state fails after `release`, the
    /// error is thrown; the caller still holds the envelope.
    public func sign(
        _ report: Report, now: Date = Date(), after released: ChainPosition?, release: (Envelope, Report) throws(MijianError) -> Void
    ) throws(MijianError) {
        try store.prepareDirectory()
        let lock = try ChainLock(path: store.lockPath)
        defer { withExtendedLifetime(lock) {} }
        let stored = try ChainState.load(from: store.chainPath)
        var state: ChainState
        if let stored, stored.keyid == key.keyid {
            state = stored
        } else {
            state = try ChainState.newEpoch(keyid: key.keyid, after: stored, now: now)
        }
        if let released, released.keyid == state.keyid, released.epoch == state.epoch, released.seq >= state.seq {
            state.seq = try ChainState.seq(after: released.seq)
            state.prevSHA256 = released.payloadSHA256
            state.lastReportID = released.reportID
        } else if let released, released.keyid == state.keyid, released.epoch > state.epoch {
            state = ChainState(
                keyid: state.keyid, epoch: released.epoch, seq: try ChainState.seq(after: released.seq), prevSHA256: released.payloadSHA256,
                lastReportID: released.reportID, updatedAt: now)
        }
        // The seq after this one must exist too: the state saved below names it.
        _ = try ChainState.seq(after: state.seq)
        var report = report
        report.epoch = state.epoch
        report.seq = state.seq
        report.prevSHA256 = state.prevSHA256
        report.agent.keyid = key.keyid
        let payload = report.payloadBytes()
        let envelope: Envelope
        do {
            envelope = try DSSE.sign(payload: payload, type: PayloadType.report, key: key)
        } catch {
            throw MijianError(.crypto, "cannot sign the report: \(error)")
        }
        try release(envelope, report)
        state.seq = try ChainState.seq(after: state.seq)
        state.prevSHA256 = envelope.payloadSHA256
        state.lastReportID = report.reportID.uuidString.lowercased()
        state.updatedAt = now
        try state.save(to: store.chainPath)
    }
}

extension ReportSigner {
    /// Checks that a next report can be signed: the saved chain state, when there is one, is
    /// readable and leaves a seq (or, for another key, an epoch) after it. The agent calls it at
    /// start, so such a state stops it with the reason instead of failing every seal.
    public func checkNext(now: Date = Date()) throws(MijianError) {
        guard let stored = try ChainState.load(from: store.chainPath) else { return }
        if stored.keyid == key.keyid {
            _ = try ChainState.seq(after: stored.seq)
        } else {
            _ = try ChainState.newEpoch(keyid: key.keyid, after: stored, now: now)
        }
    }

    /// Moves the saved chain state past `released` when it is behind (an envelope was made durable
    /// but a crash came before the state was saved); does nothing otherwise.
    public func advance(past released: ChainPosition, now: Date = Date()) throws(MijianError) {
        guard released.keyid == key.keyid else { return }
        try store.prepareDirectory()
        let lock = try ChainLock(path: store.lockPath)
        defer { withExtendedLifetime(lock) {} }
        if let stored = try ChainState.load(from: store.chainPath), stored.keyid == key.keyid,
            (stored.epoch, stored.seq) > (released.epoch, released.seq)
        {
            return
        }
        let state = ChainState(
            keyid: released.keyid, epoch: released.epoch, seq: try ChainState.seq(after: released.seq), prevSHA256: released.payloadSHA256,
            lastReportID: released.reportID, updatedAt: now)
        try state.save(to: store.chainPath)
    }
}

/// A place in a chain that a signer has released: the next report must come after it.
public struct ChainPosition: Sendable, Equatable {
    /// The signing key.
    public var keyid: String
    /// The epoch.
    public var epoch: Int64
    /// The seq of the released report.
    public var seq: Int64
    /// SHA-256 (hex) of its payload.
    public var payloadSHA256: String
    /// Its report id.
    public var reportID: String?

    /// Makes a position.
    public init(keyid: String, epoch: Int64, seq: Int64, payloadSHA256: String, reportID: String?) {
        self.keyid = keyid
        self.epoch = epoch
        self.seq = seq
        self.payloadSHA256 = payloadSHA256
        self.reportID = reportID
    }
}
