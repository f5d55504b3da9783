import Foundation
import MijianCore

/// `sharing` (七.12, 七.6): what the machine offers others — Samba shares and usershares, NFS
/// exports, CUPS queues reachable from the network, avahi-published services — counted only
/// where the server that serves it is installed. `print.devices` (七.12): where printers send.
public enum SharingChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.sharing, needs: [.sharing, .printers], evaluate: sharing),
        Check(rule: RuleCatalogue.printDevices, needs: [.printers], evaluate: printDevices),
    ]

    /// Whether a CUPS `Listen`/`Port` reaches beyond this machine (a socket path or a loopback
    /// name or address does not).
    static func isNetworkListener(_ setting: ConfigSetting) -> Bool {
        if setting.key == "port" || setting.key == "sslport" { return true }
        let value = setting.value
        if value.hasPrefix("/") { return false }
        var host = value
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        if host == "localhost" || host.hasSuffix(".localhost") { return false }
        if let address = IPAddress(host) { return !address.isLoopback }
        return true
    }

    static func sharing(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.sharing
        let facts = all.sharing
        var findings = context.sourceErrors(rule, facts.sources) { _ in true }
        let servers = facts.installedServers
        var notes: [String] = []

        // Samba.
        for include in facts.unresolvedIncludes {
            findings.append(context.finding(
                rule, subject: "samba:include", status: .error,
                detail: "smb.conf includes a file named per client or user (\(include)): which shares those files add cannot be read here.",
                evidence: [context.evidence("file", "/etc/samba/smb.conf", ["include": .string(include)])]))
        }
        let offered = facts.sambaShares.filter { $0.isOffered(global: facts.sambaGlobal) }
        for share in offered {
            let what = share.isUsershare ? "usershare" : "share [\(share.name)]"
            let path = share.parameters["path"].map { " of \($0)" } ?? (share.name.lowercased() == "homes" ? " of every user's home directory" : "")
            let guest = SambaShare.boolean(share.parameters["guest ok"]) == true ? ", guests allowed" : ""
            let evidence = [context.evidence("samba", share.location, share.json)]
            if servers.contains(.samba) {
                findings.append(context.finding(
                    rule, subject: "samba:\(share.name)", status: .fail,
                    detail: "Samba offers the \(what)\(path)\(guest) (\(share.location)); smbd is installed.", evidence: evidence))
            } else {
                notes.append("smb.conf defines the \(what) but smbd is not installed")
            }
        }
        // NFS.
        for export in facts.exports {
            let evidence = [context.evidence("nfs", export.location, export.json)]
            if servers.contains(.nfs) {
                findings.append(context.finding(
                    rule, subject: "nfs:\(export.path)", status: .fail,
                    detail: "NFS exports \(export.path) to \(export.clients.joined(separator: " ")) (\(export.location)); the NFS server is installed.", evidence: evidence))
            } else {
                notes.append("\(export.location) exports \(export.path) but no NFS server is installed")
            }
        }
        // CUPS.
        let listeners = facts.cupsListen.filter(isNetworkListener)
        if servers.contains(.cups) {
            let browsing = facts.cupsBrowsing.map { "Browsing \($0.value) (\($0.location))" } ?? "Browsing not set"
            let listenData = context.evidence("cups", "/etc/cups/cupsd.conf", [
                "listen": .array(facts.cupsListen.map { .string("\($0.key) \($0.value) (\($0.location))") }), "browsing": .optional(facts.cupsBrowsing?.value),
            ])
            if !listeners.isEmpty {
                findings.append(context.finding(
                    rule, subject: "cups:listen", status: .fail,
                    detail: "cupsd listens beyond this machine (\(listeners.map { "\($0.key.capitalized) \($0.value) at \($0.location)" }.joined(separator: ", "))); \(browsing).",
                    evidence: [listenData]))
            }
            for printer in facts.printers where printer.shared {
                if listeners.isEmpty {
                    notes.append("queue \(printer.name) is marked Shared but cupsd listens only on this machine")
                } else {
                    findings.append(context.finding(
                        rule, subject: "cups:\(printer.name)", status: .fail,
                        detail: "Printer \(printer.name) is shared (Shared Yes, \(printer.location)) and cupsd listens on the network.",
                        evidence: [context.evidence("cups", printer.location, printer.json), listenData]))
                }
            }
        }
        // avahi.
        if servers.contains(.avahi) {
            let disabled = facts.avahiPublishing.last { $0.key == "disable-publishing" }.flatMap { SambaShare.boolean($0.value) } == true
            let loud = facts.avahiPublishing.filter { ["publish-workstation", "publish-hinfo"].contains($0.key) && SambaShare.boolean($0.value) == true }
            if !disabled, !facts.avahiServices.isEmpty || !loud.isEmpty {
                var parts: [String] = []
                if !facts.avahiServices.isEmpty { parts.append("services \(facts.avahiServices.joined(separator: ", "))") }
                if !loud.isEmpty { parts.append(loud.map { "\($0.key)=yes (\($0.location))" }.joined(separator: ", ")) }
                findings.append(context.finding(
                    rule, subject: "avahi", status: .fail,
                    detail: "avahi-daemon announces on the local network: \(parts.joined(separator: "; ")).",
                    evidence: [context.evidence("avahi", "/etc/avahi", [
                        "services": .array(facts.avahiServices.map { .string($0) }),
                        "publishing": .array(facts.avahiPublishing.map { .string("\($0.key)=\($0.value) (\($0.location))") }),
                    ])]))
            } else if !disabled {
                notes.append("avahi-daemon is installed and publishes this host's addresses (no service files, disable-publishing not set)")
            }
        }
        if !findings.contains(where: { $0.status == .fail || $0.status == .error }) {
            let installed = SharingServer.allCases.filter { servers.contains($0) }.map(\.rawValue)
            let note = notes.isEmpty ? "" : " Noted: " + notes.joined(separator: "; ") + "."
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "Nothing is shared: \(offered.count) Samba share(s), \(facts.exports.count) NFS export(s), \(listeners.count) network listener(s) of cupsd, \(facts.avahiServices.count) avahi service file(s); servers installed: \(installed.isEmpty ? "none" : installed.joined(separator: ", ")).\(note)",
                evidence: [context.evidence("sources", "host", .array(facts.sources.map(\.json)))]))
        } else if !notes.isEmpty {
            findings.append(context.finding(
                rule, subject: "notes", status: .informational, detail: notes.joined(separator: "; ") + ".",
                evidence: [context.evidence("sources", "host", .array(facts.sources.map(\.json)))]))
        }
        return findings
    }

    static func printDevices(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.printDevices
        let facts = all.sharing
        let policy = context.policy
        var findings = context.sourceErrors(rule, facts.sources) { $0 == "/etc/cups/printers.conf" || $0 == "/var/log/cups/page_log" }
        for printer in facts.printers {
            let data = context.evidence("cups", printer.location, printer.json)
            let uri = printer.deviceURI.map(PrinterQueue.withoutCredentials) ?? "no DeviceURI"
            guard let host = printer.deviceHost else {
                let kind = printer.scheme.map { "scheme \($0)" } ?? "no device"
                findings.append(context.finding(
                    rule, subject: "printer:\(printer.name)", status: .pass,
                    detail: "Printer \(printer.name) sends to \(uri) (\(kind): attached to this machine or found on its own link).", evidence: [data]))
                continue
            }
            let inside: Bool
            let why: String
            if let address = IPAddress(host) {
                inside = policy.isAllowedPeer(address)
                why = inside ? "an address of the unit's networks" : "an address outside networks.unit and networks.allowed_destinations"
            } else {
                inside = policy.isAllowedName(host)
                why = inside ? "a name under dns.allowed_suffixes" : "a name outside dns.allowed_suffixes"
            }
            findings.append(context.finding(
                rule, subject: "printer:\(printer.name)", status: inside ? .pass : .fail,
                detail: "Printer \(printer.name) sends jobs to \(uri): \(host) is \(why) of policy \(policy.id).", evidence: [data]))
        }
        if facts.printers.isEmpty, !findings.contains(where: { $0.status == .error }) {
            findings.append(context.finding(
                rule, subject: "host", status: .pass, detail: "No printer queue is configured (/etc/cups/printers.conf).",
                evidence: [context.evidence("file", "/etc/cups/printers.conf", facts.source("/etc/cups/printers.conf")?.json ?? .null)]))
        }
        if let lines = facts.pageLogLines {
            findings.append(context.finding(
                rule, subject: "page_log", status: .informational,
                detail: "CUPS recorded \(lines) printed page(s) in /var/log/cups/page_log\(facts.lastPageRecord.map { ", the last at \($0)" } ?? "") (users and document names are not copied).",
                evidence: [context.evidence("file", "/var/log/cups/page_log", ["records": .integer(lines), "last": .optional(facts.lastPageRecord)])]))
        }
        return findings
    }
}
