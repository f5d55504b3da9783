#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianAgent
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

/// The spool's subdirectory for files that are set aside.
let quarantine = "quarantine"

extension SealerRig {
    /// A second sealer over the same key, state and spool directory: the agent after a restart.
    init(reusing rig: SealerRig) throws {
        state = rig.state
        store = rig.store
        policy = rig.policy
        spool = Spool(directory: rig.spool.directory, maxBytes: rig.spool.maxBytes)
        sink = EventSink()
        var logger = Logger(label: "agent-test")
        logger.logLevel = .critical
        sealer = Sealer(signer: try ReportSigner(store: store), spool: spool, sink: sink, policy: policy, host: host, logger: logger)
    }

    /// A report with one passing finding.
    func sampleReport() -> Report {
        Report(
            issuedAt: Date(), windowStart: Date(), windowEnd: Date(), host: host, policy: policy.info, findings: [finding(failing: false)],
            events: [])
    }
}

/// What someone who could write into the spool (or its configuration) might plant there.
@Suite("Spool: hostile files and directories are refused or set aside, never followed or delivered", .serialized)
struct SpoolHostileTests {
    /// Refusals of `body` that are MijianErrors with `code` and a message containing `text`.
    func refuses(_ code: MijianError.Code, _ text: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected a refusal saying \"\(text)\"")
        } catch let error as MijianError {
            #expect(error.code == code, "got \(error.code.name): \(error.message)")
            #expect(error.message.contains(text), "got: \(error.message)")
        } catch {
            Issue.record("expected a MijianError, got \(error)")
        }
    }

    /// Delivers everything the sealer hands out into `drop`, as the delivery service does.
    func deliverAll(_ rig: SealerRig, to drop: String) async {
        let transport = DropDirectoryTransport(directory: drop)
        while let next = await rig.sealer.nextForDelivery() {
            guard case .delivered = await transport.deliver(next.entry, bytes: next.bytes) else { break }
            await rig.sealer.delivered(next.entry)
        }
    }

    /// Creates `path` as a sparse file of `bytes` (no block written, so it costs nothing).
    func sparseFile(_ path: String, bytes: Int) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MijianError(.io, "cannot create \(path)", path: path, errno: errno) }
        defer { close(fd) }
        guard ftruncate(fd, off_t(bytes)) == 0 else { throw MijianError(.io, "cannot size \(path)", path: path, errno: errno) }
    }

    /// The names in `directory` (empty when there is none).
    func names(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    /// The `agent.health` details of every spooled report, joined.
    func healthDetails(_ rig: SealerRig) throws -> String {
        try rig.spooled().compactMap { healthFinding($0.payload)?["status_detail"]?.stringValue }.joined(separator: "\n")
    }

    @Test func aSpoolOwnedByAnotherUserOrWritableByOthersIsRefused() async throws {
        let owned = try SealerRig()
        try FileManager.default.createDirectory(atPath: owned.spool.directory, withIntermediateDirectories: true)
        #expect(chown(owned.spool.directory, 65534, 65534) == 0)
        #expect(chmod(owned.spool.directory, 0o700) == 0)
        await refuses(.permission, "owned by uid 65534, not by the service's user") { try await owned.sealer.start() }

        // What the attack used: nobody's directory, mode 1777.
        #expect(chmod(owned.spool.directory, 0o1777) == 0)
        await refuses(.permission, "owned by uid 65534") { try await owned.sealer.start() }

        let open = try SealerRig()
        try FileManager.default.createDirectory(atPath: open.spool.directory, withIntermediateDirectories: true)
        #expect(chmod(open.spool.directory, 0o1777) == 0)
        await refuses(.permission, "writable by group or others (mode 1777)") { try await open.sealer.start() }
        #expect(chmod(open.spool.directory, 0o770) == 0)
        await refuses(.permission, "writable by group or others (mode 770)") { try await open.sealer.start() }

        // A parent others can write (without the sticky bit) lets the spool be swapped.
        let parent = try TestSupport.temporaryDirectory("agent-parent")
        let below = try SealerRig(spoolDirectory: parent.appendingPathComponent("spool").path)
        #expect(chmod(parent.path, 0o777) == 0)
        await refuses(.permission, "above the spool") { try await below.sealer.start() }
        #expect(chmod(parent.path, 0o755) == 0)
        try await below.sealer.start()

        // A spool reached through a link is refused: the link's owner decides where it points.
        let linked = try TestSupport.temporaryDirectory("agent-linked")
        let real = linked.appendingPathComponent("real").path
        try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        #expect(symlink(real, linked.appendingPathComponent("link").path) == 0)
        let throughLink = try SealerRig(spoolDirectory: linked.appendingPathComponent("link").path)
        await refuses(.permission, "is a symbolic link") { try await throughLink.sealer.start() }
    }

    @Test func aStateDirectoryOthersCanChangeIsRefused() async throws {
        let rig = try SealerRig()
        #expect(chmod(rig.state.path, 0o1777) == 0)
        await refuses(.permission, "the state directory \(rig.state.path) is writable by group or others") {
            _ = try ReportSigner(store: rig.store).sign(rig.sampleReport())
        }
        // The sealer signs through the same check: nothing is sealed into such a directory.
        try await rig.sealer.start()
        #expect(await rig.sealer.seal(reason: "refused") == nil)
        #expect(chmod(rig.state.path, 0o700) == 0)
        #expect(chown(rig.state.path, 65534, 65534) == 0)
        await refuses(.permission, "owned by uid 65534") { _ = try ReportSigner(store: rig.store).sign(rig.sampleReport()) }
        #expect(chown(rig.state.path, 0, 0) == 0)
        _ = try ReportSigner(store: rig.store).sign(rig.sampleReport())
    }

    @Test func aLinkInTheSpoolIsNeverFollowedNorCopied() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        await rig.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        let first = try #require(await rig.sealer.seal(reason: "one"))
        // Outside the spool: a secret, and a genuine envelope of this machine kept elsewhere.
        let outside = try TestSupport.temporaryDirectory("agent-outside")
        let secret = outside.appendingPathComponent("shadow").path
        try Data("root:$6$secret-hash:19000:0:99999:7:::\n".utf8).write(to: URL(fileURLWithPath: secret))
        let genuine = outside.appendingPathComponent("genuine.dsse.json").path
        try Data(try rig.spool.read(try #require(try rig.spool.entries().first))).write(to: URL(fileURLWithPath: genuine))
        let toSecret = SpoolEntry.name(epoch: first.epoch, seq: 7, failing: true)
        let toGenuine = SpoolEntry.name(epoch: first.epoch, seq: 8, failing: false)
        #expect(symlink(secret, "\(rig.spool.directory)/\(toSecret)") == 0)
        #expect(symlink(genuine, "\(rig.spool.directory)/\(toGenuine)") == 0)

        await rig.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        let second = try #require(await rig.sealer.seal(reason: "two"))
        #expect(second.seq == first.seq + 1)
        let drop = try TestSupport.temporaryDirectory("agent-drop")
        await deliverAll(rig, to: drop.path)

        let copied = names(drop.path)
        #expect(copied == [SpoolEntry.name(epoch: first.epoch, seq: 0, failing: false), SpoolEntry.name(epoch: first.epoch, seq: 1, failing: false)])
        for name in copied {
            let bytes = try #require(FileManager.default.contents(atPath: "\(drop.path)/\(name)"))
            #expect(!String(decoding: bytes, as: UTF8.self).contains("secret-hash"))
            var info = stat()
            #expect(lstat("\(drop.path)/\(name)", &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600, "drop files are written 0600, not \(String(info.st_mode & 0o777, radix: 8))")
        }
        // Both links are in quarantine, still links, and nothing they point at was touched.
        let quarantine = "\(rig.spool.directory)/\(quarantine)"
        #expect(names(quarantine) == [toSecret, toGenuine].sorted())
        for name in [toSecret, toGenuine] {
            var info = stat()
            #expect(lstat("\(quarantine)/\(name)", &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK)
        }
        #expect(try String(contentsOfFile: secret, encoding: .utf8).contains("secret-hash"))
        // The next report tells of it.
        await rig.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        let third = try #require(await rig.sealer.seal(reason: "three"))
        #expect(third.failing, "set-aside files make agent.health fail")
        let told = try healthDetails(rig)
        #expect(told.contains(toSecret) && told.contains("symbolic link"), "\(told)")
    }

    @Test func anEnvelopeThatDoesNotVerifyOrIsRenamedIsSetAside() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        await rig.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        let first = try #require(await rig.sealer.seal(reason: "one"))
        let epoch = first.epoch
        let own = try rig.spool.read(try #require(try rig.spool.entries().first))
        // Another machine's genuine report, garbage, a tampered copy of our own, our seq 0 under
        // seq 2's name, and our passing report named as a failing one.
        let stranger = try SealerRig()
        try await stranger.sealer.start()
        await stranger.sealer.updateAudit([stranger.finding(failing: false)], at: Date())
        await stranger.sealer.seal(reason: "stranger")
        let foreign = try stranger.spool.read(try #require(try stranger.spool.entries().first))
        let tampered = Array(String(decoding: own, as: UTF8.self).replacingOccurrences(of: "\"sig\":\"", with: "\"sig\":\"AAAA").utf8)
        let planted: [(String, [UInt8])] = [
            (SpoolEntry.name(epoch: epoch, seq: 2, failing: false), own),
            (SpoolEntry.name(epoch: epoch, seq: 3, failing: false), foreign),
            (SpoolEntry.name(epoch: epoch, seq: 4, failing: true), Array("not an envelope".utf8)),
            (SpoolEntry.name(epoch: epoch, seq: 5, failing: false), tampered),
            (SpoolEntry.name(epoch: epoch, seq: 0, failing: true), own),
        ]
        try FileManager.default.removeItem(atPath: "\(rig.spool.directory)/\(SpoolEntry.name(epoch: epoch, seq: 0, failing: false))")
        for (name, bytes) in planted { try Data(bytes).write(to: URL(fileURLWithPath: "\(rig.spool.directory)/\(name)")) }

        // A restart reads the chain from what verifies, not from names: seq 1 follows.
        let restarted = try SealerRig(reusing: rig)
        try await restarted.sealer.start()
        await restarted.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        let next = try #require(await restarted.sealer.seal(reason: "after restart"))
        #expect(next.seq == 1, "the chain jumped to \(next.seq)")
        let told = try healthDetails(restarted)
        let drop = try TestSupport.temporaryDirectory("agent-drop")
        await deliverAll(restarted, to: drop.path)
        #expect(names(drop.path) == [SpoolEntry.name(epoch: epoch, seq: 1, failing: true)], "only this machine's own report, by its own name")
        #expect(names("\(rig.spool.directory)/\(quarantine)") == planted.map(\.0).sorted(), "each is kept aside, none deleted")
        #expect(told.contains("not a report signed by this machine's key"), "\(told)")
        #expect(told.contains("name says epoch \(epoch) seq 2 (ok) but the signed report is epoch \(epoch) seq 0 (ok)"), "\(told)")
        #expect(told.contains("seq 0 (fail) but the signed report is epoch \(epoch) seq 0 (ok)"), "\(told)")
    }

    @Test func aRenamedSeqZeroDoesNotMoveTheChain() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        await rig.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        let first = try #require(await rig.sealer.seal(reason: "one"))
        #expect(first.seq == 0)
        let zero = "\(rig.spool.directory)/\(SpoolEntry.name(epoch: first.epoch, seq: 0, failing: false))"
        let renamed = SpoolEntry.name(epoch: first.epoch, seq: 500, failing: false)
        #expect(rename(zero, "\(rig.spool.directory)/\(renamed)") == 0)
        let restarted = try SealerRig(reusing: rig)
        try await restarted.sealer.start()
        await restarted.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        let next = try #require(await restarted.sealer.seal(reason: "after restart"))
        #expect(next.seq == 1, "a renamed file moved the chain to \(next.seq)")
        #expect(names("\(rig.spool.directory)/\(quarantine)") == [renamed])
        let state = try #require(try ChainState.load(from: rig.store.chainPath))
        #expect(state.seq == 2)
    }

    @Test func aSpoolFileLargerThanAnEnvelopeIsSetAsideUnread() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        await rig.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        let first = try #require(await rig.sealer.seal(reason: "one"))
        // 2 GiB, sparse: named as the newest report, so a start looks at it first.
        let name = SpoolEntry.name(epoch: first.epoch, seq: 9, failing: false)
        try sparseFile("\(rig.spool.directory)/\(name)", bytes: 2 << 30)
        let clock = ContinuousClock()
        let began = clock.now
        let restarted = try SealerRig(reusing: rig)
        try await restarted.sealer.start()
        await restarted.sealer.updateAudit([rig.finding(failing: false)], at: Date())
        let next = try #require(await restarted.sealer.seal(reason: "after restart"))
        #expect(clock.now - began < .seconds(10), "a start with the file took \(clock.now - began)")
        #expect(next.seq == 1)
        let aside = "\(rig.spool.directory)/\(quarantine)/\(name)"
        var info = stat()
        #expect(lstat(aside, &info) == 0 && info.st_size == 2 << 30 && info.st_blocks == 0, "set aside whole and unwritten")
        #expect(try rig.spool.entries().map(\.seq) == [0, 1])
        #expect(try healthDetails(restarted).contains("more than the envelope limit of \(16 << 20)"))
    }

    @Test func aSpoolFileNamedWithTheLastSeqNeitherTrapsNorMovesTheAgent() async throws {
        let machine = try AgentMachine()
        try machine.writeConfig("report_interval: 1s\naudit_interval: 1h\ntraffic: {enabled: false}\n")
        let agent = try AgentProcess(machine)
        #expect(await eventually(60) { ((try? machine.spooled()) ?? []).count >= 1 }, "\(agent.log.all)")
        agent.signal(SIGTERM)
        #expect(await agent.waitForExit(seconds: 10) == 0, "\(agent.log.all)")
        let spooled = try machine.spooled()
        let newest = try #require(spooled.last)
        let lastSeq = try #require(newest.payload["seq"]?.intValue)
        let epoch = try #require(newest.payload["epoch"]?.intValue)
        // A copy of a genuine envelope under the name of seq Int64.max.
        let planted = SpoolEntry.name(epoch: epoch, seq: Int64.max, failing: newest.name.hasSuffix("-fail.dsse.json"))
        try FileManager.default.copyItem(atPath: "\(machine.spool)/\(newest.name)", toPath: "\(machine.spool)/\(planted)")

        let restarted = try AgentProcess(machine)
        let expected = "sealed report seq \(lastSeq + 1) "
        #expect(await eventually(60) { restarted.log.all.contains(expected) || !restarted.process.isRunning }, "\(restarted.log.all)")
        #expect(restarted.process.isRunning, "the agent died: \(restarted.log.all)")
        #expect(restarted.log.all.contains(expected), "\(restarted.log.all)")
        restarted.signal(SIGTERM)
        #expect(await restarted.waitForExit(seconds: 10) == 0, "\(restarted.log.all)")
        #expect(names("\(machine.spool)/\(quarantine)") == [planted])
    }

    @Test func aChainStateAtTheEndOfTheNumbersStopsTheStartWithItsReason() async throws {
        let machine = try AgentMachine()
        try machine.writeConfig("report_interval: 1s\naudit_interval: 1h\ntraffic: {enabled: false}\n")
        let store = KeyStore(directory: machine.state)
        let keyid = try store.signingKey().keyid
        for (state, reason) in [
            (ChainState(keyid: keyid, epoch: 5, seq: .max, prevSHA256: "", updatedAt: Date()), "seq \(Int64.max) is the last there is"),
            (ChainState(keyid: "sha256:another-key", epoch: .max, seq: 0, prevSHA256: "", updatedAt: Date()), "leaves no epoch after it"),
        ] {
            try state.save(to: store.chainPath)
            let agent = try AgentProcess(machine)
            // Exit 2 with the reason (a trap would be a signal; a seal failing in a loop would not exit).
            #expect(await agent.waitForExit(seconds: 30) == 2, "\(agent.log.all)")
            #expect(agent.log.all.contains(reason), "\(agent.log.all)")
            #expect(((try? machine.spooled()) ?? []).isEmpty, "nothing was sealed")
        }
    }

    @Test func aHugeAgentConfigurationIsRefusedWithoutReadingIt() async throws {
        let directory = try TestSupport.temporaryDirectory("agent-config")
        let path = directory.appendingPathComponent("agent.yaml").path
        try sparseFile(path, bytes: 2 << 30)
        let clock = ContinuousClock()
        let began = clock.now
        // The size seen on the descriptor before any read is what the refusal names.
        await refuses(.tooLarge, "\(path) is 2147483648 bytes, more than the limit of 1048576") { _ = try AgentConfiguration.load(path) }
        #expect(clock.now - began < .seconds(2), "refusing took \(clock.now - began)")
        // A CA file is read the same way.
        await refuses(.tooLarge, "2147483648 bytes") { _ = try HTTPSTransport(url: "https://127.0.0.1:1", caFile: path, logger: .init(label: "test")) }
    }
}
