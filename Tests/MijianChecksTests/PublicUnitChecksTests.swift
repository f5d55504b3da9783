import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianChecks

/// A unit that owns public address space, with the policy saying so: the network rules judge that
/// space as the unit's, and every finding of theirs says it is so by the policy's choice.
@Suite struct PublicUnitChecksTests {
    /// The unit's own 10/8 and a public /24 it owns, a public resolver in it, and a public collector.
    static func context() throws -> CheckContext {
        let policy = try TestSupport.policy("""
            id: unit-with-public-block
            version: "1"
            profile: classified
            networks:
              unit: [10.0.0.0/8, 198.51.99.0/24]
              allowed_destinations: [8.8.4.4/32]
              covers_public_space: true
            dns:
              resolvers: [198.51.99.53]
            """)
        return CheckContext(policy: policy, hostID: "host-test", observedAt: TestSupport.fixedDate)
    }

    static let sentence = "By the policy's explicit choice (networks.covers_public_space: true), the unit's networks include public address space (198.51.99.0/24) and the allowed destinations include public address space (8.8.4.4/32) and the unit's resolvers include public addresses (198.51.99.53); addresses there are not judged as outside."

    /// Every finding states the choice in its detail and carries it as evidence.
    static func expectStated(_ findings: [Finding], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!findings.isEmpty, sourceLocation: sourceLocation)
        for finding in findings {
            #expect(finding.statusDetail.hasSuffix(" " + sentence), "\(finding.rule.id) \(finding.status): \(finding.statusDetail)", sourceLocation: sourceLocation)
            let stated = finding.evidence.filter { $0.kind == "policy" && $0.source == "networks.covers_public_space" }
            #expect(stated.count == 1, "\(finding.rule.id): \(finding.evidence.map(\.source))", sourceLocation: sourceLocation)
            #expect(PublicSpace.statement(in: [finding]) == sentence, sourceLocation: sourceLocation)
        }
    }

    @Test func routesIntoTheOwnedBlockPassAndSaySo() throws {
        let routes = [try NetFacts.route("10.0.0.0/8", via: "10.1.2.1"), try NetFacts.route("198.51.99.0/24", via: "10.1.2.1")]
        let findings = RouteCheck.evaluate(NetFacts.live(routes), try Self.context())
        #expect(NetFacts.statuses(findings) == [.pass])
        Self.expectStated(findings)
        // A default route still fails: the key lets in the unit's block, not the internet.
        let fails = RouteCheck.evaluate(NetFacts.live(routes + [try NetFacts.route("0.0.0.0/0", via: "10.1.2.1")]), try Self.context())
        #expect(NetFacts.statuses(fails) == [.fail])
        Self.expectStated(fails)
    }

    @Test func resolversSocketsAndInterfacesSaySo() throws {
        let dns = DNSCheck.evaluate(NetworkDNSCheckTests.facts([try NetworkDNSCheckTests.resolver("198.51.99.53")]), try Self.context())
        #expect(NetFacts.statuses(dns) == [.pass])
        Self.expectStated(dns)

        let sockets = SocketCheck.evaluate(
            NetworkSocketCheckTests.facts([
                try NetworkSocketCheckTests.socket("tcp", "198.51.99.7", 50000, "8.8.4.4", 443, "established"),
                try NetworkSocketCheckTests.socket("tcp", "198.51.99.7", 50001, "1.1.1.1", 443, "established"),
            ]), try Self.context())
        #expect(NetFacts.statuses(sockets) == [.fail])
        #expect(sockets.first?.subject == "peer tcp 1.1.1.1:443")
        Self.expectStated(sockets)

        let eth = NetworkInterface(
            name: "eth0", index: 2, linkType: 1, flags: 0x1003, operState: "up", driver: "e1000e", bus: "pci",
            addresses: [try NetworkInterfaceCheckTests.address("198.51.99.7/24")])
        let lo = NetworkInterface(name: "lo", index: 1, linkType: 772, flags: 0x9, operState: "unknown")
        let interfaces = InterfaceCheck.evaluate(NetworkInterfaceCheckTests.facts([lo, eth]), try Self.context())
        #expect(NetFacts.statuses(interfaces) == [.pass])
        Self.expectStated(interfaces)
    }

    @Test func errorsSaySoToo() throws {
        let nothing = AuditFacts(root: "/", live: true, observedAt: TestSupport.fixedDate, network: NetworkFacts())
        let findings = RouteCheck.evaluate(nothing, try Self.context())
        #expect(NetFacts.statuses(findings) == [.error])
        Self.expectStated(findings)
    }

    @Test func aPolicyWithoutPublicSpaceAddsNothing() throws {
        let findings = RouteCheck.evaluate(NetFacts.live([try NetFacts.route("10.0.0.0/8", via: "10.1.2.1")]), try NetFacts.context())
        #expect(NetFacts.statuses(findings) == [.pass])
        #expect(PublicSpace.statement(in: findings) == nil)
        #expect(!(findings.first?.statusDetail.contains("explicit choice") ?? true))
    }
}
