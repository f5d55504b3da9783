import Foundation
import MijianChecks
import MijianCore
import MijianHost
import MijianTestSupport
import Testing

/// `agent.health` and the service's `traffic.egress` judged as every other rule is: pure
/// functions of observed facts and the policy, here fed facts no running agent needs to make.
@Suite("agent.health and the traffic watch's findings are judged from facts")
struct HealthAndTrafficCheckTests {
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    func context() throws -> CheckContext { CheckContext(policy: try TestSupport.defaultPolicy(), hostID: "h", observedAt: at) }

    func key(mode: Int = 0o600, uid: Int = 0, error: String? = nil, regular: Bool = true) -> AgentKeyFacts {
        AgentKeyFacts(path: "/var/lib/mijian/key", error: error, mode: mode, uid: uid, regularFile: regular, agentUID: 0)
    }

    func facts(
        files: AgentFileFacts? = nil, problems: [HealthProblem] = [], dropped: Int = 0, held: Int = 0
    ) -> AgentHealthFacts {
        AgentHealthFacts(
            uptimeSeconds: 60, reportsSealed: 2, lastAuditAt: at, problems: problems, droppedEvents: dropped, eventCapacity: 10_000, files: files,
            spool: AgentSpoolFacts(directory: "/var/lib/mijian/spool", reports: 3, bytes: 900, maxBytes: 1 << 20, failingReports: 1, heldInMemory: held),
            delivery: ["mode": "none"], sources: .object([]))
    }

    @Test func aHealthyAgentPassesAndSaysWhatAwaitsDelivery() throws {
        let context = try context()
        let files = AgentFileFacts(key: key(), policyFile: AgentPolicyFileFacts(path: "/etc/mijian/policy.yaml", sha256: context.policy.sha256, error: nil))
        let finding = AgentHealthChecks.health(facts(files: files), context: context)
        #expect(finding.status == .pass)
        #expect(finding.statusDetail.contains("3 report(s) (900 bytes) await delivery"))
        #expect(finding.evidence.first?.data["self_check"]?["policy_file"]?["in_force"]?.boolValue == true)
        #expect(finding.evidence.first?.data["spool"]?["held_in_memory"]?.intValue == 0)
    }

    @Test(arguments: [
        (0o644, 0, true, "has mode 644"),
        (0o600, 1000, true, "belongs to uid 1000, not to the agent (uid 0)"),
        (0o600, 0, false, "is not a regular file"),
    ])
    func aKeyThatIsNotTheAgentsAloneFails(mode: Int, uid: Int, regular: Bool, says: String) throws {
        let files = AgentFileFacts(key: key(mode: mode, uid: uid, regular: regular), policyFile: AgentPolicyFileFacts(path: nil, sha256: nil, error: nil))
        let finding = AgentHealthChecks.health(facts(files: files), context: try context())
        #expect(finding.status == .fail)
        #expect(finding.statusDetail.contains(says), "\(finding.statusDetail)")
    }

    @Test func aMissingKeyAnEditedOrUnreadablePolicyFileFail() throws {
        let context = try context()
        let missing = AgentFileFacts(key: key(error: "No such file or directory"), policyFile: AgentPolicyFileFacts(path: nil, sha256: nil, error: nil))
        let gone = AgentHealthChecks.health(facts(files: missing), context: context)
        #expect(gone.status == .fail)
        #expect(gone.statusDetail.contains("cannot be examined (No such file or directory)"))
        #expect(gone.evidence.first?.data["self_check"]?["policy_file"]?["built_in"]?.boolValue == true)
        let edited = AgentFileFacts(key: key(), policyFile: AgentPolicyFileFacts(path: "/etc/mijian/policy.yaml", sha256: String(repeating: "0", count: 64), error: nil))
        let stale = AgentHealthChecks.health(facts(files: edited), context: context)
        #expect(stale.status == .fail)
        #expect(stale.statusDetail.contains("is not the policy in force"))
        #expect(stale.evidence.first?.data["self_check"]?["policy_file"]?["in_force"]?.boolValue == false)
        let unreadable = AgentFileFacts(key: key(), policyFile: AgentPolicyFileFacts(path: "/etc/mijian/policy.yaml", sha256: nil, error: "permission denied"))
        let blind = AgentHealthChecks.health(facts(files: unreadable), context: context)
        #expect(blind.status == .fail)
        #expect(blind.statusDetail.contains("cannot be read (permission denied)"))
    }

    @Test func lostEventsHeldReportsAndNotedProblemsFailInTheirOrder() throws {
        let noted = HealthProblem(kind: "capture.dropped", detail: "4 packet(s) on v0 were dropped", failing: true, at: at)
        let info = HealthProblem(kind: "note", detail: "only informs", failing: false, at: at)
        let finding = AgentHealthChecks.health(facts(problems: [noted, info], dropped: 7, held: 2), context: try context())
        #expect(finding.status == .fail)
        #expect(!finding.statusDetail.contains("only informs"))
        let kinds = finding.evidence.first?.data["problems"]?.arrayValue?.compactMap { $0["kind"]?.stringValue }
        #expect(kinds == ["capture.dropped", "note", "events.dropped", "spool.pending"])
        #expect(finding.statusDetail.contains("7 event(s) were dropped: more than 10000 between two reports"))
        #expect(finding.statusDetail.contains("2 sealed report(s) are held in memory"))
    }

    @Test func aLinkUpButNotCapturedIsAnErrorNeverAPass() throws {
        let links = LinkStateFacts(source: "/sys/class/net", links: ["eth0", "lo"], up: ["eth0"])
        let notYet = TrafficChecks.window(TrafficWindowFacts(captures: [.notStarted(link: "eth0")], links: links), context: try context())
        #expect(notYet.map(\.status) == [.error])
        #expect(notYet.first?.subject == "interface eth0")
        let refused = TrafficChecks.window(
            TrafficWindowFacts(captures: [.cannotCapture(link: "eth0", error: "permission denied")], links: links), context: try context())
        #expect(refused.map(\.status) == [.error])
        #expect(refused.first?.statusDetail.contains("cannot be captured: permission denied") == true)
    }

    @Test func noLinkUpPassesAndNamesTheLinksThereWere() throws {
        let links = LinkStateFacts(source: "/sys/class/net", links: ["lo", "eth0"], up: [])
        let findings = TrafficChecks.window(TrafficWindowFacts(captures: [], links: links), context: try context())
        #expect(findings.map(\.status) == [.pass])
        #expect(findings.first?.evidence.first?.data["links"] == .array([.string("lo"), .string("eth0")]))
    }

    @Test func theCapturableLinksAreTheConfiguredThenThePolicysThenAllThatAreUp() throws {
        let links = LinkStateFacts(source: "/sys/class/net", links: ["eth0", "eth1", "lo"], up: ["eth0", "eth1"])
        let policy = try TestSupport.defaultPolicy()
        #expect(links.capturable(configured: ["eth1", "eth9"], policy: policy) == ["eth1"])
        #expect(links.capturable(configured: [], policy: policy) == (policy.allowedLinks.isEmpty ? ["eth0", "eth1"] : links.up.filter { policy.isAllowedLink($0) }))
    }
}

@Suite("The links the traffic watch captures are read by MijianHost")
struct LinkStateProbeTests {
    @Test func upLinksAreThoseWithIFFUpLessLoopback() throws {
        let root = try TestSupport.temporaryDirectory("link-state")
        // As the kernel prints them: hex with 0x, one newline.
        for (name, flags) in [("lo", "0x9"), ("eth0", "0x1003"), ("eth1", "0x1002"), ("veth7", "0x11043")] {
            let directory = root.appendingPathComponent("sys/class/net/\(name)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data("\(flags)\n".utf8).write(to: directory.appendingPathComponent("flags"))
        }
        // A link whose flags cannot be read is not taken for up.
        try FileManager.default.createDirectory(at: root.appendingPathComponent("sys/class/net/odd0"), withIntermediateDirectories: true)
        let facts = LinkStateProbe.observe(root: HostRoot(path: root.path))
        #expect(facts.links == ["eth0", "eth1", "lo", "odd0", "veth7"])
        #expect(facts.up == ["eth0", "veth7"])
        #expect(facts.source == "/sys/class/net")
    }
}
