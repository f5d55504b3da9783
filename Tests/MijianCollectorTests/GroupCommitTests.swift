import Foundation
import GRDB
import MijianCollector
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

/// Reports that arrive together are committed together on both backends; one that the database
/// refuses (here a trigger raises for one host's report, as a disk error or a broken row would)
/// must not take the others with it: each submission gets its own answer, and every other report
/// of the group is stored.
@Suite("Group commit: one failing report takes no other with it", .serialized)
struct GroupCommitTests {
    static let hosts = 12
    static let failing = 5

    @Test func sqliteAnswersEachSubmissionOfAFailingGroup() async throws {
        let store = try SQLiteStore.inMemory()
        let plan = try PostingPlan.make(hosts: Self.hosts, length: 2, first: 900)
        try await store.approve(contentsOf: plan.keys)
        let victim = plan.machines[Self.failing].host.hostID
        try await store.writer.write { db in
            try db.execute(sql: """
                CREATE TRIGGER injected_failure BEFORE INSERT ON reports WHEN NEW.host_id = '\(victim)'
                BEGIN SELECT RAISE(ABORT, 'injected failure'); END
                """)
        }
        try await expectEachAnswered(store, plan: plan)
    }

    @Test func postgresAnswersEachSubmissionOfAFailingGroup() async throws {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.newDatabase()
        let database = PostgresCluster.databaseName(of: url)
        let store = try await PostgresStore.open(try PostgresLocation.parse(url))
        defer {
            store.close()
            _ = try? cluster.psql("DROP DATABASE \(database) WITH (FORCE)")
        }
        let plan = try PostingPlan.make(hosts: Self.hosts, length: 2, first: 920)
        for key in plan.keys { try await store.approve(key) }
        let victim = plan.machines[Self.failing].host.hostID
        _ = try cluster.psql("""
            CREATE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.host_id = '\(victim)' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER injected_failure BEFORE INSERT ON reports FOR EACH ROW EXECUTE FUNCTION injected_failure();
            """, database: database)
        try await expectEachAnswered(store, plan: plan)
    }

    /// Posts every host's first report at once, several times over (each round's reports
    /// arrive together): the failing host's is answered with the database's error every time,
    /// every other host's is stored once and then answered as a duplicate.
    func expectEachAnswered(_ store: any CollectorStorage, plan: PostingPlan) async throws {
        let keys = MachineKeys(machines: plan.machines)
        for round in 0..<3 {
            let answers = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (index, chain) in plan.posts.enumerated() {
                    group.addTask {
                        do {
                            switch try await submit(chain[0].envelope, to: store, keys: keys) {
                            case .success(let result): return (index, result.outcome.rawValue)
                            case .failure(let refusal): return (index, "refused \(refusal.reason)")
                            }
                        } catch let error as StoreError {
                            return (index, "error \(error)")
                        }
                    }
                }
                var answers: [Int: String] = [:]
                for try await (index, answer) in group { answers[index] = answer }
                return answers
            }
            #expect(answers.count == Self.hosts)
            for index in 0..<Self.hosts {
                let answer = answers[index] ?? "none"
                if index == Self.failing {
                    #expect(answer.hasPrefix("error"), "round \(round): \(answer)")
                } else {
                    #expect(answer == (round == 0 ? "first" : "duplicate"), "round \(round), host \(index): \(answer)")
                }
            }
        }
        let hosts = try await store.hosts()
        #expect(hosts.count == Self.hosts - 1)
        #expect(!hosts.contains { $0.hostID == plan.machines[Self.failing].host.hostID })
        #expect(try await store.counts().stored == ["first": Self.hosts - 1])
    }
}
