import Logging
import MijianCore

/// The probes of `malware.scanner`, `audit.system`, `software.prohibited`, `sharing` and
/// `print.devices`, run for the groups asked for.
enum SecurityProbes {
    static func observe(into facts: inout AuditFacts, root: HostRoot, live: Bool, logger: Logger, collecting sets: Set<FactSet>, policy: Policy?) {
        if sets.contains(.services) { facts.services = ServiceProbe.observe(root: root, live: live, logger: logger) }
        if sets.contains(.software) {
            let paths = (policy?.software ?? SoftwarePolicy()).entries.flatMap(\.paths)
            facts.software = SoftwareProbe.observe(root: root, live: live, logger: logger, paths: paths)
        }
        if sets.contains(.malware) { facts.malware = MalwareProbe.observe(root: root, live: live, logger: logger, policy: policy?.malware ?? MalwarePolicy()) }
        if sets.contains(.auditSystem) { facts.auditSystem = AuditSystemProbe.observe(root: root, live: live, logger: logger) }
        if sets.contains(.sharing) || sets.contains(.printers) {
            facts.sharing = SharingProbe.observe(root: root, live: live, logger: logger, shares: sets.contains(.sharing), printers: sets.contains(.printers))
        }
    }
}
