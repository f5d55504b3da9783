import MijianCore

/// Network rules of the audit.
public enum NetworkChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = []
}
