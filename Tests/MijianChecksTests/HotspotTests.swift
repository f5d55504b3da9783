import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianChecks

/// `wireless.history`'s hotspot part: access-point and ad-hoc profiles, hostapd and create_ap
/// configurations, and a second wired link to another network (dual NIC).
@Suite("wireless.history: hotspots and dual NIC")
struct HotspotTests {
    static let sources = [
        FactSource(path: "/etc/NetworkManager/system-connections", state: .ok, count: 1), FactSource(path: "/etc/hostapd", state: .missing),
        FactSource(path: "/etc/create_ap.conf", state: .missing),
    ]

    static func facts(_ history: HistoryFacts, links: [NetworkInterface] = [], routes: [Route] = []) -> AuditFacts {
        AuditFacts(
            root: "/fixture", live: false, observedAt: TestSupport.fixedDate, network: NetworkFacts(routes: routes, interfaces: links), history: history)
    }

    static func link(_ name: String, up: Bool = true, bus: String? = "pci", wireless: Bool = false, addresses: [String] = []) -> NetworkInterface {
        NetworkInterface(
            name: name, linkType: 1, flags: up ? 0x1003 : 0x1002, operState: up ? "up" : "down", driver: "e1000e", bus: bus, isWireless: wireless,
            addresses: addresses.compactMap { text in
                let parts = text.split(separator: "/")
                guard parts.count == 2, let address = IPAddress(parts[0]), let length = Int(parts[1]) else { return nil }
                return InterfaceAddress(address: address, prefixLength: length)
            })
    }

    static func connected(_ prefix: String, _ device: String) -> Route {
        Route(table: 254, type: .unicast, destination: IPNetwork(prefix)!, device: device, source: "/proc/net/route")
    }

    @Test("an access-point and an ad-hoc profile fail as a self-built hotspot; an infrastructure one stays a saved Wi-Fi profile")
    func profiles() throws {
        let history = HistoryFacts(sources: Self.sources, profiles: [
            SavedProfile(tool: .networkManager, type: "wifi", name: "Hotspot", ssid: "Hotspot-jsj0051", path: "/etc/NetworkManager/system-connections/Hotspot.nmconnection", mode: "ap"),
            SavedProfile(tool: .networkManager, type: "wifi", name: "Meeting adhoc", ssid: "meeting-room", path: "/etc/NetworkManager/system-connections/Meeting adhoc.nmconnection", mode: "adhoc"),
            SavedProfile(tool: .networkManager, type: "wifi", name: "Office", ssid: "Office", path: "/etc/NetworkManager/system-connections/Office.nmconnection", mode: "infrastructure"),
        ])
        let findings = HistoryChecks.wirelessHistory(Self.facts(history), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.fail, .fail, .fail])
        #expect(findings[0].statusDetail.contains("self-built Wi-Fi hotspot (access point, mode=ap)"))
        #expect(findings[1].statusDetail.contains("self-built Wi-Fi ad-hoc network (mode=adhoc)"))
        #expect(findings[2].statusDetail.contains("this machine has been or can be set up to join it"))
        #expect(!findings[2].statusDetail.contains("hotspot"))
    }

    @Test("hostapd and create_ap configurations fail, naming SSID, interface and the shared link")
    func accessPointConfigs() throws {
        var history = HistoryFacts(sources: Self.sources)
        history.accessPoints = [
            AccessPointConfig(tool: .hostapd, path: "/etc/hostapd/hostapd.conf", interface: "wlan0", ssid: "jsj-0051-ap"),
            AccessPointConfig(tool: .createAP, path: "/etc/create_ap.conf", interface: "wlp0s20f3", ssid: "jsj-0051-share", shares: "eno1"),
        ]
        let findings = HistoryChecks.wirelessHistory(Self.facts(history), try HardwareFixtures.context())
        #expect(findings.map(\.subject) == ["/etc/hostapd/hostapd.conf", "/etc/create_ap.conf"])
        #expect(findings.allSatisfy { $0.status == .fail })
        #expect(findings[1].statusDetail.contains("SSID \"jsj-0051-share\", on wlp0s20f3, sharing eno1"))
    }

    @Test("two wired links on different networks fail as a dual NIC; on the same network they pass")
    func dualNIC() throws {
        let context = try HardwareFixtures.context()
        let history = HistoryFacts(sources: Self.sources)
        let apart = Self.facts(history, links: [Self.link("eno1", addresses: ["10.20.30.40/24"]), Self.link("enp2s0", addresses: ["10.99.1.5/24"])])
        let dual = HistoryChecks.wirelessHistory(apart, context)
        #expect(dual.map(\.subject) == ["dual-nic"])
        #expect(dual.first?.status == .fail)
        #expect(dual.first?.statusDetail.contains("on different networks: eno1 (10.20.30.0/24), enp2s0 (10.99.1.0/24)") == true)

        let outside = Self.facts(history, links: [Self.link("eno1"), Self.link("enp2s0")], routes: [Self.connected("10.20.30.0/24", "eno1"), Self.connected("192.168.1.0/24", "enp2s0")])
        let found = HistoryChecks.wirelessHistory(outside, context)
        #expect(found.first?.status == .fail)
        #expect(found.first?.statusDetail.contains("enp2s0 on a network outside the unit's") == true)

        let same = Self.facts(history, links: [Self.link("eno1", addresses: ["10.20.30.40/24"]), Self.link("eno2", addresses: ["10.20.30.41/24"])])
        #expect(HistoryChecks.wirelessHistory(same, context).map(\.status) == [.pass])

        let unknown = Self.facts(history, links: [Self.link("eno1", addresses: ["10.20.30.40/24"]), Self.link("eno2")])
        #expect(HistoryChecks.wirelessHistory(unknown, context).map(\.status) == [.informational])
    }

    @Test("a down link, a wireless one, a virtual one (no device), a port of a bridge or a USB link (net.interfaces') is not a second wired link")
    func notWired() throws {
        var bridged = Self.link("eno2", addresses: ["192.168.1.5/24"])
        bridged.master = "br0"
        let links = [
            Self.link("eno1", addresses: ["10.20.30.40/24"]), Self.link("eno3", up: false, addresses: ["192.168.1.5/24"]),
            Self.link("wlan0", wireless: true, addresses: ["192.168.1.6/24"]), Self.link("veth0", bus: nil, addresses: ["192.168.1.7/24"]), bridged,
            Self.link("usb0", bus: "usb", addresses: ["192.168.42.129/24"]),
        ]
        #expect(DualLinkCheck.wiredLinks(NetworkFacts(interfaces: links)).map(\.name) == ["eno1"])
        let findings = HistoryChecks.wirelessHistory(Self.facts(HistoryFacts(sources: Self.sources), links: links), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.pass])
    }
}
