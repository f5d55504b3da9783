#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore

/// An inotify watch on the directory of the policy file, non-blocking: the service's readiness
/// thread waits on `descriptor` and calls `readChanges` when the kernel has told something.
/// The directory is watched, not the file: an editor's save and `dpkg`'s upgrade write a new file
/// and rename it over the old one, and a watch on the old file would see only its deletion.
/// Owns the descriptor and closes it in `deinit`.
public final class PolicyFileWatch: Sendable {
    /// What the watch saw of the file, in one read.
    public enum Change: Sendable, Equatable {
        /// Nothing about the file (another file of the directory changed).
        case none
        /// The file was written and closed, or a file was moved or linked in under its name.
        case written
        /// The file was deleted or moved away (the policy in force stays).
        case removed
        /// The directory itself went, or the kernel's queue overflowed: the file must be looked at again.
        case lost(String)
    }

    /// The inotify descriptor, for `epoll`; it never blocks.
    public let descriptor: Int32
    /// The directory watched.
    public let directory: String
    /// The file's name in it.
    public let name: String

    /// Watches the directory of `path` (made absolute against the working directory).
    public init(path: String) throws(MijianError) {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL
        let directory = absolute.deletingLastPathComponent().path
        self.directory = directory
        name = absolute.lastPathComponent
        let fd = try Syscall.call("cannot make an inotify instance") { inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)) }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
        do {
            _ = try Syscall.call("cannot watch \(directory) for changes of \(name)", path: directory) { inotify_add_watch(fd, directory, mask) }
        } catch {
            close(fd)
            throw error
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// Reads every inotify event waiting, without blocking, and says what became of the file:
    /// the strongest of what it saw (`lost` over `written` over `removed`: a file deleted and
    /// written again was written).
    public func readChanges() -> Change {
        var change = Change.none
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        let fd = descriptor
        let header = MemoryLayout<inotify_event>.size
        while true {
            let size: Int
            do {
                size = try Syscall.call("cannot read the inotify descriptor") { buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            } catch {
                // EAGAIN: nothing more is waiting.
                return change
            }
            if size <= 0 { return change }
            var offset = 0
            while offset + header <= size {
                // struct inotify_event: wd, mask, cookie, len (4 bytes each), then the name.
                let (mask, length) = buffer.withUnsafeBytes { raw in
                    (raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self), Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
                }
                let nameBytes = buffer[(offset + header)..<min(size, offset + header + length)].prefix { $0 != 0 }
                offset += header + length
                if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    change = .lost("the inotify queue overflowed")
                    continue
                }
                if mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED) != 0 {
                    change = .lost("\(directory) was removed or moved: its files are no longer watched")
                    continue
                }
                guard String(decoding: nameBytes, as: UTF8.self) == name else { continue }
                if case .lost = change { continue }
                if mask & UInt32(IN_CLOSE_WRITE | IN_MOVED_TO) != 0 {
                    change = .written
                } else if mask & UInt32(IN_DELETE | IN_MOVED_FROM) != 0, change == .none {
                    change = .removed
                }
                // IN_CREATE alone: the file is being written; its IN_CLOSE_WRITE follows.
            }
        }
    }
}
