import Foundation
import Hummingbird
import MijianCore
import MijianEvidence

extension Console {
    /// A pending request as the page shows it: verified, or why it does not verify. The
    /// registry is read through the store's blocking API, so off the request's thread.
    func describe(_ pending: PendingEnrolment) async throws(MijianError) -> (request: EnrolmentRequest?, problem: String?) {
        let store = store
        let outcome = try await Self.offLoop { () throws(MijianError) -> Described in
            do throws(VerificationFailure) {
                return Described(request: try EnvelopeVerifier(keys: RegistryKeys(store: store)).verifyEnrolment(pending.request).request, problem: nil)
            } catch {
                return Described(request: nil, problem: "\(error.reason.rawValue): \(error.detail)")
            }
        }
        return (outcome.request, outcome.problem)
    }

    struct Described: Sendable {
        var request: EnrolmentRequest?
        var problem: String?
    }

    func enrolment(_ page: ConsolePage, _ session: ConsoleSession, message: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        let e = HTMLText.text
        let officer = session.user.role == .officer
        var body = message.map { "<p class=\"notice\" role=\"status\">\(e($0))</p>" } ?? ""
        let pending = try await store.consolePendingEnrolments()
        body += "<h2>\(e(page.t("待审批的注册请求", "Pending enrolment requests")))</h2>"
        body += page.table(
            caption: nil,
            header: [page.t("主机名", "Host name"), page.t("设备编号", "Asset number"), page.t("密级", "Classification"), page.t("责任人", "Responsible"),
                page.t("密钥", "Key"), page.t("提交", "Submitted"), page.t("校验", "Check"), ""],
            rows: try await described(pending).map { item, request, problem in
                let action = officer
                    ? "<a href=\"/enrolment/confirm\(HTMLText.query([("action", "approve"), ("sha", item.sha256)]))\">\(e(page.t("批准…", "Approve…")))</a> · <a href=\"/enrolment/confirm\(HTMLText.query([("action", "reject"), ("sha", item.sha256)]))\">\(e(page.t("拒绝…", "Reject…")))</a>"
                    : ""
                return [
                    e(request?.host.hostname ?? "—"), e(request?.host.assetID ?? "—"), e(request?.host.classification?.rawValue ?? "—"), e(request?.host.responsible ?? "—"),
                    "<code>\(e(request?.keyid ?? "—"))</code>", "\(page.time(item.submittedAt)) \(e(item.submittedBy))",
                    problem.map { page.badge("fail") + " " + e($0) } ?? page.badge("pass"), action,
                ]
            })
        if officer {
            body += "<h2>\(e(page.t("提交注册请求", "Submit an enrolment request")))</h2>"
            body += "<form method=\"post\" action=\"/enrolment/submit\" class=\"stack\">\(page.csrfField)<label for=\"request\">\(e(page.t("粘贴 mijian enroll 生成的请求文件内容", "Paste the request file `mijian enroll` wrote")))<textarea id=\"request\" name=\"request\" rows=\"6\" required></textarea></label><button type=\"submit\">\(e(page.t("提交", "Submit")))</button></form>"
        } else {
            body += "<p class=\"muted\">\(e(page.t("只读账户：不能批准、拒绝或吊销。", "Viewer account: you cannot approve, reject or revoke.")))</p>"
        }
        let store = store
        let keys = try await Self.offLoop { () throws(MijianError) in try store.keys() }
        body += "<h2>\(e(page.t("已注册的密钥", "Enrolled keys")))</h2>"
        body += page.table(
            caption: nil,
            header: [page.t("主机名", "Host name"), page.t("设备编号", "Asset number"), page.t("密钥", "Key"), page.t("批准", "Approved"), page.t("状态", "State"), ""],
            rows: keys.reversed().map { key in
                var action = ""
                if officer, key.isActive {
                    action = "<form method=\"post\" action=\"/enrolment/revoke\">\(page.csrfField)<input type=\"hidden\" name=\"keyid\" value=\"\(HTMLText.attr(key.keyid))\"><label for=\"r-\(HTMLText.attr(String(key.keyid.suffix(12))))\">\(e(page.t("吊销理由", "Why revoke")))<input id=\"r-\(HTMLText.attr(String(key.keyid.suffix(12))))\" name=\"reason\" required></label><button type=\"submit\" class=\"danger\">\(e(page.t("吊销…", "Revoke…")))</button></form>"
                }
                let state = key.revokedAt.map { page.badge("revoked") + " " + page.time($0) + " " + e(key.revokeReason ?? "") } ?? page.badge("compliant").replacingOccurrences(of: e(page.stateName("compliant")), with: e(page.t("有效", "active")))
                return ["<a href=\"/machines/\(HTMLText.url(key.hostID))\">\(e(key.hostname))</a>", e(key.assetID ?? "—"), "<code>\(e(key.keyid))</code>", page.time(key.approvedAt), state, action]
            })
        return Self.html(status, page.render(title: page.t("注册", "Enrolment"), active: "enrolment", body: body))
    }

    /// Each pending request with what its verification says.
    private func described(_ pending: [PendingEnrolment]) async throws(MijianError) -> [(PendingEnrolment, EnrolmentRequest?, String?)] {
        var out: [(PendingEnrolment, EnrolmentRequest?, String?)] = []
        for item in pending {
            let (request, problem) = try await describe(item)
            out.append((item, request, problem))
        }
        return out
    }

    func submitEnrolment(_ form: ConsoleForm, _ page: ConsolePage, _ session: ConsoleSession) async throws -> Response {
        guard let text = form["request"], !text.isEmpty, text.utf8.count <= 1 << 20 else {
            return try await enrolment(page, session, message: page.t("请粘贴请求文件。", "Paste a request file."), status: .badRequest)
        }
        let bytes = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8) + [0x0A]
        let sha = try await store.submitEnrolment(bytes, by: session.user.name, at: now())
        return try await enrolment(page, session, message: page.t("已提交请求 \(sha.prefix(16))…，等待批准。", "Request \(sha.prefix(16))… submitted; it waits for approval."))
    }

    /// The confirmation page before an approval or a rejection.
    func confirmEnrolment(_ request: Request, _ page: ConsolePage, _ session: ConsoleSession) async throws -> Response {
        let query = request.uri.queryParameters
        let approve = query.get("action") != "reject"
        let e = HTMLText.text
        guard let sha = query.get("sha"), let pending = try await store.consolePendingEnrolments().first(where: { $0.sha256 == sha }) else {
            return problem(.notFound, page, title: page.t("未找到", "Not found"), page.t("没有这份待审批的请求。", "No such pending request."))
        }
        let (enrolmentRequest, problemText) = try await describe(pending)
        var body = "<p>\(e(approve ? page.t("确认批准以下注册请求？批准后该密钥签名的报告将被接收。", "Approve this request? Reports signed by the key will be accepted.") : page.t("确认拒绝以下注册请求？", "Reject this request?")))</p>"
        body += "<dl>"
        for (key, value) in [
            (page.t("主机名", "Host name"), enrolmentRequest?.host.hostname ?? "—"), (page.t("设备编号", "Asset number"), enrolmentRequest?.host.assetID ?? "—"),
            (page.t("密级", "Classification"), enrolmentRequest?.host.classification?.rawValue ?? "—"), (page.t("责任人", "Responsible"), enrolmentRequest?.host.responsible ?? "—"),
            (page.t("密钥", "Key"), enrolmentRequest?.keyid ?? "—"), (page.t("替换密钥", "Replaces"), enrolmentRequest?.previousKeyID ?? "—"),
            (page.t("校验", "Check"), problemText ?? page.t("签名有效", "signature verifies")),
        ] {
            body += "<dt>\(e(key))</dt><dd>\(e(value))</dd>"
        }
        body += "</dl>"
        body += "<form method=\"post\" action=\"/enrolment/\(approve ? "approve" : "reject")\" class=\"stack\">\(page.csrfField)<input type=\"hidden\" name=\"sha\" value=\"\(HTMLText.attr(sha))\">"
        body += "<label for=\"note\">\(e(page.t("备注（谁批准、依据）", "Note (who approved, on what ground)")))<input id=\"note\" name=\"note\" required></label>"
        body += "<button type=\"submit\"\(approve ? "" : " class=\"danger\"")>\(e(approve ? page.t("确认批准", "Confirm approval") : page.t("确认拒绝", "Confirm rejection")))</button> <a href=\"/enrolment\">\(e(page.t("取消", "Cancel")))</a></form>"
        return Self.html(.ok, page.render(title: approve ? page.t("批准注册", "Approve enrolment") : page.t("拒绝注册", "Reject enrolment"), active: "enrolment", body: body))
    }

    func decideEnrolment(_ form: ConsoleForm, approve: Bool, _ page: ConsolePage, _ session: ConsoleSession) async throws -> Response {
        guard let sha = form.text("sha"), let pending = try await store.consolePendingEnrolments().first(where: { $0.sha256 == sha }) else {
            return try await enrolment(page, session, message: page.t("没有这份待审批的请求。", "No such pending request."), status: .notFound)
        }
        guard let note = form.text("note") else {
            return try await enrolment(page, session, message: page.t("请填写备注。", "Give a note."), status: .badRequest)
        }
        let at = now()
        guard approve else {
            try await store.decideEnrolment(sha256: sha, decision: "rejected", by: session.user.name, at: at)
            return try await enrolment(page, session, message: page.t("已拒绝。", "Rejected."))
        }
        let record: KeyRecord
        do {
            let store = store
            let name = session.user.name
            record = try await Self.offLoop { () throws(MijianError) in try Enrolment.approve(requestBytes: pending.request, note: "\(note) (\(name))", store: store, now: at) }
        } catch {
            return try await enrolment(page, session, message: error.message, status: .badRequest)
        }
        try await store.decideEnrolment(sha256: sha, decision: "approved", by: session.user.name, at: at)
        return try await enrolment(page, session, message: page.t("已批准 \(record.hostname) 的密钥 \(record.keyid)。", "Approved \(record.keyid) for \(record.hostname)."))
    }

    func revokeKey(_ form: ConsoleForm, _ page: ConsolePage, _ session: ConsoleSession) async throws -> Response {
        guard let keyid = form.text("keyid"), let reason = form.text("reason") else {
            return try await enrolment(page, session, message: page.t("请写明吊销理由。", "Say why the key is revoked."), status: .badRequest)
        }
        // The revoke is confirmed on a page of its own: the first post shows it, the second (with confirm=yes) does it.
        guard form["confirm"] == "yes" else {
            let e = HTMLText.text
            let a = HTMLText.attr
            let store = store
            let key = try await Self.offLoop { () throws(MijianError) in try store.key(keyid) }
            var body = "<p>\(e(page.t("确认吊销以下密钥？吊销后它签名的报告都将被拒收，不能恢复。", "Revoke this key? Reports it signs will be refused from now on; this cannot be undone.")))</p>"
            body += "<dl><dt>\(e(page.t("主机名", "Host name")))</dt><dd>\(e(key?.hostname ?? "—"))</dd><dt>\(e(page.t("密钥", "Key")))</dt><dd><code>\(e(keyid))</code></dd><dt>\(e(page.t("理由", "Reason")))</dt><dd>\(e(reason))</dd></dl>"
            body += "<form method=\"post\" action=\"/enrolment/revoke\">\(page.csrfField)<input type=\"hidden\" name=\"keyid\" value=\"\(a(keyid))\"><input type=\"hidden\" name=\"reason\" value=\"\(a(reason))\"><input type=\"hidden\" name=\"confirm\" value=\"yes\"><button type=\"submit\" class=\"danger\">\(e(page.t("确认吊销", "Confirm revocation")))</button> <a href=\"/enrolment\">\(e(page.t("取消", "Cancel")))</a></form>"
            return Self.html(.ok, page.render(title: page.t("吊销密钥", "Revoke a key"), active: "enrolment", body: body))
        }
        do {
            let (store, at, name) = (store, now(), session.user.name)
            try await Self.offLoop { () throws(MijianError) in try store.revoke(keyid: keyid, at: at, reason: "\(reason) (\(name))") }
        } catch {
            return try await enrolment(page, session, message: error.message, status: .badRequest)
        }
        return try await enrolment(page, session, message: page.t("已吊销 \(keyid)。", "Revoked \(keyid)."))
    }
}
