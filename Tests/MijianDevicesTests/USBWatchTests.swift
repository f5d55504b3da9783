import Foundation
import MijianCore
import MijianDevices
import MijianHost
import MijianTestSupport
import Synchronization
import Testing

/// A monitor that says what the test wants: udev lost at once, or nothing until stopped.
final class ScriptedMonitor: UEventMonitor {
    let source: EventSource
    let bufferNote: String? = nil
    let messages: AsyncStream<MonitorMessage>
    private let continuation: AsyncStream<MonitorMessage>.Continuation
    private let script: [MonitorMessage]

    init(source: EventSource, script: [MonitorMessage]) {
        self.source = source
        self.script = script
        (messages, continuation) = AsyncStream.makeStream(of: MonitorMessage.self)
    }

    func start() { for message in script { continuation.yield(message) } }

    func stop() { continuation.finish() }
}

@Suite("The USB watch's supervision loop (mijian run and mijian devices watch)")
struct USBWatchTests {
    static let fixture = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/usb-stick-unregistered").path

    /// The sources the watch opened, in order.
    final class Opened: Sendable {
        let sources = Mutex<[EventSource]>([])
    }

    static func control() throws -> USBControl {
        USBControl(.init(root: HostRoot(path: fixture), policy: try TestSupport.defaultPolicy(), enforce: false, knowledge: .none))
    }

    @Test func theDeadlineHoldsAfterFallingBackFromUdevToTheKernel() async throws {
        let opened = Opened()
        let watch = USBWatch(pollInterval: .milliseconds(20)) { source in
            opened.sources.withLock { $0.append(source) }
            return ScriptedMonitor(source: source, script: source == .udev ? [.sourceLost("udevd stopped")] : [])
        }
        let clock = ContinuousClock()
        let started = clock.now
        var notes: [String] = []
        var types: [String] = []
        try await watch.run(control: try Self.control(), source: .udev, deadline: started.advanced(by: .milliseconds(300)), clock: clock) { output in
            switch output {
            case .events(let events): types += events.map(\.type)
            case .note(let note): notes.append("\(note)")
            }
        }
        let elapsed = clock.now - started
        #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(2), "stopped after \(elapsed)")
        #expect(opened.sources.withLock { $0 } == [.udev, .kernel])
        #expect(notes.contains { $0.hasPrefix("sourceLost") }, "\(notes)")
        // The coldplug walk judged the stick; after the switch, a walk again.
        #expect(types.contains("usb.decision") && types.contains("usb.resync"), "\(types)")
    }

    @Test func aChangedPolicyIsJudgedAgainAtTheNextTick() async throws {
        let watch = USBWatch(pollInterval: .milliseconds(10)) { source in ScriptedMonitor(source: source, script: []) }
        let policies = Mutex<[Policy]>([try TestSupport.defaultPolicy(), try TestSupport.policy("id: other\nversion: \"2\"\nprofile: classified\nusb: {mode: audit}\n")])
        let clock = ContinuousClock()
        var reloaded: [String] = []
        try await watch.run(
            control: try Self.control(), source: .kernel, deadline: clock.now.advanced(by: .milliseconds(200)), clock: clock,
            policy: { policies.withLock { $0.count > 1 ? $0.removeFirst() : $0[0] } }
        ) { output in
            if case .note(.policyReloaded(let policy)) = output { reloaded.append(policy.id) }
        }
        #expect(reloaded == ["other"])
    }
}
