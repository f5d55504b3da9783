#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import Foundation
import Logging
import MijianCore
import Synchronization

/// sd_notify without libsystemd: datagrams to `$NOTIFY_SOCKET` (a path, or an abstract name
/// starting with `@`). Owns its socket and closes it in `deinit`.
public final class SystemdNotifier: Sendable {
    private let fd: Int32
    private let address: [UInt8]
    private let logger: Logger
    /// Messages dropped since the last one the socket took.
    private let dropped = Mutex<Int>(0)

    /// A notifier for `socketPath`, or nil when the service is not run by systemd (no socket given).
    public init?(socketPath: String?, logger: Logger) {
        guard let socketPath, !socketPath.isEmpty, socketPath.hasPrefix("/") || socketPath.hasPrefix("@") else { return nil }
        var path = Array(socketPath.utf8)
        // An abstract socket's name starts with a NUL byte in place of the `@`.
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        guard path.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path),
            let fd = try? Syscall.call("cannot open a datagram socket for NOTIFY_SOCKET", {
                socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            })
        else {
            logger.warning("NOTIFY_SOCKET is unusable; systemd will not hear from the service", metadata: ["agent.notify_socket": "\(socketPath)"])
            return nil
        }
        self.fd = fd
        self.address = path
        self.logger = logger
    }

    /// The notifier of this process's environment.
    public static func fromEnvironment(logger: Logger) -> SystemdNotifier? {
        SystemdNotifier(socketPath: ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], logger: logger)
    }

    deinit { close(fd) }

    /// Sends one message (`READY=1`, `STATUS=…`, `WATCHDOG=1`); a failure is logged, never fatal.
    /// The send never waits: when systemd is not reading its socket (busy, or stopping) and the
    /// socket's queue is full, the message is dropped and said once, so that neither the watchdog,
    /// a seal nor the stop hangs on it.
    public func send(_ message: String) {
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        let count = address.count
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { raw in
            for index in 0..<count { raw[index] = address[index] }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path).map { $0 + count } ?? 2 + count)
        let fd = self.fd
        let bytes = Array(message.utf8)
        do {
            try Syscall.call("cannot notify systemd") {
                bytes.withUnsafeBytes { buffer in
                    withUnsafePointer(to: &socketAddress) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), $0, length)
                        }
                    }
                }
            }
        } catch {
            if error.errno == EAGAIN || error.errno == EWOULDBLOCK {
                let first = dropped.withLock { count in
                    count += 1
                    return count == 1
                }
                if first {
                    let kind = message.prefix { $0 != "=" }
                    logger.warning("systemd's notify socket is full: \(kind) dropped, and every message until systemd reads it")
                }
            } else {
                logger.warning("cannot notify systemd", metadata: ["agent.error": "\(error)"])
            }
            return
        }
        let recovered = dropped.withLock { count in
            defer { count = 0 }
            return count
        }
        if recovered > 0 { logger.notice("systemd's notify socket takes messages again; \(recovered) were dropped") }
    }

    /// Half of `$WATCHDOG_USEC` when the watchdog is on for this process (`$WATCHDOG_PID` unset or ours).
    public static func watchdogInterval(environment: [String: String] = ProcessInfo.processInfo.environment) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = Int64(text), usec > 0 else { return nil }
        if let pid = environment["WATCHDOG_PID"], let value = Int32(pid), value != getpid() { return nil }
        return .microseconds(usec / 2)
    }
}
