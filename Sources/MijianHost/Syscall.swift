#if canImport(Glibc)
import Glibc
#endif
import MijianCore

/// Every system call goes through here: EINTR is retried and errno is captured at once.
enum Syscall {
    /// Runs `body` until it does not fail with EINTR; a negative result becomes an error naming `what`.
    @discardableResult
    static func call<T: FixedWidthInteger>(_ what: @autoclosure () -> String, path: String? = nil, _ body: () -> T) throws(MijianError) -> T {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            throw MijianError(code == ENOENT ? .notFound : (code == EACCES || code == EPERM ? .permission : .io), what(), path: path, errno: code)
        }
    }
}
