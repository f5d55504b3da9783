import MijianCore

/// Which addresses of a prefix are public internet space that the unit does not own.
public enum AddressCoverage {
    /// The parts of `network` left after removing the non-public special ranges of its family and
    /// the unit's networks, as inclusive ranges in ascending order. Empty means the prefix reaches
    /// no public address outside the unit.
    public static func publicRemainder(of network: IPNetwork, unitNetworks: [IPNetwork]) -> [ClosedRange<UInt128>] {
        network.remainder(excluding: (network.address.isV6 ? IPAddress.nonPublicV6 : IPAddress.nonPublicV4) + unitNetworks)
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
    public static func describe(_ range: ClosedRange<UInt128>, v6: Bool) -> String { IPNetwork.describe(range, v6: v6) }
}
