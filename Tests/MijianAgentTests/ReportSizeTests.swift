import Foundation
import MijianAgent
import MijianCore
import MijianEvidence
import Testing

@Suite("A burst of events is sealed into reports the collector takes")
struct ReportSizeTests {
    @Test func eventsPastOneMebibyteGoIntoFurtherReportsInOrder() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        await rig.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        // 4,000 events of about 1 KiB: some 4 MiB of events, which one report would carry in a 5.5 MiB envelope.
        let start = Date(timeIntervalSince1970: 1_780_000_000)
        for index in 0..<4000 {
            let event = Event(
                type: "usb.attach", observedAt: start.addingTimeInterval(Double(index)),
                data: ["index": .integer(index), "serial": .string(String(repeating: "s", count: 1000))])
            await rig.sink.record(event, failing: false)
        }
        let summary = try #require(await rig.sealer.seal(reason: "burst"))
        let reports = try rig.spooled()
        #expect(reports.count >= 4, "\(reports.count) reports")
        #expect(summary.seq == reports.last?.entry.seq)
        var indices: [Int] = []
        var sizes: [Int] = []
        for report in reports {
            let bytes = try rig.spool.read(report.entry).count
            sizes.append(bytes)
            // The collector's default body limit.
            #expect(bytes <= 4 << 20, "an envelope of \(bytes) bytes")
            let events = report.payload["events"]?.arrayValue ?? []
            #expect(!events.isEmpty)
            indices += events.compactMap { $0["data"]?["index"]?.intValue.map(Int.init) }
        }
        print("burst of 4,000 events: \(reports.count) reports, envelopes of \(sizes) bytes")
        // Every event once, in the order recorded, and the chain unbroken.
        #expect(indices == Array(0..<4000))
        #expect(reports.map(\.entry.seq) == Array(0..<Int64(reports.count)))
    }
}
