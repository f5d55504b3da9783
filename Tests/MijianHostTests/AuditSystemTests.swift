#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

@Suite("audit.system")
struct AuditSystemTests {
    @Test("auditd as Debian installs it: enabled and running, but no audit=1, no rules, not immutable, logs rotated away")
    func debianDefault() throws {
        let findings = try RuleAudit.findings("auditd-debian-default", rule: "audit.system")
        let text = RuleAudit.describe(findings)
        #expect(RuleAudit.status(findings, "auditd:enabled") == .pass, "\(text)")
        #expect(RuleAudit.status(findings, "auditd:running") == .pass, "\(text)")
        #expect(RuleAudit.status(findings, "kernel:audit") == .fail, "\(text)")
        #expect(RuleAudit.status(findings, "rules") == .fail, "\(text)")
        #expect(findings.first { $0.subject == "rules" }?.statusDetail.contains("do not record: logins") == true, "\(text)")
        #expect(RuleAudit.status(findings, "rules:immutable") == .fail, "\(text)")
        #expect(RuleAudit.status(findings, "/etc/audit/auditd.conf") == .fail, "\(text)")
        let conf = findings.first { $0.subject == "/etc/audit/auditd.conf" }?.statusDetail ?? ""
        #expect(conf.contains("max_log_file_action = ROTATE (/etc/audit/auditd.conf:"), "\(conf)")
        #expect(!conf.contains("disk_full_action"), "SUSPEND keeps what was written: \(conf)")
        #expect(RuleAudit.status(findings, "offload") == .informational)
    }

    @Test("the auditd package's example rules a unit enables (STIG with login watches, module loading, -e 2), logs kept, audit=1: all pass")
    func hardened() throws {
        let facts = AuditSystemProbe.observe(root: FixtureHosts.root("auditd-hardened"), live: false, logger: FixtureHosts.logger)
        #expect(facts.ruleFragments.first?.file == "/etc/audit/rules.d/10-base-config.rules")
        #expect(facts.loadedRules == facts.ruleFragments)
        let findings = try RuleAudit.findings("auditd-hardened", rule: "audit.system")
        #expect(!findings.contains { $0.status == .fail || $0.status == .error }, "\(RuleAudit.describe(findings))")
        #expect(RuleAudit.status(findings, "rules") == .pass)
        #expect(RuleAudit.status(findings, "rules:immutable") == .pass)
        #expect(findings.first { $0.subject == "rules:immutable" }?.statusDetail.contains("99-finalize.rules") == true)
    }

    @Test("rule parsing: watches, -F path=, syscall lists, never rules, and accounts needing passwd, group and shadow")
    func coverage() {
        func rules(_ lines: [String]) -> [AuditRuleLine] { lines.enumerated().map { AuditRuleLine(file: "/r", line: $0.offset + 1, text: $0.element) } }
        typealias Coverage = AuditSystemChecks.Coverage
        #expect(!Coverage.mounts.matches(rules(["-a always,exit -F arch=b64 -S mount,umount2 -k mounts"])).isEmpty)
        #expect(Coverage.mounts.matches(rules(["-a never,exit -F arch=b64 -S mount"])).isEmpty)
        #expect(!Coverage.logins.matches(rules(["-a always,exit -F path=/var/log/lastlog -F perm=wa -k logins"])).isEmpty)
        #expect(Coverage.accounts.matches(rules(["-w /etc/passwd -p wa", "-w /etc/shadow -p wa"])).isEmpty)
        #expect(!Coverage.accounts.matches(rules(["-w /etc/passwd -p wa", "-w /etc/shadow -p wa", "-w /etc/group -p wa"])).isEmpty)
        #expect(!Coverage.modules.matches(rules(["-w /usr/bin/kmod -p x -k modules"])).isEmpty)
    }

    @Test("not installed fails; an unreadable auditd.conf or rules directory is an error")
    func missingAndUnreadable() throws {
        let none = try RuleAudit.findings("malware-none", rule: "audit.system")
        #expect(RuleAudit.status(none, "auditd") == .fail, "\(RuleAudit.describe(none))")
        let root = FixtureHosts.root("auditd-hardened")
        let conf = try RuleAudit.findings(nil, rule: "audit.system", root: root.refusing("/etc/audit/auditd.conf"))
        #expect(RuleAudit.status(conf, "/etc/audit/auditd.conf") == .error, "\(RuleAudit.describe(conf))")
        let rules = try RuleAudit.findings(nil, rule: "audit.system", root: root.refusing("/etc/audit/rules.d/30-stig.rules"))
        #expect(RuleAudit.status(rules, "/etc/audit/rules.d/30-stig.rules") == .error, "\(RuleAudit.describe(rules))")
    }
}

/// auditd on this machine: started directly (systemd may not be PID 1) when not running, and seen running.
@Suite("audit.system live", .serialized)
struct AuditSystemLiveTests {
    @Test("auditd from Debian's package, started if not running, is seen installed and running")
    func liveAuditd() throws {
        var findings = try RuleAudit.findings(nil, rule: "audit.system", at: Date())
        #expect(RuleAudit.status(findings, "auditd") == nil, "auditd is not installed: \(RuleAudit.describe(findings))")
        var started: pid_t?
        if RuleAudit.status(findings, "auditd:running") != .pass {
            started = try spawn("/sbin/auditd", ["-n"])
            for _ in 0..<100 {
                findings = try RuleAudit.findings(nil, rule: "audit.system", at: Date())
                if RuleAudit.status(findings, "auditd:running") == .pass { break }
                usleep(50_000)
            }
        }
        defer { if let started { stop(started) } }
        #expect(RuleAudit.status(findings, "auditd:running") == .pass, "\(RuleAudit.describe(findings))")
        #expect(findings.contains { $0.subject == "kernel:audit" && ($0.status == .pass || $0.status == .fail) })
        #expect(findings.contains { $0.subject == "/etc/audit/auditd.conf" && ($0.status == .pass || $0.status == .fail) })
    }
}
