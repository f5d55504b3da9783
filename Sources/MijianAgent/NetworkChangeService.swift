#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import Foundation
import Logging
import MijianCore
import MijianDevices
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

    /// Waits for notifications or for `stop`; returns how many datagrams were read (an overflow,
    /// ENOBUFS, counts as one: changes were lost, so everything must be looked at again), or nil
    /// once `stop` is signalled.
    func waitForChanges(stop: EventFD) -> Int? {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stop.fd, events: Int16(POLLIN), revents: 0)]
        let ready = (try? Syscall.call("cannot poll the netlink socket") { poll(&fds, 2, -1) }) ?? 0
        if fds[1].revents != 0 { return nil }
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
    let audit: Wakeup<WakeReason>
    let logger: Logger
    let onChange: @Sendable () -> Void

    /// Fires `audit` with `.networkChange` (and calls `onChange`) for every burst of changes.
    public init(audit: Wakeup<WakeReason>, logger: Logger, onChange: @escaping @Sendable () -> Void = {}) {
        self.audit = audit
        self.logger = logger
        self.onChange = onChange
    }

    /// Runs until graceful shutdown; the socket is read on a thread of its own, blocked in `poll`
    /// on it and on an eventfd that a stop request signals.
    public func run() async throws {
        let socket = try RouteChangeSocket()
        let stop = try EventFD()
        let stopped = Wakeup<Ending>()
        let audit = self.audit
        let onChange = self.onChange
        let thread = Thread {
            while let changes = socket.waitForChanges(stop: stop) {
                if changes > 0 {
                    audit.fire(.networkChange)
                    onChange()
                }
            }
            stopped.fire(.finished)
        }
        thread.start()
        logger.info("watching rtnetlink: links, addresses, routes and rules (IPv4 and IPv6)")
        let ended = await withGracefulShutdownHandler {
            await stopped.wait(timeout: nil)
        } onGracefulShutdown: {
            stop.signal()
        }
        if ended != .finished {
            // Cancelled rather than shut down: the thread is told too, and given a moment.
            stop.signal()
            _ = await stopped.wait(timeout: .seconds(1))
        }
    }
}

/// A flag a thread polls to know when to stop.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var stopped: Bool { flag.load(ordering: .acquiring) }
    func stop() { flag.store(true, ordering: .releasing) }
}
