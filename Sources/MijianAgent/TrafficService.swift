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
/// each flow that breaks it as a failing event the first time it is seen, and keeps pcap's
/// counters for the report.
final class LinkWatch: Sendable {
    let link: String
    private let stop = StopFlag()
    private let stopped = Wakeup()
    private let counters = Locked<JSONValue>(.null)

    init(link: String) { self.link = link }

    var statistics: JSONValue { counters.value }

    func start(policy: Policy, sink: EventSink, logger: Logger) {
        let link = self.link
        let stop = self.stop
        let stopped = self.stopped
        let counters = self.counters
        let thread = Thread {
            defer { stopped.fire("stopped") }
            let capture: PacketCapture
            let egress = EgressPolicy(policy)
            do {
                capture = try PacketCapture.open(interface: link, snapLength: TrafficWatch.liveSnapLength, bufferBytes: TrafficWatch.liveBufferBytes)
                if !egress.bpfFilter.isEmpty { try capture.setFilter(egress.bpfFilter) }
            } catch {
                logger.warning("cannot capture on \(link): \(error)")
                counters.set(["error": .string("\(error)")])
                return
            }
            logger.info("capturing on \(link)")
            var analyzer = EgressAnalyzer(policy: egress)
            var told = Set<FlowKey>()
            let linkType = capture.linkType
            var flagged = 0
            while !stop.stopped {
                do {
                    try capture.watch(until: ContinuousClock.now.advanced(by: .milliseconds(500))) { packet in
                        analyzer.process(packet.bytes, linkType: linkType, time: packet.time)
                    }
                } catch {
                    logger.warning("capture on \(link) stopped: \(error)")
                    counters.set(["error": .string("\(error)")])
                    return
                }
                for flow in analyzer.table.entries where !told.contains(flow.key) {
                    told.insert(flow.key)
                    flagged += 1
                    var data = flow.json
                    if case .object(var members) = data {
                        members.insert(("interface", .string(link)), at: 0)
                        data = .object(members)
                    }
                    let event = Event(type: "traffic.flow", observedAt: Date(), data: data)
                    Task { await sink.record(event, failing: true) }
                }
                if analyzer.table.count >= analyzer.table.capacity {
                    // A full table would hide new flows: start a new one (flows already told stay told).
                    analyzer = EgressAnalyzer(policy: egress)
                }
                if let statistics = capture.statistics() {
                    counters.set([
                        "received": .integer(statistics.received), "dropped": .integer(statistics.dropped),
                        "interface_dropped": .integer(statistics.interfaceDropped), "flagged_flows": .integer(flagged),
                        "filter": .string(egress.bpfFilter),
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
    let wakeup: Wakeup
    let logger: Logger

    /// A watch on `links` (empty: the policy's, else every link that is up); `wakeup` is fired on network changes.
    public init(sealer: Sealer, sink: EventSink, policy: PolicyHolder, links: [String], wakeup: Wakeup, logger: Logger) {
        self.sealer = sealer
        self.sink = sink
        self.policy = policy
        self.links = links
        self.wakeup = wakeup
        self.logger = logger
    }

    /// Watches until graceful shutdown; a reloaded policy restarts every capture with its filter.
    public func run() async throws {
        let registry = Locked<[String: LinkWatch]>([:])
        // Counters are read when a report is sealed, so each report has them as of its sealing.
        await sealer.setHealthProvider(from: "traffic") {
            let watches = registry.value
            return .object(watches.keys.sorted().map { ($0, watches[$0]?.statistics ?? .null) })
        }
        var filterPolicy = policy.policy.sha256
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                var watches = registry.value
                let current = policy.policy
                if current.sha256 != filterPolicy {
                    for watch in watches.values { await watch.finish() }
                    watches = [:]
                    filterPolicy = current.sha256
                }
                let wanted = Set(CaptureLinks.current(configured: links, policy: current))
                for link in wanted where watches[link] == nil {
                    let watch = LinkWatch(link: link)
                    watch.start(policy: current, sink: sink, logger: logger)
                    watches[link] = watch
                }
                for (link, watch) in watches where !wanted.contains(link) {
                    await watch.finish()
                    watches[link] = nil
                }
                registry.set(watches)
                if await wakeup.wait(timeout: .seconds(10)) == "shutdown" { break }
            }
        } onGracefulShutdown: {
            wakeup.fire("shutdown")
        }
        for watch in registry.value.values { await watch.finish() }
    }
}
