import Foundation
import Logging
import MijianCore

/// What one watch (a file read or a live capture) found.
public struct TrafficResult: Sendable {
    /// `file` or `interface`.
    public var sourceKind: String
    /// The file path or interface name.
    public var source: String
    /// The capture's link type.
    public var linkType: LinkType
    /// The BPF filter installed, nil when none could be (every packet was then judged in user space).
    public var filter: String?
    /// The snap length in force.
    public var snapLength: Int
    /// Packets read (files: every record; live: those the kernel filter passed).
    public var records: Int
    /// Frames handed to the analyzer (those the filter passed), judged or not.
    public var packets: Int
    /// Whole frames that carry no IP (ARP, LLDP, …).
    public var notIP: Int
    /// Frames the decoder could not judge, by reason (the packets dropped before judging are `droppedPackets`).
    public var unjudged = UnjudgedCounts()
    /// Packets that broke the policy.
    public var violations: Int
    /// Flows that broke the policy, earliest first.
    public var flows: [EgressFlow]
    /// The flow table's bound.
    public var tableCapacity: Int
    /// Packets of flows cut because the table was full.
    public var cutPackets: Int
    /// Bytes of flows cut because the table was full.
    public var cutBytes: Int
    /// DNS names not kept because a flow held the most it keeps.
    public var cutNames: Int
    /// Live-capture counters.
    public var statistics: CaptureStatistics?
    /// When the watch began.
    public var startedAt: Date
    /// When the watch ended.
    public var endedAt: Date
    /// Why reading stopped before the end of a file, when it did.
    public var stoppedBy: MijianError?

    /// Whether anything broke the policy (flows kept or cut).
    public var brokePolicy: Bool { !flows.isEmpty || cutPackets > 0 }

    /// Packets the kernel or the interface dropped.
    public var droppedPackets: Int {
        guard let statistics else { return 0 }
        return Int(statistics.dropped) + Int(statistics.interfaceDropped)
    }

    /// Frames the analyzer judged: those it was handed less those it could not judge.
    public var judgedPackets: Int { packets - unjudged.total }

    /// Packets never judged: those the decoder could not read far enough, and those dropped before it saw them.
    public var unjudgedPackets: Int { unjudged.total + droppedPackets }

    /// The unjudged packets by reason, as a message says them: `1000 empty record (caplen 0), 3 dropped by the kernel`.
    public var unjudgedSummary: String {
        var parts = unjudged.total > 0 ? [unjudged.summary] : []
        if let statistics, statistics.dropped > 0 { parts.append("\(statistics.dropped) dropped by the kernel (ps_drop)") }
        if let statistics, statistics.interfaceDropped > 0 {
            parts.append("\(statistics.interfaceDropped) dropped by the interface (ps_ifdrop)")
        }
        return parts.joined(separator: ", ")
    }

    /// The unjudged packets by reason for evidence: every reason (zero or not), the drops, and the total.
    public var unjudgedJSON: JSONValue {
        var members: [(String, JSONValue)] = [("total", .integer(unjudgedPackets))]
        for reason in UnjudgedReason.allCases { members.append((reason.key, .integer(unjudged[reason]))) }
        members.append(("dropped_by_kernel", .integer(statistics?.dropped ?? 0)))
        members.append(("dropped_by_interface", .integer(statistics?.interfaceDropped ?? 0)))
        return .object(members)
    }
}

/// Runs the outbound-traffic watch over a file or an interface; `TrafficChecks.egress` judges its result's `facts`.
public enum TrafficWatch {
    /// Snap length of a live capture: a usual header chain (cooked header 20, two VLAN tags 8, IPv6 40
    /// with extension headers, TCP 60, DNS length 2 and header 12) plus a 255-byte query name fits in
    /// 512 bytes; payload beyond that is never copied. A deeper stack of tags can cut a query name, and
    /// a query whose question was cut counts as asking outside, so the bound never makes a pass.
    public static let liveSnapLength: Int32 = 512
    /// Kernel buffer of a live capture: 8 MiB holds about 16,000 headers-only packets of a burst.
    public static let liveBufferBytes: Int32 = 8 << 20

    /// Reads a pcap or pcapng file. Open failures throw; a read error part-way is kept in `stoppedBy`
    /// with the flows read before it.
    public static func read(file path: String, policy: EgressPolicy, logger: Logger) throws(MijianError) -> TrafficResult {
        let started = Date()
        let capture = try PacketCapture.open(file: path)
        let filter = install(policy.bpfFilter(for: capture.linkType), on: capture, logger: logger)
        // This thread reads records with libpcap; another runs the filter on them and judges what it
        // keeps, a batch behind, so the two halves of the work share the machine's cores.
        let pipe = PacketPipe(capacity: 16)
        let judge = JudgingThread(
            analyzer: EgressAnalyzer(policy: policy), linkType: capture.linkType, filter: capture.compiledFilter, pipe: pipe)
        judge.start()
        var stopped: MijianError?
        do {
            try capture.readAll(into: pipe)
        } catch {
            logger.info("capture read stopped early", metadata: ["traffic.source": "\(path)", "traffic.error": "\(error)"])
            stopped = error
        }
        pipe.close()
        let analyzer = judge.wait()
        return result(
            kind: "file", capture: capture, filter: filter, analyzer: analyzer, statistics: nil, started: started, stopped: stopped)
    }

    /// Captures on an interface for `duration`, then returns; a silent interface stops on time.
    public static func live(
        interface: String, duration: Duration, policy: EgressPolicy, logger: Logger
    ) throws(MijianError) -> TrafficResult {
        let started = Date()
        let deadline = ContinuousClock.now.advanced(by: duration)
        let capture = try PacketCapture.open(interface: interface, snapLength: liveSnapLength, bufferBytes: liveBufferBytes)
        let filter = install(policy.bpfFilter(for: capture.linkType), on: capture, logger: logger)
        var analyzer = EgressAnalyzer(policy: policy)
        let linkType = capture.linkType
        logger.info("watching", metadata: ["traffic.interface": "\(interface)", "traffic.filter": "\(filter ?? "(none)")"])
        try capture.watch(until: deadline) { packet in analyzer.process(packet.bytes, linkType: linkType, time: packet.time) }
        return result(
            kind: "interface", capture: capture, filter: filter, analyzer: analyzer, statistics: capture.statistics(),
            started: started, stopped: nil)
    }

    /// Installs the policy filter; a filter libpcap rejects is logged and dropped, since judging
    /// every packet in user space is slower but still right.
    private static func install(_ expression: String, on capture: PacketCapture, logger: Logger) -> String? {
        guard !expression.isEmpty else { return nil }
        do {
            try capture.setFilter(expression)
            return expression
        } catch {
            logger.warning("filter not installed; judging every packet", metadata: ["traffic.error": "\(error)"])
            return nil
        }
    }

    private static func result(
        kind: String, capture: PacketCapture, filter: String?, analyzer: EgressAnalyzer, statistics: CaptureStatistics?,
        started: Date, stopped: MijianError?
    ) -> TrafficResult {
        TrafficResult(
            sourceKind: kind, source: capture.source, linkType: capture.linkType, filter: filter,
            snapLength: capture.snapLength, records: capture.recordsRead, packets: analyzer.packets, notIP: analyzer.notIP, unjudged: analyzer.unjudged,
            violations: analyzer.violations,
            flows: analyzer.table.sorted, tableCapacity: analyzer.table.capacity, cutPackets: analyzer.table.cutPackets,
            cutBytes: analyzer.table.cutBytes, cutNames: analyzer.table.cutNames, statistics: statistics, startedAt: started,
            endedAt: Date(), stoppedBy: stopped)
    }
}

extension TrafficResult {
    /// What `traffic.egress` judges: the counts, flows and errors of this watch as plain facts.
    public var facts: CaptureFacts {
        CaptureFacts(
            sourceKind: sourceKind, source: source, linkType: linkType.description, filter: filter, snapLength: snapLength, records: records,
            judgedPackets: judgedPackets, notIP: notIP, unjudgedPackets: unjudgedPackets, unjudgedSummary: unjudgedSummary,
            unjudgedJSON: unjudgedJSON, violations: violations,
            flows: flows.map { flow in
                EgressFlowFacts(
                    source: "\(flow.key.src)", destination: "\(flow.key.dst)", protocolName: IPProtocol.name(flow.key.proto),
                    destinationPort: flow.key.dstPort < 0 ? nil : Int(flow.key.dstPort), packets: flow.stats.packets, json: flow.json)
            },
            tableCapacity: tableCapacity, cutPackets: cutPackets, cutBytes: cutBytes, cutNames: cutNames,
            counters: statistics.map {
                CaptureCounterFacts(received: Int($0.received), dropped: Int($0.dropped), interfaceDropped: Int($0.interfaceDropped))
            },
            startedAt: startedAt, endedAt: endedAt, stoppedBy: stoppedBy.map { ($0.message, $0.description) })
    }
}
