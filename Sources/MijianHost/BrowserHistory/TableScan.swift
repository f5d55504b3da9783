#if canImport(Glibc)
import Glibc
#endif

/// The rows of one table read straight from an SQLite database file's b-tree (the file format of
/// https://www.sqlite.org/fileformat2.html, sections 1.3 – 1.6 and 2.1): every leaf page of the
/// table in key order, each row's record decoded for the columns asked, long rows followed into
/// their overflow pages. SQLite's own scan of a history's URL table, through its virtual machine
/// and its column calls, costs several times the pages it reads; this walk costs about the pages.
///
/// It is for a database read in place (nothing in a `-wal` or `-journal` to apply) and for what is
/// ordinary in one: a table b-tree, UTF-8 text, integer and text values. Anything else — a page of
/// another type, a cell or pointer out of its page, a page reached twice, a chain too long, a
/// value of another type where an integer or text is asked, a record without a column asked —
/// stops the walk with `Unsupported` and no row is kept: the caller then asks SQLite, which reads
/// what it can and says what it cannot. The walk never skips a subtree and never guesses.
struct TableScan {
    /// Why the walk stopped; the caller falls back to SQLite.
    struct Unsupported: Error, Equatable {
        let reason: String
    }

    /// A value of a column asked for.
    enum Value {
        case null
        case integer(Int64)
        /// UTF-8 bytes, valid only inside the row's call.
        case text(UnsafeBufferPointer<UInt8>)
    }

    /// Slot `slot` of a row as an integer column: the row id when the column is `INTEGER PRIMARY
    /// KEY` (SQLite reads it so, never from the record), nil for NULL; text there stops the walk
    /// (SQLite would turn it into a number by rules this walk does not repeat).
    static func integer(_ values: UnsafeBufferPointer<Value>, _ slot: Int, rowid: Int64, isRowID: Bool) throws(Unsupported) -> Int64? {
        if isRowID { return rowid }
        switch values[slot] {
        case .null: return nil
        case .integer(let value): return value
        case .text: throw Unsupported(reason: "text where a number is asked")
        }
    }

    /// What the walk needs from the file's header.
    struct Header: Equatable {
        let pageSize: Int
        let usable: Int
        let pageCount: Int
    }

    private let fd: Int32
    let header: Header
    /// Pages read so far (each at most once).
    private var seen: [UInt64]
    /// A record that spills into overflow pages is put together here.
    private var assembled: [UInt8] = []

    /// Largest run of consecutive leaf pages read by one `pread`.
    static let runPages = 32

    /// Reads the header of the database at `fd` (its 100 bytes and its size); `Unsupported` when
    /// it is not a database this walk reads.
    init(fd: Int32) throws(Unsupported) {
        var bytes = [UInt8](repeating: 0, count: 100)
        let got = bytes.withUnsafeMutableBytes { Self.readFully(fd, $0, offset: 0) }
        guard got == 100 else { throw Unsupported(reason: "short header") }
        guard bytes[0..<16].elementsEqual(Array("SQLite format 3".utf8) + [0]) else { throw Unsupported(reason: "not an SQLite file") }
        let raw = Int(bytes[16]) << 8 | Int(bytes[17])
        let pageSize = raw == 1 ? 65536 : raw
        guard pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else { throw Unsupported(reason: "page size \(raw)") }
        // Read version 1 (rollback journal) or 2 (WAL): a higher one SQLite would not read either.
        guard bytes[18] >= 1, bytes[18] <= 2, bytes[19] >= 1, bytes[19] <= 2 else { throw Unsupported(reason: "file format version") }
        let usable = pageSize - Int(bytes[20])
        guard usable >= 480 else { throw Unsupported(reason: "reserved bytes") }
        guard Self.be32(bytes, 56) == 1 else { throw Unsupported(reason: "text encoding is not UTF-8") }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= 0 else { throw Unsupported(reason: "cannot stat") }
        var pages = Int(info.st_size) / pageSize
        // The size in the header counts when it is valid (written by the same change as the
        // counter beside it); a page past the file's end is never read either way.
        let inHeader = Int(Self.be32(bytes, 28))
        if inHeader > 0, Self.be32(bytes, 24) == Self.be32(bytes, 92) { pages = min(pages, inHeader) }
        guard pages >= 1 else { throw Unsupported(reason: "empty file") }
        self.fd = fd
        header = Header(pageSize: pageSize, usable: usable, pageCount: pages)
        seen = [UInt64](repeating: 0, count: (pages + 64) / 64)
    }

    /// Walks the table b-tree rooted at page `root` in key order and hands every row's row id and
    /// the values of record columns `columns` (record order: the table's columns as stored) to
    /// `body`, whose buffer is valid only inside the call.
    mutating func rows(root: Int, columns: [Int], _ body: (Int64, UnsafeBufferPointer<Value>) throws(Unsupported) -> Void) throws(Unsupported) {
        let values = UnsafeMutableBufferPointer<Value>.allocate(capacity: max(columns.count, 1))
        values.initialize(repeating: .null)
        defer { values.deallocate() }
        let needed = (columns.max() ?? -1) + 1
        // The slot of each record column up to the last one asked (-1: not asked).
        let slots = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(needed, 1))
        slots.initialize(repeating: -1)
        defer { slots.deallocate() }
        for (slot, column) in columns.enumerated() where column >= 0 { slots[column] = slot }
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: header.pageSize * Self.runPages, alignment: 16)
        defer { page.deallocate() }
        let bytes = UnsafeBufferPointer(page.bindMemory(to: UInt8.self))
        let row = Row(slots: UnsafeBufferPointer(rebasing: slots[0..<needed]), values: values)
        // The pages to visit, in order: a stack of child lists (the deepest last).
        var stack: [(children: [Int], next: Int)] = [([root], 0)]
        while var top = stack.popLast() {
            guard top.next < top.children.count else { continue }
            // A run of consecutive page numbers among the children left, read by one call.
            var run = 1
            while run < Self.runPages, top.next + run < top.children.count, top.children[top.next + run] == top.children[top.next] + run { run += 1 }
            let first = top.children[top.next]
            for offset in 0..<run { try claim(first + offset) }
            let length = run * header.pageSize
            let got = Self.readFully(fd, UnsafeMutableRawBufferPointer(rebasing: page[0..<length]), offset: (first - 1) * header.pageSize)
            guard got == length else { throw Unsupported(reason: "page \(first) cannot be read") }
            top.next += run
            stack.append(top)
            for offset in 0..<run {
                let number = first + offset
                let start = offset * header.pageSize
                let type = bytes[start + (number == 1 ? 100 : 0)]
                if type == 0x0D {
                    try leaf(bytes, start: start, number: number, row: row, body)
                } else if type == 0x05 {
                    // An interior page: its children are visited before the rest of this run.
                    let children = try interior(bytes, start: start, number: number)
                    guard stack.count < 64 else { throw Unsupported(reason: "tree too deep") }
                    if offset + 1 < run {
                        // The rest of the run comes after the subtree: read again when its turn comes
                        // (each page is claimed once: undo the claims for the pages not yet walked).
                        for later in (number + 1)..<(first + run) { unclaim(later) }
                        stack[stack.count - 1].next -= run - offset - 1
                        stack.append((children, 0))
                        break
                    }
                    stack.append((children, 0))
                } else {
                    throw Unsupported(reason: "page \(number) is not a table b-tree page (type \(type))")
                }
            }
        }
    }

    /// Where a row's asked columns go: per record column up to the last asked, its slot (-1: not
    /// asked); the values by slot.
    struct Row {
        let slots: UnsafeBufferPointer<Int>
        let values: UnsafeMutableBufferPointer<Value>
    }

    /// Marks page `number` read; `Unsupported` when it is out of the file or was read before.
    private mutating func claim(_ number: Int) throws(Unsupported) {
        guard number >= 1, number <= header.pageCount else { throw Unsupported(reason: "page \(number) out of the file") }
        let (word, bit) = (number >> 6, UInt64(1) << UInt64(number & 63))
        guard seen[word] & bit == 0 else { throw Unsupported(reason: "page \(number) reached twice") }
        seen[word] |= bit
    }

    private mutating func unclaim(_ number: Int) {
        seen[number >> 6] &= ~(UInt64(1) << UInt64(number & 63))
    }

    /// The child pages of an interior page, left to right, the right-most last.
    private func interior(_ page: UnsafeBufferPointer<UInt8>, start: Int, number: Int) throws(Unsupported) -> [Int] {
        let headerAt = start + (number == 1 ? 100 : 0)
        let end = start + header.usable
        let cells = Int(page[headerAt + 3]) << 8 | Int(page[headerAt + 4])
        let pointers = headerAt + 12
        guard pointers + 2 * cells <= end else { throw Unsupported(reason: "page \(number): cell pointers past the page") }
        var children: [Int] = []
        children.reserveCapacity(cells + 1)
        for cell in 0..<cells {
            let at = start + (Int(page[pointers + 2 * cell]) << 8 | Int(page[pointers + 2 * cell + 1]))
            guard at >= pointers + 2 * cells, at + 4 <= end else { throw Unsupported(reason: "page \(number): a cell out of its page") }
            children.append(Int(Self.be32(page, at)))
        }
        children.append(Int(Self.be32(page, headerAt + 8)))
        return children
    }

    /// The rows of a leaf page.
    private mutating func leaf(
        _ bytes: UnsafeBufferPointer<UInt8>, start: Int, number: Int, row: Row, _ body: (Int64, UnsafeBufferPointer<Value>) throws(Unsupported) -> Void
    ) throws(Unsupported) {
        let headerAt = start + (number == 1 ? 100 : 0)
        let end = start + header.usable
        let cells = Int(bytes[headerAt + 3]) << 8 | Int(bytes[headerAt + 4])
        let pointers = headerAt + 8
        guard pointers + 2 * cells <= end else { throw Unsupported(reason: "page \(number): cell pointers past the page") }
        let usable = header.usable
        let maxLocal = usable - 35
        let minLocal = (usable - 12) * 32 / 255 - 23
        for cell in 0..<cells {
            var at = start + (Int(bytes[pointers + 2 * cell]) << 8 | Int(bytes[pointers + 2 * cell + 1]))
            guard at >= pointers + 2 * cells, at < end else { throw Unsupported(reason: "page \(number): a cell out of its page") }
            guard let (size, afterSize) = Self.varint(bytes, at, end), size >= 0, size <= 0x7fff_ffff else {
                throw Unsupported(reason: "page \(number): a cell's size")
            }
            at = afterSize
            guard let (rowid, afterRowid) = Self.varint(bytes, at, end) else { throw Unsupported(reason: "page \(number): a cell's row id") }
            at = afterRowid
            let payload = Int(size)
            var local = payload
            if payload > maxLocal {
                let spill = minLocal + (payload - minLocal) % (usable - 4)
                local = spill <= maxLocal ? spill : minLocal
            }
            guard at + local <= end, local <= payload else { throw Unsupported(reason: "page \(number): a cell out of its page") }
            if local == payload {
                try Self.record(UnsafeBufferPointer(rebasing: bytes[at..<(at + payload)]), row: row, page: number)
            } else {
                guard at + local + 4 <= end else { throw Unsupported(reason: "page \(number): an overflow pointer out of its page") }
                try overflow(local: UnsafeBufferPointer(rebasing: bytes[at..<(at + local)]), first: Int(Self.be32(bytes, at + local)), total: payload, page: number)
                try assembled.withUnsafeBufferPointer { (whole: UnsafeBufferPointer<UInt8>) throws(Unsupported) in
                    try Self.record(whole, row: row, page: number)
                }
            }
            try body(rowid, UnsafeBufferPointer(row.values))
        }
    }

    /// Puts a spilled record together in `assembled`: its local bytes, then the overflow chain.
    private mutating func overflow(local: UnsafeBufferPointer<UInt8>, first: Int, total: Int, page: Int) throws(Unsupported) {
        assembled.removeAll(keepingCapacity: true)
        assembled.append(contentsOf: local)
        var next = first
        var chunk = [UInt8](repeating: 0, count: header.pageSize)
        while assembled.count < total {
            // Overflow pages are claimed like the tree's: a chain into itself or into the tree stops.
            try claim(next)
            let got = chunk.withUnsafeMutableBytes { Self.readFully(fd, $0, offset: (next - 1) * header.pageSize) }
            guard got == header.pageSize else { throw Unsupported(reason: "overflow page \(next) cannot be read") }
            let take = min(header.usable - 4, total - assembled.count)
            assembled.append(contentsOf: chunk[4..<(4 + take)])
            next = Int(Self.be32(chunk, 0))
        }
        guard next == 0 else { throw Unsupported(reason: "page \(page): an overflow chain longer than its record") }
    }

    /// The values of the asked columns in one record.
    @inline(__always)
    private static func record(_ bytes: UnsafeBufferPointer<UInt8>, row: Row, page: Int) throws(Unsupported) {
        guard let (headerSize, first) = varint(bytes, 0, bytes.count), headerSize >= 1, headerSize <= Int64(bytes.count) else {
            throw Unsupported(reason: "page \(page): a record's header")
        }
        let headerEnd = Int(headerSize)
        var typeAt = first
        var body = headerEnd
        // Offsets and types of the columns up to the last one asked, read from the header in one pass.
        for column in 0..<row.slots.count {
            guard typeAt < headerEnd else { throw Unsupported(reason: "page \(page): a record without column \(column)") }
            let type: Int64
            if bytes[typeAt] < 0x80 {
                type = Int64(bytes[typeAt])
                typeAt += 1
            } else {
                guard let (long, next) = varint(bytes, typeAt, headerEnd) else { throw Unsupported(reason: "page \(page): a record's header") }
                type = long
                typeAt = next
            }
            let length: Int
            switch type {
            case 0, 8, 9: length = 0
            case 1, 2, 3, 4: length = Int(type)
            case 5: length = 6
            case 6, 7: length = 8
            case 10, 11: throw Unsupported(reason: "page \(page): a reserved serial type")
            default:
                guard type <= 0x7fff_ffff else { throw Unsupported(reason: "page \(page): a value's length") }
                length = (Int(type) - 12) / 2
            }
            guard body + length <= bytes.count else { throw Unsupported(reason: "page \(page): a value past its record") }
            let slot = row.slots[column]
            if slot >= 0 {
                switch type {
                case 0: row.values[slot] = .null
                case 8: row.values[slot] = .integer(0)
                case 9: row.values[slot] = .integer(1)
                case 1...6: row.values[slot] = .integer(integer(bytes, body, length))
                case 7: throw Unsupported(reason: "page \(page): a real number in column \(column)")
                default:
                    guard type & 1 == 1 else { throw Unsupported(reason: "page \(page): a blob in column \(column)") }
                    row.values[slot] = .text(UnsafeBufferPointer(rebasing: bytes[body..<(body + length)]))
                }
            }
            body += length
        }
    }

    /// A big-endian two's-complement integer of `length` bytes.
    @inline(__always)
    private static func integer(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int, _ length: Int) -> Int64 {
        var value = Int64(Int8(bitPattern: bytes[at]))
        for index in 1..<max(length, 1) { value = value << 8 | Int64(bytes[at + index]) }
        return value
    }

    /// An SQLite varint (1 – 9 bytes, big-endian, the ninth byte whole) at `at`, before `end`.
    @inline(__always)
    static func varint(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int, _ end: Int) -> (Int64, Int)? {
        var value: UInt64 = 0
        var index = at
        while index < end, index < at + 8 {
            let byte = bytes[index]
            value = value << 7 | UInt64(byte & 0x7f)
            index += 1
            if byte & 0x80 == 0 { return (Int64(bitPattern: value), index) }
        }
        guard index == at + 8, index < end else { return nil }
        value = value << 8 | UInt64(bytes[index])
        return (Int64(bitPattern: value), index + 1)
    }

    static func be32(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }

    static func be32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        bytes.withUnsafeBufferPointer { be32($0, at) }
    }

    /// Reads `buffer.count` bytes at `offset`, or fewer at the file's end; -1 on an error.
    static func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let step = pread(fd, base + done, buffer.count - done, off_t(offset + done))
            if step < 0, errno == EINTR { continue }
            if step < 0 { return -1 }
            if step == 0 { break }
            done += step
        }
        return done
    }
}
