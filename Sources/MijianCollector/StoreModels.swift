import Foundation
import MijianCore

/// One enrolled key of the registry.
public struct KeyRecord: Sendable, Equatable {
    /// `sha256:<hex>` of the public key's SPKI DER.
    public var keyid: String
    /// The public key, PEM.
    public var pem: String
    /// The machine the key speaks for.
    public var hostID: String
    /// Its host name at enrolment.
    public var hostname: String
    /// 设备编号 at enrolment.
    public var assetID: String?
    /// 密级 at enrolment.
    public var classification: Classification?
    /// 责任人 at enrolment.
    public var responsible: String?
    /// The agent's version at enrolment.
    public var agentVersion: String
    /// The key this one replaces, for a rotation.
    public var previousKeyID: String?
    /// The office's note.
    public var note: String?
    /// When the machine asked.
    public var requestedAt: Date
    /// When the office approved.
    public var approvedAt: Date
    /// SHA-256 of the request's payload, to find the request again.
    public var requestSHA256: String
    /// When the key was revoked, if it was.
    public var revokedAt: Date?
    /// Why it was revoked.
    public var revokeReason: String?

    /// Makes a record.
    public init(
        keyid: String, pem: String, hostID: String, hostname: String, assetID: String?, classification: Classification?,
        responsible: String?, agentVersion: String, previousKeyID: String?, note: String?, requestedAt: Date, approvedAt: Date,
        requestSHA256: String, revokedAt: Date? = nil, revokeReason: String? = nil
    ) {
        self.keyid = keyid
        self.pem = pem
        self.hostID = hostID
        self.hostname = hostname
        self.assetID = assetID
        self.classification = classification
        self.responsible = responsible
        self.agentVersion = agentVersion
        self.previousKeyID = previousKeyID
        self.note = note
        self.requestedAt = requestedAt
        self.approvedAt = approvedAt
        self.requestSHA256 = requestSHA256
        self.revokedAt = revokedAt
        self.revokeReason = revokeReason
    }

    /// Whether the key still verifies reports.
    public var isActive: Bool { revokedAt == nil }

    /// The record as JSON for `enroll list --format json`.
    public var json: JSONValue {
        [
            "keyid": .string(keyid), "host_id": .string(hostID), "hostname": .string(hostname),
            "asset_id": .optional(assetID), "classification": .optional(classification?.rawValue),
            "responsible": .optional(responsible), "agent_version": .string(agentVersion),
            "previous_keyid": .optional(previousKeyID), "note": .optional(note),
            "requested_at": .string(RFC3339.string(from: requestedAt)), "approved_at": .string(RFC3339.string(from: approvedAt)),
            "request_sha256": .string(requestSHA256),
            "revoked_at": .optional(revokedAt.map { RFC3339.string(from: $0) }), "revoke_reason": .optional(revokeReason),
        ]
    }
}

/// A machine as the collector knows it now.
public struct HostRecord: Sendable, Equatable {
    /// The app-specific host id.
    public var hostID: String
    /// Host name from the last report.
    public var hostname: String
    /// 设备编号.
    public var assetID: String?
    /// 密级.
    public var classification: Classification?
    /// 责任人.
    public var responsible: String?
    /// The key of the last accepted report.
    public var keyid: String
    /// Chain head.
    public var chain: ChainState
    /// When the last accepted report was issued (the machine's clock).
    public var lastIssuedAt: Date
    /// When it was received (the collector's clock).
    public var lastReceivedAt: Date
    /// The policy the machine ran.
    public var policyID: String
    /// Its digest.
    public var policySHA256: String
    /// Failures in the last report.
    public var lastFailCount: Int
    /// Reports stored.
    public var reportCount: Int
    /// Forks seen.
    public var forkCount: Int
    /// Missing reports recorded.
    public var missingCount: Int64
    /// The last accepted report's issue time minus its receive time, in seconds (nil for reports stored before this was kept).
    public var lastSkewSeconds: Int64? = nil
    /// Whether the last accepted report's clock was off: `ahead`, `backwards` or `epoch-ahead` (see `ClockSkew`), or nil.
    public var lastSkew: String? = nil
    /// Accepted reports whose clock was off.
    public var skewedReports: Int = 0
}

/// Where a page of the machine list starts: after this machine, in the list's order (host
/// name, then host id, compared as bytes).
public struct HostPosition: Sendable, Equatable {
    /// The host name of the last machine of the previous page.
    public var hostname: String
    /// Its host id.
    public var hostID: String

    /// Makes a position.
    public init(hostname: String, hostID: String) {
        self.hostname = hostname
        self.hostID = hostID
    }

    /// The position just after `record`.
    public init(_ record: HostRecord) { self.init(hostname: record.hostname, hostID: record.hostID) }
}

/// Counts of one rule's findings on one machine in one year.
public struct RuleCount: Sendable, Equatable {
    /// Pass findings.
    public var pass = 0
    /// Fail findings.
    public var fail = 0
    /// Error findings (could not check).
    public var error = 0
    /// Not applicable, not checked, informational.
    public var other = 0
    /// Makes empty counts.
    public init() {}
}

/// One machine's counts per rule in a year: the rule ids in ascending order beside their counts.
/// A machine reports some fifty rules and a unit has up to hundreds of thousands of machines: two
/// arrays cost less than a dictionary each, a snapshot's machines that report the same rules share
/// one array of ids (and one string per id), and a lookup is a binary search.
public struct RuleCounts: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    /// The rule ids, ascending and distinct.
    public private(set) var ruleIDs: [String]
    /// `counts[i]` belongs to `ruleIDs[i]`.
    public private(set) var counts: [RuleCount]

    /// No rule counted.
    public init() {
        ruleIDs = []
        counts = []
    }

    /// Counts from pairs; a rule given twice keeps its last counts.
    public init(dictionaryLiteral elements: (String, RuleCount)...) {
        self.init()
        for (rule, count) in elements { self[rule] = count }
    }

    /// Counts whose ids are ascending and distinct (`isAscending(ruleIDs)`), as they are.
    init(ascending ruleIDs: [String], counts: [RuleCount]) {
        self.ruleIDs = ruleIDs
        self.counts = counts
    }

    /// Whether `ruleIDs` are ascending and distinct, as `init(ascending:counts:)` needs them.
    static func isAscending(_ ruleIDs: [String]) -> Bool { zip(ruleIDs, ruleIDs.dropFirst()).allSatisfy { $0 < $1 } }

    /// How many rules are counted.
    public var count: Int { ruleIDs.count }

    /// Whether no rule is counted.
    public var isEmpty: Bool { ruleIDs.isEmpty }

    /// Where `rule` is, or where it would go.
    private func position(of rule: String) -> (index: Int, found: Bool) {
        var low = 0
        var high = ruleIDs.count
        while low < high {
            let middle = (low + high) / 2
            let id = ruleIDs[middle]
            if id == rule { return (middle, true) }
            if id < rule { low = middle + 1 } else { high = middle }
        }
        return (low, false)
    }

    /// The counts of `rule`, nil when it was not counted; setting nil removes it.
    public subscript(rule: String) -> RuleCount? {
        get {
            let (index, found) = position(of: rule)
            return found ? counts[index] : nil
        }
        set {
            let (index, found) = position(of: rule)
            switch (found, newValue) {
            case (true, let value?): counts[index] = value
            case (true, nil):
                ruleIDs.remove(at: index)
                counts.remove(at: index)
            case (false, let value?):
                ruleIDs.insert(rule, at: index)
                counts.insert(value, at: index)
            case (false, nil): break
            }
        }
    }

    /// Pairs of rule id and counts, in ascending order of id.
    public func makeIterator() -> Zip2Sequence<[String], [RuleCount]>.Iterator { zip(ruleIDs, counts).makeIterator() }
}

/// A machine in one year of the assessment.
public struct HostYear: Sendable, Equatable {
    /// The host id.
    public var hostID: String
    /// Host name.
    public var hostname: String
    /// 设备编号.
    public var assetID: String?
    /// 密级 (nil: the machine did not say).
    public var classification: Classification?
    /// 责任人.
    public var responsible: String?
    /// Reports accepted in the year.
    public var reports: Int
    /// The last one's issue time.
    public var lastIssuedAt: Date?
    /// The last one's payload digest.
    public var lastReportSHA256: String?
    /// The policy digest of the last report.
    public var policySHA256: String?
    /// The policy id of the last report.
    public var policyID: String?
    /// Counts per rule.
    public var rules: RuleCounts

    /// Unclassified machines say so; a machine that does not say is treated as classified.
    public var isClassified: Bool { Self.isClassified(classification) }

    /// Whether a machine of this classification counts as classified (nil: it did not say).
    static func isClassified(_ classification: Classification?) -> Bool { classification?.isClassified ?? true }
}

/// A failing or erroring finding, merged over the year per (host, rule, subject, status).
public struct FindingRecord: Sendable, Equatable {
    /// The host id.
    public var hostID: String
    /// The rule.
    public var ruleID: String
    /// What was judged.
    public var subject: String
    /// fail or error.
    public var status: Status
    /// The latest detail sentence.
    public var detail: String
    /// How many reports carried it.
    public var count: Int
    /// First observation.
    public var firstObservedAt: Date
    /// Last observation.
    public var lastObservedAt: Date
    /// Digest of the first report that carried it.
    public var firstReportSHA256: String
    /// Digest of the last report that carried it.
    public var lastReportSHA256: String
}

/// A medium seen on a machine in a year.
public struct MediumSighting: Sendable, Equatable {
    /// The host id.
    public var hostID: String
    /// The medium.
    public var identity: MediumIdentity
    /// The rule or event that named it.
    public var source: String
    /// First report time that named it.
    public var firstSeen: Date
    /// Last report time that named it.
    public var lastSeen: Date
    /// The last report's digest.
    public var reportSHA256: String
}

/// Missing reports recorded for a host.
public struct GapRecord: Sendable, Equatable {
    /// The host id.
    public var hostID: String
    /// The epoch.
    public var epoch: Int64
    /// First missing seq.
    public var fromSeq: Int64
    /// Last missing seq.
    public var toSeq: Int64
    /// The report that revealed the gap.
    public var reportSHA256: String
    /// When it arrived.
    public var detectedAt: Date

    /// How many reports the gaps leave out, at most `Int64.max`: the bounds come from reports (a
    /// gap stored before jumps were bounded can span nearly all of `Int64`), so every step is
    /// checked and the sum saturates instead of trapping.
    public static func missing(_ gaps: [GapRecord]) -> Int64 {
        var total: Int64 = 0
        for gap in gaps {
            let (span, spanOverflow) = gap.toSeq.subtractingReportingOverflow(gap.fromSeq)
            let (count, countOverflow) = span.addingReportingOverflow(1)
            guard !spanOverflow, !countOverflow else { return Int64.max }
            let (sum, sumOverflow) = total.addingReportingOverflow(max(count, 0))
            guard !sumOverflow else { return Int64.max }
            total = sum
        }
        return total
    }
}

/// A report stored as a fork.
public struct ForkRecord: Sendable, Equatable {
    /// The host id.
    public var hostID: String
    /// The epoch.
    public var epoch: Int64
    /// The contested seq.
    public var seq: Int64
    /// The fork's digest.
    public var reportSHA256: String
    /// When it arrived.
    public var receivedAt: Date
}

/// A stored report whose `issued_at` the collector's clock contradicts.
public struct SkewRecord: Sendable, Equatable {
    /// The host id.
    public var hostID: String
    /// The epoch.
    public var epoch: Int64
    /// The seq.
    public var seq: Int64
    /// The report's digest.
    public var reportSHA256: String
    /// `ahead` or `backwards`.
    public var kind: String
    /// Issue time minus receive time, in seconds.
    public var seconds: Int64
    /// When it was issued (the machine's clock).
    public var issuedAt: Date
    /// When it arrived (the collector's clock).
    public var receivedAt: Date
}

/// Everything the correlation and the assessment read for one year.
public struct UnitSnapshot: Sendable {
    /// The year.
    public var year: Int
    /// Machines that reported in the year or hold an active key.
    public var hosts: [HostYear]
    /// Failing and erroring findings.
    public var findings: [FindingRecord]
    /// Media sightings.
    public var media: [MediumSighting]
    /// Chain gaps revealed in the year.
    public var gaps: [GapRecord]
    /// Forks received in the year.
    public var forks: [ForkRecord]
    /// Reports of the year whose clock was off.
    public var skews: [SkewRecord]

    /// Makes a snapshot.
    public init(year: Int, hosts: [HostYear], findings: [FindingRecord], media: [MediumSighting], gaps: [GapRecord], forks: [ForkRecord], skews: [SkewRecord] = []) {
        self.skews = skews
        self.year = year
        self.hosts = hosts
        self.findings = findings
        self.media = media
        self.gaps = gaps
        self.forks = forks
    }
}

/// Bounds on the text that names a machine, its agent and its policy in a report or an enrolment
/// request. These fields are stored with the host and shown in every listing and assessment, so
/// a report whose identity is longer than `maxFieldBytes` or holds a control character is refused
/// whole, with the field named. Refused, not cut: a stored identity is exactly what the machine
/// signed (a cut one would be a name nobody signed, and two names sharing their first bytes would
/// become one), and a refusal leaves the chain where it was.
public enum IdentityBounds {
    /// Most UTF-8 bytes of one identity field: the rule the agent applies too (`IdentityField`).
    public static let maxFieldBytes = IdentityField.maxBytes

    /// The refusal for a report whose identity fields are out of bounds, or nil.
    public static func refusal(for report: Report) -> IngestRefusal? {
        let host = report.host
        return refusal(fields: [
            ("report.host.host_id", host.hostID), ("report.host.hostname", host.hostname), ("report.host.asset_id", host.assetID),
            ("report.host.responsible", host.responsible), ("report.host.unit", host.unit), ("report.host.os", host.os),
            ("report.host.kernel", host.kernel), ("report.host.boot_id", host.bootID), ("report.agent.name", report.agent.name),
            ("report.agent.version", report.agent.version), ("report.agent.keyid", report.agent.keyid), ("report.policy.id", report.policy.id),
            ("report.policy.version", report.policy.version), ("report.policy.sha256", report.policy.sha256),
        ])
    }

    /// The refusal for the first field (name, value) out of bounds, or nil: `IdentityField`'s rule,
    /// the one the agent's host file and host block keep, so the two sides cannot disagree.
    public static func refusal(fields: [(String, String?)]) -> IngestRefusal? {
        for (name, value) in fields {
            guard let value, let problem = IdentityField.problem(value) else { continue }
            if case .tooLong = problem { return IngestRefusal(.identityTooLong, detail: "\(name) \(problem.detail)") }
            return IngestRefusal(.identityControl, detail: "\(name) \(problem.detail)")
        }
        return nil
    }
}

/// Refusals kept per client address, reason and window: one row per (address, reason, window)
/// with a count, whatever the number of requests.
public struct RefusalRecord: Sendable, Equatable {
    /// The client's address without its port (`http 192.0.2.7`), or the file.
    public var address: String
    /// The refusal's reason.
    public var reason: String
    /// The start of the window.
    public var windowStart: Date
    /// Refusals in the window.
    public var count: Int64
    /// When the window's first refusal came.
    public var firstAt: Date
    /// When its last refusal came.
    public var lastAt: Date
    /// The first refusal's full source (with its port).
    public var source: String
    /// The first refusal's detail, bounded.
    public var detail: String
}

/// Duplicates or replays of one report of one host within one window, counted on one row.
public struct RepeatRecord: Sendable, Equatable {
    /// The host the report names.
    public var hostID: String
    /// The report's payload digest.
    public var payloadSHA256: String
    /// `duplicate` or `replay`.
    public var outcome: String
    /// The start of the window.
    public var windowStart: Date
    /// Submissions in the window.
    public var count: Int64
    /// When the window's first came.
    public var firstAt: Date
    /// When its last came.
    public var lastAt: Date
    /// The first one's source (client address with port, or file), bounded.
    public var source: String
    /// The report's epoch.
    public var epoch: Int64?
    /// The report's seq.
    public var seq: Int64?
    /// The first one's detail.
    public var detail: String
}

/// How much of the refusal log, and of the log of duplicates and replays, the store keeps.
public struct RefusalLogLimits: Sendable, Equatable {
    /// Refusals from one address for one reason, and duplicates or replays of one report, are
    /// counted in one row per window of this many seconds.
    public var windowSeconds: Int64 = 3600
    /// Most rows of the refusal table, and of the repeat table; past it the oldest windows are
    /// dropped and counted. With every text of a row bounded (address and source 256 bytes,
    /// reason 64, detail 512), 10,000 rows stay below 12 MiB.
    public var maxRows = 10_000

    /// The defaults: windows of an hour, 10,000 rows.
    public init() {}

    /// Whether the refusal that brought its row to `count` is logged: the first ten of a row each,
    /// then one at every power of ten (100, 1,000, …), so a flood writes a few lines per address
    /// and reason each window, not one per request. A refusal whose row could not be written
    /// (`nil`) is logged.
    public static func logs(_ count: Int64?) -> Bool {
        guard let count, count > 10 else { return true }
        var power: Int64 = 100
        while power < count {
            let (next, overflow) = power.multipliedReportingOverflow(by: 10)
            if overflow { return false }
            power = next
        }
        return power == count
    }
}
