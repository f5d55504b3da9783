import MijianCore

/// Reads modprobe configuration the way kmod does: `*.conf` files of every configuration
/// directory, a file name in an earlier directory hiding the same name in later ones, all files
/// then read in name order.
enum ModprobeConfig {
    /// Directories in kmod's precedence order.
    static let directories = ["/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"]

    /// Every directive, in the order modprobe applies them; each directory read is recorded in `sources`.
    static func read(root: HostRoot, sources: inout [FactSource]) -> [ModprobeDirective] {
        var chosen: [String: String] = [:]
        for directory in directories {
            let names: [String]
            do {
                names = try root.list(directory)
                sources.append(FactSource(path: directory, state: .ok, count: names.count))
            } catch where error.code == .notFound {
                sources.append(FactSource(path: directory, state: .missing))
                continue
            } catch {
                sources.append(FactSource(path: directory, state: .error(error.description)))
                continue
            }
            for name in names where name.hasSuffix(".conf") && chosen[name] == nil {
                chosen[name] = "\(directory)/\(name)"
            }
        }
        var directives: [ModprobeDirective] = []
        for name in chosen.keys.sorted() {
            guard let path = chosen[name] else { continue }
            do {
                let read = try root.readResolved(path, limit: 1 << 20)
                let parsed = parse(String(decoding: read.bytes, as: UTF8.self), file: path)
                directives += parsed
                sources.append(FactSource(path: path, state: .ok, count: parsed.count, resolvedPath: read.resolvedPath))
            } catch {
                sources.append(FactSource(path: path, state: .error(error.description)))
            }
        }
        return directives
    }

    /// Parses one file: `#` comments, `\` line continuation, the directives modprobe.d(5) lists.
    static func parse(_ text: String, file: String) -> [ModprobeDirective] {
        var directives: [ModprobeDirective] = []
        var pending = ""
        var pendingLine = 0
        var number = 0
        for line in ConfigText.lines(text, carriageReturn: .kept) {
            number += 1
            if pending.isEmpty { pendingLine = number }
            // Concrete `String.append(contentsOf: Substring)` throughout: the generic `+` and
            // `joined` look up conformances at run time on first use, a scan of every record.
            if line.hasSuffix("\\") {
                pending.append(contentsOf: line.dropLast())
                pending.append(" ")
                continue
            }
            let full: Substring
            if pending.isEmpty {
                full = line
            } else {
                pending.append(contentsOf: line)
                full = Substring(pending)
            }
            pending = ""
            let content = full.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, let kind = ModprobeDirective.Kind(rawValue: String(words[0])) else { continue }
            let subject = String(words[1])
            var rest = ""
            for word in words.dropFirst(2) {
                if !rest.isEmpty { rest.append(" ") }
                rest.append(contentsOf: word)
            }
            let module = kind == .alias ? subject : DriverFamily.normalise(subject)
            directives.append(ModprobeDirective(kind: kind, module: module, argument: rest, file: file, line: pendingLine))
        }
        return directives
    }
}
