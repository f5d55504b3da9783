import Logging
import MijianCore

/// Observes the network facts of a host.
public enum NetworkProbe {
    /// Reads what the checks need from `root` (live kernel sources too when `live`).
    public static func observe(root: HostRoot, live: Bool, logger: Logger) -> NetworkFacts {
        NetworkFacts()
    }
}
