import Foundation
import MijianCore
import MijianDevices
import MijianHost
import MijianTestSupport
import Testing

/// Each decision says where its time went: the phases of `timing_us` add up to `latency_us`, every
/// sysfs write carries its own time, and a uevent that waited behind the watch's output says so.
@Suite("Where a USB decision's time goes")
struct DecisionTimingTests {
    static func member(_ json: JSONValue, _ key: String) -> JSONValue? {
        guard case .object(let members) = json else { return nil }
        return members.first { $0.0 == key }?.1
    }

    static func micros(_ json: JSONValue?) -> Int64? {
        if case .int(let value)? = json { return value }
        return nil
    }

    static func phases(_ event: Event) -> [String: Int64] {
        guard case .object(let members)? = member(event.data, "timing_us") else { return [:] }
        var out: [String: Int64] = [:]
        for case (let name, .int(let value)) in members { out[name] = value }
        return out
    }

    @Test func thePhasesAddUpToTheLatencyAndEveryWriteIsTimed() throws {
        let fixture = try SysfsFixture()
        let control = try USBControlTests.control(fixture)
        _ = control.start()
        let received = Monotonic.now()
        let queue = QueueTime(handoff: 2_000_000, behindDecisions: 0, behindOutput: 5_000_000)
        var decisions: [Event] = []
        for event in try fixture.plug(port: 3, vendor: "46f4", product: "0001", serial: "NOT-IN-LEDGER", interfaces: USBControlTests.stick) {
            decisions += control.handle(event, receivedAt: received &- 7_000_000, source: .replay, queue: queue).filter { $0.type == "usb.decision" }
        }
        #expect(decisions.count == 2)
        for decision in decisions {
            let phases = Self.phases(decision)
            #expect(Set(phases.keys) == Set(DecisionTiming.Phase.allCases.map(\.rawValue)), "\(phases.keys.sorted())")
            #expect(phases["handoff"] == 2000 && phases["behind_output"] == 5000, "the queue handed in: \(phases)")
            let latency = try #require(Self.micros(Self.member(decision.data, "latency_us")))
            #expect(latency >= 7000, "the 7 ms before handle are part of the latency: \(latency)")
            // Each phase is truncated to whole microseconds, so the sum may fall short by one per phase.
            let sum = phases.values.reduce(0, +)
            #expect(sum <= latency && sum >= latency - Int64(phases.count), "phases \(sum) µs against latency \(latency) µs: \(phases)")
        }
        let interface = decisions[0]
        #expect(Self.phases(interface)["read_interfaces"].map { $0 >= 0 } == true)
        guard case .array(let writes)? = Self.member(interface.data, "writes") else {
            Issue.record("no writes")
            return
        }
        #expect(writes.allSatisfy { Self.micros(Self.member($0, "us")) != nil }, "\(writes)")
        let whole = decisions[1]
        guard case .array(let wholeWrites)? = Self.member(whole.data, "writes"), let deauthorise = wholeWrites.first else {
            Issue.record("the device was not de-authorised")
            return
        }
        let spent = try #require(Self.micros(Self.member(deauthorise, "us")), "the write carries its time: \(deauthorise)")
        #expect(Self.phases(whole)["write_device_authorized"] == spent)
    }

    /// A monitor the test feeds by hand.
    final class HandFedMonitor: UEventMonitor {
        let source: EventSource = .kernel
        let bufferNote: String? = nil
        let messages: AsyncStream<MonitorMessage>
        private let continuation: AsyncStream<MonitorMessage>.Continuation

        init() { (messages, continuation) = AsyncStream.makeStream(of: MonitorMessage.self) }

        func send(_ message: MonitorMessage) { continuation.yield(message) }

        func start() {}

        func stop() async { continuation.finish() }
    }

    @Test func aUeventThatWaitedBehindTheOutputOfAnEarlierOneSaysSo() async throws {
        let fixture = try SysfsFixture()
        let control = try USBControlTests.control(fixture)
        let monitor = HandFedMonitor()
        let watch = USBWatch { _ in monitor }
        let clock = ContinuousClock()
        var decisions: [Event] = []
        var outputs = 0
        try await watch.run(control: control, source: .kernel, deadline: clock.now.advanced(by: .milliseconds(800)), clock: clock) { output in
            guard case .events(let events) = output else { return }
            outputs += 1
            decisions += events.filter { $0.type == "usb.decision" }
            if outputs == 1 {
                // While the owner takes the coldplug's output (40 ms: printing, sealing a report),
                // a stick is plugged and its uevents reach the socket.
                for event in try fixture.plug(port: 4, vendor: "46f4", product: "0001", serial: "NOT-IN-LEDGER", interfaces: USBControlTests.stick) {
                    monitor.send(.event(event, receivedAt: Monotonic.now()))
                }
                try await Task.sleep(for: .milliseconds(40))
            }
        }
        #expect(decisions.filter { Self.member($0.data, "source") == .string("kernel") }.count == 2, "\(decisions.map(\.type))")
        guard let interface = decisions.first(where: { Self.member($0.data, "scope") == .string("interface") }) else {
            Issue.record("no decision on the interface")
            return
        }
        let phases = Self.phases(interface)
        // At least the 40 ms of the owner's sleep (more when a busy machine resumes it late: that
        // is still time the uevent waited behind the output).
        #expect(phases["behind_output"].map { $0 >= 39_000 } == true, "\(phases)")
        let latency = try #require(Self.micros(Self.member(interface.data, "latency_us")))
        let waited = (phases["handoff"] ?? 0) + (phases["behind_decisions"] ?? 0) + (phases["behind_output"] ?? 0)
        #expect(waited <= latency, "waited \(waited) µs of a latency of \(latency) µs: \(phases)")
        #expect(Self.micros(Self.member(interface.data, "cpu_us")) != nil)
    }
}
