import Foundation
import MijianCore
import MijianEvidence
import Synchronization

/// The registry as the evidence verifier sees it: every enrolled key with its revocation,
/// parsed once and cached. The database is read every time, so a revocation by another process
/// counts at once.
public final class RegistryKeys: KeyLookup, Sendable {
    private let store: CollectorStore
    private let cache = Mutex<[String: VerifyingKey]>([:])

    /// Makes a lookup over the store's registry.
    public init(store: CollectorStore) { self.store = store }

    /// The enrolled key for an id (revoked or not; the verifier asks about revocation apart).
    public func key(for keyid: String) -> VerifyingKey? {
        guard let entry = store.registryEntry(keyid) else { return nil }
        if let cached = cache.withLock({ $0[keyid] }), cached.pem == entry.pem { return cached }
        guard let key = try? VerifyingKey(pem: entry.pem), key.keyid == keyid else { return nil }
        cache.withLock { $0[keyid] = key }
        return key
    }

    /// When the key was revoked, or nil.
    public func revocation(for keyid: String) -> Date? { store.registryEntry(keyid)?.revokedAt }
}

/// Verification exactly as `MijianEvidence` defines it, against the collector's registry.
public struct EvidenceSubmissionVerifier: SubmissionVerifier {
    private let verifier: EnvelopeVerifier

    /// Makes a verifier over the store's registry.
    public init(store: CollectorStore, maxBytes: Int = 16 << 20) {
        verifier = EnvelopeVerifier(keys: RegistryKeys(store: store), maxBytes: maxBytes)
    }

    /// Verifies the envelope and parses the verified payload.
    public func verify(_ envelope: [UInt8]) throws(IngestRefusal) -> VerifiedSubmission {
        do {
            let verified = try verifier.verifyReport(envelope)
            return VerifiedSubmission(keyid: verified.keyid, payload: verified.payload, payloadSHA256: verified.payloadSHA256, report: verified.report)
        } catch {
            throw IngestRefusal(reason: error.reason.rawValue, detail: error.detail)
        }
    }
}

/// Enrolment: approving a machine's signed request into the registry.
public enum Enrolment {
    /// Verifies a request (and, for a rotation, the old key's signature) and adds the key.
    public static func approve(requestBytes: [UInt8], note: String?, store: CollectorStore, now: Date = Date()) throws(MijianError) -> KeyRecord {
        let verified: VerifiedEnrolment
        do {
            verified = try EnvelopeVerifier(keys: RegistryKeys(store: store)).verifyEnrolment(requestBytes)
        } catch {
            throw MijianError(.verification, "the enrolment request does not verify: \(error.reason.rawValue): \(error.detail)")
        }
        let request = verified.request
        let record = KeyRecord(
            keyid: request.keyid, pem: request.publicKeyPEM, hostID: request.host.hostID, hostname: request.host.hostname,
            assetID: request.host.assetID, classification: request.host.classification, responsible: request.host.responsible,
            agentVersion: request.agentVersion, previousKeyID: request.previousKeyID, note: note, requestedAt: request.requestedAt,
            approvedAt: now, requestSHA256: verified.payloadSHA256)
        try store.approve(record)
        return record
    }
}
