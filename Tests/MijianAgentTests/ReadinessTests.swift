#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianHost
import MijianTestSupport
import Synchronization
import Testing

@testable import MijianAgent

/// A pipe whose read end a readiness loop watches; both ends closed in `deinit`.
final class WatchedPipe: Sendable {
    let readEnd: Int32
    let writeEnd: Int32
    /// Bytes the handler has read, and how often it ran.
    let read = Mutex<(bytes: Int, calls: Int)>((0, 0))
    /// When the loop thread made the last read before a removal.
    let lastReadAt = Mutex<ContinuousClock.Instant?>(nil)

    init() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw MijianError(.io, "pipe failed", errno: errno) }
        readEnd = ends[0]
        writeEnd = ends[1]
        // The handler reads until EAGAIN.
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func send(_ count: Int) {
        let bytes = [UInt8](repeating: 7, count: count)
        _ = bytes.withUnsafeBytes { write(writeEnd, $0.baseAddress, count) }
    }

    /// The handler: reads everything waiting.
    func drain(_ condition: ReadinessLoop.Condition = .readable) -> Bool {
        if condition == .lastRead { lastReadAt.withLock { $0 = .now } }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var total = 0
        while true {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
            if got <= 0 { break }
            total += got
        }
        read.withLock {
            $0.bytes += total
            $0.calls += 1
        }
        return true
    }
}

@Suite("The blocking sources are read on one thread the kernel wakes, and stop at once", .serialized)
struct ReadinessTests {
    @Test func aHandlerRunsWhenItsDescriptorIsReadableAndNeverAfterItsRemoval() async throws {
        let readiness = try ReadinessLoop()
        let pipe = try WatchedPipe()
        let registration = try readiness.add(pipe.readEnd) { _ in pipe.drain() }
        pipe.send(3)
        #expect(await until(seconds: 5) { pipe.read.withLock { $0.bytes } == 3 })
        // Written just before the removal: the last read takes it.
        pipe.send(5)
        await readiness.remove(registration, lastRead: true)
        #expect(pipe.read.withLock { $0.bytes } == 8)
        let calls = pipe.read.withLock { $0.calls }
        pipe.send(1)
        try await Task.sleep(for: .milliseconds(100))
        #expect(pipe.read.withLock { $0.calls } == calls, "the handler ran after its removal")
        await readiness.stop()
    }

    @Test func aHandlerThatIsDoneIsDroppedAndTheOthersGoOn() async throws {
        let readiness = try ReadinessLoop()
        let done = try WatchedPipe()
        let other = try WatchedPipe()
        _ = try readiness.add(done.readEnd) { _ in
            _ = done.drain()
            return false
        }
        _ = try readiness.add(other.readEnd) { _ in other.drain() }
        done.send(1)
        #expect(await until(seconds: 5) { done.read.withLock { $0.calls } == 1 })
        // Left unread, the descriptor stays readable: a handler still registered would run again and again.
        done.send(1)
        other.send(2)
        #expect(await until(seconds: 5) { other.read.withLock { $0.bytes } == 2 })
        try await Task.sleep(for: .milliseconds(50))
        #expect(done.read.withLock { $0.calls } == 1)
        await readiness.stop()
    }

    /// The loops this replaces looked at their stop flag every 250 or 500 ms; an eventfd wakes
    /// the thread at once. Timed on the loop's own thread (the last read before the removal),
    /// since the awaiting task's resumption depends on how busy the shared pool is.
    @Test func removalAndStopAreImmediate() async throws {
        let readiness = try ReadinessLoop()
        let pipe = try WatchedPipe()
        let registration = try readiness.add(pipe.readEnd) { pipe.drain($0) }
        // Idle: nothing to read, so only the eventfd can wake the thread.
        try await Task.sleep(for: .milliseconds(20))
        let clock = ContinuousClock()
        let requested = clock.now
        let removed = await clock.measure { await readiness.remove(registration, lastRead: true) }
        let woken = try #require(pipe.lastReadAt.withLock { $0 }) - requested
        let stopped = await clock.measure { await readiness.stop() }
        print("readiness: the loop thread took the removal after \(woken); removal awaited \(removed), stop \(stopped)")
        #expect(woken < .milliseconds(100))
        // After the stop nothing is registered, and a removal returns at once.
        #expect(throws: MijianError.self) { _ = try readiness.add(pipe.readEnd) { _ in pipe.drain() } }
        await readiness.remove(registration, lastRead: true)
    }

    /// A capture in a network namespace: packets sent to a TEST-NET address are all in the
    /// stretch when `finish` returns, and the flow is told to the sink once.
    @Test func aFinishedCaptureHoldsEveryPacketSentBeforeIt() async throws {
        let namespace = "mijian-readiness-\(getpid())"
        defer { _ = try? TestSupport.run("/usr/sbin/ip", ["netns", "del", namespace]) }
        try makeEgressNamespace(namespace)
        let policy = try TestSupport.defaultPolicy()
        var logger = Logger(label: "readiness-test")
        logger.logLevel = .critical
        let readiness = try ReadinessLoop()
        let sink = EventSink()
        let watch = LinkWatch(link: "v0", bufferBytes: 1 << 20)
        let quiet = logger
        // The capture's socket belongs to the namespace of the thread that opens it.
        try NetworkNamespace.perform(path: "/run/netns/\(namespace)") { () throws(MijianError) in
            watch.start(policy: policy, sink: sink, logger: quiet, readiness: readiness, now: { Date() })
        }
        #expect(watch.window.value != nil, "the capture on v0 did not open: \(watch.statistics)")
        try sh("/usr/sbin/ip", ["netns", "exec", namespace, "bash", "-c", "for i in $(seq 20); do echo mijian > /dev/udp/198.51.100.7/9; done"])
        let finished = await ContinuousClock().measure { await watch.finish() }
        // Timed for the log only: how soon the thread lets go is `removalAndStopAreImmediate`'s.
        print("readiness: a capture finished in \(finished)")
        let part = watch.closeWindow(at: Date())
        guard case .captured(let capture) = part.capture else {
            Issue.record("no capture: \(part.capture)")
            return
        }
        #expect(capture.violations == 20, "\(capture)")
        #expect(capture.flows.count == 1)
        #expect(capture.flows.first?.destination == "198.51.100.7")
        let events = await sink.drain()
        #expect(events.events.filter { $0.type == "traffic.flow" }.count == 1)
        #expect(events.failing)
        let finding = try #require(TrafficChecks.window(
            TrafficWindowFacts(captures: [part.capture], links: LinkStateFacts(source: "/sys/class/net", links: ["v0"], up: ["v0"])),
            context: CheckContext(policy: policy, hostID: "h", observedAt: Date())).first)
        #expect(finding.status == .fail)
        await readiness.stop()
    }
}
