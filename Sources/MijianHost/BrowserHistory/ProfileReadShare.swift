import Dispatch
import Foundation
import MijianCore
import Synchronization

/// Browser profiles' reads shared between the probe worker that found them and the audit's own
/// thread once that thread has read everything else: two threads on two cores, never three.
///
/// With a pool of its own as wide as the cores, the worker's reads ran beside the audit's thread
/// while it was still busy: three runnable threads on two cores. Measured with `perf sched` on the
/// 2-core build machine, the kernel then kept both readers on one core for about 25 ms after the
/// audit's thread went idle (each was cache-hot there, so neither was moved), with the other core
/// idle. Here the audit's thread takes its part of the reads only when it has nothing else to do,
/// and on a machine with more than two cores the dispatch pool adds the cores beyond those two.
/// Without a helper coming (`--rule net.history`, read on the audit's own thread) the pool adds
/// every core beyond the reader's.
final class ProfileReadShare: Sendable {
    private struct State {
        var reads: SharedJobs?
        /// Until the reads are given (or it is known there will be none), helpers wait.
        var open = true
    }

    private let state = Mutex(State())
    /// Signalled once when the reads are given or the probe ended without giving any; stays
    /// signalled for every later helper.
    private let given = DispatchSemaphore(value: 0)
    /// Threads the pool adds: the cores beyond the finder's and the helper's, when one will come.
    private let extraThreads: Int

    init(cores: Int = ProcessInfo.processInfo.activeProcessorCount, helperComing: Bool) {
        extraThreads = max(0, cores - (helperComing ? 2 : 1))
    }

    /// Reads every one of `reads`, here and on whichever threads help, and returns the profiles in
    /// the order of `reads` (a read that found no profile leaves none).
    func readAll(_ reads: [BrowserHistoryProbe.ProfileRead]) -> [BrowserProfile] {
        let results = Mutex<[BrowserProfile?]>(Array(repeating: nil, count: reads.count))
        let jobs = SharedJobs(reads.enumerated().map { index, read in
            {
                let profile = read()
                results.withLock { $0[index] = profile }
            }
        })
        state.withLock { state in
            state.reads = jobs
            state.open = false
        }
        given.signal()
        for _ in 0..<min(extraThreads, max(0, reads.count - 1)) {
            DispatchQueue.global().async { jobs.drain() }
        }
        jobs.finish()
        return results.withLock { $0.compactMap { $0 } }
    }

    /// Says that no reads will be given, if none were: helpers stop waiting.
    func close() {
        let wasOpen = state.withLock { state in
            defer { state.open = false }
            return state.open
        }
        if wasOpen { given.signal() }
    }

    /// Waits until the reads are given (or none will be), then takes reads until none are left.
    func help() {
        given.wait()
        given.signal()
        state.withLock { $0.reads }?.drain()
    }
}
