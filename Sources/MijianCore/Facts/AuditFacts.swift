import Foundation

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

    /// Makes a facts bundle.
    public init(root: String, live: Bool, observedAt: Date, network: NetworkFacts = NetworkFacts(), hardware: HardwareFacts = HardwareFacts(), history: HistoryFacts = HistoryFacts(), usbHistory: USBHistoryFacts = USBHistoryFacts()) {
        self.root = root
        self.live = live
        self.observedAt = observedAt
        self.network = network
        self.hardware = hardware
        self.history = history
        self.usbHistory = usbHistory
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

    /// Makes a context.
    public init(policy: Policy, hostID: String, observedAt: Date) {
        self.policy = policy
        self.hostID = hostID
        self.observedAt = observedAt
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
    /// The evaluation. It never reads a file.
    public let evaluate: @Sendable (AuditFacts, CheckContext) -> [Finding]

    /// Makes a check.
    public init(rule: RuleInfo, evaluate: @escaping @Sendable (AuditFacts, CheckContext) -> [Finding]) {
        self.rule = rule
        self.evaluate = evaluate
    }
}
