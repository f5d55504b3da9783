import Foundation
import Logging
import MijianCore

/// Observes identity and access: the PAM stacks, password quality and ageing, lockout, local
/// accounts, sshd, and the screen and console locks. `/etc/shadow` is read for emptiness and
/// ageing only: the hashes are dropped as each line is parsed, never kept, copied or printed.
public enum AuthProbe {
    /// Reads what the `auth.*` rules judge from `root`. A read that failed for another reason than
    /// absence is an `error` source.
    public static func observe(root: HostRoot, logger: Logger) -> AuthFacts {
        var (facts, failures) = root.collectingFailures { root in
            var reader = AuthReader(root: root)
            reader.read()
            return reader.facts
        }
        facts.sources.addUnclaimed(failures)
        return facts
    }

    /// PAM services read besides the login services: the password-change service and Debian's common files.
    static let otherServices = ["passwd", "common-auth", "common-password", "common-account"]
}

/// The work of one observation.
struct AuthReader {
    let root: HostRoot
    var facts = AuthFacts()

    init(root: HostRoot) { self.root = root }

    mutating func read() {
        // The directory is listed once: services that are not there are not looked for one by one.
        let present = listings.absent("/etc/pam.d", root, &facts.sources) ? [] : Set(root.list("/etc/pam.d", recordingInto: &facts.sources) ?? [])
        for name in AuthFacts.loginServices + AuthProbe.otherServices where present.contains(name) {
            var stack: [String] = []
            guard let lines = pamFile(name, only: nil, chain: &stack) else { continue }
            facts.pam.append(PAMService(name: name, lines: lines))
        }
        var pwquality: [AuthSetting] = []
        if !listings.absent("/etc/security/pwquality.conf.d", root, &facts.sources), let names = root.list("/etc/security/pwquality.conf.d", recordingInto: &facts.sources) {
            for name in names where name.hasSuffix(".conf") {
                pwquality += keyValueFile("/etc/security/pwquality.conf.d/" + name, separator: "=")
            }
        }
        facts.pwquality = pwquality + keyValueFile("/etc/security/pwquality.conf", separator: "=")
        facts.faillock = keyValueFile("/etc/security/faillock.conf", separator: "=")
        facts.loginDefs = keyValueFile("/etc/login.defs", separator: nil)
        readAccounts()
        readSSHD()
        var screen = ScreenLockReader(root: root, listings: listings)
        screen.read()
        facts.screen = screen.facts
        facts.sources += screen.sources
    }

    // MARK: files

    /// Listings of the directories above the files read.
    let listings = DirectoryListings()

    /// The file's text, recording what came of the read; nil when missing or unreadable.
    mutating func text(_ path: String) -> String? { root.configText(path, recordingInto: &facts.sources, listings: listings) }

    /// `key = value` (separator `=`) or `KEY value` (whitespace) lines, comments (`#`) and blanks skipped;
    /// a line without a separator is a bare flag with an empty value.
    mutating func keyValueFile(_ path: String, separator: Character?) -> [AuthSetting] {
        guard let text = text(path) else { return [] }
        return AuthReader.keyValues(text, file: path, separator: separator)
    }

    static func keyValues(_ text: String, file: String, separator: Character?) -> [AuthSetting] {
        var out: [AuthSetting] = []
        for (index, raw) in ConfigText.lines(text).enumerated() {
            let line = ConfigText.trimmed(raw)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let key: Substring
            let value: Substring
            if let separator, let at = line.firstIndex(of: separator) {
                key = line[..<at]
                value = line[line.index(after: at)...]
            } else if separator == nil, let at = line.firstIndex(where: { $0 == " " || $0 == "\t" }) {
                key = line[..<at]
                value = line[at...]
            } else {
                key = line[...]
                value = ""
            }
            out.append(AuthSetting(
                key: ConfigText.trimmed(key), value: ConfigText.trimmed(value), file: file, line: index + 1))
        }
        return out
    }

    // MARK: PAM

    /// The module lines of `/etc/pam.d/<name>` (of type `only`, or all), includes followed as PAM
    /// follows them: `@include` takes every line, `include` and `substack` the lines of their type.
    /// nil when the file is missing (PAM then uses `other`) or unreadable (recorded).
    mutating func pamFile(_ name: String, only: String?, chain: inout [String]) -> [PAMLine]? {
        guard !name.contains("/"), !chain.contains(name), chain.count < 16 else { return [] }
        let path = "/etc/pam.d/" + name
        let already = facts.source(path) != nil
        let content: String?
        if already {
            content = try? root.readTextIfPresent(path, limit: 1 << 20)
        } else {
            content = text(path)
        }
        guard let content else { return nil }
        chain.append(name)
        defer { chain.removeLast() }
        var out: [PAMLine] = []
        var pending = ""
        for (index, raw) in ConfigText.lines(content).enumerated() {
            var line = Substring(raw)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
                continue
            }
            let full = pending + line
            pending = ""
            let words = AuthReader.pamWords(full)
            guard let first = words.first else { continue }
            let location = "\(path):\(index + 1)"
            if first == "@include" {
                guard words.count >= 2 else { continue }
                out += pamFile(words[1], only: only, chain: &chain) ?? []
                continue
            }
            let type = first.hasPrefix("-") ? String(first.dropFirst()) : first
            guard ["auth", "account", "password", "session"].contains(type), words.count >= 3 else { continue }
            if let only, type != only { continue }
            let control = words[1]
            if control == "include" || control == "substack" {
                out += pamFile(words[2], only: type, chain: &chain) ?? []
                continue
            }
            var module = String(words[2].split(separator: "/").last ?? "")
            if module.hasSuffix(".so") { module.removeLast(3) }
            out.append(PAMLine(type: type, control: control, module: module, options: Array(words.dropFirst(3)), location: location))
        }
        return out
    }

    /// A PAM line's words; a `[…]` control (which may hold spaces) is one word.
    static func pamWords(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var bracket = false
        for character in line {
            if character == "[" && current.isEmpty { bracket = true }
            if (character == " " || character == "\t") && !bracket {
                if !current.isEmpty { words.append(current) }
                current = ""
                continue
            }
            if character == "]" { bracket = false }
            current.append(character)
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    // MARK: accounts

    /// `/etc/passwd` with shadow's field 2 reduced to empty/locked/usable and field 5 kept.
    mutating func readAccounts() {
        guard let passwd = text("/etc/passwd") else { return }
        // Shadow: only the state of each password and its maximum age leave this function.
        var shadow: [String: (LocalAccount.PasswordState, Int?)] = [:]
        var shadowRead = false
        do {
            if !listings.absent("/etc/shadow", root, &facts.sources), let bytes = try root.readTextIfPresent("/etc/shadow", limit: 4 << 20) {
                shadowRead = true
                var count = 0
                for line in ConfigText.lines(bytes) where !line.isEmpty && !line.hasPrefix("#") {
                    let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                    guard fields.count >= 2 else { continue }
                    count += 1
                    let field = fields[1]
                    let state: LocalAccount.PasswordState = field.isEmpty ? .empty : (field.hasPrefix("!") || field.hasPrefix("*")) ? .locked : .usable
                    let maxDays = fields.count > 4 ? Int(fields[4]) : nil
                    shadow[String(fields[0])] = (state, maxDays)
                }
                facts.sources.append(FactSource(path: "/etc/shadow", state: .ok, count: count))
            } else if facts.source("/etc/shadow") == nil {
                facts.sources.append(FactSource(path: "/etc/shadow", state: .missing))
            }
        } catch {
            facts.sources.append(FactSource(path: "/etc/shadow", state: .error(error.description)))
        }
        for (index, line) in ConfigText.lines(passwd).enumerated() where !line.isEmpty && !line.hasPrefix("#") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 7, let uid = Int(fields[2]) else { continue }
            let name = String(fields[0])
            let field = fields[1]
            let passwdField: LocalAccount.PasswordState = field == "x" ? .unknown : field.isEmpty ? .empty : (field.hasPrefix("!") || field.hasPrefix("*")) ? .locked : .usable
            let entry = shadowRead ? shadow[name] : nil
            facts.accounts.append(LocalAccount(
                name: name, uid: uid, shell: String(fields[6]), passwdField: passwdField, password: entry?.0 ?? .unknown,
                maxDays: entry?.1, location: "/etc/passwd:\(index + 1)"))
        }
    }

    // MARK: sshd

    mutating func readSSHD() {
        var sshd = SSHDFacts()
        // Debian's /sbin is a link to /usr/sbin (merged /usr): one place to look.
        if root.exists("/usr/sbin/sshd") { sshd.binary = "/usr/sbin/sshd" }
        for (directory, units) in [("/etc/systemd/system/multi-user.target.wants", ["ssh.service", "sshd.service"]), ("/etc/systemd/system/sockets.target.wants", ["ssh.socket"])] {
            let names = listings.absent(directory, root, &facts.sources) ? [] : root.list(directory, recordingInto: &facts.sources) ?? []
            sshd.enabledUnits += units.filter(names.contains).map { directory + "/" + $0 }
        }
        if sshd.present {
            var depth = 0
            sshdConfig("/etc/ssh/sshd_config", into: &sshd, depth: &depth)
        }
        facts.sshd = sshd
    }

    /// sshd's configuration: for each keyword the first value wins, `Include` is read where it
    /// stands (globs over one directory, in sorted order), and a `Match` block's settings are not
    /// global (they run to the next `Match` or the end of the file).
    mutating func sshdConfig(_ path: String, into sshd: inout SSHDFacts, depth: inout Int) {
        guard depth < 16, let content = text(path) else { return }
        depth += 1
        var inMatch = false
        for (index, raw) in ConfigText.lines(content).enumerated() {
            let line = ConfigText.trimmed(raw)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let parts = line.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" || $0 == "=" })
            let keyword = parts[0].lowercased()
            let value = parts.count > 1 ? parts[1].trimmingCharacters(in: CharacterSet(charactersIn: " \t=")) : ""
            if keyword == "match" {
                inMatch = value.lowercased() != "all"
                if inMatch { sshd.matchBlocks.append("\(path):\(index + 1): \(line)") }
                continue
            }
            guard !inMatch else { continue }
            if keyword == "include" {
                for pattern in value.split(separator: " ") {
                    let full = pattern.hasPrefix("/") ? String(pattern) : "/etc/ssh/" + pattern
                    for file in expand(full) { sshdConfig(file, into: &sshd, depth: &depth) }
                }
                continue
            }
            if sshd.settings[keyword] == nil {
                sshd.settings[keyword] = AuthSetting(key: String(parts[0]), value: value, file: path, line: index + 1)
            }
        }
    }

    /// A path whose last component may be a glob (`*.conf`): the matching names of its directory, sorted.
    mutating func expand(_ pattern: String) -> [String] {
        guard let slash = pattern.lastIndex(of: "/") else { return [] }
        let directory = String(pattern[..<slash])
        let name = String(pattern[pattern.index(after: slash)...])
        guard name.contains(where: { "*?[".contains($0) }) else { return [pattern] }
        guard let names = root.list(directory, recordingInto: &facts.sources) else { return [] }
        return names.filter { Glob.matches(pattern: name, text: $0) }.map { directory + "/" + $0 }
    }
}

extension HostRoot {
    /// A configuration file's text (at most 4 MiB), appending what came of the read (ok with its
    /// line count, missing, or the error) to `sources`; nil when missing or unreadable.
    func configText(_ path: String, recordingInto sources: inout [FactSource], listings: DirectoryListings) -> String? {
        if listings.absent(path, self, &sources) { return nil }
        do {
            guard let text = try readTextIfPresent(path, limit: 4 << 20) else {
                sources.append(FactSource(path: path, state: .missing))
                return nil
            }
            sources.append(FactSource(path: path, state: .ok, count: ConfigText.lines(text).count))
            return text
        } catch {
            sources.append(FactSource(path: path, state: .error(error.description)))
            return nil
        }
    }
}

/// The directories above the files one observation reads, each listed once: a file whose
/// directory does not list it is missing without a lookup of its own, so a root without
/// `/etc/security` costs one look, not one per file.
final class DirectoryListings {
    private var names: [String: Set<String>?] = [:]

    /// Whether `path` is known absent: its directory is missing, or lists no such name (recorded
    /// as a missing source). An unreadable directory answers false, so the read itself fails and says why.
    func absent(_ path: String, _ root: HostRoot, _ sources: inout [FactSource]) -> Bool {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return false }
        let directory = String(path[..<slash])
        if names[directory] == nil {
            if absent(directory, root, &sources) {
                names[directory] = .some(nil)
            } else {
                do {
                    names[directory] = .some(Set(try root.list(directory)))
                } catch where error.code == .notFound {
                    names[directory] = .some(nil)
                } catch {
                    // A directory that cannot be listed is an error of its own, never a quiet
                    // "go and read the file": what it holds is unknown.
                    if !sources.contains(where: { $0.path == directory }) {
                        sources.append(FactSource(path: directory, state: .error(error.description)))
                    }
                    return false
                }
            }
        }
        guard let listed = names[directory] ?? nil, listed.contains(String(path[path.index(after: slash)...])) else {
            sources.append(FactSource(path: path, state: .missing))
            return true
        }
        return false
    }
}

extension ConfigText {
    /// The text without leading and trailing spaces and tabs: Foundation's trimming walks a
    /// CharacterSet per character, which costs more than whole configuration files are worth here.
    static func trimmed<S: StringProtocol>(_ text: S) -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !blank($0) }), let last = text.lastIndex(where: { !blank($0) }) else { return "" }
        return String(text[first...last])
    }
}
