import CZlib
import MijianCore

/// Why a container or a member could not be read; the text goes into the file's `reason`.
public struct Unreadable: Error, Sendable, Equatable {
    /// One sentence.
    public let reason: String

    /// Makes one.
    public init(_ reason: String) { self.reason = reason }
}

/// Every size the readers take, so that a crafted file (a zip bomb, a member that claims
/// gigabytes, a nest of archives) costs a bounded amount of memory and time.
public struct ScanLimits: Sendable, Equatable {
    /// Most bytes inflated from one member of a document (the first paragraphs lie in the first part of it).
    public var partBytes = 1 << 20
    /// Most bytes of an archive member held in memory to read it as a document of its own.
    public var memberBytes = 64 << 20
    /// Most bytes inflated from one archive in all.
    public var archiveBytes = 256 << 20
    /// Highest ratio of inflated to compressed bytes a member may reach once past 1 MiB.
    public var maxRatio = 1000
    /// Most members of an archive looked at.
    public var members = 10_000
    /// How deep archives nest (an archive in an archive is depth 2).
    public var depth = 3
    /// Bytes of plain text (and HTML, XML, Markdown) read from the start of a file.
    public var textBytes = 64 << 10
    /// Lines (paragraphs, cells, text objects) a reader gives from the body of the first page.
    public var lines = 64
    /// Seconds pdftotext may take for one page.
    public var pdfSeconds = 10
    /// Files larger than this are not read (the policy's `max_file_bytes`).
    public var fileBytes: Int64 = 512 << 20

    /// Defaults.
    public init() {}
}

/// Inflates deflate data (raw, as in zip; or gzip-wrapped) from a source, chunk by chunk,
/// stopping at `limit` bytes of output: what a reader needs is near the start.
enum Inflater {
    /// The inflated bytes (at most `limit`) and whether the stream ended within them.
    static func inflate(
        _ source: any ByteSource, from offset: Int64, compressedSize: Int64?, gzip: Bool, limit: Int, maxRatio: Int, name: String
    ) throws(Unreadable) -> (bytes: [UInt8], complete: Bool) {
        var stream = z_stream()
        let status = gzip
            ? mijian_inflate_init_gzip(&stream)
            : inflateInit2_(&stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw Unreadable("\(name): zlib could not start (status \(status))") }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var consumed: Int64 = 0
        var position = offset
        let end = compressedSize.map { offset + $0 } ?? source.size
        var result: Int32 = Z_OK
        while result == Z_OK {
            let want = Int(min(Int64(1 << 16), end - position))
            guard want > 0 else { break }
            var input: [UInt8]
            do { input = try source.read(at: position, count: want) } catch { throw Unreadable("\(name): \(error.message)") }
            if input.isEmpty { break }
            position += Int64(input.count)
            let inputCount = input.count
            input.withUnsafeMutableBufferPointer { inBuffer in
                stream.next_in = inBuffer.baseAddress
                stream.avail_in = uInt(inBuffer.count)
                repeat {
                    chunk.withUnsafeMutableBufferPointer { outBuffer in
                        stream.next_out = outBuffer.baseAddress
                        stream.avail_out = uInt(outBuffer.count)
                        result = CZlib.inflate(&stream, Z_NO_FLUSH)
                        output.append(contentsOf: outBuffer[0..<(outBuffer.count - Int(stream.avail_out))])
                    }
                } while result == Z_OK && stream.avail_out == 0 && output.count < limit
            }
            consumed += Int64(inputCount) - Int64(stream.avail_in)
            if output.count >= limit {
                if output.count > 1 << 20, consumed > 0, Int64(output.count) / consumed > Int64(maxRatio) {
                    throw Unreadable("\(name): inflates more than \(maxRatio) times its compressed size (a zip bomb)")
                }
                return (Array(output.prefix(limit)), false)
            }
            if result == Z_BUF_ERROR { result = Z_OK }
        }
        switch result {
        case Z_STREAM_END: return (output, true)
        case Z_OK: return (output, false)  // truncated data: what inflated is still text
        case Z_NEED_DICT, Z_DATA_ERROR: throw Unreadable("\(name): compressed data is corrupt")
        default: throw Unreadable("\(name): compressed data could not be inflated (zlib status \(result))")
        }
    }
}

/// A zip archive's central directory, read from the end of the file, and its members read on
/// demand (stored or deflated), each one bounded.
struct ZipArchive {
    struct Entry {
        let name: String
        let method: UInt16
        let flags: UInt16
        let compressedSize: Int64
        let size: Int64
        let localOffset: Int64
        var encrypted: Bool { flags & 1 != 0 }
        var isDirectory: Bool { name.hasSuffix("/") }
    }

    let source: any ByteSource
    let entries: [Entry]
    let limits: ScanLimits
    private let byName: [String: Int]

    /// Whether the bytes start like a zip (a local header, or an empty archive's end record).
    static func looksLike(_ head: [UInt8]) -> Bool {
        head.count >= 4 && head[0] == 0x50 && head[1] == 0x4B && (head[2] == 3 && head[3] == 4 || head[2] == 5 && head[3] == 6)
    }

    init(_ source: any ByteSource, limits: ScanLimits) throws(Unreadable) {
        self.source = source
        self.limits = limits
        let tailSize = Int(min(source.size, 22 + 65_535))
        let tail: [UInt8]
        do { tail = try source.read(at: source.size - Int64(tailSize), count: tailSize) } catch { throw Unreadable(error.message) }
        var eocd: Int?
        var index = tail.count - 22
        while index >= 0 {
            if tail[index] == 0x50, tail[index + 1] == 0x4B, tail[index + 2] == 5, tail[index + 3] == 6 { eocd = index; break }
            index -= 1
        }
        guard let eocd else { throw Unreadable("no zip end-of-central-directory record: the archive is truncated or corrupt") }
        let count = Int(le16(tail, eocd + 10))
        let directorySize = Int64(le32(tail, eocd + 12))
        let directoryOffset = Int64(le32(tail, eocd + 16))
        if count == 0xFFFF || directoryOffset == 0xFFFF_FFFF {
            throw Unreadable("a ZIP64 archive (over 4 GiB or 65,535 members), which the scan does not read")
        }
        guard directoryOffset + directorySize <= source.size, directorySize <= 64 << 20 else {
            throw Unreadable("the zip central directory lies outside the file: truncated or corrupt")
        }
        let directory: [UInt8]
        do { directory = try source.read(at: directoryOffset, count: Int(directorySize)) } catch { throw Unreadable(error.message) }
        var entries: [Entry] = []
        var position = 0
        while position + 46 <= directory.count, entries.count < min(count, limits.members) {
            guard le32(directory, position) == 0x0201_4B50 else { throw Unreadable("the zip central directory is corrupt") }
            let nameLength = Int(le16(directory, position + 28))
            let extraLength = Int(le16(directory, position + 30))
            let commentLength = Int(le16(directory, position + 32))
            guard position + 46 + nameLength <= directory.count else { throw Unreadable("the zip central directory is corrupt") }
            let name = String(decoding: directory[(position + 46)..<(position + 46 + nameLength)], as: UTF8.self)
            entries.append(Entry(
                name: name, method: le16(directory, position + 10), flags: le16(directory, position + 8),
                compressedSize: Int64(le32(directory, position + 20)), size: Int64(le32(directory, position + 24)),
                localOffset: Int64(le32(directory, position + 42))))
            position += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
        var byName: [String: Int] = [:]
        for (index, entry) in entries.enumerated() where byName[entry.name] == nil { byName[entry.name] = index }
        self.byName = byName
    }

    func entry(_ name: String) -> Entry? { byName[name].map { entries[$0] } }

    /// The first `limit` bytes of a member (all of it when smaller) and whether that is all of it.
    func read(_ entry: Entry, limit: Int) throws(Unreadable) -> (bytes: [UInt8], complete: Bool) {
        guard !entry.encrypted else { throw Unreadable("\(entry.name) is encrypted") }
        let header: [UInt8]
        do { header = try source.read(at: entry.localOffset, count: 30) } catch { throw Unreadable(error.message) }
        guard header.count == 30, le32(header, 0) == 0x0403_4B50 else { throw Unreadable("\(entry.name): no local header where the directory says: corrupt") }
        let dataOffset = entry.localOffset + 30 + Int64(le16(header, 26)) + Int64(le16(header, 28))
        guard dataOffset + entry.compressedSize <= source.size else { throw Unreadable("\(entry.name): the member runs past the end of the archive") }
        switch entry.method {
        case 0:
            let count = Int(min(entry.compressedSize, Int64(limit)))
            do { return (try source.read(at: dataOffset, count: count), Int64(count) == entry.compressedSize) } catch { throw Unreadable(error.message) }
        case 8:
            return try Inflater.inflate(
                source, from: dataOffset, compressedSize: entry.compressedSize, gzip: false, limit: limit, maxRatio: limits.maxRatio,
                name: entry.name)
        default:
            throw Unreadable("\(entry.name): compression method \(entry.method) is not deflate or stored")
        }
    }

    /// A member's first `limit` bytes by name; nil when there is no such member.
    func read(_ name: String, limit: Int) throws(Unreadable) -> [UInt8]? {
        guard let entry = entry(name) else { return nil }
        return try read(entry, limit: limit).bytes
    }
}

@inline(__always) func le16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
    guard offset + 2 <= bytes.count, offset >= 0 else { return 0 }
    return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
}

@inline(__always) func le32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    guard offset + 4 <= bytes.count, offset >= 0 else { return 0 }
    return UInt32(le16(bytes, offset)) | UInt32(le16(bytes, offset + 2)) << 16
}
