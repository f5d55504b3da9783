import MijianCore

/// History rules of the audit.
public enum HistoryChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = []
}
