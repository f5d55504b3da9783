import Foundation
import GRDB
@testable import MijianCollector
import Testing

/// The writer binds its values straight to SQLite (`DirectBinding`): what it stores must be what
/// GRDB's arguments stored, and a mistake must be an error, never a value left from a previous run.
@Suite("Values bound directly to the writer's statements")
struct DirectBindingTests {
    func database() throws -> DatabaseQueue {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (a TEXT, b INTEGER, c BLOB, d TEXT NOT NULL)")
        }
        return queue
    }

    @Test func valuesArriveAsTheirTypesAndBytes() throws {
        let queue = try database()
        let texts = ["", "ws-01", "某局 张三", "e\u{301}", String(repeating: "長", count: 5_000)]
        let blob: [UInt8] = Array(0...255) + [0, 0]
        try queue.write { db in
            func insert(_ index: Int, _ text: String, d: String?) throws {
                var insert = try DirectBinding(db.cachedStatement(sql: "INSERT INTO t (a, b, c, d) VALUES (?, ?, ?, ?)"), db)
                try insert.bind(text)
                try insert.bind(Int64.min + Int64(index))
                try insert.bind(blob: index == 0 ? [] : blob)
                try insert.bind(d)
                try insert.execute()
            }
            for (index, text) in texts.enumerated() {
                if index.isMultiple(of: 2) {
                    // NULL into a NOT NULL column: SQLite's own error; GRDB drops the statement that
                    // failed from its cache, so the next one is fresh (a reset of the failed one would
                    // repeat its error).
                    #expect(throws: DatabaseError.self) { try insert(index, text, d: nil) }
                }
                try insert(index, text, d: "d")
            }
        }
        let rows = try queue.read { db in try Row.fetchAll(db, sql: "SELECT a, typeof(a), b, c, typeof(c), d FROM t ORDER BY rowid") }
        #expect(rows.map { $0[0] as String } == texts)
        #expect(rows.allSatisfy { ($0[1] as String) == "text" && ($0[4] as String) == "blob" })
        #expect(rows.map { $0[2] as Int64 } == (0..<Int64(texts.count)).map { Int64.min + $0 })
        // An empty blob is a blob of no bytes, not NULL; the others every byte, the zeros included.
        #expect(rows.map { ($0[3] as Data).count } == [0] + Array(repeating: blob.count, count: texts.count - 1))
        #expect(Array(rows[1][3] as Data) == blob)
    }

    @Test func nothingIsLeftFromThePreviousRun() throws {
        let queue = try database()
        try queue.write { db in
            let sql = "INSERT INTO t (a, b, c, d) VALUES (?, ?, ?, ?)"
            var first = try DirectBinding(db.cachedStatement(sql: sql), db)
            try first.bind("first")
            try first.bind(1)
            try first.bind(blob: [1])
            try first.bind("kept?")
            try first.execute()
            // The same cached statement, only its first value bound: refused before it runs,
            // never run with the fourth value of the previous run.
            var second = try DirectBinding(db.cachedStatement(sql: sql), db)
            try second.bind("second")
            #expect(throws: DatabaseError.self) { try second.execute() }
            // A value past the statement's parameters is SQLite's range error, not a crash; none bound runs nothing.
            var third = try DirectBinding(db.cachedStatement(sql: sql), db)
            for text in ["a", "b", "c", "d"] { try third.bind(text) }
            #expect(throws: DatabaseError.self) { try third.bind("no such parameter") }
            let fourth = try DirectBinding(db.cachedStatement(sql: sql), db)
            #expect(throws: DatabaseError.self) { try fourth.execute() }
        }
        let values = try queue.read { db in try String.fetchAll(db, sql: "SELECT a FROM t") }
        #expect(values == ["first"])
    }

    @Test func theSameCountsAsTheArgumentsStored() throws {
        // The rule counts' statement, bound both ways into two tables: the same rows.
        let queue = try DatabaseQueue()
        let rules: [(String, Int)] = (0..<150).map { ("rule.\($0 % 50)-規則", $0) }
        try queue.write { db in
            for table in ["direct", "arguments"] {
                try db.execute(sql: "CREATE TABLE \(table) (host TEXT NOT NULL, rule TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(host, rule)) WITHOUT ROWID")
            }
            for chunk in stride(from: 0, to: rules.count, by: 50) {
                let rows = rules[chunk..<chunk + 50]
                let values = Array(repeating: "(?1, ?, ?)", count: rows.count).joined(separator: ", ")
                let upsert = "VALUES \(values) ON CONFLICT(host, rule) DO UPDATE SET n = n + excluded.n"
                var direct = try DirectBinding(db.cachedStatement(sql: "INSERT INTO direct (host, rule, n) \(upsert)"), db)
                try direct.bind("host-a")
                var arguments: [(any DatabaseValueConvertible)?] = ["host-a"]
                for (rule, count) in rows {
                    try direct.bind(rule)
                    try direct.bind(count)
                    arguments += [rule, count]
                }
                try direct.execute()
                try db.cachedStatement(sql: "INSERT INTO arguments (host, rule, n) \(upsert)").execute(arguments: StatementArguments(arguments))
            }
        }
        let (direct, arguments) = try queue.read { db in
            (try Row.fetchAll(db, sql: "SELECT * FROM direct ORDER BY rule"), try Row.fetchAll(db, sql: "SELECT * FROM arguments ORDER BY rule"))
        }
        #expect(direct.count == 50)
        #expect(direct == arguments)
    }
}
