#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// The USB control inside `mijian run`: what it saw is in the signed reports.
@Suite("mijian run: the USB watch", .serialized)
struct USBSourceTests {
    @Test func theUSBWatchStartsWithTheServiceAndWhatItSawIsSigned() async throws {
        let machine = try AgentMachine()
        // Audit mode (the built-in policy): nothing is written to this machine's USB switches.
        try machine.writeConfig("report_interval: 1h\naudit_interval: 1h\ndelivery: {mode: none}\ntraffic: {enabled: false}\nusb: {enabled: true}\n")
        let agent = try AgentProcess(machine)
        let watching = await eventually(20) { agent.log.all.contains("usb: watching") }
        #expect(watching, "\(agent.log.all)")
        var info = stat()
        if stat("/sys/bus/usb/devices", &info) != 0 {
            // No USB bus here: the watch cannot see anything, and a signed report says so at once.
            let said = await eventually(20) {
                ((try? machine.spooled()) ?? []).contains { report in
                    (report.payload["events"]?.arrayValue ?? []).contains {
                        $0["type"]?.stringValue == "usb.error" && ($0["data"]?["what"]?.stringValue ?? "").contains("/sys/bus/usb/devices")
                    }
                }
            }
            #expect(said, "no usb.error in a report: \(agent.log.all)")
            // And that report is the first, with the start audit's findings: never agent.health alone.
            let first = try #require(try machine.spooled().first)
            #expect(first.payload["seq"]?.intValue == 0)
            let rules = first.payload["findings"]?.arrayValue?.compactMap { $0["rule"]?["id"]?.stringValue } ?? []
            #expect(rules.contains("net.internet-route") && rules.contains("agent.health"), "\(rules)")
        } else {
            // A USB bus: the coldplug walk ran, the first report is sealed, and the watch is still up.
            #expect(await eventually(60) { ((try? machine.spooled()) ?? []).count >= 1 }, "\(agent.log.all)")
            #expect(!agent.log.all.contains("event source usb stopped"), "\(agent.log.all)")
        }
        agent.signal(SIGTERM)
        #expect(await agent.waitForExit(seconds: 6) == 0)
        #expect(agent.log.all.contains("usb.source=kernel") || agent.log.all.contains("usb.source=udev"), "\(agent.log.all)")
    }

    /// The policy file saved without a signal: the service reads it, and the USB watch is woken
    /// by the reload (no look every second) and judges every present interface again.
    @Test func aSavedPolicyFileReachesTheUSBWatchWithoutASignal() async throws {
        let machine = try AgentMachine()
        try machine.writeConfig("report_interval: 1h\naudit_interval: 1h\ndelivery: {mode: none}\ntraffic: {enabled: false}\nusb: {enabled: true}\n")
        let policyPath = machine.directory.appendingPathComponent("policy.yaml").path
        let original = EmbeddedPolicies.classifiedWorkstation
        try Data(original.utf8).write(to: URL(fileURLWithPath: policyPath))
        let agent = try AgentProcess(machine, policy: policyPath)
        #expect(await eventually(30) { agent.log.all.contains("usb: watching") && agent.log.all.contains("watching the policy file") }, "\(agent.log.all)")
        // Saved as an editor saves: a new file renamed over the old one.
        let changed = original.replacingOccurrences(of: "version: \"2026.1\"", with: "version: \"2026.2\"")
        #expect(changed != original)
        let fresh = machine.directory.appendingPathComponent(".policy.yaml.swp").path
        try Data(changed.utf8).write(to: URL(fileURLWithPath: fresh))
        #expect(rename(fresh, policyPath) == 0)
        #expect(await eventually(30) { agent.log.all.contains("usb: policy reloaded") }, "\(agent.log.all)")
        // The service's line comes first; the log pipe is read on its own, so wait for it too.
        #expect(await eventually(10) { agent.log.all.contains("policy reloaded (the policy file was written)") }, "\(agent.log.all)")
        agent.signal(SIGTERM)
        #expect(await agent.waitForExit(seconds: 6) == 0)
        let last = try #require(try machine.spooled().last)
        #expect(last.payload["policy"]?["sha256"]?.stringValue == (try Policy.parse(Array(changed.utf8), file: "changed.yaml")).sha256)
    }
}
