import Foundation
import Logging
import MijianCore

/// Observes the history facts of a host.
public enum HistoryProbe {
    /// Reads what the checks need from `root` (live kernel sources too when `live`): saved
    /// profiles and pairings when `profiles`, the journal and kernel log files when `logs`.
    public static func observe(root: HostRoot, live: Bool, logger: Logger, profiles: Bool = true, logs: Bool = true) -> HistoryFacts {
        // A look that failed for another reason than absence (whether a path is a directory, a
        // journal header, a pairing's name) is an `error` source, never taken for "absent".
        var (reader, failures) = root.collectingFailures { root in
            var reader = HistoryReader(root: root)
            if profiles { reader.readProfiles() }
            if logs { reader.readLogs() }
            return reader
        }
        reader.facts.sources.addUnclaimed(failures)
        for note in reader.facts.notes { logger.debug("history probe skipped something", metadata: ["mijian.note": "\(note)"]) }
        return reader.facts
    }
}

/// The work of one history observation.
struct HistoryReader {
    let root: HostRoot
    var facts = HistoryFacts()

    init(root: HostRoot) {
        self.root = root
    }

    /// Saved network profiles and Bluetooth pairings (`wireless.history`).
    mutating func readProfiles() {
        readNetworkManager()
        readWPASupplicant()
        readIWD()
        readIfupdown()
        readPPPPeers()
        readWvdial()
        readBluetooth()
        readAccessPoints()
    }

    /// Journal configuration and files, kernel log files (`log.retention`).
    mutating func readLogs() {
        readJournal()
        readKernelLogs()
    }

    private mutating func record(_ path: String, _ state: FactSource.State, count: Int = 0, resolvedPath: String? = nil) {
        facts.sources.append(FactSource(path: path, state: state, count: count, resolvedPath: resolvedPath))
    }

    /// Lists a directory, recording the outcome; nil when missing or unreadable.
    private mutating func listRecorded(_ path: String) -> [String]? {
        root.list(path, recordingInto: &facts.sources)
    }

    /// A file's text; an unreadable file is recorded as an error source.
    private mutating func readFile(_ path: String) -> String? {
        do {
            return try root.readText(path, limit: 1 << 20)
        } catch {
            record(path, .error(error.description))
            return nil
        }
    }

    // MARK: profiles

    private mutating func readNetworkManager() {
        let directory = "/etc/NetworkManager/system-connections"
        guard let names = listRecorded(directory) else { return }
        for name in names where !name.hasPrefix(".") && !name.hasSuffix("~") {
            let path = "\(directory)/\(name)"
            // A directory here is read too, and so an error: no profile file stands where one is named.
            guard let text = readFile(path) else { continue }
            let ini = KeyFile.parse(text)
            let type = ini["connection", "type"] ?? "unknown"
            let id = ini["connection", "id"] ?? name
            let ssid = (ini["wifi", "ssid"] ?? ini["802-11-wireless", "ssid"]).map(Self.keyfileSSID)
            let subtype = ini["vpn", "service-type"]
            let mode = ini["wifi", "mode"] ?? ini["802-11-wireless", "mode"]
            facts.profiles.append(SavedProfile(tool: .networkManager, type: type, name: id, ssid: ssid, subtype: subtype, path: path, mode: mode))
        }
    }

    private mutating func readWPASupplicant() {
        let directory = "/etc/wpa_supplicant"
        guard let names = listRecorded(directory) else { return }
        for name in names where name.hasSuffix(".conf") {
            let path = "\(directory)/\(name)"
            guard let text = readFile(path) else { continue }
            var number = 0
            var blockStart: Int?
            var ssid: String?
            var keyMgmt: String?
            for raw in ConfigText.lines(text) {
                number += 1
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("#") { continue }
                if blockStart == nil {
                    if line.hasPrefix("network="), line.contains("{") { blockStart = number; ssid = nil; keyMgmt = nil }
                    continue
                }
                if line.hasPrefix("}") {
                    if let start = blockStart {
                        let type = keyMgmt.map { $0 == "NONE" ? "open" : "wifi" } ?? "wifi"
                        facts.profiles.append(SavedProfile(tool: .wpaSupplicant, type: type, name: ssid ?? "(no ssid)", ssid: ssid, path: path, line: start))
                    }
                    blockStart = nil
                    continue
                }
                if line.hasPrefix("ssid=") {
                    ssid = String(line.dropFirst(5)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                } else if line.hasPrefix("key_mgmt=") {
                    keyMgmt = String(line.dropFirst(9))
                }
            }
        }
    }

    private mutating func readIWD() {
        let directory = "/var/lib/iwd"
        guard let names = listRecorded(directory) else { return }
        for name in names {
            guard let dot = name.lastIndex(of: ".") else { continue }
            let type = String(name[name.index(after: dot)...])
            guard ["psk", "open", "8021x"].contains(type) else { continue }
            var ssid = String(name[..<dot])
            // iwd writes names with other than alphanumerics, `-` and `_` as `=` + hex.
            if ssid.hasPrefix("="), let decoded = Self.hexDecoded(String(ssid.dropFirst())) { ssid = decoded }
            facts.profiles.append(SavedProfile(tool: .iwd, type: type, name: ssid, ssid: ssid, path: "\(directory)/\(name)"))
        }
    }

    /// A single file: its text, recording it as read, missing or unreadable.
    private mutating func readRecorded(_ path: String) -> String? {
        do {
            guard let (text, resolved) = try root.readTextResolvedIfPresent(path, limit: 1 << 20) else {
                record(path, .missing)
                return nil
            }
            record(path, .ok, count: 1, resolvedPath: resolved)
            return text
        } catch {
            record(path, .error(error.description))
            return nil
        }
    }

    /// ifupdown's `/etc/network/interfaces` and every file in `interfaces.d`: a stanza with `wpa-*` or
    /// `wireless-*` options is a Wi-Fi profile, one with the `ppp` method or a `provider` a dial-up one.
    private mutating func readIfupdown() {
        var files: [(String, String)] = []
        if let text = readRecorded("/etc/network/interfaces") { files.append(("/etc/network/interfaces", text)) }
        let directory = "/etc/network/interfaces.d"
        for name in listRecorded(directory) ?? [] where !name.hasPrefix(".") && !name.hasSuffix("~") {
            let path = "\(directory)/\(name)"
            // A directory here is read too, and so an error: no profile file stands where one is named.
            guard let text = readFile(path) else { continue }
            files.append((path, text))
        }
        for (path, text) in files { facts.profiles += Self.ifupdownProfiles(text, path: path) }
    }

    static func ifupdownProfiles(_ text: String, path: String) -> [SavedProfile] {
        var profiles: [SavedProfile] = []
        var stanza: (name: String, method: String, line: Int)?
        var ssid: String?
        var wifi = false
        var ppp = false
        func close() {
            guard let current = stanza, wifi || ppp || current.method == "ppp" else { return }
            profiles.append(SavedProfile(
                tool: .ifupdown, type: wifi ? "wifi" : "ppp", name: current.name, ssid: ssid, path: path, line: current.line))
        }
        let stanzaWords: Set = ["iface", "mapping", "auto", "source", "source-directory", "rename"]
        for (offset, raw) in ConfigText.lines(text).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = words.first else { continue }
            if stanzaWords.contains(first) || first.hasPrefix("allow-") {
                close()
                stanza = nil
                ssid = nil
                wifi = false
                ppp = false
                if first == "iface", words.count >= 2 { stanza = (words[1], words.count >= 4 ? words[3] : "", offset + 1) }
                continue
            }
            guard stanza != nil else { continue }
            if first.hasPrefix("wpa-") || first.hasPrefix("wireless-") {
                wifi = true
                if first == "wpa-ssid" || first == "wireless-essid" {
                    ssid = words.dropFirst().joined(separator: " ").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                }
            } else if first == "provider" {
                ppp = true
            }
        }
        close()
        return profiles
    }

    /// pppd peers (`/etc/ppp/peers/*`): each is a dial-up link this machine can bring up, except the
    /// ppp package's example `provider`, whose phone number is still the `********` placeholder.
    private mutating func readPPPPeers() {
        let directory = "/etc/ppp/peers"
        for name in listRecorded(directory) ?? [] where !name.hasPrefix(".") && !name.hasSuffix("~") && !name.hasSuffix(".dpkg-dist") {
            let path = "\(directory)/\(name)"
            // A directory here is read too, and so an error: no profile file stands where one is named.
            guard let text = readFile(path) else { continue }
            if text.contains("-T ********") { continue }
            facts.profiles.append(SavedProfile(tool: .pppd, type: "ppp", name: name, path: path))
        }
    }

    /// wvdial's dialers (`[Dialer NAME]` sections with a phone number in `/etc/wvdial.conf`).
    private mutating func readWvdial() {
        let path = "/etc/wvdial.conf"
        guard let text = readRecorded(path) else { return }
        var section: (name: String, line: Int)?
        var phone = false
        func close() {
            if let section, phone { facts.profiles.append(SavedProfile(tool: .wvdial, type: "ppp", name: section.name, path: path, line: section.line)) }
        }
        for (offset, raw) in ConfigText.lines(text).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") {
                close()
                phone = false
                let title = line.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).trimmingCharacters(in: .whitespaces)
                section = title.lowercased().hasPrefix("dialer") ? (String(title.dropFirst(6)).trimmingCharacters(in: .whitespaces), offset + 1) : nil
                continue
            }
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, parts[0].lowercased() == "phone", !parts[1].isEmpty { phone = true }
        }
        close()
    }

    /// An SSID as a NetworkManager keyfile writes it: text, or (older files, and SSIDs that are not
    /// text) a list of decimal bytes such as `79;102;102;105;99;101;`.
    static func keyfileSSID(_ value: String) -> String {
        let parts = value.split(separator: ";", omittingEmptySubsequences: true)
        guard value.contains(";"), !parts.isEmpty, parts.count <= 32 else { return value }
        var bytes: [UInt8] = []
        for part in parts {
            guard let byte = UInt8(part.trimmingCharacters(in: .whitespaces)) else { return value }
            bytes.append(byte)
        }
        if let text = String(validating: bytes, as: UTF8.self), !text.unicodeScalars.contains(where: { $0.value < 0x20 }) { return text }
        return bytes.map { String(format: "\\x%02x", $0) }.joined()
    }

    static func hexDecoded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2, limitedBy: text.endIndex) ?? text.endIndex
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func isAddress(_ name: String) -> Bool {
        let parts = name.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.count == 2 && $0.allSatisfy(\.isHexDigit) }
    }

    private mutating func readBluetooth() {
        let directory = "/var/lib/bluetooth"
        guard let adapters = listRecorded(directory) else { return }
        for adapter in adapters where Self.isAddress(adapter) {
            let adapterPath = "\(directory)/\(adapter)"
            guard let devices = listRecorded(adapterPath) else { continue }
            for device in devices where Self.isAddress(device) {
                let path = "\(adapterPath)/\(device)"
                var name: String?
                do {
                    if let text = try root.readTextIfPresent(path + "/info", limit: 1 << 20) { name = KeyFile.parse(text)["General", "Name"] }
                } catch {
                    record(path + "/info", .error(error.description))
                }
                facts.pairings.append(BluetoothPairing(adapter: adapter, device: device, name: name, path: path))
            }
        }
    }

    // MARK: access points

    /// hostapd's configurations (`/etc/hostapd/*.conf`, and the file `/etc/default/hostapd` names
    /// in `DAEMON_CONF`) and create_ap's (`/etc/create_ap.conf`): this machine set up as a hotspot.
    private mutating func readAccessPoints() {
        var files: [String] = []
        for name in listRecorded("/etc/hostapd") ?? [] where name.hasSuffix(".conf") { files.append("/etc/hostapd/\(name)") }
        if let text = readRecorded("/etc/default/hostapd") {
            for line in ConfigText.lines(text) where line.hasPrefix("DAEMON_CONF=") {
                let value = line.dropFirst(12).trimmingCharacters(in: CharacterSet(charactersIn: "\"' "))
                for path in value.split(separator: " ").map(String.init) where path.hasPrefix("/") && !files.contains(path) { files.append(path) }
            }
        }
        for path in files {
            guard let text = readFile(path) else { continue }
            let values = Self.assignments(text)
            facts.accessPoints.append(AccessPointConfig(tool: .hostapd, path: path, interface: values["interface"], ssid: values["ssid"]))
        }
        if let text = readRecorded("/etc/create_ap.conf") {
            let values = Self.assignments(text)
            facts.accessPoints.append(AccessPointConfig(
                tool: .createAP, path: "/etc/create_ap.conf", interface: values["WIFI_IFACE"], ssid: values["SSID"], shares: values["INTERNET_IFACE"]))
        }
    }

    /// `KEY=value` lines (comments and blanks skipped; the first value of a key wins).
    static func assignments(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for raw in ConfigText.lines(text) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals]).trimmingCharacters(in: .whitespaces)
            let value = String(line[line.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            if values[key] == nil, !value.isEmpty { values[key] = value }
        }
        return values
    }

    // MARK: logs

    private mutating func readJournal() {
        var journal = JournalFacts()
        journal.persistentDirectory = root.isDirectoryExpected("/var/log/journal")
        journal.volatileDirectory = root.isDirectoryExpected("/run/log/journal")
        var configFiles: [String] = []
        if root.exists("/etc/systemd/journald.conf") { configFiles.append("/etc/systemd/journald.conf") }
        // Drop-ins: a name in an earlier directory hides the same name in later ones; all read in name order.
        var chosen: [String: String] = [:]
        for directory in ["/etc/systemd/journald.conf.d", "/run/systemd/journald.conf.d", "/usr/local/lib/systemd/journald.conf.d", "/usr/lib/systemd/journald.conf.d"] {
            guard let names = listRecorded(directory) else { continue }
            for name in names where name.hasSuffix(".conf") && chosen[name] == nil { chosen[name] = "\(directory)/\(name)" }
        }
        configFiles += chosen.keys.sorted().compactMap { chosen[$0] }
        if configFiles.isEmpty || configFiles.first != "/etc/systemd/journald.conf" { record("/etc/systemd/journald.conf", .missing) }
        for file in configFiles {
            let text: String
            do {
                let read = try root.readResolved(file, limit: 1 << 20)
                text = String(decoding: read.bytes, as: UTF8.self)
                record(file, .ok, resolvedPath: read.resolvedPath)
            } catch {
                record(file, .error(error.description))
                continue
            }
            var section = ""
            var number = 0
            for raw in ConfigText.lines(text) {
                number += 1
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("[") { section = line; continue }
                guard section == "[Journal]", line.hasPrefix("Storage=") else { continue }
                journal.storage = String(line.dropFirst("Storage=".count)).trimmingCharacters(in: .whitespaces)
                journal.storageLocation = "\(file):\(number)"
            }
        }
        if journal.persistentDirectory, let machines = listRecorded("/var/log/journal") {
            for machine in machines {
                let directory = "/var/log/journal/\(machine)"
                guard root.isDirectoryExpected(directory), let files = listRecorded(directory) else { continue }
                for name in files where name.hasSuffix(".journal") || name.hasSuffix(".journal~") {
                    let path = "\(directory)/\(name)"
                    guard let info = root.fileInfo(path) else {
                        facts.notes.append("\(path) vanished while being read; skipped")
                        continue
                    }
                    let first = Self.journalHeadTime(root: root, path: path)
                    journal.persistentFiles.append(LogFile(path: path, modified: Date(timeIntervalSince1970: TimeInterval(info.mtime)), firstEntry: first, size: info.size))
                }
            }
        } else if !journal.persistentDirectory {
            record("/var/log/journal", .missing)
        }
        facts.journal = journal
    }

    /// `head_entry_realtime` (µs since the epoch, little-endian at offset 184) of a journal file header.
    static func journalHeadTime(root: HostRoot, path: String) -> Date? {
        let header: [UInt8]
        do {
            header = try root.readPrefix(path, count: 208)
        } catch {
            root.noteFailure(path, error)
            return nil
        }
        guard header.count >= 208,
            header.prefix(8).elementsEqual(Array("LPKSHHRH".utf8))
        else { return nil }
        var micros: UInt64 = 0
        for offset in (184..<192).reversed() { micros = micros << 8 | UInt64(header[offset]) }
        guard micros > 0 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(micros) / 1_000_000)
    }

    private mutating func readKernelLogs() {
        guard let names = listRecorded("/var/log") else { return }
        for name in names where name.hasPrefix("kern.log") || name.hasPrefix("syslog") {
            let path = "/var/log/\(name)"
            guard let info = root.fileInfo(path) else {
                facts.notes.append("\(path) vanished while being read; skipped")
                continue
            }
            let modified = Date(timeIntervalSince1970: TimeInterval(info.mtime))
            var first: Date?
            if !name.hasSuffix(".gz"), !name.hasSuffix(".xz"), !name.hasSuffix(".zst") {
                do {
                    first = Self.firstTimestamp(try root.readPrefix(path, count: 256), modified: modified)
                } catch {
                    root.noteFailure(path, error)
                }
            }
            facts.kernelLogs.append(LogFile(path: path, modified: modified, firstEntry: first, size: info.size))
        }
    }

    /// The stamp of the first line: RFC 3339 (rsyslog's high-precision format) or `Mmm dd hh:mm:ss`
    /// (year taken as the modification year, or the one before when that would be in the future).
    static func firstTimestamp(_ bytes: [UInt8], modified: Date) -> Date? {
        let line = String(decoding: bytes.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        if let word = line.split(separator: " ").first, let date = RFC3339.date(from: String(word)) { return date }
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count >= 3 else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let month = months.firstIndex(of: String(parts[0])), let day = Int(parts[1]) else { return nil }
        let clock = parts[2].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let year = calendar.component(.year, from: modified)
        for candidate in [year, year - 1] {
            let components = DateComponents(year: candidate, month: month + 1, day: day, hour: clock[0], minute: clock[1], second: clock[2])
            if let date = calendar.date(from: components), date <= modified { return date }
        }
        return nil
    }
}

/// A minimal reader of `key=value` files with `[section]` headers (NetworkManager keyfiles,
/// BlueZ `info`). It keeps only what callers ask for by key; values are never logged.
struct KeyFile {
    private var values: [String: [String: String]] = [:]

    static func parse(_ text: String) -> KeyFile {
        var file = KeyFile()
        var section = ""
        for raw in ConfigText.lines(text) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast())
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            file.values[section, default: [:]][key] = value
        }
        return file
    }

    subscript(section: String, key: String) -> String? { values[section]?[key] }
}

extension HostRoot {
    /// At most `count` bytes from the start of a file (journal headers, first log lines).
    func readPrefix(_ hostPath: String, count: Int) throws(MijianError) -> [UInt8] {
        guard let fd = try openRegularFile(hostPath) else { return [] }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = try Syscall.call("cannot read \(hostPath)", path: hostPath) {
                out.withUnsafeMutableBytes { read(fd, $0.baseAddress.map { $0 + filled }, count - filled) }
            }
            if got == 0 { break }
            filled += got
        }
        return Array(out.prefix(filled))
    }
}
