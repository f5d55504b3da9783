#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import Foundation
import MijianCore

/// Runs work inside another network namespace (`/run/netns/NAME`, `/proc/PID/ns/net`) on a
/// thread of its own, so that no other thread's namespace changes. Netlink sockets opened by
/// `body` belong to that namespace.
public enum NetworkNamespace {
    /// Runs `body` on a fresh thread that first enters the namespace at `path`; the thread ends afterwards.
    public static func perform<T: Sendable>(path: String, _ body: @escaping @Sendable () throws(MijianError) -> T) throws(MijianError) -> T {
        let outcome = Outcome<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            outcome.set(enter(path: path, body))
            done.signal()
        }
        thread.start()
        done.wait()
        guard let result = outcome.get() else { throw MijianError(.state, "the namespace thread for \(path) ended without a result") }
        return try result.get()
    }

    private static func enter<T>(path: String, _ body: () throws(MijianError) -> T) -> Result<T, MijianError> {
        do {
            let fd = try Syscall.call("cannot open network namespace \(path)", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
            defer { close(fd) }
            try Syscall.call("cannot enter network namespace \(path)", path: path) { mijian_setns_net(fd) }
            return .success(try body())
        } catch {
            return .failure(error)
        }
    }

    /// The result handed from the namespace thread back to the caller, under a lock.
    private final class Outcome<T: Sendable>: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Result<T, MijianError>?

        func set(_ result: Result<T, MijianError>) {
            lock.lock()
            value = result
            lock.unlock()
        }

        func get() -> Result<T, MijianError>? {
            lock.lock()
            defer { lock.unlock() }
            return value
        }
    }
}
