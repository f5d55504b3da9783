import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

@Suite("history probe over fixture trees")
struct HistoryProbeTests {
    static func history(_ name: String) -> HistoryFacts {
        HistoryProbe.observe(root: FixtureHosts.root(name), live: false, logger: FixtureHosts.logger)
    }

    @Test("laptop: NetworkManager Wi-Fi and VPN, wpa_supplicant networks with lines, iwd, a Bluetooth pairing")
    func laptop() throws {
        let facts = Self.history("laptop-wifi-bt")
        let names = facts.profiles.map { "\($0.tool.rawValue)|\($0.type)|\($0.name)|\($0.location)" }.sorted()
        #expect(names == [
            "NetworkManager|vpn|Home VPN|/etc/NetworkManager/system-connections/Home VPN.nmconnection",
            "NetworkManager|wifi|Office-5G|/etc/NetworkManager/system-connections/Office-5G.nmconnection",
            "ifupdown|wifi|wlp0s20f3|/etc/network/interfaces.d/wlan:2",
            "iwd|psk|Hotel Guest|/var/lib/iwd/Hotel Guest.psk",
            "wpa_supplicant|open|CoffeeShop|/etc/wpa_supplicant/wpa_supplicant-wlp0s20f3.conf:4",
            "wpa_supplicant|wifi|Airport-Free|/etc/wpa_supplicant/wpa_supplicant-wlp0s20f3.conf:9",
        ])
        #expect(facts.profiles.first { $0.type == "vpn" }?.subtype == "org.freedesktop.NetworkManager.openvpn")
        #expect(facts.pairings == [BluetoothPairing(adapter: "A4:C3:F0:11:22:34", device: "40:4E:36:AA:BB:CC", name: "Pixel 7", path: "/var/lib/bluetooth/A4:C3:F0:11:22:34/40:4E:36:AA:BB:CC")])
    }

    @Test("cellular modem: a pppd peer and a wvdial dialer, not the ppp package's example peer")
    func dialUp() throws {
        let facts = Self.history("cellular-modem")
        let names = facts.profiles.map { "\($0.tool.rawValue)|\($0.type)|\($0.name)|\($0.location)|\($0.category ?? "-")" }.sorted()
        #expect(names == [
            "NetworkManager|ethernet|Wired connection 1|/etc/NetworkManager/system-connections/Wired connection 1.nmconnection|-",
            "NetworkManager|gsm|China Mobile|/etc/NetworkManager/system-connections/China Mobile.nmconnection|mobile broadband",
            "pppd|ppp|unicom|/etc/ppp/peers/unicom|dial-up (PPP)",
            "wvdial|ppp|cmnet|/etc/wvdial.conf:5|dial-up (PPP)",
        ])
        #expect(facts.sources.contains { $0.path == "/etc/wvdial.conf" && $0.state == .ok })
        #expect(facts.sources.contains { $0.path == "/etc/network/interfaces" && $0.state == .missing })
        #expect(Self.history("laptop-wifi-bt").profiles.first { $0.tool == .ifupdown }?.ssid == "Field-Office")
    }

    @Test("ifupdown stanzas: Wi-Fi options, the ppp method and a provider; wired stanzas are not profiles")
    func ifupdownStanzas() {
        let text = """
            auto lo
            iface lo inet loopback
            # iface fake inet dhcp
            #     wpa-ssid commented-out
            iface eth0 inet dhcp
            iface wlan1 inet manual
                wpa-roam /etc/wpa_supplicant/roam.conf
            iface wlan2 inet dhcp
            \twireless-essid Old Net
            mapping eth1
                script /bin/true
            iface dsl inet ppp
                provider dsl-provider
            iface gprs inet static
                provider gprs
            """
        let profiles = HistoryReader.ifupdownProfiles(text, path: "/etc/network/interfaces")
        #expect(profiles.map { "\($0.name)|\($0.type)|\($0.ssid ?? "-")|\($0.line ?? 0)" } == [
            "wlan1|wifi|-|6", "wlan2|wifi|Old Net|8", "dsl|ppp|-|12", "gprs|ppp|-|14",
        ])
    }

    /// NetworkManager and BlueZ (GKeyFile), wpa_supplicant, ifupdown, wvdial and journald all read
    /// a configuration file saved with CR LF line ends as they read it with LF: every fixture
    /// host's configuration files turned into CR LF give the same profiles, pairings and journal
    /// setting. (A split on the Character "\n" read such a file as one line and saw nothing.)
    @Test("configuration files with CR LF line ends give the same history facts", arguments: FixtureHosts.names)
    func crlfConfigurationFiles(host: String) throws {
        let fm = FileManager.default
        let copy = try TestSupport.temporaryDirectory("mijian-crlf").appendingPathComponent(host)
        defer { try? fm.removeItem(at: copy.deletingLastPathComponent()) }
        try fm.copyItem(at: TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/\(host)"), to: copy)
        var converted = 0
        for top in ["etc", "var/lib/bluetooth"] {
            let base = copy.appendingPathComponent(top)
            guard let walk = fm.enumerator(at: base, includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey]) else { continue }
            for case let url as URL in walk {
                let values = try url.resourceValues(forKeys: [.isRegularFileKey, .isSymbolicLinkKey])
                guard values.isRegularFile == true, values.isSymbolicLink != true else { continue }
                let bytes = try Data(contentsOf: url)
                guard !bytes.contains(0), bytes.contains(UInt8(ascii: "\n")), !bytes.contains(UInt8(ascii: "\r")) else { continue }
                var out = Data()
                for byte in bytes {
                    if byte == UInt8(ascii: "\n") { out.append(UInt8(ascii: "\r")) }
                    out.append(byte)
                }
                try out.write(to: url)
                converted += 1
            }
        }
        #expect(converted > 0)
        let before = Self.history(host)
        let after = HistoryProbe.observe(root: HostRoot(path: copy.path), live: false, logger: FixtureHosts.logger)
        #expect(after.profiles.map(\.location) == before.profiles.map(\.location))
        #expect(after.profiles.map { "\($0.type) \($0.name) \($0.ssid ?? "-")" } == before.profiles.map { "\($0.type) \($0.name) \($0.ssid ?? "-")" })
        #expect(after.pairings.count == before.pairings.count)
        #expect(after.journal.storage == before.journal.storage && after.journal.storageLocation == before.journal.storageLocation)
    }

    @Test("NetworkManager SSIDs written as byte lists are decoded; bytes that are not text stay visible")
    func keyfileSSIDs() {
        #expect(HistoryReader.keyfileSSID("Office-5G") == "Office-5G")
        #expect(HistoryReader.keyfileSSID("79;102;102;105;99;101;") == "Office")
        #expect(HistoryReader.keyfileSSID("229;175;134;") == "密")
        #expect(HistoryReader.keyfileSSID("1;255;") == "\\x01\\xff")
        #expect(HistoryReader.keyfileSSID("a;b;") == "a;b;")
    }

    @Test("no secret from any profile reaches the facts")
    func noSecrets() {
        for name in FixtureHosts.names {
            let dump = String(describing: Self.history(name))
            for secret in ["correct-horse-battery-staple", "hunter2-vpn-secret", "airport-secret-psk", "hotel-secret-pass", "gsm-secret-pw", "0123456789ABCDEF0123456789ABCDEF", "ifupdown-secret-psk", "wvdial-secret-pw"] {
                #expect(!dump.contains(secret), "\(name) leaks \(secret)")
            }
        }
    }

    @Test("journal: persistent with its oldest header time; volatile by drop-in; kern.log stamps in both formats")
    func journal() throws {
        let desktop = Self.history("wired-desktop")
        #expect(desktop.journal.isPersistent)
        #expect(desktop.journal.storage == nil)
        let oldest = try #require(desktop.journal.persistentFiles.compactMap(\.firstEntry).min())
        #expect(RFC3339.string(from: oldest) == "2026-08-20T00:00:00Z")
        let kern = try #require(desktop.kernelLogs.first { $0.path == "/var/log/kern.log.1" })
        #expect(kern.firstEntry.map { RFC3339.string(from: $0) } == "2026-11-10T00:00:01Z")
        #expect(desktop.kernelLogs.contains { $0.path == "/var/log/kern.log.2.gz" && $0.firstEntry == nil })

        let laptop = Self.history("laptop-wifi-bt")
        #expect(!laptop.journal.isPersistent)
        #expect(laptop.journal.volatileDirectory)
        #expect(laptop.journal.storage == "volatile")
        #expect(laptop.journal.storageLocation == "/etc/systemd/journald.conf.d/volatile.conf:2")
        let legacy = try #require(laptop.kernelLogs.first?.firstEntry)
        #expect(RFC3339.string(from: legacy).hasSuffix("-10-01T09:00:00Z"))

        let phone = Self.history("phone-tethering")
        #expect(!phone.journal.isPersistent)
        #expect(phone.kernelLogs.isEmpty)
    }

    @Test("a syslog stamp without a year takes the year before when it would lie in the future")
    func yearless() throws {
        let modified = try #require(RFC3339.date(from: "2026-01-05T00:00:00Z"))
        let date = try #require(HistoryReader.firstTimestamp(Array("Dec 30 10:00:00 host kernel: x\n".utf8), modified: modified))
        #expect(RFC3339.string(from: date) == "2025-12-30T10:00:00Z")
        #expect(HistoryReader.firstTimestamp(Array("garbage\n".utf8), modified: modified) == nil)
    }
}
