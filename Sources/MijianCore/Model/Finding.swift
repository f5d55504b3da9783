import Crypto
import Foundation

/// The outcome of one rule for one subject.
public enum Status: String, Sendable, CaseIterable, Comparable {
    case pass, fail, error, notapplicable, notchecked, informational

    /// Worst first: fail, error, notchecked, informational, notapplicable, pass.
    var rank: Int {
        switch self {
        case .fail: return 0
        case .error: return 1
        case .notchecked: return 2
        case .informational: return 3
        case .notapplicable: return 4
        case .pass: return 5
        }
    }

    /// Orders the worst status first.
    public static func < (lhs: Status, rhs: Status) -> Bool { lhs.rank < rhs.rank }
}

/// How much a failing finding matters.
public enum Severity: String, Sendable, CaseIterable, Comparable {
    case informational, low, medium, high, critical

    /// Orders least severe first.
    public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }

    private var rank: Int {
        switch self {
        case .informational: return 0
        case .low: return 1
        case .medium: return 2
        case .high: return 3
        case .critical: return 4
        }
    }
}

/// A pointer into a rule system: the self-assessment items (`bm-self-assessment`, `七.7`) or the score table (`bm-score`, `53`).
public struct Reference: Hashable, Sendable, JSONRepresentable {
    /// Which system the id belongs to.
    public let system: String
    /// The item within that system.
    public let id: String

    /// Makes a reference.
    public init(system: String, id: String) {
        self.system = system
        self.id = id
    }

    /// A self-assessment item of section 七 and the like, e.g. `七.7`.
    public static func item(_ id: String) -> Reference { Reference(system: "bm-self-assessment", id: id) }
    /// A score-table item, e.g. `53`.
    public static func score(_ id: String) -> Reference { Reference(system: "bm-score", id: id) }

    /// `{system, id}`.
    public var json: JSONValue { ["system": .string(system), "id": .string(id)] }
}

/// One piece of what a rule looked at: where it came from, when, and the data.
public struct Evidence: Sendable, Equatable, JSONRepresentable {
    /// What kind of source: `file`, `directory`, `netlink`, `procfs`, `sysfs`, `pcap`, …
    public var kind: String
    /// The path, table or interface read.
    public var source: String
    /// When it was read.
    public var observedAt: Date
    /// What was seen.
    public var data: JSONValue

    /// Makes a piece of evidence.
    public init(kind: String, source: String, observedAt: Date, data: JSONValue) {
        self.kind = kind
        self.source = source
        self.observedAt = observedAt
        self.data = data
    }

    /// `{kind, source, observed_at, data}`.
    public var json: JSONValue {
        ["kind": .string(kind), "source": .string(source), "observed_at": .string(RFC3339.string(from: observedAt)), "data": data]
    }
}

/// A rule's verdict on one subject, with the evidence behind it.
public struct Finding: Sendable, Equatable, JSONRepresentable {
    /// Stable across reports: hash of host id, rule id and subject.
    public var uid: String
    /// The rule that decided.
    public var rule: RuleInfo
    /// What was judged: an interface, a device path, `host`, …
    public var subject: String
    /// Severity after policy overrides.
    public var severity: Severity
    /// The verdict.
    public var status: Status
    /// One human sentence of why.
    public var statusDetail: String
    /// When the facts were observed.
    public var observedAt: Date
    /// What the rule looked at.
    public var evidence: [Evidence]

    /// Makes a finding.
    public init(
        uid: String, rule: RuleInfo, subject: String, severity: Severity, status: Status, statusDetail: String,
        observedAt: Date, evidence: [Evidence]
    ) {
        self.uid = uid
        self.rule = rule
        self.subject = subject
        self.severity = severity
        self.status = status
        self.statusDetail = statusDetail
        self.observedAt = observedAt
        self.evidence = evidence
    }

    /// The stable id for a (host, rule, subject) triple.
    public static func uid(hostID: String, ruleID: String, subject: String) -> String {
        let digest = SHA256.hash(data: Array("\(hostID)\u{0}\(ruleID)\u{0}\(subject)".utf8))
        return Hex.lower(digest.prefix(16))
    }

    /// The report's JSON form of a finding.
    public var json: JSONValue {
        [
            "uid": .string(uid),
            "rule": ["id": .string(rule.id), "version": .string(rule.version), "title": .string(rule.title)],
            "references": .array(rule.references.map(\.json)),
            "subject": .string(subject),
            "severity": .string(severity.rawValue),
            "status": .string(status.rawValue),
            "status_detail": .string(statusDetail),
            "observed_at": .string(RFC3339.string(from: observedAt)),
            "evidence": .array(evidence.map(\.json)),
        ]
    }
}

/// Something the daemon saw between reports: a USB device, a flow, an enforcement action.
public struct Event: Sendable, Equatable, JSONRepresentable {
    /// `usb.attach`, `traffic.flow`, `usb.blocked`, …
    public var type: String
    /// When it happened.
    public var observedAt: Date
    /// What happened.
    public var data: JSONValue

    /// Makes an event.
    public init(type: String, observedAt: Date, data: JSONValue) {
        self.type = type
        self.observedAt = observedAt
        self.data = data
    }

    /// `{type, observed_at, data}`.
    public var json: JSONValue {
        ["type": .string(type), "observed_at": .string(RFC3339.string(from: observedAt)), "data": data]
    }
}
