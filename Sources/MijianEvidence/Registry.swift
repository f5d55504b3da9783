import Foundation
import MijianCore

/// The office's list of enrolled machine keys (`mijian verify --registry`).
///
/// One JSON file, or a directory whose `*.json` files are read together:
///
///     {"schema": "mijian.registry/v1",
///      "keys": [{"keyid": "sha256:…", "public_key_pem": "-----BEGIN PUBLIC KEY-----\n…",
///                "host_id": "…", "hostname": "ws-0042", "approved_at": "2026-11-29T04:00:00Z",
///                "revoked_at": null}]}
///
/// Every keyid must be the SHA-256 of its key's SPKI DER and appear once across all files.
public struct KeyRegistry: KeyLookup, Sendable {
    /// One enrolled key.
    public struct Entry: Sendable, Equatable {
        /// The key.
        public var key: VerifyingKey
        /// The machine's host id.
        public var hostID: String
        /// The machine's name when enrolled.
        public var hostname: String
        /// When the office approved it.
        public var approvedAt: Date
        /// When it was revoked, if it was.
        public var revokedAt: Date?

        /// Makes an entry.
        public init(key: VerifyingKey, hostID: String, hostname: String, approvedAt: Date, revokedAt: Date? = nil) {
            self.key = key
            self.hostID = hostID
            self.hostname = hostname
            self.approvedAt = approvedAt
            self.revokedAt = revokedAt
        }

        /// The entry for an approved enrolment request.
        public init(approving enrolment: VerifiedEnrolment, at date: Date) throws(MijianError) {
            self.init(
                key: try VerifyingKey(pem: enrolment.request.publicKeyPEM), hostID: enrolment.request.host.hostID,
                hostname: enrolment.request.host.hostname, approvedAt: date)
        }

        /// The entry's JSON.
        public var json: JSONValue {
            [
                "keyid": .string(key.keyid), "public_key_pem": .string(key.pem), "host_id": .string(hostID), "hostname": .string(hostname),
                "approved_at": .string(RFC3339.string(from: approvedAt)), "revoked_at": .optional(revokedAt.map { RFC3339.string(from: $0) }),
            ]
        }
    }

    /// The registry file schema id.
    public static let schema = "mijian.registry/v1"

    /// The entries, in file order.
    public private(set) var entries: [Entry]
    private var index: [String: Int]

    /// A registry of `entries`; keyids must be unique.
    public init(entries: [Entry]) throws(MijianError) {
        self.entries = []
        self.index = [:]
        for entry in entries { try add(entry) }
    }

    /// Adds an entry; a keyid already present is an error.
    public mutating func add(_ entry: Entry) throws(MijianError) {
        guard index[entry.key.keyid] == nil else { throw MijianError(.registry, "keyid \(entry.key.keyid) is listed twice") }
        index[entry.key.keyid] = entries.count
        entries.append(entry)
    }

    /// The entry for `keyid`.
    public func entry(for keyid: String) -> Entry? { index[keyid].map { entries[$0] } }

    /// The enrolled key with this keyid (revoked ones too; verification then says `revoked`).
    public func key(for keyid: String) -> VerifyingKey? { entry(for: keyid)?.key }

    /// When the key was revoked.
    public func revocation(for keyid: String) -> Date? { entry(for: keyid)?.revokedAt }

    /// The registry file's JSON.
    public var json: JSONValue { ["schema": .string(KeyRegistry.schema), "keys": .array(entries.map(\.json))] }

    /// Parses one registry document; `file` names it in errors.
    public static func parse(_ bytes: [UInt8], file: String) throws(MijianError) -> [Entry] {
        let value: JSONValue
        do {
            value = try JSONParser(maxDepth: 8, maxBytes: 64 << 20).parse(bytes)
        } catch {
            throw MijianError(.registry, "\(file) is not valid JSON: \(error)", path: file)
        }
        do {
            let top = try StrictJSONObject(value, path: "registry")
            try top.only(["schema", "keys"])
            guard try top.string("schema") == schema else { throw MijianError(.malformed, "registry.schema must be \"\(schema)\"") }
            var entries: [Entry] = []
            for (position, element) in try top.array("keys").enumerated() {
                let object = try StrictJSONObject(element, path: "registry.keys[\(position)]")
                try object.only(["keyid", "public_key_pem", "host_id", "hostname", "approved_at", "revoked_at"])
                let key = try VerifyingKey(pem: try object.string("public_key_pem"))
                let keyid = try object.string("keyid")
                guard keyid == key.keyid else {
                    throw MijianError(.malformed, "registry.keys[\(position)].keyid is \(keyid) but its public key's keyid is \(key.keyid)")
                }
                var revokedAt: Date?
                if try object.optionalString("revoked_at") != nil { revokedAt = try object.date("revoked_at") }
                entries.append(
                    Entry(key: key, hostID: try object.string("host_id"), hostname: try object.string("hostname"),
                        approvedAt: try object.date("approved_at"), revokedAt: revokedAt))
            }
            return entries
        } catch let error as MijianError {
            throw MijianError(.registry, "\(file): \(error.message)", path: file)
        } catch {
            throw MijianError(.registry, "\(file): \(error)", path: file)
        }
    }

    /// Loads a registry file, or every `*.json` file of a directory.
    public static func load(from path: String) throws(MijianError) -> KeyRegistry {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw MijianError(.notFound, "no registry at \(path)", path: path)
        }
        var files = [path]
        if isDirectory.boolValue {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: path)
            } catch {
                throw MijianError(.registry, "cannot list the registry directory \(path)", path: path)
            }
            files = names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted().map { "\(path)/\($0)" }
        }
        var registry = try KeyRegistry(entries: [])
        for file in files {
            for entry in try parse(try EvidenceFiles.read(file, limit: 64 << 20), file: file) {
                do {
                    try registry.add(entry)
                } catch {
                    throw MijianError(.registry, "\(file): \(error.message)", path: file)
                }
            }
        }
        return registry
    }

    /// Writes the registry atomically.
    public func write(to path: String) throws(MijianError) {
        try AtomicFile.write(json.prettySerialized(), to: path, mode: 0o644)
    }
}
