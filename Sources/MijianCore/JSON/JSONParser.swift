/// A strict JSON parser for untrusted input.
///
/// It rejects duplicate keys in any object, limits nesting depth and input size before reading,
/// keeps integers as integers, and reports the byte offset of the first problem.
public struct JSONParser: Sendable {
    /// Why parsing failed, and where.
    public struct Failure: Error, Sendable, CustomStringConvertible, Equatable {
        /// What went wrong.
        public enum Reason: String, Sendable { case syntax, duplicateKey = "duplicate-key", tooDeep = "too-deep", tooLarge = "too-large", badNumber = "bad-number", badString = "bad-string" }
        /// What went wrong.
        public let reason: Reason
        /// Byte offset in the input.
        public let offset: Int
        /// Detail for people.
        public let detail: String
        /// Text for people.
        public var description: String { "\(reason.rawValue) at byte \(offset): \(detail)" }
    }

    /// Deepest nesting accepted.
    public var maxDepth: Int
    /// Largest input accepted, in bytes.
    public var maxBytes: Int

    /// Makes a parser with limits.
    public init(maxDepth: Int = 64, maxBytes: Int = 16 << 20) {
        self.maxDepth = maxDepth
        self.maxBytes = maxBytes
    }

    /// Parses one JSON document (surrounding white space allowed).
    public func parse<C: Collection>(_ input: C) throws(Failure) -> JSONValue where C.Element == UInt8 {
        guard input.count <= maxBytes else {
            throw Failure(reason: .tooLarge, offset: 0, detail: "\(input.count) bytes exceeds the limit of \(maxBytes)")
        }
        let array = Array(input)
        let depth = maxDepth
        let outcome: Result<JSONValue, Failure> = array.withUnsafeBufferPointer { bytes in
            var state = State(bytes: bytes, maxDepth: depth)
            do throws(Failure) {
                state.skipSpace()
                let value = try state.value(depth: 0)
                state.skipSpace()
                guard state.index == bytes.count else { throw state.fail(.syntax, "trailing data after the document") }
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }

    /// The value of JSON bytes the direct report decoder has already checked by these rules, so
    /// parsing cannot fail (it would give null). No depth or size limit: the check applied them.
    static func parseChecked(_ input: ArraySlice<UInt8>) -> JSONValue {
        input.withUnsafeBufferPointer { bytes in
            var state = State(bytes: bytes, maxDepth: Int.max - 1)
            state.skipSpace()
            return (try? state.value(depth: 0)) ?? .null
        }
    }

    /// Parser state over the input bytes; the buffer lives only for the duration of `parse`.
    /// The direct report decoder walks the same state, so both read JSON by the same rules.
    struct State {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func fail(_ reason: Failure.Reason, _ detail: String) -> Failure {
            Failure(reason: reason, offset: index, detail: detail)
        }

        @inline(__always)
        mutating func skipSpace() {
            // Compact JSON has no white space: one comparison decides most calls.
            if index < bytes.count, bytes[index] > 0x20 { return }
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func expect(_ word: StaticString, _ value: JSONValue) throws(Failure) -> JSONValue {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw fail(.syntax, "unexpected character") }
            let start = word.utf8Start
            for offset in 0..<count where bytes[index + offset] != start[offset] {
                throw fail(.syntax, "unexpected character")
            }
            index += count
            return value
        }

        mutating func value(depth: Int) throws(Failure) -> JSONValue {
            guard depth <= maxDepth else { throw fail(.tooDeep, "nesting deeper than \(maxDepth)") }
            guard index < bytes.count else { throw fail(.syntax, "unexpected end of input") }
            switch bytes[index] {
            case 0x7B: return try object(depth: depth)
            case 0x5B: return try array(depth: depth)
            case 0x22: return .string(try string())
            case 0x74: return try expect("true", .bool(true))
            case 0x66: return try expect("false", .bool(false))
            case 0x6E: return try expect("null", .null)
            case 0x2D, 0x30...0x39: return try number()
            default: throw fail(.syntax, "unexpected character")
            }
        }

        mutating func object(depth: Int) throws(Failure) -> JSONValue {
            index += 1
            var members: [(String, JSONValue)] = []
            members.reserveCapacity(8)
            // Small objects check duplicates linearly; a Set only once an object grows.
            var seen = Set<String>()
            var useSet = false
            skipSpace()
            if index < bytes.count, bytes[index] == 0x7D { index += 1; return .object([]) }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == 0x22 else { throw fail(.syntax, "expected a key") }
                let keyOffset = index
                let key = try string()
                if !useSet, members.count >= 12 { useSet = true; for (k, _) in members { seen.insert(k) } }
                let duplicate = useSet ? !seen.insert(key).inserted : members.contains { $0.0 == key }
                guard !duplicate else {
                    throw Failure(reason: .duplicateKey, offset: keyOffset, detail: "key \"\(key)\" appears twice")
                }
                skipSpace()
                guard index < bytes.count, bytes[index] == 0x3A else { throw fail(.syntax, "expected ':'") }
                index += 1
                skipSpace()
                members.append((key, try value(depth: depth + 1)))
                skipSpace()
                guard index < bytes.count else { throw fail(.syntax, "unexpected end of input") }
                if bytes[index] == 0x2C { index += 1; continue }
                if bytes[index] == 0x7D { index += 1; return .object(members) }
                throw fail(.syntax, "expected ',' or '}'")
            }
        }

        mutating func array(depth: Int) throws(Failure) -> JSONValue {
            index += 1
            var elements: [JSONValue] = []
            skipSpace()
            if index < bytes.count, bytes[index] == 0x5D { index += 1; return .array([]) }
            while true {
                skipSpace()
                elements.append(try value(depth: depth + 1))
                skipSpace()
                guard index < bytes.count else { throw fail(.syntax, "unexpected end of input") }
                if bytes[index] == 0x2C { index += 1; continue }
                if bytes[index] == 0x5D { index += 1; return .array(elements) }
                throw fail(.syntax, "expected ',' or ']'")
            }
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            guard index + 4 <= bytes.count else { throw fail(.badString, "short \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt32
                switch byte {
                case 0x30...0x39: digit = UInt32(byte - 0x30)
                case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
                default: throw fail(.badString, "bad hex digit in \\u escape")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        /// The position of the first byte from `start` that a string cannot take as it is (`"`,
        /// `\\`, a control byte or one outside ASCII), found eight bytes at a time, or of the last
        /// bytes too few to make a word; the bytes before it are plain ASCII.
        @inline(__always)
        static func skipPlainWords(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
            guard let address = bytes.baseAddress else { return start }
            var index = start
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            while index + 8 <= bytes.count {
                // The first byte in the lowest bits, whatever the machine's byte order.
                let word = UInt64(littleEndian: UnsafeRawPointer(address + index).loadUnaligned(as: UInt64.self))
                // Per byte: below 0x20, equal to '"', equal to '\\', or its high bit set. A borrow
                // can mark a byte above a marked one, never below: the lowest mark is exact.
                let control = (word &- 0x20 &* ones) & ~word
                let quote = word ^ (0x22 &* ones)
                let backslash = word ^ (0x5C &* ones)
                let found = (control | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | word) & highs
                if found != 0 { return index + found.trailingZeroBitCount >> 3 }
                index += 8
            }
            return index
        }

        /// The length of the well-formed UTF-8 sequence of two to four bytes at `index` (Unicode
        /// table 3-7: no overlong form, no surrogate, nothing above U+10FFFF), or nil.
        @inline(__always)
        static func utf8SequenceLength(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Int? {
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF
            switch bytes[index] {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return nil
            }
            guard index + length <= bytes.count else { return nil }
            let second = bytes[index + 1]
            guard second >= low, second <= high else { return nil }
            for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return nil }
            return length
        }

        /// True when `bytes` are well-formed UTF-8: what `String(validating:as:)` accepts.
        static func isWellFormedUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
            var index = 0
            while index < bytes.count {
                if bytes[index] < 0x80 {
                    index += 1
                    continue
                }
                guard let length = utf8SequenceLength(bytes, at: index) else { return false }
                index += length
            }
            return true
        }

        mutating func string() throws(Failure) -> String {
            index += 1
            // Fast path: no escape before the closing quote, so the bytes are the string.
            let start = index
            index = Self.skipPlainWords(bytes, from: index)
            var ascii = true
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0x22 {
                    let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
                    index += 1
                    // ASCII needs no validation; anything else is validated, never repaired. Up to
                    // 15 ASCII bytes, this initializer makes the string in place, without a call
                    // into the decoder.
                    // Anything else is validated first (with the rules `String(validating:)`
                    // applies, without its generic path), so that initializer repairs nothing.
                    guard ascii || Self.isWellFormedUTF8(raw) else {
                        index -= 1
                        throw fail(.badString, "string is not valid UTF-8")
                    }
                    return String(unsafeUninitializedCapacity: raw.count) { out in out.initialize(fromContentsOf: raw) }
                }
                if byte == 0x5C || byte < 0x20 { break }
                if byte >= 0x80 { ascii = false }
                index += 1
            }
            var out: [UInt8] = Array(bytes[start..<index])
            while true {
                guard index < bytes.count else { throw fail(.badString, "unterminated string") }
                let byte = bytes[index]
                if byte == 0x22 { index += 1; break }
                if byte < 0x20 { throw fail(.badString, "control character in string") }
                if byte != 0x5C { out.append(byte); index += 1; continue }
                index += 1
                guard index < bytes.count else { throw fail(.badString, "unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case 0x22: out.append(0x22)
                case 0x5C: out.append(0x5C)
                case 0x2F: out.append(0x2F)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard index + 2 <= bytes.count, bytes[index] == 0x5C, bytes[index + 1] == 0x75 else {
                            throw fail(.badString, "lone high surrogate")
                        }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail(.badString, "bad low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw fail(.badString, "lone low surrogate")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail(.badString, "invalid scalar") }
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: throw fail(.badString, "unknown escape")
                }
            }
            guard let text = String(validating: out, as: UTF8.self) else {
                throw fail(.badString, "string is not valid UTF-8")
            }
            return text
        }

        mutating func number() throws(Failure) -> JSONValue {
            let start = index
            if bytes[index] == 0x2D { index += 1 }
            let digitsStart = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            guard index > digitsStart else { throw fail(.badNumber, "expected digits") }
            if bytes[digitsStart] == 0x30, index - digitsStart > 1 { throw fail(.badNumber, "leading zero") }
            var isInteger = true
            if index < bytes.count, bytes[index] == 0x2E {
                isInteger = false
                index += 1
                let fractionStart = index
                while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
                guard index > fractionStart else { throw fail(.badNumber, "expected fraction digits") }
            }
            if index < bytes.count, bytes[index] == 0x65 || bytes[index] == 0x45 {
                isInteger = false
                index += 1
                if index < bytes.count, bytes[index] == 0x2B || bytes[index] == 0x2D { index += 1 }
                let expStart = index
                while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
                guard index > expStart else { throw fail(.badNumber, "expected exponent digits") }
            }
            if isInteger {
                // Accumulate negatively so Int64.min parses; any overflow is out of range.
                var value: Int64 = 0
                let negative = bytes[start] == 0x2D
                for position in (negative ? start + 1 : start)..<index {
                    let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
                    let (next, overflowB) = shifted.subtractingReportingOverflow(Int64(bytes[position] - 0x30))
                    guard !overflowA, !overflowB else {
                        throw Failure(reason: .badNumber, offset: start, detail: "integer out of range")
                    }
                    value = next
                }
                if !negative {
                    guard value != Int64.min else { throw Failure(reason: .badNumber, offset: start, detail: "integer out of range") }
                    value = -value
                }
                return .int(value)
            }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw Failure(reason: .badNumber, offset: start, detail: "number out of range")
            }
            return .double(value)
        }
    }
}
