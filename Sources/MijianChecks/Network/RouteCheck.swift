import Foundation
import MijianCore

/// `net.internet-route`: no route that a policy rule can select reaches public address space
/// outside the unit's networks.
///
/// Each route is judged on what its prefix covers, not on its gateway: a default route through an
/// internal gateway still hands every public address to that gateway. Routes that refuse
/// (blackhole, unreachable, prohibit), the host's own addresses (local, broadcast, anycast),
/// multicast and `throw` routes do not send packets anywhere and are not egress routes.
enum RouteCheck {
    /// Route types that send packets to a next hop or a link.
    static let egressTypes: Set<RouteType> = [.unicast, .unspec, .nat, .xresolve]

    /// An offending route and a sample of the public space it reaches.
    struct Offender {
        let route: Route
        let remainder: [ClosedRange<UInt128>]
    }

    static func evaluate(_ facts: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.internetRoute
        let network = facts.network
        let date = context.observedAt
        let selection = selectableTables(network)
        var offenders: [Offender] = []
        var examined = 0
        var notEgress = 0
        var unselected: [Route] = []
        for route in network.routes {
            if let tables = selection[route.family], !tables.contains(route.table) {
                unselected.append(route)
                continue
            }
            examined += 1
            guard egressTypes.contains(route.type) else {
                notEgress += 1
                continue
            }
            let remainder = AddressCoverage.publicRemainder(of: route.destination, unitNetworks: context.policy.unitNetworks)
            if !remainder.isEmpty { offenders.append(Offender(route: route, remainder: remainder)) }
        }

        let tablesRead = Set(network.routes.map(\.table)).sorted().map(RoutingTable.name)
        let scope = scopeSentence(network)
        var summary: [(String, JSONValue)] = [
            ("tables_read", .array(tablesRead.map { .string($0) })),
            ("selectable_tables", selectionJSON(selection, network)),
            ("routes_read", .int(Int64(network.routes.count))),
            ("routes_examined", .int(Int64(examined))),
            ("routes_not_egress", .int(Int64(notEgress))),
            ("routes_in_unselectable_tables", .array(unselected.map(\.json))),
            ("unit_networks", .array(context.policy.unitNetworks.map { .string($0.description) })),
            ("offending", .array(offenders.map { offenderJSON($0) })),
        ]
        if network.rulesKnown {
            summary.append(("policy_rules", .array(network.rules.map(\.json))))
        } else {
            summary.append(("policy_rules", .string("not observable from these sources")))
        }
        if network.mainTableOnly { summary.append(("limitation", .string("main table only from /proc/net/route; policy rules and other tables are not in procfs"))) }
        let evidence = NetworkEvidence.sources(network.routeSources, at: date)
            + [Evidence(kind: network.mainTableOnly ? "procfs" : "netlink", source: "routes", observedAt: date, data: .object(summary))]

        var findings: [Finding] = []
        for offender in offenders {
            let route = offender.route
            let sample = AddressCoverage.sample(offender.remainder, v6: route.destination.address.isV6, limit: 2).joined(separator: ", ")
            let reason = route.destination.prefixLength == 0 ? "is a default route" : "covers public address space"
            let routeSource = route.source == "netlink" ? "RTM_GETROUTE table \(RoutingTable.name(route.table))" : route.source
            let routeEvidence = Evidence(kind: route.source == "netlink" ? "netlink" : "procfs", source: routeSource, observedAt: date, data: offenderJSON(offender))
            findings.append(context.finding(
                rule, subject: "route \(RoutingTable.name(route.table)) \(route.destination)", status: .fail,
                detail: "Route \(route.description) \(reason) outside the unit's networks (reaches \(sample)); \(scope).",
                evidence: [routeEvidence] + evidence))
        }
        if let failures = NetworkEvidence.failures(network.routeSources) {
            findings.append(context.finding(
                rule, subject: "routing", status: .error, detail: "Routes could not be read, so egress cannot be ruled out: \(failures).",
                evidence: evidence))
        } else if network.routeSources.isEmpty {
            findings.append(context.finding(rule, subject: "routing", status: .error, detail: "No route source was read.", evidence: evidence))
        }
        if findings.isEmpty {
            findings.append(context.finding(
                rule, subject: "routing", status: .pass,
                detail: "No route reaches public address space outside the unit's networks (\(NetworkEvidence.unitText(context.policy))): \(examined) routes examined in tables \(tablesRead.isEmpty ? "(none)" : tablesRead.joined(separator: ", ")); \(scope).",
                evidence: evidence))
        }
        return NetworkEvidence.stated(findings, context)
    }

    /// Per family (4, 6), the tables some policy rule can look up; no entry means every table counts:
    /// rules unknown, no rules of that family, or a rule that picks its table from a VRF device.
    static func selectableTables(_ network: NetworkFacts) -> [Int: Set<UInt32>] {
        guard network.rulesKnown else { return [:] }
        var out: [Int: Set<UInt32>] = [:]
        for family in [4, 6] {
            let rules = network.rules.filter { $0.family == family }
            if rules.isEmpty { continue }
            let lookups = rules.filter { $0.action == .toTable }
            if lookups.contains(where: { $0.l3mdev || $0.table == 0 }) { continue }
            out[family] = Set(lookups.map(\.table))
        }
        return out
    }

    static func selectionJSON(_ selection: [Int: Set<UInt32>], _ network: NetworkFacts) -> JSONValue {
        guard network.rulesKnown else { return .string("all tables read (policy rules not observable)") }
        return .object([4, 6].map { family in
            let key = "ipv\(family)"
            guard let tables = selection[family] else { return (key, .string("all")) }
            return (key, .array(tables.sorted().map { .string(RoutingTable.name($0)) }))
        })
    }

    static func offenderJSON(_ offender: Offender) -> JSONValue {
        let v6 = offender.route.destination.address.isV6
        return .object([
            ("route", offender.route.json),
            ("public_ranges_sample", .array(AddressCoverage.sample(offender.remainder, v6: v6, limit: 4).map { .string($0) })),
            ("public_ranges", .int(Int64(offender.remainder.count))),
        ])
    }

    static func scopeSentence(_ network: NetworkFacts) -> String {
        if network.mainTableOnly {
            return "main table only from /proc/net/route, IPv6 from /proc/net/ipv6_route without table ids; policy rules are not visible in procfs"
        }
        let rules = network.rulesKnown ? "\(network.rules.count) policy rules" : "policy rules unknown, every table counted"
        return "every table from rtnetlink (IPv4 and IPv6), \(rules)"
    }
}
