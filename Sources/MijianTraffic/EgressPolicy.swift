import MijianCore

/// The policy's traffic rules compiled for the per-packet path: which addresses stay inside, which names may be asked.
public struct EgressPolicy: Sendable {
    /// The policy it was compiled from.
    public let policy: Policy
    /// Networks whose addresses are not outbound: the unit, allowed destinations, and the local
    /// scopes the policy does not flag (loopback, unspecified, link-local, multicast, broadcast).
    public let insideNetworks: [IPNetwork]
    private let v4: [(UInt32, UInt32)]
    private let v6: [(UInt128, UInt128)]
    /// Allowed suffixes as `Policy.isAllowedName` normalises them (lower case, no outer dots), in UTF-8.
    private let suffixes: [[UInt8]]

    /// Compiles a policy.
    public init(_ policy: Policy) {
        self.policy = policy
        var networks = policy.unitNetworks + policy.allowedDestinations
        var local = ["127.0.0.0/8", "0.0.0.0/32", "::1/128", "::/128"]
        if !policy.traffic.flagLinkLocal { local += ["169.254.0.0/16", "fe80::/10"] }
        if !policy.traffic.flagMulticast { local += ["224.0.0.0/4", "255.255.255.255/32", "ff00::/8"] }
        networks += local.compactMap { IPNetwork($0) }
        var unique: [IPNetwork] = []
        for network in networks where !unique.contains(network) { unique.append(network) }
        insideNetworks = unique
        v4 = unique.compactMap { network in
            guard case .v4 = network.address else { return nil }
            return (UInt32(truncatingIfNeeded: network.lowerBound), UInt32(truncatingIfNeeded: network.upperBound))
        }
        v6 = unique.compactMap { network in
            guard case .v6 = network.address else { return nil }
            return (network.lowerBound, network.upperBound)
        }
        suffixes = policy.dnsAllowedSuffixes.map { EgressPolicy.trimmedDots(Array($0.lowercased().utf8)) }
    }

    private static func trimmedDots(_ bytes: [UInt8]) -> [UInt8] {
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == 0x2E { start += 1 }
        while end > start, bytes[end - 1] == 0x2E { end -= 1 }
        return Array(bytes[start..<end])
    }

    /// Whether traffic with this peer stays inside (IPv4-mapped IPv6 is judged as IPv4).
    public func isInside(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let value):
            for (low, high) in v4 where value >= low && value <= high { return true }
            return false
        case .v6(let value):
            if value >> 32 == 0xFFFF { return isInside(.v4(UInt32(truncatingIfNeeded: value))) }
            for (low, high) in v6 where value >= low && value <= high { return true }
            return false
        }
    }

    /// Whether a queried name stays inside the unit's DNS suffixes: the same answer as `Policy.isAllowedName`,
    /// computed on bytes because it runs for every DNS query in a capture.
    public func isAllowedName(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { isAllowedName(utf8: $0) }
    }

    /// `isAllowedName` on a name's UTF-8 bytes.
    public func isAllowedName(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if bytes.contains(where: { $0 >= 0x80 }) { return policy.isAllowedName(String(decoding: bytes, as: UTF8.self)) }
        // The name without outer dots, compared case-insensitively from its end.
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == 0x2E { start += 1 }
        while end > start, bytes[end - 1] == 0x2E { end -= 1 }
        let length = end - start
        for suffix in suffixes where suffix.count <= length {
            if suffix.count < length, bytes[end - suffix.count - 1] != 0x2E { continue }
            var matches = true
            for offset in 0..<suffix.count {
                var byte = bytes[end - suffix.count + offset]
                if byte >= 0x41 && byte <= 0x5A { byte += 0x20 }
                if byte != suffix[offset] {
                    matches = false
                    break
                }
            }
            if matches { return true }
        }
        return false
    }

    /// Whether an untagged Ethernet frame is TCP or UDP over IPv4 between two inside addresses, neither
    /// port 53: a packet `bpfFilter` drops and the analyzer would not flag. It decides the bulk of a
    /// unit's traffic in a few loads, before the filter program runs; anything else (VLAN tags, IPv6,
    /// fragments, other protocols, short captures) returns false and goes through the filter as before.
    public func isPlainInsideTraffic(ethernetFrame frame: UnsafeRawBufferPointer) -> Bool {
        guard frame.count >= 14 + 20, frame[12] == 0x08, frame[13] == 0x00 else { return false }
        let versionAndLength = frame[14]
        guard versionAndLength >> 4 == 4 else { return false }
        let headerLength = Int(versionAndLength & 0x0F) * 4
        let proto = frame[14 + 9]
        guard headerLength >= 20, proto == IPProtocol.tcp || proto == IPProtocol.udp,
            frame.count >= 14 + headerLength + 4
        else { return false }
        // Not a fragment after the first (whose bytes would not start with ports).
        let fragment = UInt16(frame[14 + 6] & 0x1F) << 8 | UInt16(frame[14 + 7])
        guard fragment == 0 else { return false }
        let source = UInt32(bigEndian: frame.loadUnaligned(fromByteOffset: 14 + 12, as: UInt32.self))
        let destination = UInt32(bigEndian: frame.loadUnaligned(fromByteOffset: 14 + 16, as: UInt32.self))
        let sourcePort = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 14 + headerLength, as: UInt16.self))
        let destinationPort = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 14 + headerLength + 2, as: UInt16.self))
        guard sourcePort != 53, destinationPort != 53 else { return false }
        return isInside(.v4(source)) && isInside(.v4(destination))
    }

    /// The most bytes of a frame `bpfFilter`, compiled for `linkType`, reads: the link header, an IPv4
    /// header with the most options (60 bytes, more than IPv6's 40) and the two ports. A BPF program that
    /// reads past the captured bytes rejects the frame outright, so a shorter record must not go through
    /// the filter: it would be dropped without being judged or counted.
    public static func filterReach(linkType: LinkType) -> Int {
        linkHeaderLength(linkType) + 60 + 4
    }

    /// Bytes of the link-layer header the filter compiler assumes for `linkType` (no VLAN tags: the
    /// filter does not look behind them).
    static func linkHeaderLength(_ linkType: LinkType) -> Int {
        switch linkType {
        case .ethernet: return 14
        case .linuxSLL: return 16
        case .linuxSLL2: return 20
        case .null, .loop: return 4
        default: return 0
        }
    }

    /// `bpfFilter` as installed on a capture of `linkType`: frames too short for the headers the filter
    /// reads are kept first. A BPF program that reads past a frame's end rejects it outright, so without
    /// these clauses the kernel would drop a cut IPv4 or IPv6 header, or a cut TCP/UDP header, unseen
    /// and uncounted; kept, the decoder counts them as unjudged. Well-formed frames are never this short,
    /// so the bulk the filter drops is the same. Empty when `bpfFilter` is.
    public func bpfFilter(for linkType: LinkType) -> String {
        let filter = bpfFilter
        guard !filter.isEmpty else { return "" }
        let header = EgressPolicy.linkHeaderLength(linkType)
        // Each clause reads only bytes the clause before it proved are there.
        return "len < \(header + 20) or (ip and len < \(header + 4) + (ip[0] & 0xf) * 4) or (ip6 and len < \(header + 44)) or \(filter)"
    }

    /// A BPF filter that lets the kernel drop traffic this policy certainly permits: IPv4, or IPv6 whose
    /// next header is TCP, UDP or ICMPv6, between inside networks and not to or from port 53. Anything the
    /// filter cannot see into (VLAN-tagged frames, IPv6 extension headers) is kept for the decoder.
    public var bpfFilter: String {
        let v4Nets = insideNetworks.filter { !$0.address.isV6 }.map(\.description)
        let v6Nets = insideNetworks.filter { $0.address.isV6 }.map(\.description)
        func both(_ nets: [String]) -> String {
            let list = nets.map { "net \($0)" }.joined(separator: " or ")
            return "(src \(list.replacingOccurrences(of: " or net", with: " or src net"))) and (dst \(list.replacingOccurrences(of: " or net", with: " or dst net")))"
        }
        var drops: [String] = []
        if !v4Nets.isEmpty { drops.append("(ip and \(both(v4Nets)) and not port 53)") }
        if !v6Nets.isEmpty {
            drops.append("(ip6 and (ip6 proto 6 or ip6 proto 17 or ip6 proto 58) and \(both(v6Nets)) and not port 53)")
        }
        if drops.isEmpty { return "" }
        return "not (" + drops.joined(separator: " or ") + ")"
    }
}
