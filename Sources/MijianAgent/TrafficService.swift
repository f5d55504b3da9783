#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianHost
import MijianTraffic
import ServiceLifecycle
import Synchronization

/// One link's capture, read on the service's readiness thread whenever the kernel has packets
/// for it: judges them against the policy, records each flow that breaks it as a failing event
/// the first time it is seen, and keeps the stretch since the last report (packets, flows,
/// pcap's counters) for the report's `traffic.egress`.
final class LinkWatch: Sendable {
    let link: String
    /// The capture's place on the readiness thread, while it is read.
    private let registration = Locked<(ReadinessLoop, ReadinessLoop.Registration)?>(nil)
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

    /// The stretch since the last report — what the capture saw, or why nothing — and its problems
    /// for `agent.health`; a new stretch starts at `date`.
    func closeWindow(at date: Date) -> (capture: TrafficWindowFacts.LinkCapture, problems: [HealthProblem]) {
        if let error = openError.value {
            return (.cannotCapture(link: link, error: error), [HealthProblem(kind: "capture.error", detail: "\(link) cannot be captured: \(error)", failing: true, at: date)])
        }
        guard let result = window.withValue({ $0?.close(at: date) }) else { return (.notStarted(link: link), []) }
        var problems: [HealthProblem] = []
        if result.droppedPackets > 0 {
            problems.append(HealthProblem(
                kind: "capture.dropped",
                detail: "\(result.droppedPackets) packet(s) on \(link) were dropped unjudged since the last report (kernel \(result.statistics?.dropped ?? 0), interface \(result.statistics?.interfaceDropped ?? 0)): a gap in the traffic evidence",
                failing: true, at: date))
        }
        if let stopped = result.stoppedBy {
            problems.append(HealthProblem(kind: "capture.stopped", detail: "the capture on \(link) stopped: \(stopped.message)", failing: true, at: date))
        }
        return (.captured(result.facts), problems)
    }

    /// Opens the capture and has `readiness` read it; `now` is the service's wall clock (the sealer's).
    func start(policy: Policy, sink: EventSink, logger: Logger, readiness: ReadinessLoop, now: @escaping @Sendable () -> Date) {
        let link = self.link
        let capture: PacketCapture
        let egress = EgressPolicy(policy)
        let filter: String
        let descriptor: Int32
        do {
            capture = try PacketCapture.open(interface: link, snapLength: TrafficWatch.liveSnapLength, bufferBytes: bufferBytes)
            filter = egress.bpfFilter(for: capture.linkType)
            if !filter.isEmpty { try capture.setFilter(filter) }
            guard let selectable = capture.selectableDescriptor else {
                throw MijianError(.capture, "the capture on \(link) has no selectable descriptor", path: link)
            }
            descriptor = selectable
        } catch {
            logger.warning("cannot capture on \(link): \(error)")
            counters.set(["error": .string("\(error)")])
            openError.set("\(error)")
            return
        }
        let reader = LinkReader(
            link: link, capture: capture, egress: egress, filter: filter, sink: sink, logger: logger, counters: counters, window: window, now: now)
        window.set(CaptureWindow(
            interface: link, linkType: capture.linkType, filter: filter.isEmpty ? nil : filter,
            snapLength: capture.snapLength, tableCapacity: reader.analyzer.table.capacity, at: now()))
        do {
            registration.set((readiness, try readiness.add(descriptor) { reader.read($0) }))
        } catch {
            logger.warning("cannot capture on \(link): \(error)")
            counters.set(["error": .string("\(error)")])
            openError.set("\(error)")
            return
        }
        logger.info("capturing on \(link)")
    }

    /// Stops reading the capture, after a last read of what the kernel already holds for it; the
    /// stretch then has every packet read, and the capture is closed.
    func finish() async {
        let taken = registration.withValue { value in
            defer { value = nil }
            return value
        }
        if let (readiness, registration) = taken { await readiness.remove(registration, lastRead: true) }
    }
}

/// The reading side of a link's capture: it lives in its handler on the readiness thread and is
/// used there alone (hence unchecked), so the libpcap handle is never touched by two threads.
final class LinkReader: @unchecked Sendable {
    /// Packets handed over per readiness at most: the other descriptors get their turn, and what
    /// is left makes the descriptor readable again.
    static let batch: Int32 = 10_000

    let link: String
    let capture: PacketCapture
    let egress: EgressPolicy
    let filter: String
    let sink: EventSink
    let logger: Logger
    let counters: Locked<JSONValue>
    let window: Locked<CaptureWindow?>
    let now: @Sendable () -> Date
    private(set) var analyzer: EgressAnalyzer
    private var told = Set<FlowKey>()
    private var flagged = 0
    /// A flow enters the table only with a violating packet: while the count stands still there is
    /// nothing new to tell, and a read does not walk the table.
    private var toldUpTo = 0
    private var stopped = false

    init(
        link: String, capture: PacketCapture, egress: EgressPolicy, filter: String, sink: EventSink, logger: Logger,
        counters: Locked<JSONValue>, window: Locked<CaptureWindow?>, now: @escaping @Sendable () -> Date
    ) {
        self.link = link
        self.capture = capture
        self.egress = egress
        self.filter = filter
        self.sink = sink
        self.logger = logger
        self.counters = counters
        self.window = window
        self.now = now
        self.analyzer = EgressAnalyzer(policy: egress)
    }

    /// Judges what is ready; false once the capture cannot be read any more.
    func read(_ condition: ReadinessLoop.Condition) -> Bool {
        guard !stopped else { return false }
        let linkType = capture.linkType
        do throws(MijianError) {
            let handed = try capture.dispatch(limit: Self.batch) { packet in self.analyzer.process(packet.bytes, linkType: linkType, time: packet.time) }
            // libpcap does not look at a non-blocking socket's error (the link went down or away): asked here, or it is reported forever.
            if handed == 0, condition == .failed {
                let code = capture.takeSocketError()
                throw MijianError(
                    .capture, "the capture on \(link) failed: \(code == 0 ? "the kernel reported an error without a code" : String(cString: strerror(code)))",
                    path: link, errno: code == 0 ? nil : code)
            }
        } catch {
            stopped = true
            logger.warning("capture on \(link) stopped: \(error)")
            counters.set(["error": .string("\(error)")])
            let current = self.analyzer
            let recordsRead = capture.recordsRead
            let statistics = capture.statistics()
            window.withValue {
                $0?.update(analyzer: current, recordsRead: recordsRead, statistics: statistics)
                $0?.stoppedBy = error
            }
            return false
        }
        // The stretch first, then the events: the seal a flagged flow starts finds its packets counted.
        let statistics = capture.statistics()
        let current = self.analyzer
        let recordsRead = capture.recordsRead
        window.withValue { $0?.update(analyzer: current, recordsRead: recordsRead, statistics: statistics) }
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
            self.analyzer = EgressAnalyzer(policy: egress)
            toldUpTo = 0
        }
        if let statistics {
            counters.set([
                "received": .integer(statistics.received), "dropped": .integer(statistics.dropped),
                "interface_dropped": .integer(statistics.interfaceDropped), "flagged_flows": .integer(flagged),
                "filter": .string(filter),
            ])
        }
        return true
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
    let readiness: ReadinessLoop
    let logger: Logger

    /// A watch on `links` (empty: the policy's, else every link that is up), each with a kernel ring of
    /// `bufferBytes`, read on `readiness`; `wakeup` is fired on network changes.
    init(
        sealer: Sealer, sink: EventSink, policy: PolicyHolder, links: [String], bufferBytes: Int = 2 << 20, wakeup: Wakeup<WakeReason>,
        readiness: ReadinessLoop, logger: Logger
    ) {
        self.readiness = readiness
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
            var captures: [TrafficWindowFacts.LinkCapture] = []
            var problems: [HealthProblem] = []
            for watch in gone + current.keys.sorted().compactMap({ current[$0] }) {
                let part = watch.closeWindow(at: context.observedAt)
                captures.append(part.capture)
                problems += part.problems
            }
            // A link that is up but has no capture yet (the service is starting, or the link came
            // up a moment ago): nothing of it was judged, and the report must not say otherwise.
            let links = LinkStateProbe.observe()
            for link in links.capturable(configured: configured, policy: policy.policy) where current[link] == nil {
                captures.append(.notStarted(link: link))
            }
            return WindowReport(findings: TrafficChecks.window(TrafficWindowFacts(captures: captures, links: links), context: context), problems: problems)
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
                let wanted = Set(LinkStateProbe.observe().capturable(configured: links, policy: current))
                for link in wanted where watches[link] == nil {
                    let watch = LinkWatch(link: link, bufferBytes: bufferBytes)
                    watch.start(policy: current, sink: sink, logger: logger, readiness: readiness, now: sealer.now)
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
