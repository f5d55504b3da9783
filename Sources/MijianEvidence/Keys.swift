#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import MijianCore

/// PEM armour and the two DER structures Mijian writes for Ed25519 (RFC 8410).
enum PEM {
    /// SubjectPublicKeyInfo header: SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING (32 bytes) }.
    static let spkiPrefix: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]
    /// PKCS#8 header: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32 bytes) } }.
    static let pkcs8Prefix: [UInt8] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ]

    /// `-----BEGIN label-----`, base64 in 64-column lines, `-----END label-----`, final newline.
    static func armour(_ der: [UInt8], label: String) -> String {
        let text = Array(Base64.encode(der).utf8)
        var lines = ["-----BEGIN \(label)-----"]
        var index = 0
        while index < text.count {
            lines.append(String(decoding: text[index..<min(index + 64, text.count)], as: UTF8.self))
            index += 64
        }
        lines.append("-----END \(label)-----")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The DER inside the one block labelled `label`; `what` names the source in errors.
    static func unarmour(_ text: String, label: String, what: String) throws(MijianError) -> [UInt8] {
        let lines = text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let begin = "-----BEGIN \(label)-----"
        let end = "-----END \(label)-----"
        guard let first = lines.firstIndex(of: begin), let last = lines.firstIndex(of: end), first < last else {
            throw MijianError(.key, "\(what) is not a PEM \(label) (expected a \(begin) line)")
        }
        guard lines.filter({ $0.hasPrefix("-----BEGIN ") }).count == 1 else {
            throw MijianError(.key, "\(what) holds more than one PEM block; give one key per file")
        }
        do {
            return try Base64.decode(lines[(first + 1)..<last].joined())
        } catch {
            throw MijianError(.key, "\(what): the PEM body is not valid base64 (\(error.detail))")
        }
    }
}

/// An Ed25519 public key that verifies reports: its keyid is the SHA-256 of its SPKI DER.
public struct VerifyingKey: Sendable, Hashable {
    /// `sha256:<hex of SHA-256 of the SubjectPublicKeyInfo DER>`.
    public let keyid: String
    /// The 32 raw key bytes.
    public let rawRepresentation: [UInt8]
    private let key: Curve25519.Signing.PublicKey

    /// Makes a key from its 32 raw bytes.
    public init(rawRepresentation: [UInt8]) throws(MijianError) {
        guard rawRepresentation.count == 32, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation) else {
            throw MijianError(.key, "an Ed25519 public key is 32 bytes, not \(rawRepresentation.count)")
        }
        self.key = key
        self.rawRepresentation = rawRepresentation
        self.keyid = VerifyingKey.keyid(spki: PEM.spkiPrefix + rawRepresentation)
    }

    /// Parses a `PUBLIC KEY` PEM holding an Ed25519 SubjectPublicKeyInfo.
    public init(pem: String) throws(MijianError) {
        let der = try PEM.unarmour(pem, label: "PUBLIC KEY", what: "the public key")
        guard der.count == PEM.spkiPrefix.count + 32, Array(der.prefix(PEM.spkiPrefix.count)) == PEM.spkiPrefix else {
            throw MijianError(.key, "the public key is not an Ed25519 SubjectPublicKeyInfo (OID 1.3.101.112)")
        }
        try self.init(rawRepresentation: Array(der.dropFirst(PEM.spkiPrefix.count)))
    }

    /// The SubjectPublicKeyInfo DER.
    public var spkiDER: [UInt8] { PEM.spkiPrefix + rawRepresentation }

    /// The key as a `PUBLIC KEY` PEM block.
    public var pem: String { PEM.armour(spkiDER, label: "PUBLIC KEY") }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        signature.count == 64 && key.isValidSignature(signature, for: message)
    }

    /// The keyid of a SubjectPublicKeyInfo DER.
    static func keyid(spki: [UInt8]) -> String { "sha256:" + Hex.encode(SHA256.hash(data: spki)) }

    /// Keys are equal when their bytes are.
    public static func == (lhs: VerifyingKey, rhs: VerifyingKey) -> Bool { lhs.rawRepresentation == rhs.rawRepresentation }

    /// Hashes the key bytes.
    public func hash(into hasher: inout Hasher) { hasher.combine(rawRepresentation) }
}

/// A machine's Ed25519 private key; only the agent holds it.
public struct SigningKey: Sendable {
    private let key: Curve25519.Signing.PrivateKey
    /// The public half.
    public let publicKey: VerifyingKey

    /// The public key's id.
    public var keyid: String { publicKey.keyid }

    private init(key: Curve25519.Signing.PrivateKey) throws(MijianError) {
        self.key = key
        self.publicKey = try VerifyingKey(rawRepresentation: Array(key.publicKey.rawRepresentation))
    }

    /// A fresh random key.
    public static func generate() throws(MijianError) -> SigningKey {
        try SigningKey(key: Curve25519.Signing.PrivateKey())
    }

    /// A key from its 32-byte seed (RFC 8032 private key).
    public init(seed: [UInt8]) throws(MijianError) {
        guard seed.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            throw MijianError(.key, "an Ed25519 private key is 32 bytes, not \(seed.count)")
        }
        try self.init(key: key)
    }

    /// Parses a `PRIVATE KEY` PEM holding an Ed25519 PKCS#8 structure (as `openssl genpkey -algorithm ed25519` writes).
    public init(pem: String, source: String = "the private key") throws(MijianError) {
        let der = try PEM.unarmour(pem, label: "PRIVATE KEY", what: source)
        guard der.count == PEM.pkcs8Prefix.count + 32, Array(der.prefix(PEM.pkcs8Prefix.count)) == PEM.pkcs8Prefix else {
            throw MijianError(.key, "\(source) is not an Ed25519 PKCS#8 private key (OID 1.3.101.112)")
        }
        try self.init(seed: Array(der.dropFirst(PEM.pkcs8Prefix.count)))
    }

    /// The key as a `PRIVATE KEY` PEM block (PKCS#8, readable by OpenSSL).
    public var pem: String { PEM.armour(PEM.pkcs8Prefix + Array(key.rawRepresentation), label: "PRIVATE KEY") }

    /// The Ed25519 signature of `bytes`.
    public func sign(_ bytes: [UInt8]) throws -> [UInt8] {
        Array(try key.signature(for: bytes))
    }

    /// Loads a key file, refusing one that group or others can read or that another user owns.
    public static func load(from path: String) throws(MijianError) -> SigningKey {
        let file: FileDescriptor
        do {
            // O_NONBLOCK: a FIFO opens at once and is refused below instead of blocking.
            file = try FileDescriptor(path: path, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        } catch where error.code == .notFound {
            throw MijianError(.notFound, "no key at \(path); create one with `mijian keys init`", path: path, errno: error.errno)
        }
        let info = try file.status()
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw MijianError(.key, "\(path) is not a regular file", path: path) }
        guard info.st_mode & 0o077 == 0 else {
            throw MijianError(
                .key, "\(path) can be read by group or others (mode \(String(info.st_mode & 0o777, radix: 8))); run `chmod 600 \(path)`",
                path: path)
        }
        let me = geteuid()
        guard info.st_uid == me || info.st_uid == 0 else {
            throw MijianError(.key, "\(path) is owned by uid \(info.st_uid), not by root or uid \(me); run `chown root:root \(path)`", path: path)
        }
        let bytes = try file.readAll(limit: 16 << 10)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw MijianError(.key, "\(path) is not a PEM text file", path: path) }
        return try SigningKey(pem: text, source: path)
    }

    /// Writes the key to `path` with mode 0600 from the first byte; refuses to overwrite anything.
    public func write(to path: String) throws(MijianError) {
        try EvidenceFiles.createExclusive(Array(pem.utf8), at: path, mode: 0o600)
    }
}
