import Foundation
import GRDB
@testable import MijianCollector
import MijianCore
import MijianTestSupport
import Testing

/// The reads at scale: the machine list in pages, the per-machine counts kept in the machine's
/// row, and those counts for a store made before they were kept.
@Suite struct QueryTests {
    /// Four machines, two of them with one host name, each with a short chain: a gap on one, a fork on another.
    static func fill(_ store: any CollectorStorage) async throws -> [LedgerMachine] {
        let machines = [try LedgerMachine(21, hostname: "ws-b"), try LedgerMachine(22, hostname: "ws-a"), try LedgerMachine(23, hostname: "ws-a"), try LedgerMachine(24, hostname: "ws-c")]
        for machine in machines { try await store.approve(machine.record) }
        for submission in chains(machines) {
            guard case .success = try await store.record(submission) else { throw MijianError(.database, "a report of the fixture was refused") }
        }
        return machines
    }

    /// The fixture's submissions in the order they are stored.
    static func chains(_ machines: [LedgerMachine]) -> [IngestSubmission] {
        var all: [IngestSubmission] = []
        for (index, machine) in machines.enumerated() {
            let first = machine.submission(seq: 0, prev: "", issuedAt: TestUnit.day(1))
            all.append(first)
            let second = machine.submission(seq: index == 1 ? 5 : 1, prev: first.verified.payloadSHA256, issuedAt: TestUnit.day(2))    // seqs 1–4 missing on the second
            all.append(second)
            if index == 2 { all.append(machine.submission(seq: 1, prev: "other", issuedAt: TestUnit.day(2).addingTimeInterval(60))) }    // a fork
        }
        return all
    }

    /// A machine's one report is found along an index, never by reading every machine's reports
    /// (a scan of the envelopes is gigabytes at a large unit's scale).
    @Test func aMachinesReportIsFoundAlongAnIndex() async throws {
        let queue = try DatabaseQueue()
        let store = try SQLiteStore(writer: queue)
        _ = try await Self.fill(store)
        let statements: [(String, StatementArguments)] = [
            (SQLiteStore.envelopeSQL, ["host", "digest"]), (ConsoleQueries.reportDigestSQL, ["host", 1]), (ConsoleQueries.reportDigestInEpochSQL, ["host", 0, 1]),
        ]
        for (sql, arguments) in statements {
            let plan = try await queue.read { db in try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String } }
            #expect(!plan.isEmpty)
            #expect(plan.allSatisfy { !$0.hasPrefix("SCAN reports") }, "\(sql): \(plan)")
            #expect(plan.contains { $0.hasPrefix("SEARCH reports USING") }, "\(sql): \(plan)")
        }
    }

    /// The writer keeps its savepoints' pages in memory and a larger page cache; the readers keep
    /// SQLite's defaults (a reader's sort spills to a file, and its cache stays small).
    @Test func theWriterKeepsItsSavepointsInMemory() async throws {
        let store = try SQLiteStore(directory: try TestSupport.temporaryDirectory("collector-pragmas").path)
        let pool = try #require(store.writer as? DatabasePool)
        let writer = try await pool.write { db in [try Int.fetchOne(db, sql: "PRAGMA temp_store"), try Int.fetchOne(db, sql: "PRAGMA cache_size")] }
        #expect(writer == [2, -32768])
        let reader = try await pool.read { db in [try Int.fetchOne(db, sql: "PRAGMA temp_store"), try Int.fetchOne(db, sql: "PRAGMA cache_size")] }
        #expect(reader == [0, -2000])
    }

    @Test(arguments: StoreFactories.all) func theListInPagesIsTheWholeList(_ factory: StoreFactory) async throws {
        let (store, close) = try await factory.open()
        defer { Task { await close() } }
        let machines = try await Self.fill(store)
        let whole = try await store.hosts()
        #expect(whole.map(\.hostname) == ["ws-a", "ws-a", "ws-b", "ws-c"])
        #expect(whole[0].hostID < whole[1].hostID)
        for size in [1, 2, 3, 10] {
            var paged: [HostRecord] = []
            var after: HostPosition?
            while true {
                let page = try await store.hosts(after: after, limit: size)
                #expect(page.count <= size)
                paged += page
                guard let last = page.last, page.count == size else { break }
                after = HostPosition(last)
            }
            #expect(paged == whole, "pages of \(size)")
        }
        #expect(try await store.hosts(after: HostPosition(whole[3]), limit: 5).isEmpty)
        #expect(try await store.hosts(after: nil, limit: 0).isEmpty)
        // The counts the list shows, kept in each machine's row.
        let byID = Dictionary(uniqueKeysWithValues: whole.map { ($0.hostID, $0) })
        #expect(machines.map { byID[$0.hostID]?.reportCount } == [2, 2, 3, 2])
        #expect(machines.map { byID[$0.hostID]?.forkCount } == [0, 0, 1, 0])
        #expect(machines.map { byID[$0.hostID]?.missingCount } == [0, 4, 0, 0])
        #expect(try await store.host(machines[2].hostID) == byID[machines[2].hostID])
    }

    /// A store written before the counts were columns gets them when it is opened: the same as a
    /// store that kept them from the start.
    @Test func anOlderStoreIsCountedWhenOpened() async throws {
        let queue = try DatabaseQueue(configuration: SQLiteStore.configuration())
        try SQLiteStore.migrator(refusalLimits: RefusalLogLimits()).migrate(queue, upTo: "v6-console-indexes")
        let machines = [try LedgerMachine(21, hostname: "ws-b"), try LedgerMachine(22, hostname: "ws-a"), try LedgerMachine(23, hostname: "ws-a"), try LedgerMachine(24, hostname: "ws-c")]
        // The rows are written by today's code, which names the column a later migration adds
        // (`envelope_encoding`): it is there while they are written, with the envelopes as sent as
        // the stores of that time held them, and gone again before the store is opened.
        let submissions = Self.chains(machines).map { item in
            var item = item
            item.packed = EnvelopeCodec.Packed(bytes: item.envelope, encoding: .verbatim)
            return item
        }
        try await queue.write { db in
            try db.execute(sql: "ALTER TABLE reports ADD COLUMN envelope_encoding INTEGER NOT NULL DEFAULT 0")
            for machine in machines { try SQLiteStore.approve(db, machine.record) }
            for item in submissions {
                let context = try SQLiteStore.loadContext(db, item.lookup)
                _ = try SQLiteStore.apply(db, IngestRules.decide(context: context, submission: item, limits: ChainLimits()), to: item, limits: RefusalLogLimits())
            }
            try db.execute(sql: "ALTER TABLE reports DROP COLUMN envelope_encoding")
        }
        #expect(try await queue.read { db in try db.columns(in: "hosts").contains { $0.name == "report_count" } } == false)
        let older = try SQLiteStore(writer: queue)
        let current = try SQLiteStore.inMemory()
        _ = try await Self.fill(current)
        let counted = try await older.hosts()
        #expect(counted.map(\.reportCount).sorted() == [2, 2, 2, 3])
        #expect(counted.map(\.missingCount).sorted() == [0, 0, 0, 4])
        #expect(counted.map { [$0.hostID, "\($0.reportCount)", "\($0.forkCount)", "\($0.missingCount)"] }
            == (try await current.hosts()).map { [$0.hostID, "\($0.reportCount)", "\($0.forkCount)", "\($0.missingCount)"] })
        // And the triggers count what comes after.
        let next = machines[0].submission(seq: 2, prev: submissions[1].verified.payloadSHA256, issuedAt: TestUnit.day(3))
        guard case .success = try await older.record(next) else { Issue.record("the next report was refused"); return }
        #expect(try await older.host(machines[0].hostID)?.reportCount == 3)
    }

    /// A year's queries read that year alone: a machine's rule counts and findings of another
    /// year never reach the snapshot.
    @Test(arguments: StoreFactories.all) func aYearReadsItsYearAlone(_ factory: StoreFactory) async throws {
        let (store, close) = try await factory.open()
        defer { Task { await close() } }
        let machine = try LedgerMachine(30)
        try await store.approve(machine.record)
        let lastYear = TestUnit.start.addingTimeInterval(-40 * 86_400)
        let failing = machine.machine.finding(RuleCatalogue.auditRules[0], "host", .fail, "found", at: lastYear)
        let old = machine.submission(seq: 0, prev: "", issuedAt: lastYear, findings: [failing])
        guard case .success = try await store.record(old) else { Issue.record("refused"); return }
        let new = machine.submission(seq: 1, prev: old.verified.payloadSHA256, issuedAt: TestUnit.day(3))
        guard case .success = try await store.record(new) else { Issue.record("refused"); return }
        let thisYear = try await store.snapshot(year: 2026)
        #expect(thisYear.hosts.map(\.reports) == [1])
        #expect(thisYear.hosts.first?.rules[RuleCatalogue.auditRules[0].id]?.fail == 0)
        #expect(thisYear.findings.isEmpty)
        let before = try await store.snapshot(year: 2025)
        #expect(before.hosts.map(\.reports) == [1])
        #expect(before.hosts.first?.rules[RuleCatalogue.auditRules[0].id]?.fail == 1)
        #expect(before.findings.map(\.ruleID) == [RuleCatalogue.auditRules[0].id])
    }

    /// `mijian-collector hosts --limit N --after HOST_ID` pages the list as the store does.
    @Test func theHostsCommandPages() async throws {
        let directory = try TestSupport.temporaryDirectory("hosts-pages")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(directory: directory.path)
        _ = try await Self.fill(store)
        let whole = try await store.hosts().map(\.hostID)
        let binary = TestSupport.productPath("mijian-collector")
        func ids(_ arguments: [String]) throws -> [String] {
            let result = try TestSupport.run(binary, ["hosts", "--data", directory.path, "--format", "json"] + arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            return try JSONParser().parse(Array(result.stdout.utf8)).arrayValue?.compactMap { $0["host_id"]?.stringValue } ?? []
        }
        #expect(try ids([]) == whole)
        let first = try ids(["--limit", "3"])
        #expect(first == Array(whole.prefix(3)))
        #expect(try ids(["--limit", "3", "--after", whole[2]]) == [whole[3]])
        let unknown = try TestSupport.run(binary, ["hosts", "--data", directory.path, "--limit", "3", "--after", "no-such-host"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no machine has this host id"))
        let text = try TestSupport.run(binary, ["hosts", "--data", directory.path, "--limit", "1"])
        #expect(text.stdout.split(separator: "\n").count == 2)    // the heading and one machine
    }

    /// A PostgreSQL database made before the counts were columns gets them at the next start.
    @Test func anOlderPostgresDatabaseIsCountedAtStart() async throws {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.newDatabase()
        let database = PostgresCluster.databaseName(of: url)
        let location = try PostgresLocation.parse(url)
        let store = try await PostgresStore.open(location)
        _ = try await Self.fill(store)
        let expected = try await store.hosts()
        store.close()
        // Back to the schema before: no columns, no triggers, migration 2 not applied.
        _ = try cluster.psql("""
            DROP TRIGGER hosts_counts_start ON hosts; DROP TRIGGER reports_count ON reports; DROP TRIGGER gaps_count ON gaps;
            DROP FUNCTION hosts_counts_start(); DROP FUNCTION reports_count(); DROP FUNCTION gaps_count(); DROP INDEX hosts_name_c;
            ALTER TABLE hosts DROP COLUMN report_count, DROP COLUMN fork_count, DROP COLUMN missing_count;
            DELETE FROM schema_migrations WHERE version = '2-host-summaries';
            """, database: database)
        let reopened = try await PostgresStore.open(location)
        defer {
            reopened.close()
            _ = try? cluster.psql("DROP DATABASE \(database) WITH (FORCE)")
        }
        #expect(reopened.appliedMigrations == ["2-host-summaries"])
        let counted = try await reopened.hosts()
        #expect(counted == expected)
        #expect(counted.map(\.reportCount).sorted() == [2, 2, 2, 3])
        #expect(counted.map(\.missingCount).sorted() == [0, 0, 0, 4])
    }
}
