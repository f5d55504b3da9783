#if canImport(Glibc)
import Glibc
#endif

extension MijianError.Code {
    /// A file that must not be replaced already exists.
    public static let exists = MijianError.Code("exists")
}

/// Every system call goes through here: EINTR is retried and errno is captured at once.
public enum Syscall {
    /// Runs `body` until it does not fail with EINTR; a negative result becomes an error naming `what`
    /// (ENOENT not found, EACCES/EPERM permission, EEXIST exists, anything else I/O).
    @discardableResult
    public static func call<T: FixedWidthInteger>(
        _ what: @autoclosure () -> String, path: String? = nil, _ body: () -> T
    ) throws(MijianError) -> T {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            let kind: MijianError.Code =
                code == ENOENT ? .notFound : (code == EACCES || code == EPERM ? .permission : (code == EEXIST ? .exists : .io))
            throw MijianError(kind, what(), path: path, errno: code)
        }
    }

    /// Writes every byte of `bytes` to `fd`, retrying short writes and EINTR; a failure (a full disk,
    /// a closed pipe) or a write that makes no progress is an error naming `what`.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ what: @autoclosure () -> String, path: String? = nil)
        throws(MijianError)
    {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let start = offset
            let written = try call(what(), path: path) { write(fd, base + start, bytes.count - start) }
            guard written > 0 else { throw MijianError(.io, "\(what()): no progress", path: path) }
            offset += written
        }
    }

    /// Writes all of `bytes` to `fd`, or throws (a closed pipe, a full disk).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], _ what: @autoclosure () -> String, path: String? = nil) throws(MijianError) {
        try withBytes(bytes) { (buffer) throws(MijianError) in try writeAll(fd, buffer, what(), path: path) }
    }

    /// Runs `body` on the bytes of `array`, passing its typed error through.
    public static func withBytes(_ array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(MijianError) -> Void) throws(MijianError) {
        var failure: MijianError?
        array.withUnsafeBytes { bytes in
            do throws(MijianError) { try body(bytes) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}

/// Standard output and standard error of both executables.
public enum StandardStreams {
    /// Writes bytes to standard output, all of them or an error (a closed pipe, a full disk): a
    /// report that could not be written is never a silent success.
    public static func out(_ bytes: [UInt8]) throws(MijianError) {
        try Syscall.writeAll(STDOUT_FILENO, bytes, "cannot write to standard output", path: "<stdout>")
    }

    /// The same for bytes handed over in pieces.
    public static func out(_ buffer: UnsafeRawBufferPointer) throws(MijianError) {
        try Syscall.writeAll(STDOUT_FILENO, buffer, "cannot write to standard output", path: "<stdout>")
    }

    /// Writes a line to standard error. If standard error cannot be written either, there is
    /// no one left to tell: the exit status still says what happened.
    public static func error(_ line: String) {
        try? Syscall.writeAll(STDERR_FILENO, Array((line + "\n").utf8), "cannot write to standard error", path: "<stderr>")
    }
}
