/// Base64 and hex as the envelope needs them.
///
/// Decoding is strict on purpose: the two alphabets of RFC 4648 (standard and URL-safe) with or
/// without padding are accepted, because DSSE producers differ; anything else (white space,
/// mixed alphabets, wrong padding, non-zero spare bits) is refused so one byte string has one
/// textual form per alphabet.
public enum Base64 {
    private static let standardAlphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlSafeAlphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Standard-alphabet, padded base64 of `bytes`.
    public static func encode(_ bytes: [UInt8], urlSafe: Bool = false, padded: Bool = true) -> String {
        let alphabet = urlSafe ? urlSafeAlphabet : standardAlphabet
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out.append(alphabet[Int(value >> 18 & 63)])
            out.append(alphabet[Int(value >> 12 & 63)])
            out.append(alphabet[Int(value >> 6 & 63)])
            out.append(alphabet[Int(value & 63)])
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let value = UInt32(bytes[index]) << 16
            out.append(alphabet[Int(value >> 18 & 63)])
            out.append(alphabet[Int(value >> 12 & 63)])
            if padded { out.append(contentsOf: [0x3D, 0x3D]) }
        } else if rest == 2 {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            out.append(alphabet[Int(value >> 18 & 63)])
            out.append(alphabet[Int(value >> 12 & 63)])
            out.append(alphabet[Int(value >> 6 & 63)])
            if padded { out.append(0x3D) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Why a base64 text was refused.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// What was wrong, for people.
        public let detail: String
        /// The detail.
        public var description: String { detail }
    }

    /// 0–63 for a character of either alphabet; 64 marks `+ /`, 65 marks `- _` (so mixing is seen); 255 invalid.
    private static let table: [UInt8] = {
        var table = [UInt8](repeating: 255, count: 256)
        for (index, byte) in standardAlphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        for (index, byte) in urlSafeAlphabet.enumerated() where index >= 62 { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// Decodes standard or URL-safe base64, padded or not.
    public static func decode(_ text: String) throws(Failure) -> [UInt8] {
        var input = Array(text.utf8)
        var padding = 0
        while let last = input.last, last == 0x3D {
            input.removeLast()
            padding += 1
        }
        if padding > 0 {
            guard padding <= 2, (input.count + padding) % 4 == 0 else { throw Failure(detail: "wrong base64 padding") }
        }
        guard input.count % 4 != 1 else { throw Failure(detail: "base64 text has an impossible length") }
        var sawStandard = false
        var sawURLSafe = false
        var out: [UInt8] = []
        out.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in input {
            let value = table[Int(byte)]
            guard value != 255 else { throw Failure(detail: "character \(byteName(byte)) is not base64") }
            if byte == 0x2B || byte == 0x2F { sawStandard = true }
            if byte == 0x2D || byte == 0x5F { sawURLSafe = true }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        guard !(sawStandard && sawURLSafe) else { throw Failure(detail: "base64 text mixes the standard and URL-safe alphabets") }
        guard accumulator == 0 else { throw Failure(detail: "base64 text has non-zero spare bits") }
        return out
    }

    private static func byteName(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x\(Hex.encode([byte]))"
    }
}

/// Lower-case hex.
public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lower-case hex of `bytes`.
    public static func encode<C: Sequence>(_ bytes: C) -> String where C.Element == UInt8 {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
