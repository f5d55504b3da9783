import Dispatch
import Synchronization

/// Jobs taken one at a time by whichever thread asks: an audit's two threads (its own and the
/// probe worker) each take the next job when free, so the one that finishes its own work first
/// takes the rest of the other's, and two cores stay busy without a third runnable thread.
final class SharedJobs: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void]
        var next = 0
        var running = 0
    }

    private let state: Mutex<State>
    /// Signalled after each job ends.
    private let ended = DispatchSemaphore(value: 0)

    init(_ jobs: [@Sendable () -> Void]) {
        state = Mutex(State(jobs: jobs))
    }

    /// Runs jobs until none are left to take.
    func drain() {
        while true {
            let job = state.withLock { state -> (@Sendable () -> Void)? in
                guard state.next < state.jobs.count else { return nil }
                defer {
                    state.next += 1
                    state.running += 1
                }
                return state.jobs[state.next]
            }
            guard let job else { return }
            job()
            state.withLock { $0.running -= 1 }
            ended.signal()
        }
    }

    /// Takes what is left, then waits until the jobs other threads took have ended.
    func finish() {
        drain()
        while state.withLock({ $0.running > 0 }) { ended.wait() }
    }
}
