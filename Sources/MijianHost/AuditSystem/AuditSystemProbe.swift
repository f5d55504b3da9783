import Foundation
import Logging
import MijianCore

/// Observes the Linux audit system's configuration: the kernel command line (and GRUB's), the
/// rules auditd loads, `auditd.conf`, and the dispatcher plugins that send records elsewhere.
/// Whether auditd is installed, enabled and running comes from the software and service probes.
public enum AuditSystemProbe {
    /// Reads what `audit.system` judges from `root`.
    public static func observe(root: HostRoot, live: Bool, logger: Logger) -> AuditSystemFacts {
        var (facts, failures) = root.collectingFailures { root in
            var reads = RecordedReads(root: root)
            var facts = AuditSystemFacts()
            facts.commandLine = reads.text("/proc/cmdline", limit: 65_536)?.trimmingCharacters(in: .whitespacesAndNewlines)
            var grubFiles = ["/etc/default/grub"]
            if let names = reads.list("/etc/default/grub.d") {
                grubFiles += names.filter { $0.hasSuffix(".cfg") }.map { "/etc/default/grub.d/\($0)" }
            }
            for file in grubFiles {
                guard let text = reads.text(file, limit: 1 << 20) else { continue }
                facts.grubCommandLines += settings(text, file: file, separator: "=").filter {
                    $0.key == "grub_cmdline_linux" || $0.key == "grub_cmdline_linux_default"
                }
            }
            if let text = reads.text(AuditSystemFacts.rulesFile, limit: 4 << 20) { facts.compiledRules = rules(text, file: AuditSystemFacts.rulesFile) }
            if let names = reads.list(AuditSystemFacts.rulesDirectory) {
                // augenrules joins the *.rules files in the C locale's order.
                for name in names.filter({ $0.hasSuffix(".rules") }).sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
                    let path = "\(AuditSystemFacts.rulesDirectory)/\(name)"
                    if let text = reads.text(path, limit: 4 << 20) { facts.ruleFragments += rules(text, file: path) }
                }
            }
            if let text = reads.text(AuditSystemFacts.conf, limit: 1 << 20) { facts.settings = settings(text, file: AuditSystemFacts.conf, separator: "=") }
            if let names = reads.list("/etc/audit/plugins.d") {
                for name in names where name.hasSuffix(".conf") {
                    let path = "/etc/audit/plugins.d/\(name)"
                    guard let text = reads.text(path, limit: 1 << 20) else { continue }
                    if let active = settings(text, file: path, separator: "=").last(where: { $0.key == "active" }), active.value.lowercased() == "yes" {
                        facts.activePlugins.append(ConfigSetting(key: name, value: "yes", location: active.location))
                    }
                }
            }
            if facts.activePlugins.contains(where: { $0.key == "au-remote.conf" }),
                let text = reads.text("/etc/audit/audisp-remote.conf", limit: 1 << 20)
            {
                facts.remoteServer = settings(text, file: "/etc/audit/audisp-remote.conf", separator: "=").last { $0.key == "remote_server" && !$0.value.isEmpty }
            }
            facts.sources = reads.sources
            if live, root.isLive {
                do throws(MijianError) {
                    facts.kernel = try AuditKernel.status()
                } catch {
                    facts.kernelProblem = error.description
                }
            }
            return facts
        }
        facts.sources.addUnclaimed(failures)
        logger.debug("audit system probe", metadata: ["mijian.rules": "\(facts.loadedRules.count)"])
        return facts
    }

    /// Rule lines: comments and blank lines left out.
    static func rules(_ text: String, file: String) -> [AuditRuleLine] {
        var out: [AuditRuleLine] = []
        for (index, line) in ConfigText.lines(text).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            out.append(AuditRuleLine(file: file, line: index + 1, text: trimmed))
        }
        return out
    }

    /// `key = value` lines (keys lower-cased; quotes around a value removed).
    static func settings(_ text: String, file: String, separator: Character) -> [ConfigSetting] {
        var out: [ConfigSetting] = []
        for (index, line) in ConfigText.lines(text).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let split = trimmed.firstIndex(of: separator) else { continue }
            let key = trimmed[..<split].trimmingCharacters(in: .whitespaces).lowercased()
            var value = trimmed[trimmed.index(after: split)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first { value = String(value.dropFirst().dropLast()) }
            out.append(ConfigSetting(key: key, value: value, location: "\(file):\(index + 1)"))
        }
        return out
    }
}
