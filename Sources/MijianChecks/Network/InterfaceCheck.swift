import Foundation
import MijianCore

/// `net.interfaces`: no interface that is up carries a public address outside the unit, no
/// tunnel exists, and no network link runs over USB (phone tethering, cellular modems).
enum InterfaceCheck {
    /// Link kinds (`IFLA_INFO_KIND`, sysfs DEVTYPE) that carry traffic inside another protocol.
    static let tunnelKinds: Set<String> = [
        "tun", "tap", "wireguard", "ppp", "ipip", "gre", "gretap", "ip6gre", "ip6gretap", "sit", "ip6tnl", "vti", "vti6", "ip_vti",
        "ip6_vti", "erspan", "ip6erspan", "l2tp", "l2tpeth", "geneve", "vxlan", "bareudp", "ovpn", "xfrm", "amt", "gtp",
    ]
    /// ARPHRD types of tunnels and point-to-point links: ppp, ipip, ip6 tunnel, sit, gre, ip6gre.
    static let tunnelLinkTypes: [Int: String] = [512: "ppp", 768: "ipip", 769: "ip6tnl", 776: "sit", 778: "gre", 823: "ip6gre"]
    /// The devices the kernel creates by itself when a tunnel module loads; down, they carry nothing.
    static let fallbackDevices: Set<String> = ["tunl0", "gre0", "gretap0", "erspan0", "sit0", "ip6tnl0", "ip6gre0", "ip_vti0", "ip6_vti0"]
    /// USB network drivers of phones (tethering) and modems.
    static let usbDrivers: Set<String> = [
        "rndis_host", "cdc_ether", "cdc_ncm", "cdc_eem", "cdc_subset", "cdc_mbim", "huawei_cdc_ncm", "qmi_wwan", "ipheth", "sierra_net",
        "cdc_phonet", "zaurus", "r8152", "ax88179_178a", "asix", "aqc111", "lan78xx", "smsc95xx", "smsc75xx", "dm9601", "mcs7830",
        "pegasus", "rtl8150", "kaweth", "catc", "net1080", "plusb", "gl620a", "int51x1", "kalmia", "cx82310_eth", "hso", "usbnet",
    ]

    /// Links that count as up: administratively up, not loopback, and not the port of another device
    /// (a bond's or bridge's ports carry its traffic and are judged through it).
    static func isUpLink(_ interface: NetworkInterface) -> Bool {
        interface.isUp && !interface.isLoopback && interface.master == nil
    }

    static func reasons(_ interface: NetworkInterface, policy: Policy, bridges: Set<String>) -> [String] {
        var reasons: [String] = []
        if !policy.allowedLinks.isEmpty, isUpLink(interface), !policy.isAllowedLink(interface.name) {
            reasons.append("is up, and networks.links (\(policy.allowedLinks.joined(separator: ", "))) does not name it")
        }
        if let master = interface.master, bridges.contains(master), !policy.isAllowedLink(interface.name) {
            reasons.append(
                policy.allowedLinks.isEmpty
                    ? "is bridged into \(master), joining it to another link (networks.links names no link that may be)"
                    : "is bridged into \(master), and networks.links (\(policy.allowedLinks.joined(separator: ", "))) does not name it")
        }
        if interface.isUp {
            let publicAddresses = interface.addresses.filter { address in
                let effective = address.address.mappedV4 ?? address.address
                return effective.isPublic && !policy.isUnitAddress(effective)
            }
            if !publicAddresses.isEmpty { reasons.append("is up with public address \(publicAddresses.map(\.description).joined(separator: ", "))") }
        }
        let isFallback = fallbackDevices.contains(interface.name)
        if !isFallback || interface.isUp {
            if let kind = interface.kind, tunnelKinds.contains(kind) {
                reasons.append("is a \(kind) tunnel")
            } else if interface.tunFlags != nil {
                reasons.append("is a tun/tap tunnel")
            } else if let linkType = interface.linkType, let name = tunnelLinkTypes[linkType] {
                reasons.append("is a \(name) tunnel (link type \(linkType))")
            } else if let devType = interface.devType, tunnelKinds.contains(devType) {
                reasons.append("is a \(devType) tunnel")
            }
        }
        if let driver = interface.driver, usbDrivers.contains(driver) {
            reasons.append("is a USB network link (driver \(driver))")
        } else if interface.bus == "usb" {
            reasons.append("is a network link on the USB bus\(interface.driver.map { " (driver \($0))" } ?? "")")
        }
        if interface.devType == "wwan", !reasons.contains(where: { $0.contains("USB") }) {
            reasons.append("is a cellular (WWAN) link")
        }
        return reasons
    }

    static func evaluate(_ facts: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.interfaces
        let network = facts.network
        let date = context.observedAt
        let sources = NetworkEvidence.sources(network.interfaceSources, at: date)
        var findings: [Finding] = []
        var examined: [String] = []
        let bridges = Set(network.interfaces.filter { $0.kind == "bridge" || $0.devType == "bridge" }.map(\.name))
        for interface in network.interfaces {
            examined.append(interface.name)
            let found = reasons(interface, policy: context.policy, bridges: bridges)
            guard !found.isEmpty else { continue }
            findings.append(context.finding(
                rule, subject: "interface \(interface.name)", status: .fail,
                detail: "Interface \(interface.name) \(found.joined(separator: "; ")).",
                evidence: [Evidence(kind: "interface", source: interface.name, observedAt: date, data: interface.json)] + sources))
        }
        // With no list of allowed links, a classified computer keeps one: more up at once is a second way out.
        let upLinks = network.interfaces.filter(isUpLink)
        if context.policy.allowedLinks.isEmpty, upLinks.count > 1 {
            findings.append(context.finding(
                rule, subject: "links up", status: .fail,
                detail: "\(upLinks.count) links are up (\(NetworkEvidence.list(upLinks.map(\.name)))), and the policy allows one; if the unit allows more, name them in networks.links.",
                evidence: [Evidence(kind: "interface", source: "links up", observedAt: date, data: .array(upLinks.map(\.json)))] + sources))
        }
        let attributed = Set(network.interfaces.flatMap { $0.addresses.map(\.address) })
        for address in network.unattributedAddresses where !attributed.contains(address) {
            guard address.isPublic, !context.policy.isUnitAddress(address) else { continue }
            findings.append(context.finding(
                rule, subject: "address \(address)", status: .fail,
                detail: "The host holds public address \(address) (a local route in /proc/net/fib_trie; the interface is not recorded there).",
                evidence: sources))
        }
        if let failures = NetworkEvidence.failures(network.interfaceSources) {
            findings.append(context.finding(
                rule, subject: "interfaces", status: .error, detail: "Interfaces could not be read: \(failures).", evidence: sources))
        } else if network.interfaceSources.isEmpty {
            findings.append(context.finding(rule, subject: "interfaces", status: .error, detail: "No interface source was read.", evidence: sources))
        }
        if findings.isEmpty {
            let ipv4Note = network.interfaceSources.contains { $0.source == "/proc/net/if_inet6" }
                ? " (IPv4 addresses from /proc/net/fib_trie without their interface: \(network.unattributedAddresses.count))" : ""
            findings.append(context.finding(
                rule, subject: "interfaces", status: .pass,
                detail: "\(examined.count) interfaces examined (\(NetworkEvidence.list(examined))): no public address on an interface that is up, no tunnel, no USB network link, no bridged link, \(upLinks.count) link(s) up (\(context.policy.allowedLinks.isEmpty ? "one allowed" : "allowed: \(context.policy.allowedLinks.joined(separator: ", "))"))\(ipv4Note).",
                evidence: [Evidence(kind: "interface", source: "interfaces", observedAt: date, data: .array(network.interfaces.map(\.json)))] + sources))
        }
        return NetworkEvidence.stated(findings, context)
    }
}
