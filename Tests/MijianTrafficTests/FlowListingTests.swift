import Foundation
import MijianCore
import Testing

@testable import MijianTraffic

@Suite("Flow table order and listing")
struct FlowListingTests {
    static let base: Int64 = 1_795_000_000 * 1_000_000_000

    func key(_ src: String, _ dst: String, proto: UInt8 = 6, port: Int32 = 443) throws -> FlowKey {
        FlowKey(src: try #require(IPAddress(src)), dst: try #require(IPAddress(dst)), proto: proto, dstPort: port)
    }

    @Test func packetsOutOfTimeOrderStillListEarliestFirst() throws {
        var table = FlowTable(capacity: 10)
        let late = try key("10.1.1.1", "203.0.113.5")
        let early = try key("10.1.1.2", "203.0.113.5")
        let tie = try key("10.1.1.0", "203.0.113.5")
        table.add(late, bytes: 40, at: Self.base + 3_000, names: [])
        table.add(early, bytes: 40, at: Self.base + 2_000, names: [])
        table.add(tie, bytes: 40, at: Self.base + 3_000, names: [])
        // A later packet of `late` that was captured before everything else moves its first-seen back.
        table.add(late, bytes: 60, at: Self.base + 1_000, names: [])
        #expect(table.sorted.map(\.key) == [late, early, tie])
        #expect(table[late] == FlowStats(packets: 2, bytes: 100, firstSeen: Self.base + 1_000, lastSeen: Self.base + 3_000, dnsNames: []))
        #expect(table[try key("10.9.9.9", "203.0.113.5")] == nil)
    }

    @Test func timestampsMatchTheGeneralFormatterAcrossDatesAndFractions() {
        let calendarEdges: [Int64] = [0, 951_782_400, 1_709_164_800, 1_795_000_000, 4_102_444_799, 9_000_000_000]
        for seconds in calendarEdges {
            for nanos: Int64 in [0, 1_000_000, 999_999_999, 123_456_789] {
                let value = seconds * 1_000_000_000 + nanos
                // Whole seconds from the general formatter (exact), milliseconds truncated, as reports write them.
                let whole = RFC3339.string(from: Date(timeIntervalSince1970: Double(seconds)), fractional: false)
                let millis = String(nanos / 1_000_000)
                let expected = whole.dropLast() + "." + String(repeating: "0", count: 3 - millis.count) + millis + "Z"
                #expect(EgressFlow.timestamp(value) == expected, "\(value)")
            }
        }
    }

    @Test func listingAlignsEveryColumnAndShowsEveryField() throws {
        let flows = [
            EgressFlow(
                key: try key("10.1.1.1", "203.0.113.5", proto: 17, port: 53),
                stats: FlowStats(packets: 12, bytes: 1_234, firstSeen: Self.base, lastSeen: Self.base + 5_000_000, dnsNames: ["a.example.com", "b.example.net"])),
            EgressFlow(
                key: try key("fd00::1", "2001:db8::9", proto: 58, port: -1),
                stats: FlowStats(packets: 1, bytes: 48, firstSeen: Self.base + 1, lastSeen: Self.base + 1, dnsNames: [])),
            EgressFlow(
                key: try key("198.51.100.7", "10.0.0.1", proto: 132, port: 9),
                stats: FlowStats(packets: 7_000_000, bytes: 9_000_000_000, firstSeen: Self.base + 2, lastSeen: Self.base + 2, dnsNames: [])),
        ]
        let text = String(decoding: FlowListing.text(flows), as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count == 5)
        #expect(lines.last == "")
        #expect(lines[0].hasPrefix("SRC           DST          PROTO         PORT  PACKETS  BYTES       FIRST SEEN"))
        #expect(lines[1] == "10.1.1.1      203.0.113.5  udp           53    12       1234        2026-11-18T11:06:40.000Z  2026-11-18T11:06:40.005Z  a.example.com,b.example.net")
        #expect(lines[2] == "fd00::1       2001:db8::9  icmpv6        -     1        48          2026-11-18T11:06:40.000Z  2026-11-18T11:06:40.000Z  ")
        #expect(lines[3].hasPrefix("198.51.100.7  10.0.0.1     ip-proto-132  9     7000000  9000000000  "))
        // Every column starts at the same offset on every line.
        for heading in ["DST", "PROTO", "PORT", "PACKETS", "BYTES", "FIRST SEEN", "LAST SEEN", "DNS NAMES"] {
            let column = try #require(lines[0].range(of: heading)).lowerBound.utf16Offset(in: lines[0])
            for line in lines[1...3] {
                let before = line.utf8.prefix(column)
                #expect(before.last == 0x20, "\(heading) in \(line)")
                #expect(line.utf8.dropFirst(column).first != 0x20, "\(heading) in \(line)")
            }
        }
        #expect(FlowListing.text([]).isEmpty)
    }

    struct Stop: Error {}

    @Test func aLongListingComesInPiecesThatAddUpAndAFailedPieceStopsIt() throws {
        let flows = (0..<3_000).map { index in
            EgressFlow(
                key: FlowKey(src: .v4(0x0A00_0000 | UInt32(index)), dst: .v4(0xCB00_7105), proto: 6, dstPort: Int32(index % 70_000)),
                stats: FlowStats(
                    packets: index + 1, bytes: index * 1_500, firstSeen: Self.base + Int64(index), lastSeen: Self.base + Int64(index) * 1_000_000,
                    dnsNames: index % 7 == 0 ? ["n\(index).example.com"] : []))
        }
        let whole = FlowListing.text(flows)
        var pieces: [[UInt8]] = []
        FlowListing.write(flows, chunk: 1_024) { pieces.append(Array($0)) }
        #expect(pieces.count > 100)
        #expect(pieces.allSatisfy { $0.count <= 1_024 + 512 })
        #expect(Array(pieces.joined()) == whole)
        #expect(whole.split(separator: 0x0A).count == flows.count + 1)
        var emitted = 0
        #expect(throws: Stop.self) {
            try FlowListing.write(flows, chunk: 1_024) { (_: UnsafeRawBufferPointer) throws(Stop) in
                emitted += 1
                if emitted == 2 { throw Stop() }
            }
        }
        #expect(emitted == 2)
    }
}
