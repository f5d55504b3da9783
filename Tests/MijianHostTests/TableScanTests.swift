#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// `TableScan`, the walk of a table b-tree straight from the file, against SQLite reading the
/// same file: the same rows, or a stop (`Unsupported`) after which SQLite reads it.
@Suite("table b-tree walk")
struct TableScanTests {
    /// One row as both read it: row id, then the columns asked (nil: NULL).
    struct Row: Equatable, CustomStringConvertible {
        let rowid: Int64
        let url: String?
        let numbers: [Int64?]
        var description: String { "\(rowid) \(url.map { String($0.prefix(40)) } ?? "NULL") \(numbers)" }
    }

    static let columns = ["id", "url", "n", "m", "last"]

    /// Databases of every page size with rows of every integer width, NULLs, text in many
    /// scripts, URLs long enough for overflow chains at every page size, deleted rows, and row
    /// ids far apart (python3's sqlite3: SQLite itself writes them).
    static func makeDatabases(_ directory: URL, sizes: [Int] = [512, 1024, 4096, 65536], rows: Int = 3000, bigEvery: Int = 110) throws -> [String] {
        let made = try TestSupport.run("/usr/bin/python3", ["-c", """
            import random, sqlite3, sys
            rng = random.Random(21)
            ints = [0, 1, -1, 127, 128, -129, 32767, 32768, 2**23, -2**23, 2**31, 2**47, -2**47, 2**62, -2**63, 2**63 - 1]
            sizes, count, big = [int(v) for v in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
            for size in sizes:
                path = f"{sys.argv[1]}/t{size}.sqlite"
                db = sqlite3.connect(path)
                db.execute(f"PRAGMA page_size={size}")
                db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, url LONGVARCHAR, title TEXT, n INTEGER, m INTEGER, last INTEGER)")
                rows = []
                for i in range(count):
                    kind = i % 11
                    if i % big == 2: url = "https://big.example/" + "y" * rng.randint(70000, 140000)
                    elif kind == 0: url = None
                    elif kind == 1: url = "https://" + "长" * rng.randint(1, 30) + ".example/" + "x" * rng.randint(0, 3 * size)
                    else: url = f"https://www.site{rng.randint(0, 300)}.example.com/page/{i}?q={i * 7}"
                    title = "标题 " * rng.randint(0, 40)
                    n = rng.choice(ints + [None, rng.randint(-10**6, 10**6)])
                    m = rng.choice(ints + [None])
                    last = None if i % 13 == 0 else 13_300_000_000_000_000 + i
                    rows.append((i * 3 + 1 if i < count * 5 // 6 else 2**40 + i, url, title, n, m, last))
                db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows)
                db.execute("DELETE FROM t WHERE id % 7 = 0")
                db.commit()
                db.close()
                print(path)
            """, directory.path, sizes.map(String.init).joined(separator: ","), String(rows), String(bigEvery)])
        try #require(made.status == 0, "\(made.stderr)")
        return made.stdout.split(separator: "\n").map(String.init)
    }

    /// The rows SQLite gives for the columns.
    static func sqliteRows(_ path: String, table: String = "t") throws -> [Row] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        let db = try HistoryDatabase(readingInPlace: fd, of: path)
        var rows: [Row] = []
        try db.rows("SELECT rowid, \(columns.joined(separator: ", ")) FROM \(table)") { row throws(MijianError) in
            rows.append(Row(
                rowid: row.int(0), url: row.isNull(2) ? nil : row.text(2),
                numbers: [1, 3, 4, 5].map { row.isNull(Int32($0)) ? nil : row.int(Int32($0)) }))
        }
        return rows
    }

    /// The rows the walk gives, or why it stopped.
    static func walkedRows(_ path: String, layout: HistoryDatabase.TableLayout) throws -> Result<[Row], TableScan.Unsupported> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        var rows: [Row] = []
        do throws(TableScan.Unsupported) {
            var scan = try TableScan(fd: fd)
            try scan.rows(root: layout.root, columns: layout.columns) { rowid, values throws(TableScan.Unsupported) in
                // As `collectHosts` reads them: text where a number is asked stops the walk.
                func number(_ slot: Int) throws(TableScan.Unsupported) -> Int64? {
                    try TableScan.integer(values, slot, rowid: rowid, isRowID: layout.isRowID[slot])
                }
                var url: String?
                if case .text(let bytes) = values[1] { url = String(decoding: bytes, as: UTF8.self) }
                rows.append(Row(rowid: rowid, url: url, numbers: [try number(0), try number(2), try number(3), try number(4)]))
            }
            return .success(rows)
        } catch {
            return .failure(error)
        }
    }

    static func layout(_ path: String, table: String = "t") throws -> HistoryDatabase.TableLayout? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        return try HistoryDatabase(readingInPlace: fd, of: path).layout(table, columns: columns)
    }

    @Test("every page size, integer width, NULL, long row (overflow chains) and deleted row: the same rows as SQLite, in the same order")
    func sameRowsAsSQLite() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-table-scan")
        defer { try? FileManager.default.removeItem(at: directory) }
        let paths = try Self.makeDatabases(directory)
        #expect(paths.count == 4)
        for path in paths {
            let expected = try Self.sqliteRows(path)
            let layout = try #require(try Self.layout(path))
            #expect(layout.columns == [0, 1, 3, 4, 5] && layout.isRowID == [true, false, false, false, false])
            let walked = try Self.walkedRows(path, layout: layout)
            guard case .success(let rows) = walked else {
                Issue.record("\(path): \(walked)")
                continue
            }
            #expect(expected.count > 2000, "\(path)")
            #expect(rows.count == expected.count, "\(path)")
            for (left, right) in zip(rows, expected) where left != right {
                Issue.record("\(path): walked \(left), SQLite \(right)")
                break
            }
            // The long rows were there to be read: some URL is longer than a page.
            #expect(rows.contains { ($0.url?.utf8.count ?? 0) > 70000 })
        }
    }

    @Test("tables the walk does not read are left to SQLite: WITHOUT ROWID, generated columns, UTF-16, old rows without an added column, a real where an integer is asked")
    func leftToSQLite() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-table-scan-other")
        defer { try? FileManager.default.removeItem(at: directory) }
        let made = try TestSupport.run("/usr/bin/python3", ["-c", """
            import sqlite3, sys
            d = sys.argv[1]
            db = sqlite3.connect(d + "/norowid.sqlite")
            db.execute("CREATE TABLE t (id INTEGER, url TEXT, n INTEGER, m INTEGER, last INTEGER, PRIMARY KEY (id)) WITHOUT ROWID")
            db.execute("INSERT INTO t VALUES (1, 'https://a.example/', 1, 1, 1)"); db.commit(); db.close()
            db = sqlite3.connect(d + "/generated.sqlite")
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, g INTEGER GENERATED ALWAYS AS (n * 2) VIRTUAL, url TEXT, n INTEGER, m INTEGER, last INTEGER)")
            db.execute("INSERT INTO t (url, n, m, last) VALUES ('https://a.example/', 1, 1, 1)"); db.commit(); db.close()
            db = sqlite3.connect(d + "/utf16.sqlite")
            db.execute("PRAGMA encoding = 'UTF-16le'")
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, url TEXT, n INTEGER, m INTEGER, last INTEGER)")
            db.execute("INSERT INTO t VALUES (1, 'https://一.example/', 1, 1, 1)"); db.commit(); db.close()
            db = sqlite3.connect(d + "/added.sqlite")
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, url TEXT, n INTEGER, m INTEGER)")
            db.execute("INSERT INTO t VALUES (1, 'https://a.example/', 1, 1)")
            db.execute("ALTER TABLE t ADD COLUMN last INTEGER DEFAULT 5")
            db.execute("INSERT INTO t VALUES (2, 'https://b.example/', 1, 1, 9)"); db.commit(); db.close()
            db = sqlite3.connect(d + "/real.sqlite")
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, url TEXT, n INTEGER, m INTEGER, last INTEGER)")
            db.execute("INSERT INTO t VALUES (1, 'https://a.example/', 1.5, 1, 1)"); db.commit(); db.close()
            """, directory.path])
        try #require(made.status == 0, "\(made.stderr)")
        let base = directory.path
        #expect(try Self.layout(base + "/norowid.sqlite") == nil)
        #expect(try Self.layout(base + "/generated.sqlite") == nil)
        let utf16 = open(base + "/utf16.sqlite", O_RDONLY | O_CLOEXEC)
        defer { close(utf16) }
        #expect(throws: TableScan.Unsupported(reason: "text encoding is not UTF-8")) { _ = try TableScan(fd: utf16) }
        for (name, reason) in [("added", "a record without column 4"), ("real", "a real number in column 2")] {
            let path = base + "/\(name).sqlite"
            let layout = try #require(try Self.layout(path))
            guard case .failure(let stop) = try Self.walkedRows(path, layout: layout) else {
                Issue.record("\(name) was walked")
                continue
            }
            #expect(stop.reason.hasSuffix(reason), "\(stop.reason)")
            // SQLite reads it all the same (the default for the old row; the real as it is).
            #expect(try Self.sqliteRows(path).count >= 1)
        }
    }

    @Test("a damaged file: each of 3,000 single-byte changes either stops the walk or gives what SQLite gives; a page reached twice stops it")
    func damagedFiles() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-table-scan-damage")
        defer { try? FileManager.default.removeItem(at: directory) }
        // Small enough to write 3,000 times: 400 rows on 512-byte pages, overflow chains of one to three pages.
        let path = try #require(try Self.makeDatabases(directory, sizes: [512], rows: 400, bigEvery: 1_000_000).first)
        let layout = try #require(try Self.layout(path))
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let damaged = directory.path + "/damaged.sqlite"
        var generator = SeededRandom(seed: 26)
        var (stopped, same, sqliteFailed) = (0, 0, 0)
        for _ in 0..<3000 {
            var bytes = original
            let at = Int.random(in: 0..<bytes.count, using: &generator)
            bytes[at] ^= UInt8.random(in: 1...255, using: &generator)
            try bytes.write(to: URL(fileURLWithPath: damaged))
            let walked = try Self.walkedRows(damaged, layout: layout)
            guard case .success(let rows) = walked else {
                stopped += 1
                continue
            }
            guard let expected = try? Self.sqliteRows(damaged) else {
                sqliteFailed += 1
                continue
            }
            if rows == expected {
                same += 1
            } else {
                let first = zip(rows, expected).first { $0 != $1 }.map { "walked \($0.0), SQLite \($0.1)" } ?? ""
                Issue.record("byte \(at) changed: the walk and SQLite differ (\(rows.count) / \(expected.count) rows): \(first)")
            }
        }
        // Most changes fall in bytes both read alike (titles, URLs, free space); some stop the walk.
        #expect(stopped > 50 && same > 1000, "stopped \(stopped), same \(same), SQLite failed \(sqliteFailed)")
        // A child pointer aimed at a page already read: the walk stops rather than read it twice.
        var bytes = original
        let pageSize = 512
        let root = layout.root
        let rootPage = (root - 1) * pageSize
        try #require(bytes[rootPage] == 0x05)
        let rightmost = bytes[(rootPage + 8)..<(rootPage + 12)]
        let firstCell = Int(bytes[rootPage + 12]) << 8 | Int(bytes[rootPage + 13])
        bytes.replaceSubrange((rootPage + firstCell)..<(rootPage + firstCell + 4), with: rightmost)
        try bytes.write(to: URL(fileURLWithPath: damaged))
        guard case .failure(let stop) = try Self.walkedRows(damaged, layout: layout) else {
            Issue.record("a page reached twice was walked")
            return
        }
        #expect(stop.reason.hasSuffix("reached twice"), "\(stop.reason)")
    }

    @Test("a history whose walk stops (text where a count belongs) is read by SQLite in place: the same hosts as SQLite gives from a copy")
    func stoppedWalkReadBySQLite() throws {
        let tree = try TestSupport.hostCopy("browser-chromium-public")
        defer { try? FileManager.default.removeItem(at: tree.deletingLastPathComponent()) }
        let history = tree.path + "/home/li/.config/chromium/Default/History"
        let made = try TestSupport.run("/usr/bin/python3", ["-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("UPDATE urls SET visit_count = 'many' WHERE id = (SELECT MIN(id) FROM urls WHERE url LIKE 'http%')")
            db.commit()
            print(db.execute("SELECT typeof(visit_count) FROM urls WHERE id = (SELECT MIN(id) FROM urls WHERE url LIKE 'http%')").fetchone()[0])
            """, history])
        try #require(made.status == 0 && made.stdout.hasPrefix("text"), "\(made.stderr)")
        let fd = open(history, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        let db = try HistoryDatabase(readingInPlace: fd, of: history)
        let layout = try #require(try db.layout("urls", columns: ["url", "visit_count", "typed_count", "id", "last_visit_time"]))
        var scan = try #require(db.tableScan())
        #expect(throws: TableScan.Unsupported(reason: "text where a number is asked")) {
            try scan.rows(root: layout.root, columns: layout.columns) { rowid, values throws(TableScan.Unsupported) in
                _ = try TableScan.integer(values, 1, rowid: rowid, isRowID: layout.isRowID[1])
            }
        }
        let inPlace = try #require(BrowserHistoryProbe.observe(root: HostRoot(path: tree.path), logger: FixtureHosts.logger).profiles.first)
        #expect(inPlace.readInPlace && inPlace.error == nil && !inPlace.hosts.isEmpty)
        // Said in the facts (and the finding's evidence): not walked, and why the walk stopped.
        #expect(!inPlace.urlTableWalked && inPlace.urlTableWalkStopped == "text where a number is asked")
        let fixture = try #require(BrowserHistoryProbe.observe(root: FixtureHosts.root("browser-chromium-public"), logger: FixtureHosts.logger).profiles.first)
        #expect(fixture.urlTableWalked && fixture.urlTableWalkStopped == nil)
        // A journal with bytes in it: copied and read by SQLite alone.
        #expect(FileManager.default.createFile(atPath: history + "-journal", contents: Data(count: 512)))
        let copied = try #require(BrowserHistoryProbe.observe(root: HostRoot(path: tree.path), logger: FixtureHosts.logger).profiles.first)
        #expect(!copied.readInPlace && !copied.urlTableWalked && copied.urlTableWalkStopped == nil)
        #expect(inPlace.hosts == copied.hosts && inPlace.internalEntries == copied.internalEntries && inPlace.totalVisits == copied.totalVisits)
    }
}
