#if canImport(Glibc)
import Glibc
#endif
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
            do throws(MijianError) {
                let bytes = try root.readBytes(SoftwareFacts.dpkgStatus, limit: maxStatusBytes)
                facts.installed = parseStatus(bytes)
                reads.record(SoftwareFacts.dpkgStatus, .ok, count: facts.installed.count)
            } catch where error.code == .notFound {
                reads.record(SoftwareFacts.dpkgStatus, .missing)
            } catch {
                reads.record(SoftwareFacts.dpkgStatus, .error(error.description))
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
            // Entries of /opt and /opt/apps were listed above: only paths elsewhere are looked up.
            let listedDirectories: Set = ["/opt", "/opt/apps"]
            let elsewhere = Set(paths).filter { path in !listedDirectories.contains(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])) }
            for path in elsewhere.sorted() where root.exists(path) {
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
    /// `not-installed`, not `config-files`). Read as bytes: a desktop's file has thousands of
    /// stanzas, and only three fields of each become strings.
    static func parseStatus(_ bytes: [UInt8]) -> [InstalledItem] {
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
        let package = Array("Package: ".utf8), versionField = Array("Version: ".utf8), status = Array("Status: ".utf8)
        bytes.withUnsafeBufferPointer { buffer in
            var start = 0
            let end = buffer.count
            func starts(_ prefix: [UInt8], at index: Int, before stop: Int) -> Bool {
                guard stop - index >= prefix.count else { return false }
                for offset in 0..<prefix.count where buffer[index + offset] != prefix[offset] { return false }
                return true
            }
            func text(_ from: Int, _ to: Int) -> String {
                var to = to
                while to > from, buffer[to - 1] == 0x20 || buffer[to - 1] == 0x0D { to -= 1 }
                return String(decoding: UnsafeBufferPointer(rebasing: buffer[from..<to]), as: UTF8.self)
            }
            guard let base = buffer.baseAddress else { return }
            while start <= end {
                // memchr finds each line's end; only the lines of three fields are looked at further.
                let stop = start < end ? memchr(base + start, 0x0A, end - start).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? end : end
                if stop == start {
                    flush()
                } else if buffer[start] == UInt8(ascii: "P"), starts(package, at: start, before: stop) {
                    name = text(start + package.count, stop)
                } else if buffer[start] == UInt8(ascii: "V"), starts(versionField, at: start, before: stop) {
                    version = text(start + versionField.count, stop)
                } else if buffer[start] == UInt8(ascii: "S"), starts(status, at: start, before: stop) {
                    var word = stop
                    while word > start, buffer[word - 1] != 0x20 { word -= 1 }
                    state = text(word, stop)
                }
                start = stop + 1
            }
        }
        flush()
        return items
    }
}
