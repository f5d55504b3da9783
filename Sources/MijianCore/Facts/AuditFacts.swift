import Foundation

/// A group of facts that one probe collects and a rule may read. `mijian audit --rule X`
/// observes only the groups X's rule reads; a rule whose groups were not collected is never
/// evaluated on the empty facts (it gets an `error` finding instead).
public enum FactSet: String, CaseIterable, Sendable, Comparable {
    /// Routes and policy rules (rtnetlink, or `/proc/net/route` and `ipv6_route` under a root).
    case routes
    /// Links and their addresses (rtnetlink and sysfs, or sysfs and procfs under a root).
    case interfaces
    /// TCP and UDP sockets (`/proc/net/tcp`, `tcp6`, `udp`, `udp6`).
    case sockets
    /// Resolvers (`resolv.conf`, systemd-resolved's configuration).
    case resolvers
    /// PCI and USB devices, wireless classes, rfkill, the module tree, modprobe.d, the kernel command line.
    case hardware
    /// Saved Wi-Fi, mobile and VPN profiles and Bluetooth pairings.
    case profiles
    /// Journal configuration and files, kern.log and syslog files: how far logs reach.
    case logRetention = "log-retention"
    /// Kernel messages of past USB connections: syslog files, the journal, `/dev/kmsg`.
    case usbHistory = "usb-history"
    /// Serial, parallel, FireWire, PCMCIA, IrDA and optical devices, `/proc/sys/dev/cdrom/info`,
    /// and the state of their drivers (the module tree, modprobe.d, the kernel command line).
    case channels
    /// PAM stacks, pwquality, faillock, login.defs, passwd and shadow (ages and emptiness only), sshd,
    /// dconf databases and locks, desktop sessions, xscreensaver and `TMOUT`.
    case auth
    /// Installation traces (installer logs, root birth, dpkg log, machine-id), other systems in
    /// the boot menu and EFI entries, virtual machines, boot and login records.
    case installation
    /// Browser history and HSTS stores of every user's profiles (Firefox and Chromium families).
    case browserHistory = "browser-history"
    /// The process table (`/proc/PID/comm`) and the systemd units enabled under `/etc/systemd/system`.
    case services
    /// What is installed: dpkg's database, `/opt`, flatpak, snap, install paths of the policy's lists.
    case software
    /// Scanner products of the policy: their paths, signature files and scheduled scans.
    case malware
    /// The audit system: kernel command line, GRUB's, audit rules, `auditd.conf`, dispatcher plugins.
    case auditSystem = "audit-system"
    /// Samba, NFS, cupsd and avahi configuration.
    case sharing
    /// CUPS queues (`printers.conf`) and the page log.
    case printers

    /// Every group: what a full audit collects.
    public static let all = Set(allCases)

    /// Catalogue order.
    public static func < (lhs: FactSet, rhs: FactSet) -> Bool {
        allCases.firstIndex(of: lhs) ?? 0 < allCases.firstIndex(of: rhs) ?? 0
    }
}

/// Everything the probes observed for one audit: plain values, each saying where it came from.
public struct AuditFacts: Sendable {
    /// The host root the probes read under (`/` for the live machine).
    public var root: String
    /// Whether live kernel sources (rtnetlink) were used, or only files under a root.
    public var live: Bool
    /// When observation started.
    public var observedAt: Date
    /// Routes, rules, interfaces, addresses, sockets, resolvers.
    public var network: NetworkFacts
    /// USB and PCI devices, wireless classes, rfkill, modules and modprobe configuration.
    public var hardware: HardwareFacts
    /// Saved profiles, pairings, USB history and log retention.
    public var history: HistoryFacts
    /// Past USB connections from kernel logs.
    public var usbHistory: USBHistoryFacts
    /// The groups the probes collected; the others hold empty defaults that say nothing.
    public var collected: Set<FactSet>
    /// Outbound channels other than networks and radios, and their drivers.
    public var channels = ChannelFacts()
    /// Identity and access: PAM, password rules, accounts, sshd, screen locks.
    public var auth = AuthFacts()
    /// When this system was installed, other systems and guests on it, and when it was used.
    public var installation = InstallationFacts()
    /// Every user's browser profiles: visited hosts, downloads, HSTS entries.
    public var browserHistory = BrowserHistoryFacts()
    /// The process table and the units enabled.
    public var services = ServiceFacts()
    /// Installed software.
    public var software = SoftwareFacts()
    /// Malware scanners and their signatures.
    public var malware = MalwareFacts()
    /// The audit system's configuration.
    public var auditSystem = AuditSystemFacts()
    /// What is shared and where printers send.
    public var sharing = SharingFacts()

    /// Makes a facts bundle.
    public init(root: String, live: Bool, observedAt: Date, network: NetworkFacts = NetworkFacts(), hardware: HardwareFacts = HardwareFacts(), history: HistoryFacts = HistoryFacts(), usbHistory: USBHistoryFacts = USBHistoryFacts(), collected: Set<FactSet> = FactSet.all) {
        self.root = root
        self.live = live
        self.observedAt = observedAt
        self.network = network
        self.hardware = hardware
        self.history = history
        self.usbHistory = usbHistory
        self.collected = collected
    }
}

/// What a check needs besides facts: the policy, the host id for finding uids, the time.
public struct CheckContext: Sendable {
    /// The policy in force.
    public var policy: Policy
    /// The host id (for stable finding uids).
    public var hostID: String
    /// When the facts were observed.
    public var observedAt: Date
    /// The host's classification from host.yaml; nil when it names none.
    public var classification: Classification?

    /// Makes a context.
    public init(policy: Policy, hostID: String, observedAt: Date, classification: Classification? = nil) {
        self.policy = policy
        self.hostID = hostID
        self.observedAt = observedAt
        self.classification = classification
    }

    /// A finding of `rule` about `subject`, with the policy's severity and a stable uid.
    public func finding(_ rule: RuleInfo, subject: String, status: Status, detail: String, evidence: [Evidence]) -> Finding {
        Finding(
            uid: Finding.uid(hostID: hostID, ruleID: rule.id, subject: subject), rule: rule, subject: subject,
            severity: policy.severity(for: rule), status: status, statusDetail: detail, observedAt: observedAt,
            evidence: evidence)
    }
}

/// A rule's evaluation: a pure function of facts and policy.
public struct Check: Sendable {
    /// The rule it decides.
    public let rule: RuleInfo
    /// The fact groups its evaluation reads; `--rule` collects only these.
    public let needs: Set<FactSet>
    /// The evaluation. It never reads a file.
    public let evaluate: @Sendable (AuditFacts, CheckContext) -> [Finding]

    /// Makes a check that reads the fact groups `needs`.
    public init(rule: RuleInfo, needs: Set<FactSet>, evaluate: @escaping @Sendable (AuditFacts, CheckContext) -> [Finding]) {
        self.rule = rule
        self.needs = needs
        self.evaluate = evaluate
    }
}
