import Foundation
import Logging
import MijianCore

/// Observes what is installed: dpkg's database, `/opt` (and the UOS/Kylin store's `/opt/apps`),
/// flatpak applications, snaps, and the install paths the policy names.
public enum SoftwareProbe {
    /// Largest dpkg database read (a desktop's is a few MB).
    static let maxStatusBytes = 64 << 20

    /// Reads what is installed under `root`; `paths` are the install paths of the policy's lists
    /// (`software.prohibited[].paths`), looked up one by one.
    public static func observe(root: HostRoot, live: Bool, logger: Logger, paths: [String] = []) -> SoftwareFacts {
        var (facts, failures) = root.collectingFailures { root in
            var reads = RecordedReads(root: root)
            var facts = SoftwareFacts()
            if let status = reads.text(SoftwareFacts.dpkgStatus, limit: maxStatusBytes) {
                facts.installed = parseStatus(status)
            }
            for directory in ["/opt", "/opt/apps"] {
                guard let names = reads.list(directory) else { continue }
                for name in names where !(directory == "/opt" && name == "apps") {
                    facts.installed.append(InstalledItem(kind: .opt, name: name, location: "\(directory)/\(name)"))
                }
            }
            if let names = reads.list("/var/lib/flatpak/app") {
                for name in names { facts.installed.append(InstalledItem(kind: .flatpak, name: name, location: "/var/lib/flatpak/app/\(name)")) }
            }
            var snaps: Set<String> = []
            if let names = reads.list("/snap") {
                for name in names where name != "bin" && name != "README" && snaps.insert(name).inserted {
                    facts.installed.append(InstalledItem(kind: .snap, name: name, location: "/snap/\(name)"))
                }
            }
            if let names = reads.list("/var/lib/snapd/snaps") {
                for file in names where file.hasSuffix(".snap") {
                    let name = String(file.split(separator: "_").first ?? Substring(file))
                    if snaps.insert(name).inserted {
                        facts.installed.append(InstalledItem(kind: .snap, name: name, location: "/var/lib/snapd/snaps/\(file)"))
                    }
                }
            }
            let listed = Set(facts.installed.map(\.location))
            for path in Set(paths).sorted() where !listed.contains(path) && root.exists(path) {
                facts.installed.append(InstalledItem(kind: .path, name: path, location: path))
            }
            facts.sources = reads.sources
            return facts
        }
        facts.sources.addUnclaimed(failures)
        logger.debug("software probe", metadata: ["mijian.installed": "\(facts.installed.count)"])
        return facts
    }

    /// The packages of a dpkg status file in a state that leaves files on disk (not
    /// `not-installed`, not `config-files`).
    static func parseStatus(_ text: String) -> [InstalledItem] {
        var items: [InstalledItem] = []
        var name: String?
        var version: String?
        var state: String?
        func flush() {
            if let name, let state, state != "not-installed", state != "config-files" {
                items.append(InstalledItem(kind: .dpkg, name: name, version: version, state: state, location: SoftwareFacts.dpkgStatus))
            }
            name = nil
            version = nil
            state = nil
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty {
                flush()
            } else if line.hasPrefix("Package: ") {
                name = String(line.dropFirst(9)).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("Version: ") {
                version = String(line.dropFirst(9)).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("Status: ") {
                state = line.split(separator: " ").last.map(String.init)
            }
        }
        flush()
        return items
    }
}
