#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore

extension MijianError.Code {
    /// A key file is missing, unreadable, malformed or too open.
    public static let key = MijianError.Code("key")
    /// A key registry file is unreadable or inconsistent.
    public static let registry = MijianError.Code("registry")
}

/// One open file descriptor, closed when the owner goes away.
final class FileDescriptor {
    let fd: Int32
    let path: String

    /// Opens `path`; `mode` applies when the file is created.
    init(path: String, flags: Int32, mode: mode_t = 0) throws(MijianError) {
        self.path = path
        self.fd = try Syscall.call("cannot open \(path)", path: path) { open(path, flags | O_CLOEXEC, mode) }
    }

    deinit { close(fd) }

    /// The file's status.
    func status() throws(MijianError) -> stat {
        var info = stat()
        try Syscall.call("cannot stat \(path)", path: path) { fstat(fd, &info) }
        return info
    }

    /// Reads the whole file, refusing before reading when it is larger than `limit`.
    func readAll(limit: Int) throws(MijianError) -> [UInt8] {
        let info = try status()
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw MijianError(.io, "\(path) is not a regular file; give a file", path: path) }
        guard Int(info.st_size) <= limit else {
            throw MijianError(.tooLarge, "\(path) is \(info.st_size) bytes, more than the limit of \(limit)", path: path)
        }
        // The size can change under us; read at most limit + 1 bytes so growth is seen, not trusted.
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size) + 1)
        var total = 0
        while true {
            if total == bytes.count {
                guard bytes.count <= limit else {
                    throw MijianError(.tooLarge, "\(path) grew past the limit of \(limit) bytes while being read", path: path)
                }
                bytes.append(contentsOf: repeatElement(0, count: min(limit + 1 - bytes.count, 64 << 10)))
            }
            let count = bytes.count - total
            let offset = total
            let got = try Syscall.call("cannot read \(path)", path: path) { () -> Int in
                bytes.withUnsafeMutableBytes { buffer -> Int in
                    guard let base = buffer.baseAddress else { return 0 }
                    return read(fd, base + offset, count)
                }
            }
            if got == 0 { break }
            total += got
        }
        return Array(bytes[0..<total])
    }

    /// Writes every byte.
    func writeAll(_ bytes: [UInt8]) throws(MijianError) {
        var failure: MijianError?
        bytes.withUnsafeBytes { buffer in
            do throws(MijianError) { try Syscall.writeAll(fd, buffer, "cannot write \(path)", path: path) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Flushes the file to disk.
    func sync() throws(MijianError) {
        try Syscall.call("cannot flush \(path) to disk", path: path) { fsync(fd) }
    }
}

/// File helpers for keys, chain state and envelopes.
public enum EvidenceFiles {
    /// Reads a file, refusing before reading when it is larger than `limit` bytes.
    public static func read(_ path: String, limit: Int) throws(MijianError) -> [UInt8] {
        // O_NONBLOCK: a FIFO given as a file opens at once and is refused, instead of blocking.
        let file = try FileDescriptor(path: path, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY)
        return try file.readAll(limit: limit)
    }

    /// Whether something exists at `path` (a dangling link counts).
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Creates `path` (and parents, mode 0755) as a directory with `mode` when missing.
    public static func ensureDirectory(_ path: String, mode: mode_t = 0o700) throws(MijianError) {
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else { throw MijianError(.io, "\(path) exists and is not a directory", path: path) }
            return
        }
        let parent = FilePathText.parent(of: path)
        if parent != path, parent != ".", parent != "/" { try ensureDirectory(parent, mode: 0o755) }
        do {
            try Syscall.call("cannot create directory \(path)", path: path) { mkdir(path, mode) }
        } catch where error.code == .exists {
            return
        }
    }

    /// Flushes a directory so a rename or link inside it survives a crash.
    static func syncDirectory(_ path: String) throws(MijianError) {
        let directory = try FileDescriptor(path: path, flags: O_RDONLY | O_DIRECTORY)
        try directory.sync()
    }

    /// Creates `path` with `bytes` and `mode` from the first byte; never replaces an existing file.
    ///
    /// The bytes go to a temporary file opened with `mode` (so the umask can only narrow it),
    /// flushed, then hard-linked into place: `link` fails when the name exists, so a crash leaves
    /// either no file or a complete one, and an existing key is never overwritten.
    static func createExclusive(_ bytes: [UInt8], at path: String, mode: mode_t) throws(MijianError) {
        let directory = FilePathText.parent(of: path)
        let temporary = FilePathText.join(directory, ".\(FilePathText.name(of: path)).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).new")
        do {
            let file = try FileDescriptor(path: temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: mode)
            try file.writeAll(bytes)
            try file.sync()
        } catch {
            unlink(temporary)
            throw error
        }
        defer { unlink(temporary) }
        do {
            try Syscall.call("cannot create \(path)", path: path) { link(temporary, path) }
        } catch where error.code == .exists {
            throw MijianError(.exists, "\(path) already exists; refusing to overwrite it", path: path)
        }
        try syncDirectory(directory)
    }
}
