import Foundation
import MijianCore

/// A whole scan: what was asked, what was found, counted. JSON shape (`mijian scan --format json`):
///
/// ```
/// {"schema": "mijian.scan/v1", "root": "/", "paths": ["/home"],
///  "policy": {"id", "version", "sha256"}, "started_at", "finished_at",
///  "files": [{"path", "format", "status", "size", "reason"?, "encoding"?, "from_index",
///             "hits": [{"kind", "level", "text", "period", "where": {"part", "page", "line", "region"},
///                       "score", "reason"}]}],
///  "errors": [{"path", "reason"}], "notes": [String],
///  "totals": {"files", "marked", "mentioned", "clean", "unread", "not_documents", "excluded",
///             "from_index", "bytes_read", "bytes_examined"},
///  "finding": {"rule", "status", "detail"}}
/// ```
///
/// `files` lists every document examined (archive members as `archive.zip!member`); files that are
/// not documents are only counted. `errors` lists paths that could not be walked at all (a
/// directory that could not be listed, a symbolic link out of the root, a FIFO given as a path).
public struct ScanReport: Sendable {
    /// What the scan found.
    public var facts: MarkingFacts
    /// The policy in force.
    public var policy: PolicyInfo
    /// When the scan started and finished.
    public var startedAt: Date, finishedAt: Date
    /// The `data.markings` verdict on these results, when one was made.
    public var finding: Finding?

    /// Makes a report.
    public init(facts: MarkingFacts, policy: PolicyInfo, startedAt: Date, finishedAt: Date, finding: Finding? = nil) {
        self.facts = facts
        self.policy = policy
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.finding = finding
    }

    /// The report as JSON (fixed key order).
    public var json: JSONValue {
        .object([
            ("schema", "mijian.scan/v1"),
            ("root", .string(facts.root)),
            ("paths", .strings(facts.paths)),
            ("policy", .object([("id", .string(policy.id)), ("version", .string(policy.version)), ("sha256", .string(policy.sha256))])),
            ("started_at", .string(RFC3339.string(from: startedAt))),
            ("finished_at", .string(RFC3339.string(from: finishedAt))),
            ("files", .array(facts.files.map(\.json))),
            ("errors", .array(facts.errors.map { .object([("path", .string($0.path)), ("reason", .string($0.reason))]) })),
            ("notes", .strings(facts.notes)),
            ("totals", facts.totals.json),
            ("finding", finding.map { finding in
                .object([("rule", .string(finding.rule.id)), ("status", .string(finding.status.rawValue)), ("detail", .string(finding.statusDetail))])
            } ?? .null),
        ])
    }
}
