import MijianCore

/// `traffic.egress` (七.6 七.7, score 53): outbound packets to destinations outside the unit's
/// networks, from a capture file, a live watch, or each stretch of the service's watch. Not an
/// audit check: its facts come from a capture, never from the host's files.
public enum TrafficChecks {
    /// Fail when a flow broke the policy, error when the capture could not see everything (a read
    /// stopped, a packet dropped or not judged) and nothing was flagged, pass otherwise. A fail
    /// still counts what could not be judged: an error never hides a fail, and a fail does not hide
    /// that some packets were never looked at. With `listFlows` false the flow evidence gives the
    /// count and points to the listing printed beside the report instead of listing every flow
    /// again (the text form prints them as a table).
    public static func egress(_ capture: CaptureFacts, context: CheckContext, listFlows: Bool = true) -> [Finding] {
        let rule = RuleCatalogue.trafficEgress
        let subject = "\(capture.sourceKind) \(capture.source)"
        let status: Status
        var detail: String
        if capture.brokePolicy {
            status = .fail
            let packets = capture.flows.reduce(0) { $0 + $1.packets } + capture.cutPackets
            detail = "\(capture.flows.count) flow(s), \(packets) packet(s) reached outside the unit's networks or asked for outside names"
            if let first = capture.flows.first {
                let port = first.destinationPort.map { "/\($0)" } ?? ""
                detail += ", e.g. \(first.source) → \(first.destination) \(first.protocolName)\(port)"
            }
            if capture.cutPackets > 0 {
                detail += "; \(capture.cutPackets) packet(s) of further flows were cut when the table of \(capture.tableCapacity) filled"
            }
        } else if let stopped = capture.stoppedBy {
            status = .error
            detail = "no violation in the packets read, but the capture could not be read to its end: \(stopped.message)"
        } else if capture.unjudgedPackets > 0 {
            status = .error
            detail = "no violation in the packets judged, but \(capture.unjudgedPackets) packet(s) could not be judged: \(capture.unjudgedSummary)"
        } else {
            status = .pass
            detail = "none of \(capture.records) packet(s) read reached outside the unit's networks or asked for an outside name"
        }
        if capture.brokePolicy, let stopped = capture.stoppedBy { detail += "; reading stopped early: \(stopped.message)" }
        if capture.brokePolicy || capture.stoppedBy != nil, capture.unjudgedPackets > 0 {
            detail += "; \(capture.unjudgedPackets) packet(s) could not be judged: \(capture.unjudgedSummary)"
        }
        let flows = Evidence(
            kind: "pcap", source: capture.source, observedAt: capture.endedAt,
            data: listFlows
                ? ["flows": .array(capture.flows.map(\.json))]
                : ["flows_listed_separately": .integer(capture.flows.count)])
        let counters: JSONValue = capture.counters.map {
            ["received": .integer($0.received), "dropped": .integer($0.dropped), "interface_dropped": .integer($0.interfaceDropped)]
        } ?? .null
        let evidence = Evidence(
            kind: "pcap", source: capture.source, observedAt: capture.endedAt,
            data: [
                "source_kind": .string(capture.sourceKind),
                "link_type": .string(capture.linkType),
                "filter": .optional(capture.filter),
                "snap_length": .integer(capture.snapLength),
                "started_at": .string(RFC3339.string(from: capture.startedAt, fractional: true)),
                "ended_at": .string(RFC3339.string(from: capture.endedAt, fractional: true)),
                "packets_read": .integer(capture.records),
                "packets_judged": .integer(capture.judgedPackets),
                "packets_not_ip": .integer(capture.notIP),
                "packets_unjudged": capture.unjudgedJSON,
                "packets_violating": .integer(capture.violations),
                "flow_table": [
                    "capacity": .integer(capture.tableCapacity), "flows": .integer(capture.flows.count),
                    "cut_packets": .integer(capture.cutPackets), "cut_bytes": .integer(capture.cutBytes),
                    "cut_dns_names": .integer(capture.cutNames),
                ],
                "pcap_stats": counters,
                "error": .optional(capture.stoppedBy?.description),
            ])
        // Inside is what the policy calls inside: when that includes public space, the finding says so.
        return context.statingPublicSpace([context.finding(rule, subject: subject, status: status, detail: detail, evidence: [flows, evidence])])
    }

    /// The findings of one stretch of the service's watch: each link's, an error for a link up
    /// whose capture could not open or had not started (nothing of it was judged, and the report
    /// must not say otherwise), and a pass naming the links when none but loopback was up.
    public static func window(_ facts: TrafficWindowFacts, context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.trafficEgress
        var findings: [Finding] = []
        for capture in facts.captures {
            switch capture {
            case .captured(let capture):
                findings += egress(capture, context: context)
            case .cannotCapture(let link, let error):
                findings.append(context.finding(
                    rule, subject: "interface \(link)", status: .error, detail: "the link is up but cannot be captured: \(error)",
                    evidence: [Evidence(kind: "pcap", source: link, observedAt: context.observedAt, data: ["error": .string(error)])]))
            case .notStarted(let link):
                findings.append(context.finding(
                    rule, subject: "interface \(link)", status: .error,
                    detail: "the link is up but its capture had not started when this report was sealed; the next report covers it",
                    evidence: [Evidence(kind: "pcap", source: link, observedAt: context.observedAt, data: ["captured": false])]))
            }
        }
        if findings.isEmpty {
            findings.append(context.finding(
                rule, subject: "traffic", status: .pass,
                detail: "no link but loopback was up to capture since the last report; a link that comes up is captured from the moment the kernel announces it",
                evidence: [Evidence(
                    kind: "pcap", source: facts.links.source, observedAt: context.observedAt,
                    data: ["links": .array(facts.links.links.map { .string($0) }), "captured": .array([])])]))
        }
        // Every traffic.egress finding says when the policy's inside includes public space.
        return context.statingPublicSpace(findings)
    }
}
