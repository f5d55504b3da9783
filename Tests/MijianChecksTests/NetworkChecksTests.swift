import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianChecks

/// Hand-built facts for the network checks.
enum NetFacts {
    static let netlinkSources = [
        SourceRead(kind: "netlink", source: "RTM_GETROUTE dump (IPv4 and IPv6, all tables)", state: .ok, count: 3),
        SourceRead(kind: "netlink", source: "RTM_GETRULE dump (IPv4 and IPv6)", state: .ok, count: 3),
    ]

    static func network(_ text: String) throws -> IPNetwork { try #require(IPNetwork(text)) }

    static func address(_ text: String) throws -> IPAddress { try #require(IPAddress(text)) }

    static func route(_ destination: String, type: RouteType = .unicast, table: UInt32 = RoutingTable.main, via: String? = nil) throws -> Route {
        Route(table: table, type: type, destination: try network(destination), gateway: try via.map { try address($0) }, device: "eth0", source: "netlink")
    }

    static let defaultRules = [
        PolicyRule(family: 4, priority: 0, action: .toTable, table: RoutingTable.local),
        PolicyRule(family: 4, priority: 32766, action: .toTable, table: RoutingTable.main),
        PolicyRule(family: 4, priority: 32767, action: .toTable, table: RoutingTable.default),
        PolicyRule(family: 6, priority: 0, action: .toTable, table: RoutingTable.local),
        PolicyRule(family: 6, priority: 32766, action: .toTable, table: RoutingTable.main),
    ]

    /// Live-style facts: routes plus the kernel's default rules (and `extraRules`).
    static func live(_ routes: [Route], extraRules: [PolicyRule] = []) -> AuditFacts {
        AuditFacts(
            root: "/", live: true, observedAt: TestSupport.fixedDate,
            network: NetworkFacts(routes: routes, rules: defaultRules + extraRules, rulesKnown: true, routeSources: netlinkSources))
    }

    static func context() throws -> CheckContext {
        CheckContext(policy: try TestSupport.defaultPolicy(), hostID: "host-test", observedAt: TestSupport.fixedDate)
    }

    static func statuses(_ findings: [Finding]) -> [Status] { findings.map(\.status) }
}

@Suite("net.internet-route")
struct NetworkRouteCheckTests {
    let lan: [Route]

    init() throws {
        lan = [
            try NetFacts.route("10.1.2.0/24"),
            try NetFacts.route("10.0.0.0/8", via: "10.1.2.1"),
            try NetFacts.route("127.0.0.0/8", type: .local, table: RoutingTable.local),
            try NetFacts.route("10.1.2.255/32", type: .broadcast, table: RoutingTable.local),
            try NetFacts.route("fe80::/64"),
            try NetFacts.route("fd00:1::/64"),
            try NetFacts.route("ff00::/8", type: .multicast, table: RoutingTable.local),
        ]
    }

    @Test func unitRoutesOnlyPass() throws {
        let findings = RouteCheck.evaluate(NetFacts.live(lan), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.pass])
        let finding = try #require(findings.first)
        #expect(finding.statusDetail.contains("7 routes examined"))
        #expect(finding.statusDetail.contains("every table from rtnetlink"))
        let summary = try #require(finding.evidence.last?.data.objectValue)
        #expect(summary.first { $0.0 == "routes_examined" }?.1 == .int(7))
        #expect(finding.evidence.contains { $0.source.hasPrefix("RTM_GETROUTE") })
    }

    @Test func defaultRouteViaInternalGatewayFails() throws {
        let facts = NetFacts.live(lan + [try NetFacts.route("0.0.0.0/0", via: "10.1.2.1")])
        let findings = RouteCheck.evaluate(facts, try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.fail])
        let finding = try #require(findings.first)
        #expect(finding.subject == "route main 0.0.0.0/0")
        #expect(finding.statusDetail.contains("default route"))
        #expect(finding.statusDetail.contains("via 10.1.2.1"))
        #expect(finding.statusDetail.contains("1.0.0.0-9.255.255.255"))
    }

    @Test func splitDefaultFailsTwice() throws {
        let facts = NetFacts.live(lan + [try NetFacts.route("0.0.0.0/1", via: "10.1.2.1"), try NetFacts.route("128.0.0.0/1", via: "10.1.2.1")])
        let findings = RouteCheck.evaluate(facts, try NetFacts.context())
        #expect(findings.map(\.subject) == ["route main 0.0.0.0/1", "route main 128.0.0.0/1"])
        #expect(findings.allSatisfy { $0.status == .fail })
    }

    @Test func narrowPublicRouteFails() throws {
        let facts = NetFacts.live(lan + [try NetFacts.route("93.184.216.34/32", via: "10.1.2.1")])
        #expect(NetFacts.statuses(RouteCheck.evaluate(facts, try NetFacts.context())) == [.fail])
    }

    @Test func specialRangesAndUnitNetworksDoNotCount() throws {
        // 192.168/16, 172.16/12 and TEST-NET are not public; 10/8 is the unit's.
        let routes = try ["192.168.0.0/16", "172.16.0.0/12", "198.51.100.0/24", "10.0.0.0/8", "2001:db8::/32", "fc00::/7"].map { try NetFacts.route($0) }
        #expect(NetFacts.statuses(RouteCheck.evaluate(NetFacts.live(routes), try NetFacts.context())) == [.pass])
    }

    @Test func rejectRoutesPass() throws {
        let routes = [
            try NetFacts.route("0.0.0.0/0", type: .blackhole), try NetFacts.route("::/0", type: .unreachable),
            try NetFacts.route("8.0.0.0/8", type: .prohibit), try NetFacts.route("1.0.0.0/8", type: .throw),
        ]
        let findings = RouteCheck.evaluate(NetFacts.live(lan + routes), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.pass])
        let summary = try #require(findings.first?.evidence.last?.data.objectValue)
        #expect(summary.first { $0.0 == "routes_not_egress" }?.1 == .int(7))
    }

    @Test func ipv6DefaultFails() throws {
        let findings = RouteCheck.evaluate(NetFacts.live(lan + [try NetFacts.route("::/0", via: "fe80::1")]), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.fail])
        #expect(findings.first?.statusDetail.contains("::/0") == true)
        #expect(findings.first?.statusDetail.contains("reaches 2000::-2001:db7:") == true)
    }

    @Test func ruleSelectedTableFailsAndUnselectedTableIsListed() throws {
        let hidden = try NetFacts.route("0.0.0.0/0", table: 100, via: "10.1.2.1")
        let unselected = RouteCheck.evaluate(NetFacts.live(lan + [hidden]), try NetFacts.context())
        #expect(NetFacts.statuses(unselected) == [.pass])
        let summary = try #require(unselected.first?.evidence.last?.data.objectValue)
        #expect(summary.first { $0.0 == "routes_in_unselectable_tables" }?.1.arrayValue?.count == 1)

        let rule = PolicyRule(family: 4, priority: 1000, action: .toTable, table: 100, selector: "from 10.1.2.0/24")
        let selected = RouteCheck.evaluate(NetFacts.live(lan + [hidden], extraRules: [rule]), try NetFacts.context())
        #expect(NetFacts.statuses(selected) == [.fail])
        #expect(selected.first?.subject == "route 100 0.0.0.0/0")
    }

    @Test func vrfRuleMakesEveryTableSelectable() throws {
        let hidden = try NetFacts.route("0.0.0.0/0", table: 1000, via: "10.1.2.1")
        let rule = PolicyRule(family: 4, priority: 1000, action: .toTable, table: 0, l3mdev: true)
        #expect(NetFacts.statuses(RouteCheck.evaluate(NetFacts.live([hidden], extraRules: [rule]), try NetFacts.context())) == [.fail])
    }

    @Test func unicastEntryInLocalTableCounts() throws {
        let planted = try NetFacts.route("0.0.0.0/0", table: RoutingTable.local, via: "10.1.2.1")
        #expect(NetFacts.statuses(RouteCheck.evaluate(NetFacts.live([planted]), try NetFacts.context())) == [.fail])
    }

    @Test func readErrorIsErrorNotPass() throws {
        var facts = NetFacts.live(lan)
        facts.network.routeSources = [SourceRead(kind: "netlink", source: "RTM_GETROUTE dump", state: .error("Operation not permitted"))]
        let findings = RouteCheck.evaluate(facts, try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.error])
        #expect(findings.first?.statusDetail.contains("Operation not permitted") == true)

        let nothing = AuditFacts(root: "/", live: true, observedAt: TestSupport.fixedDate)
        #expect(NetFacts.statuses(RouteCheck.evaluate(nothing, try NetFacts.context())) == [.error])
    }

    @Test func procSourcesSayMainTableOnly() throws {
        let facts = AuditFacts(
            root: "/mnt", live: false, observedAt: TestSupport.fixedDate,
            network: NetworkFacts(
                routes: [try NetFacts.route("10.0.0.0/8")], mainTableOnly: true,
                routeSources: [SourceRead(kind: "procfs", source: "/proc/net/route", state: .ok, count: 1, note: "IPv4 main table only")]))
        let findings = RouteCheck.evaluate(facts, try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.pass])
        #expect(findings.first?.statusDetail.contains("main table only from /proc/net/route") == true)
        let summary = try #require(findings.first?.evidence.last?.data.objectValue)
        #expect(summary.first { $0.0 == "limitation" } != nil)
    }

    @Test func coverageArithmetic() throws {
        let whole = AddressCoverage.publicRemainder(of: try NetFacts.network("0.0.0.0/0"), unitNetworks: [])
        #expect(whole.first.map { AddressCoverage.describe($0, v6: false) } == "1.0.0.0-9.255.255.255")
        #expect(AddressCoverage.publicRemainder(of: try NetFacts.network("10.0.0.0/8"), unitNetworks: []).isEmpty)
        // A unit that owns public space: its own prefix is not egress, a wider one is.
        let unit = [try NetFacts.network("203.0.0.0/16")]
        #expect(AddressCoverage.publicRemainder(of: try NetFacts.network("203.0.0.0/16"), unitNetworks: unit).isEmpty)
        let wider = AddressCoverage.publicRemainder(of: try NetFacts.network("203.0.0.0/15"), unitNetworks: unit)
        #expect(wider.map { AddressCoverage.describe($0, v6: false) } == ["203.1.0.0-203.1.255.255"])
        #expect(!AddressCoverage.publicRemainder(of: try NetFacts.network("2000::/3"), unitNetworks: []).isEmpty)
        #expect(AddressCoverage.publicRemainder(of: try NetFacts.network("::ffff:0:0/96"), unitNetworks: []).isEmpty)
        #expect(AddressCoverage.publicRemainder(of: try NetFacts.network("255.255.255.255/32"), unitNetworks: []).isEmpty)
    }
}

@Suite("net.public-dns")
struct NetworkDNSCheckTests {
    static func facts(_ resolvers: [Resolver], sources: [SourceRead]? = nil) -> AuditFacts {
        let read = sources ?? [
            SourceRead(kind: "file", source: "/etc/resolv.conf", state: .ok, count: resolvers.count),
            SourceRead(kind: "file", source: "/run/systemd/resolve/resolv.conf", state: .missing),
        ]
        return AuditFacts(root: "/", live: true, observedAt: TestSupport.fixedDate, network: NetworkFacts(resolvers: resolvers, resolverSources: read))
    }

    static func resolver(_ text: String, _ origin: ResolverOrigin = .resolvConf) throws -> Resolver {
        Resolver(address: try NetFacts.address(text), origin: origin, source: origin == .resolvConf ? "/etc/resolv.conf" : "/run/systemd/resolve/resolv.conf")
    }

    @Test func unitResolverPasses() throws {
        let findings = DNSCheck.evaluate(Self.facts([try Self.resolver("10.0.0.53")]), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.pass])
        #expect(findings.first?.statusDetail.contains("10.0.0.53") == true)
    }

    @Test func publicAndPrivateOutsideResolversFailEach() throws {
        let findings = DNSCheck.evaluate(Self.facts([try Self.resolver("8.8.8.8"), try Self.resolver("192.168.1.1"), try Self.resolver("10.0.0.53")]), try NetFacts.context())
        #expect(findings.map(\.subject) == ["resolver 8.8.8.8", "resolver 192.168.1.1"])
        #expect(findings.allSatisfy { $0.status == .fail })
    }

    @Test func stubWithUnknownUpstreamIsNotAPass() throws {
        let findings = DNSCheck.evaluate(Self.facts([try Self.resolver("127.0.0.53")]), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.notchecked])
        #expect(findings.first?.statusDetail.contains("unknown") == true)
    }

    @Test func stubFollowsResolvedUpstreams() throws {
        let sources = [
            SourceRead(kind: "file", source: "/etc/resolv.conf", state: .ok, count: 1),
            SourceRead(kind: "file", source: "/run/systemd/resolve/resolv.conf", state: .ok, count: 1),
        ]
        let good = DNSCheck.evaluate(Self.facts([try Self.resolver("127.0.0.53"), try Self.resolver("10.0.0.53", .resolvedUpstream)], sources: sources), try NetFacts.context())
        #expect(NetFacts.statuses(good) == [.pass])
        #expect(good.first?.statusDetail.contains("behind the local stub") == true)
        let bad = DNSCheck.evaluate(Self.facts([try Self.resolver("127.0.0.53"), try Self.resolver("1.1.1.1", .resolvedUpstream)], sources: sources), try NetFacts.context())
        #expect(NetFacts.statuses(bad) == [.fail])
    }

    @Test func configuredFallbackCounts() throws {
        let fallback = Resolver(address: try NetFacts.address("9.9.9.9"), origin: .resolvedFallback, source: "/etc/systemd/resolved.conf")
        let findings = DNSCheck.evaluate(Self.facts([try Self.resolver("10.0.0.53"), fallback]), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.fail])
        #expect(findings.first?.statusDetail.contains("resolved-fallback") == true)
    }

    @Test func unreadableConfigurationIsError() throws {
        let sources = [SourceRead(kind: "file", source: "/etc/resolv.conf", state: .error("Permission denied"))]
        let findings = DNSCheck.evaluate(Self.facts([], sources: sources), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.error])
    }
}

@Suite("net.interfaces")
struct NetworkInterfaceCheckTests {
    static func facts(_ interfaces: [NetworkInterface]) -> AuditFacts {
        AuditFacts(
            root: "/", live: true, observedAt: TestSupport.fixedDate,
            network: NetworkFacts(interfaces: interfaces, interfaceSources: [SourceRead(kind: "netlink", source: "RTM_GETLINK dump", state: .ok, count: interfaces.count)]))
    }

    static func address(_ text: String) throws -> InterfaceAddress {
        let parts = text.split(separator: "/")
        let length = try #require(parts.last.flatMap { Int($0) })
        return InterfaceAddress(address: try NetFacts.address(String(parts[0])), prefixLength: length)
    }

    let lo = NetworkInterface(name: "lo", index: 1, linkType: 772, flags: 0x9, operState: "unknown")

    @Test func wiredDesktopPasses() throws {
        let eth = NetworkInterface(name: "eth0", index: 2, linkType: 1, flags: 0x1003, operState: "up", driver: "e1000e", bus: "pci", addresses: [try Self.address("10.1.2.5/24")])
        let findings = InterfaceCheck.evaluate(Self.facts([lo, eth]), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.pass])
        #expect(findings.first?.statusDetail.contains("2 interfaces examined (lo, eth0)") == true)
    }

    @Test func publicAddressOnUpInterfaceFails() throws {
        let up = NetworkInterface(name: "eth1", linkType: 1, flags: 0x1003, addresses: [try Self.address("93.184.216.34/24")])
        var down = up
        down.name = "eth2"
        down.flags = 0x1002
        let findings = InterfaceCheck.evaluate(Self.facts([up, down]), try NetFacts.context())
        #expect(findings.map(\.subject) == ["interface eth1"])
        #expect(findings.first?.statusDetail.contains("public address 93.184.216.34/24") == true)
    }

    @Test func publicHostAddressWithoutInterfaceFails() throws {
        var facts = Self.facts([lo])
        facts.network.unattributedAddresses = [try NetFacts.address("10.1.2.5"), try NetFacts.address("93.184.216.34")]
        let findings = InterfaceCheck.evaluate(facts, try NetFacts.context())
        #expect(findings.map(\.subject) == ["address 93.184.216.34"])
        #expect(findings.first?.status == .fail)
    }

    @Test func tunnelsFailWhetherUpOrNot() throws {
        let tunnels = [
            NetworkInterface(name: "wg0", kind: "wireguard", linkType: 65534, flags: 0x91),
            NetworkInterface(name: "tun0", linkType: 65534, flags: 0x1090, tunFlags: 0x1001),
            NetworkInterface(name: "ppp0", linkType: 512, flags: 0x10d1),
            NetworkInterface(name: "gre1", kind: "gre", linkType: 778, flags: 0x80),
            NetworkInterface(name: "sit1", linkType: 776, flags: 0x80),
        ]
        let findings = InterfaceCheck.evaluate(Self.facts([lo] + tunnels), try NetFacts.context()).filter { $0.subject.hasPrefix("interface ") }
        #expect(findings.count == 5)
        #expect(findings.allSatisfy { $0.status == .fail && $0.statusDetail.contains("tunnel") })
    }

    @Test func downFallbackTunnelDevicesPass() throws {
        let fallback = [NetworkInterface(name: "tunl0", kind: "ipip", linkType: 768, flags: 0x80), NetworkInterface(name: "sit0", kind: "sit", linkType: 776, flags: 0x80)]
        #expect(NetFacts.statuses(InterfaceCheck.evaluate(Self.facts(fallback), try NetFacts.context())) == [.pass])
        var up = fallback[0]
        up.flags = 0x81
        #expect(NetFacts.statuses(InterfaceCheck.evaluate(Self.facts([up]), try NetFacts.context())) == [.fail])
    }

    @Test func usbNetworkLinksFail() throws {
        let links = [
            NetworkInterface(name: "usb0", flags: 0x1002, driver: "rndis_host", bus: "usb"),
            NetworkInterface(name: "eth9", flags: 0x1002, driver: "ipheth"),
            NetworkInterface(name: "enx001122", flags: 0x1003, driver: "some_new_driver", bus: "usb"),
            NetworkInterface(name: "wwan0", flags: 0x1002, devType: "wwan"),
        ]
        let findings = InterfaceCheck.evaluate(Self.facts(links), try NetFacts.context())
        #expect(findings.map(\.status) == [.fail, .fail, .fail, .fail])
        #expect(findings[0].statusDetail.contains("driver rndis_host"))
        #expect(findings[2].statusDetail.contains("USB bus"))
        #expect(findings[3].statusDetail.contains("cellular"))
    }

    static func context(links: [String]) throws -> CheckContext {
        var policy = try TestSupport.defaultPolicy()
        policy.allowedLinks = links
        return CheckContext(policy: policy, hostID: "host-test", observedAt: TestSupport.fixedDate)
    }

    static let eth0 = NetworkInterface(name: "eth0", index: 2, linkType: 1, flags: 0x1003, operState: "up", driver: "e1000e", bus: "pci")

    @Test func aSecondLinkUpFailsUnlessThePolicyNamesIt() throws {
        var eth1 = Self.eth0
        eth1.name = "eth1"
        eth1.index = 3
        var down = Self.eth0
        down.name = "eth2"
        down.flags = 0x1002
        let findings = InterfaceCheck.evaluate(Self.facts([lo, Self.eth0, eth1, down]), try NetFacts.context())
        #expect(findings.map(\.subject) == ["links up"])
        #expect(findings.first?.status == .fail)
        #expect(findings.first?.statusDetail.contains("2 links are up (eth0, eth1)") == true)
        // Named in the policy (exactly or by prefix): both may be up.
        #expect(NetFacts.statuses(InterfaceCheck.evaluate(Self.facts([lo, Self.eth0, eth1]), try Self.context(links: ["eth0", "eth1"]))) == [.pass])
        #expect(NetFacts.statuses(InterfaceCheck.evaluate(Self.facts([lo, Self.eth0, eth1]), try Self.context(links: ["eth*"]))) == [.pass])
        // A list that leaves one out fails that one, even alone.
        let listed = InterfaceCheck.evaluate(Self.facts([lo, eth1]), try Self.context(links: ["eth0"]))
        #expect(listed.map(\.subject) == ["interface eth1"])
        #expect(listed.first?.statusDetail.contains("networks.links (eth0) does not name it") == true)
        // One link up, nothing listed: the default.
        let single = InterfaceCheck.evaluate(Self.facts([lo, Self.eth0, down]), try NetFacts.context())
        #expect(NetFacts.statuses(single) == [.pass])
        #expect(single.first?.statusDetail.contains("1 link(s) up (one allowed)") == true)
    }

    @Test func bridgedLinksFailAndBondPortsCountThroughTheirBond() throws {
        let bridge = NetworkInterface(name: "br0", index: 10, kind: "bridge", linkType: 1, flags: 0x1003)
        var port = Self.eth0
        port.masterIndex = 10
        port.master = "br0"
        let findings = InterfaceCheck.evaluate(Self.facts([lo, bridge, port]), try NetFacts.context())
        #expect(findings.map(\.subject) == ["interface eth0"])
        #expect(findings.first?.statusDetail.contains("is bridged into br0") == true)
        #expect(InterfaceCheck.evaluate(Self.facts([lo, bridge, port]), try Self.context(links: ["br0", "eth0"])).map(\.status) == [.pass])
        // The ports of a bond are the bond's: one link up.
        let bond = NetworkInterface(name: "bond0", index: 11, kind: "bond", linkType: 1, flags: 0x1003)
        var first = Self.eth0
        first.master = "bond0"
        var second = first
        second.name = "eth1"
        #expect(NetFacts.statuses(InterfaceCheck.evaluate(Self.facts([lo, bond, first, second]), try NetFacts.context())) == [.pass])
    }

    @Test func unreadableInterfacesAreError() throws {
        var facts = Self.facts([])
        facts.network.interfaceSources = [SourceRead(kind: "sysfs", source: "/sys/class/net", state: .error("not present"))]
        #expect(NetFacts.statuses(InterfaceCheck.evaluate(facts, try NetFacts.context())) == [.error])
    }
}

@Suite("net.sockets")
struct NetworkSocketCheckTests {
    static func socket(_ transport: String, _ local: String, _ localPort: UInt16, _ remote: String, _ remotePort: UInt16, _ state: String) throws -> SocketEntry {
        SocketEntry(
            transport: transport, local: try NetFacts.address(local), localPort: localPort, remote: try NetFacts.address(remote), remotePort: remotePort,
            state: state, uid: 0, source: "/proc/net/\(transport)")
    }

    static func facts(_ sockets: [SocketEntry]) -> AuditFacts {
        AuditFacts(
            root: "/", live: true, observedAt: TestSupport.fixedDate,
            network: NetworkFacts(sockets: sockets, socketSources: [SourceRead(kind: "procfs", source: "/proc/net/tcp", state: .ok, count: sockets.count)]))
    }

    @Test func unitPeersAndLoopbackPass() throws {
        let sockets = [
            try Self.socket("tcp", "10.1.2.5", 22, "10.1.2.9", 50000, "established"),
            try Self.socket("tcp", "127.0.0.1", 631, "0.0.0.0", 0, "listen"),
            try Self.socket("tcp", "127.0.0.1", 40000, "127.0.0.1", 631, "established"),
            try Self.socket("tcp", "::ffff:127.0.0.1", 5000, "::ffff:127.0.0.1", 6000, "established"),
        ]
        let findings = SocketCheck.evaluate(Self.facts(sockets), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.pass])
        #expect(findings.first?.statusDetail.contains("3 loopback ignored, 1 with a peer") == true)
    }

    @Test func outsidePeersFailGroupedByPeer() throws {
        let sockets = [
            try Self.socket("tcp", "10.1.2.5", 41000, "93.184.216.34", 443, "established"),
            try Self.socket("tcp", "10.1.2.5", 41001, "93.184.216.34", 443, "time-wait"),
            try Self.socket("udp", "10.1.2.5", 5353, "192.168.1.1", 53, "established"),
            try Self.socket("tcp", "fd00::5", 41002, "2606:4700::1111", 443, "syn-sent"),
        ]
        let findings = SocketCheck.evaluate(Self.facts(sockets), try NetFacts.context())
        #expect(findings.map(\.subject) == ["peer tcp 93.184.216.34:443", "peer tcp [2606:4700::1111]:443", "peer udp 192.168.1.1:53"])
        #expect(findings.allSatisfy { $0.status == .fail })
        #expect(findings[0].statusDetail.contains("2 socket(s)"))
    }

    @Test func allowedDestinationPasses() throws {
        let policy = try TestSupport.policy("""
            id: t
            version: "1"
            profile: classified
            networks:
              unit: [10.0.0.0/8]
              allowed_destinations: [198.51.100.10/32]
            """)
        let context = CheckContext(policy: policy, hostID: "h", observedAt: TestSupport.fixedDate)
        let findings = SocketCheck.evaluate(Self.facts([try Self.socket("tcp", "10.1.2.5", 41000, "198.51.100.10", 443, "established")]), context)
        #expect(NetFacts.statuses(findings) == [.pass])
    }

    @Test func wildcardListenersAreInformational() throws {
        let sockets = [
            try Self.socket("tcp", "0.0.0.0", 22, "0.0.0.0", 0, "listen"),
            try Self.socket("tcp", "::", 22, "::", 0, "listen"),
            try Self.socket("udp", "0.0.0.0", 68, "0.0.0.0", 0, "unconnected"),
            try Self.socket("tcp", "10.1.2.5", 80, "0.0.0.0", 0, "listen"),
        ]
        let findings = SocketCheck.evaluate(Self.facts(sockets), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.pass, .informational])
        #expect(findings.last?.statusDetail.contains("3 socket(s) listen on every address") == true)
        #expect(findings.last?.statusDetail.contains("tcp [::]:22") == true)
    }

    @Test func unreadableSocketTablesAreError() throws {
        var facts = Self.facts([])
        facts.network.socketSources = [SourceRead(kind: "procfs", source: "/proc/net/tcp", state: .missing)]
        #expect(NetFacts.statuses(SocketCheck.evaluate(facts, try NetFacts.context())) == [.error])
        facts.network.socketSources = [SourceRead(kind: "procfs", source: "/proc/net/tcp", state: .error("Permission denied"))]
        #expect(NetFacts.statuses(SocketCheck.evaluate(facts, try NetFacts.context())) == [.error])
    }
}
