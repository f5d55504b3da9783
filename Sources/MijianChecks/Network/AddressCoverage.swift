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

    /// `1.0.0.0-9.255.255.255` for a range of the given family.
    public static func describe(_ range: ClosedRange<UInt128>, v6: Bool) -> String {
        func address(_ value: UInt128) -> IPAddress { v6 ? .v6(value) : .v4(UInt32(truncatingIfNeeded: value)) }
        return range.lowerBound == range.upperBound ? "\(address(range.lowerBound))" : "\(address(range.lowerBound))-\(address(range.upperBound))"
    }
}
