#if canImport(Glibc)
import Glibc
#endif
import CUdev
import MijianCore

/// An eventfd that wakes a thread blocked in `poll` on it. Owns the descriptor and closes it in `deinit`.
public final class EventFD: Sendable {
    /// The descriptor, for `poll`.
    public let fd: Int32

    /// A new eventfd, not yet signalled.
    public init() throws(MijianError) {
        fd = try Syscall.call("cannot make an eventfd") { eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK)) }
    }

    deinit { close(fd) }

    /// Makes the descriptor readable, and keeps it so (nothing reads it): every later poll returns at once.
    public func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }
}
