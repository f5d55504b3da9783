import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianTraffic

let unitPolicyYAML = """
    id: traffic-test
    version: "1"
    profile: classified
    networks:
      unit: [10.0.0.0/8, fd00::/8]
      allowed_destinations: [192.0.2.10/32]
    dns:
      resolvers: [10.0.0.53]
      allowed_suffixes: [unit.internal]

    """

func egressPolicy(_ extra: String = "") throws -> EgressPolicy {
    EgressPolicy(try TestSupport.policy(unitPolicyYAML + extra))
}

/// Runs frames through an analyzer.
func analyze(_ frames: [[UInt8]], _ type: LinkType, policy: EgressPolicy) -> EgressAnalyzer {
    var analyzer = EgressAnalyzer(policy: policy)
    for (index, frame) in frames.enumerated() {
        frame.withUnsafeBytes { analyzer.process($0, linkType: type, time: Int64(index) * 1_000_000_000) }
    }
    return analyzer
}

/// Traffic the default test policy permits: none of it may be flagged.
func permittedTraffic() -> [[UInt8]] {
    [
        B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 6, payload: B.tcp(src: 40000, dst: 22)),
        B.ipv4(src: "10.1.1.1", dst: "192.0.2.10", proto: 6, payload: B.tcp(src: 40000, dst: 443)),
        B.ipv4(src: "192.0.2.10", dst: "10.1.1.1", proto: 6, payload: B.tcp(src: 443, dst: 40000)),
        B.ipv4(src: "169.254.1.1", dst: "169.254.1.2", proto: 17, payload: B.udp(src: 1, dst: 2)),
        B.ipv4(src: "10.1.1.1", dst: "224.0.0.251", proto: 17, payload: B.udp(src: 5353, dst: 5353)),
        B.ipv4(src: "0.0.0.0", dst: "255.255.255.255", proto: 17, payload: B.udp(src: 68, dst: 67)),
        B.ipv6(src: "fe80::1", dst: "ff02::1", next: 58, payload: [134, 0, 0, 0]),
        B.ipv6(src: "fd00::1", dst: "fd00::2", next: 6, payload: B.tcp(src: 1, dst: 22)),
        B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 17, payload: B.udp(src: 5000, dst: 53, payload: B.dnsQuery(["host.unit.internal", "unit.internal"]))),
        B.ipv4(src: "10.0.0.53", dst: "10.1.1.1", proto: 17, payload: B.udp(src: 53, dst: 5000, payload: B.dnsQuery(["evil.example"], response: true))),
        B.ipv4(src: "127.0.0.1", dst: "127.0.0.1", proto: 6, payload: B.tcp(src: 1, dst: 2)),
    ]
}

@Suite("Egress policy")
struct EgressTests {
    @Test func permittedTrafficIsNotFlagged() throws {
        let analyzer = analyze(permittedTraffic(), .raw, policy: try egressPolicy())
        #expect(analyzer.packets == permittedTraffic().count)
        #expect(analyzer.notIP == 0)
        #expect(analyzer.violations == 0)
        #expect(analyzer.table.entries.isEmpty)
    }

    @Test func outsidePeersAreFlaggedInBothDirections() throws {
        let frames = [
            B.ipv4(src: "10.1.1.1", dst: "203.0.113.5", proto: 6, payload: B.tcp(src: 40000, dst: 443)),
            B.ipv4(src: "10.1.1.1", dst: "203.0.113.5", proto: 6, payload: B.tcp(src: 40000, dst: 443, payload: [1, 2, 3, 4])),
            B.ipv4(src: "198.51.100.7", dst: "10.1.1.1", proto: 17, payload: B.udp(src: 123, dst: 123)),
            B.ipv6(src: "fd00::1", dst: "2001:db8::9", next: 58, payload: [128, 0, 0, 0]),
            B.ipv4(src: "10.1.1.1", dst: "203.0.113.5", proto: 6, payload: [0, 0, 0, 0], fragmentOffset: 100),
        ]
        let analyzer = analyze(frames, .raw, policy: try egressPolicy())
        #expect(analyzer.violations == 5)
        let flows = analyzer.table.sorted
        #expect(flows.count == 4)
        let https = try #require(flows.first { $0.key.dstPort == 443 })
        #expect(https.key.src == IPAddress("10.1.1.1"))
        #expect(https.key.dst == IPAddress("203.0.113.5"))
        #expect(https.stats.packets == 2)
        #expect(https.stats.bytes == 40 + 44)
        #expect(https.stats.firstSeen == 0)
        #expect(https.stats.lastSeen == 1_000_000_000)
        #expect(flows.contains { $0.key.src == IPAddress("198.51.100.7") && $0.key.dstPort == 123 })
        #expect(flows.contains { $0.key.proto == 58 && $0.key.dstPort == -1 })
        #expect(flows.contains { $0.key.proto == 6 && $0.key.dstPort == -1 && $0.key.dst == IPAddress("203.0.113.5") })
    }

    @Test func outsideNamesAreFlaggedEvenAtTheUnitResolver() throws {
        var framed: [UInt8] = []
        let message = B.dnsQuery(["exfil.example.com"])
        framed.be16(UInt16(message.count))
        let frames = [
            B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 17, payload: B.udp(src: 5000, dst: 53, payload: B.dnsQuery(["ok.unit.internal", "www.example.org"]))),
            B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 6, payload: B.tcp(src: 5001, dst: 53, payload: framed + message)),
            B.ipv6(src: "fd00::1", dst: "fd00::53", next: 0, payload: B.extensionHeader(next: 17) + B.udp(src: 5002, dst: 53, payload: B.dnsQuery(["c2.example.net"]))),
            B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 17, payload: B.udp(src: 5003, dst: 53, payload: [0xde, 0xad])),
        ]
        let analyzer = analyze(frames, .raw, policy: try egressPolicy())
        let flows = analyzer.table.sorted
        // Both UDP queries share one key (10.1.1.1 → 10.0.0.53 udp/53), so their names collect in one flow.
        #expect(flows.count == 3)
        #expect(flows.contains {
            $0.key.proto == 17 && $0.key.dst == IPAddress("10.0.0.53") && $0.stats.packets == 2
                && $0.stats.dnsNames == ["ok.unit.internal", "www.example.org", DNSDecoder.undecodableName]
        })
        #expect(flows.contains { $0.key.proto == 6 && $0.stats.dnsNames == ["exfil.example.com"] })
        #expect(flows.contains { $0.key.dst == IPAddress("fd00::53") && $0.stats.dnsNames == ["c2.example.net"] })
    }

    @Test func policyFlagsLinkLocalAndMulticastWhenAsked() throws {
        let frames = [
            B.ipv4(src: "169.254.1.1", dst: "169.254.1.2", proto: 17, payload: B.udp(src: 1, dst: 2)),
            B.ipv4(src: "10.1.1.1", dst: "224.0.0.251", proto: 17, payload: B.udp(src: 5353, dst: 5353)),
            B.ipv4(src: "10.1.1.1", dst: "255.255.255.255", proto: 17, payload: B.udp(src: 68, dst: 67)),
        ]
        #expect(analyze(frames, .raw, policy: try egressPolicy()).violations == 0)
        let linkLocal = try egressPolicy("traffic:\n  flag_link_local: true\n")
        #expect(analyze(frames, .raw, policy: linkLocal).violations == 1)
        let multicast = try egressPolicy("traffic:\n  flag_multicast: true\n")
        #expect(analyze(frames, .raw, policy: multicast).violations == 2)
    }

    @Test func flowTableIsBoundedAndCountsWhatItCut() throws {
        let policy = try egressPolicy("traffic:\n  max_flows: 16\n")
        let frames = (0..<40).map { index in
            B.ipv4(src: "10.1.1.1", dst: "203.0.113.\(index + 1)", proto: 17, payload: B.udp(src: 1, dst: 9))
        }
        let analyzer = analyze(frames + frames.prefix(2), .raw, policy: policy)
        #expect(analyzer.table.count == 16)
        #expect(analyzer.table.cutPackets == 24)
        #expect(analyzer.table.cutBytes == 24 * 28)
        #expect(analyzer.table.entries.reduce(0) { $0 + $1.stats.packets } == 18)
    }

    @Test func filterKeepsWhatThePolicyMightFlag() throws {
        let filter = try egressPolicy().bpfFilter
        #expect(filter.hasPrefix("not ("))
        #expect(filter.contains("src net 10.0.0.0/8"))
        #expect(filter.contains("dst net 192.0.2.10/32"))
        #expect(filter.contains("not port 53"))
        #expect(filter.contains("ip6 proto 6 or ip6 proto 17 or ip6 proto 58"))
        #expect(filter.contains("169.254.0.0/16"))
        #expect(!(try egressPolicy("traffic:\n  flag_link_local: true\n").bpfFilter.contains("169.254.0.0/16")))
    }

    @Test func nameCheckAgreesWithThePolicy() throws {
        let policy = try egressPolicy("")
        let names = [
            "unit.internal", "a.unit.internal", "A.UNIT.Internal.", "xunit.internal", "unit.internal.evil.com", ".", "",
            "internal", "b.a.unit.internal", "ünit.internal", "a\\046unit.internal",
        ]
        for name in names { #expect(policy.isAllowedName(name) == policy.policy.isAllowedName(name), "\(name)") }
        #expect(policy.isAllowedName("a.unit.internal"))
        #expect(!policy.isAllowedName("xunit.internal"))
    }

    @Test func flowTimestampsMatchTheCoreFormatter() {
        for seconds: Int64 in [0, 951_782_400, 1_795_000_000, 4_107_542_399, 1_709_164_800, 7_258_118_400] {
            for millis: Int64 in [0, 7, 999] {
                let nanos = seconds * 1_000_000_000 + millis * 1_000_000 + 123
                let expected = RFC3339.string(from: Date(timeIntervalSince1970: Double(seconds) + Double(millis) / 1000 + 0.0000005), fractional: true)
                #expect(EgressFlow.timestamp(nanos) == expected)
            }
        }
    }

    @Test func findingCarriesFlowsWithTheReportFieldNames() throws {
        let policy = try egressPolicy()
        let analyzer = analyze([B.ipv4(src: "10.1.1.1", dst: "203.0.113.5", proto: 6, payload: B.tcp(src: 1, dst: 443))], .raw, policy: policy)
        let result = TrafficResult(
            sourceKind: "file", source: "x.pcap", linkType: .raw, filter: nil, snapLength: 65535, records: analyzer.packets, packets: analyzer.packets,
            notIP: 0, violations: analyzer.violations, flows: analyzer.table.sorted, tableCapacity: 16, cutPackets: 0, cutBytes: 0,
            cutNames: 0, statistics: nil, startedAt: TestSupport.fixedDate, endedAt: TestSupport.fixedDate, stoppedBy: nil)
        let context = CheckContext(policy: policy.policy, hostID: "h", observedAt: TestSupport.fixedDate)
        let finding = try #require(TrafficChecks.egress(result.facts, context: context).first)
        #expect(finding.rule.id == "traffic.egress")
        #expect(finding.status == .fail)
        let flow = try #require(finding.evidence.first?.data["flows"]?.arrayValue?.first)
        #expect(flow.objectValue?.map(\.0) == ["src", "dst", "protocol", "dst_port", "packets", "bytes", "first_seen", "last_seen", "dns_names"])
        #expect(flow["dst_port"]?.intValue == 443)
        #expect(flow["protocol"]?.stringValue == "tcp")
        #expect(flow["first_seen"]?.stringValue == "1970-01-01T00:00:00.000Z")
        var clean = result
        clean.flows = []
        #expect(TrafficChecks.egress(clean.facts, context: context).first?.status == .pass)
        clean.statistics = CaptureStatistics(received: 10, dropped: 3, interfaceDropped: 0)
        #expect(TrafficChecks.egress(clean.facts, context: context).first?.status == .error)
    }
}
