#if canImport(Glibc)
import Glibc
#endif
import MijianCore

/// Random access to a file's bytes or to an archive member held in memory: readers take only the
/// ranges they need (a zip's central directory, one member, a header) and never load a large
/// file whole.
public protocol ByteSource: Sendable {
    /// Size in bytes.
    var size: Int64 { get }
    /// Up to `count` bytes at `offset` (fewer at the end).
    func read(at offset: Int64, count: Int) throws(MijianError) -> [UInt8]
    /// Bytes read from the disk so far (0 for memory).
    var bytesRead: Int64 { get }
}

extension ByteSource {
    /// The first `count` bytes.
    public func head(_ count: Int) throws(MijianError) -> [UInt8] { try read(at: 0, count: count) }
}

/// Bytes in memory: an archive member, a test's document.
public struct MemorySource: ByteSource {
    let bytes: [UInt8]

    /// Wraps bytes.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var size: Int64 { Int64(bytes.count) }
    public var bytesRead: Int64 { 0 }

    public func read(at offset: Int64, count: Int) throws(MijianError) -> [UInt8] {
        guard offset >= 0, offset <= Int64(bytes.count), count >= 0 else { return [] }
        let start = Int(offset)
        return Array(bytes[start..<min(bytes.count, start + count)])
    }
}

/// An open regular file, read with pread(2). Owns its descriptor.
public final class FileSource: ByteSource, @unchecked Sendable {
    // One scan thread owns a FileSource; the counter is only touched by it.
    let fd: Int32
    /// The path for messages.
    public let path: String
    public let size: Int64
    private(set) public var bytesRead: Int64 = 0

    /// Takes ownership of `fd`, an open regular file of `size` bytes.
    init(fd: Int32, path: String, size: Int64) {
        self.fd = fd
        self.path = path
        self.size = size
    }

    deinit { close(fd) }

    /// Files up to this size are read whole by their first read, in one pread, and every later
    /// read (the format check's head, a reader's parts, the index's content hash) is served
    /// from memory: a small document costs one read call, not one a part.
    static let wholeBytes = 64 << 10

    /// A small file's bytes (all of them), or the bytes of the last read at offset 0 of a larger
    /// one: the format check reads the head, then a reader reads it again.
    private var head: [UInt8] = []

    /// The whole content when the file was read whole (a small file), else nil.
    var whole: [UInt8]? { Int64(head.count) == size && size > 0 ? head : nil }

    public func read(at offset: Int64, count: Int) throws(MijianError) -> [UInt8] {
        guard count > 0, offset < size else { return [] }
        if head.isEmpty, size <= Int64(Self.wholeBytes) {
            head = try readFile(at: 0, count: Int(size))
        }
        if offset + Int64(count) <= Int64(head.count) || (offset < Int64(head.count) && Int64(head.count) == size) {
            let start = Int(offset)
            return Array(head[start..<min(head.count, start + count)])
        }
        let buffer = try readFile(at: offset, count: count)
        if offset == 0, buffer.count > head.count, buffer.count <= 1 << 16 { head = buffer }
        return buffer
    }

    /// Up to `count` bytes at `offset` from the file (fewer at its end).
    private func readFile(at offset: Int64, count: Int) throws(MijianError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = try Syscall.call("cannot read \(path)", path: path) {
                buffer.withUnsafeMutableBytes { raw -> Int in
                    guard let base = raw.baseAddress else { return 0 }
                    return Glibc.pread(fd, base + filled, count - filled, off_t(offset) + off_t(filled))
                }
            }
            if got == 0 { break }
            filled += got
        }
        bytesRead += Int64(filled)
        if filled < count { buffer.removeLast(count - filled) }
        return buffer
    }
}
