#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianCore
import MijianHost
import MijianTraffic
import ServiceLifecycle
import Synchronization

/// The links to capture on: the configured ones, else those the policy's `networks.links`
/// names, else every link that is up except loopback; read from `/sys/class/net`.
enum CaptureLinks {
    static let loopback: UInt32 = 0x8
    static let up: UInt32 = 0x1

    static func current(configured: [String], policy: Policy) -> [String] {
        let root = HostRoot.live
        let names = ((try? root.listIfPresent("/sys/class/net")) ?? []).sorted()
        let upLinks = names.filter { name in
            guard let text = root.attribute("/sys/class/net/\(name)/flags"),
                let flags = UInt32(text.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(2), radix: 16)
            else { return false }
            return flags & up != 0 && flags & loopback == 0
        }
        if !configured.isEmpty { return upLinks.filter { configured.contains($0) } }
        if !policy.allowedLinks.isEmpty { return upLinks.filter { policy.isAllowedLink($0) } }
        return upLinks
    }
}

/// One link's capture, on a thread of its own: judges packets against the policy, records
/// each flow that breaks it as a failing event the first time it is seen, and keeps the stretch
/// since the last report (packets, flows, pcap's counters) for the report's `traffic.egress`.
final class LinkWatch: Sendable {
    let link: String
    private let stop = StopFlag()
    private let stopped = Wakeup<Ending>()
    private let counters = Locked<JSONValue>(.null)
    /// The stretch since the last report; nil until the capture is open. The capture thread feeds it
    /// after every read, `closeWindow` turns it into the report's finding.
    let window = Locked<CaptureWindow?>(nil)
    /// Why the capture could not be opened, when it could not.
    private let openError = Locked<String?>(nil)

    /// Bytes of the kernel ring.
    let bufferBytes: Int32

    init(link: String, bufferBytes: Int32) {
        self.link = link
        self.bufferBytes = bufferBytes
    }

    var statistics: JSONValue { counters.value }

    /// The stretch since the last report as findings and problems; a new stretch starts at `context.observedAt`.
    func closeWindow(_ context: CheckContext) -> WindowReport {
        if let error = openError.value {
            let finding = context.finding(
                RuleCatalogue.trafficEgress, subject: "interface \(link)", status: .error,
                detail: "the link is up but cannot be captured: \(error)",
                evidence: [Evidence(kind: "pcap", source: link, observedAt: context.observedAt, data: ["error": .string(error)])])
            return WindowReport(
                findings: [finding],
                problems: [HealthProblem(kind: "capture.error", detail: "\(link) cannot be captured: \(error)", failing: true, at: context.observedAt)])
        }
        guard let result = window.withValue({ $0?.close(at: context.observedAt) }) else {
            return WindowReport(findings: [LinkWatch.notStarted(link, context)], problems: [])
        }
        var problems: [HealthProblem] = []
        if result.droppedPackets > 0 {
            problems.append(HealthProblem(
                kind: "capture.dropped",
                detail: "\(result.droppedPackets) packet(s) on \(link) were dropped unjudged since the last report (kernel \(result.statistics?.dropped ?? 0), interface \(result.statistics?.interfaceDropped ?? 0)): a gap in the traffic evidence",
                failing: true, at: context.observedAt))
        }
        if let stopped = result.stoppedBy {
            problems.append(HealthProblem(kind: "capture.stopped", detail: "the capture on \(link) stopped: \(stopped.message)", failing: true, at: context.observedAt))
        }
        return WindowReport(findings: TrafficWatch.findings(result, context: context), problems: problems)
    }

    /// The finding of a link that is up but whose capture is not open yet: nothing of it was judged.
    static func notStarted(_ link: String, _ context: CheckContext) -> Finding {
        context.finding(
            RuleCatalogue.trafficEgress, subject: "interface \(link)", status: .error,
            detail: "the link is up but its capture had not started when this report was sealed; the next report covers it",
            evidence: [Evidence(kind: "pcap", source: link, observedAt: context.observedAt, data: ["captured": false])])
    }

    /// Starts the capture thread; `now` is the service's wall clock (the sealer's).
    func start(policy: Policy, sink: EventSink, logger: Logger, now: @escaping @Sendable () -> Date) {
        let link = self.link
        let stop = self.stop
        let stopped = self.stopped
        let counters = self.counters
        let window = self.window
        let openError = self.openError
        let bufferBytes = self.bufferBytes
        let thread = Thread {
            defer { stopped.fire(.finished) }
            let capture: PacketCapture
            let egress = EgressPolicy(policy)
            let filter: String
            do {
                capture = try PacketCapture.open(interface: link, snapLength: TrafficWatch.liveSnapLength, bufferBytes: bufferBytes)
                filter = egress.bpfFilter(for: capture.linkType)
                if !filter.isEmpty { try capture.setFilter(filter) }
            } catch {
                logger.warning("cannot capture on \(link): \(error)")
                counters.set(["error": .string("\(error)")])
                openError.set("\(error)")
                return
            }
            logger.info("capturing on \(link)")
            var analyzer = EgressAnalyzer(policy: egress)
            window.set(CaptureWindow(
                interface: link, linkType: capture.linkType, filter: filter.isEmpty ? nil : filter,
                snapLength: capture.snapLength, tableCapacity: analyzer.table.capacity, at: now()))
            var told = Set<FlowKey>()
            let linkType = capture.linkType
            var flagged = 0
            // A flow enters the table only with a violating packet: while the count stands still
            // there is nothing new to tell, and an idle read does not walk the table.
            var toldUpTo = 0
            while !stop.stopped {
                do throws(MijianError) {
                    try capture.watch(until: ContinuousClock.now.advanced(by: .milliseconds(500))) { packet in
                        analyzer.process(packet.bytes, linkType: linkType, time: packet.time)
                    }
                } catch {
                    logger.warning("capture on \(link) stopped: \(error)")
                    counters.set(["error": .string("\(error)")])
                    window.withValue {
                        $0?.update(analyzer: analyzer, recordsRead: capture.recordsRead, statistics: capture.statistics())
                        $0?.stoppedBy = error
                    }
                    return
                }
                // The stretch first, then the events: the seal a flagged flow starts finds its packets counted.
                let statistics = capture.statistics()
                window.withValue { $0?.update(analyzer: analyzer, recordsRead: capture.recordsRead, statistics: statistics) }
                if analyzer.violations != toldUpTo {
                    toldUpTo = analyzer.violations
                    for flow in analyzer.table.entries where !told.contains(flow.key) {
                        told.insert(flow.key)
                        flagged += 1
                        var data = flow.json
                        if case .object(var members) = data {
                            members.insert(("interface", .string(link)), at: 0)
                            data = .object(members)
                        }
                        sink.post(Event(type: "traffic.flow", observedAt: now(), data: data), failing: true)
                    }
                }
                if analyzer.table.count >= analyzer.table.capacity {
                    // A full table would hide new flows: start a new one (flows already told stay told).
                    window.withValue { $0?.analyzerReplaced() }
                    analyzer = EgressAnalyzer(policy: egress)
                    toldUpTo = 0
                }
                if let statistics {
                    counters.set([
                        "received": .integer(statistics.received), "dropped": .integer(statistics.dropped),
                        "interface_dropped": .integer(statistics.interfaceDropped), "flagged_flows": .integer(flagged),
                        "filter": .string(filter),
                    ])
                }
            }
        }
        thread.start()
    }

    func finish() async {
        stop.stop()
        _ = await stopped.wait(timeout: .seconds(2))
    }
}

/// Live traffic watch: a capture per link, new links picked up as they come up (the rtnetlink
/// watch wakes it), pcap's counters in every report's `agent.health`.
public struct TrafficService: Service {
    let sealer: Sealer
    let sink: EventSink
    let policy: PolicyHolder
    let links: [String]
    let bufferBytes: Int32
    let wakeup: Wakeup<WakeReason>
    let logger: Logger

    /// A watch on `links` (empty: the policy's, else every link that is up), each with a kernel ring of
    /// `bufferBytes`; `wakeup` is fired on network changes.
    public init(
        sealer: Sealer, sink: EventSink, policy: PolicyHolder, links: [String], bufferBytes: Int = 2 << 20, wakeup: Wakeup<WakeReason>, logger: Logger
    ) {
        self.sealer = sealer
        self.sink = sink
        self.policy = policy
        self.links = links
        self.bufferBytes = Int32(clamping: bufferBytes)
        self.wakeup = wakeup
        self.logger = logger
    }

    /// Watches until graceful shutdown; a reloaded policy restarts every capture with its filter.
    public func run() async throws {
        let registry = Locked<[String: LinkWatch]>([:])
        // Watches stopped since the last report (a link gone, a policy reloaded): their last stretch is still told.
        let retired = Locked<[LinkWatch]>([])
        // Counters are read when a report is sealed, so each report has them as of its sealing.
        await sealer.setHealthProvider(from: "traffic") {
            let watches = registry.value
            return .object(watches.keys.sorted().map { ($0, watches[$0]?.statistics ?? .null) })
        }
        let policy = self.policy
        let configured = self.links
        await sealer.setWindowProvider(from: "traffic") { context in
            let gone = retired.withValue { list in
                defer { list = [] }
                return list
            }
            let current = registry.value
            var report = WindowReport(findings: [], problems: [])
            for watch in gone + current.keys.sorted().compactMap({ current[$0] }) {
                let part = watch.closeWindow(context)
                report.findings += part.findings
                report.problems += part.problems
            }
            // A link that is up but has no capture yet (the service is starting, or the link came
            // up a moment ago): nothing of it was judged, and the report must not say otherwise.
            for link in CaptureLinks.current(configured: configured, policy: policy.policy) where current[link] == nil {
                report.findings.append(LinkWatch.notStarted(link, context))
            }
            if report.findings.isEmpty {
                let links = ((try? HostRoot.live.listIfPresent("/sys/class/net")) ?? []).sorted()
                report.findings.append(context.finding(
                    RuleCatalogue.trafficEgress, subject: "traffic", status: .pass,
                    detail: "no link but loopback was up to capture since the last report; a link that comes up is captured from the moment the kernel announces it",
                    evidence: [Evidence(kind: "pcap", source: "/sys/class/net", observedAt: context.observedAt, data: ["links": .array(links.map { .string($0) }), "captured": .array([])])]))
            }
            // Every traffic.egress finding says when the policy's inside includes public space.
            report.findings = context.statingPublicSpace(report.findings)
            return report
        }
        var filterPolicy = policy.policy.sha256
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                var watches = registry.value
                let current = policy.policy
                if current.sha256 != filterPolicy {
                    for watch in watches.values { await watch.finish() }
                    retired.withValue { $0 += watches.values.sorted { $0.link < $1.link } }
                    watches = [:]
                    filterPolicy = current.sha256
                }
                let wanted = Set(CaptureLinks.current(configured: links, policy: current))
                for link in wanted where watches[link] == nil {
                    let watch = LinkWatch(link: link, bufferBytes: bufferBytes)
                    watch.start(policy: current, sink: sink, logger: logger, now: sealer.now)
                    watches[link] = watch
                }
                for (link, watch) in watches where !wanted.contains(link) {
                    await watch.finish()
                    retired.withValue { $0.append(watch) }
                    watches[link] = nil
                }
                registry.set(watches)
                if await wakeup.wait(timeout: .seconds(10)) == .shutdown { break }
            }
        } onGracefulShutdown: {
            wakeup.fire(.shutdown)
        }
        for watch in registry.value.values { await watch.finish() }
    }
}
