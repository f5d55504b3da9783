import CBase64

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

    /// Per byte: the 6-bit value, plus 0x40 for `+ /` (standard only), 0x80 for `- _` (URL-safe
    /// only), 0x100 for a byte of neither alphabet. OR-ing the entries of a text tells at once
    /// whether it held a stranger or mixed the alphabets.
    private static let table: [UInt16] = {
        var table = [UInt16](repeating: 0x100, count: 256)
        for (index, byte) in standardAlphabet.enumerated() { table[Int(byte)] = UInt16(index) | (index >= 62 ? 0x40 : 0) }
        for (index, byte) in urlSafeAlphabet.enumerated() where index >= 62 { table[Int(byte)] = UInt16(index) | 0x80 }
        return table
    }()

    /// `table` spread over the four places of a quantum: entry `256 * place + byte` holds the
    /// 6-bit value shifted to its place in the 24 output bits, and the flags of `table` (`>> 6`)
    /// in bits 24...26, so one OR of four entries gives three bytes and what the text held.
    private static let quantumTable: [UInt32] = {
        var spread = [UInt32](repeating: 0, count: 4 * 256)
        for place in 0..<4 {
            for byte in 0..<256 {
                let entry = table[byte]
                spread[place * 256 + byte] = UInt32(entry & 0x3F) << UInt32(18 - 6 * place) | UInt32(entry >> 6) << 24
            }
        }
        return spread
    }()

    /// Decodes standard or URL-safe base64, padded or not.
    public static func decode(_ text: String) throws(Failure) -> [UInt8] {
        var text = text
        return try text.withUTF8 { decode(bytes: $0) }.get()
    }

    /// Decodes base64 bytes (either alphabet, padded or not).
    public static func decode(bytes input: UnsafeBufferPointer<UInt8>) -> Result<[UInt8], Failure> {
        var end = input.count
        var padding = 0
        while end > 0, input[end - 1] == 0x3D {
            end -= 1
            padding += 1
        }
        if padding > 0, padding > 2 || (end + padding) % 4 != 0 { return .failure(Failure(detail: "wrong base64 padding")) }
        guard end % 4 != 1 else { return .failure(Failure(detail: "base64 text has an impossible length")) }
        let remainder = end % 4
        let count = end / 4 * 3 + (remainder == 0 ? 0 : remainder - 1)
        var seen: UInt16 = 0
        var spare: UInt16 = 0
        let output = table.withUnsafeBufferPointer { table in
            [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                var i = 0
                var o = 0
                var quanta: UInt32 = 0
                // Whole blocks of 32 standard-alphabet characters with AVX2 where the CPU has it;
                // the first block holding anything else, and what follows, go the exact way below.
                if end >= 64, let source = input.baseAddress, let target = out.baseAddress {
                    var specials: Int32 = 0
                    i = mijian_base64_decode_blocks(source, end, target, count, &specials)
                    o = i / 4 * 3
                    if specials != 0 { quanta |= 1 << 24 }  // '+' or '/': the standard alphabet's own (table flag 0x40)
                }
                quantumTable.withUnsafeBufferPointer { spread in
                    // Two quanta at a time: eight characters in one load, six bytes in one store
                    // (of eight; the two spare bytes are written over next), while eight fit.
                    if let source = input.baseAddress, let target = out.baseAddress {
                        while i + 8 <= end, o + 8 <= count {
                            let text = UInt64(littleEndian: UnsafeRawPointer(source + i).loadUnaligned(as: UInt64.self))
                            let first =
                                spread[Int(text & 0xFF)] | spread[256 + Int(text >> 8 & 0xFF)] | spread[512 + Int(text >> 16 & 0xFF)]
                                | spread[768 + Int(text >> 24 & 0xFF)]
                            let second =
                                spread[Int(text >> 32 & 0xFF)] | spread[256 + Int(text >> 40 & 0xFF)] | spread[512 + Int(text >> 48 & 0xFF)]
                                | spread[768 + Int(text >> 56)]
                            quanta |= first | second
                            // Each quantum's three bytes, first byte lowest, then the next quantum's.
                            let bytes = UInt64((first << 8).byteSwapped) | UInt64((second << 8).byteSwapped) << 24
                            UnsafeMutableRawPointer(target + o).storeBytes(of: bytes.littleEndian, as: UInt64.self)
                            i += 8
                            o += 6
                        }
                    }
                    while i + 4 <= end {
                        let value =
                            spread[Int(input[i])] | spread[256 + Int(input[i + 1])] | spread[512 + Int(input[i + 2])] | spread[768 + Int(input[i + 3])]
                        quanta |= value
                        out[o] = UInt8(truncatingIfNeeded: value >> 16)
                        out[o + 1] = UInt8(truncatingIfNeeded: value >> 8)
                        out[o + 2] = UInt8(truncatingIfNeeded: value)
                        i += 4
                        o += 3
                    }
                }
                seen = UInt16(truncatingIfNeeded: quanta >> 24) << 6
                if remainder >= 2 {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                    seen |= a | b
                    out[o] = UInt8(truncatingIfNeeded: (a & 0x3F) << 2 | (b & 0x3F) >> 4)
                    o += 1
                    if remainder == 3 {
                        let c = table[Int(input[i + 2])]
                        seen |= c
                        out[o] = UInt8(truncatingIfNeeded: (b & 0x0F) << 4 | (c & 0x3F) >> 2)
                        o += 1
                        spare = c & 0x03
                    } else {
                        spare = b & 0x0F
                    }
                }
                initialized = o
            }
        }
        if seen & 0x100 != 0 {
            let stranger = input[0..<end].first { table[Int($0)] & 0x100 != 0 } ?? 0x3D
            return .failure(Failure(detail: "character \(byteName(stranger)) is not base64"))
        }
        if seen & 0xC0 == 0xC0 { return .failure(Failure(detail: "base64 text mixes the standard and URL-safe alphabets")) }
        if spare != 0 { return .failure(Failure(detail: "base64 text has non-zero spare bits")) }
        return .success(output)
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
