import Foundation
import MijianAgent
import MijianCore
import Synchronization
import Testing

/// The sealer's times come from the clock it is given, never from the machine's: a report's issue
/// time, its window and the agent's uptime follow a manual clock, with no sleep.
@Suite("the sealer takes its wall clock as a parameter")
struct SealerClockTests {
    final class ManualTime: Sendable {
        let value = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        func now() -> Date { value.withLock { $0 } }
        func advance(_ seconds: TimeInterval) { value.withLock { $0 = $0.addingTimeInterval(seconds) } }
    }

    @Test func issueTimeWindowAndUptimeFollowTheGivenClock() async throws {
        let time = ManualTime()
        let rig = try SealerRig(now: { time.now() })
        defer { try? FileManager.default.removeItem(at: rig.state) }
        try await rig.sealer.start()
        time.advance(90)
        #expect(await rig.sealer.seal(reason: "first") != nil)
        time.advance(3600)
        #expect(await rig.sealer.seal(reason: "second") != nil)
        let reports = try rig.spooled()
        #expect(reports.count == 2)
        let first = try #require(reports.first?.payload)
        let second = try #require(reports.last?.payload)
        #expect(first["issued_at"]?.stringValue == "2027-01-15T08:01:30Z")
        #expect(first["window"]?["start"]?.stringValue == "2027-01-15T08:00:00Z")
        #expect(second["window"]?["start"]?.stringValue == "2027-01-15T08:01:30Z")
        #expect(second["issued_at"]?.stringValue == "2027-01-15T09:01:30Z")
        let health = try #require(healthFinding(second))
        let uptime = health["evidence"]?.arrayValue?.compactMap { $0["data"]?["uptime_seconds"]?.intValue }.first
        #expect(uptime == 3690)
    }
}
