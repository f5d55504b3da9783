import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// `--rule X` observes only the fact groups X's rule reads, and gives the very findings (evidence
/// included) that X has in a full audit; a rule whose groups were not collected is never a pass.
@Suite("fact groups per rule")
struct RuleFactSetTests {
    /// Where each group's probe may look (a path or the tree under it). Groups share some places
    /// (`/sys/class/net` for interfaces and hardware, `/var/log` for both log groups).
    static let places: [FactSet: [String]] = [
        .routes: ["/proc/net/route", "/proc/net/ipv6_route"],
        .interfaces: ["/sys/class/net", "/sys/devices", "/proc/net/if_inet6", "/proc/net/fib_trie"],
        .sockets: ["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"],
        .resolvers: [
            "/etc/resolv.conf", "/run/systemd/resolve/resolv.conf", "/etc/systemd/resolved.conf", "/etc/systemd/resolved.conf.d",
            "/run/systemd/resolved.conf.d", "/usr/lib/systemd/resolved.conf.d",
        ],
        .hardware: [
            "/sys", "/lib/modules", "/proc/modules", "/proc/cmdline", "/proc/sys/kernel/osrelease", "/etc/modprobe.d", "/run/modprobe.d",
            "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d",
        ],
        .profiles: [
            "/etc/NetworkManager/system-connections", "/etc/wpa_supplicant", "/var/lib/iwd", "/etc/network/interfaces",
            "/etc/network/interfaces.d", "/etc/ppp/peers", "/etc/wvdial.conf", "/var/lib/bluetooth", "/etc/hostapd", "/etc/default/hostapd",
            "/etc/create_ap.conf",
        ],
        .logRetention: [
            "/var/log", "/run/log/journal", "/etc/systemd/journald.conf", "/etc/systemd/journald.conf.d", "/run/systemd/journald.conf.d",
            "/usr/local/lib/systemd/journald.conf.d", "/usr/lib/systemd/journald.conf.d",
        ],
        .usbHistory: ["/var/log", "/run/log/journal"],
        .installation: [
            "/var/log", "/etc/machine-id", "/etc/os-release", "/usr/lib/os-release", "/boot/grub/grub.cfg", "/sys/firmware/efi/efivars",
            "/boot/efi/EFI", "/etc/libvirt/qemu", "/var/lib/libvirt", "/etc/passwd", "/home", "/root",
        ],
        .channels: [
            "/sys", "/proc/sys/dev/cdrom/info", "/lib/modules", "/proc/modules", "/proc/cmdline", "/proc/sys/kernel/osrelease",
            "/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d",
        ],
        .services: ["/proc", "/etc/systemd/system"],
        .software: ["/var/lib/dpkg/status", "/opt", "/var/lib/flatpak/app", "/snap", "/var/lib/snapd/snaps", "/usr/local", "/usr/share"],
        .malware: [
            "/var/lib/clamav", "/etc/crontab", "/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly",
            "/var/spool/cron/crontabs", "/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
        ],
        .auditSystem: ["/proc/cmdline", "/etc/default/grub", "/etc/default/grub.d", "/etc/audit"],
        .sharing: ["/etc/samba", "/var/lib/samba/usershares", "/etc/exports", "/etc/exports.d", "/etc/cups/cupsd.conf", "/etc/avahi", "/usr/sbin"],
        .printers: ["/etc/cups/printers.conf", "/var/log/cups/page_log"],
        .auth: [
            "/etc/pam.d", "/etc/security", "/etc/login.defs", "/etc/passwd", "/etc/shadow", "/usr/sbin/sshd", "/etc/ssh",
            "/etc/systemd/system/multi-user.target.wants", "/etc/systemd/system/sockets.target.wants", "/usr/share/xsessions",
            "/usr/share/wayland-sessions", "/usr/bin/xscreensaver", "/etc/dconf", "/usr/share/dconf", "/usr/share/glib-2.0/schemas",
            "/etc/X11/app-defaults", "/usr/share/X11/app-defaults", "/etc/profile", "/etc/profile.d", "/etc/bash.bashrc",
        ],
        // The homes: /etc/passwd's (added per host by `places(_:host:)`), /root and /home's; with no
        // /etc/passwd, `/` is listed and a top directory holding a user's dot-directory is a home.
        .browserHistory: ["/etc/passwd", "/root", "/home", "/", "/*/.config", "/*/.mozilla", "/*/.local", "/*/snap", "/*/.var"],
    ]

    /// The places of `set` on fixture host `host`: the table's, and for the browser histories the
    /// home directories the host's /etc/passwd names (the probe looks at each, and under it).
    static func places(_ set: FactSet, host: String) -> [String] {
        var result = places[set] ?? []
        if set == .browserHistory {
            let passwd = FixtureHosts.root(host).real("/etc/passwd")
            let text = (try? String(contentsOfFile: passwd, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                if fields.count >= 7, fields[5].hasPrefix("/"), fields[5] != "/" { result.append(String(fields[5])) }
            }
        }
        return result
    }

    /// Whether a group may open `path` on `host`: one of its places, inside one, or a directory
    /// above one (opened to read a symbolic link in it, never listed). A place's `*` stands for any
    /// one name; the place `/` is the root alone, not what is under it.
    static func allowed(_ path: String, by sets: Set<FactSet>, host: String) -> Bool {
        let names = path.split(separator: "/")
        return sets.contains { set in
            places(set, host: host).contains { place in
                if place == "/" { return path == "/" }
                let pattern = place.split(separator: "/")
                return zip(names, pattern).allSatisfy { $0 == $1 || $1 == "*" }
            }
        }
    }

    /// The host paths one observation of `sets` opened, listed or looked at.
    static func recordedObservation(_ name: String, _ sets: Set<FactSet>) -> (AuditFacts, [String]) {
        let log = HostAccessLog()
        let root = FixtureHosts.root(name).recording(into: log)
        let facts = HostProbe.observe(root: root, live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate, collecting: sets)
        return (facts, log.paths)
    }

    static func policy() throws -> Policy {
        var policy = try TestSupport.defaultPolicy()
        policy.ledger = [Policy.LedgerEntry(vendor: "0781", product: "5583", serial: "4C530001230615117204", label: "秘-U-0012", classification: .confidential, responsible: "张三")]
        return policy
    }

    @Test("a full audit needs every group; each rule names at least one")
    func fullAuditNeedsEverything() throws {
        let policy = try Self.policy()
        #expect(AuditChecks.factSets(policy: policy) == FactSet.all)
        for check in AuditChecks.all { #expect(!check.needs.isEmpty, "\(check.rule.id)") }
        #expect(AuditChecks.factSets(for: ["net.sockets"], policy: policy) == [.sockets])
        #expect(AuditChecks.factSets(for: ["net.sockets", "usb.history"], policy: policy) == [.sockets, .usbHistory])
    }

    @Test("a rule the policy disables costs no probe")
    func disabledRuleCostsNothing() throws {
        var policy = try Self.policy()
        policy.rules["net.sockets"] = Policy.RuleOverride(enabled: false)
        #expect(AuditChecks.factSets(for: ["net.sockets"], policy: policy).isEmpty)
        #expect(!AuditChecks.factSets(policy: policy).contains(.sockets))
        let facts = AuditFacts(root: "/", live: false, observedAt: TestSupport.fixedDate, collected: [])
        let context = CheckContext(policy: policy, hostID: "h", observedAt: TestSupport.fixedDate)
        #expect(AuditChecks.evaluate(facts, context: context, only: ["net.sockets"]).map(\.status) == [.notchecked])
    }

    @Test("--rule net.sockets reads the four socket tables and nothing else", arguments: FixtureHosts.names)
    func socketsReadOnlySockets(name: String) throws {
        let sets = AuditChecks.factSets(for: ["net.sockets"], policy: try Self.policy())
        let (facts, paths) = Self.recordedObservation(name, sets)
        #expect(Set(paths) == ["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"])
        #expect(facts.collected == [.sockets])
        #expect(facts.hardware.sources.isEmpty && facts.history.sources.isEmpty && facts.usbHistory.sources.isEmpty)
        #expect(facts.network.routeSources.isEmpty && facts.network.interfaceSources.isEmpty && facts.network.resolverSources.isEmpty)
    }

    @Test("each rule alone reads only the places of the groups it needs", arguments: FixtureHosts.names)
    func eachRuleReadsOnlyItsPlaces(name: String) throws {
        let policy = try Self.policy()
        for check in AuditChecks.all {
            let sets = AuditChecks.factSets(for: [check.rule.id], policy: policy)
            #expect(sets == check.needs)
            let (facts, paths) = Self.recordedObservation(name, sets)
            #expect(facts.collected == sets)
            #expect(!paths.isEmpty, "\(check.rule.id) looked at nothing on \(name)")
            let strays = paths.filter { !Self.allowed($0, by: sets, host: name) }
            #expect(strays.isEmpty, "\(check.rule.id) on \(name) read \(strays.prefix(5)) outside \(sets.sorted().map(\.rawValue))")
        }
    }

    @Test("each group's probe reads only its own places", arguments: FixtureHosts.names)
    func eachGroupReadsOnlyItsPlaces(name: String) {
        for set in FactSet.allCases {
            let (_, paths) = Self.recordedObservation(name, [set])
            #expect(!paths.isEmpty, "\(set.rawValue) looked at nothing on \(name)")
            let strays = paths.filter { !Self.allowed($0, by: [set], host: name) }
            #expect(strays.isEmpty, "\(set.rawValue) on \(name) read \(strays.prefix(5))")
        }
    }

    @Test("a rule run alone gives exactly its findings of the full audit, evidence included", arguments: FixtureHosts.names)
    func selectedEqualsFull(name: String) throws {
        let policy = try Self.policy()
        let context = CheckContext(policy: policy, hostID: "fixture-\(name)", observedAt: TestSupport.fixedDate)
        let (all, _) = Self.recordedObservation(name, FactSet.all)
        let full = AuditChecks.evaluate(all, context: context)
        #expect(Set(full.map(\.rule.id)) == Set(AuditChecks.all.map(\.rule.id)))
        for check in AuditChecks.all {
            let only: Set = [check.rule.id]
            let (facts, _) = Self.recordedObservation(name, AuditChecks.factSets(for: only, policy: policy))
            let alone = AuditChecks.evaluate(facts, context: context, only: only)
            let expected = full.filter { $0.rule.id == check.rule.id }
            #expect(!alone.isEmpty)
            #expect(alone == expected, "\(check.rule.id) on \(name)")
            #expect(alone.map { $0.json.prettySerialized() } == expected.map { $0.json.prettySerialized() })
        }
    }

    @Test("a rule whose facts were not collected is an error naming them, never a pass")
    func uncollectedIsError() throws {
        let policy = try Self.policy()
        let context = CheckContext(policy: policy, hostID: "h", observedAt: TestSupport.fixedDate)
        let facts = AuditFacts(root: "/", live: false, observedAt: TestSupport.fixedDate, collected: [.sockets])
        let findings = AuditChecks.evaluate(facts, context: context)
        #expect(findings.count >= AuditChecks.all.count)
        for finding in findings where finding.rule.id != "net.sockets" {
            #expect(finding.status == .error, "\(finding.rule.id)")
            #expect(finding.statusDetail.contains("were not collected"))
        }
        let routes = findings.first { $0.rule.id == "net.internet-route" }
        #expect(routes?.statusDetail.contains("(routes)") == true)
        // Collected but empty: the rule itself judges that no socket table was read.
        let sockets = findings.filter { $0.rule.id == "net.sockets" }
        #expect(!sockets.isEmpty && sockets.allSatisfy { !$0.statusDetail.contains("were not collected") })
    }
}
