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
            // auditd is in the process table before it has registered with the kernel: wait for both.
            for _ in 0..<100 {
                findings = try RuleAudit.findings(nil, rule: "audit.system", at: Date())
                let registered = findings.first { $0.subject == "offload" }?.statusDetail.contains("its audit daemon is pid \(started ?? 0).") == true
                if RuleAudit.status(findings, "auditd:running") == .pass, registered { break }
                usleep(50_000)
            }
        }
        defer { if let started { stop(started) } }
        #expect(RuleAudit.status(findings, "auditd:running") == .pass, "\(RuleAudit.describe(findings))")
        // auditd registered itself with the kernel, which says so over NETLINK_AUDIT.
        let offload = findings.first { $0.subject == "offload" }?.statusDetail ?? ""
        #expect(offload.contains("its audit daemon is pid") && !offload.contains("its audit daemon is pid 0."), "\(offload)")
        if let started { #expect(offload.contains("its audit daemon is pid \(started)."), "\(offload)") }
        #expect(findings.contains { $0.subject == "kernel:audit" && ($0.status == .pass || $0.status == .fail) })
        #expect(findings.contains { $0.subject == "/etc/audit/auditd.conf" && ($0.status == .pass || $0.status == .fail) })
    }
}

/// Recorded kernel answers for `AuditKernel`: one datagram per receive.
final class RecordedAuditKernel: NetlinkTransport {
    var replies: [[UInt8]]
    var sent: [[UInt8]] = []
    init(_ replies: [[UInt8]]) { self.replies = replies }
    func send(_ datagram: [UInt8]) throws(MijianError) { sent.append(datagram) }
    func receive() throws(MijianError) -> [UInt8] {
        guard !replies.isEmpty else { throw MijianError(.netlink, "no more replies") }
        return replies.removeFirst()
    }

    static func message(_ type: UInt16, _ payload: [UInt8], flags: UInt16 = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt32(16 + payload.count).littleEndian) { bytes += $0 }
        withUnsafeBytes(of: type.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: flags.littleEndian) { bytes += $0 }
        bytes += [UInt8](repeating: 0, count: 8)
        return bytes + payload + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
    }

    static func words(_ values: [UInt32]) -> [UInt8] { values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } } }
}

@Suite("audit.system kernel status")
struct AuditKernelTests {
    @Test("AUDIT_GET's audit_status and AUDIT_LIST_RULES's rules, as the kernel sends them")
    func status() throws {
        // audit_status: mask, enabled, failure, pid, rate_limit, backlog_limit, lost, backlog, version, backlog_wait_time
        let status = RecordedAuditKernel.message(1000, RecordedAuditKernel.words([0, 2, 1, 377, 0, 8192, 3, 0, 0x7f, 60000]))
        let rule = RecordedAuditKernel.message(1013, [UInt8](repeating: 0, count: 1064), flags: 2)
        let kernel = RecordedAuditKernel([status, rule + rule, RecordedAuditKernel.message(3, [0, 0, 0, 0], flags: 2)])
        let read = try AuditKernel.status(transport: kernel)
        #expect(read == AuditKernelStatus(enabled: 2, daemonPID: 377, backlogLimit: 8192, lost: 3, rules: 2))
        #expect(kernel.sent.map { $0[4] } == [0xE8, 0xF5])  // 1000 and 1013, little-endian low bytes
        // A refusal (NLMSG_ERROR with -EPERM) is an error with its errno.
        let refused = RecordedAuditKernel([RecordedAuditKernel.message(2, RecordedAuditKernel.words([UInt32(bitPattern: -EPERM)]) + [UInt8](repeating: 0, count: 16))])
        #expect(throws: MijianError.self) { try AuditKernel.status(transport: refused) }
    }
}
