import Foundation
import MijianCore

/// A request to enrol a machine's key with the office: signed by the new key, and also by the
/// previous key when rotating (the only envelope that carries two signatures).
public struct EnrolmentRequest: Sendable, Equatable {
    /// The payload schema id.
    public static let schema = "mijian.enrolment/v1"

    /// The new public key as PEM.
    public var publicKeyPEM: String
    /// The new key's id.
    public var keyid: String
    /// The machine asking.
    public var host: HostInfo
    /// The agent's version.
    public var agentVersion: String
    /// When the request was made (the machine's clock; untrusted).
    public var requestedAt: Date
    /// The key being replaced, when rotating.
    public var previousKeyID: String?

    /// Makes a request for `key`.
    public init(key: VerifyingKey, host: HostInfo, agentVersion: String = MijianVersion.current, requestedAt: Date, previousKeyID: String? = nil) {
        self.publicKeyPEM = key.pem
        self.keyid = key.keyid
        self.host = host
        self.agentVersion = agentVersion
        self.requestedAt = requestedAt
        self.previousKeyID = previousKeyID
    }

    /// The payload JSON.
    public var json: JSONValue {
        [
            "schema": .string(EnrolmentRequest.schema),
            "public_key_pem": .string(publicKeyPEM),
            "keyid": .string(keyid),
            "host": host.json,
            "agent_version": .string(agentVersion),
            "requested_at": .string(RFC3339.string(from: requestedAt)),
            "previous_keyid": .optional(previousKeyID),
        ]
    }

    /// Decodes a `mijian.enrolment/v1` payload strictly.
    public init(json: JSONValue) throws(MijianError) {
        let object = try StrictJSONObject(json, path: "request")
        try object.only(["schema", "public_key_pem", "keyid", "host", "agent_version", "requested_at", "previous_keyid"])
        let schema = try object.string("schema")
        guard schema == EnrolmentRequest.schema else {
            throw MijianError(.malformed, "request.schema is \"\(schema)\", not \"\(EnrolmentRequest.schema)\"")
        }
        publicKeyPEM = try object.string("public_key_pem")
        keyid = try object.string("keyid")
        host = try HostInfo(json: try object.value("host"), path: "request.host")
        agentVersion = try object.string("agent_version")
        requestedAt = try object.date("requested_at")
        previousKeyID = try object.optionalString("previous_keyid")
    }

    /// The signed envelope: by `key`, and by `previous` when rotating.
    public static func signed(key: SigningKey, previous: SigningKey?, host: HostInfo, at date: Date = Date()) throws(MijianError) -> Envelope {
        if let previous, previous.keyid == key.keyid {
            throw MijianError(.usage, "the previous key is the current key (\(key.keyid)); create a new key before rotating")
        }
        let request = EnrolmentRequest(key: key.publicKey, host: host, requestedAt: date, previousKeyID: previous?.keyid)
        do {
            return try DSSE.sign(payload: request.json.serialized(), type: PayloadType.enrolment, keys: [key] + (previous.map { [$0] } ?? []))
        } catch {
            throw MijianError(.crypto, "cannot sign the enrolment request: \(error)")
        }
    }
}
