import Foundation
import Hummingbird
import HummingbirdCore
import MijianCore
import NIOCore
import Synchronization

/// How the console's sessions behave.
public struct ConsoleOptions: Sendable {
    /// How long a session lasts after login.
    public var sessionLifetime: TimeInterval = 8 * 3600
    /// Seconds an assessment computed for a page stays current while no report arrives (it reads
    /// the whole year; silence depends on the time).
    public var assessmentCacheSeconds: TimeInterval = 60
    /// How long the overview waits for an assessment being computed before it answers with the
    /// one it has (saying when that was computed) or without one.
    public var overviewWait: Duration = .milliseconds(100)
    /// Failed logins allowed per account and per address in the window.
    public var loginFailuresPerAccount = 5
    /// Failed logins allowed per client address in the window.
    public var loginFailuresPerAddress = 20
    /// The window of the login throttle, in seconds.
    public var loginWindow: TimeInterval = 900

    /// The defaults: 8-hour sessions, a minute's cache, 5 failures per account and 20 per address in 15 minutes.
    public init() {}
}

/// The secrecy office's web console, served under `/` beside the report API: server-rendered
/// pages, no scripts, every asset from the collector itself.
public final class Console: Sendable {
    let collector: Collector
    let sources: AssessmentSources
    let options: ConsoleOptions
    let now: @Sendable () -> Date
    let throttle: LoginThrottle
    let queries: ConsoleQueries
    let keeper: AssessmentKeeper
    let states: MachineStates

    let store: CollectorStore

    init(collector: Collector, store: CollectorStore, sources: AssessmentSources, options: ConsoleOptions, now: @escaping @Sendable () -> Date) {
        self.collector = collector
        self.store = store
        self.sources = sources
        self.options = options
        self.now = now
        throttle = LoginThrottle(perAccount: options.loginFailuresPerAccount, perAddress: options.loginFailuresPerAddress, window: options.loginWindow)
        queries = ConsoleQueries(store: store, silentAfterDays: sources.settings.silentAfterDays)
        keeper = AssessmentKeeper(maxAge: options.assessmentCacheSeconds) { year, at in
            try await Console.computeAssessment(store: store, sources: sources, year: year, at: at)
        }
        states = MachineStates(store: store)
    }

    /// Adds the console's routes to the collector's router; the console reads the SQLite store,
    /// so over another backend it is not served.
    public static func register(
        on router: Router<CollectorRequestContext>, collector: Collector, sources: AssessmentSources, options: ConsoleOptions = ConsoleOptions(),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        guard let store = collector.sqlite else { return }
        let console = Console(collector: collector, store: store, sources: sources, options: options, now: now)
        // The machines' states and this year's assessment are read in the background from the
        // start, so that the first visit finds them (the overview never waits for more than
        // `overviewWait`, and says how old what it shows is).
        Task {
            let at = now()
            guard let marker = try? await console.storeMarker() else { return }
            console.keeper.prepare(year: CollectorCalendar.year(of: at), marker: marker, now: at)
            _ = try? await console.states.counts(now: at, silentAfterDays: sources.settings.silentAfterDays)
        }
        router.get("/console.css") { _, _ in
            var headers = Self.securityHeaders
            headers[.contentType] = "text/css; charset=utf-8"
            headers[.cacheControl] = "max-age=3600"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: ConsoleStyle.css)))
        }
        router.get("/lang") { request, _ in console.switchLanguage(request) }
        router.get("/login") { request, context in try await console.loginPage(request, context) }
        router.post("/login") { request, context in try await console.login(request, context) }
        router.post("/logout") { request, context in try await console.guarded(request, context, officer: false) { session, _, _ in try await console.logout(request, session) } }
        router.get("/") { request, context in try await console.guarded(request, context, officer: false) { _, page, _ in try await console.overview(request, page) } }
        router.get("/machines") { request, context in try await console.guarded(request, context, officer: false) { _, page, _ in try await console.machines(request, page) } }
        router.get("/machines/{host}") { request, context in
            try await console.guarded(request, context, officer: false) { session, page, _ in
                try await console.machine(context.parameters.get("host") ?? "", request, page, session)
            }
        }
        router.get("/machines/{host}/reports/{epoch}/{seq}") { request, context in
            try await console.guarded(request, context, officer: false) { _, page, _ in
                try await console.reportPage(
                    context.parameters.get("host") ?? "", epoch: context.parameters.get("epoch").flatMap { Int64(String($0)) },
                    seq: context.parameters.get("seq").flatMap { Int64(String($0)) }, page)
            }
        }
        router.get("/rules") { request, context in try await console.guarded(request, context, officer: false) { _, page, _ in try await console.rules(page) } }
        router.get("/media") { request, context in try await console.guarded(request, context, officer: false) { _, page, _ in try await console.media(request, page) } }
        router.get("/assessment") { request, context in
            try await console.guarded(request, context, officer: false) { _, page, _ in try await console.assessment(request, page) }
        }
        router.get("/waivers") { request, context in
            try await console.guarded(request, context, officer: false) { session, page, _ in
                try await console.waivers(page, session, prefillHost: request.uri.queryParameters.get("host").map { String($0) })
            }
        }
        router.post("/waivers") { request, context in
            try await console.guarded(request, context, officer: true) { session, page, form in try await console.recordWaiver(form, page, session) }
        }
        router.post("/waivers/{id}/withdraw") { request, context in
            try await console.guarded(request, context, officer: true) { session, page, form in
                try await console.withdrawWaiver(context.parameters.get("id").flatMap { Int64(String($0)) }, form, page, session)
            }
        }
        router.get("/enrolment") { request, context in
            try await console.guarded(request, context, officer: false) { session, page, _ in try await console.enrolment(page, session, message: nil) }
        }
        router.post("/enrolment/submit") { request, context in
            try await console.guarded(request, context, officer: true) { session, page, form in try await console.submitEnrolment(form, page, session) }
        }
        router.get("/enrolment/confirm") { request, context in
            try await console.guarded(request, context, officer: true) { session, page, _ in try await console.confirmEnrolment(request, page, session) }
        }
        router.post("/enrolment/approve") { request, context in
            try await console.guarded(request, context, officer: true) { session, page, form in try await console.decideEnrolment(form, approve: true, page, session) }
        }
        router.post("/enrolment/reject") { request, context in
            try await console.guarded(request, context, officer: true) { session, page, form in try await console.decideEnrolment(form, approve: false, page, session) }
        }
        router.post("/enrolment/revoke") { request, context in
            try await console.guarded(request, context, officer: true) { session, page, form in try await console.revokeKey(form, page, session) }
        }
    }

    // MARK: - Responses

    /// Sent with every console response: a strict CSP (no script at all, styles and images only
    /// from the collector, forms only to it, never framed), no MIME sniffing, no referrer.
    static let securityHeaders: HTTPFields = {
        var fields: HTTPFields = [
            .contentSecurityPolicy: "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            .xContentTypeOptions: "nosniff",
        ]
        for (name, value) in [("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY")] {
            if let name = Field.Name(name) { fields[name] = value }
        }
        return fields
    }()

    /// One header field (HTTPTypes' `HTTPField`, which Hummingbird does not re-export).
    typealias Field = HTTPFields.Element

    static func html(_ status: HTTPResponse.Status, _ text: String, headers extra: [(Field.Name, String)] = []) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        for (name, value) in extra { headers.append(Field(name: name, value: value)) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String, headers extra: [(Field.Name, String)] = []) -> Response {
        var headers = securityHeaders
        headers[.location] = location
        headers[.cacheControl] = "no-store"
        for (name, value) in extra { headers.append(Field(name: name, value: value)) }
        return Response(status: .seeOther, headers: headers)
    }

    static func download(_ bytes: [UInt8], type: String, filename: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "no-store"
        // The name is ours (a year and an extension), never a workstation's text.
        headers[.contentDisposition] = "attachment; filename=\"\(filename)\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A page saying what went wrong, with the status.
    func problem(_ status: HTTPResponse.Status, _ page: ConsolePage, title: String, _ message: String) -> Response {
        Self.html(status, page.render(title: title, active: "", body: "<p class=\"error-box\" role=\"alert\">\(HTMLText.text(message))</p>"))
    }

    // MARK: - Requests

    static let sessionCookie = "mj_session"
    static let loginCookie = "mj_login"
    static let languageCookie = "mj_lang"

    func language(_ request: Request) -> ConsoleLanguage {
        let query = request.uri.queryParameters
        if let lang = query.get("lang") { return ConsoleLanguage(english: lang == "en") }
        return ConsoleLanguage(english: request.cookies[Self.languageCookie]?.value == "en")
    }

    /// The request's path and query, to come back to after login or a language switch.
    static func here(_ request: Request) -> String {
        let path = request.uri.path
        let query = request.uri.query.map { "?" + $0 } ?? ""
        return path + query
    }

    /// A path of this site only: starts with one `/`, no backslash, no scheme, no control characters.
    static func localPath(_ text: String?) -> String {
        guard let text, text.hasPrefix("/"), !text.hasPrefix("//"), !text.contains("\\"),
            !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else { return "/" }
        return text
    }

    func currentSession(_ request: Request) async throws(MijianError) -> (id: String, session: ConsoleSession)? {
        guard let id = request.cookies[Self.sessionCookie]?.value, id.utf8.count == 64 else { return nil }
        guard let session = try await store.session(idSHA256: ConsoleTokens.digest(id), at: now()) else { return nil }
        return (id, session)
    }

    static func address(_ context: CollectorRequestContext) -> String { ClientAddress.key(context.remoteAddress) }

    /// Runs `handler` for a logged-in account: no session → 303 to the login page; a POST must
    /// come from this site (Origin) and carry the session's CSRF token; an officer's action
    /// refuses a viewer (403).
    func guarded(
        _ request: Request, _ context: CollectorRequestContext, officer: Bool,
        _ handler: (ConsoleSession, ConsolePage, ConsoleForm) async throws -> Response
    ) async throws -> Response {
        let lang = language(request)
        guard let (_, session) = try await currentSession(request) else {
            let next = request.method == .get ? Self.here(request) : "/"
            return Self.redirect("/login" + HTMLText.query([("next", next)]))
        }
        let page = ConsolePage(lang: lang, session: session, path: Self.here(request))
        var form = ConsoleForm(query: "")
        if request.method == .post {
            if let origin = request.headers[.origin], let host = request.head.authority,
                origin != "https://\(host)", origin != "http://\(host)"
            {
                return problem(.forbidden, page, title: page.t("拒绝", "Refused"), page.t("请求不是来自本站点。", "The request did not come from this site."))
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: ConsoleForm.maxBytes)
            } catch {
                return problem(.contentTooLarge, page, title: page.t("拒绝", "Refused"), page.t("表单过大。", "The form is too large."))
            }
            form = ConsoleForm(Array(body.readableBytesView))
            guard let token = form["csrf"], ConsoleTokens.equal(token, session.csrf) else {
                return problem(
                    .forbidden, page, title: page.t("拒绝", "Refused"),
                    page.t("表单缺少有效的防伪令牌（CSRF），未执行任何操作。请重新打开页面后再提交。", "The form has no valid anti-forgery (CSRF) token; nothing was done. Open the page again and resubmit."))
            }
        }
        if officer, session.user.role != .officer {
            return problem(.forbidden, page, title: page.t("无权限", "Not allowed"), page.t("只读账户不能更改任何内容。", "A viewer account cannot change anything."))
        }
        return try await handler(session, page, form)
    }

    // MARK: - Login

    func switchLanguage(_ request: Request) -> Response {
        let query = request.uri.queryParameters
        let english = query.get("to") == "en"
        let back = Self.localPath(query.get("back").map { String($0) })
        return Self.redirect(back, headers: [(.setCookie, "\(Self.languageCookie)=\(english ? "en" : "zh"); Path=/; Max-Age=31536000; Secure; SameSite=Strict")])
    }

    func loginPage(_ request: Request, _ context: CollectorRequestContext, message: String? = nil, status: HTTPResponse.Status = .ok, next: String? = nil) async throws -> Response {
        let lang = language(request)
        let page = ConsolePage(lang: lang, session: nil, path: Self.here(request))
        let token = ConsoleTokens.random()
        let next = Self.localPath(next ?? request.uri.queryParameters.get("next").map { String($0) })
        let e = HTMLText.text
        let a = HTMLText.attr
        var body = ""
        if let message { body += "<p class=\"error-box\" role=\"alert\">\(e(message))</p>" }
        body += """
            <form method="post" action="/login" class="stack">
            <input type="hidden" name="csrf" value="\(a(token))">
            <input type="hidden" name="next" value="\(a(next))">
            <label for="name">\(e(page.t("账户", "Account")))<input id="name" name="name" autocomplete="username" required autofocus></label>
            <label for="password">\(e(page.t("口令", "Password")))<input id="password" name="password" type="password" autocomplete="current-password" required></label>
            <button type="submit">\(e(page.t("登录", "Log in")))</button>
            </form>
            """
        return Self.html(
            status, page.render(title: page.t("登录", "Log in"), active: "", body: body),
            headers: [(.setCookie, "\(Self.loginCookie)=\(token); Path=/login; HttpOnly; Secure; SameSite=Strict")])
    }

    func login(_ request: Request, _ context: CollectorRequestContext) async throws -> Response {
        let lang = language(request)
        let body: ByteBuffer
        do {
            // Anyone may post here: a small bound, outside the report API's body budget.
            body = try await request.body.collect(upTo: ConsoleForm.maxLoginBytes)
        } catch {
            return try await loginPage(request, context, message: lang.t("表单过大。", "The form is too large."), status: .contentTooLarge)
        }
        let form = ConsoleForm(Array(body.readableBytesView))
        let next = form["next"]
        // Login CSRF: the form's token must match the cookie the login page set.
        guard let token = form["csrf"], let cookie = request.cookies[Self.loginCookie]?.value, ConsoleTokens.equal(token, cookie) else {
            return try await loginPage(request, context, message: lang.t("登录表单已失效，请重试。", "The login form expired; try again."), status: .forbidden, next: next)
        }
        let name = form["name"] ?? ""
        let password = form["password"] ?? ""
        let address = Self.address(context)
        let at = now()
        if let wait = throttle.wait(account: name, address: address, now: at) {
            return try await loginPage(
                request, context, message: lang.t("登录失败次数过多，请在 \(wait) 秒后再试。", "Too many failed logins; try again in \(wait) seconds."),
                status: .tooManyRequests, next: next)
        }
        let credentials = try await store.credentials(name: name)
        let good = await ConsolePasswords.verify(password, hash: credentials?.hash ?? ConsolePasswords.decoy)
        guard good, let user = credentials?.user, !user.disabled else {
            throttle.fail(account: name, address: address, now: at)
            return try await loginPage(request, context, message: lang.t("账户或口令不正确。", "Wrong account or password."), status: .unauthorized, next: next)
        }
        throttle.succeed(account: name)
        let id = ConsoleTokens.random()
        let expires = at.addingTimeInterval(options.sessionLifetime)
        try await store.createSession(idSHA256: ConsoleTokens.digest(id), user: user.name, csrf: ConsoleTokens.random(), at: at, expiresAt: expires, address: address)
        return Self.redirect(Self.localPath(next), headers: [
            (.setCookie, "\(Self.sessionCookie)=\(id); Path=/; Max-Age=\(Int(options.sessionLifetime)); HttpOnly; Secure; SameSite=Strict"),
            (.setCookie, "\(Self.loginCookie)=; Path=/login; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
        ])
    }

    func logout(_ request: Request, _ session: ConsoleSession) async throws -> Response {
        if let id = request.cookies[Self.sessionCookie]?.value { try await store.deleteSession(idSHA256: ConsoleTokens.digest(id)) }
        return Self.redirect("/login", headers: [(.setCookie, "\(Self.sessionCookie)=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")])
    }
}

