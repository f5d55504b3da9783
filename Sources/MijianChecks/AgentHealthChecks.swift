import Foundation
import MijianCore

/// `agent.health` (七.10): whether the agent's evidence since the last report can be trusted —
/// nothing lost or at risk (events dropped, reports held in memory, a spool compacted), its key
/// its own, and the policy file on disk the policy in force. Judged at every seal from what the
/// agent observed of itself; not an audit check.
public enum AgentHealthChecks {
    /// The finding: fail with every failing problem's sentence, else pass with the spool's backlog.
    public static func health(_ facts: AgentHealthFacts, context: CheckContext) -> Finding {
        let date = context.observedAt
        let policy = context.policy
        var problems = facts.problems
        if facts.droppedEvents > 0 {
            problems.append(HealthProblem(
                kind: "events.dropped", detail: "\(facts.droppedEvents) event(s) were dropped: more than \(facts.eventCapacity) between two reports",
                failing: true, at: date))
        }
        let checked = facts.files.map { selfCheck($0, inForce: policy, at: date) }
        problems += checked?.problems ?? []
        if facts.spool.heldInMemory > 0 {
            problems.append(HealthProblem(
                kind: "spool.pending", detail: "\(facts.spool.heldInMemory) sealed report(s) are held in memory: the spool's disk refused them",
                failing: true, at: date))
        }
        let failing = problems.filter(\.failing)
        let status: Status = failing.isEmpty ? .pass : .fail
        let detail = failing.isEmpty
            ? "the agent ran without a problem since the last report; \(facts.spool.reports) report(s) (\(facts.spool.bytes) bytes) await delivery"
            : failing.map(\.detail).joined(separator: "; ")
        let spool = facts.spool
        let evidence = Evidence(
            kind: "agent", source: "mijian run", observedAt: date,
            data: [
                "uptime_seconds": .int(facts.uptimeSeconds),
                "reports_sealed": .integer(facts.reportsSealed),
                "last_audit_at": .optional(facts.lastAuditAt.map { RFC3339.string(from: $0) }),
                "policy": ["id": .string(policy.id), "version": .string(policy.version), "sha256": .string(policy.sha256)],
                "self_check": checked?.evidence ?? .null,
                "spool": [
                    "directory": .string(spool.directory), "reports": .integer(spool.reports), "bytes": .integer(spool.bytes),
                    "max_bytes": .integer(spool.maxBytes), "failing_reports": .integer(spool.failingReports),
                    "held_in_memory": .integer(spool.heldInMemory),
                ],
                "delivery": facts.delivery,
                "sources": facts.sources,
                "problems": .array(problems.map(\.json)),
            ])
        return context.finding(RuleCatalogue.agentHealth, subject: "agent", status: status, detail: detail, evidence: [evidence])
    }

    /// The key readable by its owner alone and owned by the agent; the policy file on disk the
    /// policy in force (an edit not yet reloaded, or a reload that failed, means the machine is
    /// not held to what the office wrote). The problems, and what was looked at.
    static func selfCheck(_ files: AgentFileFacts, inForce policy: Policy, at date: Date) -> (problems: [HealthProblem], evidence: JSONValue) {
        var problems: [HealthProblem] = []
        let keyFacts = files.key
        let keyFile = keyFacts.path
        let key: JSONValue
        if let reason = keyFacts.error {
            problems.append(HealthProblem(
                kind: "key.missing", detail: "the signing key \(keyFile) cannot be examined (\(reason)): the next start cannot sign", failing: true, at: date))
            key = ["path": .string(keyFile), "error": .string(reason)]
        } else {
            let mode = keyFacts.mode
            key = ["path": .string(keyFile), "mode": .string(String(mode, radix: 8)), "uid": .integer(keyFacts.uid), "regular_file": .bool(keyFacts.regularFile)]
            if !keyFacts.regularFile {
                problems.append(HealthProblem(kind: "key.permissions", detail: "the signing key \(keyFile) is not a regular file", failing: true, at: date))
            } else if mode & 0o077 != 0 {
                problems.append(HealthProblem(
                    kind: "key.permissions",
                    detail: "the signing key \(keyFile) has mode \(String(mode, radix: 8)): others than its owner can read it and sign reports in this machine's name",
                    failing: true, at: date))
            } else if keyFacts.uid != keyFacts.agentUID {
                problems.append(HealthProblem(
                    kind: "key.permissions", detail: "the signing key \(keyFile) belongs to uid \(keyFacts.uid), not to the agent (uid \(keyFacts.agentUID))",
                    failing: true, at: date))
            }
        }
        guard let policyFile = files.policyFile.path else {
            return (problems, ["key": key, "policy_file": ["path": .null, "built_in": true]])
        }
        let file: JSONValue
        if let digest = files.policyFile.sha256 {
            file = ["path": .string(policyFile), "sha256": .string(digest), "in_force": .bool(digest == policy.sha256)]
            if digest != policy.sha256 {
                problems.append(HealthProblem(
                    kind: "policy.not-in-force",
                    detail: "the policy file \(policyFile) (sha256 \(digest.prefix(16))…) is not the policy in force (sha256 \(policy.sha256.prefix(16))…): reload it (systemctl reload mijian) or fix it",
                    failing: true, at: date))
            }
        } else {
            let error = files.policyFile.error ?? "unknown error"
            file = ["path": .string(policyFile), "error": .string(error)]
            problems.append(HealthProblem(
                kind: "policy.unreadable", detail: "the policy file \(policyFile) cannot be read (\(error)): the policy in force cannot be compared with it",
                failing: true, at: date))
        }
        return (problems, ["key": key, "policy_file": file])
    }
}
