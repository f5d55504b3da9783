import Yams

/// Walks a YAML document with errors that name the file, the line and the key, and refuses
/// keys it was not told about.
public struct YAMLReader {
    /// The file name used in messages.
    public let file: String

    /// Makes a reader for messages about `file`.
    public init(file: String) { self.file = file }

    /// Parses text into its root node; an empty document is an error.
    public func root(_ text: String) throws(MijianError) -> Node {
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
