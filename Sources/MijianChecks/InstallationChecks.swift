import Foundation
import MijianCore

/// `host.installation`: when this system was installed and whether it was reinstalled, other
/// systems the machine boots, guests it runs, and when it was used.
public enum InstallationChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.hostInstallation, needs: [.installation], evaluate: hostInstallation)
    ]

    /// An installation this recent is named: the traces of the system before it are gone.
    static let recent: TimeInterval = 90 * 86_400

    static func day(_ date: Date) -> String { String(RFC3339.string(from: date).prefix(10)) }

    static func days(_ interval: TimeInterval) -> Int { Int((abs(interval) / 86_400).rounded(.down)) }

    /// The installation's dates and usage (informational), other systems (fail), guests that
    /// reach past the host (fail) or whose network cannot be told (informational), unreadable
    /// sources (error).
    static func hostInstallation(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.hostInstallation
        let facts = all.installation
        var findings = context.sourceErrors(rule, facts.sources) { _ in true }
        // Another system or a guest with a network is a way around a classified machine's
        // controls; on an unclassified machine it is only told.
        let classified = context.policy.profile == .classified
        let outward: Status = classified ? .fail : .informational
        let sources = context.evidence("sources", "host", .array(facts.sources.map(\.json)))

        var sentences: [String] = []
        if let installed = facts.installedAt, let clue = facts.installedAtSource {
            sentences.append("Installed \(day(installed)) by the \(clue.kind.label) (\(clue.source)).")
            let dating = facts.clues.filter { InstallationFacts.datingKinds.contains($0.kind) }
            let others = dating.filter { $0 != clue }
            if !others.isEmpty {
                sentences.append("Other traces: " + others.map { "\($0.kind.label) \(day($0.date))" }.joined(separator: ", ") + ".")
            }
            if let again = facts.reinstalledAt {
                let late = dating.filter { InstallationFacts.reinstallKinds.contains($0.kind) && $0.date.timeIntervalSince(installed) > InstallationFacts.disagreement }.map(\.kind.label)
                sentences.append(
                    "The traces disagree by \(days(again.date.timeIntervalSince(installed))) day(s) (\(late.joined(separator: ", ")) later, the latest \(day(again.date)) from \(again.source)): reinstalled over kept files, restored, or copied from another machine.")
            }
            if let identity = facts.clues.first(where: { $0.kind == .machineID }) {
                let offset = identity.date.timeIntervalSince(installed)
                if offset > InstallationFacts.disagreement {
                    sentences.append("machine-id was written \(days(offset)) day(s) after the installation: the system's identity was made again (a cloned image, or reset).")
                } else if offset < -InstallationFacts.disagreement {
                    sentences.append("machine-id is \(days(offset)) day(s) older than the installation: this system's files came from an older one.")
                }
            }
            let latest = facts.reinstalledAt?.date ?? installed
            let age = context.observedAt.timeIntervalSince(latest)
            if age >= 0, age < recent {
                sentences.append("\(facts.reinstalledAt == nil ? "Installed" : "Reinstalled") \(days(age)) day(s) before this audit: traces the system kept before then may be gone.")
            }
        } else {
            sentences.append("When this system was installed cannot be said: no installer log (/var/log/installer), no package log and no dated root file system.")
        }
        let usage = facts.usage.filter { $0.count > 0 }
        if usage.isEmpty {
            sentences.append("No boot or login records (wtmp, btmp, the journal's boots) to say when it was used.")
        } else {
            sentences.append("Used: " + usage.map(usageText).joined(separator: "; ") + ".")
        }
        var data: [(String, JSONValue)] = [
            ("installed_at", .optional(facts.installedAt.map { RFC3339.string(from: $0) })),
            ("installed_by", .optional(facts.installedAtSource?.kind.rawValue)),
            ("reinstalled_at", .optional(facts.reinstalledAt.map { RFC3339.string(from: $0.date) })), ("clues", .array(facts.clues.map(\.json))),
            ("usage", .array(facts.usage.map(\.json))),
        ]
        if !facts.notes.isEmpty { data.append(("notes", .array(facts.notes.map { .string($0) }))) }
        findings.append(context.finding(
            rule, subject: "host", status: .informational, detail: sentences.joined(separator: " "),
            evidence: [context.evidence("installation", "host", .object(data)), sources]))

        for system in facts.otherSystems {
            let place: String
            switch system.origin {
            case .grub: place = "GRUB menu entry"
            case .efi: place = "EFI boot entry"
            case .systemPartition: place = "loader directory on the EFI system partition"
            }
            findings.append(context.finding(
                rule, subject: "\(system.source):\(system.name)", status: outward,
                detail: "Another operating system can be booted: \(place) \"\(system.name)\" (\(system.source), \(system.detail)). It runs without this system's controls and its networks are not seen by this audit.",
                evidence: [context.evidence(system.origin == .efi ? "efivar" : "file", system.source, system.json)]))
        }

        for guest in facts.virtualMachines {
            let owner = guest.user.map { " of user \($0)" } ?? ""
            let what = "\(guest.hypervisor.rawValue) guest \"\(guest.name)\"\(owner) (\(guest.source))"
            let evidence = [context.evidence("guest", guest.source, guest.json)]
            switch guest.network {
            case .attached(let adapters) where guest.network.reachesOut:
                let links = adapters.filter(\.reachesOut).map(\.text)
                findings.append(context.finding(
                    rule, subject: guest.source, status: outward,
                    detail: "Virtual machine \(what) has a network of its own (\(links.joined(separator: ", "))): what the guest reaches is not seen by this audit\(classified ? ", and a classified computer must not reach any network outside the unit through it" : "").",
                    evidence: evidence))
            case .attached(let adapters):
                findings.append(context.finding(
                    rule, subject: guest.source, status: .informational,
                    detail: "Virtual machine \(what) is installed; its adapters reach only this host or other guests (\(adapters.map(\.text).joined(separator: ", "))).",
                    evidence: evidence))
            case .none:
                findings.append(context.finding(
                    rule, subject: guest.source, status: .informational,
                    detail: "Virtual machine \(what) is installed, with no network adapter attached.", evidence: evidence))
            case .unknown(let why):
                findings.append(context.finding(
                    rule, subject: guest.source, status: .informational,
                    detail: "Virtual machine disk image \(guest.source)\(owner): \(why). Started with a network, the guest reaches networks this audit does not see.",
                    evidence: evidence))
            }
        }
        return findings
    }

    static func usageText(_ span: UsageSpan) -> String {
        let noun: String
        switch span.kind {
        case .boot: noun = "boot(s)"
        case .login: noun = "login(s)"
        case .failedLogin: noun = "failed login(s)"
        }
        var text = "\(span.count) \(noun)"
        if let first = span.first, let last = span.last { text += " \(day(first)) – \(day(last))" }
        if !span.users.isEmpty { text += " by \(span.users.joined(separator: ", "))" }
        return text + " (\(span.source))"
    }
}
