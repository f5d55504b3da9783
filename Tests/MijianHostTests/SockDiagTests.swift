#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// TCP sockets from sock_diag: one dump for IPv4 and IPv6, the same sockets procfs lists.
@Suite("sock_diag TCP sockets")
struct SockDiagTests {
    /// An `inet_diag_msg` as the kernel lays it out (linux/inet_diag.h): ports and addresses in
    /// network order, the rest in host order.
    static func message(family: UInt8, state: UInt8, local: [UInt8], localPort: UInt16, remote: [UInt8], remotePort: UInt16, uid: UInt32) -> [UInt8] {
        var bytes = [family, state, 0, 0]
        bytes += [UInt8(localPort >> 8), UInt8(localPort & 0xFF), UInt8(remotePort >> 8), UInt8(remotePort & 0xFF)]
        bytes += local + [UInt8](repeating: 0, count: 16 - local.count)
        bytes += remote + [UInt8](repeating: 0, count: 16 - remote.count)
        bytes += [UInt8](repeating: 0, count: 4 + 8)  // interface, cookie
        bytes += [UInt8](repeating: 0, count: 12)  // expires, rqueue, wqueue
        bytes += withUnsafeBytes(of: uid) { Array($0) }
        bytes += withUnsafeBytes(of: UInt32(4242)) { Array($0) }  // inode
        return bytes
    }

    @Test func messagesOfBothFamiliesAreRead() throws {
        let v4 = try #require(try SockDiag.entry(Self.message(
            family: 2, state: 1, local: [10, 0, 0, 5], localPort: 22, remote: [203, 0, 113, 9], remotePort: 50_000, uid: 1000)))
        #expect(v4.local == IPAddress("10.0.0.5") && v4.localPort == 22)
        #expect(v4.remote == IPAddress("203.0.113.9") && v4.remotePort == 50_000)
        #expect(v4.state == "established" && v4.uid == 1000 && v4.transport == "tcp" && v4.source == "sock_diag")
        let loopback6 = [UInt8](repeating: 0, count: 15) + [1]
        let v6 = try #require(try SockDiag.entry(Self.message(
            family: 10, state: 10, local: loopback6, localPort: 8443, remote: [UInt8](repeating: 0, count: 16), remotePort: 0, uid: 0)))
        #expect(v6.local == IPAddress("::1") && v6.localPort == 8443 && v6.state == "listen" && v6.remote.isUnspecified)
        // Another family is not a socket of these tables; a short message is an error, never a guess.
        #expect(try SockDiag.entry(Self.message(family: 1, state: 1, local: [], localPort: 0, remote: [], remotePort: 0, uid: 0)) == nil)
        #expect(throws: MijianError.self) { try SockDiag.entry(Array(Self.message(family: 2, state: 1, local: [1, 2, 3, 4], localPort: 1, remote: [], remotePort: 0, uid: 0).prefix(60))) }
    }

    @Test func theDumpAsksForEveryStateOfBothFamiliesAndStopsAtDone() throws {
        let socket = Self.message(family: 2, state: 10, local: [0, 0, 0, 0], localPort: 2024, remote: [0, 0, 0, 0], remotePort: 0, uid: 0)
        let transport = ReplayTransport([
            NetlinkBytes.message(type: SockDiag.tcpDiagGetSock, sequence: 2, payload: socket)
                + NetlinkBytes.message(type: SockDiag.tcpDiagGetSock, sequence: 2, payload: socket),
            NetlinkBytes.message(type: 3, sequence: 2, payload: NetlinkBytes.int32(0)),
        ])
        let sockets = try SockDiag.tcpSockets(transport: transport)
        #expect(sockets.count == 2 && sockets.allSatisfy { $0.state == "listen" && $0.localPort == 2024 })
        let request = try #require(transport.sent.first)
        #expect(request.count == 16 + 60)
        #expect(Bytes.u16(request, 4) == SockDiag.tcpDiagGetSock && Bytes.u16(request, 6) == 0x301)
        #expect(request[16] == 0, "family AF_UNSPEC: IPv4 and IPv6 in one walk")
        #expect(Bytes.u32(request, 16 + 52) == 0xFFFF_FFFF, "every state")
        // The kernel's refusal is an error that names the request.
        let refused = ReplayTransport([NetlinkBytes.message(type: 2, sequence: 2, payload: NetlinkBytes.int32(-EINVAL) + [UInt8](repeating: 0, count: 16))])
        #expect { try SockDiag.tcpSockets(transport: refused) } throws: { error in
            "\(error)".contains("TCPDIAG_GETSOCK")
        }
    }

    /// The loopback address of one family with `port` (0: the kernel picks).
    static func loopback(v6: Bool, port: UInt16) -> (sockaddr_storage, socklen_t) {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            if v6 {
                var address = sockaddr_in6()
                address.sin6_family = sa_family_t(AF_INET6)
                address.sin6_addr = in6addr_loopback
                address.sin6_port = port.bigEndian
                withUnsafeBytes(of: address) { raw.copyMemory(from: $0) }
            } else {
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                address.sin_port = port.bigEndian
                withUnsafeBytes(of: address) { raw.copyMemory(from: $0) }
            }
        }
        return (storage, socklen_t(v6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size))
    }

    /// A socket listening on loopback of one family, on a port the kernel picks.
    static func listener(v6: Bool) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var (storage, length) = loopback(v6: v6, port: 0)
        let bound = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        try #require(bound == 0 && listen(fd, 4) == 0)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = withUnsafeBytes(of: storage) { raw in UInt16(raw[2]) << 8 | UInt16(raw[3]) }
        return (fd, port)
    }

    /// A connection to `port` on loopback, accepted: (client, server).
    static func connect(v6: Bool, port: UInt16, listener: Int32) throws -> (Int32, Int32) {
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var (storage, length) = loopback(v6: v6, port: port)
        let connected = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) } }
        try #require(connected == 0)
        let server = accept(listener, nil, nil)
        try #require(server >= 0)
        return (fd, server)
    }

    /// Listeners and connections of both families on loopback: the live dump has each, with the
    /// state and owner procfs gives, and procfs's sockets for these ports are exactly the dump's.
    @Test func theLiveDumpHasWhatProcfsHas() throws {
        let l4 = try Self.listener(v6: false)
        let l6 = try Self.listener(v6: true)
        let (c4, s4) = try Self.connect(v6: false, port: l4.port, listener: l4.fd)
        let (c6, s6) = try Self.connect(v6: true, port: l6.port, listener: l6.fd)
        defer { for fd in [l4.fd, l6.fd, c4, s4, c6, s6] { close(fd) } }
        let ports: Set<UInt16> = [l4.port, l6.port]
        func ours(_ sockets: [SocketEntry]) -> Set<String> {
            Set(sockets.filter { ports.contains($0.localPort) || ports.contains($0.remotePort) }.map {
                "\($0.local) \($0.localPort) \($0.remote) \($0.remotePort) \($0.state) \($0.uid.map(String.init) ?? "-")"
            })
        }
        let dumped = ours(try SockDiag.tcpSockets())
        let uid = getuid()
        #expect(dumped.contains("127.0.0.1 \(l4.port) 0.0.0.0 0 listen \(uid)"), "\(dumped)")
        #expect(dumped.contains("::1 \(l6.port) :: 0 listen \(uid)"), "\(dumped)")
        #expect(dumped.filter { $0.contains(" established ") }.count == 4, "both ends of both connections: \(dumped)")
        var procfs: [SocketEntry] = []
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            procfs += try ProcNetParsers.sockets(try HostRoot.live.readText(file), transport: "tcp", path: file)
        }
        #expect(ours(procfs) == dumped)
    }

    /// The dump an audit starts before it reads its policy gives the sockets open when it ran, and
    /// `observe` takes them from it; its failure is the procfs fallback with the reason.
    @Test func aDumpStartedEarlyIsWhatTheProbeReads() throws {
        let l4 = try Self.listener(v6: false)
        defer { close(l4.fd) }
        let dump = HostProbe.SocketDump()
        let logger = Logger(label: "test")
        // With another group asked for, the network probe runs on its own thread and reads the dump there.
        let facts = HostProbe.observe(
            root: .live, live: true, logger: logger, collecting: [.sockets, .logRetention],
            tcpSockets: { () throws(MijianError) in try dump.result() })
        let network = facts.network
        #expect(network.socketSources.first?.source == SockDiag.source && network.socketSources.first?.state == .ok)
        #expect(network.sockets.contains { $0.localPort == l4.port && $0.state == "listen" && $0.source == "sock_diag" })
        // Asked twice, the dump answers twice with the same sockets.
        #expect(try dump.result().map(\.localPort) == (try dump.result().map(\.localPort)))

        let refused = HostProbe.observe(
            root: FixtureHosts.root("wired-desktop"), live: true, logger: logger, collecting: [.sockets],
            tcpSockets: { () throws(MijianError) -> [SocketEntry] in throw MijianError(.netlink, "TCPDIAG_GETSOCK dump refused by the kernel") })
        let sources = refused.network.socketSources
        #expect(sources.map(\.source) == ["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"])
        #expect(sources.first?.note?.contains("TCPDIAG_GETSOCK dump refused by the kernel") == true)
    }

    /// When sock_diag cannot answer, TCP is read from procfs and its sources say why; UDP is procfs either way.
    @Test func withoutSockDiagTCPComesFromProcfsAndSaysWhy() throws {
        let root = FixtureHosts.root("wired-desktop")
        var facts = NetworkFacts()
        NetworkProbe.readSockets(root: root, live: true, into: &facts) { () throws(MijianError) -> [SocketEntry] in
            throw MijianError(.netlink, "TCPDIAG_GETSOCK dump refused by the kernel", errno: EINVAL)
        }
        #expect(facts.socketSources.map(\.source) == ["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"])
        let notes = facts.socketSources.map { $0.note ?? "" }
        #expect(notes[0].hasPrefix("read here because sock_diag did not answer: TCPDIAG_GETSOCK dump refused"), "\(notes)")
        #expect(notes[1].hasPrefix("read here because sock_diag did not answer"))
        #expect(notes[2].isEmpty && notes[3].isEmpty)
        // With sock_diag, TCP is one netlink source and procfs gives only UDP.
        var live = NetworkFacts()
        NetworkProbe.readSockets(root: root, live: true, into: &live) { () throws(MijianError) -> [SocketEntry] in [] }
        #expect(live.socketSources.map(\.source) == [SockDiag.source, "/proc/net/udp", "/proc/net/udp6"])
        #expect(live.socketSources.first?.kind == "netlink")
    }
}
