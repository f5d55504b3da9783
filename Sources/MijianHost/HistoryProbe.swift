import Logging
import MijianCore

/// Observes the history facts of a host.
public enum HistoryProbe {
    /// Reads what the checks need from `root` (live kernel sources too when `live`).
    public static func observe(root: HostRoot, live: Bool, logger: Logger) -> HistoryFacts {
        HistoryFacts()
    }
}
