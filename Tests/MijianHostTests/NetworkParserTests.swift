import Foundation
import Logging
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// Fixture locations and helpers for the network host tests. Fixtures are read from the source
/// tree so that the sysfs symbolic links stay links.
enum NetFixtures {
    static var directory: URL { TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/net") }

    static func root(_ name: String) -> HostRoot { HostRoot(path: directory.appendingPathComponent(name).path) }

    /// The datagrams of one captured dump, one hex line each.
    static func datagrams(_ name: String) throws -> [[UInt8]] {
        let text = try String(contentsOf: directory.appendingPathComponent("netlink/\(name).hex"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            var bytes: [UInt8] = []
            var index = line.startIndex
            while index < line.endIndex {
                let next = line.index(index, offsetBy: 2)
                bytes.append(try #require(UInt8(line[index..<next], radix: 16)))
                index = next
            }
            return bytes
        }
    }

    static let logger = Logger(label: "mijian.test.net")
}

/// A transport that answers each request with captured datagrams, after checking the request.
final class ReplayTransport: NetlinkTransport {
    private var replies: [[UInt8]]
    private(set) var sent: [[UInt8]] = []

    init(_ replies: [[UInt8]]) { self.replies = replies }

    func send(_ datagram: [UInt8]) throws(MijianError) { sent.append(datagram) }

    func receive() throws(MijianError) -> [UInt8] {
        guard !replies.isEmpty else { throw MijianError(.netlink, "replay exhausted") }
        return replies.removeFirst()
    }
}

/// Builds netlink datagrams for the error paths.
enum NetlinkBytes {
    static func message(type: UInt16, flags: UInt16 = 2, sequence: UInt32 = 1, payload: [UInt8]) -> [UInt8] {
        NetlinkMessage.request(type: type, flags: flags, sequence: sequence, body: payload)
    }

    static func int32(_ value: Int32) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    /// The datagram with every message's sequence set, and NLM_F_DUMP_INTR set or left alone.
    static func rewrite(_ datagram: [UInt8], sequence: UInt32, interrupted: Bool) -> [UInt8] {
        var copy = datagram
        var offset = 0
        while offset + 16 <= copy.count {
            let length = Int(Bytes.u32(copy, offset))
            withUnsafeBytes(of: sequence) { copy.replaceSubrange((offset + 8)..<(offset + 12), with: $0) }
            if interrupted { copy[offset + 6] |= 0x10 }
            offset += (length + 3) & ~3
        }
        return copy
    }
}

@Suite("rtnetlink parsing on captured dumps")
struct NetworkNetlinkFixtureTests {
    @Test func routesOfEveryTable() throws {
        let transport = ReplayTransport(try NetFixtures.datagrams("routes"))
        let client = RtnetlinkClient(transport: transport, firstSequence: 0)
        let routes = try client.routes(interfaceNames: [2: "veth1", 3: "veth0"])
        let text = Set(routes.map(\.description))
        #expect(text.contains("unicast 0.0.0.0/0 via 192.0.2.1 dev veth0 table 100"))
        #expect(text.contains("blackhole 203.0.113.0/24 table 300"))
        #expect(text.contains("unreachable 0.0.0.0/1 table 7"))
        #expect(text.contains("unicast 10.9.0.0/16 dev veth0 table 1000"))
        #expect(text.contains("unicast 198.51.100.0/24 via 192.0.2.1 dev veth0 table main"))
        #expect(text.contains("unicast ::/0 via 2001:db8::1 dev veth0 table main"))
        #expect(text.contains("local 127.0.0.1/32 dev lo table local") == false)
        #expect(routes.contains { $0.type == .local && $0.table == RoutingTable.local && $0.destination.description == "127.0.0.1/32" })
        #expect(routes.contains { $0.type == .multicast && $0.destination.description == "ff00::/8" })
        // The request: one RTM_GETROUTE dump, sequence 1, family unspecified.
        let request = try #require(transport.sent.first)
        #expect(Bytes.u16(request, 4) == 26)
        #expect(Bytes.u16(request, 6) == 0x301)
        #expect(Bytes.u32(request, 8) == 1)
        #expect(request[16] == 0)
    }

    @Test func policyRules() throws {
        let rules = try RtnetlinkClient(transport: ReplayTransport(try NetFixtures.datagrams("rules")), firstSequence: 0).rules()
        let v4 = rules.filter { $0.family == 4 }.map { "\($0.priority) \($0.selector) \($0.action.rawValue) \($0.table)" }
        #expect(v4 == ["0 from all lookup 255", "1000 from 192.0.2.0/24 lookup 100", "1001 from all fwmark 0x1 lookup 300", "32766 from all lookup 254", "32767 from all lookup 253"])
        #expect(rules.contains { $0.family == 6 && $0.table == RoutingTable.main })
    }

    @Test func linksWithKinds() throws {
        let links = try RtnetlinkClient(transport: ReplayTransport(try NetFixtures.datagrams("links")), firstSequence: 0).links()
        let byName = Dictionary(links.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(byName["lo"]?.isLoopback == true)
        #expect(byName["veth0"]?.kind == "veth")
        #expect(byName["veth0"]?.isUp == true)
        #expect(byName["tun7"]?.kind == "tun")
        #expect(byName["tun7"]?.linkType == 65534)
        #expect(byName["tun7"]?.isUp == false)
    }

    @Test func addresses() throws {
        let addresses = try RtnetlinkClient(transport: ReplayTransport(try NetFixtures.datagrams("addresses")), firstSequence: 0).addresses()
        let text = Set(addresses.map(\.address.description))
        #expect(text.contains("192.0.2.2/24"))
        #expect(text.contains("127.0.0.1/8"))
        #expect(text.contains("2001:db8::2/64"))
    }

    @Test func wrongSequenceIsRejected() throws {
        let client = RtnetlinkClient(transport: ReplayTransport(try NetFixtures.datagrams("rules")), firstSequence: 41)
        #expect(throws: MijianError.self) { try client.rules() }
        do {
            _ = try client.rules()
        } catch {
            #expect(error.code == .netlink)
        }
    }

    @Test func kernelErrorCarriesErrno() throws {
        let error = NetlinkBytes.message(type: 2, payload: NetlinkBytes.int32(-EPERM) + [UInt8](repeating: 0, count: 16))
        let client = RtnetlinkClient(transport: ReplayTransport([error]), firstSequence: 0)
        do {
            _ = try client.links()
            Issue.record("an NLMSG_ERROR reply must throw")
        } catch {
            #expect(error.errno == EPERM)
            #expect(error.description.contains("RTM_GETLINK"))
        }
        let doneWithError = NetlinkBytes.message(type: 3, payload: NetlinkBytes.int32(-EOPNOTSUPP))
        #expect(throws: MijianError.self) { try RtnetlinkClient(transport: ReplayTransport([doneWithError]), firstSequence: 0).links() }
    }

    @Test func truncatedMessagesAreMalformed() throws {
        var datagram = try #require(try NetFixtures.datagrams("rules").first)
        datagram.removeLast(5)
        let client = RtnetlinkClient(transport: ReplayTransport([datagram]), firstSequence: 0)
        do {
            _ = try client.rules()
            Issue.record("a truncated datagram must throw")
        } catch {
            #expect(error.code == .malformed)
        }
        // An attribute that claims more bytes than its message holds.
        var payload = [UInt8](repeating: 0, count: 16)
        payload += [0xFF, 0x00, 0x03, 0x00, 0x6C, 0x6F, 0x00, 0x00]
        #expect(throws: MijianError.self) { try RtnetlinkParser.link(payload) }
        #expect(throws: MijianError.self) { try RtnetlinkParser.route([2, 0, 0], interfaceNames: [:]) }
    }

    @Test func interruptedDumpIsRetried() throws {
        let good = try NetFixtures.datagrams("rules")
        let expected = try RtnetlinkClient(transport: ReplayTransport(good), firstSequence: 0).rules()
        let first = good.map { NetlinkBytes.rewrite($0, sequence: 1, interrupted: true) }
        let second = good.map { NetlinkBytes.rewrite($0, sequence: 2, interrupted: false) }
        let retried = try RtnetlinkClient(transport: ReplayTransport(first + second), firstSequence: 0).rules()
        #expect(retried == expected)
        let always = (1...3).flatMap { attempt in good.map { NetlinkBytes.rewrite($0, sequence: UInt32(attempt), interrupted: true) } }
        do {
            _ = try RtnetlinkClient(transport: ReplayTransport(always), firstSequence: 0).rules()
            Issue.record("a dump interrupted every time must throw")
        } catch {
            #expect(error.description.contains("interrupted"))
        }
    }
}

@Suite("procfs and resolver parsers")
struct NetworkProcParserTests {
    @Test func ipv4RouteFile() throws {
        let text = try NetFixtures.root("tethered").readText("/proc/net/route")
        let routes = try ProcNetParsers.ipv4Routes(text, path: "/proc/net/route")
        #expect(routes.map(\.description) == [
            "unicast 0.0.0.0/0 via 192.168.42.129 dev usb0 table main", "unicast 192.168.42.0/24 dev usb0 table main",
            "unicast 10.0.0.0/8 dev wg0 table main",
        ])
        let wired = try ProcNetParsers.ipv4Routes(try NetFixtures.root("wired").readText("/proc/net/route"), path: "/proc/net/route")
        #expect(wired.last?.type == .unreachable)
        #expect(throws: MijianError.self) { try ProcNetParsers.ipv4Routes("h\neth0\t0000000A\t0\t1\t0\t0\t0\t00FF00FF\n", path: "/proc/net/route") }
        #expect(throws: MijianError.self) { try ProcNetParsers.ipv4Routes("h\ngarbage\n", path: "/proc/net/route") }
    }

    @Test func ipv6RouteFile() throws {
        let routes = try ProcNetParsers.ipv6Routes(try NetFixtures.root("wired").readText("/proc/net/ipv6_route"), path: "/proc/net/ipv6_route")
        #expect(routes.map { "\($0.type.rawValue) \($0.destination)" } == ["unicast fe80::/64", "local ::1/128", "local fe80::21b:21ff:fe0a:b0c/128", "unicast ff00::/8", "unreachable ::/0"])
        let tethered = try ProcNetParsers.ipv6Routes(try NetFixtures.root("tethered").readText("/proc/net/ipv6_route"), path: "/proc/net/ipv6_route")
        #expect(tethered.first?.description == "unicast ::/0 via fe80::1 dev usb0 table main")
    }

    @Test func socketFiles() throws {
        let root = NetFixtures.root("wired")
        let tcp = try ProcNetParsers.sockets(try root.readText("/proc/net/tcp"), transport: "tcp", path: "/proc/net/tcp")
        #expect(tcp.map(\.description) == ["tcp 0.0.0.0:22 -> 0.0.0.0:0 listen", "tcp 127.0.0.1:631 -> 0.0.0.0:0 listen", "tcp 10.1.2.5:22 -> 10.1.2.9:50000 established"])
        let tcp6 = try ProcNetParsers.sockets(try root.readText("/proc/net/tcp6"), transport: "tcp", path: "/proc/net/tcp6")
        #expect(tcp6.first?.description == "tcp [::]:22 -> [::]:0 listen")
        let udp = try ProcNetParsers.sockets(try root.readText("/proc/net/udp"), transport: "udp", path: "/proc/net/udp")
        #expect(udp.first?.state == "unconnected")
        #expect(udp.first?.uid == 101)
        // A v6 socket to ::ffff:93.184.216.34 port 443, as the kernel prints it.
        let mapped = "h\n 0: 0000000000000000FFFF00000502010A:A000 0000000000000000FFFF000022D8B85D:01BB 01 0:0 0:0 0 1000 0 7\n"
        let entry = try #require(try ProcNetParsers.sockets(mapped, transport: "tcp", path: "/proc/net/tcp6").first)
        #expect(entry.remote.mappedV4?.description == "93.184.216.34")
        #expect(throws: MijianError.self) { try ProcNetParsers.sockets("h\n 0: zz:1 00:00 01 0 0 0 0 0\n", transport: "tcp", path: "/proc/net/tcp") }
    }

    @Test func ifInet6() throws {
        let entries = try ProcNetParsers.ipv6Addresses(try NetFixtures.root("tethered").readText("/proc/net/if_inet6"), path: "/proc/net/if_inet6")
        #expect(entries.map { "\($0.name) \($0.address.description)" } == ["usb0 240e:3b0:1234::5/64", "lo ::1/128"])
    }

    @Test func fibTrie() throws {
        let addresses = try ProcNetParsers.fibTrieLocalAddresses(try NetFixtures.root("wired").readText("/proc/net/fib_trie"), path: "/proc/net/fib_trie")
        #expect(addresses.map(\.description) == ["10.1.2.5", "127.0.0.1"])
        #expect(throws: MijianError.self) { try ProcNetParsers.fibTrieLocalAddresses("Main:\n  |-- not-an-address\n", path: "/proc/net/fib_trie") }
    }

    /// glibc reads resolv.conf by LF and cuts a nameserver's address at space, tab or LF only:
    /// `nameserver 10.0.0.53\r` is ignored, and the LF line after it is used. A CRLF line must not
    /// hide the public resolver on the next line.
    @Test func resolvConfLinesEndAtLFAsGlibcReadsThem() {
        let text = "nameserver 10.0.0.53\r\nnameserver 8.8.8.8\nnameserver 10.0.0.54\r\n"
        #expect(ProcNetParsers.resolvConf(text, origin: .resolvConf, path: "/etc/resolv.conf").map(\.address.description) == ["8.8.8.8"])
        var dns: [Resolver] = []
        var fallback: [Resolver] = []
        // systemd ends lines at CR LF too: resolved.conf's CRLF lines count.
        ProcNetParsers.resolvedConf("[Resolve]\r\nDNS=9.9.9.9\r\nFallbackDNS=1.1.1.1\r\n", path: "r.conf", dns: &dns, fallback: &fallback)
        #expect(dns.map(\.address.description) == ["9.9.9.9"] && fallback.map(\.address.description) == ["1.1.1.1"])
    }

    @Test func resolverFiles() throws {
        #expect(ProcNetParsers.resolvConf("# c\nnameserver 10.0.0.53\nnameserver fd00::53\nsearch x\nnameserver bogus\n", origin: .resolvConf, path: "/etc/resolv.conf").map(\.address.description) == ["10.0.0.53", "fd00::53"])
        var dns: [Resolver] = []
        var fallback: [Resolver] = []
        ProcNetParsers.resolvedConf(
            "[Resolve]\nDNS=1.1.1.1#one 10.0.0.1:53 [2606:4700::1111]:53%eth0#x fd00::1%eth0\nFallbackDNS=9.9.9.9\n[Other]\nDNS=8.8.8.8\n",
            path: "a.conf", dns: &dns, fallback: &fallback)
        #expect(dns.map(\.address.description) == ["1.1.1.1", "10.0.0.1", "2606:4700::1111", "fd00::1"])
        #expect(fallback.map(\.address.description) == ["9.9.9.9"])
        ProcNetParsers.resolvedConf("[Resolve]\nDNS=\nFallbackDNS=\n", path: "b.conf", dns: &dns, fallback: &fallback)
        #expect(dns.isEmpty && fallback.isEmpty)
    }
}

@Suite("network probe on fixture trees")
struct NetworkProbeFixtureTests {
    @Test func wiredDesktop() throws {
        let facts = NetworkProbe.observe(root: NetFixtures.root("wired"), live: false, logger: NetFixtures.logger)
        #expect(facts.mainTableOnly)
        #expect(!facts.rulesKnown)
        #expect(facts.routeSources.map(\.source) == ["/proc/net/route", "/proc/net/ipv6_route"])
        #expect(facts.routeSources.first?.note?.contains("main table only") == true)
        #expect(facts.routeSources.allSatisfy { $0.state == .ok })
        let eth = try #require(facts.interfaces.first { $0.name == "eth0" })
        #expect(eth.driver == "e1000e")
        #expect(eth.bus == "pci")
        #expect(eth.isUp)
        #expect(eth.addresses.map(\.description) == ["fe80::21b:21ff:fe0a:b0c/64"])
        #expect(facts.unattributedAddresses.map(\.description) == ["10.1.2.5", "127.0.0.1"])
        #expect(facts.sockets.count == 5)
        #expect(facts.resolvers.map(\.address.description) == ["10.0.0.53"])
        #expect(facts.resolverSources.contains { $0.source == "/run/systemd/resolve/resolv.conf" && $0.state == .missing })
    }

    @Test func tetheredLaptop() throws {
        let facts = NetworkProbe.observe(root: NetFixtures.root("tethered"), live: false, logger: NetFixtures.logger)
        let byName = Dictionary(facts.interfaces.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(byName["usb0"]?.driver == "rndis_host")
        #expect(byName["usb0"]?.bus == "usb")
        #expect(byName["wg0"]?.kind == "wireguard")
        #expect(byName["tun0"]?.kind == "tun")
        #expect(byName["tun0"]?.tunFlags == 0x1001)
        #expect(byName["usb0"]?.addresses.map(\.description) == ["240e:3b0:1234::5/64"])
        #expect(Set(facts.resolvers.map(\.origin)) == [.resolvConf, .resolvedUpstream, .resolvedConfig])
        #expect(facts.resolvers.filter { $0.origin == .resolvedConfig }.map(\.address.description) == ["1.1.1.1", "2606:4700:4700::1111"])
    }

    @Test func offlineImageSaysWhatIsMissing() throws {
        let facts = NetworkProbe.observe(root: NetFixtures.root("offline"), live: false, logger: NetFixtures.logger)
        #expect(facts.routeSources.allSatisfy { $0.state.reason != nil })
        #expect(facts.interfaceSources.first?.state.reason?.contains("/sys/class/net is not present") == true)
        #expect(facts.socketSources.allSatisfy { $0.state == .missing })
        #expect(facts.resolvers.map(\.address.description) == ["10.0.0.53"])
    }
}
