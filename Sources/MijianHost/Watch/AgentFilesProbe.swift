#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore

/// The agent's look at its own files at every seal: the signing key's type, mode and owner
/// (`lstat`, never followed), and the digest of the policy file on disk.
public enum AgentFilesProbe {
    /// Looks at `keyFile` and `policyFile` (nil: the built-in policy, no file) on this machine.
    public static func observe(keyFile: String, policyFile: String?) -> AgentFileFacts {
        var info = stat()
        let key: AgentKeyFacts
        let agentUID = Int(geteuid())
        if lstat(keyFile, &info) != 0 {
            let reason = String(cString: strerror(errno))
            key = AgentKeyFacts(path: keyFile, error: reason, mode: 0, uid: -1, regularFile: false, agentUID: agentUID)
        } else {
            key = AgentKeyFacts(
                path: keyFile, error: nil, mode: Int(info.st_mode & 0o7777), uid: Int(info.st_uid), regularFile: (info.st_mode & S_IFMT) == S_IFREG,
                agentUID: agentUID)
        }
        guard let policyFile else { return AgentFileFacts(key: key, policyFile: AgentPolicyFileFacts(path: nil, sha256: nil, error: nil)) }
        do {
            let digest = Policy.digest(of: try HostRoot.live.readBytes(policyFile, limit: 1 << 20))
            return AgentFileFacts(key: key, policyFile: AgentPolicyFileFacts(path: policyFile, sha256: digest, error: nil))
        } catch {
            return AgentFileFacts(key: key, policyFile: AgentPolicyFileFacts(path: policyFile, sha256: nil, error: "\(error)"))
        }
    }
}
