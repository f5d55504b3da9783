import Foundation
import Logging
import MijianAgent
import MijianCore
import MijianTestSupport
import Synchronization
import Testing

/// A transport that is never there, noting when (on the test's clock) each attempt came.
final class AbsentCollector: ReportTransport {
    let mode = "https"
    let clock: ManualClock
    let attempts = Mutex<[Duration]>([])

    init(clock: ManualClock) { self.clock = clock }

    func deliver(_ entry: SpoolEntry, bytes: [UInt8]) async -> DeliveryOutcome {
        let at = clock.elapsed
        attempts.withLock { $0.append(at) }
        return .retry("connection refused: nothing listens at that address and port (errno 111)")
    }

    func shutdown() async {}
}

/// The service's timing rules on a manual clock, in process: no real second passes.
@Suite("Intervals, debounce, back-off and watchdog on a manual clock")
struct TimingTests {
    static var quiet: Logger {
        var logger = Logger(label: "timing-test")
        logger.logLevel = .critical
        return logger
    }

    @Test func deliveryBacksOffOneTwoFourSecondsWithSeededJitterAndASealDoesNotCutItShort() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        try #require(await rig.sealer.seal(reason: "test") != nil)
        let clock = ManualClock()
        let collector = AbsentCollector(clock: clock)
        let wakeup = Wakeup<WakeReason>.service()
        let service = DeliveryService(
            sealer: rig.sealer, transport: collector, wakeup: wakeup, logger: Self.quiet, clock: clock, random: SeededRandom(seed: 23))
        let running = Task { try await service.run() }
        defer { running.cancel() }
        for step in 1...4 {
            #expect(await clock.waitForSleepers(1), "attempt \(step) never waited")
            // A report sealed meanwhile wakes the loop, which goes back to sleep until the back-off ends.
            if step == 2 {
                wakeup.fire(.reportSealed)
                #expect(await clock.waitForSleepers(1))
            }
            clock.advanceToNextDeadline()
        }
        #expect(await clock.waitForSleepers(1))
        let attempts = collector.attempts.withLock { $0 }
        #expect(attempts.count == 5, "\(attempts)")
        var expected = Backoff()
        var random = SeededRandom(seed: 23)
        var at = Duration.zero
        for (index, attempt) in attempts.enumerated() {
            #expect(attempt == at, "attempt \(index) at \(attempt), not \(at)")
            let wait = expected.next(using: &random)
            // The documented steps: between half and all of 1 s, 2 s, 4 s, 8 s.
            let ceiling = Duration.seconds(1 << index)
            #expect(wait >= ceiling / 2 && wait <= ceiling, "wait \(index) is \(wait)")
            at += wait
        }
    }

    @Test func reportsAreSealedAtTheIntervalAndAtOnceOnAFailingEvent() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        let clock = ManualClock()
        let sealNow = Wakeup<WakeReason>.service()
        let service = SealService(sealer: rig.sealer, sealNow: sealNow, interval: .seconds(900), logger: Self.quiet, clock: clock)
        let running = Task { try await service.run() }
        defer { running.cancel() }
        // Before the start audit nothing is sealed, whatever else is asked.
        sealNow.fire(.failingEvent("usb.error"))
        try await Task.sleep(for: .milliseconds(50))
        #expect(await rig.sealer.sealedCount == 0)
        sealNow.fire(.startAuditDone)
        #expect(await clock.waitForSleeper(until: .seconds(900)))
        #expect(await rig.sealer.sealedCount == 1)
        clock.advance(by: .seconds(899))
        try await Task.sleep(for: .milliseconds(20))
        #expect(await rig.sealer.sealedCount == 1, "nothing before the interval")
        clock.advance(by: .seconds(1))
        #expect(await clock.waitForSleeper(until: .seconds(1800)))
        #expect(await rig.sealer.sealedCount == 2)
        clock.advance(by: .seconds(100))
        sealNow.fire(.failingEvent("usb.decision"))
        // Sealed at once, and the next interval counts from then.
        #expect(await clock.waitForSleeper(until: .seconds(1900)))
        #expect(await rig.sealer.sealedCount == 3, "a failing event seals at once")
        #expect(try rig.spooled().count == 3)
    }

    @Test func aStopBeforeTheStartAuditSealsOneReportThatSaysSoAndFails() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        let sealNow = Wakeup<WakeReason>.service()
        let service = SealService(sealer: rig.sealer, sealNow: sealNow, interval: .seconds(900), logger: Self.quiet, clock: ManualClock())
        let running = Task { try await service.run() }
        sealNow.fire(.failingEvent("usb.error"))
        running.cancel()
        try await running.value
        let reports = try rig.spooled()
        #expect(reports.count == 1)
        #expect(reports.first?.entry.failing == true)
        let problems = healthFinding(try #require(reports.first?.payload))?["evidence"]?.arrayValue?.first?["data"]?["problems"]?.arrayValue ?? []
        #expect(problems.contains { $0["kind"]?.stringValue == "audit.none" }, "\(problems)")
    }

    @Test func aBurstOfNetworkChangesMakesOneAuditAfterTheDebounce() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        let clock = ManualClock()
        let audits = Atomic<Int>(0)
        let wakeup = Wakeup<WakeReason>.service()
        let sealNow = Wakeup<WakeReason>.service()
        let service = AuditService(
            sealer: rig.sealer, policy: PolicyHolder(rig.policy, path: nil), host: rig.host, wakeup: wakeup, sealNow: sealNow,
            interval: .seconds(3600), debounce: .seconds(1), logger: Self.quiet, clock: clock,
            observe: { _, _, _ in
                audits.add(1, ordering: .relaxed)
                return []
            })
        let running = Task { try await service.run() }
        defer { running.cancel() }
        #expect(await sealNow.wait(timeout: .seconds(10)) == .startAuditDone)
        #expect(audits.load(ordering: .relaxed) == 1)
        #expect(await clock.waitForSleeper(until: .seconds(3600)))
        // Five changes 200 ms apart: each restarts the quiet second.
        for step in 0..<5 {
            wakeup.fire(.networkChange)
            #expect(await clock.waitForSleeper(until: .milliseconds(200 * step + 1000)))
            clock.advance(by: .milliseconds(200))
        }
        #expect(audits.load(ordering: .relaxed) == 1, "no audit inside the burst")
        clock.advance(by: .milliseconds(800))
        // The audit after the burst; then the hour counts from it.
        #expect(await clock.waitForSleeper(until: .milliseconds(1800) + .seconds(3600)))
        #expect(audits.load(ordering: .relaxed) == 2, "one audit for the burst")
        // And the hourly audit.
        clock.advance(by: .seconds(3600))
        #expect(await until { audits.load(ordering: .relaxed) == 3 })
        #expect(await clock.waitForSleeper(until: .milliseconds(1800) + .seconds(7200)))
    }

    @Test func theWatchdogPingsEveryHalfPeriod() async throws {
        let rig = try SealerRig()
        let clock = ManualClock()
        let pings = Mutex<[Duration]>([])
        let service = WatchdogService(ping: { _ in pings.withLock { $0.append(clock.elapsed) } }, interval: .milliseconds(500), sealer: rig.sealer, clock: clock)
        let running = Task { try await service.run() }
        defer { running.cancel() }
        for _ in 0..<3 {
            #expect(await clock.waitForSleepers(1))
            clock.advanceToNextDeadline()
        }
        #expect(await clock.waitForSleepers(1))
        #expect(pings.withLock { $0 } == [.zero, .milliseconds(500), .milliseconds(1000), .milliseconds(1500)])
    }
}
