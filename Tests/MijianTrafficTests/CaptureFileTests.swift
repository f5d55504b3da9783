import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianTraffic

/// Wraps an IP packet in the given link type's header.
func frame(_ packet: [UInt8], linkType: UInt32) -> [UInt8] {
    let v6 = packet.first.map { $0 >> 4 == 6 } ?? false
    switch linkType {
    case 1: return B.ethernet(etherType: v6 ? 0x86DD : 0x0800, payload: packet, tags: [(0x88A8, 7), (0x8100, 9)])
    case 113: return B.sll(protocol: v6 ? 0x86DD : 0x0800, payload: packet)
    case 276: return B.sll2(protocol: v6 ? 0x86DD : 0x0800, payload: packet)
    case 0: return B.null(family: v6 ? 10 : 2, payload: packet)
    case 108: return B.null(family: v6 ? 24 : 2, payload: packet, bigEndian: true)
    default: return packet
    }
}

/// Flagged traffic used by the file tests, one flow each.
func flaggedTraffic() -> [[UInt8]] {
    [
        B.ipv4(src: "10.1.1.1", dst: "203.0.113.5", proto: 6, payload: B.tcp(src: 40000, dst: 443)),
        B.ipv4(src: "10.1.1.1", dst: "203.0.113.5", proto: 17, payload: [1, 2, 3, 4, 5, 6, 7, 8], fragmentOffset: 64),
        B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 17, payload: B.udp(src: 5000, dst: 53, payload: B.dnsQuery(["a.example.com", "b.example.com"], compress: true))),
        B.ipv6(src: "fd00::1", dst: "fd00::53", next: 60, payload: B.extensionHeader(next: 17) + B.udp(src: 5001, dst: 53, payload: B.dnsQuery(["c2.example.net"]))),
        B.ipv6(src: "fd00::1", dst: "2001:db8::9", next: 44, payload: B.fragmentHeader(next: 17, offset: 0, more: true) + B.udp(src: 1, dst: 4500)),
        B.ipv4(src: "198.51.100.7", dst: "10.1.1.1", proto: 1, payload: B.icmpEcho(), options: [0x94, 4, 0, 0]),
    ]
}

let quiet: Logger = {
    var logger = Logger(label: "test.traffic")
    logger.logLevel = .critical
    return logger
}()

@Suite("Capture files")
struct CaptureFileTests {
    @Test(arguments: [UInt32(1), 113, 276, 101, 0, 108])
    func everyLinkTypeInPcapAndPcapng(linkType: UInt32) throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = PcapWriter(linkType: linkType)
        for (index, packet) in (permittedTraffic() + flaggedTraffic()).enumerated() {
            writer.add(frame(packet, linkType: linkType), micros: UInt32(index))
        }
        for pcapng in [false, true] {
            let url = try writer.write(to: directory, name: "t.\(pcapng ? "pcapng" : "pcap")", pcapng: pcapng)
            let result = try TrafficWatch.read(file: url.path, policy: try egressPolicy(), logger: quiet)
            #expect(result.stoppedBy == nil)
            #expect(result.filter != nil)
            #expect(result.flows.count == flaggedTraffic().count, "link type \(linkType) pcapng \(pcapng)")
            #expect(result.violations == flaggedTraffic().count)
            let names = Set(result.flows.flatMap(\.stats.dnsNames))
            #expect(names == ["a.example.com", "b.example.com", "c2.example.net"])
            #expect(result.flows.contains { $0.key.dst == IPAddress("203.0.113.5") && $0.key.dstPort == -1 && $0.key.proto == 17 })
            #expect(result.flows.contains { $0.key.dst == IPAddress("2001:db8::9") && $0.key.dstPort == 4500 })
            let https = try #require(result.flows.first { $0.key.dstPort == 443 })
            #expect(https.stats.firstSeen == 1_795_000_000 * 1_000_000_000 + Int64(permittedTraffic().count) * 1000)
        }
    }

    @Test func truncatedCaptureKeepsWhatWasReadAndSaysWhere() throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = PcapWriter(linkType: 101)
        for packet in flaggedTraffic() { writer.add(packet) }
        let whole = writer.pcap
        let url = directory.appendingPathComponent("cut.pcap")
        try Data(whole.dropLast(10)).write(to: url)
        let result = try TrafficWatch.read(file: url.path, policy: try egressPolicy(), logger: quiet)
        let stopped = try #require(result.stoppedBy)
        #expect(stopped.message.contains("packet \(flaggedTraffic().count)"))
        #expect(stopped.message.contains("byte offset"))
        #expect(result.flows.count == flaggedTraffic().count - 1)
        let context = CheckContext(policy: try egressPolicy().policy, hostID: "h", observedAt: TestSupport.fixedDate)
        let finding = try #require(TrafficChecks.egress(result.facts, context: context).first)
        #expect(finding.status == .fail)
        #expect(finding.statusDetail.contains("stopped early"))
        // Clean traffic then a cut: error, never pass.
        var clean = PcapWriter(linkType: 101)
        for packet in permittedTraffic() { clean.add(packet) }
        try Data(clean.pcap.dropLast(3)).write(to: url)
        let cleanResult = try TrafficWatch.read(file: url.path, policy: try egressPolicy(), logger: quiet)
        #expect(cleanResult.stoppedBy != nil)
        #expect(TrafficChecks.egress(cleanResult.facts, context: context).first?.status == .error)
    }

    @Test func manyBatchesAreJudgedInOrderAndACutKeepsThemAll() throws {
        // More packets than several hand-over batches hold, each to its own outside port, then a cut.
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let flows = PacketBatch.packetLimit * 3 + 17
        var writer = PcapWriter(linkType: 1)
        for index in 0..<flows {
            let packet = B.ipv4(src: "10.1.1.1", dst: "203.0.113.9", proto: 17, payload: B.udp(src: 40000, dst: UInt16(1 + index)))
            writer.add(frame(packet, linkType: 1), micros: UInt32(index))
            // Permitted traffic between the leaks, dropped by the filter before the hand-over.
            writer.add(frame(permittedTraffic()[index % permittedTraffic().count], linkType: 1), micros: UInt32(index))
        }
        let url = directory.appendingPathComponent("many.pcap")
        try Data(writer.pcap).write(to: url)
        let whole = try TrafficWatch.read(file: url.path, policy: try egressPolicy(), logger: quiet)
        #expect(whole.stoppedBy == nil)
        #expect(whole.records == flows * 2)
        #expect(whole.flows.count == flows)
        #expect(whole.flows.map(\.key.dstPort) == (0..<flows).map { Int32(1 + $0) })
        try Data(writer.pcap.dropLast(5)).write(to: url)
        let cut = try TrafficWatch.read(file: url.path, policy: try egressPolicy(), logger: quiet)
        #expect(cut.stoppedBy?.message.contains("packet \(flows * 2)") == true)
        #expect(cut.flows.count == flows)
    }

    @Test func thePlainInsideShortcutOnlyDropsWhatTheFilterDropsAndNothingFlagged() throws {
        // The filter as compiled for an Ethernet capture.
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var empty = PcapWriter(linkType: 1)
        empty.add(B.ethernet(etherType: 0x0800, payload: permittedTraffic()[0]))
        let capture = try PacketCapture.open(file: try empty.write(to: directory, name: "e.pcap").path)
        let policy = try egressPolicy()
        try capture.setFilter(policy.bpfFilter)
        let filter = try #require(capture.compiledFilter)
        var frames: [[UInt8]] = []
        for packet in permittedTraffic() + flaggedTraffic() {
            let type: UInt16 = packet.first.map { $0 >> 4 == 6 } ?? false ? 0x86DD : 0x0800
            frames.append(B.ethernet(etherType: type, payload: packet))
            frames.append(B.ethernet(etherType: type, payload: packet, tags: [(0x8100, 5)]))
        }
        frames.append(B.ethernet(etherType: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 17, payload: B.udp(src: 53, dst: 4000))))
        frames.append(B.ethernet(etherType: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 6, payload: B.tcp(src: 1, dst: 2), options: [1, 1, 1, 1])))
        // Mutations of every frame: any byte changed, and captures cut short.
        var state: UInt64 = 12_345
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        let originals = frames
        for _ in 0..<20 {
            for frame in originals {
                var copy = frame
                copy[next() % copy.count] = UInt8(truncatingIfNeeded: next())
                frames.append(copy)
                frames.append(Array(frame.prefix(next() % frame.count)))
            }
        }
        var shortcuts = 0
        for frame in frames {
            let plain = frame.withUnsafeBytes { policy.isPlainInsideTraffic(ethernetFrame: $0) }
            guard plain else { continue }
            shortcuts += 1
            #expect(!frame.withUnsafeBytes { filter.passes($0, wireLength: frame.count) }, "\(frame)")
            var analyzer = EgressAnalyzer(policy: policy)
            frame.withUnsafeBytes { analyzer.process($0, linkType: .ethernet, time: 0) }
            #expect(analyzer.violations == 0, "\(frame)")
        }
        #expect(shortcuts > 20)
        #expect(shortcuts < frames.count / 2)
    }

    @Test func corruptRecordLengthStops() throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = PcapWriter(linkType: 101)
        for packet in flaggedTraffic() { writer.add(packet) }
        var bytes = writer.pcap
        // Second record's captured length: far beyond the snap length.
        let second = 24 + 16 + flaggedTraffic()[0].count
        bytes[second + 8] = 0xFF
        bytes[second + 9] = 0xFF
        bytes[second + 10] = 0xFF
        let url = directory.appendingPathComponent("corrupt.pcap")
        try Data(bytes).write(to: url)
        let result = try TrafficWatch.read(file: url.path, policy: try egressPolicy(), logger: quiet)
        #expect(result.stoppedBy?.message.contains("packet 2") == true)
        #expect(result.flows.count == 1)
    }

    @Test func nonCaptureFilesAreClearErrors() throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policy = try egressPolicy()
        let text = directory.appendingPathComponent("notes.txt")
        try Data("hello, this is not a capture\n".utf8).write(to: text)
        let unsupported = try PcapWriter(linkType: 105).write(to: directory, name: "wifi.pcap")
        let cases: [(String, MijianError.Code, String)] = [
            (text.path, .malformed, "not a readable pcap or pcapng capture"),
            (directory.appendingPathComponent("missing.pcap").path, .notFound, "cannot open capture"),
            (directory.path, .usage, "is a directory"),
            (unsupported.path, .malformed, "link type"),
        ]
        for (path, code, words) in cases {
            do {
                _ = try TrafficWatch.read(file: path, policy: policy, logger: quiet)
                Issue.record("\(path) was read as a capture")
            } catch {
                #expect(error.code == code)
                #expect(error.message.contains(words), "\(error.message)")
            }
        }
    }
}
