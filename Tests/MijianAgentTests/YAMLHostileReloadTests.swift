import Foundation
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

/// `mijian run` reloading an alias bomb on SIGHUP: the reload is refused at once with the bomb's
/// file, line and column, the old policy stays, and SIGTERM still seals the final report and exits 0
/// (before, the reload pinned a core and SIGTERM ended in "Cancellation took longer than allowed").
@Suite struct YAMLHostileReloadTests {
    @Test func sighupRefusesAnAliasBombAndSigtermStillSealsTheFinalReport() async throws {
        let machine = try AgentMachine()
        try machine.writeConfig("report_interval: 1h\naudit_interval: 1h\ndelivery: {mode: none}\ntraffic: {enabled: false}\n")
        let policyPath = machine.directory.appendingPathComponent("policy.yaml").path
        try Data(EmbeddedPolicies.classifiedWorkstation.utf8).write(to: URL(fileURLWithPath: policyPath))
        let notify = try NotifySocket(name: machine.directory.appendingPathComponent("notify.sock").path)
        let agent = try AgentProcess(machine, policy: policyPath, environment: ["NOTIFY_SOCKET": notify.name])
        #expect(await notify.receive(seconds: 60) { $0.contains("READY=1") }.contains("READY=1"), "\(agent.log.all)")
        let first = try #require(try machine.spooled().first)

        var bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1...11 { bomb.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]") }
        try Data((bomb + ["z: {*a11: 1}", ""]).joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: policyPath))
        agent.signal(SIGHUP)
        #expect(await eventually(10) { agent.log.all.contains("\(policyPath):1:5: anchor &a0") }, "\(agent.log.all.suffix(2000))")
        #expect(agent.process.isRunning)

        agent.signal(SIGTERM)
        #expect(await agent.waitForExit(seconds: 10) == 0, "\(agent.log.all.suffix(2000))")
        #expect(!agent.log.all.contains("Cancellation took longer"))
        let last = try #require(try machine.spooled().last)
        #expect(last.name != first.name, "a final report is sealed")
        #expect(last.payload["policy"]?["sha256"]?.stringValue == first.payload["policy"]?["sha256"]?.stringValue, "the old policy stays in force")
    }
}
