#if canImport(Glibc)
import Glibc
#endif
import CMijianSystem
import MijianCore
import Synchronization

extension MijianError.Code {
    /// A path that names something other than what the read needs (a FIFO or device where a
    /// regular file is read).
    public static let notRegularFile = MijianError.Code("not-regular-file")
    /// The kernel lacks what a confined read under `--root` needs (openat2, Linux 5.6).
    public static let unsupported = MijianError.Code("unsupported")
}

/// The one place probes read host files from: `/` on the live machine, or a directory that
/// stands in for one (a fixture tree, a mounted disk image).
///
/// Paths given to it are host paths such as `/sys/class/net`. Under a root other than `/` every
/// open goes through `openat2(RESOLVE_IN_ROOT)` from one descriptor of the root, so the kernel
/// resolves symbolic links (absolute ones and `..` included) inside the root: an image cannot make
/// the audit read a file of the machine that examines it.
public struct HostRoot: Sendable, Equatable {
    /// The directory standing in for `/`.
    public let path: String
    /// The root's open directory; nil for the live machine, whose reads take the plain path.
    let directory: RootDirectory?
    /// Where every host path this root opens is noted; nil except in tests of what probes read.
    let accessLog: HostAccessLog?
    /// Paths this root refuses as the kernel refuses a mode-000 file or directory; nil except in
    /// tests of what an unreadable source does to the findings.
    let refusal: HostRefusal?
    /// Where reads that answer nil instead of throwing (attributes, links, existence) note a
    /// failure other than absence; nil unless a probe collects them (`collectingFailures`).
    let failures: HostReadFailures?

    /// Largest file a probe reads whole, unless it asks for more.
    public static let defaultReadLimit = 4 << 20

    /// The live machine.
    public static let live = HostRoot(path: "/")

    /// A root at `path` (trailing slashes dropped). A root that cannot be opened, or a kernel
    /// that cannot confine reads to it, makes every read fail; `check()` says why up front.
    public init(path: String) {
        var trimmed = path
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed.isEmpty ? "/" : trimmed
        self.directory = self.path == "/" ? nil : RootDirectory(path: self.path)
        self.accessLog = nil
        self.refusal = nil
        self.failures = nil
    }

    private init(path: String, directory: RootDirectory?, accessLog: HostAccessLog?, refusal: HostRefusal?, failures: HostReadFailures?) {
        self.path = path
        self.directory = directory
        self.accessLog = accessLog
        self.refusal = refusal
        self.failures = failures
    }

    /// This root, noting in `log` every host path it opens (to read, list or look at): how tests
    /// prove which places a probe looks at.
    public func recording(into log: HostAccessLog) -> HostRoot {
        HostRoot(path: path, directory: directory, accessLog: log, refusal: refusal, failures: failures)
    }

    /// This root with `hostPath` unreadable, as after `chmod 000` on it without the capabilities
    /// that override file modes: reading or listing it fails, and so does anything reached through
    /// it (a name inside a directory needs search permission on it), each with `errno` (EACCES
    /// unless told) from the very call that would have made it. A symbolic link is refused with
    /// the file or directory it names, as chmod changes the target; a path that does not exist (or
    /// a link that dangles) cannot be made unreadable and stays absent. How tests prove that a
    /// source that could not be read is never a pass; `refusedCalls` says how many calls failed.
    public func refusing(_ hostPath: String, errno code: Int32 = EACCES) -> HostRoot {
        let normalised = HostRoot.normalise(hostPath)
        var paths: [String] = []
        if let target = resolve(normalised) {
            paths.append(normalised)
            if target != normalised { paths.append(target) }
        }
        return HostRoot(path: path, directory: directory, accessLog: accessLog, refusal: HostRefusal(paths: paths, errno: code), failures: failures)
    }

    /// How many calls this root refused (`refusing`); 0 for every other root.
    public var refusedCalls: Int { refusal?.count.load(ordering: .relaxed) ?? 0 }

    /// Runs `body` with this root noting the failures of reads that answer nil instead of
    /// throwing (an attribute, a link, whether a path exists or is a directory): absence (ENOENT)
    /// is an answer, anything else (EACCES, EIO, ELOOP, ENOTDIR …) is not. Returns what `body`
    /// gave and one `error` source per failed path, so a probe can say which part it could not
    /// read instead of taking a nil for "absent".
    public func collectingFailures<T, E: Error>(_ body: (HostRoot) throws(E) -> T) throws(E) -> (T, [FactSource]) {
        let log = HostReadFailures()
        let scoped = HostRoot(path: path, directory: directory, accessLog: accessLog, refusal: refusal, failures: log)
        let value = try body(scoped)
        return (value, log.sources)
    }

    /// Notes `error` unless it says the path is absent.
    func noteFailure(_ hostPath: String, _ error: MijianError) {
        guard error.code != .notFound else { return }
        failures?.note(FactSource(path: HostRoot.normalise(hostPath), state: .error(error.description)))
    }

    /// Two roots are the same when they name the same directory.
    public static func == (lhs: HostRoot, rhs: HostRoot) -> Bool { lhs.path == rhs.path }

    /// Whether this is the live machine's root.
    public var isLive: Bool { path == "/" }

    /// Throws the reason reads under this root cannot work: it is not an openable directory, or
    /// the kernel has no `openat2` (Linux before 5.6), so reads could not be kept inside it.
    public func check() throws(MijianError) {
        if let failure = directory?.failure { throw failure }
    }

    /// The root-prefixed path of a host path, for messages and names only: opening it would
    /// follow links outside the root, so reads never use it.
    public func real(_ hostPath: String) -> String {
        let normalised = HostRoot.normalise(hostPath)
        return path == "/" ? normalised : path + (normalised == "/" ? "" : normalised)
    }

    /// Collapses `.`, `..` and duplicate slashes of an absolute host path; `..` never climbs above `/`.
    public static func normalise(_ hostPath: String) -> String {
        // Nearly every path a probe names is normal already: checked byte by byte, returned as it is.
        if isNormal(hostPath) { return hostPath }
        var parts: [Substring] = []
        for part in hostPath.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// Whether `normalise` would give the path back unchanged: absolute, no empty, `.` or `..`
    /// component, no trailing slash (except `/` itself).
    static func isNormal(_ hostPath: String) -> Bool {
        var path = hostPath
        return path.withUTF8 { bytes in
            guard bytes.first == UInt8(ascii: "/") else { return false }
            if bytes.count == 1 { return true }
            // The length of the component being read (after its slash), and whether it is all dots.
            var length = 0
            var dots = 0
            for byte in bytes.dropFirst() {
                if byte == UInt8(ascii: "/") {
                    if length == 0 || (dots == length && length <= 2) { return false }
                    length = 0
                    dots = 0
                    continue
                }
                length += 1
                if byte == UInt8(ascii: ".") { dots += 1 }
            }
            return length > 0 && !(dots == length && length <= 2)
        }
    }

    // MARK: opening

    /// Opens a host path with `flags` (O_CLOEXEC added): plain `open` on the live machine,
    /// `openat2` confined to the root otherwise.
    func open(_ hostPath: String, flags: Int32, _ what: @autoclosure () -> String) throws(MijianError) -> Int32 {
        let normalised = HostRoot.normalise(hostPath)
        let pathOnly = flags & mijian_o_path != 0
        accessLog?.note(normalised, content: !pathOnly)
        if let refusal, refusal.refuses(normalised, pathOnly: pathOnly) { try refusal.fail(what(), hostPath) }
        let fd: Int32
        if let directory {
            fd = try directory.open(normalised, flags: flags | O_CLOEXEC, what(), hostPath: hostPath)
        } else {
            fd = try Syscall.call(what(), path: hostPath) { Glibc.open(normalised, flags | O_CLOEXEC) }
        }
        // What a path resolved to through links is refused too: the kernel walked through it.
        if let refusal, let resolved = self.hostPath(of: fd), resolved != normalised, refusal.refuses(resolved, pathOnly: pathOnly) {
            close(fd)
            try refusal.fail(what(), hostPath)
        }
        return fd
    }

    /// Opens `name`, an entry of the directory `directoryFD` that this root opened at host path
    /// `directory`, relative to that descriptor and without following a link (O_NOFOLLOW): one
    /// name, never `.`, `..` or a path, so nothing outside the directory is reached and the root
    /// wall holds as it did for the directory. Noted and refused as `open` notes and refuses the
    /// joined path. A directory walk opens its entries so, with no path resolved again from the root.
    func openEntry(_ name: String, in directoryFD: Int32, at directory: String, flags: Int32, _ what: @autoclosure () -> String) throws(MijianError) -> Int32 {
        let path = directory == "/" ? "/" + name : directory + "/" + name
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else {
            throw MijianError(.io, "\(what()): not a directory entry's name", path: path, errno: EINVAL)
        }
        let pathOnly = flags & mijian_o_path != 0
        accessLog?.note(path, content: !pathOnly)
        if let refusal, refusal.refuses(path, pathOnly: pathOnly) { try refusal.fail(what(), path) }
        return try Syscall.call(what(), path: path) { openat(directoryFD, name, flags | O_NOFOLLOW | O_CLOEXEC) }
    }

    /// The stat of `name`, an entry of the directory `directoryFD` (see `openEntry`), without
    /// following a link and without opening it: noted and refused as a lookup by path (O_PATH).
    func statusOfEntry(_ name: String, in directoryFD: Int32, at directory: String) throws(MijianError) -> stat {
        let path = directory == "/" ? "/" + name : directory + "/" + name
        accessLog?.note(path)
        if let refusal, refusal.refuses(path, pathOnly: true) { try refusal.fail("cannot find \(path)", path) }
        var info = stat()
        try Syscall.call("cannot find \(path)", path: path) { fstatat(directoryFD, name, &info, AT_SYMLINK_NOFOLLOW) }
        return info
    }

    /// Opens a regular file for reading; nil for the null device (a link to `/dev/null` is how
    /// systemd and kmod mask a configuration file: empty, and never opened). Under a root the path
    /// is first opened with O_PATH and checked, so a FIFO or device node is never opened (no
    /// blocking, no driver touched); on the live machine O_NONBLOCK keeps a FIFO from blocking and
    /// fstat refuses it.
    func openRegularFile(_ hostPath: String) throws(MijianError) -> Int32? {
        let what = "cannot open \(hostPath)"
        do throws(MijianError) {
            guard directory != nil else {
                let fd = try open(hostPath, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY, what)
                do throws(MijianError) {
                    if try HostRoot.isNullDevice(fd, hostPath) {
                        close(fd)
                        return nil
                    }
                } catch {
                    close(fd)
                    throw error
                }
                return fd
            }
            let pathFD = try open(hostPath, flags: mijian_o_path, what)
            defer { close(pathFD) }
            accessLog?.note(HostRoot.normalise(hostPath), content: true)
            if let refusal, refusal.refuses(HostRoot.normalise(hostPath), pathOnly: false)
                || self.hostPath(of: pathFD).map({ refusal.refuses($0, pathOnly: false) }) == true
            {
                try refusal.fail(what, hostPath)
            }
            if try HostRoot.isNullDevice(pathFD, hostPath) { return nil }
            // Reopening through the examiner's /proc gives the very inode checked above, for reading.
            return try Syscall.call(what, path: hostPath) { Glibc.open("/proc/self/fd/\(pathFD)", O_RDONLY | O_NOCTTY | O_CLOEXEC) }
        } catch where error.code == .notFound && readLink(hostPath) == "/dev/null" {
            // An offline image has no /dev/null of its own; the link still means "masked".
            return nil
        }
    }

    /// False for a regular file, true for the null device (1:3); throws for anything else.
    static func isNullDevice(_ fd: Int32, _ hostPath: String) throws(MijianError) -> Bool {
        var info = stat()
        try Syscall.call("cannot stat \(hostPath)", path: hostPath) { fstat(fd, &info) }
        let type = info.st_mode & S_IFMT
        if type == S_IFREG { return false }
        let device = UInt64(info.st_rdev)
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff)
        let minor = (device & 0xff) | ((device >> 12) & ~0xff)
        if type == S_IFCHR, major == 1, minor == 3 { return true }
        throw MijianError(.notRegularFile, "\(hostPath) is \(HostRoot.kindName(type)), not a regular file, so it is not read", path: hostPath)
    }

    /// A person's word for a file type.
    static func kindName(_ type: mode_t) -> String {
        switch type {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        default: return "a special file"
        }
    }

    /// The host path an open descriptor names (links resolved), from /proc/self/fd; nil when
    /// /proc is not there or the file lies outside the root.
    func hostPath(of fd: Int32) -> String? {
        guard let real = HostRoot.linkText("/proc/self/fd/\(fd)") else { return nil }
        guard let directory else { return real.hasPrefix("/") ? real : nil }
        guard let prefix = directory.realPath, real.hasPrefix("/") else { return nil }
        if prefix == "/" { return real }
        if real == prefix { return "/" }
        guard real.hasPrefix(prefix + "/") else { return nil }
        return String(real.dropFirst(prefix.count))
    }

    /// An O_PATH descriptor of a host path, links followed inside the root; nil when absent or
    /// unreadable, a failure other than absence noted (`collectingFailures`).
    private func lookUp(_ hostPath: String) -> Int32? {
        do {
            return try open(hostPath, flags: mijian_o_path, "cannot find \(hostPath)")
        } catch {
            noteFailure(hostPath, error)
            return nil
        }
    }

    /// The real path (on this machine) of a regular file resolved inside the root, for a tool that
    /// opens files itself; nil when absent, not a regular file, or outside the root.
    public func realPathOfRegularFile(_ hostPath: String) -> String? {
        guard let fd = lookUp(hostPath) else { return nil }
        defer { close(fd) }
        do {
            guard try !HostRoot.isNullDevice(fd, hostPath) else { return nil }
        } catch {
            noteFailure(hostPath, error)
            return nil
        }
        guard let inRoot = self.hostPath(of: fd) else { return nil }
        accessLog?.note(HostRoot.normalise(hostPath), content: true)
        // The tool that opens it would be refused what this root refuses.
        if let refusal, refusal.refuses(inRoot, pathOnly: false) || refusal.refuses(HostRoot.normalise(hostPath), pathOnly: false) {
            do { try refusal.fail("cannot open \(hostPath)", hostPath) } catch { noteFailure(hostPath, error) }
            return nil
        }
        guard let prefix = directory?.realPath, prefix != "/" else { return inRoot }
        return prefix + (inRoot == "/" ? "" : inRoot)
    }

    /// readlink(2) of a real path, or nil.
    static func linkText(_ realPath: String, relativeTo dirFD: Int32? = nil) -> String? {
        try? checkedLinkText(realPath, relativeTo: dirFD)
    }

    /// readlink(2) of a real path; EINVAL (not a link) and the other failures are thrown.
    static func checkedLinkText(_ realPath: String, relativeTo dirFD: Int32? = nil) throws(MijianError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = try Syscall.call("cannot read link \(realPath)", path: realPath) {
            buffer.withUnsafeMutableBufferPointer { buffer -> Int in
                guard let base = buffer.baseAddress else { return -1 }
                if let dirFD { return readlinkat(dirFD, realPath, base, buffer.count - 1) }
                return readlink(realPath, base, buffer.count - 1)
            }
        }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: reading

    /// The whole file, at most `limit` bytes; larger files are an error, not a silent cut.
    public func readBytes(_ hostPath: String, limit: Int = HostRoot.defaultReadLimit) throws(MijianError) -> [UInt8] {
        try read(hostPath, limit: limit, naming: false).bytes
    }

    /// The whole file (at most `limit` bytes) and the host path it was read from once every link
    /// was resolved inside the root: what evidence names.
    public func readResolved(_ hostPath: String, limit: Int = HostRoot.defaultReadLimit) throws(MijianError) -> (bytes: [UInt8], resolvedPath: String) {
        let result = try read(hostPath, limit: limit, naming: true)
        return (result.bytes, result.resolvedPath ?? HostRoot.normalise(hostPath))
    }

    /// The file's text and resolved host path, or nil when it does not exist; other failures are errors.
    public func readTextResolvedIfPresent(_ hostPath: String, limit: Int = HostRoot.defaultReadLimit) throws(MijianError) -> (text: String, resolvedPath: String)? {
        do {
            let result = try readResolved(hostPath, limit: limit)
            return (String(decoding: result.bytes, as: UTF8.self), result.resolvedPath)
        } catch where error.code == .notFound {
            return nil
        }
    }

    /// A procfs table of the kernel's (`/proc/net/tcp` and the like) as text, or nil when absent.
    ///
    /// These files are seq_files: the kernel fills each read(2) with whole lines until the table
    /// ends or its buffer (at least a page) cannot take the next line. A read that comes back with
    /// room to spare for a line of `maxLine` bytes has therefore reached the end, and the read that
    /// would return 0 is not made: for the TCP tables it is not free, as the kernel walks its
    /// whole established-connection hash again to find the end (about 3 ms per table on a machine
    /// with 23 GB, where the hash has hundreds of thousands of buckets). A file under a root is a
    /// regular file, for which a short read is the end too.
    public func readKernelTableIfPresent(_ hostPath: String, maxLine: Int = 512, limit: Int = HostRoot.defaultReadLimit) throws(MijianError) -> String? {
        do {
            let short = HostRoot.pageSize - maxLine
            return String(decoding: try read(hostPath, limit: limit, naming: false, endsAtReadOf: short > 0 ? short : nil).bytes, as: UTF8.self)
        } catch where error.code == .notFound {
            return nil
        }
    }

    /// The memory page size: the least a seq_file fills before it stops short of the end.
    static let pageSize = max(4096, sysconf(Int32(_SC_PAGESIZE)))

    /// Reads the whole file; with `endsAtReadOf`, a read of at most that many bytes (but more than
    /// none) is taken as the last one.
    private func read(_ hostPath: String, limit: Int, naming: Bool, endsAtReadOf short: Int? = nil) throws(MijianError) -> (bytes: [UInt8], resolvedPath: String?) {
        guard let fd = try openRegularFile(hostPath) else { return ([], naming ? "/dev/null" : nil) }
        defer { close(fd) }
        // Read straight into the result: sized to the file when it says its size (a byte more, to
        // see the end), grown by doubling when it does not (procfs and sysfs say 0 or a page),
        // each read asking at most 64 KiB of such a file, as the kernel's tables are read.
        var info = stat()
        let size = fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG ? Int(info.st_size) : 0
        let sized = size > 0
        // A file that does not say its size is asked 64 KiB each read, as before: a kernel table
        // fills what is asked with whole lines, and a read that leaves room is its end.
        let step = 65_536
        var out = [UInt8](repeating: 0, count: min(sized ? size + 1 : step, limit + 1))
        var filled = 0
        while true {
            let wanted = sized ? 1 : step
            if out.count - filled < wanted, out.count <= limit { out += repeatElement(0, count: min(max(out.count, wanted), limit + 1 - out.count)) }
            let room = sized ? out.count - filled : min(out.count - filled, step)
            let start = filled
            let count = try Syscall.call("cannot read \(hostPath)", path: hostPath) {
                out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress.map { $0 + start }, room) }
            }
            if count == 0 { break }
            filled += count
            if filled > limit {
                throw MijianError(.tooLarge, "\(hostPath) is larger than \(limit) bytes", path: hostPath)
            }
            if let short, count <= short { break }
        }
        out.removeSubrange(filled...)
        return (out, naming ? self.hostPath(of: fd) : nil)
    }

    /// The file as text (invalid UTF-8 repaired), or an error.
    public func readText(_ hostPath: String, limit: Int = HostRoot.defaultReadLimit) throws(MijianError) -> String {
        String(decoding: try readBytes(hostPath, limit: limit), as: UTF8.self)
    }

    /// The file as text, or nil when it does not exist; other failures are errors.
    public func readTextIfPresent(_ hostPath: String, limit: Int = HostRoot.defaultReadLimit) throws(MijianError) -> String? {
        do {
            return try readText(hostPath, limit: limit)
        } catch where error.code == .notFound {
            return nil
        }
    }

    /// A sysfs attribute: the file's text without its trailing newline, or nil when absent or unreadable.
    public func attribute(_ hostPath: String) -> String? {
        guard let text = attributeText(hostPath) else { return nil }
        var trimmed = Substring(text)
        while let last = trimmed.last, last == "\n" || last == " " || last == "\0" { trimmed.removeLast() }
        return String(trimmed)
    }

    /// A sysfs string attribute exactly as the kernel gives it, less the one newline it appends
    /// (`sprintf("%s\n")`); nil when unreadable. Spaces are kept: a serial number is compared byte for byte.
    public func kernelString(_ hostPath: String) -> String? {
        guard let text = attributeText(hostPath) else { return nil }
        // By bytes: "\r\n" is one Character, and its "\r" belongs to the value.
        return text.utf8.last == 0x0A ? String(decoding: text.utf8.dropLast(), as: UTF8.self) : text
    }

    /// A sysfs attribute's text as read; a failure is noted and gives nil.
    private func attributeText(_ hostPath: String) -> String? {
        do {
            return try readText(hostPath, limit: 65_536)
        } catch {
            noteFailure(hostPath, error)
            return nil
        }
    }

    /// Names in a directory (without `.` and `..`), sorted.
    public func list(_ hostPath: String) throws(MijianError) -> [String] {
        let fd = try open(hostPath, flags: O_RDONLY | O_DIRECTORY, "cannot list \(hostPath)")
        guard let dir = fdopendir(fd) else {
            let code = errno
            close(fd)
            throw MijianError(.io, "cannot list \(hostPath)", path: hostPath, errno: code)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            names.append(name)
        }
        return names.sorted()
    }

    /// Names in a directory, or an empty list when it does not exist; other failures are errors.
    public func listIfPresent(_ hostPath: String) throws(MijianError) -> [String] {
        do {
            return try list(hostPath)
        } catch where error.code == .notFound {
            return []
        }
    }

    /// Whether anything (file, directory, link) exists at the path, without following a final link.
    public func exists(_ hostPath: String) -> Bool {
        do {
            close(try open(hostPath, flags: mijian_o_path | O_NOFOLLOW, "cannot find \(hostPath)"))
            return true
        } catch {
            noteFailure(hostPath, error)
            return false
        }
    }

    /// The stat of a path, following links inside the root; nil when absent or unreadable.
    private func status(_ hostPath: String) -> stat? {
        do {
            return try checkedStatus(hostPath)
        } catch {
            noteFailure(hostPath, error)
            return nil
        }
    }

    /// The stat of a path, following links inside the root, or the failure.
    private func checkedStatus(_ hostPath: String) throws(MijianError) -> stat {
        var info = stat()
        if directory == nil, accessLog == nil, refusal == nil {
            // The live machine, not recorded nor refusing: one stat(2) does what open and fstat do.
            let normalised = HostRoot.normalise(hostPath)
            try Syscall.call("cannot find \(hostPath)", path: hostPath) { stat(normalised, &info) }
            return info
        }
        let fd = try open(hostPath, flags: mijian_o_path, "cannot find \(hostPath)")
        defer { close(fd) }
        try Syscall.call("cannot stat \(hostPath)", path: hostPath) { fstat(fd, &info) }
        return info
    }

    /// Whether a directory is at the path (following links); false only when nothing is there.
    /// Something else in its place (a regular file where sysfs or a configuration tree has a
    /// directory) is an error with ENOTDIR, not an absence: nothing in it was ever looked at, so
    /// a probe that skipped it would vouch for what it never saw. Other failures are thrown too.
    public func directoryIfPresent(_ hostPath: String) throws(MijianError) -> Bool {
        let info: stat
        do {
            info = try checkedStatus(hostPath)
        } catch where error.code == .notFound {
            return false
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw MijianError(
                .notRegularFile, "\(hostPath) is \(HostRoot.kindName(info.st_mode & S_IFMT)) where a directory is read",
                path: hostPath, errno: ENOTDIR)
        }
        return true
    }

    /// `directoryIfPresent` that answers false on a failure too, noting it in a probe that collects
    /// failures (`collectingFailures`), so a file in a directory's place surfaces as `error`.
    public func isDirectoryExpected(_ hostPath: String) -> Bool {
        do {
            return try directoryIfPresent(hostPath)
        } catch {
            noteFailure(hostPath, error)
            return false
        }
    }

    /// Whether the path is a directory (following links).
    public func isDirectory(_ hostPath: String) -> Bool {
        guard let info = status(hostPath) else { return false }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Modification time (seconds since the epoch) and size, following links; nil when absent.
    public func fileInfo(_ hostPath: String) -> (mtime: Int64, size: Int64, mode: UInt32, uid: UInt32)? {
        guard let info = status(hostPath) else { return nil }
        return (Int64(info.st_mtim.tv_sec), Int64(info.st_size), UInt32(info.st_mode), UInt32(info.st_uid))
    }

    /// The target of a symbolic link as written, or nil when it is not one. Under a root the link's
    /// directory is opened inside the root and the link read relative to it.
    public func readLink(_ hostPath: String) -> String? {
        let normalised = HostRoot.normalise(hostPath)
        do {
            // Reading a link inside a directory needs search permission on it, as any name inside does.
            if let refusal, refusal.refuses(normalised, pathOnly: true) { try refusal.fail("cannot read link \(hostPath)", hostPath) }
            guard directory != nil else {
                accessLog?.note(normalised)
                return try HostRoot.checkedLinkText(normalised)
            }
            guard let slash = normalised.lastIndex(of: "/"), normalised != "/" else { return nil }
            let parent = slash == normalised.startIndex ? "/" : String(normalised[..<slash])
            let name = String(normalised[normalised.index(after: slash)...])
            let parentFD = try open(parent, flags: mijian_o_path | O_DIRECTORY, "cannot open \(parent)")
            defer { close(parentFD) }
            accessLog?.note(normalised)
            return try HostRoot.checkedLinkText(name, relativeTo: parentFD)
        } catch where error.errno == EINVAL {
            // Not a symbolic link: an answer, not a failure.
            return nil
        } catch {
            noteFailure(hostPath, error)
            return nil
        }
    }

    /// The host path with every symbolic link resolved inside the root (absolute targets re-rooted);
    /// nil for a loop or a dangling link. The kernel resolves it; the walk below is only used when
    /// /proc cannot name the result.
    public func resolve(_ hostPath: String) -> String? {
        guard let fd = lookUp(hostPath) else { return nil }
        defer { close(fd) }
        return self.hostPath(of: fd) ?? walk(hostPath)
    }

    /// Resolves a path link by link with `readLink` (itself confined to the root).
    private func walk(_ hostPath: String) -> String? {
        var pending = HostRoot.normalise(hostPath).split(separator: "/").map(String.init)
        var resolved: [String] = []
        var hops = 0
        while !pending.isEmpty {
            let part = pending.removeFirst()
            if part == "." { continue }
            if part == ".." { _ = resolved.popLast(); continue }
            let candidate = "/" + (resolved + [part]).joined(separator: "/")
            if let target = readLink(candidate) {
                hops += 1
                if hops > 40 { return nil }
                let targetParts = target.split(separator: "/").map(String.init)
                if target.hasPrefix("/") { resolved = [] }
                pending = targetParts + pending
            } else {
                guard exists(candidate) else { return nil }
                resolved.append(part)
            }
        }
        return "/" + resolved.joined(separator: "/")
    }
}

/// The open directory of a root other than `/`: one O_PATH descriptor every confined read starts
/// from, and the root's real path (to name resolved files). It closes the descriptor when the
/// last `HostRoot` copy holding it goes.
final class RootDirectory: Sendable {
    /// The O_PATH descriptor of the root; -1 when it could not be opened.
    let fd: Int32
    /// The root's canonical real path (links resolved), as /proc names files under it.
    let realPath: String?
    /// Why reads under this root cannot work, if they cannot.
    let failure: MijianError?

    init(path: String) {
        let opened: Int32
        do {
            opened = try Syscall.call("cannot open the root directory \(path)", path: path) { Glibc.open(path, mijian_o_path | O_DIRECTORY | O_CLOEXEC) }
        } catch {
            fd = -1
            realPath = nil
            failure = error
            return
        }
        fd = opened
        realPath = HostRoot.linkText("/proc/self/fd/\(opened)")
        // One confined open up front tells whether the kernel has openat2 at all.
        do {
            let probe = try Syscall.call("openat2", path: path) { mijian_openat2(opened, ".", UInt64(mijian_o_path | O_CLOEXEC), RootDirectory.resolveFlags) }
            close(probe)
            failure = nil
        } catch {
            let reason = error.errno == ENOSYS
                ? "this kernel has no openat2 (Linux 5.6 or later is needed for --root)"
                : "openat2 with RESOLVE_IN_ROOT is refused here (a seccomp filter?)"
            failure = MijianError(.unsupported, "reads under \(path) cannot be kept inside it: \(reason)", path: path, errno: error.errno)
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Links (absolute ones and `..` included) resolve inside the root; /proc's magic links do not resolve.
    static let resolveFlags = UInt64(RESOLVE_IN_ROOT) | UInt64(RESOLVE_NO_MAGICLINKS)

    /// Opens a normalised host path under the root with openat2, retrying EINTR and EAGAIN.
    func open(_ normalised: String, flags: Int32, _ what: @autoclosure () -> String, hostPath: String) throws(MijianError) -> Int32 {
        if let failure { throw failure }
        let relative = normalised == "/" ? "." : String(normalised.dropFirst())
        var attempts = 0
        while true {
            do {
                return try Syscall.call(what(), path: hostPath) { mijian_openat2(fd, relative, UInt64(bitPattern: Int64(flags)), RootDirectory.resolveFlags) }
            } catch where error.errno == EAGAIN && attempts < 8 {
                // openat2 with RESOLVE_IN_ROOT returns EAGAIN when a rename raced the walk.
                attempts += 1
            }
        }
    }
}

/// The host paths a recording `HostRoot` opened, in order.
public final class HostAccessLog: Sendable {
    private let entries = Mutex<(all: [String], content: Set<String>)>(([], []))

    /// An empty log.
    public init() {}

    /// Notes a path; `content` when what is in it was read or listed (not only looked up with
    /// O_PATH, which needs no permission on the path itself).
    func note(_ path: String, content: Bool = false) {
        entries.withLock { entries in
            entries.all.append(path)
            if content { entries.content.insert(path) }
        }
    }

    /// Every path noted so far, normalised, in the order they were opened.
    public var paths: [String] { entries.withLock { $0.all } }

    /// The paths whose contents were read or listed (a file read, a directory listed).
    public var contentPaths: Set<String> { entries.withLock { $0.content } }
}

/// The paths a `refusing` root refuses, and with which errno.
final class HostRefusal: Sendable {
    /// Normalised host paths (the one named and, for a link, what it resolves to).
    let paths: [String]
    /// The errno every refused call fails with.
    let errno: Int32
    /// How many calls were refused.
    let count = Atomic<Int>(0)

    init(paths: [String], errno: Int32) {
        self.paths = paths
        self.errno = errno
    }

    /// Whether the kernel would refuse `path` (normalised): anything inside a refused directory,
    /// and the refused path itself unless only its name is opened (O_PATH needs no permission on it).
    func refuses(_ path: String, pathOnly: Bool) -> Bool {
        paths.contains { refused in
            (!pathOnly && path == refused) || path.hasPrefix(refused == "/" ? "/" : refused + "/") && path != refused
        }
    }

    /// Fails the way the refused system call fails: through `Syscall.call`, with errno set.
    func fail(_ what: @autoclosure () -> String, _ hostPath: String) throws(MijianError) -> Never {
        let code = errno
        count.add(1, ordering: .relaxed)
        try Syscall.call(what(), path: hostPath) { () -> Int32 in
            Glibc.errno = code
            return -1
        }
        throw MijianError(.io, what(), path: hostPath, errno: code)
    }
}

extension Array where Element == FactSource {
    /// Adds the failures (`HostRoot.collectingFailures`) that no source here names already: a
    /// failed read a record took as its own is told there once, any other is an `error` source.
    mutating func addUnclaimed(_ failures: [FactSource]) {
        let recorded = Set(map(\.path))
        self += failures.filter { !recorded.contains($0.path) }
    }
}

/// The failures a scoped `HostRoot` (`collectingFailures`) noted, one per path, in order.
public final class HostReadFailures: Sendable {
    private let entries = Mutex<[FactSource]>([])

    func note(_ source: FactSource) {
        entries.withLock { list in
            if !list.contains(where: { $0.path == source.path }) { list.append(source) }
        }
    }

    /// Every failure noted, as `error` sources.
    var sources: [FactSource] { entries.withLock { $0 } }
}
