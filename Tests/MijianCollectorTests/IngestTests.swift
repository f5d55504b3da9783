import Foundation
import MijianCollector
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

@Suite("Ingest: verification, chain and storage on a real SQLite file")
struct IngestTests {
    func accepted(_ result: Result<IngestResult, IngestRefusal>) throws -> IngestResult {
        switch result {
        case .success(let value): return value
        case .failure(let refusal): throw refusal
        }
    }

    func refusal(_ result: Result<IngestResult, IngestRefusal>) -> IngestRefusal? {
        if case .failure(let refusal) = result { return refusal }
        return nil
    }

    @Test func everyChainOutcomeIsStoredAndVisible() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 1, hostname: "ws-01", assetID: "JSJ-01", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)

        let r0 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        #expect(try accepted(await collector.submit(r0, source: "test")).outcome == .first)
        let r1 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(2)), issuedAt: TestUnit.day(2))
        let first = try accepted(await collector.submit(r1, source: "test"))
        #expect(first.outcome == .accepted)
        // An agent retrying: nothing changes.
        #expect(try accepted(await collector.submit(r1, source: "test")).outcome == .duplicate)
        // Replay of an older report that is not stored verbatim: refused as a conflict.
        let older = machine.report(findings: [], issuedAt: TestUnit.day(1), seq: 0, prev: "")
        let replay = try accepted(await collector.submit(try machine.envelope(older), source: "test"))
        #expect(replay.outcome == .replay)
        // Same seq, other content: stored as a fork, the chain stays.
        let forked = machine.report(findings: [], issuedAt: TestUnit.day(2), seq: 1, prev: machine.prev)
        let fork = try accepted(await collector.submit(try machine.envelope(forked), source: "test"))
        #expect(fork.outcome == .fork)
        // A gap: seqs 2 and 3 never arrive.
        machine.seq = 4
        let r4 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(5)), issuedAt: TestUnit.day(5))
        let gap = try accepted(await collector.submit(r4, source: "test"))
        #expect(gap.outcome == .gap)
        #expect(gap.missing == 2...3)
        // A new epoch (re-install): accepted and noted.
        machine.epoch = 1
        machine.seq = 0
        machine.prev = ""
        let e1 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(6)), issuedAt: TestUnit.day(6))
        #expect(try accepted(await collector.submit(e1, source: "test")).outcome == .newEpoch)

        let hosts = try collector.store.hosts()
        #expect(hosts.count == 1)
        #expect(hosts.first?.chain.epoch == 1)
        #expect(hosts.first?.chain.seq == 0)
        #expect(hosts.first?.forkCount == 1)
        #expect(hosts.first?.missingCount == 2)
        let counts = try collector.store.counts()
        #expect(counts.stored == ["first": 1, "accepted": 1, "fork": 1, "gap": 1, "new-epoch": 1])
        #expect(counts.log["duplicate"] == 1)
        #expect(counts.log["replay/replay"] == 1)
        // Stored verbatim: the envelope comes back byte for byte.
        #expect(try collector.store.envelope(hostID: machine.host.hostID, payloadSHA256: first.payloadSHA256) == r1)
        // `mijian-collector report HOST SEQ`: the payload of the machine's report at that seq (the
        // one stored first when a fork shares it), read by the machine's own key.
        let payload = try #require(try collector.store.reportPayload(hostID: machine.host.hostID, epoch: nil, seq: 1))
        #expect(TestUnit.sha256(payload) == first.payloadSHA256)
        #expect(try collector.store.reportPayload(hostID: machine.host.hostID, epoch: 0, seq: 1).map(TestUnit.sha256) == first.payloadSHA256)
        #expect(try collector.store.reportPayload(hostID: machine.host.hostID, epoch: 1, seq: 1) == nil)
        #expect(try collector.store.reportPayload(hostID: machine.host.hostID, epoch: nil, seq: 99) == nil)
        #expect(try collector.store.reportPayload(hostID: "another-machine", epoch: nil, seq: 1) == nil)
    }

    @Test func forgedMalformedAndForeignBodiesAreRefusedWithTheirReason() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 2, hostname: "ws-02", assetID: "JSJ-02", classification: .confidential)
        let stranger = try TestMachine(index: 3, hostname: "ws-03", assetID: "JSJ-03", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        let report = machine.report(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))

        // Signed by another key but claiming the enrolled one.
        var forged = try DSSE.sign(payload: report.payloadBytes(), type: PayloadType.report, key: stranger.key)
        forged.signatures = forged.signatures.map { Envelope.Signature(keyid: machine.key.keyid, sig: $0.sig) }
        #expect(refusal(await collector.submit(forged.serialized(), source: "test"))?.reason == "bad-signature")
        // Payload altered after signing.
        var altered = try DSSE.sign(payload: report.payloadBytes(), type: PayloadType.report, key: machine.key)
        altered.payload = Array(String(decoding: altered.payload, as: UTF8.self).replacingOccurrences(of: "ws-02", with: "ws-99").utf8)
        #expect(refusal(await collector.submit(altered.serialized(), source: "test"))?.reason == "bad-signature")
        // Not an envelope at all.
        #expect(refusal(await collector.submit(Array("not json".utf8), source: "test"))?.reason == "malformed")
        #expect(refusal(await collector.submit(Array("{}".utf8), source: "test"))?.reason == "malformed")
        // The right key but the wrong payload type.
        let wrongType = try DSSE.sign(payload: report.payloadBytes(), type: PayloadType.enrolment, key: machine.key)
        #expect(refusal(await collector.submit(wrongType.serialized(), source: "test"))?.reason == "wrong-type")
        // A key nobody enrolled.
        let foreign = try stranger.envelope(stranger.report(findings: [], issuedAt: TestUnit.day(1)))
        #expect(refusal(await collector.submit(foreign, source: "test"))?.reason == "unknown-key")
        // An enrolled key speaking for another machine.
        var impostor = machine.report(findings: [], issuedAt: TestUnit.day(1))
        impostor.host = stranger.host
        #expect(refusal(await collector.submit(try machine.envelope(impostor), source: "test"))?.reason == "host-mismatch")
        // A revoked key.
        try collector.store.revoke(keyid: machine.key.keyid, at: TestUnit.day(1), reason: "lost laptop")
        #expect(refusal(await collector.submit(try machine.envelope(report), source: "test"))?.reason == "revoked")

        #expect(try collector.store.hosts().isEmpty)
        let metrics = collector.metrics.values
        #expect(metrics["refused/bad-signature"] == 2)
        #expect(metrics["refused/malformed"] == 2)
        #expect(metrics["refused/revoked"] == 1)
    }

    @Test func enrolmentRotationNeedsTheOldKeyAndRevokesIt() throws {
        let (collector, _) = try TestUnit.collector()
        let old = try TestMachine(index: 4, hostname: "ws-04", assetID: "JSJ-04", classification: .secret)
        try TestUnit.enrol([old], into: collector)
        let new = try TestMachine(index: 40, hostname: "ws-04", assetID: "JSJ-04", classification: .secret)
        new.host = old.host
        // Signed by the new key alone but naming a previous key: refused.
        var unsigned = try EnrolmentRequest.signed(key: new.key, previous: old.key, host: new.host, at: TestUnit.day(3))
        unsigned.signatures.removeLast()
        #expect(throws: MijianError.self) { try Enrolment.approve(requestBytes: unsigned.serialized(), note: nil, store: collector.store) }
        let record = try Enrolment.approve(requestBytes: try new.enrolmentRequest(previous: old.key, at: TestUnit.day(3)), note: "rotation", store: collector.store)
        #expect(record.previousKeyID == old.key.keyid)
        let keys = try collector.store.keys()
        #expect(keys.count == 2)
        #expect(keys.first { $0.keyid == old.key.keyid }?.isActive == false)
        #expect(keys.first { $0.keyid == new.key.keyid }?.isActive == true)
        // Approving the same request twice is an error, not a second row.
        #expect(throws: MijianError.self) { try Enrolment.approve(requestBytes: try new.enrolmentRequest(previous: old.key, at: TestUnit.day(3)), note: nil, store: collector.store) }
    }

    @Test func aRestartKeepsTheChain() async throws {
        let (collector, path) = try TestUnit.collector()
        let machine = try TestMachine(index: 5, hostname: "ws-05", assetID: "JSJ-05", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        for day in 1...3 {
            _ = try accepted(await collector.submit(try machine.next(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day)), source: "test"))
        }
        // A new process over the same directory.
        let (reopened, _) = try TestUnit.collector(directory: path)
        let next = try accepted(await reopened.submit(try machine.next(findings: machine.cleanFindings(at: TestUnit.day(4)), issuedAt: TestUnit.day(4)), source: "test"))
        #expect(next.outcome == .accepted)
        #expect(try reopened.store.hosts().first?.chain.seq == 3)
        #expect(try reopened.store.hosts().first?.reportCount == 4)
    }

    @Test func filesAreIngestedInChainOrderWhateverTheirNames() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 6, hostname: "ws-06", assetID: "JSJ-06", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        let drop = try TestSupport.temporaryDirectory("drop")
        for (index, day) in (1...4).enumerated() {
            let bytes = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day))
            // Names sort in reverse chain order.
            try Data(bytes).write(to: drop.appendingPathComponent("z\(9 - index).dsse.json"))
        }
        try Data("garbage".utf8).write(to: drop.appendingPathComponent("a-garbage.json"))
        let lines = try await collector.ingest(paths: [drop.path])
        #expect(lines.count == 5)
        #expect(lines.filter { $0.outcome == "malformed" }.count == 1)
        #expect(lines.map(\.outcome).filter { $0 != "malformed" } == ["first", "accepted", "accepted", "accepted"])
        // Ingesting the same drop again changes nothing.
        let again = try await collector.ingest(paths: [drop.path])
        #expect(again.filter { $0.outcome == "duplicate" }.count == 4)
        #expect(try collector.store.hosts().first?.reportCount == 4)
    }

    @Test func clockSkewIsStoredShownAndCitedInTheAssessment() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 31, hostname: "ws-31", assetID: "JSJ-31", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        func send(issued: Date, received: Date) async throws -> IngestResult {
            try accepted(await collector.submit(try machine.next(findings: machine.cleanFindings(at: issued), issuedAt: issued), source: "test", receivedAt: received))
        }
        // Issued two hours after it arrived: the machine's clock is ahead.
        let ahead = try await send(issued: TestUnit.day(10).addingTimeInterval(7200), received: TestUnit.day(10))
        let aheadDigest = machine.prev
        #expect(ahead.outcome == .first)
        #expect(ahead.clockSkew?.kind == "ahead")
        #expect(ahead.clockSkew?.seconds == 7200)
        #expect(ahead.json["clock_skew"]?["seconds"]?.intValue == 7200)
        var host = try #require(try collector.store.hosts().first)
        #expect(host.lastSkew == "ahead")
        #expect(host.lastSkewSeconds == 7200)
        #expect(HostsView.status(host, now: TestUnit.day(10), silentAfterDays: 7, currentPolicies: []).contains("clock-skew"))
        #expect(HostsView.json(host, now: TestUnit.day(10), silentAfterDays: 7, currentPolicies: [])["clock_skew"]?.stringValue == "ahead")

        // Five minutes ahead is within the tolerance; the host's status clears, the count stays.
        let close = try await send(issued: TestUnit.day(11).addingTimeInterval(300), received: TestUnit.day(11))
        #expect(close.clockSkew == nil)
        #expect(close.json["clock_skew"] == nil)
        host = try #require(try collector.store.hosts().first)
        #expect(host.lastSkew == nil)
        #expect(host.skewedReports == 1)
        #expect(!HostsView.status(host, now: TestUnit.day(11), silentAfterDays: 7, currentPolicies: []).contains("clock-skew"))

        // Issued a day before the report it follows: the clock went backwards.
        let backwards = try await send(issued: TestUnit.day(10), received: TestUnit.day(12))
        let backwardsDigest = machine.prev
        #expect(backwards.outcome == .accepted)
        #expect(backwards.clockSkew?.kind == "backwards")
        #expect(backwards.clockSkew?.seconds == -2 * 86_400)

        // Carried across an air gap and ingested a month later: a delay, not a skew.
        let late = try await send(issued: TestUnit.day(13), received: TestUnit.day(43))
        #expect(late.clockSkew == nil)
        host = try #require(try collector.store.hosts().first)
        #expect(host.skewedReports == 2)
        #expect(host.lastSkewSeconds == -30 * 86_400)
        #expect(try collector.store.hosts().first?.reportCount == 4)

        // The year's assessment cites both reports under unit.silent.
        let snapshot = try collector.store.snapshot(year: 2026)
        #expect(snapshot.skews.map(\.kind) == ["ahead", "backwards"])
        let result = AssessmentBuilder.build(
            snapshot: snapshot, table: try CollectorSetup.table(nil), answers: .none, settings: UnitSettings(policies: try CollectorSetup.policies([])),
            now: TestUnit.day(43))
        let clock = try #require(result.unitFindings.first { $0.subject == "host ws-31 clock" })
        #expect(clock.rule.id == "unit.silent")
        #expect(clock.status == .fail)
        #expect(clock.evidence.compactMap(\.reportSHA256) == [aheadDigest, backwardsDigest])
        #expect(clock.evidence.map(\.status) == ["ahead", "backwards"])
    }

    @Test func aRevocationByAnotherProcessRefusesAtOnce() async throws {
        let (collector, path) = try TestUnit.collector()
        let machine = try TestMachine(index: 32, hostname: "ws-32", assetID: "JSJ-32", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        // The running collector has verified (and cached) the key.
        let r0 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        #expect(try accepted(await collector.submit(r0, source: "test")).outcome == .first)
        // `mijian-collector enroll revoke` in another process: its own store over the same file.
        let other = try CollectorStore(directory: path)
        try other.revoke(keyid: machine.key.keyid, at: TestUnit.day(2), reason: "disk replaced")
        let r1 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(3)), issuedAt: TestUnit.day(3))
        #expect(refusal(await collector.submit(r1, source: "test"))?.reason == "revoked")
        #expect(try collector.store.hosts().first?.reportCount == 1)
        #expect(collector.metrics.values["refused/revoked"] == 1)
    }

    @Test func aClockSetAheadDoesNotHideASilentMachine() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 33, hostname: "ws-33", assetID: "JSJ-33", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        // Received on day 10, dated day 40; by day 20 nothing more has come.
        let ahead = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(40)), issuedAt: TestUnit.day(40))
        #expect(try accepted(await collector.submit(ahead, source: "test", receivedAt: TestUnit.day(10))).clockSkew?.kind == "ahead")
        let host = try #require(try collector.store.hosts().first)
        #expect(HostsView.silentDays(host, now: TestUnit.day(20)) == 10)
        #expect(HostsView.status(host, now: TestUnit.day(20), silentAfterDays: 7, currentPolicies: []) == ["silent", "clock-skew"])
        let counts = try await collector.storage.hostCounts(silentSince: HostsView.silentSince(now: TestUnit.day(20), silentAfterDays: 7))
        #expect(counts == HostCounts(hosts: 1, silent: 1))
        #expect(Metrics.text([:], hosts: counts).contains("mijian_collector_hosts_silent 1"))
        // A report carried across an air gap counts from when it was made.
        let (late, _) = try TestUnit.collector()
        let other = try TestMachine(index: 34, hostname: "ws-34", assetID: "JSJ-34", classification: .confidential)
        try TestUnit.enrol([other], into: late)
        let carried = try other.next(findings: other.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        _ = try accepted(await late.submit(carried, source: "test", receivedAt: TestUnit.day(9)))
        let lateHost = try #require(try late.store.hosts().first)
        #expect(HostsView.silentDays(lateHost, now: TestUnit.day(10)) == 9)
    }
}
