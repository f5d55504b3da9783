#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// Runs a program to completion (killing it after `limit` seconds so a hang fails instead of blocking),
/// returning its exit status and standard output. Children of the test runner may inherit a blocked
/// SIGTERM, so only SIGKILL is used to stop them.
@discardableResult
func runProgram(_ path: String, _ arguments: [String], limit: Double = 60) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let pid = process.processIdentifier
    let watchdog = DispatchWorkItem { if process.isRunning { kill(pid, SIGKILL) } }
    DispatchQueue.global().asyncAfter(deadline: .now() + limit, execute: watchdog)
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    watchdog.cancel()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Two network namespaces joined by a veth pair on TEST-NET-2, deleted when the value is closed.
struct VethPair {
    let left: String
    let right: String
    let leftLink: String
    let rightLink: String

    init() throws {
        let tag = String(UUID().uuidString.prefix(6)).lowercased()
        left = "mjt-a-\(tag)"
        right = "mjt-b-\(tag)"
        leftLink = "mjta\(tag)"
        rightLink = "mjtb\(tag)"
        let steps: [[String]] = [
            ["netns", "add", left], ["netns", "add", right],
            // No IPv6 autoconfiguration chatter: the silent interface must really be silent.
            ["netns", "exec", left, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
            ["netns", "exec", right, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
            ["link", "add", leftLink, "type", "veth", "peer", "name", rightLink],
            ["link", "set", leftLink, "netns", left], ["link", "set", rightLink, "netns", right],
            ["-n", left, "addr", "add", "198.51.100.1/24", "dev", leftLink],
            ["-n", right, "addr", "add", "198.51.100.2/24", "dev", rightLink],
            ["-n", left, "link", "set", leftLink, "up"], ["-n", right, "link", "set", rightLink, "up"],
            ["-n", left, "link", "set", "lo", "up"], ["-n", right, "link", "set", "lo", "up"],
            ["-n", left, "route", "add", "203.0.113.0/24", "via", "198.51.100.2"],
        ]
        for step in steps {
            let (status, _) = try runProgram("/usr/sbin/ip", step, limit: 20)
            if status != 0 {
                close()
                throw MijianError(.io, "ip \(step.joined(separator: " ")) failed with status \(status)")
            }
        }
    }

    func close() {
        _ = try? runProgram("/usr/sbin/ip", ["netns", "del", left], limit: 20)
        _ = try? runProgram("/usr/sbin/ip", ["netns", "del", right], limit: 20)
    }
}

/// The debug build of the command line, which `swift test` builds with the tests.
var mijianBinary: String { TestSupport.repositoryRoot.appendingPathComponent(".build/debug/mijian").path }

@Suite("mijian traffic --interface (network namespaces)", .serialized)
struct TrafficLiveTests {
    @Test func reportsTCPAndUDPToAnOutsideTestNetAddress() throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("live.json")
        // Send for a few seconds so packets arrive once the capture is active, however long start-up takes.
        let sender = """
            for i in 1 2 3 4 5 6 7 8; do
              echo probe > /dev/udp/203.0.113.7/9999
              timeout -s KILL 0.3 bash -c 'echo probe > /dev/tcp/203.0.113.7/8080' 2>/dev/null
              sleep 0.3
            done
            """
        let status = try TrafficLiveTests.watch(writingTo: output, in: directory) { pair in
            try runProgram("/usr/sbin/ip", ["netns", "exec", pair.left, "bash", "-c", sender], limit: 30)
        }
        #expect(status == 1)
        let flows = egressFlows(try readReport(output))
        let udp = flows.first { $0["protocol"]?.stringValue == "udp" && $0["dst_port"]?.intValue == 9999 }
        let tcp = flows.first { $0["protocol"]?.stringValue == "tcp" && $0["dst_port"]?.intValue == 8080 }
        #expect(udp?["src"]?.stringValue == "198.51.100.1")
        #expect(udp?["dst"]?.stringValue == "203.0.113.7")
        #expect((udp?["packets"]?.intValue ?? 0) >= 1)
        #expect(tcp?["dst"]?.stringValue == "203.0.113.7")
        #expect((tcp?["packets"]?.intValue ?? 0) >= 1)
        let report = try readReport(output)
        let capture = report["findings"]?.arrayValue?.first?["evidence"]?.arrayValue?.last?["data"]
        #expect(capture?["pcap_stats"]?["dropped"]?.intValue == 0)
        #expect(capture?["snap_length"]?.intValue == 512)
    }

    /// Runs `mijian traffic --interface` for 6 s on the left end of a fresh veth pair with the test policy,
    /// writing the JSON report to `output`, while `send` runs; its exit status (a watchdog kills it after 60 s).
    static func watch(writingTo output: URL, in directory: URL, send: (VethPair) throws -> Void) throws -> Int32 {
        #expect(FileManager.default.isExecutableFile(atPath: mijianBinary))
        let policy = directory.appendingPathComponent("policy.yaml")
        try Data(trafficPolicyYAML.utf8).write(to: policy)
        let pair = try VethPair()
        defer { pair.close() }
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        watcher.arguments = [
            "netns", "exec", pair.left, mijianBinary, "traffic", "--interface", pair.leftLink, "--duration", "6",
            "--policy", policy.path, "--format", "json", "--output", output.path,
        ]
        watcher.standardOutput = FileHandle.nullDevice
        watcher.standardError = FileHandle.nullDevice
        try watcher.run()
        try send(pair)
        let watcherPID = watcher.processIdentifier
        let watchdog = DispatchWorkItem { if watcher.isRunning { kill(watcherPID, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        watcher.waitUntilExit()
        watchdog.cancel()
        return watcher.terminationStatus
    }

    @Test func aSilentInterfaceStopsOnTime() throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let pair = try VethPair()
        defer { pair.close() }
        let output = directory.appendingPathComponent("silent.json")
        let started = Date()
        // The watchdog kills a watch that overruns by far; a kill shows as a non-zero status and no report.
        let (status, _) = try runProgram(
            "/usr/sbin/ip",
            ["netns", "exec", pair.right, mijianBinary, "traffic", "--interface", pair.rightLink, "--duration", "2",
             "--format", "json", "--output", output.path],
            limit: 30)
        let elapsed = Date().timeIntervalSince(started)
        #expect(status == 0)
        #expect(elapsed >= 2)
        #expect(elapsed < 30)
        let report = try readReport(output)
        #expect(egressFlows(report).isEmpty)
        #expect(report["findings"]?.arrayValue?.first?["status"]?.stringValue == "pass")
    }
}
