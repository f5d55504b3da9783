#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

@Suite("Audit on change: rtnetlink in a network namespace", .serialized)
struct AuditOnChangeTests {
    @Test func aDefaultRouteIsInASignedReportWithinFiveSeconds() async throws {
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
        #expect(await notify.receive(seconds: 60) { $0.contains("READY=1") }.contains("READY=1"), "\(agent.log.all)")
        func routeStatus(_ payload: JSONValue) -> String? {
            payload["findings"]?.arrayValue?.first { $0["rule"]?["id"]?.stringValue == "net.internet-route" }?["status"]?.stringValue
        }
        let first = try machine.spooled()
        #expect(first.count == 1)
        #expect(first.first.map { routeStatus($0.payload) } == "pass", "no default route yet")

        let added = Date()
        try sh("/usr/sbin/ip", ["netns", "exec", namespace, "ip", "route", "add", "default", "via", "10.9.0.1"])
        var seenAfter: Double?
        let found = await eventually(5) {
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
        #expect(await agent.waitForExit(seconds: 5) == 0)
    }

    @Test func trafficToATestNetAddressIsFlaggedInTheNextReport() async throws {
        let namespace = "mijian-traffic-\(getpid())"
        defer { _ = try? TestSupport.run("/usr/sbin/ip", ["netns", "del", namespace]) }
        try makeEgressNamespace(namespace)
        let machine = try AgentMachine()
        try machine.writeConfig("delivery: {mode: none}\nreport_interval: 1h\naudit_interval: 1h\ntraffic: {enabled: true, links: [v0]}\n")
        let notify = try NotifySocket(name: machine.directory.appendingPathComponent("notify.sock").path)
        let agent = try AgentProcess(machine, environment: ["NOTIFY_SOCKET": notify.name], prefix: ["/usr/sbin/ip", "netns", "exec", namespace])
        #expect(await notify.receive(seconds: 60) { $0.contains("READY=1") }.contains("READY=1"), "\(agent.log.all)")
        #expect(await eventually(10) { agent.log.all.contains("capturing on v0") }, "\(agent.log.all)")
        let before = try machine.spooled().count
        for _ in 0..<3 {
            try sh("/usr/sbin/ip", ["netns", "exec", namespace, "bash", "-c", "echo mijian > /dev/udp/198.51.100.7/9"])
        }
        func flagged(_ payload: JSONValue) -> Bool {
            (payload["events"]?.arrayValue ?? []).contains {
                $0["type"]?.stringValue == "traffic.flow" && ($0["data"]?.compactString ?? "").contains("198.51.100.7")
            }
        }
        #expect(await eventually(10) { ((try? machine.spooled()) ?? []).dropFirst(before).contains { flagged($0.payload) } }, "\(agent.log.all)")
        agent.signal(SIGTERM)
        #expect(await agent.waitForExit(seconds: 5) == 0)
        // Every report carries the capture's counters: a drop would be a visible gap.
        let last = try #require(try machine.spooled().last)
        let traffic = healthFinding(last.payload)?["evidence"]?.arrayValue?.first?["data"]?["sources"]?["traffic"]?["v0"]
        #expect(traffic?["received"]?.intValue ?? 0 >= 1, "\(String(describing: traffic))")
        #expect(traffic?["dropped"]?.intValue == 0)
        // Every report has the link's traffic.egress finding for its own stretch: the report that
        // carries the flagged flow fails it and names the address; the three packets are counted
        // once across the reports; a report whose stretch saw none of them passes.
        let reports = try machine.spooled()
        func egress(_ payload: JSONValue) -> JSONValue? {
            payload["findings"]?.arrayValue?.first { $0["rule"]?["id"]?.stringValue == "traffic.egress" && $0["subject"]?.stringValue == "interface v0" }
        }
        func violating(_ finding: JSONValue?) -> Int64 {
            (finding?["evidence"]?.arrayValue ?? []).compactMap { $0["data"]?["packets_violating"]?.intValue }.reduce(0, +)
        }
        // v0 was up in every report's stretch: none may claim that no link was up, and each has a
        // finding for v0 (its capture's, or "not started yet" for the first report of a start).
        for report in reports {
            let subjects = (report.payload["findings"]?.arrayValue ?? [])
                .filter { $0["rule"]?["id"]?.stringValue == "traffic.egress" }.compactMap { $0["subject"]?.stringValue }
            #expect(subjects == ["interface v0"], "report \(report.name): \(subjects) \(agent.log.all)")
        }
        let withFlow = try #require(reports.first { flagged($0.payload) })
        #expect(egress(withFlow.payload)?["status"]?.stringValue == "fail", "\(String(describing: egress(withFlow.payload)))")
        let failing = egress(withFlow.payload)?.compactString ?? ""
        #expect(failing.contains("198.51.100.7"), "\(failing)")
        let afterStart = reports.filter { egress($0.payload) != nil }
        #expect(afterStart.reduce(0) { $0 + violating(egress($1.payload)) } == 3, "\(afterStart.map { egress($0.payload)?.compactString ?? "" })")
        for report in afterStart {
            let finding = egress(report.payload)
            #expect((finding?["status"]?.stringValue == "fail") == (violating(finding) > 0), "\(finding?.compactString ?? "")")
        }
    }
}
