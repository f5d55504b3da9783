import Foundation
import Logging
import MijianAgent
import MijianCore
import MijianTestSupport
import Testing

@Suite("A collector that refuses the connection", .serialized)
struct RefusedDeliveryTests {
    /// Nothing listens on the port: the attempt fails at once (the back-off alone sets the pace)
    /// and says so in plain words with balanced parentheses.
    @Test func aRefusedConnectionFailsAtOnceAndSaysSo() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        try #require(await rig.sealer.seal(reason: "test") != nil)
        let next = try #require(await rig.sealer.nextForDelivery())
        let (certificate, _) = try makeCertificate(in: rig.state)
        let port = try CollectorProcess.freePort()
        let transport = try HTTPSTransport(url: "https://127.0.0.1:\(port)", caFile: certificate, logger: Logger(label: "refused-test"))
        var times: [Duration] = []
        var outcome = DeliveryOutcome.delivered("not tried")
        for _ in 0..<3 {
            let started = ContinuousClock.now
            outcome = await transport.deliver(next.entry, bytes: next.bytes)
            times.append(ContinuousClock.now - started)
        }
        await transport.shutdown()
        print("refused deliveries took \(times.map { "\($0)" }.joined(separator: ", "))")
        guard case .retry(let why) = outcome else {
            Issue.record("a refused connection is retried later, got \(outcome)")
            return
        }
        #expect(why == "https://127.0.0.1:\(port)/v1/reports: connection refused: nothing listens at that address and port (errno 111)", "\(why)")
        #expect(why.filter { $0 == "(" }.count == why.filter { $0 == ")" }.count, "\(why)")
        // Each attempt takes about a connect() to loopback (milliseconds), never the connect
        // timeout (5 s): the bound sits below the timeout, with room for a loaded machine.
        #expect(times.allSatisfy { $0 < .seconds(4) }, "\(times)")
    }

    @Test func socketErrorsInWords() {
        #expect(DeliveryFailure.socket(ECONNREFUSED) == "connection refused: nothing listens at that address and port (errno 111)")
        #expect(DeliveryFailure.socket(EHOSTUNREACH) == "no route to the collector's host (errno 113)")
    }
}
