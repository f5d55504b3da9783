#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianCore
import Synchronization

/// Observes every user's browser profiles for `net.history`: the history databases (Firefox's
/// `places.sqlite`, Chromium's `History`) at the paths browsers use and, elsewhere in the homes,
/// any SQLite file with one of their schemas; and the HSTS stores beside them.
public enum BrowserHistoryProbe {
    /// Whether a visited host is inside the unit.
    typealias HostJudge = @Sendable (String) -> Bool

    /// A profile's read, deferred until every home has been searched: the reads (SQLite, the
    /// longest part) then run side by side, and their profiles are kept in the order found.
    typealias ProfileRead = @Sendable () -> BrowserProfile?

    /// A place a browser keeps its profiles in, relative to a home directory.
    struct KnownRoot: Sendable {
        let browser: String
        let family: BrowserFamily
        let path: String
    }

    /// Where browsers keep profiles: native, snap and flatpak installations, and the browsers of
    /// domestic distributions (UOS, Kylin). Databases anywhere else are found by their schema.
    static let knownRoots: [KnownRoot] = {
        var roots: [KnownRoot] = []
        for (browser, path) in [
            ("firefox", ".mozilla/firefox"), ("firefox", ".config/mozilla/firefox"), ("firefox", "snap/firefox/common/.mozilla/firefox"),
            ("firefox", ".var/app/org.mozilla.firefox/.mozilla/firefox"), ("firefox-esr", ".mozilla/firefox-esr"), ("librewolf", ".librewolf"),
            ("librewolf", ".var/app/io.gitlab.librewolf-community/.librewolf"), ("waterfox", ".waterfox"),
        ] {
            roots.append(KnownRoot(browser: browser, family: .firefox, path: path))
        }
        for (browser, path) in [
            ("chromium", ".config/chromium"), ("chromium", "snap/chromium/common/chromium"), ("chromium", ".var/app/org.chromium.Chromium/config/chromium"),
            ("google-chrome", ".config/google-chrome"), ("google-chrome", ".config/google-chrome-beta"), ("google-chrome", ".config/google-chrome-unstable"),
            ("google-chrome", ".var/app/com.google.Chrome/config/google-chrome"), ("microsoft-edge", ".config/microsoft-edge"),
            ("microsoft-edge", ".config/microsoft-edge-beta"), ("microsoft-edge", ".config/microsoft-edge-dev"),
            ("microsoft-edge", ".var/app/com.microsoft.Edge/config/microsoft-edge"), ("brave", ".config/BraveSoftware/Brave-Browser"),
            ("brave", ".var/app/com.brave.Browser/config/BraveSoftware/Brave-Browser"), ("vivaldi", ".config/vivaldi"), ("opera", ".config/opera"),
            ("opera", ".config/opera-beta"), ("yandex-browser", ".config/yandex-browser"), ("uos-browser", ".config/browser"),
            ("deepin-browser", ".config/deepin/deepin-browser"), ("360-browser", ".config/browser360"), ("qax-browser", ".config/qaxbrowser"),
            ("qq-browser", ".config/QQBrowser"), ("sogou-browser", ".config/sogou-explorer"),
        ] {
            roots.append(KnownRoot(browser: browser, family: .chromium, path: path))
        }
        return roots
    }()

    /// Bounds of the search by schema in one home: how deep, how many entries, how many SQLite
    /// files opened. A bound that is hit is said in the evidence.
    public struct SearchBounds: Sendable {
        /// Directory levels below the home.
        public var depth = 8
        /// Directory entries examined.
        public var entries = 50_000
        /// SQLite files copied and opened.
        public var sqliteFiles = 64

        /// The defaults.
        public init() {}
    }

    /// The facts under `root`.
    /// Visited hosts are judged with `policy` as the checks judge them (`Policy.isInsideUnit`):
    /// first visits are looked up only for hosts outside the unit; without a policy, for every host.
    public static func observe(root: HostRoot, logger: Logger, bounds: SearchBounds = SearchBounds(), policy: Policy? = nil) -> BrowserHistoryFacts {
        observe(root: root, logger: logger, bounds: bounds, policy: policy, share: ProfileReadShare(helperComing: false))
    }

    /// The facts under `root`, the profiles read through `share` (on this thread, the threads it
    /// adds, and the helper it expects).
    static func observe(root: HostRoot, logger: Logger, bounds: SearchBounds = SearchBounds(), policy: Policy?, share: ProfileReadShare) -> BrowserHistoryFacts {
        // Users' histories share most hosts: each is judged once per audit.
        let isInside: HostJudge? = policy.map { policy in
            let judge = UnitHostJudge(policy)
            let judged = JudgedHosts()
            return { host in
                if let known = judged.inside.withLock({ $0[host] }) { return known }
                let inside = judge.isInside(host)
                judged.inside.withLock { $0[host] = inside }
                return inside
            }
        }
        var facts = BrowserHistoryFacts()
        let copies: PrivateCopyDirectory
        do {
            copies = try PrivateCopyDirectory()
        } catch {
            facts.sources.append(FactSource(path: "(private copy directory)", state: .error(error.description)))
            return facts
        }
        let (_, failures) = root.collectingFailures { (scoped: HostRoot) -> Void in
            var reads: [ProfileRead] = []
            for (user, home, search) in homes(root: scoped, sources: &facts.sources) {
                var searched = SearchedHome(user: user, home: home)
                var knownDirectories: Set<String> = []
                // The known paths begin with a few names (.config, .mozilla, snap, .var …): one
                // that is absent rules out every path under it, without a lookup each.
                var absentFirst: [Substring: Bool] = [:]
                for known in knownRoots {
                    let base = home + "/" + known.path
                    let first = known.path.prefix { $0 != "/" }
                    if absentFirst[first] == nil {
                        // Only a clean absence counts: anything else is looked up path by path as before.
                        absentFirst[first] = (try? scoped.directoryIfPresent(home + "/" + first)) == false
                    }
                    guard absentFirst[first] == false, scoped.isDirectoryExpected(base) else { continue }
                    knownDirectories.insert(base)
                    let entries: [(name: String, kind: HostRoot.EntryKind)]
                    do throws(MijianError) {
                        entries = try scoped.entries(base)
                        facts.sources.append(FactSource(path: base, state: .ok, count: entries.count))
                    } catch {
                        facts.sources.append(FactSource(path: base, state: .error(error.description)))
                        continue
                    }
                    // Profile directories; files beside them (profiles.ini, Local State) are not profiles.
                    for entry in entries where entry.kind == .directory || (entry.kind == .link && scoped.isDirectory(base + "/" + entry.name)) {
                        let directory = base + "/" + entry.name
                        let (browser, family) = (known.browser, known.family)
                        reads.append {
                            readProfile(
                                root: scoped, copies: copies, browser: browser, family: family, user: user, directory: directory,
                                database: directory + "/" + (family == .firefox ? "places.sqlite" : "History"), discovery: .knownPath, isInside: isInside,
                                logger: logger)
                        }
                    }
                }
                if search {
                    searchBySchema(
                        root: scoped, copies: copies, user: user, home: home, skipping: knownDirectories, bounds: bounds, searched: &searched,
                        isInside: isInside, logger: logger, reads: &reads)
                }
                facts.homes.append(searched)
            }
            facts.profiles = share.readAll(reads)
        }
        // Reads side by side note their failures in the order they happen: sorted, the
        // evidence is the same from run to run.
        facts.sources.addUnclaimed(failures.sorted { $0.path < $1.path })
        return facts
    }

    /// The homes to search: every user of `/etc/passwd` whose home exists, `/root`, and every
    /// directory under `/home` (users of a directory service are not in `/etc/passwd`). The
    /// search by schema covers root, users with uid 1000 or more, and `/home`; system accounts'
    /// homes are looked at only at the browsers' own paths.
    static func homes(root: HostRoot, sources: inout [FactSource]) -> [(user: String, home: String, search: Bool)] {
        var result: [(user: String, home: String, search: Bool)] = []
        var seen: Set<String> = []
        func add(_ user: String, _ home: String, search: Bool) {
            let normalised = HostRoot.normalise(home)
            guard normalised != "/", !seen.contains(normalised), root.isDirectoryExpected(normalised) else { return }
            seen.insert(normalised)
            result.append((user, normalised, search))
        }
        do {
            if let text = try root.readTextIfPresent("/etc/passwd") {
                var count = 0
                for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                    let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                    guard fields.count >= 7, fields[5].hasPrefix("/") else { continue }
                    count += 1
                    let uid = Int(fields[2]) ?? -1
                    let home = String(fields[5])
                    guard !["/nonexistent", "/dev/null", "/bin", "/sbin", "/usr/sbin", "/usr/bin"].contains(home) else { continue }
                    add(String(fields[0]), home, search: uid == 0 || (uid >= 1000 && uid != 65534) || home.hasPrefix("/home/"))
                }
                sources.append(FactSource(path: "/etc/passwd", state: .ok, count: count))
            } else {
                sources.append(FactSource(path: "/etc/passwd", state: .missing))
            }
        } catch {
            sources.append(FactSource(path: "/etc/passwd", state: .error(error.description)))
        }
        add("root", "/root", search: true)
        if root.isDirectoryExpected("/home"), let names = root.list("/home", recordingInto: &sources) {
            for name in names { add(name, "/home/" + name, search: true) }
        }
        if sources.first(where: { $0.path == "/etc/passwd" })?.state == .missing {
            // No system here: perhaps a home partition mounted on its own, whose top directories
            // are the homes. A directory with a user's dot-directories is taken as one.
            for entry in (try? root.entries("/")) ?? [] where entry.kind == .directory {
                let path = "/" + entry.name
                if [".config", ".mozilla", ".local", "snap", ".var"].contains(where: { root.exists(path + "/" + $0) }) {
                    add(entry.name, path, search: true)
                }
            }
        }
        return result
    }

    /// The files that make up a profile's state beside the database.
    static func hstsStores(_ family: BrowserFamily, directory: String) -> [String] {
        switch family {
        case .chromium: return [directory + "/Network/TransportSecurity", directory + "/TransportSecurity"]
        case .firefox: return [directory + "/SiteSecurityServiceState.bin", directory + "/SiteSecurityServiceState.txt"]
        }
    }

    /// One profile directory: its history database (when present) and HSTS store; nil when the
    /// directory holds neither (not a profile).
    static func readProfile(
        root: HostRoot, copies: PrivateCopyDirectory, browser: String, family: BrowserFamily, user: String, directory: String, database: String,
        discovery: ProfileDiscovery, isInside: HostJudge?, logger: Logger
    ) -> BrowserProfile? {
        var profile = BrowserProfile(browser: browser, family: family, user: user, directory: directory, database: database, discovery: discovery)
        var hasDatabase = true
        do {
            if try !read(database, root: root, copies: copies, family: family, isInside: isInside, into: &profile) { hasDatabase = false }
        } catch {
            profile.error = error.description
        }
        readHSTS(root: root, family: family, into: &profile)
        guard hasDatabase || profile.hstsStore != nil else { return nil }
        if !hasDatabase { profile.database = nil }
        logger.debug("browser profile", metadata: ["history.profile": .string(directory), "history.hosts": .stringConvertible(profile.hosts.count)])
        return profile
    }

    /// Reads the database; false when it does not exist. Throws why it could not be read.
    ///
    /// With nothing beside it that SQLite would have to apply (no `-wal`, no `-journal` holding
    /// bytes), the database is read in place through a descriptor opened through the root wall
    /// (`ReadOnlyVFS`): only the pages the queries need, never written or locked. Otherwise (a
    /// browser running or stopped uncleanly: Firefox keeps recent visits in the WAL) it is copied
    /// with its `-wal`, `-shm` and `-journal` into the private directory and read there.
    @discardableResult
    static func read(
        _ database: String, root: HostRoot, copies: PrivateCopyDirectory, family expected: BrowserFamily?, isInside: HostJudge?, into profile: inout BrowserProfile
    ) throws(MijianError) -> Bool {
        let db: HistoryDatabase
        // The copies are removed when the reading is done (SQLite opens the WAL at its first read).
        var copyName: String?
        defer {
            if let copyName { for suffix in ["", "-wal", "-shm", "-journal"] { unlink(copies.path + "/" + copyName + suffix) } }
        }
        if let opened = try openInPlace(database, root: root, into: &profile) {
            db = opened
        } else if expected == nil, let tables = committedTables(database, root: root), !tables.isEmpty, family(of: tables) == nil {
            // Found by the search, with a WAL or journal beside it, and its file already holds
            // tables, none a history's: some other program's database, not copied to be sure.
            throw notHistory(database, tables)
        } else {
            let name = "db\(copyCounter.next())"
            copyName = name
            guard let main = try copies.copy(database, root: root, as: name) else { return false }
            profile.databaseModified = main.mtime
            profile.copied = [FactSource(path: database, state: .ok, count: Int(main.size))]
            for suffix in ["-wal", "-shm", "-journal"] {
                if let side = try copies.copy(database + suffix, root: root, as: name + suffix) {
                    profile.copied.append(FactSource(path: database + suffix, state: .ok, count: Int(side.size)))
                }
            }
            db = try HistoryDatabase(copyAt: main.path, of: database)
        }
        let tables = try db.tableNames()
        guard let family = family(of: tables) else { throw notHistory(database, tables) }
        if let expected, expected != family {
            profile.browser += " (\(family.rawValue) schema)"
        }
        profile.family = family
        switch family {
        case .chromium: try readChromium(db, tables: tables, isInside: isInside, into: &profile)
        case .firefox: try readFirefox(db, tables: tables, isInside: isInside, into: &profile)
        }
        return true
    }

    /// The database opened in place when nothing beside it needs applying: no `-wal` and a
    /// `-journal` that is absent or empty (what the browser leaves after a clean exit). Nil when
    /// it must be copied instead, or does not exist (the copy then says so).
    static func openInPlace(_ database: String, root: HostRoot, into profile: inout BrowserProfile) throws(MijianError) -> HistoryDatabase? {
        for suffix in ["-wal", "-journal"] {
            let fd: Int32?
            do throws(MijianError) {
                fd = try root.openRegularFile(database + suffix)
            } catch where error.code == .notFound {
                continue
            }
            // A side file that cannot be opened, or is the null device, is left to the copy to report.
            guard let fd else { return nil }
            var info = stat()
            let status = fstat(fd, &info)
            close(fd)
            if status != 0 || suffix == "-wal" || info.st_size > 0 { return nil }
        }
        let fd: Int32
        do throws(MijianError) {
            guard let opened = try root.openRegularFile(database) else { return nil }
            fd = opened
        } catch where error.code == .notFound {
            return nil
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw MijianError(.io, "cannot stat \(database)", path: database, errno: code)
        }
        let db = try HistoryDatabase(readingInPlace: fd, of: database)
        profile.databaseModified = PrivateCopyDirectory.modified(info)
        profile.readInPlace = true
        profile.copied = [FactSource(path: database, state: .ok, count: Int(info.st_size))]
        return db
    }

    /// The error for an SQLite database without a history's tables.
    static func notHistory(_ database: String, _ tables: Set<String>) -> MijianError {
        MijianError(
            .database, "\(database) is an SQLite database without a browser history's tables (has: \(tables.sorted().prefix(12).joined(separator: ", ")))",
            path: database)
    }

    /// The tables the database file itself holds (read in place, its WAL and journal left
    /// aside); nil when it cannot be read so.
    static func committedTables(_ database: String, root: HostRoot) -> Set<String>? {
        guard let fd = try? root.openRegularFile(database), let db = try? HistoryDatabase(readingInPlace: fd, of: database) else { return nil }
        return try? db.tableNames()
    }

    /// Which history schema the tables are.
    static func family(of tables: Set<String>) -> BrowserFamily? {
        if tables.isSuperset(of: ["urls", "visits", "meta"]) { return .chromium }
        if tables.isSuperset(of: ["moz_places", "moz_historyvisits"]) { return .firefox }
        return nil
    }

    /// Unique names for copies within one process.
    static let copyCounter = CopyCounter()

    /// The hosts judged so far in one observation, by every profile's read.
    final class JudgedHosts: Sendable {
        let inside = Mutex<[String: Bool]>([:])
    }

    /// A counter shared by concurrent audits in one process.
    final class CopyCounter: Sendable {
        private let value = Atomic<Int>(0)
        func next() -> Int { value.add(1, ordering: .relaxed).newValue }
    }

    /// "time padded to 20 digits" + tab + text, as the queries build it to carry the text of the
    /// latest row through MAX(): split back.
    static func latest(_ packed: String) -> (time: Int64, rest: [String]) {
        let parts = packed.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        return (Int64(parts.first ?? "") ?? 0, Array(parts.dropFirst()))
    }

    static func readChromium(_ db: HistoryDatabase, tables: Set<String>, isInside: HostJudge?, into profile: inout BrowserProfile) throws(MijianError) {
        // Each host's counts from `urls` alone (the browser keeps each URL's counts and last
        // visit there); the visits table is read only for the first visits of the hosts judged.
        let urls = try collectHosts(db, table: "urls", columns: ["url", "visit_count", "typed_count", "id", "last_visit_time"], visitedOnly: false, family: .chromium, into: &profile)
        try collectTotals(db, table: "visits", time: "visit_time", family: .chromium, into: &profile)
        try collectFirstVisits(
            db, table: "visits", url: "url", time: "visit_time", urls: urls, urlTable: "urls", family: .chromium, isInside: isInside, into: &profile)
        guard tables.contains("downloads") else { return }
        let chains = tables.contains("downloads_url_chains")
        let source = chains
            ? "IFNULL((SELECT c.url FROM downloads_url_chains c WHERE c.id = d.id ORDER BY c.chain_index DESC LIMIT 1), d.tab_url)"
            : "d.tab_url"
        let downloads = """
            SELECT mijian_host(s) AS h, COUNT(*), SUM(received), MAX(printf('%020d', start) || char(9) || s || char(9) || target) FROM
              (SELECT \(source) AS s, d.received_bytes AS received, d.start_time AS start, d.target_path AS target FROM downloads d)
            GROUP BY h
            """
        try collectDownloads(db, downloads, family: .chromium, into: &profile)
    }

    static func readFirefox(_ db: HistoryDatabase, tables: Set<String>, isInside: HostJudge?, into profile: inout BrowserProfile) throws(MijianError) {
        // Places with no visit at all (the default bookmarks) were never visited and are left out.
        let urls = try collectHosts(
            db, table: "moz_places", columns: ["url", "visit_count", "typed", "id", "last_visit_date"], visitedOnly: true, family: .firefox, into: &profile)
        try collectTotals(db, table: "moz_historyvisits", time: "visit_date", family: .firefox, into: &profile)
        try collectFirstVisits(
            db, table: "moz_historyvisits", url: "place_id", time: "visit_date", urls: urls, urlTable: "moz_places", family: .firefox, isInside: isInside,
            into: &profile)
        guard tables.isSuperset(of: ["moz_annos", "moz_anno_attributes"]) else { return }
        let downloads = """
            SELECT mijian_host(p.url) AS h, COUNT(*), 0, MAX(printf('%020d', a.dateAdded) || char(9) || p.url || char(9) || a.content)
            FROM moz_annos a JOIN moz_anno_attributes n ON n.id = a.anno_attribute_id JOIN moz_places p ON p.id = a.place_id
            WHERE n.name = 'downloads/destinationFileURI'
            GROUP BY h
            """
        try collectDownloads(db, downloads, family: .firefox, into: &profile)
    }

    /// Visits kept, the oldest and the newest: from the index on the visit time (each in a query
    /// of its own: MIN and MAX together with COUNT make SQLite read every row instead), and the
    /// count of the table's smallest b-tree, not a scan of its rows.
    static func collectTotals(_ db: HistoryDatabase, table: String, time: String, family: BrowserFamily, into profile: inout BrowserProfile) throws(MijianError) {
        let sql = "SELECT (SELECT COUNT(*) FROM \(table)), (SELECT MIN(\(time)) FROM \(table)), (SELECT MAX(\(time)) FROM \(table))"
        try db.rows(sql) { row throws(MijianError) in
            profile.totalVisits = Int(row.int(0))
            profile.oldestVisit = family.date(fromMicroseconds: row.int(1))
            profile.newestVisit = family.date(fromMicroseconds: row.int(2))
        }
    }

    /// One host's URL rows summed up.
    struct HostSum {
        var urls = 0
        var visits = 0
        var typed = false
        /// The latest visit (the browser's microseconds), and the row of the URL it was to (the first row of that time).
        var latest: Int64?
        var latestRow: Int64 = 0
    }

    /// Every URL row with a host: its row id, and the number of its host in `profile.hosts`.
    struct HostURLs {
        var ids: [Int64] = []
        var hosts: [Int32] = []
        /// Each host's last URL's row id, in the order of `profile.hosts`.
        var lastRows: [Int64] = []
    }

    /// The hosts of the URL table, summed up in one pass over its rows (`columns`: the URL, the
    /// visit count, the typed count, the id and the last visit time; with `visitedOnly`, rows with
    /// no visit count and no last visit are left out, as Firefox's default bookmarks): no sort of
    /// every URL by host, no list of ids built as text, and per row only flat arrays written.
    /// `profile.hosts` is in host order; each host's last URL is read later, only for the hosts a
    /// finding lists.
    ///
    /// A database read in place is walked straight from its file (`TableScan`); when the walk
    /// cannot read it, SQLite reads the same rows (`SELECT`), and the sums are the same either way.
    static func collectHosts(
        _ db: HistoryDatabase, table: String, columns: [String], visitedOnly: Bool, family: BrowserFamily, into profile: inout BrowserProfile
    ) throws(MijianError) -> HostURLs {
        var sums = HostSums()
        if var scan = db.tableScan(), let layout = try db.layout(table, columns: columns) {
            do throws(TableScan.Unsupported) {
                try scan.rows(root: layout.root, columns: layout.columns) { rowid, values throws(TableScan.Unsupported) in
                    func integer(_ slot: Int) throws(TableScan.Unsupported) -> Int64? {
                        try TableScan.integer(values, slot, rowid: rowid, isRowID: layout.isRowID[slot])
                    }
                    let visits = try integer(1) ?? 0
                    let last = try integer(4)
                    if visitedOnly, visits <= 0, last == nil { return }
                    var url: UnsafeBufferPointer<UInt8>?
                    if case .text(let bytes) = values[0] { url = bytes }
                    sums.add(url: url, visits: visits, typed: try integer(2) ?? 0, id: try integer(3) ?? 0, last: last)
                }
                profile.urlTableWalked = true
                return sums.finish(family: family, into: &profile)
            } catch {
                // Read by SQLite below, from the start; the evidence says why.
                profile.urlTableWalkStopped = error.reason
                sums = HostSums()
            }
        }
        let sql = "SELECT \(columns.joined(separator: ", ")) FROM \(table)"
            + (visitedOnly ? " WHERE \(columns[1]) > 0 OR \(columns[4]) IS NOT NULL" : "")
        try db.rows(sql) { row throws(MijianError) in
            sums.add(url: row.bytes(0), visits: row.int(1), typed: row.int(2), id: row.int(3), last: row.isNull(4) ? nil : row.int(4))
        }
        return sums.finish(family: family, into: &profile)
    }

    /// The URL rows' hosts summed up as they come.
    struct HostSums {
        var table = HostTable()
        var sums: [HostSum] = []
        var urls = HostURLs()
        var internalEntries = 0

        /// One URL row; a URL that is not a visit (or none) counts as an internal entry.
        @inline(__always)
        mutating func add(url: UnsafeBufferPointer<UInt8>?, visits: Int64, typed: Int64, id: Int64, last: Int64?) {
            guard let bytes = url, let range = VisitedURL.hostRange(bytes) else {
                internalEntries += 1
                return
            }
            let (at, new) = table.entry(bytes, range)
            urls.ids.append(id)
            urls.hosts.append(Int32(truncatingIfNeeded: at))
            var sum = new ? HostSum() : sums[at]
            sum.urls += 1
            // The browser's own count, from a file its user can write: never below zero, and
            // the sum stops at the largest integer rather than trapping.
            sum.visits = sum.visits.addingSaturated(Int(truncatingIfNeeded: visits))
            if typed > 0 { sum.typed = true }
            // The URL of the host's last visit (of the latest time, the smallest id: the same
            // whatever order the rows come in).
            if let time = last {
                if sum.latest.map({ time > $0 || (time == $0 && id < sum.latestRow) }) ?? true {
                    sum.latest = time
                    sum.latestRow = id
                }
            }
            if new { sums.append(sum) } else { sums[at] = sum }
        }

        /// `profile.hosts` in host order, and the URL rows' hosts renumbered to match.
        mutating func finish(family: BrowserFamily, into profile: inout BrowserProfile) -> HostURLs {
            let order = table.entriesInHostOrder()
            var position = [Int32](repeating: 0, count: order.count)
            for (index, entry) in order.enumerated() { position[entry] = Int32(index) }
            for index in urls.hosts.indices { urls.hosts[index] = position[Int(urls.hosts[index])] }
            profile.hosts = order.map { at in
                let sum = sums[at]
                return BrowserHostVisits(
                    host: table.host(at), urls: sum.urls, visits: sum.visits, typed: sum.typed, firstVisit: nil,
                    lastVisit: sum.latest.flatMap(family.date(fromMicroseconds:)), lastURL: "")
            }
            urls.lastRows = order.map { sums[$0].latestRow }
            profile.internalEntries = internalEntries
            return urls
        }
    }

    /// Public URL ids beyond which the earliest public visit is found by walking the visits in
    /// time order (public visits are then common and one comes early) rather than per URL.
    static let perURLLookupLimit = 4_096

    /// The first visits of the hosts `isInside` judges public (all hosts without a judge): per
    /// host for the `BrowserProfile.firstVisitHosts` a finding lists (through the index on the
    /// visits' URL), with their last URLs, and the earliest of all of them. The visits of hosts
    /// inside the unit are never read.
    static func collectFirstVisits(
        _ db: HistoryDatabase, table: String, url: String, time: String, urls: HostURLs, urlTable: String, family: BrowserFamily, isInside: HostJudge?,
        into profile: inout BrowserProfile
    ) throws(MijianError) {
        let judged = profile.hosts.map { host in isInside.map { !$0(host.host) } ?? true }
        guard judged.contains(true) else { return }
        let listed = BrowserProfile.newestFirst(profile.hosts, profile.hosts.indices.lazy.filter { judged[$0] }, limit: BrowserProfile.firstVisitHosts)
        var isListed = [Bool](repeating: false, count: profile.hosts.count)
        for index in listed { isListed[index] = true }
        var listedIDs: [Int64] = []
        var publicIDs = 0
        for (index, host) in urls.hosts.enumerated() {
            if isListed[Int(host)] { listedIDs.append(urls.ids[index]) }
            if judged[Int(host)] { publicIDs += 1 }
        }
        var first: [Int64: Int64] = [:]
        try db.rows("SELECT \(url), MIN(\(time)) FROM \(table) WHERE \(url) IN (\(list(listedIDs))) GROUP BY \(url)") { row throws(MijianError) in
            first[row.int(0)] = row.int(1)
        }
        var earliestListed: [Int64?] = Array(repeating: nil, count: profile.hosts.count)
        for (index, host) in urls.hosts.enumerated() where isListed[Int(host)] {
            if let time = first[urls.ids[index]], earliestListed[Int(host)].map({ time < $0 }) ?? true { earliestListed[Int(host)] = time }
        }
        // The last URLs of the listed hosts, row by row: only these are ever reported.
        var lastURLs: [Int64: String] = [:]
        let lastRows = listed.map { urls.lastRows[$0] }.filter { $0 != 0 }
        if !lastRows.isEmpty {
            try db.rows("SELECT id, url FROM \(urlTable) WHERE id IN (\(list(lastRows)))") { row throws(MijianError) in lastURLs[row.int(0)] = row.text(1) }
        }
        for index in listed {
            profile.hosts[index].firstVisit = earliestListed[index].flatMap(family.date(fromMicroseconds:))
            profile.hosts[index].lastURL = lastURLs[urls.lastRows[index]] ?? ""
        }
        // Many ids: the walk goes up the index on the time to the first visit whose URL is one of
        // them (`mijian_judged`, a lookup in a bit set, not a list parsed and indexed by SQLite);
        // a visit without a time is passed over, as MIN passes it over.
        let earliest: String
        if publicIDs <= perURLLookupLimit {
            let all = urls.hosts.indices.filter { judged[Int(urls.hosts[$0])] }.map { urls.ids[$0] }
            earliest = "SELECT MIN(\(time)) FROM \(table) WHERE \(url) IN (\(list(all)))"
        } else {
            var set = IDBitSet()
            for (index, host) in urls.hosts.enumerated() where judged[Int(host)] { set.insert(urls.ids[index]) }
            db.judgedIDs = set
            earliest = "SELECT \(time) FROM \(table) WHERE mijian_judged(\(url)) AND \(time) IS NOT NULL ORDER BY \(time) LIMIT 1"
        }
        try db.rows(earliest) { row throws(MijianError) in profile.firstPublicVisit = family.date(fromMicroseconds: row.int(0)) }
    }

    /// Row ids as an SQL list (integers read from the database itself).
    static func list(_ ids: [Int64]) -> String { ids.map(String.init).joined(separator: ",") }

    static func collectDownloads(_ db: HistoryDatabase, _ sql: String, family: BrowserFamily, into profile: inout BrowserProfile) throws(MijianError) {
        var downloads: [BrowserHostDownloads] = []
        try db.rows(sql) { row throws(MijianError) in
            guard !row.isNull(0) else { return }
            let last = latest(row.text(3))
            downloads.append(BrowserHostDownloads(
                host: row.text(0), count: Int(row.int(1)), bytes: row.int(2), last: family.date(fromMicroseconds: last.time),
                lastURL: last.rest.first ?? "", lastTarget: last.rest.dropFirst().joined(separator: "\t")))
        }
        profile.downloads = downloads
    }
}
