import Foundation
import Yams

/// Public address space a policy lists as the unit's own, as an allowed destination or as a resolver,
/// by its explicit choice (`networks.covers_public_space: true`).
///
/// Every address such a policy lists counts as inside: the network rules would not see a route,
/// socket or resolver there as outside. A unit may own a public block, so this is allowed, but only
/// when the policy says so, and every report says so too: each finding of the network rules carries
/// `sentence` and `evidence(at:)`, and the text report states it once.
public struct PublicSpace: Sendable, Equatable {
    /// The unit networks that contain a public address.
    public var unit: [IPNetwork]
    /// The allowed destinations that contain a public address.
    public var allowedDestinations: [IPNetwork]
    /// The resolvers at public addresses.
    public var resolvers: [IPAddress]

    /// The evidence kind and source that carry the choice in a report (the text report looks for them).
    public static let evidenceKind = "policy"

    /// One sentence for a finding's status detail.
    public var sentence: String {
        var parts: [String] = []
        if !unit.isEmpty { parts.append("the unit's networks include public address space (\(Self.list(unit.map(\.description))))") }
        if !allowedDestinations.isEmpty {
            parts.append("the allowed destinations include public address space (\(Self.list(allowedDestinations.map(\.description))))")
        }
        if !resolvers.isEmpty { parts.append("the unit's resolvers include public addresses (\(Self.list(resolvers.map(\.description))))") }
        return "By the policy's explicit choice (\(Policy.publicSpaceKey): true), \(parts.joined(separator: " and ")); addresses there are not judged as outside."
    }

    /// The choice as evidence: the key, what it lets in, and `sentence`.
    public func evidence(at date: Date) -> Evidence {
        Evidence(
            kind: Self.evidenceKind, source: Policy.publicSpaceKey, observedAt: date,
            data: .object([
                ("covers_public_space", .bool(true)),
                ("unit", .array(unit.map { .string($0.description) })),
                ("allowed_destinations", .array(allowedDestinations.map { .string($0.description) })),
                ("dns_resolvers", .array(resolvers.map { .string($0.description) })),
                ("statement", .string(sentence)),
            ]))
    }

    /// The statement a report's findings carry, if any of them carries one.
    public static func statement(in findings: [Finding]) -> String? {
        for finding in findings {
            for evidence in finding.evidence where evidence.kind == evidenceKind && evidence.source == Policy.publicSpaceKey {
                if case .object(let members) = evidence.data, let statement = members.first(where: { $0.0 == "statement" })?.1,
                    case .string(let text) = statement
                {
                    return text
                }
            }
        }
        return nil
    }

    private static func list(_ items: [String]) -> String {
        items.count <= 4 ? items.joined(separator: ", ") : items.prefix(4).joined(separator: ", ") + ", … (\(items.count) in all)"
    }
}

extension Policy {
    /// The key by which a policy says its networks include public address space.
    public static let publicSpaceKey = "networks.covers_public_space"
    /// The most public IPv4 addresses the unit's networks may hold even with the key: a /8. No unit
    /// owns more; `0.0.0.0/0`, or `0.0.0.0/1` with `128.0.0.0/1`, is the internet, not a unit.
    public static let maxPublicV4: UInt128 = 1 << 24
    /// The most public IPv6 addresses the unit's networks may hold even with the key: a /32, a whole
    /// registry allocation.
    public static let maxPublicV6: UInt128 = 1 << 96

    /// What of the policy's networks is public address space, when the policy says its networks
    /// cover public space and some do; nil otherwise.
    public var publicSpace: PublicSpace? {
        guard coversPublicSpace else { return nil }
        let space = PublicSpace(
            unit: unitNetworks.filter(\.coversPublicSpace), allowedDestinations: allowedDestinations.filter(\.coversPublicSpace),
            resolvers: dnsResolvers.filter(\.isPublic))
        return space.unit.isEmpty && space.allowedDestinations.isEmpty && space.resolvers.isEmpty ? nil : space
    }
}

extension CheckContext {
    /// The findings, each stating in its detail and evidence that the policy's networks include public
    /// address space by its explicit choice, when they do (`Policy.publicSpace`): a pass there means
    /// less than it seems, and every reader of the report must see why. A finding that states it
    /// already is left as it is, so every rule that judges addresses against the policy (the network
    /// rules, `traffic.egress` in a file and in the service) can call this on everything it returns.
    public func statingPublicSpace(_ findings: [Finding]) -> [Finding] {
        guard let space = policy.publicSpace else { return findings }
        let sentence = space.sentence
        let evidence = space.evidence(at: observedAt)
        return findings.map { finding in
            if finding.evidence.contains(where: { $0.kind == PublicSpace.evidenceKind && $0.source == Policy.publicSpaceKey }) { return finding }
            var finding = finding
            finding.statusDetail += " " + sentence
            finding.evidence.append(evidence)
            return finding
        }
    }
}

/// The policy's address lists, kept while parsing so that a public prefix is refused at its line
/// once the whole file (and with it `networks.covers_public_space`) has been read.
struct PublicSpaceCandidates {
    var unit: Node?
    var allowedDestinations: Node?
    var resolvers: Node?

    /// Refuses public space the policy does not explicitly allow, and, even when it does, more than
    /// a unit can own (unit networks on any profile; allowed destinations on a classified profile,
    /// which never reaches the internet).
    func check(_ policy: Policy, _ reader: YAMLReader) throws(MijianError) {
        let key = Policy.publicSpaceKey
        let lists: [(name: String, node: Node?, networks: [IPNetwork], role: String)] = [
            ("networks.unit", unit, policy.unitNetworks, "the unit's own"),
            ("networks.allowed_destinations", allowedDestinations, policy.allowedDestinations, "an allowed destination"),
        ]
        if !policy.coversPublicSpace {
            for list in lists {
                guard let node = list.node, let index = list.networks.firstIndex(where: \.coversPublicSpace) else { continue }
                let network = list.networks[index]
                // An IPv4-mapped or NAT64 prefix is shown as the IPv4 space it stands for.
                let mapped = network.publicRanges.isEmpty ? network.embeddedV4Parts.first(where: \.coversPublicSpace) : nil
                let ranges = mapped?.publicRanges ?? network.publicRanges
                let first = ranges.first.map { IPNetwork.describe($0, v6: mapped == nil && network.address.isV6) } ?? ""
                throw reader.error(
                    try element(node, index, list.name, reader), "\(list.name)[\(index)]",
                    "\(network) covers public address space (\(first)\(ranges.count > 1 ? " and more" : "")): every address there would count as \(list.role) and pass the network rules. List only what the unit owns; if it owns public addresses, say so with \(key): true")
            }
            if let node = resolvers, let index = policy.dnsResolvers.firstIndex(where: \.isPublic) {
                throw reader.error(
                    try element(node, index, "dns.resolvers", reader), "dns.resolvers[\(index)]",
                    "\(policy.dnsResolvers[index]) is a public address: the unit's resolvers are the unit's own; if the unit runs one on a public address it owns, say so with \(key): true")
            }
            return
        }
        for list in lists where list.node != nil {
            // Allowed destinations are the internet itself on an unclassified machine; never on a classified one.
            if list.name == "networks.allowed_destinations", policy.profile == .unclassified { continue }
            for (v6, limit, size) in [(false, Policy.maxPublicV4, "/8"), (true, Policy.maxPublicV6, "/32")] {
                let count = IPNetwork.publicAddressCount(list.networks, v6: v6)
                guard count > limit, let node = list.node else { continue }
                let family = v6 ? "IPv6" : "IPv4"
                let why = list.name == "networks.unit"
                    ? "no unit owns that much of the internet (0.0.0.0/0 and ::/0 are all of it)"
                    : "that is the internet, which a classified workstation never reaches (the unclassified profile allows it)"
                throw reader.error(
                    node, list.name,
                    "these prefixes cover \(count == .max ? "more than 2^128" : "\(count)") public \(family) addresses, more than a \(size) (\(limit)), which \(key): true does not allow: \(why)")
            }
        }
    }

    /// The element node at `index` of a list (for its line), or the list itself.
    private func element(_ node: Node, _ index: Int, _ name: String, _ reader: YAMLReader) throws(MijianError) -> Node {
        let elements = try reader.sequence(node, name)
        return index < elements.count ? elements[index] : node
    }
}
