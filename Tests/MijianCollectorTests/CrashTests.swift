#if canImport(Glibc)
import Glibc
#endif
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MijianCollector
import MijianCore
import MijianTestSupport
import Synchronization
import Testing

/// The `mijian-collector serve` binary as a child process on a loopback port.
final class ServerProcess: Sendable {
    let process: Process
    let port: Int
    private let killed = Mutex<Bool>(false)

    /// A server on the SQLite store in `data`.
    convenience init(data: String) throws {
        try self.init(store: ["--data", data])
    }

    /// A server on the database `--database` names (a directory or a postgres:// URL).
    convenience init(database: String) throws {
        try self.init(store: ["--database", database])
    }

    /// Starts the server with `store` (the options that say where its data is) and waits for
    /// the line that names its port.
    init(store: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.productPath("mijian-collector"))
        process.arguments = ["serve"] + store + ["--listen", "127.0.0.1:0"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var said = ""
        var port: Int?
        while port == nil {
            let chunk = errors.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            said += String(decoding: chunk, as: UTF8.self)
            if let range = said.range(of: "listening on 127.0.0.1:") {
                port = Int(said[range.upperBound...].prefix { $0.isNumber })
            }
        }
        guard let port else {
            process.terminate()
            throw MijianError(.io, "the server did not say which port it listens on: \(said)")
        }
        // Keep draining its log so it never blocks on a full pipe.
        errors.fileHandleForReading.readabilityHandler = { handle in _ = handle.availableData }
        self.process = process
        self.port = port
    }

    /// SIGKILL: no chance to finish anything.
    func kill() {
        let first = killed.withLock { killed -> Bool in
            defer { killed = true }
            return !killed
        }
        guard first else { return }
        _ = Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    var isKilled: Bool { killed.withLock { $0 } }
}

/// Reports the server has answered 202, counted across tasks.
final class Acknowledgements: Sendable {
    private let count = Mutex<Int>(0)

    /// Adds one and returns the new count.
    func add() -> Int {
        count.withLock { value -> Int in
            value += 1
            return value
        }
    }
}

@Suite("A server killed in the middle of ingest", .serialized)
struct CrashTests {
    @Test func everyAcknowledgedReportSurvivesAndNothingIsHalfStored() async throws {
        let directory = try TestSupport.temporaryDirectory("collector-crash")
        defer { try? FileManager.default.removeItem(at: directory) }
        let machines = try (0..<20).map { try TestMachine(index: 300 + $0, hostname: "ws-k\($0)", assetID: "JSJ-K\($0)", classification: .confidential) }
        do {
            let (collector, _) = try TestUnit.collector(directory: directory.path)
            try TestUnit.enrol(machines, into: collector)
        }
        var chains: [[(envelope: [UInt8], digest: String)]] = []
        for machine in machines {
            chains.append(try (1...10).map { day in
                let envelope = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day))
                return (envelope, machine.prev)
            })
        }
        let prepared = chains
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 32
        configuration.timeoutIntervalForRequest = 60
        let session = URLSession(configuration: configuration)

        // Every machine posts its chain in order, all at once; the server is killed once 60
        // reports are acknowledged. A machine stops at its first unanswered report.
        let server = try ServerProcess(data: directory.path)
        let acknowledged = Acknowledgements()
        let firstRound = await withTaskGroup(of: (Int, [String]).self) { group in
            for (index, chain) in prepared.enumerated() {
                group.addTask {
                    var stored: [String] = []
                    for item in chain {
                        guard let (status, _) = try? await Self.post(item.envelope, port: server.port, session: session), status == 202 else { break }
                        stored.append(item.digest)
                        let count = acknowledged.add()
                        if count == 60 { server.kill() }
                    }
                    return (index, stored)
                }
            }
            var out = [[String]](repeating: [], count: prepared.count)
            for await (index, stored) in group { out[index] = stored }
            return out
        }
        server.kill()
        let answered = firstRound.reduce(0) { $0 + $1.count }
        #expect(answered >= 60)
        #expect(answered < 200, "the server was to be killed before every report was posted")

        // After the crash: every acknowledged report is there, and each machine's chain, its
        // stored reports and the year's aggregates agree (no report half stored).
        let (reopened, _) = try TestUnit.collector(directory: directory.path)
        let hosts = try reopened.store.hosts()
        let year = try reopened.store.snapshot(year: 2026)
        for (index, machine) in machines.enumerated() {
            let host = hosts.first { $0.hostID == machine.host.hostID }
            let stored = firstRound[index]
            guard let host else {
                #expect(stored.isEmpty, "\(machine.host.hostname): acknowledged reports are missing")
                continue
            }
            #expect(host.reportCount >= stored.count, "\(machine.host.hostname): an acknowledged report is missing")
            #expect(host.reportCount == Int(host.chain.seq) + 1)
            #expect(host.missingCount == 0 && host.forkCount == 0)
            if let last = stored.last, host.reportCount == stored.count { #expect(host.chain.digest == last) }
            let aggregate = year.hosts.first { $0.hostID == machine.host.hostID }
            #expect(aggregate?.reports == host.reportCount)
            #expect(aggregate?.rules["net.internet-route"]?.pass == host.reportCount)
        }

        // A new server; every machine resends from its first unacknowledged report.
        let restarted = try ServerProcess(data: directory.path)
        defer { restarted.kill() }
        for (index, chain) in prepared.enumerated() {
            for item in chain.dropFirst(firstRound[index].count) {
                let (status, body) = try await Self.post(item.envelope, port: restarted.port, session: session)
                #expect(status == 202)
                #expect(["accepted", "first", "duplicate"].contains(body?["outcome"]?.stringValue ?? ""))
            }
        }
        let final = try reopened.store.hosts()
        #expect(final.count == 20)
        #expect(final.allSatisfy { $0.reportCount == 10 && $0.chain.seq == 9 && $0.missingCount == 0 && $0.forkCount == 0 })
    }

    static func post(_ envelope: [UInt8], port: Int, session: URLSession) async throws -> (Int, JSONValue?) {
        guard let url = URL(string: "http://127.0.0.1:\(port)/v1/reports") else { throw MijianError(.usage, "bad port \(port)") }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = Data(envelope)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await session.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, try? JSONParser().parse(Array(data)))
    }
}
