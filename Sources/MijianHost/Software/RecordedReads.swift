#if canImport(Glibc)
import Glibc
#endif
import MijianCore

extension HostRoot {
    /// The first `count` bytes of a regular file (less when it is shorter): a database header is
    /// read without reading the database, a process's `comm` in one read.
    func readHead(_ hostPath: String, count: Int) throws(MijianError) -> [UInt8] {
        guard let fd = try openRegularFile(hostPath) else { return [] }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = try Syscall.call("cannot read \(hostPath)", path: hostPath) {
                buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress.map { $0 + filled }, count - filled, off_t(filled)) }
            }
            filled += got
            // A short read is the end, for a regular file and for procfs alike: no read for the 0.
            if got == 0 || filled < count { break }
        }
        return Array(buffer[0..<filled])
    }

    /// A regular file's modification time (seconds since the epoch); absence and failures throw.
    func modificationTime(_ hostPath: String) throws(MijianError) -> Int64 {
        guard let fd = try openRegularFile(hostPath) else {
            throw MijianError(.notRegularFile, "\(hostPath) is the null device: it has no date of its own", path: hostPath)
        }
        defer { close(fd) }
        var info = stat()
        _ = try Syscall.call("cannot stat \(hostPath)", path: hostPath) { fstat(fd, &info) }
        return Int64(info.st_mtim.tv_sec)
    }
}

/// Reads that record their outcome (ok with a count, missing, or the error) as a `FactSource`.
struct RecordedReads {
    let root: HostRoot
    var sources: [FactSource] = []

    init(root: HostRoot) { self.root = root }

    /// A text file, or nil when missing or unreadable (the source says which).
    mutating func text(_ path: String, limit: Int = HostRoot.defaultReadLimit) -> String? {
        do {
            let text = try root.readText(path, limit: limit)
            sources.append(FactSource(path: path, state: .ok, count: text.split(separator: "\n").count))
            return text
        } catch where error.code == .notFound {
            sources.append(FactSource(path: path, state: .missing))
        } catch {
            sources.append(FactSource(path: path, state: .error(error.description)))
        }
        return nil
    }

    /// A directory's names, or nil when missing or unreadable (the source says which).
    mutating func list(_ path: String) -> [String]? {
        root.list(path, recordingInto: &sources)
    }

    /// Records an outcome.
    mutating func record(_ path: String, _ state: FactSource.State, count: Int = 0) {
        sources.append(FactSource(path: path, state: state, count: count))
    }
}
