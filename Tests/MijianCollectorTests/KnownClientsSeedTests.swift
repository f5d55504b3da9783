import Foundation
import MijianCollector
import MijianCore
import Testing

@Suite("Known clients seeded from the stored reports in one read")
struct KnownClientsSeedTests {
    @Test func seedsTheAddressesOfTheNewestAcceptedReportsOverHTTP() async throws {
        let (collector, _) = try TestUnit.collector()
        let now = Date()
        func day(_ offset: Double) -> Date { now.addingTimeInterval(offset * 86_400) }
        var machines: [TestMachine] = []
        for index in 0..<4 {
            let machine = try TestMachine(index: 950 + index, hostname: "ws-seed-\(index)", assetID: "JSJ-9\(index)", classification: .confidential)
            _ = try Enrolment.approve(requestBytes: try machine.enrolmentRequest(at: day(-10)), note: "test", store: collector.store, now: day(-10))
            machines.append(machine)
        }
        func submit(_ machine: TestMachine, at offset: Double, source: String) async throws -> [UInt8] {
            let envelope = try machine.next(findings: machine.cleanFindings(at: day(offset)), issuedAt: day(offset))
            _ = try await collector.submit(envelope, source: source, receivedAt: day(offset)).get()
            return envelope
        }
        // Oldest first: 192.0.2.1; machine 1 from 192.0.2.20, then from 192.0.2.2; 192.0.2.3.
        _ = try await submit(machines[0], at: -5, source: "http 192.0.2.1:40001")
        _ = try await submit(machines[1], at: -4, source: "http 192.0.2.20:40002")
        _ = try await submit(machines[1], at: -3, source: "http 192.0.2.2:40003")
        let last = try await submit(machines[2], at: -2, source: "http 192.0.2.3:40004")
        // Not over HTTP: no address to know.
        _ = try await submit(machines[3], at: -1, source: "spool /var/spool/mijian")
        // The same report again (it does not advance the chain), from an address never accepted.
        _ = await collector.submit(last, source: "http 198.51.100.9:1", receivedAt: day(-0.5))

        let all = KnownClients(capacity: 100)
        #expect(try all.seed(from: collector.store) == 4)
        #expect(all.contains("192.0.2.1") && all.contains("192.0.2.20") && all.contains("192.0.2.2") && all.contains("192.0.2.3"))
        #expect(!all.contains("198.51.100.9"))
        #expect(!all.contains("spool /var/spool/mijian"))

        // With room for two, the clients whose reports came last are kept.
        let two = KnownClients(capacity: 2)
        #expect(try two.seed(from: collector.store) == 2)
        #expect(two.contains("192.0.2.3") && two.contains("192.0.2.2") && !two.contains("192.0.2.20"))

        // Only each machine's newest reports count: with one per machine, machine 1's older address is not read.
        let newest = KnownClients(capacity: 100)
        #expect(try newest.seed(from: collector.store, reportsPerHost: 1) == 3)
        #expect(!newest.contains("192.0.2.20"))
    }
}
