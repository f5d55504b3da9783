#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import Foundation
import Logging
import MijianCore
import MijianHost
import ServiceLifecycle
import Synchronization

/// A `NETLINK_ROUTE` socket subscribed to link, address, route and rule changes (IPv4 and
/// IPv6). Owns the descriptor and closes it in `deinit`.
final class RouteChangeSocket: Sendable {
    /// The multicast groups: every change the network rules look at.
    static let groups: [UInt32] = [
        RTNLGRP_LINK.rawValue, RTNLGRP_IPV4_IFADDR.rawValue, RTNLGRP_IPV6_IFADDR.rawValue, RTNLGRP_IPV4_ROUTE.rawValue,
        RTNLGRP_IPV6_ROUTE.rawValue, RTNLGRP_IPV4_RULE.rawValue, RTNLGRP_IPV6_RULE.rawValue,
    ]

    let fd: Int32

    init() throws(MijianError) {
        let fd = try NetlinkSocket.openRoute(nonBlocking: true)
        self.fd = fd
        for group in RouteChangeSocket.groups {
            var value = group
            try Syscall.call("cannot subscribe to rtnetlink group \(group)") {
                setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &value, socklen_t(MemoryLayout<UInt32>.size))
            }
        }
    }

    deinit { close(fd) }

    /// Waits up to `milliseconds` for notifications; returns how many datagrams were read (an
    /// overflow, ENOBUFS, counts as one: changes were lost, so everything must be looked at again).
    func waitForChanges(milliseconds: Int32) -> Int {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = (try? Syscall.call("cannot poll the netlink socket") { poll(&poller, 1, milliseconds) }) ?? 0
        guard ready > 0 else { return 0 }
        var count = 0
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        let fd = self.fd
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
                return count
            }
        }
    }
}

/// Watches rtnetlink and asks for an audit whenever a link, address, route or rule changes.
public struct NetworkChangeService: Service {
    let audit: Wakeup
    let logger: Logger
    let onChange: @Sendable () -> Void

    /// Fires `audit` with "network change" (and calls `onChange`) for every burst of changes.
    public init(audit: Wakeup, logger: Logger, onChange: @escaping @Sendable () -> Void = {}) {
        self.audit = audit
        self.logger = logger
        self.onChange = onChange
    }

    /// Runs until graceful shutdown; the socket is read on a thread of its own, in `poll` with a
    /// short timeout so a stop request is seen quickly.
    public func run() async throws {
        let socket = try RouteChangeSocket()
        let stopped = Wakeup()
        let audit = self.audit
        let onChange = self.onChange
        let box = StopFlag()
        let thread = Thread {
            while !box.stopped {
                if socket.waitForChanges(milliseconds: 250) > 0 {
                    audit.fire("network change")
                    onChange()
                }
            }
            stopped.fire("stopped")
        }
        thread.start()
        logger.info("watching rtnetlink: links, addresses, routes and rules (IPv4 and IPv6)")
        await withGracefulShutdownHandler {
            _ = await stopped.wait(timeout: nil)
        } onGracefulShutdown: {
            box.stop()
        }
        box.stop()
        _ = await stopped.wait(timeout: .seconds(1))
    }
}

/// A flag a thread polls to know when to stop.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var stopped: Bool { flag.load(ordering: .acquiring) }
    func stop() { flag.store(true, ordering: .releasing) }
}
