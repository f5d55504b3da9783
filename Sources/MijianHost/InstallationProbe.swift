import Foundation
import Logging
import MijianCore

/// Observes when this operating system was installed, what else the machine boots or runs, and
/// when it was used (`host.installation`).
public enum InstallationProbe {
    /// The installer's log directory (Debian's installer and Ubuntu's subiquity).
    public static let installerDirectory = "/var/log/installer"
    /// The GRUB menu update-grub writes.
    public static let grubConfig = "/boot/grub/grub.cfg"
    /// Where efivarfs shows the firmware's variables.
    public static let efivars = "/sys/firmware/efi/efivars"
    /// The EFI global variable GUID of `Boot####` entries.
    static let efiGlobal = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
    /// Largest wtmp or btmp read (about 87,000 records).
    static let maxUtmpBytes = 32 << 20
    /// How deep under a home directory guests and disk images are looked for (the home, and two
    /// levels of directories below it), and how many directory entries at most are looked at per home.
    static let homeDepth = 2
    static let homeEntries = 20_000
    /// Disk image suffixes of the hypervisors.
    static let imageSuffixes = [".qcow2", ".qcow", ".vdi", ".vmdk", ".vhd", ".vhdx"]

    /// Reads what `host.installation` judges from `root`. A read that failed for another reason
    /// than absence is an `error` source, never taken for "absent".
    public static func observe(root: HostRoot, live: Bool, logger: Logger) -> InstallationFacts {
        var (facts, failures) = root.collectingFailures { root in
            var reader = InstallationReader(root: root)
            reader.read()
            return reader.facts
        }
        facts.sources.addUnclaimed(failures)
        facts.settleInstallDate()
        for note in facts.notes { logger.debug("installation probe noted something", metadata: ["mijian.note": "\(note)"]) }
        return facts
    }
}

/// The work of one installation observation.
struct InstallationReader {
    let root: HostRoot
    var facts = InstallationFacts()

    init(root: HostRoot) {
        self.root = root
    }

    mutating func read() {
        readInstallerLogs()
        readRootBirth()
        readDpkgLogs()
        readMachineID()
        readGrub()
        readEFI()
        readSystemPartition()
        readGuests()
        readUtmp("/var/log/wtmp")
        readUtmp("/var/log/btmp")
        // logrotate keeps last month's records beside them (Debian: monthly, one rotation, uncompressed).
        for rotated in ["/var/log/wtmp.1", "/var/log/btmp.1"] where root.exists(rotated) { readUtmp(rotated) }
        readJournalBoots()
    }

    private mutating func record(_ path: String, _ state: FactSource.State, count: Int = 0) {
        facts.sources.append(FactSource(path: path, state: state, count: count))
    }

    /// A file's bytes; missing is recorded as such and gives nil, a failure as an error source.
    private mutating func readRecorded(_ path: String, limit: Int = 4 << 20) -> [UInt8]? {
        do {
            let bytes = try root.readBytes(path, limit: limit)
            record(path, .ok, count: 1)
            return bytes
        } catch where error.code == .notFound {
            record(path, .missing)
            return nil
        } catch {
            record(path, .error(error.description))
            return nil
        }
    }

    // MARK: installation dates

    /// The installer's logs: the first dated line of each top-level file. Debian's installer
    /// writes year-less syslog stamps; the year is the installation medium's (media-info), or
    /// else the file's own.
    mutating func readInstallerLogs() {
        let directory = InstallationProbe.installerDirectory
        guard let names = root.list(directory, recordingInto: &facts.sources) else { return }
        var notBefore: Date?
        if names.contains("media-info"), let bytes = readRecorded("\(directory)/media-info", limit: 65_536) {
            notBefore = InstallationParsers.mediaBuildDate(String(decoding: bytes, as: UTF8.self))
        }
        var earliest: (Date, String, String)?
        for name in names where name != "media-info" && !name.hasSuffix(".gz") {
            let path = "\(directory)/\(name)"
            guard !root.isDirectory(path) else { continue }
            let text: String
            do {
                text = try String(decoding: root.readBytes(path, limit: 64 << 20).prefix(65_536), as: UTF8.self)
            } catch {
                record(path, .error(error.description))
                continue
            }
            let fallbackYear = root.fileInfo(path).map { InstallationParsers.year(of: Date(timeIntervalSince1970: TimeInterval($0.mtime))) } ?? 1970
            guard let date = InstallationParsers.firstInstallerDate(text, notBefore: notBefore, fallbackYear: fallbackYear) else { continue }
            let how = notBefore != nil ? "first dated line; year from the installation medium's build date (media-info)" : "first dated line"
            if earliest.map({ date < $0.0 }) ?? true { earliest = (date, path, how) }
        }
        if let (date, path, how) = earliest {
            facts.clues.append(InstallClue(kind: .installerLog, date: date, source: path, detail: how))
        } else if !names.isEmpty {
            facts.notes.append("\(directory) holds \(names.count) file(s) but no dated line")
        }
    }

    /// The root file system's birth time. Under `--root` that is the root directory's: it dates a
    /// file system only when the directory is one's mount root (a mounted image), which is said.
    mutating func readRootBirth() {
        do {
            let birth = try root.birth("/")
            record("/", .ok, count: 1)
            guard let born = birth.born else {
                facts.notes.append("the root file system records no birth time (statx gave none)")
                return
            }
            if root.isLive {
                facts.clues.append(InstallClue(kind: .rootBirth, date: born, source: "/", detail: "statx birth time of the root directory of the running system"))
            } else if birth.mountRoot == true {
                facts.clues.append(InstallClue(
                    kind: .rootBirth, date: born, source: "/",
                    detail: "statx birth time of \(root.path), the root of a mounted file system (--root)"))
            } else {
                let why = birth.mountRoot == nil ? "the kernel does not say whether it is a mount root" : "it is not the root of a mounted file system"
                facts.notes.append("under --root the root directory's birth time dates that directory, not a file system (\(why)), so it is not taken as an installation date")
            }
        } catch {
            record("/", .error(error.description))
        }
    }

    /// The oldest entry kept by the package log: dpkg.log and its rotations (`.1`, `.N.gz`).
    mutating func readDpkgLogs() {
        guard let names = root.list("/var/log", recordingInto: &facts.sources) else { return }
        let logs = names.filter { $0 == "dpkg.log" || $0.hasPrefix("dpkg.log.") }
        if logs.isEmpty {
            record("/var/log/dpkg.log", .missing)
            return
        }
        var oldest: (Date, String)?
        for name in logs {
            let path = "/var/log/\(name)"
            guard var bytes = readRecorded(path, limit: USBHistoryProbe.maxLogBytes) else { continue }
            if name.hasSuffix(".gz") {
                do {
                    bytes = try USBHistoryProbe.gunzip(bytes, path: path)
                } catch {
                    facts.sources.removeAll { $0.path == path }
                    record(path, .error(error.description))
                    continue
                }
            }
            guard let date = InstallationParsers.firstDpkgEntry(Substring(String(decoding: bytes.prefix(8192), as: UTF8.self))) else { continue }
            if oldest.map({ date < $0.0 }) ?? true { oldest = (date, path) }
        }
        if let (date, path) = oldest {
            facts.clues.append(InstallClue(
                kind: .dpkgLog, date: date, source: path,
                detail: "first entry of the oldest package log kept (\(logs.count) file(s)); rotation may have dropped older ones"))
        }
    }

    /// `/etc/machine-id`'s modification time: when this system's identity was made (first boot),
    /// or made again (a cloned image given a new id).
    mutating func readMachineID() {
        let path = "/etc/machine-id"
        do {
            let birth = try root.birth(path)
            record(path, .ok, count: 1)
            facts.clues.append(InstallClue(kind: .machineID, date: birth.modified, source: path, detail: "modification time"))
        } catch where error.code == .notFound {
            record(path, .missing)
        } catch {
            record(path, .error(error.description))
        }
    }

    // MARK: other systems

    /// Menu entries of GRUB for other systems: os-prober's (`30_os-prober`), and entries that
    /// chain-load another loader.
    mutating func readGrub() {
        let path = InstallationProbe.grubConfig
        guard let bytes = readRecorded(path) else { return }
        for entry in InstallationParsers.grubEntries(String(decoding: bytes, as: UTF8.self)) {
            let fromProber = entry.section == "30_os-prober"
            let chainloads = entry.chainloader != nil && entry.section != "30_uefi-firmware"
            guard fromProber || chainloads else { continue }
            var detail = "line \(entry.line)"
            if let section = entry.section { detail += ", /etc/grub.d/\(section)" }
            if let loader = entry.chainloader { detail += ", chainloader \(loader)" } else if let linux = entry.linux { detail += ", linux \(linux)" }
            facts.otherSystems.append(OtherSystem(origin: .grub, name: entry.title, source: path, detail: detail))
        }
    }

    /// The firmware's boot entries (`Boot####` in efivarfs) whose loader is not this system's
    /// (`\EFI\<os id>\…`) nor the removable-media fallback.
    mutating func readEFI() {
        let directory = InstallationProbe.efivars
        guard let names = root.list(directory, recordingInto: &facts.sources) else { return }
        let own = osIDs()
        for name in names where name.hasPrefix("Boot") && name.hasSuffix("-" + InstallationProbe.efiGlobal) {
            let number = name.dropFirst(4).prefix { $0 != "-" }
            guard number.count == 4, number.allSatisfy(\.isHexDigit) else { continue }
            let path = "\(directory)/\(name)"
            guard let bytes = readRecorded(path, limit: 65_536) else { continue }
            guard let option = InstallationParsers.loadOption(bytes) else {
                facts.sources.removeAll { $0.path == path }
                record(path, .error("not an EFI_LOAD_OPTION (\(bytes.count) bytes)"))
                continue
            }
            guard let loader = option.filePath else { continue }
            let lower = loader.lowercased().replacingOccurrences(of: "/", with: "\\")
            if own.contains(where: { lower.hasPrefix("\\efi\\\($0)\\") }) || lower.hasPrefix("\\efi\\boot\\") { continue }
            facts.otherSystems.append(OtherSystem(
                origin: .efi, name: option.description, source: path,
                detail: "Boot\(number)\(option.active ? "" : " (inactive)"), loader \(loader)"))
        }
    }

    /// Loader directories on the EFI system partition (`/boot/efi/EFI/<vendor>`) of other systems:
    /// what an offline disk shows when the firmware's entries are not there to read. A directory
    /// already named by a GRUB entry or a firmware entry is not named again.
    mutating func readSystemPartition() {
        let directory = "/boot/efi/EFI"
        guard let names = root.list(directory, recordingInto: &facts.sources) else { return }
        let own = osIDs()
        let named = facts.otherSystems.map { $0.detail.lowercased().replacingOccurrences(of: "\\", with: "/") }
        for name in names {
            let lower = name.lowercased()
            guard !own.contains(lower), lower != "boot", root.isDirectory("\(directory)/\(name)") else { continue }
            if named.contains(where: { $0.contains("/efi/\(lower)/") }) { continue }
            let loaders = ((try? root.list("\(directory)/\(name)")) ?? []).filter { $0.lowercased().hasSuffix(".efi") }
            let inner = lower == "microsoft" ? ((try? root.list("\(directory)/\(name)/Boot")) ?? []).filter { $0.lowercased().hasSuffix(".efi") } : []
            guard !loaders.isEmpty || !inner.isEmpty else { continue }
            facts.otherSystems.append(OtherSystem(
                origin: .systemPartition, name: "\\EFI\\\(name)", source: "\(directory)/\(name)",
                detail: "loaders on the EFI system partition: " + (loaders + inner.map { "Boot/\($0)" }).sorted().joined(separator: ", ")))
        }
    }

    /// This system's ids for its EFI directory (`ID` and `ID_LIKE` of os-release, lower case). An
    /// unreadable os-release is an error source: without it this system's own loaders look foreign.
    private mutating func osIDs() -> [String] {
        var ids: [String] = []
        for path in ["/etc/os-release", "/usr/lib/os-release"] {
            let read: String?
            do {
                read = try root.readTextIfPresent(path, limit: 65_536)
            } catch {
                if !facts.sources.contains(where: { $0.path == path }) { record(path, .error(error.description)) }
                continue
            }
            guard let text = read else { continue }
            for line in ConfigText.lines(text) where line.hasPrefix("ID=") || line.hasPrefix("ID_LIKE=") {
                let value = line.split(separator: "=", maxSplits: 1).last.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) } ?? ""
                ids += value.lowercased().split(separator: " ").map(String.init)
            }
            break
        }
        return ids
    }

    // MARK: guests

    /// Virtual machines: libvirt's system and session domains, VirtualBox and VMware machine
    /// files, and disk images, in the system's image directory and under every home (bounded).
    mutating func readGuests() {
        let networks = "/etc/libvirt/qemu/networks"
        var isolated: [String: Bool] = [:]
        for name in root.list(networks, recordingInto: &facts.sources) ?? [] where name.hasSuffix(".xml") {
            if let bytes = readRecorded("\(networks)/\(name)", limit: 1 << 20) {
                isolated[String(name.dropLast(4))] = InstallationParsers.libvirtNetworkIsolated(String(decoding: bytes, as: UTF8.self))
            }
        }
        var named = Set<String>()
        var seen = Set<String>()
        readLibvirtDomains("/etc/libvirt/qemu", user: nil, isolated: isolated, named: &named)
        var homes: [(String, String)] = [("root", "/root")]
        if let bytes = readRecorded("/etc/passwd", limit: 4 << 20) {
            homes = InstallationParsers.homes(String(decoding: bytes, as: UTF8.self))
            if !homes.contains(where: { $0.1 == "/root" }) { homes.append(("root", "/root")) }
        }
        var images: [(String, String?)] = []
        for directory in ["/var/lib/libvirt/images", "/var/lib/libvirt/qemu"] {
            for name in root.list(directory, recordingInto: &facts.sources) ?? [] where isImage(name) { images.append(("\(directory)/\(name)", nil)) }
        }
        for (user, home) in homes {
            guard root.isDirectoryExpected(home) else { continue }
            readLibvirtDomains("\(home)/.config/libvirt/qemu", user: user, isolated: isolated, named: &named)
            // Below the walk's depth: libvirt's session images and GNOME Boxes'.
            for directory in ["\(home)/.local/share/libvirt/images", "\(home)/.local/share/gnome-boxes/images"] where root.isDirectoryExpected(directory) {
                for name in root.list(directory, recordingInto: &facts.sources) ?? [] where isImage(name) || directory.hasSuffix("gnome-boxes/images") {
                    images.append(("\(directory)/\(name)", user))
                }
            }
            var budget = InstallationProbe.homeEntries
            readRegistries(home, user: user, named: &named, seen: &seen)
            walk(home, depth: 0, user: user, budget: &budget, named: &named, seen: &seen, images: &images)
            if budget <= 0 { facts.notes.append("\(home): stopped after \(InstallationProbe.homeEntries) entries; deeper guests may be missed") }
        }
        for (image, user) in images where !named.contains(image) {
            let name = String(image.split(separator: "/").last ?? Substring(image))
            facts.virtualMachines.append(VirtualMachine(
                hypervisor: image.lowercased().hasSuffix(".vdi") ? .virtualbox : (image.lowercased().hasSuffix(".vmdk") ? .vmware : .qemu), name: name,
                source: image, user: user, network: .unknown("a disk image without a configuration here: its guest's network is chosen when it is started"),
                images: [image]))
        }
    }

    private func isImage(_ name: String) -> Bool {
        let lower = name.lowercased()
        return InstallationProbe.imageSuffixes.contains { lower.hasSuffix($0) }
    }

    private mutating func readLibvirtDomains(_ directory: String, user: String?, isolated: [String: Bool], named: inout Set<String>) {
        let names: [String]
        if user == nil {
            guard let listed = root.list(directory, recordingInto: &facts.sources) else { return }
            names = listed
        } else {
            guard root.isDirectoryExpected(directory), let listed = root.list(directory, recordingInto: &facts.sources) else { return }
            names = listed
        }
        for name in names where name.hasSuffix(".xml") {
            let path = "\(directory)/\(name)"
            guard let bytes = readRecorded(path, limit: 4 << 20) else { continue }
            let domain = InstallationParsers.libvirtDomain(String(decoding: bytes, as: UTF8.self)) { isolated[$0] }
            named.formUnion(domain.images)
            facts.virtualMachines.append(VirtualMachine(
                hypervisor: .libvirt, name: domain.name ?? String(name.dropLast(4)), source: path, user: user,
                network: domain.adapters.isEmpty ? .none : .attached(domain.adapters), images: domain.images))
        }
    }

    /// The machines VirtualBox and VMware list for a user (`VirtualBox.xml`'s `MachineEntry`,
    /// `inventory.vmls`): machine files wherever they were put, beyond the walk's reach.
    private mutating func readRegistries(_ home: String, user: String, named: inout Set<String>, seen: inout Set<String>) {
        for registry in ["\(home)/.config/VirtualBox/VirtualBox.xml", "\(home)/.VirtualBox/VirtualBox.xml"] {
            guard root.exists(registry), let bytes = readRecorded(registry, limit: 4 << 20) else { continue }
            let base = String(registry[..<(registry.lastIndex(of: "/") ?? registry.endIndex)])
            for tag in InstallationParsers.tags(String(decoding: bytes, as: UTF8.self)) where tag.name == "MachineEntry" && !tag.closing {
                guard let source = tag.attributes["src"] else { continue }
                readMachineFile(source.hasPrefix("/") ? source : "\(base)/\(source)", user: user, named: &named, seen: &seen)
            }
        }
        let inventory = "\(home)/.vmware/inventory.vmls"
        if root.exists(inventory), let bytes = readRecorded(inventory, limit: 4 << 20) {
            for line in ConfigText.lines(String(decoding: bytes, as: UTF8.self)) {
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, parts[0].hasPrefix("vmlist"), parts[0].hasSuffix(".config") else { continue }
                let path = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                if path.hasPrefix("/") { readMachineFile(path, user: user, named: &named, seen: &seen) }
            }
        }
    }

    /// A VirtualBox `.vbox` or VMware `.vmx` machine file, once.
    private mutating func readMachineFile(_ path: String, user: String, named: inout Set<String>, seen: inout Set<String>) {
        guard seen.insert(path).inserted, let bytes = readRecorded(path, limit: 4 << 20) else { return }
        let lower = path.lowercased()
        let text = String(decoding: bytes, as: UTF8.self)
        let parsed = lower.hasSuffix(".vbox") ? InstallationParsers.virtualBox(text) : InstallationParsers.vmx(text)
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        let resolved = parsed.images.map { $0.hasPrefix("/") ? $0 : "\(directory)/\($0)" }
        named.formUnion(resolved)
        facts.virtualMachines.append(VirtualMachine(
            hypervisor: lower.hasSuffix(".vbox") ? .virtualbox : .vmware, name: parsed.name ?? String(directory.split(separator: "/").last ?? ""),
            source: path, user: user, network: parsed.adapters.isEmpty ? .none : .attached(parsed.adapters), images: resolved))
    }

    /// A bounded walk of a home: machine files (`.vbox`, `.vmx`) and disk images, in the home and
    /// two levels of its visible directories (where VirtualBox and VMware put their machines);
    /// the registries and the image directories above reach the rest.
    private mutating func walk(_ directory: String, depth: Int, user: String, budget: inout Int, named: inout Set<String>, seen: inout Set<String>, images: inout [(String, String?)]) {
        guard depth <= InstallationProbe.homeDepth, budget > 0 else { return }
        let names: [String]
        do {
            names = try root.list(directory)
        } catch where error.code == .notFound {
            return
        } catch {
            record(directory, .error(error.description))
            return
        }
        if depth == 0 { record(directory, .ok, count: names.count) }
        for name in names where !name.hasPrefix(".") {
            budget -= 1
            if budget <= 0 { return }
            let path = "\(directory)/\(name)"
            let lower = name.lowercased()
            if lower.hasSuffix(".vbox") || lower.hasSuffix(".vmx") {
                readMachineFile(path, user: user, named: &named, seen: &seen)
            } else if isImage(name) {
                images.append((path, user))
            } else if depth < InstallationProbe.homeDepth, root.isDirectory(path), root.readLink(path) == nil {
                // Links are not followed out of the home: a directory is entered only as itself.
                walk(path, depth: depth + 1, user: user, budget: &budget, named: &named, seen: &seen, images: &images)
            }
        }
    }

    // MARK: usage

    /// Boots, logins or failed logins from a wtmp or btmp file (`struct utmp` records).
    mutating func readUtmp(_ path: String) {
        guard let bytes = readRecorded(path, limit: InstallationProbe.maxUtmpBytes) else { return }
        let (records, trailing) = InstallationParsers.utmpRecords(bytes)
        if trailing != 0 { facts.notes.append("\(path) ends with a partial record of \(trailing) bytes") }
        if let index = facts.sources.lastIndex(where: { $0.path == path }) { facts.sources[index].count = records.count }
        if path.hasSuffix("btmp") || path.hasSuffix("btmp.1") {
            // btmp holds only failed attempts, whatever type login or sshd gave them.
            facts.usage.append(span(.failedLogin, path, records))
            return
        }
        facts.usage.append(span(.boot, path, records.filter { $0.type == InstallationParsers.bootTime }))
        facts.usage.append(span(.login, path, records.filter { $0.type == InstallationParsers.userProcess }))
    }

    private func span(_ kind: UsageKind, _ path: String, _ records: [InstallationParsers.UtmpRecord]) -> UsageSpan {
        let times = records.map(\.time)
        let users = kind == .boot ? [] : Array(Set(records.map(\.user).filter { !$0.isEmpty })).sorted()
        return UsageSpan(kind: kind, source: path, count: records.count, first: times.min(), last: times.max(), users: users)
    }

    /// The journal's boots (`journalctl --list-boots`), over the persistent journal's files.
    mutating func readJournalBoots() {
        let directory = "/var/log/journal"
        guard root.isDirectoryExpected(directory) else {
            record(directory, .missing)
            return
        }
        guard let journalctl = ["/usr/bin/journalctl", "/bin/journalctl"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            record(directory, .error("journalctl is not installed, so the journal's boots cannot be listed"))
            return
        }
        let location: [String]
        if root.isLive {
            guard USBHistoryProbe.hasJournalFiles(root: root, directory: directory) else {
                record(directory, .ok)
                return
            }
            location = ["--directory=\(directory)"]
        } else {
            let files = USBHistoryProbe.journalFiles(root: root, directory: directory)
            guard !files.isEmpty else {
                record(directory, .ok)
                return
            }
            location = files.map { "--file=\($0)" }
        }
        let run: JournalctlRun
        do {
            run = try JournalctlRun.run(
                journalctl, location + ["--list-boots", "--no-pager", "-q"],
                environment: ["TZ": "UTC", "SYSTEMD_COLORS": "0", "LC_ALL": "C"])
        } catch {
            record(directory, .error("cannot run journalctl: \(error)"))
            return
        }
        let data = run.output
        let stderr = run.errors
        let boots = InstallationParsers.journalBoots(String(decoding: data, as: UTF8.self))
        if run.status != 0, boots.isEmpty {
            let message = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            // A journal with no entries at all has no boots; journalctl says so and exits 1.
            guard message.contains("No boots found") || message.contains("No journal boot entry found") || message.isEmpty else {
                record(directory, .error("journalctl --list-boots exited \(run.status): \(message)"))
                return
            }
        }
        record(directory, .ok, count: boots.count)
        guard !boots.isEmpty else { return }
        facts.usage.append(UsageSpan(kind: .boot, source: directory, count: boots.count, first: boots.map(\.first).min(), last: boots.map(\.last).max()))
    }
}
