import MijianCore

extension AuthChecks {
    // MARK: auth.lockout

    /// pam_faillock in every login stack: `authfail` counts failures, and `preauth` or `authsucc`
    /// refuses a locked account whose password is right; `deny` and `unlock_time` from faillock.conf
    /// unless the line sets them.
    static func lockout(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.authLockout
        let facts = all.auth
        let policy = context.policy.auth
        var findings = context.sourceErrors(rule, facts.sources) { $0 == "/etc/pam.d" || $0.hasPrefix("/etc/pam.d/") || $0 == "/etc/security/faillock.conf" }
        let stacks = loginStacks(facts)
        guard !stacks.isEmpty else {
            findings.append(context.finding(
                rule, subject: "host", status: .error,
                detail: "No PAM login stack could be read under /etc/pam.d, so whether failed logins lock an account is unknown.",
                evidence: [context.evidence("sources", "/etc/pam.d", .array(facts.sources.filter { $0.path.hasPrefix("/etc/pam.d/") }.map(\.json)))]))
            return findings
        }
        var conf: [String: AuthSetting] = [:]
        for setting in facts.faillock { conf[setting.key] = setting }
        for service in stacks {
            let lines = service.stack("auth").filter { $0.module == "pam_faillock" }
            let subject = "pam:\(service.name)"
            let authfail = lines.first { $0.has("authfail") }
            let guardLine = lines.first { $0.has("preauth") || $0.has("authsucc") }
            var data: [(String, JSONValue)] = [("faillock_lines", .array(lines.map(\.json)))]
            guard let authfail, guardLine != nil else {
                let missing = authfail == nil ? "no pam_faillock authfail line (failures are not counted)" : "no pam_faillock preauth or authsucc line (a locked account whose password is right still logs in)"
                findings.append(context.finding(
                    rule, subject: subject, status: .fail,
                    detail: "The \(service.name) auth stack has \(missing), so repeated failed logins do not lock the account.",
                    evidence: [context.evidence("pam", "/etc/pam.d/\(service.name)", .object(data))]))
                continue
            }
            if let other = lines.compactMap({ $0.option("conf") }).first {
                findings.append(context.finding(
                    rule, subject: subject, status: .error,
                    detail: "pam_faillock in \(service.name) reads its settings from \(other) (conf=), which this rule does not read, so deny and unlock_time are unknown.",
                    evidence: [context.evidence("pam", "/etc/pam.d/\(service.name)", .object(data))]))
                continue
            }
            // A line's option overrides faillock.conf; the authfail line decides when to lock.
            func value(_ name: String, default fallback: String) -> (String, String) {
                if let option = authfail.option(name) { return (option, authfail.location) }
                if let option = lines.compactMap({ line in line.option(name).map { ($0, line.location) } }).first { return option }
                if let setting = conf[name] { return (setting.value, setting.location) }
                return (fallback, "pam_faillock's default")
            }
            let deny = value("deny", default: "3")
            let unlock = value("unlock_time", default: "600")
            let denyCount = Int(deny.0)
            let unlockSeconds = unlock.0 == "never" ? 0 : Int(unlock.0)
            data += [("deny", ["value": .string(deny.0), "from": .string(deny.1)]), ("unlock_time", ["value": .string(unlock.0), "from": .string(unlock.1)])]
            var problems: [String] = []
            if let denyCount {
                if denyCount == 0 { problems.append("deny=0 (\(deny.1)) never locks") }
                else if denyCount > policy.maxDeny { problems.append("deny=\(denyCount) (\(deny.1)) allows more than auth.lockout.max_deny \(policy.maxDeny) failures") }
            } else {
                problems.append("deny=\(deny.0) (\(deny.1)) is not a number")
            }
            if let unlockSeconds {
                if unlockSeconds != 0, unlockSeconds < policy.minUnlockSeconds {
                    problems.append("unlock_time=\(unlockSeconds) s (\(unlock.1)) unlocks sooner than auth.lockout.min_unlock_seconds \(policy.minUnlockSeconds)")
                }
            } else {
                problems.append("unlock_time=\(unlock.0) (\(unlock.1)) is not a number")
            }
            let unlockText = unlockSeconds == 0 ? "never unlocked automatically" : "unlocked after \(unlock.0) s"
            findings.append(context.finding(
                rule, subject: subject, status: problems.isEmpty ? .pass : .fail,
                detail: problems.isEmpty
                    ? "The \(service.name) auth stack locks an account after \(deny.0) failed logins (\(deny.1)), \(unlockText) (\(unlock.1)); pam_faillock authfail at \(authfail.location)."
                    : "The \(service.name) auth stack has pam_faillock, but " + problems.joined(separator: "; ") + ".",
                evidence: [context.evidence("pam", "/etc/pam.d/\(service.name)", .object(data))]))
        }
        return findings
    }

    // MARK: auth.accounts

    /// Empty password fields, UID 0 besides root, `nullok` on pam_unix, the interactive accounts
    /// (informational), and sshd against `auth.sshd`.
    static func accounts(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.authAccounts
        let facts = all.auth
        var findings = context.sourceErrors(rule, facts.sources) { path in
            path == "/etc/passwd" || path == "/etc/shadow" || path == "/etc/pam.d" || path.hasPrefix("/etc/pam.d/") || path.hasPrefix("/etc/ssh/") || path.hasPrefix("/etc/systemd/") || path.hasSuffix("/sshd")
        }
        let passwdRead = facts.source("/etc/passwd")?.state == .ok
        let shadowRead = facts.source("/etc/shadow")?.state == .ok
        if facts.source("/etc/passwd")?.state == .missing {
            findings.append(context.finding(
                rule, subject: "/etc/passwd", status: .error, detail: "No /etc/passwd under the audited root: the accounts cannot be listed.",
                evidence: [context.evidence("file", "/etc/passwd", facts.source("/etc/passwd")?.json ?? .null)]))
        }
        if passwdRead, facts.source("/etc/shadow")?.state == .missing {
            findings.append(context.finding(
                rule, subject: "/etc/shadow", status: .error, detail: "No /etc/shadow under the audited root: whether a password field is empty cannot be said.",
                evidence: [context.evidence("file", "/etc/shadow", facts.source("/etc/shadow")?.json ?? .null)]))
        }
        var failed = false
        for account in facts.accounts where account.passwdField == .empty || account.password == .empty {
            failed = true
            let field = account.passwdField == .empty ? "/etc/passwd" : "/etc/shadow"
            findings.append(context.finding(
                rule, subject: "account:\(account.name)", status: .fail,
                detail: "Account \(account.name) (UID \(account.uid), shell \(account.shell)) has an empty password field in \(field): wherever PAM allows nullok it logs in without a password.",
                evidence: [context.evidence("account", field, account.json(interactive: account.hasLoginShell))]))
        }
        for account in facts.accounts where account.uid == 0 && account.name != "root" {
            failed = true
            findings.append(context.finding(
                rule, subject: "account:\(account.name)", status: .fail,
                detail: "Account \(account.name) has UID 0 (\(account.location)): a second superuser besides root.",
                evidence: [context.evidence("account", "/etc/passwd", account.json(interactive: account.hasLoginShell))]))
        }
        var nullok: [PAMLine] = []
        for service in facts.pam {
            for line in service.stack("auth") where line.module == "pam_unix" && (line.has("nullok") || line.has("nullok_secure")) && !nullok.contains(where: { $0.location == line.location }) {
                nullok.append(line)
            }
        }
        if !nullok.isEmpty {
            failed = true
            findings.append(context.finding(
                rule, subject: "pam:nullok", status: .fail,
                detail: "pam_unix accepts an empty password (nullok) at " + nullok.map(\.location).joined(separator: ", ") + ": an account whose password field is empty logs in without one. Remove nullok (Debian's pam-auth-update writes it into common-auth).",
                evidence: [context.evidence("pam", "/etc/pam.d", .array(nullok.map(\.json)))]))
        }
        let people = interactive(facts)
        if passwdRead {
            findings.append(context.finding(
                rule, subject: "accounts", status: .informational,
                detail: "\(people.count) interactive account(s) (root and UID_MIN..UID_MAX with a login shell): " + people.map { "\($0.name) (\($0.uid), password \(shadowRead ? $0.password.rawValue : "unknown"))" }.joined(separator: ", ") + ".",
                evidence: [context.evidence("accounts", "/etc/passwd", .array(people.map { $0.json(interactive: true) }))]))
        }
        findings += sshd(facts, context)
        if !failed, passwdRead, shadowRead {
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "\(facts.accounts.count) accounts examined: no empty password field in /etc/passwd or /etc/shadow, root is the only UID 0, and no pam_unix line in the \(facts.pam.count) PAM service(s) read has nullok.",
                evidence: [context.evidence("sources", "host", .array(facts.sources.filter { ["/etc/passwd", "/etc/shadow"].contains($0.path) || $0.path.hasPrefix("/etc/pam.d/") }.map(\.json)))]))
        }
        return findings
    }

    /// sshd installed or enabled against `auth.sshd`; when allowed, root login and empty passwords.
    static func sshd(_ facts: AuthFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.authAccounts
        let sshd = facts.sshd
        let where_ = ([sshd.binary].compactMap { $0 } + sshd.enabledUnits).joined(separator: ", ")
        guard sshd.present else {
            return [context.finding(
                rule, subject: "sshd", status: .pass,
                detail: "No sshd: neither /usr/sbin/sshd nor an enabled ssh unit under /etc/systemd/system.",
                evidence: [context.evidence("sshd", "host", ["binary": .null, "enabled_units": .strings([])])])]
        }
        var data: [(String, JSONValue)] = [
            ("binary", .optional(sshd.binary)), ("enabled_units", .strings(sshd.enabledUnits)),
            ("settings", .array(sshd.settings.keys.sorted().compactMap { sshd.settings[$0]?.json })), ("match_blocks", .strings(sshd.matchBlocks)),
        ]
        if context.policy.auth.sshd == .forbidden {
            return [context.finding(
                rule, subject: "sshd", status: .fail,
                detail: "sshd is present (\(where_)) and policy \(context.policy.id) forbids it (auth.sshd: forbidden): a standalone classified computer serves no remote logins.",
                evidence: [context.evidence("sshd", "host", .object(data))])]
        }
        guard facts.source("/etc/ssh/sshd_config")?.state == .ok else {
            return [context.finding(
                rule, subject: "sshd", status: .error,
                detail: "sshd is present (\(where_)) but /etc/ssh/sshd_config could not be read, so whether root may log in is unknown.",
                evidence: [context.evidence("sshd", "host", .object(data))])]
        }
        // OpenSSH's defaults when the keyword is absent: prohibit-password, no, yes.
        func setting(_ key: String, _ fallback: String) -> (String, String) {
            sshd.settings[key].map { ($0.value.lowercased(), $0.location) } ?? (fallback, "sshd's default")
        }
        let root = setting("permitrootlogin", "prohibit-password")
        let empty = setting("permitemptypasswords", "no")
        let passwords = setting("passwordauthentication", "yes")
        data.append(("effective", [
            "PermitRootLogin": .string(root.0), "PermitEmptyPasswords": .string(empty.0), "PasswordAuthentication": .string(passwords.0),
        ]))
        var problems: [String] = []
        if root.0 != "no" { problems.append("PermitRootLogin \(root.0) (\(root.1))") }
        if empty.0 != "no" { problems.append("PermitEmptyPasswords \(empty.0) (\(empty.1))") }
        let matchText = sshd.matchBlocks.isEmpty ? "" : " \(sshd.matchBlocks.count) Match block(s) may change these for some connections: " + sshd.matchBlocks.joined(separator: "; ") + "."
        return [context.finding(
            rule, subject: "sshd", status: problems.isEmpty && sshd.matchBlocks.isEmpty ? .pass : .fail,
            detail: problems.isEmpty
                ? "sshd is present (\(where_)) and allowed by policy; root may not log in, empty passwords are refused, PasswordAuthentication \(passwords.0) (\(passwords.1)).\(matchText)"
                : "sshd is present (\(where_)) and lets " + problems.joined(separator: "; ") + "; PasswordAuthentication \(passwords.0) (\(passwords.1)).\(matchText)",
            evidence: [context.evidence("sshd", "/etc/ssh/sshd_config", .object(data))])]
    }
}
