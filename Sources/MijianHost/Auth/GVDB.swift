/// Reads a compiled dconf database: a GVDB file (glib's `gvdb-format.h`) whose root hash table maps
/// dconf paths to serialised GVariant values, with the locked keys in a nested table `.locks`.
///
/// Layout, all integers little-endian (the byte order dconf writes on every machine Mijian runs on):
/// a 24-byte header (`GVariant` signature, version, options, root pointer `{start, end}`); a hash
/// table is `{n_bloom_words, n_buckets}`, the bloom words and buckets (4 bytes each), then 24-byte
/// items `{hash, parent, key_start, key_size:16, type:8, unused:8, value {start, end}}`. An item's
/// key is its parent's key followed by its own bytes. Type `v` points at a GVariant of type `v`
/// (the value's bytes, a NUL, its type string), `H` at a nested table, `L` at a list of children.
struct GVDBFile {
    /// Why a file is not a database this reader can read.
    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// A value as GVariant text, and the keys locked.
    struct Database {
        /// dconf path → GVariant text (`uint32 900`, `true`, `5`, `'text'`).
        var values: [(key: String, value: String)]
        /// Locked dconf paths.
        var locks: [String]
    }

    private let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Parses the whole database.
    func read() throws(Malformed) -> Database {
        guard bytes.count >= 24 else { throw Malformed(description: "\(bytes.count) bytes: shorter than a GVDB header (24)") }
        let signature = Array(bytes[0..<8])
        if signature == Array("raVGtnai".utf8) {
            throw Malformed(description: "a big-endian GVDB file (byte-swapped signature), written on another architecture: not read")
        }
        guard signature == Array("GVariant".utf8) else { throw Malformed(description: "no GVariant signature: not a compiled dconf database") }
        let (rootStart, rootEnd) = try pointer(at: 16)
        let root = try table(rootStart, rootEnd)
        var database = Database(values: [], locks: [])
        for item in root {
            switch item.type {
            case UInt8(ascii: "v"):
                guard item.key != ".locks" else { continue }
                database.values.append((item.key, try variantText(item.valueStart, item.valueEnd)))
            case UInt8(ascii: "H") where item.key == ".locks":
                database.locks = try table(item.valueStart, item.valueEnd).map(\.key)
            default: continue
            }
        }
        return database
    }

    private struct Item {
        var key: String
        var type: UInt8
        var valueStart: Int
        var valueEnd: Int
    }

    private func u32(_ offset: Int) throws(Malformed) -> UInt32 {
        guard offset >= 0, offset + 4 <= bytes.count else { throw Malformed(description: "offset \(offset) is past the end (\(bytes.count) bytes)") }
        return UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    private func pointer(at offset: Int) throws(Malformed) -> (Int, Int) {
        let start = Int(try u32(offset))
        let end = Int(try u32(offset + 4))
        guard start <= end, end <= bytes.count else { throw Malformed(description: "pointer {\(start), \(end)} at \(offset) is outside the file (\(bytes.count) bytes)") }
        return (start, end)
    }

    /// The items of the hash table at `[start, end)` with their full keys.
    private func table(_ start: Int, _ end: Int) throws(Malformed) -> [Item] {
        guard end - start >= 8 else { return [] }
        let bloomWords = Int(try u32(start) & ((1 << 27) - 1))
        let buckets = Int(try u32(start + 4))
        let itemsStart = start + 8 + 4 * bloomWords + 4 * buckets
        guard itemsStart <= end else { throw Malformed(description: "hash table at \(start): \(bloomWords) bloom words and \(buckets) buckets overrun it") }
        let count = (end - itemsStart) / 24
        var raw: [(parent: UInt32, key: String, type: UInt8, valueStart: Int, valueEnd: Int)] = []
        for index in 0..<count {
            let at = itemsStart + 24 * index
            let parent = try u32(at + 4)
            let keyStart = Int(try u32(at + 8))
            let keySize = Int(bytes[at + 12]) | Int(bytes[at + 13]) << 8
            guard keyStart + keySize <= bytes.count else { throw Malformed(description: "item \(index) of the table at \(start): its key is outside the file") }
            let key = String(decoding: bytes[keyStart..<keyStart + keySize], as: UTF8.self)
            let type = bytes[at + 14]
            var valueStart = 0
            var valueEnd = 0
            if type == UInt8(ascii: "v") || type == UInt8(ascii: "H") || type == UInt8(ascii: "L") {
                (valueStart, valueEnd) = try pointer(at: at + 16)
            }
            raw.append((parent, key, type, valueStart, valueEnd))
        }
        var items: [Item] = []
        for index in raw.indices {
            var key = raw[index].key
            var parent = raw[index].parent
            var hops = 0
            while parent != UInt32.max {
                guard Int(parent) < raw.count, hops < 64 else { throw Malformed(description: "item \(index) of the table at \(start): its parent chain is broken or loops") }
                key = raw[Int(parent)].key + key
                parent = raw[Int(parent)].parent
                hops += 1
            }
            items.append(Item(key: key, type: raw[index].type, valueStart: raw[index].valueStart, valueEnd: raw[index].valueEnd))
        }
        return items
    }

    /// A serialised GVariant of type `v` as GVariant text: the value's bytes, a NUL, its type string.
    private func variantText(_ start: Int, _ end: Int) throws(Malformed) -> String {
        let data = bytes[start..<end]
        guard let nul = data.lastIndex(of: 0) else { throw Malformed(description: "value at \(start) has no type string") }
        let type = String(decoding: data[(nul + 1)...], as: UTF8.self)
        let value = Array(data[start..<nul])
        switch type {
        case "b":
            guard value.count == 1 else { throw Malformed(description: "boolean at \(start) is \(value.count) bytes") }
            return value[0] == 0 ? "false" : "true"
        case "u", "i":
            guard value.count == 4 else { throw Malformed(description: "32-bit integer at \(start) is \(value.count) bytes") }
            let number = UInt32(value[0]) | UInt32(value[1]) << 8 | UInt32(value[2]) << 16 | UInt32(value[3]) << 24
            return type == "u" ? "uint32 \(number)" : "\(Int32(bitPattern: number))"
        case "s":
            let text = value.last == 0 ? value.dropLast() : value[...]
            return "'" + String(decoding: text, as: UTF8.self) + "'"
        default:
            return "@\(type) (\(value.count) bytes)"
        }
    }
}
