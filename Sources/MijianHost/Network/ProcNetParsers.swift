import MijianCore

/// Parsers for the text files of procfs and the resolver configuration. Each takes the file's
/// text and the host path it came from, and throws `malformed` naming the line it cannot read.
public enum ProcNetParsers {
    /// `/proc/net/route`: the IPv4 main table. Addresses are printed as the host's little-endian
    /// 32-bit words, so their bytes are swapped back to network order.
    public static func ipv4Routes(_ text: String, path: String) throws(MijianError) -> [Route] {
        var routes: [Route] = []
        for (number, line) in lines(text) where number > 1 {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 8, let destination = UInt32(fields[1], radix: 16), let gateway = UInt32(fields[2], radix: 16),
                let flags = UInt32(fields[3], radix: 16), let metric = UInt32(fields[6]), let mask = UInt32(fields[7], radix: 16)
            else {
                throw MijianError(.malformed, "\(path) line \(number) is not a route entry: \(line.prefix(80))", path: path)
            }
            let maskValue = mask.byteSwapped
            let length = maskValue.nonzeroBitCount
            guard maskValue == (length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)),
                let network = IPNetwork(address: .v4(destination.byteSwapped), prefixLength: length)
            else {
                throw MijianError(.malformed, "\(path) line \(number) has a non-contiguous mask \(fields[7])", path: path)
            }
            // RTF_REJECT (0x200) marks blackhole, unreachable and prohibit routes alike.
            let type: RouteType = flags & 0x200 != 0 ? .unreachable : .unicast
            routes.append(Route(
                table: RoutingTable.main, type: type, destination: network, gateway: flags & 0x2 != 0 ? .v4(gateway.byteSwapped) : nil,
                device: fields[0] == "*" ? nil : String(fields[0]), metric: metric, source: path))
        }
        return routes
    }

    /// `/proc/net/ipv6_route`: IPv6 routes without their table ids (the kernel prints every
    /// table here). Flags: RTF_REJECT 0x200 refuses, RTF_LOCAL 0x80000000 and RTF_ANYCAST 0x100000 are
    /// the host's own addresses; RTF_CACHE 0x1000000 entries are cache.
    public static func ipv6Routes(_ text: String, path: String) throws(MijianError) -> [Route] {
        var routes: [Route] = []
        for (number, line) in lines(text) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 10, let destination = hexAddress(fields[0]), let length = Int(fields[1], radix: 16),
                let gateway = hexAddress(fields[4]), let metric = UInt32(fields[5], radix: 16), let flags = UInt32(fields[8], radix: 16),
                let network = IPNetwork(address: destination, prefixLength: length)
            else {
                throw MijianError(.malformed, "\(path) line \(number) is not an IPv6 route entry: \(line.prefix(100))", path: path)
            }
            if flags & 0x100_0000 != 0 { continue }
            let type: RouteType
            if flags & 0x200 != 0 { type = .unreachable } else if flags & 0x8000_0000 != 0 { type = .local } else if flags & 0x10_0000 != 0 { type = .anycast } else { type = .unicast }
            routes.append(Route(
                table: RoutingTable.main, type: type, destination: network, gateway: gateway.isUnspecified ? nil : gateway,
                device: String(fields[9]), metric: metric, source: path))
        }
        return routes
    }

    /// `/proc/net/if_inet6`: IPv6 addresses per interface name.
    public static func ipv6Addresses(_ text: String, path: String) throws(MijianError) -> [(name: String, index: Int, address: InterfaceAddress)] {
        var out: [(name: String, index: Int, address: InterfaceAddress)] = []
        for (number, line) in lines(text) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, let address = hexAddress(fields[0]), let index = Int(fields[1], radix: 16), let length = Int(fields[2], radix: 16),
                length <= 128
            else {
                throw MijianError(.malformed, "\(path) line \(number) is not an address entry: \(line.prefix(100))", path: path)
            }
            out.append((String(fields[5]), index, InterfaceAddress(address: address, prefixLength: length)))
        }
        return out
    }

    /// `/proc/net/fib_trie`: the host's own IPv4 addresses (leaves marked `/32 host LOCAL`), in
    /// ascending order. The file does not say which interface holds them.
    public static func fibTrieLocalAddresses(_ text: String, path: String) throws(MijianError) -> [IPAddress] {
        var found: Set<IPAddress> = []
        var leaf: IPAddress?
        for (number, line) in lines(text) {
            let trimmed = line.trimmingWhitespace()
            if trimmed.hasPrefix("|-- ") {
                guard let address = IPAddress(trimmed.dropFirst(4)), !address.isV6 else {
                    throw MijianError(.malformed, "\(path) line \(number) is not a trie leaf: \(line.prefix(80))", path: path)
                }
                leaf = address
            } else if trimmed.hasPrefix("/") {
                let fields = trimmed.split(separator: " ")
                if fields.count >= 3, fields[0] == "/32", fields[2] == "LOCAL", let leaf { found.insert(leaf) }
            } else if !trimmed.hasPrefix("+-- ") {
                leaf = nil
            }
        }
        return found.sorted()
    }

    /// TCP states by their procfs number.
    static let tcpStates: [UInt8: String] = [
        1: "established", 2: "syn-sent", 3: "syn-recv", 4: "fin-wait1", 5: "fin-wait2", 6: "time-wait", 7: "close", 8: "close-wait",
        9: "last-ack", 10: "listen", 11: "closing", 12: "new-syn-recv",
    ]

    /// `/proc/net/{tcp,tcp6,udp,udp6}`.
    public static func sockets(_ text: String, transport: String, path: String) throws(MijianError) -> [SocketEntry] {
        var out: [SocketEntry] = []
        for (number, line) in lines(text) where number > 1 {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 8, let local = endpoint(fields[1]), let remote = endpoint(fields[2]), let stateNumber = UInt8(fields[3], radix: 16) else {
                throw MijianError(.malformed, "\(path) line \(number) is not a socket entry: \(line.prefix(100))", path: path)
            }
            var state = tcpStates[stateNumber] ?? "state \(stateNumber)"
            if transport == "udp" { state = stateNumber == 1 ? "established" : "unconnected" }
            out.append(SocketEntry(
                transport: transport, local: local.0, localPort: local.1, remote: remote.0, remotePort: remote.1, state: state,
                uid: UInt32(fields[7]), source: path))
        }
        return out
    }

    /// `nameserver` lines of a resolv.conf.
    public static func resolvConf(_ text: String, origin: ResolverOrigin, path: String) -> [Resolver] {
        var out: [Resolver] = []
        for (_, line) in lines(text) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { continue }
            if let address = IPAddress(fields[1]) { out.append(Resolver(address: address, origin: origin, source: path)) }
        }
        return out
    }

    /// The `[Resolve]` section's `DNS=` and `FallbackDNS=` of a resolved.conf (or drop-in), applied
    /// on top of `current`: an empty assignment resets the list, as systemd does.
    public static func resolvedConf(_ text: String, path: String, dns: inout [Resolver], fallback: inout [Resolver]) {
        var inResolve = false
        for (_, raw) in lines(text) {
            let line = raw.trimmingWhitespace()
            if line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                inResolve = line == "[Resolve]"
                continue
            }
            guard inResolve, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingWhitespace()
            let value = line[line.index(after: equals)...].trimmingWhitespace()
            guard key == "DNS" || key == "FallbackDNS" else { continue }
            let origin: ResolverOrigin = key == "DNS" ? .resolvedConfig : .resolvedFallback
            let servers = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { resolvedServer($0) }
                .map { Resolver(address: $0, origin: origin, source: path) }
            if key == "DNS" {
                if value.isEmpty { dns = [] } else { dns += servers }
            } else {
                if value.isEmpty { fallback = [] } else { fallback += servers }
            }
        }
    }

    /// The address of a resolved server entry: `1.1.1.1`, `1.1.1.1:53`, `[2001:db8::1]:53%eth0#name`, `fd00::1%eth0`.
    static func resolvedServer(_ entry: Substring) -> IPAddress? {
        var text = entry
        if let hash = text.firstIndex(of: "#") { text = text[..<hash] }
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            return IPAddress(text[text.index(after: text.startIndex)..<close])
        }
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        if !text.contains("::"), text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") { text = text[..<colon] }
        return IPAddress(text)
    }

    /// `0100007F:0016` or a 32-digit IPv6 form (four little-endian words) with a hex port.
    static func endpoint(_ field: Substring) -> (IPAddress, UInt16)? {
        let parts = field.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1], radix: 16) else { return nil }
        let hex = parts[0]
        if hex.count == 8 {
            guard let word = UInt32(hex, radix: 16) else { return nil }
            return (.v4(word.byteSwapped), port)
        }
        guard hex.count == 32 else { return nil }
        var value: UInt128 = 0
        var index = hex.startIndex
        for _ in 0..<4 {
            let next = hex.index(index, offsetBy: 8)
            guard let word = UInt32(hex[index..<next], radix: 16) else { return nil }
            value = value << 32 | UInt128(word.byteSwapped)
            index = next
        }
        return (.v6(value), port)
    }

    /// 32 hex digits in network order, as ipv6_route and if_inet6 print them.
    static func hexAddress(_ hex: Substring) -> IPAddress? {
        guard hex.count == 32, let high = UInt64(hex.prefix(16), radix: 16), let low = UInt64(hex.suffix(16), radix: 16) else { return nil }
        return .v6(UInt128(high) << 64 | UInt128(low))
    }

    /// Non-empty lines with their 1-based numbers, ended at LF as glibc and the kernel read them;
    /// a CR stays in the line (a CR LF line must not hide `nameserver 8.8.8.8` on the next).
    static func lines(_ text: String) -> [(Int, Substring)] {
        ConfigText.lines(text, carriageReturn: .kept).enumerated()
            .map { ($0.offset + 1, $0.element) }
            .filter { !$0.1.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" } }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
