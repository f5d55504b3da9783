#if canImport(Glibc)
import Glibc
#endif
import MijianCore

/// TCP sockets of the live kernel from sock_diag (`NETLINK_SOCK_DIAG`), IPv4 and IPv6 in one dump.
///
/// `/proc/net/tcp` and `/proc/net/tcp6` each walk the kernel's whole established-connection hash
/// (hundreds of thousands of buckets on a machine with tens of GB), once per table. The
/// inet_diag request `TCPDIAG_GETSOCK` with family `AF_UNSPEC` walks it once for both families,
/// with every state, and gives the same fields: addresses, ports, state, owner uid, inode.
public enum SockDiag {
    /// `TCPDIAG_GETSOCK` (linux/inet_diag.h): the inet_diag request that takes `AF_UNSPEC`.
    static let tcpDiagGetSock: UInt16 = 18
    /// Every TCP state (`idiag_states` is a bit mask of 1 << state).
    static let allStates: UInt32 = 0xFFFF_FFFF
    /// `struct inet_diag_msg`: family, state, timer, retrans, the socket id (48 bytes), expires,
    /// rqueue, wqueue, uid, inode.
    static let messageLength = 72
    /// `NETLINK_SOCK_DIAG` (linux/netlink.h).
    static let netlinkSockDiag: Int32 = 4
    /// What evidence calls this source.
    public static let source = "sock_diag TCPDIAG_GETSOCK dump (IPv4 and IPv6, every state)"

    /// The request body: `struct inet_diag_req` with family `AF_UNSPEC`, no address filter, every state.
    static func requestBody() -> [UInt8] {
        var body = [UInt8](repeating: 0, count: 4 + 48)
        body[0] = RT.afUnspec
        Bytes.append32(&body, allStates)
        Bytes.append32(&body, 0)
        return body
    }

    /// Every TCP socket the kernel has in this network namespace.
    public static func tcpSockets(transport: any NetlinkTransport) throws(MijianError) -> [SocketEntry] {
        let client = RtnetlinkClient(transport: transport)
        var sockets: [SocketEntry] = []
        for message in try client.dump(type: tcpDiagGetSock, name: "TCPDIAG_GETSOCK", body: requestBody()) where message.type == tcpDiagGetSock {
            if let socket = try entry(message.payload) { sockets.append(socket) }
        }
        return sockets
    }

    /// Every TCP socket of the calling thread's network namespace, from a socket opened here.
    public static func tcpSockets() throws(MijianError) -> [SocketEntry] {
        try tcpSockets(transport: NetlinkSocket(family: netlinkSockDiag, name: "NETLINK_SOCK_DIAG"))
    }

    /// A socket from an `inet_diag_msg`; nil for a family other than IPv4 and IPv6.
    static func entry(_ payload: [UInt8]) throws(MijianError) -> SocketEntry? {
        guard payload.count >= messageLength else {
            throw MijianError(.malformed, "an inet_diag_msg of \(payload.count) bytes is shorter than \(messageLength)")
        }
        let family = payload[0]
        guard family == RT.afInet || family == RT.afInet6 else { return nil }
        let width = family == RT.afInet ? 4 : 16
        guard let local = IPAddress(bytes: payload[8..<(8 + width)]), let remote = IPAddress(bytes: payload[24..<(24 + width)]) else {
            throw MijianError(.malformed, "an inet_diag_msg of family \(family) has addresses that are not \(width) bytes")
        }
        let state = payload[1]
        return SocketEntry(
            transport: "tcp", local: local, localPort: UInt16(payload[4]) << 8 | UInt16(payload[5]),
            remote: remote, remotePort: UInt16(payload[6]) << 8 | UInt16(payload[7]),
            state: ProcNetParsers.tcpStates[state] ?? "state \(state)", uid: Bytes.u32(payload, 64), source: "sock_diag")
    }
}
