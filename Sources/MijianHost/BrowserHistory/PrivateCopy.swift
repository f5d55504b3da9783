#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore

/// A directory of our own (mode 0700, made by `mkdtemp`) that holds copies of a user's database
/// files, removed with everything in it when the last reference goes. The user's files are read
/// through `HostRoot` (never a link out of the root) and never written, locked or opened by SQLite.
final class PrivateCopyDirectory: Sendable {
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
        defer { close(fd) }
        return try HostRoot.entries(of: fd, hostPath)
    }

    /// The entries of the directory open at `fd`, sorted by name, with their kinds: read with
    /// getdents (`getdirentries`) straight into a buffer, whose records give each entry's type, so
    /// no entry is looked at on its own (except on a file system that does not give types).
    static func entries(of fd: Int32, _ hostPath: String) throws(MijianError) -> [(name: String, kind: EntryKind)] {
        var result: [(name: String, kind: EntryKind)] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 32_768, alignment: 8)
        defer { buffer.deallocate() }
        guard let base = buffer.baseAddress else { return [] }
        var position: off_t = 0
        while true {
            let count = try Syscall.call("cannot list \(hostPath)", path: hostPath) {
                getdirentries(fd, base.assumingMemoryBound(to: CChar.self), buffer.count, &position)
            }
            if count == 0 { break }
            // Records as struct dirent (the kernel's linux_dirent64): d_reclen at 16, d_type at 18, d_name at 19.
            var offset = 0
            while offset + 19 < count {
                let length = Int(base.loadUnaligned(fromByteOffset: offset + 16, as: UInt16.self))
                guard length > 19, offset + length <= count else { break }
                let type = base.load(fromByteOffset: offset + 18, as: UInt8.self)
                let namePointer = (base + offset + 19).assumingMemoryBound(to: UInt8.self)
                let nameLength = strnlen(UnsafeRawPointer(namePointer).assumingMemoryBound(to: CChar.self), length - 19)
                offset += length
                let nameBytes = UnsafeBufferPointer(start: namePointer, count: nameLength)
                if nameLength == 1 && nameBytes[0] == UInt8(ascii: ".") { continue }
                if nameLength == 2 && nameBytes[0] == UInt8(ascii: ".") && nameBytes[1] == UInt8(ascii: ".") { continue }
                let name = String(decoding: nameBytes, as: UTF8.self)
                var kind: EntryKind
                switch Int32(type) {
                case Int32(DT_REG): kind = .file
                case Int32(DT_DIR): kind = .directory
                case Int32(DT_LNK): kind = .link
                default: kind = .other
                }
                if Int32(type) == Int32(DT_UNKNOWN) {
                    // Some file systems do not fill d_type: ask without following a link.
                    var info = stat()
                    if fstatat(fd, UnsafeRawPointer(namePointer).assumingMemoryBound(to: CChar.self), &info, AT_SYMLINK_NOFOLLOW) == 0 {
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
        }
        return result.sorted { $0.name < $1.name }
    }
}
