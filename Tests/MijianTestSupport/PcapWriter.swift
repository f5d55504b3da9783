import Foundation

/// Writes small pcap and pcapng files for tests: little-endian, microsecond stamps (pcap) or the
/// pcapng default (microseconds, `if_tsresol` absent).
public struct PcapWriter {
    /// One record.
    public struct Record {
        /// Seconds since the epoch.
        public var seconds: UInt32
        /// Microseconds.
        public var micros: UInt32
        /// The captured bytes.
        public var frame: [UInt8]
        /// Length on the wire (defaults to the frame's length).
        public var wireLength: Int
    }

    /// The DLT / LINKTYPE value written in the header.
    public var linkType: UInt32
    /// Records in order.
    public private(set) var records: [Record] = []

    /// Starts an empty capture.
    public init(linkType: UInt32) { self.linkType = linkType }

    /// Adds a frame seen at `seconds`.`micros`.
    public mutating func add(_ frame: [UInt8], seconds: UInt32 = 1_795_000_000, micros: UInt32 = 0, wireLength: Int? = nil) {
        records.append(Record(seconds: seconds, micros: micros, frame: frame, wireLength: wireLength ?? frame.count))
    }

    /// The classic pcap file.
    public var pcap: [UInt8] {
        var out: [UInt8] = []
        out.le32(0xA1B2_C3D4)
        out.le16(2)
        out.le16(4)
        out.le32(0)
        out.le32(0)
        out.le32(65_535)
        out.le32(linkType)
        for record in records {
            out.le32(record.seconds)
            out.le32(record.micros)
            out.le32(UInt32(record.frame.count))
            out.le32(UInt32(record.wireLength))
            out += record.frame
        }
        return out
    }

    /// The same records as pcapng: a section header, one interface, one enhanced packet block each.
    public var pcapng: [UInt8] {
        var out: [UInt8] = []
        // Section header block.
        out.le32(0x0A0D_0D0A)
        out.le32(28)
        out.le32(0x1A2B_3C4D)
        out.le16(1)
        out.le16(0)
        out.le32(0xFFFF_FFFF)
        out.le32(0xFFFF_FFFF)
        out.le32(28)
        // Interface description block.
        out.le32(1)
        out.le32(20)
        out.le16(UInt16(linkType))
        out.le16(0)
        out.le32(65_535)
        out.le32(20)
        for record in records {
            let padded = (record.frame.count + 3) & ~3
            let total = UInt32(32 + padded)
            let stamp = UInt64(record.seconds) * 1_000_000 + UInt64(record.micros)
            out.le32(6)
            out.le32(total)
            out.le32(0)
            out.le32(UInt32(stamp >> 32))
            out.le32(UInt32(stamp & 0xFFFF_FFFF))
            out.le32(UInt32(record.frame.count))
            out.le32(UInt32(record.wireLength))
            out += record.frame
            out += [UInt8](repeating: 0, count: padded - record.frame.count)
            out.le32(total)
        }
        return out
    }

    /// Writes the pcap (or pcapng) bytes to a new file in `directory`.
    public func write(to directory: URL, name: String, pcapng: Bool = false) throws -> URL {
        let url = directory.appendingPathComponent(name)
        try Data(pcapng ? self.pcapng : pcap).write(to: url)
        return url
    }
}

/// Builds frames and packets byte by byte (checksums left zero: the decoder does not read them).
public enum PacketBuilder {
    /// Parses dotted-quad text into 4 bytes (tests pass literal addresses).
    public static func v4(_ text: String) -> [UInt8] {
        text.split(separator: ".").map { UInt8($0) ?? 0 }
    }

    /// 16 bytes of an IPv6 address written as 8 groups, `::` allowed once.
    public static func v6(_ text: String) -> [UInt8] {
        let halves = text.components(separatedBy: "::")
        func groups(_ part: String) -> [UInt16] { part.isEmpty ? [] : part.split(separator: ":").map { UInt16($0, radix: 16) ?? 0 } }
        let head = groups(halves[0])
        let tail = halves.count > 1 ? groups(halves[1]) : []
        let all = head + [UInt16](repeating: 0, count: max(0, 8 - head.count - tail.count)) + tail
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// An IPv4 packet; `options` are appended to the header (padded to 4 bytes).
    public static func ipv4(
        src: String, dst: String, proto: UInt8, payload: [UInt8], options: [UInt8] = [], fragmentOffset: UInt16 = 0,
        moreFragments: Bool = false, totalLength: Int? = nil
    ) -> [UInt8] {
        let padded = options + [UInt8](repeating: 0, count: (4 - options.count % 4) % 4)
        let headerLength = 20 + padded.count
        var out: [UInt8] = [0x40 | UInt8(headerLength / 4), 0]
        out.be16(UInt16(totalLength ?? (headerLength + payload.count)))
        out.be16(0x1234)
        out.be16((moreFragments ? 0x2000 : 0) | (fragmentOffset & 0x1FFF))
        out += [64, proto, 0, 0]
        out += v4(src) + v4(dst) + padded + payload
        return out
    }

    /// An IPv6 extension header (hop-by-hop, routing, destination options) of `units` × 8 bytes.
    public static func extensionHeader(next: UInt8, units: Int = 1) -> [UInt8] {
        [next, UInt8(units - 1)] + [UInt8](repeating: 0, count: units * 8 - 2)
    }

    /// An IPv6 fragment header.
    public static func fragmentHeader(next: UInt8, offset: UInt16, more: Bool) -> [UInt8] {
        var out: [UInt8] = [next, 0]
        out.be16(offset << 3 | (more ? 1 : 0))
        out += [0, 0, 0, 1]
        return out
    }

    /// An authentication header with a 12-byte ICV ((len + 2) × 4 = 24 bytes).
    public static func authenticationHeader(next: UInt8) -> [UInt8] {
        [next, 4, 0, 0] + [UInt8](repeating: 0, count: 20)
    }

    /// An IPv6 packet; `headers` is the already-chained extension headers (the first one's type is `next`).
    public static func ipv6(src: String, dst: String, next: UInt8, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x60, 0, 0, 0]
        out.be16(UInt16(payload.count))
        out += [next, 64]
        out += v6(src) + v6(dst) + payload
        return out
    }

    /// A UDP datagram.
    public static func udp(src: UInt16, dst: UInt16, payload: [UInt8] = []) -> [UInt8] {
        var out: [UInt8] = []
        out.be16(src)
        out.be16(dst)
        out.be16(UInt16(8 + payload.count))
        out.be16(0)
        return out + payload
    }

    /// A TCP segment (20-byte header, SYN|ACK flags irrelevant to the decoder).
    public static func tcp(src: UInt16, dst: UInt16, payload: [UInt8] = []) -> [UInt8] {
        var out: [UInt8] = []
        out.be16(src)
        out.be16(dst)
        out += [0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
        return out + payload
    }

    /// An ICMP (or ICMPv6) echo request.
    public static func icmpEcho() -> [UInt8] { [8, 0, 0, 0, 0, 1, 0, 1] }

    /// A DNS query message for `names`; with `compress`, each later name is its own first label plus a
    /// pointer to the first name minus its first label (so `b.x.y` after `a.x.y` is `b` + pointer to `x.y`).
    public static func dnsQuery(_ names: [String], compress: Bool = false, response: Bool = false) -> [UInt8] {
        var out: [UInt8] = [0x12, 0x34, response ? 0x81 : 0x01, 0x00]
        out.be16(UInt16(names.count))
        out += [0, 0, 0, 0, 0, 0]
        for (index, name) in names.enumerated() {
            if compress && index > 0 {
                let first = name.split(separator: ".").first.map(String.init) ?? ""
                out.append(UInt8(first.utf8.count))
                out += Array(first.utf8)
                out += [0xC0, 12 + UInt8(names[0].split(separator: ".").first?.utf8.count ?? 0) + 1]
            } else {
                for label in name.split(separator: ".") {
                    out.append(UInt8(label.utf8.count))
                    out += Array(label.utf8)
                }
                out.append(0)
            }
            out += [0, 1, 0, 1]
        }
        return out
    }

    /// An Ethernet II frame, with 802.1Q / 802.1ad tags (`tpid`, `vid`) in order.
    public static func ethernet(etherType: UInt16, payload: [UInt8], tags: [(UInt16, UInt16)] = []) -> [UInt8] {
        var out: [UInt8] = [0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]
        for (tpid, vid) in tags {
            out.be16(tpid)
            out.be16(vid)
        }
        out.be16(etherType)
        return out + payload
    }

    /// A Linux cooked v1 frame (16-byte header).
    public static func sll(protocol value: UInt16, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]
        out.be16(value)
        return out + payload
    }

    /// A Linux cooked v2 frame (20-byte header).
    public static func sll2(protocol value: UInt16, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.be16(value)
        out += [0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0]
        return out + payload
    }

    /// A BSD null frame: address family in little-endian (as an x86 host writes it) or big-endian.
    public static func null(family: UInt32, payload: [UInt8], bigEndian: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        if bigEndian { out.be32(family) } else { out.le32(family) }
        return out + payload
    }
}

extension Array where Element == UInt8 {
    /// Appends a little-endian 16-bit value.
    public mutating func le16(_ value: UInt16) { append(UInt8(value & 0xFF)); append(UInt8(value >> 8)) }
    /// Appends a little-endian 32-bit value.
    public mutating func le32(_ value: UInt32) { le16(UInt16(value & 0xFFFF)); le16(UInt16(value >> 16)) }
    /// Appends a big-endian 16-bit value.
    public mutating func be16(_ value: UInt16) { append(UInt8(value >> 8)); append(UInt8(value & 0xFF)) }
    /// Appends a big-endian 32-bit value.
    public mutating func be32(_ value: UInt32) { be16(UInt16(value >> 16)); be16(UInt16(value & 0xFFFF)) }
}
