import Foundation
import GRDB
import Logging
import MijianCollector
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

/// Envelopes cross plain HTTP and sit on the drop medium: anyone holding one can send it again
/// and again. What brings no new signed content must cost the store and the log nothing per copy.
@Suite("Repeats: duplicates, replays and refusals sent again", .serialized)
struct RepeatTests {
    func outcome(_ result: Result<IngestResult, IngestRefusal>) -> String {
        switch result {
        case .success(let value): return value.outcome.rawValue
        case .failure(let refusal): return refusal.reason
        }
    }

    /// Rows of the tables a repeated submission could add to (the ingest log and, where it
    /// exists, the repeat table), read straight from the database file.
    func logRows(_ store: CollectorStore) throws -> Int {
        let queue = try DatabaseQueue(path: store.path)
        defer { try? queue.close() }
        return try queue.read { db in
            var rows = try Int.fetchOne(db, sql: "SELECT count(*) FROM ingest_log") ?? 0
            if try db.tableExists("repeats") { rows += try Int.fetchOne(db, sql: "SELECT count(*) FROM repeats") ?? 0 }
            return rows
        }
    }

    /// Log lines whose message contains `text`.
    func lines(_ capture: LogCapture, _ text: String) -> Int { capture.all.filter { $0.contains(text) }.count }

    @Test func twentyThousandCopiesOfOneEnvelopeAreOneRow() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine.enrolled(70, in: collector)
        let envelope = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        #expect(outcome(await collector.submit(envelope, source: "http 192.0.2.1:1000", receivedAt: TestUnit.day(1))) == "first")
        let before = try logRows(collector.store)
        for index in 0..<20_000 {
            // Within one window (an hour), from ever other ports, as a flood comes.
            let at = TestUnit.day(1).addingTimeInterval(Double(index) * 0.1)
            let result = await collector.submit(envelope, source: "http 192.0.2.66:\(10_000 + index % 50_000)", receivedAt: at)
            if index == 0 || index == 19_999 { #expect(outcome(result) == "duplicate") }
        }
        let added = try logRows(collector.store) - before
        #expect(added <= 1, "20,000 duplicates added \(added) rows")
        // Counted all the same: nothing is lost from what /metrics and the hosts view read.
        #expect(try collector.store.counts().log["duplicate"] == 20_000)
        #expect(collector.metrics.values["outcome/duplicate"] == 20_000)
        let host = try #require(try collector.store.hosts().first)
        #expect(host.reportCount == 1)
        #expect(host.forkCount == 0)
        let rows = try collector.store.repeats()
        #expect(rows.count == 1)
        #expect(rows.first?.count == 20_000)
        #expect(rows.first?.outcome == "duplicate")
        #expect(rows.first?.firstAt == TestUnit.day(1))
        // Times are stored in whole seconds.
        #expect(rows.first?.lastAt == TestUnit.day(1).addingTimeInterval(1_999))
    }

    @Test func manyCopiesOnTheMediumAreOneRow() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine.enrolled(71, in: collector)
        let envelope = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        let medium = try TestSupport.temporaryDirectory("repeat-medium").path
        for index in 0..<500 {
            try Data(envelope).write(to: URL(fileURLWithPath: FilePathText.join(medium, String(format: "copy-%04d.dsse.json", index))))
        }
        let lines = try await collector.ingest(paths: [medium], receivedAt: TestUnit.day(1))
        #expect(lines.count == 500)
        #expect(lines.filter { $0.outcome == "first" }.count == 1)
        #expect(lines.filter { $0.outcome == "duplicate" }.count == 499)
        #expect(try logRows(collector.store) <= 2)
        #expect(try collector.store.counts().log["duplicate"] == 499)
    }

    @Test func aReplaySentAgainIsOneRowAndAFewLogLines() async throws {
        let capture = LogCapture()
        let (collector, _) = try TestUnit.collector(logger: capture.logger)
        let machine = try TestMachine.enrolled(72, in: collector)
        let old = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        #expect(outcome(await collector.submit(old, source: "test", receivedAt: TestUnit.day(1))) == "first")
        // The next report of epoch 0 is signed but never arrives; the machine moves to epoch 1.
        let neverSent = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(2)), issuedAt: TestUnit.day(2))
        machine.epoch = 1
        machine.seq = 0
        machine.prev = ""
        let renewed = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(3)), issuedAt: TestUnit.day(3))
        #expect(outcome(await collector.submit(renewed, source: "test", receivedAt: TestUnit.day(3))) == "new-epoch")
        let before = try logRows(collector.store)
        let linesBefore = lines(capture, "chain replay")
        for index in 0..<2_000 {
            let result = await collector.submit(neverSent, source: "http 192.0.2.67:\(20_000 + index)", receivedAt: TestUnit.day(3).addingTimeInterval(Double(index)))
            if index == 0 || index == 1_999 { #expect(outcome(result) == "replay") }
        }
        #expect(try logRows(collector.store) - before <= 1)
        #expect(try collector.store.counts().log["replay/replay"] == 2_000)
        // The first ten, then one at 100 and at 1,000: each line says how many it stands for.
        let replayLines = lines(capture, "chain replay") - linesBefore
        #expect(replayLines == 12, "\(replayLines) log lines for 2,000 replays")
        #expect(try collector.store.hosts().first?.chain.epoch == 1)
    }

    @Test func theSameForkAgainIsADuplicateAndANewForkIsStillStoredAndFlagged() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine.enrolled(73, in: collector)
        let r0 = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        #expect(outcome(await collector.submit(r0, source: "test", receivedAt: TestUnit.day(1))) == "first")
        // Other content at seq 0: a fork.
        let forked = try machine.envelope(machine.report(findings: [], issuedAt: TestUnit.day(1).addingTimeInterval(60), seq: 0, prev: ""))
        #expect(outcome(await collector.submit(forked, source: "test", receivedAt: TestUnit.day(1))) == "fork")
        let before = try logRows(collector.store)
        for index in 0..<1_000 {
            let result = await collector.submit(forked, source: "test", receivedAt: TestUnit.day(1).addingTimeInterval(Double(index)))
            if index == 999 { #expect(outcome(result) == "duplicate") }
        }
        #expect(try logRows(collector.store) - before <= 1)
        #expect(try collector.store.hosts().first?.forkCount == 1)
        // A genuinely new fork is new signed content: stored and flagged.
        let another = try machine.envelope(machine.report(findings: [], issuedAt: TestUnit.day(1).addingTimeInterval(120), seq: 0, prev: ""))
        #expect(outcome(await collector.submit(another, source: "test", receivedAt: TestUnit.day(1).addingTimeInterval(2_000))) == "fork")
        #expect(try collector.store.hosts().first?.forkCount == 2)
        #expect(try collector.store.counts().stored["fork"] == 2)
        #expect(try collector.store.snapshot(year: 2026).forks.count == 2)
    }

    @Test func theRepeatTableIsBounded() async throws {
        var limits = RefusalLogLimits()
        limits.maxRows = 50
        let store = try CollectorStore(directory: try TestSupport.temporaryDirectory("repeat-bound").path, refusalLimits: limits)
        let collector = Collector(store: store, verifier: EvidenceSubmissionVerifier(store: store), logger: TestUnit.logger)
        let machine = try TestMachine.enrolled(74, in: collector)
        let envelope = try machine.next(findings: [], issuedAt: TestUnit.day(1))
        let medium = try TestSupport.temporaryDirectory("repeat-bound-medium").path
        try Data(envelope).write(to: URL(fileURLWithPath: FilePathText.join(medium, "r.dsse.json")))
        // A copy an hour for 200 hours: a new window each time.
        for hour in 0..<200 { _ = try await collector.ingest(paths: [medium], receivedAt: TestUnit.day(1).addingTimeInterval(Double(hour) * 3600)) }
        #expect(try store.repeats(limit: 1000).count == 50)
        #expect(try logRows(store) <= 51)
    }

    @Test func duplicatesAndReplaysLoggedOneRowEachBeforeAreMovedIntoTheCountedTable() throws {
        // A database as the previous version left it: one ingest_log row per duplicate and replay.
        let directory = try TestSupport.temporaryDirectory("repeat-migrate").path
        _ = try CollectorStore(directory: directory)
        var statements = ["DROP TABLE repeats", "DROP TABLE repeat_drops", "DELETE FROM grdb_migrations WHERE identifier = 'v4-repeats'"]
        let outcomes = Array(repeating: "duplicate", count: 300) + ["replay", "replay", "first"]
        for (index, outcome) in outcomes.enumerated() {
            let reason = outcome == "replay" ? "'replay'" : "NULL"
            statements.append("""
                INSERT INTO ingest_log (received_at, source, host_id, keyid, epoch, seq, payload_sha256, outcome, reason, detail)
                VALUES ('2026-03-01T10:\(String(format: "%02d", index % 60)):00Z', 'http 192.0.2.8:\(index)', 'h', 'k', 0, 1, 'd\(outcome)', '\(outcome)', \(reason), 'x')
                """)
        }
        let queue = try DatabaseQueue(path: FilePathText.join(directory, "collector.sqlite"))
        try queue.write { db in try db.execute(sql: statements.joined(separator: ";\n")) }
        try queue.close()
        let store = try CollectorStore(directory: directory)
        #expect(try store.repeats().map(\.count).sorted() == [2, 300])
        let counts = try store.counts().log
        #expect(counts["duplicate"] == 300)
        #expect(counts["replay/replay"] == 2)
        #expect(counts["first"] == 1)
        #expect(try logRows(store) == 3)
    }

    @Test func anOverlongIdentitySentAgainWritesABoundedNumberOfLogLines() async throws {
        let capture = LogCapture()
        let (collector, _) = try TestUnit.collector(logger: capture.logger)
        let machine = try TestMachine.enrolled(75, in: collector)
        var report = machine.report(findings: [], issuedAt: TestUnit.day(1))
        report.host.hostname = String(repeating: "h", count: 4096)
        let envelope = try machine.envelope(report)
        for index in 0..<2_000 {
            let result = await collector.submit(envelope, source: "http 192.0.2.68:\(30_000 + index)", receivedAt: TestUnit.day(1).addingTimeInterval(Double(index)))
            if index == 0 || index == 1_999 { #expect(outcome(result) == "identity-too-long") }
        }
        let refused = lines(capture, "report refused")
        #expect(refused == 12, "\(refused) log lines for 2,000 refusals")
        #expect(collector.metrics.values["refused/identity-too-long"] == 2_000)
        #expect(try collector.store.refusals().map(\.count) == [2_000])
    }
}

extension TestMachine {
    /// Machine `index`, `ws-INDEX`, enrolled into `collector`.
    fileprivate static func enrolled(_ index: Int, in collector: Collector) throws -> TestMachine {
        let machine = try TestMachine(index: index, hostname: "ws-\(index)", assetID: "JSJ-\(index)", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        return machine
    }
}

/// A machine whose clock was fast when its epoch began.
@Suite("Repeats: an epoch from the future is accepted and flagged")
struct RepeatEpochTests {
    /// An enrolled machine whose epoch began on day 31 of the test year.
    func machineStartedFast(_ index: Int, in collector: Collector) throws -> TestMachine {
        let machine = try TestMachine.enrolled(index, in: collector)
        machine.epoch = Int64(TestUnit.day(31).timeIntervalSince1970)
        return machine
    }

    @Test func aMachineWhoseEpochIsThirtyDaysAheadKeepsBeingAcceptedAndIsFlagged() async throws {
        let (collector, _) = try TestUnit.collector()
        // First started with its clock 30 days fast; the clock was set right afterwards.
        let machine = try machineStartedFast(77, in: collector)
        for day in 1...5 {
            let envelope = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day))
            let result = await collector.submit(envelope, source: "test", receivedAt: TestUnit.day(day))
            guard case .success(let value) = result else {
                Issue.record("day \(day): refused: \(result)")
                continue
            }
            #expect(value.outcome == (day == 1 ? .first : .accepted))
            #expect(value.clockSkew?.kind == "epoch-ahead")
            #expect(value.clockSkew?.seconds == Int64(31 - day) * 86_400)
        }
        var host = try #require(try collector.store.hosts().first)
        #expect(host.chain.seq == 4)
        #expect(host.lastSkew == "epoch-ahead")
        #expect(host.skewedReports == 5)
        let snapshot = try collector.store.snapshot(year: 2026)
        #expect(snapshot.skews.map(\.kind) == Array(repeating: "epoch-ahead", count: 5))
        // The assessment shows it as a clock finding of the machine and says which kind it is.
        let clock = Correlation.evaluate(snapshot, settings: UnitSettings(policies: try CollectorSetup.policies([])), now: TestUnit.day(6))
            .filter { $0.subject == "host ws-77 clock" }
        #expect(clock.count == 1)
        #expect(clock.first?.status == .fail)
        #expect(clock.first?.detailEN.contains("5 of them begin an epoch after they were received") == true)
        #expect(clock.first?.evidence.allSatisfy { $0.status == "epoch-ahead" && $0.detail.hasPrefix("epoch \(machine.epoch) begins") } == true)
        // The agent restarts with a new key: its next epoch is numbered after the old one, still ahead.
        machine.epoch += 1
        machine.seq = 0
        machine.prev = ""
        let renewed = try machine.next(findings: [], issuedAt: TestUnit.day(6))
        #expect((try? await collector.submit(renewed, source: "test", receivedAt: TestUnit.day(6)).get())?.outcome == .newEpoch)
        // Once the collector's clock has passed the epoch, the flag ends by itself.
        let later = try machine.next(findings: [], issuedAt: TestUnit.day(40))
        let value = try await collector.submit(later, source: "test", receivedAt: TestUnit.day(40)).get()
        #expect(value.outcome == .accepted)
        #expect(value.clockSkew == nil)
        host = try #require(try collector.store.hosts().first)
        #expect(host.lastSkew == nil)
    }

    @Test func aMachineWhoseClockIsStillThirtyDaysAheadIsAcceptedAndFlaggedAhead() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try machineStartedFast(78, in: collector)
        for day in 1...3 {
            let envelope = try machine.next(findings: [], issuedAt: TestUnit.day(day + 30))
            let value = try await collector.submit(envelope, source: "test", receivedAt: TestUnit.day(day)).get()
            #expect(value.clockSkew?.kind == "ahead")
        }
        #expect(try collector.store.hosts().first?.chain.seq == 2)
    }
}
