import MijianCore
import Testing

@testable import MijianCLI

/// The catalogue and the checks agree.
@Suite struct CatalogueCoverageTests {
    @Test func everyAuditRuleHasACheck() {
        let checked = Set(MijianChecksRegistry.ruleIDs)
        for rule in RuleCatalogue.auditRules {
            #expect(checked.contains(rule.id), "no check for \(rule.id)")
        }
    }
}
