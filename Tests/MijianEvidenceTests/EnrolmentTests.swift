import Foundation
import MijianCore
import Testing

@testable import MijianEvidence

@Suite("Enrolment requests")
struct EnrolmentTests {
    let old: SigningKey
    let new: SigningKey

    init() throws {
        old = try SigningKey.generate()
        new = try SigningKey.generate()
    }

    @Test("A first request is self-signed and verifies without any enrolled key")
    func firstRequest() throws {
        let envelope = try EnrolmentRequest.signed(key: new, previous: nil, host: Fixtures.host, at: Fixtures.date)
        #expect(envelope.signatures.count == 1)
        let verified = try EnvelopeVerifier(keys: [String: VerifyingKey]()).verifyEnrolment(envelope.serialized())
        #expect(verified.request.keyid == new.keyid)
        #expect(verified.request.host == Fixtures.host)
        #expect(verified.request.requestedAt == Fixtures.date)
        #expect(verified.request.previousKeyID == nil)
        #expect(try VerifyingKey(pem: verified.request.publicKeyPEM) == new.publicKey)
        guard case .enrolment(let again) = try EnvelopeVerifier(keys: new.publicKey).verify(envelope.serialized()) else {
            Issue.record("an enrolment request was not recognised as one")
            return
        }
        #expect(again.payloadSHA256 == verified.payloadSHA256)
    }

    @Test("A rotation request carries both signatures and needs the previous key enrolled and not revoked")
    func rotation() throws {
        let envelope = try EnrolmentRequest.signed(key: new, previous: old, host: Fixtures.host, at: Fixtures.date)
        #expect(envelope.signatures.map(\.keyid) == [new.keyid, old.keyid])
        let bytes = envelope.serialized()
        let verified = try EnvelopeVerifier(keys: old.publicKey).verifyEnrolment(bytes)
        #expect(verified.request.previousKeyID == old.keyid)
        #expect(Fixtures.reason { try EnvelopeVerifier(keys: new.publicKey).verifyEnrolment(bytes) } == .unknownKey)
        let revoked = try KeyRegistry(entries: [
            KeyRegistry.Entry(key: old.publicKey, hostID: Fixtures.host.hostID, hostname: "ws-0042", approvedAt: Fixtures.date, revokedAt: Fixtures.date)
        ])
        #expect(Fixtures.reason { try EnvelopeVerifier(keys: revoked).verifyEnrolment(bytes) } == .revoked)
    }

    @Test("A rotation request without the previous key's signature, or with a forged one, is refused")
    func rotationTampered() throws {
        var envelope = try EnrolmentRequest.signed(key: new, previous: old, host: Fixtures.host, at: Fixtures.date)
        let verifier = EnvelopeVerifier(keys: old.publicKey)
        var single = envelope
        single.signatures.removeLast()
        #expect(Fixtures.reason { try verifier.verifyEnrolment(single.serialized()) } == .malformed)
        let stranger = try SigningKey.generate()
        let strangerSig = try DSSE.sign(payload: envelope.payload, type: envelope.payloadType, key: stranger).signatures[0]
        var wrongSigner = envelope
        wrongSigner.signatures[1] = strangerSig
        #expect(Fixtures.reason { try verifier.verifyEnrolment(wrongSigner.serialized()) } == .keyMismatch)
        envelope.signatures[1].sig = strangerSig.sig
        #expect(Fixtures.reason { try verifier.verifyEnrolment(envelope.serialized()) } == .badSignature)
    }

    @Test("A request signed by a key other than the one it carries is refused")
    func wrongSigner() throws {
        let request = EnrolmentRequest(key: new.publicKey, host: Fixtures.host, requestedAt: Fixtures.date)
        let signedByOld = try DSSE.sign(payload: request.json.serialized(), type: PayloadType.enrolment, key: old)
        let verifier = EnvelopeVerifier(keys: old.publicKey)
        #expect(Fixtures.reason { try verifier.verifyEnrolment(signedByOld.serialized()) } == .keyMismatch)
        var flipped = try DSSE.sign(payload: request.json.serialized(), type: PayloadType.enrolment, key: new)
        flipped.payload[flipped.payload.count / 2] ^= 0x20
        #expect(Fixtures.reason { try verifier.verifyEnrolment(flipped.serialized()) } != nil)
        var lying = request
        lying.keyid = old.keyid
        let signedLie = try DSSE.sign(payload: lying.json.serialized(), type: PayloadType.enrolment, key: new)
        #expect(Fixtures.reason { try verifier.verifyEnrolment(signedLie.serialized()) } == .keyMismatch)
        let twoWithoutPrevious = try DSSE.sign(payload: request.json.serialized(), type: PayloadType.enrolment, keys: [new, old])
        #expect(Fixtures.reason { try verifier.verifyEnrolment(twoWithoutPrevious.serialized()) } == .malformed)
    }

    @Test("Reports and requests are not interchangeable")
    func typesApart() throws {
        let request = try EnrolmentRequest.signed(key: new, previous: nil, host: Fixtures.host, at: Fixtures.date).serialized()
        let report = try Fixtures.signedReport(new)
        let verifier = EnvelopeVerifier(keys: new.publicKey)
        #expect(Fixtures.reason { try verifier.verifyReport(request) } == .wrongType)
        #expect(Fixtures.reason { try verifier.verifyEnrolment(report) } == .wrongType)
    }

    @Test("Rotating to the same key is refused")
    func sameKey() {
        #expect(throws: MijianError.self) { try EnrolmentRequest.signed(key: new, previous: new, host: Fixtures.host) }
    }
}
