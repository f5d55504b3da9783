#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore

/// Parsers of the files `host.installation` reads: pure functions of bytes and text.
enum InstallationParsers {
    // MARK: time stamps

    /// A UTC date from calendar fields; nil when they are out of range.
    static func utcDate(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) -> Date? {
        guard (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute),
            (0...60).contains(second)
        else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    /// The calendar year of a date, in UTC.
    static func year(of date: Date) -> Int {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return Int(parts.tm_year) + 1900
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `2026-03-02 10:11:12` or `2026-03-02T10:11:12` at the start of a line (dpkg.log, subiquity's
    /// logs, RFC 3339 syslog), taken as UTC.
    static func isoStamp(_ line: Substring) -> Date? {
        let bytes = Array(line.utf8.prefix(19))
        guard bytes.count == 19, bytes[4] == 0x2D, bytes[7] == 0x2D, bytes[10] == 0x20 || bytes[10] == 0x54, bytes[13] == 0x3A, bytes[16] == 0x3A else {
            return nil
        }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13), let minute = number(14..<16),
            let second = number(17..<19)
        else { return nil }
        return utcDate(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    /// A year-less syslog stamp (`Mar  2 10:11:12`) at the start of a line, as month, day and time.
    static func syslogStamp(_ line: Substring) -> (month: Int, day: Int, hour: Int, minute: Int, second: Int)? {
        let words = line.prefix(15).split(separator: " ", omittingEmptySubsequences: true)
        guard words.count == 3, let month = months.firstIndex(of: String(words[0])), let day = Int(words[1]) else { return nil }
        let clock = words[2].split(separator: ":")
        guard clock.count == 3, let hour = Int(clock[0]), let minute = Int(clock[1]), let second = Int(clock[2]) else { return nil }
        return (month + 1, day, hour, minute, second)
    }

    /// The build date of the installation medium from `/var/log/installer/media-info`
    /// (`Debian GNU/Linux 12.5.0 "Bookworm" - Official amd64 NETINST with firmware 20240210-11:27`).
    static func mediaBuildDate(_ text: String) -> Date? {
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let digits = word.prefix { $0.isNumber }
            guard digits.count == 8, let value = Int(digits) else { continue }
            if let date = utcDate(year: value / 10_000, month: value / 100 % 100, day: value % 100) { return date }
        }
        return nil
    }

    /// The first dated line of an installer log: an ISO stamp, or a syslog stamp given the year
    /// it falls in (the first such date on or after `notBefore`, the medium's build date).
    static func firstInstallerDate(_ text: String, notBefore: Date?, fallbackYear: Int) -> Date? {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true).prefix(50) {
            if let date = isoStamp(line) { return date }
            if let stamp = syslogStamp(line) {
                var year = notBefore.map(year(of:)) ?? fallbackYear
                guard let first = utcDate(year: year, month: stamp.month, day: stamp.day, hour: stamp.hour, minute: stamp.minute, second: stamp.second)
                else { return nil }
                if let notBefore, first < notBefore.addingTimeInterval(-86_400) { year += 1 }
                return utcDate(year: year, month: stamp.month, day: stamp.day, hour: stamp.hour, minute: stamp.minute, second: stamp.second)
            }
        }
        return nil
    }

    /// The first entry of a dpkg log (`2026-03-02 10:11:12 startup archives unpack`).
    static func firstDpkgEntry(_ text: Substring) -> Date? {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true).prefix(20) {
            if let date = isoStamp(line) { return date }
        }
        return nil
    }

    // MARK: GRUB

    /// A menu entry of `grub.cfg`: its title, the script section it came from and its loader.
    struct MenuEntry: Equatable {
        var title: String
        var section: String?
        var line: Int
        var chainloader: String?
        var linux: String?
    }

    /// The menu entries of a `grub.cfg` as update-grub writes it: `menuentry 'TITLE' … {` lines,
    /// in `### BEGIN /etc/grub.d/NN_name ###` sections, submenus included.
    static func grubEntries(_ text: String) -> [MenuEntry] {
        var entries: [MenuEntry] = []
        var section: String?
        var current: MenuEntry?
        for (offset, raw) in ConfigText.lines(text).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("### BEGIN ") {
                section = line.dropFirst(10).split(separator: " ").first.map { String($0.split(separator: "/").last ?? $0) }
                continue
            }
            if line.hasPrefix("### END ") {
                section = nil
                continue
            }
            if line.hasPrefix("menuentry ") || line.hasPrefix("menuentry\t") {
                if let current { entries.append(current) }
                current = MenuEntry(title: quoted(line.dropFirst(10)) ?? "(untitled)", section: section, line: offset + 1)
                continue
            }
            guard current != nil else { continue }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.first == "chainloader", words.count >= 2 { current?.chainloader = String(words[1]) }
            if words.first == "linux" || words.first == "linuxefi", words.count >= 2 { current?.linux = String(words[1]) }
            if line == "}", let done = current {
                entries.append(done)
                current = nil
            }
        }
        if let current { entries.append(current) }
        return entries
    }

    /// The first quoted word (`'…'` or `"…"`) of a line.
    static func quoted(_ text: Substring) -> String? {
        let trimmed = text.drop { $0 == " " || $0 == "\t" }
        guard let quote = trimmed.first, quote == "'" || quote == "\"" else {
            return trimmed.split(separator: " ").first.map(String.init)
        }
        let rest = trimmed.dropFirst()
        guard let end = rest.firstIndex(of: quote) else { return nil }
        return String(rest[..<end])
    }

    // MARK: EFI

    /// An EFI boot entry: its description and the loader file path of its device path, if any.
    struct LoadOption: Equatable {
        var active: Bool
        var description: String
        var filePath: String?
    }

    /// Parses an efivarfs `Boot####` file: 4 bytes of variable attributes, then EFI_LOAD_OPTION
    /// (UINT32 attributes, UINT16 FilePathListLength, a NUL-terminated UTF-16LE description, the
    /// device path list). The loader is the media file path node (type 4, subtype 4).
    static func loadOption(_ bytes: [UInt8]) -> LoadOption? {
        guard bytes.count >= 4 + 6 + 2 else { return nil }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        let attributes = Int(bytes[4]) | Int(bytes[5]) << 8
        let listLength = u16(8)
        var index = 10
        var units: [UInt16] = []
        while index + 1 < bytes.count {
            let unit = UInt16(u16(index))
            index += 2
            if unit == 0 { break }
            units.append(unit)
        }
        let description = String(decoding: units, as: UTF16.self)
        var filePath: String?
        var node = index
        let end = min(bytes.count, index + listLength)
        while node + 4 <= end {
            let type = bytes[node]
            let subtype = bytes[node + 1]
            let length = u16(node + 2)
            guard length >= 4, node + length <= end else { break }
            if type == 0x7F { break }
            if type == 4, subtype == 4 {
                var path: [UInt16] = []
                var at = node + 4
                while at + 1 < node + length {
                    let unit = UInt16(u16(at))
                    at += 2
                    if unit == 0 { break }
                    path.append(unit)
                }
                filePath = String(decoding: path, as: UTF16.self)
            }
            node += length
        }
        return LoadOption(active: attributes & 1 != 0, description: description, filePath: filePath)
    }

    // MARK: utmp

    /// One `struct utmp` record as glibc writes it on 64-bit Linux (384 bytes).
    struct UtmpRecord: Equatable {
        var type: Int
        var line: String
        var user: String
        var host: String
        var time: Date
    }

    /// The size of `struct utmp` on x86-64 and the other 64-bit glibc targets.
    static let utmpSize = 384

    /// The records of a wtmp or btmp file; a trailing partial record is counted, not parsed.
    static func utmpRecords(_ bytes: [UInt8]) -> (records: [UtmpRecord], trailing: Int) {
        var records: [UtmpRecord] = []
        records.reserveCapacity(bytes.count / utmpSize)
        func text(_ from: Int, _ count: Int) -> String {
            let slice = bytes[from..<(from + count)]
            let end = slice.firstIndex(of: 0) ?? slice.endIndex
            return String(decoding: slice[from..<end], as: UTF8.self)
        }
        var at = 0
        while at + utmpSize <= bytes.count {
            let type = Int(Int16(bitPattern: UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8))
            var seconds: UInt32 = 0
            for shift in 0..<4 { seconds |= UInt32(bytes[at + 340 + shift]) << (8 * UInt32(shift)) }
            records.append(UtmpRecord(
                type: type, line: text(at + 8, 32), user: text(at + 44, 32), host: text(at + 76, 256),
                time: Date(timeIntervalSince1970: TimeInterval(Int32(bitPattern: seconds)))))
            at += utmpSize
        }
        return (records, bytes.count - at)
    }

    /// `ut_type` values.
    static let bootTime = 2
    static let userProcess = 7

    // MARK: journal boots

    /// The boots `journalctl --list-boots` prints (systemd 252 text, UTC): `IDX BOOTID Wkd
    /// YYYY-MM-DD HH:MM:SS UTC Wkd YYYY-MM-DD HH:MM:SS UTC`, or JSON (systemd 254 and later).
    static func journalBoots(_ text: String) -> [(first: Date, last: Date)] {
        var boots: [(Date, Date)] = []
        if text.first == "[", let parsed = try? JSONParser(maxDepth: 4, maxBytes: 16 << 20).parse(Array(text.utf8)), case .array(let rows) = parsed {
            for row in rows {
                guard let first = row["first_entry"]?.intValue, let last = row["last_entry"]?.intValue else { continue }
                boots.append((Date(timeIntervalSince1970: TimeInterval(first) / 1_000_000), Date(timeIntervalSince1970: TimeInterval(last) / 1_000_000)))
            }
            return boots
        }
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 10, Int(words[0]) != nil, words[1].count == 32 else { continue }
            guard let first = isoStamp(Substring(words[3] + " " + words[4])), let last = isoStamp(Substring(words[7] + " " + words[8])) else { continue }
            boots.append((first, last))
        }
        return boots
    }

    // MARK: guests

    /// A start or empty tag of an XML document: its name and attributes.
    struct Tag {
        var name: String
        var attributes: [String: String]
        var closing: Bool
        var empty: Bool
    }

    /// The tags of an XML text, in order; enough for VirtualBox and libvirt configurations, which
    /// hold what is read here in attributes.
    static func tags(_ text: String) -> [Tag] {
        var tags: [Tag] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "<") {
            rest = rest[rest.index(after: open)...]
            guard let close = rest.firstIndex(of: ">") else { break }
            var body = rest[..<close]
            rest = rest[rest.index(after: close)...]
            if body.hasPrefix("?") || body.hasPrefix("!") { continue }
            let closing = body.hasPrefix("/")
            if closing { body = body.dropFirst() }
            let empty = body.hasSuffix("/")
            if empty { body = body.dropLast() }
            let name = body.prefix { !$0.isWhitespace }
            var attributes: [String: String] = [:]
            var scan = body.dropFirst(name.count)
            while let equals = scan.firstIndex(of: "=") {
                let key = scan[..<equals].trimmingCharacters(in: .whitespacesAndNewlines)
                var value = scan[scan.index(after: equals)...].drop { $0.isWhitespace }
                guard let quote = value.first, quote == "\"" || quote == "'" else { break }
                value = value.dropFirst()
                guard let end = value.firstIndex(of: quote) else { break }
                attributes[key] = unescape(String(value[..<end]))
                scan = value[value.index(after: end)...]
            }
            tags.append(Tag(name: String(name), attributes: attributes, closing: closing, empty: empty))
        }
        return tags
    }

    static func unescape(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }

    /// A VirtualBox machine file (`.vbox`): its name, disk images and the attachments of its
    /// enabled network adapters (`<Adapter enabled="true"><NAT/>` …).
    static func virtualBox(_ text: String) -> (name: String?, images: [String], adapters: [GuestAdapter]) {
        var name: String?
        var images: [String] = []
        var adapters: [GuestAdapter] = []
        var inEnabledAdapter = false
        for tag in tags(text) {
            switch tag.name {
            case "Machine" where !tag.closing: name = tag.attributes["name"]
            case "HardDisk" where !tag.closing: if let location = tag.attributes["location"] { images.append(location) }
            case "Adapter":
                if tag.closing { inEnabledAdapter = false } else if !tag.empty { inEnabledAdapter = tag.attributes["enabled"] == "true" }
            case "NAT" where inEnabledAdapter && !tag.closing: adapters.append(GuestAdapter(mode: "NAT", reachesOut: true))
            case "NATNetwork" where inEnabledAdapter && !tag.closing:
                adapters.append(GuestAdapter(mode: "NAT network", target: tag.attributes["name"], reachesOut: true))
            case "BridgedInterface" where inEnabledAdapter && !tag.closing:
                adapters.append(GuestAdapter(mode: "bridged to", target: tag.attributes["name"], reachesOut: true))
            case "GenericInterface" where inEnabledAdapter && !tag.closing:
                adapters.append(GuestAdapter(mode: "generic driver", target: tag.attributes["driver"], reachesOut: true))
            case "CloudNetwork" where inEnabledAdapter && !tag.closing:
                adapters.append(GuestAdapter(mode: "cloud network", target: tag.attributes["name"], reachesOut: true))
            case "HostOnlyInterface" where inEnabledAdapter && !tag.closing:
                adapters.append(GuestAdapter(mode: "host-only", target: tag.attributes["name"], reachesOut: false))
            case "InternalNetwork" where inEnabledAdapter && !tag.closing:
                adapters.append(GuestAdapter(mode: "internal network", target: tag.attributes["name"], reachesOut: false))
            default: break
            }
        }
        return (name, images, adapters)
    }

    /// A VMware `.vmx`: `displayName`, disk files, and each present `ethernetN` with its
    /// `connectionType` (bridged when unset, as VMware does).
    static func vmx(_ text: String) -> (name: String?, images: [String], adapters: [GuestAdapter]) {
        var values: [String: String] = [:]
        for raw in ConfigText.lines(text) {
            let parts = raw.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
            values[key] = parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        var adapters: [GuestAdapter] = []
        for index in 0..<10 where values["ethernet\(index).present"]?.lowercased() == "true" {
            let type = values["ethernet\(index).connectiontype"]?.lowercased() ?? "bridged"
            switch type {
            case "hostonly": adapters.append(GuestAdapter(mode: "host-only", target: "ethernet\(index)", reachesOut: false))
            case "custom", "pvn":
                let target = values["ethernet\(index).vnet"] ?? values["ethernet\(index).pvnid"]
                adapters.append(GuestAdapter(mode: type, target: target, reachesOut: true))
            default: adapters.append(GuestAdapter(mode: type, target: "ethernet\(index)", reachesOut: true))
            }
        }
        let images = values.filter { $0.key.hasSuffix(".filename") && $0.value.lowercased().hasSuffix(".vmdk") }.map(\.value).sorted()
        return (values["displayname"], images, adapters)
    }

    /// A libvirt domain XML: its name, disk sources and `<interface type=…>` with their sources.
    /// A `network` interface reaches out when that network forwards (`isolated` says which do not).
    static func libvirtDomain(_ text: String, isolated: (String) -> Bool?) -> (name: String?, images: [String], adapters: [GuestAdapter]) {
        var name: String?
        var images: [String] = []
        var adapters: [GuestAdapter] = []
        var interfaceType: String?
        var inDisk = false
        for tag in tags(text) {
            switch tag.name {
            case "disk": inDisk = !tag.closing && !tag.empty
            case "source" where inDisk: if let file = tag.attributes["file"] { images.append(file) }
            case "interface":
                if tag.closing {
                    if let type = interfaceType { adapters.append(adapter(type, nil, isolated)) }
                    interfaceType = nil
                } else {
                    interfaceType = tag.attributes["type"] ?? "unknown"
                    if tag.empty, let type = interfaceType {
                        adapters.append(adapter(type, nil, isolated))
                        interfaceType = nil
                    }
                }
            case "source" where interfaceType != nil:
                if let type = interfaceType {
                    adapters.append(adapter(type, tag.attributes["network"] ?? tag.attributes["bridge"] ?? tag.attributes["dev"], isolated))
                    interfaceType = nil
                }
            default: break
            }
        }
        if let range = text.range(of: "<name>"), let end = text.range(of: "</name>", range: range.upperBound..<text.endIndex) {
            name = String(text[range.upperBound..<end.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return (name, images, adapters)
    }

    private static func adapter(_ type: String, _ target: String?, _ isolated: (String) -> Bool?) -> GuestAdapter {
        switch type {
        case "network":
            let closed = target.flatMap(isolated) ?? false
            return GuestAdapter(mode: closed ? "isolated network" : "network", target: target, reachesOut: !closed)
        case "bridge": return GuestAdapter(mode: "bridged to", target: target, reachesOut: true)
        case "direct": return GuestAdapter(mode: "macvtap on", target: target, reachesOut: true)
        case "user", "passt": return GuestAdapter(mode: "user-mode (\(type))", target: target, reachesOut: true)
        default: return GuestAdapter(mode: type, target: target, reachesOut: true)
        }
    }

    /// Whether a libvirt network XML forwards (`<forward …>` present) or is isolated.
    static func libvirtNetworkIsolated(_ text: String) -> Bool {
        !tags(text).contains { $0.name == "forward" && !$0.closing }
    }

    // MARK: passwd

    /// Home directories of `/etc/passwd`: users with a UID of 1000 or more (below 65534) or a
    /// home under `/home`, and root.
    static func homes(_ passwd: String) -> [(user: String, home: String)] {
        var homes: [(String, String)] = []
        for line in ConfigText.lines(passwd) {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 7, let uid = Int(fields[2]) else { continue }
            let home = String(fields[5])
            guard home.hasPrefix("/"), home != "/", !home.hasPrefix("/nonexistent") else { continue }
            if uid == 0 || (1000..<65534).contains(uid) || home.hasPrefix("/home/") { homes.append((String(fields[0]), home)) }
        }
        return homes
    }
}
