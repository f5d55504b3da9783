import MijianCore

/// Why a frame could not be judged: the decoder could not read as far as the judgement needs.
///
/// A frame is judged when its IP destination and source could be read and, for a packet between inside
/// peers, everything that could still make it a violation (its ports, and a DNS query's header) could
/// be read too. A later IP fragment carries no ports, so it is judged on its addresses alone; every other
/// frame the decoder stops short on is counted under one of these reasons, and the watch never passes
/// while any was counted.
public enum UnjudgedReason: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// The record holds no captured byte (caplen 0).
    case emptyRecord
    /// The capture ends inside the link-layer header, a VLAN tag or an MPLS label.
    case linkHeaderTruncated
    /// The capture's link type is one the decoder does not read.
    case unknownLinkType
    /// More stacked VLAN tags and MPLS labels than the decoder walks (`PacketDecoder.maxTags`).
    case tooManyTags
    /// An MPLS label stack ends on something that is neither IPv4 nor IPv6 (a pseudowire may carry IP in it).
    case mplsPayloadNotIP
    /// The capture ends inside the IPv4 or IPv6 header.
    case ipHeaderTruncated
    /// An IP header that is not one: a version other than the link header announced, or an IPv4 header
    /// length below 20 bytes.
    case ipHeaderMalformed
    /// The capture ends inside the IPv6 extension header chain.
    case extensionHeadersTruncated
    /// More IPv6 extension headers than the decoder walks (`PacketDecoder.maxExtensionHeaders`).
    case tooManyExtensionHeaders
    /// The packet ends (as captured or as sent) inside its TCP or UDP header, so its ports, or where a
    /// DNS query to port 53 begins, are not known.
    case transportHeaderTruncated

    /// The key in evidence, e.g. `empty_record`.
    public var key: String {
        switch self {
        case .emptyRecord: return "empty_record"
        case .linkHeaderTruncated: return "link_header_truncated"
        case .unknownLinkType: return "unknown_link_type"
        case .tooManyTags: return "too_many_tags"
        case .mplsPayloadNotIP: return "mpls_payload_not_ip"
        case .ipHeaderTruncated: return "ip_header_truncated"
        case .ipHeaderMalformed: return "ip_header_malformed"
        case .extensionHeadersTruncated: return "extension_headers_truncated"
        case .tooManyExtensionHeaders: return "too_many_extension_headers"
        case .transportHeaderTruncated: return "transport_header_truncated"
        }
    }

    /// The reason as a person reads it in a message, e.g. `empty record (caplen 0)`.
    public var description: String {
        switch self {
        case .emptyRecord: return "empty record (caplen 0)"
        case .linkHeaderTruncated: return "cut inside the link-layer header"
        case .unknownLinkType: return "link type not read"
        case .tooManyTags: return "more than \(PacketDecoder.maxTags) VLAN tags or MPLS labels"
        case .mplsPayloadNotIP: return "MPLS payload not IP"
        case .ipHeaderTruncated: return "cut inside the IP header"
        case .ipHeaderMalformed: return "malformed IP header"
        case .extensionHeadersTruncated: return "cut inside the IPv6 extension headers"
        case .tooManyExtensionHeaders: return "more than \(PacketDecoder.maxExtensionHeaders) IPv6 extension headers"
        case .transportHeaderTruncated: return "cut inside the TCP or UDP header"
        }
    }
}

/// Frames that could not be judged, counted by reason; cheap to add and subtract, as the live
/// capture's per-report stretches do after every read.
public struct UnjudgedCounts: Sendable, Equatable {
    private var counts = [Int](repeating: 0, count: UnjudgedReason.allCases.count)

    /// No frame counted.
    public init() {}

    /// Frames counted for `reason`.
    public subscript(reason: UnjudgedReason) -> Int {
        get { counts[reason.rawValue] }
        set { counts[reason.rawValue] = newValue }
    }

    /// Frames counted for every reason together.
    public var total: Int { counts.reduce(0, +) }

    /// Counts one more frame for `reason`.
    public mutating func count(_ reason: UnjudgedReason) { counts[reason.rawValue] += 1 }

    /// These counts with `other`'s added.
    public static func + (lhs: UnjudgedCounts, rhs: UnjudgedCounts) -> UnjudgedCounts {
        var sum = lhs
        for index in sum.counts.indices { sum.counts[index] += rhs.counts[index] }
        return sum
    }

    /// These counts with `other`'s taken away (the counts since an earlier reading of the same counter).
    public static func - (lhs: UnjudgedCounts, rhs: UnjudgedCounts) -> UnjudgedCounts {
        var difference = lhs
        for index in difference.counts.indices { difference.counts[index] -= rhs.counts[index] }
        return difference
    }

    /// The reasons with a count, in declaration order, as `3 empty record (caplen 0), 1 cut inside the IP header`.
    public var summary: String {
        UnjudgedReason.allCases.filter { self[$0] > 0 }.map { "\(self[$0]) \($0)" }.joined(separator: ", ")
    }
}
