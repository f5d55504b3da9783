import Foundation
import MijianCore

/// Output formats of the assessment.
public enum AssessmentFormat: String, Sendable, CaseIterable { case md, html, json }

/// Languages of the document.
public enum AssessmentLanguage: String, Sendable, CaseIterable { case zh, en }

/// Renders the self-assessment as the document an office files: per area, per item, the
/// verdict and the evidence behind it, problems with a corrective-measure line each, then the
/// score table and the overall verdict.
public struct AssessmentRenderer: Sendable {
    /// The language.
    public var language: AssessmentLanguage

    /// Makes a renderer.
    public init(language: AssessmentLanguage) { self.language = language }

    private var zh: Bool { language == .zh }
    private var colon: String { zh ? "：" : ": " }
    private var comma: String { zh ? "，" : ", " }
    private var lp: String { zh ? "（" : " (" }
    private var rp: String { zh ? "）" : ")" }
    private func t(_ chinese: String, _ english: String) -> String { zh ? chinese : english }

    /// The document in a format, as bytes.
    public func render(_ result: AssessmentResult, format: AssessmentFormat) -> [UInt8] {
        switch format {
        case .md: return Array(markdown(result).utf8)
        case .html: return Array(html(result).utf8)
        case .json: return json(result).prettySerialized()
        }
    }

    private func verdictText(_ verdict: ItemVerdict) -> String { zh ? verdict.rawValue : verdict.english }

    private func overallText(_ word: String) -> String {
        if zh { return word }
        switch word {
        case "符合要求": return "meets the requirements"
        case "基本符合": return "basically meets"
        case "不符合": return "does not meet"
        case "待确认": return "to be confirmed"
        default: return word
        }
    }

    private func decidedText(_ by: String) -> String {
        switch by {
        case "machine": return t("机器证据", "machine evidence")
        case "people": return t("人工答复", "people's answer")
        default: return t("无", "none")
        }
    }

    private func percent(_ permille: Int) -> String { "\(permille / 10).\(permille % 10) %" }

    private func title(_ result: AssessmentResult) -> String {
        zh ? "\(result.year) 年度\(result.table.title)报告" : "\(result.table.titleEN.isEmpty ? result.table.title : result.table.titleEN): \(result.year)"
    }

    private func itemText(_ item: AssessmentTable.Item) -> String { zh || item.textEN.isEmpty ? item.text : item.textEN }
    private func areaTitle(_ area: AssessmentTable.Area) -> String { zh || area.titleEN.isEmpty ? area.title : area.titleEN }
    private func time(_ date: Date?) -> String { date.map { RFC3339.string(from: $0) } ?? "—" }
    private func digest(_ sha: String?) -> String { sha.map { "sha256:\($0)" } ?? "—" }

    private var evidenceHeader: [String] {
        [t("主机", "Host"), t("设备编号", "Asset"), t("规则", "Rule"), t("对象", "Subject"), t("状态", "Status"), t("时间", "Time"), t("报告摘要", "Report digest"), t("说明", "Detail")]
    }

    /// The heading of the aggravating-deductions table (Markdown and HTML).
    private var deductionHeader: [String] {
        [t("条目", "Item"), t("内容", "Case"), t("每例扣分", "Per case"), t("例数", "Cases"), t("扣分", "Deducted"), t("判定依据", "Decided by")]
    }

    /// One row of the aggravating-deductions table.
    private func deductionCells(_ row: DeductionResult) -> [String] {
        [
            row.deduction.id, zh ? row.deduction.text : row.deduction.textEN, "\(row.deduction.perCase)",
            row.cases.map(String.init) ?? t("待确认", "to be confirmed"), "\(row.deducted)", decidedText(row.decidedBy),
        ]
    }

    private func evidenceCells(_ row: EvidenceRow) -> [String] {
        [row.hostname, row.assetID ?? t("未登记", "unregistered"), row.ruleID, row.subject, row.status, time(row.observedAt), digest(row.reportSHA256), row.detail]
    }

    private var remedy: String { t("整改措施：＿＿＿＿＿＿＿＿（责任人：＿＿＿＿，完成时限：＿＿＿＿）", "Corrective measure: ________ (responsible: ____, due: ____)") }

    private func summaryRows(_ result: AssessmentResult) -> [(String, String)] {
        var rows: [(String, String)] = [
            (t("适用项目分值", "Points of applicable items"), "\(result.applicablePoints)"),
            (t("得分（扣分前）", "Points earned (before deductions)"), "\(result.earnedPoints)"),
            (t("加重扣分", "Deductions"), "\(result.deductedPoints)"),
            (t("得分", "Score"), "\(result.score)"),
            (t("得分率", "Share of applicable points"), percent(result.permille)),
            (t("按得分评定", "Verdict by score"), overallText(result.scoreVerdict)),
            (t("待确认项目", "Items to be confirmed"), "\(result.pendingCount)"),
            (t("总体结论", "Overall verdict"), overallText(result.overall)),
        ]
        if result.pendingCount > 0 {
            rows.append((t("说明", "Note"), t("尚有 \(result.pendingCount) 项待确认，待确认项目按 0 分计入；补充答复（--answers）后重新生成", "\(result.pendingCount) items are still to be confirmed and count as 0 points; add answers (--answers) and regenerate")))
        }
        let thresholds = t(
            "≥ \(result.table.meetsPercent) % 符合要求，\(result.table.basicallyPercent)–\(result.table.meetsPercent - 1) % 基本符合，< \(result.table.basicallyPercent) % 不符合",
            "≥ \(result.table.meetsPercent) % meets, \(result.table.basicallyPercent)–\(result.table.meetsPercent - 1) % basically meets, < \(result.table.basicallyPercent) % does not meet")
        rows.append((t("评定标准", "Thresholds"), thresholds))
        return rows
    }

    private func scopeLines(_ result: AssessmentResult) -> [(String, String)] {
        [
            (t("单位", "Unit"), result.unit ?? t("（未填写）", "(not given)")),
            (t("编制", "Prepared by"), result.preparedBy ?? t("（未填写）", "(not given)")),
            (t("生成时间", "Generated"), RFC3339.string(from: result.generatedAt)),
            (t("自评表", "Table"), "\(result.table.id) \(result.table.version) (sha256:\(result.table.sha256))"),
            (t("范围", "Scope"), t(
                "\(result.hostCount) 台计算机（涉密 \(result.classifiedCount) 台，非涉密 \(result.unclassifiedCount) 台），\(result.reportCount) 份经签名验证的报告",
                "\(result.hostCount) computers (\(result.classifiedCount) classified, \(result.unclassifiedCount) unclassified), \(result.reportCount) signature-verified reports")),
        ]
    }

    // MARK: Markdown

    /// A table cell or line of Markdown: a workstation chose some of this text (host names,
    /// asset numbers, people), and a Markdown viewer renders raw HTML, so `<` is written as an
    /// entity (it still reads as `<`).
    private func cell(_ text: String) -> String { Self.markdownCell(text) }

    /// `text` made safe for one Markdown table cell or line (see `cell`).
    /// One pass over the scalars (most cells need nothing and are returned as they are).
    public static func markdownCell(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 0x5C || $0 == 0x7C || $0 == 0x3C || $0 == 0x0D || $0 == 0x0A }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "|": out += "\\|"
            case "<": out += "&lt;"
            case "\r", "\n": out += " "
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private func mdTable(_ header: [String], _ rows: [[String]], indent: String = "") -> String {
        var out = indent + "| " + header.map(cell).joined(separator: " | ") + " |\n"
        out += indent + "|" + String(repeating: " --- |", count: header.count) + "\n"
        for row in rows { out += indent + "| " + row.map(cell).joined(separator: " | ") + " |\n" }
        return out
    }

    private func line(_ text: String) -> String { cell(text) }

    /// The Markdown document.
    public func markdown(_ result: AssessmentResult) -> String {
        var out = "# \(line(title(result)))\n\n"
        for (key, value) in scopeLines(result) { out += "- \(key)\(colon)\(line(value))\n" }
        out += "\n## \(t("总体结论", "Overall result"))\n\n"
        out += mdTable([t("项目", "Item"), t("结果", "Value")], summaryRows(result).map { [$0.0, $0.1] }) + "\n"
        var index = 0
        for area in result.table.areas {
            out += "## \(area.id)、\(line(areaTitle(area)))\n\n"
            for _ in area.items {
                let item = result.items[index]
                index += 1
                out += "### \(item.item.id) \(line(itemText(item.item)))\(lp)\(item.item.points) \(t("分", "points"))\(rp)\n\n"
                out += "- \(t("结论", "Verdict"))\(colon)**\(verdictText(item.verdict))**\(lp)\(t("判定依据", "decided by"))\(colon)\(decidedText(item.decidedBy))\(comma)\(t("得分", "points")) \(item.earned)/\(item.item.points)\(rp)\n"
                out += "- \(t("依据", "Basis"))\(colon)\(line(zh ? item.basis : item.basisEN))\n"
                if let note = item.note { out += "- \(t("备注", "Note"))\(colon)\(line(note))\n" }
                if !item.problems.isEmpty {
                    out += "- \(t("存在问题", "Problems found"))\(colon)\n"
                    for (number, problem) in item.problems.enumerated() {
                        out += "  \(number + 1). \(line(zh ? problem.text : problem.textEN))\n"
                        if !problem.evidence.isEmpty {
                            out += "\n" + mdTable(evidenceHeader, problem.evidence.map(evidenceCells), indent: "     ") + "\n"
                        }
                        out += "     - \(remedy)\n"
                    }
                }
                out += "\n"
            }
        }
        out += "## \(t("加重扣分项", "Aggravating deductions"))\n\n"
        out += mdTable(deductionHeader, result.deductions.map(deductionCells)) + "\n"
        for deduction in result.deductions where !deduction.problems.isEmpty {
            out += "### \(deduction.deduction.id) \(line(zh ? deduction.deduction.text : deduction.deduction.textEN))\n\n"
            for (number, problem) in deduction.problems.enumerated() {
                out += "\(number + 1). \(line(zh ? problem.text : problem.textEN))\n\n"
                if !problem.evidence.isEmpty { out += mdTable(evidenceHeader, problem.evidence.map(evidenceCells), indent: "   ") + "\n" }
                out += "   - \(remedy)\n\n"
            }
        }
        if let veto = result.table.veto {
            out += "## \(t("否决项", "Veto item"))\n\n"
            out += "- \(veto.id) \(line(zh ? veto.text : veto.textEN))\(colon)\(result.veto.map(verdictText) ?? t("待确认", "to be confirmed"))\n\n"
        }
        out += "## \(t("评分表", "Score table"))\n\n"
        out += mdTable(
            [t("条目", "Item"), t("分值", "Points"), t("结论", "Verdict"), t("得分", "Earned"), t("判定依据", "Decided by")],
            result.items.map { [$0.item.id, "\($0.item.points)", verdictText($0.verdict), "\($0.earned)", decidedText($0.decidedBy)] }
                + [[t("合计", "Total"), "\(result.applicablePoints)", overallText(result.overall), "\(result.score)", ""]]) + "\n"
        out += "## \(t("存在问题汇总", "All problems"))\n\n"
        let all = result.items.flatMap { item in item.problems.map { (item.item.id, $0) } }
        if all.isEmpty { out += t("未发现问题。\n\n", "No problems found.\n\n") }
        for (number, entry) in all.enumerated() {
            out += "\(number + 1). [\(entry.0)] \(line(zh ? entry.1.text : entry.1.textEN))\n   - \(remedy)\n"
        }
        out += "\n"
        return out
    }

    // MARK: HTML

    /// Escapes text for HTML element content and attribute values.
    public static func escape(_ text: String) -> String {
        // Most text has nothing to escape: its bytes are looked at in place.
        let special: (UInt8) -> Bool = { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }
        guard text.utf8.withContiguousStorageIfAvailable({ $0.contains(where: special) }) ?? text.utf8.contains(where: special) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    private func e(_ text: String) -> String { Self.escape(text) }

    private func htmlTable(_ header: [String], _ rows: [[String]], cls: String = "") -> String {
        var out = ""
        appendTable(to: &out, head: tableHead(header, cls: cls), rows)
        return out
    }

    /// A table's opening up to its first row.
    private func tableHead(_ header: [String], cls: String = "") -> String {
        var out = "<table\(cls.isEmpty ? "" : " class=\"\(cls)\"")><thead><tr>"
        for cell in header { out += "<th>\(e(cell))</th>" }
        return out + "</tr></thead><tbody>\n"
    }

    /// A table written straight into `out` (a problem's evidence is a table: a year of a large
    /// unit writes a hundred thousand).
    private func appendTable(to out: inout String, head: String, _ rows: [[String]]) {
        out += head
        for row in rows {
            out += "<tr>"
            for cell in row {
                out += "<td>"
                out += e(cell)
                out += "</td>"
            }
            out += "</tr>\n"
        }
        out += "</tbody></table>\n"
    }

    private func verdictClass(_ verdict: ItemVerdict) -> String { verdict.key }

    /// The self-contained, printable HTML page: no scripts, no external assets.
    public func html(_ result: AssessmentResult) -> String {
        var out = """
            <!DOCTYPE html>
            <html lang="\(zh ? "zh-CN" : "en")"><head><meta charset="utf-8">
            <title>\(e(title(result)))</title>
            <style>
            body{font-family:"Noto Serif CJK SC","Source Han Serif SC",SimSun,serif;max-width:60em;margin:2em auto;line-height:1.5;color:#000}
            h1{text-align:center;font-size:1.6em}h2{border-bottom:1px solid #000;margin-top:1.6em}h3{font-size:1.05em}
            table{border-collapse:collapse;width:100%;margin:.5em 0;font-size:.85em}th,td{border:1px solid #444;padding:.2em .4em;text-align:left;vertical-align:top;word-break:break-all}
            th{background:#eee}.verdict{font-weight:bold}.fails{color:#a00}.pending{color:#a60}.meets{color:#060}.remedy{color:#333}
            @media print{body{margin:0;max-width:none}h2{page-break-after:avoid}table{page-break-inside:auto}tr{page-break-inside:avoid}}
            </style></head><body>

            """
        let evidenceHead = tableHead(evidenceHeader, cls: "evidence")
        let remedyLine = "<p class=\"remedy\">\(e(remedy))</p></li>\n"
        out += "<h1>\(e(title(result)))</h1>\n<ul>\n"
        for (key, value) in scopeLines(result) { out += "<li>\(e(key))\(zh ? "\(colon)" : ": ")\(e(value))</li>\n" }
        out += "</ul>\n<h2>\(e(t("总体结论", "Overall result")))</h2>\n"
        out += htmlTable([t("项目", "Item"), t("结果", "Value")], summaryRows(result).map { [$0.0, $0.1] })
        var index = 0
        for area in result.table.areas {
            out += "<h2>\(e(area.id))、\(e(areaTitle(area)))</h2>\n"
            for _ in area.items {
                let item = result.items[index]
                index += 1
                out += "<section><h3>\(e(item.item.id)) \(e(itemText(item.item)))\(lp)\(item.item.points) \(e(t("分", "points")))\(rp)</h3>\n<ul>\n"
                out += "<li>\(e(t("结论", "Verdict")))\(colon)<span class=\"verdict \(verdictClass(item.verdict))\">\(e(verdictText(item.verdict)))</span>\(lp)\(e(t("判定依据", "decided by")))\(colon)\(e(decidedText(item.decidedBy)))\(comma)\(e(t("得分", "points"))) \(item.earned)/\(item.item.points)\(rp)</li>\n"
                out += "<li>\(e(t("依据", "Basis")))\(colon)\(e(zh ? item.basis : item.basisEN))</li>\n"
                if let note = item.note { out += "<li>\(e(t("备注", "Note")))\(colon)\(e(note))</li>\n" }
                out += "</ul>\n"
                if !item.problems.isEmpty {
                    out += "<p>\(e(t("存在问题", "Problems found")))\(colon)</p>\n<ol>\n"
                    for problem in item.problems {
                        out += "<li>"
                        out += e(zh ? problem.text : problem.textEN)
                        out += "\n"
                        if !problem.evidence.isEmpty { appendTable(to: &out, head: evidenceHead, problem.evidence.map(evidenceCells)) }
                        out += remedyLine
                    }
                    out += "</ol>\n"
                }
                out += "</section>\n"
            }
        }
        out += "<h2>\(e(t("加重扣分项", "Aggravating deductions")))</h2>\n"
        out += htmlTable(deductionHeader, result.deductions.map(deductionCells))
        for deduction in result.deductions where !deduction.problems.isEmpty {
            out += "<h3>\(e(deduction.deduction.id)) \(e(zh ? deduction.deduction.text : deduction.deduction.textEN))</h3>\n<ol>\n"
            for problem in deduction.problems {
                out += "<li>\(e(zh ? problem.text : problem.textEN))\n"
                if !problem.evidence.isEmpty { appendTable(to: &out, head: evidenceHead, problem.evidence.map(evidenceCells)) }
                out += remedyLine
            }
            out += "</ol>\n"
        }
        if let veto = result.table.veto {
            out += "<h2>\(e(t("否决项", "Veto item")))</h2>\n<p>\(e(veto.id)) \(e(zh ? veto.text : veto.textEN))\(colon)\(e(result.veto.map(verdictText) ?? t("待确认", "to be confirmed")))</p>\n"
        }
        out += "<h2>\(e(t("评分表", "Score table")))</h2>\n"
        out += htmlTable(
            [t("条目", "Item"), t("分值", "Points"), t("结论", "Verdict"), t("得分", "Earned"), t("判定依据", "Decided by")],
            result.items.map { [$0.item.id, "\($0.item.points)", verdictText($0.verdict), "\($0.earned)", decidedText($0.decidedBy)] }
                + [[t("合计", "Total"), "\(result.applicablePoints)", overallText(result.overall), "\(result.score)", ""]])
        out += "<h2>\(e(t("存在问题汇总", "All problems")))</h2>\n"
        let all = result.items.flatMap { item in item.problems.map { (item.item.id, $0) } }
        if all.isEmpty { out += "<p>\(e(t("未发现问题。", "No problems found.")))</p>\n" }
        else {
            out += "<ol>\n"
            for entry in all {
                out += "<li>[\(e(entry.0))] "
                out += e(zh ? entry.1.text : entry.1.textEN)
                out += remedyLine
            }
            out += "</ol>\n"
        }
        out += "</body></html>\n"
        return out
    }

    // MARK: JSON

    private func json(_ row: EvidenceRow) -> JSONValue {
        [
            "host": .string(row.hostname), "asset_id": .optional(row.assetID), "rule": .string(row.ruleID), "subject": .string(row.subject),
            "status": .string(row.status), "observed_at": .optional(row.observedAt.map { RFC3339.string(from: $0) }),
            "report_sha256": .optional(row.reportSHA256), "detail": .string(row.detail),
        ]
    }

    private func json(_ problem: Problem) -> JSONValue {
        ["text": .string(zh ? problem.text : problem.textEN), "evidence": .array(problem.evidence.map(json))]
    }

    /// The JSON document for other tools (keys in a fixed order).
    public func json(_ result: AssessmentResult) -> JSONValue {
        [
            "schema": "mijian.assessment/v1",
            "year": .integer(result.year),
            "language": .string(language.rawValue),
            "generated_at": .string(RFC3339.string(from: result.generatedAt)),
            "unit": .optional(result.unit),
            "prepared_by": .optional(result.preparedBy),
            "table": ["id": .string(result.table.id), "version": .string(result.table.version), "sha256": .string(result.table.sha256)],
            "scope": [
                "hosts": .integer(result.hostCount), "classified": .integer(result.classifiedCount), "unclassified": .integer(result.unclassifiedCount),
                "reports": .integer(result.reportCount),
            ],
            "items": .array(result.items.map { item in
                [
                    "id": .string(item.item.id), "text": .string(itemText(item.item)), "points": .integer(item.item.points),
                    "verdict": .string(item.verdict.key), "verdict_text": .string(verdictText(item.verdict)), "decided_by": .string(item.decidedBy),
                    "earned": .integer(item.earned), "rules": .strings(item.item.rules), "basis": .string(zh ? item.basis : item.basisEN),
                    "note": .optional(item.note), "problems": .array(item.problems.map(json)),
                ]
            }),
            "deductions": .array(result.deductions.map { deduction in
                [
                    "id": .string(deduction.deduction.id), "text": .string(zh ? deduction.deduction.text : deduction.deduction.textEN),
                    "per_case": .integer(deduction.deduction.perCase), "points": .integer(deduction.deduction.points),
                    "cases": deduction.cases.map { .integer($0) } ?? .null, "deducted": .integer(deduction.deducted),
                    "decided_by": .string(deduction.decidedBy), "problems": .array(deduction.problems.map(json)),
                ]
            }),
            "veto": result.table.veto.map { veto -> JSONValue in
                ["id": .string(veto.id), "verdict": .optional(result.veto?.key)]
            } ?? .null,
            "unit_findings": .array(result.unitFindings.map { finding in
                [
                    "rule": .string(finding.rule.id), "subject": .string(finding.subject), "status": .string(finding.status.rawValue),
                    "detail": .string(zh ? finding.detail : finding.detailEN), "host_ids": .strings(finding.hostIDs),
                    "reports": .strings(finding.evidence.compactMap(\.reportSHA256)),
                ]
            }),
            "score": [
                "applicable_points": .integer(result.applicablePoints), "earned": .integer(result.earnedPoints), "deducted": .integer(result.deductedPoints),
                "score": .integer(result.score), "permille": .integer(result.permille), "score_verdict": .string(result.scoreVerdict),
                "pending_items": .integer(result.pendingCount), "overall": .string(result.overall),
            ],
        ]
    }
}
