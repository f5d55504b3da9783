#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

@Suite("Audit on change: rtnetlink in a network namespace", .serialized)
struct AuditOnChangeTests {
    @Test func aDefaultRouteIsInASignedReportWithinFiveSeconds() throws {
        let namespace = "mijian-agent-\(getpid())"
        try sh("/usr/sbin/ip", ["netns", "add", namespace])
        defer { _ = try? TestSupport.run("/usr/sbin/ip", ["netns", "del", namespace]) }
        for step in [["link", "set", "lo", "up"], ["link", "add", "v0", "type", "veth", "peer", "name", "v1"], ["addr", "add", "10.9.0.2/24", "dev", "v0"], ["link", "set", "v0", "up"], ["link", "set", "v1", "up"]] {
            try sh("/usr/sbin/ip", ["netns", "exec", namespace, "ip"] + step)
        }
        let machine = try AgentMachine()
        // Reports only on change: the interval is far away, so a report within seconds is the change's.
        try machine.writeConfig("delivery: {mode: none}\nreport_interval: 1h\naudit_interval: 1h\ndebounce: 300ms\ntraffic: {enabled: false}\n")
        let notify = try NotifySocket(name: machine.directory.appendingPathComponent("notify.sock").path)
        let agent = try AgentProcess(machine, environment: ["NOTIFY_SOCKET": notify.name], prefix: ["/usr/sbin/ip", "netns", "exec", namespace])
        #expect(notify.receive(seconds: 60) { $0.contains("READY=1") }.contains("READY=1"), "\(agent.log.all)")
        func routeStatus(_ payload: JSONValue) -> String? {
            payload["findings"]?.arrayValue?.first { $0["rule"]?["id"]?.stringValue == "net.internet-route" }?["status"]?.stringValue
        }
        let first = try machine.spooled()
        #expect(first.count == 1)
        #expect(first.first.map { routeStatus($0.payload) } == "pass", "no default route yet")

        let added = Date()
        try sh("/usr/sbin/ip", ["netns", "exec", namespace, "ip", "route", "add", "default", "via", "10.9.0.1"])
        var seenAfter: Double?
        let found = eventually(5) {
            let reports = (try? machine.spooled()) ?? []
            if reports.count >= 2, reports.dropFirst().contains(where: { routeStatus($0.payload) == "fail" }) {
                seenAfter = Date().timeIntervalSince(added)
                return true
            }
            return false
        }
        #expect(found, "no signed report with the default route within 5 s: \(agent.log.all)")
        if let seenAfter { print("default route → signed report in \(String(format: "%.2f", seenAfter)) s") }
        agent.signal(SIGTERM)
        #expect(agent.waitForExit(seconds: 5) == 0)
    }
}
