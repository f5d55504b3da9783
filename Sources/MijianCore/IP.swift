/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible, Comparable {
    case v4(UInt32)
    case v6(UInt128)

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::`, embedded IPv4, and `%zone` dropped).
    public init?(_ text: some StringProtocol) {
        let text = String(text)
        if text.contains(":") {
            guard let value = IPAddress.parseV6(text) else { return nil }
            self = .v6(value)
        } else {
            guard let value = IPAddress.parseV4(text) else { return nil }
            self = .v4(value)
        }
    }

    /// Builds an address from network-order bytes (4 or 16 of them).
    public init?(bytes: some Collection<UInt8>) {
        if bytes.count == 4 {
            self = .v4(bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        } else if bytes.count == 16 {
            self = .v6(bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) })
        } else {
            return nil
        }
    }

    /// 32 or 128.
    public var bitWidth: Int {
        switch self {
        case .v4: return 32
        case .v6: return 128
        }
    }

    /// True for IPv6.
    public var isV6: Bool {
        if case .v6 = self { return true }
        return false
    }

    /// The embedded IPv4 address of an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
    public var mappedV4: IPAddress? {
        guard case .v6(let value) = self, value >> 32 == 0xFFFF else { return nil }
        return .v4(UInt32(truncatingIfNeeded: value))
    }

    /// The address as an unsigned integer in a 128-bit field.
    public var value: UInt128 {
        switch self {
        case .v4(let value): return UInt128(value)
        case .v6(let value): return value
        }
    }

    /// Canonical text (RFC 5952 for IPv6).
    public var description: String {
        switch self {
        case .v4(let value):
            return "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
        case .v6(let value):
            var groups: [UInt16] = []
            for index in 0..<8 { groups.append(UInt16(truncatingIfNeeded: value >> UInt128(112 - index * 16))) }
            var bestStart = -1
            var bestLength = 0
            var index = 0
            while index < 8 {
                if groups[index] == 0 {
                    let start = index
                    while index < 8, groups[index] == 0 { index += 1 }
                    if index - start > bestLength, index - start >= 2 {
                        bestStart = start
                        bestLength = index - start
                    }
                } else {
                    index += 1
                }
            }
            func hex(_ slice: ArraySlice<UInt16>) -> String { slice.map { String($0, radix: 16) }.joined(separator: ":") }
            if bestStart < 0 { return hex(groups[...]) }
            return hex(groups[0..<bestStart]) + "::" + hex(groups[(bestStart + bestLength)...])
        }
    }

    /// Orders IPv4 before IPv6, then by value.
    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.bitWidth != rhs.bitWidth { return lhs.bitWidth < rhs.bitWidth }
        return lhs.value < rhs.value
    }

    static func parseV4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let octet = UInt8(part) else { return nil }
            if part.count > 1, part.first == "0" { return nil }
            value = value << 8 | UInt32(octet)
        }
        return value
    }

    static func parseV6(_ input: String) -> UInt128? {
        var text = Substring(input)
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        guard !text.isEmpty, text.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        let pieces: [Substring]
        if let gap = text.range(of: "::") {
            sawGap = true
            guard !text[gap.upperBound...].contains("::") else { return nil }
            let left = text[..<gap.lowerBound]
            let right = text[gap.upperBound...]
            guard let l = groups(left, allowV4: right.isEmpty), let r = groups(right, allowV4: true) else { return nil }
            head = l
            tail = r
            pieces = []
        } else {
            pieces = [text]
        }
        if !sawGap {
            guard let all = groups(pieces[0], allowV4: true), all.count == 8 else { return nil }
            head = all
        } else {
            guard head.count + tail.count <= 7 else { return nil }
        }
        let all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        return all.reduce(UInt128(0)) { $0 << 16 | UInt128($1) }
    }

    private static func groups(_ text: Substring, allowV4: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        var out: [UInt16] = []
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1, allowV4, part.contains(".") {
                guard let v4 = parseV4(String(part)) else { return nil }
                out.append(UInt16(v4 >> 16))
                out.append(UInt16(v4 & 0xFFFF))
            } else {
                guard !part.isEmpty, part.count <= 4, let group = UInt16(part, radix: 16) else { return nil }
                out.append(group)
            }
        }
        return out
    }
}

/// An address prefix such as `10.0.0.0/8` or `fd00::/8`.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    /// The first address (host bits cleared).
    public let address: IPAddress
    /// The prefix length.
    public let prefixLength: Int

    /// Makes a prefix; host bits of `address` are cleared.
    public init?(address: IPAddress, prefixLength: Int) {
        guard prefixLength >= 0, prefixLength <= address.bitWidth else { return nil }
        self.prefixLength = prefixLength
        switch address {
        case .v4(let value):
            let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
            self.address = .v4(value & mask)
        case .v6(let value):
            let mask: UInt128 = prefixLength == 0 ? 0 : ~UInt128(0) << UInt128(128 - prefixLength)
            self.address = .v6(value & mask)
        }
    }

    /// Parses `ADDRESS/LENGTH`, or a bare address as a host prefix.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let address = IPAddress(parts[0]) else { return nil }
        var length = address.bitWidth
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber), let parsed = Int(parts[1]) else { return nil }
            length = parsed
        }
        self.init(address: address, prefixLength: length)
    }

    /// The lowest address as a 128-bit value.
    public var lowerBound: UInt128 { address.value }

    /// The highest address as a 128-bit value.
    public var upperBound: UInt128 {
        let hostBits = address.bitWidth - prefixLength
        if hostBits == 0 { return address.value }
        if hostBits == 128 { return ~UInt128(0) }
        return address.value | ((UInt128(1) << UInt128(hostBits)) - 1)
    }

    /// Whether `other` lies inside this prefix (same family; mapped IPv4 is matched as IPv4).
    public func contains(_ other: IPAddress) -> Bool {
        var candidate = other
        if case .v4 = address, let mapped = other.mappedV4 { candidate = mapped }
        guard candidate.bitWidth == address.bitWidth else { return false }
        let value = candidate.value
        return value >= lowerBound && value <= upperBound
    }

    /// Whether every address of `other` lies inside this prefix.
    public func contains(_ other: IPNetwork) -> Bool {
        other.address.bitWidth == address.bitWidth && other.lowerBound >= lowerBound && other.upperBound <= upperBound
    }

    /// `ADDRESS/LENGTH`.
    public var description: String { "\(address)/\(prefixLength)" }
}

extension IPAddress {
    /// Special-purpose ranges (RFC 6890 and successors) that are not public internet space.
    public static let nonPublicV4: [IPNetwork] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    ].compactMap { IPNetwork($0) }

    /// IPv6 ranges that are not public internet space. IPv4-mapped addresses are judged as IPv4.
    /// NAT64 space (64:ff9b::/96, 64:ff9b:1::/48) stays public: a route there reaches the IPv4
    /// internet through a translator, so the route and address checks must see it.
    public static let nonPublicV6: [IPNetwork] = [
        "::/128", "::1/128", "::ffff:0:0/96", "100::/64", "2001:db8::/32", "3fff::/20", "fc00::/7", "fe80::/10", "ff00::/8",
    ].compactMap { IPNetwork($0) }

    /// Whether the address lies in public (globally routed) address space.
    public var isPublic: Bool {
        if let mapped = mappedV4 { return mapped.isPublic }
        switch self {
        case .v4: return !IPAddress.nonPublicV4.contains { $0.contains(self) }
        case .v6: return !IPAddress.nonPublicV6.contains { $0.contains(self) }
        }
    }

    /// Link-local unicast (169.254/16, fe80::/10).
    public var isLinkLocal: Bool {
        switch self {
        case .v4(let value): return value >> 16 == 0xA9FE
        case .v6(let value): return value >> 118 == 0x3FA
        }
    }

    /// Multicast (224/4, ff00::/8).
    public var isMulticast: Bool {
        switch self {
        case .v4(let value): return value >> 28 == 0xE
        case .v6(let value): return value >> 120 == 0xFF
        }
    }

    /// Loopback (127/8, ::1).
    public var isLoopback: Bool {
        switch self {
        case .v4(let value): return value >> 24 == 127
        case .v6(let value): return value == 1
        }
    }

    /// Unspecified (0.0.0.0, ::).
    public var isUnspecified: Bool { value == 0 }
}

extension IPNetwork {
    /// The parts of this prefix left after removing `excluded` (prefixes of the other family are
    /// ignored), as inclusive ranges in ascending order. Empty means `excluded` covers all of it.
    public func remainder(excluding excluded: [IPNetwork]) -> [ClosedRange<UInt128>] {
        let exclusions = excluded
            .filter { $0.address.bitWidth == address.bitWidth && $0.upperBound >= lowerBound && $0.lowerBound <= upperBound }
            .sorted { $0.lowerBound < $1.lowerBound }
        var remainder: [ClosedRange<UInt128>] = []
        var cursor = lowerBound
        for exclusion in exclusions {
            if exclusion.lowerBound > cursor {
                remainder.append(cursor...min(exclusion.lowerBound - 1, upperBound))
            }
            if exclusion.upperBound >= upperBound { return remainder }
            cursor = max(cursor, exclusion.upperBound + 1)
        }
        if cursor <= upperBound { remainder.append(cursor...upperBound) }
        return remainder
    }

    /// The public (globally routed) parts of this prefix: what is left once the special-purpose
    /// ranges of its family (`IPAddress.nonPublicV4`, `nonPublicV6`) are removed. Empty when the
    /// prefix lies wholly in private, shared, loopback, link-local, documentation or other
    /// special-purpose space (203.0.113.0/24, 10.0.0.0/8, fd00::/8, …).
    public var publicRanges: [ClosedRange<UInt128>] {
        remainder(excluding: address.isV6 ? IPAddress.nonPublicV6 : IPAddress.nonPublicV4)
    }

    /// `1.0.0.0-9.255.255.255` (or one address) for a range of values of the given family.
    public static func describe(_ range: ClosedRange<UInt128>, v6: Bool) -> String {
        func address(_ value: UInt128) -> IPAddress { v6 ? .v6(value) : .v4(UInt32(truncatingIfNeeded: value)) }
        return range.lowerBound == range.upperBound ? "\(address(range.lowerBound))" : "\(address(range.lowerBound))-\(address(range.upperBound))"
    }

    /// Whether the prefix contains any public (globally routed) address. The IPv4-mapped and NAT64
    /// parts of an IPv6 prefix count as the IPv4 addresses they stand for too: the checks judge a
    /// mapped peer or resolver as IPv4, so `::ffff:0:0/96` holds the whole IPv4 internet, and a
    /// translator makes `64:ff9b::/96` the whole IPv4 internet as well as public IPv6 space.
    public var coversPublicSpace: Bool { !publicRanges.isEmpty || embeddedV4Parts.contains(where: \.coversPublicSpace) }

    /// The IPv4 prefix that the part of this IPv6 prefix inside `::ffff:0:0/96` stands for; nil when
    /// there is no such part.
    public var mappedV4Part: IPNetwork? { v4Part(in: Self.mappedBlock, readable: true) }

    /// The IPv4 prefixes that the parts of this IPv6 prefix in IPv4-mapped (`::ffff:0:0/96`) and NAT64
    /// space (`64:ff9b::/96`, and the local-use `64:ff9b:1::/48` of RFC 8215) stand for. Where a
    /// local-use prefix puts the IPv4 address depends on the prefix length its translator was given
    /// (RFC 6052 §2.2), which a policy does not say, so any part of it stands for all of IPv4.
    public var embeddedV4Parts: [IPNetwork] {
        [v4Part(in: Self.mappedBlock, readable: true), v4Part(in: Self.nat64Block, readable: true), v4Part(in: Self.nat64LocalBlock, readable: false)]
            .compactMap { $0 }
    }

    static let mappedBlock = IPNetwork(address: .v6(UInt128(0xFFFF) << 32), prefixLength: 96)
    static let nat64Block = IPNetwork(address: .v6(UInt128(0x64_FF9B) << 96), prefixLength: 96)
    static let nat64LocalBlock = IPNetwork(address: .v6(UInt128(0x64_FF9B_0001) << 80), prefixLength: 48)

    /// The IPv4 prefix the part of this prefix inside `block` stands for: the low 32 bits when `readable`
    /// (a /96 block), else all of IPv4; nil when this prefix and `block` do not meet.
    private func v4Part(in block: IPNetwork?, readable: Bool) -> IPNetwork? {
        guard case .v6(let value) = address, let block else { return nil }
        if contains(block) { return IPNetwork(address: .v4(0), prefixLength: 0) }
        guard block.contains(self) else { return nil }
        guard readable else { return IPNetwork(address: .v4(0), prefixLength: 0) }
        return IPNetwork(address: .v4(UInt32(truncatingIfNeeded: value)), prefixLength: prefixLength - 96)
    }

    /// How many public addresses of one family (`v6`) the prefixes cover together, overlaps counted
    /// once (IPv4-mapped and NAT64 parts of IPv6 prefixes count as IPv4); `UInt128.max` when the count does not fit.
    public static func publicAddressCount(_ networks: [IPNetwork], v6: Bool) -> UInt128 {
        let family = v6 ? networks.filter(\.address.isV6) : networks.filter { !$0.address.isV6 } + networks.flatMap(\.embeddedV4Parts)
        let ranges = family.flatMap(\.publicRanges).sorted { $0.lowerBound < $1.lowerBound }
        var total: UInt128 = 0
        var merged: ClosedRange<UInt128>?
        func add(_ range: ClosedRange<UInt128>) -> Bool {
            let (partial, first) = total.addingReportingOverflow(range.upperBound - range.lowerBound)
            let (sum, second) = partial.addingReportingOverflow(1)
            total = sum
            return !first && !second
        }
        for range in ranges {
            // Sorted by lower bound, so a range that does not overlap starts above the current one (and above 0).
            if let current = merged, range.lowerBound <= current.upperBound || range.lowerBound - 1 == current.upperBound {
                merged = current.lowerBound...max(current.upperBound, range.upperBound)
                continue
            }
            if let current = merged, !add(current) { return .max }
            merged = range
        }
        if let current = merged, !add(current) { return .max }
        return total
    }
}
