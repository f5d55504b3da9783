#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
@testable import MijianHost
import MijianTestSupport
import Synchronization
import Testing

/// The audit's concurrent probes run on one long-lived worker per network namespace: no audit
/// starts a thread, and each runs in the namespace of the thread that audits.
@Suite("Probe workers: one long-lived thread, in the auditing thread's namespace", .serialized)
struct ProbeWorkerTests {
    /// The kernel's id of the calling thread and its network namespace's inode.
    static func whereAmI() -> (tid: Int32, namespace: UInt64?) {
        (Int32(truncatingIfNeeded: syscall_gettid()), ProbeWorkers.currentNamespace()?.inode)
    }

    static func syscall_gettid() -> Int {
        // gettid(2) has no wrapper in the Glibc module: the thread's id is the name of its /proc/thread-self link.
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")).flatMap { Int($0.split(separator: "/").last ?? "") } ?? -1
    }

    @Test func repeatedJobsRunOnOneThreadThatIsNotTheCallers() {
        let caller = Self.whereAmI()
        let ran = (0..<5).map { _ in ProbeWorkers.submit(name: "mijian-probes") { Self.whereAmI() }.result() }
        #expect(Set(ran.map(\.tid)).count == 1, "\(ran)")
        #expect(ran[0].tid != caller.tid && ran[0].tid > 0)
        #expect(ran.allSatisfy { $0.namespace == caller.namespace })
        #expect(ProbeWorkers.count == 1)
        // Stopped at the service's end: the thread ends; the next job makes a new one.
        ProbeWorkers.stopAll()
        #expect(ProbeWorkers.count == 0)
        let after = ProbeWorkers.submit(name: "mijian-probes") { Self.whereAmI() }.result()
        #expect(after.tid != ran[0].tid)
        ProbeWorkers.stopAll()
    }

    @Test("shared jobs: each runs once, on whichever thread takes it; finish waits for the ones the other thread took")
    func sharedJobsRunOnceAndFinishWaits() {
        let runs = Mutex<[Int: Int32]>([:])
        let slowStarted = DispatchSemaphore(value: 0)
        let jobs = SharedJobs((0..<40).map { index in
            {
                if index == 0 {
                    slowStarted.signal()
                    usleep(50_000)
                }
                let tid = Self.whereAmI().tid
                runs.withLock { $0[index] = tid }
            }
        })
        // The worker takes the first (slow) job; this thread takes the rest, then must wait for it.
        let worker = ProbeWorkers.submit(name: "mijian-probes") { jobs.drain() }
        slowStarted.wait()
        jobs.finish()
        let ran = runs.withLock { $0 }
        #expect(ran.count == 40, "finish returned before every job had run: \(ran.keys.sorted())")
        #expect(ran[0] != Self.whereAmI().tid && ran[0] != nil)
        #expect((1..<40).allSatisfy { ran[$0] != nil })
        worker.result()
        // Nothing runs twice: a drain after the end finds nothing.
        jobs.drain()
        #expect(runs.withLock { $0.count } == 40)
    }

    @Test("the probes of a full audit give the same facts when the worker takes a share of them")
    func probesGiveTheSameFactsOnEitherThread() throws {
        let root = FixtureHosts.root("wired-desktop")
        let sets = FactSet.all.subtracting([.browserHistory])
        // Each group alone (its probe on this thread, no worker) against all at once (shared with
        // the worker, which has the network probe to run first): the same facts.
        let together = HostProbe.observe(root: root, live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate, collecting: sets)
        let groups: [Set<FactSet>] = [[.hardware], [.profiles, .logRetention], [.usbHistory], [.channels], [.auth], [.installation], [.services], [.software], [.malware], [.auditSystem], [.sharing, .printers]]
        for group in groups {
            let alone = HostProbe.observe(root: root, live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate, collecting: group)
            #expect(Self.same(alone, together, group), "\(group)")
        }
    }

    /// Whether two observations hold the same facts for a group.
    static func same(_ a: AuditFacts, _ b: AuditFacts, _ group: Set<FactSet>) -> Bool {
        switch group.first {
        case .hardware: a.hardware == b.hardware
        case .profiles, .logRetention: a.history == b.history
        case .usbHistory: a.usbHistory == b.usbHistory
        case .channels: a.channels == b.channels
        case .auth: a.auth == b.auth
        case .installation: a.installation == b.installation
        case .services: a.services == b.services
        case .software: a.software == b.software
        case .malware: a.malware == b.malware
        case .auditSystem: a.auditSystem == b.auditSystem
        default: a.sharing == b.sharing
        }
    }

    @Test func anAuditInsideANamespaceReadsThatNamespace() throws {
        let namespace = try TestNamespace("probes")
        let root = Self.whereAmI()
        let inside = try NetworkNamespace.perform(path: "/run/netns/\(namespace.name)") { () throws(MijianError) -> ([String], UInt64?, UInt64?) in
            // The network probe on the worker while this thread reads the other groups, as an audit does.
            let facts = HostProbe.observe(root: .live, live: true, logger: NetFixtures.logger, collecting: [.interfaces, .auth])
            let worker = ProbeWorkers.submit(name: "mijian-probes") { Self.whereAmI() }.result()
            return (facts.network.interfaces.map(\.name).sorted(), worker.namespace, Self.whereAmI().namespace)
        }
        #expect(inside.0 == ["lo", "veth0", "veth1"], "\(inside.0)")
        #expect(inside.1 == inside.2 && inside.1 != root.namespace, "the worker ran in the namespace audited")
        // Back in this namespace: a worker of this namespace, not the other's.
        let back = ProbeWorkers.submit(name: "mijian-probes") { Self.whereAmI() }.result()
        #expect(back.namespace == root.namespace)
        #expect(ProbeWorkers.count == 1, "the other namespace's worker retired")
        ProbeWorkers.stopAll()
    }
}
