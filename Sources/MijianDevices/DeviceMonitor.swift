#if canImport(Glibc)
import Glibc
#endif
import CUdev
import Foundation
import MijianCore
import MijianHost
import Synchronization

/// What the monitor hands over.
public enum MonitorMessage: Sendable {
    /// One uevent, with the monotonic time (nanoseconds) it was taken off the socket.
    case event(UEvent, receivedAt: UInt64)
    /// The socket overflowed (ENOBUFS): events were lost, the caller must re-enumerate.
    case overflow
    /// The udev source stopped answering (udevd gone): reopen with the kernel source and re-enumerate.
    case sourceLost(String)
    /// Receiving failed for another reason.
    case failure(MijianError)
}

/// Monotonic nanoseconds, for latencies.
public enum Monotonic {
    /// Now, in nanoseconds of CLOCK_MONOTONIC.
    public static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

/// Whether udevd is there to rebroadcast events: `/run/udev/control` must accept a connection (a
/// killed udevd leaves the socket file behind, and a `"udev"` monitor then silently receives nothing).
public enum UdevDaemon {
    /// nil when udevd answers, else why not.
    public static func unavailableReason(controlPath: String = "/run/udev/control") -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "cannot make a unix socket: \(MijianError.strerror(errno))" }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(controlPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return "\(controlPath) is too long" }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result == 0 { return nil }
        let code = errno
        if code == ENOENT { return "\(controlPath) does not exist: no udevd runs" }
        if code == ECONNREFUSED { return "\(controlPath) exists but nobody listens: udevd is gone" }
        return "cannot connect to \(controlPath): \(MijianError.strerror(code))"
    }
}

/// A libudev monitor for some subsystems, read on the service's readiness thread (`ReadinessLoop`:
/// one `epoll` thread for every blocking source), handing messages to an `AsyncStream`. The
/// monitor's socket is non-blocking: when the kernel says it is readable, every uevent waiting is
/// taken, and the thread goes back to waiting.
///
/// The monitor owns the `udev` and `udev_monitor` handles; after `start` only the readiness
/// thread touches them, and they are freed once `stop` has taken the registration back.
public final class DeviceMonitor: @unchecked Sendable {
    /// The source this monitor listens to (`udev` or `kernel`).
    public let source: EventSource
    /// The receive buffer asked for (bytes); the kernel may round it.
    public let receiveBufferSize: Int
    /// The messages, in order.
    public let messages: AsyncStream<MonitorMessage>
    /// Why the receive buffer is smaller than asked, when it is.
    public let bufferNote: String?

    private let udev: OpaquePointer
    private let monitor: OpaquePointer
    private let readiness: ReadinessLoop
    private let continuation: AsyncStream<MonitorMessage>.Continuation
    private let registration = Mutex<ReadinessLoop.Registration?>(nil)

    /// Opens and enables a monitor that `start` registers with `readiness`; the socket is
    /// receiving when this returns, so nothing that happens afterwards is missed (the coldplug
    /// walk relies on that).
    public init(source: EventSource, subsystems: [String], receiveBufferSize: Int = 8 << 20, readiness: ReadinessLoop) throws(MijianError) {
        guard source == .udev || source == .kernel else {
            throw MijianError(.usage, "a uevent monitor listens to udev or the kernel, not to \(source.rawValue)")
        }
        guard let udev = udev_new() else { throw MijianError(.io, "libudev: udev_new failed", errno: errno) }
        guard let monitor = udev_monitor_new_from_netlink(udev, source.rawValue) else {
            let code = errno
            udev_unref(udev)
            throw MijianError(.io, "cannot open a \(source.rawValue) uevent monitor (NETLINK_KOBJECT_UEVENT)", errno: code)
        }
        var failure: MijianError?
        for subsystem in subsystems where udev_monitor_filter_add_match_subsystem_devtype(monitor, subsystem, nil) < 0 {
            failure = MijianError(.io, "cannot filter the uevent monitor on \(subsystem)")
        }
        var bufferNote: String?
        if failure == nil {
            // Past net.core.rmem_max libudev needs SO_RCVBUFFORCE (CAP_NET_ADMIN, which the service's
            // unit does not grant): then the kernel's size stands, and an overflow is still caught
            // (ENOBUFS) and followed by a walk of sysfs.
            let result = udev_monitor_set_receive_buffer_size(monitor, Int32(clamping: receiveBufferSize))
            if result < 0 {
                bufferNote = "the uevent receive buffer could not be raised to \(receiveBufferSize) bytes (\(MijianError.strerror(-result))); the kernel's default stands"
            }
        }
        if failure == nil {
            let result = udev_monitor_enable_receiving(monitor)
            if result < 0 { failure = MijianError(.io, "cannot start receiving uevents", errno: -result) }
        }
        if let failure {
            udev_monitor_unref(monitor)
            udev_unref(udev)
            throw failure
        }
        self.source = source
        self.receiveBufferSize = receiveBufferSize
        self.bufferNote = bufferNote
        self.udev = udev
        self.monitor = monitor
        self.readiness = readiness
        (messages, continuation) = AsyncStream.makeStream(of: MonitorMessage.self, bufferingPolicy: .unbounded)
    }

    /// Registers the socket with the readiness thread: from now on its uevents are read there.
    public func start() throws(MijianError) {
        let fd = udev_monitor_get_fd(monitor)
        // The handler holds the monitor until `stop` takes the registration back.
        let added = try readiness.add(fd) { [self] _ in receive() }
        registration.withLock { $0 = added }
    }

    /// Takes the registration back from the readiness thread (what it had read is in the stream),
    /// then finishes the stream.
    public func stop() async {
        if let registration = registration.withLock({ $0.take() }) {
            await readiness.remove(registration, lastRead: false)
        }
        continuation.finish()
    }

    deinit {
        udev_monitor_unref(monitor)
        udev_unref(udev)
    }

    /// Takes every uevent waiting; false once receiving failed (the registration is dropped).
    private func receive() -> Bool {
        while true {
            guard let device = udev_monitor_receive_device(monitor) else {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return true }
                if code == ENOBUFS {
                    continuation.yield(.overflow)
                    continue
                }
                continuation.yield(.failure(MijianError(.io, "receiving a uevent failed", errno: code)))
                return false
            }
            let received = Monotonic.now()
            let event = Self.event(from: device)
            udev_device_unref(device)
            if let event { continuation.yield(.event(event, receivedAt: received)) }
        }
    }

    private static func event(from device: OpaquePointer) -> UEvent? {
        var properties: [String: String] = [:]
        var entry = udev_device_get_properties_list_entry(device)
        while let current = entry {
            if let name = udev_list_entry_get_name(current) {
                properties[String(cString: name)] = udev_list_entry_get_value(current).map { String(cString: $0) } ?? ""
            }
            entry = udev_list_entry_get_next(current)
        }
        guard let action = udev_device_get_action(device), let devpath = udev_device_get_devpath(device),
              let subsystem = udev_device_get_subsystem(device)
        else { return nil }
        return UEvent(
            action: String(cString: action), devpath: String(cString: devpath), subsystem: String(cString: subsystem),
            devtype: udev_device_get_devtype(device).map { String(cString: $0) }, seqnum: udev_device_get_seqnum(device),
            properties: properties)
    }
}
