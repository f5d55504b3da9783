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
    /// What was seen, as a value or as the verified bytes it was read from.
    var content: JSONData

    /// What was seen. Read from a verified payload, it is made from the payload's bytes each time
    /// it is read (verification checked them strictly); read it once and keep it.
    public var data: JSONValue {
        get { content.value }
        set { content = .value(newValue) }
    }

    /// Makes a piece of evidence.
    public init(kind: String, source: String, observedAt: Date, data: JSONValue) {
        self.kind = kind
        self.source = source
        self.observedAt = observedAt
        self.content = .value(data)
    }

    /// Makes a piece of evidence whose data are JSON bytes already checked by the strict rules.
    init(kind: String, source: String, observedAt: Date, content: JSONData) {
        self.kind = kind
        self.source = source
        self.observedAt = observedAt
        self.content = content
    }

    /// Equal kind, source, time and data.
    public static func == (lhs: Evidence, rhs: Evidence) -> Bool {
        lhs.kind == rhs.kind && lhs.source == rhs.source && lhs.observedAt == rhs.observedAt && lhs.content == rhs.content
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
    /// What the rule looked at, as values or as the verified bytes it was read from.
    var evidenceContent: EvidenceList

    /// What the rule looked at. Read from a verified payload, it is made from the payload's bytes
    /// each time it is read (verification checked them strictly); read it once and keep it.
    public var evidence: [Evidence] {
        get { evidenceContent.value }
        set { evidenceContent = .value(newValue) }
    }

    /// Makes a finding.
    public init(
        uid: String, rule: RuleInfo, subject: String, severity: Severity, status: Status, statusDetail: String,
        observedAt: Date, evidence: [Evidence]
    ) {
        self.init(
            uid: uid, rule: rule, subject: subject, severity: severity, status: status, statusDetail: statusDetail,
            observedAt: observedAt, evidenceContent: .value(evidence))
    }

    /// Makes a finding whose evidence is a JSON array already checked by the strict rules.
    init(
        uid: String, rule: RuleInfo, subject: String, severity: Severity, status: Status, statusDetail: String,
        observedAt: Date, evidenceContent: EvidenceList
    ) {
        self.uid = uid
        self.rule = rule
        self.subject = subject
        self.severity = severity
        self.status = status
        self.statusDetail = statusDetail
        self.observedAt = observedAt
        self.evidenceContent = evidenceContent
    }

    /// Equal in every field, evidence included.
    public static func == (lhs: Finding, rhs: Finding) -> Bool {
        lhs.uid == rhs.uid && lhs.rule == rhs.rule && lhs.subject == rhs.subject && lhs.severity == rhs.severity && lhs.status == rhs.status
            && lhs.statusDetail == rhs.statusDetail && lhs.observedAt == rhs.observedAt && lhs.evidenceContent == rhs.evidenceContent
    }

    /// The stable id for a (host, rule, subject) triple.
    public static func uid(hostID: String, ruleID: String, subject: String) -> String {
        let digest = SHA256.hash(data: Array("\(hostID)\u{0}\(ruleID)\u{0}\(subject)".utf8))
        return Hex.lower(digest.prefix(16))
    }

    /// A finding's `rule` member: the rule's id, version and title.
    static func ruleJSON(_ rule: RuleInfo) -> JSONValue {
        ["id": .string(rule.id), "version": .string(rule.version), "title": .string(rule.title)]
    }

    /// A finding's `references` member.
    static func referencesJSON(_ references: [Reference]) -> JSONValue { .array(references.map(\.json)) }

    /// The report's JSON form of a finding.
    public var json: JSONValue {
        [
            "uid": .string(uid),
            "rule": Self.ruleJSON(rule),
            "references": Self.referencesJSON(rule.references),
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
    /// What happened, as a value or as the verified bytes it was read from.
    var content: JSONData

    /// What happened. Read from a verified payload, it is made from the payload's bytes each time
    /// it is read (verification checked them strictly); read it once and keep it.
    public var data: JSONValue {
        get { content.value }
        set { content = .value(newValue) }
    }

    /// Makes an event.
    public init(type: String, observedAt: Date, data: JSONValue) {
        self.type = type
        self.observedAt = observedAt
        self.content = .value(data)
    }

    /// Makes an event whose data are JSON bytes already checked by the strict rules.
    init(type: String, observedAt: Date, content: JSONData) {
        self.type = type
        self.observedAt = observedAt
        self.content = content
    }

    /// Equal type, time and data.
    public static func == (lhs: Event, rhs: Event) -> Bool {
        lhs.type == rhs.type && lhs.observedAt == rhs.observedAt && lhs.content == rhs.content
    }

    /// `{type, observed_at, data}`.
    public var json: JSONValue {
        ["type": .string(type), "observed_at": .string(RFC3339.string(from: observedAt)), "data": data]
    }
}

/// The `data` of evidence and events: a value, or the bytes of one JSON value inside a verified
/// payload, which the direct decoder checked by `JSONParser`'s rules without making the value.
/// The bytes become a value only when someone reads it, so verification does not pay for strings,
/// arrays and objects that nobody looks at.
enum JSONData: Sendable, Equatable {
    /// A value.
    case value(JSONValue)
    /// One JSON value's bytes (a slice of the payload), known to parse.
    case checked(ArraySlice<UInt8>)

    /// The value, parsed from the bytes when it is kept as bytes.
    var value: JSONValue {
        switch self {
        case .value(let value): return value
        case .checked(let bytes): return JSONParser.parseChecked(bytes)
        }
    }

    /// Equal values; the same bytes are the same value without parsing them.
    static func == (lhs: JSONData, rhs: JSONData) -> Bool {
        if case .checked(let a) = lhs, case .checked(let b) = rhs, a.elementsEqual(b) { return true }
        return lhs.value == rhs.value
    }
}

/// The evidence of a finding: values, or the bytes of its JSON array inside a verified payload,
/// which the direct decoder checked item by item without making them.
enum EvidenceList: Sendable, Equatable {
    /// Values.
    case value([Evidence])
    /// The array's bytes (a slice of the payload), known to decode.
    case checked(ArraySlice<UInt8>)

    /// The evidence, decoded from the bytes when it is kept as bytes.
    var value: [Evidence] {
        switch self {
        case .value(let value): return value
        case .checked(let bytes): return Report.evidence(checked: bytes)
        }
    }

    /// Equal evidence; the same bytes are the same evidence without decoding them.
    static func == (lhs: EvidenceList, rhs: EvidenceList) -> Bool {
        if case .checked(let a) = lhs, case .checked(let b) = rhs, a.elementsEqual(b) { return true }
        return lhs.value == rhs.value
    }
}
