import Synchronization

/// Why one of the service's loops is woken: the sealer, the audit, delivery and the traffic watch
/// all hear their reasons as these values, so a `switch` names every case and no reason is a
/// string a typo away from a silent wrong branch.
public indirect enum WakeReason: Sendable, Hashable, CustomStringConvertible {
    /// The audit that runs at start has finished and its findings are with the sealer.
    case startAuditDone
    /// rtnetlink told of a link, address, route or rule change.
    case networkChange
    /// An event source recorded a failing event (a denied device, a flagged flow); its type.
    case failingEvent(String)
    /// An audit found findings that fail now and did not before; how many, and what started it.
    case newFailingFindings(Int, after: WakeReason)
    /// A new policy is in force (SIGHUP, or the policy file written).
    case policyReloaded
    /// SIGHUP asks for the policy file to be read again.
    case reloadAsked
    /// The policy file was written, or renamed over (an editor's save, `dpkg`): it is read again.
    case policyFileChanged
    /// The loop's own interval passed (reports, audits, delivery's look at the spool).
    case interval
    /// A report was sealed (delivery has something to send).
    case reportSealed
    /// Graceful shutdown.
    case shutdown

    /// The words logs, `STATUS=` and `SealSummary.reason` use.
    public var description: String {
        switch self {
        case .startAuditDone: "first audit"
        case .networkChange: "network change"
        case .failingEvent(let type): "failing event \(type)"
        case .newFailingFindings(let count, let after): "audit found \(count) new failing finding(s) after \(after)"
        case .policyReloaded: "policy reloaded"
        case .reloadAsked: "SIGHUP"
        case .policyFileChanged: "policy file changed"
        case .interval: "interval"
        case .reportSealed: "report sealed"
        case .shutdown: "shutdown"
        }
    }

    /// Kept even when the queue of pending reasons is full: losing it would change what the loop does.
    var isEssential: Bool {
        switch self {
        case .startAuditDone, .policyReloaded, .reloadAsked, .policyFileChanged, .shutdown: true
        default: false
        }
    }
}

/// A wake-up channel for one waiting loop. Requests made while the loop works are kept, each
/// distinct reason once and in the order they came, and end its next waits at once: a failing
/// event that comes just after the start audit ends cannot hide that the audit ended.
public final class Wakeup<Reason: Sendable & Hashable>: Sendable {
    /// Distinct reasons kept while nobody waits; past it the oldest that is not essential goes.
    static var capacity: Int { 32 }

    private struct State {
        var pending: [Reason] = []
        var waiter: CheckedContinuation<Reason?, Never>?
    }

    private let state = Mutex<State>(State())
    private let essential: @Sendable (Reason) -> Bool

    /// A channel with nothing pending; `essential` reasons are never dropped when it overflows.
    public init(essential: @escaping @Sendable (Reason) -> Bool = { _ in false }) {
        self.essential = essential
    }

    /// Wakes the loop, saying why.
    public func fire(_ reason: Reason) {
        let waiter = state.withLock { state -> CheckedContinuation<Reason?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            guard !state.pending.contains(reason) else { return nil }
            state.pending.append(reason)
            if state.pending.count > Self.capacity, let index = state.pending.firstIndex(where: { !essential($0) }) {
                state.pending.remove(at: index)
            }
            return nil
        }
        waiter?.resume(returning: reason)
    }

    /// The oldest pending reason, taken, without waiting.
    public func take() -> Reason? {
        state.withLock { state in state.pending.isEmpty ? nil : state.pending.removeFirst() }
    }

    /// Waits for a wake-up or for `timeout` on `clock`; the reason, or nil on timeout or cancellation.
    public func wait<C: Clock>(timeout: C.Duration?, clock: C) async -> Reason? {
        if let reason = take() { return reason }
        return await withTaskGroup(of: Reason?.self) { group in
            group.addTask { await self.waitForFire() }
            if let timeout {
                group.addTask {
                    try? await clock.sleep(for: timeout)
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

    /// Waits for a wake-up or for `timeout`; the reason, or nil on timeout or cancellation.
    public func wait(timeout: Duration?) async -> Reason? {
        await wait(timeout: timeout, clock: ContinuousClock())
    }

    private func waitForFire() async -> Reason? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Reason?, Never>) in
                let now = state.withLock { state -> Reason?? in
                    if !state.pending.isEmpty { return .some(state.pending.removeFirst()) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if case .some(let value) = now { continuation.resume(returning: value) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Reason?, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}

extension Wakeup where Reason == WakeReason {
    /// The service's channel: the start audit, a reload and shutdown are never dropped.
    public static func service() -> Wakeup<WakeReason> { Wakeup(essential: { $0.isEssential }) }
}

/// How a piece of blocking work or a thread ended, for the one waiting on it.
enum Ending: Sendable, Hashable {
    /// It finished.
    case finished
    /// The service is stopping; the wait ends without it.
    case shutdown
}
