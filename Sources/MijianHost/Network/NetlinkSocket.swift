#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import MijianCore

/// Something that carries netlink datagrams to the kernel and back. The real one is
/// `NetlinkSocket`; tests feed captured datagrams through a fake one.
public protocol NetlinkTransport: AnyObject {
    /// Sends one request datagram.
    func send(_ datagram: [UInt8]) throws(MijianError)
    /// Receives the next datagram from the kernel (blocking, bounded by a timeout).
    func receive() throws(MijianError) -> [UInt8]
}

/// One netlink socket (`NETLINK_ROUTE` unless told), owned here and closed in `deinit`.
public final class NetlinkSocket: NetlinkTransport {
    private let fd: Int32
    /// The largest datagram accepted; dumps send at most a page or two per datagram.
    static let maxDatagram = 1 << 20

    /// A bound `NETLINK_ROUTE` socket descriptor (close-on-exec), for dumps and for change groups alike.
    public static func openRoute(nonBlocking: Bool) throws(MijianError) -> Int32 {
        try open(family: NETLINK_ROUTE, name: "NETLINK_ROUTE", nonBlocking: nonBlocking)
    }

    /// A bound netlink socket descriptor of `family` (close-on-exec).
    static func open(family: Int32, name: String, nonBlocking: Bool) throws(MijianError) -> Int32 {
        let flags = Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = try Syscall.call("cannot open a \(name) socket") { socket(AF_NETLINK, flags, family) }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        do {
            try Syscall.call("cannot bind the \(name) socket") {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
                }
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Opens and binds a `NETLINK_ROUTE` socket in the calling thread's network namespace.
    public convenience init(receiveTimeoutSeconds: Int = 5) throws(MijianError) {
        try self.init(family: NETLINK_ROUTE, name: "NETLINK_ROUTE", receiveTimeoutSeconds: receiveTimeoutSeconds)
    }

    /// Opens and binds a netlink socket of `family` (`NETLINK_SOCK_DIAG`, …) in the calling thread's
    /// network namespace; `name` is what messages call it.
    public init(family: Int32, name: String, receiveTimeoutSeconds: Int = 5) throws(MijianError) {
        let fd = try Self.open(family: family, name: name, nonBlocking: false)
        self.fd = fd
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        try Syscall.call("cannot set a receive timeout on the \(name) socket") {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        var bufferSize: Int32 = 1 << 20
        // A larger buffer only avoids ENOBUFS on busy hosts; failing to get it is not fatal.
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        close(fd)
    }

    /// Sends one request to the kernel (port id 0).
    public func send(_ datagram: [UInt8]) throws(MijianError) {
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let fd = self.fd
        let sent = try Syscall.call("cannot send a netlink request") {
            datagram.withUnsafeBytes { bytes in
                withUnsafePointer(to: &kernel) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                    }
                }
            }
        }
        guard sent == datagram.count else {
            throw MijianError(.netlink, "the kernel took \(sent) of \(datagram.count) bytes of a netlink request")
        }
    }

    /// Receives one datagram from the kernel; a datagram from any other sender is dropped.
    public func receive() throws(MijianError) -> [UInt8] {
        let fd = self.fd
        while true {
            // Peek with MSG_TRUNC to learn the datagram's real size, so nothing is cut silently.
            let size = try receiveCall("cannot peek at a netlink reply") { recv(fd, nil, 0, Int32(MSG_PEEK | MSG_TRUNC)) }
            guard size <= NetlinkSocket.maxDatagram else {
                throw MijianError(.tooLarge, "a netlink reply of \(size) bytes is larger than \(NetlinkSocket.maxDatagram)")
            }
            var buffer = [UInt8](repeating: 0, count: max(size, 16))
            var sender = sockaddr_nl()
            var senderLength = socklen_t(MemoryLayout<sockaddr_nl>.size)
            let count = try receiveCall("cannot receive a netlink reply") {
                buffer.withUnsafeMutableBytes { bytes in
                    withUnsafeMutablePointer(to: &sender) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, bytes.baseAddress, bytes.count, 0, $0, &senderLength) }
                    }
                }
            }
            if sender.nl_pid != 0 { continue }
            return Array(buffer[0..<count])
        }
    }

    private func receiveCall(_ what: String, _ body: () -> Int) throws(MijianError) -> Int {
        do {
            return try Syscall.call(what, body)
        } catch where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            throw MijianError(.netlink, "\(what): the kernel did not answer within the timeout", errno: error.errno)
        }
    }
}
