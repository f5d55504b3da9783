#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianEvidence
import MijianHost

/// What a source contributes to one report for the stretch since the last: its findings (the
/// traffic watch's `traffic.egress`) and its problems for `agent.health` (packets dropped).
public struct WindowReport: Sendable {
    /// Findings for this report.
    public var findings: [Finding]
    /// Problems for this report's `agent.health`.
    public var problems: [HealthProblem]

    /// Bundles them.
    public init(findings: [Finding], problems: [HealthProblem]) {
        self.findings = findings
        self.problems = problems
    }
}

/// The agent's own files it looks at every seal for `agent.health` (`AgentFilesProbe` reads
/// them, `AgentHealthChecks` judges them): the signing key, and the policy file on disk.
public struct SelfCheck: Sendable {
    /// The policy file, nil for the built-in policy.
    public var policyFile: String?
    /// The signing key.
    public var keyFile: String

    /// Checks `policyFile` and `keyFile`.
    public init(policyFile: String?, keyFile: String) {
        self.policyFile = policyFile
        self.keyFile = keyFile
    }
}

/// What one seal produced, for logs and systemd's STATUS line.
public struct SealSummary: Sendable, Equatable {
    /// The report's epoch.
    public var epoch: Int64
    /// The report's seq.
    public var seq: Int64
    /// SHA-256 of its payload.
    public var payloadSHA256: String
    /// Whether a finding failed.
    public var failing: Bool
    /// Why it was sealed.
    public var reason: String
    /// Envelopes in the spool after it.
    public var spooled: Int
    /// Their bytes.
    public var spoolBytes: Int
    /// Envelopes held in memory because the disk refused them.
    public var pending: Int
    /// Time to build, sign and spool it.
    public var duration: Duration
}

/// A sealed envelope the disk has not taken yet.
struct PendingEnvelope: Sendable {
    var bytes: [UInt8]
    var epoch: Int64
    var seq: Int64
    var failing: Bool
}

/// The single owner of this machine's signer and spool: seals the latest findings and the events
/// since the last report into the next signed link of the chain, and hands spooled envelopes to
/// delivery in chain order. Being one actor, it is the only writer of the chain in this process;
/// the chain's file lock keeps other processes (`mijian audit --sign`) in line.
public actor Sealer {
    /// Envelopes held in memory at most while the disk refuses them; past it, the oldest without a failure goes.
    public static let maxPending = 256
    /// Most bytes of encoded events one report carries: past it the rest go into the next report,
    /// sealed at once, so a burst of events never makes an envelope the collector refuses as too
    /// large (its default body limit is 4 MiB; 1 MiB of events is about 1.4 MiB of envelope).
    public static let maxEventBytes = 1 << 20
    /// Most reports one seal makes for a burst of events (the sink holds at most 10,000 events).
    static let maxReportsPerSeal = 64

    private let signer: ReportSigner
    private let spool: Spool
    private let sink: EventSink
    private let logger: Logger
    private let host: HostInfo
    private var policy: Policy
    private var auditFindings: [Finding] = []
    private var auditAt: Date?
    private var sourceFindings: [String: [Finding]] = [:]
    private var sourceHealth: [String: JSONValue] = [:]
    private var healthProviders: [String: @Sendable () -> JSONValue] = [:]
    private var windowProviders: [String: @Sendable (CheckContext) -> WindowReport] = [:]
    private var selfCheck: SelfCheck?
    private var problems: [HealthProblem] = []
    private var pending: [PendingEnvelope] = []
    /// Spool files this actor wrote or verified; others are verified before they count as spooled.
    private var known: Set<String> = []
    private var lastReleased: ChainPosition?
    /// The released envelope whose chain state could not be saved: nothing at or after it is
    /// delivered until a later save succeeds, so a restart cannot issue its seq again.
    private var unsaved: (epoch: Int64, seq: Int64)?
    private var windowStart: Date
    private var sealed = 0
    private var delivery: JSONValue = ["mode": "none"]
    private var onSealed: (@Sendable (SealSummary) -> Void)?
    private let started: Date
    /// The service's wall clock: report times, windows, uptime, and (through the sealer) the
    /// audit's and delivery's times. A parameter, so a test can give a fixed or advancing time.
    public nonisolated let now: @Sendable () -> Date

    /// A sealer over `signer` and `spool`, taking events from `sink`; `now` is the wall clock.
    public init(
        signer: ReportSigner, spool: Spool, sink: EventSink, policy: Policy, host: HostInfo, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.signer = signer
        self.spool = spool
        self.sink = sink
        self.policy = policy
        self.host = host
        self.logger = logger
        self.now = now
        self.started = now()
        self.windowStart = started
    }

    /// Called after every successful seal (systemd READY and STATUS).
    public func setOnSealed(_ body: @escaping @Sendable (SealSummary) -> Void) { onSealed = body }

    /// Prepares the spool, sets aside whatever in it is not a report this machine's key signed
    /// under that very name, and, when the newest envelope is ahead of the saved chain state (a
    /// crash between the two writes), moves the state past it so no seq is issued twice. The place
    /// in the chain comes from the signed report, never from a file name.
    /// A chain state no report can follow is an error here, before anything runs.
    public func start() throws(MijianError) {
        try spool.prepare()
        if let newest = try sweep().newest {
            let position = ChainPosition(
                keyid: newest.keyid, epoch: newest.report.epoch, seq: newest.report.seq, payloadSHA256: newest.payloadSHA256,
                reportID: newest.report.reportID.uuidString.lowercased())
            try signer.advance(past: position)
            lastReleased = position
        }
        try signer.checkNext()
    }

    /// Lists the spool, sets aside what may not be read and every envelope not seen before that
    /// does not verify as this machine's report of the name it has; returns the envelopes kept,
    /// in chain order, and the newest one it verified.
    @discardableResult
    private func sweep() throws(MijianError) -> (entries: [SpoolEntry], newest: VerifiedReport?) {
        let listing = try spool.list()
        for suspect in listing.suspects { setAside(suspect.name, why: suspect.reason) }
        var kept: [SpoolEntry] = []
        var newest: VerifiedReport?
        for entry in listing.entries {
            if known.contains(entry.name) {
                kept.append(entry)
            } else if let verified = verify(entry) {
                kept.append(entry)
                newest = verified.report
            }
        }
        known = Set(kept.map(\.name))
        return (kept, newest)
    }

    /// The envelope of `entry` when it is this machine's signed report of exactly the epoch, seq
    /// and outcome its name says; anything else is set aside (and told), and nil.
    private func verify(_ entry: SpoolEntry) -> (bytes: [UInt8], report: VerifiedReport)? {
        let bytes: [UInt8]
        do {
            bytes = try spool.read(entry)
        } catch where error.code == .notFound {
            return nil
        } catch {
            setAside(entry.name, why: "it cannot be read as an envelope (\(error.message))")
            return nil
        }
        let verified: VerifiedReport
        do {
            verified = try EnvelopeVerifier(keys: signer.key.publicKey, maxBytes: Spool.maxEnvelopeBytes).verifyReport(bytes)
        } catch {
            setAside(entry.name, why: "it is not a report signed by this machine's key \(signer.key.keyid) (\(error))")
            return nil
        }
        let report = verified.report
        guard report.epoch == entry.epoch, report.seq == entry.seq, report.isCompliant == !entry.failing else {
            setAside(
                entry.name,
                why: "its name says epoch \(entry.epoch) seq \(entry.seq) (\(entry.failing ? "fail" : "ok")) but the signed report is epoch \(report.epoch) seq \(report.seq) (\(report.isCompliant ? "ok" : "fail"))")
            return nil
        }
        return (bytes, verified)
    }

    /// Moves a spool file into `quarantine/` unread, and tells the next report; it is never
    /// delivered and never deleted.
    private func setAside(_ name: String, why: String) {
        do {
            let moved = try spool.setAside(name)
            note(HealthProblem(kind: "spool.set-aside", detail: "the spool file \(name) was set aside as \(moved) and is not delivered: \(why)", failing: true, at: now()))
            logger.error("a spool file was set aside", metadata: ["agent.file": "\(name)", "agent.moved_to": "\(moved)", "agent.reason": "\(why)"])
        } catch {
            note(HealthProblem(kind: "spool.set-aside", detail: "the spool file \(name) is not delivered (\(why)) and could not be set aside: \(error)", failing: true, at: now()))
            logger.error("a spool file could not be set aside", metadata: ["agent.file": "\(name)", "agent.error": "\(error)"])
        }
    }

    /// The policy in force; the next report carries its digest.
    public func setPolicy(_ policy: Policy) { self.policy = policy }

    /// The latest audit's findings; returns the uids of findings that fail now and did not before.
    @discardableResult
    public func updateAudit(_ findings: [Finding], at date: Date) -> [String] {
        let before = Set(auditFindings.filter { $0.status == .fail }.map(\.uid))
        auditFindings = findings
        auditAt = date
        return findings.filter { $0.status == .fail && !before.contains($0.uid) }.map(\.uid)
    }

    /// Findings a source (the traffic watch) contributes to the next report, replacing its earlier ones.
    public func setFindings(_ findings: [Finding], from source: String) { sourceFindings[source] = findings }

    /// A source's own health figures (pcap statistics) for the `agent.health` evidence.
    public func setHealth(_ data: JSONValue, from source: String) { sourceHealth[source] = data }

    /// A source's health figures read at each seal (pcap counters), replacing `setHealth` for that source.
    public func setHealthProvider(from source: String, _ provider: @escaping @Sendable () -> JSONValue) {
        healthProviders[source] = provider
    }

    /// A source's findings and problems for the stretch since the last report, asked at each seal.
    public func setWindowProvider(from source: String, _ provider: @escaping @Sendable (CheckContext) -> WindowReport) {
        windowProviders[source] = provider
    }

    /// The files the agent checks at each seal for its `agent.health` finding.
    public func setSelfCheck(_ check: SelfCheck) { selfCheck = check }

    /// Notes a problem for the next report's `agent.health` finding.
    public func note(_ problem: HealthProblem) {
        problems.append(problem)
        if problems.count > 100 { problems.removeFirst(problems.count - 100) }
    }

    /// Delivery's figures for the `agent.health` evidence.
    public func setDeliveryStatus(_ data: JSONValue) { delivery = data }

    /// Answers when the actor is responsive (the watchdog pings through here).
    public func ping() -> Int { sealed }

    /// Reports sealed since start.
    public var sealedCount: Int { sealed }

    /// Seals the next report: the latest findings plus the events since the last one, signed,
    /// then spooled (or held in memory while the disk refuses it); events past `maxEventBytes`
    /// go into further reports, sealed at once. Never throws: a failure is logged and told in the
    /// next report's `agent.health`. Returns the last report's summary.
    @discardableResult
    public func seal(reason: String) async -> SealSummary? {
        var (summary, more) = await sealOne(reason: reason, now: now)
        var reports = 1
        while more, summary != nil, reports < Self.maxReportsPerSeal {
            (summary, more) = await sealOne(reason: "\(reason) (events continued)", now: now)
            reports += 1
        }
        return summary
    }

    /// The events of `events` from the first that fit in `limit` encoded bytes (at least one),
    /// and the rest.
    static func split(_ events: [Event], within limit: Int) -> (taken: [Event], rest: [Event]) {
        var bytes = 0
        for (index, event) in events.enumerated() {
            // The event as the report encodes it, and the comma between it and the next.
            bytes += event.json.serialized().count + 1
            if bytes > limit, index > 0 { return (Array(events[..<index]), Array(events[index...])) }
        }
        return (events, [])
    }

    /// One report; `more` when events past `maxEventBytes` were left in the sink for the next.
    private func sealOne(reason: String, now: @Sendable () -> Date) async -> (SealSummary?, more: Bool) {
        let clock = ContinuousClock()
        let begin = clock.now
        var drained = await sink.drain()
        let (taken, rest) = Self.split(drained.events, within: Self.maxEventBytes)
        if !rest.isEmpty {
            // Back at the front of the sink, ahead of anything recorded since: the order is kept.
            await sink.restore(rest, dropped: 0, failing: false)
            drained.events = taken
        }
        let issued = now()
        let reported = problems
        var findings = auditFindings
        for source in sourceFindings.keys.sorted() { findings += sourceFindings[source] ?? [] }
        let context = CheckContext(policy: policy, hostID: host.hostID, observedAt: issued)
        var windowProblems: [HealthProblem] = []
        for source in windowProviders.keys.sorted() {
            guard let window = windowProviders[source]?(context) else { continue }
            findings += window.findings
            windowProblems += window.problems
        }
        findings.append(healthFinding(at: issued, problems: reported + windowProblems, droppedEvents: drained.dropped))
        let report = Report(
            issuedAt: issued, windowStart: windowStart, windowEnd: issued, host: host, policy: policy.info, findings: findings,
            events: drained.events)
        var released: PendingEnvelope?
        do {
            try signer.sign(report, now: issued, after: lastReleased) { envelope, signed in
                let item = PendingEnvelope(
                    bytes: envelope.serialized(), epoch: signed.epoch, seq: signed.seq, failing: !signed.isCompliant)
                released = item
                lastReleased = ChainPosition(
                    keyid: signed.agent.keyid, epoch: signed.epoch, seq: signed.seq, payloadSHA256: envelope.payloadSHA256,
                    reportID: signed.reportID.uuidString.lowercased())
                pending.append(item)
                // Write-ahead: the envelope is on disk before the chain state says it exists.
                flushPending()
            }
            unsaved = nil
        } catch {
            if let released {
                unsaved = unsaved ?? (released.epoch, released.seq)
                note(HealthProblem(kind: "chain.save-error", detail: "the chain state could not be saved after seq \(released.seq): \(error)", failing: true, at: now()))
                logger.error("chain state not saved; the report is kept and delivery waits", metadata: ["agent.error": "\(error)"])
            } else {
                await sink.restore(drained.events, dropped: drained.dropped, failing: drained.failing)
                note(HealthProblem(kind: "seal.error", detail: "a report could not be signed: \(error)", failing: true, at: now()))
                logger.error("cannot seal a report; its events are kept for the next", metadata: ["agent.error": "\(error)"])
                return (nil, false)
            }
        }
        guard let released, let position = lastReleased else { return (nil, false) }
        problems.removeFirst(min(reported.count, problems.count))
        windowStart = issued
        sealed += 1
        let entries = (try? sweep().entries) ?? []
        let summary = SealSummary(
            epoch: released.epoch, seq: released.seq, payloadSHA256: position.payloadSHA256, failing: released.failing,
            reason: reason, spooled: entries.count, spoolBytes: entries.reduce(0) { $0 + $1.bytes }, pending: pending.count,
            duration: clock.now - begin)
        logger.info(
            "sealed report seq \(released.seq) (\(reason))",
            metadata: [
                "agent.epoch": "\(released.epoch)", "agent.seq": "\(released.seq)", "agent.failing": "\(released.failing)",
                "agent.events": "\(drained.events.count)", "agent.spooled": "\(summary.spooled)", "agent.pending": "\(summary.pending)",
                "agent.seal_duration": "\(summary.duration)",
            ])
        onSealed?(summary)
        return (summary, !rest.isEmpty)
    }

    /// Writes held envelopes to the spool in chain order, stopping at the first the disk refuses.
    /// Room is made first by compacting reports without a failure; on ENOSPC once more.
    public func flushPending() {
        while let item = pending.first {
            // Swept first: a file the agent did not write is verified (or set aside) before compaction may delete it.
            var entries = (try? sweep().entries) ?? []
            let outcome = spool.makeRoom(for: item.bytes.count, in: entries)
            recordCompaction(outcome, why: "the spool reached its bound of \(spool.maxBytes) bytes")
            if !outcome.removed.isEmpty { entries = (try? spool.entries()) ?? [] }
            do {
                known.insert(try spool.write(item.bytes, epoch: item.epoch, seq: item.seq, failing: item.failing).name)
                pending.removeFirst()
            } catch {
                if error.errno == ENOSPC || error.errno == EDQUOT {
                    // The disk, not the bound, is full: give it the oldest reports without a failure.
                    let freed = Spool(directory: spool.directory, maxBytes: max(0, entries.reduce(0) { $0 + $1.bytes } - item.bytes.count))
                        .makeRoom(for: item.bytes.count, in: entries)
                    recordCompaction(freed, why: "the disk holding the spool is full")
                    if !freed.removed.isEmpty, let written = try? spool.write(item.bytes, epoch: item.epoch, seq: item.seq, failing: item.failing) {
                        known.insert(written.name)
                        pending.removeFirst()
                        continue
                    }
                }
                note(HealthProblem(
                    kind: "spool.write-error",
                    detail: "report seq \(item.seq) could not be written to the spool (\(error)); \(pending.count) report(s) held in memory and retried",
                    failing: true, at: now()))
                logger.error("cannot write to the spool; the report is kept in memory", metadata: ["agent.error": "\(error)", "agent.pending": "\(pending.count)"])
                trimPending()
                return
            }
        }
    }

    private func trimPending() {
        while pending.count > Sealer.maxPending {
            guard let index = pending.firstIndex(where: { !$0.failing }) else { break }
            let item = pending.remove(at: index)
            note(HealthProblem(kind: "memory.dropped", detail: "report seq \(item.seq) without a failure was dropped from memory: the disk refused it and \(Sealer.maxPending) reports were waiting", failing: true, at: now()))
        }
    }

    private func recordCompaction(_ outcome: CompactionOutcome, why: String) {
        if !outcome.removed.isEmpty {
            let seqs = outcome.removed.map { "\($0.seq)" }.joined(separator: ", ")
            note(HealthProblem(
                kind: "spool.compacted",
                detail: "\(why): compacted \(outcome.removed.count) undelivered report(s) without a failure (seq \(seqs)); the collector will see them as a gap",
                failing: true, at: now()))
            logger.warning("spool compacted", metadata: ["agent.removed": "\(outcome.removed.count)"])
        }
        if outcome.overBound {
            note(HealthProblem(kind: "spool.over-bound", detail: "\(why): only reports with a failure are left, and they are kept beyond the bound", failing: true, at: now()))
        }
    }

    /// The oldest spooled envelope delivery may send: chain order, nothing the disk or the chain
    /// state has not made durable yet, and only what verifies now, as read, as this machine's
    /// report of the name it has (whatever else is there is set aside, never sent or copied).
    public func nextForDelivery() -> (entry: SpoolEntry, bytes: [UInt8])? {
        if !pending.isEmpty { flushPending() }
        guard let listing = try? spool.list() else { return nil }
        for suspect in listing.suspects { setAside(suspect.name, why: suspect.reason) }
        for entry in listing.entries {
            if let first = pending.first, (entry.epoch, entry.seq) >= (first.epoch, first.seq) { return nil }
            if let unsaved, (entry.epoch, entry.seq) >= unsaved { return nil }
            guard let verified = verify(entry) else { continue }
            return (entry, verified.bytes)
        }
        return nil
    }

    /// The collector has this envelope (or the drop directory does): it leaves the spool.
    public func delivered(_ entry: SpoolEntry) {
        do {
            try spool.remove(entry)
        } catch {
            logger.warning("cannot remove a delivered report from the spool", metadata: ["agent.error": "\(error)"])
        }
    }

    /// The collector refused this envelope for good: it moves to `rejected/` in the spool and the next report says so.
    public func reject(_ entry: SpoolEntry, why: String) {
        let directory = "\(spool.directory)/\(Spool.rejected)"
        do {
            try spool.moveToRejected(entry)
        } catch {
            logger.error("cannot move a refused report aside", metadata: ["agent.report": "\(entry.name)", "agent.error": "\(error)"])
        }
        note(HealthProblem(kind: "delivery.refused", detail: "the collector refused report seq \(entry.seq) of epoch \(entry.epoch) (\(why)); it is kept in \(directory)", failing: true, at: now()))
    }

    /// Whether reports the spool refused are held in memory (to be written again).
    public var holdsUnwritten: Bool { !pending.isEmpty }

    /// Envelopes in the spool and held in memory.
    public func backlog() -> (spooled: [SpoolEntry], pending: Int) {
        ((try? spool.entries()) ?? [], pending.count)
    }

    /// The `agent.health` finding: what the agent observed of itself, judged by `AgentHealthChecks`.
    private func healthFinding(at date: Date, problems: [HealthProblem], droppedEvents: Int) -> Finding {
        let context = CheckContext(policy: policy, hostID: host.hostID, observedAt: date)
        let files = selfCheck.map { AgentFilesProbe.observe(keyFile: $0.keyFile, policyFile: $0.policyFile) }
        let entries = (try? spool.entries()) ?? []
        var sources: [(String, JSONValue)] = []
        for name in Set(sourceHealth.keys).union(healthProviders.keys).sorted() {
            sources.append((name, healthProviders[name]?() ?? sourceHealth[name] ?? .null))
        }
        let facts = AgentHealthFacts(
            uptimeSeconds: Int64(date.timeIntervalSince(started).rounded()), reportsSealed: sealed, lastAuditAt: auditAt, problems: problems,
            droppedEvents: droppedEvents, eventCapacity: EventSink.capacity, files: files,
            spool: AgentSpoolFacts(
                directory: spool.directory, reports: entries.count, bytes: entries.reduce(0) { $0 + $1.bytes }, maxBytes: spool.maxBytes,
                failingReports: entries.count(where: \.failing), heldInMemory: pending.count),
            delivery: delivery, sources: .object(sources))
        return AgentHealthChecks.health(facts, context: context)
    }
}
