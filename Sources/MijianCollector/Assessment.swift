import Foundation
import MijianCore

/// The verdict of one item, or of the unit.
public enum ItemVerdict: String, Sendable, CaseIterable {
    case meets = "符合"
    case fails = "不符合"
    case notApplicable = "不适用"
    case pending = "待确认"

    /// English word.
    public var english: String {
        switch self {
        case .meets: return "meets"
        case .fails: return "does not meet"
        case .notApplicable: return "not applicable"
        case .pending: return "to be confirmed"
        }
    }

    /// The JSON word.
    public var key: String {
        switch self {
        case .meets: return "meets"
        case .fails: return "fails"
        case .notApplicable: return "not-applicable"
        case .pending: return "pending"
        }
    }
}

/// One evidence row of the document: host, asset number, rule, time, report digest.
public struct EvidenceRow: Sendable, Equatable {
    /// Host name.
    public var hostname: String
    /// 设备编号.
    public var assetID: String?
    /// Rule or event.
    public var ruleID: String
    /// Subject.
    public var subject: String
    /// Status word.
    public var status: String
    /// When.
    public var observedAt: Date?
    /// Payload digest of the signed report.
    public var reportSHA256: String?
    /// Sentence.
    public var detail: String
}

/// A problem found (存在问题), with its evidence.
public struct Problem: Sendable, Equatable {
    /// Chinese sentence.
    public var text: String
    /// English sentence.
    public var textEN: String
    /// The reports behind it.
    public var evidence: [EvidenceRow]
}

/// One item's outcome.
public struct ItemResult: Sendable, Equatable {
    /// The item.
    public var item: AssessmentTable.Item
    /// The verdict.
    public var verdict: ItemVerdict
    /// `machine`, `people` or `none`.
    public var decidedBy: String
    /// Points earned.
    public var earned: Int
    /// What the verdict rests on (Chinese).
    public var basis: String
    /// The same in English.
    public var basisEN: String
    /// Problems found.
    public var problems: [Problem]
    /// People's note.
    public var note: String?
}

/// One deduction item's outcome.
public struct DeductionResult: Sendable, Equatable {
    /// The item.
    public var deduction: AssessmentTable.Deduction
    /// Cases counted, nil when nobody counted.
    public var cases: Int?
    /// Points deducted (never more than the item's points).
    public var deducted: Int
    /// `machine`, `people` or `none`.
    public var decidedBy: String
    /// The cases.
    public var problems: [Problem]
}

/// The unit's self-assessment for one year.
public struct AssessmentResult: Sendable, Equatable {
    /// The year.
    public var year: Int
    /// The table used.
    public var table: AssessmentTable
    /// When the document was made.
    public var generatedAt: Date
    /// The unit, from the answers.
    public var unit: String?
    /// Who prepared it, from the answers.
    public var preparedBy: String?
    /// Machines in the year.
    public var hostCount: Int
    /// Classified machines.
    public var classifiedCount: Int
    /// Unclassified machines.
    public var unclassifiedCount: Int
    /// Reports accepted in the year.
    public var reportCount: Int
    /// Items, per area in table order.
    public var items: [ItemResult]
    /// Deductions.
    public var deductions: [DeductionResult]
    /// The veto answer.
    public var veto: ItemVerdict?
    /// The unit rules' findings.
    public var unitFindings: [UnitFinding]
    /// Sum of the applicable items' points.
    public var applicablePoints: Int
    /// Points earned before deductions.
    public var earnedPoints: Int
    /// Points deducted.
    public var deductedPoints: Int
    /// Score after deductions (never below zero).
    public var score: Int
    /// Score as a share of the applicable points, in per mille (so 905 is 90.5 %).
    public var permille: Int
    /// The verdict the score gives.
    public var scoreVerdict: String
    /// Items still 待确认.
    public var pendingCount: Int
    /// The overall verdict: 符合要求, 基本符合, 不符合, or 待确认 while items are pending.
    public var overall: String
}

/// Builds the self-assessment from a year's snapshot, the unit rules and people's answers.
public enum AssessmentBuilder {
    /// Builds the assessment. `now` is the document time and bounds the silence period.
    public static func build(
        snapshot: UnitSnapshot, table: AssessmentTable, answers: AssessmentAnswers, settings: UnitSettings, now: Date
    ) -> AssessmentResult {
        let hosts = HostDirectory(snapshot.hosts)
        let unitFindings = Correlation.evaluate(snapshot, hosts, settings: settings, now: now)
        var findingsByRule: [String: [FindingRecord]] = [:]
        for finding in snapshot.findings { findingsByRule[finding.ruleID, default: []].append(finding) }
        var unitByRule: [String: [UnitFinding]] = [:]
        for finding in unitFindings { unitByRule[finding.rule.id, default: []].append(finding) }
        let tallies = RuleTallies(snapshot.hosts)

        func row(_ reference: EvidenceReference) -> EvidenceRow {
            EvidenceRow(
                hostname: hosts.hostname(reference.hostID) ?? reference.hostID, assetID: hosts.assetID(reference.hostID), ruleID: reference.ruleID,
                subject: reference.subject, status: reference.status, observedAt: reference.observedAt, reportSHA256: reference.reportSHA256, detail: reference.detail)
        }
        func row(_ finding: FindingRecord) -> EvidenceRow {
            EvidenceRow(
                hostname: hosts.hostname(finding.hostID) ?? finding.hostID, assetID: hosts.assetID(finding.hostID), ruleID: finding.ruleID,
                subject: finding.subject, status: finding.status.rawValue, observedAt: finding.lastObservedAt, reportSHA256: finding.lastReportSHA256,
                detail: finding.count > 1 ? "\(finding.detail) (×\(finding.count), \(RFC3339.string(from: finding.firstObservedAt)) – \(RFC3339.string(from: finding.lastObservedAt)))" : finding.detail)
        }

        var items: [ItemResult] = []
        for area in table.areas {
            for item in area.items {
                let answer = answers.answers[item.id]
                guard !item.rules.isEmpty else {
                    items.append(peopleItem(item, answer))
                    continue
                }
                let inScope = item.scope.contains
                var problems: [Problem] = []
                var errors: [Problem] = []
                var evidenceCount = 0
                var machines = MachineSet(capacity: snapshot.hosts.count)
                for rule in item.rules {
                    if let unit = unitByRule[rule] {
                        for finding in unit {
                            switch finding.status {
                            case .fail:
                                evidenceCount += 1
                                problems.append(Problem(text: finding.detail, textEN: finding.detailEN, evidence: finding.evidence.map(row)))
                            case .pass:
                                evidenceCount += 1
                            default:
                                errors.append(Problem(text: finding.detail, textEN: finding.detailEN, evidence: []))
                            }
                        }
                        continue
                    }
                    for tally in tallies.scoped(rule, item.scope) {
                        evidenceCount += tally.results
                        machines.formUnion(tally.machines)
                    }
                    var byHost: [String: [FindingRecord]] = [:]
                    for finding in findingsByRule[rule] ?? [] {
                        guard let classified = hosts.isClassified(finding.hostID), inScope(classified) else { continue }
                        byHost[finding.hostID, default: []].append(finding)
                    }
                    for (hostID, findings) in byHost.sorted(by: { (hosts.hostname($0.key) ?? "", $0.key) < (hosts.hostname($1.key) ?? "", $1.key) }) {
                        let name = hosts.hostname(hostID) ?? hostID
                        let asset = hosts.assetID(hostID) ?? "未登记"
                        let title = UnitRules.rule(rule)
                        let fails = findings.filter { $0.status == .fail }
                        let errs = findings.filter { $0.status == .error }
                        if !fails.isEmpty {
                            problems.append(Problem(
                                text: "\(name)（设备编号 \(asset)）：\(title?.titleZH ?? rule)（\(rule)）不符合，\(fails.count) 项",
                                textEN: "\(name) (asset \(hosts.assetID(hostID) ?? "unregistered")): \(title?.title ?? rule) (\(rule)) failed, \(fails.count) finding(s)",
                                evidence: fails.map(row)))
                        }
                        if !errs.isEmpty {
                            errors.append(Problem(
                                text: "\(name)（设备编号 \(asset)）：\(rule) 无法检查，\(errs.count) 项",
                                textEN: "\(name) (asset \(hosts.assetID(hostID) ?? "unregistered")): \(rule) could not be checked, \(errs.count) finding(s)",
                                evidence: errs.map(row)))
                        }
                    }
                }
                let machineRules = item.rules.filter { unitByRule[$0] == nil }.joined(separator: ", ")
                let unitRules = item.rules.filter { unitByRule[$0] != nil }.joined(separator: ", ")
                var basis = machineRules.isEmpty ? "依据汇总端关联分析（\(unitRules)）" : "依据 \(machines.count) 台计算机的 \(evidenceCount) 条检查结果（规则 \(machineRules)）"
                var basisEN = machineRules.isEmpty ? "From the collector's correlation (\(unitRules))" : "From \(evidenceCount) check results of \(machines.count) computers (rules \(machineRules))"
                if !machineRules.isEmpty, !unitRules.isEmpty { basis += "及汇总端关联分析（\(unitRules)）"; basisEN += " and the collector's correlation (\(unitRules))" }
                var verdict: ItemVerdict
                var decidedBy = "machine"
                var note = answer?.note
                if !problems.isEmpty {
                    verdict = .fails
                } else if !errors.isEmpty || evidenceCount == 0 {
                    verdict = .pending
                    problems = errors
                    if evidenceCount == 0 && errors.isEmpty {
                        basis = "无机器证据（规则 \(item.rules.joined(separator: ", ")) 在本年度没有检查结果）"
                        basisEN = "No machine evidence (rules \(item.rules.joined(separator: ", ")) have no results this year)"
                    }
                    if let given = answer?.verdict {
                        verdict = ItemVerdict(answer: given)
                        decidedBy = "people"
                    }
                } else {
                    verdict = .meets
                    for rule in item.rules {
                        for finding in unitByRule[rule] ?? [] where finding.status == .pass {
                            basis += "；\(finding.detail)"
                            basisEN += "; \(finding.detailEN)"
                        }
                    }
                }
                if answer?.verdict != nil, decidedBy == "machine" {
                    note = [note, "人工答复未采用：机器证据已判定本项"].compactMap { $0 }.joined(separator: "；")
                }
                items.append(ItemResult(
                    item: item, verdict: verdict, decidedBy: verdict == .pending ? "none" : decidedBy, earned: verdict == .meets ? item.points : 0,
                    basis: basis, basisEN: basisEN, problems: problems, note: note))
            }
        }

        var deductions: [DeductionResult] = []
        for deduction in table.deductions {
            let answered = answers.answers[deduction.id]?.cases
            guard !deduction.rules.isEmpty else {
                deductions.append(DeductionResult(
                    deduction: deduction, cases: answered, deducted: min(deduction.points, deduction.perCase * (answered ?? 0)),
                    decidedBy: answered == nil ? "none" : "people", problems: []))
                continue
            }
            let counted = countCases(deduction, tallies: tallies, hosts: hosts, findingsByRule: findingsByRule, unitByRule: unitByRule, reference: row, finding: row)
            let cases = counted.decided ? counted.problems.count : answered
            deductions.append(DeductionResult(
                deduction: deduction, cases: cases, deducted: min(deduction.points, deduction.perCase * (cases ?? 0)),
                decidedBy: counted.decided ? "machine" : (answered != nil ? "people" : "none"), problems: counted.problems))
        }
        let veto: ItemVerdict? = table.veto.flatMap { answers.answers[$0.id]?.verdict }.map(ItemVerdict.init(answer:))

        let applicable = items.filter { $0.verdict != .notApplicable }.reduce(0) { $0 + $1.item.points }
        let earned = items.reduce(0) { $0 + $1.earned }
        let deducted = deductions.reduce(0) { $0 + $1.deducted }
        let score = max(0, earned - deducted)
        let permille = applicable > 0 ? score * 1000 / applicable : 0
        var scoreVerdict: String
        if permille >= table.meetsPercent * 10 { scoreVerdict = "符合要求" }
        else if permille >= table.basicallyPercent * 10 { scoreVerdict = "基本符合" }
        else { scoreVerdict = "不符合" }
        // A veto answered "不符合" (a serious leak occurred) decides the unit outright.
        if veto == .fails { scoreVerdict = "不符合" }
        let pending = items.count(where: { $0.verdict == .pending })
        let overall = veto == .fails ? "不符合" : (pending > 0 ? "待确认" : scoreVerdict)
        // Read in place: a copy of each machine would retain a dozen references.
        let (classifiedCount, reportCount) = snapshot.hosts.withUnsafeBufferPointer { machines in
            machines.indices.reduce((0, 0)) { sum, index in
                (sum.0 + (HostYear.isClassified(machines[index].classification) ? 1 : 0), sum.1 + machines[index].reports)
            }
        }
        return AssessmentResult(
            year: snapshot.year, table: table, generatedAt: now, unit: answers.unit, preparedBy: answers.preparedBy,
            hostCount: snapshot.hosts.count, classifiedCount: classifiedCount,
            unclassifiedCount: snapshot.hosts.count - classifiedCount, reportCount: reportCount,
            items: items, deductions: deductions, veto: veto, unitFindings: unitFindings, applicablePoints: applicable, earnedPoints: earned,
            deductedPoints: deducted, score: score, permille: permille, scoreVerdict: scoreVerdict, pendingCount: pending, overall: overall)
    }

    /// The cases of a deduction: one per machine in scope with a failing finding of its rules
    /// (machine rules, or unit rules through the machines they name), or one per failing unit
    /// finding; `decided` when any machine in scope reported the rules or a unit rule could judge.
    private static func countCases(
        _ deduction: AssessmentTable.Deduction, tallies: RuleTallies, hosts: HostDirectory, findingsByRule: [String: [FindingRecord]],
        unitByRule: [String: [UnitFinding]], reference row: (EvidenceReference) -> EvidenceRow, finding findingRow: (FindingRecord) -> EvidenceRow
    ) -> (decided: Bool, problems: [Problem]) {
        let inScope = deduction.scope.contains
        var decided = false
        if deduction.per == .finding {
            var problems: [Problem] = []
            for rule in deduction.rules {
                let findings = unitByRule[rule] ?? []
                if findings.contains(where: { $0.status == .pass || $0.status == .fail }) { decided = true }
                problems += findings.filter { $0.status == .fail }.map { Problem(text: $0.detail, textEN: $0.detailEN, evidence: $0.evidence.map(row)) }
            }
            return (decided, problems)
        }
        var rows: [String: [EvidenceRow]] = [:]
        var rules: [String: [String]] = [:]
        func note(_ hostID: String, _ rule: String, _ evidence: [EvidenceRow]) {
            // A unit rule's evidence repeats the machine findings it rests on (unit.internet names
            // the route finding already counted): each finding is listed once.
            for row in evidence where !(rows[hostID] ?? []).contains(where: { $0.ruleID == row.ruleID && $0.subject == row.subject }) {
                rows[hostID, default: []].append(row)
            }
            if !(rules[hostID] ?? []).contains(rule) { rules[hostID, default: []].append(rule) }
        }
        for rule in deduction.rules {
            if let findings = unitByRule[rule] {
                if findings.contains(where: { $0.status == .pass || $0.status == .fail }) { decided = true }
                for finding in findings where finding.status == .fail {
                    for hostID in finding.hostIDs {
                        guard let classified = hosts.isClassified(hostID), inScope(classified) else { continue }
                        note(hostID, rule, finding.evidence.filter { $0.hostID == hostID }.map(row))
                    }
                }
                continue
            }
            // A tally holds only machines whose results (pass and fail) of the rule are more than none.
            if tallies.scoped(rule, deduction.scope).contains(where: { !$0.machines.isEmpty }) { decided = true }
            for finding in findingsByRule[rule] ?? [] where finding.status == .fail {
                guard let classified = hosts.isClassified(finding.hostID), inScope(classified) else { continue }
                note(finding.hostID, rule, [findingRow(finding)])
            }
        }
        let kindZH: String
        let kindEN: String
        switch deduction.scope {
        case .classified: (kindZH, kindEN) = ("涉密计算机", "Classified computer")
        case .unclassified: (kindZH, kindEN) = ("非涉密计算机", "Unclassified computer")
        case .all: (kindZH, kindEN) = ("计算机", "Computer")
        }
        let ordered = rows.keys.sorted { (hosts.hostname($0) ?? "", $0) < (hosts.hostname($1) ?? "", $1) }
        let problems = ordered.map { hostID -> Problem in
            let name = hosts.hostname(hostID) ?? hostID
            let evidence = rows[hostID] ?? []
            let failed = (rules[hostID] ?? []).joined(separator: ", ")
            return Problem(
                text: "\(kindZH) \(name)（设备编号 \(hosts.assetID(hostID) ?? "未登记")）：\(failed) 不符合，计 1 例（\(evidence.count) 条证据）",
                textEN: "\(kindEN) \(name) (asset \(hosts.assetID(hostID) ?? "unregistered")): \(failed) failed; one case (\(evidence.count) evidence row(s))",
                evidence: evidence)
        }
        return (decided, problems)
    }

    private static func peopleItem(_ item: AssessmentTable.Item, _ answer: AssessmentAnswers.Answer?) -> ItemResult {
        guard let given = answer?.verdict else {
            return ItemResult(
                item: item, verdict: .pending, decidedBy: "none", earned: 0, basis: "本项由人工判定，尚无答复（answers.yaml）",
                basisEN: "Decided by people; no answer yet (answers.yaml)", problems: [], note: answer?.note)
        }
        let verdict = ItemVerdict(answer: given)
        return ItemResult(
            item: item, verdict: verdict, decidedBy: "people", earned: verdict == .meets ? item.points : 0, basis: "人工判定",
            basisEN: "Decided by people", problems: verdict == .fails ? [Problem(text: answer?.note ?? "人工判定不符合", textEN: answer?.note ?? "Judged as not met by people", evidence: [])] : [],
            note: answer?.note)
    }
}

/// Per machine rule, the check results (pass and fail) and the machines that gave them, for
/// classified and unclassified machines apart: one pass over the year's machines, however many
/// items read the same rule.
struct RuleTallies {
    /// Results of one rule among machines of one kind.
    struct Tally {
        var results = 0
        /// The machines, by their position in the snapshot.
        var machines: MachineSet
    }

    private let classified: [String: Tally]
    private let unclassified: [String: Tally]

    init(_ hosts: [HostYear]) {
        // Read in place: a copy of each machine would retain a dozen references.
        (classified, unclassified) = hosts.withUnsafeBufferPointer { Self.tally($0) }
    }

    private static func tally(_ hosts: UnsafeBufferPointer<HostYear>) -> (classified: [String: Tally], unclassified: [String: Tally]) {
        // A rule's place by its position in a machine's counts: machines that count the same rules
        // (most of them, sharing one array of ids) find every place again without hashing an id.
        // Each place has two slots, classified and unclassified machines, in flat arrays.
        var places: [String: Int] = [:]
        var results: [Int] = []
        var words: [UInt64] = []
        let wordCount = (hosts.count + 63) / 64
        var lastIDs: [String] = []
        var lastPlaces: [Int] = []
        for index in hosts.indices {
            let rules = hosts[index].rules
            if rules.ruleIDs != lastIDs {
                lastIDs = rules.ruleIDs
                lastPlaces = lastIDs.map { rule in
                    if let place = places[rule] { return place }
                    places[rule] = places.count
                    results += [0, 0]
                    words += Array(repeating: 0, count: 2 * wordCount)
                    return places.count - 1
                }
            }
            let kind = HostYear.isClassified(hosts[index].classification) ? 0 : 1
            let word = index / 64
            let bit: UInt64 = 1 << UInt64(index % 64)
            for (position, count) in rules.counts.enumerated() where count.pass + count.fail > 0 {
                let slot = lastPlaces[position] * 2 + kind
                results[slot] += count.pass + count.fail
                words[slot * wordCount + word] |= bit
            }
        }
        var classified: [String: Tally] = [:]
        var unclassified: [String: Tally] = [:]
        for (rule, place) in places {
            // A slot holds only positive sums: more than none when a machine counted the rule.
            for kind in 0...1 where results[place * 2 + kind] > 0 {
                let slot = place * 2 + kind
                let tally = Tally(results: results[slot], machines: MachineSet(words: Array(words[slot * wordCount..<(slot + 1) * wordCount])))
                if kind == 0 { classified[rule] = tally } else { unclassified[rule] = tally }
            }
        }
        return (classified, unclassified)
    }

    /// The tallies of `rule` among the machines `scope` names.
    func scoped(_ rule: String, _ scope: AssessmentTable.Scope) -> [Tally] {
        switch scope {
        case .classified: return classified[rule].map { [$0] } ?? []
        case .unclassified: return unclassified[rule].map { [$0] } ?? []
        case .all: return [classified[rule], unclassified[rule]].compactMap { $0 }
        }
    }
}

/// Machines by their position in a snapshot, a bit each.
struct MachineSet: Equatable {
    private var words: [UInt64]

    /// No machine, room for positions below `capacity`.
    init(capacity: Int) { words = Array(repeating: 0, count: (max(capacity, 0) + 63) / 64) }

    /// The machines whose bits are set, position `p` at bit `p % 64` of word `p / 64`.
    init(words: [UInt64]) { self.words = words }

    /// Adds every machine of `other`.
    mutating func formUnion(_ other: MachineSet) {
        if other.words.count > words.count { words += Array(repeating: 0, count: other.words.count - words.count) }
        for index in other.words.indices { words[index] |= other.words[index] }
    }

    /// How many machines.
    var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// Whether there is none.
    var isEmpty: Bool { words.allSatisfy { $0 == 0 } }
}

extension AssessmentTable.Scope {
    /// Whether a machine, classified or not, is among those the scope names.
    func contains(_ isClassified: Bool) -> Bool {
        switch self {
        case .classified: return isClassified
        case .unclassified: return !isClassified
        case .all: return true
        }
    }
}

extension ItemVerdict {
    init(answer: AssessmentAnswers.Verdict) {
        switch answer {
        case .meets: self = .meets
        case .fails: self = .fails
        case .notApplicable: self = .notApplicable
        }
    }
}
