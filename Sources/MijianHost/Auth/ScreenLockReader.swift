import Foundation
import MijianCore

/// Reads what decides the screen and console locks: the desktop sessions installed, the dconf
/// `user` profile and the system databases it names (compiled GVDB files, the keyfiles and locks
/// they are compiled from), GSettings defaults (schema `<default>`s and `.gschema.override` files),
/// xscreensaver's system resources, and `TMOUT` in the shell start-up files.
struct ScreenLockReader {
    let root: HostRoot
    let listings: DirectoryListings
    var facts = ScreenLockFacts()
    var sources: [FactSource] = []

    init(root: HostRoot, listings: DirectoryListings) {
        self.root = root
        self.listings = listings
    }

    /// The dconf directories whose keys decide a lock: GNOME's session and screensaver, UKUI's
    /// screensaver, DDE's power settings (screen-black-lock, the lock delays).
    static let prefixes = ["/org/gnome/desktop/session/", "/org/gnome/desktop/screensaver/", "/org/ukui/screensaver/", "/com/deepin/dde/power/"]

    /// Schemas whose `<default>`s are read: GSettings path = `/` + id with dots as slashes + `/`.
    static let schemas = ["org.gnome.desktop.session", "org.gnome.desktop.screensaver", "org.ukui.screensaver", "com.deepin.dde.power"]

    /// Programs that show a desktop is installed: GNOME, UKUI and DDE each ship a session file,
    /// xscreensaver runs inside any X session and has none.
    static let programs: [(String, DesktopKind)] = [("/usr/bin/xscreensaver", .xscreensaver)]

    static func wanted(_ key: String) -> Bool { prefixes.contains { key.hasPrefix($0) } }

    mutating func read() {
        for directory in ["/usr/share/xsessions", "/usr/share/wayland-sessions"] {
            guard let names = list(directory) else { continue }
            for name in names where name.hasSuffix(".desktop") {
                facts.sessions.append((directory + "/" + name, DesktopKind.of(session: name)))
            }
        }
        for (path, kind) in Self.programs where root.exists(path) { facts.programs.append((path, kind)) }
        readProfile()
        for name in facts.profileDatabases ?? [] { facts.databases.append(database(name)) }
        readDefaults()
        if facts.desktops.contains(.xscreensaver) {
            for path in ["/etc/X11/app-defaults/XScreenSaver", "/usr/share/X11/app-defaults/XScreenSaver"] {
                guard let text = text(path) else { continue }
                facts.xscreensaver = Self.resources(text, file: path)
                break
            }
        }
        readTimeouts()
    }

    // MARK: files

    mutating func text(_ path: String) -> String? { root.configText(path, recordingInto: &sources, listings: listings) }

    /// The directory's names, recorded; nil when missing (known from its parent's listing) or unreadable.
    mutating func list(_ path: String) -> [String]? {
        listings.absent(path, root, &sources) ? nil : root.list(path, recordingInto: &sources)
    }

    // MARK: dconf

    /// `/etc/dconf/profile/user` (or the packaged one under `/usr/share/dconf/profile`): the
    /// `system-db:NAME` lines, in order.
    mutating func readProfile() {
        for path in ["/etc/dconf/profile/user", "/usr/share/dconf/profile/user"] {
            guard let text = text(path) else { continue }
            facts.profilePath = path
            facts.profileDatabases = ConfigText.lines(text).compactMap { line in
                let trimmed = ConfigText.trimmed(line)
                guard trimmed.hasPrefix("system-db:") else { return nil }
                return String(trimmed.dropFirst("system-db:".count))
            }
            return
        }
    }

    /// One system database: the compiled file dconf reads, and the keyfiles and locks it is made from.
    mutating func database(_ name: String) -> DconfDatabase {
        var database = DconfDatabase(name: name)
        guard !name.contains("/") else { return database }
        let compiled = "/etc/dconf/db/" + name
        if !listings.absent(compiled, root, &sources) { readCompiled(compiled, into: &database) }
        let directory = compiled + ".d"
        if let names = list(directory) {
            for file in names where file != "locks" && !file.hasPrefix(".") {
                guard let text = text(directory + "/" + file) else { continue }
                database.keyfileValues += Self.keyfile(text, file: directory + "/" + file).filter { Self.wanted($0.key) }
            }
            if let locks = list(directory + "/locks") {
                for file in locks where !file.hasPrefix(".") {
                    guard let text = text(directory + "/locks/" + file) else { continue }
                    database.keyfileLocks += ConfigText.lines(text).map { ConfigText.trimmed($0) }.filter { $0.hasPrefix("/") }
                }
            }
        }
        return database
    }

    /// The compiled database dconf reads: parsed, or an `error` source saying why not.
    mutating func readCompiled(_ compiled: String, into database: inout DconfDatabase) {
        do {
            let bytes = try root.readBytes(compiled, limit: 16 << 20)
            do {
                let parsed = try GVDBFile(bytes).read()
                database.compiled = true
                database.values = parsed.values.filter { Self.wanted($0.key) }.map { DconfValue(key: $0.key, value: $0.value, source: compiled) }
                database.locks = parsed.locks
                sources.append(FactSource(path: compiled, state: .ok, count: parsed.values.count))
            } catch {
                sources.append(FactSource(path: compiled, state: .error("not a dconf database this reader can read: \(error.description)")))
            }
        } catch where error.code == .notFound {
            sources.append(FactSource(path: compiled, state: .missing))
        } catch {
            sources.append(FactSource(path: compiled, state: .error(error.description)))
        }
    }

    /// A dconf keyfile: `[org/gnome/desktop/session]` groups of `key=value` (GVariant text).
    static func keyfile(_ text: String, file: String) -> [DconfValue] {
        groups(text, file: file) { "/" + $0.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/" }
    }

    /// `[group]` sections of `key=value` lines as dconf paths: `path(group)` + key.
    static func groups(_ text: String, file: String, path: (Substring) -> String) -> [DconfValue] {
        var group = ""
        var out: [DconfValue] = []
        for (index, raw) in ConfigText.lines(text).enumerated() {
            let line = ConfigText.trimmed(raw)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                group = path(line.dropFirst().dropLast())
                continue
            }
            guard !group.isEmpty, let equals = line.firstIndex(of: "=") else { continue }
            let key = ConfigText.trimmed(line[..<equals])
            let value = ConfigText.trimmed(line[line.index(after: equals)...])
            out.append(DconfValue(key: group + key, value: value, source: "\(file):\(index + 1)"))
        }
        return out
    }

    // MARK: GSettings defaults

    /// The schemas' own defaults, then the override files in the order glib-compile-schemas applies
    /// them (sorted by name; a later file wins).
    mutating func readDefaults() {
        let directory = "/usr/share/glib-2.0/schemas"
        guard let names = list(directory) else { return }
        for schema in Self.schemas where names.contains(schema + ".gschema.xml") {
            let path = directory + "/" + schema + ".gschema.xml"
            guard let text = text(path) else { continue }
            facts.defaults += Self.schemaDefaults(text, schema: schema, file: path)
        }
        for name in names where name.hasSuffix(".gschema.override") {
            let path = directory + "/" + name
            guard let text = text(path) else { continue }
            facts.defaults += Self.overrides(text, file: path)
        }
    }

    /// `<key name="idle-delay" type="u"><default>300</default>` as `/org/gnome/desktop/session/idle-delay = uint32 300`.
    static func schemaDefaults(_ text: String, schema: String, file: String) -> [DconfValue] {
        let base = "/" + schema.replacingOccurrences(of: ".", with: "/") + "/"
        var out: [DconfValue] = []
        var key: (name: String, type: String)?
        for (index, line) in ConfigText.lines(text).enumerated() where line.utf8.contains(UInt8(ascii: "<")) {
            if let start = line.asciiRange(of: "<key name=\"") {
                let rest = line[start.upperBound...]
                let name = rest.prefix { $0 != "\"" }
                var type = ""
                if let typeStart = rest.asciiRange(of: "type=\"") { type = String(rest[typeStart.upperBound...].prefix { $0 != "\"" }) }
                key = (String(name), type)
            }
            if let current = key, let start = line.asciiRange(of: "<default>"), let end = line.asciiRange(of: "</default>"), start.upperBound <= end.lowerBound {
                let value = ConfigText.trimmed(line[start.upperBound..<end.lowerBound])
                out.append(DconfValue(key: base + current.name, value: current.type == "u" ? "uint32 \(value)" : value, source: "\(file):\(index + 1)"))
                key = nil
            }
        }
        return out.filter { wanted($0.key) }
    }

    /// `[org.gnome.desktop.session]` groups of `key=value` (a `:DESKTOP` suffix on the group applies
    /// to that desktop only and is kept in the source).
    static func overrides(_ text: String, file: String) -> [DconfValue] {
        groups(text, file: file) { group in
            let id = group.split(separator: ":").first.map(String.init) ?? ""
            return "/" + id.replacingOccurrences(of: ".", with: "/") + "/"
        }.filter { wanted($0.key) }
    }

    // MARK: xscreensaver

    /// X resources (`*timeout:\t0:10:00`) of xscreensaver's app-defaults file.
    static func resources(_ text: String, file: String) -> [AuthSetting] {
        var out: [AuthSetting] = []
        for (index, raw) in ConfigText.lines(text).enumerated() {
            let line = ConfigText.trimmed(raw)
            guard line.hasPrefix("*") || line.hasPrefix("XScreenSaver"), let colon = line.firstIndex(of: ":") else { continue }
            var key = String(line[..<colon])
            if let dot = key.lastIndex(where: { $0 == "*" || $0 == "." }) { key = String(key[key.index(after: dot)...]) }
            guard ["timeout", "lock", "lockTimeout"].contains(key) else { continue }
            out.append(AuthSetting(key: key, value: ConfigText.trimmed(line[line.index(after: colon)...]), file: file, line: index + 1))
        }
        return out
    }

    // MARK: TMOUT

    /// `TMOUT=` in `/etc/profile`, `/etc/profile.d/*.sh` and `/etc/bash.bashrc`, and whether each file makes it read-only.
    mutating func readTimeouts() {
        var files = ["/etc/profile"]
        if let names = list("/etc/profile.d") {
            files += names.filter { $0.hasSuffix(".sh") }.map { "/etc/profile.d/" + $0 }
        }
        files.append("/etc/bash.bashrc")
        for file in files {
            guard let text = text(file) else { continue }
            facts.timeouts += Self.timeouts(text, file: file)
        }
    }

    static func timeouts(_ text: String, file: String) -> [ShellTimeout] {
        var found: [ShellTimeout] = []
        var readonly = false
        // Most lines of these files never name TMOUT: skip them before splitting into words.
        guard text.contains("TMOUT") else { return [] }
        for (index, raw) in ConfigText.lines(text).enumerated() where raw.contains("TMOUT") {
            var line = ConfigText.trimmed(raw)
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
            for statement in line.split(separator: ";") {
                let words = statement.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                guard !words.isEmpty else { continue }
                let marksReadonly = words[0] == "readonly" || ((words[0] == "declare" || words[0] == "typeset") && words.contains { $0.hasPrefix("-") && $0.contains("r") })
                for word in words where word == "TMOUT" || word.hasPrefix("TMOUT=") {
                    if marksReadonly { readonly = true }
                    guard word.hasPrefix("TMOUT=") else { continue }
                    let value = String(word.dropFirst("TMOUT=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                    found.append(ShellTimeout(seconds: Int(value), text: value, readonly: marksReadonly, location: "\(file):\(index + 1)"))
                }
            }
        }
        // A `readonly TMOUT` anywhere in the file freezes the value the file set.
        return found.map { var timeout = $0; timeout.readonly = timeout.readonly || readonly; return timeout }
    }
}

extension Substring {
    /// Where `needle` (ASCII) first occurs, compared byte by byte: the schema files are read line
    /// by line, and Foundation's search costs microseconds a call.
    fileprivate func asciiRange(of needle: StaticString) -> Range<Index>? {
        let bytes = utf8
        let count = needle.utf8CodeUnitCount
        return needle.withUTF8Buffer { pattern -> Range<Index>? in
            guard let first = pattern.first else { return nil }
            var from = bytes.startIndex
            while let at = bytes[from...].firstIndex(of: first) {
                var end = at
                var matched = 0
                while matched < count, end < bytes.endIndex, bytes[end] == pattern[matched] {
                    end = bytes.index(after: end)
                    matched += 1
                }
                if matched == count { return at..<end }
                from = bytes.index(after: at)
            }
            return nil
        }
    }
}
