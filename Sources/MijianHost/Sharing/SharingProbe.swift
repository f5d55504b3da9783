import Foundation
import Logging
import MijianCore

/// Observes what the machine shares and where it prints: Samba (every section of `smb.conf`,
/// its includes, usershares), NFS exports, CUPS queues and listeners, avahi publishing, the
/// page log.
public enum SharingProbe {
    /// Samba's configuration.
    public static let smbConf = "/etc/samba/smb.conf"
    /// Where `net usershare` keeps shares unless `usershare path` says otherwise.
    public static let usershareDirectory = "/var/lib/samba/usershares"
    /// CUPS's queues and server configuration, and its page log.
    public static let printersConf = "/etc/cups/printers.conf"
    public static let cupsdConf = "/etc/cups/cupsd.conf"
    public static let pageLog = "/var/log/cups/page_log"
    /// Most includes followed from smb.conf.
    static let maxIncludes = 32

    /// Reads what `sharing` judges from `root` (`shares`: Samba, NFS, cupsd, avahi) and what
    /// `print.devices` judges (`printers`: the queues and the page log).
    public static func observe(root: HostRoot, live: Bool, logger: Logger, shares: Bool = true, printers: Bool = true) -> SharingFacts {
        var (facts, failures) = root.collectingFailures { root in
            var reads = RecordedReads(root: root)
            var facts = SharingFacts()
            if shares {
                for server in SharingServer.allCases where root.exists(server.daemon) { facts.installedServers.insert(server) }
                readSamba(&reads, &facts)
                readExports(&reads, &facts)
                readCUPSServer(&reads, &facts)
                readAvahi(&reads, &facts)
            }
            if printers { readPrinters(&reads, &facts) }
            facts.sources = reads.sources
            return facts
        }
        facts.sources.addUnclaimed(failures)
        logger.debug("sharing probe", metadata: ["mijian.shares": "\(facts.sambaShares.count)", "mijian.exports": "\(facts.exports.count)"])
        return facts
    }

    /// Lines with `\` continuations joined, numbered by their first line.
    static func logicalLines(_ text: String) -> [(number: Int, text: String)] {
        var out: [(number: Int, text: String)] = []
        var pending: String?
        var start = 0
        for (index, raw) in ConfigText.lines(text).enumerated() {
            let line = String(raw)
            if pending == nil { start = index + 1 }
            let joined = (pending ?? "") + line
            if joined.hasSuffix("\\") {
                pending = String(joined.dropLast()) + " "
                continue
            }
            pending = nil
            out.append((start, joined))
        }
        if let pending { out.append((start, pending)) }
        return out
    }

    // MARK: Samba

    /// A parameter name as Samba compares it: case and spaces do not matter; synonyms folded.
    static func sambaKey(_ raw: String) -> String {
        let key = raw.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        switch key {
        case "browsable": return "browseable"
        case "public", "guestok": return "guest ok"
        default: return key
        }
    }

    static func readSamba(_ reads: inout RecordedReads, _ facts: inout SharingFacts) {
        var sections: [(name: String, parameters: [String: String], location: String)] = []
        var current = -1
        var read: Set<String> = []
        // Samba reads an include where it stands, as if its text were there.
        func parse(_ file: String) {
            guard read.insert(file).inserted, read.count <= maxIncludes, let text = reads.text(file, limit: 4 << 20) else { return }
            for (number, line) in logicalLines(text) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
                if trimmed.hasPrefix("["), let close = trimmed.firstIndex(of: "]") {
                    let name = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close]).trimmingCharacters(in: .whitespaces)
                    if let existing = sections.firstIndex(where: { $0.name.lowercased() == name.lowercased() }) {
                        current = existing
                    } else {
                        sections.append((name, [:], "\(file):\(number)"))
                        current = sections.count - 1
                    }
                    continue
                }
                guard let equals = trimmed.firstIndex(of: "=") else { continue }
                let key = sambaKey(String(trimmed[..<equals]))
                let value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                if key == "include" || key == "config file" {
                    if value.contains("%") {
                        facts.unresolvedIncludes.append("\(file):\(number): \(value)")
                    } else if value.hasPrefix("/") {
                        parse(value)
                    }
                    continue
                }
                if current < 0 {
                    sections.append(("global", [:], "\(file):\(number)"))
                    current = sections.count - 1
                }
                sections[current].parameters[key] = value
            }
        }
        parse(smbConf)
        facts.sambaGlobal = sections.first { $0.name.lowercased() == "global" }?.parameters ?? [:]
        facts.sambaShares = sections.filter { $0.name.lowercased() != "global" }.map { SambaShare(name: $0.name, parameters: $0.parameters, location: $0.location) }
        let directory = facts.sambaGlobal["usershare path"] ?? usershareDirectory
        guard let names = reads.list(directory) else { return }
        for name in names {
            let path = "\(directory)/\(name)"
            guard let text = reads.text(path, limit: 1 << 20) else { continue }
            var parameters: [String: String] = [:]
            for line in ConfigText.lines(text) {
                guard let equals = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
                let key = String(line[..<equals])
                let value = String(line[line.index(after: equals)...])
                switch key {
                case "path": parameters["path"] = value
                case "guest_ok": parameters["guest ok"] = value == "y" ? "yes" : "no"
                case "usershare_acl": parameters["usershare acl"] = value
                case "sharename": parameters["sharename"] = value
                default: break
                }
            }
            facts.sambaShares.append(SambaShare(name: parameters["sharename"] ?? name, parameters: parameters, location: path, isUsershare: true))
        }
    }

    // MARK: NFS

    static func readExports(_ reads: inout RecordedReads, _ facts: inout SharingFacts) {
        var files = ["/etc/exports"]
        if let names = reads.list("/etc/exports.d") { files += names.filter { $0.hasSuffix(".exports") }.map { "/etc/exports.d/\($0)" } }
        for file in files {
            guard let text = reads.text(file, limit: 4 << 20) else { continue }
            for (number, line) in logicalLines(text) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                var path: String
                var rest: Substring
                if trimmed.hasPrefix("\""), let close = trimmed.dropFirst().firstIndex(of: "\"") {
                    path = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
                    rest = trimmed[trimmed.index(after: close)...]
                } else {
                    let words = trimmed.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
                    path = String(words[0])
                    rest = words.count > 1 ? words[1] : ""
                }
                if path.isEmpty { path = "/" }
                let clients = rest.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                facts.exports.append(NFSExport(path: path, clients: clients.isEmpty ? ["*"] : clients, location: "\(file):\(number)"))
            }
        }
    }

    // MARK: CUPS

    static func readPrinters(_ reads: inout RecordedReads, _ facts: inout SharingFacts) {
        if let text = reads.text(printersConf, limit: 4 << 20) {
            var current: PrinterQueue?
            for (index, line) in ConfigText.lines(text).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("<Printer ") || trimmed.hasPrefix("<DefaultPrinter ") {
                    let name = trimmed.split(separator: " ", maxSplits: 1).last.map { String($0.dropLast()) } ?? ""
                    current = PrinterQueue(name: name, deviceURI: nil, shared: false, location: "\(printersConf):\(index + 1)")
                } else if trimmed == "</Printer>" || trimmed == "</DefaultPrinter>" {
                    if let current { facts.printers.append(current) }
                    current = nil
                } else if current != nil, let space = trimmed.firstIndex(of: " ") {
                    let key = trimmed[..<space]
                    let value = trimmed[trimmed.index(after: space)...].trimmingCharacters(in: .whitespaces)
                    if key == "DeviceURI" { current?.deviceURI = value }
                    if key == "Shared" { current?.shared = ["yes", "on", "true"].contains(value.lowercased()) }
                }
            }
        }
        if let text = reads.text(pageLog, limit: 64 << 20) {
            let lines = text.split(separator: "\n")
            facts.pageLogLines = lines.count
            // Only the record's time: the rest names the user and the document.
            facts.lastPageRecord = lines.last.flatMap { line in
                guard let open = line.firstIndex(of: "["), let close = line[open...].firstIndex(of: "]") else { return nil }
                return String(line[line.index(after: open)..<close])
            }
        }
    }

    static func readCUPSServer(_ reads: inout RecordedReads, _ facts: inout SharingFacts) {
        if let text = reads.text(cupsdConf, limit: 4 << 20) {
            var depth = 0
            for (index, line) in ConfigText.lines(text).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("</") { depth -= 1; continue }
                if trimmed.hasPrefix("<") { depth += 1; continue }
                guard depth == 0, !trimmed.hasPrefix("#") else { continue }
                let words = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                guard words.count >= 2 else { continue }
                let setting = ConfigSetting(key: words[0].lowercased(), value: words[1], location: "\(cupsdConf):\(index + 1)")
                if setting.key == "listen" || setting.key == "port" || setting.key == "sslport" || setting.key == "ssllisten" { facts.cupsListen.append(setting) }
                if setting.key == "browsing" { facts.cupsBrowsing = setting }
            }
        }
    }

    // MARK: avahi

    static func readAvahi(_ reads: inout RecordedReads, _ facts: inout SharingFacts) {
        if let names = reads.list("/etc/avahi/services") { facts.avahiServices = names.filter { $0.hasSuffix(".service") }.map { "/etc/avahi/services/\($0)" } }
        guard let text = reads.text("/etc/avahi/avahi-daemon.conf", limit: 1 << 20) else { return }
        var section = ""
        for (index, line) in ConfigText.lines(text).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("[") { section = trimmed.lowercased(); continue }
            guard section == "[publish]", !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { continue }
            let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            facts.avahiPublishing.append(ConfigSetting(key: key, value: value, location: "/etc/avahi/avahi-daemon.conf:\(index + 1)"))
        }
    }
}
