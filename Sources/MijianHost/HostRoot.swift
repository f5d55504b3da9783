#if canImport(Glibc)
import Glibc
#endif
import MijianCore

/// The one place probes read host files from: `/` on the live machine, or a directory that
/// stands in for one (a fixture tree, a mounted disk image).
///
/// Paths given to it are host paths such as `/sys/class/net`; it reads them under its root, and
/// resolves symbolic links (absolute ones re-rooted) without ever leaving the root.
public struct HostRoot: Sendable, Equatable {
    /// The directory standing in for `/`.
    public let path: String

    /// Largest file a probe reads whole, unless it asks for more.
    public static let defaultReadLimit = 4 << 20

    /// The live machine.
    public static let live = HostRoot(path: "/")

    /// A root at `path` (trailing slashes dropped).
    public init(path: String) {
        var trimmed = path
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed.isEmpty ? "/" : trimmed
    }

    /// Whether this is the live machine's root.
    public var isLive: Bool { path == "/" }

    /// The real file-system path for a host path.
    public func real(_ hostPath: String) -> String {
        let normalised = HostRoot.normalise(hostPath)
        return path == "/" ? normalised : path + (normalised == "/" ? "" : normalised)
    }

    /// Collapses `.`, `..` and duplicate slashes of an absolute host path; `..` never climbs above `/`.
    public static func normalise(_ hostPath: String) -> String {
        var parts: [Substring] = []
        for part in hostPath.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The whole file, at most `limit` bytes; larger files are an error, not a silent cut.
    public func readBytes(_ hostPath: String, limit: Int = HostRoot.defaultReadLimit) throws(MijianError) -> [UInt8] {
        let full = real(hostPath)
        let fd = try Syscall.call("cannot open \(hostPath)", path: hostPath) { open(full, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = try Syscall.call("cannot read \(hostPath)", path: hostPath) {
                chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            }
            if count == 0 { break }
            out.append(contentsOf: chunk[0..<count])
            if out.count > limit {
                throw MijianError(.tooLarge, "\(hostPath) is larger than \(limit) bytes", path: hostPath)
            }
        }
        return out
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
        guard let text = try? readText(hostPath, limit: 65_536) else { return nil }
        var trimmed = Substring(text)
        while let last = trimmed.last, last == "\n" || last == " " || last == "\0" { trimmed.removeLast() }
        return String(trimmed)
    }

    /// Names in a directory (without `.` and `..`), sorted.
    public func list(_ hostPath: String) throws(MijianError) -> [String] {
        let full = real(hostPath)
        guard let dir = opendir(full) else {
            let code = errno
            throw MijianError(code == ENOENT ? .notFound : (code == EACCES ? .permission : .io), "cannot list \(hostPath)", path: hostPath, errno: code)
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
        var info = stat()
        return lstat(real(hostPath), &info) == 0
    }

    /// Whether the path is a directory (following links).
    public func isDirectory(_ hostPath: String) -> Bool {
        var info = stat()
        return stat(real(hostPath), &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Modification time (seconds since the epoch) and size, following links; nil when absent.
    public func fileInfo(_ hostPath: String) -> (mtime: Int64, size: Int64, mode: UInt32, uid: UInt32)? {
        var info = stat()
        guard stat(real(hostPath), &info) == 0 else { return nil }
        return (Int64(info.st_mtim.tv_sec), Int64(info.st_size), UInt32(info.st_mode), UInt32(info.st_uid))
    }

    /// The target of a symbolic link as written, or nil when it is not one.
    public func readLink(_ hostPath: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(real(hostPath), &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The host path with every symbolic link resolved inside the root (absolute targets re-rooted);
    /// nil for a loop or a dangling link.
    public func resolve(_ hostPath: String) -> String? {
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
