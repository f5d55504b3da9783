import Logging
import MijianCore

/// Observes what runs (the process table) and what starts at boot (systemd units enabled under
/// `/etc/systemd/system`): read by `malware.scanner`, `audit.system` and `software.prohibited`.
public enum ServiceProbe {
    /// Where administrators' unit links live.
    public static let unitDirectory = "/etc/systemd/system"

    /// Reads the process table under `root` (`/proc`; an offline disk has none) and the units
    /// enabled. One file per process is read (`comm`); `cmdline` only when `comm` is 15 bytes,
    /// the kernel's cut, so that the walk stays cheap.
    public static func observe(root: HostRoot, live: Bool, logger: Logger) -> ServiceFacts {
        var (facts, failures) = root.collectingFailures { root in
            var reads = RecordedReads(root: root)
            var facts = ServiceFacts()
            readProcesses(&reads, &facts)
            readUnits(&reads, &facts)
            facts.sources = reads.sources
            return facts
        }
        facts.sources.addUnclaimed(failures)
        logger.debug("service probe", metadata: ["mijian.processes": "\(facts.processes.count)", "mijian.units": "\(facts.enabledUnits.count)"])
        return facts
    }

    static func readProcesses(_ reads: inout RecordedReads, _ facts: inout ServiceFacts) {
        guard let names = reads.list("/proc") else { return }
        let root = reads.root
        for name in names {
            guard let pid = Int(name), pid > 0 else { continue }
            // A process that ended since the listing is absent, not an error.
            let comm: String
            do {
                comm = String(decoding: try root.readHead("/proc/\(pid)/comm", count: 64), as: UTF8.self)
            } catch where error.code == .notFound {
                continue
            } catch {
                reads.record("/proc/\(pid)/comm", .error(error.description))
                continue
            }
            let command = comm.hasSuffix("\n") ? String(comm.dropLast()) : comm
            var executable = command
            if command.utf8.count == 15 {
                do {
                    let bytes = try root.readHead("/proc/\(pid)/cmdline", count: 4096)
                    let first = bytes.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
                    let argv0 = String(decoding: first, as: UTF8.self)
                    executable = argv0.split(separator: "/").last.map(String.init) ?? command
                } catch where error.code == .notFound {
                    continue
                } catch {
                    reads.record("/proc/\(pid)/cmdline", .error(error.description))
                    continue
                }
            }
            facts.processes.append(RunningProcess(pid: pid, name: command, executable: executable))
        }
        facts.processTableRead = !facts.processes.isEmpty
        if let index = reads.sources.firstIndex(where: { $0.path == "/proc" }) { reads.sources[index].count = facts.processes.count }
    }

    static func readUnits(_ reads: inout RecordedReads, _ facts: inout ServiceFacts) {
        guard let names = reads.list(unitDirectory) else { return }
        var masked: Set<String> = []
        for name in names where !name.hasSuffix(".wants") && !name.hasSuffix(".requires") {
            if reads.root.readLink("\(unitDirectory)/\(name)") == "/dev/null" { masked.insert(name) }
        }
        for directory in names where directory.hasSuffix(".wants") || directory.hasSuffix(".requires") {
            let path = "\(unitDirectory)/\(directory)"
            guard reads.root.isDirectoryExpected(path), let units = reads.list(path) else { continue }
            for unit in units where !masked.contains(unit) {
                facts.enabledUnits.append(EnabledUnit(name: unit, path: "\(path)/\(unit)"))
            }
        }
        facts.maskedUnits = masked.sorted()
    }
}
