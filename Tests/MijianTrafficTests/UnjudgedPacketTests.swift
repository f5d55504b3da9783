import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianTraffic

/// Classifies `frame` with the given link type.
private func classify(_ frame: [UInt8], _ linkType: LinkType) -> DecodeResult {
    frame.withUnsafeBytes { PacketDecoder.classify($0, linkType: linkType) }
}

/// Judges frames of one link type and returns the analyzer.
private func judge(_ frames: [[UInt8]], _ linkType: LinkType) throws -> EgressAnalyzer {
    analyze(frames, linkType, policy: try egressPolicy())
}

/// `count` stacked 802.1Q tags.
private func tags(_ count: Int) -> [(UInt16, UInt16)] { (0..<count).map { (UInt16(0x8100), UInt16($0 + 1)) } }

/// An MPLS label stack of `count` entries, the last one marked bottom of stack.
private func labels(_ count: Int) -> [UInt8] {
    (0..<count).flatMap { index -> [UInt8] in [0, 0x10, index == count - 1 ? 0x01 : 0x00, 64] }
}

/// The `traffic.egress` finding of a result and its capture evidence's unjudged counts.
private func egressFinding(_ result: TrafficResult) throws -> (finding: Finding, counts: JSONValue?) {
    let context = CheckContext(policy: try egressPolicy().policy, hostID: "h", observedAt: TestSupport.fixedDate)
    let finding = try #require(TrafficChecks.egress(result.facts, context: context).first)
    return (finding, finding.evidence.last?.data["packets_unjudged"])
}

@Suite("Packets that could not be judged are counted by reason and never pass")
struct UnjudgedPacketTests {
    let leak = B.ipv4(src: "10.1.1.1", dst: "8.8.8.8", proto: 17, payload: B.udp(src: 40000, dst: 53, payload: B.dnsQuery(["x.example"])))
    let inside = B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 6, payload: B.tcp(src: 40000, dst: 22))

    @Test func nineVLANTagsToAnOutsideAddressAreAViolation() throws {
        let analyzer = try judge([B.ethernet(etherType: 0x0800, payload: leak, tags: tags(9))], .ethernet)
        #expect(analyzer.violations == 1)
        #expect(analyzer.unjudged.total == 0)
        #expect(analyzer.table.entries.first?.key.dst == IPAddress("8.8.8.8"))
        // As deep as the bound goes, still judged.
        let deepest = try judge([B.ethernet(etherType: 0x0800, payload: leak, tags: tags(PacketDecoder.maxTags))], .ethernet)
        #expect(deepest.violations == 1)
    }

    @Test func tagsPastTheBoundAreUnjudgedNotPassed() throws {
        let frames = [
            B.ethernet(etherType: 0x0800, payload: inside, tags: tags(PacketDecoder.maxTags + 1)),
            B.ethernet(etherType: 0x0800, payload: leak, tags: tags(PacketDecoder.maxTags + 1)),
            B.ethernet(etherType: 0x8847, payload: labels(PacketDecoder.maxTags + 1) + leak),
        ]
        let analyzer = try judge(frames, .ethernet)
        #expect(analyzer.violations == 0)
        #expect(analyzer.unjudged[.tooManyTags] == 3)
        #expect(analyzer.notIP == 0)
    }

    @Test func ipBehindMPLSPPPoEAndSNAPIsJudged() throws {
        var pppoe: [UInt8] = [0x11, 0x00, 0x00, 0x01]
        pppoe.be16(UInt16(leak.count + 2))
        pppoe.be16(0x0021)
        let snap: [UInt8] = [0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00]
        let frames = [
            B.ethernet(etherType: 0x8847, payload: labels(3) + leak),
            B.ethernet(etherType: 0x8864, payload: pppoe + leak),
            B.ethernet(etherType: UInt16(snap.count + leak.count), payload: snap + leak),
            B.ethernet(etherType: 0x8100, payload: [0, 5, 0x88, 0x47] + labels(1) + leak),
        ]
        let analyzer = try judge(frames, .ethernet)
        #expect(analyzer.violations == 4)
        #expect(analyzer.unjudged.total == 0)
        // An MPLS stack ending on something else (an Ethernet pseudowire may carry IP) is unjudged.
        #expect(classify(B.ethernet(etherType: 0x8847, payload: labels(1) + [0x02, 0, 0, 0]), .ethernet) == .unjudged(.mplsPayloadNotIP))
        // Spanning tree (LLC 42 42 03), ARP and LLDP carry no IP.
        #expect(classify(B.ethernet(etherType: 38, payload: [0x42, 0x42, 0x03] + [UInt8](repeating: 0, count: 35)), .ethernet) == .notIP)
        #expect(classify(B.ethernet(etherType: 0x0806, payload: [UInt8](repeating: 0, count: 28)), .ethernet) == .notIP)
    }

    @Test func everyCutAndMalformedHeaderHasItsReason() throws {
        var badVersion = inside
        badVersion[0] = 0x55
        var shortHeader = inside
        shortHeader[0] = 0x44
        let options = B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 17, payload: B.udp(src: 1, dst: 53), options: [1, 1, 1, 1, 1, 1, 1, 1])
        let cutChain = B.ipv6(src: "fd00::1", dst: "fd00::2", next: 0, payload: B.extensionHeader(next: 60) + B.extensionHeader(next: 17))
        let endless = B.ipv6(src: "fd00::1", dst: "fd00::2", next: 0, payload: (0..<40).flatMap { _ in B.extensionHeader(next: 0) })
        let udpDNS = B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 17, payload: B.udp(src: 5000, dst: 53, payload: B.dnsQuery(["a.example"])))
        let tcpDNS = B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 6, payload: B.tcp(src: 5000, dst: 53))
        let cases: [([UInt8], LinkType, UnjudgedReason)] = [
            ([], .ethernet, .emptyRecord),
            ([], .raw, .emptyRecord),
            (Array(B.ethernet(etherType: 0x0800, payload: inside).prefix(13)), .ethernet, .linkHeaderTruncated),
            (Array(B.sll2(protocol: 0x0800, payload: inside).prefix(19)), .linuxSLL2, .linkHeaderTruncated),
            ([0, 0, 2], .null, .linkHeaderTruncated),
            (Array(B.ethernet(etherType: 0x0800, payload: inside, tags: tags(2)).prefix(17)), .ethernet, .linkHeaderTruncated),
            (inside, LinkType(rawValue: 147), .unknownLinkType),
            (Array(inside.prefix(19)), .raw, .ipHeaderTruncated),
            (Array(inside.prefix(12)), .ipv4, .ipHeaderTruncated),
            (B.ethernet(etherType: 0x0800, payload: []), .ethernet, .ipHeaderTruncated),
            (badVersion, .raw, .ipHeaderMalformed),
            (shortHeader, .raw, .ipHeaderMalformed),
            (B.ethernet(etherType: 0x86DD, payload: inside), .ethernet, .ipHeaderMalformed),
            // Addresses read, options cut: inside peers, so it cannot pass.
            (Array(options.prefix(24)), .raw, .ipHeaderTruncated),
            (Array(cutChain.prefix(49)), .raw, .extensionHeadersTruncated),
            (endless, .raw, .tooManyExtensionHeaders),
            (Array(inside.prefix(22)), .raw, .transportHeaderTruncated),
            // To port 53 with the UDP header or the TCP header's length not captured: the query cannot be read.
            (Array(udpDNS.prefix(26)), .raw, .transportHeaderTruncated),
            (Array(tcpDNS.prefix(30)), .raw, .transportHeaderTruncated),
        ]
        for (frame, linkType, reason) in cases {
            let analyzer = try judge([frame], linkType)
            #expect(analyzer.unjudged[reason] == 1, "\(frame.count) bytes of \(linkType): \(reason)")
            #expect(analyzer.unjudged.total == 1)
            #expect(analyzer.violations == 0)
        }
    }

    @Test func aCutPacketToAnOutsidePeerIsStillAViolation() throws {
        let outside = [
            Array(B.ipv4(src: "10.1.1.1", dst: "8.8.8.8", proto: 17, payload: B.udp(src: 1, dst: 53), options: [1, 1, 1, 1]).prefix(22)),
            Array(B.ipv6(src: "fd00::1", dst: "2001:db8::1", next: 0, payload: B.extensionHeader(next: 17)).prefix(41)),
            Array(leak.prefix(22)),
        ]
        let analyzer = try judge(outside, .raw)
        #expect(analyzer.violations == 3)
        #expect(analyzer.unjudged.total == 0)
    }

    @Test func laterFragmentsAreJudgedOnTheirAddressesAlone() throws {
        let frames = [
            B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 17, payload: [1, 2, 3, 4], fragmentOffset: 64),
            B.ipv6(src: "fd00::1", dst: "fd00::2", next: 44, payload: B.fragmentHeader(next: 17, offset: 8, more: false) + [1, 2]),
            // The ports of a packet not to port 53 were read: the rest of its header is not needed.
            Array(B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 17, payload: B.udp(src: 1, dst: 9)).prefix(25)),
        ]
        let analyzer = try judge(frames, .raw)
        #expect(analyzer.unjudged.total == 0)
        #expect(analyzer.violations == 0)
        let outside = try judge([B.ipv4(src: "10.1.1.1", dst: "8.8.8.8", proto: 17, payload: [1, 2, 3, 4], fragmentOffset: 64)], .raw)
        #expect(outside.violations == 1)
    }

    @Test func shortRecordsInAFileReachTheDecoderInsteadOfTheFiltersLengthCheck() throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = PcapWriter(linkType: 1)
        for _ in 0..<1000 { writer.add([], wireLength: 60) }
        writer.add(Array(B.ethernet(etherType: 0x0800, payload: inside).prefix(30)), wireLength: 54)
        writer.add(B.ethernet(etherType: 0x0800, payload: inside))
        let url = try writer.write(to: directory, name: "short.pcap")
        let result = try TrafficWatch.read(file: url.path, policy: try egressPolicy(), logger: quiet)
        #expect(result.filter != nil)
        #expect(result.unjudged[.emptyRecord] == 1000)
        #expect(result.unjudged[.ipHeaderTruncated] == 1)
        #expect(result.unjudgedPackets == 1001)
        let (finding, counts) = try egressFinding(result)
        #expect(finding.status == .error)
        #expect(finding.statusDetail.contains("1001 packet(s) could not be judged"))
        #expect(finding.statusDetail.contains("1000 empty record"))
        #expect(counts?["total"]?.intValue == 1001)
        #expect(counts?["empty_record"]?.intValue == 1000)
        #expect(counts?["ip_header_truncated"]?.intValue == 1)
    }

    @Test(arguments: [UInt32(1), 113, 276, 101, 0, 108])
    func theInstalledFilterKeepsFramesTooShortForItsReads(linkType: UInt32) throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var empty = PcapWriter(linkType: linkType)
        empty.add(frame(inside, linkType: linkType))
        let capture = try PacketCapture.open(file: try empty.write(to: directory, name: "e.pcap").path)
        let policy = try egressPolicy()
        try capture.setFilter(policy.bpfFilter(for: capture.linkType))
        let filter = try #require(capture.compiledFilter)
        // As the kernel runs it: the frame is all there is (wire length = captured length).
        func kept(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { filter.passes($0, wireLength: bytes.count) } }
        // Untagged frames, with the BSD IPv6 family libpcap's `ip6` knows, so the filter itself reads the IP header.
        func untagged(_ packet: [UInt8]) -> [UInt8] {
            let v6 = packet.first.map { $0 >> 4 == 6 } ?? false
            switch linkType {
            case 1: return B.ethernet(etherType: v6 ? 0x86DD : 0x0800, payload: packet)
            case 0: return B.null(family: v6 ? 24 : 2, payload: packet)
            default: return frame(packet, linkType: linkType)
            }
        }
        let whole = untagged(inside)
        let header = whole.count - inside.count
        let options = untagged(B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 17, payload: B.udp(src: 1, dst: 9), options: [1, 1, 1, 1, 1, 1, 1, 1]))
        let v6 = untagged(B.ipv6(src: "fd00::1", dst: "fd00::2", next: 6, payload: B.tcp(src: 1, dst: 22)))
        // Whole permitted frames are still dropped by the filter, as before.
        #expect(!kept(whole), "link type \(linkType)")
        #expect(!kept(options))
        #expect(!kept(v6))
        // Every cut of them short of the ports is kept for the decoder to count.
        for cut in [header + 1, header + 12, header + 19, header + 20, header + 22] { #expect(kept(Array(whole.prefix(cut))), "\(cut)") }
        for cut in [header + 24, header + 28, header + 31] { #expect(kept(Array(options.prefix(cut))), "options \(cut)") }
        for cut in [header + 20, header + 39, header + 43] { #expect(kept(Array(v6.prefix(cut))), "v6 \(cut)") }
    }

    @Test func aFailStillShowsWhatWasNotJudged() throws {
        var analyzer = try judge([leak, []], .raw)
        #expect(analyzer.violations == 1)
        var window = CaptureWindow(
            interface: "v0", linkType: .raw, filter: nil, snapLength: 512, tableCapacity: analyzer.table.capacity,
            at: Date(timeIntervalSince1970: 0))
        window.update(analyzer: analyzer, recordsRead: 2, statistics: CaptureStatistics(received: 5, dropped: 2, interfaceDropped: 1))
        let result = window.close(at: Date(timeIntervalSince1970: 1))
        let (finding, counts) = try egressFinding(result)
        #expect(finding.status == .fail)
        #expect(finding.statusDetail.contains("4 packet(s) could not be judged"))
        #expect(finding.statusDetail.contains("2 dropped by the kernel"))
        #expect(counts?["empty_record"]?.intValue == 1)
        #expect(counts?["dropped_by_kernel"]?.intValue == 2)
        #expect(counts?["dropped_by_interface"]?.intValue == 1)
        // The next stretch counts only its own.
        [UInt8]().withUnsafeBytes { analyzer.process($0, linkType: .raw, time: 3) }
        inside.withUnsafeBytes { analyzer.process($0, linkType: .raw, time: 4) }
        window.update(analyzer: analyzer, recordsRead: 4, statistics: CaptureStatistics(received: 7, dropped: 2, interfaceDropped: 1))
        let next = window.close(at: Date(timeIntervalSince1970: 2))
        #expect(next.unjudged[.emptyRecord] == 1)
        #expect(next.unjudgedPackets == 1)
        #expect(next.judgedPackets == 1)
        #expect(try egressFinding(next).finding.status == .error)
    }
}
