#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// A network namespace made for one test and deleted when the value goes away, even when the
/// test fails. Its name is unique per run (pid and a random suffix).
final class TestNamespace {
    let name: String

    init(_ label: String) throws {
        name = "mijian-\(label)-\(getpid())-\(UUID().uuidString.prefix(8).lowercased())"
        try TestNamespace.run(["netns", "add", name])
        do {
            try ip("link", "set", "lo", "up")
            try ip("link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
            try ip("addr", "add", "192.0.2.2/24", "dev", "veth0")
            try ip("link", "set", "veth0", "up")
            try ip("link", "set", "veth1", "up")
        } catch {
            try? TestNamespace.run(["netns", "del", name])
            throw error
        }
    }

    deinit {
        try? TestNamespace.run(["netns", "del", name])
    }

    /// `ip -n NAME ARGS…`.
    func ip(_ arguments: String...) throws {
        try TestNamespace.run(["-n", name] + arguments)
    }

    /// The live probe with its netlink socket opened inside the namespace.
    func observe() throws -> NetworkFacts {
        try NetworkNamespace.perform(path: "/run/netns/\(name)") { () throws(MijianError) -> NetworkFacts in
            let socket = try NetlinkSocket()
            return NetworkProbe.observe(root: .live, transport: socket, logger: NetFixtures.logger)
        }
    }

    /// The findings of one network rule for this namespace, under the default policy (unit 10/8, fd00::/8).
    func findings(_ rule: RuleInfo) throws -> [Finding] {
        let facts = AuditFacts(root: "/", live: true, observedAt: TestSupport.fixedDate, network: try observe())
        let context = CheckContext(policy: try TestSupport.defaultPolicy(), hostID: "live-test", observedAt: TestSupport.fixedDate)
        return AuditChecks.evaluate(facts, context: context, only: [rule.id])
    }

    struct CommandFailed: Error, CustomStringConvertible {
        let description: String
    }

    static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CommandFailed(description: "ip \(arguments.joined(separator: " ")): \(String(decoding: message, as: UTF8.self))")
        }
    }
}

@Suite("network rules live in namespaces", .serialized)
struct NetworkLiveTests {
    static let rule = RuleCatalogue.internetRoute

    @Test func lanOnlyPasses() throws {
        let namespace = try TestNamespace("lan")
        let findings = try namespace.findings(Self.rule)
        #expect(findings.map(\.status) == [.pass])
        let detail = try #require(findings.first?.statusDetail)
        #expect(detail.contains("every table from rtnetlink"))
        #expect(detail.contains("main"))
        #expect(detail.contains("local"))
    }

    @Test func defaultRouteFails() throws {
        let namespace = try TestNamespace("default")
        try namespace.ip("route", "add", "default", "via", "192.0.2.1")
        let findings = try namespace.findings(Self.rule)
        #expect(findings.map(\.status) == [.fail])
        #expect(findings.first?.subject == "route main 0.0.0.0/0")
        #expect(findings.first?.statusDetail.contains("via 192.0.2.1 dev veth0") == true)
    }

    @Test func splitDefaultFails() throws {
        let namespace = try TestNamespace("split")
        try namespace.ip("route", "add", "0.0.0.0/1", "via", "192.0.2.1")
        try namespace.ip("route", "add", "128.0.0.0/1", "via", "192.0.2.1")
        let findings = try namespace.findings(Self.rule)
        #expect(findings.map(\.status) == [.fail, .fail])
        #expect(Set(findings.map(\.subject)) == ["route main 0.0.0.0/1", "route main 128.0.0.0/1"])
    }

    @Test func ruleSelectedTableFails() throws {
        let namespace = try TestNamespace("rule")
        try namespace.ip("route", "add", "default", "via", "192.0.2.1", "table", "4242")
        // Without a rule the table cannot be reached, and the route is listed but not judged.
        let unselected = try namespace.findings(Self.rule)
        #expect(unselected.map(\.status) == [.pass])
        try namespace.ip("rule", "add", "from", "192.0.2.0/24", "lookup", "4242", "priority", "1000")
        let findings = try namespace.findings(Self.rule)
        #expect(findings.map(\.status) == [.fail])
        #expect(findings.first?.subject == "route 4242 0.0.0.0/0")
    }

    @Test func blackholeDefaultPasses() throws {
        let namespace = try TestNamespace("blackhole")
        try namespace.ip("route", "add", "blackhole", "default")
        try namespace.ip("route", "add", "unreachable", "0.0.0.0/1", "table", "77")
        try namespace.ip("rule", "add", "fwmark", "1", "lookup", "77")
        try namespace.ip("-6", "route", "add", "prohibit", "default")
        let facts = try namespace.observe()
        #expect(facts.routes.contains { $0.type == .blackhole && $0.destination.prefixLength == 0 })
        let findings = try namespace.findings(Self.rule)
        #expect(findings.map(\.status) == [.pass])
    }

    @Test func ipv6DefaultFails() throws {
        let namespace = try TestNamespace("v6")
        try namespace.ip("-6", "addr", "add", "2001:db8::2/64", "dev", "veth0", "nodad")
        try namespace.ip("-6", "route", "add", "default", "via", "2001:db8::1", "dev", "veth0")
        let findings = try namespace.findings(Self.rule)
        #expect(findings.map(\.status) == [.fail])
        #expect(findings.first?.subject == "route main ::/0")
    }

    @Test func tunnelInterfaceFails() throws {
        let namespace = try TestNamespace("tun")
        // One link up, as on a classified computer (the peer end stays in the namespace, down).
        try namespace.ip("link", "set", "veth1", "down")
        let clean = try namespace.findings(RuleCatalogue.interfaces)
        #expect(clean.map(\.status) == [.pass])
        #expect(clean.first?.statusDetail.contains("veth0") == true)
        try namespace.ip("tuntap", "add", "dev", "tun9", "mode", "tun")
        let findings = try namespace.findings(RuleCatalogue.interfaces)
        #expect(findings.map(\.subject) == ["interface tun9"])
        #expect(findings.first?.statusDetail.contains("tun tunnel") == true)
    }

    @Test func bridgedLinkAndASecondLinkUpFail() throws {
        let namespace = try TestNamespace("bridge")
        try namespace.ip("link", "set", "veth1", "down")
        try namespace.ip("link", "add", "br9", "type", "bridge")
        try namespace.ip("link", "set", "veth0", "master", "br9")
        try namespace.ip("link", "set", "br9", "up")
        let facts = try namespace.observe()
        let bridge = try #require(facts.interfaces.first { $0.name == "br9" })
        let port = try #require(facts.interfaces.first { $0.name == "veth0" })
        #expect(bridge.kind == "bridge")
        #expect(port.master == "br9")
        #expect(port.masterIndex == bridge.index)
        #expect(facts.interfaces.first { $0.name == "veth1" }?.master == nil)
        // The port is judged as bridged; the bridge is the one link up.
        let bridged = try namespace.findings(RuleCatalogue.interfaces)
        #expect(bridged.map(\.subject) == ["interface veth0"])
        #expect(bridged.first?.statusDetail.contains("is bridged into br9") == true)
        // The other end up as well: two links up (the bridge and veth1).
        try namespace.ip("link", "set", "veth1", "up")
        let both = try namespace.findings(RuleCatalogue.interfaces)
        #expect(both.map(\.subject).sorted() == ["interface veth0", "links up"])
        let linksUp = try #require(both.first { $0.subject == "links up" }?.statusDetail)
        #expect(linksUp.contains("2 links are up (") && linksUp.contains("br9") && linksUp.contains("veth1"), "\(linksUp)")
    }

    @Test func namespaceIsRemovedAfterUse() throws {
        var name = ""
        do {
            let namespace = try TestNamespace("cleanup")
            name = namespace.name
            withExtendedLifetime(namespace) {
                #expect(FileManager.default.fileExists(atPath: "/run/netns/\(name)"))
            }
        }
        #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(name)"))
    }
}
