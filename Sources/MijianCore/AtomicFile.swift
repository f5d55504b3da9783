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

    /// Writes the file a user named (`--output FILE`). A new file, or a regular file, is replaced
    /// atomically (`write`); through a symbolic link it is the link's target that is replaced, and
    /// the link stays. A FIFO or a character device (`/dev/null`, `/dev/stdout`, a terminal, a
    /// shell's `>(…)`) is written in place and never replaced by a file — a report written as root
    /// to `/dev/null` must not leave a regular file there for every other program. A FIFO that no
    /// process reads is an error, not a wait. A directory, a block device and a socket are refused.
    public static func writeOutput(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(MijianError) {
        var info = stat()
        guard !path.isEmpty, stat(path, &info) == 0 else {
            // Nothing there yet (or nothing `stat` can see): the atomic write says what is wrong.
            return try write(bytes, to: path, mode: mode)
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            var link = stat()
            if lstat(path, &link) == 0, link.st_mode & S_IFMT == S_IFLNK, let resolved = realpath(path, nil) {
                let target = String(cString: resolved)
                free(resolved)
                return try write(bytes, to: target, mode: mode)
            }
            return try write(bytes, to: path, mode: mode)
        case S_IFCHR, S_IFIFO:
            let fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
            guard fd >= 0 else {
                let code = errno
                if code == ENXIO {
                    throw MijianError(.io, "no process is reading the FIFO \(path); start its reader first, or give a file", path: path, errno: code)
                }
                throw MijianError(.io, "cannot open \(path) for writing", path: path, errno: code)
            }
            defer { close(fd) }
            // Blocking again: a reader that is slower than us is waited for, byte by byte.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            var failure: MijianError?
            bytes.withUnsafeBytes { buffer in
                do throws(MijianError) { try Syscall.writeAll(fd, buffer, "cannot write \(path)", path: path) } catch { failure = error }
            }
            if let failure { throw failure }
        case S_IFDIR:
            throw MijianError(.usage, "'\(path)' is a directory, not a file; give a file name such as report.json", path: path)
        case S_IFBLK:
            throw MijianError(.usage, "'\(path)' is a block device: a report is never written over a disk; give a file", path: path)
        default:
            throw MijianError(.usage, "'\(path)' is a socket or another special file, not a file to write a report to", path: path)
        }
    }
}
