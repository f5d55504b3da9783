import Yams

/// What `net.history` reports (`history` in a policy).
public struct HistoryPolicy: Sendable, Equatable {
    /// Host names only (the default), or the last URL of each host and download as well:
    /// paths and queries can hold secrets or personal data, so full URLs are the unit's choice.
    public var report: HistoryReportDetail = .host

    /// The defaults.
    public init() {}

    /// Parses the `history` mapping.
    public static func parse(_ node: Node, _ reader: YAMLReader) throws(MijianError) -> HistoryPolicy {
        var policy = HistoryPolicy()
        for (_, _, value) in try reader.mapping(node, "history", allowed: ["report"]) {
            policy.report = try reader.choice(value, "history.report", as: HistoryReportDetail.self)
        }
        return policy
    }
}
