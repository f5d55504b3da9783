import Foundation
import MijianCollector
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

/// A backend the conformance suite runs against: a name and a way to open an empty store.
struct StoreFactory: Sendable, CustomTestStringConvertible {
    /// Shown in the test's name.
    var name: String
    /// Opens a new, empty store; the returned closure removes what it made.
    var open: @Sendable () async throws -> (store: any CollectorStorage, close: @Sendable () async -> Void)

    var testDescription: String { name }
}

/// Every backend the suite runs against. A backend adds itself with one line here.
enum StoreFactories {
    static let all: [StoreFactory] = [sqliteInMemory, sqliteOnDisk, postgres]

    static let sqliteInMemory = StoreFactory(name: "SQLite in memory") {
        (try SQLiteStore.inMemory(), {})
    }

    static let sqliteOnDisk = StoreFactory(name: "SQLite on disk") {
        let directory = try TestSupport.temporaryDirectory("conformance")
        return (try SQLiteStore(directory: directory.path), { try? FileManager.default.removeItem(at: directory) })
    }
}

/// One workstation as the ledger sees it: verified submissions made straight from its reports
/// (signature verification is the verifier's part, tested apart).
struct LedgerMachine {
    let machine: TestMachine

    init(_ index: Int, hostname: String? = nil) throws {
        machine = try TestMachine(index: index, hostname: hostname ?? "ws-\(index)", assetID: "JSJ-\(index)", classification: .confidential)
    }

    var hostID: String { machine.host.hostID }
    var keyid: String { machine.key.keyid }

    var record: KeyRecord {
        KeyRecord(
            keyid: machine.key.keyid, pem: machine.key.publicKey.pem, hostID: machine.host.hostID, hostname: machine.host.hostname,
            assetID: machine.host.assetID, classification: machine.host.classification, responsible: machine.host.responsible, agentVersion: "test",
            previousKeyID: nil, note: "conformance", requestedAt: TestUnit.start, approvedAt: TestUnit.start, requestSHA256: String(repeating: "0", count: 64))
    }

    /// A report at an explicit place, not moving the machine's chain.
    func submission(seq: Int64, prev: String, epoch: Int64? = nil, issuedAt: Date, receivedAt: Date? = nil, keyid: String? = nil, findings: [Finding]? = nil) -> IngestSubmission {
        let saved = machine.epoch
        if let epoch { machine.epoch = epoch }
        let report = machine.report(findings: findings ?? machine.cleanFindings(at: issuedAt), issuedAt: issuedAt, seq: seq, prev: prev)
        machine.epoch = saved
        let payload = report.payloadBytes()
        let verified = VerifiedSubmission(keyid: keyid ?? self.keyid, payload: payload, payloadSHA256: TestUnit.sha256(payload), report: report)
        return IngestSubmission(verified, envelope: payload, receivedAt: receivedAt ?? issuedAt, source: "http 192.0.2.10:40000")
    }
}

/// An outcome or a refusal as one word: `accepted`, `refused/revoked`.
private func outcome(_ result: Result<IngestResult, IngestRefusal>) -> String {
    switch result {
    case .success(let result): return result.outcome.rawValue
    case .failure(let refusal): return "refused/\(refusal.reason)"
    }
}

/// The storage protocols' behaviour, written once and run against every backend in
/// `StoreFactories.all`: the chain matrix, duplicates, replays, forks, revocation, the registry's
/// rules and every refusal the ledger makes. Each backend must give the same answers.
@Suite struct StoreConformanceTests {
    /// `/metrics` has the database count the machines and the silent ones: the same as reading
    /// every machine and counting `HostsView.silentDays` past the limit, on both sides of its edge.
    @Test(arguments: StoreFactories.all) func theDatabaseCountsTheSilentMachines(_ factory: StoreFactory) async throws {
        let (store, close) = try await factory.open()
        defer { Task { await close() } }
        let day = TestUnit.day
        #expect(try await store.hostCounts(silentSince: day(1)) == HostCounts(hosts: 0, silent: 0))
        // The earlier of issue and receive counts: a clock set ahead, a report carried across an air gap.
        let machines = [try LedgerMachine(41), try LedgerMachine(42), try LedgerMachine(43)]
        let times = [(day(1), day(1).addingTimeInterval(3_600)), (day(9), day(5)), (day(3).addingTimeInterval(1), day(30))]
        for (machine, (issued, received)) in zip(machines, times) {
            try await store.approve(machine.record)
            #expect(outcome(try await store.record(machine.submission(seq: 0, prev: "", issuedAt: issued, receivedAt: received))) == "first")
        }
        let hosts = try await store.hosts()
        #expect(hosts.count == 3)
        var silentSeen = Set<Int>()
        for now in [day(8), day(9).addingTimeInterval(-1), day(9), day(10), day(11), day(11).addingTimeInterval(1), day(40)] {
            for limit in [0, 7] {
                let expected = hosts.count { HostsView.silentDays($0, now: now) > limit }
                silentSeen.insert(expected)
                #expect(try await store.hostCounts(silentSince: HostsView.silentSince(now: now, silentAfterDays: limit)) == HostCounts(hosts: 3, silent: expected), "now \(now), limit \(limit) days")
            }
        }
        #expect(silentSeen == [0, 1, 2, 3])
    }

    @Test(arguments: StoreFactories.all) func theChainMatrix(_ factory: StoreFactory) async throws {
        let (store, close) = try await factory.open()
        defer { Task { await close() } }
        let machine = try LedgerMachine(1)
        try await store.approve(machine.record)
        let day = TestUnit.day
        let first = machine.submission(seq: 0, prev: "", issuedAt: day(1))
        let r0 = try await store.record(first)
        #expect(outcome(r0) == "first")
        let next = machine.submission(seq: 1, prev: first.verified.payloadSHA256, issuedAt: day(2))
        #expect(outcome(try await store.record(next)) == "accepted")
        // The exact report again: a duplicate, counted and not stored twice.
        let again = try await store.record(next)
        #expect(outcome(again) == "duplicate")
        #expect((try? again.get().repeatCount) == 1)
        #expect((try? (try await store.record(next)).get().repeatCount) == 2)
        // Seqs 2 and 3 never arrive.
        let later = machine.submission(seq: 4, prev: "whatever", issuedAt: day(5))
        let gap = try await store.record(later)
        #expect(outcome(gap) == "gap")
        #expect((try? gap.get().missing) == 2...3)
        // Another report at the head's place: a fork, stored, the head stays.
        let fork = machine.submission(seq: 4, prev: "other", issuedAt: day(5).addingTimeInterval(60))
        #expect(outcome(try await store.record(fork)) == "fork")
        // An older place: a replay, not stored.
        let replay = machine.submission(seq: 2, prev: next.verified.payloadSHA256, issuedAt: day(3))
        #expect(outcome(try await store.record(replay)) == "replay")
        // The next seq naming another previous digest: a fork.
        let wrongPrev = machine.submission(seq: 5, prev: fork.verified.payloadSHA256, issuedAt: day(6))
        #expect(outcome(try await store.record(wrongPrev)) == "fork")
        let right = machine.submission(seq: 5, prev: later.verified.payloadSHA256, issuedAt: day(6))
        #expect(outcome(try await store.record(right)) == "accepted")
        // A new epoch starting past 0: accepted, its missing seqs recorded.
        let epoch = machine.submission(seq: 2, prev: "", epoch: 1_800_000_000, issuedAt: day(7))
        let newEpoch = try await store.record(epoch)
        #expect(outcome(newEpoch) == "new-epoch")
        #expect((try? newEpoch.get().missing) == 0...1)
        // An older epoch after it: a replay.
        let old = machine.submission(seq: 6, prev: right.verified.payloadSHA256, issuedAt: day(8))
        #expect(outcome(try await store.record(old)) == "replay")

        let host = try #require(try await store.host(machine.hostID))
        #expect(host.chain == ChainState(epoch: 1_800_000_000, seq: 2, digest: epoch.verified.payloadSHA256))
        #expect(host.reportCount == 7)
        #expect(host.forkCount == 2)
        #expect(host.missingCount == 4)
        #expect(try await store.host("no-such-host") == nil)
        #expect(try await store.hosts().map(\.hostID) == [machine.hostID])
        let history = try await store.reports(hostID: machine.hostID, limit: 100)
        #expect(history.map(\.outcome) == [.newEpoch, .accepted, .fork, .fork, .gap, .accepted, .first])
        #expect(try await store.reports(hostID: machine.hostID, limit: 2).count == 2)
        let gaps = try await store.gaps(hostID: machine.hostID)
        #expect(gaps.map { [$0.epoch, $0.fromSeq, $0.toSeq] } == [[0, 2, 3], [1_800_000_000, 0, 1]])
        let counts = try await store.counts()
        #expect(counts.stored == ["first": 1, "accepted": 2, "gap": 1, "fork": 2, "new-epoch": 1])
        #expect(counts.log["duplicate"] == 2)
        #expect(counts.log["replay/replay"] == 2)
        // The envelope comes back byte for byte.
        #expect(try await store.envelope(hostID: machine.hostID, payloadSHA256: later.verified.payloadSHA256) == later.envelope)
        #expect(try await store.envelope(hostID: machine.hostID, payloadSHA256: String(repeating: "f", count: 64)) == nil)
        // The key is the machine's and the digest together: another machine's id finds nothing.
        #expect(try await store.envelope(hostID: "another-machine", payloadSHA256: later.verified.payloadSHA256) == nil)
        let repeats = try await store.repeats(limit: 100)
        #expect(repeats.map(\.outcome).sorted() == ["duplicate", "replay", "replay"])
    }

    @Test(arguments: StoreFactories.all) func everyRefusalOfTheLedger(_ factory: StoreFactory) async throws {
        let (store, close) = try await factory.open()
        defer { Task { await close() } }
        let machine = try LedgerMachine(2)
        let other = try LedgerMachine(3)
        try await store.approve(machine.record)
        try await store.approve(other.record)
        let day = TestUnit.day
        func refusal(_ submission: IngestSubmission) async throws -> IngestRefusal? {
            if case .failure(let refusal) = try await store.record(submission) { return refusal }
            return nil
        }
        // A key the registry never held.
        let stranger = try LedgerMachine(4)
        #expect(try await refusal(stranger.submission(seq: 0, prev: "", issuedAt: day(1)))?.code == .unknownKey)
        // A key enrolled for another machine.
        #expect(try await refusal(machine.submission(seq: 0, prev: "", issuedAt: day(1), keyid: other.keyid))?.code == .hostMismatch)
        // Identity text past its bound, or holding control characters.
        let long = try LedgerMachine(2, hostname: String(repeating: "w", count: 4096))
        #expect(try await refusal(long.submission(seq: 0, prev: "", issuedAt: day(1)))?.code == .identityTooLong)
        let control = try LedgerMachine(2, hostname: "ws\u{1B}[2J")
        #expect(try await refusal(control.submission(seq: 0, prev: "", issuedAt: day(1)))?.code == .identityControl)
        // Places no chain has.
        #expect(try await refusal(machine.submission(seq: -1, prev: "", issuedAt: day(1)))?.code == .badChain)
        #expect(try await refusal(machine.submission(seq: 0, prev: "", epoch: 253_402_300_800, issuedAt: day(1)))?.code == .badChain)
        #expect(try await refusal(machine.submission(seq: (1 << 32) + 1, prev: "", issuedAt: day(1)))?.code == .seqJump)
        // Nothing refused moved anything: the machine's first report is still its first.
        #expect(try await store.host(machine.hostID) == nil)
        #expect(outcome(try await store.record(machine.submission(seq: 0, prev: "", issuedAt: day(1)))) == "first")
        // Every refusal was counted, with the address it came from.
        let rows = try await store.refusals(limit: 100)
        #expect(Set(rows.map(\.reason)) == ["unknown-key", "host-mismatch", "identity-too-long", "identity-control", "bad-chain", "seq-jump"])
        #expect(rows.allSatisfy { $0.address == "http 192.0.2.10" })
        #expect(rows.first(where: { $0.reason == "bad-chain" })?.count == 2)
        let counts = try await store.counts()
        #expect(counts.log["refused/bad-chain"] == 2)
        // A refusal decided before the ledger is counted in the same table.
        let count = try await store.logRefusal(IngestRefusal(.badSignature, detail: "test"), receivedAt: day(1), source: "http 192.0.2.11:1")
        #expect(count == 1)
        #expect(try await store.logRefusal(IngestRefusal(.badSignature, detail: "test"), receivedAt: day(1), source: "http 192.0.2.11:2") == 2)
        #expect(try await store.refusalDrops() == RefusalDrops(windows: 0, requests: 0))
    }

    @Test(arguments: StoreFactories.all) func revocationAndTheRegistrysRules(_ factory: StoreFactory) async throws {
        let (store, close) = try await factory.open()
        defer { Task { await close() } }
        let machine = try LedgerMachine(5)
        let day = TestUnit.day
        let generation = store.registryGeneration
        try await store.approve(machine.record)
        #expect(store.registryGeneration > generation)
        let first = machine.submission(seq: 0, prev: "", issuedAt: day(1))
        #expect(outcome(try await store.record(first)) == "first")
        // The same key twice.
        await #expect(throws: StoreError.self) { try await store.approve(machine.record) }
        do {
            try await store.approve(machine.record)
        } catch {
            guard case .registry(.keyExists(let keyid, nil)) = error else { Issue.record("expected keyExists, got \(error)"); return }
            #expect(keyid == machine.keyid)
        }
        // A rotation: the new key replaces the old one, which is revoked in the same step.
        let rotated = try LedgerMachine(6)
        var record = rotated.record
        record.hostID = machine.hostID
        record.previousKeyID = machine.keyid
        record.approvedAt = day(2)
        try await store.approve(record)
        let old = try #require(try await store.key(machine.keyid))
        #expect(old.revokedAt == day(2))
        #expect(old.revokeReason == "rotated to \(rotated.keyid)")
        #expect(try await store.keys().map(\.keyid) == [machine.keyid, rotated.keyid])
        // The old key's reports are refused as revoked; what it stored stays.
        let late = machine.submission(seq: 1, prev: first.verified.payloadSHA256, issuedAt: day(3))
        guard case .failure(let refusal) = try await store.record(late) else { Issue.record("a revoked key's report was stored"); return }
        #expect(refusal.code == .revoked)
        #expect(try await store.reports(hostID: machine.hostID, limit: 10).count == 1)
        // A rotation naming a revoked, unknown or foreign previous key is refused.
        var again = try LedgerMachine(7).record
        again.hostID = machine.hostID
        again.previousKeyID = machine.keyid
        await #expect(throws: StoreError.self) { try await store.approve(again) }
        again.previousKeyID = "sha256:" + String(repeating: "0", count: 64)
        await #expect(throws: StoreError.self) { try await store.approve(again) }
        // Revoking: an unknown key, then the new key twice.
        do {
            try await store.revoke(keyid: "sha256:none", at: day(4), reason: "test")
            Issue.record("an unknown key was revoked")
        } catch {
            guard case .registry(.unknownKey) = error else { Issue.record("expected unknownKey, got \(error)"); return }
        }
        try await store.revoke(keyid: rotated.keyid, at: day(4), reason: "lost")
        do {
            try await store.revoke(keyid: rotated.keyid, at: day(5), reason: "again")
            Issue.record("a key was revoked twice")
        } catch {
            guard case .registry(.alreadyRevoked(_, let at)) = error else { Issue.record("expected alreadyRevoked, got \(error)"); return }
            #expect(at == day(4))
        }
        #expect(try await store.key(rotated.keyid)?.revokeReason == "lost")
        #expect(try await store.key("sha256:none") == nil)
    }

    @Test(arguments: StoreFactories.all) func theYearAndTheClock(_ factory: StoreFactory) async throws {
        let (store, close) = try await factory.open()
        defer { Task { await close() } }
        let machine = try LedgerMachine(8)
        let silent = try LedgerMachine(9)
        try await store.approve(machine.record)
        try await store.approve(silent.record)
        let day = TestUnit.day
        let failing = machine.machine.finding(RuleCatalogue.auditRules[0], "host", .fail, "found", at: day(1))
        let first = machine.submission(seq: 0, prev: "", issuedAt: day(1), findings: [failing])
        #expect(outcome(try await store.record(first)) == "first")
        // Issued two hours after it arrived: the machine's clock is ahead; stored and flagged.
        let ahead = machine.submission(seq: 1, prev: first.verified.payloadSHA256, issuedAt: day(2).addingTimeInterval(7200), receivedAt: day(2))
        let result = try await store.record(ahead).get()
        #expect(result.outcome == .accepted)
        #expect(result.clockSkew?.kind == "ahead")
        #expect(result.clockSkew?.seconds == 7200)
        #expect(try await store.counts().log["clock-skew/ahead"] == 1)
        let snapshot = try await store.snapshot(year: 2026)
        #expect(snapshot.hosts.map(\.hostID).sorted() == [machine.hostID, silent.hostID].sorted())
        let year = try #require(snapshot.hosts.first { $0.hostID == machine.hostID })
        #expect(year.reports == 2)
        #expect(year.rules[RuleCatalogue.auditRules[0].id]?.fail == 1)
        #expect(snapshot.hosts.first { $0.hostID == silent.hostID }?.reports == 0)
        #expect(snapshot.findings.map(\.ruleID) == [RuleCatalogue.auditRules[0].id])
        #expect(snapshot.skews.map(\.kind) == ["ahead"])
        #expect(try await store.snapshot(year: 2025).hosts.isEmpty)
    }

    @Test(arguments: StoreFactories.all) func oneHostsReportsAtOnceDecideAsInOrder(_ factory: StoreFactory) async throws {
        let (store, close) = try await factory.open()
        defer { Task { await close() } }
        let machine = try LedgerMachine(10)
        try await store.approve(machine.record)
        var chain: [IngestSubmission] = []
        var prev = ""
        for seq in 0..<40 {
            let item = machine.submission(seq: Int64(seq), prev: prev, issuedAt: TestUnit.day(1).addingTimeInterval(Double(seq) * 60))
            prev = item.verified.payloadSHA256
            chain.append(item)
        }
        // Every report twice, all at once: each is stored once, whatever the order.
        let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
            for item in (chain + chain).shuffled() { group.addTask { outcome(try await store.record(item)) } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(outcomes.count == 80)
        let stored = try await store.reports(hostID: machine.hostID, limit: 1000)
        #expect(Set(stored.map(\.seq)).count == stored.count)
        #expect(stored.count == outcomes.filter { ["first", "accepted", "gap", "fork", "new-epoch"].contains($0) }.count)
        #expect(!outcomes.contains { $0.hasPrefix("refused") })
        // The head is where the highest report put it.
        let head = try #require(try await store.host(machine.hostID))
        #expect(head.chain.seq == 39)
    }
}
