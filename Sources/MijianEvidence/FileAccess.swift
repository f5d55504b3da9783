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

    /// Opens `name` inside `directory` (never a path through it) with O_NOFOLLOW added: a
    /// symbolic link in the directory is refused (ELOOP), never followed.
    init(in directory: DirectoryHandle, _ name: String, flags: Int32, mode: mode_t = 0) throws(MijianError) {
        let path = directory.path(of: name)
        self.path = path
        let dirFD = directory.fd
        do {
            self.fd = try Syscall.call("cannot open \(path)", path: path) { openat(dirFD, name, flags | O_NOFOLLOW | O_CLOEXEC, mode) }
        } catch where error.errno == ELOOP {
            throw MijianError(.permission, "\(path) is a symbolic link; files in \(directory.path) are never opened through a link", path: path, errno: ELOOP)
        }
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

/// A directory held open by descriptor. Files inside it are opened, written, renamed and removed
/// relative to that descriptor with O_NOFOLLOW, never through a path string: a link planted in
/// the directory is not followed, and a directory renamed or replaced after it was opened does
/// not redirect anything.
public final class DirectoryHandle: Sendable {
    /// The descriptor (read-only, O_DIRECTORY).
    public let fd: Int32
    /// The path it was opened by, for messages.
    public let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// O_PATH (Linux; the C library shows it only under _GNU_SOURCE): a descriptor that names a
    /// directory for `openat` and `fstat` without needing read permission on it.
    private static let pathOnly: Int32 = 0o10000000

    /// Opens `path` as a directory, following links (a drop directory may be a link to a mount point).
    public static func open(_ path: String) throws(MijianError) -> DirectoryHandle {
        let fd = try Syscall.call("cannot open the directory \(path)", path: path) { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        return DirectoryHandle(fd: fd, path: path)
    }

    /// Opens `path` only when nobody but the effective user (or root) can change what it holds:
    /// it must be owned by the effective uid and writable by no group or other user, and every
    /// directory above it must be owned by root or the effective uid and writable by nobody else,
    /// unless it is sticky (in a sticky directory such as /tmp, others cannot rename or remove
    /// what they do not own, so they cannot swap the directory below it). No component may be a
    /// symbolic link. `what` names the directory in errors ("the spool").
    public static func openPrivate(_ path: String, what: String) throws(MijianError) -> DirectoryHandle {
        let absolute = path.hasPrefix("/") ? path : FilePathText.join(FileManager.default.currentDirectoryPath, path)
        let components = absolute.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
        if components.contains("..") {
            throw MijianError(.usage, "\(what) \(path) contains \"..\"; give the directory's real path", path: path)
        }
        let me = geteuid()
        var current = try Syscall.call("cannot open /", path: "/") {
            Glibc.open("/", (components.isEmpty ? O_RDONLY : pathOnly) | O_DIRECTORY | O_CLOEXEC)
        }
        var walked = "/"
        var index = 0
        while true {
            let last = index == components.count
            do {
                try check(current, walked, last: last, below: absolute, what: what, euid: me)
            } catch {
                close(current)
                throw error
            }
            if last { return DirectoryHandle(fd: current, path: path) }
            let name = components[index]
            let next = FilePathText.join(walked, name)
            let flags = (index == components.count - 1 ? O_RDONLY : pathOnly) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
            let parent = current
            defer { close(parent) }
            do {
                current = try Syscall.call("cannot open \(next)", path: next) { openat(parent, name, flags) }
            } catch where error.errno == ELOOP || error.errno == ENOTDIR {
                var info = stat()
                if fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
                    throw MijianError(
                        .permission, "\(next) is a symbolic link; give \(what) by its real path (readlink -f \(absolute))", path: next, errno: ELOOP)
                }
                throw MijianError(.io, "\(next) is not a directory; \(what) \(absolute) cannot be below it", path: next, errno: error.errno)
            }
            walked = next
            index += 1
        }
    }

    private static func check(_ fd: Int32, _ path: String, last: Bool, below target: String, what: String, euid: uid_t) throws(MijianError) {
        var info = stat()
        try Syscall.call("cannot stat \(path)", path: path) { fstat(fd, &info) }
        let mode = String(info.st_mode & 0o7777, radix: 8)
        if last {
            guard info.st_uid == euid else {
                throw MijianError(
                    .permission,
                    "\(what) \(path) is owned by uid \(info.st_uid), not by the service's user (uid \(euid)): whoever owns it can plant links and files the service would read as its own; run `chown \(euid) \(path)`",
                    path: path)
            }
            guard info.st_mode & 0o022 == 0 else {
                throw MijianError(
                    .permission,
                    "\(what) \(path) is writable by group or others (mode \(mode)): they could plant links and files the service would read as its own; run `chmod 700 \(path)`",
                    path: path)
            }
            return
        }
        guard info.st_uid == 0 || info.st_uid == euid else {
            throw MijianError(
                .permission, "\(path), above \(what) \(target), is owned by uid \(info.st_uid), not by root or the service's user: its owner could swap \(target)",
                path: path)
        }
        guard info.st_mode & 0o022 == 0 || info.st_mode & S_ISVTX != 0 else {
            throw MijianError(
                .permission,
                "\(path), above \(what) \(target), is writable by group or others without the sticky bit (mode \(mode)): they could swap \(target); run `chmod go-w \(path)`",
                path: path)
        }
    }

    /// The path of `name` inside, for messages.
    public func path(of name: String) -> String { FilePathText.join(path, name) }

    /// The names inside (without `.` and `..`), in directory order.
    public func names() throws(MijianError) -> [String] {
        let path = self.path
        let copy = try Syscall.call("cannot list \(path)", path: path) { dup(fd) }
        guard let dir = fdopendir(copy) else {
            let code = errno
            close(copy)
            throw MijianError(.io, "cannot list \(path)", path: path, errno: code)
        }
        defer { closedir(dir) }
        // A duplicate shares the file offset with the original: start from the top every time.
        rewinddir(dir)
        var out: [String] = []
        while let item = readdir(dir) {
            let name = withUnsafePointer(to: item.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name != ".", name != ".." { out.append(name) }
        }
        return out
    }

    /// What `name` is, without following a link; nil when it is not there.
    public func status(of name: String) -> stat? {
        var info = stat()
        return fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 ? info : nil
    }

    /// Reads the regular file `name`, never through a link: the size is checked on the open
    /// descriptor before a byte is read, and at most `limit` + 1 bytes are ever read.
    public func read(_ name: String, limit: Int) throws(MijianError) -> [UInt8] {
        // O_NONBLOCK: a FIFO opens at once and is refused as not a regular file, instead of blocking.
        try FileDescriptor(in: self, name, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY).readAll(limit: limit)
    }

    /// Replaces `name` with `bytes`, mode exactly `mode`: written to a new temporary file
    /// (O_CREAT | O_EXCL | O_NOFOLLOW, so nothing already there is opened), flushed, then renamed
    /// into place, which replaces a link of that name instead of writing through it.
    public func write(_ bytes: [UInt8], to name: String, mode: mode_t) throws(MijianError) {
        let temporary = ".\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let target = path(of: name)
        var placed = false
        defer { if !placed { unlinkat(fd, temporary, 0) } }
        do {
            let file = try FileDescriptor(in: self, temporary, flags: O_WRONLY | O_CREAT | O_EXCL, mode: mode)
            // The umask may have narrowed the mode; the file gets exactly the mode asked for.
            try Syscall.call("cannot set the mode of \(target)", path: target) { fchmod(file.fd, mode) }
            try file.writeAll(bytes)
            try file.sync()
        }
        let dirFD = fd
        try Syscall.call("cannot move the new file into place", path: target) { renameat(dirFD, temporary, dirFD, name) }
        placed = true
        try sync()
    }

    /// Removes `name` (a file or a link, never what a link points at) durably; absent is no error.
    public func remove(_ name: String) throws(MijianError) {
        let target = path(of: name)
        let dirFD = fd
        do {
            try Syscall.call("cannot remove \(target)", path: target) { unlinkat(dirFD, name, 0) }
        } catch where error.code == .notFound {
            return
        }
        // A failed flush only weakens the durability of the removal, which a later sweep repeats.
        try? sync()
    }

    /// Moves `name` (whatever it is; a link moves as a link) into the subdirectory `subdirectory`
    /// (created mode 0700 when missing, never through a link), under a new name when that one is
    /// taken there; returns its new path.
    @discardableResult
    public func moveAside(_ name: String, into subdirectory: String) throws(MijianError) -> String {
        let dirFD = fd
        let place = path(of: subdirectory)
        do {
            try Syscall.call("cannot create \(place)", path: place) { mkdirat(dirFD, subdirectory, 0o700) }
        } catch where error.code == .exists {}
        let aside = try FileDescriptor(in: self, subdirectory, flags: O_RDONLY | O_DIRECTORY)
        let info = try aside.status()
        guard info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
            throw MijianError(.permission, "\(place) is not the service's own (uid \(info.st_uid), mode \(String(info.st_mode & 0o7777, radix: 8))); nothing is moved into it", path: place)
        }
        var target = name
        var other = stat()
        if fstatat(aside.fd, target, &other, AT_SYMLINK_NOFOLLOW) == 0 {
            target = "\(name).\(Int64(Date().timeIntervalSince1970)).\(UInt32.random(in: 0...UInt32.max))"
        }
        let moved = FilePathText.join(place, target)
        try Syscall.call("cannot move \(path(of: name)) to \(moved)", path: path(of: name)) { renameat(dirFD, name, aside.fd, target) }
        try? aside.sync()
        try? sync()
        return moved
    }

    /// Flushes the directory so a rename or removal inside it survives a crash.
    public func sync() throws(MijianError) {
        let path = self.path
        let dirFD = fd
        try Syscall.call("cannot flush \(path)", path: path) { fsync(dirFD) }
    }
}
