#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import MijianCore

extension MijianError.Code {
    /// SQLite could not open or read a database (corrupt, not a database, locked copy).
    public static let database = MijianError.Code("database")
}

/// One SQLite connection to a private copy of a browser database. It owns the `sqlite3` handle
/// and closes it in `deinit`; statements never leave `rows`.
final class HistoryDatabase {
    private let handle: OpaquePointer
    /// The user's database the copy was made of (host path), for messages: the copy's own
    /// name changes from one audit to the next and means nothing to a reader.
    let path: String
    /// The user's database file when it is read in place (closed with the connection).
    private let descriptor: Int32?
    /// The row ids `mijian_judged(id)` is true for.
    var judgedIDs: IDBitSet {
        get { judged.ids }
        set { judged.ids = newValue }
    }
    private let judged = IDSet()

    /// The set behind `mijian_judged`, handed to SQLite as the function's data.
    final class IDSet {
        var ids = IDBitSet()
    }

    /// Opens the copy at `path`. The copy is ours, in a directory only we can enter: SQLite may
    /// write to it (to roll a hot journal back or rebuild the WAL index it needs before it can
    /// read), which it could not do read-only. The connection is then made query-only, and the
    /// user's files are never opened by SQLite at all.
    convenience init(copyAt copy: String, of path: String) throws(MijianError) {
        try self.init(copy, flags: SQLITE_OPEN_READWRITE, vfs: nil, of: path, descriptor: nil)
    }

    /// Reads the user's database in place from `descriptor` (opened through `HostRoot`, owned by
    /// the connection from here on): SQLite reads it through `ReadOnlyVFS`, only the pages its
    /// queries need, and can neither write, lock nor open any file by name.
    convenience init(readingInPlace descriptor: Int32, of path: String) throws(MijianError) {
        guard ReadOnlyVFS.registered == SQLITE_OK else {
            close(descriptor)
            throw MijianError(.database, "SQLite refused the read-only VFS (code \(ReadOnlyVFS.registered)) needed to read \(path)", path: path)
        }
        try self.init(ReadOnlyVFS.uri(fd: descriptor), flags: SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, vfs: ReadOnlyVFS.name, of: path, descriptor: descriptor)
    }

    private init(_ filename: String, flags: Int32, vfs: String?, of path: String, descriptor: Int32?) throws(MijianError) {
        var opened: OpaquePointer?
        let code = sqlite3_open_v2(filename, &opened, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE, vfs)
        guard code == SQLITE_OK, let opened else {
            let message = opened.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            if let opened { sqlite3_close_v2(opened) }
            if let descriptor { close(descriptor) }
            throw MijianError(.database, "SQLite cannot open \(descriptor == nil ? "the copy of " : "")\(path): \(message)", path: path)
        }
        handle = opened
        self.path = path
        self.descriptor = descriptor
        sqlite3_extended_result_codes(handle, 1)
        // A copy taken while the browser wrote may be damaged: a bound on time, not a hang.
        sqlite3_busy_timeout(handle, 1000)
        try execute("PRAGMA query_only = ON")
        // Sorts for GROUP BY stay in memory: no temporary file written beside the copy.
        try execute("PRAGMA temp_store = MEMORY")
        // A small page cache: the scans read each page once, the lookups reuse only the b-trees' upper
        // pages; a large one is memory taken fresh from the system for every database.
        try execute("PRAGMA cache_size = -512")
        try registerURLFunctions()
    }

    deinit {
        sqlite3_close_v2(handle)
        if let descriptor { close(descriptor) }
    }

    /// Runs a statement that returns no rows.
    func execute(_ sql: String) throws(MijianError) {
        try rows(sql) { _ throws(MijianError) in }
    }

    /// Runs `sql` with `bindings` (text) and hands each row to `body`; the row is valid only
    /// inside the call.
    func rows(_ sql: String, _ bindings: [String] = [], _ body: (Row) throws(MijianError) -> Void) throws(MijianError) {
        var statement: OpaquePointer?
        let prepared = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard prepared == SQLITE_OK, let statement else { throw failure(prepared, "cannot prepare a query") }
        defer { sqlite3_finalize(statement) }
        for (index, value) in bindings.enumerated() {
            let bound = mijian_sqlite3_bind_text_transient(statement, Int32(index + 1), value, -1)
            guard bound == SQLITE_OK else { throw failure(bound, "cannot bind a value") }
        }
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { return }
            guard step == SQLITE_ROW else { throw failure(step, "cannot read") }
            try body(Row(statement: statement))
        }
    }

    /// The names of the tables in the schema.
    func tableNames() throws(MijianError) -> Set<String> {
        var names: Set<String> = []
        try rows("SELECT name FROM sqlite_master WHERE type = 'table'") { row throws(MijianError) in names.insert(row.text(0)) }
        return names
    }

    /// Whether a table has a column.
    func hasColumn(_ table: String, _ column: String) throws(MijianError) -> Bool {
        var found = false
        try rows("SELECT name FROM pragma_table_info(?)", [table]) { row throws(MijianError) in if row.text(0) == column { found = true } }
        return found
    }

    /// Where a table's columns are in its records, for reading it with `TableScan`.
    struct TableLayout {
        /// The table b-tree's root page.
        let root: Int
        /// The record position of each column asked, in the order asked.
        let columns: [Int]
        /// Whether the column at each position asked is the row id under another name (`INTEGER
        /// PRIMARY KEY`): SQLite reads it as the row id, never from the record.
        let isRowID: [Bool]
    }

    /// The walk over the user's file for a database read in place; nil for a copy (SQLite must
    /// apply its WAL or journal) or a file the walk does not read (`TableScan.Unsupported`).
    func tableScan() -> TableScan? {
        guard let descriptor else { return nil }
        return try? TableScan(fd: descriptor)
    }

    /// The layout of `table` for `columns`; nil when its records are not simply its columns in
    /// order (generated columns, `WITHOUT ROWID`, a column missing), so only SQLite reads it.
    func layout(_ table: String, columns names: [String]) throws(MijianError) -> TableLayout? {
        var root: Int?
        var sql = ""
        try rows("SELECT rootpage, sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]) { row throws(MijianError) in
            root = Int(row.int(0))
            sql = row.text(1)
        }
        guard let root, root > 1 else { return nil }
        let declaration = sql.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard !declaration.contains("without rowid") else { return nil }
        var columns: [(name: String, type: String, primaryKey: Int64, hidden: Int64)] = []
        try rows("SELECT name, type, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid", [table]) { row throws(MijianError) in
            columns.append((row.text(0), row.text(1), row.int(2), row.int(3)))
        }
        // A generated column is not in the record: the positions would shift.
        guard !columns.isEmpty, !columns.contains(where: { $0.hidden != 0 }) else { return nil }
        let keys = columns.filter { $0.primaryKey > 0 }
        // `INTEGER PRIMARY KEY` is the row id, but for the quirk `INTEGER PRIMARY KEY DESC`.
        let alias = keys.count == 1 && keys[0].type.uppercased() == "INTEGER" && !declaration.contains("primary key desc") ? keys[0].name : nil
        var positions: [Int] = []
        var isRowID: [Bool] = []
        for name in names {
            guard let position = columns.firstIndex(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
            positions.append(position)
            isRowID.append(alias.map { $0.lowercased() == name.lowercased() } ?? false)
        }
        return TableLayout(root: root, columns: positions, isRowID: isRowID)
    }

    private func failure(_ code: Int32, _ what: String) -> MijianError {
        let message = String(cString: sqlite3_errmsg(handle))
        return MijianError(.database, "SQLite \(what) in \(descriptor == nil ? "the copy of " : "")\(path): \(message) (code \(code))", path: path)
    }

    /// One row of a result.
    struct Row {
        let statement: OpaquePointer

        /// Column `index` as text ("" for NULL).
        func text(_ index: Int32) -> String {
            guard let bytes = sqlite3_column_text(statement, index) else { return "" }
            let count = Int(sqlite3_column_bytes(statement, index))
            return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
        }

        /// Column `index` as an integer (0 for NULL).
        func int(_ index: Int32) -> Int64 { sqlite3_column_int64(statement, index) }

        /// Column `index`'s text as SQLite holds it, valid until the next step; nil for NULL.
        func bytes(_ index: Int32) -> UnsafeBufferPointer<UInt8>? {
            guard let bytes = sqlite3_column_text(statement, index) else { return nil }
            return UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(statement, index)))
        }

        /// Whether column `index` is NULL.
        func isNull(_ index: Int32) -> Bool { sqlite3_column_type(statement, index) == SQLITE_NULL }
    }

    /// `mijian_host(url)`: the host of a URL that is a visit (see `VisitedURL`), or NULL; the
    /// grouping key the queries aggregate on, so rows never come to Swift one by one.
    private func registerURLFunctions() throws(MijianError) {
        let flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS
        let code = sqlite3_create_function_v2(handle, "mijian_host", 1, flags, nil, { context, count, values in
            guard count == 1, let values, let value = values[0], let bytes = sqlite3_value_text(value) else {
                sqlite3_result_null(context)
                return
            }
            let length = Int(sqlite3_value_bytes(value))
            guard let host = VisitedURL.host(UnsafeBufferPointer(start: bytes, count: length)) else {
                sqlite3_result_null(context)
                return
            }
            host.withCString { mijian_sqlite3_result_text_transient(context, $0, -1) }
        }, nil, nil, nil)
        guard code == SQLITE_OK else { throw failure(code, "cannot register mijian_host") }
        let set = sqlite3_create_function_v2(handle, "mijian_judged", 1, flags, Unmanaged.passUnretained(judged).toOpaque(), { context, count, values in
            guard count == 1, let values, let value = values[0], let data = sqlite3_user_data(context) else {
                sqlite3_result_null(context)
                return
            }
            let judged = Unmanaged<IDSet>.fromOpaque(data).takeUnretainedValue()
            sqlite3_result_int(context, judged.ids.contains(sqlite3_value_int64(value)) ? 1 : 0)
        }, nil, nil, nil)
        guard set == SQLITE_OK else { throw failure(set, "cannot register mijian_judged") }
    }
}

/// What in a history URL is a visit: a scheme that fetches from a host. `file:`, `about:`,
/// `chrome:`, extension pages, `data:`, `blob:`, `javascript:` and the browsers' own pages are not.
enum VisitedURL {
    /// Schemes of pages the browser makes itself or reads locally: never a visit.
    static let internalSchemes: Set<String> = [
        "file", "about", "chrome", "chrome-extension", "chrome-search", "chrome-untrusted", "chrome-native", "devtools",
        "edge", "brave", "vivaldi", "opera", "browser", "moz-extension", "resource", "place", "moz-icon", "moz-page-thumb",
        "data", "blob", "javascript", "view-source", "mailto", "tel", "filesystem", "isolated-app", "moz-safe-about",
    ]

    /// The lower-case host of a URL whose scheme is a visit (userinfo, port and IPv6 brackets
    /// dropped); nil for internal schemes, URLs without an authority, and empty hosts.
    static func host(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard let range = hostRange(bytes) else { return nil }
        return String(decoding: bytes[range].map(lower), as: UTF8.self)
    }

    /// An ASCII letter in lower case; any other byte as it is.
    @inline(__always)
    static func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte }

    /// Where in a URL its host is (see `host`), without making a string of it.
    static func hostRange(_ bytes: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        // Nearly every row begins `https://` or `http://` in lower case: eight bytes compared at once.
        if bytes.count >= 8, let base = bytes.baseAddress {
            let word = UInt64(littleEndian: UnsafeRawPointer(base).loadUnaligned(as: UInt64.self))
            if word == httpsPrefix { return authority(bytes, from: 8) }
            if word & 0x00ff_ffff_ffff_ffff == httpPrefix { return authority(bytes, from: 7) }
        }
        var index = 0
        while index < bytes.count, bytes[index] != UInt8(ascii: ":") {
            let byte = bytes[index]
            let isSchemeByte = (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39)
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            guard isSchemeByte, index < 32 else { return nil }
            index += 1
        }
        guard index < bytes.count, index > 0 else { return nil }
        // http and https, nearly every row, are visits; any other scheme is looked up by name.
        let isHTTP = (index == 4 || index == 5) && lower(bytes[0]) == UInt8(ascii: "h") && lower(bytes[1]) == UInt8(ascii: "t")
            && lower(bytes[2]) == UInt8(ascii: "t") && lower(bytes[3]) == UInt8(ascii: "p") && (index == 4 || lower(bytes[4]) == UInt8(ascii: "s"))
        if !isHTTP, internalSchemes.contains(String(decoding: bytes[0..<index].map(lower), as: UTF8.self)) { return nil }
        index += 1
        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "/"), bytes[index + 1] == UInt8(ascii: "/") else { return nil }
        return authority(bytes, from: index + 2)
    }

    /// `https://` and `http://` as the little-endian words of a URL's first eight bytes.
    static let httpsPrefix = prefixWord("https://")
    static let httpPrefix = prefixWord("http://")

    static func prefixWord(_ text: String) -> UInt64 {
        var word: UInt64 = 0
        for (offset, byte) in text.utf8.enumerated() { word |= UInt64(byte) << UInt64(offset * 8) }
        return word
    }

    /// The host in the authority that starts at `index` (after `//`).
    @inline(__always)
    static func authority(_ bytes: UnsafeBufferPointer<UInt8>, from index: Int) -> Range<Int>? {
        // One pass over the authority: its end, the last @ (userinfo@host: the host starts after
        // it), and after that @ the first colon (the port) and the first ] (an IPv6 literal's end).
        var end = index
        var start = index
        var colon = -1
        var close = -1
        while end < bytes.count {
            let byte = bytes[end]
            // Lower-case letters, most of a host, are none of the bytes looked for.
            if byte >= 0x61 {
                end += 1
                continue
            }
            if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") { break }
            if byte == UInt8(ascii: "@") {
                start = end + 1
                colon = -1
                close = -1
            } else if byte == UInt8(ascii: ":") {
                if colon < 0 { colon = end }
            } else if byte == UInt8(ascii: "]") {
                if close < 0 { close = end }
            }
            end += 1
        }
        var stop = end
        if start < end, bytes[start] == UInt8(ascii: "[") {
            guard close > start else { return nil }
            start += 1
            stop = close
        } else if colon >= 0 {
            stop = colon
        }
        while stop > start, bytes[stop - 1] == UInt8(ascii: ".") { stop -= 1 }
        guard stop > start else { return nil }
        return start..<stop
    }

    /// The host of a URL given as a string.
    static func host(_ url: String) -> String? {
        var url = url
        return url.withUTF8 { host($0) }
    }
}
