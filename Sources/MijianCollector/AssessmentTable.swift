import Crypto
import Foundation
import MijianCore
import Yams

/// The self-assessment table (`Policies/self-assessment.zh.yaml`): areas, items, points, the
/// rules that decide each item, the per-case deductions and the verdict thresholds.
public struct AssessmentTable: Sendable, Equatable {
    /// Whose evidence decides an item.
    public enum Scope: String, Sendable, CaseIterable { case classified, unclassified, all }

    /// One item of an area.
    public struct Item: Sendable, Equatable {
        /// `七.7`.
        public var id: String
        /// The regulation's text.
        public var text: String
        /// English rendering.
        public var textEN: String
        /// Points.
        public var points: Int
        /// Deciding rules; empty means people answer.
        public var rules: [String]
        /// Whose evidence counts.
        public var scope: Scope
    }

    /// One of the fourteen areas.
    public struct Area: Sendable, Equatable {
        /// `七`.
        public var id: String
        /// Heading.
        public var title: String
        /// English heading.
        public var titleEN: String
        /// Its items.
        public var items: [Item]
    }

    /// A per-case deduction item of the score table (53, 54, 55).
    public struct Deduction: Sendable, Equatable {
        /// `53`.
        public var id: String
        /// What a case is.
        public var text: String
        /// English.
        public var textEN: String
        /// Points per case.
        public var perCase: Int
        /// The most the item deducts.
        public var points: Int
        /// The rules whose failures are the cases (machine rules and unit rules); empty means
        /// people count them in the answers.
        public var rules: [String]
        /// Whose failures count.
        public var scope: Scope
        /// What one case is.
        public var per: Counting

        /// What a deduction counts as one case.
        public enum Counting: String, Sendable, CaseIterable {
            /// Each machine in scope with at least one failing finding of the rules, once however
            /// many findings and rules fail on it (item 53: a computer connected to the internet).
            case machine
            /// Each failing finding of the unit rules (item 55: each medium that crossed).
            case finding
        }
    }

    /// The veto item (59).
    public struct Veto: Sendable, Equatable {
        /// `59`.
        public var id: String
        /// Its text.
        public var text: String
        /// English.
        public var textEN: String
    }

    /// The table's id.
    public var id: String
    /// Its version.
    public var version: String
    /// Title.
    public var title: String
    /// English title.
    public var titleEN: String
    /// Percent at or above which the unit 符合要求.
    public var meetsPercent: Int
    /// Percent at or above which the unit 基本符合.
    public var basicallyPercent: Int
    /// The areas, in order.
    public var areas: [Area]
    /// Deductions.
    public var deductions: [Deduction]
    /// The veto, if the table has one.
    public var veto: Veto?
    /// SHA-256 of the file's bytes.
    public var sha256: String

    /// Every item id, in order.
    public var itemIDs: [String] { areas.flatMap { $0.items.map(\.id) } }

    /// Parses the table; `file` names the source in errors.
    public static func parse(_ bytes: [UInt8], file: String) throws(MijianError) -> AssessmentTable {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw MijianError(.assessmentInvalid, "\(file): not UTF-8 text", path: file)
        }
        let reader = YAMLReader(file: file)
        let root = try reader.root(text)
        var table = AssessmentTable(
            id: "", version: "", title: "", titleEN: "", meetsPercent: 90, basicallyPercent: 80, areas: [], deductions: [], veto: nil,
            sha256: Hex.lower(SHA256.hash(data: bytes)))
        let knownRules = Set(RuleCatalogue.all.map(\.id)).union(UnitRules.all.map(\.id))
        var seenItems = Set<String>()
        for (key, _, value) in try reader.mapping(root, "", allowed: ["id", "version", "title", "title_en", "thresholds", "areas", "deductions", "veto"]) {
            switch key {
            case "id": table.id = try reader.string(value, key)
            case "version": table.version = try reader.string(value, key)
            case "title": table.title = try reader.string(value, key)
            case "title_en": table.titleEN = try reader.string(value, key)
            case "thresholds":
                for (sub, _, v) in try reader.mapping(value, key, allowed: ["meets", "basically"]) {
                    let percent = try reader.int(v, "thresholds.\(sub)", range: 1...100)
                    if sub == "meets" { table.meetsPercent = percent } else { table.basicallyPercent = percent }
                }
            case "areas":
                for (index, node) in try reader.sequence(value, "areas").enumerated() {
                    let path = "areas[\(index)]"
                    var area = Area(id: "", title: "", titleEN: "", items: [])
                    for (sub, _, v) in try reader.mapping(node, path, allowed: ["id", "title", "title_en", "items"]) {
                        switch sub {
                        case "id": area.id = try reader.string(v, "\(path).id")
                        case "title": area.title = try reader.string(v, "\(path).title")
                        case "title_en": area.titleEN = try reader.string(v, "\(path).title_en")
                        default:
                            for (itemIndex, itemNode) in try reader.sequence(v, "\(path).items").enumerated() {
                                let item = try parseItem(itemNode, "\(path).items[\(itemIndex)]", reader, knownRules)
                                guard seenItems.insert(item.id).inserted else {
                                    throw reader.error(itemNode, "\(path).items[\(itemIndex)].id", "item \(item.id) appears twice")
                                }
                                area.items.append(item)
                            }
                        }
                    }
                    guard !area.id.isEmpty, !area.title.isEmpty else { throw reader.error(node, path, "an area needs an id and a title") }
                    table.areas.append(area)
                }
            case "deductions":
                for (index, node) in try reader.sequence(value, "deductions").enumerated() {
                    let path = "deductions[\(index)]"
                    var deduction = Deduction(id: "", text: "", textEN: "", perCase: 0, points: 0, rules: [], scope: .classified, per: .machine)
                    var per: Deduction.Counting?
                    for (sub, _, v) in try reader.mapping(node, path, allowed: ["id", "text", "text_en", "per_case", "points", "rule", "rules", "hosts", "per"]) {
                        switch sub {
                        case "id": deduction.id = try reader.string(v, "\(path).id")
                        case "text": deduction.text = try reader.string(v, "\(path).text")
                        case "text_en": deduction.textEN = try reader.string(v, "\(path).text_en")
                        case "per_case": deduction.perCase = try reader.int(v, "\(path).per_case", range: 1...100)
                        case "points": deduction.points = try reader.int(v, "\(path).points", range: 1...100)
                        case "hosts": deduction.scope = try reader.choice(v, "\(path).hosts", as: Scope.self)
                        case "per": per = try reader.choice(v, "\(path).per", as: Deduction.Counting.self)
                        case "rule":
                            // One rule, as tables before per-machine counting wrote it.
                            deduction.rules.append(try knownRule(v, "\(path).rule", reader, knownRules))
                        default:
                            for (index, ruleNode) in try reader.sequence(v, "\(path).rules").enumerated() {
                                deduction.rules.append(try knownRule(ruleNode, "\(path).rules[\(index)]", reader, knownRules))
                            }
                        }
                    }
                    guard !deduction.id.isEmpty, deduction.perCase > 0, deduction.points > 0 else {
                        throw reader.error(node, path, "a deduction needs id, per_case and points")
                    }
                    let unitOnly = !deduction.rules.isEmpty && deduction.rules.allSatisfy { rule in UnitRules.all.contains { $0.id == rule } }
                    deduction.per = per ?? (unitOnly ? .finding : .machine)
                    if deduction.per == .finding, !unitOnly {
                        throw reader.error(node, "\(path).per", "per: finding counts the findings of unit rules; \(deduction.rules.joined(separator: ", ")) holds machine rules, whose cases are machines (per: machine)")
                    }
                    table.deductions.append(deduction)
                }
            default:
                var veto = Veto(id: "", text: "", textEN: "")
                for (sub, _, v) in try reader.mapping(value, "veto", allowed: ["id", "text", "text_en"]) {
                    switch sub {
                    case "id": veto.id = try reader.string(v, "veto.id")
                    case "text": veto.text = try reader.string(v, "veto.text")
                    default: veto.textEN = try reader.string(v, "veto.text_en")
                    }
                }
                table.veto = veto
            }
        }
        guard !table.id.isEmpty, !table.version.isEmpty else { throw reader.error(root, "id", "the table needs an id and a version") }
        guard !table.areas.isEmpty else { throw reader.error(root, "areas", "the table lists no areas") }
        guard table.basicallyPercent <= table.meetsPercent else {
            throw reader.error(root, "thresholds", "basically (\(table.basicallyPercent)) must not exceed meets (\(table.meetsPercent))")
        }
        return table
    }

    /// A rule id the catalogue or the unit rules know; anything else is an error naming the key.
    private static func knownRule(_ node: Node, _ path: String, _ reader: YAMLReader, _ knownRules: Set<String>) throws(MijianError) -> String {
        let rule = try reader.string(node, path)
        guard knownRules.contains(rule) else {
            throw reader.error(node, path, "no such rule \"\(rule)\" (known: \(knownRules.sorted().joined(separator: ", ")))", code: .assessmentInvalid)
        }
        return rule
    }

    private static func parseItem(_ node: Node, _ path: String, _ reader: YAMLReader, _ knownRules: Set<String>) throws(MijianError) -> Item {
        var item = Item(id: "", text: "", textEN: "", points: -1, rules: [], scope: .classified)
        for (key, _, value) in try reader.mapping(node, path, allowed: ["id", "text", "text_en", "points", "rules", "hosts"]) {
            switch key {
            case "id": item.id = try reader.string(value, "\(path).id")
            case "text": item.text = try reader.string(value, "\(path).text")
            case "text_en": item.textEN = try reader.string(value, "\(path).text_en")
            case "points": item.points = try reader.int(value, "\(path).points", range: 0...100)
            case "hosts": item.scope = try reader.choice(value, "\(path).hosts", as: Scope.self)
            default:
                for (index, ruleNode) in try reader.sequence(value, "\(path).rules").enumerated() {
                    let rule = try reader.string(ruleNode, "\(path).rules[\(index)]")
                    guard knownRules.contains(rule) else {
                        throw reader.error(ruleNode, "\(path).rules[\(index)]", "no such rule \"\(rule)\" (known: \(knownRules.sorted().joined(separator: ", ")))", code: .assessmentInvalid)
                    }
                    item.rules.append(rule)
                }
            }
        }
        guard !item.id.isEmpty, !item.text.isEmpty, item.points >= 0 else {
            throw reader.error(node, path, "an item needs id, text and points")
        }
        return item
    }
}

/// What people answered for the items machines cannot decide (`--answers answers.yaml`).
public struct AssessmentAnswers: Sendable, Equatable {
    /// 符合, 不符合 or 不适用.
    public enum Verdict: String, Sendable, CaseIterable {
        case meets = "符合"
        case fails = "不符合"
        case notApplicable = "不适用"

        /// Accepts the Chinese words and `meets`, `fails`, `na`.
        init?(parsing text: String) {
            switch text.trimmingCharacters(in: .whitespaces).lowercased() {
            case "符合", "meets", "yes", "是": self = .meets
            case "不符合", "fails", "no", "否": self = .fails
            case "不适用", "na", "n/a", "notapplicable": self = .notApplicable
            default: return nil
            }
        }
    }

    /// One answer.
    public struct Answer: Sendable, Equatable {
        /// The verdict.
        public var verdict: Verdict?
        /// The note people wrote.
        public var note: String?
        /// Cases counted by people, for a deduction item.
        public var cases: Int?
    }

    /// Answers per item id (and per deduction or veto id).
    public var answers: [String: Answer]
    /// Who answered, for the document.
    public var preparedBy: String?
    /// The unit's name, for the document.
    public var unit: String?

    /// No answers at all.
    public static let none = AssessmentAnswers(answers: [:], preparedBy: nil, unit: nil)

    /// Parses answers YAML: `unit`, `prepared_by`, and `answers: {ITEM: {verdict, note, cases}}`.
    public static func parse(_ bytes: [UInt8], file: String, table: AssessmentTable) throws(MijianError) -> AssessmentAnswers {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw MijianError(.assessmentInvalid, "\(file): not UTF-8 text", path: file)
        }
        let reader = YAMLReader(file: file)
        let root = try reader.root(text)
        var result = AssessmentAnswers(answers: [:], preparedBy: nil, unit: nil)
        let known = Set(table.itemIDs + table.deductions.map(\.id) + (table.veto.map { [$0.id] } ?? []))
        for (key, _, value) in try reader.mapping(root, "", allowed: ["unit", "prepared_by", "answers"]) {
            switch key {
            case "unit": result.unit = try reader.string(value, key)
            case "prepared_by": result.preparedBy = try reader.string(value, key)
            default:
                guard case .mapping(let mapping) = value else { throw reader.error(value, "answers", "expected a mapping of item ids") }
                for (itemNode, answerNode) in mapping {
                    let item = try reader.string(itemNode, "answers")
                    guard known.contains(item) else {
                        throw reader.error(itemNode, "answers.\(item)", "no such item in \(table.id) (items look like 七.7, 53, 59)", code: .assessmentInvalid)
                    }
                    guard result.answers[item] == nil else { throw reader.error(itemNode, "answers.\(item)", "answered twice") }
                    var answer = Answer(verdict: nil, note: nil, cases: nil)
                    for (sub, _, v) in try reader.mapping(answerNode, "answers.\(item)", allowed: ["verdict", "note", "cases"]) {
                        switch sub {
                        case "verdict":
                            let word = try reader.string(v, "answers.\(item).verdict")
                            guard let verdict = Verdict(parsing: word) else {
                                throw reader.error(v, "answers.\(item).verdict", "expected 符合, 不符合 or 不适用, got \"\(word)\"", code: .assessmentInvalid)
                            }
                            answer.verdict = verdict
                        case "note": answer.note = try reader.string(v, "answers.\(item).note")
                        default: answer.cases = try reader.int(v, "answers.\(item).cases", range: 0...10_000)
                        }
                    }
                    result.answers[item] = answer
                }
            }
        }
        return result
    }
}
