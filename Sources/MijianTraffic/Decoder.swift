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
    /// Set when the addresses were read but something the judgement of an inside packet needs was not
    /// (a header chain cut or too long, ports or the start of a DNS query not captured): such a packet
    /// can still be a violation on its addresses, but it cannot pass.
    public var incomplete: UnjudgedReason?
    /// True when bytes of the transport payload lie past `payload`: the capture cut the packet, or it is
    /// a first fragment with more to follow. A stream of DNS messages may go on there unseen.
    public var payloadCut = false
}

/// What the decoder made of one frame.
public enum DecodeResult: Sendable, Equatable {
    /// An IP packet (possibly `incomplete`).
    case packet(DecodedPacket)
    /// A whole frame that carries no IP: ARP, LLDP, spanning tree, an address family other than IP.
    case notIP
    /// A frame the decoder could not read far enough to know whether it carries IP, or where to.
    case unjudged(UnjudgedReason)

    /// The packet, when there is one.
    public var packet: DecodedPacket? {
        if case .packet(let packet) = self { return packet }
        return nil
    }
}

/// Decodes captured frames to IP endpoints and transport ports without copying them.
public enum PacketDecoder {
    /// Most VLAN tags (802.1Q stacked or 802.1ad QinQ) and MPLS labels the decoder walks in one frame.
    /// The kernel lets VLAN devices stack and a raw socket may send any number of tags, so the decoder
    /// walks as deep as the captured bytes go, up to this bound; a frame deeper still is unjudged.
    public static let maxTags = 32
    /// Most IPv6 extension headers the decoder walks; a longer chain is unjudged.
    public static let maxExtensionHeaders = 16

    /// Decodes one captured frame; nil when it holds no IP packet the decoder can read (`classify` says why).
    public static func decode(_ frame: UnsafeRawBufferPointer, linkType: LinkType) -> DecodedPacket? {
        classify(frame, linkType: linkType).packet
    }

    /// Decodes one captured frame, saying whether it carries no IP or why it could not be judged.
    public static func classify(_ frame: UnsafeRawBufferPointer, linkType: LinkType) -> DecodeResult {
        let view = ByteView(frame)
        if view.count == 0 { return .unjudged(.emptyRecord) }
        switch linkType {
        case .ethernet:
            guard let type = view.u16(12) else { return .unjudged(.linkHeaderTruncated) }
            return network(view, etherType: type, at: 14)
        case .linuxSLL:
            guard let type = view.u16(14) else { return .unjudged(.linkHeaderTruncated) }
            return network(view, etherType: type, at: 16)
        case .linuxSLL2:
            guard view.has(0, 20), let type = view.u16(0) else { return .unjudged(.linkHeaderTruncated) }
            return network(view, etherType: type, at: 20)
        case .raw, .rawOpenBSD, .rawLinktype:
            return ipByVersion(view, at: 0)
        case .ipv4:
            return ipv4(view, at: 0)
        case .ipv6:
            return ipv6(view, at: 0)
        case .null:
            guard let word = view.u32(0) else { return .unjudged(.linkHeaderTruncated) }
            // Written in the capturing host's order: a family fits in 16 bits, so a value above that
            // was written little-endian and is read here swapped.
            let family = word > 0xFFFF ? word.byteSwapped : word
            return byFamily(view, family: family)
        case .loop:
            guard let family = view.u32(0) else { return .unjudged(.linkHeaderTruncated) }
            return byFamily(view, family: family)
        default:
            return .unjudged(.unknownLinkType)
        }
    }

    static func byFamily(_ view: ByteView, family: UInt32) -> DecodeResult {
        switch family {
        case 2: return ipv4(view, at: 4)
        case 10, 24, 28, 30: return ipv6(view, at: 4)
        default: return .notIP
        }
    }

    /// Walks VLAN tags, MPLS labels, PPPoE session and LLC/SNAP headers to the IP header: each is a way
    /// to carry IP that a decoder reading only the outer EtherType would take for something else.
    static func network(_ view: ByteView, etherType: UInt16, at start: Int) -> DecodeResult {
        var type = etherType
        var offset = start
        var tags = 0
        while true {
            switch type {
            case 0x0800:
                return ipv4(view, at: offset)
            case 0x86DD:
                return ipv6(view, at: offset)
            case 0x8100, 0x88A8, 0x9100:
                guard tags < maxTags else { return .unjudged(.tooManyTags) }
                guard let inner = view.u16(offset + 2) else { return .unjudged(.linkHeaderTruncated) }
                type = inner
                offset += 4
                tags += 1
            case 0x8847, 0x8848:
                return mpls(view, at: offset, tags: tags)
            case 0x8864:
                // PPPoE session: 6 bytes, then the PPP protocol (0x0021 IPv4, 0x0057 IPv6).
                guard let protocolField = view.u16(offset + 6) else { return .unjudged(.linkHeaderTruncated) }
                switch protocolField {
                case 0x0021: return ipv4(view, at: offset + 8)
                case 0x0057: return ipv6(view, at: offset + 8)
                default: return .notIP
                }
            case ...1500:
                // An 802.3 length: IP rides only behind LLC/SNAP (AA AA 03) with OUI 0 (RFC 1042).
                guard let saps = view.u16(offset), let control = view.u8(offset + 2) else {
                    return .unjudged(.linkHeaderTruncated)
                }
                guard saps == 0xAAAA, control == 0x03 else { return .notIP }
                guard let ouiHigh = view.u8(offset + 3), let ouiLow = view.u16(offset + 4), let inner = view.u16(offset + 6) else {
                    return .unjudged(.linkHeaderTruncated)
                }
                // An inner EtherType that is itself a length would start SNAP again: not IP as RFC 1042 carries it.
                guard ouiHigh == 0, ouiLow == 0, inner > 1500 else { return .notIP }
                guard tags < maxTags else { return .unjudged(.tooManyTags) }
                type = inner
                offset += 8
                tags += 1
            default:
                return .notIP
            }
        }
    }

    /// An MPLS label stack to its bottom, then IP by its version nibble.
    static func mpls(_ view: ByteView, at start: Int, tags: Int) -> DecodeResult {
        var offset = start
        var labels = tags
        while true {
            guard labels < maxTags else { return .unjudged(.tooManyTags) }
            guard let entry = view.u32(offset) else { return .unjudged(.linkHeaderTruncated) }
            offset += 4
            labels += 1
            if entry & 0x100 != 0 { break }
        }
        return ipByVersion(view, at: offset, otherwise: .mplsPayloadNotIP)
    }

    /// IPv4 or IPv6 by the version nibble; any other version is unjudged for `otherwise`.
    static func ipByVersion(_ view: ByteView, at offset: Int, otherwise: UnjudgedReason = .ipHeaderMalformed) -> DecodeResult {
        guard let first = view.u8(offset) else { return .unjudged(.ipHeaderTruncated) }
        switch first >> 4 {
        case 4: return ipv4(view, at: offset)
        case 6: return ipv6(view, at: offset)
        default: return .unjudged(otherwise)
        }
    }

    static func ipv4(_ view: ByteView, at offset: Int) -> DecodeResult {
        guard let first = view.u8(offset) else { return .unjudged(.ipHeaderTruncated) }
        let headerLength = Int(first & 0x0F) * 4
        guard first >> 4 == 4, headerLength >= 20 else { return .unjudged(.ipHeaderMalformed) }
        guard let total = view.u16(offset + 2), let fragment = view.u16(offset + 6), let proto = view.u8(offset + 9),
            let src = view.u32(offset + 12), let dst = view.u32(offset + 16)
        else { return .unjudged(.ipHeaderTruncated) }
        // A total length shorter than the header (seen with segmentation offload) means "unknown":
        // the captured bytes bound the packet instead.
        let declared = Int(total) >= headerLength ? Int(total) : view.count - offset
        var packet = DecodedPacket(
            src: .v4(src), dst: .v4(dst), proto: proto, srcPort: nil, dstPort: nil, ipLength: declared,
            isLaterFragment: fragment & 0x1FFF != 0, payload: nil, incomplete: nil)
        // A later fragment has no transport header: it is judged on its addresses alone.
        if packet.isLaterFragment { return .packet(packet) }
        guard view.has(offset, headerLength) else {
            packet.incomplete = .ipHeaderTruncated
            return .packet(packet)
        }
        let end = min(view.count, offset + declared)
        transport(view, at: offset + headerLength, end: end, cut: end < offset + declared || fragment & 0x2000 != 0, into: &packet)
        return .packet(packet)
    }

    static func ipv6(_ view: ByteView, at offset: Int) -> DecodeResult {
        guard let first = view.u8(offset) else { return .unjudged(.ipHeaderTruncated) }
        guard first >> 4 == 6 else { return .unjudged(.ipHeaderMalformed) }
        guard let payloadLength = view.u16(offset + 4), var next = view.u8(offset + 6), let src = view.u128(offset + 8),
            let dst = view.u128(offset + 24)
        else { return .unjudged(.ipHeaderTruncated) }
        // Payload length 0 is a jumbogram (or offload): the captured bytes bound it.
        let declared = payloadLength == 0 ? view.count - offset : 40 + Int(payloadLength)
        var packet = DecodedPacket(
            src: .v6(src), dst: .v6(dst), proto: next, srcPort: nil, dstPort: nil, ipLength: declared,
            isLaterFragment: false, payload: nil, incomplete: nil)
        let end = min(view.count, offset + declared)
        var moreFragments = false
        var cursor = offset + 40
        var walked = 0
        chain: while true {
            switch next {
            case 0, 43, 44, 51, 60:
                guard walked < maxExtensionHeaders else {
                    packet.incomplete = .tooManyExtensionHeaders
                    return .packet(packet)
                }
                walked += 1
            default:
                break chain
            }
            guard let following = view.u8(cursor), let length = view.u8(cursor + 1) else {
                packet.incomplete = .extensionHeadersTruncated
                return .packet(packet)
            }
            switch next {
            case 44:  // fragment header: 8 bytes; a non-zero offset means no transport header here
                guard let offsetField = view.u16(cursor + 2) else {
                    packet.incomplete = .extensionHeadersTruncated
                    return .packet(packet)
                }
                packet.proto = following
                if offsetField >> 3 != 0 {
                    // Judged on its addresses alone, as an IPv4 later fragment is.
                    packet.isLaterFragment = true
                    return .packet(packet)
                }
                moreFragments = offsetField & 1 != 0
                cursor += 8
            case 51:  // authentication header: (len + 2) * 4 bytes
                cursor += (Int(length) + 2) * 4
            default:  // hop-by-hop, routing, destination options: (len + 1) * 8 bytes
                cursor += (Int(length) + 1) * 8
            }
            next = following
            packet.proto = next
        }
        transport(view, at: cursor, end: end, cut: end < offset + declared || moreFragments, into: &packet)
        return .packet(packet)
    }

    /// Reads TCP or UDP ports and locates the payload; marks the packet incomplete when the ports, or the
    /// start of a query to port 53, lie past what was captured (or past the packet's own end). `cut`
    /// says the packet goes on past `end` (not captured, or in later fragments).
    static func transport(_ view: ByteView, at offset: Int, end: Int, cut: Bool, into packet: inout DecodedPacket) {
        let tcp = packet.proto == IPProtocol.tcp
        guard tcp || packet.proto == IPProtocol.udp else { return }
        guard offset + 4 <= end, let src = view.u16(offset), let dst = view.u16(offset + 2) else {
            packet.incomplete = .transportHeaderTruncated
            return
        }
        packet.srcPort = src
        packet.dstPort = dst
        // Where the payload starts: TCP's data offset, UDP's fixed 8 bytes (a UDP length below 8 is malformed).
        let start: Int?
        var payloadEnd = end
        if tcp {
            let dataOffset = offset + 13 <= end ? view.u8(offset + 12) : nil
            start = dataOffset.map { offset + Int($0 >> 4) * 4 }
            if let dataOffset, dataOffset >> 4 < 5 { return }
            packet.payloadCut = cut
        } else {
            let length = offset + 8 <= end ? view.u16(offset + 4) : nil
            start = length.map { _ in offset + 8 }
            if let length {
                guard length >= 8 else { return }
                payloadEnd = min(end, offset + Int(length))
                packet.payloadCut = cut && offset + Int(length) > end
            }
        }
        if let start, start <= end {
            packet.payload = start..<payloadEnd
        } else if dst == 53 {
            // A query whose start was not captured cannot be read: the packet cannot pass.
            packet.incomplete = .transportHeaderTruncated
        }
    }
}
