#if canImport(Glibc)
import Glibc
#endif
import CMijianSystem
import Foundation
import MijianCore

/// What to scan and how far: the policy's `markings` scope or the paths of `mijian scan`.
public struct ScanOptions: Sendable {
    /// Host paths to scan (files or directories); `*` in a component matches names (`/home/*`, `/media/*/*`).
    public var paths: [String]
    /// Patterns of paths left out: a pattern with `/` is matched against the whole host path, one
    /// without against each name (`*.iso`, `.cache`).
    public var exclude: [String] = []
    /// How deep directories are walked below each path.
    public var maxDepth = 32
    /// Sizes, counts and time limits.
    public var limits = ScanLimits()
    /// Files read at once (each on a thread of its own, with its own PDF worker): two a core,
    /// so that while one waits for the disk the other parses, and the disk, not the cores,
    /// bounds a scan.
    public var workers = max(2, min(8, 2 * ProcessInfo.processInfo.activeProcessorCount))
    /// Whether a path that does not exist is an error (paths typed by a person) or simply absent
    /// (a policy's scope, which names places not every machine has).
    public var absentPathsAreErrors = true

    /// Options for `paths`.
    public init(paths: [String]) { self.paths = paths }
}

/// Walks the paths inside a root, reads every document where a marking can be, and scores what
/// it finds. Under a root other than `/` every path is opened from the root's descriptor with
/// openat2(RESOLVE_BENEATH): a symbolic link that leads out of the root (absolute, or `..`
/// above it) is refused. Below a path the walk follows no symbolic link and opens nothing but
/// directories and regular files (a FIFO is never opened for reading).
public final class Scanner: @unchecked Sendable {
    // One thread runs one scan; the counters are its own.
    let root: String
    let options: ScanOptions
    let reader: DocumentReader
    var index: ScanIndex?
    private var files: [FileResult] = []
    private var errors: [MarkingFacts.PathError] = []
    private var totals = ScanTotals()
    private var seen: Set<String> = []
    /// Regular files met in walks, read after the walk by the workers.
    private var pending: [Pending] = []
    /// Directory descriptors of the paths walked: pending files are opened beneath them.
    private var tops: [Int32] = []

    /// A regular file met in a walk.
    struct Pending {
        let path: String
        let top: Int
        let relative: String
        let inode: UInt64
    }

    /// A scanner under `root` (`/` for the live machine); `index` (when given) is consulted and updated.
    public init(root: String, options: ScanOptions, pdf: PDFText = PDFText(), index: ScanIndex? = nil) {
        var trimmed = root
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.root = trimmed.isEmpty ? "/" : trimmed
        self.options = options
        self.reader = DocumentReader(limits: options.limits, pdf: pdf)
        self.index = index
    }

    /// Scans every path and returns the files, the paths that could not be walked, and the totals.
    public func run() -> MarkingFacts {
        files = []
        errors = []
        totals = ScanTotals()
        let rootFD: Int32
        if root == "/" {
            rootFD = AT_FDCWD
        } else {
            rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard rootFD >= 0 else {
                errors.append(MarkingFacts.PathError(path: root, reason: "the root cannot be opened: \(MijianError.strerror(errno))"))
                return MarkingFacts(root: root, paths: options.paths, errors: errors)
            }
        }
        defer { if rootFD != AT_FDCWD { close(rootFD) } }
        for path in options.paths {
            for expanded in expand(HostPathText.normalise(path), rootFD: rootFD) { scanPath(expanded, rootFD: rootFD) }
        }
        readPending()
        for top in tops { close(top) }
        tops = []
        index?.prune(keeping: seen, under: options.paths.map(HostPathText.normalise))
        var notes: [String] = []
        if let note = index?.note { notes.append(note) }
        if let pdfReader = reader.pdf.reader {
            notes.append("PDF first pages read by \(pdfReader)")
        } else {
            notes.append("neither mijian-pdftext nor pdftotext (poppler-utils) is installed: PDF files are listed as unread")
        }
        return MarkingFacts(root: root, paths: options.paths, files: files, errors: errors, totals: totals, notes: notes)
    }

    // MARK: paths

    /// A path with `*` components expanded against the directories they name (sorted).
    private func expand(_ path: String, rootFD: Int32) -> [String] {
        guard path.contains("*") || path.contains("?") else { return [path] }
        var prefixes = ["/"]
        for component in path.split(separator: "/").map(String.init) {
            var next: [String] = []
            for prefix in prefixes {
                let joined = prefix == "/" ? "/" + component : prefix + "/" + component
                guard component.contains("*") || component.contains("?") else { next.append(joined); continue }
                guard let fd = openConfined(prefix, rootFD: rootFD, flags: O_RDONLY | O_DIRECTORY) else { continue }
                for (name, _) in listDirectory(fd) where fnmatch(component, name, FNM_PERIOD) == 0 {
                    next.append(prefix == "/" ? "/" + name : prefix + "/" + name)
                }
            }
            prefixes = next.sorted()
        }
        return prefixes
    }

    /// Opens a host path given by the user (links followed, inside the root); nil with an error noted.
    private func openConfined(_ path: String, rootFD: Int32, flags: Int32) -> Int32? {
        let fd: Int32
        // openat2 refuses O_PATH with any flag but O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC.
        let flags = flags & mijian_o_path != 0 ? flags | O_CLOEXEC : flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY
        if rootFD == AT_FDCWD {
            fd = retrying { open(path, flags) }
        } else {
            let relative = path == "/" ? "." : String(path.dropFirst())
            fd = retrying {
                mijian_openat2(rootFD, relative, UInt64(flags), UInt64(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS))
            }
        }
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT, !options.absentPathsAreErrors { return nil }
            let reason: String
            switch code {
            case EXDEV: reason = "a symbolic link on the way leads out of the root \(root): refused"
            case ENOENT: reason = "no such file or directory"
            case ENOSYS: reason = "the kernel has no openat2 (Linux 5.6), so reads cannot be kept inside the root"
            default: reason = MijianError.strerror(code)
            }
            errors.append(MarkingFacts.PathError(path: path, reason: reason))
            return nil
        }
        return fd
    }

    private func scanPath(_ path: String, rootFD: Int32) {
        guard !isExcluded(path, name: String(path.split(separator: "/").last ?? "")) else {
            totals.excluded += 1
            return
        }
        // O_PATH first: the type is checked before anything is opened for reading.
        guard let probe = openConfined(path, rootFD: rootFD, flags: mijian_o_path) else { return }
        var info = stat()
        guard fstat(probe, &info) == 0 else {
            errors.append(MarkingFacts.PathError(path: path, reason: MijianError.strerror(errno)))
            close(probe)
            return
        }
        defer { close(probe) }
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            let fd = retrying { openat(probe, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            guard fd >= 0 else {
                errors.append(MarkingFacts.PathError(path: path, reason: "the directory cannot be opened: \(MijianError.strerror(errno))"))
                return
            }
            let top = dup(fd)
            guard top >= 0 else {
                close(fd)
                errors.append(MarkingFacts.PathError(path: path, reason: "cannot keep the directory open: \(MijianError.strerror(errno))"))
                return
            }
            tops.append(top)
            walk(fd, path: path, depth: 0, top: tops.count - 1, relative: "")
        case S_IFREG:
            let fd = retrying { open("/proc/self/fd/\(probe)", O_RDONLY | O_CLOEXEC | O_NOCTTY) }
            guard fd >= 0 else {
                errors.append(MarkingFacts.PathError(path: path, reason: "cannot open: \(MijianError.strerror(errno))"))
                return
            }
            scanFile(fd, path: path, info: info)
        default:
            errors.append(MarkingFacts.PathError(path: path, reason: "\(Self.kindName(info.st_mode & S_IFMT)), not a regular file or directory: not opened"))
        }
    }

    /// Walks a directory (taking ownership of `fd`), depth first in name order.
    private func walk(_ fd: Int32, path: String, depth: Int, top: Int, relative: String) {
        let entries = listDirectory(fd)
        defer { close(fd) }
        for (name, _) in entries {
            let child = path == "/" ? "/" + name : path + "/" + name
            if isExcluded(child, name: name) {
                totals.excluded += 1
                continue
            }
            var info = stat()
            guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                errors.append(MarkingFacts.PathError(path: child, reason: MijianError.strerror(errno)))
                continue
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                guard depth + 1 <= options.maxDepth else {
                    totals.excluded += 1
                    continue
                }
                let childFD = retrying { openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                guard childFD >= 0 else {
                    errors.append(MarkingFacts.PathError(path: child, reason: "the directory cannot be opened: \(MijianError.strerror(errno))"))
                    continue
                }
                walk(childFD, path: child, depth: depth + 1, top: top, relative: relative + name + "/")
            case S_IFREG:
                pending.append(Pending(path: child, top: top, relative: relative + name, inode: UInt64(info.st_ino)))
            default:
                // Links are not followed (their targets are scanned where they lie); FIFOs,
                // sockets and devices are not documents and are never opened.
                totals.notDocuments += 1
            }
        }
    }

    private func listDirectory(_ fd: Int32) -> [(String, UInt8)] {
        let copy = dup(fd)
        guard copy >= 0, let directory = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            return []
        }
        defer { closedir(directory) }
        var entries: [(String, UInt8)] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            entries.append((name, entry.pointee.d_type))
        }
        return entries.sorted { $0.0 < $1.0 }
    }

    private func isExcluded(_ path: String, name: String) -> Bool {
        options.exclude.contains { pattern in
            pattern.contains("/") ? fnmatch(pattern, path, 0) == 0 || path.hasPrefix(pattern.hasSuffix("/") ? pattern : pattern + "/") : fnmatch(pattern, name, 0) == 0
        }
    }

    // MARK: files

    /// What reading one file gave.
    struct Outcome {
        var results: [FileResult] = []
        var notDocuments = 0
        var bytesRead: Int64 = 0
        var bytesExamined: Int64 = 0
        var error: MarkingFacts.PathError?
    }

    /// Reads one regular file given by path (taking ownership of `fd`).
    private func scanFile(_ fd: Int32, path: String, info: stat) {
        seen.insert(path)
        merge(scan(FileSource(fd: fd, path: path, size: Int64(info.st_size)), stamp: FileStamp(info)))
    }

    private func merge(_ outcome: Outcome) {
        for result in outcome.results { record(result) }
        totals.notDocuments += outcome.notDocuments
        totals.bytesRead += outcome.bytesRead
        totals.bytesExamined += outcome.bytesExamined
        if let error = outcome.error { errors.append(error) }
    }

    /// Reads the files the walks met, `options.workers` at a time, and records them in walk order.
    private func readPending() {
        let files = pending
        pending = []
        guard !files.isEmpty else { return }
        let slots = OutcomeSlots(count: files.count)
        defer { slots.release() }
        let workers = min(options.workers, files.count)
        let tops = self.tops
        // Threads of the scan's own, not a shared pool's: they take the calling thread's CPU
        // policy and I/O priority (the service's SCHED_IDLE and idle I/O class), and so do
        // the PDF workers they start.
        let priority = IdleThread.Priority.current()
        let done = DispatchGroup()
        for worker in 0..<workers {
            done.enter()
            let thread = Thread {
                priority.apply()
                var index = worker
                while index < files.count {
                    slots.set(index, self.scanPending(files[index], tops: tops))
                    index += workers
                }
                done.leave()
            }
            thread.name = "mijian-scan-read"
            thread.start()
        }
        done.wait()
        for (index, file) in files.enumerated() {
            seen.insert(file.path)
            merge(slots.get(index))
        }
    }

    /// Opens a file met in a walk beneath its walked directory, no link followed, and reads it.
    private func scanPending(_ file: Pending, tops: [Int32]) -> Outcome {
        let fd = retrying {
            mijian_openat2(
                tops[file.top], file.relative, UInt64(O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC),
                UInt64(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS))
        }
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { return Outcome(error: MarkingFacts.PathError(path: file.path, reason: "vanished while the scan ran")) }
            // A file that cannot be opened is listed: never a silent skip.
            return Outcome(results: [FileResult(path: file.path, format: .other, status: .unread, size: 0, reason: "cannot open: \(MijianError.strerror(code))")])
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, UInt64(info.st_ino) == file.inode else {
            close(fd)
            return Outcome(error: MarkingFacts.PathError(path: file.path, reason: "changed while the scan ran (another file now has its name)"))
        }
        return scan(FileSource(fd: fd, path: file.path, size: Int64(info.st_size)), stamp: FileStamp(info))
    }

    /// One regular file, unless the index knows it unchanged. Touches no state of the scanner
    /// but the index (which locks): workers run it at once.
    private func scan(_ source: FileSource, stamp: FileStamp) -> Outcome {
        let path = source.path
        var outcome = Outcome(bytesExamined: source.size)
        if let known = index?.lookUp(path, stamp: stamp, source: source) {
            outcome.notDocuments = known.isEmpty ? 1 : 0
            outcome.results = known.map { result in
                var result = result
                result.fromIndex = true
                return result
            }
            outcome.bytesRead = source.bytesRead
            return outcome
        }
        if source.size > options.limits.fileBytes {
            // Too large to read: listed as unread when its start says it is a document.
            let head = (try? source.head(1024)) ?? []
            let document = ZipArchive.looksLike(head) || head.starts(with: CompoundFile.magic) || DocumentReader.isPDF(head) || Mail.looksLikeMbox(head) || Mail.looksLikeMessage(head)
            if document {
                let result = FileResult(path: path, format: .other, status: .unread, size: source.size, reason: "larger than the scan's \(options.limits.fileBytes)-byte limit: not read")
                outcome.results = [result]
                index?.store(path, stamp: stamp, results: [result], source: source)
            } else {
                outcome.notDocuments = 1
            }
            outcome.bytesRead = source.bytesRead
            return outcome
        }
        outcome.results = read(source, path: path, depth: 0, notDocuments: &outcome.notDocuments)
        index?.store(path, stamp: stamp, results: outcome.results, source: source)
        outcome.bytesRead = source.bytesRead
        return outcome
    }

    /// The results of a document held in memory (tests).
    func read(_ source: any ByteSource, path: String, depth: Int) -> [FileResult] {
        var notDocuments = 0
        return read(source, path: path, depth: depth, notDocuments: &notDocuments)
    }

    /// The results of one file or member: its own first, then its members' (for an archive).
    func read(_ source: any ByteSource, path: String, depth: Int, notDocuments: inout Int) -> [FileResult] {
        let name = String(path.split(separator: "!").last?.split(separator: "/").last ?? "")
        switch reader.read(source, name: name) {
        case .notDocument:
            notDocuments += 1
            return []
        case .unread(let format, let reason):
            return [FileResult(path: path, format: format, status: .unread, size: source.size, reason: reason)]
        case .document(let format, let lines, let encoding, let note):
            let hits = MarkingRecogniser.hits(in: lines)
            return [FileResult(path: path, format: format, status: FileResult.status(of: hits), size: source.size, reason: note, hits: hits, encoding: encoding)]
        case .archive(let format, let members, let note):
            guard depth + 1 < options.limits.depth else {
                return [FileResult(path: path, format: format, status: .unread, size: source.size, reason: "archives nested deeper than \(options.limits.depth): not opened")]
            }
            var inner: [FileResult] = []
            for member in members {
                let memberPath = path + "!" + member.name
                switch member.bytes {
                case .success(let bytes): inner += read(MemorySource(bytes), path: memberPath, depth: depth + 1, notDocuments: &notDocuments)
                case .failure(let failure): inner.append(FileResult(path: memberPath, format: .other, status: .unread, size: 0, reason: failure.reason))
                }
            }
            let unread = inner.filter { $0.status == .unread }.count
            var reasons: [String] = []
            if unread > 0 { reasons.append("\(unread) of \(inner.count) members could not be read") }
            if let note { reasons.append(note) }
            let own = FileResult(path: path, format: format, status: Self.strongest(inner.map(\.status)), size: source.size, reason: reasons.isEmpty ? nil : reasons.joined(separator: "; "))
            return [own] + inner
        case .message(let message):
            return read(message, path: path, size: source.size, depth: depth, notDocuments: &notDocuments)
        case .mailbox:
            return readMailbox(source, path: path, depth: depth, notDocuments: &notDocuments)
        }
    }

    /// marked > mentioned > unread > clean: what a container of these is.
    static func strongest(_ statuses: [FileStatus]) -> FileStatus {
        let set = Set(statuses)
        return set.contains(.marked) ? .marked : set.contains(.mentioned) ? .mentioned : set.contains(.unread) ? .unread : .clean
    }

    /// A message: its own result (the Subject's and the body's hits, the Message-ID and Date that
    /// name it) and then its attachments', each read by its own format one level deeper.
    func read(_ message: MailMessage, path: String, size: Int64, depth: Int, notDocuments: inout Int) -> [FileResult] {
        let hits = MarkingRecogniser.hits(in: message.lines)
        var inner: [FileResult] = []
        for attachment in message.attachments {
            let memberPath = path + "!" + attachment.name
            guard depth + 1 < options.limits.depth else {
                inner.append(FileResult(path: memberPath, format: .other, status: .unread, size: 0, reason: "an attachment nested deeper than \(options.limits.depth): not opened"))
                continue
            }
            switch attachment.bytes {
            case .success(let bytes): inner += read(MemorySource(bytes), path: memberPath, depth: depth + 1, notDocuments: &notDocuments)
            case .failure(let failure): inner.append(FileResult(path: memberPath, format: .other, status: .unread, size: 0, reason: failure.reason))
            }
        }
        var reasons = [message.identity] + message.notes
        let unread = inner.filter { $0.status == .unread }.count
        if unread > 0 { reasons.append("\(unread) of \(inner.count) attachments could not be read") }
        let status = Self.strongest([FileResult.status(of: hits)] + inner.map(\.status))
        return [FileResult(path: path, format: .eml, status: status, size: size, reason: reasons.joined(separator: "; "), hits: hits, encoding: message.encoding)] + inner
    }

    /// An mbox, message by message (`spool!message N`); the messages are at the spool's own
    /// depth, their attachments one deeper.
    func readMailbox(_ source: any ByteSource, path: String, depth: Int, notDocuments: inout Int) -> [FileResult] {
        var inner: [FileResult] = []
        var count = 0
        var failure: String?
        do {
            try Mailbox(source: source, limits: options.limits).forEachMessage { index, bytes in
                count = index
                let memberPath = path + "!message \(index)"
                switch bytes {
                case .success(let bytes):
                    inner += read(Mail.message(bytes, limits: options.limits), path: memberPath, size: Int64(bytes.count), depth: depth, notDocuments: &notDocuments)
                case .failure(let failure):
                    inner.append(FileResult(path: memberPath, format: .eml, status: .unread, size: 0, reason: failure.reason))
                }
            }
        } catch {
            failure = "the spool could not be read after \(count) messages: \(error.message)"
        }
        var reasons = ["\(count) messages"]
        let unread = inner.filter { $0.status == .unread && !$0.path.dropFirst(path.count + 1).contains("!") }.count
        if unread > 0 { reasons.append("\(unread) of \(count) messages could not be read") }
        if let failure { reasons.append(failure) }
        let status = failure != nil ? Self.strongest([.unread] + inner.map(\.status)) : Self.strongest(inner.map(\.status))
        return [FileResult(path: path, format: .mbox, status: status, size: source.size, reason: reasons.joined(separator: "; "))] + inner
    }

    private func record(_ result: FileResult) {
        files.append(result)
        totals.count(result)
    }

    private func retrying(_ body: () -> Int32) -> Int32 {
        while true {
            let result = body()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    static func kindName(_ type: mode_t) -> String {
        switch type {
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "a special file"
        }
    }
}

/// One outcome per pending file, each slot written by one worker and read after all are done.
private final class OutcomeSlots: @unchecked Sendable {
    private let storage: UnsafeMutableBufferPointer<Scanner.Outcome>

    init(count: Int) {
        storage = .allocate(capacity: count)
        storage.initialize(repeating: Scanner.Outcome())
    }

    func set(_ index: Int, _ outcome: Scanner.Outcome) { storage[index] = outcome }
    func get(_ index: Int) -> Scanner.Outcome { storage[index] }

    func release() {
        storage.deinitialize()
        storage.deallocate()
    }
}

/// Host path text.
enum HostPathText {
    /// `.`, `..` and repeated slashes collapsed; relative paths taken from `/`.
    static func normalise(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}
