#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCollector
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

/// A unit's hosts and what they post: each host's chain in order, with exact duplicates, a
/// fork (the same seq, other content, as a cloned disk sends it) and replays of older seqs.
/// Shared by the tests that post it to one store, to several stores and to several processes.
struct PostingPlan: Sendable {
    /// One host's posts, in the order its agent makes them.
    struct Post: Sendable {
        var envelope: [UInt8]
        /// How many instances it goes to at the same moment (an exact duplicate races itself).
        var copies: Int
    }

    var machines: [TestMachine]
    var posts: [[Post]]

    /// `hosts` machines (indices from `first`) with `length` reports each.
    static func make(hosts: Int, length: Int, first: Int = 700) throws -> PostingPlan {
        let machines = try (0..<hosts).map { try TestMachine(index: first + $0, hostname: "pg-\(first + $0)", assetID: "PG-\($0)", classification: .confidential) }
        var posts: [[Post]] = []
        for (number, machine) in machines.enumerated() {
            var chain: [Post] = []
            var envelopes: [[UInt8]] = []
            for day in 1...length {
                let at = TestUnit.day(day)
                var findings = machine.cleanFindings(at: at)
                if day % 3 == 0 { findings[0] = machine.finding(RuleCatalogue.auditRules[0], "host", .fail, "found on day \(day)", at: at) }
                if day == length / 2 {
                    // A cloned disk: the same seq as the report about to be made, other content.
                    let clone = machine.report(findings: [], issuedAt: at.addingTimeInterval(60))
                    let real = try machine.next(findings: findings, issuedAt: at)
                    envelopes.append(real)
                    chain.append(Post(envelope: real, copies: 1))
                    chain.append(Post(envelope: try machine.envelope(clone), copies: 1))
                    continue
                }
                let envelope = try machine.next(findings: findings, issuedAt: at)
                envelopes.append(envelope)
                // Every host's reports go out 1 to 3 times at once, by its number and day.
                chain.append(Post(envelope: envelope, copies: 1 + (number + day) % 3))
            }
            // An exact copy of an early report, and a replay of an early seq with other content.
            chain.append(Post(envelope: envelopes[1], copies: 2))
            let stale = machine.report(findings: [], issuedAt: TestUnit.day(2).addingTimeInterval(30), seq: 1, prev: String(repeating: "ab", count: 32))
            chain.append(Post(envelope: try machine.envelope(stale), copies: 3))
            posts.append(chain)
        }
        return PostingPlan(machines: machines, posts: posts)
    }

    /// What every host must show afterwards, whichever instance took which post.
    func expectHosts(_ hosts: [HostRecord], length: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(hosts.count == machines.count, sourceLocation: sourceLocation)
        for machine in machines {
            let host = hosts.first { $0.hostID == machine.host.hostID }
            #expect(host?.chain.seq == Int64(length - 1), "\(machine.host.hostname)", sourceLocation: sourceLocation)
            #expect(host?.chain.digest == machine.prev, "\(machine.host.hostname)", sourceLocation: sourceLocation)
            #expect(host?.reportCount == length + 1, "\(machine.host.hostname): every report once and the fork", sourceLocation: sourceLocation)
            #expect(host?.forkCount == 1 && host?.missingCount == 0, "\(machine.host.hostname)", sourceLocation: sourceLocation)
        }
    }
}

extension PostingPlan {
    /// The machines' keys as the registry holds them once approved.
    var keys: [KeyRecord] {
        machines.map { machine in
            KeyRecord(
                keyid: machine.key.keyid, pem: machine.key.publicKey.pem, hostID: machine.host.hostID, hostname: machine.host.hostname,
                assetID: machine.host.assetID, classification: machine.host.classification, responsible: machine.host.responsible, agentVersion: "test",
                previousKeyID: nil, note: "test", requestedAt: TestUnit.start, approvedAt: TestUnit.start, requestSHA256: String(repeating: "0", count: 64))
        }
    }

    /// The single-instance result: SQLite in memory, every post once, in order.
    func reference(length: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws -> (store: SQLiteStore, hosts: [HostRecord]) {
        let store = try SQLiteStore.inMemory()
        for key in keys { try await store.approve(key) }
        let lookup = MachineKeys(machines: machines)
        for chain in posts {
            for post in chain { _ = try await submit(post.envelope, to: store, keys: lookup) }
        }
        let hosts = try await store.hosts()
        expectHosts(hosts, length: length, sourceLocation: sourceLocation)
        return (store, hosts)
    }
}

/// Every machine's key, never revoked: so that what refuses a revoked key is the ledger's own check.
struct MachineKeys: KeyLookup {
    var machines: [TestMachine]
    func key(for keyid: String) -> VerifyingKey? { machines.first { $0.key.keyid == keyid }?.key.publicKey }
}

/// A store's stored chains, as comparable text: one line per stored report.
func chainText(_ store: any StoreQueries, hosts: [HostRecord]) async throws -> [String] {
    var lines: [String] = []
    for host in hosts.sorted(by: { $0.hostID < $1.hostID }) {
        lines.append("host \(host.hostID) \(host.hostname) \(host.chain.epoch)/\(host.chain.seq) \(host.chain.digest) reports \(host.reportCount) forks \(host.forkCount) missing \(host.missingCount) fail \(host.lastFailCount)")
        for report in try await store.reports(hostID: host.hostID, limit: 1000) {
            lines.append("  \(report.epoch)/\(report.seq) \(report.outcome.rawValue) \(report.payloadSHA256) fail \(report.failCount)")
        }
    }
    return lines
}

/// Verifies and records an envelope on any backend, as the collector does.
func submit(_ envelope: [UInt8], to store: any IngestLedger, keys: any KeyLookup, at date: Date = TestUnit.day(40)) async throws -> Result<IngestResult, IngestRefusal> {
    let verified = try EnvelopeVerifier(keys: keys).verifyReport(envelope)
    let submission = VerifiedSubmission(keyid: verified.keyid, payload: verified.payload, payloadSHA256: verified.payloadSHA256, report: verified.report)
    return try await store.record(IngestSubmission(submission, envelope: envelope, receivedAt: date, source: "test"))
}

@Suite("PostgreSQL: the connection, the schema, and one ledger shared by several stores", .serialized)
struct PostgresStoreTests {
    @Test func databaseURLsSayWhatIsWrong() throws {
        let full = try PostgresLocation.parse("postgres://mijian@db.unit.example:6543/collector?sslrootcert=/etc/mijian/ca.pem&password_file=/etc/mijian/pw")
        #expect(full.endpoint == .tcp(host: "db.unit.example", port: 6543))
        #expect(full.username == "mijian" && full.database == "collector")
        #expect(full.tlsMode == .verifyFull, "TLS verified against the roots and the host name unless said otherwise")
        #expect(full.rootCertificate == "/etc/mijian/ca.pem" && full.passwordFile == "/etc/mijian/pw")
        let socket = try PostgresLocation.parse("postgresql://mijian@/collector?host=/run/postgresql")
        #expect(socket.endpoint == .unixSocket(path: "/run/postgresql/.s.PGSQL.5432"))
        #expect(socket.description == "postgres://mijian@/collector?host=/run/postgresql", "the socket's directory, as it was given")
        #expect(socket.tlsMode == .disable)
        #expect(try PostgresLocation.parse("postgres://u@[::1]/d?sslmode=require").endpoint == .tcp(host: "::1", port: 5432))
        func refused(_ url: String) -> String {
            do {
                _ = try PostgresLocation.parse(url)
                return "accepted"
            } catch {
                return error.message
            }
        }
        #expect(refused("postgres://mijian:secret@db/collector").contains("password_file"))
        #expect(refused("postgres://mijian@db/collector?sslmode=disable").contains("in clear"))
        #expect(refused("postgres://mijian@db/collector?sslmode=prefer").contains("not known"))
        #expect(refused("postgres://mijian@db/collector?password=x").contains("not known"))
        #expect(refused("postgres://db/collector").contains("no user"))
        #expect(refused("postgres://mijian@db/").contains("no database"))
        #expect(refused("postgres://mijian@db/c?sslmode=require&sslrootcert=/ca.pem").contains("only read"))
        #expect(refused("/var/lib/mijian-collector") != "accepted")
    }

    @Test func migrationsApplyOnceOverVerifiedTLS() async throws {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.newDatabase()
        let location = try PostgresLocation.parse(url)
        let first = try await PostgresStore.open(location)
        #expect(first.appliedMigrations == ["1-collector", "2-host-summaries"])
        // A second instance starting on the same database finds the schema current.
        let second = try await PostgresStore.open(location)
        #expect(second.appliedMigrations.isEmpty)
        let database = PostgresCluster.databaseName(of: url)
        #expect(try cluster.psql("SELECT version FROM schema_migrations ORDER BY version", database: database) == "1-collector\n2-host-summaries\n")
        // Every connection of the collector's role is TLS.
        let connections = try cluster.psql("""
            SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'mijian'
            """)
        let numbers = connections.split(whereSeparator: { $0 == "|" || $0 == "\n" }).compactMap { Int($0) }
        #expect(numbers.count == 2 && numbers[0] == numbers[1] && numbers[0] > 0, "\(connections)")
        first.close()
        second.close()
    }

    @Test func aPasswordOthersCanReadAWrongPasswordAndAStrangeServerAreRefused() async throws {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.newDatabase()
        let directory = try TestSupport.temporaryDirectory("pg-secrets").path
        func openError(_ url: String) async -> String {
            do {
                let store = try await PostgresStore.open(try PostgresLocation.parse(url))
                store.close()
                return "opened"
            } catch {
                return "\(error)"
            }
        }
        // A password file others may read.
        let open = "\(directory)/open-password"
        try FileManager.default.copyItem(atPath: cluster.passwordFile, toPath: open)
        chmod(open, 0o644)
        #expect(await openError(url.replacingOccurrences(of: cluster.passwordFile, with: open)).contains("chmod 600"))
        // A wrong password: the server's own refusal (SQLSTATE 28P01) is kept.
        let wrong = "\(directory)/wrong-password"
        try Data("not-the-password\n".utf8).write(to: URL(fileURLWithPath: wrong))
        chmod(wrong, 0o600)
        #expect(await openError(url.replacingOccurrences(of: cluster.passwordFile, with: wrong)).contains("28P01"))
        // A server whose certificate another authority signed.
        let otherCA = "\(directory)/other-ca.pem"
        let made = try TestSupport.run("/bin/sh", ["-c", """
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj '/CN=other' -keyout '\(directory)/other.key' -out '\(otherCA)' 2>&1
            """])
        #expect(made.status == 0, "\(made.stdout)")
        let strange = await openError(url.replacingOccurrences(of: cluster.caFile, with: otherCA))
        #expect(strange.contains("cannot open the database") && strange != "opened", "\(strange)")
        // The right ones open.
        #expect(await openError(url) == "opened")
    }

    @Test func twoStoresOnOneDatabaseDecideAsOneStoreDoes() async throws {
        let cluster = try PostgresCluster.shared()
        let location = try PostgresLocation.parse(try cluster.newDatabase())
        let length = 8
        let plan = try PostingPlan.make(hosts: 12, length: length)
        let reference = try await plan.reference(length: length)
        let a = try await PostgresStore.open(location)
        let b = try await PostgresStore.open(location)
        defer {
            a.close()
            b.close()
        }
        // Keys approved through one store reach the other without a restart (its change notices).
        for key in plan.keys { try await a.approve(key) }
        let deadline = Date().addingTimeInterval(10)
        while plan.machines.contains(where: { b.keyLookup.key(for: $0.key.keyid) == nil }), Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(plan.machines.allSatisfy { b.keyLookup.key(for: $0.key.keyid) != nil }, "approvals reached the other store")

        // Hosts in parallel; each post to both stores at once as many times as it is copied.
        let stores: [PostgresStore] = [a, b]
        let keys = a.keyLookup
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (number, chain) in plan.posts.enumerated() {
                group.addTask {
                    for (index, post) in chain.enumerated() {
                        try await withThrowingTaskGroup(of: Void.self) { copies in
                            for copy in 0..<post.copies {
                                copies.addTask { _ = try await submit(post.envelope, to: stores[(number + index + copy) % 2], keys: keys) }
                            }
                            try await copies.waitForAll()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let hosts = try await a.hosts()
        plan.expectHosts(hosts, length: length)
        #expect(try await chainText(a, hosts: hosts) == chainText(reference.store, hosts: reference.hosts))
        let counts = try await b.counts()
        #expect(counts.stored == ["first": 12, "accepted": 12 * (length - 1), "fork": 12])
        // The year's aggregates agree as well.
        let year = try await a.snapshot(year: 2026)
        let referenceYear = try await reference.store.snapshot(year: 2026)
        #expect(year.hosts == referenceYear.hosts)
        #expect(year.findings == referenceYear.findings)
        #expect(year.forks.map(\.reportSHA256) == referenceYear.forks.map(\.reportSHA256))

        // A revocation through the other store: refused at once by both, whatever their copies say.
        let revoked = plan.machines[0]
        try await b.revoke(keyid: revoked.key.keyid, at: TestUnit.day(41), reason: "lost")
        let next = try revoked.next(findings: revoked.cleanFindings(at: TestUnit.day(41)), issuedAt: TestUnit.day(41))
        let refusedA = try await submit(next, to: a, keys: MachineKeys(machines: plan.machines))
        #expect(refusedA.failureReason == "revoked")
    }

}

extension Result where Failure == IngestRefusal {
    /// The refusal's reason, or nil.
    var failureReason: String? {
        if case .failure(let refusal) = self { return refusal.reason }
        return nil
    }
}

extension StoreFactories {
    /// PostgreSQL: a fresh database on the shared throwaway cluster, dropped afterwards.
    static let postgres = StoreFactory(name: "PostgreSQL") {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.newDatabase()
        let store = try await PostgresStore.open(try PostgresLocation.parse(url))
        return (store, {
            store.close()
            _ = try? cluster.psql("DROP DATABASE \(PostgresCluster.databaseName(of: url)) WITH (FORCE)")
        })
    }
}

@Suite("mijian-collector migrate: a unit's SQLite store into PostgreSQL", .serialized)
struct PostgresMigrateTests {
    @Test func theCopyHoldsEveryReportByteForByteAndSaysWhatItDid() async throws {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.newDatabase()
        let directory = try TestSupport.temporaryDirectory("migrate").path
        let length = 6
        let plan = try PostingPlan.make(hosts: 5, length: length, first: 950)
        do {
            let source = try SQLiteStore(directory: directory)
            for key in plan.keys { try await source.approve(key) }
            try await source.revoke(keyid: plan.machines[4].key.keyid, at: TestUnit.day(30), reason: "lost")
            for chain in plan.posts {
                for post in chain { _ = try await submit(post.envelope, to: source, keys: MachineKeys(machines: plan.machines)) }
            }
            _ = try await source.logRefusal(IngestRefusal(.badSignature, detail: "test"), receivedAt: TestUnit.day(40), source: "http 192.0.2.7:4000")
        }
        let binary = TestSupport.productPath("mijian-collector")
        let result = try TestSupport.run(binary, ["migrate", "--from", directory, "--to", url])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("reports: \(4 * (length + 1)) rows"), "the revoked machine's reports were refused: \(result.stdout)")
        #expect(result.stdout.contains("keys: 5 rows") && result.stdout.contains("refusals: 2 rows") && result.stdout.contains("verified:"), "\(result.stdout)")

        let source = try SQLiteStore(directory: directory)
        let target = try await PostgresStore.open(try PostgresLocation.parse(url))
        defer { target.close() }
        let hosts = try await target.hosts()
        #expect(try await chainText(target, hosts: hosts) == chainText(source, hosts: try await source.hosts()))
        #expect(try await target.keys() == source.keys())
        #expect(try await target.counts() == source.counts())
        #expect(try await target.refusals(limit: 10) == source.refusals(limit: 10))
        let year = try await target.snapshot(year: 2026)
        let sourceYear = try await source.snapshot(year: 2026)
        #expect(year.hosts == sourceYear.hosts && year.findings == sourceYear.findings && year.forks == sourceYear.forks)
        for host in hosts {
            for report in try await source.reports(hostID: host.hostID, limit: 100) {
                #expect(try await target.envelope(hostID: host.hostID, payloadSHA256: report.payloadSHA256) == source.envelope(hostID: host.hostID, payloadSHA256: report.payloadSHA256))
            }
        }
        // The registry copied is the one the ledger checks: the revoked key stays revoked.
        let machine = plan.machines[4]
        let next = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(41)), issuedAt: TestUnit.day(41))
        #expect(try await submit(next, to: target, keys: MachineKeys(machines: plan.machines)).failureReason == "revoked")
        // New rows continue after the copied ids.
        let other = plan.machines[0]
        let more = try other.next(findings: other.cleanFindings(at: TestUnit.day(42)), issuedAt: TestUnit.day(42))
        #expect(try await submit(more, to: target, keys: MachineKeys(machines: plan.machines), at: TestUnit.day(42)).failureReason == nil)

        // A second migration into the same database is refused, and says why.
        let again = try TestSupport.run(binary, ["migrate", "--from", directory, "--to", url])
        #expect(again.status != 0 && again.stderr.contains("empty database"), "\(again.stderr)")
    }
}
