// bench-collector: two figures the collector issue sets goals for.
//
//   1. Reports ingested per second over HTTPS on loopback, with signature verification, the chain
//      check and storage (goal ≥ 3,000/s at 300,000 machines enrolled).
//   2. Time to build the self-assessment for 10,000 machines' year (goal < 5 s).
//
// Run: cd Benchmarks && swift build -c release --product bench-collector &&
//      .build/release/bench-collector [machines-for-http] [reports-each] [machines-for-assessment] [reports-each] [connections]
//          [--enrolled N] [--http] [--ledger] [--in-process] [--year-only] [--year-store DIR]
//
// The server is the collector's own listener with its TLS (`CollectorTLS`, as `serve --tls-cert
// --tls-key` runs it) on a throwaway CA and certificate made with openssl; `--http` serves plain
// HTTP instead. The load comes from a second process (this binary with `--load`): keep-alive
// HTTP/1.1 inside TLS on swift-nio (`BenchLoad`), the envelopes read before the clock starts;
// it reports its own CPU, so the figure reads against what server and client each cost.
// `--ledger` skips HTTP: the envelopes are verified and recorded in this process, `connections`
// machines at a time (the storage's own ceiling). `--in-process` uses URLSession in the server's
// own process (the way the first figure was taken). `--year-only` skips the first part;
// `--year-store DIR` builds the assessment from the store a previous run left in DIR (its last
// line names it) instead of filling a new one, so the year's figure can be taken again without
// writing 400,000 reports first.
#if canImport(Glibc)
import Glibc
#endif
import BenchLoad
import Crypto
import Foundation
import Logging
import MijianCollector
import MijianCore
import MijianEvidence
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "--load" {
    await LoadGenerator.main(Array(CommandLine.arguments.dropFirst(2)))
}
let inProcess = CommandLine.arguments.contains("--in-process")
let plainHTTP = CommandLine.arguments.contains("--http") || inProcess
let ledgerOnly = CommandLine.arguments.contains("--ledger")
let yearOnly = CommandLine.arguments.contains("--year-only")
/// `--year-store DIR`: the year's store a previous run filled.
let yearStore: String? = {
    guard let index = CommandLine.arguments.firstIndex(of: "--year-store"), index + 1 < CommandLine.arguments.count else { return nil }
    return CommandLine.arguments[index + 1]
}()
let arguments: [Int] = {
    var values: [Int] = []
    var skip = false
    for argument in CommandLine.arguments.dropFirst() {
        if skip { skip = false; continue }
        if argument == "--enrolled" || argument == "--year-store" { skip = true; continue }
        if let value = Int(argument) { values.append(value) }
    }
    return values
}()
let httpMachines = arguments.count > 0 ? arguments[0] : 200
let httpReports = arguments.count > 1 ? arguments[1] : 25
let yearMachines = arguments.count > 2 ? arguments[2] : 10_000
let yearReports = arguments.count > 3 ? arguments[3] : 12
let concurrency = arguments.count > 4 ? max(1, arguments[4]) : 16
/// `--enrolled N`: the registry holds N machines in all (the posting machines among them), as a large unit's does.
let enrolled: Int = {
    guard let index = CommandLine.arguments.firstIndex(of: "--enrolled"), index + 1 < CommandLine.arguments.count else { return 0 }
    return Int(CommandLine.arguments[index + 1]) ?? 0
}()

let logger: Logger = {
    var logger = Logger(label: "bench-collector")
    logger.logLevel = .error
    return logger
}()

/// Stores are removed when their part ends (a run at 300,000 machines leaves 3.6 GB); `--keep`
/// keeps them, e.g. the year's store for `--year-store DIR`.
let keepStores = CommandLine.arguments.contains("--keep")

/// Removes a store the run made, unless `--keep`.
func discard(_ directory: String) {
    guard !keepStores else {
        print("  kept \(directory) (--keep)")
        return
    }
    do {
        try FileManager.default.removeItem(atPath: directory)
    } catch {
        print("  could not remove \(directory): \(error)")
    }
}

func temporaryDirectory(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "bench-collector-\(name)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

enum SHA {
    static func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }
}

let start2026 = Date(timeIntervalSince1970: 1_767_225_600)

func host(_ index: Int, classified: Bool) -> HostInfo {
    HostInfo(
        hostID: HostInfo.hostID(machineID: "bench-\(index)"), hostname: String(format: "ws-%05d", index), assetID: String(format: "JSJ-%05d", index),
        classification: classified ? .confidential : .unclassified, responsible: "张三", unit: "某局", os: "Debian GNU/Linux 12", kernel: "6.1.0")
}

func findings(_ host: HostInfo, at date: Date, index: Int, report: Int) -> [Finding] {
    RuleCatalogue.auditRules.map { rule in
        let fail = rule.id == "net.internet-route" && index % 500 == 0 && report == 3
        let usb = rule.id == "usb.storage" && index % 200 == 0
        let data: JSONValue = usb ? ["devices": [["vendor": "0781", "product": "5583", "serial": .string("SER\(index % 400)")]]] : [:]
        return Finding(
            uid: Finding.uid(hostID: host.hostID, ruleID: rule.id, subject: "host"), rule: rule, subject: "host", severity: rule.defaultSeverity,
            status: fail ? .fail : .pass, statusDetail: fail ? "default route via 203.0.113.1" : "nothing found", observedAt: date,
            evidence: [Evidence(kind: "bench", source: "generated", observedAt: date, data: data)])
    }
}

// MARK: 1. HTTP ingest

func benchHTTP() async throws {
    let directory = try temporaryDirectory("http")
    let store = try CollectorStore(directory: directory)
    let collector = Collector(store: store, verifier: EvidenceSubmissionVerifier(store: store), logger: logger)
    let policy = PolicyInfo(id: "classified-workstation", version: "2026.1", sha256: String(repeating: "0", count: 64))
    var chains: [[[UInt8]]] = []
    var probe: (key: SigningKey, payload: [UInt8])?
    for index in 0..<httpMachines {
        let key = try SigningKey.generate()
        let info = host(index, classified: true)
        _ = try Enrolment.approve(requestBytes: try EnrolmentRequest.signed(key: key, previous: nil, host: info, at: start2026).serialized(), note: nil, store: store)
        var prev = ""
        var chain: [[UInt8]] = []
        for seq in 0..<httpReports {
            let at = start2026.addingTimeInterval(Double(seq) * 86_400)
            let report = Report(
                epoch: 0, seq: Int64(seq), prevSHA256: prev, issuedAt: at, windowStart: at, windowEnd: at, agent: AgentInfo(keyid: key.keyid), host: info,
                policy: policy, findings: findings(info, at: at, index: index, report: seq))
            let payload = report.payloadBytes()
            if probe == nil { probe = (key, payload) }
            prev = SHA.hex(payload)
            chain.append(try DSSE.sign(payload: payload, type: PayloadType.report, key: key).serialized())
        }
        chains.append(chain)
    }
    if enrolled > httpMachines {
        // The rest of the unit: enrolled, silent during the run, each with a key of its own.
        let clock = ContinuousClock()
        let begin = clock.now
        var batch: [KeyRecord] = []
        for index in httpMachines..<enrolled {
            let key = try SigningKey.generate()
            let info = host(index, classified: index % 10 != 9)
            batch.append(KeyRecord(
                keyid: key.keyid, pem: key.publicKey.pem, hostID: info.hostID, hostname: info.hostname, assetID: info.assetID, classification: info.classification,
                responsible: info.responsible, agentVersion: "bench", previousKeyID: nil, note: nil, requestedAt: start2026, approvedAt: start2026, requestSHA256: ""))
            if batch.count == 10_000 {
                try await store.sqlite.approve(contentsOf: batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        try await store.sqlite.approve(contentsOf: batch)
        print("registry: \(enrolled) machines enrolled (\(enrolled - httpMachines) silent during the run) in \(clock.now - begin)")
    }
    if let probe, let envelope = chains.first?.first {
        // What one core does alone on these envelopes: the ceiling of two cores is twice it.
        let message = DSSE.pae(type: PayloadType.report, body: probe.payload)
        let signature = try probe.key.sign(message)
        let verifier = EnvelopeVerifier(keys: probe.key.publicKey)
        let ed25519 = perCoreRate { if !probe.key.publicKey.isValidSignature(signature, for: message) { exit(1) } }
        let whole = try perCoreRate { _ = try verifier.verifyReport(envelope) }
        print(String(format: "one core on these envelopes: Ed25519 alone %.0f/s, whole-envelope verification %.0f/s (%.0f %%); two-core Ed25519 limit %.0f/s",
            ed25519, whole, whole / ed25519 * 100, 2 * ed25519))
    }
    let total = chains.reduce(0) { $0 + $1.count }
    if ledgerOnly {
        try await benchLedger(chains, store: store, collector: collector)
        await printStored(store: store, directory: directory, chains: chains)
        discard(directory)
        return
    }
    let portBox = PortBox()
    let table = try CollectorSetup.table(nil)
    let sources = AssessmentSources(table: table, answers: .none, settings: UnitSettings(policies: try CollectorSetup.policies([])))
    // The listener `serve --tls-cert --tls-key` runs, on a certificate from a throwaway CA.
    let certificates = plainHTTP ? nil : try HTTPSLoad.makeCertificates(in: directory)
    let tls = try certificates.map { try CollectorTLS(certificatePath: $0.certificate, keyPath: $0.key) }
    let app = try CollectorServer.application(
        collector: collector, sources: sources, host: "127.0.0.1", port: 0, limits: ServerLimits(), tls: tls, logger: logger,
        onRunning: { port in await portBox.set(port) })
    let server = Task { try await app.run() }
    let port = await portBox.wait()
    if inProcess {
        let cpuBefore = processCPUSeconds()
        let (accepted, seconds) = try await postInProcess(chains, port: port)
        print(String(format: "http ingest (client in the server's process, URLSession): %d reports (%d machines × %d), %d accepted, %.2f s, %.0f reports/s, %d connections; both used %.2f ms of CPU a report",
            total, httpMachines, httpReports, accepted, seconds, Double(total) / seconds, concurrency, (processCPUSeconds() - cpuBefore) * 1000 / Double(total)))
    } else {
        let file = directory + "/envelopes.bin"
        try LoadGenerator.write(chains, to: file)
        let load = Process()
        load.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        load.arguments = ["--load", "\(port)", file, "\(concurrency)", certificates?.ca ?? "-"]
        let output = Pipe()
        load.standardOutput = output
        try load.run()
        // The server's CPU is counted while the load runs: the client says when its clock starts and stops.
        let lines = output.fileHandleForReading
        var said = ""
        var cpuStart = 0.0
        var wallStart = ContinuousClock.now
        var writerStart = (groups: 0, reports: 0, busy: 0.0, cpu: 0.0)
        while let line = readLine(lines, into: &said) {
            let writer = store.sqlite.statistics
            if line == "start" {
                cpuStart = processCPUSeconds()
                wallStart = ContinuousClock.now
                writerStart = (writer.groupCount, writer.reportCount, writer.busySeconds, writer.cpuSeconds)
            } else if line == "stop" {
                let cpu = processCPUSeconds() - cpuStart
                let wall = ContinuousClock.now - wallStart
                let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
                print(String(format: "  the server (this process) used %.2f CPU s over %.2f s of load: %.3f ms of CPU per report, %.2f cores busy",
                    cpu, wallSeconds, cpu * 1000 / Double(total), cpu / wallSeconds))
                let reports = Double(max(writer.reportCount - writerStart.reports, 1))
                print(String(format: "  the writer: %d groups of %.1f reports on average, busy %.0f %% of the load (%.3f ms a report from taking its group to the commit), %.3f ms of its thread's CPU a report in the statements",
                    writer.groupCount - writerStart.groups, reports / Double(max(writer.groupCount - writerStart.groups, 1)),
                    (writer.busySeconds - writerStart.busy) / wallSeconds * 100, (writer.busySeconds - writerStart.busy) * 1000 / reports,
                    (writer.cpuSeconds - writerStart.cpu) * 1000 / reports))
            } else {
                print(line)
            }
        }
        load.waitUntilExit()
    }
    server.cancel()
    await printStored(store: store, directory: directory, chains: chains)
    discard(directory)
}

/// Reads one line from the load process; nil at its end.
func readLine(_ handle: FileHandle, into buffer: inout String) -> String? {
    while true {
        if let newline = buffer.firstIndex(of: "\n") {
            let line = String(buffer[..<newline])
            buffer.removeSubrange(...newline)
            return line
        }
        let chunk = handle.availableData
        if chunk.isEmpty {
            guard !buffer.isEmpty else { return nil }
            defer { buffer = "" }
            return buffer
        }
        buffer += String(decoding: chunk, as: UTF8.self)
    }
}

func printStored(store: CollectorStore, directory: String, chains: [[[UInt8]]]) async {
    do {
        print("  stored: \(try store.counts().stored.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); machines \(try store.hosts().count)")
        let envelopeSize = chains.first?.first?.count ?? 0
        let stored = try store.counts().stored.values.reduce(0, +)
        // The WAL is checkpointed into the database first, so the file holds everything stored.
        try await store.sqlite.checkpoint()
        let bytes = ["collector.sqlite", "collector.sqlite-wal"].reduce(0) { sum, name in
            sum + ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.size] as? Int) ?? 0)
        }
        print(String(format: "  envelope size %d bytes; database %@/collector.sqlite: %d bytes for %d reports and %d keys, %.0f bytes per report (the registry included)",
            envelopeSize, directory, bytes, stored, max(enrolled, httpMachines), Double(bytes) / Double(max(stored, 1))))
    } catch {
        print("  cannot read the store: \(error)")
    }
}

/// The storage's own ceiling: verification and the ledger, no HTTP, `concurrency` machines at a time.
func benchLedger(_ chains: [[[UInt8]]], store: CollectorStore, collector: Collector) async throws {
    let total = chains.reduce(0) { $0 + $1.count }
    let cpuBefore = processCPUSeconds()
    let clock = ContinuousClock()
    let began = clock.now
    let outcomes = await withTaskGroup(of: [String: Int].self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                var outcomes: [String: Int] = [:]
                for machine in stride(from: worker, to: chains.count, by: concurrency) {
                    for envelope in chains[machine] {
                        switch await collector.submit(envelope, source: "bench") {
                        case .success(let result): outcomes[result.outcome.rawValue, default: 0] += 1
                        case .failure(let refusal): outcomes["refused/\(refusal.reason)", default: 0] += 1
                        }
                    }
                }
                return outcomes
            }
        }
        var all: [String: Int] = [:]
        for await part in group { for (key, count) in part { all[key, default: 0] += count } }
        return all
    }
    let elapsed = clock.now - began
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let cpu = processCPUSeconds() - cpuBefore
    print(String(format: "ledger alone (verification and storage in this process, %d machines at a time): %d reports in %.2f s, %.0f reports/s; %.3f ms of CPU per report, %.2f cores busy; outcomes %@",
        concurrency, total, seconds, Double(total) / seconds, cpu * 1000 / Double(total), cpu / seconds,
        outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
}

/// Operations per second of this thread's CPU time, over about one second.
func perCoreRate(_ body: () throws -> Void) rethrows -> Double {
    func cpu() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
    for _ in 0..<20 { try body() }
    let start = cpu()
    var operations = 0
    while cpu() - start < 1 {
        for _ in 0..<50 { try body() }
        operations += 50
    }
    return Double(operations) / (cpu() - start)
}

func postInProcess(_ chains: [[[UInt8]]], port: Int) async throws -> (Int, Double) {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.httpMaximumConnectionsPerHost = concurrency
    let session = URLSession(configuration: configuration)
    guard let url = URL(string: "http://127.0.0.1:\(port)/v1/reports") else { return (0, 0) }
    let clock = ContinuousClock()
    let startTime = clock.now
    let accepted = try await withThrowingTaskGroup(of: Int.self) { group in
        // `concurrency` workers, each taking whole machines so every chain arrives in order.
        let queue = WorkQueue(chains)
        for _ in 0..<concurrency {
            group.addTask {
                var ok = 0
                while let chain = await queue.next() {
                    for envelope in chain {
                        var request = URLRequest(url: url)
                        request.httpMethod = "POST"
                        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                        request.httpBody = Data(envelope)
                        let (_, response) = try await session.data(for: request)
                        if (response as? HTTPURLResponse)?.statusCode == 202 { ok += 1 }
                    }
                }
                return ok
            }
        }
        var sum = 0
        for try await part in group { sum += part }
        return sum
    }
    let elapsed = clock.now - startTime
    return (accepted, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// The second process: posts every envelope over `connections` keep-alive sockets. Connection
/// `c` takes machines c, c + connections, …, and sends them seq by seq, so each chain arrives in
/// order while many machines are in flight at once.
enum LoadGenerator {
    static func write(_ chains: [[[UInt8]]], to path: String) throws {
        var out: [UInt8] = []
        func put(_ value: Int) { withUnsafeBytes(of: UInt32(value).littleEndian) { out.append(contentsOf: $0) } }
        put(chains.count)
        for chain in chains {
            put(chain.count)
            for envelope in chain {
                put(envelope.count)
                out.append(contentsOf: envelope)
            }
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    static func read(_ path: String) -> [[[UInt8]]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let bytes = Array(data)
        var offset = 0
        func take() -> Int {
            guard offset + 4 <= bytes.count else { return 0 }
            let value = Int(UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24)
            offset += 4
            return value
        }
        var chains: [[[UInt8]]] = []
        for _ in 0..<take() {
            var chain: [[UInt8]] = []
            for _ in 0..<take() {
                let count = take()
                chain.append(Array(bytes[offset..<min(bytes.count, offset + count)]))
                offset += count
            }
            chains.append(chain)
        }
        return chains
    }

    /// `--load PORT FILE CONNECTIONS CA|-`: posts every envelope of FILE over CONNECTIONS
    /// keep-alive connections, inside TLS trusting CA (`-`: plain HTTP). Connection `c` takes
    /// machines c, c + connections, … and sends each machine's chain in order. Prints `start` and
    /// `stop` around the load, for the server to count its CPU over the same span.
    static func main(_ arguments: [String]) async -> Never {
        guard arguments.count == 4, let port = Int(arguments[0]), let connections = Int(arguments[2]), connections > 0 else {
            FileHandle.standardError.write(Data("usage: bench-collector --load PORT FILE CONNECTIONS CA|-\n".utf8))
            exit(2)
        }
        let chains = read(arguments[1])
        var plans = (0..<connections).map { _ in HTTPSLoad.Plan(port: port, bodies: []) }
        let longest = chains.map(\.count).max() ?? 0
        for seq in 0..<longest {
            for (index, chain) in chains.enumerated() where seq < chain.count { plans[index % connections].bodies.append(chain[seq]) }
        }
        let trusted = arguments[3] == "-" ? nil : arguments[3]
        // Unbuffered lines: the server reads `start` and `stop` as they happen.
        func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        say("start")
        do {
            let outcome = try await HTTPSLoad.run(plans, trustedCA: trusted)
            say("stop")
            say(String(format: "%@ ingest (load from a second process, %d keep-alive connections): %d reports in %.2f s, %.0f reports/s; HTTP statuses {%@}",
                trusted == nil ? "http" : "https", connections, outcome.total, outcome.seconds, Double(outcome.total) / outcome.seconds, outcome.statusText))
            say(String(format: "  the load client (a second process) used %.2f CPU s: %.3f ms per report", outcome.cpuSeconds, outcome.cpuSeconds * 1000 / Double(max(outcome.total, 1))))
            exit(0)
        } catch {
            say("stop")
            say("the load failed: \(error)")
            exit(1)
        }
    }
}

/// User plus system CPU time of this process so far (not of the load generator, a child).
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

actor PortBox {
    var port: Int?
    var waiters: [CheckedContinuation<Int, Never>] = []
    func set(_ value: Int) {
        port = value
        for waiter in waiters { waiter.resume(returning: value) }
        waiters = []
    }
    func wait() async -> Int {
        if let port { return port }
        return await withCheckedContinuation { waiters.append($0) }
    }
}

actor WorkQueue {
    var items: [[[UInt8]]]
    init(_ items: [[[UInt8]]]) { self.items = items.reversed() }
    func next() -> [[UInt8]]? { items.popLast() }
}

// MARK: 2. Assessment of a year

func benchAssessment() throws {
    let directory = try yearStore ?? temporaryDirectory("year")
    let store = try CollectorStore(directory: directory)
    let policies = try CollectorSetup.policies([])
    let clock = ContinuousClock()
    let fillStart = clock.now
    for index in 0..<(yearStore == nil ? yearMachines : 0) {
        let classified = index % 10 != 9
        let info = host(index, classified: classified)
        let keyid = "sha256:" + SHA.hex(Array(info.hostID.utf8))
        try store.approve(KeyRecord(
            keyid: keyid, pem: "bench", hostID: info.hostID, hostname: info.hostname, assetID: info.assetID, classification: info.classification,
            responsible: info.responsible, agentVersion: "bench", previousKeyID: nil, note: nil, requestedAt: start2026, approvedAt: start2026, requestSHA256: ""))
        var prev = ""
        for seq in 0..<yearReports {
            let at = start2026.addingTimeInterval(Double(seq) * 30 * 86_400 + Double(index))
            let report = Report(
                epoch: 0, seq: Int64(seq), prevSHA256: prev, issuedAt: at, windowStart: at, windowEnd: at, agent: AgentInfo(keyid: keyid), host: info,
                policy: (classified ? policies[0] : policies[1]).info, findings: findings(info, at: at, index: index, report: seq))
            let payload = report.payloadBytes()
            let sha = SHA.hex(payload)
            prev = sha
            _ = try store.record(VerifiedSubmission(keyid: keyid, payload: payload, payloadSHA256: sha, report: report), envelope: payload, receivedAt: at, source: "bench")
        }
    }
    let fill = clock.now - fillStart
    if yearStore == nil {
        print("assessment: filled \(yearMachines) machines × \(yearReports) reports in \(fill) (direct store writes, no HTTP)")
    } else {
        print("assessment: the store in \(directory)")
    }
    let table = try CollectorSetup.table(nil)
    var best = Duration.seconds(1_000)
    for _ in 0..<3 {
        let begin = clock.now
        let snapshot = try store.snapshot(year: 2026)
        let result = AssessmentBuilder.build(snapshot: snapshot, table: table, answers: .none, settings: UnitSettings(policies: policies), now: start2026.addingTimeInterval(365 * 86_400))
        let html = AssessmentRenderer(language: .zh).render(result, format: .html)
        let elapsed = clock.now - begin
        best = min(best, elapsed)
        print("  snapshot + correlation + scoring + HTML (\(html.count) bytes, \(result.hostCount) hosts, \(result.unitFindings.count) unit findings): \(elapsed)")
    }
    print("assessment for \(yearMachines) machines' year: best \(best) (goal < 5 s); database \(directory)/collector.sqlite")
    if yearStore == nil { discard(directory) }
}

if !yearOnly && yearStore == nil { try await benchHTTP() }
try benchAssessment()
