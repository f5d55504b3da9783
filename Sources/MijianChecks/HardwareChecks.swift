import MijianCore

/// Hardware rules of the audit.
public enum HardwareChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = []
}
