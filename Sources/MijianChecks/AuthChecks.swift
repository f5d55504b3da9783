import MijianCore

/// Identity authentication and access (七.6): `auth.password`, `auth.lockout`, `auth.accounts`,
/// `auth.screenlock`.
public enum AuthChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.authPassword, needs: [.auth], evaluate: password),
        Check(rule: RuleCatalogue.authLockout, needs: [.auth], evaluate: lockout),
        Check(rule: RuleCatalogue.authAccounts, needs: [.auth], evaluate: accounts),
        Check(rule: RuleCatalogue.authScreenlock, needs: [.auth], evaluate: screenlock),
    ]

    // MARK: what the stacks say

    /// The services a person logs in through, as read; Debian's `common-auth` when none of them is
    /// present (every login service includes it).
    static func loginStacks(_ facts: AuthFacts) -> [PAMService] {
        let present = facts.pam.filter { AuthFacts.loginServices.contains($0.name) }
        if !present.isEmpty { return present }
        return facts.service("common-auth").map { [$0] } ?? []
    }

    /// The factors every login stack makes mandatory, and the ones some stack offers as an alternative.
    static func factors(_ stacks: [PAMService]) -> (mandatory: Set<AuthFactor>, alternatives: [(AuthFactor, PAMLine)]) {
        var mandatory: Set<AuthFactor>?
        var alternatives: [(AuthFactor, PAMLine)] = []
        for service in stacks {
            var here: Set<AuthFactor> = []
            for line in service.stack("auth") {
                guard let factor = AuthFactor.of(module: line.module) else { continue }
                if line.isMandatory { here.insert(factor) } else { alternatives.append((factor, line)) }
            }
            mandatory = mandatory.map { $0.intersection(here) } ?? here
        }
        return (mandatory ?? [], alternatives)
    }

    /// What the password-change stack enforces.
    struct PasswordQuality {
        /// The shortest password the stack accepts.
        var minLength: Int
        /// Character classes a password must mix.
        var classes: Int
        /// How both were derived, for evidence and sentences.
        var derivation: [String]
        /// The settings that decided it.
        var data: [(String, JSONValue)]
    }

    /// The password stack (`passwd`, or `common-password`) and what it enforces: pam_pwquality (or
    /// pam_cracklib) when mandatory and enforcing, with `pwquality.conf.d/*.conf`, `pwquality.conf`
    /// and the line's own options (which win), and pam_unix's `minlen` (default 6).
    static func quality(_ facts: AuthFacts) -> PasswordQuality? {
        guard let service = facts.service("passwd") ?? facts.service("common-password") else { return nil }
        let stack = service.stack("password")
        var derivation: [String] = []
        var data: [(String, JSONValue)] = [("stack", .string(service.name)), ("lines", .array(stack.map(\.json)))]
        var unixLength = 6
        if let unix = stack.last(where: { $0.module == "pam_unix" }), let text = unix.option("minlen"), let value = Int(text) {
            unixLength = value
            derivation.append("pam_unix minlen=\(value) (\(unix.location))")
        } else {
            derivation.append("pam_unix's default minimum of 6")
        }
        var minLength = unixLength
        var classes = 0
        if let line = stack.last(where: { $0.module == "pam_pwquality" || $0.module == "pam_cracklib" }) {
            var settings: [String: (String, String)] = [:]
            if line.module == "pam_pwquality" {
                for setting in facts.pwquality { settings[setting.key] = (setting.value, setting.location) }
            }
            for option in line.options {
                let parts = option.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { settings[String(parts[0])] = (String(parts[1]), line.location) }
            }
            let enforcing = settings["enforcing"].flatMap { Int($0.0) } ?? 1
            let minlen = max(6, settings["minlen"].flatMap { Int($0.0) } ?? (line.module == "pam_pwquality" ? 8 : 9))
            var positive = 0
            var required = 0
            var negativeClasses = 0
            for name in ["dcredit", "ucredit", "lcredit", "ocredit"] {
                let value = settings[name].flatMap { Int($0.0) } ?? (line.module == "pam_pwquality" ? 0 : 1)
                if value > 0 { positive += value } else if value < 0 {
                    required -= value
                    negativeClasses += 1
                }
            }
            let minclass = settings["minclass"].flatMap { Int($0.0) } ?? 0
            // Each character of a class with credit c counts once more, up to c per class: a password
            // of L characters scores at most L + min(L, credits), so the shortest accepted is
            // max(minlen − credits, ⌈minlen / 2⌉), and never fewer than the characters the negative credits demand.
            var shortest = positive > 0 ? max(minlen - positive, (minlen + 1) / 2) : minlen
            shortest = max(shortest, required, minclass)
            data.append(("pwquality", .object(settings.keys.sorted().map { ($0, ["value": .string(settings[$0]?.0 ?? ""), "at": .string(settings[$0]?.1 ?? "")]) })))
            if !line.isMandatory {
                derivation.append("\(line.module) at \(line.location) is \(line.control), so a password it rejects is still accepted")
            } else if enforcing == 0 {
                derivation.append("\(line.module) has enforcing=0 (\(settings["enforcing"]?.1 ?? "")): it warns and accepts")
            } else {
                derivation.append("\(line.module) minlen=\(minlen) with credits d/u/l/o summing to \(positive) → \(shortest) characters at least")
                minLength = max(minLength, shortest)
                classes = max(minclass, negativeClasses)
                if classes > 0 { derivation.append("\(classes) character class(es) required (minclass \(minclass), \(negativeClasses) negative credit(s))") }
            }
        } else {
            derivation.append("no pam_pwquality in the \(service.name) password stack")
        }
        data += [("min_length", .integer(minLength)), ("classes", .integer(classes))]
        return PasswordQuality(minLength: minLength, classes: classes, derivation: derivation, data: data)
    }

    /// Interactive accounts: root, and UIDs from login.defs' UID_MIN to UID_MAX, with a login shell.
    static func interactive(_ facts: AuthFacts) -> [LocalAccount] {
        let uidMin = facts.loginDef("UID_MIN").flatMap { Int($0.value) } ?? 1000
        let uidMax = facts.loginDef("UID_MAX").flatMap { Int($0.value) } ?? 60000
        return facts.accounts.filter { $0.hasLoginShell && ($0.uid == 0 || ($0.uid >= uidMin && $0.uid <= uidMax)) }
    }

    // MARK: auth.password

    /// The login stacks' factors, the password stack's minimum length and classes, and the
    /// maximum ages, against the methods of the host's classification level.
    static func password(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.authPassword
        let facts = all.auth
        var findings = context.sourceErrors(rule, facts.sources) { path in
            path == "/etc/pam.d" || path.hasPrefix("/etc/pam.d/") || path == "/etc/security" || path.hasPrefix("/etc/security/pwquality")
                || path == "/etc/login.defs" || path == "/etc/passwd" || path == "/etc/shadow"
        }
        let sources = context.evidence("sources", "host", .array(facts.sources.filter { $0.path.hasPrefix("/etc/pam.d/") || $0.path.hasPrefix("/etc/security/pwquality") || ["/etc/login.defs", "/etc/passwd", "/etc/shadow"].contains($0.path) }.map(\.json)))
        guard let level = context.policy.auth.level(for: context.classification) else {
            findings.append(context.finding(
                rule, subject: "host", status: .error,
                detail: "Policy \(context.policy.id) lists no level under auth.levels, so there is no rule to judge authentication by.", evidence: [sources]))
            return findings
        }
        let stacks = loginStacks(facts)
        guard !stacks.isEmpty, let quality = quality(facts) else {
            findings.append(context.finding(
                rule, subject: "host", status: .error,
                detail: "No PAM login stack (\(AuthFacts.loginServices.joined(separator: ", ")), common-auth) or password stack (passwd, common-password) could be read under /etc/pam.d, so how people authenticate is unknown.",
                evidence: [sources]))
            return findings
        }
        let (mandatory, alternatives) = factors(stacks)
        // Ages: login.defs for accounts made from now on, shadow field 5 for every account with a usable password.
        let passMax = facts.loginDef("PASS_MAX_DAYS").flatMap { Int($0.value) } ?? 99_999
        let shadowRead = facts.source("/etc/shadow")?.state == .ok
        let people = interactive(facts).filter { $0.password == .usable || $0.passwdField == .usable }
        let ages = people.map { ($0.name, $0.maxDays) }

        var outcomes: [(AuthPolicy.Method, [String])] = []
        var undecided = false
        for method in level.methods {
            var unmet: [String] = []
            if method.factor != .password, !mandatory.contains(method.factor) {
                unmet.append("no mandatory \(method.factor.rawValue) module in every login stack")
            }
            if let minLength = method.minLength, quality.minLength < minLength {
                unmet.append("passwords of \(quality.minLength) characters are accepted (needs \(minLength))")
            }
            if let minClasses = method.minClasses, quality.classes < minClasses {
                unmet.append("\(quality.classes) character class(es) required (needs \(minClasses))")
            }
            if let maxAge = method.maxAgeDays {
                if passMax > maxAge { unmet.append("login.defs PASS_MAX_DAYS is \(passMax) (needs ≤ \(maxAge))") }
                if !shadowRead {
                    undecided = true
                    unmet.append("/etc/shadow was not read, so the accounts' own maximum ages are unknown")
                } else {
                    let old = ages.filter { ($0.1 ?? 99_999) > maxAge }
                    if !old.isEmpty {
                        unmet.append("\(old.count) account(s) may keep a password longer than \(maxAge) days: " + old.map { "\($0.0) (\($0.1.map(String.init) ?? "no maximum"))" }.joined(separator: ", "))
                    }
                }
            }
            outcomes.append((method, unmet))
        }
        let alternativeText = alternatives.isEmpty ? "" : " Offered as an alternative to the password, not required: " + alternatives.map { "\($0.1.module) (\($0.1.control), \($0.1.location))" }.joined(separator: ", ") + "; the password path must meet the level by itself."
        let evidence: [Evidence] = [
            context.evidence("level", "host.yaml", [
                "level": .string(level.level.rawValue), "why": .string(level.reason),
                "methods": .array(level.methods.map { .string($0.text) }),
            ]),
            context.evidence("pam", "/etc/pam.d", [
                "login_stacks": .strings(stacks.map(\.name)), "mandatory_factors": .strings(mandatory.sorted().map(\.rawValue)),
                "alternatives": .array(alternatives.map { $0.1.json }),
            ]),
            context.evidence("password-quality", "/etc/pam.d", .object(quality.data + [("derivation", .strings(quality.derivation))])),
            context.evidence("ageing", "/etc/login.defs", [
                "pass_max_days": .integer(passMax), "pass_max_days_at": .optional(facts.loginDef("PASS_MAX_DAYS")?.location),
                "shadow_read": .bool(shadowRead),
                "accounts": .array(people.map { ["name": .string($0.name), "max_days": $0.maxDays.map { .integer($0) } ?? .null] }),
            ]),
            sources,
        ]
        let judged = "Judged at \(level.level.rawValue) (\(level.reason))"
        if let met = outcomes.first(where: { $0.1.isEmpty }) {
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "\(judged): meets \"\(met.0.text)\". Shortest password accepted: \(quality.minLength) (\(quality.derivation.joined(separator: "; "))); login.defs PASS_MAX_DAYS \(passMax); \(people.count) interactive account(s) with a password examined; mandatory second factors: \(mandatory.isEmpty ? "none" : mandatory.sorted().map(\.rawValue).joined(separator: ", ")).\(alternativeText)",
                evidence: evidence))
        } else {
            let reasons = outcomes.map { "\"\($0.0.text)\": " + $0.1.joined(separator: "; ") }.joined(separator: " | ")
            let onlyUnknown = undecided && outcomes.allSatisfy { outcome in outcome.1.allSatisfy { $0.hasPrefix("/etc/shadow was not read") } }
            findings.append(context.finding(
                rule, subject: "host", status: onlyUnknown ? .error : .fail,
                detail: "\(judged): no method of the level is met. \(reasons).\(alternativeText)", evidence: evidence))
        }
        return findings
    }
}
