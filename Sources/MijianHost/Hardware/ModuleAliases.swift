/// The USB and PCI patterns of `modules.alias`, indexed so that a modalias is tried only against
/// patterns that can match it.
///
/// Patterns are kept as byte ranges into the file's one buffer (no string per line). A pattern
/// whose literal start covers the vendor (`usb:v0BDA…`, `pci:v00008086…`) goes into a bucket keyed
/// by that prefix; the rest (class matches such as `usb:v*p*d*…ic08isc06ip50in*`) go into one list
/// per bus that every modalias of that bus is tried against.
struct ModuleAliasIndex: Sendable {
    private struct Entry: Sendable {
        var patternStart: Int32
        var patternEnd: Int32
        var moduleStart: Int32
        var moduleEnd: Int32
    }

    private let bytes: [UInt8]
    private var entries: [Entry] = []
    private var buckets: [UInt64: [Int32]] = [:]
    private var wildcardUSB: [Int32] = []
    private var wildcardPCI: [Int32] = []

    /// How many USB and PCI patterns were indexed.
    var count: Int { entries.count }

    /// Literal bytes that key a bucket: `usb:v` + 4 hex digits, `pci:v` + 8 hex digits.
    private static let usbKeyLength = 9
    private static let pciKeyLength = 13

    /// Indexes the `usb:` and `pci:` lines of a `modules.alias` file.
    init(bytes: [UInt8]) {
        self.bytes = bytes
        let prefix: [UInt8] = Array("alias ".utf8)
        bytes.withUnsafeBufferPointer { buffer in
            let count = buffer.count
            var lineStart = 0
            while lineStart < count {
                var lineEnd = lineStart
                while lineEnd < count, buffer[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                defer { lineStart = lineEnd + 1 }
                guard lineEnd - lineStart > prefix.count + 5 else { continue }
                var matchesPrefix = true
                for offset in 0..<prefix.count where buffer[lineStart + offset] != prefix[offset] {
                    matchesPrefix = false
                    break
                }
                guard matchesPrefix else { continue }
                let patternStart = lineStart + prefix.count
                let isUSB = buffer[patternStart] == UInt8(ascii: "u") && buffer[patternStart + 1] == UInt8(ascii: "s")
                    && buffer[patternStart + 2] == UInt8(ascii: "b") && buffer[patternStart + 3] == UInt8(ascii: ":")
                let isPCI = buffer[patternStart] == UInt8(ascii: "p") && buffer[patternStart + 1] == UInt8(ascii: "c")
                    && buffer[patternStart + 2] == UInt8(ascii: "i") && buffer[patternStart + 3] == UInt8(ascii: ":")
                guard isUSB || isPCI else { continue }
                var patternEnd = patternStart
                while patternEnd < lineEnd, buffer[patternEnd] != UInt8(ascii: " ") { patternEnd += 1 }
                var moduleStart = patternEnd
                while moduleStart < lineEnd, buffer[moduleStart] == UInt8(ascii: " ") { moduleStart += 1 }
                var moduleEnd = moduleStart
                while moduleEnd < lineEnd, buffer[moduleEnd] != UInt8(ascii: " "), buffer[moduleEnd] != UInt8(ascii: "\r") { moduleEnd += 1 }
                guard moduleEnd > moduleStart else { continue }
                let index = Int32(entries.count)
                entries.append(Entry(patternStart: Int32(patternStart), patternEnd: Int32(patternEnd), moduleStart: Int32(moduleStart), moduleEnd: Int32(moduleEnd)))
                let keyLength = isUSB ? Self.usbKeyLength : Self.pciKeyLength
                var literal = 0
                while patternStart + literal < patternEnd, literal < keyLength {
                    let byte = buffer[patternStart + literal]
                    if byte == UInt8(ascii: "*") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "[") { break }
                    literal += 1
                }
                if literal == keyLength {
                    buckets[Self.key(buffer, from: patternStart, length: keyLength), default: []].append(index)
                } else if isUSB {
                    wildcardUSB.append(index)
                } else {
                    wildcardPCI.append(index)
                }
            }
        }
    }

    private static func key(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, length: Int) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for offset in 0..<length {
            hash = (hash ^ UInt64(buffer[start + offset])) &* 0x100_0000_01b3
        }
        return hash
    }

    /// Module names (normalised, sorted, unique) whose patterns match `modalias`.
    func modules(matching modalias: String) -> [String] {
        let subject = Array(modalias.utf8)
        let isUSB = modalias.hasPrefix("usb:")
        let isPCI = modalias.hasPrefix("pci:")
        guard isUSB || isPCI else { return [] }
        let keyLength = isUSB ? Self.usbKeyLength : Self.pciKeyLength
        var candidates: [Int32] = isUSB ? wildcardUSB : wildcardPCI
        if subject.count >= keyLength {
            let key = subject.withUnsafeBufferPointer { Self.key($0, from: 0, length: keyLength) }
            candidates += buckets[key] ?? []
        }
        var names: Set<String> = []
        bytes.withUnsafeBufferPointer { buffer in
            subject.withUnsafeBufferPointer { text in
                for index in candidates {
                    let entry = entries[Int(index)]
                    let pattern = UnsafeBufferPointer(rebasing: buffer[Int(entry.patternStart)..<Int(entry.patternEnd)])
                    if Glob.matches(pattern: pattern, text: text) {
                        let name = String(decoding: buffer[Int(entry.moduleStart)..<Int(entry.moduleEnd)], as: UTF8.self)
                        names.insert(String(name.map { $0 == "-" ? "_" : $0 }))
                    }
                }
            }
        }
        return names.sorted()
    }
}

/// fnmatch-style matching as kmod does for `modules.alias`: `*`, `?`, and `[...]` sets
/// (ranges, `!` or `^` negation).
enum Glob {
    /// Whether `pattern` matches the whole of `text`.
    static func matches(pattern: String, text: String) -> Bool {
        let p = Array(pattern.utf8)
        let t = Array(text.utf8)
        return p.withUnsafeBufferPointer { pb in t.withUnsafeBufferPointer { tb in matches(pattern: pb, text: tb) } }
    }

    /// Byte-level form; iterative, backtracking only to the last `*`.
    static func matches(pattern: UnsafeBufferPointer<UInt8>, text: UnsafeBufferPointer<UInt8>) -> Bool {
        var p = 0
        var t = 0
        var starP = -1
        var starT = 0
        while t < text.count {
            if p < pattern.count {
                let c = pattern[p]
                if c == UInt8(ascii: "*") {
                    starP = p
                    starT = t
                    p += 1
                    continue
                }
                if c == UInt8(ascii: "?") {
                    p += 1
                    t += 1
                    continue
                }
                if c == UInt8(ascii: "[") {
                    if let (matched, next) = matchSet(pattern, at: p, byte: text[t]) {
                        if matched {
                            p = next
                            t += 1
                            continue
                        }
                    } else if text[t] == c {
                        p += 1
                        t += 1
                        continue
                    }
                } else if c == text[t] {
                    p += 1
                    t += 1
                    continue
                }
            }
            guard starP >= 0 else { return false }
            p = starP + 1
            starT += 1
            t = starT
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    /// Matches one byte against the set starting at `start` (`[`); nil when the set is unterminated
    /// (then `[` is literal), else whether it matched and the index after `]`.
    private static func matchSet(_ pattern: UnsafeBufferPointer<UInt8>, at start: Int, byte: UInt8) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < pattern.count, pattern[i] == UInt8(ascii: "!") || pattern[i] == UInt8(ascii: "^") {
            negate = true
            i += 1
        }
        var matched = false
        var first = true
        while i < pattern.count {
            let c = pattern[i]
            if c == UInt8(ascii: "]"), !first {
                return (matched != negate, i + 1)
            }
            first = false
            if i + 2 < pattern.count, pattern[i + 1] == UInt8(ascii: "-"), pattern[i + 2] != UInt8(ascii: "]") {
                if byte >= c && byte <= pattern[i + 2] { matched = true }
                i += 3
            } else {
                if byte == c { matched = true }
                i += 1
            }
        }
        return nil
    }
}
