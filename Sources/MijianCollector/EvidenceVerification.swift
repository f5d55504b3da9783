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

/// The registry as the ingest path sees it: enrolled keys parsed once and cached, read through
/// the asynchronous `KeyRegistry`, so verifying a report costs no database read once its key is
/// known. Approvals and revocations made through the same store object refresh the cache at once;
/// a revocation made elsewhere (another process, another instance) is caught by the ingest
/// ledger, which checks the key again inside the transaction that would store the report.
public final class RegistryCache: Sendable {
    private struct Entry: Sendable {
        var key: VerifyingKey
        var revokedAt: Date?
        var generation: Int
    }

    private let registry: any KeyRegistry
    private let cache = Mutex<[String: Entry]>([:])

    /// Makes a cache over a registry.
    public init(registry: any KeyRegistry) { self.registry = registry }

    fileprivate func cached(_ keyid: String) -> (key: VerifyingKey, revokedAt: Date?)? {
        let generation = registry.registryGeneration
        guard let entry = cache.withLock({ $0[keyid] }), entry.generation == generation else { return nil }
        return (entry.key, entry.revokedAt)
    }

    /// Reads a key into the cache; false when it is not enrolled (or cannot be read, which refuses rather than accepts).
    fileprivate func load(_ keyid: String) async -> Bool {
        let generation = registry.registryGeneration
        // A keyid is the SHA-256 of its key, so a cached key can never be another key; only an
        // id that is enrolled is cached, and keys are never removed from the registry.
        guard let record = try? await registry.key(keyid), let key = try? VerifyingKey(pem: record.pem), key.keyid == keyid else { return false }
        cache.withLock { $0[keyid] = Entry(key: key, revokedAt: record.revokedAt, generation: generation) }
        return true
    }
}

/// One verification's view of the cache: what it asked for and did not find is noted, to be read
/// from the registry before the one retry.
private final class CacheLookup: KeyLookup, Sendable {
    let cache: RegistryCache
    let missed = Mutex<[String]>([])

    init(_ cache: RegistryCache) { self.cache = cache }

    func key(for keyid: String) -> VerifyingKey? {
        if let found = cache.cached(keyid) { return found.key }
        missed.withLock { $0.append(keyid) }
        return nil
    }

    func revocation(for keyid: String) -> Date? { cache.cached(keyid)?.revokedAt }
}

/// Verification exactly as `MijianEvidence` defines it, against the collector's registry.
public struct EvidenceSubmissionVerifier: SubmissionVerifier {
    private let cache: RegistryCache
    private let maxBytes: Int

    /// Makes a verifier over a registry.
    public init(registry: any KeyRegistry, maxBytes: Int = 16 << 20) {
        cache = RegistryCache(registry: registry)
        self.maxBytes = maxBytes
    }

    /// Makes a verifier over the SQLite store's registry.
    public init(store: CollectorStore, maxBytes: Int = 16 << 20) { self.init(registry: store.sqlite, maxBytes: maxBytes) }

    /// Verifies the envelope and parses the verified payload. A key not yet cached is read from
    /// the registry and the envelope verified once more.
    public func verify(_ envelope: [UInt8]) async throws(IngestRefusal) -> VerifiedSubmission {
        let lookup = CacheLookup(cache)
        do {
            return try Self.verify(envelope, keys: lookup, maxBytes: maxBytes)
        } catch {
            let missed = lookup.missed.withLock { $0 }
            guard !missed.isEmpty else { throw error }
            var loaded = false
            for keyid in missed where await cache.load(keyid) { loaded = true }
            guard loaded else { throw error }
            return try Self.verify(envelope, keys: lookup, maxBytes: maxBytes)
        }
    }

    private static func verify(_ envelope: [UInt8], keys: any KeyLookup, maxBytes: Int) throws(IngestRefusal) -> VerifiedSubmission {
        do {
            let verified = try EnvelopeVerifier(keys: keys, maxBytes: maxBytes).verifyReport(envelope)
            return VerifiedSubmission(keyid: verified.keyid, payload: verified.payload, payloadSHA256: verified.payloadSHA256, report: verified.report)
        } catch {
            // The failure's detail was bounded when it was made; the refusal bounds it again.
            throw IngestRefusal(RefusalReason(error.reason), detail: error.detail)
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
            throw refusal(error)
        }
        let record = try record(verified, note: note, now: now)
        try store.approve(record)
        return record
    }

    /// The same through any registry, awaited (a rotation's previous key is read from it).
    public static func approve(requestBytes: [UInt8], note: String?, registry: any KeyRegistry, now: Date = Date()) async throws(MijianError) -> KeyRecord {
        let lookup = CacheLookup(RegistryCache(registry: registry))
        let verified: VerifiedEnrolment
        do {
            verified = try EnvelopeVerifier(keys: lookup).verifyEnrolment(requestBytes)
        } catch {
            let missed = lookup.missed.withLock { $0 }
            var loaded = false
            for keyid in missed where await lookup.cache.load(keyid) { loaded = true }
            guard loaded else { throw refusal(error) }
            do {
                verified = try EnvelopeVerifier(keys: lookup).verifyEnrolment(requestBytes)
            } catch {
                throw refusal(error)
            }
        }
        let record = try record(verified, note: note, now: now)
        do {
            try await registry.approve(record)
        } catch {
            throw error.mijianError
        }
        return record
    }

    private static func refusal(_ error: VerificationFailure) -> MijianError {
        MijianError(.verification, "the enrolment request does not verify: \(error.reason.rawValue): \(error.detail)")
    }

    private static func record(_ verified: VerifiedEnrolment, note: String?, now: Date) throws(MijianError) -> KeyRecord {
        let request = verified.request
        // The registry shows these fields as the report fields they become: the same bounds.
        if let refusal = IdentityBounds.refusal(fields: [
            ("request.host.host_id", request.host.hostID), ("request.host.hostname", request.host.hostname), ("request.host.asset_id", request.host.assetID),
            ("request.host.responsible", request.host.responsible), ("request.agent_version", request.agentVersion),
        ]) {
            throw MijianError(.enrolment, "the enrolment request is refused: \(refusal.reason): \(refusal.detail)")
        }
        return KeyRecord(
            keyid: request.keyid, pem: request.publicKeyPEM, hostID: request.host.hostID, hostname: request.host.hostname,
            assetID: request.host.assetID, classification: request.host.classification, responsible: request.host.responsible,
            agentVersion: request.agentVersion, previousKeyID: request.previousKeyID, note: note, requestedAt: request.requestedAt,
            approvedAt: now, requestSHA256: verified.payloadSHA256)
    }
}
