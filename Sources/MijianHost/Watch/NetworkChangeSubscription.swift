#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import MijianCore

/// A `NETLINK_ROUTE` socket subscribed to link, address, route and rule changes (IPv4 and
/// IPv6), non-blocking: the service's readiness thread waits on `descriptor` and calls
/// `readChanges` when the kernel has told something. Owns the descriptor and closes it in `deinit`.
public final class NetworkChangeSubscription: Sendable {
    /// The multicast groups: every change the network rules look at.
    static let groups: [UInt32] = [
        RTNLGRP_LINK.rawValue, RTNLGRP_IPV4_IFADDR.rawValue, RTNLGRP_IPV6_IFADDR.rawValue, RTNLGRP_IPV4_ROUTE.rawValue,
        RTNLGRP_IPV6_ROUTE.rawValue, RTNLGRP_IPV4_RULE.rawValue, RTNLGRP_IPV6_RULE.rawValue,
    ]

    /// The socket, for `epoll`; it never blocks.
    public let descriptor: Int32

    /// Opens the socket in the calling thread's network namespace and joins every group.
    public init() throws(MijianError) {
        let fd = try NetlinkSocket.openRoute(nonBlocking: true)
        for group in NetworkChangeSubscription.groups {
            var value = group
            do {
                try Syscall.call("cannot subscribe to rtnetlink group \(group)") {
                    setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &value, socklen_t(MemoryLayout<UInt32>.size))
                }
            } catch {
                close(fd)
                throw error
            }
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// Reads every notification waiting, without blocking; returns how many datagrams were read.
    /// An overflow (ENOBUFS) counts as one: changes were lost, so everything must be looked at again.
    public func readChanges() -> Int {
        var count = 0
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        let fd = descriptor
        while true {
            do {
                let size = try Syscall.call("cannot read the netlink socket") {
                    buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                }
                if size == 0 { return count }
                count += 1
            } catch where error.errno == ENOBUFS {
                count += 1
            } catch {
                // EAGAIN: nothing more is waiting.
                return count
            }
        }
    }
}
