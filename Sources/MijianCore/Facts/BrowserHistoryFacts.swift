import Crypto
import Foundation

/// The two database schemas browsers keep their history in.
public enum BrowserFamily: String, Sendable, CaseIterable, Hashable {
    /// Firefox and its forks: `places.sqlite` with `moz_places` and `moz_historyvisits`.
    case firefox
    /// Chromium and its forks: `History` with `urls`, `visits` and `meta`.
    case chromium

    /// Microseconds in the family's own epoch as a date: PRTime counts from 1970, WebKit time
    /// from 1601 (11,644,473,600 seconds earlier). Zero and negative values mean "no time".
    public func date(fromMicroseconds value: Int64) -> Date? {
        guard value > 0 else { return nil }
        let seconds = Double(value) / 1_000_000
        switch self {
        case .firefox: return Date(timeIntervalSince1970: seconds)
        case .chromium: return Date(timeIntervalSince1970: seconds - 11_644_473_600)
        }
    }
}

/// How a browser profile was found.
public enum ProfileDiscovery: String, Sendable, Hashable {
    /// At a path a known browser keeps its profiles in.
    case knownPath = "known-path"
    /// Elsewhere in a home directory, by its tables: an SQLite file with a history schema.
    case schema
}

/// The visits to one host that a profile's history keeps.
public struct BrowserHostVisits: Sendable, Equatable {
    /// The host, lower case (an IP literal without brackets).
    public var host: String
    /// Distinct URLs of the host in the history.
    public var urls: Int
    /// Visits counted by the browser for the host's URLs (Chromium's `urls.visit_count`,
    /// Firefox's `moz_places.visit_count`).
    public var visits: Int
    /// Whether a URL of the host was typed into the address bar.
    public var typed: Bool
    /// The first visit kept (the browser's clock), looked up in the visits table only for the
    /// hosts a finding lists (public ones, newest first, up to `BrowserProfile.firstVisitHosts`);
    /// nil for the others and for a host whose URLs have no visit row left.
    public var firstVisit: Date?
    /// The last visit kept.
    public var lastVisit: Date?
    /// The URL of the last visit: reported only when the policy asks for full URLs, and read
    /// only for the hosts a finding lists (as `firstVisit`); empty for the others.
    public var lastURL: String

    /// Makes a record.
    public init(host: String, urls: Int, visits: Int, typed: Bool, firstVisit: Date?, lastVisit: Date?, lastURL: String) {
        self.host = host
        self.urls = urls
        self.visits = visits
        self.typed = typed
        self.firstVisit = firstVisit
        self.lastVisit = lastVisit
        self.lastURL = lastURL
    }
}

/// The downloads of one host that a profile's history keeps.
public struct BrowserHostDownloads: Sendable, Equatable {
    /// The host the file came from.
    public var host: String
    /// How many downloads.
    public var count: Int
    /// Bytes received.
    public var bytes: Int64
    /// The last download's start.
    public var last: Date?
    /// The last download's URL and where it was saved: reported only with full URLs.
    public var lastURL: String
    /// Where the last download was saved.
    public var lastTarget: String

    /// Makes a record.
    public init(host: String, count: Int, bytes: Int64, last: Date?, lastURL: String, lastTarget: String) {
        self.host = host
        self.count = count
        self.bytes = bytes
        self.last = last
        self.lastURL = lastURL
        self.lastTarget = lastTarget
    }
}

/// One HSTS entry: a host that once answered over HTTPS with Strict-Transport-Security. Stores
/// of these survive "clear history".
public struct HSTSEntry: Sendable, Equatable {
    /// The host in clear (Firefox).
    public var host: String?
    /// The host as Chromium keeps it: base64 of SHA-256 of the name in DNS wire form.
    public var hashedHost: String?
    /// When the header was last seen.
    public var observed: Date?
    /// When the entry expires.
    public var expiry: Date?
    /// Whether it covers subdomains.
    public var includeSubdomains: Bool

    /// Makes an entry.
    public init(host: String? = nil, hashedHost: String? = nil, observed: Date? = nil, expiry: Date? = nil, includeSubdomains: Bool = false) {
        self.host = host
        self.hashedHost = hashedHost
        self.observed = observed
        self.expiry = expiry
        self.includeSubdomains = includeSubdomains
    }

    /// Chromium's key for a host: base64 of SHA-256 of the lower-case name in DNS wire form
    /// (each label preceded by its length, then a zero byte); nil for a name that has no wire form.
    public static func chromiumHash(_ host: String) -> String? {
        chromiumDigest(host)?.base64EncodedString()
    }

    /// The SHA-256 `chromiumHash` encodes.
    public static func chromiumDigest(_ host: String) -> Data? {
        chromiumKey(host).map { key in withUnsafeBytes(of: key.words) { Data($0) } }
    }

    /// The 32 bytes of a SHA-256 digest as four words: a key compared and hashed without an
    /// allocation.
    public struct DigestKey: Hashable, Sendable {
        public let words: (UInt64, UInt64, UInt64, UInt64)

        /// The key of 32 digest bytes; nil for any other length.
        public init?(_ bytes: some Collection<UInt8>) {
            guard bytes.count == 32 else { return nil }
            var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            withUnsafeMutableBytes(of: &words) { for (offset, byte) in bytes.enumerated() { $0[offset] = byte } }
            self.words = words
        }

        public static func == (left: DigestKey, right: DigestKey) -> Bool { left.words == right.words }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(words.0)
            hasher.combine(words.1)
        }
    }

    /// `chromiumDigest` as a key. The wire form is built on the stack: a history's thousands of
    /// hosts are hashed without an allocation each.
    public static func chromiumKey(_ host: String) -> DigestKey? {
        var host = host
        // An ASCII name (what a history's hosts are) is lowered byte by byte; any other through
        // Unicode's lower case.
        if !host.utf8.allSatisfy({ $0 < 0x80 }) { host = host.lowercased() }
        return host.withUTF8 { name -> DigestKey? in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: name.count + 2) { wire -> DigestKey? in
                var count = 0
                var label = 0
                for byte in name {
                    if byte == UInt8(ascii: ".") {
                        label = 0
                        continue
                    }
                    if label == 0 {
                        wire[count] = 0
                        count += 1
                    }
                    label += 1
                    guard label <= 63 else { return nil }
                    wire[count - label] = UInt8(label)
                    wire[count] = byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte
                    count += 1
                }
                guard count > 0, count < 255 else { return nil }
                wire[count] = 0
                return SHA256.hash(data: UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(wire)[0...count])).withUnsafeBytes { DigestKey($0) }
            }
        }
    }
}

/// One browser profile of one user: what its history and HSTS store hold.
public struct BrowserProfile: Sendable, Equatable {
    /// The browser, from the path (`chromium`, `google-chrome`, `firefox`, …), or the family's
    /// name and "found by schema" for a database found elsewhere.
    public var browser: String
    /// The schema family; nil when the database could not be read.
    public var family: BrowserFamily?
    /// The user whose home holds it.
    public var user: String
    /// The profile directory (host path).
    public var directory: String
    /// The history database (host path); nil when the profile has only an HSTS store.
    public var database: String?
    /// How it was found.
    public var discovery: ProfileDiscovery
    /// The database's modification time.
    public var databaseModified: Date?
    /// The files read (database, and the `-wal`, `-shm`, `-journal` copied with it), with their sizes.
    public var copied: [FactSource]
    /// Whether the database was read in place (read-only, only the pages queried: nothing beside
    /// it to apply) rather than from a private copy.
    public var readInPlace = false
    /// Whether the URL table was walked straight from the file's b-tree (in place only).
    public var urlTableWalked = false
    /// Why that walk stopped, when it did: SQLite then read the table (a damaged or unusual file).
    public var urlTableWalkStopped: String?
    /// Why the database could not be read (copied, opened, queried); nil when it was.
    public var error: String?
    /// Hosts visited (internal schemes left out).
    public var hosts: [BrowserHostVisits]
    /// History entries of internal schemes (`file:`, `about:`, `chrome:` …) or without a host: not visits.
    public var internalEntries: Int
    /// Visits kept in all.
    public var totalVisits: Int
    /// The oldest and newest visits kept.
    public var oldestVisit: Date?
    /// The newest visit kept.
    public var newestVisit: Date?
    /// The earliest visit kept to a host judged public (to any host when the probe had no
    /// policy to judge with).
    public var firstPublicVisit: Date?
    /// Downloads per host.
    public var downloads: [BrowserHostDownloads]
    /// The HSTS store (host path): Chromium's `TransportSecurity`, Firefox's `SiteSecurityServiceState`.
    public var hstsStore: FactSource?
    /// Its entries.
    public var hsts: [HSTSEntry]

    /// Makes a profile record.
    public init(
        browser: String, family: BrowserFamily?, user: String, directory: String, database: String?, discovery: ProfileDiscovery,
        databaseModified: Date? = nil, copied: [FactSource] = [], error: String? = nil, hosts: [BrowserHostVisits] = [], internalEntries: Int = 0,
        totalVisits: Int = 0, oldestVisit: Date? = nil, newestVisit: Date? = nil, downloads: [BrowserHostDownloads] = [], hstsStore: FactSource? = nil,
        hsts: [HSTSEntry] = []
    ) {
        self.browser = browser
        self.family = family
        self.user = user
        self.directory = directory
        self.database = database
        self.discovery = discovery
        self.databaseModified = databaseModified
        self.copied = copied
        self.error = error
        self.hosts = hosts
        self.internalEntries = internalEntries
        self.totalVisits = totalVisits
        self.oldestVisit = oldestVisit
        self.newestVisit = newestVisit
        self.downloads = downloads
        self.hstsStore = hstsStore
        self.hsts = hsts
    }

    /// How many public hosts (newest last visit first, then by name) a finding lists with their
    /// counts and first and last visits, and so have their first visit looked up: row by row in
    /// the visits table (Chromium keeps no index on a URL's visits by time), the cost of the
    /// rule. Every public host is still counted, and judged; the evidence says how many it lists.
    public static let firstVisitHosts = 20

    /// The first `limit` of `indices` into `hosts` in the order a finding lists hosts (newest
    /// last visit first, then by name; hosts without a last visit last), as a stable sort of all
    /// of them would give, without sorting the rest: a history has thousands of hosts and a
    /// finding lists twenty.
    public static func newestFirst(_ hosts: [BrowserHostVisits], _ indices: some Sequence<Int>, limit: Int) -> [Int] {
        guard limit > 0 else { return [] }
        /// Whether host `a` comes before host `b`.
        func precedes(_ a: Int, _ b: Int) -> Bool {
            let (left, right) = (hosts[a].lastVisit ?? .distantPast, hosts[b].lastVisit ?? .distantPast)
            if left != right { return left > right }
            return hosts[a].host < hosts[b].host
        }
        var first: [Int] = []
        first.reserveCapacity(limit + 1)
        for index in indices {
            if first.count == limit, let last = first.last, !precedes(index, last) { continue }
            // After every host it does not precede: hosts that compare equal keep their order.
            var position = first.count
            while position > 0, precedes(index, first[position - 1]) { position -= 1 }
            first.insert(index, at: position)
            if first.count > limit { first.removeLast() }
        }
        return first
    }

    /// The subject of findings about it: the database, or the profile directory.
    public var subject: String { database ?? directory }
}

/// A home directory the probe searched, and how far.
public struct SearchedHome: Sendable, Equatable {
    /// The user (from `/etc/passwd`), or the directory name under `/home`.
    public var user: String
    /// The home directory (host path).
    public var home: String
    /// Entries the search for databases by schema examined: under the home's dot-directories and
    /// `snap` (where browsers keep profiles), not the user's own documents.
    public var examined: Int
    /// SQLite files whose tables were read.
    public var sqliteFiles: Int
    /// Why the search stopped before the end (depth or count bound), if it did.
    public var truncated: String?

    /// Makes a record.
    public init(user: String, home: String, examined: Int = 0, sqliteFiles: Int = 0, truncated: String? = nil) {
        self.user = user
        self.home = home
        self.examined = examined
        self.sqliteFiles = sqliteFiles
        self.truncated = truncated
    }
}

/// Every browser profile of every user, for `net.history`.
public struct BrowserHistoryFacts: Sendable, Equatable {
    /// Sources read (`/etc/passwd`, `/home`, the homes), with their outcomes.
    public var sources: [FactSource]
    /// Homes searched.
    public var homes: [SearchedHome]
    /// Profiles found.
    public var profiles: [BrowserProfile]

    /// Makes facts; empty by default.
    public init(sources: [FactSource] = [], homes: [SearchedHome] = [], profiles: [BrowserProfile] = []) {
        self.sources = sources
        self.homes = homes
        self.profiles = profiles
    }
}

extension Policy {
    /// Whether a host of a browser's history is inside the unit: loopback, a name under the
    /// DNS suffixes, an address in the unit's networks or allowed destinations.
    /// The same judgement as `isAllowedName` for names, without Foundation's string search.
    /// A history holds thousands of hosts: `UnitHostJudge` prepares the suffixes once.
    public func isInsideUnit(historyHost host: String) -> Bool { UnitHostJudge(self).isInside(host) }
}

/// `Policy.isInsideUnit(historyHost:)` with the policy's DNS suffixes prepared once (lower case,
/// without outer dots, as bytes), for judging the thousands of hosts of browser histories.
public struct UnitHostJudge: Sendable {
    let policy: Policy
    let suffixes: [[UInt8]]

    /// A judge for `policy`.
    public init(_ policy: Policy) {
        self.policy = policy
        suffixes = policy.dnsAllowedSuffixes.map { Array(Self.withoutDots(Array($0.lowercased().utf8))) }
    }

    /// Whether `host` is inside the unit.
    public func isInside(_ host: String) -> Bool {
        if host == "localhost" || host.hasSuffix(".localhost") { return true }
        let bytes = Array(host.utf8)
        let literal = bytes.contains(UInt8(ascii: ":")) || bytes.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }
        if literal, let address = IPAddress(host) { return address.isLoopback || policy.isAllowedPeer(address) }
        let lower = bytes.contains { ($0 >= 0x41 && $0 <= 0x5a) || $0 >= 0x80 } ? Array(host.lowercased().utf8) : bytes
        let name = Self.withoutDots(lower)
        return suffixes.contains { suffix in
            guard name.count >= suffix.count else { return false }
            if name.count == suffix.count { return name.elementsEqual(suffix) }
            let start = name.endIndex - suffix.count
            return name[start - 1] == UInt8(ascii: ".") && name[start...].elementsEqual(suffix)
        }
    }

    /// A name without leading and trailing dots.
    static func withoutDots(_ name: [UInt8]) -> ArraySlice<UInt8> {
        var name = name[...]
        while name.first == UInt8(ascii: ".") { name.removeFirst() }
        while name.last == UInt8(ascii: ".") { name.removeLast() }
        return name
    }
}

/// What `net.history` reports of a visited page (`history.report`).
public enum HistoryReportDetail: String, Sendable, CaseIterable {
    /// Host names only: paths and queries can hold secrets or personal data.
    case host
    /// The last URL of each host and download as well.
    case url
}

extension Int {
    /// This count plus `count` (a count below zero, from a damaged or forged file, adds nothing),
    /// stopping at `Int.max` instead of trapping: visit counts come from files a user can write.
    public func addingSaturated(_ count: Int) -> Int {
        let (sum, overflow) = self.addingReportingOverflow(Swift.max(count, 0))
        return overflow ? .max : sum
    }
}
