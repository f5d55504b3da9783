// bench-postgres: reports per second into PostgreSQL through 1, 2 or 4 real `mijian-collector
// serve --database` processes on one database, beside the machine's Ed25519 limit measured in
// the same run, and the bytes the database holds per stored report.
//
// Run through Benchmarks/ingest-postgres.sh, which makes a durable throwaway cluster (fsync on)
// and a fresh database per run:
//   .build/release/bench-postgres URL COLLECTOR INSTANCES [machines] [reports-each] [connections]
//
// The machines are enrolled through the store's registry before the clock starts; the signed
// envelopes are made before it too. Each instance serves HTTPS (`--tls-cert`/`--tls-key`, a
// throwaway CA made with openssl; `--http` in the arguments: plain HTTP). The load comes from
// this process over keep-alive connections (`BenchLoad`, swift-nio and its TLS): connection c
// takes machines c, c + connections, … and the instance c mod INSTANCES, and sends each
// machine's chain seq by seq, so every chain arrives in order. The CPU of the instances, of
// this client and of PostgreSQL's processes over the load is said beside the rate.
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

let plainHTTP = CommandLine.arguments.contains("--http")
let arguments = Array(CommandLine.arguments.dropFirst().filter { $0 != "--http" })
guard arguments.count >= 3, let instances = Int(arguments[2]), instances > 0 else {
    FileHandle.standardError.write(Data("""
        usage: bench-postgres URL COLLECTOR INSTANCES [machines] [reports-each] [connections]
               bench-postgres URL --ledger STORES [machines] [reports-each] [connections]   (the ledger alone, in this process)

        """.utf8))
    exit(2)
}
let url = arguments[0]
let collectorPath = arguments[1]
/// `--ledger`: no HTTP and no serve processes; STORES store objects (each its own pool) in this
/// process verify and record the same envelopes, `connections` machines at a time.
let ledgerOnly = collectorPath == "--ledger"
let machines = arguments.count > 3 ? Int(arguments[3]) ?? 400 : 400
let reportsEach = arguments.count > 4 ? Int(arguments[4]) ?? 20 : 20
let connections = arguments.count > 5 ? Int(arguments[5]) ?? 32 : 32

var logger = Logger(label: "bench-postgres")
logger.logLevel = .error
let start2026 = Date(timeIntervalSince1970: 1_767_225_600)

func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

func host(_ index: Int) -> HostInfo {
    HostInfo(
        hostID: HostInfo.hostID(machineID: "bench-pg-\(index)"), hostname: String(format: "ws-%05d", index), assetID: String(format: "JSJ-%05d", index),
        classification: .confidential, responsible: "张三", unit: "某局", os: "Debian GNU/Linux 12", kernel: "6.1.0")
}

func findings(_ host: HostInfo, at date: Date, index: Int, report: Int) -> [Finding] {
    RuleCatalogue.auditRules.map { rule in
        let fail = rule.id == "net.internet-route" && index % 500 == 0 && report == 3
        return Finding(
            uid: Finding.uid(hostID: host.hostID, ruleID: rule.id, subject: "host"), rule: rule, subject: "host", severity: rule.defaultSeverity,
            status: fail ? .fail : .pass, statusDetail: fail ? "default route via 203.0.113.1" : "nothing found", observedAt: date,
            evidence: [Evidence(kind: "bench", source: "generated", observedAt: date, data: [:])])
    }
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

let store = try await PostgresStore.open(try PostgresLocation.parse(url), logger: logger)
let policy = PolicyInfo(id: "classified-workstation", version: "2026.1", sha256: String(repeating: "0", count: 64))
var chains: [[[UInt8]]] = []
var probe: (key: SigningKey, payload: [UInt8], envelope: [UInt8])?
for index in 0..<machines {
    let key = try SigningKey.generate()
    let info = host(index)
    try await store.approve(KeyRecord(
        keyid: key.keyid, pem: key.publicKey.pem, hostID: info.hostID, hostname: info.hostname, assetID: info.assetID, classification: info.classification,
        responsible: info.responsible, agentVersion: "bench", previousKeyID: nil, note: nil, requestedAt: start2026, approvedAt: start2026, requestSHA256: ""))
    var prev = ""
    var chain: [[UInt8]] = []
    for seq in 0..<reportsEach {
        let at = start2026.addingTimeInterval(Double(seq) * 86_400)
        let report = Report(
            epoch: 0, seq: Int64(seq), prevSHA256: prev, issuedAt: at, windowStart: at, windowEnd: at, agent: AgentInfo(keyid: key.keyid), host: info,
            policy: policy, findings: findings(info, at: at, index: index, report: seq))
        let payload = report.payloadBytes()
        prev = hex(payload)
        let envelope = try DSSE.sign(payload: payload, type: PayloadType.report, key: key).serialized()
        if probe == nil { probe = (key, payload, envelope) }
        chain.append(envelope)
    }
    chains.append(chain)
}
if let probe {
    let message = DSSE.pae(type: PayloadType.report, body: probe.payload)
    let signature = try probe.key.sign(message)
    let verifier = EnvelopeVerifier(keys: probe.key.publicKey)
    let ed25519 = perCoreRate { if !probe.key.publicKey.isValidSignature(signature, for: message) { exit(1) } }
    let whole = try perCoreRate { _ = try verifier.verifyReport(probe.envelope) }
    print(String(format: "one core: Ed25519 alone %.0f/s, whole-envelope verification %.0f/s; this machine's Ed25519 limit (%d cores) %.0f/s",
        ed25519, whole, ProcessInfo.processInfo.activeProcessorCount, Double(ProcessInfo.processInfo.activeProcessorCount) * ed25519))
}

if ledgerOnly {
    let stores = [store] + (try await (1..<instances).asyncMap { _ in try await PostgresStore.open(try PostgresLocation.parse(url), logger: logger) })
    // Approvals made through the first store reach the others by their change notices.
    let keyids = chains.compactMap { $0.first }.compactMap { try? Envelope.parse($0).signatures.first?.keyid }
    while stores.contains(where: { other in keyids.contains { other.keyLookup.key(for: $0) == nil } }) { try await Task.sleep(for: .milliseconds(50)) }
    let prepared = chains
    let clock = ContinuousClock()
    let began = clock.now
    let outcomes = try await withThrowingTaskGroup(of: [String: Int].self) { group in
        for worker in 0..<connections {
            group.addTask {
                var outcomes: [String: Int] = [:]
                for machine in stride(from: worker, to: prepared.count, by: connections) {
                    let target = stores[machine % stores.count]
                    let verifier = EnvelopeVerifier(keys: target.keyLookup)
                    for envelope in prepared[machine] {
                        let verified = try verifier.verifyReport(envelope)
                        let submission = VerifiedSubmission(keyid: verified.keyid, payload: verified.payload, payloadSHA256: verified.payloadSHA256, report: verified.report)
                        switch try await target.record(IngestSubmission(submission, envelope: envelope, receivedAt: Date(), source: "bench")) {
                        case .success(let result): outcomes[result.outcome.rawValue, default: 0] += 1
                        case .failure(let refusal): outcomes["refused/\(refusal.reason)", default: 0] += 1
                        }
                    }
                }
                return outcomes
            }
        }
        var all: [String: Int] = [:]
        for try await part in group { for (key, count) in part { all[key, default: 0] += count } }
        return all
    }
    let elapsed = clock.now - began
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let total = chains.reduce(0) { $0 + $1.count }
    print(String(format: "postgresql ledger alone, %d store%@ in one process: %d reports in %.2f s, %.0f reports/s (%d at a time); outcomes %@",
        instances, instances == 1 ? "" : "s", total, seconds, Double(total) / seconds, connections,
        outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
    let hosts = try await store.hosts()
    print("  hosts \(hosts.count), every chain at seq \(reportsEach - 1): \(hosts.allSatisfy { $0.chain.seq == Int64(reportsEach - 1) && $0.reportCount == reportsEach })")
    for other in stores { other.close() }
    exit(0)
}

// The instances, each with the TLS listener `serve` runs.
let certificateDirectory = NSTemporaryDirectory() + "bench-postgres-tls-\(UUID().uuidString)"
try FileManager.default.createDirectory(atPath: certificateDirectory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: certificateDirectory) }
let certificates = plainHTTP ? nil : try HTTPSLoad.makeCertificates(in: certificateDirectory)
var servers: [(process: Process, port: UInt16)] = []
for _ in 0..<instances {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: collectorPath)
    process.arguments = ["serve", "--database", url, "--listen", "127.0.0.1:0"] + (certificates.map { ["--tls-cert", $0.certificate, "--tls-key", $0.key] } ?? [])
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    var said = ""
    var port: UInt16?
    while port == nil {
        let chunk = errors.fileHandleForReading.availableData
        guard !chunk.isEmpty else { break }
        said += String(decoding: chunk, as: UTF8.self)
        if let range = said.range(of: "listening on 127.0.0.1:") { port = UInt16(said[range.upperBound...].prefix { $0.isNumber }) }
    }
    guard let port else {
        FileHandle.standardError.write(Data("an instance did not start: \(said)\n".utf8))
        exit(1)
    }
    errors.fileHandleForReading.readabilityHandler = { handle in _ = handle.availableData }
    servers.append((process, port))
}
defer { for server in servers { server.process.terminate() } }

// Requests are laid out before the clock starts.
var plans = (0..<connections).map { HTTPSLoad.Plan(port: Int(servers[$0 % servers.count].port), bodies: []) }
for seq in 0..<reportsEach {
    for (index, chain) in chains.enumerated() where seq < chain.count { plans[index % connections].bodies.append(chain[seq]) }
}
let total = plans.reduce(0) { $0 + $1.bodies.count }
let serverTicksBefore = servers.map { ProcessCPU.seconds(pid: $0.process.processIdentifier) }
let postgresBefore = ProcessCPU.postgresSeconds()
let outcome = try await HTTPSLoad.run(plans, trustedCA: certificates?.ca)
let serverCPU = zip(servers, serverTicksBefore).reduce(0.0) { $0 + ProcessCPU.seconds(pid: $1.0.process.processIdentifier) - $1.1 }
let postgresCPU = ProcessCPU.postgresSeconds() - postgresBefore
print(String(format: "postgresql, %d instance%@ over %@: %d reports (%d machines × %d) in %.2f s, %.0f reports/s over %d keep-alive connections; HTTP statuses {%@}",
    instances, instances == 1 ? "" : "s", plainHTTP ? "HTTP" : "HTTPS", total, machines, reportsEach, outcome.seconds, Double(total) / outcome.seconds, connections,
    outcome.statusText))
print(String(format: "  CPU per report: instances %.3f ms, PostgreSQL %.3f ms, load client %.3f ms; %.3f ms in all (%.2f of %d cores busy)",
    serverCPU * 1000 / Double(total), postgresCPU * 1000 / Double(total), outcome.cpuSeconds * 1000 / Double(total),
    (serverCPU + postgresCPU + outcome.cpuSeconds) * 1000 / Double(total), (serverCPU + postgresCPU + outcome.cpuSeconds) / outcome.seconds,
    ProcessInfo.processInfo.activeProcessorCount))
let counts = try await store.counts()
print("  stored: \(counts.stored.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
store.close()

extension Range where Bound == Int {
    /// Maps in order, awaiting each.
    func asyncMap<T>(_ transform: (Int) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for value in self { out.append(try await transform(value)) }
        return out
    }
}

/// CPU time of processes, from /proc.
enum ProcessCPU {
    /// User plus system seconds of one process (its threads included).
    static func seconds(pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Every `postgres` process's CPU seconds (the server and its backends; backends that ended are not counted).
    static func postgresSeconds() -> Double {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        var sum = 0.0
        for entry in entries {
            guard let pid = Int32(entry), let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8), comm.hasPrefix("postgres") else { continue }
            sum += seconds(pid: pid)
        }
        return sum
    }
}
