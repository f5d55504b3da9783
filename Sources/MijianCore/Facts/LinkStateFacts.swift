/// The network links a machine has and those that are up (not loopback), as the traffic watch
/// chooses what to capture and says what it could not.
public struct LinkStateFacts: Sendable, Equatable {
    /// Where they were read (`/sys/class/net`).
    public var source: String
    /// Every link, sorted.
    public var links: [String]
    /// The links that are up, loopback left out, sorted.
    public var up: [String]

    /// Bundles them.
    public init(source: String, links: [String], up: [String]) {
        self.source = source
        self.links = links
        self.up = up
    }

    /// The links to capture on: the configured ones that are up, else those the policy's
    /// `networks.links` names, else every link that is up.
    public func capturable(configured: [String], policy: Policy) -> [String] {
        if !configured.isEmpty { return up.filter { configured.contains($0) } }
        if !policy.allowedLinks.isEmpty { return up.filter { policy.isAllowedLink($0) } }
        return up
    }
}
