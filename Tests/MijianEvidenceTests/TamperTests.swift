import Foundation
import MijianCore
import Testing

@testable import MijianEvidence

/// Good envelopes are accepted; each kind of tampering is refused with its own reason.
/// Outcomes are compared, never signature bytes.
@Suite("Envelope verification: good envelopes and the tamper suite")
struct TamperTests {
    let key: SigningKey
    let other: SigningKey

    init() throws {
        key = try SigningKey.generate()
        other = try SigningKey.generate()
    }

    var verifier: EnvelopeVerifier { EnvelopeVerifier(keys: key.publicKey) }

    // MARK: good envelopes

    @Test("A signed report verifies and decodes to what was signed")
    func goodReport() throws {
        let report = Fixtures.report(keyid: key.keyid, seq: 7)
        let envelope = try DSSE.sign(payload: report.payloadBytes(), type: PayloadType.report, key: key)
        let verified = try verifier.verifyReport(envelope.serialized())
        #expect(verified.report == report)
        #expect(verified.keyid == key.keyid)
        #expect(verified.payload == report.payloadBytes())
        #expect(verified.payloadSHA256 == envelope.payloadSHA256)
        #expect(verified.payloadSHA256.count == 64)
    }

    @Test("Standard and URL-safe base64, padded or not, are all accepted", arguments: [(false, true), (false, false), (true, true), (true, false)])
    func bothAlphabets(urlSafe: Bool, padded: Bool) throws {
        let envelope = try DSSE.sign(payload: Fixtures.report(keyid: key.keyid, padding: 40).payloadBytes(), type: PayloadType.report, key: key)
        let signature = try #require(envelope.signatures.first)
        let payloadText = Base64.encode(envelope.payload, urlSafe: urlSafe, padded: padded)
        let sigText = Base64.encode(signature.sig, urlSafe: urlSafe, padded: padded)
        if urlSafe {
            #expect(payloadText.contains("-") || payloadText.contains("_"))
            #expect(!payloadText.contains("+") && !payloadText.contains("/"))
        }
        if !padded { #expect(!payloadText.contains("=") && !sigText.contains("=")) }
        let bytes = Fixtures.envelopeText(type: PayloadType.report, payload: payloadText, signatures: [(signature.keyid, sigText)])
        let verified = try verifier.verifyReport(bytes)
        #expect(verified.payload == envelope.payload)
    }

    @Test("A registry or dictionary of keys verifies reports of each key")
    func lookupByKeyid() throws {
        let keys: [String: VerifyingKey] = [key.keyid: key.publicKey, other.keyid: other.publicKey]
        let verifier = EnvelopeVerifier(keys: keys)
        #expect(try verifier.verifyReport(Fixtures.signedReport(key)).keyid == key.keyid)
        #expect(try verifier.verifyReport(Fixtures.signedReport(other)).keyid == other.keyid)
    }

    // MARK: the tamper suite

    @Test("Flipping any sampled byte of the payload gives bad-signature")
    func flipPayloadByte() throws {
        let envelope = try Fixtures.envelope(try Fixtures.signedReport(key))
        for index in stride(from: 0, to: envelope.payload.count, by: max(1, envelope.payload.count / 40)) {
            var tampered = envelope
            tampered.payload[index] ^= 0x01
            #expect(Fixtures.reason { try verifier.verifyReport(tampered.serialized()) } == .badSignature)
        }
    }

    @Test("Swapping payloadType gives wrong-type, or bad-signature when the new type is also accepted")
    func swapType() throws {
        var envelope = try Fixtures.envelope(try Fixtures.signedReport(key))
        envelope.payloadType = "application/json"
        #expect(Fixtures.reason { try verifier.verifyReport(envelope.serialized()) } == .wrongType)
        #expect(Fixtures.reason { try verifier.verify(envelope.serialized()) } == .wrongType)
        envelope.payloadType = PayloadType.enrolment
        #expect(Fixtures.reason { try verifier.verifyReport(envelope.serialized()) } == .wrongType)
        // Signed as some other type, relabelled as a report: the PAE covers the type.
        let relabelled = try DSSE.sign(payload: Fixtures.report(keyid: key.keyid).payloadBytes(), type: "application/vnd.in-toto+json", key: key)
        var asReport = relabelled
        asReport.payloadType = PayloadType.report
        #expect(Fixtures.reason { try verifier.verifyReport(asReport.serialized()) } == .badSignature)
    }

    @Test("Re-signing with another key: unknown-key, bad-signature under the old keyid, key-mismatch when both are enrolled")
    func resignWithAnotherKey() throws {
        let payload = Fixtures.report(keyid: key.keyid).payloadBytes()
        let forged = try DSSE.sign(payload: payload, type: PayloadType.report, key: other)
        #expect(Fixtures.reason { try verifier.verifyReport(forged.serialized()) } == .unknownKey)
        var relabelled = forged
        relabelled.signatures[0].keyid = key.keyid
        #expect(Fixtures.reason { try verifier.verifyReport(relabelled.serialized()) } == .badSignature)
        let both = EnvelopeVerifier(keys: [key.keyid: key.publicKey, other.keyid: other.publicKey])
        #expect(Fixtures.reason { try both.verifyReport(forged.serialized()) } == .keyMismatch)
    }

    @Test("A lookup that answers with a different key than the keyid asked gives key-mismatch")
    func lookupMismatch() throws {
        struct Liar: KeyLookup {
            let answer: VerifyingKey
            func key(for keyid: String) -> VerifyingKey? { answer }
        }
        let verifier = EnvelopeVerifier(keys: Liar(answer: other.publicKey))
        #expect(Fixtures.reason { try verifier.verifyReport(Fixtures.signedReport(key)) } == .keyMismatch)
    }

    @Test("Moving a signature to another envelope gives bad-signature")
    func moveSignature() throws {
        let first = try Fixtures.envelope(try Fixtures.signedReport(key, seq: 1))
        var second = try Fixtures.envelope(try Fixtures.signedReport(key, seq: 2))
        #expect(Fixtures.reason { try verifier.verifyReport(second.serialized()) } == nil)
        second.signatures = first.signatures
        #expect(Fixtures.reason { try verifier.verifyReport(second.serialized()) } == .badSignature)
    }

    @Test("Every truncation of the file is malformed, never a crash")
    func truncation() throws {
        let bytes = try Fixtures.signedReport(key)
        #expect(bytes.last == 0x0A)
        var lengths = Array(stride(from: 0, to: bytes.count - 1, by: max(1, bytes.count / 200)))
        lengths += [bytes.count - 2, bytes.count - 3, 1]
        for length in lengths {
            #expect(Fixtures.reason { try verifier.verifyReport(Array(bytes.prefix(length))) } == .malformed)
        }
    }

    @Test("A duplicated key is refused in the envelope and, validly signed, anywhere in the payload")
    func duplicateKeys() throws {
        let bytes = try Fixtures.signedReport(key)
        let text = String(decoding: bytes, as: UTF8.self)
        let doubled = "{\"payloadType\":\"\(PayloadType.report)\"," + text.dropFirst()
        #expect(Fixtures.reason { try verifier.verifyReport(Array(doubled.utf8)) } == .duplicateKey)
        let payload = Fixtures.payloadText(key)
        for (member, replacement) in [
            ("\"schema\":\"mijian.report/v1\"", "\"schema\":\"mijian.report/v1\",\"schema\":\"mijian.report/v1\""),
            ("\"hostname\":\"ws-0042\"", "\"hostname\":\"ws-0042\",\"hostname\":\"ws-0042\""),
            ("\"driver\":\"iwlwifi\"", "\"driver\":\"iwlwifi\",\"driver\":\"none\""),
        ] {
            #expect(payload.contains(member))
            let signed = try Fixtures.signedPayload(payload.replacingOccurrences(of: member, with: replacement), key: key)
            #expect(Fixtures.reason { try verifier.verifyReport(signed) } == .duplicateKey)
        }
    }

    @Test("Non-integer seq or epoch is malformed even when validly signed", arguments: [
        ("\"seq\":3", "\"seq\":3.0"), ("\"seq\":3", "\"seq\":3e0"), ("\"seq\":3", "\"seq\":\"3\""), ("\"seq\":3", "\"seq\":-3"),
        ("\"epoch\":1795000000", "\"epoch\":1795000000.5"), ("\"epoch\":1795000000", "\"epoch\":null"),
        ("\"seq\":3", "\"seq\":99999999999999999999"),
    ])
    func nonIntegerNumbers(original: String, replacement: String) throws {
        let payload = Fixtures.payloadText(key, seq: 3)
        #expect(payload.contains(original))
        let signed = try Fixtures.signedPayload(payload.replacingOccurrences(of: original, with: replacement), key: key)
        #expect(Fixtures.reason { try verifier.verifyReport(signed) } == .malformed)
    }

    @Test("The payload's agent.keyid must be the signing key's")
    func agentKeyidMismatch() throws {
        let payload = Fixtures.report(keyid: other.keyid).payloadBytes()
        let signed = try DSSE.sign(payload: payload, type: PayloadType.report, key: key).serialized()
        #expect(Fixtures.reason { try verifier.verifyReport(signed) } == .keyMismatch)
        let unsigned = try DSSE.sign(payload: Fixtures.report(keyid: "").payloadBytes(), type: PayloadType.report, key: key).serialized()
        #expect(Fixtures.reason { try verifier.verifyReport(unsigned) } == .keyMismatch)
    }

    @Test("The signature is checked before the payload is parsed")
    func signatureBeforeParsing() throws {
        let garbage = Array("{\"seq\":1.5,\"seq\":{{{".utf8)
        let signedOther = try DSSE.sign(payload: Array("{}".utf8), type: PayloadType.report, key: key)
        let signature = try #require(signedOther.signatures.first)
        let forged = Envelope(payloadType: PayloadType.report, payload: garbage, signatures: [signature])
        #expect(Fixtures.reason { try verifier.verifyReport(forged.serialized()) } == .badSignature)
        // The same garbage, validly signed, reaches the parser and is refused there.
        let signedGarbage = try DSSE.sign(payload: garbage, type: PayloadType.report, key: key)
        #expect(Fixtures.reason { try verifier.verifyReport(signedGarbage.serialized()) } == .duplicateKey)
    }

    @Test("A report needs exactly one signature")
    func signatureCount() throws {
        let payload = Fixtures.report(keyid: key.keyid).payloadBytes()
        let none = Envelope(payloadType: PayloadType.report, payload: payload, signatures: [])
        #expect(Fixtures.reason { try verifier.verifyReport(none.serialized()) } == .malformed)
        let two = try DSSE.sign(payload: payload, type: PayloadType.report, keys: [key, other])
        #expect(Fixtures.reason { try verifier.verifyReport(two.serialized()) } == .malformed)
        let twice = try DSSE.sign(payload: payload, type: PayloadType.report, keys: [key, key])
        #expect(Fixtures.reason { try verifier.verifyReport(twice.serialized()) } == .malformed)
    }

    @Test("Envelopes that are not DSSE JSON are malformed", arguments: [
        "", "[]", "null", "{}", "{\"payloadType\":\"x\"}", "{\"payloadType\":1,\"payload\":\"\",\"signatures\":[]}",
        "{\"payloadType\":\"application/vnd.mijian.report.v1+json\",\"payload\":\"e30=\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"AAAA\"}]}",
        "{\"payloadType\":\"application/vnd.mijian.report.v1+json\",\"payload\":\"e30 =\",\"signatures\":[]}",
        "{\"payloadType\":\"application/vnd.mijian.report.v1+json\",\"payload\":\"e30=\",\"signatures\":[],\"extra\":1}",
        "{\"payloadType\":\"application/vnd.mijian.report.v1+json\",\"payload\":\"e30=\",\"signatures\":[{\"sig\":\"AAAA\"}]}",
    ])
    func malformedEnvelopes(text: String) {
        #expect(Fixtures.reason { try verifier.verifyReport(Array(text.utf8)) } == .malformed)
    }

    @Test("The size limit applies before parsing; a huge sparse file is refused before it is read")
    func sizeLimits() throws {
        let bytes = try Fixtures.signedReport(key)
        let small = EnvelopeVerifier(keys: key.publicKey, maxBytes: bytes.count - 1)
        #expect(Fixtures.reason { try small.verifyReport(bytes) } == .tooLarge)
        #expect(Fixtures.reason { try EnvelopeVerifier(keys: key.publicKey, maxBytes: bytes.count).verifyReport(bytes) } == nil)
        let path = try Fixtures.directory() + "/huge.json"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(truncate(path, 8 << 30) == 0)
        #expect(Fixtures.reason { try verifier.verifyFile(at: path) } == .tooLarge)
        let missing = try Fixtures.directory() + "/missing.json"
        #expect(Fixtures.reason { try verifier.verifyFile(at: missing) } == .unreadable)
    }

    @Test("Deep nesting is refused in the envelope and in a validly signed payload")
    func nesting() throws {
        let deepEnvelope = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(Fixtures.reason { try verifier.verifyReport(Array(deepEnvelope.utf8)) } == .malformed)
        let payload = Fixtures.payloadText(key)
        let nested = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        let deep = payload.replacingOccurrences(of: "\"data\":{\"vendor\":\"0781\"", with: "\"data\":{\"deep\":\(nested),\"vendor\":\"0781\"")
        #expect(deep != payload)
        let signed = try Fixtures.signedPayload(deep, key: key)
        #expect(Fixtures.reason { try verifier.verifyReport(signed) } == .malformed)
    }

    @Test("A payload of another schema or with an unknown member is malformed even when signed")
    func schemaChecks() throws {
        let payload = Fixtures.payloadText(key)
        for edited in [
            payload.replacingOccurrences(of: "mijian.report/v1", with: "mijian.report/v2"),
            payload.replacingOccurrences(of: "\"events\":", with: "\"extra\":1,\"events\":"),
            payload.replacingOccurrences(of: "\"fail\":1", with: "\"fail\":0"),
        ] {
            #expect(edited != payload)
            let signed = try Fixtures.signedPayload(edited, key: key)
            #expect(Fixtures.reason { try verifier.verifyReport(signed) } == .malformed)
        }
    }
}
