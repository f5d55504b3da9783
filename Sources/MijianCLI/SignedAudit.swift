import ArgumentParser
import Foundation
import MijianCore
import MijianEvidence

/// `mijian audit --sign`: the audit report as the next signed envelope of this machine's chain.
enum SignedAudit {
    /// Loads the key first (so a missing key fails before the audit), audits, signs, persists the
    /// chain, then writes the envelope; exits 1 when a rule failed, like `mijian audit`.
    static func run(_ options: AuditOptions) throws {
        let (policy, _) = try AuditRun.loadPolicy(options.policy)
        let signer = try ReportSigner(store: KeyStore.resolve(keyDir: options.keyDir, policy: policy))
        let outcome = try AuditRun.perform(options)
        let (envelope, report) = try signer.sign(outcome.report)
        if let output = options.output {
            try AtomicFile.write(envelope.serialized(), to: output, mode: 0o644)
        } else {
            Console.out(String(decoding: envelope.serialized(), as: UTF8.self))
        }
        if !report.isCompliant { throw ExitCode(1) }
    }
}
