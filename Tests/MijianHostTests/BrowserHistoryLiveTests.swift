#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// `net.history` against a real Chromium that has its profile open: its History database is
/// locked (SQLite cannot read it in place), the audit reads it from its private copy, and not a
/// byte of the profile changes. Needs Debian's `chromium` (in `.ci/run`).
@Suite("net.history on a running browser", .serialized)
struct BrowserHistoryLiveTests {
    /// Every process below `pid`, from /proc's children lists.
    static func descendants(of pid: Int32) -> [Int32] {
        var found: [Int32] = []
        var pending = [pid]
        while let next = pending.popLast() {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(next)/task")) ?? []
            for task in tasks {
                let text = (try? String(contentsOfFile: "/proc/\(next)/task/\(task)/children", encoding: .utf8)) ?? ""
                for child in text.split(separator: " ").compactMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
                    found.append(child)
                    pending.append(child)
                }
            }
        }
        return found
    }

    /// The processes whose command line names `text`.
    static func processes(naming text: String) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name in
            guard let pid = Int32(name), let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
            return String(decoding: data, as: UTF8.self).contains(text) ? pid : nil
        }
    }

    @Test("a running Chromium's locked History is read from a copy; every profile file's checksum is the same after")
    func runningChromium() throws {
        let tree = try TestSupport.temporaryDirectory("mijian-history-live")
        defer { try? FileManager.default.removeItem(at: tree) }
        let home = tree.path + "/home/live"
        let data = home + "/.config/chromium"
        try FileManager.default.createDirectory(atPath: tree.path + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try Data("root:x:0:0:root:/root:/bin/bash\nlive:x:1000:1000:live:/home/live:/bin/bash\n".utf8).write(to: URL(fileURLWithPath: tree.path + "/etc/passwd"))
        let page = tree.path + "/page.html"
        try Data("<html><head><title>live</title></head><body>live</body></html>".utf8).write(to: URL(fileURLWithPath: page))

        let browser = Process()
        browser.executableURL = URL(fileURLWithPath: "/usr/bin/chromium")
        browser.arguments = ["--headless=new", "--no-sandbox", "--no-first-run", "--disable-gpu", "--user-data-dir=\(data)", "file://\(page)"]
        browser.environment = ["HOME": home, "PATH": "/usr/bin:/bin"]
        browser.standardOutput = FileHandle.nullDevice
        browser.standardError = FileHandle.nullDevice
        try browser.run()
        let main = browser.processIdentifier
        defer {
            // The browser and every process it started (its crash handler leaves the tree): by
            // their ids, found by the profile directory only this test uses.
            for pid in Set([main] + Self.descendants(of: main) + Self.processes(naming: tree.path)) {
                kill(pid, SIGCONT)
                kill(pid, SIGKILL)
            }
            browser.waitUntilExit()
        }
        let root = HostRoot(path: tree.path)
        // Chromium commits its history about ten seconds after a visit.
        var seen: BrowserProfile?
        for _ in 0..<60 {
            let profile = BrowserHistoryProbe.observe(root: root, logger: FixtureHosts.logger).profiles.first
            if let profile, profile.totalVisits > 0 {
                seen = profile
                break
            }
            Thread.sleep(forTimeInterval: 1)
        }
        #expect(seen != nil, "Chromium never committed the visit")
        // Stopped, the browser keeps its profile open and its locks held, and writes nothing.
        for pid in [main] + Self.descendants(of: main) { #expect(kill(pid, SIGSTOP) == 0) }
        Thread.sleep(forTimeInterval: 0.5)
        let history = data + "/Default/History"
        let locked = try TestSupport.run("/usr/bin/python3", [
            "-c", "import sqlite3,sys\ntry:\n sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True).execute('select count(*) from urls').fetchall(); print('read')\nexcept Exception as e: print(e)",
            history,
        ])
        #expect(locked.stdout.contains("locked"), "the History database is not locked by the running browser: \(locked.stdout)")

        let before = try BrowserHistoryTests.checksums(home)
        let facts = BrowserHistoryProbe.observe(root: root, logger: FixtureHosts.logger)
        let after = try BrowserHistoryTests.checksums(home)
        #expect(before == after)
        #expect(before.keys.contains(".config/chromium/Default/History"))
        let profile = try #require(facts.profiles.first)
        #expect(profile.error == nil)
        #expect(profile.family == .chromium && profile.totalVisits > 0)
        #expect(profile.internalEntries > 0, "the file: page is kept and is no visit")
        #expect(profile.hosts.isEmpty)
    }
}
