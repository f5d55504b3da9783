import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianCLI

private typealias B = PacketBuilder

@Suite("mijian traffic --read: packets that were never judged are never a clean pass")
struct UnjudgedTrafficCommandTests {
    /// Runs `mijian traffic --read` over `writer`'s capture, as JSON and as text; the exit codes and both reports.
    func run(_ writer: PcapWriter) async throws -> (json: Int32, text: Int32, report: JSONValue, table: String) {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policy = directory.appendingPathComponent("policy.yaml")
        try Data(trafficPolicyYAML.utf8).write(to: policy)
        let capture = try writer.write(to: directory, name: "in.pcap")
        let json = directory.appendingPathComponent("report.json")
        let text = directory.appendingPathComponent("report.txt")
        let jsonCode = await MijianMain.run(arguments: [
            "traffic", "--read", capture.path, "--policy", policy.path, "--format", "json", "--output", json.path,
        ])
        let textCode = await MijianMain.run(arguments: ["traffic", "--read", capture.path, "--policy", policy.path, "--output", text.path])
        return (jsonCode, textCode, try readReport(json), String(decoding: try Data(contentsOf: text), as: UTF8.self))
    }

    /// An Ethernet capture of `packet` behind `count` 802.1Q tags.
    func tagged(_ count: Int, _ packet: [UInt8]) -> PcapWriter {
        var writer = PcapWriter(linkType: 1)
        writer.add(B.ethernet(etherType: 0x0800, payload: packet, tags: (0..<count).map { (UInt16(0x8100), UInt16($0 + 1)) }))
        return writer
    }

    /// The `traffic.egress` finding and its capture evidence's unjudged counts.
    func egress(_ report: JSONValue) throws -> (status: String?, detail: String, counts: JSONValue?) {
        let finding = try #require(report["findings"]?.arrayValue?.first { $0["rule"]?["id"]?.stringValue == "traffic.egress" })
        return (
            finding["status"]?.stringValue, finding["status_detail"]?.stringValue ?? "",
            finding["evidence"]?.arrayValue?.last?["data"]?["packets_unjudged"]
        )
    }

    /// Expects exit 2 in both formats, an `error` finding whose detail contains `detail`, and `count`
    /// unjudged packets for `reason` (and in all) in its evidence; the text report.
    @discardableResult
    func expectError(_ writer: PcapWriter, detail: String, reason: String, count: Int) async throws -> String {
        let run = try await run(writer)
        #expect(run.json == 2)
        #expect(run.text == 2)
        let egress = try egress(run.report)
        #expect(egress.status == "error")
        #expect(egress.detail.contains(detail), "\(egress.detail)")
        #expect(egress.counts?[reason]?.intValue == Int64(count))
        #expect(egress.counts?["total"]?.intValue == Int64(count))
        return run.table
    }

    @Test func aThousandEmptyRecordsExitTwoWithTheirCount() async throws {
        var writer = PcapWriter(linkType: 1)
        for index in 0..<1000 { writer.add([], micros: UInt32(index), wireLength: 74) }
        let table = try await expectError(writer, detail: "1000 packet(s) could not be judged: 1000 empty record (caplen 0)", reason: "empty_record", count: 1000)
        #expect(!table.contains("none of"))
        #expect(table.contains("1000 packet(s) could not be judged"))
    }

    @Test func anIPv4RecordCutInsideItsHeaderExitsTwo() async throws {
        var writer = PcapWriter(linkType: 1)
        let packet = B.ethernet(
            etherType: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "8.8.8.8", proto: 6, payload: B.tcp(src: 40000, dst: 443)))
        // Cut after the source address: the destination was never captured.
        writer.add(Array(packet.prefix(14 + 16)), wireLength: packet.count)
        try await expectError(writer, detail: "1 packet(s) could not be judged: 1 cut inside the IP header", reason: "ip_header_truncated", count: 1)
    }

    @Test func nineVLANTagsTo8888AreAFail() async throws {
        let run = try await run(tagged(9, B.ipv4(src: "10.1.1.1", dst: "8.8.8.8", proto: 6, payload: B.tcp(src: 40000, dst: 443))))
        #expect(run.json == 1)
        #expect(run.text == 1)
        let flows = egressFlows(run.report)
        #expect(flows.count == 1)
        #expect(flows.first?["dst"]?.stringValue == "8.8.8.8")
        #expect(flows.first?["dst_port"]?.intValue == 443)
    }

    @Test func tagsDeeperThanTheBoundAreUnjudgedAndAFailShowsThem() async throws {
        // Deeper than the decoder walks (64 > 32 tags).
        var writer = tagged(64, B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 6, payload: B.tcp(src: 40000, dst: 22)))
        try await expectError(writer, detail: "1 more than 32 VLAN tags or MPLS labels", reason: "too_many_tags", count: 1)
        // With a packet that reached outside as well: a fail, and the unjudged one is still counted.
        writer.add(B.ethernet(etherType: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "8.8.8.8", proto: 17, payload: B.udp(src: 1, dst: 123))))
        let both = try await run(writer)
        #expect(both.json == 1)
        let egress = try egress(both.report)
        #expect(egress.status == "fail")
        #expect(egress.detail.contains("1 packet(s) could not be judged"))
        #expect(egress.counts?["too_many_tags"]?.intValue == 1)
        #expect(both.table.contains("1 packet(s) could not be judged"))
    }
}
