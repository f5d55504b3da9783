#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianAgent
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

@Suite("Sealer and spool: atomic, ordered, bounded", .serialized)
struct SpoolTests {
    @Test func reportsAreSpooledWholeInChainOrder() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        await rig.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        await rig.sink.record(Event(type: "test.event", observedAt: Date(), data: ["n": 1]), failing: false)
        for index in 0..<5 {
            let summary = await rig.sealer.seal(reason: "test \(index)")
            #expect(summary?.seq == Int64(index))
        }
        let spooled = try rig.spooled()
        #expect(spooled.map(\.entry.seq) == [0, 1, 2, 3, 4])
        #expect(spooled.map(\.entry.name) == spooled.map(\.entry.name).sorted(), "names sort in chain order")
        var previous = ""
        for item in spooled {
            #expect(item.payload["prev_sha256"]?.stringValue == previous)
            previous = item.digest
        }
        #expect(spooled[0].payload["events"]?.arrayValue?.count == 1, "the event is in the first report")
        #expect(spooled[1].payload["events"]?.arrayValue?.isEmpty == true, "and only there")
        #expect(healthFinding(spooled[0].payload)?["status"]?.stringValue == "pass")
        // Nothing but whole envelopes: no temporary file is left behind, and one a crash left is removed.
        let names = try FileManager.default.contentsOfDirectory(atPath: rig.spool.directory)
        #expect(names.allSatisfy { $0.hasSuffix(".dsse.json") && !$0.hasPrefix(".") })
        _ = FileManager.default.createFile(atPath: rig.spool.directory + "/.00-1-ok.dsse.json.123.456.tmp", contents: Data("half".utf8))
        #expect(try rig.spool.entries().count == 5)
        #expect(!FileManager.default.fileExists(atPath: rig.spool.directory + "/.00-1-ok.dsse.json.123.456.tmp"))
    }

    @Test func aRestartAfterACrashBetweenSpoolAndChainStateContinuesTheChain() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        await rig.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        await rig.sealer.seal(reason: "one")
        await rig.sealer.seal(reason: "two")
        // The crash: the chain state is one behind the spool, as if the process died between the two writes.
        let chain = try #require(try ChainState.load(from: rig.store.chainPath))
        var behind = chain
        behind.seq = 1
        behind.prevSHA256 = try rig.spooled()[0].digest
        try behind.save(to: rig.store.chainPath)
        let restarted = Sealer(
            signer: try ReportSigner(store: rig.store), spool: rig.spool, sink: EventSink(), policy: rig.policy, host: rig.host,
            logger: .init(label: "test"))
        try await restarted.start()
        await restarted.updateAudit([rig.finding(failing: false)], at: Date())
        let summary = await restarted.seal(reason: "after restart")
        #expect(summary?.seq == 2, "seq 1 is on disk already and must not be issued again")
        let spooled = try rig.spooled()
        #expect(spooled.map(\.entry.seq) == [0, 1, 2])
        #expect(spooled[2].payload["prev_sha256"]?.stringValue == spooled[1].digest)
    }

    @Test func compactionRemovesOldestPassingReportsAndKeepsEveryFailure() async throws {
        let probe = try SealerRig()
        try await probe.sealer.start()
        await probe.sealer.updateAudit([probe.finding(failing: false, padding: 2000)], at: Date())
        await probe.sealer.seal(reason: "size")
        let size = try #require(try probe.spool.entries().first?.bytes)

        let rig = try SealerRig(maxBytes: size * 4 + size / 2)
        try await rig.sealer.start()
        var failingSeqs: [Int64] = []
        for index in 0..<12 {
            let failing = index % 4 == 1
            await rig.sealer.updateAudit([rig.finding(failing: failing, padding: 2000)], at: Date())
            let summary = try #require(await rig.sealer.seal(reason: "test"))
            if summary.failing { failingSeqs.append(summary.seq) }
        }
        let spooled = try rig.spooled()
        let kept = Set(spooled.map(\.entry.seq))
        // A report whose agent.health tells of a compaction fails too, and is kept like any failure.
        #expect(failingSeqs.count >= 3)
        for seq in failingSeqs { #expect(kept.contains(seq), "failing report \(seq) was compacted") }
        #expect(kept.count < 12, "passing reports were to be compacted")
        #expect(spooled.filter { !$0.entry.failing }.reduce(0) { $0 + $1.entry.bytes } <= size * 5, "the bound holds for what may be compacted")
        #expect(kept.contains(11), "the newest report is kept")
        // The report after a compaction says so.
        let told = spooled.contains { item in
            guard let health = healthFinding(item.payload) else { return false }
            return health["status"]?.stringValue == "fail" && (health["status_detail"]?.stringValue ?? "").contains("compacted")
        }
        #expect(told, "no report's agent.health told of the compaction")
    }

    @Test func aFullDiskNeitherCrashesNorLosesAFailingReport() async throws {
        let mount = try TestSupport.temporaryDirectory("agent-tmpfs")
        try sh("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mount.path])
        defer { _ = try? TestSupport.run("/usr/bin/umount", [mount.path]) }
        let rig = try SealerRig(spoolDirectory: mount.appendingPathComponent("spool").path, maxBytes: 16 << 20)
        try await rig.sealer.start()
        var failingSeqs: [Int64] = []
        var held = 0
        for index in 0..<16 {
            // Passing reports first, then failing ones: the disk fills with both.
            let failing = index >= 4
            await rig.sealer.updateAudit([rig.finding(failing: failing, padding: 6000)], at: Date())
            let summary = try #require(await rig.sealer.seal(reason: "test"), "sealing must go on with a full disk")
            if summary.failing { failingSeqs.append(summary.seq) }
            held = summary.pending
        }
        #expect(held > 0, "the tmpfs was to fill up and hold reports in memory")
        let onDisk = Set(try rig.spooled().map(\.entry.seq))
        #expect(onDisk.count < 16)
        // Room again: the held reports reach the disk, in order, and say what happened.
        try sh("/usr/bin/mount", ["-o", "remount,size=2m", mount.path])
        await rig.sealer.updateAudit([rig.finding(failing: true, padding: 100)], at: Date())
        let after = try #require(await rig.sealer.seal(reason: "after"))
        #expect(after.pending == 0)
        let spooled = try rig.spooled()
        let kept = Set(spooled.map(\.entry.seq))
        for seq in failingSeqs { #expect(kept.contains(seq), "failing report \(seq) was lost") }
        let last = try #require(spooled.last)
        #expect(last.entry.seq == after.seq)
        let health = try #require(healthFinding(last.payload))
        #expect(health["status"]?.stringValue == "fail")
        let detail = health["status_detail"]?.stringValue ?? ""
        #expect(detail.contains("No space left on device") || detail.contains("held in memory"), "health said: \(detail)")
        let allDetails = spooled.compactMap { healthFinding($0.payload)?["status_detail"]?.stringValue }.joined(separator: "\n")
        #expect(allDetails.contains("No space left on device"))
        #expect(allDetails.contains("compacted"), "passing reports were to be compacted to make room")
    }
}
