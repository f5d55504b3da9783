import Foundation
import MijianCore
import MijianEvidence
import Synchronization

/// The registry as the evidence verifier sees it: every enrolled key with its revocation,
/// parsed once and cached, so verifying a report costs no database read. Approvals and
/// revocations made through this process's store refresh the cache at once. A revocation made
/// by another process (`enroll revoke` while `serve` runs) is caught by the store, which checks
/// the key's enrolment and revocation again inside the transaction that would store the report
/// and refuses it as `revoked` all the same.
public final class RegistryKeys: KeyLookup, Sendable {
    private struct Entry: Sendable {
        var key: VerifyingKey
        var revokedAt: Date?
        var generation: Int
    }

    private let store: CollectorStore
    private let cache = Mutex<[String: Entry]>([:])

    /// Makes a lookup over the store's registry.
    public init(store: CollectorStore) { self.store = store }

    /// The enrolled key for an id (revoked or not; the verifier asks about revocation apart).
    public func key(for keyid: String) -> VerifyingKey? { entry(keyid)?.key }

    /// When the key was revoked, or nil.
    public func revocation(for keyid: String) -> Date? { entry(keyid)?.revokedAt }

    private func entry(_ keyid: String) -> Entry? {
        let generation = store.registryGeneration
        if let cached = cache.withLock({ $0[keyid] }), cached.generation == generation { return cached }
        // A keyid is the SHA-256 of its key, so a cached key can never be another key; only an
        // id that is enrolled is cached, and keys are never removed from the registry.
        guard let row = store.registryEntry(keyid), let key = try? VerifyingKey(pem: row.pem), key.keyid == keyid else { return nil }
        let entry = Entry(key: key, revokedAt: row.revokedAt, generation: generation)
        cache.withLock { $0[keyid] = entry }
        return entry
    }
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
            // The failure's detail was bounded when it was made; the refusal bounds it again.
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
        // The registry shows these fields as the report fields they become: the same bounds.
        if let refusal = IdentityBounds.refusal(fields: [
            ("request.host.host_id", request.host.hostID), ("request.host.hostname", request.host.hostname), ("request.host.asset_id", request.host.assetID),
            ("request.host.responsible", request.host.responsible), ("request.agent_version", request.agentVersion),
        ]) {
            throw MijianError(.enrolment, "the enrolment request is refused: \(refusal.reason): \(refusal.detail)")
        }
        let record = KeyRecord(
            keyid: request.keyid, pem: request.publicKeyPEM, hostID: request.host.hostID, hostname: request.host.hostname,
            assetID: request.host.assetID, classification: request.host.classification, responsible: request.host.responsible,
            agentVersion: request.agentVersion, previousKeyID: request.previousKeyID, note: note, requestedAt: request.requestedAt,
            approvedAt: now, requestSHA256: verified.payloadSHA256)
        try store.approve(record)
        return record
    }
}
