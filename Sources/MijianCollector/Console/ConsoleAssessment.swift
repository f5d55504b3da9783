import Foundation
import GRDB
import Hummingbird
import MijianCore

/// Waivers beside the self-assessment: which evidence rows they cover. A waiver is matched by
/// the machine's host id (found through the signed report's digest), never by a host name a
/// machine could copy, and it only ever adds a status: the finding and the verdict stay.
struct WaiverMatcher {
    let waivers: [Waiver]
    /// Report digest → host id, for the year's findings and hosts.
    let hostOfReport: [String: String]
    /// Host id → department.
    let departments: [String: String]
    let at: Date

    func waiver(for row: EvidenceRow) -> Waiver? {
        guard let sha = row.reportSHA256, let host = hostOfReport[sha] else { return nil }
        return waivers.first { $0.isActive(at: at) && $0.covers(hostID: host, department: departments[host], ruleID: row.ruleID) }
    }
}

extension Console {
    func matcher(year: Int, waivers: [Waiver], at: Date) async throws -> WaiverMatcher {
        try await store.consoleRead("cannot read the year's reports") { db in
            var hostOfReport: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT host_id, last_report_sha256, first_report_sha256 FROM findings WHERE year = ?", arguments: [year]) {
                hostOfReport[row["last_report_sha256"]] = row["host_id"]
                hostOfReport[row["first_report_sha256"]] = row["host_id"]
            }
            var departments: [String: String] = [:]
            let hosts = Set(hostOfReport.values)
            if waivers.contains(where: { $0.department != nil }) {
                for row in try Row.fetchAll(db, sql: "SELECT host_id, unit FROM hosts WHERE unit IS NOT NULL") where hosts.contains(row["host_id"]) {
                    departments[row["host_id"]] = row["unit"]
                }
            }
            return WaiverMatcher(waivers: waivers, hostOfReport: hostOfReport, departments: departments, at: at)
        }
    }

    /// Waivers in force at some moment of `year`.
    func waivers(of year: Int) async throws -> [Waiver] {
        let start = CollectorCalendar.start(of: year)
        let end = CollectorCalendar.end(of: year)
        return try await store.consoleWaivers().filter { $0.createdAt < end && $0.expiresAt > start && ($0.withdrawnAt.map { $0 > start } ?? true) }
    }

    func waiverState(_ waiver: Waiver, at: Date) -> String {
        if waiver.withdrawnAt != nil { return "withdrawn" }
        return waiver.expiresAt <= at ? "expired" : "waived"
    }

    func assessment(_ request: Request, _ page: ConsolePage) async throws -> Response {
        let at = now()
        let query = request.uri.queryParameters
        let year = query.get("year").flatMap { Int(String($0)) }.map { min(max($0, 1970), 9999) } ?? CollectorCalendar.year(of: at)
        let result = try await assessmentResult(year: year, at: at)
        let waivers = try await waivers(of: year)
        let hostNames = try await store.consoleRead("cannot read the hosts") { db in
            var names: [String: (String, String?)] = [:]
            let ids = Array(Set(waivers.compactMap(\.hostID)))
            for id in ids {
                if let row = try Row.fetchOne(db, sql: "SELECT hostname, asset_id FROM hosts WHERE host_id = ?", arguments: [id]) { names[id] = (row["hostname"], row["asset_id"]) }
            }
            return names
        }
        func scope(_ waiver: Waiver) -> String {
            if let host = waiver.hostID {
                let name = hostNames[host]
                return "\(name?.0 ?? host) (\(name?.1 ?? "—"))"
            }
            return page.t("部门 ", "department ") + (waiver.department ?? "")
        }
        if let format = query.get("format").flatMap({ AssessmentFormat(rawValue: String($0)) }) {
            return assessmentDownload(result, format: format, lang: page.lang, waivers: waivers, scope: scope, at: at)
        }
        let matcher = try await matcher(year: year, waivers: waivers, at: at)
        return Self.html(.ok, page.render(
            title: page.t("\(year) 年度保密自查自评", "Secrecy self-assessment \(year)"), active: "assessment",
            body: assessmentHTML(result, page, matcher: matcher, waivers: waivers, scope: scope, year: year, at: at)))
    }

    func assessmentHTML(_ result: AssessmentResult, _ page: ConsolePage, matcher: WaiverMatcher, waivers: [Waiver], scope: (Waiver) -> String, year: Int, at: Date) -> String {
        let e = HTMLText.text
        let en = page.lang.english
        var body = "<form method=\"get\" action=\"/assessment\" class=\"filters\"><label for=\"year\">\(e(page.t("年度", "Year")))<input id=\"year\" name=\"year\" type=\"number\" value=\"\(year)\"></label><button type=\"submit\">\(e(page.t("查看", "Show")))</button></form>"
        body += "<p class=\"no-print\">\(e(page.t("下载", "Download")))："
        for format in AssessmentFormat.allCases {
            body += " <a href=\"/assessment\(HTMLText.query([("year", String(year)), ("format", format.rawValue), ("lang", en ? "en" : "zh")]))\" download>\(format.rawValue.uppercased())</a>"
        }
        body += " · \(e(page.t("打印本页即得纸质文档（浏览器“打印”）。", "Print this page for the paper document (the browser's Print).")))</p>"
        body += "<ul><li>\(e(page.t("单位", "Unit")))：\(e(result.unit ?? "—"))</li><li>\(e(page.t("计算机", "Computers")))：\(result.hostCount)（\(e(page.t("涉密", "classified"))) \(result.classifiedCount)，\(e(page.t("非涉密", "unclassified"))) \(result.unclassifiedCount)）</li>"
        body += "<li>\(e(page.t("已验证签名的报告", "Signature-verified reports")))：\(result.reportCount)</li><li>\(e(page.t("生成时间", "Generated")))：\(page.time(result.generatedAt))</li></ul>"
        body += "<h2>\(e(page.t("总体结论", "Overall result")))</h2>"
        body += page.table(caption: nil, header: [page.t("项目", "Item"), page.t("结果", "Value")], rows: [
            [e(page.t("得分", "Score")), "\(result.score) / \(result.applicablePoints)（\(result.permille / 10).\(result.permille % 10) %）"],
            [e(page.t("扣分", "Deducted")), "\(result.deductedPoints)"],
            [e(page.t("按得分的结论（预估）", "Verdict by score (projected)")), e(en ? Self.overallEnglish(result.scoreVerdict) : result.scoreVerdict)],
            [e(page.t("待确认项", "Items to be confirmed")), "\(result.pendingCount)"],
            [e(page.t("总体结论", "Overall")), "<strong>\(e(en ? Self.overallEnglish(result.overall) : result.overall))</strong>"],
        ])
        let evidenceHeader = [page.t("主机", "Host"), page.t("设备编号", "Asset"), page.t("规则", "Rule"), page.t("对象", "Subject"), page.t("结果", "Status"),
            page.t("时间", "Time"), page.t("报告", "Report"), page.t("说明", "Detail")]
        func evidence(_ rows: [EvidenceRow]) -> String {
            page.table(caption: nil, header: evidenceHeader, rows: rows.map { row in
                var status = page.badge(row.status)
                if let waiver = matcher.waiver(for: row) {
                    status += "<br>" + page.badge("waived") + "<br><span class=\"waiver\">\(e(page.t("理由", "reason")))：\(e(waiver.reason))；\(e(page.t("批准人", "approver")))：\(e(waiver.approver))；\(e(page.t("到期", "expires")))：\(page.time(waiver.expiresAt))</span>"
                }
                return [e(row.hostname), e(row.assetID ?? "—"), e(row.ruleID), e(row.subject), status, page.time(row.observedAt),
                    e(row.reportSHA256.map { "sha256:" + $0 } ?? "—"), e(row.detail)]
            }, cls: "evidence")
        }
        var index = 0
        for area in result.table.areas {
            body += "<h2>\(e(area.id))、\(e(en && !area.titleEN.isEmpty ? area.titleEN : area.title))</h2>"
            for _ in area.items {
                guard index < result.items.count else { break }
                let item = result.items[index]
                index += 1
                body += "<section><h3>\(e(item.item.id)) \(e(en && !item.item.textEN.isEmpty ? item.item.textEN : item.item.text))（\(item.item.points) \(e(page.t("分", "points")))）</h3>"
                body += "<p>\(e(page.t("结论", "Verdict")))：<span class=\"badge s-\(HTMLText.attr(item.verdict.key))\">\(e(en ? item.verdict.english : item.verdict.rawValue))</span>（\(e(page.decidedBy(item.decidedBy)))，\(item.earned)/\(item.item.points)）</p>"
                body += "<p>\(e(page.t("依据", "Basis")))：\(e(en ? item.basisEN : item.basis))</p>"
                if let note = item.note { body += "<p>\(e(page.t("备注", "Note")))：\(e(note))</p>" }
                if !item.problems.isEmpty {
                    body += "<ol>"
                    for problem in item.problems { body += "<li>\(e(en ? problem.textEN : problem.text))" + (problem.evidence.isEmpty ? "" : evidence(problem.evidence)) + "</li>" }
                    body += "</ol>"
                }
                body += "</section>"
            }
        }
        body += "<h2>\(e(page.t("加重扣分项", "Aggravating deductions")))</h2>"
        body += page.table(caption: nil, header: [page.t("条目", "Item"), page.t("内容", "What"), page.t("案例数", "Cases"), page.t("扣分", "Deducted")], rows: result.deductions.map {
            [e($0.deduction.id), e(en ? $0.deduction.textEN : $0.deduction.text), $0.cases.map { String($0) } ?? "—", "\($0.deducted)"]
        })
        for deduction in result.deductions where !deduction.problems.isEmpty {
            body += "<h3>\(e(deduction.deduction.id))</h3><ol>"
            for problem in deduction.problems { body += "<li>\(e(en ? problem.textEN : problem.text))" + evidence(problem.evidence) + "</li>" }
            body += "</ol>"
        }
        body += "<h2 id=\"waivers\">\(e(page.t("豁免（不隐藏任何检查结果）", "Waivers (no finding is hidden)")))</h2>"
        body += page.table(
            caption: nil,
            header: [page.t("编号", "No."), page.t("范围", "Scope"), page.t("规则", "Rule"), page.t("理由", "Reason"), page.t("批准人", "Approver"), page.t("到期", "Expires"), page.t("状态", "State")],
            rows: waivers.map { ["\($0.id)", e(scope($0)), e($0.ruleID), e($0.reason), e($0.approver), page.time($0.expiresAt), page.badge(waiverState($0, at: at))] })
        return body
    }

    func assessmentDownload(_ result: AssessmentResult, format: AssessmentFormat, lang: ConsoleLanguage, waivers: [Waiver], scope: (Waiver) -> String, at: Date) -> Response {
        let renderer = AssessmentRenderer(language: lang.assessment)
        let name = "self-assessment-\(result.year)-\(lang.english ? "en" : "zh")"
        switch format {
        case .json:
            var value = renderer.json(result)
            let list = JSONValue.array(waivers.map { waiver in
                [
                    "id": .int(waiver.id), "host_id": .optional(waiver.hostID), "department": .optional(waiver.department), "rule_id": .string(waiver.ruleID),
                    "reason": .string(waiver.reason), "approver": .string(waiver.approver), "expires_at": .string(RFC3339.string(from: waiver.expiresAt)),
                    "recorded_by": .string(waiver.createdBy), "recorded_at": .string(RFC3339.string(from: waiver.createdAt)),
                    "withdrawn_at": .optional(waiver.withdrawnAt.map { RFC3339.string(from: $0) }), "state": .string(waiverState(waiver, at: at)),
                ]
            })
            if case .object(var members) = value {
                members.append(("waivers", list))
                value = .object(members)
            }
            return Self.download(value.prettySerialized(), type: "application/json", filename: name + ".json")
        case .md:
            // Markdown viewers pass raw HTML through: every `<` becomes an entity, so no tag a
            // workstation wrote into a name can render.
            var text = renderer.markdown(result)
            text += "\n## " + lang.t("豁免（不隐藏任何检查结果）", "Waivers (no finding is hidden)") + "\n\n"
            text += "| " + [lang.t("编号", "No."), lang.t("范围", "Scope"), lang.t("规则", "Rule"), lang.t("理由", "Reason"), lang.t("批准人", "Approver"), lang.t("到期", "Expires"), lang.t("状态", "State")].joined(separator: " | ") + " |\n"
            text += "|" + String(repeating: " --- |", count: 7) + "\n"
            for waiver in waivers {
                let cells = ["\(waiver.id)", scope(waiver), waiver.ruleID, waiver.reason, waiver.approver, RFC3339.string(from: waiver.expiresAt), waiverState(waiver, at: at)]
                text += "| " + cells.map(Self.markdownCell).joined(separator: " | ") + " |\n"
            }
            text = text.replacingOccurrences(of: "<", with: "&lt;")
            return Self.download(Array(text.utf8), type: "text/markdown; charset=utf-8", filename: name + ".md")
        case .html:
            var text = renderer.html(result)
            var section = "<h2>\(HTMLText.text(lang.t("豁免（不隐藏任何检查结果）", "Waivers (no finding is hidden)")))</h2>\n<table><thead><tr>"
            for title in [lang.t("编号", "No."), lang.t("范围", "Scope"), lang.t("规则", "Rule"), lang.t("理由", "Reason"), lang.t("批准人", "Approver"), lang.t("到期", "Expires"), lang.t("状态", "State")] {
                section += "<th>\(HTMLText.text(title))</th>"
            }
            section += "</tr></thead><tbody>\n"
            for waiver in waivers {
                let cells = ["\(waiver.id)", scope(waiver), waiver.ruleID, waiver.reason, waiver.approver, RFC3339.string(from: waiver.expiresAt), waiverState(waiver, at: at)]
                section += "<tr>" + cells.map { "<td>\(HTMLText.text($0))</td>" }.joined() + "</tr>\n"
            }
            section += "</tbody></table>\n"
            if let end = text.range(of: "</body>", options: .backwards) { text.insert(contentsOf: section, at: end.lowerBound) } else { text += section }
            return Self.download(Array(text.utf8), type: "text/html; charset=utf-8", filename: name + ".html")
        }
    }

    /// The assessment's own cell escaping, plus backticks (a waiver's reason is typed by people).
    static func markdownCell(_ text: String) -> String {
        AssessmentRenderer.markdownCell(text).replacingOccurrences(of: "`", with: "\\`")
    }

    // MARK: - Waivers

    /// Rules a waiver may name: the audit's and the collector's own.
    static var waivableRules: [RuleInfo] { RuleCatalogue.auditRules + UnitRules.all }

    func waivers(_ page: ConsolePage, _ session: ConsoleSession, message: String? = nil, status: HTTPResponse.Status = .ok, prefillHost: String? = nil) async throws -> Response {
        let at = now()
        let e = HTMLText.text
        let a = HTMLText.attr
        var body = message.map { "<p class=\"notice\" role=\"status\">\(e($0))</p>" } ?? ""
        if session.user.role == .officer {
            body += "<h2>\(e(page.t("记录豁免", "Record a waiver")))</h2>"
            body += "<form method=\"post\" action=\"/waivers\" class=\"stack\">\(page.csrfField)"
            body += "<label for=\"w-host\">\(e(page.t("计算机（host_id、主机名或设备编号；与部门二选一）", "Machine (host id, host name or asset number; or give a department)")))<input id=\"w-host\" name=\"host\" value=\"\(a(prefillHost ?? ""))\"></label>"
            body += "<label for=\"w-dept\">\(e(page.t("部门", "Department")))<input id=\"w-dept\" name=\"department\"></label>"
            body += "<label for=\"w-rule\">\(e(page.t("规则", "Rule")))<select id=\"w-rule\" name=\"rule\" required>"
            for rule in Self.waivableRules { body += "<option value=\"\(a(rule.id))\">\(e(rule.id)) \(e(page.lang.english ? rule.title : rule.titleZH))</option>" }
            body += "</select></label>"
            body += "<label for=\"w-reason\">\(e(page.t("理由", "Reason")))<textarea id=\"w-reason\" name=\"reason\" required rows=\"3\"></textarea></label>"
            body += "<label for=\"w-approver\">\(e(page.t("批准人", "Approver")))<input id=\"w-approver\" name=\"approver\" required></label>"
            body += "<label for=\"w-expires\">\(e(page.t("到期日（到期自动失效，最长一年）", "Expires on (ends by itself; at most a year)")))<input id=\"w-expires\" name=\"expires\" type=\"date\" required></label>"
            body += "<button type=\"submit\">\(e(page.t("记录豁免", "Record the waiver")))</button></form>"
        } else {
            body += "<p class=\"muted\">\(e(page.t("只读账户：可以查看，不能记录或撤销豁免。", "Viewer account: you can read, not record or withdraw waivers.")))</p>"
        }
        let all = try await store.consoleWaivers()
        let names = try await store.consoleRead("cannot read the hosts") { db in
            var names: [String: String] = [:]
            for id in Set(all.compactMap(\.hostID)) { names[id] = try String.fetchOne(db, sql: "SELECT hostname FROM hosts WHERE host_id = ?", arguments: [id]) }
            return names
        }
        body += page.table(
            caption: page.t("全部豁免", "Every waiver"),
            header: [page.t("编号", "No."), page.t("范围", "Scope"), page.t("规则", "Rule"), page.t("理由", "Reason"), page.t("批准人", "Approver"), page.t("到期", "Expires"),
                page.t("记录人", "Recorded by"), page.t("状态", "State"), ""],
            rows: all.map { waiver in
                let scope = waiver.hostID.map { "<a href=\"/machines/\(HTMLText.url($0))\">\(e(names[$0] ?? $0))</a>" } ?? e(page.t("部门 ", "department ") + (waiver.department ?? ""))
                var action = ""
                if session.user.role == .officer, waiver.isActive(at: at) {
                    action = "<form method=\"post\" action=\"/waivers/\(waiver.id)/withdraw\">\(page.csrfField)<label for=\"wd-\(waiver.id)\">\(e(page.t("撤销理由", "Why withdraw")))<input id=\"wd-\(waiver.id)\" name=\"reason\" required></label><button type=\"submit\" class=\"danger\">\(e(page.t("撤销", "Withdraw")))</button></form>"
                }
                return ["\(waiver.id)", scope, e(waiver.ruleID), e(waiver.reason), e(waiver.approver), page.time(waiver.expiresAt), e(waiver.createdBy),
                    page.badge(waiverState(waiver, at: at)), action]
            })
        body += page.table(
            caption: page.t("豁免审计日志（只增不改）", "Waiver audit log (append-only)"),
            header: [page.t("时间", "Time"), page.t("豁免", "Waiver"), page.t("操作", "Action"), page.t("账户", "Account"), page.t("内容", "Detail")],
            rows: try await store.consoleWaiverLog().map { [page.time($0.at), "\($0.waiverID)", e($0.action), e($0.by), e($0.detail)] })
        return Self.html(status, page.render(title: page.t("豁免", "Waivers"), active: "waivers", body: body))
    }

    func recordWaiver(_ form: ConsoleForm, _ page: ConsolePage, _ session: ConsoleSession) async throws -> Response {
        let at = now()
        func refuse(_ zh: String, _ en: String) async throws -> Response {
            try await waivers(page, session, message: page.t(zh, en), status: .badRequest, prefillHost: form.text("host"))
        }
        guard let rule = form.text("rule"), Self.waivableRules.contains(where: { $0.id == rule }) else { return try await refuse("未知的规则。", "Unknown rule.") }
        guard let reason = form.text("reason"), reason.count <= 2000 else { return try await refuse("请写明理由（最多 2000 字）。", "Give a reason (at most 2,000 characters).") }
        guard let approver = form.text("approver"), approver.count <= 200 else { return try await refuse("请写明批准人。", "Name the approver.") }
        guard let expiresText = form.text("expires"), let expires = RFC3339.date(from: expiresText + "T23:59:59Z") else {
            return try await refuse("到期日格式应为 YYYY-MM-DD。", "Give the expiry as YYYY-MM-DD.")
        }
        guard expires > at, expires <= at.addingTimeInterval(366 * 86_400) else {
            return try await refuse("到期日须在今天之后、一年之内。", "The expiry must be after today and within a year.")
        }
        var hostID: String?
        var department: String?
        if let host = form.text("host") {
            let matches = try await queries.resolve(host)
            guard matches.count == 1 else {
                return try await refuse(matches.isEmpty ? "没有这台计算机。" : "多台计算机符合，请填写 host_id。", matches.isEmpty ? "No such machine." : "Several machines match; give the host id.")
            }
            hostID = matches[0]
        } else if let name = form.text("department") {
            department = name
        } else {
            return try await refuse("请填写计算机或部门。", "Give a machine or a department.")
        }
        let id = try await store.addWaiver(hostID: hostID, department: department, ruleID: rule, reason: reason, approver: approver, expiresAt: expires, by: session.user.name, at: at)
        return try await waivers(page, session, message: page.t("已记录豁免 \(id)。", "Waiver \(id) recorded."))
    }

    func withdrawWaiver(_ id: Int64?, _ form: ConsoleForm, _ page: ConsolePage, _ session: ConsoleSession) async throws -> Response {
        guard let id, let reason = form.text("reason") else {
            return try await waivers(page, session, message: page.t("请写明撤销理由。", "Say why it is withdrawn."), status: .badRequest)
        }
        do {
            try await store.withdrawWaiver(id: id, reason: reason, by: session.user.name, at: now())
        } catch {
            return try await waivers(page, session, message: error.message, status: .notFound)
        }
        return try await waivers(page, session, message: page.t("已撤销豁免 \(id)。", "Waiver \(id) withdrawn."))
    }
}
