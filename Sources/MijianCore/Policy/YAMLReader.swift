// libyaml as Yams builds it: its event parser lets a document be screened before Yams composes it.
internal import CYaml
import Yams

/// Walks a YAML document with errors that name the file, the line and the key, and refuses
/// keys it was not told about.
///
/// Every YAML file Mijian reads (policies, the host file, the agent's configuration, the collector's
/// table and answers) comes in through `root(_:)`, which refuses what none of them needs and an attacker
/// could use: anchors and aliases (twelve lines of them used as a mapping key make the composer hash about
/// 10^11 nodes), more than `maxBytes`, and nesting deeper than `maxDepth`.
public struct YAMLReader {
    /// The most bytes a YAML document may have (the largest shipped file, the self-assessment table, is
    /// about 20 KiB).
    public static let maxBytes = 4 << 20
    /// The deepest nesting of sequences and mappings a document may have (the shipped files reach 6).
    public static let maxDepth = 32

    /// The file name used in messages.
    public let file: String

    /// Makes a reader for messages about `file`.
    public init(file: String) { self.file = file }

    /// Parses text into its root node; an empty document is an error, and so are anchors, aliases,
    /// a document larger than `maxBytes` and nesting deeper than `maxDepth`.
    public func root(_ text: String) throws(MijianError) -> Node {
        let size = text.utf8.count
        guard size <= Self.maxBytes else {
            throw MijianError(
                .tooLarge, "\(file): \(size) bytes, more than the \(Self.maxBytes >> 20) MiB a YAML file read here may have", path: file)
        }
        // Screened before composing: Yams would expand aliases and hash nested keys before any check of ours ran.
        if let refusal = screen(text) { throw refusal }
        let node: Node?
        do {
            // The basic resolver: values are read as text and typed here, so Yams's implicit-tag
            // regular expressions (compiled on first use of its default resolver, a few ms) are never
            // needed, nor its constructor's tables (built on first use). UTF-8 always: Yams would
            // otherwise take the encoding from the environment (YAMS_DEFAULT_ENCODING).
            node = try Yams.compose(yaml: text, .basic, Constructor([:], [:], [:]), .utf8)
        } catch let error as YamlError {
            throw MijianError(.policyInvalid, "\(file): not valid YAML: \(Self.describe(error))", path: file)
        } catch {
            throw MijianError(.policyInvalid, "\(file): not valid YAML: \(error)", path: file)
        }
        guard let node else { throw MijianError(.policyInvalid, "\(file): the document is empty", path: file) }
        return node
    }

    /// Walks the document's parse events and returns the first anchor, alias or nesting beyond
    /// `maxDepth` as an error naming its line and column; nil when there is none. A syntax error ends
    /// the walk without a refusal: the composer reports it at the same place, in its own words.
    private func screen(_ text: String) -> MijianError? {
        if let refusal = text.utf8.withContiguousStorageIfAvailable({ screen($0) }) { return refusal }
        return Array(text.utf8).withUnsafeBufferPointer { screen($0) }
    }

    private func screen(_ bytes: UnsafeBufferPointer<UInt8>) -> MijianError? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            return MijianError(.policyInvalid, "\(file): the YAML parser could not start (out of memory)", path: file)
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)
        var depth = 0
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                // libyaml's own bound (1,000 levels, met while it looks ahead along one line of brackets)
                // is the same refusal as ours, said the same way.
                if let problem = parser.problem, String(cString: problem).hasPrefix("Maximum nesting level") {
                    return tooDeep(parser.problem_mark)
                }
                return nil
            }
            defer { yaml_event_delete(&event) }
            let anchor: UnsafeMutablePointer<yaml_char_t>?
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return nil
            case YAML_ALIAS_EVENT:
                return refusal(event.start_mark, "alias *\(Self.name(event.data.alias.anchor))")
            case YAML_SCALAR_EVENT:
                anchor = event.data.scalar.anchor
            case YAML_SEQUENCE_START_EVENT:
                anchor = event.data.sequence_start.anchor
                depth += 1
            case YAML_MAPPING_START_EVENT:
                anchor = event.data.mapping_start.anchor
                depth += 1
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                anchor = nil
                depth -= 1
            default:
                anchor = nil
            }
            if let anchor { return refusal(event.start_mark, "anchor &\(Self.name(anchor))") }
            if depth > Self.maxDepth { return tooDeep(event.start_mark) }
        }
    }

    private func tooDeep(_ mark: yaml_mark_t) -> MijianError {
        MijianError(
            .policyInvalid,
            "\(file):\(mark.line + 1):\(mark.column + 1): lists and mappings nested deeper than \(Self.maxDepth) levels; none of Mijian's files needs more than a few",
            path: file)
    }

    private func refusal(_ mark: yaml_mark_t, _ what: String) -> MijianError {
        MijianError(
            .policyInvalid,
            "\(file):\(mark.line + 1):\(mark.column + 1): \(what): anchors (&name) and aliases (*name) are not accepted; write the value out in full",
            path: file)
    }

    /// An anchor's name for a message: at most 64 bytes of it, with anything but printable ASCII escaped,
    /// since the name is the file's text.
    private static func name(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String {
        guard let pointer else { return "" }
        var out = ""
        var index = 0
        while pointer[index] != 0 {
            guard index < 64 else { return out + "…" }
            let byte = pointer[index]
            out += (0x21...0x7e).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
            index += 1
        }
        return out
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)\(context.map { " \($0.text)" } ?? "")"
        default:
            return "\(error)"
        }
    }

    /// `file:line: key: message` as a policy error.
    public func error(_ node: Node?, _ key: String, _ message: String, code: MijianError.Code = .policyInvalid) -> MijianError {
        let line = node?.mark.map { ":\($0.line)" } ?? ""
        return MijianError(code, "\(file)\(line): \(key): \(message)", path: file)
    }

    /// The members of a mapping, checked against the allowed keys; `path` names the mapping in messages.
    public func mapping(_ node: Node, _ path: String, allowed: Set<String>) throws(MijianError) -> [(key: String, keyNode: Node, value: Node)] {
        guard case .mapping(let mapping) = node else {
            throw error(node, path.isEmpty ? "(document)" : path, "expected a mapping of keys to values")
        }
        var out: [(key: String, keyNode: Node, value: Node)] = []
        var seen = Set<String>()
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else { throw error(keyNode, path, "keys must be plain text") }
            let key = scalar.string
            let full = path.isEmpty ? key : "\(path).\(key)"
            guard allowed.contains(key) else {
                let known = allowed.sorted().joined(separator: ", ")
                throw error(keyNode, full, "unknown key (known keys here: \(known))", code: .policyUnknownKey)
            }
            guard seen.insert(key).inserted else { throw error(keyNode, full, "key appears twice") }
            out.append((key, keyNode, value))
        }
        return out
    }

    /// A scalar as text (numbers and booleans are taken as written).
    public func string(_ node: Node, _ key: String) throws(MijianError) -> String {
        guard case .scalar(let scalar) = node else { throw error(node, key, "expected a single value") }
        if scalar.style == .plain, scalar.string == "~" || scalar.string == "null" || scalar.string.isEmpty {
            throw error(node, key, "a value is required")
        }
        return scalar.string
    }

    /// A boolean (`true`/`false`, `yes`/`no`).
    public func bool(_ node: Node, _ key: String) throws(MijianError) -> Bool {
        let text = try string(node, key).lowercased()
        switch text {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(node, key, "expected true or false, got \"\(text)\"")
        }
    }

    /// A whole number within `range`.
    public func int(_ node: Node, _ key: String, range: ClosedRange<Int>) throws(MijianError) -> Int {
        let text = try string(node, key)
        guard let value = Int(text), range.contains(value) else {
            throw error(node, key, "expected a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
        }
        return value
    }

    /// A sequence's elements (an empty sequence is fine).
    public func sequence(_ node: Node, _ key: String) throws(MijianError) -> [Node] {
        if case .scalar(let scalar) = node, scalar.style == .plain, scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null" {
            return []
        }
        guard case .sequence(let sequence) = node else { throw error(node, key, "expected a list") }
        return Array(sequence)
    }

    /// A list of strings.
    public func strings(_ node: Node, _ key: String) throws(MijianError) -> [String] {
        var out: [String] = []
        for (index, element) in try sequence(node, key).enumerated() {
            out.append(try string(element, "\(key)[\(index)]"))
        }
        return out
    }

    /// A list of CIDR prefixes.
    public func networks(_ node: Node, _ key: String) throws(MijianError) -> [IPNetwork] {
        var out: [IPNetwork] = []
        for (index, element) in try sequence(node, key).enumerated() {
            let text = try string(element, "\(key)[\(index)]")
            guard let network = IPNetwork(text) else {
                throw error(element, "\(key)[\(index)]", "\"\(text)\" is not an IPv4 or IPv6 prefix such as 10.0.0.0/8")
            }
            out.append(network)
        }
        return out
    }

    /// One value of an enumeration.
    public func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ key: String, as type: T.Type) throws(MijianError) -> T where T.RawValue == String {
        let text = try string(node, key)
        guard let value = T(rawValue: text) else {
            let options = T.allCases.map(\.rawValue).joined(separator: " | ")
            throw error(node, key, "expected one of \(options), got \"\(text)\"")
        }
        return value
    }
}
