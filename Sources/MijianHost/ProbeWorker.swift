#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import Synchronization

/// The long-lived threads an audit's concurrent probes run on (the network probe, the kernel's
/// socket dump): one per network namespace, made the first time a thread of that namespace
/// asks, and kept, so the service's hourly and network-change audits start no thread.
///
/// A new thread is in its creator's network namespace, and the network probe must read the
/// namespace of the thread that audits (a test audits inside a namespace it made): the worker
/// of the asking thread's namespace runs the job. Only the last namespace's worker stays: one
/// made for another namespace retires the others once their jobs are done (a worker left behind
/// would keep a deleted namespace alive). `stopAll` retires every worker at the service's end.
public enum ProbeWorkers {
    /// The namespace of a thread: the device and inode of its `ns/net` link.
    struct Namespace: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private static let workers = Mutex<[Namespace: ProbeWorker]>([:])

    /// Runs `body` on the worker of the calling thread's network namespace and returns what
    /// waits for it. Where the namespace cannot be told (no `/proc`), `body` runs here, now.
    static func submit<Value: Sendable>(name: String, _ body: @escaping @Sendable () -> Value) -> ProbeJob<Value> {
        let job = ProbeJob<Value>()
        guard let namespace = currentNamespace() else {
            job.finish(body())
            return job
        }
        workers.withLock { workers in
            let worker: ProbeWorker
            if let existing = workers[namespace] {
                worker = existing
            } else {
                for (other, old) in workers where other != namespace { old.retire() }
                worker = ProbeWorker(name: name)
                workers = [namespace: worker]
            }
            // Under the lock: a worker is retired only after the jobs given to it.
            worker.enqueue { job.finish(body()) }
        }
        return job
    }

    /// Retires every worker: each ends once the jobs it was given are done. The next job makes a new one.
    public static func stopAll() {
        workers.withLock { workers in
            for worker in workers.values { worker.retire() }
            workers = [:]
        }
    }

    /// How many workers are kept (for tests).
    static var count: Int { workers.withLock { $0.count } }

    static func currentNamespace() -> Namespace? {
        var info = stat()
        guard stat("/proc/thread-self/ns/net", &info) == 0 else { return nil }
        return Namespace(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}

/// One thread that runs the jobs it is given, in order, until it is retired and has none left.
final class ProbeWorker: Sendable {
    private struct Queue {
        var jobs: [@Sendable () -> Void] = []
        var retired = false
    }

    private let queue = Mutex(Queue())
    /// One signal per job and one for the retirement.
    private let ready = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: @escaping @Sendable () -> Void) {
        queue.withLock { $0.jobs.append(job) }
        ready.signal()
    }

    func retire() {
        queue.withLock { $0.retired = true }
        ready.signal()
    }

    private func run() {
        while true {
            ready.wait()
            let next = queue.withLock { queue -> (job: (@Sendable () -> Void)?, retired: Bool) in
                (queue.jobs.isEmpty ? nil : queue.jobs.removeFirst(), queue.retired)
            }
            if let job = next.job {
                job()
            } else if next.retired {
                return
            }
        }
    }
}

/// What a job on a probe worker gives back; `result()` waits for it.
final class ProbeJob<Value: Sendable>: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let value = Mutex<Value?>(nil)

    init() {}

    func finish(_ observed: Value) {
        value.withLock { $0 = observed }
        done.signal()
    }

    /// The value, once the job is done.
    func result() -> Value {
        done.wait()
        done.signal()  // for the next caller
        guard let observed = value.withLock({ $0 }) else { preconditionFailure("the probe job signalled before it had a value") }
        return observed
    }
}
