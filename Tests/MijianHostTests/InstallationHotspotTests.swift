import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// The hotspot part of `wireless.history` on the fixture hosts `hotspot-*` (built by
/// `scripts/fixtures/make-install-hosts.py`): what the probes read from NetworkManager keyfiles,
/// hostapd's and create_ap's configurations and the links, and what the rule decides.
@Suite("wireless.history: hotspot fixtures")
struct InstallationHotspotTests {
    static func findings(_ name: String) throws -> [Finding] {
        let facts = HostProbe.observe(
            root: FixtureHosts.root(name), live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate, collecting: [.profiles, .interfaces, .routes])
        let context = CheckContext(policy: try TestSupport.defaultPolicy(), hostID: "hotspot", observedAt: TestSupport.fixedDate)
        return AuditChecks.evaluate(facts, context: context, only: ["wireless.history"])
    }

    @Test("a keyfile with [wifi] mode=ap or mode=adhoc, hostapd.conf and create_ap.conf are read; passphrases are not kept")
    func probe() {
        let history = HistoryProbe.observe(root: FixtureHosts.root("hotspot-nm-ap"), live: false, logger: FixtureHosts.logger, logs: false)
        let modes = Dictionary(history.profiles.map { ($0.name, $0.mode ?? "-") }, uniquingKeysWith: { first, _ in first })
        #expect(modes == ["Hotspot": "ap", "Meeting adhoc": "adhoc", "Wired connection 1": "-"])
        #expect(history.accessPoints == [
            AccessPointConfig(tool: .hostapd, path: "/etc/hostapd/hostapd.conf", interface: "wlan0", ssid: "jsj-0051-ap"),
            AccessPointConfig(tool: .createAP, path: "/etc/create_ap.conf", interface: "wlp0s20f3", ssid: "jsj-0051-share", shares: "eno1"),
        ])
        let evidence = history.accessPoints.map { String(decoding: $0.json.serialized(), as: UTF8.self) }.joined()
        #expect(!evidence.contains("12345678") && !evidence.contains("secret passphrase"))
    }

    @Test("the hotspot host fails for each hotspot, and its missing links are an error, not a pass")
    func hotspotHost() throws {
        let findings = try Self.findings("hotspot-nm-ap")
        #expect(Set(findings.filter { $0.status == .fail }.map(\.subject)) == [
            "/etc/NetworkManager/system-connections/Hotspot.nmconnection", "/etc/NetworkManager/system-connections/Meeting adhoc.nmconnection",
            "/etc/hostapd/hostapd.conf", "/etc/create_ap.conf",
        ])
        #expect(findings.first { $0.subject == "dual-nic" }?.status == .error)
        #expect(!findings.contains { $0.status == .pass })
    }

    @Test("two up Ethernet links, one on 192.168.1.0/24 outside the unit, fail as a dual NIC; the single-link desktop passes")
    func dualNIC() throws {
        let findings = try Self.findings("hotspot-dual-nic")
        #expect(findings.map(\.subject) == ["dual-nic"])
        #expect(findings.first?.status == .fail)
        #expect(findings.first?.statusDetail.contains("eno1 (10.20.30.0/24), enp2s0 (192.168.1.0/24)") == true)
        #expect(try Self.findings("wired-desktop").map(\.status) == [.pass])
    }
}
