import MijianCore

/// Which addresses of a prefix are public internet space that the unit does not own.
public enum AddressCoverage {
    /// The parts of `network` left after removing the non-public special ranges of its family and
    /// the unit's networks, as inclusive ranges in ascending order. Empty means the prefix reaches
    /// no public address outside the unit.
    public static func publicRemainder(of network: IPNetwork, unitNetworks: [IPNetwork]) -> [ClosedRange<UInt128>] {
        let special = network.address.isV6 ? IPAddress.nonPublicV6 : IPAddress.nonPublicV4
        let exclusions = (special + unitNetworks)
            .filter { $0.address.bitWidth == network.address.bitWidth && $0.upperBound >= network.lowerBound && $0.lowerBound <= network.upperBound }
            .sorted { $0.lowerBound < $1.lowerBound }
        var remainder: [ClosedRange<UInt128>] = []
        var cursor = network.lowerBound
        for exclusion in exclusions {
            if exclusion.lowerBound > cursor {
                remainder.append(cursor...min(exclusion.lowerBound - 1, network.upperBound))
            }
            if exclusion.upperBound >= network.upperBound { return remainder }
            cursor = max(cursor, exclusion.upperBound + 1)
        }
        if cursor <= network.upperBound { remainder.append(cursor...network.upperBound) }
        return remainder
    }

    /// IPv6 global unicast (2000::/3): where public IPv6 space is actually allocated.
    static let globalUnicast = (lower: UInt128(0x2000) << 112, upper: (UInt128(0x4000) << 112) - 1)

    /// Up to `limit` ranges to show a person: for IPv6 the parts inside 2000::/3 first, since the
    /// rest of the public remainder is unallocated and makes a confusing example.
    public static func sample(_ remainder: [ClosedRange<UInt128>], v6: Bool, limit: Int) -> [String] {
        guard v6 else { return remainder.prefix(limit).map { describe($0, v6: false) } }
        let global = remainder.compactMap { range -> ClosedRange<UInt128>? in
            let lower = max(range.lowerBound, globalUnicast.lower)
            let upper = min(range.upperBound, globalUnicast.upper)
            return lower <= upper ? lower...upper : nil
        }
        let chosen = global.isEmpty ? remainder : global
        return chosen.prefix(limit).map { describe($0, v6: true) }
    }

    /// `1.0.0.0-9.255.255.255` for a range of the given family.
    public static func describe(_ range: ClosedRange<UInt128>, v6: Bool) -> String {
        func address(_ value: UInt128) -> IPAddress { v6 ? .v6(value) : .v4(UInt32(truncatingIfNeeded: value)) }
        return range.lowerBound == range.upperBound ? "\(address(range.lowerBound))" : "\(address(range.lowerBound))-\(address(range.upperBound))"
    }
}
