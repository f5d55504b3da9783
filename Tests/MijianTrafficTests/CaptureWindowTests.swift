import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianTraffic

@Suite("Capture windows: each report accounts for its own packets, flows and drops")
struct CaptureWindowTests {

    /// A packet to an outside address (violating) from host `n`, or one inside the unit's networks.
    func packet(outside: Bool, host: Int) -> [UInt8] {
        B.ipv4(src: "10.1.1.\(host)", dst: outside ? "198.51.100.\(host)" : "10.2.2.2", proto: 17, payload: B.udp(src: 40000, dst: 9))
    }

    func window(_ analyzer: EgressAnalyzer) -> CaptureWindow {
        CaptureWindow(interface: "v0", linkType: .raw, filter: nil, snapLength: 512, tableCapacity: analyzer.table.capacity, at: Date(timeIntervalSince1970: 0))
    }

    @Test func windowsSplitAStreamWithoutLosingOrRepeatingAPacket() throws {
        let policy = try egressPolicy()
        var generator = SystemRandomNumberGenerator()
        for round in 0..<30 {
            var analyzer = EgressAnalyzer(policy: policy)
            var window = window(analyzer)
            var results: [TrafficResult] = []
            var sentOutside = 0
            var sentTotal = 0
            // Which outside hosts sent in which window, as the test sent them.
            var expectedFlows: [Set<Int>] = [[]]
            var time: Int64 = 0
            for step in 0..<200 {
                let outside = Bool.random(using: &generator)
                let host = Int.random(in: 1...6, using: &generator)
                time += 1_000
                packet(outside: outside, host: host).withUnsafeBytes { analyzer.process($0, linkType: .raw, time: time) }
                sentTotal += 1
                if outside {
                    sentOutside += 1
                    expectedFlows[expectedFlows.count - 1].insert(host)
                }
                if Int.random(in: 0..<3, using: &generator) == 0 || step == 199 {
                    window.update(analyzer: analyzer, recordsRead: sentTotal, statistics: nil)
                }
                if Int.random(in: 0..<25, using: &generator) == 0 {
                    window.update(analyzer: analyzer, recordsRead: sentTotal, statistics: nil)
                    window.analyzerReplaced()
                    analyzer = EgressAnalyzer(policy: policy)
                }
                if Int.random(in: 0..<20, using: &generator) == 0 {
                    window.update(analyzer: analyzer, recordsRead: sentTotal, statistics: nil)
                    results.append(window.close(at: Date(timeIntervalSince1970: Double(step))))
                    expectedFlows.append([])
                }
            }
            results.append(window.close(at: Date(timeIntervalSince1970: 1_000)))
            #expect(results.reduce(0) { $0 + $1.violations } == sentOutside, "round \(round)")
            #expect(results.reduce(0) { $0 + $1.packets } == sentTotal, "round \(round)")
            #expect(results.reduce(0) { $0 + $1.records } == sentTotal, "round \(round)")
            for (index, result) in results.enumerated() {
                let hosts = Set(result.flows.map { flow in Int(flow.key.dst.description.split(separator: ".").last ?? "") ?? -1 })
                #expect(hosts == expectedFlows[index], "round \(round) window \(index)")
                // A window with a violating packet is a failing window; one without passes.
                #expect(result.brokePolicy == !expectedFlows[index].isEmpty, "round \(round) window \(index)")
            }
        }
    }

    @Test func dropsAreTheWindowsOwnAndSurviveTheCountersWrapping() throws {
        let analyzer = EgressAnalyzer(policy: try egressPolicy())
        var window = window(analyzer)
        let start = UInt32.max - 5
        window.update(analyzer: analyzer, recordsRead: 0, statistics: CaptureStatistics(received: start, dropped: start, interfaceDropped: 0))
        let first = window.close(at: Date(timeIntervalSince1970: 1))
        #expect(first.statistics == CaptureStatistics(received: start, dropped: start, interfaceDropped: 0))
        // 10 more received and 3 more dropped, across the 32-bit wrap.
        window.update(analyzer: analyzer, recordsRead: 0, statistics: CaptureStatistics(received: start &+ 10, dropped: start &+ 3, interfaceDropped: 2))
        let second = window.close(at: Date(timeIntervalSince1970: 2))
        #expect(second.statistics == CaptureStatistics(received: 10, dropped: 3, interfaceDropped: 2))
        #expect(second.droppedPackets == 5)
        let context = CheckContext(policy: try TestSupport.policy(unitPolicyYAML), hostID: "h", observedAt: Date())
        // Dropped packets and nothing flagged: not a pass, since what was dropped was never judged.
        #expect(TrafficChecks.egress(second.facts, context: context).first?.status == .error)
        // A quiet window after it: nothing dropped, a pass.
        window.update(analyzer: analyzer, recordsRead: 0, statistics: CaptureStatistics(received: start &+ 10, dropped: start &+ 3, interfaceDropped: 2))
        let third = window.close(at: Date(timeIntervalSince1970: 3))
        #expect(third.droppedPackets == 0)
        #expect(TrafficChecks.egress(third.facts, context: context).first?.status == .pass)
        #expect(third.startedAt == Date(timeIntervalSince1970: 2))
    }

    @Test func aFlowStillSendingIsListedInEveryWindowItSentIn() throws {
        var analyzer = EgressAnalyzer(policy: try egressPolicy())
        var window = window(analyzer)
        let bytes = packet(outside: true, host: 7)
        bytes.withUnsafeBytes { analyzer.process($0, linkType: .raw, time: 1) }
        window.update(analyzer: analyzer, recordsRead: 1, statistics: nil)
        #expect(window.close(at: Date()).flows.count == 1)
        // The same flow sends again: the next window lists it too (its stats are the flow's whole).
        bytes.withUnsafeBytes { analyzer.process($0, linkType: .raw, time: 2) }
        window.update(analyzer: analyzer, recordsRead: 2, statistics: nil)
        let second = window.close(at: Date())
        #expect(second.flows.map(\.stats.packets) == [2])
        #expect(second.violations == 1)
        // Silent: the next window lists nothing.
        window.update(analyzer: analyzer, recordsRead: 2, statistics: nil)
        let third = window.close(at: Date())
        #expect(third.flows.isEmpty && third.violations == 0 && !third.brokePolicy)
    }
}
