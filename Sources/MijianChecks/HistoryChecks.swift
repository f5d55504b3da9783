import Foundation
import MijianCore

/// History rules of the audit.
public enum HistoryChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.wirelessHistory, needs: [.profiles], evaluate: wirelessHistory),
        Check(rule: RuleCatalogue.logRetention, needs: [.logRetention], evaluate: logRetention),
    ]

    private static let profileDirectories = [
        "/etc/NetworkManager/system-connections", "/etc/wpa_supplicant", "/var/lib/iwd", "/etc/network/interfaces",
        "/etc/network/interfaces.d", "/etc/ppp/peers", "/etc/wvdial.conf", "/var/lib/bluetooth",
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
        if saved == 0, findings.isEmpty {
            let examined = facts.sources.filter { isProfileSource($0.path) }
            let summary = examined.map { "\($0.path) \($0.stateName)" }.joined(separator: ", ")
            let wired = facts.profiles.count
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "No saved wireless, mobile, Bluetooth or VPN profile and no pairing (\(wired) wired profile(s)); examined \(summary).",
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
