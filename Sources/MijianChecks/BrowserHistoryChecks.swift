import Foundation
import MijianCore

/// `net.history`: browsers' history and HSTS stores of every user (七.7, score 53).
public enum BrowserHistoryChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.browserHistory, needs: [.browserHistory, .installation], evaluate: history)
    ]

    /// Most downloads and HSTS entries listed in one finding's evidence (visited hosts: `BrowserProfile.firstVisitHosts`); the counts are whole.
    static let evidenceLimit = 100

    /// What no history can show, said in every finding.
    static let limits = "Chromium-family browsers expire visits after 90 days, private windows leave no history, and every time is the machine's own clock."

    /// Whether a visited host is inside the unit: loopback, a name under the policy's DNS
    /// suffixes, an address in the unit's networks or allowed destinations.
    static func isInside(_ host: String, _ policy: Policy) -> Bool { policy.isInsideUnit(historyHost: host) }

    /// Every host of the histories judged once, however many profiles and lists it is in: the
    /// judgement of each profile's hosts (in `profile.hosts` order), of every name seen, and the
    /// distinct visited hosts with theirs (in the order first met).
    static func judgements(_ facts: BrowserHistoryFacts, _ policy: Policy) -> (hosts: [[Bool]], names: [String: Bool], visited: [(host: String, inside: Bool)]) {
        let judge = UnitHostJudge(policy)
        var inside: [String: Bool] = [:]
        // Room for the largest profile's hosts at once: most of the others' are the same hosts.
        inside.reserveCapacity(facts.profiles.map(\.hosts.count).max() ?? 0)
        var visited: [(host: String, inside: Bool)] = []
        let hosts = facts.profiles.map { profile in
            profile.hosts.map { host in
                if let known = inside[host.host] { return known }
                let verdict = judge.isInside(host.host)
                inside[host.host] = verdict
                visited.append((host.host, verdict))
                return verdict
            }
        }
        for profile in facts.profiles {
            for download in profile.downloads where inside[download.host] == nil { inside[download.host] = judge.isInside(download.host) }
            for entry in profile.hsts { if let host = entry.host, inside[host] == nil { inside[host] = judge.isInside(host) } }
        }
        return (hosts, inside, visited)
    }

    /// The names among the histories' hosts and the policy's DNS suffixes that Chromium's hashed
    /// HSTS entries (`hashed`) stand for, by hash; every name is hashed once, and only when some
    /// store keys its entries by hash.
    static func hashedNames(_ hashed: Set<String>, visited: [(host: String, inside: Bool)], policy: Policy) -> [String: (host: String, inside: Bool)] {
        guard !hashed.isEmpty else { return [:] }
        var wanted: [HSTSEntry.DigestKey: String] = [:]
        for hash in hashed { if let digest = Data(base64Encoded: hash), let key = HSTSEntry.DigestKey(digest) { wanted[key] = hash } }
        var names: [String: (host: String, inside: Bool)] = [:]
        // The unit's own hosts win over a public one of the same hash, as before.
        let suffixes = policy.dnsAllowedSuffixes.map { $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: ".")) }
        func add(_ name: String, inside: Bool) {
            if let key = HSTSEntry.chromiumKey(name), let hash = wanted[key] { names[hash] = (name, inside) }
        }
        for (host, inside) in visited where !inside { add(host, inside: false) }
        for suffix in suffixes { add(suffix, inside: true) }
        for (host, inside) in visited where inside { add(host, inside: true) }
        return names
    }

    static func time(_ date: Date?) -> JSONValue { .optional(date.map { RFC3339.string(from: $0) }) }

    /// The findings of every history, each saying so when the policy's networks, against which
    /// visited hosts are judged, include public space (as the other network rules say it).
    static func history(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        context.statingPublicSpace(histories(all, context))
    }

    static func histories(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.browserHistory
        let facts = all.browserHistory
        let policy = context.policy
        var findings = context.sourceErrors(rule, facts.sources) { _ in true }
        let sources = context.evidence("sources", "host", .array(facts.sources.map(\.json)))
        if facts.source("/etc/passwd")?.state == .missing, facts.homes.isEmpty {
            // Not an installed system's root, nor a home partition: nobody's browser can be here.
            return findings + [context.finding(
                rule, subject: "host", status: .notapplicable,
                detail: "No /etc/passwd, /root or /home under the audited root, and no top directory with a user's dot-directories: no user account or home directory, so there is no browser profile to examine.",
                evidence: [sources])]
        }
        let installedAt = all.installation.installedAt
        let (insideHosts, inside, visited) = judgements(facts, policy)
        let isInside = { (host: String) in inside[host] ?? UnitHostJudge(policy).isInside(host) }
        // Chromium's HSTS entries name a hash: the hosts of the machine's histories and the
        // policy's DNS suffixes themselves, hashed as Chromium keys them, tell which they are.
        let hashes = hashedNames(Set(facts.profiles.flatMap { $0.hsts.compactMap(\.hashedHost) }), visited: visited, policy: policy)

        for (profile, judged) in zip(facts.profiles, insideHosts) {
            findings.append(judge(profile, context: context, installedAt: installedAt, hashes: hashes, hostsInside: judged, isInside: isInside))
        }
        if facts.profiles.isEmpty, !findings.contains(where: { $0.status == .error }) {
            let homes = facts.homes.map(\.home)
            let bounded = facts.homes.compactMap { home in home.truncated.map { "\(home.home): \($0)" } }
            let boundText = bounded.isEmpty ? "" : " The search was bounded: \(bounded.joined(separator: "; "))."
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "No browser profile in \(homes.count) home director\(homes.count == 1 ? "y" : "ies") (\(HardwareChecks.list(homes))): none at the paths of \(BrowserFamily.allCases.count) browser families' known locations, and no SQLite file with a history schema among \(facts.homes.reduce(0) { $0 + $1.examined }) entries searched.\(boundText) A browser that was removed with its profile leaves nothing here. \(limits)",
                evidence: [sources, context.evidence("homes", "host", .array(facts.homes.map(homeJSON)))]))
        }
        return findings
    }

    static func homeJSON(_ home: SearchedHome) -> JSONValue {
        .object([
            ("user", .string(home.user)), ("home", .string(home.home)), ("entries_examined", .integer(home.examined)),
            ("sqlite_files_opened", .integer(home.sqliteFiles)), ("bounded", .optional(home.truncated)),
        ])
    }

    /// One finding per profile; `hostsInside` judges its hosts, `isInside` any other name.
    static func judge(
        _ profile: BrowserProfile, context: CheckContext, installedAt: Date?, hashes: [String: (host: String, inside: Bool)], hostsInside: [Bool],
        isInside: (String) -> Bool
    ) -> Finding {
        let rule = RuleCatalogue.browserHistory
        let policy = context.policy
        let full = policy.history.report == .url
        let who = "\(profile.browser) profile \(profile.directory.split(separator: "/").last.map(String.init) ?? profile.directory) of \(profile.user)"
        var base: [(String, JSONValue)] = [
            ("browser", .string(profile.browser)), ("family", .optional(profile.family?.rawValue)), ("user", .string(profile.user)),
            ("profile", .string(profile.directory)), ("database", .optional(profile.database)), ("found_by", .string(profile.discovery.rawValue)),
            ("database_modified", time(profile.databaseModified)), (profile.readInPlace ? "read_in_place" : "copied", .array(profile.copied.map(\.json))),
        ]
        if profile.database != nil, profile.error == nil {
            base.append(("url_table", .string(profile.urlTableWalked ? "walked from the file's b-tree" : "read by SQLite")))
        }
        if let stopped = profile.urlTableWalkStopped { base.append(("url_table_walk_stopped", .string(stopped))) }
        if let error = profile.error {
            base.append(("error", .string(error)))
            if let store = profile.hstsStore { base.append(("hsts_store", store.json)) }
            return context.finding(
                rule, subject: profile.subject, status: .error,
                detail: "Could not read the history of the \(who) (\(profile.subject)): \(error). Its visits can be neither listed nor vouched for.",
                evidence: [context.evidence("browser-profile", profile.subject, .object(base))])
        }
        // Newest first, then by name: the order the probe looked first visits up in.
        let publicIndices = profile.hosts.indices.filter { !hostsInside[$0] }
        let publicHosts = PublicHosts(profile.hosts, publicIndices)
        let insideHosts = profile.hosts.count - publicHosts.count
        let publicDownloads = profile.downloads.filter { !isInside($0.host) }
        // HSTS: Firefox names the host; Chromium a hash, told apart by hashing the hosts known.
        var publicHSTS: [(name: String, entry: HSTSEntry)] = []
        var insideHSTS = 0
        for entry in profile.hsts {
            if let host = entry.host {
                if isInside(host) { insideHSTS += 1 } else { publicHSTS.append((host, entry)) }
            } else if let hash = entry.hashedHost, let known = hashes[hash] {
                if known.inside { insideHSTS += 1 } else { publicHSTS.append((known.host, entry)) }
            } else {
                publicHSTS.append(("(hashed: not one of the unit's hosts)", entry))
            }
        }
        let visitsJSON: [JSONValue] = publicHosts.listed.map { host in
            var row: [(String, JSONValue)] = [
                ("host", .string(host.host)), ("urls", .integer(host.urls)), ("visits", .integer(host.visits)), ("typed", .bool(host.typed)),
                ("first_visit", time(host.firstVisit)), ("last_visit", time(host.lastVisit)),
            ]
            if full { row.append(("last_url", .string(host.lastURL))) }
            if let installedAt, let first = host.firstVisit, first < installedAt { row.append(("before_installation", .bool(true))) }
            return .object(row)
        }
        let downloadsJSON: [JSONValue] = publicDownloads.prefix(evidenceLimit).map { download in
            var row: [(String, JSONValue)] = [
                ("host", .string(download.host)), ("count", .integer(download.count)), ("bytes", .int(download.bytes)), ("last", time(download.last)),
            ]
            if full { row += [("last_url", .string(download.lastURL)), ("last_target", .string(download.lastTarget))] }
            return .object(row)
        }
        let hstsJSON: [JSONValue] = publicHSTS.prefix(evidenceLimit).map { item in
            .object([
                ("host", .string(item.name)), ("hashed_host", .optional(item.entry.hashedHost)), ("observed", time(item.entry.observed)),
                ("expiry", time(item.entry.expiry)), ("include_subdomains", .bool(item.entry.includeSubdomains)),
            ])
        }
        base += [
            ("visits_kept", .integer(profile.totalVisits)), ("oldest_visit", time(profile.oldestVisit)), ("newest_visit", time(profile.newestVisit)),
            ("hosts", .integer(profile.hosts.count)), ("hosts_inside_unit", .integer(insideHosts)), ("public_hosts", .integer(publicHosts.count)),
            ("internal_entries", .integer(profile.internalEntries)), ("public_visits", .array(visitsJSON)),
            ("public_visits_listed", .string("the \(visitsJSON.count) public host(s) visited last, of \(publicHosts.count)")),
            ("public_downloads", .array(downloadsJSON)), ("hsts_store", profile.hstsStore.map(\.json) ?? .null),
            ("hsts_entries", .integer(profile.hsts.count)), ("hsts_inside_unit", .integer(insideHSTS)), ("public_hsts", .array(hstsJSON)),
            ("installed_at", time(installedAt)), ("report", .string(policy.history.report.rawValue)),
        ]
        let evidence = [context.evidence("browser-profile", profile.subject, .object(base))]
        let oldest = profile.oldestVisit.map { "oldest visit kept \(RFC3339.string(from: $0))" } ?? "no visit kept"
        let modified = profile.databaseModified.map { ", database modified \(RFC3339.string(from: $0))" } ?? ""
        if let store = profile.hstsStore, let reason = store.errorReason {
            return context.finding(
                rule, subject: profile.subject, status: publicHosts.isEmpty ? .error : .fail,
                detail: "\(who.capitalizedFirst): \(publicHosts.count) public host(s) in its history, and its HSTS store \(store.path) could not be read (\(reason)), so sites reached over HTTPS and cleared from the history cannot be ruled out. \(limits)",
                evidence: evidence)
        }
        if publicHosts.isEmpty, publicHSTS.isEmpty, publicDownloads.isEmpty {
            let store = profile.hstsStore.map { " HSTS store \($0.path): \(profile.hsts.count) entr\(profile.hsts.count == 1 ? "y" : "ies"), all the unit's own." } ?? ""
            return context.finding(
                rule, subject: profile.subject, status: .pass,
                detail: "\(who.capitalizedFirst): \(profile.hosts.count) host(s) in \(profile.totalVisits) visits kept, all inside the unit (DNS suffixes \(policy.dnsAllowedSuffixes.joined(separator: ", ")), networks \(policy.unitNetworks.map(\.description).joined(separator: ", "))); \(profile.internalEntries) local or internal page(s) not counted; \(oldest)\(modified).\(store) \(limits)",
                evidence: evidence)
        }
        var parts: [String] = []
        if !publicHosts.isEmpty {
            let first = profile.firstPublicVisit ?? publicHosts.firstVisit
            let span = [first.map { "first \(RFC3339.string(from: $0))" }, publicHosts.lastVisit.map { "last \(RFC3339.string(from: $0))" }].compactMap { $0 }.joined(separator: ", ")
            let typed = publicHosts.typed
            parts.append("\(publicHosts.count) public host(s) visited (\(publicHosts.named(limit: 5)); \(publicHosts.visits) visits\(span.isEmpty ? "" : ", " + span)\(typed > 0 ? "; \(typed) typed into the address bar" : ""))")
        }
        if !publicDownloads.isEmpty {
            parts.append("\(publicDownloads.reduce(0) { $0 + $1.count }) download(s) from \(HardwareChecks.list(publicDownloads.map(\.host), limit: 5))")
        }
        if !publicHSTS.isEmpty {
            let cleared = publicHosts.isEmpty ? " with no public visit left in the history: history was cleared, and HSTS entries need a real HTTPS answer from the site" : ""
            parts.append("\(publicHSTS.count) HSTS entr\(publicHSTS.count == 1 ? "y" : "ies") of hosts outside the unit in \(profile.hstsStore?.path ?? "the HSTS store")\(cleared)")
        }
        var copied = ""
        if let installedAt, let first = profile.firstPublicVisit ?? publicHosts.firstVisit ?? profile.oldestVisit, first < installedAt {
            copied = " Visits older than this system's installation (\(RFC3339.string(from: installedAt))): profile copied from elsewhere?"
        }
        return context.finding(
            rule, subject: profile.subject, status: .fail,
            detail: "\(who.capitalizedFirst): " + parts.joined(separator: "; ") + "; \(oldest)\(modified).\(copied) \(limits)",
            evidence: evidence)
    }
}

extension BrowserHistoryFacts {
    /// The recorded outcome for a source path.
    func source(_ path: String) -> FactSource? { sources.first { $0.path == path } }
}

/// A profile's public hosts: counted and summed whole, and the ones a finding lists (newest last
/// visit first, then by name) picked without sorting the thousands of others.
struct PublicHosts {
    /// How many.
    let count: Int
    /// The listed ones (`BrowserProfile.firstVisitHosts` at most), in order.
    let listed: [BrowserHostVisits]
    /// Their visits, summed.
    let visits: Int
    /// How many had a URL typed into the address bar.
    let typed: Int
    /// The earliest first visit looked up, and the latest last visit.
    let firstVisit: Date?
    let lastVisit: Date?

    init(_ hosts: [BrowserHostVisits], _ indices: [Int]) {
        count = indices.count
        var (visits, typed) = (0, 0)
        var (first, last): (Date?, Date?) = (nil, nil)
        for index in indices {
            visits = visits.addingSaturated(hosts[index].visits)
            if hosts[index].typed { typed += 1 }
            if let date = hosts[index].firstVisit, first.map({ date < $0 }) ?? true { first = date }
            if let date = hosts[index].lastVisit, last.map({ date > $0 }) ?? true { last = date }
        }
        (self.visits, self.typed, firstVisit, lastVisit) = (visits, typed, first, last)
        listed = BrowserProfile.newestFirst(hosts, indices, limit: BrowserProfile.firstVisitHosts).map { hosts[$0] }
    }

    var isEmpty: Bool { count == 0 }

    /// The first `limit` listed hosts' names, and how many more.
    func named(limit: Int) -> String { HardwareChecks.list(listed.prefix(limit).map(\.host), of: count) }
}
