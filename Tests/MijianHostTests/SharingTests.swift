import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

@Suite("sharing and print.devices")
struct SharingTests {
    @Test("smb.conf with its include and a usershare, exports with a continuation line, printers.conf, cupsd.conf, avahi")
    func probe() {
        let facts = SharingProbe.observe(root: FixtureHosts.root("sharing-served"), live: false, logger: FixtureHosts.logger)
        #expect(facts.installedServers == Set(SharingServer.allCases))
        #expect(facts.sambaShares.map(\.name) == ["homes", "printers", "print$", "data", "old", "Reports"])
        #expect(facts.sambaShares.first { $0.name == "data" }?.location == "/etc/samba/shares.conf:1")
        #expect(facts.sambaShares.first { $0.name == "Reports" }?.parameters["path"] == "/home/zhangsan/reports")
        #expect(facts.sambaGlobal["map to guest"] == "bad user")
        #expect(facts.exports == [NFSExport(path: "/srv/nfs", clients: ["10.1.0.0/16(ro,sync,no_subtree_check)", "192.0.2.0/24(rw,sync)"], location: "/etc/exports:4")])
        #expect(facts.printers.map(\.name) == ["HP_LaserJet", "Floor3_MFP", "Print_Shop"])
        #expect(facts.printers.map(\.deviceHost) == [nil, "10.1.3.20", "printer.example.com"])
        #expect(facts.cupsListen.map(\.value) == ["631", "/run/cups/cups.sock"])
        #expect(facts.pageLogLines == 2 && facts.lastPageRecord == "17/Nov/2026:16:40:02 +0800")
        #expect(facts.avahiServices == ["/etc/avahi/services/samba.service"])
    }

    @Test("what is served fails: Samba shares and the usershare, the NFS export, cupsd on the network and its shared queue, avahi's service")
    func served() throws {
        let findings = try RuleAudit.findings("sharing-served", rule: "sharing")
        let failing = Set(findings.filter { $0.status == .fail }.map(\.subject))
        #expect(failing == ["samba:data", "samba:homes", "samba:printers", "samba:print$", "samba:Reports", "nfs:/srv/nfs", "cups:listen", "cups:HP_LaserJet", "avahi"], "\(RuleAudit.describe(findings))")
        #expect(findings.first { $0.subject == "samba:data" }?.statusDetail.contains("guests allowed") == true)
        #expect(!findings.contains { $0.status == .pass || $0.status == .error })
    }

    @Test("Debian's smb.conf without smbd, cupsd on localhost with a queue marked shared: nothing is shared, said in notes")
    func none() throws {
        let findings = try RuleAudit.findings("sharing-none", rule: "sharing")
        #expect(findings.map(\.status) == [.pass], "\(RuleAudit.describe(findings))")
        let detail = findings.first?.statusDetail ?? ""
        #expect(detail.contains("smbd is not installed") && detail.contains("HP_LaserJet is marked Shared but cupsd listens only on this machine"), "\(detail)")
    }

    @Test("printers: USB passes, a unit address passes, a name outside dns.allowed_suffixes fails; the page log is informational")
    func printers() throws {
        let findings = try RuleAudit.findings("sharing-served", rule: "print.devices")
        #expect(RuleAudit.status(findings, "printer:HP_LaserJet") == .pass, "\(RuleAudit.describe(findings))")
        #expect(RuleAudit.status(findings, "printer:Floor3_MFP") == .pass)
        #expect(RuleAudit.status(findings, "printer:Print_Shop") == .fail)
        #expect(RuleAudit.status(findings, "page_log") == .informational)
        #expect(!findings.map { String(decoding: $0.json.serialized(), as: UTF8.self) }.joined().contains("zhangsan"), "the page log's user names stay out")
        #expect(PrinterQueue.withoutCredentials("ipp://user:secret@10.1.3.20/ipp") == "ipp://10.1.3.20/ipp")
        let none = try RuleAudit.findings("malware-none", rule: "print.devices")
        #expect(none.map(\.status) == [.pass], "\(RuleAudit.describe(none))")
    }

    @Test("an include named per client, or an unreadable printers.conf or smb.conf, is an error, never a pass")
    func unreadable() throws {
        let scratch = try TestSupport.temporaryDirectory("mijian-sharing")
        let tree = scratch.appendingPathComponent("host").path
        #expect(try TestSupport.run("/bin/cp", ["-a", FixtureHosts.root("sharing-none").path, tree]).status == 0)
        let smb = tree + "/etc/samba/smb.conf"
        try (String(contentsOfFile: smb, encoding: .utf8) + "\n[global]\n   include = /etc/samba/smb.conf.%m\n").write(toFile: smb, atomically: true, encoding: .utf8)
        let perClient = try RuleAudit.findings(nil, rule: "sharing", root: HostRoot(path: tree))
        #expect(RuleAudit.status(perClient, "samba:include") == .error, "\(RuleAudit.describe(perClient))")
        let root = FixtureHosts.root("sharing-none")
        let printers = try RuleAudit.findings(nil, rule: "print.devices", root: root.refusing("/etc/cups/printers.conf"))
        #expect(RuleAudit.status(printers, "/etc/cups/printers.conf") == .error, "\(RuleAudit.describe(printers))")
        #expect(!printers.contains { $0.status == .pass })
        let conf = try RuleAudit.findings(nil, rule: "sharing", root: root.refusing("/etc/samba/smb.conf"))
        #expect(RuleAudit.status(conf, "/etc/samba/smb.conf") == .error && !conf.contains { $0.status == .pass }, "\(RuleAudit.describe(conf))")
    }
}

/// The property of `UnreadableSourceTests` (every path refused in turn: no fail turns into a pass,
/// a rule that read the path is an error) on the hosts of malware.scanner, audit.system,
/// software.prohibited, sharing and print.devices, where their sources exist and so can be
/// refused. These trees have no sysfs: most paths the other probes look up are absent, so the
/// share of refusals that fail a call is not asserted; what this rule set reads is.
@Suite("unreadable sources: the security hosts")
struct SecurityUnreadableTests {
    @Test("every path refused in turn", arguments: ["malware-clamav-fresh", "malware-clamav-stale", "auditd-hardened", "software-prohibited", "sharing-served"])
    func refused(name: String) throws {
        let context = try UnreadableSourceTests.context()
        let root = FixtureHosts.root(name)
        let log = HostAccessLog()
        let facts = UnreadableSourceTests.observe(root.recording(into: log))
        let baseline = AuditChecks.evaluate(facts, context: context)
        var groupLogs: [FactSet: HostAccessLog] = [:]
        for set in FactSet.allCases {
            let groupLog = HostAccessLog()
            _ = UnreadableSourceTests.observe(root.recording(into: groupLog), [set])
            groupLogs[set] = groupLog
        }
        let reads = UnreadableSourceTests.readsPerRule(root: root, groupLogs: groupLogs, facts: facts.hardware)
        var seen: Set<String> = []
        var problems: [String] = []
        var mine = 0
        let security = ["malware.scanner", "audit.system", "software.prohibited", "sharing", "print.devices"]
        for path in log.paths where seen.insert(path).inserted && path != "/" {
            let refusing = root.refusing(path)
            let refused = AuditChecks.evaluate(UnreadableSourceTests.observe(refusing), context: context)
            let targets = [path] + (root.resolve(path).map { $0 == path ? [] : [$0] } ?? [])
            if refusing.refusedCalls > 0, security.contains(where: { rule in targets.contains { reads[rule]?.refused(by: $0) == true } }) { mine += 1 }
            problems += UnreadableSourceTests.violations(
                path: path, targets: targets, refusedCalls: refusing.refusedCalls, refused: refused, baseline: baseline, reads: reads)
        }
        #expect(mine > 10, "\(name): only \(mine) refused paths were read by the security rules")
        #expect(problems.isEmpty, "\(name): \(problems.count) problems:\n\(problems.prefix(40).joined(separator: "\n"))")
    }
}
