import Crypto
import Foundation
import MijianCore

#if canImport(Glibc)
import Glibc
#endif

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
    ///
    /// An envelope as `serialized()` writes it (any member order and white space) is scanned in
    /// place and its base64 decoded straight from the input bytes. Anything else, refusals
    /// included, goes through the strict JSON parser, which gives the refusal its reason.
    public static func parse(_ bytes: [UInt8], maxBytes: Int = 16 << 20) throws(VerificationFailure) -> Envelope {
        guard bytes.count <= maxBytes else {
            throw VerificationFailure(.tooLarge, "the envelope is \(bytes.count) bytes, more than the limit of \(maxBytes)")
        }
        if let envelope = scan(bytes) { return envelope }
        return try parseThroughTree(bytes, maxBytes: maxBytes)
    }

    /// The envelope read by the scanner, or nil when it declines.
    static func scan(_ bytes: [UInt8]) -> Envelope? {
        bytes.withUnsafeBufferPointer { buffer in
            var scanner = EnvelopeScanner(bytes: buffer)
            return scanner.envelope()
        }
    }

    /// Parses envelope JSON through the strict parser's tree: the reference for `scan`.
    static func parseThroughTree(_ bytes: [UInt8], maxBytes: Int) throws(VerificationFailure) -> Envelope {
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

/// Reads an envelope in place: keys and texts of printable ASCII without escapes, the payload's
/// base64 decoded from the input bytes. It accepts only what the strict parser accepts, with the
/// same result; on anything else (an escape, a stranger in a base64 text, a duplicate or unknown
/// member) it declines with nil and leaves the verdict to the parser.
private struct EnvelopeScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    mutating func peek() -> UInt8? {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return bytes[index]
            }
        }
        return nil
    }

    mutating func take(_ byte: UInt8) -> Bool {
        guard peek() == byte else { return false }
        index += 1
        return true
    }

    /// A string of printable ASCII other than `"` and `\\`: its bytes, in place.
    mutating func plain() -> UnsafeBufferPointer<UInt8>? {
        guard take(0x22) else { return nil }
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x22 {
                index += 1
                return UnsafeBufferPointer(rebasing: bytes[start..<index - 1])
            }
            guard byte >= 0x20, byte < 0x7F, byte != 0x5C else { return nil }
            index += 1
        }
        return nil
    }

    /// A base64 text decoded in place; an escape or any other stranger declines.
    mutating func base64() -> [UInt8]? {
        guard take(0x22), let base = bytes.baseAddress else { return nil }
        let start = index
        // The closing quote; the base64 decoder refuses a backslash or control byte before it.
        guard let quote = memchr(base + start, 0x22, bytes.count - start) else { return nil }
        let end = start + UnsafeRawPointer(base + start).distance(to: UnsafeRawPointer(quote))
        index = end + 1
        guard case .success(let decoded) = Base64.decode(bytes: UnsafeBufferPointer(rebasing: bytes[start..<end])) else { return nil }
        return decoded
    }

    /// `"key":` where the key is plain; its bytes.
    mutating func key() -> UnsafeBufferPointer<UInt8>? {
        guard let key = plain(), take(0x3A) else { return nil }
        return key
    }

    /// After a member or element: true when another follows, false at `closing`, nil otherwise.
    mutating func more(_ closing: UInt8) -> Bool? {
        guard let byte = peek() else { return nil }
        index += 1
        if byte == 0x2C { return true }
        return byte == closing ? false : nil
    }

    static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        let start = text.utf8Start
        for offset in 0..<bytes.count where bytes[offset] != start[offset] { return false }
        return true
    }

    mutating func envelope() -> Envelope? {
        var type: String?
        var payload: [UInt8]?
        var signatures: [Envelope.Signature]?
        guard take(0x7B) else { return nil }
        while true {
            guard let key = key() else { return nil }
            if Self.equal(key, "payloadType"), type == nil {
                guard let text = plain() else { return nil }
                type = String(decoding: text, as: UTF8.self)
            } else if Self.equal(key, "payload"), payload == nil {
                guard let decoded = base64() else { return nil }
                payload = decoded
            } else if Self.equal(key, "signatures"), signatures == nil {
                guard let list = signatureList() else { return nil }
                signatures = list
            } else {
                return nil
            }
            guard let next = more(0x7D) else { return nil }
            if !next { break }
        }
        guard peek() == nil else { return nil }
        guard let type, let payload, let signatures else { return nil }
        return Envelope(payloadType: type, payload: payload, signatures: signatures)
    }

    mutating func signatureList() -> [Envelope.Signature]? {
        guard take(0x5B) else { return nil }
        var signatures: [Envelope.Signature] = []
        if take(0x5D) { return signatures }
        repeat {
            guard take(0x7B) else { return nil }
            var keyid: String?
            var sig: [UInt8]?
            repeat {
                guard let key = key() else { return nil }
                if Self.equal(key, "keyid"), keyid == nil {
                    guard let text = plain(), text.count > 0 else { return nil }
                    keyid = String(decoding: text, as: UTF8.self)
                } else if Self.equal(key, "sig"), sig == nil {
                    guard let decoded = base64(), decoded.count == 64 else { return nil }
                    sig = decoded
                } else {
                    return nil
                }
                guard let next = more(0x7D) else { return nil }
                if !next { break }
            } while true
            guard let keyid, let sig else { return nil }
            signatures.append(Envelope.Signature(keyid: keyid, sig: sig))
            guard let next = more(0x5D) else { return nil }
            if !next { break }
        } while true
        return signatures
    }
}
