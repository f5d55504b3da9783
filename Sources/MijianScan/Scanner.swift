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
        index?.prune(keeping: seen, under: options.paths.map(HostPathText.normalise))
        var notes: [String] = []
        if let note = index?.note { notes.append(note) }
        if reader.pdf.tool == nil { notes.append("pdftotext is not installed (poppler-utils): PDF files are listed as unread") }
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
            walk(fd, path: path, depth: 0)
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
    private func walk(_ fd: Int32, path: String, depth: Int) {
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
                walk(childFD, path: child, depth: depth + 1)
            case S_IFREG:
                let fileFD = retrying { openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) }
                guard fileFD >= 0 else {
                    let code = errno
                    // A file that cannot be opened is listed: never a silent skip.
                    record(FileResult(path: child, format: .other, status: .unread, size: Int64(info.st_size), reason: "cannot open: \(MijianError.strerror(code))"))
                    continue
                }
                var opened = stat()
                guard fstat(fileFD, &opened) == 0, opened.st_mode & S_IFMT == S_IFREG, opened.st_ino == info.st_ino else {
                    close(fileFD)
                    errors.append(MarkingFacts.PathError(path: child, reason: "changed while it was opened"))
                    continue
                }
                scanFile(fileFD, path: child, info: opened)
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

    /// Reads one regular file (taking ownership of `fd`) unless the index knows it unchanged.
    private func scanFile(_ fd: Int32, path: String, info: stat) {
        let source = FileSource(fd: fd, path: path, size: Int64(info.st_size))
        seen.insert(path)
        let stamp = FileStamp(info)
        totals.bytesExamined += source.size
        if let known = index?.lookUp(path, stamp: stamp, source: source) {
            totals.fromIndexNotDocuments(known.isEmpty)
            for var result in known {
                result.fromIndex = true
                record(result)
            }
            return
        }
        if source.size > options.limits.fileBytes {
            // Too large to read: listed as unread when its start says it is a document.
            let head = (try? source.head(1024)) ?? []
            let document = ZipArchive.looksLike(head) || head.starts(with: CompoundFile.magic) || DocumentReader.isPDF(head)
            if document {
                let result = FileResult(path: path, format: .other, status: .unread, size: source.size, reason: "larger than the scan's \(options.limits.fileBytes)-byte limit: not read")
                record(result)
                index?.store(path, stamp: stamp, results: [result], source: source)
            } else {
                totals.notDocuments += 1
            }
            totals.bytesRead += source.bytesRead
            return
        }
        let results = read(source, path: path, depth: 0)
        for result in results { record(result) }
        index?.store(path, stamp: stamp, results: results, source: source)
        totals.bytesRead += source.bytesRead
    }

    /// The results of one file or member: its own first, then its members' (for an archive).
    func read(_ source: any ByteSource, path: String, depth: Int) -> [FileResult] {
        let name = String(path.split(separator: "!").last?.split(separator: "/").last ?? "")
        switch reader.read(source, name: name) {
        case .notDocument:
            totals.notDocuments += 1
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
                case .success(let bytes): inner += read(MemorySource(bytes), path: memberPath, depth: depth + 1)
                case .failure(let failure): inner.append(FileResult(path: memberPath, format: .other, status: .unread, size: 0, reason: failure.reason))
                }
            }
            let statuses = Set(inner.map(\.status))
            let status: FileStatus = statuses.contains(.marked) ? .marked : statuses.contains(.mentioned) ? .mentioned : statuses.contains(.unread) ? .unread : .clean
            let unread = inner.filter { $0.status == .unread }.count
            var reasons: [String] = []
            if unread > 0 { reasons.append("\(unread) of \(inner.count) members could not be read") }
            if let note { reasons.append(note) }
            let own = FileResult(path: path, format: format, status: status, size: source.size, reason: reasons.isEmpty ? nil : reasons.joined(separator: "; "))
            return [own] + inner
        }
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
