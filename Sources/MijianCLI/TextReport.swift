import MijianCore

/// The human table of a report: rule, items, status, subject, why; then a summary line.
public enum TextReport {
    /// Renders the report; `colour` adds ANSI colours to statuses.
    public static func render(_ report: Report, colour: Bool, title: String = "Mijian audit") -> String {
        var lines: [String] = []
        let host = report.host
        var header = "\(title) of \(host.hostname.isEmpty ? "(unnamed host)" : host.hostname)"
        if let asset = host.assetID { header += " [\(asset)]" }
        if let classification = host.classification { header += " \(classification.rawValue)" }
        lines.append(header)
        lines.append("policy \(report.policy.id) \(report.policy.version) (sha256 \(report.policy.sha256.prefix(12))…), \(RFC3339.string(from: report.issuedAt))")
        // Said once here as well as in each network finding: a pass of the network rules covers less.
        if let statement = PublicSpace.statement(in: report.findings) { lines.append("NOTE: \(statement)") }
        lines.append("")
        let headers = ["RULE", "ITEMS", "STATUS", "SUBJECT", "WHY"]
        let sorted = report.findings.enumerated().sorted { a, b in
            a.element.status != b.element.status ? a.element.status < b.element.status : a.offset < b.offset
        }.map(\.element)
        let rows = sorted.map { [$0.rule.id, $0.rule.itemsText, $0.status.rawValue, $0.subject, $0.statusDetail] }
        var widths = headers.map(displayWidth)
        for row in rows {
            for (index, cell) in row.enumerated().dropLast() { widths[index] = max(widths[index], displayWidth(cell)) }
        }
        func line(_ cells: [String], status: Status?) -> String {
            var out = ""
            for (index, cell) in cells.enumerated() {
                if index == cells.count - 1 { out += cell; break }
                var text = cell + String(repeating: " ", count: widths[index] - displayWidth(cell))
                if index == 2, colour, let status { text = paint(status) + text + "\u{1B}[0m" }
                out += text + "  "
            }
            return out
        }
        lines.append(line(headers, status: nil))
        for (row, finding) in zip(rows, sorted) { lines.append(line(row, status: finding.status)) }
        lines.append("")
        let counts = report.summary.filter { $0.1 > 0 }.map { "\($0.1) \($0.0.rawValue)" }.joined(separator: ", ")
        // The rules that could not look are named: their silence is not a clean result.
        var unjudged: [String] = []
        for finding in report.findings where finding.status == .error && !unjudged.contains(finding.rule.id) { unjudged.append(finding.rule.id) }
        let unjudgedText = "\(unjudged.count) rule\(unjudged.count == 1 ? "" : "s") could not look (error): \(unjudged.joined(separator: ", "))"
        let verdict = !report.isCompliant
            ? "NOT COMPLIANT: at least one rule failed" + (unjudged.isEmpty ? "" : "; \(unjudgedText)")
            : unjudged.isEmpty ? "no rule failed" : "no rule failed, but \(unjudgedText); nothing is vouched for there"
        lines.append("Summary: \(counts.isEmpty ? "no findings" : counts) — \(verdict)")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func paint(_ status: Status) -> String {
        switch status {
        case .fail: return "\u{1B}[1;31m"
        case .error: return "\u{1B}[1;35m"
        case .pass: return "\u{1B}[32m"
        case .notchecked: return "\u{1B}[33m"
        case .informational, .notapplicable: return "\u{1B}[36m"
        }
    }

    /// Terminal columns a string takes: East Asian wide characters count two.
    static func displayWidth(_ text: String) -> Int {
        text.unicodeScalars.reduce(0) { width, scalar in
            let v = scalar.value
            let wide = (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
                || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v) || (0xFF00...0xFF60).contains(v)
                || (0xFFE0...0xFFE6).contains(v) || (0x20000...0x3FFFD).contains(v)
            return width + (wide ? 2 : 1)
        }
    }
}
