import Foundation

/// One flow that broke the egress policy, as `traffic.egress` tells it.
public struct EgressFlowFacts: Sendable, Equatable {
    /// The source address.
    public var source: String
    /// The destination address.
    public var destination: String
    /// The IP protocol's name (`tcp`, `udp`, …).
    public var protocolName: String
    /// The destination port, nil for a protocol without ports.
    public var destinationPort: Int?
    /// Its packets.
    public var packets: Int
    /// The flow as evidence lists it.
    public var json: JSONValue

    /// Bundles them.
    public init(source: String, destination: String, protocolName: String, destinationPort: Int?, packets: Int, json: JSONValue) {
        self.source = source
        self.destination = destination
        self.protocolName = protocolName
        self.destinationPort = destinationPort
        self.packets = packets
        self.json = json
    }
}

/// libpcap's counters of a live capture (`pcap_stats`), for the stretch they cover.
public struct CaptureCounterFacts: Sendable, Equatable {
    /// Packets the kernel filter passed.
    public var received: Int
    /// Packets dropped because the buffer was full (`ps_drop`).
    public var dropped: Int
    /// Packets the interface or its driver dropped (`ps_ifdrop`).
    public var interfaceDropped: Int

    /// Bundles them.
    public init(received: Int, dropped: Int, interfaceDropped: Int) {
        self.received = received
        self.dropped = dropped
        self.interfaceDropped = interfaceDropped
    }
}

/// What one capture saw — a file read, a live watch, or one stretch of the service's watch on a
/// link — as `traffic.egress` judges it: counts, flows that broke the policy, and what could not
/// be judged or read.
public struct CaptureFacts: Sendable, Equatable {
    /// `file` or `interface`.
    public var sourceKind: String
    /// The file path or interface name.
    public var source: String
    /// The capture's link type, as evidence names it.
    public var linkType: String
    /// The BPF filter installed, nil when none.
    public var filter: String?
    /// The snap length in force.
    public var snapLength: Int
    /// Packets read.
    public var records: Int
    /// Packets judged.
    public var judgedPackets: Int
    /// Whole frames that carry no IP.
    public var notIP: Int
    /// Packets never judged (not readable far enough, or dropped before the analyzer saw them).
    public var unjudgedPackets: Int
    /// Those by reason, as a sentence says them.
    public var unjudgedSummary: String
    /// Those by reason, for evidence.
    public var unjudgedJSON: JSONValue
    /// Packets that broke the policy.
    public var violations: Int
    /// Flows that broke the policy, earliest first.
    public var flows: [EgressFlowFacts]
    /// The flow table's bound.
    public var tableCapacity: Int
    /// Packets of flows cut because the table was full.
    public var cutPackets: Int
    /// Bytes of flows cut because the table was full.
    public var cutBytes: Int
    /// DNS names not kept.
    public var cutNames: Int
    /// libpcap's counters of a live capture.
    public var counters: CaptureCounterFacts?
    /// When the capture (or stretch) began and ended.
    public var startedAt: Date
    /// When it ended.
    public var endedAt: Date
    /// Why reading stopped early, when it did: the sentence, and the error as evidence writes it.
    public var stoppedBy: (message: String, description: String)?

    /// Bundles them.
    public init(
        sourceKind: String, source: String, linkType: String, filter: String?, snapLength: Int, records: Int, judgedPackets: Int, notIP: Int,
        unjudgedPackets: Int, unjudgedSummary: String, unjudgedJSON: JSONValue, violations: Int, flows: [EgressFlowFacts], tableCapacity: Int,
        cutPackets: Int, cutBytes: Int, cutNames: Int, counters: CaptureCounterFacts?, startedAt: Date, endedAt: Date,
        stoppedBy: (message: String, description: String)?
    ) {
        self.sourceKind = sourceKind
        self.source = source
        self.linkType = linkType
        self.filter = filter
        self.snapLength = snapLength
        self.records = records
        self.judgedPackets = judgedPackets
        self.notIP = notIP
        self.unjudgedPackets = unjudgedPackets
        self.unjudgedSummary = unjudgedSummary
        self.unjudgedJSON = unjudgedJSON
        self.violations = violations
        self.flows = flows
        self.tableCapacity = tableCapacity
        self.cutPackets = cutPackets
        self.cutBytes = cutBytes
        self.cutNames = cutNames
        self.counters = counters
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.stoppedBy = stoppedBy
    }

    /// Whether anything broke the policy (flows kept or cut).
    public var brokePolicy: Bool { !flows.isEmpty || cutPackets > 0 }

    public static func == (a: CaptureFacts, b: CaptureFacts) -> Bool {
        a.sourceKind == b.sourceKind && a.source == b.source && a.linkType == b.linkType && a.filter == b.filter
            && a.snapLength == b.snapLength && a.records == b.records && a.judgedPackets == b.judgedPackets && a.notIP == b.notIP
            && a.unjudgedPackets == b.unjudgedPackets && a.unjudgedSummary == b.unjudgedSummary && a.unjudgedJSON == b.unjudgedJSON
            && a.violations == b.violations && a.flows == b.flows && a.tableCapacity == b.tableCapacity && a.cutPackets == b.cutPackets
            && a.cutBytes == b.cutBytes && a.cutNames == b.cutNames && a.counters == b.counters && a.startedAt == b.startedAt
            && a.endedAt == b.endedAt && a.stoppedBy?.message == b.stoppedBy?.message && a.stoppedBy?.description == b.stoppedBy?.description
    }
}

/// The service's traffic watch over the stretch since the last report: for each link it
/// captures, captured, or why nothing of it was judged; and the links the machine has.
public struct TrafficWindowFacts: Sendable, Equatable {
    /// One link's part of the stretch.
    public enum LinkCapture: Sendable, Equatable {
        /// Its capture ran: what it saw.
        case captured(CaptureFacts)
        /// The link is up but its capture could not be opened: why.
        case cannotCapture(link: String, error: String)
        /// The link is up but its capture had not started when the report was sealed.
        case notStarted(link: String)
    }

    /// Every link's part, in the order the watch tells them.
    public var captures: [LinkCapture]
    /// The machine's links, for a stretch in which none was up to capture.
    public var links: LinkStateFacts

    /// Bundles them.
    public init(captures: [LinkCapture], links: LinkStateFacts) {
        self.captures = captures
        self.links = links
    }
}
