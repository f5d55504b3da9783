import Foundation

/// A JSON object read strictly: every member named, every type checked, every problem located.
///
/// Used for payloads that crossed a trust boundary (signed reports, enrolment requests), after
/// their bytes came through `JSONParser`. Integers must be JSON integers (`1.0` is refused),
/// timestamps RFC 3339, and members not in the schema are refused so a changed schema is seen.
public struct StrictJSONObject {
    /// The members in document order.
    public let members: [(String, JSONValue)]
    /// Where this object sits, for messages: `report.findings[2].rule`.
    public let path: String

    /// Wraps `value`, which must be an object.
    public init(_ value: JSONValue?, path: String) throws(MijianError) {
        guard let value else { throw MijianError(.malformed, "\(path) is missing") }
        guard let members = value.objectValue else { throw MijianError(.malformed, "\(path) must be an object") }
        self.members = members
        self.path = path
    }

    /// Refuses members outside `allowed`.
    public func only(_ allowed: Set<String>) throws(MijianError) {
        for (key, _) in members where !allowed.contains(key) {
            throw MijianError(.malformed, "\(path) has an unknown member \"\(key)\"")
        }
    }

    /// The member `key`, or nil when absent.
    public func optionalValue(_ key: String) -> JSONValue? {
        members.first(where: { $0.0 == key })?.1
    }

    /// The member `key`, which must be present.
    public func value(_ key: String) throws(MijianError) -> JSONValue {
        guard let value = optionalValue(key) else { throw MijianError(.malformed, "\(path).\(key) is missing") }
        return value
    }

    /// A string member.
    public func string(_ key: String) throws(MijianError) -> String {
        guard let text = try value(key).stringValue else { throw MijianError(.malformed, "\(path).\(key) must be a string") }
        return text
    }

    /// A string member that may be null or absent.
    public func optionalString(_ key: String) throws(MijianError) -> String? {
        guard let value = optionalValue(key), value != .null else { return nil }
        guard let text = value.stringValue else { throw MijianError(.malformed, "\(path).\(key) must be a string or null") }
        return text
    }

    /// An integer member; `1.0`, `1e0` and `"1"` are refused.
    public func int(_ key: String) throws(MijianError) -> Int64 {
        guard let number = try value(key).intValue else { throw MijianError(.malformed, "\(path).\(key) must be an integer") }
        return number
    }

    /// An RFC 3339 timestamp member.
    public func date(_ key: String) throws(MijianError) -> Date {
        let text = try string(key)
        guard let date = RFC3339.date(from: text) else {
            throw MijianError(.malformed, "\(path).\(key) is not an RFC 3339 timestamp: \"\(text)\"")
        }
        return date
    }

    /// A nested object member.
    public func object(_ key: String) throws(MijianError) -> StrictJSONObject {
        try StrictJSONObject(try value(key), path: "\(path).\(key)")
    }

    /// An array member.
    public func array(_ key: String) throws(MijianError) -> [JSONValue] {
        guard let elements = try value(key).arrayValue else { throw MijianError(.malformed, "\(path).\(key) must be an array") }
        return elements
    }

    /// A member whose string must be one of an enum's raw values.
    public func enumeration<T: RawRepresentable & CaseIterable>(_ key: String, as type: T.Type) throws(MijianError) -> T where T.RawValue == String {
        let text = try string(key)
        guard let value = T(rawValue: text) else {
            throw MijianError(.malformed, "\(path).\(key) is \"\(text)\"; expected one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}

extension HostInfo {
    /// The `host` object of a report or enrolment request.
    public var json: JSONValue {
        [
            "host_id": .string(hostID), "hostname": .string(hostname), "asset_id": .optional(assetID),
            "classification": .optional(classification?.rawValue), "responsible": .optional(responsible),
            "unit": .optional(unit), "os": .string(os), "kernel": .string(kernel), "boot_id": .optional(bootID),
        ]
    }

    /// Decodes a `host` object strictly.
    public init(json: JSONValue, path: String = "host") throws(MijianError) {
        let object = try StrictJSONObject(json, path: path)
        try object.only(["host_id", "hostname", "asset_id", "classification", "responsible", "unit", "os", "kernel", "boot_id"])
        var classification: Classification?
        if let text = try object.optionalString("classification") {
            guard let value = Classification(rawValue: text) else {
                throw MijianError(.malformed, "\(path).classification is \"\(text)\"; expected 绝密, 机密, 秘密 or 非密")
            }
            classification = value
        }
        self.init(
            hostID: try object.string("host_id"), hostname: try object.string("hostname"), assetID: try object.optionalString("asset_id"),
            classification: classification, responsible: try object.optionalString("responsible"), unit: try object.optionalString("unit"),
            os: try object.string("os"), kernel: try object.string("kernel"), bootID: try object.optionalString("boot_id"))
    }
}

extension Report {
    /// Decodes a `mijian.report/v1` payload strictly: the schema id, every member and type, and a
    /// summary that agrees with the findings (a payload claiming "0 fail" over failing findings is refused).
    public init(json: JSONValue) throws(MijianError) {
        let top = try StrictJSONObject(json, path: "report")
        try top.only([
            "schema", "report_id", "epoch", "seq", "prev_sha256", "issued_at", "window", "agent", "host", "policy", "summary",
            "findings", "events",
        ])
        let schema = try top.string("schema")
        guard schema == Report.schema else { throw MijianError(.malformed, "report.schema is \"\(schema)\", not \"\(Report.schema)\"") }
        let idText = try top.string("report_id")
        guard let reportID = UUID(uuidString: idText) else { throw MijianError(.malformed, "report.report_id is not a UUID: \"\(idText)\"") }
        let epoch = try top.int("epoch")
        let seq = try top.int("seq")
        guard epoch >= 0, seq >= 0 else { throw MijianError(.malformed, "report.epoch and report.seq must not be negative") }
        let prev = try top.string("prev_sha256")
        guard prev.isEmpty || Report.isSHA256Hex(prev) else {
            throw MijianError(.malformed, "report.prev_sha256 must be empty or 64 lower-case hex digits")
        }
        let window = try top.object("window")
        try window.only(["start", "end"])
        let agentObject = try top.object("agent")
        try agentObject.only(["name", "version", "keyid"])
        let agent = AgentInfo(name: try agentObject.string("name"), version: try agentObject.string("version"), keyid: try agentObject.string("keyid"))
        let host = try HostInfo(json: try top.value("host"), path: "report.host")
        let policyObject = try top.object("policy")
        try policyObject.only(["id", "version", "sha256"])
        let policy = PolicyInfo(id: try policyObject.string("id"), version: try policyObject.string("version"), sha256: try policyObject.string("sha256"))
        var findings: [Finding] = []
        for (index, element) in try top.array("findings").enumerated() {
            findings.append(try Finding(json: element, path: "report.findings[\(index)]"))
        }
        var events: [Event] = []
        for (index, element) in try top.array("events").enumerated() {
            let object = try StrictJSONObject(element, path: "report.events[\(index)]")
            try object.only(["type", "observed_at", "data"])
            events.append(Event(type: try object.string("type"), observedAt: try object.date("observed_at"), data: try object.value("data")))
        }
        self.init(
            reportID: reportID, epoch: epoch, seq: seq, prevSHA256: prev, issuedAt: try top.date("issued_at"),
            windowStart: try window.date("start"), windowEnd: try window.date("end"), agent: agent, host: host, policy: policy,
            findings: findings, events: events)
        let summary = try top.object("summary")
        try summary.only(Set(Status.allCases.map(\.rawValue)))
        for (status, count) in self.summary {
            let claimed = try summary.int(status.rawValue)
            guard claimed == Int64(count) else {
                throw MijianError(.malformed, "report.summary.\(status.rawValue) is \(claimed) but the findings hold \(count)")
            }
        }
    }

    /// Whether `text` is 64 lower-case hex digits.
    static func isSHA256Hex(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

extension Finding {
    /// Decodes one finding strictly; rule titles in Chinese and default severities come from the catalogue.
    public init(json: JSONValue, path: String = "finding") throws(MijianError) {
        let object = try StrictJSONObject(json, path: path)
        try object.only(["uid", "rule", "references", "subject", "severity", "status", "status_detail", "observed_at", "evidence"])
        let ruleObject = try object.object("rule")
        try ruleObject.only(["id", "version", "title"])
        var references: [Reference] = []
        for (index, element) in try object.array("references").enumerated() {
            let reference = try StrictJSONObject(element, path: "\(path).references[\(index)]")
            try reference.only(["system", "id"])
            references.append(Reference(system: try reference.string("system"), id: try reference.string("id")))
        }
        let severity = try object.enumeration("severity", as: Severity.self)
        let ruleID = try ruleObject.string("id")
        let title = try ruleObject.string("title")
        let known = RuleCatalogue.rule(ruleID)
        let rule = RuleInfo(
            id: ruleID, version: try ruleObject.string("version"), title: title, titleZH: known?.titleZH ?? title, references: references,
            defaultSeverity: known?.defaultSeverity ?? severity)
        var evidence: [Evidence] = []
        for (index, element) in try object.array("evidence").enumerated() {
            let item = try StrictJSONObject(element, path: "\(path).evidence[\(index)]")
            try item.only(["kind", "source", "observed_at", "data"])
            evidence.append(
                Evidence(kind: try item.string("kind"), source: try item.string("source"), observedAt: try item.date("observed_at"), data: try item.value("data")))
        }
        self.init(
            uid: try object.string("uid"), rule: rule, subject: try object.string("subject"), severity: severity,
            status: try object.enumeration("status", as: Status.self), statusDetail: try object.string("status_detail"),
            observedAt: try object.date("observed_at"), evidence: evidence)
    }
}
