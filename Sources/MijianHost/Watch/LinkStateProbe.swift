import MijianCore

/// Which network links exist and which are up, from `/sys/class/net/*/flags` (IFF_UP,
/// IFF_LOOPBACK) through `HostRoot`: the traffic watch captures on the links this names.
public enum LinkStateProbe {
    static let up: UInt32 = 0x1
    static let loopback: UInt32 = 0x8

    /// The links under `root` (this machine's unless told), sorted, and those up that are not loopback.
    public static func observe(root: HostRoot = .live) -> LinkStateFacts {
        let names = ((try? root.listIfPresent("/sys/class/net")) ?? []).sorted()
        let upLinks = names.filter { name in
            guard let text = root.attribute("/sys/class/net/\(name)/flags"), text.hasPrefix("0x"),
                let flags = UInt32(text.dropFirst(2), radix: 16)
            else { return false }
            return flags & up != 0 && flags & loopback == 0
        }
        return LinkStateFacts(source: "/sys/class/net", links: names, up: upLinks)
    }
}
