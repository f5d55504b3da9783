#if canImport(Glibc)
import Glibc
#endif

/// Plain text in the encodings Chinese office machines write: UTF-8 (with or without a BOM),
/// UTF-16 with a BOM (Notepad's "Unicode"), and GB18030 (a superset of GBK and GB2312, which
/// Windows writes as "ANSI"). Detected from the bytes, never assumed.
enum TextDecoding {
    /// The text and the encoding's name; nil when the bytes are not text in any of them.
    static func decode(_ bytes: [UInt8], declared: String? = nil, truncated: Bool) -> (text: String, encoding: String)? {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { return (String(decoding: bytes.dropFirst(3), as: UTF8.self), "utf-8") }
        if bytes.starts(with: [0xFF, 0xFE]) { return (utf16(bytes.dropFirst(2), littleEndian: true), "utf-16le") }
        if bytes.starts(with: [0xFE, 0xFF]) { return (utf16(bytes.dropFirst(2), littleEndian: false), "utf-16be") }
        if let declared, isGB(declared) {
            if let text = gb18030(bytes, truncated: truncated) { return (text, "gb18030") }
        }
        // A cut at the read limit may split the last character: UTF-8 validity is judged without it.
        let body = truncated ? Array(bytes[..<completeUTF8Prefix(bytes)]) : bytes
        if body.contains(0) { return nil }
        if let text = String(validating: body, as: UTF8.self) { return (text, "utf-8") }
        if let text = gb18030(bytes, truncated: truncated) { return (text, "gb18030") }
        return nil
    }

    /// Whether a charset name is one of the GB family GB18030 decodes (GB18030 ⊃ GBK ⊃ GB2312).
    static func isGB(_ charset: String) -> Bool {
        ["gbk", "gb2312", "gb18030", "x-gbk", "cp936", "euc-cn", "csgb2312"].contains(charset.lowercased())
    }

    /// Bytes in a named charset (as a MIME part or an encoded word declares it) as text: UTF-8
    /// checked, the GB family through GB18030, anything else through iconv; nil when the name is
    /// unknown or the bytes are not valid in it.
    static func convert(_ bytes: [UInt8], from charset: String, truncated: Bool) -> String? {
        let name = charset.lowercased().filter { !$0.isWhitespace }
        if name == "utf-8" || name == "utf8" || name == "us-ascii" || name == "ascii" {
            let body = truncated ? Array(bytes[..<completeUTF8Prefix(bytes)]) : bytes
            return String(validating: body, as: UTF8.self)
        }
        return iconvDecode(bytes, from: isGB(name) ? "GB18030" : name.uppercased(), truncated: truncated)
    }

    /// The length of `bytes` without a UTF-8 sequence cut at its end.
    static func completeUTF8Prefix(_ bytes: [UInt8]) -> Int {
        var index = bytes.count
        var back = 0
        while index > 0, back < 4 {
            let byte = bytes[index - 1]
            if byte & 0xC0 == 0x80 {
                index -= 1
                back += 1
                continue
            }
            if byte >= 0xC0 {
                let need = byte >= 0xF0 ? 4 : (byte >= 0xE0 ? 3 : 2)
                return back + 1 >= need ? bytes.count : index - 1
            }
            return bytes.count
        }
        return bytes.count
    }

    static func utf16(_ bytes: ArraySlice<UInt8>, littleEndian: Bool) -> String {
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / 2)
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {
            let a = UInt16(bytes[index]), b = UInt16(bytes[index + 1])
            units.append(littleEndian ? a | b << 8 : b | a << 8)
            index += 2
        }
        return String(decoding: units, as: UTF16.self)
    }

    /// GB18030 through glibc's iconv; nil when the bytes are not valid GB18030 (an incomplete
    /// character at the very end is allowed when the read was cut there).
    static func gb18030(_ bytes: [UInt8], truncated: Bool) -> String? {
        iconvDecode(bytes, from: "GB18030", truncated: truncated)
    }

    /// Bytes in `charset` as text through glibc's iconv; nil when iconv does not know the
    /// charset or the bytes are invalid in it.
    static func iconvDecode(_ bytes: [UInt8], from charset: String, truncated: Bool) -> String? {
        let converter = iconv_open("UTF-8", charset)
        guard let converter, Int(bitPattern: converter) != -1 else { return nil }
        defer { iconv_close(converter) }
        var input = bytes
        var output = [UInt8](repeating: 0, count: bytes.count * 2 + 16)
        let outputCount = output.count
        var failed = false
        var written = 0
        input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                var inPointer = UnsafeMutableRawPointer(inBuffer.baseAddress)?.assumingMemoryBound(to: CChar.self)
                var inLeft = inBuffer.count
                var outPointer = UnsafeMutableRawPointer(outBuffer.baseAddress)?.assumingMemoryBound(to: CChar.self)
                var outLeft = outBuffer.count
                let result = iconv(converter, &inPointer, &inLeft, &outPointer, &outLeft)
                if result == -1 {
                    let code = errno
                    // EINVAL: an incomplete sequence at the end of the input.
                    failed = !(code == EINVAL && truncated)
                }
                written = outputCount - outLeft
            }
        }
        // A NUL is no text: looked for in the bytes (a String search folds every character).
        guard !failed, !output[0..<written].contains(0) else { return nil }
        return String(decoding: output[0..<written], as: UTF8.self)
    }

    /// Non-empty lines of text, split at LF, CRLF, CR, form feed and U+2028. Split on the UTF-8
    /// bytes (every separator is whole there), not on Characters, whose comparison costs far more.
    static func lines(_ text: String) -> [String] {
        var lines: [String] = []
        forEachLine(text) { line in
            lines.append(line)
            return true
        }
        return lines
    }

    /// The non-empty lines of `text` (as `lines` splits them) handed to `body` in order until it
    /// returns false: a reader that needs the first lines does not split the rest.
    static func forEachLine(_ text: String, _ body: (String) -> Bool) {
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            func flush(_ end: Int) -> Bool {
                guard end > start else { return true }
                let line = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
                if line.unicodeScalars.allSatisfy(\.properties.isWhitespace) { return true }
                return body(line)
            }
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0x0A || byte == 0x0D || byte == 0x0C {
                    guard flush(index) else { return }
                    index += 1
                    start = index
                } else if byte == 0xE2, index + 2 < bytes.count, bytes[index + 1] == 0x80, bytes[index + 2] == 0xA8 {
                    guard flush(index) else { return }
                    index += 3
                    start = index
                } else {
                    index += 1
                }
            }
            _ = flush(bytes.count)
        }
    }
}
