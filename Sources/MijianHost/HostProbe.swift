#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianCore
import Synchronization

/// Observes a whole host for an audit: identity and every fact the audit checks read.
public enum HostProbe {
    /// The facts of the groups `sets` (every group unless told) under `root`; `live` adds live
    /// kernel sources (rtnetlink) when the root is `/`. A probe whose groups are not asked for
    /// does not run, and the facts say which groups were collected.
    /// `policy` names the scanner products and prohibited software's install paths to look at (the
    /// built-in lists when nil). `tcpSockets` gives the live machine's TCP sockets: the kernel's dump, taken when the sockets
    /// are read, unless the caller started it earlier (`SocketDump`).
    public static func observe(
        root: HostRoot, live: Bool, logger: Logger, at date: Date = Date(), collecting sets: Set<FactSet> = FactSet.all, policy: Policy? = nil,
        tcpSockets: @escaping NetworkProbe.TCPSource = NetworkProbe.kernelTCP
    ) -> AuditFacts {
        var facts = AuditFacts(root: root.path, live: live, observedAt: date, collected: sets)
        let network = sets.intersection([.routes, .interfaces, .sockets, .resolvers])
        let others = sets.subtracting(network)
        // The network probe mostly waits on the kernel (netlink dumps, the walk of the connection
        // hash): when other groups are asked for too, it runs meanwhile on the probe worker of
        // this thread's network namespace (a long-lived thread: no audit starts one).
        var networkJob: ProbeJob<NetworkFacts>?
        if !network.isEmpty {
            if others.isEmpty {
                facts.network = NetworkProbe.observe(root: root, live: live, logger: logger, collecting: network, tcpSockets: tcpSockets)
            } else {
                networkJob = ProbeWorkers.submit(name: "mijian-probes") {
                    NetworkProbe.observe(root: root, live: live, logger: logger, collecting: network, tcpSockets: tcpSockets)
                }
            }
        }
        // Browser history is the longest probe of a full audit (SQLite reads of every profile
        // and the search of the homes by schema): when other groups are asked for too, it runs on
        // the same worker after the network probe, while this thread reads the rest, and then
        // this thread takes its share of the profiles' reads (`ProfileReadShare`). Two threads in
        // all on two cores; a `--rule net.history` audit reads it here.
        var browserJob: ProbeJob<BrowserHistoryFacts>?
        var share: ProfileReadShare?
        if sets.contains(.browserHistory), sets.count > 1 {
            let readShare = ProfileReadShare(helperComing: true)
            share = readShare
            browserJob = ProbeWorkers.submit(name: "mijian-probes") {
                defer { readShare.close() }
                return BrowserHistoryProbe.observe(root: root, logger: logger, policy: policy, share: readShare)
            }
        }
        // The other probes are jobs both threads take from, one at a time: this thread from the
        // start, the worker once its network and history probes are done (on this machine's own
        // disk the history's search ends first, and the worker then takes a share of the rest
        // instead of idling while this thread reads alone). Two threads on two cores, never three.
        let observed = Mutex(facts)
        var jobs: [@Sendable () -> Void] = []
        func job<Value: Sendable>(_ body: @escaping @Sendable () -> Value, into path: any WritableKeyPath<AuditFacts, Value> & Sendable) {
            jobs.append {
                let value = body()
                observed.withLock { $0[keyPath: path] = value }
            }
        }
        // The longest first, so that the last job either thread takes is a short one.
        if sets.contains(.auth) { job({ AuthProbe.observe(root: root, logger: logger) }, into: \.auth) }
        if sets.contains(.software) {
            let paths = (policy?.software ?? SoftwarePolicy()).entries.flatMap(\.paths)
            job({ SoftwareProbe.observe(root: root, live: live, logger: logger, paths: paths) }, into: \.software)
        }
        if sets.contains(.malware) {
            let products = policy?.malware ?? MalwarePolicy()
            job({ MalwareProbe.observe(root: root, live: live, logger: logger, policy: products) }, into: \.malware)
        }
        if sets.contains(.installation) { job({ InstallationProbe.observe(root: root, live: live, logger: logger) }, into: \.installation) }
        if sets.contains(.usbHistory) { job({ USBHistoryProbe.observe(root: root, live: live, logger: logger) }, into: \.usbHistory) }
        if sets.contains(.hardware) { job({ HardwareProbe.observe(root: root, live: live, logger: logger) }, into: \.hardware) }
        if sets.contains(.profiles) || sets.contains(.logRetention) {
            let (profiles, logs) = (sets.contains(.profiles), sets.contains(.logRetention))
            job({ HistoryProbe.observe(root: root, live: live, logger: logger, profiles: profiles, logs: logs) }, into: \.history)
        }
        if sets.contains(.auditSystem) { job({ AuditSystemProbe.observe(root: root, live: live, logger: logger) }, into: \.auditSystem) }
        if sets.contains(.services) { job({ ServiceProbe.observe(root: root, live: live, logger: logger) }, into: \.services) }
        if sets.contains(.channels) { job({ ChannelProbe.observe(root: root, live: live, logger: logger) }, into: \.channels) }
        if sets.contains(.sharing) || sets.contains(.printers) {
            let (shares, printers) = (sets.contains(.sharing), sets.contains(.printers))
            job({ SharingProbe.observe(root: root, live: live, logger: logger, shares: shares, printers: printers) }, into: \.sharing)
        }
        if sets.contains(.browserHistory), browserJob == nil {
            job({ BrowserHistoryProbe.observe(root: root, logger: logger, policy: policy) }, into: \.browserHistory)
        }
        let probes = SharedJobs(jobs)
        if networkJob != nil || browserJob != nil {
            _ = ProbeWorkers.submit(name: "mijian-probes") { probes.drain() }
        }
        probes.finish()
        facts = observed.withLock { $0 }
        if let networkJob { facts.network = networkJob.result() }
        share?.help()
        if let browserJob { facts.browserHistory = browserJob.result() }
        return facts
    }

    /// The kernel's dump of the live machine's TCP sockets, started on the probe worker. The
    /// dump walks the kernel's whole connection hash (262,144 buckets on a 23 GB machine, about
    /// 2 ms), the longest single read of an audit: started first, it runs while the policy and
    /// the host's identity are read. `result` waits for it; the facts say what it gave or why not.
    public final class SocketDump: Sendable {
        private let job: ProbeJob<Result<[SocketEntry], MijianError>>

        public init() {
            job = ProbeWorkers.submit(name: "mijian-probes") {
                do throws(MijianError) { return .success(try SockDiag.tcpSockets()) } catch { return .failure(error) }
            }
        }

        /// The sockets, or the kernel's refusal, once the dump is done.
        public func result() throws(MijianError) -> [SocketEntry] { try job.result().get() }
    }

    /// The machine's identity: host id from machine-id, host name, OS, kernel, boot id, plus the host file.
    public static func hostInfo(root: HostRoot, identity: HostIdentity) throws(MijianError) -> HostInfo {
        guard let machineID = try root.readTextIfPresent("/etc/machine-id")?.trimmingCharacters(in: .whitespacesAndNewlines),
            !machineID.isEmpty
        else {
            throw MijianError(.notFound, "\(root.real("/etc/machine-id")) is missing or empty: the host cannot be identified (run systemd-machine-id-setup)", path: "/etc/machine-id")
        }
        let hostname = root.attribute("/etc/hostname") ?? (root.isLive ? liveHostname() : "")
        var os = ""
        var release = try root.readTextIfPresent("/etc/os-release")
        if release == nil { release = try root.readTextIfPresent("/usr/lib/os-release") }
        if let release {
            for line in release.split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
                os = String(line.dropFirst("PRETTY_NAME=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            }
        }
        var kernel = root.attribute("/proc/sys/kernel/osrelease") ?? ""
        if kernel.isEmpty, root.isLive {
            var name = utsname()
            uname(&name)
            kernel = withUnsafePointer(to: name.release) { $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) } }
        }
        // What the machine says of itself is not typed by an administrator and may be odd (a tab in
        // /etc/hostname, a long PRETTY_NAME): it is written so the collector's identity rule accepts
        // it (control characters escaped, at most 256 bytes), and the machine stays auditable.
        return HostInfo(
            hostID: HostInfo.hostID(machineID: machineID), hostname: IdentityField.reportable(hostname), assetID: identity.assetID,
            classification: identity.classification, responsible: identity.responsible, unit: identity.unit, os: IdentityField.reportable(os),
            kernel: IdentityField.reportable(kernel), bootID: root.attribute("/proc/sys/kernel/random/boot_id").map(IdentityField.reportable))
    }

    private static func liveHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
