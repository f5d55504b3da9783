#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

@Suite("mijian run under a stand-in systemd", .serialized)
struct ServiceTests {
    @Test(arguments: ["path", "abstract"])
    func readyStatusWatchdogThenAFinalReportOnSIGTERM(kind: String) async throws {
        let machine = try AgentMachine()
        try machine.writeConfig("report_interval: 1h\naudit_interval: 1h\ndelivery: {mode: none}\ntraffic: {enabled: false}\n")
        let name = kind == "path" ? machine.directory.appendingPathComponent("notify.sock").path : "@mijian-test-\(UUID().uuidString)"
        let notify = try NotifySocket(name: name)
        let agent = try AgentProcess(machine, environment: ["NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000"])
        let messages = await notify.receive(seconds: 60) { messages in
            messages.contains("READY=1") && messages.contains { $0.hasPrefix("STATUS=report seq 0 sealed") }
                && messages.filter { $0 == "WATCHDOG=1" }.count >= 3
        }
        #expect(messages.contains("READY=1"), "no READY=1; the agent said: \(agent.log.all)")
        #expect(messages.contains { $0.hasPrefix("STATUS=") })
        #expect(messages.contains { $0.hasPrefix("STATUS=report seq 0 sealed") }, "\(messages)")
        #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 3, "WATCHDOG=1 every half of WATCHDOG_USEC: \(messages)")
        #expect(try machine.spooled().count == 1, "READY comes after the first report is sealed")
        // SIGTERM: a final report, exit 0, within 5 s.
        let stopping = Date()
        agent.signal(SIGTERM)
        let status = await agent.waitForExit(seconds: 5)
        #expect(status == 0, "exit \(String(describing: status)) after \(Date().timeIntervalSince(stopping)) s: \(agent.log.all)")
        let spooled = try machine.spooled()
        #expect(spooled.count == 2)
        #expect(spooled.last?.payload["seq"]?.intValue == 1)
        // The log speaks journald's level prefix, and nothing of the key.
        let log = agent.log.all
        #expect(log.split(separator: "\n").allSatisfy { $0.hasPrefix("<") }, "\(log)")
        #expect(log.contains("<6>sealed report seq 0"))
        // Code run only to start is given back once the first report is out (the binary's code at least).
        #expect(log.range(of: #"<6>code pages given back after the first report: [1-9][0-9]* KiB in [1-9][0-9]* mapping"#, options: .regularExpression) != nil, "\(log)")
        let key = try String(contentsOfFile: machine.state + "/agent.key", encoding: .utf8)
        let body = key.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        #expect(!log.contains(body) && !log.contains("PRIVATE KEY"))
    }

    /// systemd that does not read its notify socket (busy, or stopping) fills the socket's queue
    /// (`net.unix.max_dgram_qlen`, 10 here): the agent's notifications are dropped with a warning,
    /// and neither the watchdog, a seal nor the stop waits on the socket.
    @Test func aNotifySocketNobodyReadsDelaysNothing() async throws {
        let machine = try AgentMachine()
        try machine.writeConfig("report_interval: 1h\naudit_interval: 1h\ndelivery: {mode: none}\ntraffic: {enabled: false}\n")
        let notify = try NotifySocket(name: machine.directory.appendingPathComponent("notify.sock").path)
        // WATCHDOG=1 every 50 ms: the queue is full within a second of not reading it.
        let agent = try AgentProcess(machine, environment: ["NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "100000"])
        #expect(await notify.receive(seconds: 60) { $0.contains("READY=1") }.contains("READY=1"), "\(agent.log.all)")
        try await Task.sleep(for: .seconds(2))
        agent.signal(SIGTERM)
        let stopping = Date()
        let status = await agent.waitForExit(seconds: 5)
        #expect(status == 0, "exit \(String(describing: status)) after \(Date().timeIntervalSince(stopping)) s: \(agent.log.all)")
        #expect(try machine.spooled().last?.payload["seq"]?.intValue == 1, "the final report is sealed")
        #expect(agent.log.all.contains("systemd's notify socket is full"), "\(agent.log.all)")
    }

    @Test func aBrokenConfigurationStopsTheStartWithFileLineAndKey() async throws {
        let machine = try AgentMachine()
        try machine.writeConfig("report_interval: 15m\nspool:\n  max_byts: 1M\n")
        let agent = try AgentProcess(machine)
        #expect(await agent.waitForExit(seconds: 20) == 2)
        #expect(agent.log.all.contains("\(machine.config):3: spool.max_byts: unknown key"), "\(agent.log.all)")
    }

    @Test func sighupKeepsABrokenPolicyAndTakesAGoodOne() async throws {
        let machine = try AgentMachine()
        try machine.writeConfig("report_interval: 1h\naudit_interval: 1h\ndelivery: {mode: none}\ntraffic: {enabled: false}\n")
        let policyPath = machine.directory.appendingPathComponent("policy.yaml").path
        let original = EmbeddedPolicies.classifiedWorkstation
        try Data(original.utf8).write(to: URL(fileURLWithPath: policyPath))
        let notify = try NotifySocket(name: machine.directory.appendingPathComponent("notify.sock").path)
        let agent = try AgentProcess(machine, policy: policyPath, environment: ["NOTIFY_SOCKET": notify.name])
        #expect(await notify.receive(seconds: 60) { $0.contains("READY=1") }.contains("READY=1"), "\(agent.log.all)")
        let firstDigest = try #require(try machine.spooled().first?.payload["policy"]?["sha256"]?.stringValue)

        // Broken: an unknown key on line 3. The old policy stays; the log names file:line:key.
        try Data("id: broken\nversion: \"1\"\nprofil: classified\n".utf8).write(to: URL(fileURLWithPath: policyPath))
        agent.signal(SIGHUP)
        #expect(await eventually(10) { agent.log.all.contains("\(policyPath):3: profil: unknown key") }, "\(agent.log.all)")
        #expect(agent.process.isRunning)

        // Good: a changed policy; the next report carries its digest.
        let changed = original.replacingOccurrences(of: "version: \"2026.1\"", with: "version: \"2026.2\"")
        #expect(changed != original)
        try Data(changed.utf8).write(to: URL(fileURLWithPath: policyPath))
        agent.signal(SIGHUP)
        #expect(await eventually(30) { agent.log.all.contains("policy reloaded") }, "\(agent.log.all)")
        var newDigest: String?
        #expect(await eventually(30) {
            let reports = (try? machine.spooled()) ?? []
            newDigest = reports.last?.payload["policy"]?["sha256"]?.stringValue
            return reports.count >= 2 && newDigest != firstDigest
        }, "no report with the new policy: \(agent.log.all)")
        #expect(newDigest == (try Policy.parse(Array(changed.utf8), file: "changed.yaml")).sha256)
        // The report sealed after the refused reload told of it.
        let reports = try machine.spooled()
        let told = reports.contains { (healthFinding($0.payload)?["status_detail"]?.stringValue ?? "").contains("profil: unknown key") }
        #expect(told)
        agent.signal(SIGTERM)
        #expect(await agent.waitForExit(seconds: 5) == 0)
        // After the good reload the file on disk is the policy in force: the last report's self-check says so.
        let last = try #require(try machine.spooled().last)
        let check = healthFinding(last.payload)?["evidence"]?.arrayValue?.first?["data"]?["self_check"]
        #expect(check?["policy_file"]?["in_force"]?.boolValue == true, "\(check?.compactString ?? "no self_check")")
        #expect(check?["key"]?["mode"]?.stringValue == "600")
    }
}
