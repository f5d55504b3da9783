import Logging
import MijianCore

/// Observes the hardware facts of a host.
public enum HardwareProbe {
    /// Reads what the checks need from `root` (live kernel sources too when `live`).
    public static func observe(root: HostRoot, live: Bool, logger: Logger) -> HardwareFacts {
        HardwareFacts()
    }
}
