#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianAgent
import MijianCore
import MijianTestSupport
import Testing

@Suite("Delivery to a real collector over TLS, and through a drop directory", .serialized)
struct DeliveryTests {
    @Test func everyReportArrivesOnceInOrderAcrossACollectorOutage() async throws {
        let machine = try AgentMachine()
        let office = try TestSupport.temporaryDirectory("agent-office")
        let (certificate, key) = try makeCertificate(in: office)
        let data = office.appendingPathComponent("data").path
        try sh(TestSupport.productPath("mijian-collector"), ["enroll", "approve", try machine.enrolmentRequest(), "--data", data])
        let port = try CollectorProcess.freePort()
        var collector: CollectorProcess? = try await CollectorProcess(data: data, port: port, certificate: certificate, key: key)
        try machine.writeConfig("""
            delivery:
              mode: https
              url: https://127.0.0.1:\(port)
              ca_file: \(certificate)
              retry_max: 2s
            report_interval: 1s
            audit_interval: 1h
            traffic: {enabled: false}
            """)
        let agent = try AgentProcess(machine)
        func reports() -> Int { ((try? CollectorProcess.hosts(data: data))?.first?["reports"]?.intValue).map(Int.init) ?? 0 }
        #expect(await eventually(60) { reports() >= 3 }, "nothing reached the collector: \(agent.log.all)")

        // The collector goes away: the spool grows, nothing is dropped.
        collector?.stop()
        collector = nil
        #expect(await eventually(30) { ((try? machine.spooled()) ?? []).count >= 4 }, "\(agent.log.all)")
        let waiting = try machine.spooled()
        let seqs = waiting.compactMap { $0.payload["seq"]?.intValue }
        #expect(seqs == Array(seqs.sorted()), "spooled in chain order")

        // Back: the spool drains in order.
        collector = try await CollectorProcess(data: data, port: port, certificate: certificate, key: key)
        #expect(await eventually(60) { reports() >= Int((seqs.last ?? 0) + 1) }, "\(agent.log.all)")
        agent.signal(SIGTERM)
        #expect(await agent.waitForExit(seconds: 5) == 0, "\(agent.log.all)")
        #expect(await eventually(5) { ((try? machine.spooled()) ?? []).isEmpty }, "the final report was to be flushed")

        let host = try #require(try CollectorProcess.hosts(data: data).first)
        let lastSealed = try #require(agent.log.all.components(separatedBy: "sealed report seq ").dropFirst().compactMap { Int64($0.prefix { $0.isNumber }) }.max())
        #expect(host["seq"]?.intValue == lastSealed, "the collector's chain head is the last sealed report")
        #expect(host["reports"]?.intValue == lastSealed + 1, "every report, once")
        #expect(host["missing_reports"]?.intValue == 0, "no gap")
        #expect(host["forks"]?.intValue == 0, "no fork")
        let delivered = agent.log.all.components(separatedBy: "delivered report seq ").dropFirst().compactMap { Int64($0.prefix { $0.isNumber }) }
        #expect(delivered == Array(0...lastSealed), "delivered in chain order, each once: \(delivered)")
        collector?.stop()
    }

    @Test func killNineAtRandomPointsNeitherForksNorLosesASealedReport() async throws {
        let machine = try AgentMachine()
        let office = try TestSupport.temporaryDirectory("agent-office")
        let (certificate, key) = try makeCertificate(in: office)
        let data = office.appendingPathComponent("data").path
        try sh(TestSupport.productPath("mijian-collector"), ["enroll", "approve", try machine.enrolmentRequest(), "--data", data])
        let port = try CollectorProcess.freePort()
        let collector = try await CollectorProcess(data: data, port: port, certificate: certificate, key: key)
        try machine.writeConfig("""
            delivery: {mode: https, url: "https://127.0.0.1:\(port)", ca_file: \(certificate), retry_max: 1s}
            report_interval: 1s
            audit_interval: 1h
            traffic: {enabled: false}
            """)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let agent = try AgentProcess(machine)
            // Anywhere from the start-up audit through sealing, spooling and delivery.
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...2500, using: &generator)))
            agent.kill9()
        }
        let last = try AgentProcess(machine)
        #expect(await eventually(60) { ((try? machine.spooled()) ?? []).count <= 1 && last.log.all.contains("delivered report") }, "\(last.log.all)")
        last.signal(SIGTERM)
        #expect(await last.waitForExit(seconds: 5) == 0)
        #expect(await eventually(5) { ((try? machine.spooled()) ?? []).isEmpty })
        // The last run's final report is the newest link of the chain.
        let sealed = last.log.all.components(separatedBy: "sealed report seq ").dropFirst().compactMap { Int64($0.prefix { $0.isNumber }) }
        let highest = try #require(sealed.max())
        let host = try #require(try CollectorProcess.hosts(data: data).first)
        #expect(host["seq"]?.intValue == highest, "the chain continues to the last sealed report")
        #expect(host["reports"]?.intValue == highest + 1, "every sealed report reached the collector")
        #expect(host["missing_reports"]?.intValue == 0, "no gap")
        #expect(host["forks"]?.intValue == 0, "no fork: no seq was issued twice")
        collector.stop()
    }

    @Test func aCollectorWithAnotherCertificateIsNotTrusted() async throws {
        let machine = try AgentMachine()
        let office = try TestSupport.temporaryDirectory("agent-office")
        let (certificate, key) = try makeCertificate(in: office)
        let stranger = try TestSupport.temporaryDirectory("agent-stranger")
        let (otherCertificate, _) = try makeCertificate(in: stranger)
        let data = office.appendingPathComponent("data").path
        try sh(TestSupport.productPath("mijian-collector"), ["enroll", "approve", try machine.enrolmentRequest(), "--data", data])
        let port = try CollectorProcess.freePort()
        let collector = try await CollectorProcess(data: data, port: port, certificate: certificate, key: key)
        try machine.writeConfig("""
            delivery: {mode: https, url: "https://127.0.0.1:\(port)", ca_file: \(otherCertificate), retry_max: 1s}
            report_interval: 1s
            audit_interval: 1h
            traffic: {enabled: false}
            """)
        let agent = try AgentProcess(machine)
        #expect(await eventually(30) { agent.log.all.contains("not delivered") }, "\(agent.log.all)")
        #expect(((try? CollectorProcess.hosts(data: data)) ?? []).isEmpty, "a report went to a server the CA file does not vouch for")
        agent.signal(SIGTERM)
        _ = await agent.waitForExit(seconds: 5)
        #expect(try machine.spooled().count >= 2, "undelivered reports stay in the spool")
        collector.stop()
    }

    @Test func dropDirectoryReportsAreIngestedByTheCollector() async throws {
        let machine = try AgentMachine()
        let drop = try TestSupport.temporaryDirectory("agent-drop")
        try machine.writeConfig("delivery: {mode: drop_dir, drop_dir: \(drop.path)}\nreport_interval: 1s\naudit_interval: 1h\ntraffic: {enabled: false}\n")
        let agent = try AgentProcess(machine)
        #expect(await eventually(60) { ((try? machine.spooled(in: drop.path)) ?? []).count >= 3 }, "\(agent.log.all)")
        agent.signal(SIGTERM)
        #expect(await agent.waitForExit(seconds: 5) == 0)
        #expect(try machine.spooled().isEmpty, "copied reports leave the spool")
        let carried = try machine.spooled(in: drop.path)
        #expect(carried.map { $0.payload["seq"]?.intValue ?? -1 } == Array(0..<Int64(carried.count)))
        let data = try TestSupport.temporaryDirectory("agent-office").appendingPathComponent("data").path
        try sh(TestSupport.productPath("mijian-collector"), ["enroll", "approve", try machine.enrolmentRequest(), "--data", data])
        try sh(TestSupport.productPath("mijian-collector"), ["ingest", drop.path, "--data", data])
        let host = try #require(try CollectorProcess.hosts(data: data).first)
        #expect(host["reports"]?.intValue == Int64(carried.count))
        #expect(host["missing_reports"]?.intValue == 0)
    }

    @Test func answersAreJudgedByStatusAndDigest() {
        let digest = String(repeating: "a", count: 64)
        #expect(HTTPSTransport.judge(status: 202, body: ["outcome": "accepted", "payload_sha256": .string(digest)], digest: digest) == .delivered("accepted"))
        #expect(HTTPSTransport.judge(status: 202, body: ["outcome": "duplicate", "payload_sha256": .string(digest)], digest: digest) == .delivered("duplicate"))
        if case .retry = HTTPSTransport.judge(status: 202, body: ["outcome": "accepted", "payload_sha256": "bb"], digest: digest) {} else {
            Issue.record("a 202 for another digest must not take the report out of the spool")
        }
        if case .refused = HTTPSTransport.judge(status: 409, body: ["outcome": "fork", "payload_sha256": .string(digest)], digest: digest) {} else {
            Issue.record("a fork is not a delivery")
        }
        if case .refused = HTTPSTransport.judge(status: 409, body: ["error": "replay", "detail": "behind"], digest: digest) {} else {
            Issue.record("a replay is not a delivery")
        }
        if case .retry = HTTPSTransport.judge(status: 403, body: ["error": "unknown-key"], digest: digest) {} else {
            Issue.record("an unenrolled key waits for the office")
        }
        if case .retry = HTTPSTransport.judge(status: 503, body: nil, digest: digest) {} else { Issue.record("5xx is retried") }
    }
}
