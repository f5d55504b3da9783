#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Writes files so a reader sees the old content or the new, never a part: temporary file in
/// the same directory, write, fsync, rename, fsync of the directory.
public enum AtomicFile {
    /// Replaces `path` with `bytes`, created with `mode` from the first byte.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(MijianError) {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        let temporary = "\(directory)/.\((path as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw MijianError(.io, "cannot create \(temporary)", path: path, errno: errno) }
        var ok = false
        defer {
            if !ok { unlink(temporary) }
        }
        var failure: MijianError?
        bytes.withUnsafeBytes { buffer in
            do throws(MijianError) { try Syscall.writeAll(fd, buffer, "cannot write \(path)", path: path) } catch { failure = error }
        }
        if let failure {
            close(fd)
            throw failure
        }
        if fsync(fd) != 0 {
            let code = errno
            close(fd)
            throw MijianError(.io, "cannot flush \(path) to disk", path: path, errno: code)
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw MijianError(.io, "cannot move the new file into place", path: path, errno: errno) }
        ok = true
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            defer { close(dirFD) }
            guard fsync(dirFD) == 0 else { throw MijianError(.io, "cannot flush directory \(directory)", path: directory, errno: errno) }
        }
    }
}
