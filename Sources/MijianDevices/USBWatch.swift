import Foundation
import MijianCore
import MijianHost

/// A live stream of uevents: `DeviceMonitor`, or a stand-in in tests.
public protocol UEventMonitor: AnyObject, Sendable {
    /// Where the events come from.
    var source: EventSource { get }
    /// What became of the receive buffer's size, when it is not what was asked.
    var bufferNote: String? { get }
    /// The messages; the stream finishes after `stop()`.
    var messages: AsyncStream<MonitorMessage> { get }
    /// Starts reading.
    func start() throws(MijianError)
    /// Stops reading; the stream finishes.
    func stop() async
}

extension DeviceMonitor: UEventMonitor {}

/// What the watch tells the one running it, besides the events.
public enum USBWatchNote: Sendable {
    /// Watching from `source`; `bufferNote` when the receive buffer could not be raised.
    case watching(EventSource, bufferNote: String?)
    /// The socket overflowed (ENOBUFS); sysfs is walked again.
    case overflow
    /// udev went away; the kernel's uevents are read from now on.
    case sourceLost(String)
    /// A new policy: every present interface is judged again.
    case policyReloaded(Policy)
}

/// The supervision loop of a live USB watch, the one `mijian run` and `mijian devices watch`
/// both run: the coldplug walk, every uevent judged, a walk after an overflow, the switch from a
/// lost udev to the kernel's uevents (with a walk), a new judgement when a new policy comes, and
/// a deadline that holds whichever monitor is current. Every task it starts ends before it returns.
///
/// Nothing is polled but udevd itself: a killed udevd leaves its socket file behind and says
/// nothing, so while the monitor reads udev's events, `udevCheck` looks every `interval` (10 s)
/// whether it still answers. A new policy is an event (`policyChanges`), not a look at a value.
public struct USBWatch: Sendable {
    /// How a watch on udev finds out that udevd went away.
    public struct UdevCheck: Sendable {
        /// How often.
        public var interval: Duration
        /// nil while udevd answers, else why not.
        public var unavailableReason: @Sendable () -> String?

        /// Looks every `interval` with `unavailableReason`.
        public init(interval: Duration, unavailableReason: @escaping @Sendable () -> String?) {
            self.interval = interval
            self.unavailableReason = unavailableReason
        }

        /// `/run/udev/control` every 10 s.
        public static let live = UdevCheck(interval: .seconds(10)) { UdevDaemon.unavailableReason() }
    }

    /// Makes the monitor of a source.
    let makeMonitor: @Sendable (EventSource) throws -> any UEventMonitor
    /// How a lost udevd is noticed.
    public var udevCheck: UdevCheck

    /// A watch over USB `DeviceMonitor`s read on `readiness`, with a receive buffer of `receiveBufferSize` bytes.
    public init(readiness: ReadinessLoop, receiveBufferSize: Int = 8 << 20, udevCheck: UdevCheck = .live) {
        self.makeMonitor = { source in
            try DeviceMonitor(source: source, subsystems: ["usb"], receiveBufferSize: receiveBufferSize, readiness: readiness)
        }
        self.udevCheck = udevCheck
    }

    /// A watch over the monitors `makeMonitor` makes (a stand-in, in tests).
    public init(udevCheck: UdevCheck = .live, makeMonitor: @escaping @Sendable (EventSource) throws -> any UEventMonitor) {
        self.makeMonitor = makeMonitor
        self.udevCheck = udevCheck
    }

    private enum Input: Sendable {
        case message(MonitorMessage)
        case policy(Policy)
        case deadline
        case ended
    }

    /// Watches from `source` until cancelled, `deadline` (on `clock`), or a failure (thrown).
    /// `policyChanges` waits for the next policy (nil: no more, or cancelled); one with another
    /// digest than the policy judged by is judged again, enforcing when `enforce` says so. Events
    /// and notes go to `emit` in the order they happen.
    public func run<C: Clock>(
        control: USBControl, source: EventSource, deadline: C.Instant? = nil, clock: C = ContinuousClock(),
        policyChanges: (@Sendable () async -> Policy?)? = nil, enforce: @escaping @Sendable (Policy) -> Bool = { $0.usbMode == .enforce },
        emit: (USBWatchEvent) async throws -> Void
    ) async throws where C.Duration == Duration {
        var monitor = try makeMonitor(source)
        try await emit(.note(.watching(monitor.source, bufferNote: monitor.bufferNote)))
        var digest = control.configuration.policy.sha256
        var first = true
        // What the loop did lately, so that each decision says what its uevent waited behind.
        var busy = BusyLog()
        func judged(_ work: () -> [Event]) -> [Event] {
            let started = Monotonic.now()
            defer { busy.note(.decisions, from: started, to: Monotonic.now()) }
            return work()
        }
        func output(_ item: USBWatchEvent) async throws {
            let started = Monotonic.now()
            defer { busy.note(.output, from: started, to: Monotonic.now()) }
            try await emit(item)
        }
        let check = udevCheck
        while !Task.isCancelled {
            let (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
            let watching = monitor
            let restart: Bool
            do {
                restart = try await withThrowingTaskGroup(of: Void.self) { group in
                    defer { group.cancelAll() }
                    try watching.start()
                    group.addTask {
                        for await message in watching.messages { continuation.yield(.message(message)) }
                        continuation.yield(.ended)
                    }
                    if let policyChanges {
                        group.addTask {
                            while let latest = await policyChanges() { continuation.yield(.policy(latest)) }
                        }
                    }
                    if watching.source == .udev {
                        group.addTask {
                            while true {
                                try await clock.sleep(for: check.interval)
                                if let reason = check.unavailableReason() {
                                    continuation.yield(.message(.sourceLost(reason)))
                                    return
                                }
                            }
                        }
                    }
                    if let deadline {
                        group.addTask {
                            try await clock.sleep(until: deadline, tolerance: nil)
                            continuation.yield(.deadline)
                        }
                    }
                    if first {
                        first = false
                        try await output(.events(judged { control.start(source: .coldplug) }))
                    } else {
                        try await output(.events(judged { control.resync(reason: "udev source lost; now reading the kernel's uevents") }))
                    }
                    for await input in inputs {
                        if Task.isCancelled { return false }
                        switch input {
                        case .message(.event(let event, let receivedAt)):
                            let queue = busy.queue(received: receivedAt, taken: Monotonic.now())
                            try await output(.events(judged { control.handle(event, receivedAt: receivedAt, source: watching.source, queue: queue) }))
                        case .message(.overflow):
                            try await output(.note(.overflow))
                            try await output(.events(judged { control.resync(reason: "uevent socket overflow (ENOBUFS)") }))
                        case .message(.sourceLost(let reason)):
                            try await emit(.note(.sourceLost(reason)))
                            return true
                        case .message(.failure(let error)):
                            throw error
                        case .policy(let latest):
                            guard latest.sha256 != digest else { continue }
                            digest = latest.sha256
                            try await output(.note(.policyReloaded(latest)))
                            try await output(.events(judged { control.reload(policy: latest, enforce: enforce(latest)) }))
                        case .deadline, .ended:
                            return false
                        }
                    }
                    return false
                }
            } catch {
                await watching.stop()
                throw error
            }
            await watching.stop()
            guard restart, !Task.isCancelled else { return }
            monitor = try makeMonitor(.kernel)
            try await emit(.note(.watching(monitor.source, bufferNote: monitor.bufferNote)))
        }
    }
}

/// One thing the watch has to say: events for the report or the screen, or a note for the log.
public enum USBWatchEvent: Sendable {
    /// Events of the control (decisions, arrivals, removals, walks, errors).
    case events([Event])
    /// A note on the watch itself.
    case note(USBWatchNote)
}
