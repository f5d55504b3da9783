import Foundation
import GRDB
import Hummingbird
import MijianCore

extension Console {
    // MARK: - Overview

    func overview(_ request: Request, _ page: ConsolePage) async throws -> Response {
        let at = now()
        let counts = try await states.counts(now: at, silentAfterDays: sources.settings.silentAfterDays)
        let e = HTMLText.text
        let year = CollectorCalendar.year(of: at)
        var body = "<h2 id=\"states\">\(e(page.t("计算机状态", "Machines by state")))</h2>\n<ul class=\"cards\" aria-labelledby=\"states\">"
        for state in MachineState.allCases {
            let n = counts.states[state] ?? 0
            let label = state == .silent
                ? page.t("失联超过 \(sources.settings.silentAfterDays) 天", "silent over \(sources.settings.silentAfterDays) days") : page.stateName(state.rawValue)
            body += "<li><a class=\"card s-\(state.rawValue)\" href=\"/machines\(HTMLText.query([("state", state.rawValue)]))\"><span class=\"n\">\(n)</span>\(e(label))</a></li>"
        }
        body += "</ul>\n<p class=\"muted\">\(e(page.t("共 \(counts.total - (counts.states[.never] ?? 0)) 台已上报；每台计算机只计入一种状态，优先级：密钥已吊销、失联、不符合、无法检查、符合。", "\(counts.total - (counts.states[.never] ?? 0)) machines have reported; each counts in one state, by precedence: key revoked, silent, failing, error, compliant.")))</p>\n"
        body += "<h2>\(e(page.t("各部门", "Departments")))</h2>\n"
        var rows: [[String]] = []
        for department in counts.departments {
            let total = department.states.values.reduce(0, +)
            let compliant = department.states[.compliant] ?? 0
            let rate = total > 0 ? "\(compliant * 1000 / total / 10).\(compliant * 1000 / total % 10) %" : "—"
            let link = { (state: MachineState?) -> String in
                let n = state.map { department.states[$0] ?? 0 } ?? total
                return "<a href=\"/machines\(HTMLText.query([("department", department.name), ("state", state?.rawValue)]))\">\(n)</a>"
            }
            rows.append([
                department.name.isEmpty ? e(page.t("（未填写）", "(not given)")) : e(department.name), link(nil), link(.compliant), link(.failing),
                link(.error), link(.silent), link(.revoked), e(rate),
            ])
        }
        body += page.table(
            caption: page.t("通过率 = 符合的计算机 / 已上报的计算机", "Pass rate = compliant machines / machines that reported"),
            header: [page.t("部门", "Department"), page.t("计算机", "Machines"), page.t("符合", "Compliant"), page.t("不符合", "Failing"),
                page.t("无法检查", "Error"), page.t("失联", "Silent"), page.t("密钥已吊销", "Key revoked"), page.t("通过率", "Pass rate")],
            rows: rows)
        body += "<h2>\(e(page.t("\(year) 年度自查自评（预估）", "Self-assessment \(year) (projected)")))</h2>\n"
        let glance = await keeper.glance(year: year, marker: try await storeMarker(), now: at, wait: options.overviewWait)
        if let computing = glance.computingSince {
            let what = glance.kept == nil
                ? page.t("本年度自查自评正在计算（开始于 \(page.plainTime(computing))），完成后刷新本页即可看到预估结论。",
                    "This year's self-assessment is being computed (since \(page.plainTime(computing))); reload the page to see the projected verdict when it is done.")
                : page.t("以下预估计算于 \(page.plainTime(glance.kept?.startedAt))，此后收到了新的报告或密钥变更（或已超过 \(Int(keeper.maxAge)) 秒）；正在重新计算（开始于 \(page.plainTime(computing))），刷新本页查看。",
                    "The projection below was computed at \(page.plainTime(glance.kept?.startedAt)); reports or keys have changed since (or \(Int(keeper.maxAge)) s have passed). It is being computed again (since \(page.plainTime(computing))); reload the page to see it.")
            body += "<p class=\"notice\" role=\"status\">\(e(what))</p>\n"
        }
        if let kept = glance.kept {
            let result = kept.result
            let projected = result.scoreVerdict
            let verdictClass = projected == "符合要求" ? "s-meets" : (projected == "基本符合" ? "s-pending" : "s-fails")
            body += "<p>\(e(page.t("预估结论", "Projected verdict")))：<strong class=\"badge \(verdictClass)\">\(e(page.lang.english ? Self.overallEnglish(projected) : projected))</strong> "
            body += e(page.t(
                "得分 \(result.score)/\(result.applicablePoints)（扣分 \(result.deductedPoints)），待确认 \(result.pendingCount) 项，总体结论：\(result.overall)",
                "score \(result.score)/\(result.applicablePoints) (\(result.deductedPoints) deducted), \(result.pendingCount) item(s) to be confirmed, overall: \(Self.overallEnglish(result.overall))"))
            body += " · <a href=\"/assessment\(HTMLText.query([("year", String(year))]))\">\(e(page.t("查看自查自评", "Open the self-assessment")))</a></p>\n"
            body += page.table(
                caption: page.t("加重扣分项", "Aggravating deductions"),
                header: [page.t("条目", "Item"), page.t("内容", "What"), page.t("案例数", "Cases"), page.t("扣分", "Deducted"), page.t("判定依据", "Decided by")],
                rows: result.deductions.map { row in
                    [e(row.deduction.id), e(page.lang.english ? row.deduction.textEN : row.deduction.text), row.cases.map { String($0) } ?? "—", "\(row.deducted)", e(page.decidedBy(row.decidedBy))]
                })
            body += "<p class=\"muted\">\(e(page.t("评估计算于", "Assessment computed at"))) \(page.time(kept.startedAt))\(e(page.t("（用时 \(String(format: "%.1f", kept.seconds)) 秒，含截至第 \(kept.marker.reports) 份报告）", " (in \(String(format: "%.1f", kept.seconds)) s, from the reports up to number \(kept.marker.reports))")))</p>"
        }
        return Self.html(.ok, page.render(title: page.t("概览", "Overview"), active: "overview", body: body))
    }

    static func overallEnglish(_ word: String) -> String {
        switch word {
        case "符合要求": return "meets the requirements"
        case "基本符合": return "basically meets"
        case "不符合": return "does not meet"
        case "待确认": return "to be confirmed"
        default: return word
        }
    }

    // MARK: - Machines

    func machineFilter(_ request: Request) -> MachineFilter {
        let query = request.uri.queryParameters
        func value(_ name: String) -> String? {
            guard let text = query.get(name)?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return String(text.prefix(256))
        }
        var filter = MachineFilter()
        filter.department = query.get("department").map { String($0) }
        filter.classification = value("classification")
        filter.state = value("state").flatMap(MachineState.init(rawValue:))
        filter.rule = value("rule")
        filter.search = value("q")
        if let sort = value("sort"), MachineFilter.sorts[sort] != nil { filter.sort = sort }
        filter.page = min(max(value("page").flatMap { Int(String($0)) } ?? 1, 1), 100_000)
        return filter
    }

    func machines(_ request: Request, _ page: ConsolePage) async throws -> Response {
        let filter = machineFilter(request)
        let at = now()
        let (total, rows) = try await queries.machines(filter, now: at)
        let facets = try await queries.facets()
        let e = HTMLText.text
        let a = HTMLText.attr
        func option(_ value: String, _ label: String, _ selected: String?) -> String {
            "<option value=\"\(a(value))\"\(value == (selected ?? "") ? " selected" : "")>\(e(label))</option>"
        }
        var body = "<form method=\"get\" action=\"/machines\" class=\"filters\" role=\"search\">"
        body += "<label for=\"f-q\">\(e(page.t("搜索（设备编号、主机名、责任人）", "Search (asset number, host name, responsible)")))<input id=\"f-q\" name=\"q\" value=\"\(a(filter.search ?? ""))\"></label>"
        body += "<label for=\"f-department\">\(e(page.t("部门", "Department")))<select id=\"f-department\" name=\"department\">" + option("", page.t("全部", "All"), nil)
        for department in facets.departments where !department.isEmpty { body += option(department, department, filter.department) }
        body += "</select></label>"
        body += "<label for=\"f-class\">\(e(page.t("密级", "Classification")))<select id=\"f-class\" name=\"classification\">" + option("", page.t("全部", "All"), nil)
        for value in facets.classifications { body += option(value, value, filter.classification) }
        body += option("-", page.t("未填写", "not given"), filter.classification) + "</select></label>"
        body += "<label for=\"f-state\">\(e(page.t("状态", "State")))<select id=\"f-state\" name=\"state\">" + option("", page.t("全部", "All"), nil)
        for state in MachineState.allCases { body += option(state.rawValue, page.stateName(state.rawValue), filter.state?.rawValue) }
        body += "</select></label>"
        body += "<label for=\"f-rule\">\(e(page.t("不符合的规则", "Failing rule")))<select id=\"f-rule\" name=\"rule\">" + option("", page.t("任意", "Any"), nil)
        for rule in RuleCatalogue.auditRules { body += option(rule.id, "\(rule.id) \(page.lang.english ? rule.title : rule.titleZH)", filter.rule) }
        body += "</select></label>"
        body += "<label for=\"f-sort\">\(e(page.t("排序", "Sort")))<select id=\"f-sort\" name=\"sort\">"
        for (key, label) in [("name", page.t("主机名", "Host name")), ("asset", page.t("设备编号", "Asset number")), ("department", page.t("部门", "Department")),
            ("last", page.t("最近上报", "Last report")), ("fails", page.t("不符合项数", "Failures"))]
        {
            body += option(key, label, filter.sort)
        }
        body += "</select></label><button type=\"submit\">\(e(page.t("筛选", "Filter")))</button></form>\n"
        let pages = max((total + filter.pageSize - 1) / filter.pageSize, 1)
        body += "<p role=\"status\">\(e(page.t("共 \(total) 台，第 \(filter.page)/\(pages) 页", "\(total) machines, page \(filter.page) of \(pages)")))</p>\n"
        let table = rows.map { row -> [String] in
            [
                "<a href=\"/machines/\(HTMLText.url(row.hostID))\">\(e(row.hostname))</a>", e(row.assetID ?? "—"), e(row.classification ?? "—"),
                e(row.responsible ?? "—"), e(row.department ?? "—"), page.badge(row.state.rawValue), "\(row.lastFailCount)", page.time(row.failingSince),
                page.time(row.lastIssuedAt),
            ]
        }
        body += page.table(
            caption: nil,
            header: [page.t("主机名", "Host name"), page.t("设备编号", "Asset number"), page.t("密级", "Classification"), page.t("责任人", "Responsible"),
                page.t("部门", "Department"), page.t("状态", "State"), page.t("不符合项", "Failures"), page.t("持续不符合自", "Failing since"),
                page.t("最近上报", "Last report")],
            rows: table)
        func pageLink(_ number: Int, _ label: String) -> String {
            "<a href=\"/machines\(HTMLText.query([("q", filter.search), ("department", filter.department), ("classification", filter.classification), ("state", filter.state?.rawValue), ("rule", filter.rule), ("sort", filter.sort), ("page", String(number))]))\">\(e(label))</a>"
        }
        body += "<nav class=\"pager\" aria-label=\"\(a(page.t("分页", "Pages")))\">"
        if filter.page > 1 { body += pageLink(filter.page - 1, page.t("上一页", "Previous")) }
        if filter.page < pages { body += pageLink(filter.page + 1, page.t("下一页", "Next")) }
        body += "</nav>"
        return Self.html(.ok, page.render(title: page.t("计算机", "Machines"), active: "machines", body: body))
    }

    // MARK: - A machine

    func machine(_ hostID: String, _ request: Request, _ page: ConsolePage, _ session: ConsoleSession) async throws -> Response {
        let at = now()
        let e = HTMLText.text
        let a = HTMLText.attr
        guard let host = try await queries.host(hostID, now: at) else {
            return problem(.notFound, page, title: page.t("未找到", "Not found"), page.t("没有这台计算机。", "No such machine."))
        }
        let department = host.optional("unit")
        let hostname = host.text("hostname")
        var asOf: Date?
        var asOfText = ""
        if let text = request.uri.queryParameters.get("asof"), !text.isEmpty {
            asOfText = String(text.prefix(32))
            guard let day = RFC3339.date(from: asOfText + "T23:59:59Z") ?? RFC3339.date(from: asOfText) else {
                return problem(.badRequest, page, title: page.t("日期无效", "Bad date"), page.t("日期格式应为 YYYY-MM-DD。", "Give the date as YYYY-MM-DD."))
            }
            asOf = day
        }
        var body = "<dl class=\"identity\">"
        let identity: [(String, String)] = [
            (page.t("主机名", "Host name"), hostname), (page.t("设备编号", "Asset number"), host.optional("asset_id") ?? "—"),
            (page.t("密级", "Classification"), host.optional("classification") ?? "—"), (page.t("责任人", "Responsible"), host.optional("responsible") ?? "—"),
            (page.t("部门", "Department"), department ?? "—"), (page.t("操作系统", "OS"), host.text("os")), (page.t("内核", "Kernel"), host.text("kernel")),
            ("host_id", hostID), (page.t("策略", "Policy"), "\(host.text("policy_id")) \(host.text("policy_version")) sha256:\(host.text("policy_sha256"))"),
            (page.t("代理版本", "Agent version"), host.text("agent_version")),
        ]
        for (key, value) in identity { body += "<dt>\(e(key))</dt><dd>\(e(value))</dd>" }
        body += "<dt>\(e(page.t("状态", "State")))</dt><dd>\(page.badge(host.text("state")))</dd></dl>\n"

        // Findings in force: the newest report, or the one in force at the date asked.
        let digest: String? = asOf == nil ? host.text("digest") : try await queries.reportInForce(hostID, at: asOf ?? at)
        body += "<h2 id=\"findings\">\(e(asOf == nil ? page.t("当前检查结果", "Current findings") : page.t("\(asOfText) 当时的检查结果", "Findings in force on \(asOfText)")))</h2>\n"
        body += "<form method=\"get\" class=\"filters\" action=\"/machines/\(HTMLText.url(hostID))\"><label for=\"asof\">\(e(page.t("查看某日的状态", "As of date")))<input id=\"asof\" name=\"asof\" type=\"date\" value=\"\(a(asOfText))\"></label><button type=\"submit\">\(e(page.t("查看", "Show")))</button></form>"
        let waivers = try await store.consoleWaivers(hostID: hostID, department: department)
        if let digest, let report = try await queries.report(sha256: digest, hostID: hostID) {
            body += "<p>\(e(page.t("依据报告", "From report"))) <a href=\"/machines/\(HTMLText.url(hostID))/reports/\(report.epoch)/\(report.seq)\">\(report.epoch):\(report.seq)</a>，\(e(page.t("签发于", "issued"))) \(page.time(report.issuedAt))，sha256:\(e(digest))</p>"
            body += findingsHTML(report, page, hostID: hostID, department: department, waivers: waivers, at: asOf ?? at)
        } else {
            body += "<p>\(e(page.t("该时刻没有已存储的报告。", "No stored report was in force then.")))</p>"
        }
        if session.user.role == .officer {
            body += "<p><a href=\"/waivers\(HTMLText.query([("host", hostID)]))\">\(e(page.t("为本机记录豁免…", "Record a waiver for this machine…")))</a></p>"
        }
        let activeWaivers = waivers.filter { $0.isActive(at: at) }
        if !activeWaivers.isEmpty {
            body += page.table(
                caption: page.t("生效的豁免", "Waivers in force"),
                header: [page.t("规则", "Rule"), page.t("范围", "Scope"), page.t("理由", "Reason"), page.t("批准人", "Approver"), page.t("到期", "Expires")],
                rows: activeWaivers.map { [e($0.ruleID), e($0.hostID != nil ? page.t("本机", "this machine") : page.t("部门 ", "department ") + ($0.department ?? "")), e($0.reason), e($0.approver), page.time($0.expiresAt)] })
        }

        // Timeline: reports and the events they carried.
        let reports = try await queries.reports(hostID, limit: 50)
        body += "<h2 id=\"timeline\">\(e(page.t("报告与事件时间线", "Timeline of reports and events")))</h2>\n"
        body += page.table(
            caption: page.t("最近 50 份报告（按链序）", "The last 50 reports (chain order)"),
            header: [page.t("纪元:序号", "Epoch:seq"), page.t("签发", "Issued"), page.t("接收", "Received"), page.t("链判定", "Chain outcome"),
                page.t("不符合项", "Failures"), page.t("时钟", "Clock"), "sha256"],
            rows: reports.map { row in
                let epoch = row.int("epoch")
                let seq = row.int("seq")
                return [
                    "<a href=\"/machines/\(HTMLText.url(hostID))/reports/\(epoch)/\(seq)\">\(epoch):\(seq)</a>", e(row.text("issued_at")), e(row.text("received_at")),
                    e(row.text("outcome")), "\(row.int("fail_count"))", e(row.optional("skew") ?? "—"), "<code>\(e(String(row.text("payload_sha256").prefix(16))))…</code>",
                ]
            })
        var events: [(Event, Int64, Int64)] = []
        for row in reports.prefix(10) where ["first", "accepted", "gap", "new-epoch"].contains(row.text("outcome")) {
            if let report = try? await queries.report(sha256: row.text("payload_sha256"), hostID: hostID) {
                events += report.events.map { ($0, report.epoch, report.seq) }
            }
        }
        body += page.table(
            caption: page.t("最近 10 份报告中的事件（USB 决定、外联流量等）", "Events in the last 10 reports (USB decisions, flagged flows, …)"),
            header: [page.t("时间", "Time"), page.t("类型", "Type"), page.t("报告", "Report"), page.t("内容", "Data")],
            rows: events.sorted { $0.0.observedAt > $1.0.observedAt }.prefix(200).map { event, epoch, seq in
                [page.time(event.observedAt), e(event.type), "\(epoch):\(seq)", "<pre>\(e(String(decoding: event.data.prettySerialized(), as: UTF8.self)))</pre>"]
            })

        // Chain state.
        body += "<h2 id=\"chain\">\(e(page.t("链状态", "Chain state")))</h2>\n"
        body += "<p>\(e(page.t("链头", "Head"))) \(host.int("epoch")):\(host.int("seq"))，sha256:\(e(host.text("digest")))；\(e(page.t("最近签发", "last issued"))) \(e(host.text("last_issued_at")))，\(e(page.t("最近接收", "last received"))) \(e(host.text("last_received_at")))</p>"
        let store = store
        let gaps = try await Self.offLoop { () throws(MijianError) in try store.gaps(hostID: hostID) }
        body += page.table(
            caption: page.t("缺失的报告", "Missing reports (gaps)"), header: [page.t("纪元", "Epoch"), page.t("从", "From"), page.t("到", "To"), page.t("发现于", "Detected")],
            rows: gaps.map { ["\($0.epoch)", "\($0.fromSeq)", "\($0.toSeq)", page.time($0.detectedAt)] })
        body += page.table(
            caption: page.t("分叉", "Forks"), header: [page.t("纪元:序号", "Epoch:seq"), page.t("接收", "Received"), "sha256"],
            rows: try await queries.forks(hostID).map { row in ["\(row.int("epoch")):\(row.int("seq"))", e(row.text("received_at")), e(row.text("payload_sha256"))] })
        body += page.table(
            caption: page.t("密钥历史", "Key history"),
            header: [page.t("密钥", "Key"), page.t("批准", "Approved"), page.t("吊销", "Revoked"), page.t("原因", "Reason"), page.t("替换", "Replaces"), page.t("备注", "Note")],
            rows: try await queries.keys(hostID).map { row in
                ["<code>\(e(row.text("keyid")))</code>", e(row.text("approved_at")), e(row.optional("revoked_at") ?? "—"), e(row.optional("revoke_reason") ?? "—"), e(row.optional("previous_keyid") ?? "—"), e(row.optional("note") ?? "—")]
            })
        return Self.html(.ok, page.render(title: "\(page.t("计算机", "Machine")) \(hostname)", active: "machines", body: body))
    }

    /// A report's findings, failures and errors first, each with its evidence behind a disclosure.
    func findingsHTML(_ report: Report, _ page: ConsolePage, hostID: String, department: String?, waivers: [Waiver], at: Date) -> String {
        let e = HTMLText.text
        let order: [Status] = [.fail, .error, .notchecked, .informational, .notapplicable, .pass]
        let sorted = report.findings.sorted { (order.firstIndex(of: $0.status) ?? 9, $0.rule.id, $0.subject) < (order.firstIndex(of: $1.status) ?? 9, $1.rule.id, $1.subject) }
        func rows(_ findings: [Finding]) -> [[String]] {
            findings.map { finding in
                var status = page.badge(finding.status.rawValue)
                if finding.status == .fail || finding.status == .error,
                    let waiver = waivers.first(where: { $0.isActive(at: at) && $0.covers(hostID: hostID, department: department, ruleID: finding.rule.id) })
                {
                    status += " " + page.badge("waived") + " <span class=\"muted\">\(e(waiver.reason))；\(e(page.t("批准人", "approver"))) \(e(waiver.approver))；\(e(page.t("至", "until"))) \(page.time(waiver.expiresAt))</span>"
                }
                var evidence = "<details><summary>\(e(page.t("证据", "Evidence"))) (\(finding.evidence.count))</summary>"
                for item in finding.evidence {
                    evidence += "<p><strong>\(e(item.kind))</strong> · \(e(page.t("来源", "source"))) <code>\(e(item.source))</code> · \(page.time(item.observedAt))</p>"
                    evidence += "<pre>\(e(String(decoding: item.data.prettySerialized(), as: UTF8.self)))</pre>"
                }
                evidence += "</details>"
                return [
                    "<code>\(e(finding.rule.id))</code><br>\(e(page.lang.english ? finding.rule.title : finding.rule.titleZH))", e(finding.subject), status,
                    e(finding.statusDetail) + evidence,
                ]
            }
        }
        let header = [page.t("规则", "Rule"), page.t("对象", "Subject"), page.t("结果", "Status"), page.t("说明与证据", "Detail and evidence")]
        let problems = sorted.filter { $0.status != .pass && $0.status != .notapplicable }
        let passes = sorted.filter { $0.status == .pass || $0.status == .notapplicable }
        var out = page.table(caption: page.t("不符合、无法检查与其他", "Failures, errors and others"), header: header, rows: rows(problems), cls: "findings")
        out += "<details><summary>\(e(page.t("通过或不适用的检查", "Passing or not applicable checks"))) (\(passes.count))</summary>"
        out += page.table(caption: nil, header: header, rows: rows(passes))
        out += "</details>"
        return out
    }

    func reportPage(_ hostID: String, epoch: Int64?, seq: Int64?, _ page: ConsolePage) async throws -> Response {
        guard let seq, let digest = try await queries.reportDigest(hostID, epoch: epoch, seq: seq), let report = try await queries.report(sha256: digest, hostID: hostID) else {
            return problem(.notFound, page, title: page.t("未找到", "Not found"), page.t("没有这份报告。", "No such report."))
        }
        let e = HTMLText.text
        var body = "<p><a href=\"/machines/\(HTMLText.url(hostID))\">\(e(report.host.hostname))</a> · \(report.epoch):\(report.seq) · \(e(page.t("签发", "issued"))) \(page.time(report.issuedAt)) · sha256:\(e(digest))</p>"
        body += "<p>\(e(page.t("时间窗", "Window"))) \(page.time(report.windowStart)) – \(page.time(report.windowEnd))；\(e(page.t("上一份", "previous"))) sha256:\(e(report.prevSHA256.isEmpty ? "—" : report.prevSHA256))</p>"
        body += "<h2>\(e(page.t("检查结果", "Findings")))</h2>"
        let department = try await queries.host(hostID, now: now())?.optional("unit")
        body += findingsHTML(report, page, hostID: hostID, department: department, waivers: try await store.consoleWaivers(hostID: hostID, department: department), at: report.issuedAt)
        body += "<h2>\(e(page.t("事件", "Events")))</h2>"
        body += page.table(
            caption: nil, header: [page.t("时间", "Time"), page.t("类型", "Type"), page.t("内容", "Data")],
            rows: report.events.map { [page.time($0.observedAt), e($0.type), "<pre>\(e(String(decoding: $0.data.prettySerialized(), as: UTF8.self)))</pre>"] })
        return Self.html(.ok, page.render(title: "\(page.t("报告", "Report")) \(report.epoch):\(report.seq)", active: "machines", body: body))
    }

    // MARK: - Rules

    func rules(_ page: ConsolePage) async throws -> Response {
        let e = HTMLText.text
        let failing = try await queries.failingRules()
        var body = "<p>\(e(page.t("每条规则当前不符合的计算机（以其最新报告为准），以及本年度首次发现的时间。", "Per rule, the machines failing it in their latest report, and when it was first seen failing this year.")))</p>"
        if failing.isEmpty { body += "<p>\(e(page.t("当前没有不符合的规则。", "No rule is failing now.")))</p>" }
        let at = now()
        for entry in failing {
            let info = UnitRules.rule(entry.rule)
            body += "<h2 id=\"rule-\(HTMLText.attr(entry.rule))\"><code>\(e(entry.rule))</code> \(e(info.map { page.lang.english ? $0.title : $0.titleZH } ?? ""))</h2>"
            body += "<p><a href=\"/machines\(HTMLText.query([("rule", entry.rule)]))\">\(e(page.t("\(entry.total) 台计算机不符合", "\(entry.total) machines failing")))</a></p>"
            body += page.table(
                caption: nil, header: [page.t("主机名", "Host name"), page.t("设备编号", "Asset number"), page.t("首次发现", "First seen"), page.t("持续天数", "Days")],
                rows: entry.machines.map { machine in
                    ["<a href=\"/machines/\(HTMLText.url(machine.hostID))\">\(e(machine.hostname))</a>", e(machine.assetID ?? "—"), page.time(machine.since),
                        "\(CollectorCalendar.days(from: machine.since, to: at))"]
                })
        }
        return Self.html(.ok, page.render(title: page.t("规则", "Rules"), active: "rules", body: body))
    }

    // MARK: - Media

    func media(_ request: Request, _ page: ConsolePage) async throws -> Response {
        let at = now()
        let year = request.uri.queryParameters.get("year").flatMap { Int(String($0)) }.map { min(max($0, 1970), 9999) } ?? CollectorCalendar.year(of: at)
        let e = HTMLText.text
        let result = try await assessmentResult(year: year, at: at)
        let rows = try await store.consoleRead("cannot read the media") { db in
            try Row.fetchAll(db, sql: """
                SELECT m.vendor, m.product, m.serial, m.host_id, m.source, m.first_seen, m.last_seen, m.report_sha256,
                    coalesce(h.hostname, y.hostname) AS hostname, coalesce(h.asset_id, y.asset_id) AS asset_id, y.classification
                FROM media m LEFT JOIN hosts h ON h.host_id = m.host_id LEFT JOIN host_years y ON y.host_id = m.host_id AND y.year = m.year
                WHERE m.year = ? ORDER BY m.vendor, m.product, m.serial, hostname LIMIT 5000
                """, arguments: [year]).map(ConsoleRow.init)
        }
        let ledger = sources.settings.ledger
        var body = "<form method=\"get\" action=\"/media\" class=\"filters\"><label for=\"year\">\(e(page.t("年度", "Year")))<input id=\"year\" name=\"year\" type=\"number\" value=\"\(year)\"></label><button type=\"submit\">\(e(page.t("查看", "Show")))</button></form>"
        body += page.table(
            caption: page.t("介质台账", "The media ledger"),
            header: [page.t("标签", "Label"), "vendor:product", page.t("序列号", "Serial"), page.t("密级", "Classification"), page.t("责任人", "Responsible")],
            rows: ledger.map { [e($0.label ?? "—"), e("\($0.vendor):\($0.product)"), e($0.serial), e($0.classification?.rawValue ?? "—"), e($0.responsible ?? "—")] })
        body += page.table(
            caption: page.t("\(year) 年各计算机上出现的介质", "Media seen on machines in \(year)"),
            header: ["vendor:product", page.t("序列号", "Serial"), page.t("台账", "Ledger"), page.t("主机名", "Host name"), page.t("设备编号", "Asset number"),
                page.t("密级", "Classification"), page.t("来源", "Source"), page.t("首次", "First"), page.t("最近", "Last")],
            rows: rows.map { row in
                let vendor = row.text("vendor")
                let product = row.text("product")
                let serial = row.text("serial")
                let entry = ledger.first { $0.vendor.lowercased() == vendor.lowercased() && $0.product.lowercased() == product.lowercased() && $0.serial == serial }
                return [
                    e("\(vendor):\(product)"), e(serial), entry.map { e($0.label ?? page.t("已登记", "registered")) } ?? page.badge("fail") + " " + e(page.t("未登记", "not registered")),
                    "<a href=\"/machines/\(HTMLText.url(row.text("host_id")))\">\(e(row.optional("hostname") ?? row.text("host_id")))</a>", e(row.optional("asset_id") ?? "—"), e(row.optional("classification") ?? "—"),
                    e(row.text("source")), e(row.text("first_seen")), e(row.text("last_seen")),
                ]
            })
        body += "<h2>\(e(page.t("介质交叉使用（七.9，扣分项 55）", "Media crossing between classified and unclassified machines (七.9, deduction 55)")))</h2>"
        let crossuse = result.unitFindings.filter { $0.rule.id == UnitRules.mediaCrossuse.id }
        for finding in crossuse {
            body += "<p>\(page.badge(finding.status.rawValue)) \(e(page.lang.english ? finding.detailEN : finding.detail))</p>"
            body += page.table(
                caption: nil,
                header: [page.t("主机", "Host"), page.t("规则", "Rule"), page.t("对象", "Subject"), page.t("时间", "Time"), page.t("报告", "Report"), page.t("说明", "Detail")],
                rows: finding.evidence.map { ref in
                    ["<a href=\"/machines/\(HTMLText.url(ref.hostID))\">\(e(ref.hostID.prefix(12) + "…"))</a>", e(ref.ruleID), e(ref.subject), page.time(ref.observedAt),
                        e(ref.reportSHA256.map { "sha256:" + $0.prefix(16) + "…" } ?? "—"), e(ref.detail)]
                })
        }
        if crossuse.isEmpty { body += "<p>\(e(page.t("本年度没有关联结果。", "No correlation result this year.")))</p>" }
        return Self.html(.ok, page.render(title: page.t("介质", "Media"), active: "media", body: body))
    }
}
