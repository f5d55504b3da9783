import Foundation
import Logging
import MijianAgent
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

/// The service in process, with a source whose failing event comes before the start audit can end.
@Suite("The first report waits for the start audit", .serialized)
struct FirstReportTests {
    @Test func aFailingEventBeforeTheStartAuditIsHeldForTheFirstReport() async throws {
        let state = try TestSupport.temporaryDirectory("agent-first")
        let store = KeyStore(directory: state.path)
        _ = try store.initialise()
        var configuration = AgentConfiguration()
        configuration.delivery.mode = .none
        configuration.trafficEnabled = false
        configuration.usbEnabled = false
        configuration.reportInterval = .seconds(3600)
        configuration.auditInterval = .seconds(3600)
        let setup = AgentSetup(
            configuration: configuration, policy: PolicyHolder(try TestSupport.defaultPolicy(), path: nil),
            host: HostInfo(hostID: "test-host", hostname: "ws-test"), store: store)
        let notify = try NotifySocket(name: state.appendingPathComponent("notify.sock").path)
        // What the USB watch does on a machine without a USB bus: a failing event at once.
        let source = ScriptedSource(events: [(Event(type: "usb.error", observedAt: Date(), data: ["error": "no USB bus"]), true)])
        var logger = Logger(label: "first-report-test")
        logger.logLevel = .critical
        let socket = notify.name
        let running = Task { [logger] in try await Agent.run(setup, sources: [source], notifySocket: socket, logger: logger) }
        let messages = await notify.receive(seconds: 60) { $0.contains("READY=1") }
        let spool = Spool(directory: configuration.spoolDirectory(stateDir: state.path), maxBytes: 64 << 20)
        let entries = try spool.entries()
        running.cancel()
        _ = try? await running.value

        #expect(messages.contains("READY=1"), "\(messages)")
        // READY=1 is the first thing said of a report: nothing was sealed before it.
        #expect(!messages.prefix { $0 != "READY=1" }.contains { $0.hasPrefix("STATUS=report seq") }, "\(messages)")
        let first = try #require(entries.first { $0.seq == 0 })
        let payload = try JSONParser().parse(try Envelope.parse(try spool.read(first)).payload)
        let rules = Set(payload["findings"]?.arrayValue?.compactMap { $0["rule"]?["id"]?.stringValue } ?? [])
        // The start audit's findings are in it (the built-in policy's rules), not agent.health alone.
        #expect(rules.contains("net.internet-route") && rules.contains("usb.storage"), "\(rules.sorted())")
        // And so is the event that came before the audit ended.
        #expect(payload["events"]?.arrayValue?.compactMap { $0["type"]?.stringValue } == ["usb.error"])
    }
}
