import Logging
import MijianCore

/// Observes the network facts of a host.
public enum NetworkProbe {
    /// Where the live machine's TCP sockets come from: the kernel's sock_diag dump, taken when the
    /// sockets are read unless an audit started it earlier (`SocketDump`).
    public typealias TCPSource = @Sendable () throws(MijianError) -> [SocketEntry]

    /// The kernel's dump, taken when the sockets are read.
    public static let kernelTCP: TCPSource = { () throws(MijianError) in try SockDiag.tcpSockets() }

    /// The network groups of `sets` (all four unless told) from `root`, and from the live kernel
    /// (rtnetlink) when `live`.
    public static func observe(
        root: HostRoot, live: Bool, logger: Logger, collecting sets: Set<FactSet> = [.routes, .interfaces, .sockets, .resolvers],
        tcpSockets: @escaping TCPSource = kernelTCP
    ) -> NetworkFacts {
        let kernel = sets.contains(.routes) || sets.contains(.interfaces)
        if live, kernel {
            do {
                let socket = try NetlinkSocket()
                return observe(root: root, transport: socket, logger: logger, collecting: sets, liveSockets: true, tcpSockets: tcpSockets)
            } catch {
                logger.warning("netlink unavailable", metadata: ["net.error": "\(error)"])
                var facts = NetworkFacts()
                let failed = SourceRead(kind: "netlink", source: "NETLINK_ROUTE socket", state: .error(error.description))
                if sets.contains(.routes) { facts.routeSources = [failed] }
                if sets.contains(.interfaces) { facts.interfaceSources = [failed] }
                readFiles(root: root, live: true, into: &facts, collecting: sets, tcpSockets: tcpSockets)
                return facts
            }
        }
        var facts = NetworkFacts()
        if sets.contains(.routes) { readProcRoutes(root: root, into: &facts) }
        if sets.contains(.interfaces) {
            // An attribute or link of an interface that could not be read (not absent) makes the
            // interfaces an error: a tunnel whose tun_flags were refused is not a plain link.
            let (interfaces, failures) = root.collectingFailures { root in SysfsInterfaces.read(root: root, sources: &facts.interfaceSources) }
            facts.interfaces = interfaces
            facts.interfaceSources += failures.map(SourceRead.init(failure:))
            readProcAddresses(root: root, into: &facts)
            readFibTrie(root: root, into: &facts)
        }
        readFiles(root: root, live: live, into: &facts, collecting: sets, tcpSockets: tcpSockets)
        return facts
    }

    /// Live observation with routes, rules, links and addresses from `transport` (rtnetlink),
    /// and sockets, resolvers and driver details from files under `root`; only the groups of `sets`.
    /// Routes name their devices, so links are dumped for routes too, but addresses and sysfs
    /// details only for interfaces. With `liveSockets`, TCP sockets come from this kernel's sock_diag.
    public static func observe(
        root: HostRoot, transport: any NetlinkTransport, logger: Logger,
        collecting sets: Set<FactSet> = [.routes, .interfaces, .sockets, .resolvers], liveSockets: Bool = false,
        tcpSockets: @escaping TCPSource = kernelTCP
    ) -> NetworkFacts {
        var facts = NetworkFacts()
        let client = RtnetlinkClient(transport: transport)
        var names: [Int: String] = [:]
        let interfaces = sets.contains(.interfaces)
        if interfaces || sets.contains(.routes) {
            do {
                var links = try client.links()
                if interfaces {
                    facts.interfaceSources.append(SourceRead(kind: "netlink", source: "RTM_GETLINK dump", state: .ok, count: links.count))
                }
                for link in links { if let index = link.index { names[index] = link.name } }
                if interfaces {
                    do {
                        let addresses = try client.addresses()
                        facts.interfaceSources.append(SourceRead(kind: "netlink", source: "RTM_GETADDR dump", state: .ok, count: addresses.count))
                        for entry in addresses {
                            if let position = links.firstIndex(where: { $0.index == entry.index }) { links[position].addresses.append(entry.address) }
                        }
                    } catch {
                        facts.interfaceSources.append(SourceRead(kind: "netlink", source: "RTM_GETADDR dump", state: .error(error.description)))
                    }
                    let (enriched, failures) = root.collectingFailures { root in
                        links.map { link in
                            var link = SysfsInterfaces.enrich(link, root: root)
                            if let master = link.masterIndex { link.master = names[master] ?? "ifindex \(master)" }
                            return link
                        }
                    }
                    facts.interfaces = enriched
                    facts.interfaceSources += failures.map(SourceRead.init(failure:))
                }
            } catch {
                logger.warning("RTM_GETLINK failed", metadata: ["net.error": "\(error)"])
                if interfaces {
                    facts.interfaceSources.append(SourceRead(kind: "netlink", source: "RTM_GETLINK dump", state: .error(error.description)))
                }
            }
        }
        if sets.contains(.routes) {
            do {
                facts.routes = try client.routes(interfaceNames: names)
                let tables = Set(facts.routes.map(\.table)).sorted().map(RoutingTable.name).joined(separator: ", ")
                facts.routeSources.append(SourceRead(
                    kind: "netlink", source: "RTM_GETROUTE dump (IPv4 and IPv6, all tables)", state: .ok, count: facts.routes.count,
                    note: tables.isEmpty ? "no tables" : "tables \(tables)"))
            } catch {
                logger.warning("RTM_GETROUTE failed", metadata: ["net.error": "\(error)"])
                facts.routeSources.append(SourceRead(kind: "netlink", source: "RTM_GETROUTE dump (IPv4 and IPv6, all tables)", state: .error(error.description)))
            }
            do {
                facts.rules = try client.rules()
                facts.rulesKnown = true
                facts.routeSources.append(SourceRead(kind: "netlink", source: "RTM_GETRULE dump (IPv4 and IPv6)", state: .ok, count: facts.rules.count))
            } catch {
                logger.warning("RTM_GETRULE failed", metadata: ["net.error": "\(error)"])
                facts.routeSources.append(SourceRead(kind: "netlink", source: "RTM_GETRULE dump (IPv4 and IPv6)", state: .error(error.description)))
            }
        }
        readFiles(root: root, live: liveSockets, into: &facts, collecting: sets, tcpSockets: tcpSockets)
        return facts
    }

    /// The groups that come from files on the live machine too: sockets (TCP from sock_diag when
    /// `live`) and resolvers.
    static func readFiles(
        root: HostRoot, live: Bool, into facts: inout NetworkFacts, collecting sets: Set<FactSet>,
        tcpSockets: @escaping TCPSource = kernelTCP
    ) {
        if sets.contains(.sockets) { readSockets(root: root, live: live, into: &facts, tcpFromKernel: tcpSockets) }
        if sets.contains(.resolvers) { readResolvers(root: root, into: &facts) }
    }

    static func readProcRoutes(root: HostRoot, into facts: inout NetworkFacts) {
        facts.mainTableOnly = true
        facts.rulesKnown = false
        let files: [(String, String, (String, String) throws(MijianError) -> [Route])] = [
            ("/proc/net/route", "IPv4 main table only: policy rules and other tables are not in procfs", ProcNetParsers.ipv4Routes),
            ("/proc/net/ipv6_route", "IPv6 routes without table ids: policy rules are not in procfs", ProcNetParsers.ipv6Routes),
        ]
        for (path, note, parse) in files {
            do {
                // A missing route file means the image's procfs was not captured: that is an error, not "no routes".
                let text = try root.readText(path)
                let routes = try parse(text, path)
                facts.routes += routes
                facts.routeSources.append(SourceRead(kind: "procfs", source: path, state: .ok, count: routes.count, note: note))
            } catch {
                facts.routeSources.append(SourceRead(kind: "procfs", source: path, state: .error(error.description), note: note))
            }
        }
    }

    static func readProcAddresses(root: HostRoot, into facts: inout NetworkFacts) {
        let path = "/proc/net/if_inet6"
        do {
            guard let text = try root.readTextIfPresent(path) else {
                facts.interfaceSources.append(SourceRead(kind: "procfs", source: path, state: .missing, note: "IPv6 addresses: IPv6 disabled or not captured"))
                return
            }
            let entries = try ProcNetParsers.ipv6Addresses(text, path: path)
            for entry in entries {
                if let position = facts.interfaces.firstIndex(where: { $0.name == entry.name }) {
                    facts.interfaces[position].addresses.append(entry.address)
                } else {
                    facts.interfaces.append(NetworkInterface(name: entry.name, index: entry.index, addresses: [entry.address]))
                }
            }
            facts.interfaceSources.append(SourceRead(kind: "procfs", source: path, state: .ok, count: entries.count, note: "IPv6 addresses per interface"))
        } catch {
            facts.interfaceSources.append(SourceRead(kind: "procfs", source: path, state: .error(error.description)))
        }
    }

    /// The host's IPv4 addresses from the trie, since IPv4 addresses per interface are not in procfs.
    static func readFibTrie(root: HostRoot, into facts: inout NetworkFacts) {
        let path = "/proc/net/fib_trie"
        do {
            guard let text = try root.readTextIfPresent(path, limit: 64 << 20) else {
                facts.interfaceSources.append(SourceRead(kind: "procfs", source: path, state: .missing, note: "IPv4 addresses unknown"))
                return
            }
            facts.unattributedAddresses = try ProcNetParsers.fibTrieLocalAddresses(text, path: path)
            facts.interfaceSources.append(SourceRead(
                kind: "procfs", source: path, state: .ok, count: facts.unattributedAddresses.count, note: "IPv4 host addresses, interface unknown"))
        } catch {
            facts.interfaceSources.append(SourceRead(kind: "procfs", source: path, state: .error(error.description)))
        }
    }

    /// TCP and UDP sockets. On the live machine TCP comes from one sock_diag dump (one walk of the
    /// kernel's connection hash instead of one per procfs table); when sock_diag cannot answer
    /// (no inet_diag in the kernel), from `/proc/net/tcp` and `tcp6`, whose sources say why.
    static func readSockets(
        root: HostRoot, live: Bool, into facts: inout NetworkFacts,
        tcpFromKernel: () throws(MijianError) -> [SocketEntry] = kernelTCP
    ) {
        var tables = [("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")]
        var fallback: String?
        if live {
            do {
                let sockets = try tcpFromKernel()
                facts.sockets += sockets
                facts.socketSources.append(SourceRead(kind: "netlink", source: SockDiag.source, state: .ok, count: sockets.count))
                tables.removeFirst(2)
            } catch {
                fallback = "read here because sock_diag did not answer: \(error.description)"
            }
        }
        for (file, transport) in tables {
            let path = "/proc/net/\(file)"
            let note = transport == "tcp" ? fallback : nil
            do {
                guard let text = try root.readKernelTableIfPresent(path, limit: 64 << 20) else {
                    facts.socketSources.append(SourceRead(kind: "procfs", source: path, state: .missing, note: note))
                    continue
                }
                let sockets = try ProcNetParsers.sockets(text, transport: transport, path: path)
                facts.sockets += sockets
                facts.socketSources.append(SourceRead(kind: "procfs", source: path, state: .ok, count: sockets.count, note: note))
            } catch {
                facts.socketSources.append(SourceRead(kind: "procfs", source: path, state: .error(error.description), note: note))
            }
        }
    }

    static func readResolvers(root: HostRoot, into facts: inout NetworkFacts) {
        for (path, origin) in [("/etc/resolv.conf", ResolverOrigin.resolvConf), ("/run/systemd/resolve/resolv.conf", .resolvedUpstream)] {
            do {
                // NetworkManager and resolved make resolv.conf a link: the resolvers name the file read.
                guard let (text, resolved) = try root.readTextResolvedIfPresent(path) else {
                    facts.resolverSources.append(SourceRead(kind: "file", source: path, state: .missing))
                    continue
                }
                let found = ProcNetParsers.resolvConf(text, origin: origin, path: resolved)
                facts.resolvers += found
                facts.resolverSources.append(SourceRead(kind: "file", source: path, state: .ok, count: found.count, resolvedPath: resolved))
            } catch {
                facts.resolverSources.append(SourceRead(kind: "file", source: path, state: .error(error.description)))
            }
        }
        var dns: [Resolver] = []
        var fallback: [Resolver] = []
        var files = ["/etc/systemd/resolved.conf"]
        // Drop-ins: a name in /etc masks the same name in /run and /usr/lib; all apply in name order.
        var dropIns: [String: String] = [:]
        for directory in ["/usr/lib/systemd/resolved.conf.d", "/run/systemd/resolved.conf.d", "/etc/systemd/resolved.conf.d"] {
            do {
                for name in try root.listIfPresent(directory) where name.hasSuffix(".conf") { dropIns[name] = "\(directory)/\(name)" }
            } catch {
                facts.resolverSources.append(SourceRead(kind: "directory", source: directory, state: .error(error.description)))
            }
        }
        files += dropIns.keys.sorted().compactMap { dropIns[$0] }
        for path in files {
            do {
                guard let (text, resolved) = try root.readTextResolvedIfPresent(path) else {
                    facts.resolverSources.append(SourceRead(kind: "file", source: path, state: .missing))
                    continue
                }
                let before = dns.count + fallback.count
                ProcNetParsers.resolvedConf(text, path: resolved, dns: &dns, fallback: &fallback)
                facts.resolverSources.append(SourceRead(
                    kind: "file", source: path, state: .ok, count: max(0, dns.count + fallback.count - before), resolvedPath: resolved))
            } catch {
                facts.resolverSources.append(SourceRead(kind: "file", source: path, state: .error(error.description)))
            }
        }
        facts.resolvers += dns + fallback
    }
}

extension SourceRead {
    /// A sysfs read that failed for another reason than absence, as an `error` source.
    init(failure: FactSource) {
        self.init(kind: "sysfs", source: failure.path, state: .error(failure.errorReason ?? "unreadable"))
    }
}
