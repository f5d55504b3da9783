/// Whether a source could be read, and why not when it could not.
public enum SourceState: Sendable, Equatable {
    /// Read in full.
    case ok
    /// Not present (a file that does not exist); not an error by itself.
    case missing
    /// Present or expected but unreadable; the reason says why.
    case error(String)

    /// `ok`, `missing` or `error`.
    public var name: String {
        switch self {
        case .ok: return "ok"
        case .missing: return "missing"
        case .error: return "error"
        }
    }

    /// The failure reason, when there is one.
    public var reason: String? {
        if case .error(let reason) = self { return reason }
        return nil
    }
}

/// One source a probe read: a file, a directory or a netlink request, and what came of it.
public struct SourceRead: Sendable, Equatable, JSONRepresentable {
    /// `netlink`, `procfs`, `sysfs` or `file`.
    public var kind: String
    /// The path, or the netlink request (e.g. `RTM_GETROUTE dump`).
    public var source: String
    /// Whether it was read.
    public var state: SourceState
    /// How many records it gave (routes, lines, sockets), when read.
    public var count: Int?
    /// What the reader needs a person to know about this source (e.g. "main table only").
    public var note: String?
    /// The file actually read when `source` is reached through symbolic links (resolved inside
    /// the root); nil when it is `source` itself.
    public var resolvedPath: String?

    /// Makes a source record; a `resolvedPath` equal to `source` is dropped.
    public init(kind: String, source: String, state: SourceState, count: Int? = nil, note: String? = nil, resolvedPath: String? = nil) {
        self.kind = kind
        self.source = source
        self.state = state
        self.count = count
        self.note = note
        self.resolvedPath = resolvedPath == source ? nil : resolvedPath
    }

    /// `{kind, source, resolved_path?, state, reason?, count?, note?}`.
    public var json: JSONValue {
        var object: [(String, JSONValue)] = [("kind", .string(kind)), ("source", .string(source))]
        if let resolvedPath { object.append(("resolved_path", .string(resolvedPath))) }
        object.append(("state", .string(state.name)))
        if let reason = state.reason { object.append(("reason", .string(reason))) }
        if let count { object.append(("count", .int(Int64(count)))) }
        if let note { object.append(("note", .string(note))) }
        return .object(object)
    }
}

/// The kernel's route types (`RTN_*`).
public enum RouteType: String, Sendable, Equatable, CaseIterable {
    case unspec, unicast, local, broadcast, anycast, multicast, blackhole, unreachable, prohibit
    case `throw`, nat, xresolve

    /// The type for an `RTN_*` number.
    public init(kernelValue: UInt8) {
        let all: [RouteType] = [.unspec, .unicast, .local, .broadcast, .anycast, .multicast, .blackhole, .unreachable, .prohibit, .throw, .nat, .xresolve]
        self = Int(kernelValue) < all.count ? all[Int(kernelValue)] : .unspec
    }

    /// Whether packets matching the route are refused or dropped instead of sent.
    public var isReject: Bool { self == .blackhole || self == .unreachable || self == .prohibit }
}

/// Well-known routing table ids.
public enum RoutingTable {
    /// `local` (255).
    public static let local: UInt32 = 255
    /// `main` (254).
    public static let main: UInt32 = 254
    /// `default` (253).
    public static let `default`: UInt32 = 253

    /// `main`, `local`, `default`, or the number.
    public static func name(_ table: UInt32) -> String {
        switch table {
        case local: return "local"
        case main: return "main"
        case `default`: return "default"
        default: return String(table)
        }
    }
}

/// One route of one table.
public struct Route: Sendable, Equatable, JSONRepresentable {
    /// The routing table id (254 main, 255 local, 253 default).
    public var table: UInt32
    /// Unicast, local, blackhole, …
    public var type: RouteType
    /// The destination prefix; its family is the route's family.
    public var destination: IPNetwork
    /// The next hop, when there is one (the first one of a multipath route).
    public var gateway: IPAddress?
    /// The output device name (or `ifindex N` when the name is unknown).
    public var device: String?
    /// The route's metric, when known.
    public var metric: UInt32?
    /// Where it was read: `netlink` or the proc file.
    public var source: String

    /// Makes a route.
    public init(table: UInt32, type: RouteType, destination: IPNetwork, gateway: IPAddress? = nil, device: String? = nil, metric: UInt32? = nil, source: String) {
        self.table = table
        self.type = type
        self.destination = destination
        self.gateway = gateway
        self.device = device
        self.metric = metric
        self.source = source
    }

    /// `4` or `6`.
    public var family: Int { destination.address.isV6 ? 6 : 4 }

    /// `ip route` style text: `unicast 0.0.0.0/0 via 10.0.0.1 dev eth0 table main`.
    public var description: String {
        var text = "\(type.rawValue) \(destination)"
        if let gateway { text += " via \(gateway)" }
        if let device { text += " dev \(device)" }
        text += " table \(RoutingTable.name(table))"
        return text
    }

    /// `{family, table, type, destination, gateway?, device?, metric?, source}`.
    public var json: JSONValue {
        var object: [(String, JSONValue)] = [
            ("family", .int(Int64(family))), ("table", .string(RoutingTable.name(table))), ("type", .string(type.rawValue)),
            ("destination", .string(destination.description)),
        ]
        if let gateway { object.append(("gateway", .string(gateway.description))) }
        if let device { object.append(("device", .string(device))) }
        if let metric { object.append(("metric", .int(Int64(metric)))) }
        object.append(("source", .string(source)))
        return .object(object)
    }
}

/// What a policy rule does when it matches (`FR_ACT_*`).
public enum RuleAction: String, Sendable, Equatable {
    case toTable = "lookup", goto, nop, blackhole, unreachable, prohibit, unknown

    /// The action for an `FR_ACT_*` number.
    public init(kernelValue: UInt8) {
        switch kernelValue {
        case 1: self = .toTable
        case 2: self = .goto
        case 3: self = .nop
        case 6: self = .blackhole
        case 7: self = .unreachable
        case 8: self = .prohibit
        default: self = .unknown
        }
    }
}

/// One policy routing rule (`ip rule`).
public struct PolicyRule: Sendable, Equatable, JSONRepresentable {
    /// 4 or 6.
    public var family: Int
    /// The rule's priority (lower first).
    public var priority: UInt32
    /// What it does.
    public var action: RuleAction
    /// The table it looks up (for `lookup`); 0 with `l3mdev` means the device's table.
    public var table: UInt32
    /// Whether it picks the table from an L3 master device (VRF).
    public var l3mdev: Bool
    /// The selector, `ip rule` style (`from all`, `from 10.0.0.0/8 fwmark 0x1`, …).
    public var selector: String

    /// Makes a rule.
    public init(family: Int, priority: UInt32, action: RuleAction, table: UInt32, l3mdev: Bool = false, selector: String = "from all") {
        self.family = family
        self.priority = priority
        self.action = action
        self.table = table
        self.l3mdev = l3mdev
        self.selector = selector
    }

    /// `{family, priority, selector, action, table}`.
    public var json: JSONValue {
        var object: [(String, JSONValue)] = [
            ("family", .int(Int64(family))), ("priority", .int(Int64(priority))), ("selector", .string(selector)),
            ("action", .string(action.rawValue)),
        ]
        if action == .toTable { object.append(("table", .string(l3mdev ? "l3mdev" : RoutingTable.name(table)))) }
        return .object(object)
    }
}

/// An address on an interface.
public struct InterfaceAddress: Sendable, Equatable {
    /// The address.
    public var address: IPAddress
    /// Its prefix length.
    public var prefixLength: Int

    /// Makes an interface address.
    public init(address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// `ADDRESS/LENGTH`.
    public var description: String { "\(address)/\(prefixLength)" }
}

/// A network interface: what it is, whether it is up, what drives it, its addresses.
public struct NetworkInterface: Sendable, Equatable, JSONRepresentable {
    /// The name (`eth0`).
    public var name: String
    /// The kernel's index, when known.
    public var index: Int?
    /// The link kind (`IFLA_INFO_KIND`, or sysfs `DEVTYPE`): `wireguard`, `vlan`, `bridge`, `tun`, …
    public var kind: String?
    /// The ARPHRD link type (1 ether, 512 ppp, 768 ipip, 776 sit, 778 gre, 65534 none).
    public var linkType: Int?
    /// The `IFF_*` flags.
    public var flags: UInt32
    /// The operational state (`up`, `down`, `unknown`, …).
    public var operState: String?
    /// The bound driver (`device/driver` link name), when the interface has a device.
    public var driver: String?
    /// The bus of the underlying device (`usb`, `pci`, …), when it has one.
    public var bus: String?
    /// `uevent` DEVTYPE (`wlan`, `wwan`, `wireguard`, …).
    public var devType: String?
    /// `tun_flags`, for tun/tap devices (0x1 tun, 0x2 tap).
    public var tunFlags: UInt32?
    /// Whether sysfs shows a `wireless` or `phy80211` entry.
    public var isWireless: Bool
    /// Addresses on the interface.
    public var addresses: [InterfaceAddress]
    /// The index of the device this one is enslaved to (`IFLA_MASTER`: a bridge, bond or team), when any.
    public var masterIndex: Int?
    /// That device's name, once known.
    public var master: String?

    /// Makes an interface.
    public init(
        name: String, index: Int? = nil, kind: String? = nil, linkType: Int? = nil, flags: UInt32 = 0, operState: String? = nil,
        driver: String? = nil, bus: String? = nil, devType: String? = nil, tunFlags: UInt32? = nil, isWireless: Bool = false,
        addresses: [InterfaceAddress] = []
    ) {
        self.name = name
        self.index = index
        self.kind = kind
        self.linkType = linkType
        self.flags = flags
        self.operState = operState
        self.driver = driver
        self.bus = bus
        self.devType = devType
        self.tunFlags = tunFlags
        self.isWireless = isWireless
        self.addresses = addresses
    }

    /// Administratively up (`IFF_UP`).
    public var isUp: Bool { flags & 0x1 != 0 }

    /// Whether this is the loopback device (`IFF_LOOPBACK`).
    public var isLoopback: Bool { flags & 0x8 != 0 || linkType == 772 }

    /// `{name, index?, kind?, link_type?, flags, up, operstate?, driver?, bus?, devtype?, tun_flags?, master?, wireless, addresses}`.
    public var json: JSONValue {
        var object: [(String, JSONValue)] = [("name", .string(name))]
        if let index { object.append(("index", .int(Int64(index)))) }
        if let kind { object.append(("kind", .string(kind))) }
        if let linkType { object.append(("link_type", .int(Int64(linkType)))) }
        object.append(("flags", .string("0x" + String(flags, radix: 16))))
        object.append(("up", .bool(isUp)))
        if let operState { object.append(("operstate", .string(operState))) }
        if let driver { object.append(("driver", .string(driver))) }
        if let bus { object.append(("bus", .string(bus))) }
        if let devType { object.append(("devtype", .string(devType))) }
        if let tunFlags { object.append(("tun_flags", .string("0x" + String(tunFlags, radix: 16)))) }
        if let master { object.append(("master", .string(master))) }
        object.append(("wireless", .bool(isWireless)))
        object.append(("addresses", .array(addresses.map { .string($0.description) })))
        return .object(object)
    }
}

/// An IP socket from procfs.
public struct SocketEntry: Sendable, Equatable, JSONRepresentable {
    /// `tcp` or `udp`.
    public var transport: String
    /// The local address.
    public var local: IPAddress
    /// The local port.
    public var localPort: UInt16
    /// The remote address (unspecified when not connected).
    public var remote: IPAddress
    /// The remote port.
    public var remotePort: UInt16
    /// The TCP state name (`established`, `listen`, …); UDP: `established` when connected, else `unconnected`.
    public var state: String
    /// The owning uid.
    public var uid: UInt32?
    /// The file it came from.
    public var source: String

    /// Makes a socket entry.
    public init(transport: String, local: IPAddress, localPort: UInt16, remote: IPAddress, remotePort: UInt16, state: String, uid: UInt32? = nil, source: String) {
        self.transport = transport
        self.local = local
        self.localPort = localPort
        self.remote = remote
        self.remotePort = remotePort
        self.state = state
        self.uid = uid
        self.source = source
    }

    /// Whether it listens (TCP `listen`, or an unconnected UDP socket).
    public var isListening: Bool { state == "listen" || (transport == "udp" && remote.isUnspecified) }

    /// `tcp 10.0.0.5:22 -> 10.0.0.9:50000 established`.
    public var description: String {
        func endpoint(_ address: IPAddress, _ port: UInt16) -> String { address.isV6 ? "[\(address)]:\(port)" : "\(address):\(port)" }
        return "\(transport) \(endpoint(local, localPort)) -> \(endpoint(remote, remotePort)) \(state)"
    }

    /// `{transport, local, remote, state, uid?, source}`.
    public var json: JSONValue {
        var object: [(String, JSONValue)] = [
            ("transport", .string(transport)), ("local", .string(local.description)), ("local_port", .int(Int64(localPort))),
            ("remote", .string(remote.description)), ("remote_port", .int(Int64(remotePort))), ("state", .string(state)),
        ]
        if let uid { object.append(("uid", .int(Int64(uid)))) }
        object.append(("source", .string(source)))
        return .object(object)
    }
}

/// Where a resolver address was configured.
public enum ResolverOrigin: String, Sendable, Equatable {
    /// A `nameserver` line of `/etc/resolv.conf`: what the C library asks.
    case resolvConf = "resolv.conf"
    /// systemd-resolved's upstream list (`/run/systemd/resolve/resolv.conf`).
    case resolvedUpstream = "resolved-upstream"
    /// `DNS=` in systemd-resolved configuration.
    case resolvedConfig = "resolved-dns"
    /// `FallbackDNS=` in systemd-resolved configuration.
    case resolvedFallback = "resolved-fallback"
}

/// One configured DNS resolver.
public struct Resolver: Sendable, Equatable, JSONRepresentable {
    /// The server's address.
    public var address: IPAddress
    /// How it was configured.
    public var origin: ResolverOrigin
    /// The file it came from.
    public var source: String

    /// Makes a resolver.
    public init(address: IPAddress, origin: ResolverOrigin, source: String) {
        self.address = address
        self.origin = origin
        self.source = source
    }

    /// `{address, origin, source}`.
    public var json: JSONValue {
        ["address": .string(address.description), "origin": .string(origin.rawValue), "source": .string(source)]
    }
}

/// Routes, policy rules, interfaces, addresses, sockets and resolvers, with their sources.
public struct NetworkFacts: Sendable, Equatable {
    /// Every route read (all tables when from netlink).
    public var routes: [Route]
    /// Policy rules; empty with `rulesKnown == false` when they could not be read (files only).
    public var rules: [PolicyRule]
    /// Whether the policy rules were read (netlink); false under a root, where only main-table files exist.
    public var rulesKnown: Bool
    /// Whether routes come from the proc files, which show the main table alone (IPv4).
    public var mainTableOnly: Bool
    /// What was read for routes and rules.
    public var routeSources: [SourceRead]
    /// Interfaces with their addresses.
    public var interfaces: [NetworkInterface]
    /// What was read for interfaces and addresses.
    public var interfaceSources: [SourceRead]
    /// IPv4 addresses the host owns whose interface is unknown (from /proc/net/fib_trie under a root).
    public var unattributedAddresses: [IPAddress]
    /// TCP and UDP sockets.
    public var sockets: [SocketEntry]
    /// What was read for sockets.
    public var socketSources: [SourceRead]
    /// Configured resolvers.
    public var resolvers: [Resolver]
    /// What was read for resolvers.
    public var resolverSources: [SourceRead]

    /// Makes network facts (empty by default: nothing read).
    public init(
        routes: [Route] = [], rules: [PolicyRule] = [], rulesKnown: Bool = false, mainTableOnly: Bool = false, routeSources: [SourceRead] = [],
        interfaces: [NetworkInterface] = [], interfaceSources: [SourceRead] = [], unattributedAddresses: [IPAddress] = [], sockets: [SocketEntry] = [], socketSources: [SourceRead] = [],
        resolvers: [Resolver] = [], resolverSources: [SourceRead] = []
    ) {
        self.routes = routes
        self.rules = rules
        self.rulesKnown = rulesKnown
        self.mainTableOnly = mainTableOnly
        self.routeSources = routeSources
        self.interfaces = interfaces
        self.interfaceSources = interfaceSources
        self.unattributedAddresses = unattributedAddresses
        self.sockets = sockets
        self.socketSources = socketSources
        self.resolvers = resolvers
        self.resolverSources = resolverSources
    }
}
