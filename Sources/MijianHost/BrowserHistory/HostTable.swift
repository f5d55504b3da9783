#if canImport(Glibc)
import Glibc
#endif

/// The distinct hosts of a history's URLs, numbered in order of first appearance, looked up by
/// the URL's bytes as SQLite holds them: a URL whose host was seen before costs no string and no
/// allocation (a history has some ten URLs per host, and a hundred thousand URLs).
struct HostTable {
    /// The hosts' bytes in lower case, one after another.
    private var arena: [UInt8] = []
    /// Where each host's bytes are in `arena`.
    private var spans: [Range<Int>] = []
    /// Open addressing: entry number + 1, or 0 for an empty slot.
    private var slots = [Int32](repeating: 0, count: 1024)

    /// How many hosts.
    var count: Int { spans.count }

    /// Host number `entry`.
    func host(_ entry: Int) -> String { String(decoding: arena[spans[entry]], as: UTF8.self) }

    /// The entries in the order of their hosts' bytes (for the ASCII names of URLs, the order of
    /// the hosts as strings). Each host's first sixteen bytes, as two big-endian words, decide
    /// most comparisons without a call; the rest of the bytes and the length decide ties.
    func entriesInHostOrder() -> [Int] {
        arena.withUnsafeBufferPointer { stored in
            guard let base = stored.baseAddress else { return Array(spans.indices) }
            func word(_ span: Range<Int>, _ from: Int) -> UInt64 {
                var value: UInt64 = 0
                for offset in from..<(from + 8) { value = value << 8 | (offset < span.count ? UInt64(base[span.lowerBound + offset]) : 0) }
                return value
            }
            var keyed = spans.indices.map { (first: word(spans[$0], 0), second: word(spans[$0], 8), entry: $0) }
            keyed.sort { left, right in
                if left.first != right.first { return left.first < right.first }
                if left.second != right.second { return left.second < right.second }
                let (a, b) = (spans[left.entry], spans[right.entry])
                let common = min(a.count, b.count)
                if common > 16 {
                    let order = memcmp(base + a.lowerBound + 16, base + b.lowerBound + 16, common - 16)
                    if order != 0 { return order < 0 }
                }
                return a.count < b.count
            }
            return keyed.map(\.entry)
        }
    }

    /// The number of the host at `range` of `bytes` (compared in lower case), and whether it is new.
    mutating func entry(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> (entry: Int, new: Bool) {
        let (hash, folded) = Self.hash(bytes, range)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        let found: Int? = slots.withUnsafeBufferPointer { slots in
            spans.withUnsafeBufferPointer { spans in
                arena.withUnsafeBufferPointer { stored in
                    while slots[slot] != 0 {
                        let entry = Int(slots[slot]) - 1
                        let span = spans[entry]
                        if span.count == range.count, Self.equal(stored, span.lowerBound, bytes, range, folded: folded) { return entry }
                        slot = (slot + 1) & mask
                    }
                    return nil
                }
            }
        }
        if let found { return (found, false) }
        let entry = spans.count
        let start = arena.count
        if folded {
            for index in range { arena.append(VisitedURL.lower(bytes[index])) }
        } else {
            arena.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[range]))
        }
        spans.append(start..<arena.count)
        slots[slot] = Int32(entry + 1)
        if spans.count * 2 > slots.count { grow() }
        return (entry, true)
    }

    /// A hash of the bytes at `range` in lower case, eight bytes at a time, and whether any byte
    /// was an upper-case ASCII letter (lowered for the hash, so `HOST` and `host` hash alike).
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> (hash: UInt64, folded: Bool) {
        guard let base = bytes.baseAddress else { return (0, false) }
        var hash: UInt64 = 0x9e37_79b9_7f4a_7c15 ^ UInt64(range.count)
        var uppers: UInt64 = 0
        var index = range.lowerBound
        while index < range.upperBound {
            let count = min(8, range.upperBound - index)
            var word: UInt64 = 0
            if count == 8 {
                word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
            } else {
                for offset in 0..<count { word |= UInt64(base[index + offset]) << UInt64(offset * 8) }
            }
            // Per byte below 0x80: bit 7 set where the byte is 'A'...'Z' (it is at least 0x41 and
            // not above 0x5a); bytes from 0x80 up take no part (no letter of theirs is lowered).
            let ascii = ~word & 0x8080_8080_8080_8080
            let upper = (word & 0x7f7f_7f7f_7f7f_7f7f &+ 0x3f3f_3f3f_3f3f_3f3f) & ~(word & 0x7f7f_7f7f_7f7f_7f7f &+ 0x2525_2525_2525_2525) & ascii
            uppers |= upper
            word |= upper >> 2
            hash = (hash ^ word) &* 0x100_0000_01b3
            hash ^= hash >> 29
            index += count
        }
        hash = (hash ^ (hash >> 32)) &* 0xd6e8_feb8_6659_fd93
        return (hash ^ (hash >> 32), uppers != 0)
    }

    /// Whether the stored host at `at` is the bytes at `range` (the stored bytes are in lower case).
    @inline(__always)
    private static func equal(
        _ stored: UnsafeBufferPointer<UInt8>, _ at: Int, _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, folded: Bool
    ) -> Bool {
        guard let storedBase = stored.baseAddress, let base = bytes.baseAddress else { return range.isEmpty }
        if !folded {
            // Eight bytes at a time (a host is some twenty), the tail byte by byte: no call out.
            let (left, right) = (UnsafeRawPointer(storedBase + at), UnsafeRawPointer(base + range.lowerBound))
            var offset = 0
            while offset + 8 <= range.count {
                if left.loadUnaligned(fromByteOffset: offset, as: UInt64.self) != right.loadUnaligned(fromByteOffset: offset, as: UInt64.self) { return false }
                offset += 8
            }
            while offset < range.count {
                if left.load(fromByteOffset: offset, as: UInt8.self) != right.load(fromByteOffset: offset, as: UInt8.self) { return false }
                offset += 1
            }
            return true
        }
        var offset = 0
        while offset < range.count {
            if storedBase[at + offset] != VisitedURL.lower(base[range.lowerBound + offset]) { return false }
            offset += 1
        }
        return true
    }

    /// Doubles the slots (kept at most half full) and places every entry again.
    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        arena.withUnsafeBufferPointer { stored in
            for (entry, span) in spans.enumerated() {
                var slot = Int(truncatingIfNeeded: Self.hash(stored, span).hash) & mask
                while slots[slot] != 0 { slot = (slot + 1) & mask }
                slots[slot] = Int32(entry + 1)
            }
        }
    }
}

/// A set of row ids for `mijian_judged`: a bit per id below `bitLimit` (row ids are small and
/// dense), a hash set for any other.
struct IDBitSet {
    /// Ids from 0 up to this have a bit.
    static let bitLimit: Int64 = 1 << 24
    private var words: [UInt64] = []
    private var others: Set<Int64> = []

    mutating func insert(_ id: Int64) {
        guard id >= 0, id < IDBitSet.bitLimit else {
            others.insert(id)
            return
        }
        let word = Int(id >> 6)
        if word >= words.count { words += repeatElement(0, count: max(word + 1 - words.count, words.count)) }
        words[word] |= 1 << UInt64(id & 63)
    }

    func contains(_ id: Int64) -> Bool {
        guard id >= 0, id < IDBitSet.bitLimit else { return others.contains(id) }
        let word = Int(id >> 6)
        return word < words.count && words[word] & (1 << UInt64(id & 63)) != 0
    }
}
