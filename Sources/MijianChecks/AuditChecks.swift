import MijianCore

/// The checks `mijian audit` runs, and how they are applied.
public enum AuditChecks {
    /// Every audit check, in catalogue order.
    public static var all: [Check] {
        let checks = NetworkChecks.all + HardwareChecks.all + HistoryChecks.all + USBHistoryChecks.all
        return RuleCatalogue.auditRules.compactMap { rule in checks.first { $0.rule.id == rule.id } }
    }

    /// Runs the selected checks (all when `only` is empty). A rule the policy disables gives one
    /// `notchecked` finding that says so, never a silent pass.
    public static func evaluate(_ facts: AuditFacts, context: CheckContext, only: Set<String> = []) -> [Finding] {
        var findings: [Finding] = []
        for check in all where only.isEmpty || only.contains(check.rule.id) {
            guard context.policy.isEnabled(check.rule.id) else {
                findings.append(context.finding(
                    check.rule, subject: "host", status: .notchecked,
                    detail: "Disabled by policy \(context.policy.id) (rules.\(check.rule.id).enabled: false).", evidence: []))
                continue
            }
            findings.append(contentsOf: check.evaluate(facts, context))
        }
        return findings
    }
}
