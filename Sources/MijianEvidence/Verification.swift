import Crypto
import Foundation
import MijianCore

/// Why an envelope was refused: a reason scripts match and a detail people read.
public struct VerificationFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of refusal; the raw value is what `mijian verify` prints.
    public enum Reason: String, Sendable, CaseIterable {
        /// The signature does not verify with the key its keyid names.
        case badSignature = "bad-signature"
        /// No enrolled key has the signature's keyid.
        case unknownKey = "unknown-key"
        /// The payloadType is not one Mijian accepts here.
        case wrongType = "wrong-type"
        /// Not a well-formed envelope or payload (JSON, base64, schema, signature count).
        case malformed
        /// Larger than the size limit.
        case tooLarge = "too-large"
        /// Keyids disagree: envelope, key, payload `agent.keyid` or request.
        case keyMismatch = "key-mismatch"
        /// A JSON object repeats a key.
        case duplicateKey = "duplicate-key"
        /// The key was revoked.
        case revoked
        /// The file could not be read.
        case unreadable
    }

    /// The kind of refusal.
    public let reason: Reason
    /// One sentence on what was wrong.
    public let detail: String

    /// Makes a failure. The detail often repeats what the envelope said (a keyid, a payloadType, a
    /// member name), so it is bounded and escaped here, once for every failure.
    public init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = UntrustedText.bounded(detail)
    }

    /// A failure from the strict JSON parser: duplicate keys and size keep their own reasons.
    init(parse failure: JSONParser.Failure, what: String) {
        switch failure.reason {
        case .duplicateKey: self.init(.duplicateKey, "the \(what) JSON repeats a key: \(failure)")
        case .tooLarge: self.init(.tooLarge, "the \(what) is too large: \(failure)")
        default: self.init(.malformed, "the \(what) is not acceptable JSON: \(failure)")
        }
    }

    /// `reason: detail`.
    public var description: String { "\(reason.rawValue): \(detail)" }
}

/// Text that came from outside (a client, a file, a signed payload) made fit to repeat in a log
/// line, a database row, an answer or on a terminal: control characters, line and paragraph
/// separators and bidirectional overrides are written as `\u{XX}`, so a line cannot be forged or
/// reordered, and the result is at most `limit` UTF-8 bytes. Text too long keeps its beginning and
/// its end and says how many bytes were left out between them: refusal details put what was wrong
/// in the sentence around the echoed text. Bounding twice changes nothing (a backslash is kept as
/// it is for that), so every layer may bound what it passes on.
public enum UntrustedText {
    /// Most UTF-8 bytes of an echoed detail.
    public static let maxDetailBytes = 512

    /// `text` escaped and cut to at most `limit` bytes (`limit` below 64 is taken as 64).
    public static func bounded(_ text: String, limit: Int = maxDetailBytes) -> String {
        let limit = max(limit, 64)
        let scalars = text.unicodeScalars
        // The whole text, when it fits escaped.
        var whole = ""
        var index = scalars.startIndex
        while index != scalars.endIndex {
            let piece = escaped(scalars[index])
            guard whole.utf8.count + piece.utf8.count <= limit else { break }
            whole += piece
            index = scalars.index(after: index)
        }
        if index == scalars.endIndex { return whole }
        // Beginning and end around a marker; 48 bytes hold the longest marker.
        let tailBudget = limit / 4
        let headBudget = limit - tailBudget - 48
        var head = ""
        var headEnd = scalars.startIndex
        var headBytes = 0
        while headEnd != scalars.endIndex {
            let piece = escaped(scalars[headEnd])
            guard head.utf8.count + piece.utf8.count <= headBudget else { break }
            head += piece
            headBytes += UTF8.width(scalars[headEnd])
            headEnd = scalars.index(after: headEnd)
        }
        var tail: [String] = []
        var tailLength = 0
        var tailBytes = 0
        var tailStart = scalars.endIndex
        while tailStart > headEnd {
            let previous = scalars.index(before: tailStart)
            let piece = escaped(scalars[previous])
            guard tailLength + piece.utf8.count <= tailBudget else { break }
            tail.append(piece)
            tailLength += piece.utf8.count
            tailBytes += UTF8.width(scalars[previous])
            tailStart = previous
        }
        let left = text.utf8.count - headBytes - tailBytes
        return head + "…[\(left) bytes left out]…" + tail.reversed().joined()
    }

    /// One scalar as it may be shown.
    static func escaped(_ scalar: Unicode.Scalar) -> String {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x061C, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069:
            return "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        default: return String(scalar)
        }
    }
}

/// Where verification finds public keys by keyid.
public protocol KeyLookup: Sendable {
    /// The key whose keyid is `keyid`, or nil when it is not enrolled.
    func key(for keyid: String) -> VerifyingKey?
    /// When the key was revoked, or nil when it is not.
    func revocation(for keyid: String) -> Date?
}

extension KeyLookup {
    /// Nothing is revoked unless the lookup says so.
    public func revocation(for keyid: String) -> Date? { nil }
}

extension Dictionary: KeyLookup where Key == String, Value == VerifyingKey {
    /// The value stored under `keyid`.
    public func key(for keyid: String) -> VerifyingKey? { self[keyid] }
}

extension VerifyingKey: KeyLookup {
    /// This key when the keyid is its own (`mijian verify --key PUB.pem`).
    public func key(for keyid: String) -> VerifyingKey? { keyid == self.keyid ? self : nil }
}

/// A report whose signature, type, keyids and payload all checked out.
public struct VerifiedReport: Sendable {
    /// The key that signed it.
    public let keyid: String
    /// The exact signed payload bytes.
    public let payload: [UInt8]
    /// The decoded payload.
    public let report: Report

    /// SHA-256 (hex) of the payload: the next report's `prev_sha256`. Computed when read, not
    /// during verification, which does not need it; read it once and keep it.
    public var payloadSHA256: String { Hex.encode(SHA256.hash(data: payload)) }
}

/// An enrolment request whose signatures (the new key's, and the previous key's on rotation) checked out.
public struct VerifiedEnrolment: Sendable {
    /// The decoded request.
    public let request: EnrolmentRequest
    /// The exact signed payload bytes.
    public let payload: [UInt8]

    /// SHA-256 (hex) of the payload. Computed when read, not during verification.
    public var payloadSHA256: String { Hex.encode(SHA256.hash(data: payload)) }
}

/// Either kind of verified envelope.
public enum VerifiedEnvelope: Sendable {
    /// A verified report.
    case report(VerifiedReport)
    /// A verified enrolment request.
    case enrolment(VerifiedEnrolment)
}

/// Verifies envelopes: signature first, then parsing of the verified bytes only.
public struct EnvelopeVerifier: Sendable {
    /// Where keys are found.
    public let keys: any KeyLookup
    /// Largest envelope accepted, in bytes; checked before anything is read or parsed.
    public let maxBytes: Int
    /// Deepest JSON nesting accepted in a payload.
    public let maxPayloadDepth: Int

    /// Makes a verifier.
    public init(keys: any KeyLookup, maxBytes: Int = 16 << 20, maxPayloadDepth: Int = 32) {
        self.keys = keys
        self.maxBytes = maxBytes
        self.maxPayloadDepth = maxPayloadDepth
    }

    /// Verifies a report envelope.
    public func verifyReport(_ bytes: [UInt8]) throws(VerificationFailure) -> VerifiedReport {
        let envelope = try Envelope.parse(bytes, maxBytes: maxBytes)
        guard envelope.payloadType == PayloadType.report else {
            throw VerificationFailure(.wrongType, "payloadType is \"\(envelope.payloadType)\", not \"\(PayloadType.report)\"")
        }
        return try verifyReport(envelope)
    }

    /// Verifies an enrolment request envelope.
    public func verifyEnrolment(_ bytes: [UInt8]) throws(VerificationFailure) -> VerifiedEnrolment {
        let envelope = try Envelope.parse(bytes, maxBytes: maxBytes)
        guard envelope.payloadType == PayloadType.enrolment else {
            throw VerificationFailure(.wrongType, "payloadType is \"\(envelope.payloadType)\", not \"\(PayloadType.enrolment)\"")
        }
        return try verifyEnrolment(envelope)
    }

    /// Verifies a report or an enrolment request, whichever the payloadType says.
    public func verify(_ bytes: [UInt8]) throws(VerificationFailure) -> VerifiedEnvelope {
        let envelope = try Envelope.parse(bytes, maxBytes: maxBytes)
        switch envelope.payloadType {
        case PayloadType.report: return .report(try verifyReport(envelope))
        case PayloadType.enrolment: return .enrolment(try verifyEnrolment(envelope))
        default:
            throw VerificationFailure(
                .wrongType, "payloadType is \"\(envelope.payloadType)\"; only \(PayloadType.report) and \(PayloadType.enrolment) are accepted")
        }
    }

    /// Reads and verifies a file; the size limit applies before a byte is read.
    public func verifyFile(at path: String) throws(VerificationFailure) -> VerifiedEnvelope {
        let bytes: [UInt8]
        do {
            bytes = try EvidenceFiles.read(path, limit: maxBytes)
        } catch {
            throw VerificationFailure(error.code == .tooLarge ? .tooLarge : .unreadable, error.description)
        }
        return try verify(bytes)
    }

    private func verifyReport(_ envelope: Envelope) throws(VerificationFailure) -> VerifiedReport {
        guard envelope.signatures.count == 1, let signature = envelope.signatures.first else {
            throw VerificationFailure(.malformed, "a report carries exactly one signature, this one has \(envelope.signatures.count)")
        }
        guard let key = keys.key(for: signature.keyid) else {
            throw VerificationFailure(.unknownKey, "no enrolled key has keyid \(signature.keyid)")
        }
        guard key.keyid == signature.keyid else {
            throw VerificationFailure(.keyMismatch, "the key found for \(signature.keyid) has keyid \(key.keyid)")
        }
        guard key.isValidSignature(signature.sig, for: DSSE.pae(type: envelope.payloadType, body: envelope.payload)) else {
            throw VerificationFailure(.badSignature, "the signature does not verify with key \(key.keyid)")
        }
        if let revokedAt = keys.revocation(for: key.keyid) {
            throw VerificationFailure(.revoked, "key \(key.keyid) was revoked at \(RFC3339.string(from: revokedAt))")
        }
        // Only now, with the bytes proven to come from the key, are they parsed.
        let report = try decodeReport(envelope.payload)
        guard report.agent.keyid == key.keyid else {
            throw VerificationFailure(
                .keyMismatch, "the envelope is signed by \(key.keyid) but the report's agent.keyid is \"\(report.agent.keyid)\"")
        }
        return VerifiedReport(keyid: key.keyid, payload: envelope.payload, report: report)
    }

    private func verifyEnrolment(_ envelope: Envelope) throws(VerificationFailure) -> VerifiedEnrolment {
        guard (1...2).contains(envelope.signatures.count) else {
            throw VerificationFailure(
                .malformed, "an enrolment request carries one signature (two when rotating), this one has \(envelope.signatures.count)")
        }
        guard Set(envelope.signatures.map(\.keyid)).count == envelope.signatures.count else {
            throw VerificationFailure(.malformed, "the request is signed twice by the same keyid")
        }
        // A request is self-signed: the key that must verify it is inside it. The strict parser
        // reads the bytes only to learn that key; the request is decoded after the signature holds.
        let value = try parsePayload(envelope.payload)
        guard let pem = value["public_key_pem"]?.stringValue else {
            throw VerificationFailure(.malformed, "the request has no public_key_pem string")
        }
        let newKey: VerifyingKey
        do {
            newKey = try VerifyingKey(pem: pem)
        } catch {
            throw VerificationFailure(.malformed, "the request's public key: \(error.message)")
        }
        guard let own = envelope.signatures.first(where: { $0.keyid == newKey.keyid }) else {
            throw VerificationFailure(.keyMismatch, "no signature by the key the request enrols (\(newKey.keyid))")
        }
        let message = DSSE.pae(type: envelope.payloadType, body: envelope.payload)
        guard newKey.isValidSignature(own.sig, for: message) else {
            throw VerificationFailure(.badSignature, "the signature does not verify with the enrolled key \(newKey.keyid)")
        }
        let request: EnrolmentRequest
        do {
            request = try EnrolmentRequest(json: value)
        } catch {
            throw VerificationFailure(.malformed, error.message)
        }
        guard request.keyid == newKey.keyid else {
            throw VerificationFailure(.keyMismatch, "the request names keyid \(request.keyid) but its public key's keyid is \(newKey.keyid)")
        }
        if let previous = request.previousKeyID {
            guard envelope.signatures.count == 2, let other = envelope.signatures.first(where: { $0.keyid != newKey.keyid }) else {
                throw VerificationFailure(.malformed, "a rotation request (previous_keyid \(previous)) must also be signed by the previous key")
            }
            guard other.keyid == previous else {
                throw VerificationFailure(.keyMismatch, "the second signature is by \(other.keyid), not by the previous key \(previous)")
            }
            guard let oldKey = keys.key(for: previous) else {
                throw VerificationFailure(.unknownKey, "the previous key \(previous) is not enrolled")
            }
            guard oldKey.keyid == previous else {
                throw VerificationFailure(.keyMismatch, "the key found for \(previous) has keyid \(oldKey.keyid)")
            }
            guard oldKey.isValidSignature(other.sig, for: message) else {
                throw VerificationFailure(.badSignature, "the signature does not verify with the previous key \(previous)")
            }
            if let revokedAt = keys.revocation(for: previous) {
                throw VerificationFailure(
                    .revoked, "the previous key \(previous) was revoked at \(RFC3339.string(from: revokedAt)); enrol the new key without --previous-key")
            }
        } else if envelope.signatures.count != 1 {
            throw VerificationFailure(.malformed, "the request has two signatures but names no previous key")
        }
        return VerifiedEnrolment(request: request, payload: envelope.payload)
    }

    /// Decodes a verified report payload: straight from the bytes when the direct decoder takes
    /// them, else through the JSON tree, which also gives every refusal its reason. The direct
    /// decoder accepts nothing the tree path refuses, so a refusal costs a second parse only for a
    /// payload a trusted key signed.
    func decodeReport(_ payload: [UInt8]) throws(VerificationFailure) -> Report {
        if let report = Report.decodingDirectly(payload, maxDepth: maxPayloadDepth, maxBytes: maxBytes) { return report }
        return try decodeReportThroughTree(payload)
    }

    /// The tree path alone: the reference the direct decoder is tested against.
    func decodeReportThroughTree(_ payload: [UInt8]) throws(VerificationFailure) -> Report {
        let value = try parsePayload(payload)
        do {
            return try Report(json: value)
        } catch {
            throw VerificationFailure(.malformed, error.message)
        }
    }

    private func parsePayload(_ payload: [UInt8]) throws(VerificationFailure) -> JSONValue {
        do {
            return try JSONParser(maxDepth: maxPayloadDepth, maxBytes: maxBytes).parse(payload)
        } catch {
            throw VerificationFailure(parse: error, what: "payload")
        }
    }
}
