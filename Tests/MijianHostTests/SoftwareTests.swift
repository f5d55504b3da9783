import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// Audits of one rule on a fixture host (or the live machine), as `mijian audit --rule` runs them.
enum RuleAudit {
    static func findings(_ name: String?, rule: String, policy: Policy? = nil, root: HostRoot? = nil, at date: Date = TestSupport.fixedDate) throws -> [Finding] {
        let policy = try policy ?? TestSupport.defaultPolicy()
        let root = root ?? (name.map(FixtureHosts.root) ?? .live)
        let sets = AuditChecks.factSets(for: [rule], policy: policy)
        let facts = HostProbe.observe(root: root, live: root.isLive, logger: FixtureHosts.logger, at: date, collecting: sets, policy: policy)
        let context = CheckContext(policy: policy, hostID: "security", observedAt: date)
        return AuditChecks.evaluate(facts, context: context, only: [rule])
    }

    static func status(_ findings: [Finding], _ subject: String) -> Status? {
        findings.first { $0.subject == subject }?.status
    }

    static func describe(_ findings: [Finding]) -> String {
        findings.map { "\($0.subject) \($0.status.rawValue): \($0.statusDetail)" }.joined(separator: "\n")
    }

    /// The built-in policy with the top-level blocks `yaml` sets replaced by it.
    static func policy(adding yaml: String) throws -> Policy {
        let keys = Set(yaml.split(separator: "\n").compactMap { line -> Substring? in
            guard let first = line.first, first != " ", first != "#", let colon = line.firstIndex(of: ":") else { return nil }
            return line[..<colon]
        })
        var kept: [Substring] = []
        var skipping = false
        for line in EmbeddedPolicies.classifiedWorkstation.split(separator: "\n", omittingEmptySubsequences: false) {
            if let first = line.first, first != " ", first != "#" {
                skipping = line.firstIndex(of: ":").map { keys.contains(line[..<$0]) } ?? false
            }
            if !skipping { kept.append(line) }
        }
        return try TestSupport.policy(kept.joined(separator: "\n") + "\n" + yaml)
    }
}

@Suite("software.prohibited")
struct SoftwareTests {
    @Test("dpkg packages, /opt and /opt/apps, flatpak, snap, install paths and processes are each found")
    func everyKindFound() throws {
        let facts = SoftwareProbe.observe(root: FixtureHosts.root("software-prohibited"), live: false, logger: FixtureHosts.logger, paths: ["/usr/local/sunlogin"])
        let names = Set(facts.installed.map { "\($0.kind.rawValue):\($0.name)" })
        for expected in ["dpkg:telegram-desktop", "dpkg:openvpn", "dpkg:x11vnc", "dpkg:coreutils", "opt:todesk", "opt:com.tencent.wechat", "flatpak:com.qq.QQ", "snap:slack", "path:/usr/local/sunlogin"] {
            #expect(names.contains(expected), "\(expected) not in \(names.sorted())")
        }
        #expect(facts.package("openvpn")?.version == "2.6.14-0+deb12u2")
        let services = ServiceProbe.observe(root: FixtureHosts.root("software-prohibited"), live: false, logger: FixtureHosts.logger)
        #expect(services.processTableRead)
        // comm is cut at 15 bytes; cmdline gives the program's name.
        #expect(services.processes.first { $0.pid == 1288 }?.executable == "gnome-remote-desktop-daemon")
        #expect(services.processes.first { $0.pid == 2 }?.executable == "kthreadd")
    }

    @Test("each prohibited product found fails, by category; a clean host passes")
    func prohibited() throws {
        let findings = try RuleAudit.findings("software-prohibited", rule: "software.prohibited")
        let failing = Set(findings.filter { $0.status == .fail }.map(\.subject))
        let expected: Set = [
            "software:Telegram", "software:OpenVPN", "software:x11vnc", "software:ToDesk", "software:WeChat 微信", "software:QQ", "software:Slack",
            "software:Sunlogin 向日葵", "software:GNOME Remote Desktop",
        ]
        #expect(failing == expected, "\(RuleAudit.describe(findings))")
        #expect(findings.first { $0.subject == "software:Sunlogin 向日葵" }?.statusDetail.contains("running (sunloginclient pid 1204)") == true)
        #expect(!findings.contains { $0.status == .pass || $0.status == .error })

        let clean = try RuleAudit.findings("malware-clamav-fresh", rule: "software.prohibited")
        #expect(clean.map(\.status) == [.pass], "\(RuleAudit.describe(clean))")
        #expect(clean.first?.statusDetail.contains("5 dpkg packages") == true, "\(RuleAudit.describe(clean))")
    }

    @Test("a unit adds entries and exempts built-in ones by name; unknown names and empty entries are refused")
    func policyExtends() throws {
        let policy = try RuleAudit.policy(adding: """
            software:
              allow: [OpenVPN]
              prohibited:
                - name: Office sync
                  category: cloud-storage
                  packages: [coreutils]
            """)
        let findings = try RuleAudit.findings("software-prohibited", rule: "software.prohibited", policy: policy)
        #expect(RuleAudit.status(findings, "software:OpenVPN") == nil)
        #expect(RuleAudit.status(findings, "software:Office sync") == .fail)
        #expect(throws: MijianError.self) { try RuleAudit.policy(adding: "software:\n  allow: [NoSuchThing]\n") }
        #expect(throws: MijianError.self) { try RuleAudit.policy(adding: "software:\n  prohibited:\n    - {name: X, category: p2p}\n") }
        #expect(throws: MijianError.self) { try RuleAudit.policy(adding: "software:\n  prohibited:\n    - {name: X, category: games, packages: [x]}\n") }
    }

    @Test("no dpkg database is an error, and an unreadable one too; never a pass")
    func unreadable() throws {
        let refused = try RuleAudit.findings(nil, rule: "software.prohibited", root: FixtureHosts.root("malware-clamav-fresh").refusing("/var/lib/dpkg/status"))
        #expect(RuleAudit.status(refused, "/var/lib/dpkg/status") == .error, "\(RuleAudit.describe(refused))")
        #expect(!refused.contains { $0.status == .pass })
        let scratch = try TestSupport.temporaryDirectory("mijian-software")
        let missing = try RuleAudit.findings(nil, rule: "software.prohibited", root: HostRoot(path: scratch.path))
        #expect(RuleAudit.status(missing, "/var/lib/dpkg/status") == .error, "\(RuleAudit.describe(missing))")
        #expect(!missing.contains { $0.status == .pass })
        let process = try RuleAudit.findings(nil, rule: "software.prohibited", root: FixtureHosts.root("malware-clamav-fresh").refusing("/proc/431/comm"))
        #expect(RuleAudit.status(process, "/proc/431/comm") == .error, "\(RuleAudit.describe(process))")
    }
}
