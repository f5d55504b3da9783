import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// A policy whose unit networks, allowed destinations or resolvers reach public address space is
/// refused unless it says so with `networks.covers_public_space: true`, and even then the unit
/// cannot claim more than a /8 (IPv4) or a /32 (IPv6) of it.
@Suite struct PublicUnitPolicyTests {
    static let file = "/etc/mijian/policy.yaml"

    /// A policy with `networks` lines (indented under `networks:`) and optional `dns` and profile.
    static func text(_ networks: [String], resolvers: String = "[10.0.0.53]", profile: String = "classified") -> String {
        (["id: p", "version: \"1\"", "profile: \(profile)", "networks:"] + networks.map { "  " + $0 } + ["dns:", "  resolvers: \(resolvers)", ""])
            .joined(separator: "\n")
    }

    static func parse(_ text: String) throws(MijianError) -> Policy { try Policy.parse(Array(text.utf8), file: file) }

    static func refusal(_ text: String) -> MijianError? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        (["unit:", "  - 10.0.0.0/8", "  - 0.0.0.0/0"], ":7: networks.unit[1]: 0.0.0.0/0 covers public address space (1.0.0.0-9.255.255.255 and more)"),
        (["unit: [\"::/0\"]"], ":5: networks.unit[0]: ::/0 covers public address space (::2-"),
        (["unit: [0.0.0.0/1, 128.0.0.0/1]"], ":5: networks.unit[0]: 0.0.0.0/1 covers public address space (1.0.0.0-9.255.255.255 and more)"),
        (["unit:", "  - 8.0.0.0/8"], ":6: networks.unit[0]: 8.0.0.0/8 covers public address space (8.0.0.0-8.255.255.255)"),
        (["unit: [10.0.0.0/8]", "allowed_destinations: [0.0.0.0/0]"], ":6: networks.allowed_destinations[0]: 0.0.0.0/0 covers public address space"),
    ])
    func publicSpaceWithoutTheKeyIsRefusedAtItsLine(networks: [String], expected: String) throws {
        let error = try #require(Self.refusal(Self.text(networks)))
        #expect(error.code == .policyInvalid)
        #expect(error.message.hasPrefix(Self.file + expected), "\(error.message)")
        #expect(error.message.contains("networks.covers_public_space: true"), "\(error.message)")
    }

    @Test func aPublicResolverWithoutTheKeyIsRefused() throws {
        let error = try #require(Self.refusal(Self.text(["unit: [10.0.0.0/8]"], resolvers: "[10.0.0.53, 8.8.8.8]")))
        #expect(error.message.hasPrefix(Self.file + ":7: dns.resolvers[1]: 8.8.8.8 is a public address"), "\(error.message)")
    }

    @Test func specialPurposeSpaceNeedsNoKey() throws {
        // TEST-NET-3, shared address space, ULA and documentation IPv6 are not public.
        let policy = try Self.parse(Self.text(["unit: [203.0.113.0/24, 100.64.0.0/10, \"fd00::/8\", \"2001:db8::/32\"]"]))
        #expect(policy.unitNetworks.count == 4)
        #expect(policy.publicSpace == nil)
        #expect(!policy.coversPublicSpace)
    }

    @Test(arguments: [
        ["unit: [0.0.0.0/0]"], ["unit: [\"::/0\"]"], ["unit: [0.0.0.0/1, 128.0.0.0/1]"], ["unit: [8.0.0.0/8, 9.0.0.0/24]"],
        ["unit: [\"2000::/3\"]"],
    ])
    func theInternetIsNotAUnitEvenWithTheKey(networks: [String]) throws {
        let error = try #require(Self.refusal(Self.text(networks + ["covers_public_space: true"])))
        #expect(error.message.hasPrefix(Self.file + ":5: networks.unit: these prefixes cover"), "\(error.message)")
        #expect(error.message.contains("no unit owns that much of the internet"), "\(error.message)")
    }

    @Test func aUnitsOwnPublicBlockIsAcceptedWithTheKeyAndShown() throws {
        let policy = try Self.parse(Self.text(["unit: [10.0.0.0/8, 8.0.0.0/8, \"2001:4860::/32\"]", "covers_public_space: true"], resolvers: "[8.8.8.8]"))
        #expect(policy.coversPublicSpace)
        let space = try #require(policy.publicSpace)
        #expect(space.unit.map(\.description) == ["8.0.0.0/8", "2001:4860::/32"])
        #expect(space.resolvers.map(\.description) == ["8.8.8.8"])
        #expect(space.sentence.hasPrefix("By the policy's explicit choice (networks.covers_public_space: true), the unit's networks include public address space (8.0.0.0/8, 2001:4860::/32)"))
        let evidence = space.evidence(at: TestSupport.fixedDate)
        #expect(evidence.kind == "policy" && evidence.source == "networks.covers_public_space")
    }

    @Test func allowedDestinationsOfTheWholeInternetAreForUnclassifiedMachinesOnly() throws {
        let networks = ["unit: [10.0.0.0/8]", "allowed_destinations: [0.0.0.0/0, \"::/0\"]", "covers_public_space: true"]
        let classified = try #require(Self.refusal(Self.text(networks)))
        #expect(classified.message.hasPrefix(Self.file + ":6: networks.allowed_destinations: these prefixes cover"), "\(classified.message)")
        #expect(classified.message.contains("a classified workstation never reaches"))
        let unclassified = try Self.parse(Self.text(networks, profile: "unclassified"))
        #expect(unclassified.publicSpace?.allowedDestinations.count == 2)
        // One public collector address is fine on a classified machine, with the key.
        let collector = try Self.parse(Self.text(["unit: [10.0.0.0/8]", "allowed_destinations: [8.8.4.4/32]", "covers_public_space: true"]))
        #expect(collector.publicSpace?.allowedDestinations.map(\.description) == ["8.8.4.4/32"])
    }

    @Test func theKeyIsABoolean() throws {
        let error = try #require(Self.refusal(Self.text(["unit: [10.0.0.0/8]", "covers_public_space: maybe"])))
        #expect(error.message.hasPrefix(Self.file + ":6: networks.covers_public_space: expected true or false"), "\(error.message)")
        let off = try Self.parse(Self.text(["unit: [10.0.0.0/8]", "covers_public_space: false"]))
        #expect(!off.coversPublicSpace)
    }

    @Test func theShippedUnclassifiedPolicySaysSo() throws {
        let policy = try Policy.parse(Array(EmbeddedPolicies.unclassifiedWorkstation.utf8), file: "unclassified-workstation.yaml")
        #expect(policy.coversPublicSpace)
        #expect(policy.publicSpace?.allowedDestinations.map(\.description) == ["0.0.0.0/0", "::/0"])
        #expect(try TestSupport.defaultPolicy().publicSpace == nil)
    }

    @Test func ipv4MappedPrefixesCountAsTheIPv4TheyStandFor() throws {
        // A mapped public resolver is judged as IPv4 by net.public-dns, so ::ffff:0:0/96 is the IPv4 internet.
        let error = try #require(Self.refusal(Self.text(["unit: [10.0.0.0/8, \"::ffff:0:0/96\"]"])))
        #expect(error.message.hasPrefix(Self.file + ":5: networks.unit[1]: ::ffff:0:0/96 covers public address space (1.0.0.0-9.255.255.255 and more)"), "\(error.message)")
        let keyed = try #require(Self.refusal(Self.text(["unit: [\"::ffff:0:0/96\"]", "covers_public_space: true"])))
        #expect(keyed.message.hasPrefix(Self.file + ":5: networks.unit: these prefixes cover 3"), "\(keyed.message)")
        #expect(keyed.message.contains("public IPv4 addresses"), "\(keyed.message)")
        // The mapped form of the unit's own 10/8 is not public.
        let mapped = try Self.parse(Self.text(["unit: [10.0.0.0/8, \"::ffff:10.0.0.0/104\"]"]))
        #expect(mapped.publicSpace == nil)
    }

    @Test(arguments: ["64:ff9b::/96", "64:ff9b::/64", "64:ff9b:1::/48", "64:ff9b:1:abcd::/96"])
    func nat64PrefixesCountAsTheIPv4TheyStandFor(prefix: String) throws {
        // Through a translator every IPv4 address is reachable there: the IPv4 internet, past the /8 bound.
        let keyed = try #require(Self.refusal(Self.text(["unit: [\"\(prefix)\"]", "covers_public_space: true"])))
        #expect(keyed.message.hasPrefix(Self.file + ":5: networks.unit: these prefixes cover 3"), "\(keyed.message)")
        #expect(keyed.message.contains("public IPv4 addresses"), "\(keyed.message)")
        let unkeyed = try #require(Self.refusal(Self.text(["unit: [\"\(prefix)\"]"])))
        #expect(unkeyed.message.hasPrefix(Self.file + ":5: networks.unit[0]: \(prefix) covers public address space"), "\(unkeyed.message)")
    }

    @Test func nat64SpaceStaysPublicAndCountsWithinTheBoundsWhenSmall() throws {
        // A route or resolver there reaches the IPv4 internet through a translator: still public, key or not.
        #expect(try #require(IPAddress("64:ff9b::8.8.8.8")).isPublic)
        #expect(try #require(IPNetwork("64:ff9b::/96")).publicRanges.isEmpty == false)
        let resolver = try #require(Self.refusal(Self.text(["unit: [10.0.0.0/8]"], resolvers: "[\"64:ff9b::8.8.8.8\"]")))
        #expect(resolver.message.contains("dns.resolvers[0]: 64:ff9b::808:808 is a public address"), "\(resolver.message)")
        // The unit's own 10/8 behind the well-known prefix, with the key: 2^24 addresses of each family, within both bounds.
        let own = try Self.parse(Self.text(["unit: [\"64:ff9b::10.0.0.0/104\"]", "covers_public_space: true"]))
        #expect(own.publicSpace?.unit.count == 1)
        #expect(IPNetwork.publicAddressCount(own.unitNetworks, v6: false) == 0)
    }

    @Test func publicAddressCountMergesOverlaps() throws {
        let networks = ["8.0.0.0/8", "8.8.0.0/16", "9.0.0.0/8", "10.0.0.0/8"].compactMap { IPNetwork($0) }
        #expect(IPNetwork.publicAddressCount(networks, v6: false) == 2 << 24)
        #expect(IPNetwork.publicAddressCount(networks, v6: true) == 0)
        let all = try #require(IPNetwork("::/0"))
        #expect(IPNetwork.publicAddressCount([all], v6: true) > Policy.maxPublicV6)
        #expect(try #require(IPNetwork("203.0.113.0/24")).publicRanges.isEmpty)
        #expect(try #require(IPNetwork("203.0.112.0/23")).publicRanges.map { IPNetwork.describe($0, v6: false) } == ["203.0.112.0-203.0.112.255"])
    }
}
