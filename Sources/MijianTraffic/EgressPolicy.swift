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
        var bytes = Array(name.utf8)
        for index in bytes.indices where bytes[index] >= 0x41 && bytes[index] <= 0x5A { bytes[index] += 0x20 }
        if bytes.contains(where: { $0 >= 0x80 }) { return policy.isAllowedName(name) }
        let candidate = EgressPolicy.trimmedDots(bytes)
        for suffix in suffixes {
            if candidate == suffix { return true }
            if candidate.count > suffix.count, candidate[candidate.count - suffix.count - 1] == 0x2E,
                candidate[(candidate.count - suffix.count)...].elementsEqual(suffix)
            {
                return true
            }
        }
        return false
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
