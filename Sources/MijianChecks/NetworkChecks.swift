import Foundation
import MijianCore

/// Network rules of the audit.
public enum NetworkChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.internetRoute, needs: [.routes], evaluate: RouteCheck.evaluate),
        Check(rule: RuleCatalogue.publicDNS, needs: [.resolvers], evaluate: DNSCheck.evaluate),
        Check(rule: RuleCatalogue.interfaces, needs: [.interfaces], evaluate: InterfaceCheck.evaluate),
        Check(rule: RuleCatalogue.sockets, needs: [.sockets], evaluate: SocketCheck.evaluate),
    ]
}

/// Evidence helpers shared by the network checks.
enum NetworkEvidence {
    /// One evidence entry per source read, saying whether it was read and how many records it gave.
    static func sources(_ sources: [SourceRead], at date: Date) -> [Evidence] {
        sources.map { Evidence(kind: $0.kind, source: $0.source, observedAt: date, data: $0.json) }
    }

    /// `path: reason; path: reason` for the sources that failed.
    static func failures(_ sources: [SourceRead]) -> String? {
        let failed = sources.compactMap { source in source.state.reason.map { "\(source.source): \($0)" } }
        return failed.isEmpty ? nil : failed.joined(separator: "; ")
    }

    /// A list for a sentence: `a, b, c` or `a, b, … (12 in all)`.
    static func list(_ items: [String], limit: Int = 6) -> String {
        if items.count <= limit { return items.joined(separator: ", ") }
        return items.prefix(limit).joined(separator: ", ") + ", … (\(items.count) in all)"
    }

    /// The findings, stating that the policy's networks include public space when they do.
    static func stated(_ findings: [Finding], _ context: CheckContext) -> [Finding] {
        context.statingPublicSpace(findings)
    }

    /// The unit's networks for a sentence.
    static func unitText(_ policy: Policy) -> String {
        policy.unitNetworks.isEmpty ? "(none listed)" : policy.unitNetworks.map(\.description).joined(separator: ", ")
    }
}
