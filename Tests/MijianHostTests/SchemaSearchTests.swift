#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// The search by schema walks each directory once, opening entries relative to the directory's
/// descriptor: it finds what the walk by paths found, stays inside the root, and says what it
/// could not read.
@Suite struct SchemaSearchTests {
    static let database = TestSupport.repositoryRoot
        .appendingPathComponent("Tests/Fixtures/hosts/browser-domestic-schema/home/wu/.local/share/SecWeb/UserData/Main/History")

    /// A root with /etc/passwd naming wu, and wu's home.
    static func tree(_ label: String) throws -> URL {
        let tree = try TestSupport.temporaryDirectory(label)
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("etc"), withIntermediateDirectories: true)
        try Data("wu:x:1000:1000:wu:/home/wu:/bin/bash\n".utf8).write(to: tree.appendingPathComponent("etc/passwd"))
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("home/wu"), withIntermediateDirectories: true)
        return tree
    }

    static func place(_ tree: URL, _ relative: String) throws {
        let target = tree.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: database, to: target)
    }

    @Test("a history database under any name is found by its schema, however deep within the bound, and many other files are not")
    func findsUnderAnyName() throws {
        let tree = try Self.tree("mijian-schema-names")
        defer { try? FileManager.default.removeItem(at: tree) }
        try Self.place(tree, "home/wu/.local/share/SecWeb/a/b/c/d/store.bin")
        // Files that are no database: text of any size, a 4096-byte file of zeros, a short SQLite header.
        let noise = tree.appendingPathComponent("home/wu/.config/tool")
        try FileManager.default.createDirectory(at: noise, withIntermediateDirectories: true)
        for index in 0..<40 { try Data("setting=\(index)\n".utf8).write(to: noise.appendingPathComponent("file\(index).conf")) }
        try Data(count: 4096).write(to: noise.appendingPathComponent("zeros"))
        try Data("SQLite format 3\0".utf8).write(to: noise.appendingPathComponent("header-only"))
        let facts = BrowserHistoryProbe.observe(root: HostRoot(path: tree.path), logger: FixtureHosts.logger)
        #expect(facts.profiles.map(\.database) == ["/home/wu/.local/share/SecWeb/a/b/c/d/store.bin"])
        #expect(facts.profiles.first?.family == .chromium && facts.profiles.first?.discovery == .schema)
        let home = try #require(facts.homes.first { $0.user == "wu" })
        #expect(home.sqliteFiles == 1 && home.truncated == nil)
        #expect(home.examined >= 46)
    }

    @Test("a git repository's object store is not searched, as .git is not; the rest of the repository is")
    func gitObjectStoreIsSkipped() throws {
        let tree = try Self.tree("mijian-schema-git")
        defer { try? FileManager.default.removeItem(at: tree) }
        let repository = "home/wu/.cache/tool/repositories/lib-1a2b3c4d"
        for directory in ["objects/pack", "refs/heads", "hooks"] {
            try FileManager.default.createDirectory(at: tree.appendingPathComponent(repository + "/" + directory), withIntermediateDirectories: true)
        }
        try Data("ref: refs/heads/main\n".utf8).write(to: tree.appendingPathComponent(repository + "/HEAD"))
        try Self.place(tree, repository + "/objects/4f/History")
        try Self.place(tree, repository + "/hooks/History")
        let facts = BrowserHistoryProbe.observe(root: HostRoot(path: tree.path), logger: FixtureHosts.logger)
        #expect(facts.profiles.map(\.database) == ["/\(repository)/hooks/History"])
        // Without HEAD it is no repository, and its objects directory is searched like any other.
        try FileManager.default.removeItem(at: tree.appendingPathComponent(repository + "/HEAD"))
        let plain = BrowserHistoryProbe.observe(root: HostRoot(path: tree.path), logger: FixtureHosts.logger)
        #expect(Set(plain.profiles.compactMap(\.database)) == ["/\(repository)/hooks/History", "/\(repository)/objects/4f/History"])
    }

    @Test("a History whose size is no whole number of pages is still opened, and reported as unreadable")
    func truncatedHistoryIsReported() throws {
        let tree = try Self.tree("mijian-schema-torn")
        defer { try? FileManager.default.removeItem(at: tree) }
        let torn = tree.appendingPathComponent("home/wu/.local/share/Other/History")
        try FileManager.default.createDirectory(at: torn.deletingLastPathComponent(), withIntermediateDirectories: true)
        let bytes = try Data(contentsOf: Self.database)
        try bytes.prefix(1000).write(to: torn)
        let facts = BrowserHistoryProbe.observe(root: HostRoot(path: tree.path), logger: FixtureHosts.logger)
        let profile = try #require(facts.profiles.first)
        #expect(facts.profiles.count == 1 && profile.database == "/home/wu/.local/share/Other/History")
        #expect(profile.error != nil)
        // Under another name the same torn file is no database SQLite wrote, and not the audit's business.
        try FileManager.default.moveItem(at: torn, to: torn.deletingLastPathComponent().appendingPathComponent("cache.db"))
        #expect(BrowserHistoryProbe.observe(root: HostRoot(path: tree.path), logger: FixtureHosts.logger).profiles.isEmpty)
    }

    @Test("links are never followed by the search: a directory link out of the root, or to another place in it, is not walked")
    func linksAreNotWalked() throws {
        let tree = try Self.tree("mijian-schema-links")
        defer { try? FileManager.default.removeItem(at: tree) }
        let outside = try TestSupport.temporaryDirectory("mijian-schema-outside")
        defer { try? FileManager.default.removeItem(at: outside) }
        try FileManager.default.copyItem(at: Self.database, to: outside.appendingPathComponent("History"))
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("home/wu/.local"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: tree.path + "/home/wu/.local/out", withDestinationPath: outside.path)
        try FileManager.default.createSymbolicLink(atPath: tree.path + "/home/wu/.local/db", withDestinationPath: outside.path + "/History")
        let facts = BrowserHistoryProbe.observe(root: HostRoot(path: tree.path), logger: FixtureHosts.logger)
        #expect(facts.profiles.isEmpty)
        #expect(facts.homes.first { $0.user == "wu" }?.sqliteFiles == 0)
    }

    @Test("a directory the search cannot enter is an error source, not a silent skip; the rest is still searched")
    func unreadableDirectoryIsNoted() throws {
        let tree = try Self.tree("mijian-schema-refused")
        defer { try? FileManager.default.removeItem(at: tree) }
        try Self.place(tree, "home/wu/.local/share/SecWeb/Main/History")
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("home/wu/.config/locked"), withIntermediateDirectories: true)
        let root = HostRoot(path: tree.path).refusing("/home/wu/.config/locked")
        let facts = BrowserHistoryProbe.observe(root: root, logger: FixtureHosts.logger)
        #expect(facts.profiles.map(\.database) == ["/home/wu/.local/share/SecWeb/Main/History"])
        let source = try #require(facts.sources.first { $0.path == "/home/wu/.config/locked" })
        #expect(source.errorReason != nil)
        #expect(root.refusedCalls >= 1)
    }

    @Test("the search opens what it examines relative to the directory it read, and names every path it opened")
    func opensOnlyWhatItExamines() throws {
        let tree = try Self.tree("mijian-schema-log")
        defer { try? FileManager.default.removeItem(at: tree) }
        try Self.place(tree, "home/wu/.local/share/SecWeb/Main/History")
        try Data("text\n".utf8).write(to: tree.appendingPathComponent("home/wu/.local/share/SecWeb/Main/notes.txt"))
        let log = HostAccessLog()
        let facts = BrowserHistoryProbe.observe(root: HostRoot(path: tree.path).recording(into: log), logger: FixtureHosts.logger)
        #expect(facts.profiles.count == 1)
        let content = log.contentPaths
        #expect(content.contains("/home/wu/.local/share/SecWeb/Main"))
        #expect(content.contains("/home/wu/.local/share/SecWeb/Main/History"))
        // A short text file is looked at (its size) but never opened.
        #expect(log.paths.contains("/home/wu/.local/share/SecWeb/Main/notes.txt"))
        #expect(!content.contains("/home/wu/.local/share/SecWeb/Main/notes.txt"))
    }

    @Test("normalise gives back a normal path unchanged and collapses every other as before")
    func normalise() {
        let expected: [(String, String)] = [
            ("/", "/"), ("//", "/"), ("/etc", "/etc"), ("/etc/", "/etc"), ("/etc//passwd", "/etc/passwd"), ("/etc/./passwd", "/etc/passwd"),
            ("/etc/../etc/passwd", "/etc/passwd"), ("/..", "/"), ("/.", "/"), ("/...", "/..."), ("/.hidden", "/.hidden"), ("/a/..b", "/a/..b"),
            ("/a/b.", "/a/b."), ("/a/.b/..c/...", "/a/.b/..c/..."), ("relative/path", "/relative/path"), ("", "/"), ("/a/b/..", "/a"),
            ("/a/b/.", "/a/b"), ("/a//", "/a"), ("/ü/日本", "/ü/日本"), ("/home/wu/.config/chromium/Default/History", "/home/wu/.config/chromium/Default/History"),
        ]
        for (path, normal) in expected {
            #expect(HostRoot.normalise(path) == normal, "\(path)")
            #expect(HostRoot.isNormal(path) == (path == normal), "\(path)")
        }
    }
}
