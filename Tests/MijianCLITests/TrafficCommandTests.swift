import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianCLI

private typealias B = PacketBuilder

let trafficPolicyYAML = """
    id: traffic-cli-test
    version: "1"
    profile: classified
    networks:
      unit: [10.0.0.0/8]
      allowed_destinations: []
    dns:
      resolvers: [10.0.0.53]
      allowed_suffixes: [unit.internal]

    """

/// Parses a report file written with `--format json --output`.
func readReport(_ url: URL) throws -> JSONValue {
    try JSONParser().parse(Array(try Data(contentsOf: url)))
}

/// The flows listed in the `traffic.egress` finding of a report.
func egressFlows(_ report: JSONValue) -> [JSONValue] {
    let findings = report["findings"]?.arrayValue ?? []
    let egress = findings.first { $0["rule"]?["id"]?.stringValue == "traffic.egress" }
    return egress?["evidence"]?.arrayValue?.first?["data"]?["flows"]?.arrayValue ?? []
}

@Suite("mijian traffic --read")
struct TrafficCommandTests {
    @Test func flagsOutsideFlowsInJSONAndExitsOne() async throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policy = directory.appendingPathComponent("policy.yaml")
        try Data(trafficPolicyYAML.utf8).write(to: policy)
        var writer = PcapWriter(linkType: 1)
        writer.add(B.ethernet(etherType: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 6, payload: B.tcp(src: 1, dst: 22))))
        writer.add(B.ethernet(etherType: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "203.0.113.5", proto: 6, payload: B.tcp(src: 40000, dst: 443))), micros: 5)
        writer.add(B.ethernet(etherType: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 17, payload: B.udp(src: 5000, dst: 53, payload: B.dnsQuery(["leak.example.org"])))), micros: 9)
        let capture = try writer.write(to: directory, name: "in.pcap")
        let output = directory.appendingPathComponent("report.json")
        let code = await MijianMain.run(arguments: [
            "traffic", "--read", capture.path, "--policy", policy.path, "--format", "json", "--output", output.path,
        ])
        #expect(code == 1)
        let report = try readReport(output)
        let flows = egressFlows(report)
        #expect(flows.count == 2)
        let https = try #require(flows.first { $0["dst_port"]?.intValue == 443 })
        #expect(https["src"]?.stringValue == "10.1.1.1")
        #expect(https["dst"]?.stringValue == "203.0.113.5")
        #expect(https["protocol"]?.stringValue == "tcp")
        #expect(https["packets"]?.intValue == 1)
        #expect(https["bytes"]?.intValue == 40)
        #expect(https["first_seen"]?.stringValue.flatMap { RFC3339.date(from: $0) } != nil)
        #expect(https["last_seen"]?.stringValue.flatMap { RFC3339.date(from: $0) } != nil)
        let dns = try #require(flows.first { $0["dst_port"]?.intValue == 53 })
        #expect(dns["dns_names"]?.arrayValue?.compactMap(\.stringValue) == ["leak.example.org"])
        #expect(report["findings"]?.arrayValue?.first?["status"]?.stringValue == "fail")
    }

    @Test func cleanCaptureExitsZeroAndTextListsNothing() async throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policy = directory.appendingPathComponent("policy.yaml")
        try Data(trafficPolicyYAML.utf8).write(to: policy)
        var writer = PcapWriter(linkType: 113)
        writer.add(B.sll(protocol: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 6, payload: B.tcp(src: 1, dst: 22))))
        writer.add(B.sll(protocol: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "224.0.0.251", proto: 17, payload: B.udp(src: 5353, dst: 5353))))
        let capture = try writer.write(to: directory, name: "clean.pcapng", pcapng: true)
        let output = directory.appendingPathComponent("report.txt")
        let code = await MijianMain.run(arguments: ["traffic", "--read", capture.path, "--policy", policy.path, "--output", output.path])
        #expect(code == 0)
        let text = String(decoding: try Data(contentsOf: output), as: UTF8.self)
        #expect(text.contains("traffic.egress"))
        #expect(text.contains("pass"))
        #expect(text.contains("none of 2 packet(s) read"))
        #expect(!text.contains("SRC  "))
    }

    @Test func textListsFlowColumns() async throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policy = directory.appendingPathComponent("policy.yaml")
        try Data(trafficPolicyYAML.utf8).write(to: policy)
        var writer = PcapWriter(linkType: 101)
        writer.add(B.ipv4(src: "10.1.1.1", dst: "198.51.100.77", proto: 17, payload: B.udp(src: 1, dst: 9999)))
        let capture = try writer.write(to: directory, name: "one.pcap")
        let output = directory.appendingPathComponent("report.txt")
        let code = await MijianMain.run(arguments: ["traffic", "--read", capture.path, "--policy", policy.path, "--output", output.path])
        #expect(code == 1)
        let text = String(decoding: try Data(contentsOf: output), as: UTF8.self)
        #expect(text.contains("SRC"))
        #expect(text.contains("DNS NAMES"))
        #expect(text.contains("198.51.100.77"))
        #expect(text.contains("9999"))
    }

    @Test func errorsExitTwo() async throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let junk = directory.appendingPathComponent("junk.pcap")
        try Data("definitely not a capture".utf8).write(to: junk)
        #expect(await MijianMain.run(arguments: ["traffic", "--read", junk.path]) == 2)
        #expect(await MijianMain.run(arguments: ["traffic"]) == 2)
        #expect(await MijianMain.run(arguments: ["traffic", "--read", junk.path, "--interface", "lo"]) == 2)
        // Truncated: the report with what was read is still written, and the exit is 2.
        var writer = PcapWriter(linkType: 101)
        writer.add(B.ipv4(src: "10.1.1.1", dst: "203.0.113.5", proto: 6, payload: B.tcp(src: 1, dst: 80)))
        writer.add(B.ipv4(src: "10.1.1.1", dst: "203.0.113.6", proto: 6, payload: B.tcp(src: 1, dst: 80)))
        let cut = directory.appendingPathComponent("cut.pcap")
        try Data(writer.pcap.dropLast(7)).write(to: cut)
        let output = directory.appendingPathComponent("cut.json")
        let code = await MijianMain.run(arguments: ["traffic", "--read", cut.path, "--format", "json", "--output", output.path])
        #expect(code == 2)
        let flows = egressFlows(try readReport(output))
        #expect(flows.count == 1)
        #expect(flows.first?["dst"]?.stringValue == "203.0.113.5")
    }
}
