// bench-queries: the collector's reads at a large unit's scale, on SQLite and on PostgreSQL.
//
//   bench-queries fill DIR MACHINES REPORTS-A-YEAR YEARS [--catalogue]
//       writes MACHINES machines × REPORTS-A-YEAR reports for each of YEARS years (the last one
//       2026) into a new SQLite store in DIR through the real ingest ledger (chain decision and
//       group commit, signatures not made: the figure here is the reads'). Every 97th machine
//       skips a report (a gap), every 991st sends one report twice with different content (a
//       fork). `--catalogue`: every report carries a finding for each audit rule (what the
//       year's assessment reads); otherwise three findings, for the machine list and timelines.
//   bench-queries sqlite DIR [ROUNDS]
//   bench-queries postgres URL [ROUNDS] [--from DIR]
//       times the machine list (store query, then as `mijian-collector hosts` and `/v1/hosts`
//       render it), one page of it, a machine's page (`/v1/hosts/{id}`: its row, 100 reports,
//       its gaps) and the year's self-assessment (snapshot, correlation and scoring, Markdown,
//       JSON and HTML) for the newest and the oldest year stored. `--from DIR` moves the SQLite
//       store in DIR into the (empty) PostgreSQL database instead, as `mijian-collector migrate`.
//
// Figures are medians and bests of ROUNDS (default 5) after one warm-up read.
import Crypto
import Foundation
import Logging
import MijianCollector
import MijianCore
import MijianEvidence

let logger: Logger = {
    var logger = Logger(label: "bench-queries")
    logger.logLevel = .error
    return logger
}()

func fail(_ text: String) -> Never {
    FileHandle.standardError.write(Data("bench-queries: \(text)\n".utf8))
    exit(2)
}

func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

func yearStart(_ year: Int) -> Date { CollectorCalendar.start(of: year) }

func host(_ index: Int) -> HostInfo {
    HostInfo(
        hostID: HostInfo.hostID(machineID: "bench-\(index)"), hostname: String(format: "ws-%06d", index), assetID: String(format: "JSJ-%06d", index),
        classification: index % 10 != 9 ? .confidential : .unclassified, responsible: "张三", unit: "某局\(index % 12)", os: "Debian GNU/Linux 12", kernel: "6.1.0")
}

func findings(_ host: HostInfo, at date: Date, index: Int, report: Int, catalogue: Bool) -> [Finding] {
    let rules = catalogue ? RuleCatalogue.auditRules : Array(RuleCatalogue.auditRules.prefix(3))
    return rules.map { rule in
        let fail = rule.id == "net.internet-route" && index % 500 == 0 && report == 3
        let usb = rule.id == "usb.storage" && index % 200 == 0
        let data: JSONValue = usb ? ["devices": [["vendor": "0781", "product": "5583", "serial": .string("SER\(index % 400)")]]] : [:]
        return Finding(
            uid: Finding.uid(hostID: host.hostID, ruleID: rule.id, subject: "host"), rule: rule, subject: "host", severity: rule.defaultSeverity,
            status: fail ? .fail : .pass, statusDetail: fail ? "default route via 203.0.113.1" : "nothing found", observedAt: date,
            evidence: [Evidence(kind: "bench", source: "generated", observedAt: date, data: data)])
    }
}

func seconds(_ duration: Duration) -> Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }

func milliseconds(_ values: [Double]) -> String {
    let sorted = values.sorted()
    return String(format: "median %.1f ms, best %.1f ms", sorted[sorted.count / 2] * 1000, sorted[0] * 1000)
}

/// Runs `body` once to warm, then `rounds` times; returns the times in seconds.
func timed<T>(_ rounds: Int, _ body: () async throws -> T) async rethrows -> (value: T, times: [Double]) {
    let clock = ContinuousClock()
    var value = try await body()
    var times: [Double] = []
    for _ in 0..<rounds {
        let begin = clock.now
        value = try await body()
        times.append(seconds(clock.now - begin))
    }
    return (value, times)
}

// MARK: - Filling a store

/// Stores one report through the ingest ledger; returns its digest.
func submit(_ report: Report, keyid: String, at: Date, into store: SQLiteStore) async throws -> String {
    let payload = report.payloadBytes()
    let sha = hex(payload)
    let verified = VerifiedSubmission(keyid: keyid, payload: payload, payloadSHA256: sha, report: report)
    let outcome = try await store.record(IngestSubmission(verified, envelope: payload, receivedAt: at, source: "bench"))
    guard case .success = outcome else { throw MijianError(.database, "report \(report.seq) of \(report.host.hostname) was refused: \(outcome)") }
    return sha
}

func fill(directory: String, machines: Int, perYear: Int, years: Int, catalogue: Bool) async throws {
    let store = try SQLiteStore(directory: directory)
    let policies = try CollectorSetup.policies([])
    let firstYear = 2026 - years + 1
    let clock = ContinuousClock()
    let begin = clock.now
    var keys: [KeyRecord] = []
    for index in 0..<machines {
        let info = host(index)
        keys.append(KeyRecord(
            keyid: "sha256:" + hex(Array(info.hostID.utf8)), pem: "bench", hostID: info.hostID, hostname: info.hostname, assetID: info.assetID,
            classification: info.classification, responsible: info.responsible, agentVersion: "bench", previousKeyID: nil, note: nil,
            requestedAt: yearStart(firstYear), approvedAt: yearStart(firstYear), requestSHA256: ""))
        if keys.count == 20_000 || index == machines - 1 {
            try await store.approve(contentsOf: keys)
            keys.removeAll(keepingCapacity: true)
        }
    }
    print("fill: \(machines) machines enrolled in \(clock.now - begin)")
    // One task per machine (its reports in chain order), many machines at once: the group commit
    // takes whatever waits when the writer frees.
    let stored = try await withThrowingTaskGroup(of: Int.self) { group in
        var next = 0
        var total = 0
        func submitMachine(_ index: Int) {
            group.addTask {
                let info = host(index)
                let keyid = "sha256:" + hex(Array(info.hostID.utf8))
                var prev = ""
                var count = 0
                var seq: Int64 = 0
                for year in firstYear...2026 {
                    for report in 0..<perYear {
                        if index % 97 == 0 && year == 2026 && report == 1 { seq += 1 }    // a gap
                        let at = yearStart(year).addingTimeInterval(Double(report) * 30 * 86_400 + Double(index % 86_400))
                        let made = Report(
                            epoch: 0, seq: seq, prevSHA256: prev, issuedAt: at, windowStart: at, windowEnd: at, agent: AgentInfo(keyid: keyid), host: info,
                            policy: (info.classification == .confidential ? policies[0] : policies[1]).info,
                            findings: findings(info, at: at, index: index, report: report, catalogue: catalogue))
                        prev = try await submit(made, keyid: keyid, at: at, into: store)
                        count += 1
                        if index % 991 == 0 && year == 2026 && report == perYear - 1 {
                            // The same seq again with other content: a fork, stored beside the chain.
                            var other = made
                            other.windowEnd = at.addingTimeInterval(1)
                            _ = try await submit(other, keyid: keyid, at: at, into: store)
                            count += 1
                        }
                        seq += 1
                    }
                }
                return count
            }
        }
        while next < min(machines, 512) {
            submitMachine(next)
            next += 1
        }
        while let count = try await group.next() {
            total += count
            if next < machines {
                submitMachine(next)
                next += 1
            }
            if total % 100_000 < count { print("  \(total) reports in \(clock.now - begin)") }
        }
        return total
    }
    let elapsed = clock.now - begin
    let bytes = ["collector.sqlite", "collector.sqlite-wal"].reduce(0) { sum, name in
        sum + ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.size] as? Int) ?? 0)
    }
    print(String(format: "fill: %d machines × %d reports a year × %d years (%d–2026): %d reports stored in %.1f s (%.0f/s), %.0f MB",
        machines, perYear, years, firstYear, stored, seconds(elapsed), Double(stored) / seconds(elapsed), Double(bytes) / 1e6))
}

// MARK: - Measuring the reads

func measure(_ store: any StoreQueries, name: String, rounds: Int) async throws {
    let settings = UnitSettings(policies: try CollectorSetup.policies([]))
    let table = try CollectorSetup.table(nil)
    let now = yearStart(2027)
    print("\(name):")
    let (hosts, listTimes) = try await timed(rounds) { try await store.hosts() }
    print("  machine list, store query (\(hosts.count) machines): \(milliseconds(listTimes))")
    let (text, textTimes) = try await timed(rounds) {
        HostsView.text(try await store.hosts(), now: now, silentAfterDays: settings.silentAfterDays, currentPolicies: settings.currentPolicyDigests)
    }
    print("  machine list as `mijian-collector hosts` prints it (\(text.utf8.count) bytes): \(milliseconds(textTimes))")
    let (json, jsonTimes) = try await timed(rounds) {
        let listed: JSONValue = .array(try await store.hosts().map {
            HostsView.json($0, now: now, silentAfterDays: settings.silentAfterDays, currentPolicies: settings.currentPolicyDigests)
        })
        let body: JSONValue = ["hosts": listed]
        return body.serialized()
    }
    print("  machine list as /v1/hosts answers it (\(json.count) bytes): \(milliseconds(jsonTimes))")
    if let middle = hosts.dropFirst(hosts.count / 2).first {
        let (page, pageTimes) = try await timed(rounds) { try await store.hosts(after: HostPosition(middle), limit: 100) }
        print("  one page of 100 machines, from the middle of the list (\(page.count) rows): \(milliseconds(pageTimes))")
    }
    // A machine's page: a few machines spread over the list, each read as /v1/hosts/{id} reads it.
    let picks = stride(from: 0, to: hosts.count, by: max(1, hosts.count / 7)).map { hosts[$0].hostID }
    var machineTimes: [Double] = []
    var reportsSeen = 0
    for id in picks {
        let (seen, times) = try await timed(rounds) { () async throws(StoreError) -> Int in
            guard let record = try await store.host(id) else { return 0 }
            let reports = try await store.reports(hostID: id, limit: 100)
            let gaps = try await store.gaps(hostID: id)
            return reports.count + gaps.count + (record.reportCount > 0 ? 0 : 1)
        }
        reportsSeen += seen
        machineTimes += times
    }
    print("  a machine's timeline (row, newest 100 reports, gaps; \(picks.count) machines, \(reportsSeen) rows): \(milliseconds(machineTimes))")
    let stored = try await store.counts().stored.values.reduce(0, +)
    print("  reports stored: \(stored)")
    let years = try await yearsStored(store, hosts: hosts)
    for year in years {
        let clock = ContinuousClock()
        var times: [String: [Double]] = [:]
        var described = ""
        for _ in 0..<max(1, min(rounds, 3)) {
            var begin = clock.now
            let snapshot = try await store.snapshot(year: year)
            times["snapshot", default: []].append(seconds(clock.now - begin))
            begin = clock.now
            let result = AssessmentBuilder.build(snapshot: snapshot, table: table, answers: .none, settings: settings, now: now)
            times["build", default: []].append(seconds(clock.now - begin))
            var sizes: [String] = []
            for format in AssessmentFormat.allCases {
                begin = clock.now
                let bytes = AssessmentRenderer(language: .zh).render(result, format: format)
                times[format.rawValue, default: []].append(seconds(clock.now - begin))
                sizes.append("\(format.rawValue) \(bytes.count) bytes sha256 \(hex(bytes).prefix(12))")
            }
            described = "\(result.hostCount) machines, \(snapshot.findings.count) findings; \(sizes.joined(separator: ", "))"
        }
        let parts = ["snapshot", "build", "md", "json", "html"].map { key in
            String(format: "%@ %.2f s", key, (times[key] ?? [0]).min() ?? 0)
        }
        let total = ["snapshot", "build", "md"].reduce(0.0) { $0 + ((times[$1] ?? [0]).min() ?? 0) }
        print(String(format: "  year %d's self-assessment (%@): %@; snapshot + build + Markdown %.2f s (goal < 5 s)",
            year, described, parts.joined(separator: ", "), total))
    }
}

/// The newest and the oldest year the store's machines reported in.
func yearsStored(_ store: any StoreQueries, hosts: [HostRecord]) async throws -> [Int] {
    guard let sample = hosts.first else { return [2026] }
    let reports = try await store.reports(hostID: sample.hostID, limit: 10_000)
    let years = Set(reports.compactMap { Int($0.issuedAt.prefix(4)) })
    guard let newest = years.max(), let oldest = years.min() else { return [2026] }
    return newest == oldest ? [newest] : [newest, oldest]
}

// MARK: - Main

let arguments = Array(CommandLine.arguments.dropFirst())
guard let mode = arguments.first else { fail("usage: bench-queries fill DIR MACHINES REPORTS-A-YEAR YEARS [--catalogue] | sqlite DIR [ROUNDS] | postgres URL [ROUNDS] [--from DIR]") }
switch mode {
case "fill":
    guard arguments.count >= 5, let machines = Int(arguments[2]), let perYear = Int(arguments[3]), let years = Int(arguments[4]), perYear >= 2, years >= 1 else {
        fail("usage: bench-queries fill DIR MACHINES REPORTS-A-YEAR(≥ 2) YEARS [--catalogue]")
    }
    try await fill(directory: arguments[1], machines: machines, perYear: perYear, years: years, catalogue: arguments.contains("--catalogue"))
case "sqlite":
    guard arguments.count >= 2 else { fail("usage: bench-queries sqlite DIR [ROUNDS]") }
    let store = try SQLiteStore(directory: arguments[1])
    try await measure(store, name: "SQLite \(arguments[1])", rounds: arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5)
case "postgres":
    guard arguments.count >= 2 else { fail("usage: bench-queries postgres URL [ROUNDS] [--from DIR]") }
    let location = try PostgresLocation.parse(arguments[1])
    if let index = arguments.firstIndex(of: "--from"), index + 1 < arguments.count {
        let clock = ContinuousClock()
        let begin = clock.now
        let summary = try await PostgresMigration.copy(from: arguments[index + 1], to: location, logger: logger)
        print("moved \(summary.tables.map { "\($0.name) \($0.rows)" }.joined(separator: ", ")) into PostgreSQL in \(clock.now - begin)")
        exit(0)
    }
    let store = try await PostgresStore.open(location, logger: logger)
    defer { store.close() }
    let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5
    try await measure(store, name: "PostgreSQL", rounds: rounds)
default:
    fail("unknown mode \(mode)")
}
