// bench-postgres: reports per second into PostgreSQL through 1, 2 or 4 real `mijian-collector
// serve --database` processes on one database, beside the machine's Ed25519 limit measured in
// the same run, and the bytes the database holds per stored report.
//
// Run through Benchmarks/ingest-postgres.sh, which makes a durable throwaway cluster (fsync on)
// and a fresh database per run:
//   .build/release/bench-postgres URL COLLECTOR INSTANCES [machines] [reports-each] [connections]
//
// The machines are enrolled through the store's registry before the clock starts; the signed
// envelopes are made before it too. The load comes from this process's threads over plain
// keep-alive sockets: connection c takes machines c, c + connections, … and the instance c mod
// INSTANCES, and sends each machine's chain seq by seq, so every chain arrives in order.
#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import Logging
import MijianCollector
import MijianCore
import MijianEvidence
import Synchronization

let arguments = Array(CommandLine.arguments.dropFirst())
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

// The instances.
var servers: [(process: Process, port: UInt16)] = []
for _ in 0..<instances {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: collectorPath)
    process.arguments = ["serve", "--database", url, "--listen", "127.0.0.1:0"]
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

// Requests are serialised before the clock starts.
var plans: [[[UInt8]]] = Array(repeating: [], count: connections)
for seq in 0..<reportsEach {
    for (index, chain) in chains.enumerated() where seq < chain.count {
        let body = chain[seq]
        var request = Array("POST /v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        request.append(contentsOf: body)
        plans[index % connections].append(request)
    }
}
let prepared = plans
let ports = servers.map(\.port)
let total = prepared.reduce(0) { $0 + $1.count }
let statuses = Mutex<[Int: Int]>([:])
let clock = ContinuousClock()
let began = clock.now
DispatchQueue.concurrentPerform(iterations: connections) { worker in
    var counts: [Int: Int] = [:]
    let socket = HTTPLoad.connect(port: ports[worker % ports.count])
    for request in prepared[worker] { counts[socket < 0 ? -1 : HTTPLoad.exchange(socket, request), default: 0] += 1 }
    if socket >= 0 { close(socket) }
    statuses.withLock { all in for (status, count) in counts { all[status, default: 0] += count } }
}
let elapsed = clock.now - began
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let byStatus = statuses.withLock { $0 }
print(String(format: "postgresql, %d instance%@: %d reports (%d machines × %d) in %.2f s, %.0f reports/s over %d keep-alive connections; HTTP statuses {%@}",
    instances, instances == 1 ? "" : "s", total, machines, reportsEach, seconds, Double(total) / seconds, connections,
    byStatus.keys.sorted().map { "\($0): \(byStatus[$0] ?? 0)" }.joined(separator: ", ")))
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

enum HTTPLoad {
    static func connect(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// Sends one request and reads one response; the status code (0 on a broken connection).
    static func exchange(_ fd: Int32, _ request: [UInt8]) -> Int {
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress.map { $0 + sent }, request.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return 0 }
            sent += n
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        var needed = Int.max
        var headerSeen = false
        while response.count < needed {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return 0 }
            response.append(contentsOf: buffer[0..<n])
            if !headerSeen, let end = headerEnd(response) {
                headerSeen = true
                let head = String(decoding: response[0..<end], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                needed = end + 4 + length
            }
        }
        return Int(String(decoding: response.prefix(12), as: UTF8.self).dropFirst(9).prefix(3)) ?? 0
    }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 { return index }
        return nil
    }
}
