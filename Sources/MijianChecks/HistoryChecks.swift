import Foundation
import MijianCore

/// History rules of the audit.
public enum HistoryChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.wirelessHistory, needs: [.profiles, .interfaces, .routes], evaluate: wirelessHistory),
        Check(rule: RuleCatalogue.logRetention, needs: [.logRetention], evaluate: logRetention),
    ]

    private static let profileDirectories = [
        "/etc/NetworkManager/system-connections", "/etc/wpa_supplicant", "/var/lib/iwd", "/etc/network/interfaces",
        "/etc/network/interfaces.d", "/etc/ppp/peers", "/etc/wvdial.conf", "/var/lib/bluetooth", "/etc/hostapd", "/etc/default/hostapd",
        "/etc/create_ap.conf",
    ]

    private static func isProfileSource(_ path: String) -> Bool {
        profileDirectories.contains { path == $0 || path.hasPrefix($0 + "/") }
    }

    /// Saved Wi-Fi, mobile broadband, Bluetooth and VPN profiles and Bluetooth pairings.
    static func wirelessHistory(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.wirelessHistory
        let facts = all.history
        var findings = context.sourceErrors(rule, facts.sources, isProfileSource)
        var saved = 0
        for profile in facts.profiles {
            guard let category = profile.category else { continue }
            saved += 1
            var what = "\(profile.tool.rawValue) \(category) profile \"\(profile.name)\""
            if let ssid = profile.ssid, ssid != profile.name { what += " (SSID \"\(ssid)\")" }
            if let subtype = profile.subtype { what += " (\(subtype))" }
            if profile.isHotspot, let mode = profile.mode {
                let kind = mode.lowercased() == "ap" ? "hotspot (access point, mode=ap)" : "\(mode.lowercased() == "adhoc" ? "ad-hoc" : "mesh") network (mode=\(mode))"
                findings.append(context.finding(
                    rule, subject: profile.location, status: .fail,
                    detail: "Saved \(what) is a self-built Wi-Fi \(kind) in \(profile.location): this machine has been or can be set up to offer a network that others join.",
                    evidence: [context.evidence("file", profile.path, profile.json)]))
                continue
            }
            findings.append(context.finding(
                rule, subject: profile.location, status: .fail,
                detail: "Saved \(what) of type \(profile.type) in \(profile.location): this machine has been or can be set up to join it.",
                evidence: [context.evidence("file", profile.path, profile.json)]))
        }
        for pairing in facts.pairings {
            saved += 1
            let name = pairing.name.map { " \"\($0)\"" } ?? ""
            findings.append(context.finding(
                rule, subject: pairing.path, status: .fail,
                detail: "Bluetooth device \(pairing.device)\(name) is paired with adapter \(pairing.adapter) (\(pairing.path)).",
                evidence: [context.evidence("directory", pairing.path, pairing.json)]))
        }
        for config in facts.accessPoints {
            saved += 1
            var what = "\(config.tool.rawValue) access point configuration \(config.path)"
            var parts: [String] = []
            if let ssid = config.ssid { parts.append("SSID \"\(ssid)\"") }
            if let interface = config.interface { parts.append("on \(interface)") }
            if let shares = config.shares { parts.append("sharing \(shares)") }
            if !parts.isEmpty { what += " (\(parts.joined(separator: ", ")))" }
            findings.append(context.finding(
                rule, subject: config.path, status: .fail,
                detail: "Self-built Wi-Fi hotspot: \(what); this machine can be made a network that others join.",
                evidence: [context.evidence("file", config.path, config.json)]))
        }
        let dual = DualLinkCheck.findings(all.network, context)
        saved += dual.count
        findings += dual
        if saved == 0, findings.isEmpty {
            let examined = facts.sources.filter { isProfileSource($0.path) }
            let summary = examined.map { "\($0.path) \($0.stateName)" }.joined(separator: ", ")
            let wired = facts.profiles.count
            let links = DualLinkCheck.wiredLinks(all.network).map(\.name)
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "No saved wireless, mobile, Bluetooth or VPN profile, no hotspot configuration, no pairing (\(wired) wired profile(s)), and no second wired link (\(links.count) up: \(links.isEmpty ? "none" : links.joined(separator: ", "))); examined \(summary).",
                evidence: [context.evidence("sources", "host", .array(examined.map(\.json) + facts.profiles.map(\.json)))]))
        }
        return findings
    }

    /// Whether the journal is persistent and how far back kernel messages reach.
    static func logRetention(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.logRetention
        let facts = all.history
        let isLogSource: (String) -> Bool = { $0.hasPrefix("/var/log") || $0.hasPrefix("/run/log") || $0.contains("journald.conf") }
        var findings = context.sourceErrors(rule, facts.sources, isLogSource)
        let journal = facts.journal
        let files = journal.persistentFiles + facts.kernelLogs
        let oldest = files.map(\.reach).min()
        let days = oldest.map { max(0, Int(context.observedAt.timeIntervalSince($0) / 86_400)) }
        let storage = journal.storage.map { "Storage=\($0)" + (journal.storageLocation.map { " (\($0))" } ?? "") } ?? "Storage= not set (auto)"
        let data: JSONValue = [
            "journal_persistent": .bool(journal.isPersistent), "var_log_journal": .bool(journal.persistentDirectory),
            "run_log_journal": .bool(journal.volatileDirectory), "storage": .optional(journal.storage),
            "storage_location": .optional(journal.storageLocation), "journal_files": .array(journal.persistentFiles.map(\.json)),
            "kernel_logs": .array(facts.kernelLogs.map(\.json)),
            "oldest": .optional(oldest.map { RFC3339.string(from: $0) }), "reach_days": days.map { .integer($0) } ?? .null,
        ]
        let proof = [context.evidence("logs", "/var/log", data)]
        let reach = days.map { "reach back \($0) day(s), to \(oldest.map { RFC3339.string(from: $0) } ?? "")" } ?? "hold no dated entry yet"
        if journal.isPersistent {
            let status: Status = days == nil ? .informational : .pass
            findings.append(context.finding(
                rule, subject: "host", status: status,
                detail: "The journal is persistent (\(storage), /var/log/journal present); kernel logs and journal files \(reach).",
                evidence: proof))
        } else if !facts.kernelLogs.isEmpty {
            findings.append(context.finding(
                rule, subject: "host", status: .informational,
                detail: "The journal is volatile (\(storage)\(journal.persistentDirectory ? "" : ", no /var/log/journal")) and is lost at reboot; kern.log/syslog \(reach).",
                evidence: proof))
        } else {
            findings.append(context.finding(
                rule, subject: "host", status: .fail,
                detail: "The journal is volatile (\(storage)\(journal.persistentDirectory ? "" : ", no /var/log/journal")) and there is no kern.log or syslog: past USB and network events cannot be traced, so a clean history cannot be trusted.",
                evidence: proof))
        }
        return findings
    }
}

/// A second wired link to another network (dual NIC): two Ethernet links up whose networks
/// differ, or of which one lies outside the unit's networks. Such a machine joins the unit's
/// network to another one, or can be made to route between them.
enum DualLinkCheck {
    /// Ethernet links on a device that are up: not wireless, not virtual, not a port of a bond or
    /// bridge, and not on USB (phones' tethering and USB network adapters are `net.interfaces`' to judge).
    static func wiredLinks(_ network: NetworkFacts) -> [NetworkInterface] {
        network.interfaces.filter { link in
            InterfaceCheck.isUpLink(link) && (link.linkType ?? 1) == 1 && !link.isWireless && link.devType == nil && link.kind == nil
                && link.tunFlags == nil && link.bus != nil && link.bus != "usb" && !(link.driver.map(InterfaceCheck.usbDrivers.contains) ?? false)
        }
    }

    /// The networks a link is on: its addresses' prefixes and its directly connected routes
    /// (no gateway), link-local and multicast left out.
    static func networks(of link: NetworkInterface, _ network: NetworkFacts) -> [IPNetwork] {
        var found: [IPNetwork] = []
        for address in link.addresses {
            guard !address.address.isLinkLocal, !address.address.isLoopback, let prefix = IPNetwork(address: address.address, prefixLength: address.prefixLength) else { continue }
            if !found.contains(prefix) { found.append(prefix) }
        }
        for route in network.routes where route.device == link.name && route.gateway == nil && route.type == .unicast {
            let destination = route.destination
            guard destination.prefixLength > 0, destination.prefixLength < destination.address.bitWidth, !destination.address.isLinkLocal,
                !destination.address.isMulticast, !found.contains(destination)
            else { continue }
            found.append(destination)
        }
        return found
    }

    static func findings(_ network: NetworkFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.wirelessHistory
        var unread: [Finding] = []
        let failed = (network.interfaceSources + network.routeSources).filter { $0.state.reason != nil }
        if !failed.isEmpty {
            unread.append(context.finding(
                rule, subject: "dual-nic", status: .error,
                detail: "Links or routes could not be read (\(failed.map { "\($0.source): \($0.state.reason ?? "")" }.joined(separator: "; "))), so a second wired link to another network is not vouched for.",
                evidence: [context.evidence("sources", "host", .array(failed.map(\.json)))]))
        }
        let links = wiredLinks(network)
        guard links.count >= 2 else { return unread }
        let policy = context.policy
        let byLink = links.map { ($0, networks(of: $0, network)) }
        let rows: JSONValue = .array(byLink.map { link, nets in
            .object([("link", .string(link.name)), ("driver", .optional(link.driver)), ("bus", .optional(link.bus)), ("networks", .array(nets.map { .string($0.description) }))])
        })
        let evidence = [context.evidence("links", "host", ["links": rows, "unit_networks": .array(policy.unitNetworks.map { .string($0.description) })])]
        let text = byLink.map { link, nets in "\(link.name) (\(nets.isEmpty ? "network unknown" : nets.map(\.description).joined(separator: ", ")))" }
            .joined(separator: ", ")
        let outside = byLink.filter { _, nets in nets.contains { net in !policy.unitNetworks.contains { $0.contains(net) } } }.map(\.0.name)
        let distinct = Set(byLink.map { Set($0.1) }.filter { !$0.isEmpty })
        if !outside.isEmpty || distinct.count > 1 {
            let why = outside.isEmpty ? "on different networks" : "\(outside.joined(separator: ", ")) on a network outside the unit's (\(policy.unitNetworks.map(\.description).joined(separator: ", ")))"
            return unread + [context.finding(
                rule, subject: "dual-nic", status: .fail,
                detail: "Second wired link to another network (dual NIC): \(links.count) Ethernet links are up, \(why): \(text). Such a machine joins the unit's network to another one.",
                evidence: evidence)]
        }
        guard byLink.contains(where: { $0.1.isEmpty }) else { return unread }
        return unread + [context.finding(
            rule, subject: "dual-nic", status: .informational,
            detail: "\(links.count) Ethernet links are up (\(text)); whether they reach different networks cannot be told from what was read.",
            evidence: evidence)]
    }
}
