#if canImport(Glibc)
import Glibc
#endif
import CMijianSystem
import Foundation

/// Runs a scan on a thread of its own at the lowest CPU priority Linux has (SCHED_IDLE: it runs
/// only when nothing else wants the CPU) and in the idle I/O class (ioprio_set
/// IOPRIO_CLASS_IDLE: its reads are served when no other reads wait, under BFQ), set
/// explicitly rather than left to the kernel's derivation from the CPU policy. The scan's
/// reading threads and PDF workers take both from it.
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
                let ioIdle = mijian_ioprio_set_idle() == 0
                continuation.resume(returning: (body(), idle && ioIdle))
            }
            thread.name = "mijian-scan"
            thread.start()
        }
    }

    /// The calling thread's scheduling policy (for tests).
    public static func currentPolicy() -> Int32 { sched_getscheduler(0) }

    /// The calling thread's I/O priority class (IOPRIO_CLASS_*), nil when it cannot be read.
    public static func currentIOClass() -> Int32? {
        let value = mijian_ioprio_get()
        return value < 0 ? nil : value >> 13
    }

    /// A thread's CPU policy and I/O priority, to give another thread the same.
    struct Priority: Sendable {
        let idle: Bool
        let ioprio: Int32

        /// The calling thread's.
        static func current() -> Priority { Priority(idle: sched_getscheduler(0) == schedIdle, ioprio: mijian_ioprio_get()) }

        /// Makes the calling thread's the same (as far as the kernel lets it: lowering is always allowed).
        func apply() {
            if idle {
                var parameters = sched_param()
                parameters.sched_priority = 0
                _ = sched_setscheduler(0, IdleThread.schedIdle, &parameters)
            }
            if ioprio > 0 { _ = mijian_ioprio_set(ioprio) }
        }
    }
}
