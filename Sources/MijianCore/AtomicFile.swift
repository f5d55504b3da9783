#if canImport(Glibc)
import Glibc
#endif

/// Writes files so a reader sees the old content or the new, never a part: temporary file in
/// the same directory, write, fsync, rename, fsync of the directory.
public enum AtomicFile {
    /// Replaces `path` with `bytes`, created with `mode` from the first byte.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(MijianError) {
        let name = FilePathText.name(of: path)
        guard !["", ".", "..", "/"].contains(name), !path.hasSuffix("/") else {
            throw MijianError(.usage, "'\(path)' names a directory, not a file; give a file name such as report.json", path: path)
        }
        let directory = FilePathText.parent(of: path)
        let temporary = FilePathText.join(directory, ".\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        let fd = try Syscall.call("cannot create \(temporary)", path: path) { open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode) }
        var ok = false
        defer {
            if !ok { unlink(temporary) }
        }
        do {
            defer { close(fd) }
            var failure: MijianError?
            bytes.withUnsafeBytes { buffer in
                do throws(MijianError) { try Syscall.writeAll(fd, buffer, "cannot write \(path)", path: path) } catch { failure = error }
            }
            if let failure { throw failure }
            try Syscall.call("cannot flush \(path) to disk", path: path) { fsync(fd) }
        }
        try Syscall.call("cannot move the new file into place", path: path) { rename(temporary, path) }
        ok = true
        // A directory that cannot be opened for flushing (no read permission) leaves the rename
        // as durable as the file system makes it; a failing flush is an error.
        guard let dirFD = try? Syscall.call("cannot open directory \(directory)", path: directory, { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }) else { return }
        defer { close(dirFD) }
        try Syscall.call("cannot flush directory \(directory)", path: directory) { fsync(dirFD) }
    }
}
