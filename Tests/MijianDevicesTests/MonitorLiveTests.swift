#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianDevices
import MijianHost
import MijianTestSupport
import Testing

/// setns(2): Glibc's module map leaves out what needs _GNU_SOURCE.
@_silgen_name("setns") private func enterNamespace(_ fd: Int32, _ type: Int32) -> Int32
private let newNetworkNamespace: Int32 = 0x4000_0000  // CLONE_NEWNET

/// Real kernel uevents: veth links created and deleted in a network namespace of the test's own
/// (net devices' uevents go to the uevent sockets of the namespace that owns them).
@Suite("uevent monitor on real kernel events", .serialized) struct MonitorLiveTests {
    /// A namespace that is deleted when the value goes.
    final class Namespace {
        let name: String
        init() throws {
            name = "mjdev\(getpid() % 100_000)\(Int.random(in: 0..<1000))"
            let result = try TestSupport.run("/usr/sbin/ip", ["netns", "add", name])
            guard result.status == 0 else { throw MijianError(.io, "ip netns add \(name): \(result.stderr)") }
        }
        deinit { _ = try? TestSupport.run("/usr/sbin/ip", ["netns", "delete", name]) }

        /// Runs `ip -n NAME -batch FILE` with these lines.
        func batch(_ lines: [String]) throws {
            let file = try TestSupport.temporaryDirectory("mijian-batch").appendingPathComponent("batch")
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)
            let result = try TestSupport.run("/usr/sbin/ip", ["-n", name, "-batch", file.path])
            guard result.status == 0 else { throw MijianError(.io, "ip -batch: \(result.stderr)") }
        }

        /// Makes a monitor whose socket lives in this namespace (created on a thread that entered
        /// it), read on `readiness`.
        func monitor(bufferSize: Int, readiness: ReadinessLoop) throws -> DeviceMonitor {
            let nsFD = open("/var/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
            guard nsFD >= 0 else { throw MijianError(.io, "cannot open the namespace", errno: errno) }
            let box = ResultBox()
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
                defer { close(home); close(nsFD) }
                guard enterNamespace(nsFD, newNetworkNamespace) == 0 else {
                    box.result = .failure(MijianError(.io, "setns", errno: errno))
                    done.signal()
                    return
                }
                box.result = Result { () throws(MijianError) in try DeviceMonitor(source: .kernel, subsystems: ["net"], receiveBufferSize: bufferSize, readiness: readiness) }
                _ = enterNamespace(home, newNetworkNamespace)
                done.signal()
            }
            thread.start()
            done.wait()
            guard let result = box.result else { throw MijianError(.io, "no monitor") }
            return try result.get()
        }
    }

    final class ResultBox: @unchecked Sendable {
        var result: Result<DeviceMonitor, MijianError>?
    }

    /// Collects messages until `stop` says so or the time runs out; the monitor is stopped either way.
    static func collect(_ monitor: DeviceMonitor, seconds: Double, until stop: @escaping @Sendable (Int, Int, Int) -> Bool) async -> (adds: Int, removes: Int, overflows: Int) {
        await withTaskGroup(of: (adds: Int, removes: Int, overflows: Int)?.self) { group in
            group.addTask {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                return nil
            }
            group.addTask {
                var adds = 0, removes = 0, overflows = 0
                for await message in monitor.messages {
                    switch message {
                    case .event(let event, _):
                        guard event.subsystem == "net", event.kernelName.hasPrefix("mjd") else { continue }
                        if event.action == "add" { adds += 1 }
                        if event.action == "remove" { removes += 1 }
                    case .overflow: overflows += 1
                    case .sourceLost, .failure: break
                    }
                    if stop(adds, removes, overflows) { break }
                }
                return (adds, removes, overflows)
            }
            // The first to end: the counts, or the time.
            let first = await group.next() ?? nil
            await monitor.stop()
            // The monitor's stream has finished: the counting task ends with what it had.
            var counted = first
            for await other in group where counted == nil { counted = other }
            group.cancelAll()
            return counted ?? (0, 0, 0)
        }
    }

    @Test func aStormOfFiveThousandEventsArrivesWhole() async throws {
        let namespace = try Namespace()
        let readiness = try ReadinessLoop()
        let monitor = try namespace.monitor(bufferSize: 128 << 20, readiness: readiness)
        try monitor.start()
        // Veth pairs (this kernel may have no dummy driver): each pair is two adds, and deleting one
        // end removes both.
        let pairs = 1250
        let count = 2 * pairs
        try namespace.batch((0..<pairs).map { "link add mjd\($0)a type veth peer name mjd\($0)b" })
        try namespace.batch((0..<pairs).map { "link del mjd\($0)a" })
        let (adds, removes, overflows) = await Self.collect(monitor, seconds: 60) { adds, removes, _ in adds == count && removes == count }
        #expect(overflows == 0)
        #expect(adds == count)
        #expect(removes == count)
        await readiness.stop()
    }

    @Test func aStormIntoASmallBufferIsAnOverflowThatIsSaid() async throws {
        let namespace = try Namespace()
        // The kernel's floor for SO_RCVBUF is about 2 KiB: a few messages.
        let readiness = try ReadinessLoop()
        let monitor = try namespace.monitor(bufferSize: 4096, readiness: readiness)
        let pairs = 250
        let count = 2 * pairs
        // Nobody reads while the storm runs: the socket must overflow.
        try namespace.batch((0..<pairs).map { "link add mjd\($0)a type veth peer name mjd\($0)b" })
        try namespace.batch((0..<pairs).map { "link del mjd\($0)a" })
        try monitor.start()
        let (adds, removes, overflows) = await Self.collect(monitor, seconds: 5) { _, _, overflows in overflows > 0 }
        #expect(overflows >= 1, "ENOBUFS was not reported (adds \(adds), removes \(removes))")
        #expect(adds + removes < 2 * count)
        await readiness.stop()
    }

    @Test func aMonitorOfAWalkSourceIsAnErrorNotATrap() async throws {
        let readiness = try ReadinessLoop()
        #expect(throws: MijianError.self) { try DeviceMonitor(source: .coldplug, subsystems: ["usb"], readiness: readiness) }
        await readiness.stop()
    }

    @Test func udevDetectionConnectsForReal() throws {
        let dir = try TestSupport.temporaryDirectory("mijian-udev")
        let missing = dir.appendingPathComponent("control").path
        #expect(UdevDaemon.unavailableReason(controlPath: missing)?.contains("does not exist") == true)
        // What a killed udevd leaves: the socket file, nobody listening.
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in missing.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(listen(fd, 4) == 0)
        #expect(UdevDaemon.unavailableReason(controlPath: missing) == nil, "a listening socket is a live udevd")
        close(fd)
        #expect(UdevDaemon.unavailableReason(controlPath: missing)?.contains("nobody listens") == true)
    }
}
