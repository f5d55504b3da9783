import Crypto
import MijianCore

/// The payload types Mijian signs; every other type is refused.
public enum PayloadType {
    /// A report payload (`mijian.report/v1`).
    public static let report = "application/vnd.mijian.report.v1+json"
    /// An enrolment request payload (`mijian.enrolment/v1`).
    public static let enrolment = "application/vnd.mijian.enrolment.v1+json"
}

/// A DSSE v1 envelope: payload type, payload bytes, signatures.
public struct Envelope: Sendable, Equatable {
    /// One signature of the envelope's PAE.
    public struct Signature: Sendable, Equatable {
        /// The signing key's id, `sha256:<hex>`.
        public var keyid: String
        /// The 64 signature bytes.
        public var sig: [UInt8]

        /// Makes a signature entry.
        public init(keyid: String, sig: [UInt8]) {
            self.keyid = keyid
            self.sig = sig
        }
    }

    /// The media type of the payload, covered by the signature.
    public var payloadType: String
    /// The exact payload bytes.
    public var payload: [UInt8]
    /// Signatures of `DSSE.pae(type: payloadType, body: payload)`.
    public var signatures: [Signature]

    /// Makes an envelope.
    public init(payloadType: String, payload: [UInt8], signatures: [Signature]) {
        self.payloadType = payloadType
        self.payload = payload
        self.signatures = signatures
    }

    /// The envelope as JSON: standard padded base64 for payload and signatures.
    public var json: JSONValue {
        [
            "payloadType": .string(payloadType),
            "payload": .string(Base64.encode(payload)),
            "signatures": .array(signatures.map { ["keyid": .string($0.keyid), "sig": .string(Base64.encode($0.sig))] }),
        ]
    }

    /// Compact JSON bytes followed by a newline, as written to files and sent to the collector.
    public func serialized() -> [UInt8] { json.serialized() + [0x0A] }

    /// The SHA-256 (hex) of the payload bytes: what the next report's `prev_sha256` names.
    public var payloadSHA256: String { Hex.encode(SHA256.hash(data: payload)) }

    /// Deepest nesting an envelope may have (object, signatures array, signature object).
    static let maxEnvelopeDepth = 4

    /// Parses envelope JSON strictly; payload and signatures stay unverified.
    public static func parse(_ bytes: [UInt8], maxBytes: Int = 16 << 20) throws(VerificationFailure) -> Envelope {
        guard bytes.count <= maxBytes else {
            throw VerificationFailure(.tooLarge, "the envelope is \(bytes.count) bytes, more than the limit of \(maxBytes)")
        }
        let value: JSONValue
        do {
            value = try JSONParser(maxDepth: maxEnvelopeDepth, maxBytes: maxBytes).parse(bytes)
        } catch {
            throw VerificationFailure(parse: error, what: "envelope")
        }
        guard let members = value.objectValue else { throw VerificationFailure(.malformed, "the envelope is not a JSON object") }
        for (key, _) in members where !["payloadType", "payload", "signatures"].contains(key) {
            throw VerificationFailure(.malformed, "the envelope has an unknown member \"\(key)\"")
        }
        guard let type = value["payloadType"]?.stringValue else {
            throw VerificationFailure(.malformed, "the envelope has no payloadType string")
        }
        guard let payloadText = value["payload"]?.stringValue else {
            throw VerificationFailure(.malformed, "the envelope has no payload string")
        }
        guard let signatureValues = value["signatures"]?.arrayValue else {
            throw VerificationFailure(.malformed, "the envelope has no signatures array")
        }
        let payload: [UInt8]
        do {
            payload = try Base64.decode(payloadText)
        } catch {
            throw VerificationFailure(.malformed, "the payload is not base64: \(error.detail)")
        }
        var signatures: [Signature] = []
        for (index, entry) in signatureValues.enumerated() {
            guard let members = entry.objectValue else { throw VerificationFailure(.malformed, "signature \(index + 1) is not an object") }
            for (key, _) in members where key != "keyid" && key != "sig" {
                throw VerificationFailure(.malformed, "signature \(index + 1) has an unknown member \"\(key)\"")
            }
            guard let keyid = entry["keyid"]?.stringValue, !keyid.isEmpty else {
                throw VerificationFailure(.malformed, "signature \(index + 1) has no keyid")
            }
            guard let sigText = entry["sig"]?.stringValue else { throw VerificationFailure(.malformed, "signature \(index + 1) has no sig") }
            let sig: [UInt8]
            do {
                sig = try Base64.decode(sigText)
            } catch {
                throw VerificationFailure(.malformed, "signature \(index + 1) is not base64: \(error.detail)")
            }
            guard sig.count == 64 else {
                throw VerificationFailure(.malformed, "signature \(index + 1) is \(sig.count) bytes; an Ed25519 signature is 64")
            }
            signatures.append(Signature(keyid: keyid, sig: sig))
        }
        return Envelope(payloadType: type, payload: payload, signatures: signatures)
    }
}

/// DSSE v1 signing: the pre-authentication encoding and Ed25519 over it.
public enum DSSE {
    /// `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in bytes, decimal ASCII.
    public static func pae(type: String, body: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(32 + typeBytes.count + body.count)
        out.append(contentsOf: Array("DSSEv1 \(typeBytes.count) ".utf8))
        out.append(contentsOf: typeBytes)
        out.append(contentsOf: Array(" \(body.count) ".utf8))
        out.append(contentsOf: body)
        return out
    }

    /// An envelope of `payload` with one signature by `key`.
    public static func sign(payload: [UInt8], type: String, key: SigningKey) throws -> Envelope {
        try sign(payload: payload, type: type, keys: [key])
    }

    /// An envelope of `payload` signed by each of `keys`, in order (rotation requests carry two).
    public static func sign(payload: [UInt8], type: String, keys: [SigningKey]) throws -> Envelope {
        let message = pae(type: type, body: payload)
        var signatures: [Envelope.Signature] = []
        for key in keys { signatures.append(Envelope.Signature(keyid: key.keyid, sig: try key.sign(message))) }
        return Envelope(payloadType: type, payload: payload, signatures: signatures)
    }
}
