import Foundation
import MijianCore

/// One aggregation key: source, destination, protocol and destination port.
public struct FlowKey: Hashable, Sendable {
    /// Source address.
    public var src: IPAddress
    /// Destination address.
    public var dst: IPAddress
    /// IP protocol number.
    public var proto: UInt8
    /// Destination port, -1 when the packet had none (ICMP, later fragments, truncated headers).
    public var dstPort: Int32

    /// Makes a key.
    public init(src: IPAddress, dst: IPAddress, proto: UInt8, dstPort: Int32) {
        self.src = src
        self.dst = dst
        self.proto = proto
        self.dstPort = dstPort
    }

    /// Hashes IPv4 keys as two words (the common case on every packet that breaks the policy); equal
    /// keys hash alike because the words are made from exactly the fields `==` compares.
    public func hash(into hasher: inout Hasher) {
        let tail = UInt64(proto) << 32 | UInt64(UInt32(bitPattern: dstPort))
        if case .v4(let source) = src, case .v4(let destination) = dst {
            hasher.combine(UInt64(source) << 32 | UInt64(destination))
            hasher.combine(tail)
        } else {
            hasher.combine(src)
            hasher.combine(dst)
            hasher.combine(tail | 1 << 40)
        }
    }
}

/// What was seen of one flow.
public struct FlowStats: Sendable, Equatable {
    /// Packets counted.
    public var packets: Int
    /// Layer-3 bytes counted (IP total length as sent).
    public var bytes: Int
    /// First packet, nanoseconds since the Unix epoch.
    public var firstSeen: Int64
    /// Last packet, nanoseconds since the Unix epoch.
    public var lastSeen: Int64
    /// DNS names queried in this flow, in the order first seen (bounded).
    public var dnsNames: [String]
}

/// A flow that broke the policy, ready for a report.
public struct EgressFlow: Sendable, Equatable {
    /// The key.
    public var key: FlowKey
    /// The counts.
    public var stats: FlowStats

    /// `{src, dst, protocol, dst_port, packets, bytes, first_seen, last_seen, dns_names}`.
    public var json: JSONValue {
        [
            "src": .string(key.src.description),
            "dst": .string(key.dst.description),
            "protocol": .string(IPProtocol.name(key.proto)),
            "dst_port": key.dstPort < 0 ? .null : .int(Int64(key.dstPort)),
            "packets": .int(Int64(stats.packets)),
            "bytes": .int(Int64(stats.bytes)),
            "first_seen": .string(EgressFlow.timestamp(stats.firstSeen)),
            "last_seen": .string(EgressFlow.timestamp(stats.lastSeen)),
            "dns_names": .strings(stats.dnsNames),
        ]
    }

    /// RFC 3339 UTC with milliseconds (`2026-11-29T03:55:18.123Z`, the form `RFC3339.string(fractional:)`
    /// writes) from nanoseconds since the epoch, computed with integer civil-date arithmetic: a report may
    /// hold tens of thousands of flows and the general formatter costs microseconds per call.
    public static func timestamp(_ nanoseconds: Int64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        appendTimestamp(nanoseconds, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Writes `timestamp(nanoseconds)` at the end of `out` (always 24 bytes).
    public static func appendTimestamp(_ nanoseconds: Int64, to out: inout [UInt8]) {
        let (head, tail) = timestampBytes(nanoseconds)
        withUnsafeBytes(of: head) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: tail) { out.append(contentsOf: $0) }
    }

    /// The 24 bytes of `timestamp(nanoseconds)` as two 12-byte halves.
    static func timestampBytes(_ nanoseconds: Int64) -> (TwelveBytes, TwelveBytes) {
        var seconds = nanoseconds / 1_000_000_000
        var fraction = nanoseconds % 1_000_000_000
        if fraction < 0 {
            fraction += 1_000_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var second = seconds % 86_400
        if second < 0 {
            second += 86_400
            days -= 1
        }
        // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shifted = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shifted + 2) / 5 + 1
        let month = shifted < 10 ? shifted + 3 : shifted - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        // Every field is in range here (the year is written modulo 10,000), so each digit is one byte.
        let y = UInt8(truncatingIfNeeded: ((year % 10_000) + 10_000) % 10_000 / 100)
        let c = UInt8(truncatingIfNeeded: ((year % 100) + 100) % 100)
        let millis = UInt16(truncatingIfNeeded: fraction / 1_000_000)
        let hour = UInt8(truncatingIfNeeded: second / 3600)
        let minute = UInt8(truncatingIfNeeded: second / 60 % 60)
        let sec = UInt8(truncatingIfNeeded: second % 60)
        let m = UInt8(truncatingIfNeeded: month)
        let d = UInt8(truncatingIfNeeded: day)
        let head: TwelveBytes = (
            0x30 + y / 10, 0x30 + y % 10, 0x30 + c / 10, 0x30 + c % 10, 0x2D, 0x30 + m / 10, 0x30 + m % 10, 0x2D,
            0x30 + d / 10, 0x30 + d % 10, 0x54, 0x30 + hour / 10
        )
        let tail: TwelveBytes = (
            0x30 + hour % 10, 0x3A, 0x30 + minute / 10, 0x30 + minute % 10, 0x3A, 0x30 + sec / 10, 0x30 + sec % 10, 0x2E,
            0x30 + UInt8(millis / 100), 0x30 + UInt8(millis / 10 % 10), 0x30 + UInt8(millis % 10), 0x5A
        )
        return (head, tail)
    }

    /// Twelve bytes held inline.
    typealias TwelveBytes = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    /// A date from nanoseconds since the epoch.
    public static func date(_ nanoseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(nanoseconds / 1_000_000_000) + Double(nanoseconds % 1_000_000_000) / 1e9)
    }
}

/// Flows aggregated in a table of bounded size: once full, packets of new flows are counted as cut.
///
/// Flows are kept in the order they were first seen, with an index from key to position, so the
/// earliest-first listing of a capture read in time order needs almost no sorting.
public struct FlowTable: Sendable {
    /// Most flows kept.
    public let capacity: Int
    /// Most DNS names kept per flow.
    public static let maxNamesPerFlow = 32
    /// The flows, in the order their first packet was counted.
    public private(set) var entries: [EgressFlow] = []
    /// Position of each key in `entries`.
    private var index: [FlowKey: Int] = [:]
    /// Packets of flows that did not fit.
    public private(set) var cutPackets = 0
    /// Bytes of flows that did not fit.
    public private(set) var cutBytes = 0
    /// DNS names not kept because a flow already held `maxNamesPerFlow`.
    public private(set) var cutNames = 0

    /// Makes an empty table.
    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        index.reserveCapacity(min(self.capacity, 1 << 16))
    }

    /// Flows kept.
    public var count: Int { entries.count }

    private static func read(_ value: inout Int, into out: inout Int) { out = value }

    /// The counts of one flow, nil when it is not in the table.
    public subscript(key: FlowKey) -> FlowStats? {
        index[key].map { entries[$0].stats }
    }

    /// Counts one packet.
    public mutating func add(_ key: FlowKey, bytes: Int, at time: Int64, names: [String]) {
        let next = entries.count
        var found = next
        if next < capacity {
            // One hash for both outcomes: the default subscript inserts `next` when the key is new.
            Self.read(&index[key, default: next], into: &found)
        } else if let position = index[key] {
            found = position
        }
        if found < next {
            let position = found
            entries[position].stats.count(bytes: bytes, at: time)
            for name in names where !entries[position].stats.dnsNames.contains(name) {
                if entries[position].stats.dnsNames.count < FlowTable.maxNamesPerFlow {
                    entries[position].stats.dnsNames.append(name)
                } else {
                    cutNames += 1
                }
            }
            return
        }
        guard next < capacity else {
            cutPackets += 1
            cutBytes += bytes
            return
        }
        var unique: [String] = []
        for name in names where !unique.contains(name) && unique.count < FlowTable.maxNamesPerFlow { unique.append(name) }
        entries.append(EgressFlow(key: key, stats: FlowStats(packets: 1, bytes: bytes, firstSeen: time, lastSeen: time, dnsNames: unique)))
    }

    /// The flows, earliest first (ties by addresses, protocol and port) so output is stable. The sort is
    /// stable and finds the runs already in order, so a capture read in time order costs one pass.
    public var sorted: [EgressFlow] {
        func before(_ a: EgressFlow, _ b: EgressFlow) -> Bool {
            if a.stats.firstSeen != b.stats.firstSeen { return a.stats.firstSeen < b.stats.firstSeen }
            if a.key.src != b.key.src { return a.key.src < b.key.src }
            if a.key.dst != b.key.dst { return a.key.dst < b.key.dst }
            if a.key.proto != b.key.proto { return a.key.proto < b.key.proto }
            return a.key.dstPort < b.key.dstPort
        }
        // Already in order (a capture read in time order without ties): the entries themselves, uncopied.
        let inOrder = entries.withUnsafeBufferPointer { flows in
            flows.indices.dropFirst().allSatisfy { before(flows[$0 - 1], flows[$0]) }
        }
        return inOrder ? entries : entries.sorted(by: before)
    }
}

extension FlowStats {
    /// Counts one more packet of the flow.
    mutating func count(bytes: Int, at time: Int64) {
        packets += 1
        self.bytes += bytes
        if time < firstSeen { firstSeen = time }
        if time > lastSeen { lastSeen = time }
    }
}

/// Judges packets against the policy and aggregates the ones that break it.
public struct EgressAnalyzer: Sendable {
    /// The compiled policy.
    public let policy: EgressPolicy
    /// Flows that broke the policy.
    public private(set) var table: FlowTable
    /// Frames handed in.
    public private(set) var packets = 0
    /// Whole frames that carry no IP (ARP, LLDP, spanning tree, …).
    public private(set) var notIP = 0
    /// Packets that broke the policy.
    public private(set) var violations = 0
    /// Frames that could not be judged, by reason: a later fragment is judged on its addresses, but a frame
    /// whose addresses could not be read, or an inside packet whose ports or query could not, is not.
    public private(set) var unjudged = UnjudgedCounts()
    /// Reused for DNS names on the allocation-free path.
    private var scratch: [UInt8] = []

    /// Makes an analyzer with the policy's flow-table bound.
    public init(policy: EgressPolicy) {
        self.policy = policy
        table = FlowTable(capacity: policy.policy.traffic.maxFlows)
    }

    /// Judges one captured frame; `time` is nanoseconds since the epoch.
    public mutating func process(_ frame: UnsafeRawBufferPointer, linkType: LinkType, time: Int64) {
        packets += 1
        let packet: DecodedPacket
        switch PacketDecoder.classify(frame, linkType: linkType) {
        case .packet(let decoded):
            packet = decoded
        case .notIP:
            notIP += 1
            return
        case .unjudged(let reason):
            unjudged.count(reason)
            return
        }
        var outside = !policy.isInside(packet.src) || !policy.isInside(packet.dst)
        // Inside peers, but the rest of the packet could not be read: it may be a query for an outside
        // name, so it is neither passed nor flagged. An outside peer is a violation whatever follows.
        if !outside, let reason = packet.incomplete {
            unjudged.count(reason)
            return
        }
        var names: [String] = []
        if packet.dstPort == 53, let payload = packet.payload,
            packet.proto == IPProtocol.udp || packet.proto == IPProtocol.tcp
        {
            let bytes = UnsafeRawBufferPointer(rebasing: frame[payload])
            // Inside peers asking only for the unit's names: nothing to record, so no names are made.
            if !outside,
                DNSDecoder.asksOnlyAllowedNames(
                    payload: bytes, overTCP: packet.proto == IPProtocol.tcp, cut: packet.payloadCut, scratch: &scratch, policy: policy)
            {
                return
            }
            switch DNSDecoder.query(payload: bytes, overTCP: packet.proto == IPProtocol.tcp, cut: packet.payloadCut) {
            case .notQuery:
                break
            case .names(let queried):
                names = queried
                if queried.contains(where: { !policy.isAllowedName($0) }) { outside = true }
            case .undecodable:
                names = [DNSDecoder.undecodableName]
                outside = true
            }
        }
        guard outside else { return }
        violations += 1
        let key = FlowKey(src: packet.src, dst: packet.dst, proto: packet.proto, dstPort: packet.dstPort.map { Int32($0) } ?? -1)
        table.add(key, bytes: packet.ipLength, at: time, names: names)
    }
}
