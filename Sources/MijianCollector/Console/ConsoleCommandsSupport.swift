import Foundation
import GRDB
import MijianCore
import MijianEvidence

extension CollectorStore {
    /// Host ids of the machines whose host id, host name or asset number is exactly `text`
    /// (from reports and from the registry).
    public func machineIDs(matching text: String) throws(MijianError) -> [String] {
        try consoleReadBlocking("cannot find the machine") { db in try ConsoleQueries.resolve(db, text) }.sorted()
    }

    /// The verified payload bytes of a machine's stored report at `seq` (in `epoch`, or the
    /// newest epoch holding that seq), nil when there is none.
    public func reportPayload(hostID: String, epoch: Int64?, seq: Int64) throws(MijianError) -> [UInt8]? {
        // The digest at that place, then the envelope by the (host, digest) key, in one read.
        let stored = try consoleReadBlocking("cannot read the reports") { db -> (digest: String, envelope: [UInt8])? in
            guard let digest = try ConsoleQueries.reportDigest(db, hostID, epoch: epoch, seq: seq),
                let envelope = try SQLiteStore.envelope(db, hostID: hostID, payloadSHA256: digest)
            else { return nil }
            return (digest, envelope)
        }
        guard let stored else { return nil }
        do {
            return try Envelope.parse(stored.envelope).payload
        } catch {
            throw MijianError(.malformed, "the stored envelope sha256:\(stored.digest) does not parse: \(error)")
        }
    }
}
