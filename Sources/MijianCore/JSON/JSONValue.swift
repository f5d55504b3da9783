/// A JSON value whose objects keep their key order, and whose integers stay integers.
///
/// Reports are written through this type so the bytes are the same every time for the same
/// content: keys in the order the schema gives, no floating-point surprises, no escaped slashes.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// Compares objects by members in order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The member named `key` of an object, or nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first(where: { $0.0 == key })?.1
    }

    /// The string, when this is one.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer, when this is one.
    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }

    /// The boolean, when this is one.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The members, when this is an object.
    public var objectValue: [(String, JSONValue)]? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// Compact UTF-8 bytes.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out, indent: nil, level: 0)
        return out
    }

    /// Indented UTF-8 bytes (two spaces), ending with a newline.
    public func prettySerialized() -> [UInt8] {
        var out: [UInt8] = []
        write(into: &out, indent: 2, level: 0)
        out.append(0x0A)
        return out
    }

    /// Compact JSON text.
    public var compactString: String { String(decoding: serialized(), as: UTF8.self) }

    private func newline(_ out: inout [UInt8], _ indent: Int?, _ level: Int) {
        guard let indent else { return }
        out.append(0x0A)
        out.append(contentsOf: repeatElement(0x20, count: indent * level))
    }

    private func write(into out: inout [UInt8], indent: Int?, level: Int) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): JSONValue.writeInteger(value, into: &out)
        case .double(let value):
            if value.isFinite {
                if value == value.rounded(), abs(value) < 1e15 {
                    JSONValue.writeInteger(Int64(value), into: &out)
                } else {
                    out.append(contentsOf: "\(value)".utf8)
                }
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case .string(let value): JSONValue.writeString(value, into: &out)
        case .array(let elements):
            out.append(0x5B)
            if elements.isEmpty { out.append(0x5D); return }
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(0x2C) }
                newline(&out, indent, level + 1)
                element.write(into: &out, indent: indent, level: level + 1)
            }
            newline(&out, indent, level)
            out.append(0x5D)
        case .object(let members):
            out.append(0x7B)
            if members.isEmpty { out.append(0x7D); return }
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(0x2C) }
                newline(&out, indent, level + 1)
                JSONValue.writeString(member.0, into: &out)
                out.append(0x3A)
                if indent != nil { out.append(0x20) }
                member.1.write(into: &out, indent: indent, level: level + 1)
            }
            newline(&out, indent, level)
            out.append(0x7D)
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeInteger(_ value: Int64, into out: inout [UInt8]) {
        if value >= 0, value < 10 {
            out.append(0x30 + UInt8(value))
            return
        }
        if value < 0 { out.append(0x2D) }
        // Digits written in place, least significant last: no temporary array.
        var magnitude = value.magnitude
        var width = 1
        var probe = magnitude
        while probe >= 10 {
            probe /= 10
            width += 1
        }
        let start = out.count
        out.append(contentsOf: repeatElement(0x30, count: width))
        var position = start + width - 1
        while magnitude > 0 {
            out[position] = 0x30 + UInt8(magnitude % 10)
            magnitude /= 10
            position -= 1
        }
    }

    static func writeString(_ value: String, into out: inout [UInt8]) {
        if let written = value.utf8.withContiguousStorageIfAvailable({ bytes in writeString(utf8: bytes, into: &out) }) {
            return written
        }
        writeString(utf8: Array(value.utf8), into: &out)
    }

    static func writeString(utf8 array: [UInt8], into out: inout [UInt8]) {
        array.withUnsafeBufferPointer { writeString(utf8: $0, into: &out) }
    }

    static func writeString(utf8 bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        out.append(0x22)
        // Most strings need no escaping: copy them whole.
        if !bytes.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F }) {
            out.append(contentsOf: bytes)
            out.append(0x22)
            return
        }
        for byte in bytes {
            switch byte {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(0x6E)
            case 0x0D: out.append(0x5C); out.append(0x72)
            case 0x09: out.append(0x5C); out.append(0x74)
            case 0x00..<0x20, 0x7F:
                out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(0x22)
    }
}

/// A type that writes itself as a `JSONValue` with a fixed key order.
public protocol JSONRepresentable {
    /// This value as JSON.
    var json: JSONValue { get }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(elements) }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    /// A string, or null when absent.
    public static func optional(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
    /// An integer from any integer type.
    public static func integer<T: BinaryInteger>(_ value: T) -> JSONValue { .int(Int64(value)) }
    /// An array of strings.
    public static func strings(_ values: [String]) -> JSONValue { .array(values.map { .string($0) }) }
}
