import Foundation
import Logging
import MijianCore
import MijianHost
import MijianTestSupport
import Testing

@testable import MijianAgent

@Suite("The traffic watch tells time by the service's clock")
struct TrafficClockTests {
    /// A capture on loopback opens its stretch at the time the service's clock gives, not the wall clock's.
    @Test func aCaptureWindowStartsAtTheServicesTime() async throws {
        let fixed = Date(timeIntervalSince1970: 1_000_000_000)
        let watch = LinkWatch(link: "lo", bufferBytes: 1 << 20)
        var logger = Logger(label: "traffic-clock-test")
        logger.logLevel = .critical
        let readiness = try ReadinessLoop()
        watch.start(policy: try TestSupport.defaultPolicy(), sink: EventSink(), logger: logger, readiness: readiness, now: { fixed })
        let opened = await until { watch.window.value != nil }
        await watch.finish()
        await readiness.stop()
        #expect(opened, "the capture on lo did not open: \(watch.statistics)")
        #expect(watch.window.value?.startedAt == fixed)
    }
}
