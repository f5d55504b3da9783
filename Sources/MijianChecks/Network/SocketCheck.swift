import Foundation
import MijianCore

/// `net.sockets`: no TCP or UDP socket has a peer outside the unit's networks and the allowed
/// destinations.
///
/// Loopback sockets are ignored. Listeners on every address (0.0.0.0, ::) are reported as
/// informational, not failed: a listener has no peer, and whether an outside host could reach
/// it is a question of routes and addresses, which `net.internet-route` and `net.interfaces`
/// decide. They are still listed so a person sees what the host offers.
enum SocketCheck {
    static func normalised(_ address: IPAddress) -> IPAddress { address.mappedV4 ?? address }

    static func evaluate(_ facts: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.sockets
        let network = facts.network
        let date = context.observedAt
        let sources = NetworkEvidence.sources(network.socketSources, at: date)
        var loopback = 0
        var connected = 0
        var offending: [String: [SocketEntry]] = [:]
        var wildcard: [SocketEntry] = []
        for socket in network.sockets {
            let local = normalised(socket.local)
            let remote = normalised(socket.remote)
            if local.isLoopback || remote.isLoopback {
                loopback += 1
                continue
            }
            if remote.isUnspecified {
                if local.isUnspecified, socket.isListening { wildcard.append(socket) }
                continue
            }
            connected += 1
            if !context.policy.isAllowedPeer(remote) {
                let endpoint = remote.isV6 ? "[\(remote)]:\(socket.remotePort)" : "\(remote):\(socket.remotePort)"
                offending["\(socket.transport) \(endpoint)", default: []].append(socket)
            }
        }
        let summary: JSONValue = .object([
            ("sockets_read", .int(Int64(network.sockets.count))),
            ("loopback_ignored", .int(Int64(loopback))),
            ("with_peer", .int(Int64(connected))),
            ("listening_on_all_addresses", .int(Int64(wildcard.count))),
            ("outside_peers", .array(offending.keys.sorted().map { .string($0) })),
        ])
        let evidence = sources + [Evidence(kind: "summary", source: "sockets", observedAt: date, data: summary)]
        var findings: [Finding] = []
        for key in offending.keys.sorted() {
            let sockets = offending[key] ?? []
            let states = Array(Set(sockets.map(\.state))).sorted().joined(separator: ", ")
            findings.append(context.finding(
                rule, subject: "peer \(key)", status: .fail,
                detail: "\(sockets.count) socket(s) (\(states)) talk to \(key), outside the unit's networks and the allowed destinations.",
                evidence: [Evidence(kind: kind(of: sockets), source: sockets.first?.source ?? "sockets", observedAt: date, data: .array(sockets.map(\.json)))] + evidence))
        }
        if let failures = NetworkEvidence.failures(network.socketSources) {
            findings.append(context.finding(rule, subject: "sockets", status: .error, detail: "Sockets could not be read: \(failures).", evidence: evidence))
        } else if !network.socketSources.contains(where: { $0.state == .ok }) {
            findings.append(context.finding(
                rule, subject: "sockets", status: .error, detail: "No socket table was readable (\(network.socketSources.map(\.source).joined(separator: ", "))).",
                evidence: evidence))
        }
        if findings.isEmpty {
            findings.append(context.finding(
                rule, subject: "sockets", status: .pass,
                detail: "\(network.sockets.count) sockets examined (\(loopback) loopback ignored, \(connected) with a peer): no peer outside the unit's networks or allowed destinations.",
                evidence: evidence))
        }
        if !wildcard.isEmpty {
            let listed = wildcard.map { "\($0.transport) \($0.local.isV6 ? "[::]" : "0.0.0.0"):\($0.localPort)" }
            findings.append(context.finding(
                rule, subject: "listeners", status: .informational,
                detail: "\(wildcard.count) socket(s) listen on every address: \(NetworkEvidence.list(Array(Set(listed)).sorted())).",
                evidence: [Evidence(kind: kind(of: wildcard), source: "listeners", observedAt: date, data: .array(wildcard.map(\.json)))] + sources))
        }
        return NetworkEvidence.stated(findings, context)
    }

    /// Where sockets were read: `netlink` when every one came from sock_diag, `procfs` when every one
    /// came from a /proc/net table, `procfs+netlink` for a mix.
    static func kind(of sockets: [SocketEntry]) -> String {
        let fromDiag = sockets.filter { $0.source == "sock_diag" }.count
        return fromDiag == 0 ? "procfs" : (fromDiag == sockets.count ? "netlink" : "procfs+netlink")
    }
}
