import AsyncHTTPClient
import Foundation
import Hummingbird
import MijianCollector
import MijianCore
import NIOCore
import NIOHTTP1
import Testing

/// A real `serve` (the same application the command runs) with the console's accounts, and a
/// client that follows no redirect and keeps its cookies by hand, so each test sees exactly what
/// the server answered.
struct ConsoleClient: Sendable {
    let base: String
    let client: HTTPClient

    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: String
        var location: String? { headers.first(name: "location") }
        /// name → the whole Set-Cookie line, for each cookie set.
        var setCookies: [String: String] {
            var out: [String: String] = [:]
            for line in headers["set-cookie"] {
                if let name = line.split(separator: "=", maxSplits: 1).first { out[String(name)] = line }
            }
            return out
        }
        func cookie(_ name: String) -> String? {
            guard let line = setCookies[name], let value = line.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last else { return nil }
            return String(value)
        }
    }

    static func with(_ collector: Collector, _ body: @Sendable (ConsoleClient) async throws -> Void) async throws {
        let table = try CollectorSetup.table(nil)
        let sources = AssessmentSources(table: table, answers: .none, settings: UnitSettings(policies: try CollectorSetup.policies([])))
        let box = PortBox()
        let app = try CollectorServer.application(
            collector: collector, sources: sources, host: "127.0.0.1", port: 0, limits: ServerLimits(), logger: TestUnit.logger,
            onRunning: { port in await box.set(port) })
        let server = Task { try await app.run() }
        let port = await box.wait()
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        let console = ConsoleClient(base: "http://127.0.0.1:\(port)", client: client)
        var failure: (any Error)?
        do { try await body(console) } catch { failure = error }
        try await client.shutdown()
        server.cancel()
        _ = await server.result
        if let failure { throw failure }
    }

    func send(_ path: String, method: HTTPMethod = .GET, cookies: [String: String] = [:], form: [(String, String)]? = nil, headers: [(String, String)] = []) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if !cookies.isEmpty { request.headers.add(name: "Cookie", value: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let form {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            let text = form.map { "\(HTMLText.url($0.0))=\(HTMLText.url($0.1))" }.joined(separator: "&")
            request.body = .bytes(ByteBuffer(string: text))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    /// Logs in and returns the session cookie, or the failed answer.
    func login(_ name: String, _ password: String) async throws -> (session: String?, answer: Answer) {
        let page = try await send("/login")
        let token = try #require(page.cookie("mj_login"))
        let answer = try await send("/login", method: .POST, cookies: ["mj_login": token], form: [("csrf", token), ("name", name), ("password", password), ("next", "/")])
        return (answer.cookie("mj_session"), answer)
    }

    /// The overview once it carries the year's projected verdict, computed in the background
    /// (a few milliseconds for a test unit; the page waits for it a little, then says it is under way).
    func overview(_ session: String) async throws -> Answer {
        for _ in 0..<100 {
            let page = try await send("/", cookies: ["mj_session": session])
            if page.status != 200 || (page.body.contains("预估结论") && !page.body.contains("正在")) { return page }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await send("/", cookies: ["mj_session": session])
    }

    /// The CSRF token of the session, read from a page's form.
    func csrf(_ session: String) async throws -> String {
        let page = try await send("/waivers", cookies: ["mj_session": session])
        let marker = "name=\"csrf\" value=\""
        let start = try #require(page.body.range(of: marker))
        return String(page.body[start.upperBound...].prefix { $0 != "\"" })
    }
}

@Suite("The console on a real serve: accounts, CSRF, roles, escaping, waivers", .serialized)
struct ConsoleTests {
    static let officerPassword = "correct horse battery"
    static let viewerPassword = "viewer password 1"

    static func unit() async throws -> ConsoleUnit.Filled {
        let filled = try await ConsoleUnit.fill()
        let store = try filled.collector.store
        try store.addUser(name: "officer", role: .officer, passwordHash: ConsolePasswords.hash(officerPassword, cost: 4), at: Date())
        try store.addUser(name: "viewer", role: .viewer, passwordHash: ConsolePasswords.hash(viewerPassword, cost: 4), at: Date())
        return filled
    }

    @Test func unauthenticatedRequestsGoToTheLoginPage() async throws {
        let filled = try await Self.unit()
        try await ConsoleClient.with(filled.collector) { client in
            for path in ["/", "/machines?state=failing", "/rules", "/media", "/assessment", "/waivers", "/enrolment", "/machines/abc"] {
                let answer = try await client.send(path)
                #expect(answer.status == 303, "\(path)")
                #expect(answer.location == "/login?next=" + HTMLText.url(path), "\(path)")
                #expect(answer.headers.first(name: "content-security-policy")?.contains("default-src 'none'") == true)
            }
            // A forged session id is no session.
            let forged = try await client.send("/", cookies: ["mj_session": String(repeating: "a", count: 64)])
            #expect(forged.status == 303)
            // The report API keeps its own authentication and is not redirected.
            #expect(try await client.send("/healthz").status == 200)
            // A POST without a session changes nothing and is redirected too.
            #expect(try await client.send("/waivers", method: .POST, form: [("rule", "usb.storage")]).status == 303)
        }
    }

    @Test func loginSetsAStrictSessionCookieAndRefusesWrongPasswords() async throws {
        let filled = try await Self.unit()
        try await ConsoleClient.with(filled.collector) { client in
            let (none, wrong) = try await client.login("officer", "wrong password!")
            #expect(none == nil)
            #expect(wrong.status == 401)
            #expect(try await client.login("nobody", "wrong password!").answer.status == 401)
            let (session, answer) = try await client.login("officer", Self.officerPassword)
            #expect(answer.status == 303)
            #expect(answer.location == "/")
            let line = try #require(answer.setCookies["mj_session"])
            for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] { #expect(line.contains(attribute), "\(attribute)") }
            let id = try #require(session)
            #expect(id.count == 64)
            let overview = try await client.send("/", cookies: ["mj_session": id])
            #expect(overview.status == 200)
            #expect(overview.headers.first(name: "content-security-policy") == "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
            #expect(overview.headers.first(name: "x-content-type-options") == "nosniff")
            #expect(overview.headers.first(name: "referrer-policy") == "same-origin")
            // The one form anyone may post is read within 4 KiB.
            let huge = try await client.send("/login", method: .POST, form: [("name", "officer"), ("password", String(repeating: "x", count: 8000))])
            #expect(huge.status == 413)
            // A login form without the token its page set is refused.
            let noToken = try await client.send("/login", method: .POST, form: [("name", "officer"), ("password", Self.officerPassword)])
            #expect(noToken.status == 403)
            #expect(noToken.cookie("mj_session") == nil)
            // Logging out ends the session on the server, not only in the browser.
            let csrf = try await client.csrf(id)
            #expect(try await client.send("/logout", method: .POST, cookies: ["mj_session": id], form: [("csrf", csrf)]).status == 303)
            #expect(try await client.send("/", cookies: ["mj_session": id]).status == 303)
            // A disabled account cannot log in.
            try filled.collector.store.disableUser(name: "viewer", at: Date())
            #expect(try await client.login("viewer", Self.viewerPassword).session == nil)
        }
    }

    @Test func loginsAreRateLimitedPerAccount() async throws {
        let filled = try await Self.unit()
        try await ConsoleClient.with(filled.collector) { client in
            for _ in 0..<5 { #expect(try await client.login("officer", "not the password").answer.status == 401) }
            // The sixth try is refused without looking at the password, even the right one.
            let (session, answer) = try await client.login("officer", Self.officerPassword)
            #expect(answer.status == 429)
            #expect(session == nil)
            // Another account from the same address is still allowed (the address limit is higher).
            #expect(try await client.login("viewer", Self.viewerPassword).session != nil)
        }
    }

    @Test func formsWithoutTheSessionsCSRFTokenAreRefused() async throws {
        let filled = try await Self.unit()
        let hostID = try #require(filled.machines["hostile"]?.host.hostID)
        try await ConsoleClient.with(filled.collector) { client in
            let session = try #require(try await client.login("officer", Self.officerPassword).session)
            let form = [("host", hostID), ("rule", "usb.storage"), ("reason", "r"), ("approver", "a"), ("expires", Self.nextMonth)]
            let missing = try await client.send("/waivers", method: .POST, cookies: ["mj_session": session], form: form)
            #expect(missing.status == 403)
            #expect(missing.body.contains("CSRF"))
            let wrong = try await client.send("/waivers", method: .POST, cookies: ["mj_session": session], form: form + [("csrf", String(repeating: "0", count: 64))])
            #expect(wrong.status == 403)
            // Another site's page posting with the right token (stolen somehow) is refused by its Origin.
            let csrf = try await client.csrf(session)
            let foreign = try await client.send(
                "/waivers", method: .POST, cookies: ["mj_session": session], form: form + [("csrf", csrf)], headers: [("Origin", "https://evil.example")])
            #expect(foreign.status == 403)
            #expect(try filled.collector.store.waivers().isEmpty)
            #expect(try filled.collector.store.waiverLog().isEmpty)
        }
    }

    @Test func viewersCannotChangeAnything() async throws {
        let filled = try await Self.unit()
        let hostile = try #require(filled.machines["hostile"])
        try await ConsoleClient.with(filled.collector) { client in
            let session = try #require(try await client.login("viewer", Self.viewerPassword).session)
            let csrf = try await client.csrf(session)
            let cookies = ["mj_session": session]
            let waiver = try await client.send(
                "/waivers", method: .POST, cookies: cookies,
                form: [("csrf", csrf), ("host", hostile.host.hostID), ("rule", "usb.storage"), ("reason", "r"), ("approver", "a"), ("expires", Self.nextMonth)])
            #expect(waiver.status == 403)
            let revoke = try await client.send("/enrolment/revoke", method: .POST, cookies: cookies, form: [("csrf", csrf), ("keyid", hostile.key.keyid), ("reason", "x"), ("confirm", "yes")])
            #expect(revoke.status == 403)
            #expect(try await client.send("/enrolment/confirm?action=approve&sha=x", cookies: cookies).status == 403)
            #expect(try filled.collector.store.key(hostile.key.keyid)?.isActive == true)
            #expect(try filled.collector.store.waivers().isEmpty)
            // Viewers read every page, and are offered no form that changes anything.
            let enrolment = try await client.send("/enrolment", cookies: cookies)
            #expect(enrolment.status == 200)
            #expect(!enrolment.body.contains("action=\"/enrolment/revoke\""))
            #expect(!(try await client.send("/waivers", cookies: cookies).body.contains("action=\"/waivers\"")))
        }
    }

    @Test func workstationTextIsEscapedOnEveryPage() async throws {
        let filled = try await Self.unit()
        let hostile = try #require(filled.machines["hostile"])
        try await ConsoleClient.with(filled.collector) { client in
            let session = try #require(try await client.login("officer", Self.officerPassword).session)
            let cookies = ["mj_session": session]
            let year = CollectorCalendar.year(of: Date())
            let pages = [
                "/", "/machines", "/machines?state=failing", "/machines?q=" + HTMLText.url("<script>"), "/machines/\(hostile.host.hostID)",
                "/machines/\(hostile.host.hostID)/reports/0/2", "/rules", "/media", "/assessment?year=\(year)", "/waivers?host=" + HTMLText.url(ConsoleUnit.hostileHost),
                "/enrolment",
            ]
            for path in pages {
                let page = try await client.send(path, cookies: cookies)
                #expect(page.status == 200, "\(path)")
                for raw in ["<script", "<img", "href=\"javascript:", "<b>x</b>"] {
                    #expect(!page.body.contains(raw), "\(path) holds \(raw)")
                }
                // No event-handler attribute inside any tag. Quoted attribute values are taken out first:
                // escaped text may spell a handler out, as text (a `"` inside a value is always `&quot;`).
                let unquoted = page.body.replacingOccurrences(of: #""[^"]*""#, with: "\"\"", options: .regularExpression)
                #expect(unquoted.range(of: #"<[^<>]*\son[a-z]+\s*="#, options: .regularExpression) == nil, "\(path) has a handler attribute")
            }
            let machine = try await client.send("/machines/\(hostile.host.hostID)", cookies: cookies)
            #expect(machine.body.contains("&lt;script&gt;alert(&quot;host&quot;)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;javascript:alert(1)"))
            #expect(machine.body.contains("&lt;script&gt;alert(&#39;usb&#39;)&lt;/script&gt;"))
            let list = try await client.send("/machines?state=failing", cookies: cookies)
            #expect(list.body.contains(ConsoleUnit.failingAsset))
            // Downloads are escaped for what opens them.
            let md = try await client.send("/assessment?year=\(year)&format=md", cookies: cookies)
            #expect(md.status == 200)
            #expect(md.headers.first(name: "content-disposition")?.hasPrefix("attachment;") == true)
            #expect(!md.body.contains("<script") && !md.body.contains("<img"))
            let html = try await client.send("/assessment?year=\(year)&format=html", cookies: cookies)
            #expect(!html.body.contains("<script") && !html.body.contains("<img"))
            let json = try await client.send("/assessment?year=\(year)&format=json", cookies: cookies)
            #expect((try? JSONParser().parse(Array(json.body.utf8))) != nil)
            // The language switch only ever goes back to this site.
            let away = try await client.send("/lang?to=en&back=" + HTMLText.url("//evil.example/x"))
            #expect(away.location == "/")
            let english = try await client.send("/lang?to=en&back=%2Fmachines")
            #expect(english.location == "/machines")
            #expect(try await client.send("/machines", cookies: cookies.merging(["mj_lang": "en"]) { a, _ in a }).body.contains("Failing since"))
        }
    }

    @Test func overviewCountsEachState() async throws {
        let filled = try await Self.unit()
        try await ConsoleClient.with(filled.collector) { client in
            let session = try #require(try await client.login("viewer", Self.viewerPassword).session)
            let page = try await client.overview(session)
            for (state, count) in [("compliant", 2), ("failing", 2), ("error", 1), ("silent", 1), ("never", 1), ("revoked", 1)] {
                #expect(page.body.contains("<a class=\"card s-\(state)\" href=\"/machines?state=\(state)\"><span class=\"n\">\(count)</span>"), "\(state)")
            }
            // Deduction 55: the medium crossed from a classified to an unclassified machine.
            #expect(page.body.contains("<td>55</td>"))
            let failing = try await client.send("/machines?state=failing", cookies: ["mj_session": session])
            #expect(failing.body.contains("ws-fin-01"))
            #expect(failing.body.contains(ConsoleUnit.failingAsset))
            #expect(!failing.body.contains("ws-office-01"))
            // Failing since: the first failing report of the run (three days ago), not the last.
            let hostile = try #require(filled.machines["hostile"])
            let reports = try filled.collector.store.reports(hostID: hostile.host.hostID)
            let firstFailing = try #require(reports.first { $0["seq"]?.intValue == 1 }?["issued_at"]?.stringValue)
            #expect(failing.body.contains(firstFailing))
            let byRule = try await client.send("/machines?rule=net.internet-route", cookies: ["mj_session": session])
            #expect(byRule.body.contains("ws-fin-01") && !byRule.body.contains(ConsoleUnit.failingAsset))
            let department = try await client.send("/machines?department=" + HTMLText.url("财务处"), cookies: ["mj_session": session])
            #expect(department.body.contains("ws-fin-01") && department.body.contains("pc-fin-02") && !department.body.contains("ws-office-01"))
            let unclassified = try await client.send("/machines?classification=" + HTMLText.url("非密"), cookies: ["mj_session": session])
            #expect(unclassified.body.contains("pc-fin-02") && !unclassified.body.contains("ws-fin-01"))
            let erring = try await client.send("/machines?state=error", cookies: ["mj_session": session])
            #expect(erring.body.contains("ws-error") && !erring.body.contains("ws-fin-01"))
            let never = try await client.send("/machines?state=never", cookies: ["mj_session": session])
            #expect(never.body.contains("ws-new") && !never.body.contains("ws-fin-01"))
            let search = try await client.send("/machines?q=JSJ-10", cookies: ["mj_session": session])
            #expect(search.body.contains("ws-fin-01") && !search.body.contains("ws-office-01"))
        }
    }

    /// A state card's count on the overview.
    static func card(_ page: String, _ state: String) -> Int? {
        let marker = "<a class=\"card s-\(state)\" href=\"/machines?state=\(state)\"><span class=\"n\">"
        guard let start = page.range(of: marker) else { return nil }
        return Int(page[start.upperBound...].prefix { $0.isNumber })
    }

    @Test func overviewFollowsEachReportAndSaysWhenItsProjectionWasComputed() async throws {
        let filled = try await Self.unit()
        let office = try #require(filled.machines["office"])
        let silent = try #require(filled.machines["silent"])
        try await ConsoleClient.with(filled.collector) { client in
            let session = try #require(try await client.login("viewer", Self.viewerPassword).session)
            let before = try await client.overview(session)
            #expect(Self.card(before.body, "compliant") == 2 && Self.card(before.body, "failing") == 2 && Self.card(before.body, "silent") == 1)
            // The projection says when it was computed, from which reports.
            #expect(before.body.contains("评估计算于"))
            // The office machine now fails and the silent one reports again: the next page counts both at once.
            let at = Date()
            let route = office.finding(RuleCatalogue.internetRoute, "route 0.0.0.0/0", .fail, "a default route reaches the internet", at: at)
            let failing = try office.next(findings: office.cleanFindings(at: at).filter { $0.rule.id != RuleCatalogue.internetRoute.id } + [route], issuedAt: at)
            _ = try await filled.collector.submit(failing, source: "test", receivedAt: at).get()
            _ = try await filled.collector.submit(try silent.next(findings: silent.cleanFindings(at: at), issuedAt: at), source: "test", receivedAt: at).get()
            let after = try await client.send("/", cookies: ["mj_session": session])
            #expect(Self.card(after.body, "failing") == 3, "the new failure is counted on the first page after it")
            #expect(Self.card(after.body, "silent") == 0)
            #expect(Self.card(after.body, "compliant") == 2)
            // The projection shown is either computed after the reports or says it is being computed again.
            #expect(after.body.contains("正在重新计算") || after.body.contains("正在计算") || after.body.contains("评估计算于"))
            let current = try await client.overview(session)
            #expect(!current.body.contains("正在重新计算"))
            #expect(Self.card(current.body, "failing") == 3)
        }
    }

    @Test func waiversShowInTheAssessmentWithoutHidingTheFindingAndAreLogged() async throws {
        let filled = try await Self.unit()
        let hostile = try #require(filled.machines["hostile"])
        try await ConsoleClient.with(filled.collector) { client in
            let session = try #require(try await client.login("officer", Self.officerPassword).session)
            let csrf = try await client.csrf(session)
            let cookies = ["mj_session": session]
            let recorded = try await client.send(
                "/waivers", method: .POST, cookies: cookies,
                form: [("csrf", csrf), ("host", ConsoleUnit.failingAsset), ("rule", "usb.storage"), ("reason", "test stick awaiting registration"),
                    ("approver", "李四"), ("expires", Self.nextMonth)])
            #expect(recorded.status == 200)
            let waivers = try filled.collector.store.waivers()
            #expect(waivers.count == 1)
            #expect(waivers.first?.hostID == hostile.host.hostID)
            let year = CollectorCalendar.year(of: Date())
            let assessment = try await client.send("/assessment?year=\(year)", cookies: cookies)
            #expect(assessment.body.contains("test stick awaiting registration"))
            #expect(assessment.body.contains("s-waived"))
            // The finding is still there, failing, and the item still does not meet.
            #expect(assessment.body.contains("usb 0781:5583"))
            #expect(assessment.body.contains("class=\"badge s-fail\""))
            let md = try await client.send("/assessment?year=\(year)&format=md", cookies: cookies)
            #expect(md.body.contains("test stick awaiting registration"))
            // An expiry in the past or beyond a year is refused.
            let past = try await client.send(
                "/waivers", method: .POST, cookies: cookies,
                form: [("csrf", csrf), ("host", ConsoleUnit.failingAsset), ("rule", "usb.storage"), ("reason", "r"), ("approver", "a"), ("expires", "2000-01-01")])
            #expect(past.status == 400)
            // Withdrawing is logged beside the recording; the log only grows.
            let id = try #require(waivers.first?.id)
            #expect(try await client.send("/waivers/\(id)/withdraw", method: .POST, cookies: cookies, form: [("csrf", csrf), ("reason", "registered")]).status == 200)
            let log = try filled.collector.store.waiverLog()
            #expect(log.map(\.action) == ["withdrawn", "recorded"])
            #expect(try filled.collector.store.waivers().first?.isActive(at: Date()) == false)
            #expect(try await client.send("/assessment?year=\(year)", cookies: cookies).body.contains("s-withdrawn"))
        }
    }

    @Test func enrolmentIsApprovedAndRevokedAfterConfirmation() async throws {
        let filled = try await Self.unit()
        let newcomer = try TestMachine(index: 990, hostname: "ws-newcomer", assetID: "JSJ-990", classification: .confidential)
        try await ConsoleClient.with(filled.collector) { client in
            let session = try #require(try await client.login("officer", Self.officerPassword).session)
            let csrf = try await client.csrf(session)
            let cookies = ["mj_session": session]
            let request = String(decoding: try newcomer.enrolmentRequest(at: Date()), as: UTF8.self)
            #expect(try await client.send("/enrolment/submit", method: .POST, cookies: cookies, form: [("csrf", csrf), ("request", request)]).status == 200)
            let pending = try filled.collector.store.pendingEnrolments()
            #expect(pending.count == 1)
            let sha = try #require(pending.first?.sha256)
            let confirm = try await client.send("/enrolment/confirm?action=approve&sha=\(sha)", cookies: cookies)
            #expect(confirm.body.contains("ws-newcomer"))
            #expect(try filled.collector.store.key(newcomer.key.keyid) == nil)
            let approved = try await client.send("/enrolment/approve", method: .POST, cookies: cookies, form: [("csrf", csrf), ("sha", sha), ("note", "ticket 17")])
            #expect(approved.status == 200)
            #expect(try filled.collector.store.key(newcomer.key.keyid)?.isActive == true)
            #expect(try filled.collector.store.pendingEnrolments().isEmpty)
            // Revoking asks first; only the confirmed post revokes.
            let ask = try await client.send("/enrolment/revoke", method: .POST, cookies: cookies, form: [("csrf", csrf), ("keyid", newcomer.key.keyid), ("reason", "lost")])
            #expect(ask.body.contains("confirm"))
            #expect(try filled.collector.store.key(newcomer.key.keyid)?.isActive == true)
            let done = try await client.send(
                "/enrolment/revoke", method: .POST, cookies: cookies, form: [("csrf", csrf), ("keyid", newcomer.key.keyid), ("reason", "lost"), ("confirm", "yes")])
            #expect(done.status == 200)
            #expect(try filled.collector.store.key(newcomer.key.keyid)?.isActive == false)
        }
    }

    @Test func aMachineShowsItsEvidenceTimelineChainAndFindingsAsOfADate() async throws {
        let filled = try await Self.unit()
        let hostile = try #require(filled.machines["hostile"])
        let revoked = try #require(filled.machines["revoked"])
        try await ConsoleClient.with(filled.collector) { client in
            let session = try #require(try await client.login("viewer", Self.viewerPassword).session)
            let cookies = ["mj_session": session]
            let page = try await client.send("/machines/\(hostile.host.hostID)", cookies: cookies)
            #expect(page.body.contains("当前检查结果"))
            #expect(page.body.contains("<details><summary>证据 (1)</summary>"))
            #expect(page.body.contains("/sys/bus/usb/devices/1-1/"))
            #expect(page.body.contains("usb.arrival"))
            #expect(page.body.contains("0:2") && page.body.contains("0:1") && page.body.contains("0:0"))
            #expect(page.body.contains("class=\"badge s-fail\""))
            // Four days ago only the clean first report was in force: no failing finding then.
            let day = String(RFC3339.string(from: Date().addingTimeInterval(-4 * 86_400)).prefix(10))
            let then = try await client.send("/machines/\(hostile.host.hostID)?asof=\(day)", cookies: cookies)
            #expect(then.body.contains("\(day) 当时的检查结果"))
            #expect(then.body.contains("/reports/0/0\""))
            #expect(!then.body.contains("class=\"badge s-fail\""))
            // Before the first report, nothing was in force.
            #expect(try await client.send("/machines/\(hostile.host.hostID)?asof=2000-01-01", cookies: cookies).body.contains("该时刻没有已存储的报告"))
            #expect(try await client.send("/machines/\(hostile.host.hostID)?asof=yesterday", cookies: cookies).status == 400)
            // Key history: the revoked key with its reason.
            let old = try await client.send("/machines/\(revoked.host.hostID)", cookies: cookies)
            #expect(old.body.contains("disk replaced"))
            #expect(old.body.contains("s-revoked"))
            #expect(try await client.send("/machines/nope", cookies: cookies).status == 404)
        }
    }

    static var nextMonth: String { String(RFC3339.string(from: Date().addingTimeInterval(30 * 86_400)).prefix(10)) }
}

/// Fills a store with `ConsoleUnit` for the browser run: `MIJIAN_CONSOLE_STORE=DIR` names where
/// (the browser script passes it); without it the unit goes to a temporary directory. Either way the
/// store is checked to hold what the browser test expects.
@Suite("The console's browser unit")
struct ConsoleStoreFixture {
    @Test func fillsTheUnitStore() async throws {
        let directory = ProcessInfo.processInfo.environment["MIJIAN_CONSOLE_STORE"]
        let filled = try await ConsoleUnit.fill(directory: directory)
        let store = try filled.collector.store
        if directory != nil {
            try store.addUser(name: "officer", role: .officer, passwordHash: ConsolePasswords.hash(ConsoleTests.officerPassword, cost: 4), at: Date())
            try store.addUser(name: "viewer", role: .viewer, passwordHash: ConsolePasswords.hash(ConsoleTests.viewerPassword, cost: 4), at: Date())
        }
        #expect(try store.hosts().count == 7)
        #expect(try store.hosts().contains { $0.hostname == ConsoleUnit.hostileHost && $0.lastFailCount == 1 })
    }
}
