import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianChecks

/// `net.history` decided from facts alone: which hosts are the unit's, what HSTS entries mean,
/// what an unreadable store does to a verdict.
@Suite struct BrowserHistoryChecksTests {
    static let day = Date(timeIntervalSince1970: 1_790_000_000)

    static func findings(_ profiles: [BrowserProfile], installedAt: Date? = nil, policy: Policy? = nil) throws -> [Finding] {
        var facts = AuditFacts(root: "/fixture", live: false, observedAt: TestSupport.fixedDate)
        facts.browserHistory = BrowserHistoryFacts(
            sources: [FactSource(path: "/etc/passwd", state: .ok, count: 3)], homes: [SearchedHome(user: "li", home: "/home/li", examined: 40)],
            profiles: profiles)
        facts.installation.installedAt = installedAt
        let context = CheckContext(policy: try policy ?? TestSupport.defaultPolicy(), hostID: "test-host", observedAt: TestSupport.fixedDate)
        return AuditChecks.evaluate(facts, context: context, only: ["net.history"])
    }

    static func profile(hosts: [String], hsts: [HSTSEntry] = [], downloads: [BrowserHostDownloads] = [], family: BrowserFamily = .chromium) -> BrowserProfile {
        BrowserProfile(
            browser: "chromium", family: family, user: "li", directory: "/home/li/.config/chromium/Default",
            database: "/home/li/.config/chromium/Default/History", discovery: .knownPath,
            hosts: hosts.map { BrowserHostVisits(host: $0, urls: 1, visits: 2, typed: false, firstVisit: day, lastVisit: day, lastURL: "https://\($0)/secret?q=1") },
            totalVisits: hosts.count * 2, oldestVisit: day, newestVisit: day, downloads: downloads,
            hstsStore: hsts.isEmpty ? nil : FactSource(path: "/home/li/.config/chromium/Default/TransportSecurity", state: .ok, count: hsts.count), hsts: hsts)
    }

    @Test("the unit's names, networks, loopback and allowed destinations are inside; anything else is a public visit")
    func insideAndOutside() throws {
        let policy = try TestSupport.policy("""
            id: t
            version: "1"
            profile: classified
            networks: {unit: [10.0.0.0/8], allowed_destinations: [192.0.2.10/32]}
            dns: {resolvers: [10.0.0.53], allowed_suffixes: [unit.internal]}
            """)
        for host in ["intranet.unit.internal", "unit.internal", "10.1.2.3", "192.0.2.10", "localhost", "127.0.0.1", "::1"] {
            #expect(BrowserHistoryChecks.isInside(host, policy), "\(host)")
        }
        for host in ["www.example.com", "unit.internal.example.com", "evilunit.internal", "192.0.2.11", "8.8.8.8", "2001:db8::1", "wiki"] {
            #expect(!BrowserHistoryChecks.isInside(host, policy), "\(host)")
        }
        let findings = try Self.findings([Self.profile(hosts: ["intranet.unit.internal", "10.1.2.3", "www.example.com"])], policy: policy)
        #expect(findings.count == 1 && findings[0].status == .fail)
        #expect(findings[0].statusDetail.contains("1 public host(s) visited (www.example.com"))
        #expect(!String(decoding: findings[0].evidence[0].data.serialized(), as: UTF8.self).contains("secret?q=1"))
    }

    @Test("the evidence lists the public hosts visited last, up to its cap, and says so; the counts and the verdict take every host")
    func listedHostsAreCapped() throws {
        let hosts = (0..<(BrowserProfile.firstVisitHosts + 15)).map { "www.site\($0).example.com" } + ["intranet.unit.internal"]
        let findings = try Self.findings([Self.profile(hosts: hosts)])
        #expect(findings.count == 1 && findings[0].status == .fail)
        #expect(findings[0].statusDetail.contains("\(hosts.count - 1) public host(s) visited"), "\(findings[0].statusDetail)")
        let evidence = findings[0].evidence[0].data
        #expect(evidence["public_hosts"] == .integer(hosts.count - 1))
        guard case .array(let listed)? = evidence["public_visits"] else {
            Issue.record("no public_visits list")
            return
        }
        #expect(listed.count == BrowserProfile.firstVisitHosts)
        #expect(evidence["public_visits_listed"] == .string("the \(BrowserProfile.firstVisitHosts) public host(s) visited last, of \(hosts.count - 1)"))
    }

    @Test("a hashed HSTS entry of the unit's own host passes; one no known host explains fails, even with no visit")
    func hashedHSTS() throws {
        let inside = try #require(HSTSEntry.chromiumHash("portal.unit.internal"))
        let unknown = try #require(HSTSEntry.chromiumHash("www.example.com"))
        let pass = try Self.findings([Self.profile(hosts: ["portal.unit.internal"], hsts: [HSTSEntry(hashedHost: inside)])])
        #expect(pass.count == 1 && pass[0].status == .pass, "\(pass.map(\.statusDetail))")
        // Cleared: the unit's host is known from another profile of the machine; the other entry is unexplained.
        var other = Self.profile(hosts: ["portal.unit.internal"])
        other.directory = "/home/li/.config/chromium/Profile 1"
        other.database = other.directory + "/History"
        let cleared = try Self.findings([Self.profile(hosts: [], hsts: [HSTSEntry(hashedHost: inside), HSTSEntry(hashedHost: unknown)]), other])
        #expect(cleared.count == 2 && cleared[0].status == .fail && cleared[1].status == .pass)
        #expect(cleared[0].statusDetail.contains("1 HSTS entry") && cleared[0].statusDetail.contains("history was cleared"), "\(cleared[0].statusDetail)")
        // A hashed entry no host of the machine explains is not taken for the unit's.
        let alone = try Self.findings([Self.profile(hosts: [], hsts: [HSTSEntry(hashedHost: inside)])])
        #expect(alone[0].status == .fail, "a hash cannot be told to be the unit's without a host to match it")
        // The policy's DNS suffix itself is hashed as the unit's.
        let suffix = try #require(HSTSEntry.chromiumHash("unit.internal"))
        #expect(try Self.findings([Self.profile(hosts: [], hsts: [HSTSEntry(hashedHost: suffix)])])[0].status == .pass)
    }

    @Test("the hosts a finding lists are the first of a stable sort by last visit, newest first, then by name")
    func listedHostsAreTheSortsFirst() {
        var random = SystemRandomNumberGenerator()
        for round in 0..<200 {
            // Few distinct times (ties decided by name), some hosts without a last visit, and
            // now and then the same name twice (a stable sort keeps their order).
            let hosts = (0..<Int.random(in: 0...60, using: &random)).map { index in
                BrowserHostVisits(
                    host: "h\(Int.random(in: 0...40, using: &random)).example", urls: index, visits: 1, typed: false, firstVisit: nil,
                    lastVisit: Bool.random(using: &random) ? nil : Self.day.addingTimeInterval(Double(Int.random(in: 0...5, using: &random))), lastURL: "")
            }
            let indices = hosts.indices.filter { _ in Int.random(in: 0..<4, using: &random) > 0 }
            let sorted = indices.sorted { (hosts[$0].lastVisit ?? .distantPast, hosts[$1].host) > (hosts[$1].lastVisit ?? .distantPast, hosts[$0].host) }
            for limit in [0, 1, 5, 20, 100] {
                #expect(BrowserProfile.newestFirst(hosts, indices, limit: limit) == Array(sorted.prefix(limit)), "round \(round), limit \(limit)")
            }
            let summed = PublicHosts(hosts, indices)
            #expect(summed.count == indices.count)
            #expect(summed.listed.map(\.urls) == sorted.prefix(BrowserProfile.firstVisitHosts).map { hosts[$0].urls })
            #expect(summed.lastVisit == indices.compactMap { hosts[$0].lastVisit }.max())
        }
    }

    @Test("a finding names the five hosts visited last and counts the rest")
    func findingNamesTheNewestHosts() throws {
        var profile = Self.profile(hosts: (0..<30).map { "site\($0).example.com" })
        for index in profile.hosts.indices { profile.hosts[index].lastVisit = Self.day.addingTimeInterval(Double(index % 10)) }
        let finding = try #require(try Self.findings([profile]).first)
        // Times 9 (sites 9, 19, 29), then 8 (sites 18, 28 …), each time's hosts by name.
        #expect(finding.statusDetail.contains("30 public host(s) visited (site19.example.com, site29.example.com, site9.example.com, site18.example.com, site28.example.com and 25 more; 60 visits"), "\(finding.statusDetail)")
    }

    @Test("Chromium's HSTS key: base64 of SHA-256 of the name in DNS wire form")
    func chromiumHash() {
        // Computed independently: printf '\x03www\x07example\x03com\x00' | sha256sum | xxd -r -p | base64
        #expect(HSTSEntry.chromiumHash("www.example.com") == "V1Y0YvOTaG4ptW2d8EgeVZtsl+5Rdf3atnUQuHZPpks=")
        #expect(HSTSEntry.chromiumHash("WWW.Example.com.") == "V1Y0YvOTaG4ptW2d8EgeVZtsl+5Rdf3atnUQuHZPpks=")
        // A name beyond ASCII is lowered as Unicode lowers it; empty labels are no labels.
        #expect(HSTSEntry.chromiumHash("Bücher.example") == "SAjPW7ySrnnXZmvBW9jPMwt6TNe3khPVGP0zZ8awBEI=")
        #expect(HSTSEntry.chromiumHash("a..b") == "EOqSRzfMT9Q99332OU5/sWWfw2ImJhId6Di8tgWdwXE=")
        #expect(HSTSEntry.chromiumHash("") == nil)
        #expect(HSTSEntry.chromiumHash("...") == nil)
        #expect(HSTSEntry.chromiumHash(String(repeating: "a", count: 64) + ".com") == nil)
        // The wire form's length decides, not the name's: empty labels take no room, and a name
        // whose wire form reaches 255 bytes has none.
        #expect(HSTSEntry.chromiumHash(String(repeating: ".", count: 300) + "a..b") == "EOqSRzfMT9Q99332OU5/sWWfw2ImJhId6Di8tgWdwXE=")
        #expect(HSTSEntry.chromiumHash(String(repeating: "a.", count: 126) + "b") != nil)
        #expect(HSTSEntry.chromiumHash(String(repeating: "a.", count: 127) + "b") == nil)
        #expect(HSTSEntry.chromiumKey("www.example.com") == HSTSEntry.DigestKey(Data(base64Encoded: "V1Y0YvOTaG4ptW2d8EgeVZtsl+5Rdf3atnUQuHZPpks=") ?? Data()))
    }

    @Test("downloads from a public host fail; the full URL is reported only when the policy says history.report: url")
    func downloadsAndFullURLs() throws {
        let download = BrowserHostDownloads(host: "files.example.org", count: 2, bytes: 4096, last: Self.day, lastURL: "https://files.example.org/a.pdf", lastTarget: "/home/li/a.pdf")
        let findings = try Self.findings([Self.profile(hosts: [], downloads: [download])])
        #expect(findings[0].status == .fail && findings[0].statusDetail.contains("2 download(s) from files.example.org"))
        #expect(!String(decoding: findings[0].evidence[0].data.serialized(), as: UTF8.self).contains("a.pdf"))
        var policy = try TestSupport.defaultPolicy()
        policy.history.report = .url
        let full = try Self.findings([Self.profile(hosts: ["www.example.com"], downloads: [download])], policy: policy)
        let evidence = String(decoding: full[0].evidence[0].data.serialized(), as: UTF8.self)
        #expect(evidence.contains("a.pdf") && evidence.contains("secret?q=1"))
    }

    @Test("visits older than the installation are flagged, and still fail")
    func olderThanInstallation() throws {
        let later = Self.day.addingTimeInterval(86_400 * 30)
        let findings = try Self.findings([Self.profile(hosts: ["www.example.com"])], installedAt: later)
        #expect(findings[0].status == .fail && findings[0].statusDetail.contains("profile copied from elsewhere?"))
        let intranet = try Self.findings([Self.profile(hosts: ["intranet.unit.internal"])], installedAt: later)
        #expect(intranet[0].status == .pass, "an intranet profile older than the system is no visit to the internet")
    }

    @Test("an unreadable database or HSTS store is an error; with public visits it stays a fail; no profile at all passes and says where it looked")
    func unreadable() throws {
        var broken = Self.profile(hosts: [])
        broken.error = "SQLite cannot read: file is not a database"
        #expect(try Self.findings([broken])[0].status == .error)
        var store = Self.profile(hosts: ["intranet.unit.internal"])
        store.hstsStore = FactSource(path: "/home/li/.config/chromium/Default/TransportSecurity", state: .error("EACCES"))
        #expect(try Self.findings([store])[0].status == .error)
        var publicStore = Self.profile(hosts: ["www.example.com"])
        publicStore.hstsStore = store.hstsStore
        #expect(try Self.findings([publicStore])[0].status == .fail)
        let none = try Self.findings([])
        #expect(none.count == 1 && none[0].status == .pass && none[0].statusDetail.contains("/home/li"))
    }
}
