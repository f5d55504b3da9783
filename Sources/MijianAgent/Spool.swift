#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore

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

/// The spool: sealed envelopes on disk until delivery has them. Each file is written atomically
/// (temporary file, fsync, rename, fsync of the directory), so a crash leaves whole envelopes only.
/// Used by one owner (the sealer's actor); it keeps no state beyond the directory.
public struct Spool: Sendable {
    /// The directory.
    public let directory: String
    /// The bound in bytes.
    public let maxBytes: Int

    /// A spool in `directory` bounded by `maxBytes`.
    public init(directory: String, maxBytes: Int) {
        self.directory = directory
        self.maxBytes = maxBytes
    }

    /// Creates the directory (mode 0700) when missing.
    public func prepare() throws(MijianError) {
        var info = stat()
        let directory = self.directory
        if (try? Syscall.call("cannot stat \(directory)", path: directory, { stat(directory, &info) })) != nil {
            guard (info.st_mode & S_IFMT) == S_IFDIR else { throw MijianError(.io, "the spool \(directory) is not a directory", path: directory) }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw MijianError(.io, "cannot create the spool directory \(directory)", path: directory, errno: (error as NSError).code == 0 ? nil : Int32(truncatingIfNeeded: (error as NSError).code))
        }
    }

    /// Every envelope, in chain order; temporary files left by a crash are removed.
    public func entries() throws(MijianError) -> [SpoolEntry] {
        guard let dir = opendir(directory) else { throw MijianError(.io, "cannot list the spool", path: directory, errno: errno) }
        defer { closedir(dir) }
        var out: [SpoolEntry] = []
        while let item = readdir(dir) {
            let name = withUnsafePointer(to: item.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name.hasPrefix("."), name.hasSuffix(".tmp") {
                // A write that a crash interrupted: never renamed, so never part of the spool.
                unlink("\(directory)/\(name)")
                continue
            }
            var info = stat()
            let path = "\(directory)/\(name)"
            guard (try? Syscall.call("cannot stat \(path)", path: path, { stat(path, &info) })) != nil, (info.st_mode & S_IFMT) == S_IFREG,
                let entry = SpoolEntry(name: name, bytes: Int(info.st_size))
            else { continue }
            out.append(entry)
        }
        return out.sorted()
    }

    /// The bytes of an entry.
    public func read(_ entry: SpoolEntry) throws(MijianError) -> [UInt8] {
        let path = "\(directory)/\(entry.name)"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MijianError(.io, "cannot read the spooled report \(path)", path: path, errno: errno)
        }
        return Array(data)
    }

    /// Writes an envelope atomically; a full disk (ENOSPC) and other write errors are thrown.
    @discardableResult
    public func write(_ envelope: [UInt8], epoch: Int64, seq: Int64, failing: Bool) throws(MijianError) -> SpoolEntry {
        let name = SpoolEntry.name(epoch: epoch, seq: seq, failing: failing)
        try AtomicFile.write(envelope, to: "\(directory)/\(name)", mode: 0o600)
        return SpoolEntry(name: name, epoch: epoch, seq: seq, failing: failing, bytes: envelope.count)
    }

    /// Deletes an entry and makes the deletion durable.
    public func remove(_ entry: SpoolEntry) throws(MijianError) {
        let path = "\(directory)/\(entry.name)"
        do {
            try Syscall.call("cannot remove \(path)", path: path) { unlink(path) }
        } catch where error.code == .notFound {
            return
        }
        syncDirectory()
    }

    /// Deletes the oldest reports without a failure until `incoming` more bytes fit the bound;
    /// reports with a failure are never deleted.
    public func makeRoom(for incoming: Int, in entries: [SpoolEntry]) -> CompactionOutcome {
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

    /// A failed directory sync only weakens durability of a deletion, which the next start repeats.
    private func syncDirectory() {
        let directory = self.directory
        guard let fd = try? Syscall.call("cannot open \(directory)", path: directory, { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }) else { return }
        _ = try? Syscall.call("cannot flush \(directory)", path: directory) { fsync(fd) }
        close(fd)
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
