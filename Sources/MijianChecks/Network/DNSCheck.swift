import Foundation
import MijianCore

/// `net.public-dns`: every DNS server the host asks lies in the unit's networks.
///
/// A loopback `nameserver` is a local stub (systemd-resolved's 127.0.0.53, dnsmasq, …): the
/// servers behind it are what counts. systemd-resolved's are read from its runtime list and its
/// configuration; when only a stub is known and nothing says where it forwards, the rule says so
/// and does not pass.
enum DNSCheck {
    static let upstreamList = "/run/systemd/resolve/resolv.conf"

    static func evaluate(_ facts: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.publicDNS
        let network = facts.network
        let date = context.observedAt
        let policy = context.policy
        let stubs = network.resolvers.filter { $0.address.isLoopback || ($0.address.mappedV4?.isLoopback ?? false) }
        let servers = network.resolvers.filter { !stubs.contains($0) }
        var byAddress: [IPAddress: [Resolver]] = [:]
        for server in servers { byAddress[server.address, default: []].append(server) }
        let outside = byAddress.keys.filter { !policy.isUnitAddress($0) }.sorted()

        let summary: JSONValue = .object([
            ("resolvers", .array(network.resolvers.map(\.json))),
            ("local_stubs", .array(Array(Set(stubs.map(\.address))).sorted().map { .string($0.description) })),
            ("outside_unit", .array(outside.map { .string($0.description) })),
            ("policy_resolvers", .array(policy.dnsResolvers.map { .string($0.description) })),
            ("unit_networks", .array(policy.unitNetworks.map { .string($0.description) })),
        ])
        let evidence = NetworkEvidence.sources(network.resolverSources, at: date)
            + [Evidence(kind: "file", source: "resolvers", observedAt: date, data: summary)]

        var findings: [Finding] = []
        for address in outside {
            let entries = byAddress[address] ?? []
            let origins = Array(Set(entries.map { "\($0.origin.rawValue) in \($0.source)" })).sorted().joined(separator: "; ")
            findings.append(context.finding(
                rule, subject: "resolver \(address)", status: .fail,
                detail: "DNS server \(address) (\(origins)) is outside the unit's networks (\(NetworkEvidence.unitText(policy))).",
                evidence: [Evidence(kind: "file", source: entries.first?.source ?? "resolvers", observedAt: date, data: .array(entries.map(\.json)))] + evidence))
        }
        if let failures = NetworkEvidence.failures(network.resolverSources) {
            findings.append(context.finding(
                rule, subject: "resolvers", status: .error, detail: "Resolver configuration could not be read: \(failures).", evidence: evidence))
        }
        // The stub's upstreams are known from resolved's runtime list or an explicit DNS= setting.
        let upstreamKnown = network.resolverSources.contains { $0.source == upstreamList && $0.state == .ok }
            || network.resolvers.contains { $0.origin == .resolvedConfig }
        if !stubs.isEmpty, !upstreamKnown, outside.isEmpty {
            let stubText = Array(Set(stubs.map(\.address.description))).sorted().joined(separator: ", ")
            findings.append(context.finding(
                rule, subject: "resolvers", status: .notchecked,
                detail: "The host asks the local stub \(stubText), and the servers it forwards to are unknown (\(upstreamList) is missing and no DNS= is set), so public resolvers cannot be ruled out.",
                evidence: evidence))
        }
        // Without /etc/resolv.conf (missing, or a link into /run on an offline disk) and with no
        // resolver found anywhere else, the servers the host would learn at run time are unknown.
        let resolvConfRead = network.resolverSources.contains { $0.source == "/etc/resolv.conf" && $0.state == .ok }
        if findings.isEmpty, network.resolvers.isEmpty, !resolvConfRead {
            findings.append(context.finding(
                rule, subject: "resolvers", status: .notchecked,
                detail: "No resolver configuration was found (/etc/resolv.conf is missing or points into an absent /run, and no DNS= is set), so resolvers learned at run time, such as from DHCP, cannot be ruled out.",
                evidence: evidence))
        }
        if findings.isEmpty {
            let examined = byAddress.keys.sorted().map(\.description)
            let stubNote = stubs.isEmpty ? "" : " behind the local stub"
            let detail = examined.isEmpty
                ? "No DNS server is configured outside the loopback stub, so none lies outside the unit."
                : "Every DNS server\(stubNote) is inside the unit's networks: \(NetworkEvidence.list(examined))."
            findings.append(context.finding(rule, subject: "resolvers", status: .pass, detail: detail, evidence: evidence))
        }
        return NetworkEvidence.stated(findings, context)
    }
}
