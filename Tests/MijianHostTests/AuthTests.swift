import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// The identity rules on the fixture hosts (`scripts/fixtures/make-auth-hosts.py`): Debian 12 as
/// installed, a machine hardened to the 秘密 rule, and a 机密 machine with a USB key.
@Suite("auth.* on fixture hosts")
struct AuthTests {
    static func facts(_ name: String, root: HostRoot? = nil) -> AuditFacts {
        HostProbe.observe(root: root ?? FixtureHosts.root(name), live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate, collecting: [.auth])
    }

    static func findings(
        _ name: String, rule: String, classification: Classification?, policy: Policy? = nil, root: HostRoot? = nil
    ) throws -> [Finding] {
        let context = CheckContext(policy: try policy ?? TestSupport.defaultPolicy(), hostID: "auth", observedAt: TestSupport.fixedDate, classification: classification)
        return AuditChecks.evaluate(facts(name, root: root), context: context, only: [rule])
    }

    static func finding(_ findings: [Finding], _ subject: String) -> Finding? { findings.first { $0.subject == subject } }

    static func summary(_ findings: [Finding]) -> String { findings.map { "\($0.subject): \($0.status) — \($0.statusDetail)" }.joined(separator: "\n") }

    static func policy(_ replace: String, with text: String) throws -> Policy {
        let yaml = EmbeddedPolicies.classifiedWorkstation
        #expect(yaml.contains(replace))
        return try Policy.parse(Array(yaml.replacingOccurrences(of: replace, with: text).utf8), file: "auth.yaml")
    }

    // MARK: probe

    @Test("PAM includes are followed; pwquality.conf.d and the line's options are read; shadow keeps no hash")
    func probe() {
        let facts = Self.facts("auth-mimi-hardened").auth
        let login = facts.service("login")
        #expect(login?.stack("auth").map(\.module).contains("pam_faillock") == true)
        #expect(login?.stack("auth").first { $0.module == "pam_faillock" }?.location == "/etc/pam.d/common-auth:17")
        #expect(facts.service("passwd")?.stack("password").map(\.module) == ["pam_pwquality", "pam_unix", "pam_deny", "pam_permit"])
        #expect(facts.pwquality.last { $0.key == "minlen" }?.location == "/etc/security/pwquality.conf.d/50-mijian.conf:2")
        #expect(facts.loginDef("PASS_MAX_DAYS")?.value == "30")
        let zhangsan = facts.accounts.first { $0.name == "zhangsan" }
        #expect(zhangsan?.password == .usable && zhangsan?.maxDays == 30)
        #expect(facts.accounts.first { $0.name == "root" }?.password == .locked)
        // Nothing of a hash survives the probe.
        #expect(!"\(facts)".contains("$y$"))
    }

    @Test("the compiled dconf database is read as dconf reads it, and matches the keyfiles dconf compile read")
    func gvdb() throws {
        let screen = Self.facts("auth-mimi-hardened").auth.screen
        #expect(screen.profileDatabases == ["local"])
        let local = try #require(screen.databases.first)
        #expect(local.compiled)
        #expect(Set(local.values.map { "\($0.key)=\($0.value)" }) == [
            "/org/gnome/desktop/session/idle-delay=uint32 600", "/org/gnome/desktop/screensaver/lock-enabled=true",
            "/org/gnome/desktop/screensaver/lock-delay=uint32 0",
        ])
        #expect(Set(local.locks) == Set(local.keyfileLocks) && local.locks.count == 3)
        #expect(Set(local.keyfileValues.map(\.value)) == Set(local.values.map(\.value)))
        let ukui = try #require(Self.facts("auth-jimi-token").auth.screen.databases.first)
        #expect(ukui.values.first { $0.key == "/org/ukui/screensaver/idle-delay" }?.value == "10")
        // A file cut short or not a database is refused with why, never read as empty.
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: FixtureHosts.root("auth-mimi-hardened").real("/etc/dconf/db/local"))))
        #expect(throws: GVDBFile.Malformed.self) { try GVDBFile(Array(bytes.prefix(100))).read() }
        #expect(throws: GVDBFile.Malformed.self) { try GVDBFile(Array("not a database at all, just text".utf8)).read() }
    }

    @Test("the installed dconf compile's output parses to exactly the keyfiles and locks it was given")
    func liveDconfCompile() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-dconf")
        let keyfiles = directory.appendingPathComponent("site.d")
        try FileManager.default.createDirectory(at: keyfiles.appendingPathComponent("locks"), withIntermediateDirectories: true)
        let values = [
            "/org/gnome/desktop/session/idle-delay": "uint32 4294967295", "/org/gnome/desktop/screensaver/lock-enabled": "false",
            "/org/gnome/desktop/screensaver/lock-delay": "uint32 0", "/org/ukui/screensaver/idle-delay": "-1",
            "/org/ukui/screensaver/mode": "'blank-only'", "/com/deepin/dde/power/line-power-lock-delay": "600",
        ]
        var text = ""
        for (key, value) in values.sorted(by: { $0.key < $1.key }) {
            let slash = key.lastIndex(of: "/") ?? key.startIndex
            text += "[\(key[key.index(after: key.startIndex)..<slash])]\n\(key[key.index(after: slash)...])=\(value)\n\n"
        }
        try text.write(to: keyfiles.appendingPathComponent("00-test"), atomically: true, encoding: .utf8)
        let locks = ["/org/gnome/desktop/session/idle-delay", "/com/deepin/dde/power/line-power-lock-delay"]
        try (locks.joined(separator: "\n") + "\n").write(to: keyfiles.appendingPathComponent("locks/test"), atomically: true, encoding: .utf8)
        let compile = Process()
        compile.executableURL = URL(fileURLWithPath: "/usr/bin/dconf")
        compile.arguments = ["compile", directory.appendingPathComponent("site").path, keyfiles.path]
        try compile.run()
        compile.waitUntilExit()
        #expect(compile.terminationStatus == 0)
        let database = try GVDBFile(Array(Data(contentsOf: directory.appendingPathComponent("site")))).read()
        #expect(Dictionary(uniqueKeysWithValues: database.values.map { ($0.key, $0.value) }) == values)
        #expect(Set(database.locks) == Set(locks))
    }

    @Test("sshd: Include is read where it stands and the first value wins")
    func sshdFirstMatch() {
        let sshd = Self.facts("auth-jimi-token").auth.sshd
        #expect(sshd.binary == "/usr/sbin/sshd")
        #expect(sshd.enabledUnits == ["/etc/systemd/system/multi-user.target.wants/ssh.service"])
        #expect(sshd.settings["permitrootlogin"]?.location == "/etc/ssh/sshd_config.d/50-mijian.conf:1")
        #expect(sshd.settings["usepam"]?.value == "yes")
    }

    // MARK: auth.password

    @Test("the same machine meets 秘密 and fails 机密")
    func levels() throws {
        let mimi = try Self.findings("auth-mimi-hardened", rule: "auth.password", classification: .confidential)
        #expect(mimi.count == 1 && mimi.first?.status == .pass, "\(Self.summary(mimi))")
        #expect(mimi.first?.statusDetail.contains("Shortest password accepted: 8") == true)
        let jimi = try Self.findings("auth-mimi-hardened", rule: "auth.password", classification: .secret)
        #expect(jimi.count == 1 && jimi.first?.status == .fail, "\(Self.summary(jimi))")
        let detail = jimi.first?.statusDetail ?? ""
        #expect(detail.contains("no mandatory token module"))
        #expect(detail.contains("passwords of 8 characters are accepted (needs 10)"))
        #expect(detail.contains("PASS_MAX_DAYS is 30 (needs ≤ 7)"))
    }

    @Test("Debian as installed fails 秘密: passwords never expire")
    func debianDefault() throws {
        let findings = try Self.findings("auth-debian-default", rule: "auth.password", classification: .confidential)
        #expect(findings.first?.status == .fail, "\(Self.summary(findings))")
        #expect(findings.first?.statusDetail.contains("PASS_MAX_DAYS is 99999") == true)
        #expect(findings.first?.statusDetail.contains("zhangsan (99999)") == true)
    }

    @Test("a mandatory USB key with a password of 6 meets 机密 and 绝密")
    func token() throws {
        for level in [Classification.secret, .topSecret] {
            let findings = try Self.findings("auth-jimi-token", rule: "auth.password", classification: level)
            #expect(findings.first?.status == .pass, "\(level): \(Self.summary(findings))")
            #expect(findings.first?.statusDetail.contains("mandatory second factors: token") == true)
        }
    }

    @Test("no classification in host.yaml: judged at the strictest level, and it says so")
    func unclassifiedHost() throws {
        let findings = try Self.findings("auth-mimi-hardened", rule: "auth.password", classification: nil)
        #expect(findings.first?.status == .fail)
        #expect(findings.first?.statusDetail.contains("Judged at 绝密 (host.yaml names no classification") == true, "\(Self.summary(findings))")
    }

    @Test("an unreadable /etc/shadow is an error, never a pass")
    func shadowUnreadable() throws {
        let root = FixtureHosts.root("auth-mimi-hardened").refusing("/etc/shadow")
        let password = try Self.findings("auth-mimi-hardened", rule: "auth.password", classification: .confidential, root: root)
        #expect(password.contains { $0.subject == "/etc/shadow" && $0.status == .error }, "\(Self.summary(password))")
        #expect(!password.contains { $0.status == .pass })
        #expect(Self.finding(password, "host")?.status == .error)
        let accounts = try Self.findings("auth-mimi-hardened", rule: "auth.accounts", classification: .confidential, root: root)
        #expect(accounts.contains { $0.subject == "/etc/shadow" && $0.status == .error })
        #expect(Self.finding(accounts, "host") == nil, "no overall pass without the shadow file: \(Self.summary(accounts))")
    }

    // MARK: auth.lockout

    @Test("pam_faillock: missing fails, faillock.conf and line options decide deny and unlock_time")
    func lockout() throws {
        let debian = try Self.findings("auth-debian-default", rule: "auth.lockout", classification: .confidential)
        #expect(Self.finding(debian, "pam:login")?.status == .fail, "\(Self.summary(debian))")
        let mimi = try Self.findings("auth-mimi-hardened", rule: "auth.lockout", classification: .confidential)
        #expect(Self.finding(mimi, "pam:login")?.status == .pass, "\(Self.summary(mimi))")
        #expect(Self.finding(mimi, "pam:login")?.statusDetail.contains("after 5 failed logins (/etc/security/faillock.conf:") == true)
        let jimi = try Self.findings("auth-jimi-token", rule: "auth.lockout", classification: .secret)
        #expect(jimi.filter { $0.status == .pass }.map(\.subject).sorted() == ["pam:login", "pam:sshd"], "\(Self.summary(jimi))")
        #expect(Self.finding(jimi, "pam:login")?.statusDetail.contains("never unlocked automatically") == true)
        let strict = try Self.policy("lockout: {max_deny: 5,", with: "lockout: {max_deny: 4,")
        let failing = try Self.findings("auth-mimi-hardened", rule: "auth.lockout", classification: .confidential, policy: strict)
        #expect(Self.finding(failing, "pam:login")?.status == .fail)
        let refused = try Self.findings(
            "auth-mimi-hardened", rule: "auth.lockout", classification: .confidential,
            root: FixtureHosts.root("auth-mimi-hardened").refusing("/etc/security/faillock.conf"))
        #expect(refused.contains { $0.subject == "/etc/security/faillock.conf" && $0.status == .error }, "\(Self.summary(refused))")
    }

    // MARK: auth.accounts

    @Test("nullok fails; a hardened machine passes; sshd fails when forbidden and passes when allowed and closed to root")
    func accounts() throws {
        let debian = try Self.findings("auth-debian-default", rule: "auth.accounts", classification: .confidential)
        #expect(Self.finding(debian, "pam:nullok")?.status == .fail, "\(Self.summary(debian))")
        #expect(Self.finding(debian, "pam:nullok")?.statusDetail.contains("/etc/pam.d/common-auth:17") == true)
        #expect(Self.finding(debian, "accounts")?.statusDetail.contains("2 interactive account(s)") == false)
        #expect(Self.finding(debian, "accounts")?.statusDetail.hasPrefix("3 interactive account(s)") == true)
        let mimi = try Self.findings("auth-mimi-hardened", rule: "auth.accounts", classification: .confidential)
        #expect(!mimi.contains { $0.status == .fail || $0.status == .error }, "\(Self.summary(mimi))")
        #expect(Self.finding(mimi, "host")?.status == .pass)
        #expect(Self.finding(mimi, "sshd")?.status == .pass)
        let jimi = try Self.findings("auth-jimi-token", rule: "auth.accounts", classification: .secret)
        #expect(Self.finding(jimi, "sshd")?.status == .fail)
        let allowed = try Self.policy("sshd: forbidden", with: "sshd: allowed")
        let open = try Self.findings("auth-jimi-token", rule: "auth.accounts", classification: .secret, policy: allowed)
        #expect(Self.finding(open, "sshd")?.status == .pass, "\(Self.summary(open))")
    }

    @Test("an empty shadow field and a second UID 0 fail")
    func emptyAndSuperuser() throws {
        var facts = Self.facts("auth-mimi-hardened")
        facts.auth.accounts.append(LocalAccount(name: "guest", uid: 1002, shell: "/bin/bash", passwdField: .unknown, password: .empty, maxDays: nil, location: "/etc/passwd:12"))
        facts.auth.accounts.append(LocalAccount(name: "toor", uid: 0, shell: "/bin/bash", passwdField: .unknown, password: .locked, maxDays: nil, location: "/etc/passwd:13"))
        let context = CheckContext(policy: try TestSupport.defaultPolicy(), hostID: "auth", observedAt: TestSupport.fixedDate, classification: .confidential)
        let findings = AuditChecks.evaluate(facts, context: context, only: ["auth.accounts"])
        #expect(Self.finding(findings, "account:guest")?.status == .fail)
        #expect(Self.finding(findings, "account:toor")?.status == .fail)
        #expect(Self.finding(findings, "host") == nil)
    }

    // MARK: auth.screenlock

    @Test("GNOME with no dconf profile fails, a session whose lock is not read is an error, no TMOUT fails")
    func screenDefault() throws {
        let findings = try Self.findings("auth-debian-default", rule: "auth.screenlock", classification: .confidential)
        let gnome = Self.finding(findings, "desktop:gnome")
        #expect(gnome?.status == .fail, "\(Self.summary(findings))")
        #expect(gnome?.statusDetail.contains("is not locked in a system database") == true)
        #expect(gnome?.statusDetail.contains("there is no dconf profile") == true)
        #expect(Self.finding(findings, "desktop:other")?.status == .error)
        #expect(Self.finding(findings, "desktop:other")?.statusDetail.contains("xfce.desktop") == true)
        #expect(Self.finding(findings, "console:TMOUT")?.status == .fail)
    }

    @Test("GNOME and UKUI locked by compiled databases pass, and TMOUT read-only passes")
    func screenLocked() throws {
        let mimi = try Self.findings("auth-mimi-hardened", rule: "auth.screenlock", classification: .confidential)
        #expect(mimi.map(\.status) == [.pass, .pass], "\(Self.summary(mimi))")
        let jimi = try Self.findings("auth-jimi-token", rule: "auth.screenlock", classification: .secret)
        #expect(Self.finding(jimi, "desktop:ukui")?.status == .pass, "\(Self.summary(jimi))")
        // UKUI counts minutes: 10 minutes is more than a 300 s limit.
        let strict = try Self.policy("max_idle_seconds: 900", with: "max_idle_seconds: 300")
        let failing = try Self.findings("auth-jimi-token", rule: "auth.screenlock", classification: .secret, policy: strict)
        #expect(Self.finding(failing, "desktop:ukui")?.statusDetail.contains("idle-delay is 10 (600 s; at most 300 s)") == true, "\(Self.summary(failing))")
    }

    @Test("an unreadable compiled database is an error; keyfiles that were never compiled are not in force")
    func screenUnread() throws {
        let refused = try Self.findings(
            "auth-mimi-hardened", rule: "auth.screenlock", classification: .confidential,
            root: FixtureHosts.root("auth-mimi-hardened").refusing("/etc/dconf/db/local"))
        #expect(Self.finding(refused, "desktop:gnome")?.status == .error, "\(Self.summary(refused))")
        #expect(refused.contains { $0.subject == "/etc/dconf/db/local" && $0.status == .error })

        let copy = try TestSupport.temporaryDirectory("mijian-auth")
        let source = FixtureHosts.root("auth-mimi-hardened").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/cp")
        process.arguments = ["-a", source + "/.", copy.path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        try FileManager.default.removeItem(at: copy.appendingPathComponent("etc/dconf/db/local"))
        let uncompiled = try Self.findings("auth-mimi-hardened", rule: "auth.screenlock", classification: .confidential, root: HostRoot(path: copy.path))
        let gnome = Self.finding(uncompiled, "desktop:gnome")
        #expect(gnome?.status == .fail, "\(Self.summary(uncompiled))")
        #expect(gnome?.statusDetail.contains("not compiled into /etc/dconf/db/local (run `dconf update`)") == true)
    }
}
