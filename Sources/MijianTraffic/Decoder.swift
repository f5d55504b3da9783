import MijianCore

/// A capture's link-layer header type, as libpcap reports it (`pcap_datalink`).
public struct LinkType: Hashable, Sendable, CustomStringConvertible {
    /// The DLT value.
    public let rawValue: Int32

    /// Wraps a DLT value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    public static let null = LinkType(rawValue: 0)
    /// Ethernet II (and 802.3 frames, which carry no IP and are skipped).
    public static let ethernet = LinkType(rawValue: 1)
    /// Raw IP as most systems number it (libpcap maps LINKTYPE_RAW 101 here).
    public static let raw = LinkType(rawValue: 12)
    /// Raw IP as OpenBSD numbers it.
    public static let rawOpenBSD = LinkType(rawValue: 14)
    /// LINKTYPE_RAW, should a reader hand it through unmapped.
    public static let rawLinktype = LinkType(rawValue: 101)
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    public static let loop = LinkType(rawValue: 108)
    /// Linux cooked capture v1 (the `any` device).
    public static let linuxSLL = LinkType(rawValue: 113)
    /// Raw IPv4.
    public static let ipv4 = LinkType(rawValue: 228)
    /// Raw IPv6.
    public static let ipv6 = LinkType(rawValue: 229)
    /// Linux cooked capture v2.
    public static let linuxSLL2 = LinkType(rawValue: 276)

    /// Every link type the decoder understands.
    public static let supported: Set<LinkType> = [
        .null, .ethernet, .raw, .rawOpenBSD, .rawLinktype, .loop, .linuxSLL, .ipv4, .ipv6, .linuxSLL2,
    ]

    /// A short name, e.g. `EN10MB(1)`.
    public var description: String {
        switch self {
        case .null: return "NULL(0)"
        case .ethernet: return "EN10MB(1)"
        case .raw, .rawOpenBSD, .rawLinktype: return "RAW(\(rawValue))"
        case .loop: return "LOOP(108)"
        case .linuxSLL: return "LINUX_SLL(113)"
        case .ipv4: return "IPV4(228)"
        case .ipv6: return "IPV6(229)"
        case .linuxSLL2: return "LINUX_SLL2(276)"
        default: return "DLT(\(rawValue))"
        }
    }
}

/// IP protocol numbers the watch names.
public enum IPProtocol {
    /// ICMP.
    public static let icmp: UInt8 = 1
    /// TCP.
    public static let tcp: UInt8 = 6
    /// UDP.
    public static let udp: UInt8 = 17
    /// ICMPv6.
    public static let icmpv6: UInt8 = 58

    /// `tcp`, `udp`, `icmp`, `icmpv6`, or `ip-proto-N`.
    public static func name(_ value: UInt8) -> String {
        switch value {
        case icmp: return "icmp"
        case tcp: return "tcp"
        case udp: return "udp"
        case icmpv6: return "icmpv6"
        default: return "ip-proto-\(value)"
        }
    }
}

/// What the decoder found in one frame: the IP endpoints, the transport, and where its payload lies.
public struct DecodedPacket: Sendable, Equatable {
    /// Source address.
    public var src: IPAddress
    /// Destination address.
    public var dst: IPAddress
    /// The final protocol of the header chain (the upper-layer protocol when it was reached).
    public var proto: UInt8
    /// Source port (TCP/UDP), nil for later fragments, other protocols or truncated headers.
    public var srcPort: UInt16?
    /// Destination port (TCP/UDP), nil as for `srcPort`.
    public var dstPort: UInt16?
    /// Layer-3 length from the IP header (the whole packet as sent, not the captured part).
    public var ipLength: Int
    /// True for a non-first fragment (no transport header in it).
    public var isLaterFragment: Bool
    /// Byte range of the TCP/UDP payload inside the captured frame, when any of it was captured.
    public var payload: Range<Int>?
}

/// Decodes captured frames to IP endpoints and transport ports without copying them.
public enum PacketDecoder {
    /// Most VLAN tags the decoder walks (802.1Q stacked or 802.1ad QinQ).
    static let maxVLANTags = 8
    /// Most IPv6 extension headers the decoder walks.
    static let maxExtensionHeaders = 16

    /// Decodes one captured frame; nil when it holds no IP packet the decoder can read.
    public static func decode(_ frame: UnsafeRawBufferPointer, linkType: LinkType) -> DecodedPacket? {
        let view = ByteView(frame)
        switch linkType {
        case .ethernet:
            guard let type = view.u16(12) else { return nil }
            return network(view, etherType: type, at: 14)
        case .linuxSLL:
            guard let type = view.u16(14) else { return nil }
            return network(view, etherType: type, at: 16)
        case .linuxSLL2:
            guard let type = view.u16(0) else { return nil }
            return network(view, etherType: type, at: 20)
        case .raw, .rawOpenBSD, .rawLinktype:
            return ipByVersion(view, at: 0)
        case .ipv4:
            return ipv4(view, at: 0)
        case .ipv6:
            return ipv6(view, at: 0)
        case .null:
            guard let word = view.u32(0) else { return nil }
            // Written in the capturing host's order: a family fits in 16 bits, so a value above that
            // was written little-endian and is read here swapped.
            let family = word > 0xFFFF ? word.byteSwapped : word
            return byFamily(view, family: family)
        case .loop:
            guard let family = view.u32(0) else { return nil }
            return byFamily(view, family: family)
        default:
            return nil
        }
    }

    static func byFamily(_ view: ByteView, family: UInt32) -> DecodedPacket? {
        switch family {
        case 2: return ipv4(view, at: 4)
        case 10, 24, 28, 30: return ipv6(view, at: 4)
        default: return nil
        }
    }

    static func network(_ view: ByteView, etherType: UInt16, at start: Int) -> DecodedPacket? {
        var type = etherType
        var offset = start
        var tags = 0
        while type == 0x8100 || type == 0x88A8 || type == 0x9100 {
            guard tags < maxVLANTags, let inner = view.u16(offset + 2) else { return nil }
            type = inner
            offset += 4
            tags += 1
        }
        switch type {
        case 0x0800: return ipv4(view, at: offset)
        case 0x86DD: return ipv6(view, at: offset)
        default: return nil
        }
    }

    static func ipByVersion(_ view: ByteView, at offset: Int) -> DecodedPacket? {
        guard let first = view.u8(offset) else { return nil }
        switch first >> 4 {
        case 4: return ipv4(view, at: offset)
        case 6: return ipv6(view, at: offset)
        default: return nil
        }
    }

    static func ipv4(_ view: ByteView, at offset: Int) -> DecodedPacket? {
        guard let first = view.u8(offset), first >> 4 == 4, let total = view.u16(offset + 2),
            let fragment = view.u16(offset + 6), let proto = view.u8(offset + 9),
            let src = view.u32(offset + 12), let dst = view.u32(offset + 16)
        else { return nil }
        let headerLength = Int(first & 0x0F) * 4
        guard headerLength >= 20 else { return nil }
        // A total length shorter than the header (seen with segmentation offload) means "unknown":
        // the captured bytes bound the packet instead.
        let declared = Int(total) >= headerLength ? Int(total) : view.count - offset
        var packet = DecodedPacket(
            src: .v4(src), dst: .v4(dst), proto: proto, srcPort: nil, dstPort: nil, ipLength: declared,
            isLaterFragment: fragment & 0x1FFF != 0, payload: nil)
        if packet.isLaterFragment { return packet }
        let end = min(view.count, offset + declared)
        transport(view, at: offset + headerLength, end: end, into: &packet)
        return packet
    }

    static func ipv6(_ view: ByteView, at offset: Int) -> DecodedPacket? {
        guard let first = view.u8(offset), first >> 4 == 6, let payloadLength = view.u16(offset + 4),
            var next = view.u8(offset + 6), let src = view.u128(offset + 8), let dst = view.u128(offset + 24)
        else { return nil }
        // Payload length 0 is a jumbogram (or offload): the captured bytes bound it.
        let declared = payloadLength == 0 ? view.count - offset : 40 + Int(payloadLength)
        var packet = DecodedPacket(
            src: .v6(src), dst: .v6(dst), proto: next, srcPort: nil, dstPort: nil, ipLength: declared,
            isLaterFragment: false, payload: nil)
        let end = min(view.count, offset + declared)
        var cursor = offset + 40
        var walked = 0
        chain: while walked < maxExtensionHeaders {
            walked += 1
            switch next {
            case 0, 43, 60:  // hop-by-hop, routing, destination options: (len + 1) * 8 bytes
                guard let following = view.u8(cursor), let length = view.u8(cursor + 1) else { return packet }
                next = following
                cursor += (Int(length) + 1) * 8
            case 44:  // fragment header: 8 bytes; a non-zero offset means no transport header here
                guard let following = view.u8(cursor), let offsetField = view.u16(cursor + 2) else { return packet }
                next = following
                packet.proto = next
                if offsetField >> 3 != 0 {
                    packet.isLaterFragment = true
                    return packet
                }
                cursor += 8
            case 51:  // authentication header: (len + 2) * 4 bytes
                guard let following = view.u8(cursor), let length = view.u8(cursor + 1) else { return packet }
                next = following
                cursor += (Int(length) + 2) * 4
            default:
                break chain
            }
            packet.proto = next
        }
        transport(view, at: cursor, end: end, into: &packet)
        return packet
    }

    static func transport(_ view: ByteView, at offset: Int, end: Int, into packet: inout DecodedPacket) {
        switch packet.proto {
        case IPProtocol.tcp:
            guard offset + 4 <= end, let src = view.u16(offset), let dst = view.u16(offset + 2) else { return }
            packet.srcPort = src
            packet.dstPort = dst
            guard let dataOffset = view.u8(offset + 12) else { return }
            let start = offset + Int(dataOffset >> 4) * 4
            if dataOffset >> 4 >= 5, start <= end { packet.payload = start..<end }
        case IPProtocol.udp:
            guard offset + 4 <= end, let src = view.u16(offset), let dst = view.u16(offset + 2) else { return }
            packet.srcPort = src
            packet.dstPort = dst
            guard let length = view.u16(offset + 4), length >= 8, offset + 8 <= end else { return }
            packet.payload = (offset + 8)..<min(end, offset + Int(length))
        default:
            return
        }
    }
}
