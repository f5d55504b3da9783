import Foundation
import MijianCore

/// `audit.system` (七.2, 七.10): auditd installed, enabled and running, `audit=1` on the kernel
/// command line, rules for logins, mounts, module loading and account changes, made immutable,
/// and an `auditd.conf` that keeps its logs when the disk fills; where records are sent.
public enum AuditSystemChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.auditSystem, needs: [.auditSystem, .software, .services], evaluate: auditSystem)
    ]

    /// What the rules must watch, and how each is recognised.
    enum Coverage: String, CaseIterable {
        case logins, mounts, modules, accounts

        var watched: Set<String> {
            switch self {
            case .logins:
                return ["/var/log/lastlog", "/var/log/faillog", "/var/run/faillock", "/run/faillock", "/var/log/wtmp", "/var/log/btmp", "/var/run/utmp", "/run/utmp", "/var/log/tallylog"]
            case .mounts: return []
            case .modules: return ["/sbin/insmod", "/sbin/rmmod", "/sbin/modprobe", "/usr/sbin/insmod", "/usr/sbin/rmmod", "/usr/sbin/modprobe", "/bin/kmod", "/usr/bin/kmod"]
            case .accounts: return ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/security/opasswd"]
            }
        }

        var syscalls: Set<String> {
            switch self {
            case .mounts: return ["mount", "umount2", "umount", "fsmount", "move_mount"]
            case .modules: return ["init_module", "finit_module", "delete_module"]
            default: return []
            }
        }

        /// What a rule set must name for the category to count.
        var required: String {
            switch self {
            case .logins: return "a watch on lastlog, faillog/faillock, wtmp or btmp"
            case .mounts: return "the mount syscall"
            case .modules: return "init_module/finit_module/delete_module or a watch on insmod, modprobe, rmmod or kmod"
            case .accounts: return "watches on /etc/passwd, /etc/group and /etc/shadow"
            }
        }

        /// The rules that serve the category; for accounts, all three files must be watched.
        func matches(_ rules: [AuditRuleLine]) -> [AuditRuleLine] {
            var found: [AuditRuleLine] = []
            var files: Set<String> = []
            for rule in rules {
                let watch = AuditSystemChecks.watchedPath(rule)
                let calls = AuditSystemChecks.syscalls(rule)
                if let watch, watched.contains(watch) {
                    found.append(rule)
                    files.insert(watch)
                } else if !calls.isDisjoint(with: syscalls) {
                    found.append(rule)
                }
            }
            if self == .accounts, !files.isSuperset(of: ["/etc/passwd", "/etc/group", "/etc/shadow"]) { return [] }
            return found
        }
    }

    /// The path a rule watches (`-w PATH`, `-F path=` or `-F dir=`), unless it is a `never` rule.
    static func watchedPath(_ rule: AuditRuleLine) -> String? {
        let words = rule.words
        if isNever(words) { return nil }
        for (index, word) in words.enumerated() where index + 1 < words.count {
            if word == "-w" { return normalised(words[index + 1]) }
            if word == "-F" {
                let field = words[index + 1]
                if field.hasPrefix("path=") { return normalised(String(field.dropFirst(5))) }
                if field.hasPrefix("dir=") { return normalised(String(field.dropFirst(4))) }
            }
        }
        return nil
    }

    static func normalised(_ path: String) -> String { path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path }

    /// The syscalls of `-S` options of an `always` rule.
    static func syscalls(_ rule: AuditRuleLine) -> Set<String> {
        let words = rule.words
        if isNever(words) { return [] }
        var out: Set<String> = []
        for (index, word) in words.enumerated() where word == "-S" && index + 1 < words.count {
            out.formUnion(words[index + 1].split(separator: ",").map(String.init))
        }
        return out
    }

    static func isNever(_ words: [String]) -> Bool {
        for (index, word) in words.enumerated() where (word == "-a" || word == "-A") && index + 1 < words.count {
            if words[index + 1].split(separator: ",").contains("never") { return true }
        }
        return false
    }

    static func auditSystem(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.auditSystem
        let facts = all.auditSystem
        var findings = context.sourceErrors(rule, facts.sources + all.software.sources + all.services.sources) { _ in true }
        let sources = context.evidence("sources", "host", .array(facts.sources.map(\.json)))
        guard let package = all.software.package("auditd") else {
            let dpkg = all.software.source(SoftwareFacts.dpkgStatus)
            if dpkg?.state != .ok {
                findings.append(context.finding(
                    rule, subject: "auditd", status: .error,
                    detail: "The dpkg database could not be read (\(dpkg.map { $0.errorReason ?? $0.stateName } ?? "not read")), so whether auditd is installed is unknown.",
                    evidence: [context.evidence("file", SoftwareFacts.dpkgStatus, dpkg?.json ?? .null)]))
            } else {
                findings.append(context.finding(
                    rule, subject: "auditd", status: .fail,
                    detail: "auditd is not installed (\(SoftwareFacts.dpkgStatus)): nothing records logins, mounts, module loads or account changes (七.2 security audit).",
                    evidence: [context.evidence("file", SoftwareFacts.dpkgStatus, ["package": "auditd", "installed": false])]))
            }
            findings.append(commandLine(facts, context))
            return findings
        }
        let installed = context.evidence("package", SoftwareFacts.dpkgStatus, package.json)

        let enabled = all.services.enabled(["auditd.service"])
        let masked = all.services.maskedUnits.contains("auditd.service")
        findings.append(context.finding(
            rule, subject: "auditd:enabled", status: enabled.isEmpty ? .fail : .pass,
            detail: enabled.isEmpty
                ? "auditd \(package.version ?? "") is installed but auditd.service is \(masked ? "masked" : "not enabled") under /etc/systemd/system: it does not start at boot."
                : "auditd.service is enabled (\(enabled.map(\.path).joined(separator: ", "))).",
            evidence: [installed, context.evidence("units", "/etc/systemd/system", ["enabled": .array(enabled.map { .string($0.path) }), "masked": .bool(masked)])]))

        if all.services.processTableRead {
            let running = all.services.running(["auditd"])
            findings.append(context.finding(
                rule, subject: "auditd:running", status: running.isEmpty ? .fail : .pass,
                detail: running.isEmpty
                    ? "No auditd process among the \(all.services.processes.count) of the process table: nothing is being recorded now."
                    : "auditd is running (pid \(running.map { String($0.pid) }.joined(separator: ", "))).",
                evidence: [context.evidence("procfs", "/proc", ["processes": .array(running.map(\.json)), "examined": .integer(all.services.processes.count)])]))
        } else if !all.live {
            findings.append(context.finding(
                rule, subject: "auditd:running", status: .notapplicable,
                detail: "No process table under the root (an offline system): whether auditd runs is said by the unit enabled above.",
                evidence: [context.evidence("procfs", "/proc", ["process_table_read": false])]))
        }

        findings.append(commandLine(facts, context))
        findings += rules(facts, context, sources)
        findings.append(logsKept(facts, context))
        findings.append(offload(facts, context))
        return findings
    }

    /// `audit=1` on the running kernel's command line, or (offline) in GRUB's.
    static func commandLine(_ facts: AuditSystemFacts, _ context: CheckContext) -> Finding {
        let rule = RuleCatalogue.auditSystem
        let grub = facts.grubCommandLines
        let grubData = context.evidence("grub", "/etc/default/grub", .array(grub.map { ["location": .string($0.location), "value": .string($0.value)] }))
        func value(_ words: [Substring]) -> Substring? { words.last { $0.hasPrefix("audit=") }.map { $0.dropFirst(6) } }
        if let kernel = facts.kernel, kernel.enabled == 0 {
            return context.finding(
                rule, subject: "kernel:audit", status: .fail,
                detail: "The kernel's auditing is off (AUDIT_GET: enabled 0): nothing is recorded, whatever the files say.",
                evidence: [context.evidence("netlink", "NETLINK_AUDIT", kernel.json), grubData])
        }
        if let line = facts.commandLine {
            let setting = value(line.split(separator: " "))
            let data = context.evidence("procfs", "/proc/cmdline", ["audit": .optional(setting.map(String.init))])
            if setting == "1" {
                return context.finding(rule, subject: "kernel:audit", status: .pass, detail: "The running kernel was booted with audit=1 (/proc/cmdline): processes started before auditd are audited too.", evidence: [data, grubData])
            }
            return context.finding(
                rule, subject: "kernel:audit", status: .fail,
                detail: setting == nil
                    ? "The running kernel's command line has no audit=1 (/proc/cmdline): processes started before auditd are never audited. Add audit=1 to GRUB_CMDLINE_LINUX and run update-grub."
                    : "The running kernel was booted with audit=\(setting ?? "") (/proc/cmdline): auditing is off.",
                evidence: [data, grubData])
        }
        let setting = grub.compactMap { value($0.value.split(separator: " ")) }.last
        if setting == "1" {
            return context.finding(rule, subject: "kernel:audit", status: .pass, detail: "No /proc/cmdline under the root; GRUB's command line sets audit=1 (\(grub.map(\.location).joined(separator: ", "))).", evidence: [grubData])
        }
        return context.finding(
            rule, subject: "kernel:audit", status: .fail,
            detail: "No /proc/cmdline under the root, and GRUB's command line \(grub.isEmpty ? "is not set" : "has no audit=1") (/etc/default/grub and grub.d): processes started before auditd would not be audited.",
            evidence: [grubData])
    }

    /// The loaded rules cover each category, and the last `-e` makes them immutable.
    static func rules(_ facts: AuditSystemFacts, _ context: CheckContext, _ sources: Evidence) -> [Finding] {
        let rule = RuleCatalogue.auditSystem
        let loaded = facts.loadedRules
        let from = facts.ruleFragments.isEmpty ? AuditSystemFacts.rulesFile : "\(AuditSystemFacts.rulesDirectory)/*.rules (augenrules)"
        var rows: [(String, JSONValue)] = []
        var missing: [Coverage] = []
        for category in Coverage.allCases {
            let matched = category.matches(loaded)
            if matched.isEmpty { missing.append(category) }
            rows.append((category.rawValue, .array(matched.prefix(20).map { .string("\($0.location): \($0.text)") })))
        }
        let data = context.evidence("audit-rules", from, .object(rows + [("rules", .integer(loaded.count))]))
        var findings: [Finding] = []
        if missing.isEmpty {
            findings.append(context.finding(rule, subject: "rules", status: .pass, detail: "The \(loaded.count) lines of \(from) record logins, mounts, module loading and account changes.", evidence: [data, sources]))
        } else {
            let text = missing.map { "\($0.rawValue) (\($0.required))" }.joined(separator: "; ")
            findings.append(context.finding(
                rule, subject: "rules", status: .fail,
                detail: loaded.isEmpty
                    ? "No audit rules in \(AuditSystemFacts.rulesFile) or \(AuditSystemFacts.rulesDirectory): auditd records nothing but its own events."
                    : "The \(loaded.count) lines of \(from) do not record: \(text).",
                evidence: [data, sources]))
        }
        let enable = loaded.last { $0.words.first == "-e" }
        let configured = enable?.words.dropFirst().first == "2"
        var evidence = [context.evidence("audit-rules", from, ["enable": .optional(enable.map { "\($0.location): \($0.text)" })])]
        let fileText = configured ? "the rules end with -e 2 (\(enable?.location ?? ""))" : "the rules are not made immutable (\(enable.map { "last -e is \($0.text) at \($0.location)" } ?? "no -e 2"))"
        // On the live machine the kernel says what is in force; the files say what the next start loads.
        if let kernel = facts.kernel {
            evidence.append(context.evidence("netlink", "NETLINK_AUDIT", kernel.json))
            let written = loaded.filter { ["-a", "-A", "-w"].contains($0.words.first ?? "") }.count
            if kernel.rules == 0, written > 0 {
                findings.append(context.finding(
                    rule, subject: "rules:loaded", status: .fail,
                    detail: "The kernel has no audit rule loaded (AUDIT_LIST_RULES), though \(from) holds \(written): they were never loaded, or were deleted since.",
                    evidence: evidence))
            }
            findings.append(context.finding(
                rule, subject: "rules:immutable", status: kernel.enabled == 2 ? .pass : .fail,
                detail: kernel.enabled == 2
                    ? "The kernel has the audit rules locked (AUDIT_GET: enabled 2, \(kernel.rules) rules): they cannot be changed until the next boot; \(fileText)."
                    : "The kernel's audit rules are not locked (AUDIT_GET: enabled \(kernel.enabled)): anyone with root can switch auditing off unseen; \(fileText).",
                evidence: evidence))
            return findings
        }
        findings.append(context.finding(
            rule, subject: "rules:immutable", status: configured ? .pass : .fail,
            detail: configured
                ? "The rules end with -e 2 (\(enable?.location ?? "")): they cannot be changed until the next boot."
                : "The rules are not made immutable (\(enable.map { "last -e is \($0.text) at \($0.location)" } ?? "no -e 2")): anyone with root can switch auditing off unseen.",
            evidence: evidence))
        return findings
    }

    /// `auditd.conf` keeps its logs: not rotated away, not dropped when the disk fills.
    static func logsKept(_ facts: AuditSystemFacts, _ context: CheckContext) -> Finding {
        let rule = RuleCatalogue.auditSystem
        let path = AuditSystemFacts.conf
        guard facts.source(path)?.state == .ok else {
            return context.finding(
                rule, subject: path, status: .error,
                detail: "auditd is installed but \(path) could not be read (\(facts.source(path).map { $0.errorReason ?? $0.stateName } ?? "not read")): what it does when its log or disk fills is unknown.",
                evidence: [context.evidence("file", path, facts.source(path)?.json ?? .null)])
        }
        // auditd's defaults when a key is absent.
        let checks: [(key: String, fallback: String, bad: Set<String>, why: String)] = [
            ("max_log_file_action", "ROTATE", ["ROTATE"], "deletes the oldest log once num_logs are full (keep_logs keeps them)"),
            ("disk_full_action", "SUSPEND", ["ROTATE", "IGNORE", "SYSLOG"], "drops records or logs when the disk is full (halt, single or suspend keep what was written)"),
            ("space_left_action", "SYSLOG", ["IGNORE", "ROTATE"], "gives no warning, or deletes logs, when space runs low"),
        ]
        var bad: [String] = []
        var rows: [(String, JSONValue)] = []
        for check in checks {
            let setting = facts.setting(check.key)
            let value = (setting?.value ?? check.fallback).uppercased()
            rows.append((check.key, ["value": .string(value), "location": .string(setting?.location ?? "default")]))
            if check.bad.contains(value) { bad.append("\(check.key) = \(value) (\(setting?.location ?? "auditd's default")) \(check.why)") }
        }
        let data = context.evidence("file", path, .object(rows))
        if bad.isEmpty {
            return context.finding(rule, subject: path, status: .pass, detail: "\(path) keeps its logs when the log or the disk fills (max_log_file_action, disk_full_action, space_left_action).", evidence: [data])
        }
        return context.finding(rule, subject: path, status: .fail, detail: "\(path) does not keep its logs: " + bad.joined(separator: "; ") + ".", evidence: [data])
    }

    /// Where records go besides the local log: informational, unless a remote server is outside the unit.
    static func offload(_ facts: AuditSystemFacts, _ context: CheckContext) -> Finding {
        let rule = RuleCatalogue.auditSystem
        let logFile = facts.setting("log_file")?.value ?? "/var/log/audit/audit.log"
        let data = context.evidence("audit-offload", "/etc/audit/plugins.d", [
            "log_file": .string(logFile), "write_logs": .optional(facts.setting("write_logs")?.value),
            "plugins": .array(facts.activePlugins.map { .string("\($0.key) (\($0.location))") }),
            "remote_server": .optional(facts.remoteServer?.value), "kernel": facts.kernel?.json ?? .optional(facts.kernelProblem),
        ])
        if let server = facts.remoteServer, let address = IPAddress(server.value), !context.policy.isAllowedPeer(address) {
            return context.finding(
                rule, subject: "offload", status: .fail,
                detail: "audisp-remote sends audit records to \(server.value) (\(server.location)), outside the unit's networks of policy \(context.policy.id).",
                evidence: [data])
        }
        let plugins = facts.activePlugins.isEmpty ? "no dispatcher plugin is active" : "active plugins: \(facts.activePlugins.map(\.key).joined(separator: ", "))"
        let remote = facts.remoteServer.map { "; records are sent to \($0.value)" } ?? ""
        let writes = SambaShare.boolean(facts.setting("write_logs")?.value) == false ? " write_logs = no: nothing is kept locally." : ""
        let kernel = facts.kernel.map { " The kernel has lost \($0.lost) record(s) since boot; its audit daemon is pid \($0.daemonPID)." }
            ?? facts.kernelProblem.map { " The kernel's audit status could not be read (\($0)); the files alone were judged." } ?? ""
        return context.finding(
            rule, subject: "offload", status: .informational,
            detail: "Audit records are written to \(logFile); \(plugins)\(remote). On an air-gapped machine they stay here until exported.\(writes)\(kernel)",
            evidence: [data])
    }
}
