import MijianCore

/// The checks `mijian audit` runs, and how they are applied.
public enum AuditChecks {
    /// Every audit check, in catalogue order.
    public static let all: [Check] = {
        let checks = NetworkChecks.all + HardwareChecks.all + HistoryChecks.all + USBHistoryChecks.all + ChannelChecks.all + InstallationChecks.all + MalwareChecks.all + AuditSystemChecks.all + SoftwareChecks.all + SharingChecks.all
            + BrowserHistoryChecks.all + AuthChecks.all
        return RuleCatalogue.auditRules.compactMap { rule in checks.first { $0.rule.id == rule.id } }
    }()

    /// The checks `only` selects (all when empty), in catalogue order.
    public static func selected(_ only: Set<String>) -> [Check] {
        all.filter { only.isEmpty || only.contains($0.rule.id) }
    }

    /// Whether a selected rule reads `set`, before the policy is known (it may still disable the rule).
    public static func mayRead(_ set: FactSet, only: Set<String>) -> Bool {
        selected(only).contains { $0.needs.contains(set) }
    }

    /// The fact groups the selected rules read, leaving out rules the policy disables (they are
    /// reported as `notchecked` without looking): what an audit of them has to observe.
    public static func factSets(for only: Set<String> = [], policy: Policy) -> Set<FactSet> {
        selected(only).filter { policy.isEnabled($0.rule.id) }.reduce(into: Set<FactSet>()) { $0.formUnion($1.needs) }
    }

    /// Runs the selected checks (all when `only` is empty). A rule the policy disables gives one
    /// `notchecked` finding that says so, never a silent pass; a rule whose fact groups were not
    /// collected gives one `error` finding, never an evaluation of empty facts.
    public static func evaluate(_ facts: AuditFacts, context: CheckContext, only: Set<String> = []) -> [Finding] {
        var findings: [Finding] = []
        for check in selected(only) {
            guard context.policy.isEnabled(check.rule.id) else {
                findings.append(context.finding(
                    check.rule, subject: "host", status: .notchecked,
                    detail: "Disabled by policy \(context.policy.id) (rules.\(check.rule.id).enabled: false).", evidence: []))
                continue
            }
            let missing = check.needs.subtracting(facts.collected)
            guard missing.isEmpty else {
                let names = missing.sorted().map(\.rawValue).joined(separator: ", ")
                findings.append(context.finding(
                    check.rule, subject: "host", status: .error,
                    detail: "The facts this rule reads (\(names)) were not collected in this audit, so it cannot vouch for anything.",
                    evidence: [context.evidence("facts", "host", ["not_collected": .array(missing.sorted().map { .string($0.rawValue) })])]))
                continue
            }
            findings.append(contentsOf: check.evaluate(facts, context))
        }
        return findings
    }
}
