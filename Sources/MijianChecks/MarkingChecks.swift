import MijianCore

/// `data.markings` (七.8, deduction item 54): an unclassified computer never stores classified
/// information. A document whose first page (or page header) carries a marking of the national
/// grammar fails the rule; mentions (the marking's text inside running text, a footer) are listed,
/// not failed. On a classified workstation the same scan is an inventory: `informational`.
public enum MarkingChecks {
    /// Most files named in one evidence entry; the totals always count all of them.
    public static let evidenceFiles = 200

    /// The verdict on a scan of the policy's scope. A file that could not be read, or a path that
    /// could not be walked, keeps a clean scan from passing (`error`): what was not read is not vouched for.
    public static func evaluate(_ facts: MarkingFacts, context: CheckContext) -> Finding {
        let rule = RuleCatalogue.dataMarkings
        guard context.policy.isEnabled(rule.id) else {
            return context.finding(
                rule, subject: "host", status: .notchecked,
                detail: "Disabled by policy \(context.policy.id) (rules.\(rule.id).enabled: false).", evidence: [])
        }
        let holders = containerPaths(facts)
        let marked = facts.files.filter { $0.status == .marked && !isContainer($0, holders) }
        let mentioned = facts.files.filter { $0.status == .mentioned && !isContainer($0, holders) }
        let unread = facts.files.filter { $0.status == .unread && !isContainer($0, holders) }
        var evidence = [context.evidence("scan", facts.root, .object([
            ("paths", .strings(facts.paths)), ("totals", facts.totals.json), ("notes", .strings(facts.notes)),
        ]))]
        if !marked.isEmpty { evidence.append(context.evidence("marked-files", facts.root, list(marked))) }
        if !unread.isEmpty { evidence.append(context.evidence("unread-files", facts.root, list(unread))) }
        if !facts.errors.isEmpty {
            evidence.append(context.evidence("unwalked-paths", facts.root, .array(facts.errors.prefix(evidenceFiles).map {
                .object([("path", .string($0.path)), ("reason", .string($0.reason))])
            })))
        }
        if !mentioned.isEmpty { evidence.append(context.evidence("mentions", facts.root, list(mentioned))) }
        let scope = "under \(facts.paths.joined(separator: ", "))"
        let read = facts.totals.files - facts.totals.unread
        if context.policy.profile == .classified {
            return context.finding(
                rule, subject: "host", status: .informational,
                detail: "Inventory of marked documents \(scope): \(marked.count) marked, \(mentioned.count) with mentions, \(unread.count) unread (a classified workstation may hold them).",
                evidence: evidence)
        }
        if !marked.isEmpty {
            let levels = Set(marked.flatMap { $0.hits.filter { $0.kind == .marking }.map(\.level.rawValue) }).sorted().joined(separator: ", ")
            return context.finding(
                rule, subject: "host", status: .fail,
                detail: "\(marked.count) document(s) \(scope) carry a classified marking (\(levels)) on an unclassified computer, e.g. \(marked[0].path).",
                evidence: evidence)
        }
        if !unread.isEmpty || !facts.errors.isEmpty {
            return context.finding(
                rule, subject: "host", status: .error,
                detail: "No marking among the \(read) documents read \(scope), but \(unread.count) document(s) could not be read and \(facts.errors.count) path(s) could not be walked, so they are not vouched for.",
                evidence: evidence)
        }
        return context.finding(
            rule, subject: "host", status: .pass,
            detail: "\(read) documents read \(scope) where a marking sits (first page, page headers); none carries a classified marking (\(mentioned.count) with mentions only).",
            evidence: evidence)
    }

    /// An archive whose status only sums up its members (listed on their own).
    static func isContainer(_ file: FileResult, _ holders: Set<Substring>) -> Bool {
        [.zip, .tar, .gz, .eml, .mbox].contains(file.format) && file.hits.isEmpty && holders.contains(file.path[...])
    }

    /// Every path that some listed member sits inside (`a.zip` of `a.zip!b.docx`, and both
    /// `a.zip` and `a.zip!b.tar` of `a.zip!b.tar!c.txt`): one pass instead of a search per archive.
    static func containerPaths(_ facts: MarkingFacts) -> Set<Substring> {
        var holders: Set<Substring> = []
        for file in facts.files {
            var index = file.path.startIndex
            while let bang = file.path[index...].firstIndex(of: "!") {
                holders.insert(file.path[..<bang])
                index = file.path.index(after: bang)
            }
        }
        return holders
    }

    /// Files as evidence rows: path, format, and each hit's marking text, kind, place and score — never the text around it.
    static func list(_ files: [FileResult]) -> JSONValue {
        .array(files.prefix(evidenceFiles).map { file in
            var members: [(String, JSONValue)] = [("path", .string(file.path)), ("format", .string(file.format.rawValue))]
            if let reason = file.reason { members.append(("reason", .string(file.reason ?? reason))) }
            if !file.hits.isEmpty { members.append(("hits", .array(file.hits.map(\.json)))) }
            return .object(members)
        })
    }
}
