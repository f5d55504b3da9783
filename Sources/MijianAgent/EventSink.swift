import Foundation
import MijianCore
import Synchronization

/// Where event sources put what they saw; the sealer drains it into each report. A failing
/// event (a denied device, flagged traffic) asks for a report at once. A lock, not an actor: a
/// capture or monitor thread posts into it directly, with no task that could outlive the final seal.
public final class EventSink: Sendable {
    /// Events kept between two reports; past it, events are counted as dropped, and the report says so.
    public static let capacity = 10_000

    private struct State {
        var events: [Event] = []
        var dropped = 0
        var failing = false
    }

    private let state = Mutex<State>(State())
    private let sealNow: Wakeup<WakeReason>?

    /// A sink that fires `sealNow` on a failing event.
    public init(sealNow: Wakeup<WakeReason>? = nil) {
        self.sealNow = sealNow
    }

    /// Records an event for the next report; `failing` asks for that report at once.
    public func record(_ event: Event, failing: Bool) async { post(event, failing: failing) }

    /// `record` for a thread: the event is in the sink when it returns.
    public func post(_ event: Event, failing: Bool) {
        state.withLock { state in
            if state.events.count < EventSink.capacity {
                state.events.append(event)
            } else {
                state.dropped += 1
            }
            if failing { state.failing = true }
        }
        if failing { sealNow?.fire(.failingEvent(event.type)) }
    }

    /// Takes every event recorded so far, the number dropped, and whether any was failing.
    public func drain() async -> (events: [Event], dropped: Int, failing: Bool) {
        state.withLock { state in
            defer { state = State() }
            return (state.events, state.dropped, state.failing)
        }
    }

    /// Puts events back at the front (a report that could not be signed keeps them for the next).
    public func restore(_ earlier: [Event], dropped earlierDropped: Int, failing earlierFailing: Bool) async {
        state.withLock { state in
            let combined = earlier + state.events
            state.events = Array(combined.prefix(EventSink.capacity))
            state.dropped += earlierDropped + max(0, combined.count - EventSink.capacity)
            state.failing = state.failing || earlierFailing
        }
    }
}
