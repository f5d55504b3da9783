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

    func stop() async { continuation.finish() }
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

    /// Runs `body` against a real-time guard: nil when it did not return within `seconds` (it is
    /// cancelled then). The guard is generous; the watch's own time runs on a manual clock.
    static func within<T: Sendable>(seconds: Double = 30, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// What a watch said, gathered from its `emit`.
    final class Said: Sendable {
        let notes = Mutex<[String]>([])
        let types = Mutex<[String]>([])

        func take(_ output: USBWatchEvent) {
            switch output {
            case .events(let events): types.withLock { $0 += events.map(\.type) }
            case .note(let note): notes.withLock { $0.append("\(note)") }
            }
        }
    }

    /// A udev check that says udevd is gone once `lost` is set.
    final class Udevd: Sendable {
        let lost = Mutex(false)
        var check: USBWatch.UdevCheck {
            USBWatch.UdevCheck(interval: .seconds(10)) { [self] in lost.withLock { $0 } ? "udevd stopped (test)" : nil }
        }
    }

    @Test func theDeadlineHoldsAfterFallingBackFromUdevToTheKernel() async throws {
        let opened = Opened()
        let watch = USBWatch(udevCheck: Udevd().check) { source in
            opened.sources.withLock { $0.append(source) }
            return ScriptedMonitor(source: source, script: source == .udev ? [.sourceLost("udevd stopped")] : [])
        }
        let clock = ManualClock()
        let said = Said()
        let run = Task {
            try await Self.within {
                try await watch.run(control: try Self.control(), source: .udev, deadline: clock.now.advanced(by: .seconds(30)), clock: clock) { said.take($0) }
                return clock.elapsed
            }
        }
        // Fallen back: the kernel's monitor is open, and its deadline is the one asked for.
        #expect(await until { opened.sources.withLock { $0 } == [.udev, .kernel] })
        #expect(await clock.waitForSleeper(until: .seconds(30)))
        // On the kernel's events, udevd is not looked for: the deadline is the only sleeper.
        #expect(clock.sleeping == 1)
        clock.advance(by: .seconds(30))
        let stoppedAt = try await run.value
        #expect(stoppedAt == .seconds(30), "the watch ran on past its deadline after the fall back")
        #expect(said.notes.withLock { $0 }.contains { $0.hasPrefix("sourceLost") }, "\(said.notes.withLock { $0 })")
        // The coldplug walk judged the stick; after the switch, a walk again.
        let types = said.types.withLock { $0 }
        #expect(types.contains("usb.decision") && types.contains("usb.resync"), "\(types)")
    }

    @Test func aSilentUdevThatStoppedAnsweringIsFoundAndLeftForTheKernelWithinItsDeadline() async throws {
        let opened = Opened()
        let udevd = Udevd()
        // udevd killed: its socket says nothing, only the check can tell.
        let watch = USBWatch(udevCheck: udevd.check) { source in
            opened.sources.withLock { $0.append(source) }
            return ScriptedMonitor(source: source, script: [])
        }
        let clock = ManualClock()
        let said = Said()
        let run = Task {
            try await Self.within {
                try await watch.run(control: try Self.control(), source: .udev, deadline: clock.now.advanced(by: .seconds(25)), clock: clock) { said.take($0) }
                return clock.elapsed
            }
        }
        // The check at 10 s finds udevd answering: the watch stays on udev.
        #expect(await clock.waitForSleeper(until: .seconds(10)))
        clock.advance(by: .seconds(10))
        #expect(await clock.waitForSleeper(until: .seconds(20)))
        #expect(opened.sources.withLock { $0 } == [.udev])
        // At 20 s it does not answer: the kernel's uevents from now on, and the deadline still holds.
        udevd.lost.withLock { $0 = true }
        clock.advance(by: .seconds(10))
        #expect(await until { opened.sources.withLock { $0 } == [.udev, .kernel] })
        #expect(await clock.waitForSleeper(until: .seconds(25)))
        clock.advance(by: .seconds(5))
        let stoppedAt = try await run.value
        #expect(stoppedAt == .seconds(25))
        #expect(said.notes.withLock { $0 }.contains { $0.contains("udevd stopped (test)") }, "\(said.notes.withLock { $0 })")
    }

    /// Policies handed to the watch one by one, as a reload would; then nothing until cancelled.
    actor PolicyFeed {
        private var pending: [Policy]
        init(_ policies: [Policy]) { pending = policies }
        func next() async -> Policy? {
            if !pending.isEmpty { return pending.removeFirst() }
            try? await Task.sleep(for: .seconds(3600))
            return nil
        }
    }

    @Test func aNewPolicyIsJudgedAgainWhenItComesAndTheSameOneIsNot() async throws {
        let watch = USBWatch { source in ScriptedMonitor(source: source, script: []) }
        let feed = PolicyFeed([
            try TestSupport.defaultPolicy(), try TestSupport.policy("id: other\nversion: \"2\"\nprofile: classified\nusb: {mode: audit}\n"),
        ])
        let clock = ManualClock()
        let reloaded = Mutex<[String]>([])
        let run = Task {
            try await Self.within {
                try await watch.run(
                    control: try Self.control(), source: .kernel, deadline: clock.now.advanced(by: .seconds(1)), clock: clock, policyChanges: { await feed.next() }
                ) { output in
                    if case .note(.policyReloaded(let policy)) = output { reloaded.withLock { $0.append(policy.id) } }
                }
                return true
            }
        }
        // No time passes on the watch's clock: a new policy is an event, not a tick.
        #expect(await until { reloaded.withLock { $0 } == ["other"] })
        #expect(clock.elapsed == .zero)
        #expect(await clock.waitForSleeper(until: .seconds(1)))
        clock.advance(by: .seconds(1))
        #expect(try await run.value == true)
        // The policy in force when the watch started was not judged again.
        #expect(reloaded.withLock { $0 } == ["other"])
    }
}
