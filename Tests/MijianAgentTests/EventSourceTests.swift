import Foundation
import MijianAgent
import MijianCore
import Testing

/// A source like the USB monitor will be: it records what it sees and stops when cancelled.
struct ScriptedSource: AgentEventSource {
    let name = "scripted"
    let events: [(Event, Bool)]

    func run(into sink: EventSink) async throws {
        for (event, failing) in events { await sink.record(event, failing: failing) }
        try await Task.sleep(for: .seconds(3600))
    }
}

@Suite("Event sources: the seam for the USB monitor")
struct EventSourceTests {
    @Test func aFailingEventAsksForAReportAtOnceAndLandsInIt() async throws {
        let rig = try SealerRig()
        let sealNow = Wakeup<WakeReason>.service()
        let sink = EventSink(sealNow: sealNow)
        let sealer = Sealer(
            signer: try .init(store: rig.store), spool: rig.spool, sink: sink, policy: rig.policy, host: rig.host, logger: .init(label: "test"))
        try await sealer.start()
        let source = ScriptedSource(events: [
            (Event(type: "usb.attach", observedAt: Date(), data: ["vendor": "0781"]), false),
            (Event(type: "usb.blocked", observedAt: Date(), data: ["vendor": "0781", "product": "5583"]), true),
        ])
        let running = Task { try await source.run(into: sink) }
        defer { running.cancel() }
        let reason = await sealNow.wait(timeout: .seconds(10))
        #expect(reason == .failingEvent("usb.blocked"))
        let summary = try #require(await sealer.seal(reason: reason.map { "\($0)" } ?? "timeout"))
        let report = try #require(try rig.spooled().first { $0.entry.seq == summary.seq })
        #expect(report.payload["events"]?.arrayValue?.compactMap { $0["type"]?.stringValue } == ["usb.attach", "usb.blocked"])
    }
}
