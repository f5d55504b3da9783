#if canImport(Glibc)
import Glibc
#endif
import MijianCore
import MijianHost

/// One write to a kernel switch, with what the kernel said.
public struct SysfsWrite: Sendable, Equatable {
    /// The host path written (`/sys/devices/…/1-3:1.0/authorized`).
    public var path: String
    /// What was written.
    public var value: String
    /// The errno of a refused write (ENOENT or ENODEV: the device vanished; EACCES: not root), nil when done.
    public var errno: Int32?
    /// How long the open and the write took (monotonic nanoseconds); not part of equality.
    public var nanos: UInt64 = 0

    /// Makes a record.
    public init(path: String, value: String, errno: Int32? = nil, nanos: UInt64 = 0) {
        self.path = path
        self.value = value
        self.errno = errno
        self.nanos = nanos
    }

    /// Equal when path, value and errno are: the time a write took is no part of what it did.
    public static func == (lhs: SysfsWrite, rhs: SysfsWrite) -> Bool {
        lhs.path == rhs.path && lhs.value == rhs.value && lhs.errno == rhs.errno
    }

    /// Whether the kernel took the write.
    public var succeeded: Bool { errno == nil }

    /// Evidence form.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("path", .string(path)), ("value", .string(value)), ("ok", .bool(errno == nil))]
        if let errno {
            members.append(("errno", .integer(Int(errno))))
            members.append(("error", .string(MijianError.strerror(errno))))
        }
        members.append(("us", .int(Int64(clamping: nanos / 1000))))
        return .object(members)
    }
}

/// Writes the kernel's USB authorisation switches under a host root (`/` live, a fixture tree in tests).
public struct SysfsWriter: Sendable {
    /// Where `/sys` is.
    public let root: HostRoot

    /// A writer under `root`.
    public init(root: HostRoot) { self.root = root }

    /// Writes `value` to an existing attribute (never creates one: a missing file is a vanished device).
    public func write(_ hostPath: String, _ value: String) -> SysfsWrite {
        let started = Monotonic.now()
        var record = perform(hostPath, value)
        record.nanos = Monotonic.now() &- started
        return record
    }

    private func perform(_ hostPath: String, _ value: String) -> SysfsWrite {
        let full = root.real(hostPath)
        do throws(MijianError) {
            let fd = try Syscall.call("cannot open \(hostPath)", path: hostPath) { open(full, O_WRONLY | O_CLOEXEC | O_NOCTTY) }
            defer { close(fd) }
            let bytes = Array(value.utf8)
            // One write: a sysfs store takes the whole value or refuses it.
            let written = try Syscall.call("cannot write \(hostPath)", path: hostPath) {
                bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            }
            return SysfsWrite(path: hostPath, value: value, errno: written == bytes.count ? nil : EIO)
        } catch {
            return SysfsWrite(path: hostPath, value: value, errno: error.errno ?? EIO)
        }
    }
}
