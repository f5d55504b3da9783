import Foundation
import MijianCore
import Synchronization

/// A wake-up call for one waiting loop, with coalescing: requests made while the loop works
/// are kept (the newest reason) and end its next wait at once.
public final class Wakeup: Sendable {
    private struct State {
        var pending: String?
        var waiter: CheckedContinuation<String?, Never>?
    }

    private let state = Mutex<State>(State())

    /// A wake-up with nothing pending.
    public init() {}

    /// Wakes the loop, saying why.
    public func fire(_ reason: String) {
        let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = reason
            return nil
        }
        waiter?.resume(returning: reason)
    }

    /// Waits for a wake-up or for `timeout`; the reason, or nil on timeout or cancellation.
    public func wait(timeout: Duration?) async -> String? {
        if let reason = state.withLock({ state -> String? in
            defer { state.pending = nil }
            return state.pending
        }) {
            return reason
        }
        return await withTaskGroup(of: String?.self) { group in
            group.addTask { await self.waitForFire() }
            if let timeout {
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    return nil
                }
            }
            var reason = await group.next() ?? nil
            group.cancelAll()
            // A wake-up that raced the timeout is not lost.
            for await other in group where reason == nil { reason = other }
            return reason
        }
    }

    private func waitForFire() async -> String? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
                let now = state.withLock { state -> String?? in
                    if let pending = state.pending {
                        state.pending = nil
                        return .some(pending)
                    }
                    if Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if case .some(let value) = now { continuation.resume(returning: value) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}

/// Where event sources put what they saw; the sealer drains it into each report. A failing
/// event (a denied device, flagged traffic) asks for a report at once.
public actor EventSink {
    /// Events kept between two reports; past it, events are counted as dropped, and the report says so.
    public static let capacity = 10_000

    private var events: [Event] = []
    private var dropped = 0
    private var failing = false
    private let sealNow: Wakeup?

    /// A sink that fires `sealNow` on a failing event.
    public init(sealNow: Wakeup? = nil) {
        self.sealNow = sealNow
    }

    /// Records an event for the next report; `failing` asks for that report at once.
    public func record(_ event: Event, failing: Bool) {
        if events.count < EventSink.capacity {
            events.append(event)
        } else {
            dropped += 1
        }
        if failing {
            self.failing = true
            sealNow?.fire("failing event \(event.type)")
        }
    }

    /// Takes every event recorded so far, the number dropped, and whether any was failing.
    public func drain() -> (events: [Event], dropped: Int, failing: Bool) {
        defer {
            events.removeAll(keepingCapacity: false)
            dropped = 0
            failing = false
        }
        return (events, dropped, failing)
    }

    /// Puts events back at the front (a report that could not be signed keeps them for the next).
    public func restore(_ earlier: [Event], dropped earlierDropped: Int, failing earlierFailing: Bool) {
        let combined = earlier + events
        events = Array(combined.prefix(EventSink.capacity))
        dropped += earlierDropped + max(0, combined.count - EventSink.capacity)
        failing = failing || earlierFailing
    }
}
