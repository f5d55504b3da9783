import Foundation
import MijianCore

/// The stretch of a long-running live capture since the last report: what `mijian run` seals into
/// each report's `traffic.egress` finding. The capture thread feeds it after every read with the
/// analyzer's and libpcap's running totals; `close(at:)` turns the stretch into a `TrafficResult`
/// and starts the next one, so each report accounts for its own packets, flows and drops, and
/// none is counted twice or left out.
public struct CaptureWindow: Sendable {
    /// The interface.
    public let interface: String
    /// Its link type.
    public let linkType: LinkType
    /// The kernel filter installed, nil when none.
    public let filter: String?
    /// The snap length in force.
    public let snapLength: Int
    /// The flow table's bound.
    public let tableCapacity: Int
    /// When this stretch began.
    public private(set) var startedAt: Date
    /// Why the capture stopped, when it did (kept for every later stretch: the link is not watched).
    public var stoppedBy: MijianError?

    private struct Counts: Sendable {
        var packets = 0
        var notIP = 0
        var unjudged = UnjudgedCounts()
        var violations = 0
        var cutPackets = 0
        var cutBytes = 0
        var cutNames = 0
    }

    /// This stretch's sums.
    private var window = Counts()
    private var records = 0
    /// The current analyzer's totals at the last update.
    private var seen = Counts()
    private var recordsSeen = 0
    private var statisticsBase: CaptureStatistics?
    private var statistics: CaptureStatistics?
    /// Packets of each flow of the current analyzer when this stretch began (or when it was last told).
    private var flowBase: [FlowKey: Int] = [:]
    /// Flows of the current analyzer that had packets in this stretch, as last seen.
    private var flows: [FlowKey: EgressFlow] = [:]
    /// Flows of analyzers replaced during this stretch, as they were when replaced.
    private var replacedFlows: [FlowKey: EgressFlow] = [:]

    /// A stretch starting now on an open capture.
    public init(interface: String, linkType: LinkType, filter: String?, snapLength: Int, tableCapacity: Int, at date: Date) {
        self.interface = interface
        self.linkType = linkType
        self.filter = filter
        self.snapLength = snapLength
        self.tableCapacity = tableCapacity
        self.startedAt = date
    }

    /// Takes the totals after a read: `recordsRead` and `statistics` are the capture's since it was
    /// opened, the analyzer's its own since it was made.
    public mutating func update(analyzer: EgressAnalyzer, recordsRead: Int, statistics: CaptureStatistics?) {
        records += recordsRead - recordsSeen
        recordsSeen = recordsRead
        if let statistics {
            if statisticsBase == nil { statisticsBase = CaptureStatistics(received: 0, dropped: 0, interfaceDropped: 0) }
            self.statistics = statistics
        }
        let table = analyzer.table
        let now = Counts(
            packets: analyzer.packets, notIP: analyzer.notIP, unjudged: analyzer.unjudged, violations: analyzer.violations,
            cutPackets: table.cutPackets, cutBytes: table.cutBytes, cutNames: table.cutNames)
        let changedFlows = now.violations != seen.violations || now.cutNames != seen.cutNames
        window.packets += now.packets - seen.packets
        window.notIP += now.notIP - seen.notIP
        window.unjudged = window.unjudged + (now.unjudged - seen.unjudged)
        window.violations += now.violations - seen.violations
        window.cutPackets += now.cutPackets - seen.cutPackets
        window.cutBytes += now.cutBytes - seen.cutBytes
        window.cutNames += now.cutNames - seen.cutNames
        seen = now
        // Only a violating packet changes a flow of the table: an idle read walks nothing.
        guard changedFlows else { return }
        for flow in table.entries where flow.stats.packets != flowBase[flow.key] ?? 0 || flows[flow.key] != nil {
            flows[flow.key] = flow
        }
    }

    /// The analyzer is about to be replaced by an empty one (its table filled): call after the last
    /// `update` with the old one. Its totals so far stay in this stretch.
    public mutating func analyzerReplaced() {
        // Flows of the old table counted here stay listed; the new table starts from zero.
        for (key, flow) in flows { replacedFlows[key] = replacedFlows[key].map { Self.merge($0, flow) } ?? flow }
        flows = [:]
        seen = Counts()
        flowBase = [:]
    }

    /// One flow seen in two tables of one stretch: counts added, the earliest first and latest last packet.
    private static func merge(_ a: EgressFlow, _ b: EgressFlow) -> EgressFlow {
        var names = a.stats.dnsNames
        for name in b.stats.dnsNames where !names.contains(name) { names.append(name) }
        return EgressFlow(
            key: a.key,
            stats: FlowStats(
                packets: a.stats.packets + b.stats.packets, bytes: a.stats.bytes + b.stats.bytes,
                firstSeen: min(a.stats.firstSeen, b.stats.firstSeen), lastSeen: max(a.stats.lastSeen, b.stats.lastSeen), dnsNames: names))
    }

    /// The stretch from its start to `date` as a result, and a new stretch from `date`.
    public mutating func close(at date: Date) -> TrafficResult {
        var delta: CaptureStatistics?
        if let statistics {
            let base = statisticsBase ?? CaptureStatistics(received: 0, dropped: 0, interfaceDropped: 0)
            // libpcap's counters are 32-bit and wrap: the difference modulo 2^32 is the stretch's.
            delta = CaptureStatistics(
                received: statistics.received &- base.received, dropped: statistics.dropped &- base.dropped,
                interfaceDropped: statistics.interfaceDropped &- base.interfaceDropped)
        }
        var all = replacedFlows
        for (key, flow) in flows { all[key] = all[key].map { Self.merge($0, flow) } ?? flow }
        let listed = all.values.sorted {
            ($0.stats.firstSeen, $0.key.src, $0.key.dst, $0.key.proto, $0.key.dstPort)
                < ($1.stats.firstSeen, $1.key.src, $1.key.dst, $1.key.proto, $1.key.dstPort)
        }
        let result = TrafficResult(
            sourceKind: "interface", source: interface, linkType: linkType, filter: filter, snapLength: snapLength,
            records: records, packets: window.packets, notIP: window.notIP, unjudged: window.unjudged, violations: window.violations, flows: listed,
            tableCapacity: tableCapacity, cutPackets: window.cutPackets, cutBytes: window.cutBytes, cutNames: window.cutNames,
            statistics: delta, startedAt: startedAt, endedAt: date, stoppedBy: stoppedBy)
        // Only flows of the current table have a base: a replaced table's are gone.
        for flow in flows.values { flowBase[flow.key] = flow.stats.packets }
        flows = [:]
        replacedFlows = [:]
        window = Counts()
        records = 0
        statisticsBase = statistics
        startedAt = date
        return result
    }
}
