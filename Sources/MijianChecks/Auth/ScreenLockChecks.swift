import MijianCore

extension AuthChecks {
    /// A setting a desktop's lock depends on, and how to judge it.
    struct LockKey {
        /// The dconf path.
        var key: String
        /// What it must be, given its value in seconds or as a boolean; nil when it is met.
        var judge: (DconfValue) -> String?
    }

    /// The dconf keys each desktop's idle lock is made of.
    static func lockKeys(_ kind: DesktopKind, _ policy: AuthPolicy) -> [LockKey] {
        let idle = policy.maxIdleSeconds
        let delay = policy.maxLockDelaySeconds
        func bool(_ name: String) -> (DconfValue) -> String? {
            { $0.boolean == true ? nil : "\(name) is \($0.value) (must be true)" }
        }
        func seconds(_ name: String, max: Int, scale: Int, zeroIsNever: Bool) -> (DconfValue) -> String? {
            { value in
                guard let number = value.integer else { return "\(name) is \(value.value) (not a number)" }
                if zeroIsNever, number <= 0 { return "\(name) is \(value.value): never" }
                return number * scale > max ? "\(name) is \(value.value) (\(number * scale) s; at most \(max) s)" : nil
            }
        }
        switch kind {
        case .gnome:
            return [
                LockKey(key: "/org/gnome/desktop/session/idle-delay", judge: seconds("idle-delay", max: idle, scale: 1, zeroIsNever: true)),
                LockKey(key: "/org/gnome/desktop/screensaver/lock-enabled", judge: bool("lock-enabled")),
                LockKey(key: "/org/gnome/desktop/screensaver/lock-delay", judge: seconds("lock-delay", max: delay, scale: 1, zeroIsNever: false)),
            ]
        case .ukui:
            // UKUI's schema counts idle-delay and lock-delay in minutes.
            return [
                LockKey(key: "/org/ukui/screensaver/idle-activation-enabled", judge: bool("idle-activation-enabled")),
                LockKey(key: "/org/ukui/screensaver/idle-delay", judge: seconds("idle-delay", max: idle, scale: 60, zeroIsNever: true)),
                LockKey(key: "/org/ukui/screensaver/lock-enabled", judge: bool("lock-enabled")),
                LockKey(key: "/org/ukui/screensaver/lock-delay", judge: seconds("lock-delay", max: delay, scale: 60, zeroIsNever: false)),
            ]
        case .dde:
            return [
                LockKey(key: "/com/deepin/dde/power/screen-black-lock", judge: bool("screen-black-lock")),
                LockKey(key: "/com/deepin/dde/power/line-power-lock-delay", judge: seconds("line-power-lock-delay", max: idle, scale: 1, zeroIsNever: true)),
                LockKey(key: "/com/deepin/dde/power/battery-lock-delay", judge: seconds("battery-lock-delay", max: idle, scale: 1, zeroIsNever: true)),
            ]
        case .xscreensaver, .other:
            return []
        }
    }

    /// Where a dconf key's value comes from for a user with an empty own database: the first system
    /// database of the profile that holds it (compiled, as dconf reads it), else the GSettings
    /// default (the last override, else the schema's); locked when a compiled database locks it.
    static func resolve(_ key: String, _ screen: ScreenLockFacts) -> (value: DconfValue?, locked: String?) {
        let inForce = screen.databases.filter(\.compiled)
        let value = inForce.lazy.compactMap { $0.values.first { $0.key == key } }.first
            ?? screen.defaults.last { $0.key == key && $0.source.contains(".gschema.override") }
            ?? screen.defaults.last { $0.key == key }
        let locked = inForce.first { $0.locks.contains(key) }.map { "/etc/dconf/db/\($0.name)" }
        return (value, locked)
    }

    // MARK: auth.screenlock

    /// Every desktop installed locks when idle within the policy's time, and users cannot undo it;
    /// `TMOUT` ends idle text sessions. A desktop whose lock Mijian does not read is an error.
    static func screenlock(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.authScreenlock
        let screen = all.auth.screen
        let policy = context.policy.auth
        let paths: (String) -> Bool = { path in
            path == "/etc/dconf" || path.hasPrefix("/etc/dconf/") || path == "/usr/share/dconf" || path.hasPrefix("/usr/share/dconf/")
                || path == "/usr/share/glib-2.0" || path.hasPrefix("/usr/share/glib-2.0/") || path.hasPrefix("/usr/share/xsessions")
                || path.hasPrefix("/usr/share/wayland-sessions") || path.contains("XScreenSaver") || path.hasPrefix("/etc/profile") || path == "/etc/bash.bashrc"
        }
        var findings = context.sourceErrors(rule, all.auth.sources, paths)
        let unreadable = Set(all.auth.sources.filter { paths($0.path) && $0.errorReason != nil }.map(\.path))
        let sessions = context.evidence("desktops", "/usr/share/xsessions", [
            "sessions": .array(screen.sessions.map { ["path": .string($0.path), "kind": .string($0.kind.rawValue)] }),
            "programs": .array(screen.programs.map { ["path": .string($0.path), "kind": .string($0.kind.rawValue)] }),
        ])
        let profile = context.evidence("dconf", screen.profilePath ?? "/etc/dconf/profile/user", [
            "system_databases": screen.profileDatabases.map { .strings($0) } ?? .null,
            "databases": .array(screen.databases.map { database in
                [
                    "name": .string(database.name), "compiled": .bool(database.compiled), "values": .array(database.values.map(\.json)),
                    "locks": .strings(database.locks), "keyfile_values": .array(database.keyfileValues.map(\.json)), "keyfile_locks": .strings(database.keyfileLocks),
                ]
            }),
        ])
        for kind in screen.desktops.sorted() {
            let subject = "desktop:\(kind.rawValue)"
            let found = (screen.sessions.filter { $0.kind == kind }.map(\.path) + screen.programs.filter { $0.kind == kind }.map(\.path)).joined(separator: ", ")
            switch kind {
            case .other:
                findings.append(context.finding(
                    rule, subject: subject, status: .error,
                    detail: "Desktop session(s) \(found) are installed and their screen lock is not one this rule reads (GNOME, UKUI, DDE, xscreensaver): whether they lock when idle is not vouched for.",
                    evidence: [sessions]))
            case .xscreensaver:
                findings.append(xscreensaver(screen, found, context, unreadable))
            case .gnome, .ukui, .dde:
                findings.append(dconfDesktop(kind, screen, found, context, unreadable, evidence: [sessions, profile]))
            }
        }
        findings.append(shellTimeout(screen, policy, context, sources: all.auth.sources))
        return findings
    }

    static func dconfDesktop(_ kind: DesktopKind, _ screen: ScreenLockFacts, _ found: String, _ context: CheckContext, _ unreadable: Set<String>, evidence: [Evidence]) -> Finding {
        let rule = RuleCatalogue.authScreenlock
        let subject = "desktop:\(kind.rawValue)"
        let broken = screen.databases.map { "/etc/dconf/db/\($0.name)" }.filter { unreadable.contains($0) }
        if !broken.isEmpty {
            return context.finding(
                rule, subject: subject, status: .error,
                detail: "The compiled dconf database(s) \(broken.joined(separator: ", ")) could not be read, so the system settings and locks of \(kind.rawValue) (\(found)) are unknown.",
                evidence: evidence)
        }
        var problems: [String] = []
        var rows: [JSONValue] = []
        for lockKey in lockKeys(kind, context.policy.auth) {
            let (value, locked) = resolve(lockKey.key, screen)
            rows.append(["key": .string(lockKey.key), "value": value?.json ?? .null, "locked_by": .optional(locked)])
            guard let value else {
                problems.append("\(lockKey.key) is set nowhere this rule reads (no system database, override or schema default)")
                continue
            }
            if let wrong = lockKey.judge(value) { problems.append("\(wrong) from \(value.source)") }
            if locked == nil { problems.append("\(lockKey.key) is not locked in a system database, so each user can change it") }
        }
        var notes: [String] = []
        if screen.profileDatabases == nil {
            notes.append("there is no dconf profile (/etc/dconf/profile/user), so dconf reads only each user's own database and no system setting or lock applies")
        }
        for database in screen.databases {
            if !database.compiled, !database.keyfileValues.isEmpty || !database.keyfileLocks.isEmpty {
                notes.append("the keyfiles under /etc/dconf/db/\(database.name).d are not compiled into /etc/dconf/db/\(database.name) (run `dconf update`), so they are not in force")
            } else if database.compiled {
                let stale = database.keyfileValues.filter { keyfile in database.values.first { $0.key == keyfile.key }?.value != keyfile.value }
                let staleLocks = Set(database.keyfileLocks).subtracting(database.locks)
                if !stale.isEmpty || !staleLocks.isEmpty {
                    notes.append("/etc/dconf/db/\(database.name) differs from its keyfiles (\((stale.map(\.key) + staleLocks.sorted()).joined(separator: ", "))): `dconf update` has not run since they changed; the compiled file is what is in force")
                }
            }
        }
        let noteText = notes.isEmpty ? "" : " Note: " + notes.joined(separator: "; ") + "."
        let data = context.evidence("lock-settings", "/etc/dconf", ["desktop": .string(kind.rawValue), "keys": .array(rows)])
        if problems.isEmpty {
            return context.finding(
                rule, subject: subject, status: .pass,
                detail: "\(kind.rawValue) (\(found)) locks after at most \(context.policy.auth.maxIdleSeconds) s idle and every lock setting is locked in a system dconf database.\(noteText)",
                evidence: [data] + evidence)
        }
        return context.finding(
            rule, subject: subject, status: .fail,
            detail: "\(kind.rawValue) is installed (\(found)) and its idle lock is not enforced: " + problems.joined(separator: "; ") + ".\(noteText)",
            evidence: [data] + evidence)
    }

    /// xscreensaver's system resources: `timeout` (H:MM:SS or minutes), `lock: True`, `lockTimeout`.
    /// It has no system lock: a user's `~/.xscreensaver` can override them, which the detail says.
    static func xscreensaver(_ screen: ScreenLockFacts, _ found: String, _ context: CheckContext, _ unreadable: Set<String>) -> Finding {
        let rule = RuleCatalogue.authScreenlock
        let policy = context.policy.auth
        let data = context.evidence("xscreensaver", "/etc/X11/app-defaults/XScreenSaver", .array(screen.xscreensaver.map(\.json)))
        if let bad = unreadable.first(where: { $0.contains("XScreenSaver") }) {
            return context.finding(
                rule, subject: "desktop:xscreensaver", status: .error,
                detail: "xscreensaver is installed (\(found)) but \(bad) could not be read.", evidence: [data])
        }
        func value(_ key: String) -> AuthSetting? { screen.xscreensaver.last { $0.key == key } }
        var problems: [String] = []
        if let timeout = value("timeout") {
            if let seconds = duration(timeout.value) {
                if seconds <= 0 || seconds > policy.maxIdleSeconds { problems.append("timeout \(timeout.value) (\(timeout.location)) is more than \(policy.maxIdleSeconds) s") }
            } else {
                problems.append("timeout \(timeout.value) (\(timeout.location)) is not a time")
            }
        } else {
            problems.append("no timeout resource in an app-defaults file (the compiled-in default is not readable)")
        }
        if let lock = value("lock") {
            if lock.value.lowercased() != "true" { problems.append("lock is \(lock.value) (\(lock.location))") }
        } else {
            problems.append("no lock resource in an app-defaults file (xscreensaver's compiled-in default is not to lock)")
        }
        if let lockTimeout = value("lockTimeout"), let seconds = duration(lockTimeout.value), seconds > policy.maxLockDelaySeconds {
            problems.append("lockTimeout \(lockTimeout.value) (\(lockTimeout.location)) is more than \(policy.maxLockDelaySeconds) s")
        }
        if problems.isEmpty {
            return context.finding(
                rule, subject: "desktop:xscreensaver", status: .pass,
                detail: "xscreensaver (\(found)) blanks and locks within \(policy.maxIdleSeconds) s by its system resources. It has no system lock: a user's ~/.xscreensaver can override them.",
                evidence: [data])
        }
        return context.finding(
            rule, subject: "desktop:xscreensaver", status: .fail,
            detail: "xscreensaver is installed (\(found)) and does not lock by its system resources: " + problems.joined(separator: "; ") + ".",
            evidence: [data])
    }

    /// `H:MM:SS`, `MM:SS` or whole minutes, as xscreensaver reads a time resource.
    static func duration(_ text: String) -> Int? {
        let parts = text.split(separator: ":").map { Int($0) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        let numbers = parts.compactMap { $0 }
        switch numbers.count {
        case 1: return numbers[0] * 60
        case 2: return numbers[0] * 60 + numbers[1]
        case 3: return numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
        default: return nil
        }
    }

    /// `TMOUT` for text consoles: set to at most the policy's seconds and read-only, and nowhere larger.
    static func shellTimeout(_ screen: ScreenLockFacts, _ policy: AuthPolicy, _ context: CheckContext, sources: [FactSource]) -> Finding {
        let rule = RuleCatalogue.authScreenlock
        let data = context.evidence("shell", "/etc/profile", .array(screen.timeouts.map(\.json)))
        let startup = sources.filter { $0.path == "/etc/profile" || $0.path == "/etc/bash.bashrc" }
        if !startup.isEmpty, startup.allSatisfy({ $0.state == .missing }) {
            // Every Debian system has /etc/profile (base-files): without it this is not a whole root.
            return context.finding(
                rule, subject: "console:TMOUT", status: .error,
                detail: "Neither /etc/profile nor /etc/bash.bashrc exists under the root, so whether idle shells time out cannot be said.",
                evidence: [data, context.evidence("sources", "/etc/profile", .array(startup.map(\.json)))])
        }
        let good = screen.timeouts.filter { ($0.seconds ?? 0) > 0 && ($0.seconds ?? 0) <= policy.maxShellTimeoutSeconds }
        let bad = screen.timeouts.filter { ($0.seconds ?? 0) <= 0 || ($0.seconds ?? 0) > policy.maxShellTimeoutSeconds }
        if !bad.isEmpty {
            return context.finding(
                rule, subject: "console:TMOUT", status: .fail,
                detail: "TMOUT is set beyond \(policy.maxShellTimeoutSeconds) s or to no limit: " + bad.map { "\($0.text) at \($0.location)" }.joined(separator: ", ") + ".",
                evidence: [data])
        }
        guard let set = good.first else {
            return context.finding(
                rule, subject: "console:TMOUT", status: .fail,
                detail: "No TMOUT in /etc/profile, /etc/profile.d/*.sh or /etc/bash.bashrc: an idle text console or shell stays logged in.",
                evidence: [data])
        }
        guard good.allSatisfy(\.readonly) else {
            return context.finding(
                rule, subject: "console:TMOUT", status: .fail,
                detail: "TMOUT=\(set.text) at \(set.location) is not read-only (readonly TMOUT or declare -r), so a user can unset it.",
                evidence: [data])
        }
        return context.finding(
            rule, subject: "console:TMOUT", status: .pass,
            detail: "Idle shells end after \(set.text) s (TMOUT at \(set.location), read-only).", evidence: [data])
    }
}
