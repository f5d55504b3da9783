/// The rule for the text that names a machine, its agent and its policy (host id, host name, asset
/// id, responsible, unit, OS, kernel, boot id, agent name, version and key id, policy id, version and
/// digest). The collector stores these fields with the host and shows them in every listing and
/// assessment, and refuses a report or enrolment whose fields break the rule; the agent applies the
/// same rule before it signs, so that nothing it signs is refused for its identity.
public enum IdentityField {
    /// Most UTF-8 bytes of one identity field.
    public static let maxBytes = 256

    /// How a field breaks the rule.
    public enum Problem: Sendable, Equatable {
        /// Longer than `maxBytes` (its length in bytes).
        case tooLong(Int)
        /// Holds a C0 or C1 control character (tab and newline included).
        case control(Unicode.Scalar)
        /// Holds a bidirectional override or isolate, or a zero-width character: refused only in text
        /// an administrator types (`typed`), where it can make one name read as another.
        case invisible(Unicode.Scalar)

        /// One clause for a message: what is wrong with the field.
        public var detail: String {
            switch self {
            case .tooLong(let bytes): return "is \(bytes) bytes; an identity field holds at most \(IdentityField.maxBytes)"
            case .control(let scalar): return "holds the control character \(IdentityField.name(scalar)); an identity field holds none"
            case .invisible(let scalar):
                return "holds the invisible or direction-changing character \(IdentityField.name(scalar)); a name typed for this machine holds none"
            }
        }
    }

    /// The first way `value` breaks the rule, or nil. Length and control characters are what the
    /// collector refuses; `typed` adds the invisible characters, refused only where an administrator
    /// wrote the text (host.yaml), since the collector accepts them from what a machine reports.
    public static func problem(_ value: String, typed: Bool = false) -> Problem? {
        let bytes = value.utf8.count
        if bytes > maxBytes { return .tooLong(bytes) }
        if let scalar = value.unicodeScalars.first(where: isControl) { return .control(scalar) }
        if typed, let scalar = value.unicodeScalars.first(where: isInvisible) { return .invisible(scalar) }
        return nil
    }

    /// C0 and C1 controls and DEL.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), the marks
    /// U+200E and U+200F, and zero-width characters (U+200B–U+200D, U+2060, U+FEFF).
    public static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x200B...0x200F, 0x202A...0x202E, 0x2060, 0x2066...0x2069, 0xFEFF: return true
        default: return false
        }
    }

    /// A value read from the machine (host name, OS, kernel release, boot id), made to keep the
    /// rule: control characters written as `\u{XX}` and the text cut at a character boundary to
    /// `maxBytes`, ending in `…`. What the machine said is kept readable, the audit still runs, and the
    /// collector accepts what was signed.
    public static func reportable(_ value: String) -> String {
        if problem(value) == nil { return value }
        var out = ""
        for scalar in value.unicodeScalars {
            let piece = isControl(scalar) ? "\\u{\(String(scalar.value, radix: 16, uppercase: true))}" : String(scalar)
            // 3 bytes kept for the ellipsis.
            if out.utf8.count + piece.utf8.count > maxBytes - 3 {
                out += "…"
                return out
            }
            out += piece
        }
        return out
    }

    /// `U+0009` for a scalar.
    static func name(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
