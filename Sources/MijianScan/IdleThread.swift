#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Runs a scan on a thread of its own at the lowest CPU priority Linux has (SCHED_IDLE: it runs
/// only when nothing else wants the CPU). The kernel derives an I/O class from the CPU policy
/// when none was set: a SCHED_IDLE thread's reads are in the idle I/O class under the BFQ
/// scheduler, so the scan yields the disk as well.
public enum IdleThread {
    /// SCHED_IDLE from <sched.h> (under _GNU_SOURCE, which the Swift Glibc module does not import).
    static let schedIdle: Int32 = 5

    /// Runs `body` on a new SCHED_IDLE thread and returns its result; `idle` says whether the
    /// kernel took the policy (a container may refuse it; the scan then runs at normal priority).
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> (value: T, idle: Bool) {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                var parameters = sched_param()
                parameters.sched_priority = 0
                // pid 0 is the calling thread.
                let idle = sched_setscheduler(0, schedIdle, &parameters) == 0
                continuation.resume(returning: (body(), idle))
            }
            thread.name = "mijian-scan"
            thread.start()
        }
    }

    /// The calling thread's scheduling policy (for tests).
    public static func currentPolicy() -> Int32 { sched_getscheduler(0) }
}
