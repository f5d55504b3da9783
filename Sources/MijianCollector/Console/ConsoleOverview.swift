import Dispatch
import Foundation
import GRDB
import MijianCore
import Synchronization

/// How far the store has moved: the newest stored report (its rowid), the newest key and how many
/// keys are revoked. Each only grows, so a state read at one marker is current while the store's
/// marker is the same.
struct StoreMarker: Sendable, Equatable, CustomStringConvertible {
    var reports: Int64
    var keys: Int64
    var revoked: Int

    /// Whether a state read at `self` holds everything `other` holds.
    func covers(_ other: StoreMarker) -> Bool { reports >= other.reports && keys >= other.keys && revoked >= other.revoked }

    var description: String { "report \(reports), key \(keys), \(revoked) revoked" }

    /// Read in the caller's transaction: by the rowids' b-trees and the `keys_revoked` index, a few pages.
    static func read(_ db: Database) throws -> StoreMarker {
        let row = try Row.fetchOne(db, sql: """
            SELECT (SELECT coalesce(max(id), 0) FROM reports) AS reports, (SELECT coalesce(max(rowid), 0) FROM keys) AS keys,
                (SELECT count(*) FROM keys WHERE revoked_at IS NOT NULL) AS revoked
            """)
        return StoreMarker(reports: row?["reports"] ?? 0, keys: row?["keys"] ?? 0, revoked: row?["revoked"] ?? 0)
    }
}

/// Each machine's state as the overview counts it, kept in memory and brought up to date before
/// every answer: only the machines with reports stored since the last look are read again (by the
/// reports' rowid, in the same read transaction as the marker), and the registry's revocations and
/// never-reported machines when keys changed or machines appeared. Counting then walks memory, so
/// the overview does not scan 100,000 rows per request.
actor MachineStates {
    private struct Entry {
        var unit: Int
        /// The earlier of the last report's issue and receive time (RFC 3339, compared as SQLite compares the text).
        var seen: String?
        var failing: Bool
        var error: Bool
        var revoked: Bool
    }

    private let store: CollectorStore
    private var entries: [String: Entry] = [:]
    private var units: [String] = []
    private var unitIndex: [String: Int] = [:]
    private var revoked: Set<String> = []
    private var never = 0
    private var marker: StoreMarker?
    private var refreshing: Task<Void, any Error>?

    init(store: CollectorStore) { self.store = store }

    /// Machines per department and state at `now`, from the store as it is now.
    func counts(now: Date, silentAfterDays: Int) async throws -> OverviewCounts {
        let current = try await store.consoleRead("cannot read the store's position", StoreMarker.read)
        while marker.map({ !$0.covers(current) }) ?? true {
            if let refreshing {
                try await refreshing.value
                continue
            }
            let task = Task { try await self.refresh() }
            refreshing = task
            defer { refreshing = nil }
            try await task.value
        }
        let cutoff = RFC3339.string(from: now.addingTimeInterval(-Double(silentAfterDays + 1) * 86_400))
        var perUnit = Array(repeating: [Int](repeating: 0, count: MachineState.allCases.count), count: units.count)
        let index = Dictionary(uniqueKeysWithValues: MachineState.allCases.enumerated().map { ($0.element, $0.offset) })
        let (revokedAt, silentAt, failingAt, errorAt, compliantAt) = (index[.revoked] ?? 0, index[.silent] ?? 0, index[.failing] ?? 0, index[.error] ?? 0, index[.compliant] ?? 0)
        // The precedence of `ConsoleQueries.stateSQL`: revoked, silent, failing, error, compliant.
        for entry in entries.values {
            let state = entry.revoked ? revokedAt : (entry.seen.map { $0 <= cutoff } ?? false ? silentAt : (entry.failing ? failingAt : (entry.error ? errorAt : compliantAt)))
            perUnit[entry.unit][state] += 1
        }
        var counts = OverviewCounts()
        var departments: [(name: String, states: [MachineState: Int])] = []
        for (unit, name) in units.enumerated() {
            var states: [MachineState: Int] = [:]
            for state in MachineState.allCases where perUnit[unit][index[state] ?? 0] > 0 {
                states[state] = perUnit[unit][index[state] ?? 0]
                counts.states[state, default: 0] += perUnit[unit][index[state] ?? 0]
            }
            if !states.isEmpty { departments.append((name, states)) }
        }
        counts.states[.never] = never
        counts.departments = departments.sorted { $0.name < $1.name }
        return counts
    }

    private struct Read: Sendable {
        var marker: StoreMarker
        var hosts: [(id: String, unit: String, seen: String?, failing: Bool, error: Bool)]
        var revoked: Set<String>?
        var never: Int?
    }

    /// Reads what changed since `marker` (everything, the first time) and applies it.
    private func refresh() async throws {
        let read = try await Self.read(store, since: marker, known: entries)
        for host in read.hosts {
            let unit: Int
            if let known = unitIndex[host.unit] {
                unit = known
            } else {
                unit = units.count
                units.append(host.unit)
                unitIndex[host.unit] = unit
            }
            entries[host.id] = Entry(unit: unit, seen: host.seen, failing: host.failing, error: host.error, revoked: revoked.contains(host.id))
        }
        if let now = read.revoked {
            for id in revoked.subtracting(now) { entries[id]?.revoked = false }
            for id in now { entries[id]?.revoked = true }
            revoked = now
        }
        if let count = read.never { never = count }
        marker = read.marker
    }

    /// What changed since `previous`, read in one transaction with the marker it reaches.
    private static func read(_ store: CollectorStore, since previous: StoreMarker?, known: [String: Entry]) async throws -> Read {
        try await store.consoleRead("cannot count the machines") { db -> Read in
            let now = try StoreMarker.read(db)
            let columns = """
                SELECT h.host_id, coalesce(h.unit, '') AS unit, min(h.last_issued_at, h.last_received_at) AS seen, h.last_fail_count > 0 AS failing,
                    h.digest IN \(ConsoleQueries.errorReports) AS error FROM hosts h
                """
            let rows: [Row]
            if let previous {
                rows = now.reports > previous.reports
                    ? try Row.fetchAll(db, sql: "\(columns) WHERE h.host_id IN (SELECT host_id FROM reports WHERE id > ?)", arguments: [previous.reports]) : []
            } else {
                rows = try Row.fetchAll(db, sql: columns)
            }
            // NULLs as SQL takes them: a NULL time is never at or before the cutoff, a NULL test is false.
            let hosts = rows.map { row in
                (id: row["host_id"] as String, unit: row["unit"] as String, seen: row["seen"] as String?, failing: (row["failing"] as Bool?) ?? false, error: (row["error"] as Bool?) ?? false)
            }
            var read = Read(marker: now, hosts: hosts)
            let appeared = hosts.contains { known[$0.id] == nil }
            if previous == nil || previous?.keys != now.keys || previous?.revoked != now.revoked || appeared {
                read.revoked = Set(try String.fetchAll(db, sql: "SELECT DISTINCT host_id FROM \(ConsoleQueries.revokedHosts)"))
                read.never = try Int.fetchOne(db, sql: """
                    SELECT count(DISTINCT k.host_id) FROM keys k WHERE k.revoked_at IS NULL AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.host_id = k.host_id)
                    """) ?? 0
            }
            return read
        }
    }
}

/// The year's self-assessment for the pages that show it. It reads every machine of the year (12 s
/// at 100,000 machines), so it is computed off the request path, on a dispatch queue, and kept
/// with the store marker it was computed from. The overview shows what is kept, saying when it was
/// computed and whether the store has moved since; the self-assessment and media pages wait for one
/// that is current.
final class AssessmentKeeper: Sendable {
    struct Kept: Sendable {
        var result: AssessmentResult
        /// The store was at least here when the computation read it.
        var marker: StoreMarker
        /// When the computation started, and how long it took.
        var startedAt: Date
        var seconds: Double
    }

    private struct Running {
        var marker: StoreMarker
        var startedAt: Date
        var task: Task<Kept, any Error>
    }

    private struct State {
        var kept: [Int: Kept] = [:]
        var running: [Int: Running] = [:]
    }

    /// Seconds a result stays current while the store does not move (silence depends on the time).
    let maxAge: TimeInterval
    private let compute: @Sendable (Int, Date) async throws -> AssessmentResult
    private let state = Mutex(State())

    init(maxAge: TimeInterval, compute: @escaping @Sendable (Int, Date) async throws -> AssessmentResult) {
        self.maxAge = maxAge
        self.compute = compute
    }

    private func current(_ kept: Kept, _ marker: StoreMarker, _ now: Date) -> Bool {
        kept.marker.covers(marker) && now >= kept.startedAt && now.timeIntervalSince(kept.startedAt) < maxAge
    }

    /// The computation for `year` at `marker` or later: the running one when it covers `marker`, else a new one.
    private func computation(year: Int, marker: StoreMarker, now: Date) -> Running {
        state.withLock { state in
            if let running = state.running[year], running.marker.covers(marker) { return running }
            let compute = compute
            let task = Task { [weak self] () throws -> Kept in
                // Done, or failed: the next caller starts afresh.
                defer {
                    self?.state.withLock { state in
                        if state.running[year]?.marker == marker, state.running[year]?.startedAt == now { state.running[year] = nil }
                    }
                }
                let clock = ContinuousClock.now
                let result = try await compute(year, now)
                let elapsed = ContinuousClock.now - clock
                let kept = Kept(result: result, marker: marker, startedAt: now, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                self?.state.withLock { state in
                    if state.kept[year].map({ !$0.marker.covers(marker) || $0.startedAt < now }) ?? true { state.kept[year] = kept }
                }
                return kept
            }
            let running = Running(marker: marker, startedAt: now, task: task)
            state.running[year] = running
            return running
        }
    }

    /// Starts computing `year` in the background unless a current result is kept or one is running.
    func prepare(year: Int, marker: StoreMarker, now: Date) {
        if let kept = state.withLock({ $0.kept[year] }), current(kept, marker, now) { return }
        _ = computation(year: year, marker: marker, now: now)
    }

    /// A result that holds everything up to `marker` and is younger than `maxAge`, waiting for it.
    func fresh(year: Int, marker: StoreMarker, now: Date) async throws -> Kept {
        if let kept = state.withLock({ $0.kept[year] }), current(kept, marker, now) { return kept }
        return try await computation(year: year, marker: marker, now: now).task.value
    }

    /// For the overview: a current result when one is kept or arrives within `wait`; otherwise
    /// the last one kept (or none) and when the computation under way started.
    func glance(year: Int, marker: StoreMarker, now: Date, wait: Duration) async -> (kept: Kept?, current: Bool, computingSince: Date?) {
        let kept = state.withLock { $0.kept[year] }
        if let kept, current(kept, marker, now) { return (kept, true, nil) }
        let running = computation(year: year, marker: marker, now: now)
        // A race between the computation and the wait, answered by whichever ends first (a task
        // group would wait for the computation anyway: awaiting a task's value is not cancelled).
        let arrived: Kept? = await withCheckedContinuation { continuation in
            let once = Once()
            Task {
                let kept = try? await running.task.value
                if once.first() { continuation.resume(returning: kept) }
            }
            Task {
                try? await Task.sleep(for: wait)
                if once.first() { continuation.resume(returning: nil) }
            }
        }
        if let arrived { return (arrived, true, nil) }
        return (kept, false, running.startedAt)
    }
}

/// True for the first caller only.
private final class Once: Sendable {
    private let done = Mutex(false)

    func first() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}

extension Console {
    /// Runs a blocking call of the store's synchronous API on a dispatch queue, so that neither
    /// the event loop nor the cooperative pool waits on SQLite.
    static func offLoop<T: Sendable>(_ work: @escaping @Sendable () throws(MijianError) -> T) async throws(MijianError) -> T {
        let result: Result<T, MijianError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                do throws(MijianError) {
                    continuation.resume(returning: .success(try work()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// The year's assessment computed now, off the request path: the snapshot and the build run on a dispatch queue.
    static func computeAssessment(store: CollectorStore, sources: AssessmentSources, year: Int, at: Date) async throws(MijianError) -> AssessmentResult {
        try await offLoop { () throws(MijianError) in
            AssessmentBuilder.build(snapshot: try store.snapshot(year: year), table: sources.table, answers: sources.answers, settings: sources.settings, now: at)
        }
    }

    /// Where the store is now.
    func storeMarker() async throws(MijianError) -> StoreMarker {
        try await store.consoleRead("cannot read the store's position", StoreMarker.read)
    }

    /// The assessment of `year` as of the store now: the kept one when current, else computed (and awaited).
    func assessmentResult(year: Int, at: Date) async throws -> AssessmentResult {
        try await keeper.fresh(year: year, marker: try await storeMarker(), now: at).result
    }
}
