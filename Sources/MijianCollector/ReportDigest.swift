import Foundation
import MijianCore

/// A removable medium's identity: USB vendor and product ids and the serial string.
public struct MediumIdentity: Sendable, Hashable, Comparable {
    /// idVendor, lower-case hex.
    public var vendor: String
    /// idProduct, lower-case hex.
    public var product: String
    /// The USB serial string as the device reports it.
    public var serial: String

    /// Makes an identity; ids are normalised to lower case, the serial is trimmed.
    public init(vendor: String, product: String, serial: String) {
        self.vendor = vendor.lowercased().trimmingCharacters(in: .whitespaces)
        self.product = product.lowercased().trimmingCharacters(in: .whitespaces)
        self.serial = serial.trimmingCharacters(in: .whitespaces)
    }

    /// `0781:5583 serial 4C53…`, as people read it.
    public var text: String { "\(vendor):\(product) \(serial)" }

    /// Orders by vendor, product, serial.
    public static func < (lhs: MediumIdentity, rhs: MediumIdentity) -> Bool {
        (lhs.vendor, lhs.product, lhs.serial) < (rhs.vendor, rhs.product, rhs.serial)
    }

    /// Finds every medium named in a JSON value: any object (at any depth) with string members
    /// `vendor`, `product` and a non-empty `serial`. That is how the USB checks and events put a
    /// device into their evidence, and it keeps the collector independent of each check's layout.
    public static func all(in value: JSONValue) -> [MediumIdentity] {
        var out: [MediumIdentity] = []
        collect(value, into: &out, depth: 0)
        return out
    }

    private static func collect(_ value: JSONValue, into out: inout [MediumIdentity], depth: Int) {
        guard depth < 32 else { return }
        switch value {
        case .object(let members):
            if let vendor = value["vendor"]?.stringValue, let product = value["product"]?.stringValue,
                let serial = value["serial"]?.stringValue, !serial.trimmingCharacters(in: .whitespaces).isEmpty,
                !vendor.isEmpty, !product.isEmpty
            {
                out.append(MediumIdentity(vendor: vendor, product: product, serial: serial))
            }
            for (_, member) in members { collect(member, into: &out, depth: depth + 1) }
        case .array(let elements):
            for element in elements { collect(element, into: &out, depth: depth + 1) }
        default:
            break
        }
    }
}

/// What the collector keeps of one verified report besides its envelope: the parts that the
/// correlation and the assessment read, so a year of ten thousand machines is answered from
/// aggregates rather than by re-reading every report.
struct ReportDigest: Sendable {
    /// The report's findings counted per rule, as both stores add them to `host_rules`, in
    /// ascending order of rule id (counted when the report is verified, not by the one writer).
    let ruleCounts: [(rule: String, count: RuleCount)]
    /// The refusal when text the stores keep breaks what both can hold, or nil: a rule id past the
    /// identity fields' bounds (`IdentityBounds`), or a NUL in a medium's identity. A rule id keys
    /// the machine's counts and findings on every backend; a NUL was cut there by SQLite's driver
    /// (two rules sharing their first bytes counted as one) and refused by PostgreSQL as a server
    /// error (the report answered `internal`, and sent again for ever). Rule ids are the agent's
    /// own names and device strings come from sysfs, which holds no NUL: such a report is forged,
    /// and refused before either backend sees it. (A finding's subject or detail may quote a file
    /// that holds a NUL: there it is written `␀`, see `FindingRow`.)
    let textRefusal: IngestRefusal?

    /// Text for the stores' columns: a NUL written as U+2400 (`␀`), which both backends keep and a
    /// reader sees. The envelope, kept byte for byte, holds the text as signed.
    static func storable(_ text: String) -> String {
        text.utf8.contains(0) ? text.replacingOccurrences(of: "\u{0}", with: "\u{2400}") : text
    }

    static func countRules(_ findings: [FindingRow]) -> [(rule: String, count: RuleCount)] {
        var counts: [String: RuleCount] = [:]
        for finding in findings {
            var count = counts[finding.ruleID] ?? RuleCount()
            switch finding.status {
            case .pass: count.pass += 1
            case .fail: count.fail += 1
            case .error: count.error += 1
            case .notapplicable, .notchecked, .informational: count.other += 1
            }
            counts[finding.ruleID] = count
        }
        return counts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// One finding reduced to what the assessment lists.
    struct FindingRow: Sendable {
        var ruleID: String
        var subject: String
        var status: Status
        var detail: String
        var observedAt: Date
    }

    /// A medium seen in the report and the rule or event that saw it.
    struct MediumRow: Sendable, Hashable {
        var identity: MediumIdentity
        var source: String
    }

    var report: Report
    var year: Int
    var findings: [FindingRow]
    var media: [MediumRow]

    /// Rules whose evidence names removable media.
    static let mediaRules: Set<String> = ["usb.storage", "usb.history"]

    init(report: Report) {
        self.report = report
        self.year = CollectorCalendar.year(of: report.issuedAt)
        let findings = report.findings.map {
            FindingRow(ruleID: $0.rule.id, subject: Self.storable($0.subject), status: $0.status, detail: Self.storable($0.statusDetail), observedAt: $0.observedAt)
        }
        self.findings = findings
        let ruleCounts = Self.countRules(findings)
        self.ruleCounts = ruleCounts
        var media: [MediumRow] = []
        var seen = Set<MediumRow>()
        for finding in report.findings where Self.mediaRules.contains(finding.rule.id) {
            for evidence in finding.evidence {
                for identity in MediumIdentity.all(in: evidence.data) {
                    let row = MediumRow(identity: identity, source: finding.rule.id)
                    if seen.insert(row).inserted { media.append(row) }
                }
            }
        }
        for event in report.events where event.type.hasPrefix("usb.") {
            for identity in MediumIdentity.all(in: event.data) {
                let row = MediumRow(identity: identity, source: event.type)
                if seen.insert(row).inserted { media.append(row) }
            }
        }
        self.media = media
        self.textRefusal = IdentityBounds.refusal(fields: ruleCounts.map { ("report.findings[].rule.id", $0.rule) }) ?? Self.nulRefusal(media: media)
    }

    private static func nulRefusal(media: [MediumRow]) -> IngestRefusal? {
        func refusal(_ field: String) -> IngestRefusal {
            IngestRefusal(.malformed, detail: "\(field) holds a NUL character; no text the collector stores holds one")
        }
        for medium in media {
            let fields = [("vendor", medium.identity.vendor), ("product", medium.identity.product), ("serial", medium.identity.serial), ("source", medium.source)]
            if let (name, _) = fields.first(where: { $0.1.utf8.contains(0) }) { return refusal("a removable medium's \(name) in the evidence of \(medium.source.utf8.contains(0) ? "an event" : medium.source)") }
        }
        return nil
    }
}

/// Calendar arithmetic in UTC, the only time zone the collector reasons in.
public enum CollectorCalendar {
    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        return calendar
    }()

    /// The UTC calendar year of a date.
    public static func year(of date: Date) -> Int { calendar.component(.year, from: date) }

    /// 1 January 00:00:00 UTC of a year.
    public static func start(of year: Int) -> Date {
        calendar.date(from: DateComponents(year: year, month: 1, day: 1)) ?? Date(timeIntervalSince1970: 0)
    }

    /// 1 January 00:00:00 UTC of the following year.
    public static func end(of year: Int) -> Date { start(of: year + 1) }

    /// Whole days from one date to another (0 when `to` is earlier).
    public static func days(from: Date, to: Date) -> Int { max(0, Int((to.timeIntervalSince(from) / 86_400).rounded(.down))) }
}
