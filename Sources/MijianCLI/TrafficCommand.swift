import ArgumentParser
import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianHost
import MijianTraffic

/// `mijian traffic`: the outbound-traffic watch over a capture file or a live interface.
struct TrafficCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "traffic",
        abstract: "Find traffic that leaves the unit's networks, in a capture file or live on an interface.",
        discussion: """
            Prints every flow (source, destination, protocol, destination port) with a peer outside the policy's \
            networks, and every DNS query for a name outside its allowed suffixes. \
            Exit status: 0 nothing broke the policy, 1 something did, 2 usage or runtime error \
            (including a capture that could not be read to its end, and packets that could not be judged \
            with nothing flagged; the message counts them by reason).
            """
    )

    @Option(name: .long, help: ArgumentHelp("Read a pcap or pcapng capture file.", valueName: "FILE"))
    var read: String?

    @Option(name: .long, help: ArgumentHelp("Capture live on this interface (`any` for all); needs root.", valueName: "NAME"))
    var interface: String?

    @Option(name: .long, help: ArgumentHelp("Seconds to watch an interface.", valueName: "SECONDS"))
    var duration: Int = 60

    @Option(name: .long, help: ArgumentHelp("Policy YAML (default: the built-in classified-workstation policy).", valueName: "FILE"))
    var policy: String?

    @Option(name: .customLong("host-file"), help: ArgumentHelp("Host identity YAML (default: /etc/mijian/host.yaml when present).", valueName: "FILE"))
    var hostFile: String?

    @Option(name: .long, help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Option(name: .long, help: ArgumentHelp("Write the report to FILE (replaced atomically; a FIFO or a device such as /dev/null is written in place) instead of standard output.", valueName: "FILE"))
    var output: String?

    func validate() throws {
        if (read == nil) == (interface == nil) {
            throw ValidationError("give exactly one of --read FILE or --interface NAME")
        }
        if duration < 1 || duration > 86_400 {
            throw ValidationError("--duration must be between 1 and 86400 seconds")
        }
    }

    func run() async throws {
        var logger = Logger(label: "mijian.traffic")
        logger.logLevel = .warning
        let (loaded, _) = try AuditRun.loadPolicy(policy)
        let identity = try AuditRun.loadIdentity(hostFile, root: .live)
        let host = try HostProbe.hostInfo(root: .live, identity: identity)
        let egress = EgressPolicy(loaded)
        let result: TrafficResult
        if let read {
            result = try TrafficWatch.read(file: read, policy: egress, logger: logger)
        } else {
            result = try TrafficWatch.live(
                interface: interface ?? "any", duration: .seconds(duration), policy: egress, logger: logger)
        }
        let context = CheckContext(policy: loaded, hostID: host.hostID, observedAt: result.endedAt)
        let report = Report(
            issuedAt: Date(), windowStart: result.startedAt, windowEnd: result.endedAt, host: host, policy: loaded.info,
            findings: TrafficChecks.egress(result.facts, context: context, listFlows: format == .json))
        let colour = output == nil && Console.colourOut
        func emit(_ write: (UnsafeRawBufferPointer) throws(MijianError) -> Void) throws(MijianError) {
            switch format {
            case .json: try Syscall.withBytes(report.json.prettySerialized(), write)
            case .text: try TrafficText.write(report, result: result, colour: colour, to: write)
            }
        }
        if let output {
            var bytes: [UInt8] = []
            try emit { bytes.append(contentsOf: $0) }
            try AtomicFile.writeOutput(bytes, to: output)
        } else {
            try emit { (bytes) throws(MijianError) in try StandardStreams.out(bytes) }
        }
        // Counted whatever the outcome: a fail does not hide packets that were never looked at.
        if result.unjudgedPackets > 0 {
            Console.error("mijian: \(result.unjudgedPackets) packet(s) of \(result.source) could not be judged: \(result.unjudgedSummary)")
        }
        if let stopped = result.stoppedBy {
            Console.error("mijian: \(stopped)")
            throw ExitCode(2)
        }
        if !report.isCompliant { throw ExitCode(1) }
        if report.findings.contains(where: { $0.status == .error }) { throw ExitCode(2) }
    }
}

/// The human form of a traffic report: the finding table, then one line per flow.
enum TrafficText {
    /// Writes the report and the flows that broke the policy, in pieces, to `write`.
    static func write(
        _ report: Report, result: TrafficResult, colour: Bool, to write: (UnsafeRawBufferPointer) throws(MijianError) -> Void
    ) throws(MijianError) {
        var text = TextReport.render(report, colour: colour, title: "Mijian traffic watch")
        text += "\n\(result.sourceKind) \(result.source): \(result.judgedPackets) packet(s) judged"
        text += result.filter == nil ? " (no kernel filter)" : " after the policy filter"
        text += ", \(result.violations) broke the policy\n"
        if result.unjudgedPackets > 0 {
            text += "\(result.unjudgedPackets) packet(s) could not be judged: \(result.unjudgedSummary)\n"
        }
        if let statistics = result.statistics {
            text += "pcap stats: \(statistics.received) received, \(statistics.dropped) dropped, \(statistics.interfaceDropped) dropped by the interface\n"
        }
        if !result.flows.isEmpty { text += "\n" }
        try Syscall.withBytes(Array(text.utf8), write)
        guard !result.flows.isEmpty else { return }
        try FlowListing.write(result.flows, to: write)
        if result.cutPackets > 0 {
            let cut = "… and \(result.cutPackets) packet(s), \(result.cutBytes) byte(s) of flows cut: the table holds \(result.tableCapacity)\n"
            try Syscall.withBytes(Array(cut.utf8), write)
        }
    }
}
