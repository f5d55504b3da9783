#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore

/// A directory of our own (mode 0700, made by `mkdtemp`) that holds copies of a user's database
/// files, removed with everything in it when the last reference goes. The user's files are read
/// through `HostRoot` (never a link out of the root) and never written, locked or opened by SQLite.
final class PrivateCopyDirectory {
    /// The directory's real path.
    let path: String

    init() throws(MijianError) {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/mijian-history-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> UnsafeMutablePointer<CChar>? in
            guard let start = buffer.baseAddress else { return nil }
            return mkdtemp(start)
        }
        guard made != nil else {
            throw MijianError(.io, "cannot make a private directory for database copies under \(base)", path: base, errno: errno)
        }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        if let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
            for name in names { unlink(path + "/" + name) }
        }
        rmdir(path)
    }

    /// Largest database file copied: a bound on time and disk, said when hit.
    static let sizeLimit: Int64 = 2 << 30

    /// Copies the host file `hostPath` to `name` in this directory with `root`, streaming (never
    /// the whole file in memory). Returns the copy's path, the source's size and modification
    /// time; nil when the source does not exist.
    func copy(_ hostPath: String, root: HostRoot, as name: String) throws(MijianError) -> (path: String, size: Int64, mtime: Date)? {
        let source: Int32
        do throws(MijianError) {
            guard let opened = try root.openRegularFile(hostPath) else {
                throw MijianError(.notRegularFile, "\(hostPath) is the null device, not a database", path: hostPath)
            }
            source = opened
        } catch where error.code == .notFound {
            return nil
        }
        defer { close(source) }
        var info = stat()
        try Syscall.call("cannot stat \(hostPath)", path: hostPath) { fstat(source, &info) }
        let size = Int64(info.st_size)
        guard size <= PrivateCopyDirectory.sizeLimit else {
            throw MijianError(.tooLarge, "\(hostPath) is \(size) bytes, more than the \(PrivateCopyDirectory.sizeLimit) copied for reading", path: hostPath)
        }
        let target = path + "/" + name
        let output = try Syscall.call("cannot create the copy \(target)", path: target) { open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) }
        defer { close(output) }
        var copied: Int64 = 0
        // The kernel copies (sendfile) without the bytes passing through us; where it cannot,
        // a buffer does.
        while true {
            let step = sendfile(output, source, nil, 1 << 30)
            if step > 0 {
                copied += Int64(step)
                guard copied <= PrivateCopyDirectory.sizeLimit else {
                    throw MijianError(.tooLarge, "\(hostPath) grew past \(PrivateCopyDirectory.sizeLimit) bytes while it was copied", path: hostPath)
                }
                continue
            }
            if step == 0 { return (target, size, PrivateCopyDirectory.modified(info)) }
            let code = errno
            if code == EINTR { continue }
            guard [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EBADF].contains(code), copied == 0 else {
                throw MijianError(.io, "cannot copy \(hostPath) to \(target)", path: hostPath, errno: code)
            }
            break
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = try Syscall.call("cannot read \(hostPath)", path: hostPath) {
                buffer.withUnsafeMutableBytes { Glibc.read(source, $0.baseAddress, $0.count) }
            }
            if count == 0 { break }
            copied += Int64(count)
            // The browser may be writing: a file that grows past the bound while copied stops here too.
            guard copied <= PrivateCopyDirectory.sizeLimit else {
                throw MijianError(.tooLarge, "\(hostPath) grew past \(PrivateCopyDirectory.sizeLimit) bytes while it was copied", path: hostPath)
            }
            var written = 0
            while written < count {
                let step = try Syscall.call("cannot write the copy \(target)", path: target) {
                    buffer.withUnsafeBytes { Glibc.write(output, $0.baseAddress.map { $0 + written }, count - written) }
                }
                written += step
            }
        }
        return (target, size, PrivateCopyDirectory.modified(info))
    }

    static func modified(_ info: stat) -> Date {
        Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
    }
}

extension HostRoot {
    /// The kind of a directory entry, from `d_type` (no extra call per entry).
    enum EntryKind { case file, directory, link, other }

    /// Names in a directory with their kinds, sorted; links are reported as links, never followed.
    func entries(_ hostPath: String) throws(MijianError) -> [(name: String, kind: EntryKind)] {
        let fd = try open(hostPath, flags: O_RDONLY | O_DIRECTORY, "cannot list \(hostPath)")
        guard let dir = fdopendir(fd) else {
            let code = errno
            close(fd)
            throw MijianError(.io, "cannot list \(hostPath)", path: hostPath, errno: code)
        }
        defer { closedir(dir) }
        var result: [(name: String, kind: EntryKind)] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            var kind: EntryKind
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_REG): kind = .file
            case Int32(DT_DIR): kind = .directory
            case Int32(DT_LNK): kind = .link
            case Int32(DT_UNKNOWN): kind = .other
            default: kind = .other
            }
            if Int32(entry.pointee.d_type) == Int32(DT_UNKNOWN) {
                // Some file systems do not fill d_type: ask without following a link.
                var info = stat()
                if fstatat(dirfd(dir), name, &info, AT_SYMLINK_NOFOLLOW) == 0 {
                    switch info.st_mode & S_IFMT {
                    case S_IFREG: kind = .file
                    case S_IFDIR: kind = .directory
                    case S_IFLNK: kind = .link
                    default: kind = .other
                    }
                }
            }
            result.append((name, kind))
        }
        return result.sorted { $0.name < $1.name }
    }

    /// The first `count` bytes of a regular file (fewer when it is shorter); nil when absent.
    func prefix(_ hostPath: String, count: Int) throws(MijianError) -> [UInt8]? {
        let fd: Int32
        do throws(MijianError) {
            guard let opened = try openRegularFile(hostPath) else { return [] }
            fd = opened
        } catch where error.code == .notFound {
            return nil
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: count)
        let read = try Syscall.call("cannot read \(hostPath)", path: hostPath) {
            buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        }
        return Array(buffer.prefix(read))
    }
}
