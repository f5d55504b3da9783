import Foundation
import MijianCore

/// The rules only the collector can decide, because they need more than one machine.
public enum UnitRules {
    /// The same removable medium on a classified and an unclassified machine.
    public static let mediaCrossuse = RuleInfo(
        id: "unit.media-crossuse", title: "No removable medium crosses between classified and unclassified machines",
        titleZH: "涉密与非涉密设备间未交叉使用移动存储介质", references: [.item("七.9"), .score("55")], defaultSeverity: .critical)
    /// Classified machines that reached the internet.
    public static let internet = RuleInfo(
        id: "unit.internet", title: "No classified machine connected to the internet", titleZH: "涉密计算机未接入互联网",
        references: [.item("七.3"), .item("七.7"), .score("53")], defaultSeverity: .critical)
    /// The ledger of computers and media.
    public static let ledger = RuleInfo(
        id: "unit.ledger", title: "Computers and media are in the ledger", titleZH: "计算机和移动存储介质已登记台账",
        references: [.item("七.11")], defaultSeverity: .medium)
    /// Machines that went silent or whose chain or policy is off.
    public static let silent = RuleInfo(
        id: "unit.silent", title: "Every machine reports, with an unbroken chain and the current policy", titleZH: "各计算机按时报告、链完整、策略为现行版本",
        references: [.item("七.10")], defaultSeverity: .high)

    /// Every unit rule.
    public static let all: [RuleInfo] = [mediaCrossuse, internet, ledger, silent]

    /// A unit rule or a machine rule by id.
    public static func rule(_ id: String) -> RuleInfo? { all.first { $0.id == id } ?? RuleCatalogue.rule(id) }
}

/// A pointer to what a machine reported: the signed report behind a verdict.
public struct EvidenceReference: Sendable, Equatable {
    /// The host id.
    public var hostID: String
    /// The rule or event.
    public var ruleID: String
    /// What was judged.
    public var subject: String
    /// The status of the finding.
    public var status: String
    /// When (last observation).
    public var observedAt: Date?
    /// The report's payload digest.
    public var reportSHA256: String?
    /// The finding's sentence or a summary.
    public var detail: String
}

/// A verdict of a unit rule.
public struct UnitFinding: Sendable, Equatable {
    /// The rule.
    public var rule: RuleInfo
    /// What was judged: a medium, a host, `unit`.
    public var subject: String
    /// pass, fail, or notchecked when there is nothing to judge from.
    public var status: Status
    /// One sentence in Chinese.
    public var detail: String
    /// The same in English.
    public var detailEN: String
    /// The machines involved.
    public var hostIDs: [String]
    /// The reports behind it.
    public var evidence: [EvidenceReference]
}

/// What the unit considers current: its ledger, its policies, how long a machine may stay silent.
public struct UnitSettings: Sendable {
    /// Registered media of every policy the unit uses.
    public var ledger: [Policy.LedgerEntry]
    /// Digests of the policies currently in force.
    public var currentPolicyDigests: Set<String>
    /// A machine with no report for longer than this is silent.
    public var silentAfterDays: Int

    /// Makes settings.
    public init(ledger: [Policy.LedgerEntry], currentPolicyDigests: Set<String>, silentAfterDays: Int) {
        self.ledger = ledger
        self.currentPolicyDigests = currentPolicyDigests
        self.silentAfterDays = silentAfterDays
    }

    /// Settings from the unit's policy files.
    public init(policies: [Policy]) {
        self.ledger = policies.flatMap(\.ledger)
        self.currentPolicyDigests = Set(policies.map(\.sha256))
        self.silentAfterDays = policies.first { $0.profile == .classified }?.collector.silentAfterDays ?? policies.first?.collector.silentAfterDays ?? 7
    }
}

/// The year's machines by host id, each found by its position in the snapshot: a lookup reads the
/// fields it needs instead of copying a whole `HostYear` (a dozen references) out of a
/// dictionary, and one table serves the correlation and the assessment. A host id given twice
/// keeps its first machine.
struct HostDirectory {
    /// The snapshot's machines.
    let hosts: [HostYear]
    private let positions: [String: Int]

    init(_ hosts: [HostYear]) {
        self.hosts = hosts
        var positions: [String: Int] = Dictionary(minimumCapacity: hosts.count)
        for index in hosts.indices where positions[hosts[index].hostID] == nil { positions[hosts[index].hostID] = index }
        self.positions = positions
    }

    /// Where the machine is in the snapshot, nil for a machine the year does not hold.
    func position(_ hostID: String) -> Int? { positions[hostID] }

    /// Its host name, `?` for a machine the year does not hold.
    func name(_ hostID: String) -> String { hostname(hostID) ?? "?" }

    /// Its host name, nil for a machine the year does not hold.
    func hostname(_ hostID: String) -> String? { positions[hostID].map { hosts[$0].hostname } }

    /// Its asset number, nil when it has none or the year does not hold it.
    func assetID(_ hostID: String) -> String? { positions[hostID].flatMap { hosts[$0].assetID } }

    /// Whether it is classified, nil for a machine the year does not hold.
    func isClassified(_ hostID: String) -> Bool? { positions[hostID].map { hosts[$0].isClassified } }
}

/// Correlation across machines: the unit rules computed from one year's snapshot.
public enum Correlation {
    /// Rules whose failures on a classified machine make an internet case.
    public static let internetRules: Set<String> = ["net.internet-route", "net.interfaces", "traffic.egress"]

    /// Evaluates every unit rule. `now` bounds the period for silence (the year's end for a past year).
    public static func evaluate(_ snapshot: UnitSnapshot, settings: UnitSettings, now: Date) -> [UnitFinding] {
        evaluate(snapshot, HostDirectory(snapshot.hosts), settings: settings, now: now)
    }

    /// The same, with the snapshot's machines already found by id.
    static func evaluate(_ snapshot: UnitSnapshot, _ hosts: HostDirectory, settings: UnitSettings, now: Date) -> [UnitFinding] {
        mediaCrossuse(snapshot, hosts) + internet(snapshot, hosts) + ledger(snapshot, hosts, settings) + silent(snapshot, hosts, settings, now: now)
    }

    private static func mediaCrossuse(_ snapshot: UnitSnapshot, _ hosts: HostDirectory) -> [UnitFinding] {
        let rule = UnitRules.mediaCrossuse
        var byMedium: [MediumIdentity: [MediumSighting]] = [:]
        for sighting in snapshot.media where hosts.position(sighting.hostID) != nil { byMedium[sighting.identity, default: []].append(sighting) }
        var out: [UnitFinding] = []
        for (identity, sightings) in byMedium.sorted(by: { $0.key < $1.key }) {
            let classified = sightings.filter { hosts.isClassified($0.hostID) ?? true }
            let unclassified = sightings.filter { !(hosts.isClassified($0.hostID) ?? true) }
            guard !classified.isEmpty, !unclassified.isEmpty else { continue }
            let cNames = classified.map { hosts.name($0.hostID) }.joined(separator: "、")
            let uNames = unclassified.map { hosts.name($0.hostID) }.joined(separator: "、")
            out.append(UnitFinding(
                rule: rule, subject: "medium \(identity.text)", status: .fail,
                detail: "移动存储介质 \(identity.text) 既接入涉密计算机（\(cNames)），又接入非涉密计算机（\(uNames)）",
                detailEN: "Removable medium \(identity.text) was attached to classified (\(classified.map { hosts.name($0.hostID) }.joined(separator: ", "))) and unclassified (\(unclassified.map { hosts.name($0.hostID) }.joined(separator: ", "))) machines",
                hostIDs: sightings.map(\.hostID),
                evidence: sightings.map {
                    EvidenceReference(hostID: $0.hostID, ruleID: $0.source, subject: identity.text, status: "seen", observedAt: $0.lastSeen, reportSHA256: $0.reportSHA256, detail: "")
                }))
        }
        if !out.isEmpty { return out }
        var classifiedWithUSB = 0
        var unclassified = 0
        snapshot.hosts.withUnsafeBufferPointer { machines in
            for index in machines.indices {
                if HostYear.isClassified(machines[index].classification) {
                    let rules = machines[index].rules
                    if ReportDigest.mediaRules.contains(where: { rule in (rules[rule].map { $0.pass + $0.fail + $0.other } ?? 0) > 0 }) { classifiedWithUSB += 1 }
                } else if machines[index].reports > 0 {
                    unclassified += 1
                }
            }
        }
        if unclassified == 0 || classifiedWithUSB == 0 {
            return [UnitFinding(
                rule: rule, subject: "unit", status: .notchecked,
                detail: "无法判定：\(unclassified == 0 ? "没有非涉密计算机向汇总端报告" : "没有涉密计算机报告USB存储检查结果")，交叉使用无从比对",
                detailEN: "Cannot be decided: \(unclassified == 0 ? "no unclassified computer reports to the collector" : "no classified computer reported USB storage checks"), so there is nothing to compare",
                hostIDs: [], evidence: [])]
        }
        return [UnitFinding(
            rule: rule, subject: "unit", status: .pass,
            detail: "比对 \(classifiedWithUSB) 台涉密计算机与 \(unclassified) 台非涉密计算机的USB存储记录（\(Set(snapshot.media.map(\.identity)).count) 个介质），未发现交叉使用",
            detailEN: "Compared the USB storage records of \(classifiedWithUSB) classified and \(unclassified) unclassified computers (\(Set(snapshot.media.map(\.identity)).count) media): no medium crossed",
            hostIDs: [], evidence: [])]
    }

    private static func internet(_ snapshot: UnitSnapshot, _ hosts: HostDirectory) -> [UnitFinding] {
        let rule = UnitRules.internet
        var byHost: [String: [FindingRecord]] = [:]
        for finding in snapshot.findings where finding.status == .fail && internetRules.contains(finding.ruleID) {
            guard hosts.isClassified(finding.hostID) == true else { continue }
            byHost[finding.hostID, default: []].append(finding)
        }
        var out: [UnitFinding] = []
        for (hostID, findings) in byHost.sorted(by: { (hosts.name($0.key), $0.key) < (hosts.name($1.key), $1.key) }) {
            let rules = Array(Set(findings.map(\.ruleID))).sorted().joined(separator: ", ")
            out.append(UnitFinding(
                rule: rule, subject: "host \(hosts.name(hostID))", status: .fail,
                detail: "涉密计算机 \(hosts.name(hostID))（设备编号 \(hosts.assetID(hostID) ?? "未登记")）存在接入互联网的证据（\(rules)）",
                detailEN: "Classified computer \(hosts.name(hostID)) (asset \(hosts.assetID(hostID) ?? "unregistered")) shows evidence of an internet connection (\(rules))",
                hostIDs: [hostID],
                evidence: findings.map {
                    EvidenceReference(hostID: hostID, ruleID: $0.ruleID, subject: $0.subject, status: $0.status.rawValue, observedAt: $0.lastObservedAt, reportSHA256: $0.lastReportSHA256, detail: $0.detail)
                }))
        }
        if !out.isEmpty { return out }
        let checked = snapshot.hosts.withUnsafeBufferPointer { machines in
            machines.indices.count(where: { HostYear.isClassified(machines[$0].classification) && (machines[$0].rules["net.internet-route"].map { $0.pass } ?? 0) > 0 })
        }
        if checked == 0 {
            return [UnitFinding(rule: rule, subject: "unit", status: .notchecked, detail: "无法判定：没有涉密计算机报告路由检查结果",
                detailEN: "Cannot be decided: no classified computer reported a route check", hostIDs: [], evidence: [])]
        }
        return [UnitFinding(rule: rule, subject: "unit", status: .pass,
            detail: "\(checked) 台涉密计算机的路由、网络接口和外联流量检查均未发现接入互联网",
            detailEN: "Route, interface and egress checks of \(checked) classified computers found no internet connection", hostIDs: [], evidence: [])]
    }

    private static func ledger(_ snapshot: UnitSnapshot, _ hosts: HostDirectory, _ settings: UnitSettings) -> [UnitFinding] {
        let rule = UnitRules.ledger
        var out: [UnitFinding] = []
        var byMedium: [MediumIdentity: [MediumSighting]] = [:]
        for sighting in snapshot.media where hosts.isClassified(sighting.hostID) ?? false {
            byMedium[sighting.identity, default: []].append(sighting)
        }
        for (identity, sightings) in byMedium.sorted(by: { $0.key < $1.key }) {
            guard !settings.ledger.contains(where: { $0.matches(vendor: identity.vendor, product: identity.product, serial: identity.serial) }) else { continue }
            let names = sightings.map { hosts.name($0.hostID) }
            out.append(UnitFinding(
                rule: rule, subject: "medium \(identity.text)", status: .fail,
                detail: "移动存储介质 \(identity.text) 接入涉密计算机（\(names.joined(separator: "、"))），但未在台账中登记",
                detailEN: "Removable medium \(identity.text) was attached to classified computers (\(names.joined(separator: ", "))) but is not in the ledger",
                hostIDs: sightings.map(\.hostID),
                evidence: sightings.map {
                    EvidenceReference(hostID: $0.hostID, ruleID: $0.source, subject: identity.text, status: "seen", observedAt: $0.lastSeen, reportSHA256: $0.reportSHA256, detail: "")
                }))
        }
        // Read in place: a copy of each machine would retain a dozen references.
        snapshot.hosts.withUnsafeBufferPointer { machines in
            for index in machines.indices {
                var missing: [(String, String)] = []
                if (machines[index].assetID ?? "").isEmpty { missing.append(("设备编号", "asset number")) }
                if machines[index].classification == nil { missing.append(("密级", "classification")) }
                if (machines[index].responsible ?? "").isEmpty { missing.append(("责任人", "responsible person")) }
                guard !missing.isEmpty else { continue }
                out.append(UnitFinding(
                    rule: rule, subject: "host \(machines[index].hostname)", status: .fail,
                    detail: "计算机 \(machines[index].hostname) 未登记\(missing.map(\.0).joined(separator: "、"))",
                    detailEN: "Computer \(machines[index].hostname) has no \(missing.map(\.1).joined(separator: ", ")) on record",
                    hostIDs: [machines[index].hostID],
                    evidence: [EvidenceReference(hostID: machines[index].hostID, ruleID: "host", subject: "host.yaml", status: "missing", observedAt: machines[index].lastIssuedAt, reportSHA256: machines[index].lastReportSHA256, detail: "")]))
            }
        }
        if !out.isEmpty { return out }
        if snapshot.hosts.isEmpty {
            return [UnitFinding(rule: rule, subject: "unit", status: .notchecked, detail: "无法判定：没有计算机报告", detailEN: "Cannot be decided: no computer reports", hostIDs: [], evidence: [])]
        }
        return [UnitFinding(rule: rule, subject: "unit", status: .pass,
            detail: "\(snapshot.hosts.count) 台计算机均登记设备编号、密级和责任人；涉密计算机上出现的 \(byMedium.count) 个介质均在台账中",
            detailEN: "All \(snapshot.hosts.count) computers have asset number, classification and responsible person; all \(byMedium.count) media seen on classified computers are in the ledger",
            hostIDs: [], evidence: [])]
    }

    private static func silent(_ snapshot: UnitSnapshot, _ hosts: HostDirectory, _ settings: UnitSettings, now: Date) -> [UnitFinding] {
        let rule = UnitRules.silent
        let periodEnd = min(now, CollectorCalendar.end(of: snapshot.year))
        var out: [UnitFinding] = []
        // Read in place: a copy of each machine would retain a dozen references.
        snapshot.hosts.withUnsafeBufferPointer { machines in
            for index in machines.indices {
                guard let last = machines[index].lastIssuedAt, machines[index].reports > 0 else {
                    out.append(UnitFinding(
                        rule: rule, subject: "host \(machines[index].hostname)", status: .fail,
                        detail: "计算机 \(machines[index].hostname) 已登记密钥，但 \(snapshot.year) 年内没有任何报告", detailEN: "Computer \(machines[index].hostname) is enrolled but sent no report in \(snapshot.year)",
                        hostIDs: [machines[index].hostID], evidence: []))
                    continue
                }
                let days = CollectorCalendar.days(from: last, to: periodEnd)
                if days > settings.silentAfterDays {
                    out.append(UnitFinding(
                        rule: rule, subject: "host \(machines[index].hostname)", status: .fail,
                        detail: "计算机 \(machines[index].hostname) 最后一次报告于 \(RFC3339.string(from: last))，已 \(days) 天无报告（允许 \(settings.silentAfterDays) 天）",
                        detailEN: "Computer \(machines[index].hostname) last reported at \(RFC3339.string(from: last)), silent for \(days) days (allowed \(settings.silentAfterDays))",
                        hostIDs: [machines[index].hostID],
                        evidence: [EvidenceReference(hostID: machines[index].hostID, ruleID: "report", subject: "last report", status: "silent", observedAt: last, reportSHA256: machines[index].lastReportSHA256, detail: "")]))
                }
                if let policy = machines[index].policySHA256, !settings.currentPolicyDigests.isEmpty, !settings.currentPolicyDigests.contains(policy) {
                    out.append(UnitFinding(
                        rule: rule, subject: "host \(machines[index].hostname) policy", status: .fail,
                        detail: "计算机 \(machines[index].hostname) 运行的策略 \(machines[index].policyID ?? "?")（摘要 \(policy.prefix(12))…）不是本单位现行策略",
                        detailEN: "Computer \(machines[index].hostname) runs policy \(machines[index].policyID ?? "?") (digest \(policy.prefix(12))…), not one the unit has in force",
                        hostIDs: [machines[index].hostID],
                        evidence: [EvidenceReference(hostID: machines[index].hostID, ruleID: "policy", subject: machines[index].policyID ?? "?", status: "outdated", observedAt: last, reportSHA256: machines[index].lastReportSHA256, detail: "")]))
                }
            }
        }
        var gapsByHost: [String: [GapRecord]] = [:]
        for gap in snapshot.gaps { gapsByHost[gap.hostID, default: []].append(gap) }
        for (hostID, gaps) in gapsByHost.sorted(by: { (hosts.name($0.key), $0.key) < (hosts.name($1.key), $1.key) }) {
            let ranges = gaps.map { "\($0.epoch):\($0.fromSeq)–\($0.toSeq)" }.joined(separator: ", ")
            let missing = GapRecord.missing(gaps)
            out.append(UnitFinding(
                rule: rule, subject: "host \(hosts.name(hostID)) chain", status: .fail,
                detail: "计算机 \(hosts.name(hostID)) 的报告链缺失 \(missing) 份报告（纪元:序号 \(ranges)）",
                detailEN: "The report chain of computer \(hosts.name(hostID)) is missing \(missing) reports (epoch:seq \(ranges))",
                hostIDs: [hostID],
                evidence: gaps.map { EvidenceReference(hostID: hostID, ruleID: "chain.gap", subject: "\($0.epoch):\($0.fromSeq)–\($0.toSeq)", status: "missing", observedAt: $0.detectedAt, reportSHA256: $0.reportSHA256, detail: "") }))
        }
        var forksByHost: [String: [ForkRecord]] = [:]
        for fork in snapshot.forks { forksByHost[fork.hostID, default: []].append(fork) }
        for (hostID, forks) in forksByHost.sorted(by: { (hosts.name($0.key), $0.key) < (hosts.name($1.key), $1.key) }) {
            out.append(UnitFinding(
                rule: rule, subject: "host \(hosts.name(hostID)) fork", status: .fail,
                detail: "计算机 \(hosts.name(hostID)) 的报告链出现 \(forks.count) 处分叉（同一序号不同内容），需核查密钥是否泄露",
                detailEN: "The report chain of computer \(hosts.name(hostID)) forked \(forks.count) times (same seq, other content): check whether the key leaked",
                hostIDs: [hostID],
                evidence: forks.map { EvidenceReference(hostID: hostID, ruleID: "chain.fork", subject: "\($0.epoch):\($0.seq)", status: "fork", observedAt: $0.receivedAt, reportSHA256: $0.reportSHA256, detail: "") }))
        }
        var skewsByHost: [String: [SkewRecord]] = [:]
        for skew in snapshot.skews { skewsByHost[skew.hostID, default: []].append(skew) }
        for (hostID, skews) in skewsByHost.sorted(by: { (hosts.name($0.key), $0.key) < (hosts.name($1.key), $1.key) }) {
            let worst = skews.map(\.seconds).max { $0.magnitude < $1.magnitude } ?? 0
            // The latest ten reports are cited; the count says how many there were.
            let cited = skews.suffix(10)
            // An epoch from the future (the clock was fast when the epoch began) is said apart: those reports' issue times may be right.
            let epochAhead = skews.count(where: { $0.kind == "epoch-ahead" })
            out.append(UnitFinding(
                rule: rule, subject: "host \(hosts.name(hostID)) clock", status: .fail,
                detail: "计算机 \(hosts.name(hostID)) 有 \(skews.count) 份报告的签发时间与收集器时钟不符（超过 \(ClockSkew.toleranceSeconds / 60) 分钟；最大偏差 \(ClockSkew.duration(worst))），报告时间不可信，需校准时钟\(epochAhead > 0 ? "（其中 \(epochAhead) 份的纪元起始时间晚于收到时间：该纪元开始时时钟超前）" : "")",
                detailEN: "\(skews.count) reports of computer \(hosts.name(hostID)) carry an issue time the collector's clock contradicts (more than \(ClockSkew.toleranceSeconds / 60) min; largest offset \(ClockSkew.duration(worst))): its report times cannot be trusted, set its clock\(epochAhead > 0 ? " (\(epochAhead) of them begin an epoch after they were received: the clock was ahead when the epoch began)" : "")",
                hostIDs: [hostID],
                evidence: cited.map {
                    EvidenceReference(
                        hostID: hostID, ruleID: "clock.skew", subject: "\($0.epoch):\($0.seq)", status: $0.kind, observedAt: $0.receivedAt, reportSHA256: $0.reportSHA256,
                        detail: $0.kind == "epoch-ahead"
                            ? "epoch \($0.epoch) begins \(ClockSkew.duration($0.seconds)) after receipt, issued_at \(RFC3339.string(from: $0.issuedAt)), received \(RFC3339.string(from: $0.receivedAt))"
                            : "issued_at \(RFC3339.string(from: $0.issuedAt)), received \(RFC3339.string(from: $0.receivedAt))")
                }))
        }
        if !out.isEmpty { return out }
        if snapshot.hosts.isEmpty {
            return [UnitFinding(rule: rule, subject: "unit", status: .notchecked, detail: "无法判定：没有计算机报告", detailEN: "Cannot be decided: no computer reports", hostIDs: [], evidence: [])]
        }
        return [UnitFinding(rule: rule, subject: "unit", status: .pass,
            detail: "\(snapshot.hosts.count) 台计算机均按时报告（不超过 \(settings.silentAfterDays) 天），报告链完整，运行现行策略",
            detailEN: "All \(snapshot.hosts.count) computers reported on time (within \(settings.silentAfterDays) days), with unbroken chains and current policies",
            hostIDs: [], evidence: [])]
    }
}
