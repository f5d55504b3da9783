import Foundation
import MijianCore

/// A live stream of uevents: `DeviceMonitor`, or a stand-in in tests.
public protocol UEventMonitor: AnyObject, Sendable {
    /// Where the events come from.
    var source: EventSource { get }
    /// What became of the receive buffer's size, when it is not what was asked.
    var bufferNote: String? { get }
    /// The messages; the stream finishes after `stop()`.
    var messages: AsyncStream<MonitorMessage> { get }
    /// Starts reading.
    func start()
    /// Stops reading.
    func stop()
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
/// lost udev to the kernel's uevents (with a walk), a new judgement when the policy changes,
/// and a deadline that holds whichever monitor is current. Every task it starts ends before it returns.
public struct USBWatch: Sendable {
    /// How often the policy is looked at.
    public var pollInterval: Duration
    /// Makes the monitor of a source.
    let makeMonitor: @Sendable (EventSource) throws -> any UEventMonitor

    /// A watch over USB `DeviceMonitor`s with a receive buffer of `receiveBufferSize` bytes.
    public init(pollInterval: Duration = .seconds(1), receiveBufferSize: Int = 8 << 20) {
        self.pollInterval = pollInterval
        self.makeMonitor = { source in try DeviceMonitor(source: source, subsystems: ["usb"], receiveBufferSize: receiveBufferSize) }
    }

    /// A watch over the monitors `makeMonitor` makes (a stand-in, in tests).
    public init(pollInterval: Duration = .seconds(1), makeMonitor: @escaping @Sendable (EventSource) throws -> any UEventMonitor) {
        self.pollInterval = pollInterval
        self.makeMonitor = makeMonitor
    }

    private enum Input: Sendable {
        case message(MonitorMessage)
        case tick
        case deadline
        case ended
    }

    /// Watches from `source` until cancelled, `deadline` (on `clock`), or a failure (thrown).
    /// `policy` is asked at every tick; a policy with another digest is judged again, enforcing
    /// when `enforce` says so. Events and notes go to `emit` in the order they happen.
    public func run<C: Clock>(
        control: USBControl, source: EventSource, deadline: C.Instant? = nil, clock: C = ContinuousClock(),
        policy: (@Sendable () -> Policy)? = nil, enforce: @escaping @Sendable (Policy) -> Bool = { $0.usbMode == .enforce },
        emit: (USBWatchEvent) async throws -> Void
    ) async throws where C.Duration == Duration {
        var monitor = try makeMonitor(source)
        try await emit(.note(.watching(monitor.source, bufferNote: monitor.bufferNote)))
        var digest = policy?().sha256
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
        while !Task.isCancelled {
            let (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
            let watching = monitor
            let interval = pollInterval
            let ticking = policy != nil
            let restart: Bool = try await withThrowingTaskGroup(of: Void.self) { group in
                defer {
                    watching.stop()
                    group.cancelAll()
                }
                watching.start()
                group.addTask {
                    for await message in watching.messages { continuation.yield(.message(message)) }
                    continuation.yield(.ended)
                }
                if ticking {
                    group.addTask {
                        while !Task.isCancelled {
                            try await clock.sleep(for: interval)
                            continuation.yield(.tick)
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
                    case .tick:
                        guard let latest = policy?(), latest.sha256 != digest else { continue }
                        digest = latest.sha256
                        try await output(.note(.policyReloaded(latest)))
                        try await output(.events(judged { control.reload(policy: latest, enforce: enforce(latest)) }))
                    case .deadline, .ended:
                        return false
                    }
                }
                return false
            }
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
