import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import MijianTraffic
import Testing

@testable import MijianAgent

@Suite("mijian run: a link's traffic.egress is error while packets of its stretch were never judged")
struct UnjudgedTrafficServiceTests {
    static let policyYAML = """
        id: unjudged-service
        version: "1"
        profile: classified
        networks:
          unit: [10.0.0.0/8]
        dns:
          allowed_suffixes: [unit.internal]

        """

    /// Feeds `frames` to a link watch's stretch as its capture thread does after a read, and closes the stretch.
    func report(_ frames: [[UInt8]], statistics: CaptureStatistics? = nil) throws -> WindowReport {
        let policy = try TestSupport.policy(Self.policyYAML)
        let watch = LinkWatch(link: "v0", bufferBytes: 1 << 20)
        let egress = EgressPolicy(policy)
        var analyzer = EgressAnalyzer(policy: egress)
        watch.window.set(CaptureWindow(
            interface: "v0", linkType: .ethernet, filter: egress.bpfFilter, snapLength: Int(TrafficWatch.liveSnapLength),
            tableCapacity: analyzer.table.capacity, at: Date(timeIntervalSince1970: 0)))
        for (index, frame) in frames.enumerated() {
            frame.withUnsafeBytes { analyzer.process($0, linkType: .ethernet, time: Int64(index)) }
        }
        watch.window.withValue { $0?.update(analyzer: analyzer, recordsRead: frames.count, statistics: statistics) }
        let context = CheckContext(policy: policy, hostID: "h", observedAt: Date(timeIntervalSince1970: 60))
        let part = watch.closeWindow(at: context.observedAt)
        let facts = TrafficWindowFacts(captures: [part.capture], links: LinkStateFacts(source: "/sys/class/net", links: ["lo", "v0"], up: ["v0"]))
        return WindowReport(findings: TrafficChecks.window(facts, context: context), problems: part.problems)
    }

    func egress(_ report: WindowReport) throws -> Finding {
        try #require(report.findings.first { $0.rule.id == "traffic.egress" })
    }

    @Test func unjudgedFramesMakeTheFindingErrorWithTheirCounts() throws {
        let inside = PacketBuilder.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 6, payload: PacketBuilder.tcp(src: 1, dst: 22))
        let deep = (0..<(PacketDecoder.maxTags + 1)).map { (UInt16(0x8100), UInt16($0 + 1)) }
        let frames = [
            PacketBuilder.ethernet(etherType: 0x0800, payload: inside),
            [],
            Array(PacketBuilder.ethernet(etherType: 0x0800, payload: inside).prefix(20)),
            PacketBuilder.ethernet(etherType: 0x0800, payload: inside, tags: deep),
        ]
        let finding = try egress(try report(frames))
        #expect(finding.status == .error)
        #expect(finding.statusDetail.contains("3 packet(s) could not be judged"))
        let counts = finding.evidence.last?.data["packets_unjudged"]
        #expect(counts?["total"]?.intValue == 3)
        #expect(counts?["empty_record"]?.intValue == 1)
        #expect(counts?["ip_header_truncated"]?.intValue == 1)
        #expect(counts?["too_many_tags"]?.intValue == 1)
        #expect(finding.evidence.last?.data["packets_judged"]?.intValue == 1)
    }

    @Test func kernelDropsAreCountedInTheFindingAndInHealth() throws {
        let report = try report([], statistics: CaptureStatistics(received: 10, dropped: 4, interfaceDropped: 1))
        let finding = try egress(report)
        #expect(finding.status == .error)
        #expect(finding.statusDetail.contains("4 dropped by the kernel"))
        let counts = finding.evidence.last?.data["packets_unjudged"]
        #expect(counts?["dropped_by_kernel"]?.intValue == 4)
        #expect(counts?["dropped_by_interface"]?.intValue == 1)
        #expect(counts?["total"]?.intValue == 5)
        #expect(report.problems.contains { $0.kind == "capture.dropped" && $0.failing })
    }

    @Test func aLeakBehindNineTagsFailsAndStillCountsTheUnjudged() throws {
        let leak = PacketBuilder.ipv4(src: "10.1.1.1", dst: "203.0.113.7", proto: 17, payload: PacketBuilder.udp(src: 1, dst: 9))
        let nine = (0..<9).map { (UInt16(0x8100), UInt16($0 + 1)) }
        let finding = try egress(try report([PacketBuilder.ethernet(etherType: 0x0800, payload: leak, tags: nine), []]))
        #expect(finding.status == .fail)
        #expect(finding.statusDetail.contains("1 packet(s) could not be judged"))
        #expect(finding.evidence.last?.data["packets_unjudged"]?["empty_record"]?.intValue == 1)
    }
}
