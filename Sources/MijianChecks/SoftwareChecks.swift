import Foundation
import MijianCore

/// `software.prohibited` (七.4, 七.6): no instant messaging, cloud storage or sync, remote control,
/// VPN or proxy client, or P2P program installed or running, against the policy's lists.
public enum SoftwareChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.softwareProhibited, needs: [.software, .services], evaluate: prohibited)
    ]

    /// What is installed, indexed once for the list's lookups: by kind and name, and by location.
    struct Index {
        var byName: [InstallKind: [String: [InstalledItem]]] = [:]
        var byLocation: [String: [InstalledItem]] = [:]
        var byProgram: [String: [RunningProcess]] = [:]

        init(_ software: SoftwareFacts, _ services: ServiceFacts) {
            for item in software.installed {
                byName[item.kind, default: [:]][item.name, default: []].append(item)
                byLocation[item.location, default: []].append(item)
            }
            for process in services.processes {
                byProgram[process.name, default: []].append(process)
                if process.executable != process.name { byProgram[process.executable, default: []].append(process) }
            }
        }
    }

    /// The installed items and processes that show `entry`.
    static func matches(_ entry: SoftwarePolicy.Entry, _ index: Index) -> (installed: [InstalledItem], running: [RunningProcess]) {
        var installed: [InstalledItem] = []
        func add(_ items: [InstalledItem]?) { for item in items ?? [] where !installed.contains(item) { installed.append(item) } }
        for name in entry.packages {
            add(index.byName[.dpkg]?[name])
            add(index.byName[.opt]?[name])
        }
        for path in entry.paths { add(index.byLocation[path]) }
        for id in entry.flatpak { add(index.byName[.flatpak]?[id]) }
        for name in entry.snap { add(index.byName[.snap]?[name]) }
        var running: [RunningProcess] = []
        for program in entry.executables {
            // comm is cut at 15 bytes: a longer program name is looked up by its cut too.
            let cut = program.utf8.count > 15 ? [String(decoding: program.utf8.prefix(15), as: UTF8.self)] : []
            for name in [program] + cut {
                for process in index.byProgram[name] ?? [] where !running.contains(process) { running.append(process) }
            }
        }
        return (installed, running.sorted { $0.pid < $1.pid })
    }

    static func prohibited(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.softwareProhibited
        let software = all.software
        let services = all.services
        var findings = context.sourceErrors(rule, software.sources + services.sources) { _ in true }
        let entries = context.policy.software.entries
        let index = Index(software, services)
        var found = 0
        for entry in entries {
            let (installed, running) = matches(entry, index)
            guard !installed.isEmpty || !running.isEmpty else { continue }
            found += 1
            var parts: [String] = []
            if !installed.isEmpty { parts.append("installed (" + installed.map { "\($0.kind.rawValue) \($0.kind == .dpkg ? $0.name + " " + ($0.version ?? "") : $0.location)" }.joined(separator: ", ") + ")") }
            if !running.isEmpty { parts.append("running (" + running.map { "\($0.name) pid \($0.pid)" }.joined(separator: ", ") + ")") }
            findings.append(context.finding(
                rule, subject: "software:\(entry.name)", status: .fail,
                detail: "\(entry.name), \(entry.category.label) software, is \(parts.joined(separator: " and ")); a classified computer may not carry it (七.4, 七.6).",
                evidence: [context.evidence("software", "host", [
                    "name": .string(entry.name), "category": .string(entry.category.rawValue),
                    "installed": .array(installed.map(\.json)), "running": .array(running.map(\.json)),
                ])]))
        }
        let dpkg = software.source(SoftwareFacts.dpkgStatus)
        if dpkg?.state == .missing {
            findings.append(context.finding(
                rule, subject: SoftwareFacts.dpkgStatus, status: .error,
                detail: "No dpkg database (\(SoftwareFacts.dpkgStatus)) under the root: the installed packages cannot be listed, so no prohibited package is vouched absent.",
                evidence: [context.evidence("file", SoftwareFacts.dpkgStatus, dpkg?.json ?? .null)]))
        }
        if found == 0, !findings.contains(where: { $0.status == .error }) {
            let count: (InstallKind) -> Int = { kind in software.installed.count { $0.kind == kind } }
            let table = services.processTableRead ? "\(services.processes.count) processes" : "no process table under the root (offline: installed software alone is judged)"
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "None of the \(entries.count) prohibited products of policy \(context.policy.id) is installed or running (\(count(.dpkg)) dpkg packages, \(count(.opt)) entries of /opt and /opt/apps, \(count(.flatpak)) flatpaks, \(count(.snap)) snaps, \(table) examined).",
                evidence: [context.evidence("sources", "host", .array((software.sources + services.sources.filter { !$0.path.hasPrefix("/proc/") }).map(\.json)))]))
        }
        return findings
    }
}
