import ArgumentParser
import Foundation
import MijianCore
import MijianEvidence

/// `mijian audit --sign`: the audit report as the next signed envelope of this machine's chain.
enum SignedAudit {
    /// Loads the key first (so a missing key fails before the audit), audits, signs, writes the
    /// envelope, then persists the chain: an envelope that could not be written (a full disk, a
    /// closed pipe) leaves the chain where it was, so the next report takes its seq and no link
    /// is missing. Exits as `mijian audit` does: 1 when a rule failed, 3 when none failed but a rule
    /// could not look (the envelope is written either way).
    static func run(_ options: AuditOptions) throws {
        let loaded = try AuditRun.loadPolicy(options.policy)
        let signer = try ReportSigner(store: KeyStore.resolve(keyDir: options.keyDir, policy: loaded.0))
        let outcome = try AuditRun.perform(options, loaded: loaded)
        var status: Int32 = 0
        try signer.sign(outcome.report, after: nil) { (envelope, report) throws(MijianError) in
            if let output = options.output {
                try AtomicFile.writeOutput(envelope.serialized(), to: output, mode: 0o644)
            } else {
                try Console.out(bytes: envelope.serialized())
            }
            status = AuditRun.exitStatus(of: report)
        }
        if status != 0 { throw ExitCode(status) }
    }
}
