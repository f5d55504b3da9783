#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianAgent
import MijianCore
import Testing

@Suite("agent.health looks at the agent's own key and policy file at every seal")
struct SelfCheckTests {
    func health(_ rig: SealerRig) async throws -> JSONValue {
        let sealed = await rig.sealer.seal(reason: "test")
        #expect(sealed != nil)
        let last = try #require(try rig.spooled().last)
        return try #require(healthFinding(last.payload))
    }

    func detail(_ finding: JSONValue) -> String { finding["status_detail"]?.stringValue ?? "" }

    @Test func aKeyOthersCanReadFailsAndIsNamed() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        await rig.sealer.setSelfCheck(SelfCheck(policyFile: nil, keyFile: rig.store.keyPath))
        #expect(try await health(rig)["status"]?.stringValue == "pass")
        #expect(chmod(rig.store.keyPath, 0o644) == 0)
        let loose = try await health(rig)
        #expect(loose["status"]?.stringValue == "fail")
        #expect(detail(loose).contains("has mode 644"), "\(loose.compactString)")
        #expect(chmod(rig.store.keyPath, 0o600) == 0)
        #expect(try await health(rig)["status"]?.stringValue == "pass")
        // A key removed under the running agent: the next start could not sign.
        let moved = rig.store.keyPath + ".moved"
        #expect(rename(rig.store.keyPath, moved) == 0)
        let gone = try await health(rig)
        #expect(gone["status"]?.stringValue == "fail")
        #expect(detail(gone).contains("cannot be examined"))
        #expect(rename(moved, rig.store.keyPath) == 0)
    }

    @Test func aPolicyFileThatIsNotThePolicyInForceFails() async throws {
        let rig = try SealerRig()
        try await rig.sealer.start()
        let file = rig.state.appendingPathComponent("policy.yaml").path
        try Data(EmbeddedPolicies.classifiedWorkstation.utf8).write(to: URL(fileURLWithPath: file))
        // The rig's policy is the built-in one: the same bytes, the same digest.
        #expect(Policy.digest(of: Array(EmbeddedPolicies.classifiedWorkstation.utf8)) == rig.policy.sha256)
        await rig.sealer.setSelfCheck(SelfCheck(policyFile: file, keyFile: rig.store.keyPath))
        let same = try await health(rig)
        #expect(same["status"]?.stringValue == "pass", "\(same.compactString)")
        #expect(same["evidence"]?.arrayValue?.first?["data"]?["self_check"]?["policy_file"]?["in_force"]?.boolValue == true)
        // Edited on disk but not reloaded: the machine is not held to what the file says.
        try Data((EmbeddedPolicies.classifiedWorkstation + "\n# edited\n").utf8).write(to: URL(fileURLWithPath: file))
        let edited = try await health(rig)
        #expect(edited["status"]?.stringValue == "fail")
        #expect(detail(edited).contains("is not the policy in force"), "\(edited.compactString)")
        // Unreadable: said so, never taken for the same.
        #expect(unlink(file) == 0)
        let missing = try await health(rig)
        #expect(missing["status"]?.stringValue == "fail")
        #expect(detail(missing).contains("cannot be read"))
    }
}
