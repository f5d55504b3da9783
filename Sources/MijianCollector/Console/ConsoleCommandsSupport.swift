import Foundation
import GRDB
import MijianCore
import MijianEvidence

extension CollectorStore {
    /// Host ids of the machines whose host id, host name or asset number is exactly `text`
    /// (from reports and from the registry).
    public func machineIDs(matching text: String) throws(MijianError) -> [String] {
        try ConsoleQueries(store: self, silentAfterDays: 0).resolve(text).sorted()
    }

    /// The verified payload bytes of a machine's stored report at `seq` (in `epoch`, or the
    /// newest epoch holding that seq), nil when there is none.
    public func reportPayload(hostID: String, epoch: Int64?, seq: Int64) throws(MijianError) -> [UInt8]? {
        guard let digest = try ConsoleQueries(store: self, silentAfterDays: 0).reportDigest(hostID, epoch: epoch, seq: seq),
            let bytes = try envelope(payloadSHA256: digest)
        else { return nil }
        do {
            return try Envelope.parse(bytes).payload
        } catch {
            throw MijianError(.malformed, "the stored envelope sha256:\(digest) does not parse: \(error)")
        }
    }
}
