#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Synchronization
import Testing

@testable import MijianHost

/// `net.history` on the browser fixture hosts, whose databases and HSTS stores the real
/// browsers wrote (`scripts/fixtures/make-browser-profiles.py`).
@Suite("net.history")
struct BrowserHistoryTests {
    static func facts(_ name: String, root: HostRoot? = nil) -> BrowserHistoryFacts {
        BrowserHistoryProbe.observe(root: root ?? FixtureHosts.root(name), logger: FixtureHosts.logger)
    }

    static func policy(_ extra: String = "") throws -> Policy {
        try Policy.parse(Array((EmbeddedPolicies.classifiedWorkstation + extra).utf8), file: "history.yaml")
    }

    static func findings(_ name: String, policy: Policy? = nil, root: HostRoot? = nil) throws -> [Finding] {
        let facts = HostProbe.observe(
            root: root ?? FixtureHosts.root(name), live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate,
            collecting: [.browserHistory, .installation])
        let context = CheckContext(policy: try policy ?? Self.policy(), hostID: "history", observedAt: TestSupport.fixedDate)
        return AuditChecks.evaluate(facts, context: context, only: ["net.history"])
    }

    static func describe(_ findings: [Finding]) -> String {
        findings.map { "\($0.subject) \($0.status): \($0.statusDetail)" }.joined(separator: "\n")
    }

    /// SHA-256 of every file under a directory, by relative path.
    static func checksums(_ directory: String) throws -> [String: String] {
        var sums: [String: String] = [:]
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let relative = enumerator?.nextObject() as? String {
            let path = directory + "/" + relative
            // Links by their text (a browser's SingletonLock), regular files by content; sockets are no files.
            switch try FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType {
            case .typeRegular?: sums[relative] = Hex.lower(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))))
            case .typeSymbolicLink?: sums[relative] = "link:" + (try FileManager.default.destinationOfSymbolicLink(atPath: path))
            default: continue
            }
        }
        return sums
    }

    @Test("Firefox: public hosts fail, the newest visits are read from places.sqlite-wal, default bookmarks are not visits, HSTS hosts in clear")
    func firefoxPublic() throws {
        let facts = Self.facts("browser-firefox-public")
        let profile = try #require(facts.profiles.first)
        #expect(facts.profiles.count == 1)
        #expect(profile.family == .firefox && profile.browser == "firefox" && profile.user == "zhang" && profile.discovery == .knownPath)
        #expect(profile.error == nil)
        #expect(profile.copied.map(\.path).contains("/home/zhang/.mozilla/firefox/k3x9q2lm.default-esr/places.sqlite-wal"))
        let hosts = Set(profile.hosts.map(\.host))
        #expect(hosts.isSuperset(of: ["www.news-portal.com", "secure.news-portal.com", "intranet.unit.internal"]))
        // These visits live only in the WAL: a reader of places.sqlite alone misses them.
        #expect(hosts.contains("downloads.public-files.org"))
        #expect(!hosts.contains("support.mozilla.org"), "a default bookmark never visited is not a visit")
        // PRTime converted: the browser ran in 2026.
        let last = try #require(profile.hosts.first { $0.host == "www.news-portal.com" }?.lastVisit)
        #expect(last > Date(timeIntervalSince1970: 1_767_225_600) && last < Date(timeIntervalSince1970: 1_830_297_600))
        #expect(profile.hsts.compactMap(\.host).contains("secure.news-portal.com"))
        #expect(profile.hstsStore?.path.hasSuffix("SiteSecurityServiceState.bin") == true)

        let findings = try Self.findings("browser-firefox-public")
        #expect(findings.count == 1, "\(Self.describe(findings))")
        let finding = try #require(findings.first)
        #expect(finding.status == .fail)
        #expect(finding.statusDetail.contains("www.news-portal.com") && finding.statusDetail.contains("downloads.public-files.org"))
        #expect(!finding.statusDetail.contains("intranet.unit.internal"), "an intranet host is no public visit")
        #expect(finding.statusDetail.contains("HSTS"))
        #expect(finding.statusDetail.contains("90 days"))
        // Host only by default: no path or query of a visited page in the report.
        let evidence = String(decoding: finding.evidence.map(\.data).map { $0.serialized() }.joined(), as: UTF8.self)
        #expect(!evidence.contains("http://") && !evidence.contains("https://"))
        // Copied with its -wal: SQLite reads it, and the evidence says so.
        #expect(evidence.contains("\"url_table\":\"read by SQLite\"") && !evidence.contains("url_table_walk_stopped"), "\(evidence)")
        let chromium = String(decoding: try #require(try Self.findings("browser-chromium-public").first).evidence.map(\.data).map { $0.serialized() }.joined(), as: UTF8.self)
        #expect(chromium.contains("\"url_table\":\"walked from the file's b-tree\""), "\(chromium)")
    }

    @Test("Chromium: public hosts fail; its hashed HSTS entries are told apart by hashing the hosts known")
    func chromiumPublic() throws {
        let facts = Self.facts("browser-chromium-public")
        let profile = try #require(facts.profiles.first)
        #expect(profile.family == .chromium && profile.browser == "chromium" && profile.user == "li")
        #expect(Set(profile.hosts.map(\.host)).isSuperset(of: ["www.news-portal.com", "mail.webmail-example.net", "intranet.unit.internal", "secure.news-portal.com"]))
        // WebKit time (µs since 1601) converted: 2026, not 2395.
        let last = try #require(profile.newestVisit)
        #expect(last > Date(timeIntervalSince1970: 1_767_225_600) && last < Date(timeIntervalSince1970: 1_830_297_600))
        #expect(profile.hstsStore?.path.hasSuffix("TransportSecurity") == true)
        let hashes = Set(profile.hsts.compactMap(\.hashedHost))
        #expect(hashes.contains(try #require(HSTSEntry.chromiumHash("secure.news-portal.com"))), "Chromium's own hash of the host it saw")

        let findings = try Self.findings("browser-chromium-public")
        let finding = try #require(findings.first)
        #expect(findings.count == 1 && finding.status == .fail, "\(Self.describe(findings))")
        #expect(finding.statusDetail.contains("mail.webmail-example.net"))
        let evidence = String(decoding: finding.evidence[0].data.serialized(), as: UTF8.self)
        #expect(evidence.contains("\"host\":\"secure.news-portal.com\",\"hashed_host\""), "the hashed entry is named")
        #expect(!evidence.contains("inbox?user=li"), "the query is not reported by default")

        // With history.report: url, the last URL of each host is reported.
        let full = try Self.findings("browser-chromium-public", policy: try Self.policy("history:\n  report: url\n"))
        let fullEvidence = String(decoding: try #require(full.first).evidence[0].data.serialized(), as: UTF8.self)
        #expect(fullEvidence.contains("inbox?user=li"))
    }

    @Test("intranet-only history and HSTS entries of the unit's own hosts pass, for both families")
    func intranetOnly() throws {
        let facts = Self.facts("browser-intranet-only")
        #expect(Set(facts.profiles.map(\.user)) == ["zhao", "qian"])
        #expect(facts.profiles.allSatisfy { !$0.hosts.isEmpty && !$0.hsts.isEmpty })
        let findings = try Self.findings("browser-intranet-only")
        #expect(findings.count == 2 && findings.allSatisfy { $0.status == .pass }, "\(Self.describe(findings))")
        #expect(findings.allSatisfy { $0.statusDetail.contains("all the unit's own") })
        // The same stores under a policy that does not know the unit's suffix fail.
        let foreign = try Self.findings("browser-intranet-only", policy: try Self.policy().with { $0.dnsAllowedSuffixes = ["other.example"] })
        #expect(foreign.count == 2 && foreign.allSatisfy { $0.status == .fail }, "\(Self.describe(foreign))")
    }

    @Test("cleared history with HSTS entries left fails: the entries need a real HTTPS answer")
    func clearedHistory() throws {
        let profile = try #require(Self.facts("browser-cleared-hsts").profiles.first)
        #expect(profile.hosts.isEmpty && profile.totalVisits == 0)
        #expect(!profile.hsts.isEmpty)
        let findings = try Self.findings("browser-cleared-hsts")
        let finding = try #require(findings.first)
        #expect(findings.count == 1 && finding.status == .fail, "\(Self.describe(findings))")
        #expect(finding.statusDetail.contains("history was cleared"))
    }

    @Test("visits older than the installation: still a fail, flagged as a profile copied from elsewhere")
    func copiedProfile() throws {
        let findings = try Self.findings("browser-copied-profile")
        let finding = try #require(findings.first)
        #expect(findings.count == 1 && finding.status == .fail, "\(Self.describe(findings))")
        #expect(finding.statusDetail.contains("profile copied from elsewhere?"))
        #expect(finding.statusDetail.contains("2026-11-02"))
        // The same visits on a machine installed before them carry no such note.
        let others = try Self.findings("browser-chromium-public")
        #expect(others.allSatisfy { !$0.statusDetail.contains("copied from elsewhere") })
    }

    @Test("a domestic browser under a path no list knows is found by its schema")
    func domesticBySchema() throws {
        let facts = Self.facts("browser-domestic-schema")
        let profile = try #require(facts.profiles.first)
        #expect(facts.profiles.count == 1)
        #expect(profile.discovery == .schema && profile.family == .chromium)
        #expect(profile.database == "/home/wu/.local/share/SecWeb/UserData/Main/History")
        #expect(facts.homes.first { $0.user == "wu" }.map { $0.sqliteFiles >= 1 } == true)
        let findings = try Self.findings("browser-domestic-schema")
        #expect(findings.count == 1 && findings.first?.status == .fail, "\(Self.describe(findings))")
        #expect(findings.first?.statusDetail.contains("found by schema") == true)
        // Bounded: a search of depth 3 does not reach it, and says it stopped.
        var shallow = BrowserHistoryProbe.SearchBounds()
        shallow.depth = 3
        let bounded = BrowserHistoryProbe.observe(root: FixtureHosts.root("browser-domestic-schema"), logger: FixtureHosts.logger, bounds: shallow)
        #expect(bounded.profiles.isEmpty)
        #expect(bounded.homes.first { $0.user == "wu" }?.truncated?.contains("deeper than 3") == true)
    }

    @Test("with a policy, first visits are looked up only for public hosts, and the earliest of them is kept")
    func firstVisitsOfPublicHostsOnly() throws {
        let policy = try Self.policy()
        let judged = BrowserHistoryProbe.observe(root: FixtureHosts.root("browser-chromium-public"), logger: FixtureHosts.logger, policy: policy)
        let profile = try #require(judged.profiles.first)
        let inside = try #require(profile.hosts.first { $0.host == "intranet.unit.internal" })
        #expect(inside.firstVisit == nil, "the visits of a host inside the unit are not read")
        let publicHosts = profile.hosts.filter { !policy.isInsideUnit(historyHost: $0.host) }
        #expect(!publicHosts.isEmpty && publicHosts.allSatisfy { $0.firstVisit != nil })
        #expect(profile.firstPublicVisit != nil && profile.firstPublicVisit == publicHosts.compactMap(\.firstVisit).min())
        // Without a policy every host's first visit is read; the counts are the same.
        let all = try #require(Self.facts("browser-chromium-public").profiles.first)
        #expect(all.hosts.allSatisfy { $0.firstVisit != nil })
        #expect(all.hosts.map(\.visits) == profile.hosts.map(\.visits))
    }

    @Test("the search by schema looks under a home's dot-directories and snap, not in the user's documents")
    func schemaSearchSkipsDocuments() throws {
        let tree = try TestSupport.temporaryDirectory("mijian-history-docs")
        defer { try? FileManager.default.removeItem(at: tree) }
        let source = "Tests/Fixtures/hosts/browser-domestic-schema/home/wu/.local/share/SecWeb/UserData/Main/History"
        let database = TestSupport.repositoryRoot.appendingPathComponent(source)
        for place in ["home/wu/Documents/old-disk/Main", "home/wu/snap/secweb/common/Main"] {
            try FileManager.default.createDirectory(at: tree.appendingPathComponent(place), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: database, to: tree.appendingPathComponent(place + "/History"))
        }
        let facts = Self.facts("", root: HostRoot(path: tree.path))
        #expect(facts.profiles.map(\.database) == ["/home/wu/snap/secweb/common/Main/History"])
    }

    @Test("a corrupt database is an error for its profile, with SQLite's reason")
    func corrupt() throws {
        let profile = try #require(Self.facts("browser-corrupt").profiles.first)
        #expect(profile.browser == "google-chrome")
        let reason = try #require(profile.error)
        #expect(reason.contains("SQLite"))
        let findings = try Self.findings("browser-corrupt")
        #expect(findings.count == 1 && findings.first?.status == .error, "\(Self.describe(findings))")
    }

    @Test("a database, an HSTS store, a home or /etc/passwd that cannot be read is an error, never a pass")
    func unreadable() throws {
        let base = FixtureHosts.root("browser-intranet-only")
        for path in [
            "/home/zhao/.config/chromium/Default/History", "/home/zhao/.config/chromium/Default/TransportSecurity",
            "/home/qian/.mozilla/firefox/a1b2c3d4.default-esr/places.sqlite", "/home/qian", "/home/zhao/.config", "/etc/passwd", "/home",
        ] {
            let findings = try Self.findings("browser-intranet-only", root: base.refusing(path))
            #expect(findings.contains { $0.status == .error }, "\(path): \(Self.describe(findings))")
        }
        // An unreadable database of a profile with public visits elsewhere stays a fail there.
        let publicFindings = try Self.findings("browser-chromium-public", root: FixtureHosts.root("browser-chromium-public").refusing("/home/li/.config/chromium/Default/TransportSecurity"))
        #expect(publicFindings.contains { $0.status == .fail }, "\(Self.describe(publicFindings))")
    }

    @Test("the audit never changes a profile: every file's checksum is the same after, and nothing is added")
    func readOnly() throws {
        for name in ["browser-firefox-public", "browser-chromium-public", "browser-domestic-schema"] {
            let directory = FixtureHosts.root(name).path + "/home"
            let before = try Self.checksums(directory)
            _ = try Self.findings(name)
            #expect(try Self.checksums(directory) == before, "\(name)")
        }
    }

    @Test("a database with nothing beside it is read in place; one with a -wal or a non-empty -journal is copied with it, and both read the same")
    func inPlaceOrCopy() throws {
        let firefox = try #require(Self.facts("browser-firefox-public").profiles.first)
        #expect(!firefox.readInPlace && firefox.copied.map(\.path).contains { $0.hasSuffix("places.sqlite-wal") })
        let chromium = try #require(Self.facts("browser-chromium-public").profiles.first)
        #expect(chromium.readInPlace && chromium.copied.map(\.path) == ["/home/li/.config/chromium/Default/History"])
        // The same database with a hot journal's worth of bytes beside it: copied, journal too.
        let tree = try TestSupport.temporaryDirectory("mijian-history-journal")
        defer { try? FileManager.default.removeItem(at: tree) }
        #expect(try TestSupport.run("/bin/cp", ["-a", FixtureHosts.root("browser-chromium-public").path + "/.", tree.path]).status == 0)
        let history = tree.path + "/home/li/.config/chromium/Default/History"
        #expect(FileManager.default.createFile(atPath: history + "-journal", contents: Data()))
        let empty = try #require(Self.facts("", root: HostRoot(path: tree.path)).profiles.first)
        #expect(empty.readInPlace, "an empty journal holds nothing to apply")
        #expect(FileManager.default.createFile(atPath: history + "-journal", contents: Data(count: 512)))
        let copied = try #require(Self.facts("", root: HostRoot(path: tree.path)).profiles.first)
        #expect(!copied.readInPlace && copied.copied.map(\.path) == [history.dropFirst(tree.path.count).description, "/home/li/.config/chromium/Default/History-journal"])
        #expect(copied.hosts == chromium.hosts && copied.totalVisits == chromium.totalVisits && copied.oldestVisit == chromium.oldestVisit)
    }

    @Test("another program's database with a WAL beside it, found by the search, is told apart from its own file without a copy")
    func otherDatabaseNotCopied() throws {
        let tree = try TestSupport.temporaryDirectory("mijian-history-other")
        defer { try? FileManager.default.removeItem(at: tree) }
        let directory = tree.path + "/home/wu/.local/share/notes"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A WAL-mode database left with its -wal (the writer exits without closing, so no checkpoint).
        let made = try TestSupport.run("/usr/bin/python3", ["-c", """
            import os, sqlite3, sys
            db = sqlite3.connect(sys.argv[1]); db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA wal_autocheckpoint=0")
            db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"); db.commit()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)"); db.execute("INSERT INTO notes (body) VALUES ('x')"); db.commit(); os._exit(0)
            """, directory + "/notes.db"])
        try #require(made.status == 0, "\(made.stderr)")
        try #require(FileManager.default.fileExists(atPath: directory + "/notes.db-wal"))
        var profile = BrowserProfile(browser: "", family: nil, user: "wu", directory: directory, database: directory + "/notes.db", discovery: .schema)
        let root = HostRoot(path: tree.path)
        #expect(throws: MijianError.self) {
            try BrowserHistoryProbe.read("/home/wu/.local/share/notes/notes.db", root: root, copies: try PrivateCopyDirectory(), family: nil, isInside: nil, into: &profile)
        }
        #expect(profile.copied.isEmpty && !profile.readInPlace)
        #expect(Self.facts("", root: root).profiles.isEmpty)
    }

    @Test("a link out of the root is not followed: a profile whose History points at a file outside is not read from there")
    func linkOutOfRoot() throws {
        let tree = try TestSupport.temporaryDirectory("mijian-history-link")
        defer { try? FileManager.default.removeItem(at: tree) }
        let outside = try TestSupport.temporaryDirectory("mijian-history-outside")
        defer { try? FileManager.default.removeItem(at: outside) }
        let source = FixtureHosts.root("browser-chromium-public").path
        #expect(try TestSupport.run("/bin/cp", ["-a", source + "/.", tree.path]).status == 0)
        let history = tree.path + "/home/li/.config/chromium/Default/History"
        try FileManager.default.moveItem(atPath: history, toPath: outside.path + "/History")
        try FileManager.default.createSymbolicLink(atPath: history, withDestinationPath: outside.path + "/History")
        // Absolute: resolved inside the root, where nothing is at that path; the History outside is never read.
        let facts = Self.facts("", root: HostRoot(path: tree.path))
        #expect(facts.profiles.allSatisfy { $0.hosts.isEmpty && $0.database == nil })
        #expect(!facts.profiles.flatMap(\.copied).contains { $0.path.hasSuffix("/History") })
        // The same file inside the root is read: the link alone made the difference.
        try FileManager.default.removeItem(atPath: history)
        try FileManager.default.copyItem(atPath: outside.path + "/History", toPath: history)
        #expect(Self.facts("", root: HostRoot(path: tree.path)).profiles.first?.hosts.isEmpty == false)
    }

    @Test("URL hosts: userinfo, ports, IPv6 brackets and case are dropped; internal schemes are no visits")
    func urlHosts() {
        #expect(VisitedURL.host("https://User:pw@WWW.Example.COM:8443/a?b#c") == "www.example.com")
        #expect(VisitedURL.host("http://[2001:db8::1]:80/") == "2001:db8::1")
        #expect(VisitedURL.host("http://10.1.2.3/x") == "10.1.2.3")
        #expect(VisitedURL.host("ftp://files.example.org") == "files.example.org")
        for url in ["file:///etc/passwd", "about:blank", "chrome://settings/", "chrome-extension://abc/page.html", "moz-extension://x/y", "data:text/html,hi", "javascript:void(0)", "view-source:https://example.com/", "place:sort=8"] {
            #expect(VisitedURL.host(url) == nil, "\(url)")
        }
        #expect(VisitedURL.host("no scheme here") == nil)
        // The last @ of the authority starts the host, whatever colons and brackets the userinfo holds.
        #expect(VisitedURL.host("https://a@b:c@Host.Example:81/x") == "host.example")
        #expect(VisitedURL.host("https://u:[p]@[2001:DB8::2]:8443/") == "2001:db8::2")
        #expect(VisitedURL.host("https://[::1]@host.example/") == "host.example")
        #expect(VisitedURL.host("http://host.example.:80?q") == "host.example")
        #expect(VisitedURL.host("http://host.example#frag") == "host.example")
        for url in ["http://[2001:db8::1/", "http://[]/", "http://user@/", "http://:80/", "http:///path", "http:/one-slash", "http://...:1/"] {
            #expect(VisitedURL.host(url) == nil, "\(url)")
        }
        // The eight-byte prefix test and the scheme's byte-by-byte reading agree, at and around eight bytes.
        for (url, host) in [
            ("https://a", "a"), ("http://a", "a"), ("https://", nil), ("http://", nil), ("http://a.b", "a.b"), ("HTTPS://A", "a"), ("Http://A.b/", "a.b"),
            ("https:/a", nil), ("httpx://a", "a"), ("http:///", nil), ("https://@", nil), ("https:///x", nil),
        ] as [(String, String?)] {
            #expect(VisitedURL.host(url) == host, "\(url)")
        }
    }

    @Test("visit counts a user forged (huge, below zero) neither trap nor subtract: the sums stop at the largest integer")
    func forgedVisitCounts() throws {
        let tree = try TestSupport.temporaryDirectory("mijian-history-counts")
        defer { try? FileManager.default.removeItem(at: tree) }
        #expect(try TestSupport.run("/bin/cp", ["-a", FixtureHosts.root("browser-chromium-public").path + "/.", tree.path]).status == 0)
        let history = tree.path + "/home/li/.config/chromium/Default/History"
        let made = try TestSupport.run("/usr/bin/python3", ["-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("DELETE FROM urls")
            for i, (host, count) in enumerate([("huge.example", 2**62), ("huge.example", 2**62), ("huge.example", 2**62), ("negative.example", -5), ("negative.example", 3)]):
                db.execute("INSERT INTO urls (id, url, title, visit_count, typed_count, last_visit_time, hidden) VALUES (?, ?, '', ?, 0, 13400000000000000, 0)",
                           (i + 1, f"https://{host}/{i}", count))
            db.commit()
            """, history])
        try #require(made.status == 0, "\(made.stderr)")
        let profile = try #require(Self.facts("", root: HostRoot(path: tree.path)).profiles.first)
        #expect(profile.error == nil)
        #expect(profile.hosts.first { $0.host == "huge.example" }?.visits == Int.max)
        #expect(profile.hosts.first { $0.host == "negative.example" }?.visits == 3)
        let finding = try #require(try Self.findings("", root: HostRoot(path: tree.path)).first { $0.subject.hasSuffix("/History") })
        #expect(finding.status == .fail && finding.statusDetail.contains("\(Int.max) visits"), "\(finding.statusDetail)")
    }

    @Test("the host table numbers hosts by their bytes in lower case, past its first sizes, beyond ASCII too")
    func hostTable() {
        var random = SystemRandomNumberGenerator()
        var table = HostTable()
        var reference: [[UInt8]: Int] = [:]
        // Lengths from 1 to 40 cover whole eight-byte words and every tail; 3,000 hosts make the
        // table grow several times; bytes from 0x80 up are kept as they are.
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-@[]{}`~".utf8) + [0xc3, 0xa9, 0xd0, 0x9f]
        var hosts = (0..<3_000).map { _ in (0..<Int.random(in: 1...40, using: &random)).map { _ in letters.randomElement(using: &random) ?? 0x61 } }
        // Long shared beginnings (the order is then decided past sixteen bytes) and NUL bytes,
        // which a forged URL can hold and the order must not take for an end.
        hosts += (0..<400).map { index in Array("www.site.example.".utf8) + Array(String(index * 7919 % 1000).utf8) + (index % 5 == 0 ? [0] : []) }
        hosts += [Array("a".utf8), [0x61, 0], [0x61, 0, 0x62], Array("a\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}b".utf8)]
        for round in 0..<3 {
            for host in hosts.shuffled(using: &random) {
                // The same host in another case, inside a longer URL.
                let cased = host.map { byte in byte >= 0x61 && byte <= 0x7a && Bool.random(using: &random) ? byte - 0x20 : byte }
                let url = Array("https://".utf8) + cased + Array("/path".utf8)
                let key = host.map(VisitedURL.lower)
                let (entry, new) = url.withUnsafeBufferPointer { table.entry($0, 8..<(8 + cased.count)) }
                if let known = reference[key] {
                    #expect(entry == known && !new, "round \(round): \(key)")
                } else {
                    #expect(new && entry == reference.count, "round \(round): \(key)")
                    reference[key] = entry
                }
            }
        }
        #expect(table.count == reference.count)
        for (key, entry) in reference { #expect(table.host(entry) == String(decoding: key, as: UTF8.self)) }
        // In the order of the hosts' bytes, a host before every longer one it begins.
        let ordered = reference.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.value)
        #expect(table.entriesInHostOrder() == ordered)
    }

    @Test("a profile read share runs every read once, on the finder and its helpers, and returns them in order")
    func profileReadShare() {
        for helpers in [0, 1, 3] {
            let share = ProfileReadShare(cores: 2, helperComing: true)
            let runs = Mutex<[Int]>([])
            let reads: [BrowserHistoryProbe.ProfileRead] = (0..<25).map { index in
                {
                    runs.withLock { $0.append(index) }
                    usleep(UInt32.random(in: 0...300))
                    // Every fifth read finds no profile.
                    return index % 5 == 4 ? nil : BrowserProfile(browser: "b\(index)", family: .chromium, user: "u", directory: "/d\(index)", database: nil, discovery: .knownPath)
                }
            }
            // Helpers that come before the reads are given wait for them.
            let helping = (0..<helpers).map { _ in HelperThread { share.help() } }
            usleep(2_000)
            let profiles = share.readAll(reads)
            for helper in helping { helper.wait() }
            #expect(profiles.map(\.browser) == (0..<25).filter { $0 % 5 != 4 }.map { "b\($0)" }, "\(helpers) helper(s)")
            #expect(runs.withLock { $0.sorted() } == Array(0..<25), "\(helpers) helper(s)")
        }
        // A probe that gives no reads lets its helpers go.
        let share = ProfileReadShare(cores: 2, helperComing: true)
        let helper = HelperThread { share.help() }
        share.close()
        helper.wait()
        share.close()
        #expect(share.readAll([]).isEmpty)
    }
}

fileprivate extension Policy {
    /// A copy changed by `body`.
    func with(_ body: (inout Policy) -> Void) -> Policy {
        var copy = self
        body(&copy)
        return copy
    }
}

/// A thread that runs `body`, and a way to wait for its end.
private final class HelperThread: Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Void) {
        Thread { [done] in
            body()
            done.signal()
        }.start()
    }

    func wait() { done.wait() }
}
