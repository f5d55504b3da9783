#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

private typealias B = PacketBuilder

@Suite("mijian traffic --interface: frames the decoder cannot judge are counted, live (network namespaces)", .serialized)
struct UnjudgedTrafficLiveTests {
    /// Sends raw Ethernet frames on `link` inside namespace `namespace` through a packet socket, `rounds` times.
    func send(_ frames: [[UInt8]], on link: String, in namespace: String, rounds: Int) throws {
        let list = frames.map { "bytes.fromhex('\($0.map { String(format: "%02x", $0) }.joined())')" }.joined(separator: ", ")
        let script = """
            import socket, time
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind(('\(link)', 0))
            for _ in range(\(rounds)):
                for frame in [\(list)]:
                    s.send(frame)
                time.sleep(0.3)
            """
        let (status, _) = try runProgram("/usr/sbin/ip", ["netns", "exec", namespace, "/usr/bin/python3", "-c", script], limit: 30)
        #expect(status == 0)
    }

    @Test func nineTagsToAnOutsideAddressFailAndACutHeaderIsCounted() throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("live.json")
        // A TEST-NET-3 destination behind nine 802.1Q tags (the filter cannot see behind tags, so the
        // decoder must), and an IPv4 header that ends after its source address (the filter reads past it).
        let tags = (0..<9).map { (UInt16(0x8100), UInt16($0 + 1)) }
        let leak = B.ethernet(
            etherType: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "203.0.113.7", proto: 17, payload: B.udp(src: 40000, dst: 9999)), tags: tags)
        let cut = Array(B.ethernet(
            etherType: 0x0800, payload: B.ipv4(src: "10.1.1.1", dst: "10.2.2.2", proto: 6, payload: B.tcp(src: 1, dst: 22))).prefix(14 + 16))
        // Sent for a few seconds so frames arrive once the capture is active, however long start-up takes.
        let status = try TrafficLiveTests.watch(writingTo: output, in: directory) { pair in
            try send([leak, cut], on: pair.leftLink, in: pair.left, rounds: 12)
        }
        #expect(status == 1)
        let report = try readReport(output)
        let flows = egressFlows(report)
        #expect(flows.contains { $0["dst"]?.stringValue == "203.0.113.7" && $0["dst_port"]?.intValue == 9999 })
        let finding = report["findings"]?.arrayValue?.first
        #expect(finding?["status"]?.stringValue == "fail")
        let counts = finding?["evidence"]?.arrayValue?.last?["data"]?["packets_unjudged"]
        #expect((counts?["ip_header_truncated"]?.intValue ?? 0) >= 1)
        #expect(finding?["status_detail"]?.stringValue?.contains("could not be judged") == true)
    }
}
