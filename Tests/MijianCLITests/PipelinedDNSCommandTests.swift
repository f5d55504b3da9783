import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianCLI

private typealias B = PacketBuilder

/// Several DNS messages in one TCP segment to the unit's resolver: each is judged, and what cannot be read is never a pass.
@Suite("mijian traffic --read: pipelined DNS over TCP")
struct PipelinedDNSCommandTests {
    /// `message` with its two-byte TCP length prefix.
    static func framed(_ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.be16(UInt16(message.count))
        return out + message
    }

    /// Runs `mijian traffic --read` over one TCP segment from 10.1.1.1 to the resolver 10.0.0.53:53 carrying `payload`.
    func run(_ payload: [UInt8]) async throws -> (code: Int32, report: JSONValue) {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let policy = directory.appendingPathComponent("policy.yaml")
        try Data(trafficPolicyYAML.utf8).write(to: policy)
        var writer = PcapWriter(linkType: 1)
        writer.add(B.ethernet(etherType: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 6, payload: B.tcp(src: 40000, dst: 53, payload: payload))))
        let capture = try writer.write(to: directory, name: "in.pcap")
        let output = directory.appendingPathComponent("report.json")
        let code = await MijianMain.run(arguments: ["traffic", "--read", capture.path, "--policy", policy.path, "--format", "json", "--output", output.path])
        return (code, try readReport(output))
    }

    /// The DNS names of the flows the report lists.
    func names(_ report: JSONValue) -> [String] {
        egressFlows(report).flatMap { $0["dns_names"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    }

    @Test func anInsideQueryFollowedByAnOutsideOneFails() async throws {
        let run = try await run(Self.framed(B.dnsQuery(["host.unit.internal"])) + Self.framed(B.dnsQuery(["secret-data.evil.example"])))
        #expect(run.code == 1)
        #expect(names(run.report).contains("secret-data.evil.example"), "\(egressFlows(run.report))")
    }

    @Test func twoInsideQueriesPass() async throws {
        let run = try await run(Self.framed(B.dnsQuery(["host.unit.internal"])) + Self.framed(B.dnsQuery(["other.unit.internal"])))
        #expect(run.code == 0)
        #expect(egressFlows(run.report).isEmpty)
    }

    @Test func anInsideQueryFollowedByACutOneFails() async throws {
        // The second message's prefix says 4 bytes more than the segment holds, though its question was read whole:
        // the rest would come in a segment read from its start, so this one cannot pass.
        let second = Self.framed(B.dnsQuery(["host2.unit.internal"]) + [0, 0, 0, 0]).dropLast(4)
        let run = try await run(Self.framed(B.dnsQuery(["host.unit.internal"])) + second)
        #expect(run.code == 1)
        #expect(names(run.report) == ["host.unit.internal", "host2.unit.internal", "<undecodable query>"], "\(egressFlows(run.report))")
    }
}
