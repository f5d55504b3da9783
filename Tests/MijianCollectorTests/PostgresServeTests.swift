#if canImport(Glibc)
import Glibc
#endif
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MijianCollector
import MijianCore
import MijianEvidence
import MijianTestSupport
import Synchronization
import Testing

/// Digests the servers acknowledged (202), across tasks.
final class AcknowledgedDigests: Sendable {
    private let state = Mutex<[String]>([])

    func add(_ digest: String) -> Int {
        state.withLock { digests in
            digests.append(digest)
            return digests.count
        }
    }

    var all: [String] { state.withLock { $0 } }
}

@Suite("PostgreSQL: several serve processes on one database", .serialized)
struct PostgresServeTests {
    static func session() -> URLSession {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 32
        configuration.timeoutIntervalForRequest = 60
        return URLSession(configuration: configuration)
    }

    @Test(arguments: [2, 4])
    func instancesReceivingOneUnitInParallelStoreWhatOneInstanceStores(instances: Int) async throws {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.newDatabase()
        let length = 8
        let plan = try PostingPlan.make(hosts: 16, length: length, first: 800 + instances * 20)
        let reference = try await plan.reference(length: length)
        let store = try await PostgresStore.open(try PostgresLocation.parse(url))
        defer { store.close() }
        for key in plan.keys { try await store.approve(key) }

        let servers = try (0..<instances).map { _ in try ServerProcess(database: url) }
        defer { for server in servers { server.kill() } }
        let session = Self.session()
        // Hosts in parallel, in an order shuffled per run; each post to `copies` instances at once.
        let order = Array(plan.posts.indices).shuffled()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for number in order {
                let chain = plan.posts[number]
                group.addTask {
                    for (index, post) in chain.enumerated() {
                        let first = Int.random(in: 0..<instances)
                        try await withThrowingTaskGroup(of: Void.self) { copies in
                            for copy in 0..<post.copies {
                                let server = servers[(first + copy) % instances]
                                copies.addTask {
                                    let (status, body) = try await CrashTests.post(post.envelope, port: server.port, session: session)
                                    // Everything here is either stored, a duplicate or a replay or a fork (answered 409).
                                    #expect(status == 202 || status == 409, "host \(number) post \(index): \(status) \(String(describing: body))")
                                }
                            }
                            try await copies.waitForAll()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let hosts = try await store.hosts()
        plan.expectHosts(hosts, length: length)
        #expect(try await chainText(store, hosts: hosts) == chainText(reference.store, hosts: reference.hosts))
        let counts = try await store.counts()
        #expect(counts.stored == ["first": 16, "accepted": 16 * (length - 1), "fork": 16])
        // No seq stored twice on a host's chain: only the fork shares one, and it does not advance.
        let duplicates = try cluster.psql(
            "SELECT count(*) FROM (SELECT host_id, epoch, seq FROM reports WHERE outcome <> 'fork' GROUP BY 1, 2, 3 HAVING count(*) > 1) d",
            database: PostgresCluster.databaseName(of: url))
        #expect(duplicates == "0\n")
    }

    @Test func aKilledInstanceLosesNoAcknowledgedReport() async throws {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.newDatabase()
        let length = 10
        let machines = try (0..<24).map { try TestMachine(index: 900 + $0, hostname: "pk-\($0)", assetID: "PK-\($0)", classification: .confidential) }
        let store = try await PostgresStore.open(try PostgresLocation.parse(url))
        defer { store.close() }
        for key in PostingPlan(machines: machines, posts: []).keys { try await store.approve(key) }
        let chains: [[(envelope: [UInt8], digest: String)]] = try machines.map { machine in
            try (1...length).map { day in
                let envelope = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day))
                return (envelope, machine.prev)
            }
        }
        let servers = try (0..<4).map { _ in try ServerProcess(database: url) }
        defer { for server in servers { server.kill() } }
        let victim = servers[0]
        let acknowledged = AcknowledgedDigests()
        let session = Self.session()
        // Each machine posts its chain round-robin over the instances; the first instance is
        // killed once 80 reports are acknowledged, and a post it did not answer goes to the next.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (number, chain) in chains.enumerated() {
                group.addTask {
                    for (index, item) in chain.enumerated() {
                        var attempt = 0
                        while true {
                            let server = servers[(number + index + attempt) % servers.count]
                            attempt += 1
                            guard let (status, _) = try? await CrashTests.post(item.envelope, port: server.port, session: session), status == 202 else {
                                #expect(attempt < 8, "machine \(number) report \(index) was never answered")
                                if attempt >= 8 { return }
                                continue
                            }
                            if acknowledged.add(item.digest) == 80 { victim.kill() }
                            break
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(victim.isKilled)
        let digests = acknowledged.all
        #expect(digests.count >= chains.count * length, "every report was acknowledged by one instance or another")
        var hostOf: [String: String] = [:]
        for (number, chain) in chains.enumerated() { for item in chain { hostOf[item.digest] = machines[number].host.hostID } }
        for digest in Set(digests) {
            let hostID = try #require(hostOf[digest])
            #expect(try await store.envelope(hostID: hostID, payloadSHA256: digest) != nil, "acknowledged \(digest) is stored")
        }
        let hosts = try await store.hosts()
        #expect(hosts.count == machines.count)
        #expect(hosts.allSatisfy { $0.reportCount == length && $0.chain.seq == Int64(length - 1) && $0.forkCount == 0 && $0.missingCount == 0 })
        let year = try await store.snapshot(year: 2026)
        #expect(year.hosts.allSatisfy { $0.reports == length && $0.rules["net.internet-route"]?.pass == length })
    }
}
