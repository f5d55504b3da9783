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
    /// the hosts as strings).
    func entriesInHostOrder() -> [Int] {
        arena.withUnsafeBufferPointer { stored in
            spans.indices.sorted { left, right in
                let (a, b) = (spans[left], spans[right])
                let common = min(a.count, b.count)
                if common > 0, let base = stored.baseAddress {
                    let order = memcmp(base + a.lowerBound, base + b.lowerBound, common)
                    if order != 0 { return order < 0 }
                }
                return a.count < b.count
            }
        }
    }

    /// The number of the host at `range` of `bytes` (compared in lower case), and whether it is new.
    mutating func entry(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> (entry: Int, new: Bool) {
        // FNV-1a over the lower-case bytes.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for index in range { hash = (hash ^ UInt64(VisitedURL.lower(bytes[index]))) &* 0x100_0000_01b3 }
        var slot = Int(truncatingIfNeeded: hash) & (slots.count - 1)
        while slots[slot] != 0 {
            let entry = Int(slots[slot]) - 1
            let span = spans[entry]
            if span.count == range.count, equal(span, bytes, range) { return (entry, false) }
            slot = (slot + 1) & (slots.count - 1)
        }
        let entry = spans.count
        let start = arena.count
        for index in range { arena.append(VisitedURL.lower(bytes[index])) }
        spans.append(start..<arena.count)
        slots[slot] = Int32(entry + 1)
        if spans.count * 2 > slots.count { grow() }
        return (entry, true)
    }

    /// Whether the host at `span` is the bytes at `range`, compared in lower case.
    private func equal(_ span: Range<Int>, _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        arena.withUnsafeBufferPointer { stored in
            var offset = 0
            while offset < span.count {
                if stored[span.lowerBound + offset] != VisitedURL.lower(bytes[range.lowerBound + offset]) { return false }
                offset += 1
            }
            return true
        }
    }

    /// Doubles the slots (kept at most half full) and places every entry again.
    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        for (entry, span) in spans.enumerated() {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in arena[span] { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            var slot = Int(truncatingIfNeeded: hash) & (slots.count - 1)
            while slots[slot] != 0 { slot = (slot + 1) & (slots.count - 1) }
            slots[slot] = Int32(entry + 1)
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
