#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import MijianCore

/// What identifies a file's content without reading it: device, inode, size, modification and
/// change times (nanoseconds).
public struct FileStamp: Sendable, Equatable {
    /// st_dev, st_ino.
    public var device: UInt64, inode: UInt64
    /// st_size.
    public var size: Int64
    /// st_mtim and st_ctim in nanoseconds.
    public var mtime: Int64, ctime: Int64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        ctime = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
    }

    /// Makes a stamp (tests).
    public init(device: UInt64, inode: UInt64, size: Int64, mtime: Int64, ctime: Int64) {
        self.device = device
        self.inode = inode
        self.size = size
        self.mtime = mtime
        self.ctime = ctime
    }
}

/// The scan's memory between runs, in the state directory (`scan-index.json`): per file its
/// stamp, for small files a SHA-256 of the content, and what the scan found. A file whose stamp
/// is unchanged is not read again; a small file whose stamp changed but whose content hash is the
/// same (touched, copied back) is not scanned again either. Written atomically; a file that cannot
/// be parsed is not trusted: the index starts empty and says so (`note`).
public final class ScanIndex: @unchecked Sendable {
    /// Bumped when the readers or the recogniser change what they find: an index of another
    /// version is dropped whole.
    public static let version = 1
    /// Files up to this size carry a content hash.
    public static let hashedBytes = 64 << 10

    struct Entry {
        var stamp: FileStamp
        var sha256: String?
        var results: [FileResult]
    }

    /// Where it is stored.
    public let path: String
    /// Why the stored index was not used (corrupt, another version), when it was not.
    public private(set) var note: String?
    private var entries: [String: Entry] = [:]
    /// Scan workers look up and store at once.
    private let lock = NSLock()
    /// Hits from the index in this run.
    public private(set) var reused = 0

    /// Loads the index at `path`; a missing file is an empty index, a bad one is dropped with a note.
    public init(path: String) {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else { return }
        do {
            let json = try JSONParser(maxDepth: 16, maxBytes: 1 << 30).parse(Array(data))
            guard json["schema"]?.stringValue == "mijian.scan-index/v\(Self.version)", let files = json["files"]?.objectValue else {
                note = "the index \(path) is of another version: rebuilt"
                return
            }
            for (file, value) in files {
                guard let entry = Self.entry(value) else {
                    entries = [:]
                    note = "the index \(path) holds an entry that cannot be read (\(file)): not trusted, rebuilt"
                    return
                }
                entries[file] = entry
            }
        } catch {
            note = "the index \(path) is corrupt (\(error)): not trusted, rebuilt"
        }
    }

    /// The index's file name in the state directory: one per root, so that a disk examined with
    /// `--root` never mixes with the machine's own files.
    public static func fileName(root: String) -> String {
        root == "/" ? "scan-index.json" : "scan-index-\(Hex.lower(SHA256.hash(data: Array(root.utf8))).prefix(16)).json"
    }

    /// Number of files it knows.
    public var count: Int { entries.count }

    func lookUp(_ file: String, stamp: FileStamp, source: any ByteSource) -> [FileResult]? {
        guard let entry = lock.withLock({ entries[file] }) else { return nil }
        if entry.stamp == stamp {
            lock.withLock { reused += 1 }
            return entry.results
        }
        if let stored = entry.sha256, stamp.size == entry.stamp.size, stamp.size <= Int64(Self.hashedBytes), let digest = Self.digest(source), digest == stored {
            lock.withLock {
                entries[file]?.stamp = stamp
                reused += 1
            }
            return entry.results
        }
        return nil
    }

    func store(_ file: String, stamp: FileStamp, results: [FileResult], source: any ByteSource) {
        let digest = stamp.size <= Int64(Self.hashedBytes) ? Self.digest(source) : nil
        lock.withLock { entries[file] = Entry(stamp: stamp, sha256: digest, results: results) }
    }

    func prune(keeping seen: Set<String>, under roots: [String]) {
        for file in entries.keys where !seen.contains(file) {
            if roots.contains(where: { $0 == "/" || file == $0 || file.hasPrefix($0 + "/") }) { entries[file] = nil }
        }
    }

    static func digest(_ source: any ByteSource) -> String? {
        // A small file was read whole by the scan's first look at it: hashed from memory.
        if let whole = (source as? FileSource)?.whole { return Hex.lower(SHA256.hash(data: whole)) }
        guard let bytes = try? source.read(at: 0, count: Int(source.size)), Int64(bytes.count) == source.size else { return nil }
        return Hex.lower(SHA256.hash(data: bytes))
    }

    /// Writes the index atomically (temporary file, fsync, rename).
    public func save() throws(MijianError) {
        let files: [(String, JSONValue)] = entries.sorted { $0.key < $1.key }.map { file, entry in
            (file, .object([
                ("device", .int(Int64(bitPattern: entry.stamp.device))), ("inode", .int(Int64(bitPattern: entry.stamp.inode))),
                ("size", .int(entry.stamp.size)), ("mtime_ns", .int(entry.stamp.mtime)), ("ctime_ns", .int(entry.stamp.ctime)),
                ("sha256", .optional(entry.sha256)), ("results", .array(entry.results.map(\.json))),
            ]))
        }
        let json = JSONValue.object([("schema", .string("mijian.scan-index/v\(Self.version)")), ("files", .object(files))])
        try AtomicFile.write(json.serialized(), to: path, mode: 0o600)
    }

    private static func entry(_ value: JSONValue) -> Entry? {
        guard let device = value["device"]?.intValue, let inode = value["inode"]?.intValue, let size = value["size"]?.intValue,
            let mtime = value["mtime_ns"]?.intValue, let ctime = value["ctime_ns"]?.intValue, let results = value["results"]?.arrayValue
        else { return nil }
        var decoded: [FileResult] = []
        for result in results {
            guard let file = FileResult(json: result) else { return nil }
            decoded.append(file)
        }
        let stamp = FileStamp(device: UInt64(bitPattern: device), inode: UInt64(bitPattern: inode), size: size, mtime: mtime, ctime: ctime)
        return Entry(stamp: stamp, sha256: value["sha256"]?.stringValue, results: decoded)
    }
}

extension FileResult {
    /// A result from its JSON (the index); nil when any member is missing or unknown.
    init?(json: JSONValue) {
        guard let path = json["path"]?.stringValue, let format = json["format"]?.stringValue.flatMap(DocumentFormat.init(rawValue:)),
            let status = json["status"]?.stringValue.flatMap(FileStatus.init(rawValue:)), let size = json["size"]?.intValue,
            let hitValues = json["hits"]?.arrayValue
        else { return nil }
        var hits: [MarkingHit] = []
        for value in hitValues {
            guard let kind = value["kind"]?.stringValue.flatMap(HitKind.init(rawValue:)),
                let level = value["level"]?.stringValue.flatMap(Classification.init(rawValue:)), let text = value["text"]?.stringValue,
                let location = value["where"], let part = location["part"]?.stringValue, let page = location["page"]?.intValue,
                let line = location["line"]?.intValue, let region = location["region"]?.stringValue.flatMap(TextRegion.init(rawValue:)),
                let score = value["score"]?.intValue, let reason = value["reason"]?.stringValue
            else { return nil }
            hits.append(MarkingHit(
                kind: kind, level: level, text: text, period: value["period"]?.stringValue,
                location: HitLocation(part: part, page: Int(page), line: Int(line), region: region), score: Int(score), reason: reason))
        }
        self.init(path: path, format: format, status: status, size: size, reason: json["reason"]?.stringValue, hits: hits, encoding: json["encoding"]?.stringValue)
    }
}
