#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianEvidence
import Synchronization

/// One sealed envelope waiting in the spool.
public struct SpoolEntry: Sendable, Equatable, Comparable {
    /// The file name: `<epoch>-<seq>-<ok|fail>.dsse.json`, zero-padded so names sort in chain order.
    public var name: String
    /// The report's epoch.
    public var epoch: Int64
    /// The report's seq.
    public var seq: Int64
    /// Whether the report holds a failing finding (such a report is never compacted).
    public var failing: Bool
    /// The file's size in bytes.
    public var bytes: Int

    /// The name an envelope of this place in the chain gets.
    public static func name(epoch: Int64, seq: Int64, failing: Bool) -> String {
        "\(pad(epoch))-\(pad(seq))-\(failing ? "fail" : "ok").dsse.json"
    }

    private static func pad(_ value: Int64) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 19 - digits.count)) + digits
    }

    /// Parses a spool file name; anything else (temporary files, strangers) is nil.
    public init?(name: String, bytes: Int) {
        guard name.hasSuffix(".dsse.json"), !name.hasPrefix(".") else { return nil }
        let parts = name.dropLast(".dsse.json".count).split(separator: "-")
        guard parts.count == 3, let epoch = Int64(parts[0]), let seq = Int64(parts[1]), parts[2] == "ok" || parts[2] == "fail" else { return nil }
        self.name = name
        self.epoch = epoch
        self.seq = seq
        self.failing = parts[2] == "fail"
        self.bytes = bytes
    }

    /// Chain order: epoch, then seq.
    public static func < (lhs: SpoolEntry, rhs: SpoolEntry) -> Bool { (lhs.epoch, lhs.seq) < (rhs.epoch, rhs.seq) }
}

/// What making room in the spool did.
public struct CompactionOutcome: Sendable, Equatable {
    /// Reports without a failure that were deleted, oldest first.
    public var removed: [SpoolEntry] = []
    /// True when even after compaction the new report does not fit the bound (only failing reports are left).
    public var overBound = false
}

/// A file named like a spooled envelope that is not one the spool may read: a link, a
/// directory, a file with other names (hard links), or one larger than an envelope can be.
public struct SpoolSuspect: Sendable, Equatable {
    /// Its name in the spool.
    public var name: String
    /// Why it is not read, in words.
    public var reason: String
}

/// The spool's envelopes in chain order, and what looks like one but may not be read.
public struct SpoolListing: Sendable, Equatable {
    /// Regular files with an envelope's name, at most `Spool.maxEnvelopeBytes` each.
    public var entries: [SpoolEntry] = []
    /// Everything else with an envelope's name: to be set aside unread.
    public var suspects: [SpoolSuspect] = []
}

/// The spool's directory, opened once (and checked) for the life of the spool.
private final class OpenedDirectory: Sendable {
    let handle = Mutex<DirectoryHandle?>(nil)
}

/// The spool: sealed envelopes on disk until delivery has them. Each file is written atomically
/// (temporary file, fsync, rename, fsync of the directory), so a crash leaves whole envelopes only.
/// The directory must be the service's own (see `DirectoryHandle.openPrivate`); it is held open
/// and every file in it is opened relative to it with O_NOFOLLOW, so a link planted in the spool
/// is never followed. Used by one owner (the sealer's actor); it keeps no state beyond the directory.
public struct Spool: Sendable {
    /// The largest envelope the spool reads: the size every envelope reader accepts. A larger
    /// file is never a report this agent sealed and is set aside unread.
    public static let maxEnvelopeBytes = 16 << 20
    /// The subdirectory files that may not be delivered are moved to (never deleted).
    public static let quarantine = "quarantine"
    /// The subdirectory envelopes the collector refused for good are moved to.
    public static let rejected = "rejected"

    /// The directory.
    public let directory: String
    /// The bound in bytes.
    public let maxBytes: Int
    private let opened = OpenedDirectory()

    /// A spool in `directory` bounded by `maxBytes`.
    public init(directory: String, maxBytes: Int) {
        self.directory = directory
        self.maxBytes = maxBytes
    }

    /// Creates the directory (mode 0700, missing parents 0755) when missing, then opens it,
    /// refusing a directory another user owns or others can write (or whose parents let it be swapped).
    public func prepare() throws(MijianError) {
        var info = stat()
        if lstat(directory, &info) != 0 {
            try EvidenceFiles.ensureDirectory(directory, mode: 0o700)
        }
        let handle = try DirectoryHandle.openPrivate(directory, what: "the spool")
        opened.handle.withLock { $0 = handle }
    }

    /// The open directory; opened (and checked) now when `prepare` was not called.
    private func handle() throws(MijianError) -> DirectoryHandle {
        if let handle = opened.handle.withLock({ $0 }) { return handle }
        let handle = try DirectoryHandle.openPrivate(directory, what: "the spool")
        opened.handle.withLock { $0 = handle }
        return handle
    }

    /// Every envelope, in chain order, and what has an envelope's name but may not be read;
    /// temporary files left by a crash are removed. Nothing is opened: `fstatat` without following links.
    public func list() throws(MijianError) -> SpoolListing {
        let handle = try handle()
        var listing = SpoolListing()
        for name in try handle.names() {
            if name.hasPrefix("."), name.hasSuffix(".tmp") {
                // A write that a crash interrupted: never renamed, so never part of the spool.
                unlinkat(handle.fd, name, 0)
                continue
            }
            guard var entry = SpoolEntry(name: name, bytes: 0), let info = handle.status(of: name) else { continue }
            let type = info.st_mode & S_IFMT
            if type != S_IFREG {
                let what = type == S_IFLNK ? "a symbolic link" : type == S_IFDIR ? "a directory" : "not a regular file"
                listing.suspects.append(SpoolSuspect(name: name, reason: "it is \(what), not an envelope the agent wrote; it is not followed or read"))
            } else if info.st_nlink > 1 {
                listing.suspects.append(SpoolSuspect(name: name, reason: "it has \(info.st_nlink) hard links: the same file has a name elsewhere, so it is not the agent's own; it is not read"))
            } else if info.st_size > Spool.maxEnvelopeBytes {
                listing.suspects.append(SpoolSuspect(name: name, reason: "it is \(info.st_size) bytes, more than the envelope limit of \(Spool.maxEnvelopeBytes); it is not read"))
            } else {
                entry.bytes = Int(info.st_size)
                listing.entries.append(entry)
            }
        }
        listing.entries.sort()
        return listing
    }

    /// Every envelope, in chain order (what `list` finds unfit to read is left out).
    public func entries() throws(MijianError) -> [SpoolEntry] {
        try list().entries
    }

    /// The bytes of an entry: opened relative to the spool with O_NOFOLLOW, its size checked on
    /// the descriptor before reading, at most `maxEnvelopeBytes` + 1 bytes read.
    public func read(_ entry: SpoolEntry) throws(MijianError) -> [UInt8] {
        try handle().read(entry.name, limit: Spool.maxEnvelopeBytes)
    }

    /// Writes an envelope atomically (mode 0600); a full disk (ENOSPC) and other write errors are thrown.
    @discardableResult
    public func write(_ envelope: [UInt8], epoch: Int64, seq: Int64, failing: Bool) throws(MijianError) -> SpoolEntry {
        let name = SpoolEntry.name(epoch: epoch, seq: seq, failing: failing)
        try handle().write(envelope, to: name, mode: 0o600)
        return SpoolEntry(name: name, epoch: epoch, seq: seq, failing: failing, bytes: envelope.count)
    }

    /// Deletes an entry and makes the deletion durable.
    public func remove(_ entry: SpoolEntry) throws(MijianError) {
        try handle().remove(entry.name)
    }

    /// Moves `name` into `quarantine/` unread (a link moves as a link); returns where it went.
    @discardableResult
    public func setAside(_ name: String) throws(MijianError) -> String {
        try handle().moveAside(name, into: Spool.quarantine)
    }

    /// Moves an envelope the collector refused for good into `rejected/`; returns where it went.
    @discardableResult
    public func moveToRejected(_ entry: SpoolEntry) throws(MijianError) -> String {
        try handle().moveAside(entry.name, into: Spool.rejected)
    }

    /// Deletes the oldest reports without a failure until `incoming` more bytes fit the bound;
    /// reports with a failure are never deleted.
    public func makeRoom(for incoming: Int, in entries: [SpoolEntry]) -> CompactionOutcome {
        // Each entry is at most maxEnvelopeBytes (larger files are never listed), so no sum here can overflow.
        var total = entries.reduce(0) { $0 + $1.bytes }
        var outcome = CompactionOutcome()
        guard total + incoming > maxBytes else { return outcome }
        for entry in entries.sorted() where !entry.failing {
            guard total + incoming > maxBytes else { break }
            if (try? remove(entry)) != nil {
                total -= entry.bytes
                outcome.removed.append(entry)
            }
        }
        outcome.overBound = total + incoming > maxBytes
        return outcome
    }
}

extension SpoolEntry {
    /// Makes an entry directly.
    public init(name: String, epoch: Int64, seq: Int64, failing: Bool, bytes: Int) {
        self.name = name
        self.epoch = epoch
        self.seq = seq
        self.failing = failing
        self.bytes = bytes
    }
}
