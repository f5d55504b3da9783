import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianEvidence

@Suite("Keys and key files")
struct KeyTests {
    @Test("A PKCS#8 key from OpenSSL loads, and its keyid and public PEM match OpenSSL's")
    func opensslVector() throws {
        let key = try SigningKey(pem: Fixtures.rfc8032PrivatePEM)
        #expect(key.keyid == Fixtures.rfc8032KeyID)
        #expect(key.publicKey.pem == Fixtures.rfc8032PublicPEM)
        #expect(key.pem == Fixtures.rfc8032PrivatePEM)
        let parsed = try VerifyingKey(pem: Fixtures.rfc8032PublicPEM)
        #expect(parsed == key.publicKey)
        #expect(parsed.keyid == Fixtures.rfc8032KeyID)
    }

    @Test("Public keys that are not Ed25519 SPKI are refused", arguments: [
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n",
        // X25519 (OID 1.3.101.110), same length.
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n",
        // One byte short.
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUQ==\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        "not a key",
        Fixtures.rfc8032PublicPEM + Fixtures.rfc8032PublicPEM,
    ])
    func badPublicKeys(pem: String) {
        #expect(throws: MijianError.self) { try VerifyingKey(pem: pem) }
    }

    @Test("A written key has mode 0600, loads back, and is never overwritten")
    func writeAndLoad() throws {
        let directory = try Fixtures.directory()
        let path = "\(directory)/agent.key"
        let key = try SigningKey.generate()
        try key.write(to: path)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let loaded = try SigningKey.load(from: path)
        #expect(loaded.keyid == key.keyid)
        let other = try SigningKey.generate()
        let error = #expect(throws: MijianError.self) { try other.write(to: path) }
        #expect(error?.code == .exists)
        #expect(try SigningKey.load(from: path).keyid == key.keyid)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(leftovers == ["agent.key"])
    }

    @Test("A key file group or others can read is refused with the chmod that fixes it")
    func openKeyRefused() throws {
        let directory = try Fixtures.directory()
        let path = "\(directory)/agent.key"
        try SigningKey.generate().write(to: path)
        #expect(chmod(path, 0o644) == 0)
        let error = #expect(throws: MijianError.self) { try SigningKey.load(from: path) }
        #expect(error?.code == .key)
        #expect(error?.message.contains("chmod 600 \(path)") == true)
        #expect(chmod(path, 0o600) == 0)
        #expect(throws: Never.self) { try SigningKey.load(from: path) }
    }

    @Test("A missing key says how to create one")
    func missingKey() throws {
        let store = KeyStore(directory: try Fixtures.directory())
        let error = #expect(throws: MijianError.self) { try store.signingKey() }
        #expect(error?.code == .notFound)
        #expect(error?.message.contains("mijian keys init") == true)
    }

    @Test("KeyStore.initialise creates key and public key once")
    func storeInitialise() throws {
        let store = KeyStore(directory: try Fixtures.directory() + "/nested/state")
        let key = try store.initialise()
        var info = stat()
        #expect(stat(store.directory, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        let pub = try String(contentsOfFile: store.publicKeyPath, encoding: .utf8)
        #expect(try VerifyingKey(pem: pub).keyid == key.keyid)
        #expect(try store.signingKey().keyid == key.keyid)
        let error = #expect(throws: MijianError.self) { try store.initialise() }
        #expect(error?.code == .exists)
        #expect(try store.signingKey().keyid == key.keyid)
    }

    @Test("Key directory: --key-dir, then the policy's state_dir, then /var/lib/mijian")
    func resolveDirectory() throws {
        var policy = try TestSupport.defaultPolicy()
        policy.stateDir = "/srv/mijian"
        #expect(KeyStore.resolve(keyDir: "/tmp/k", policy: policy).directory == "/tmp/k")
        #expect(KeyStore.resolve(keyDir: nil, policy: policy).directory == "/srv/mijian")
        #expect(KeyStore.resolve(keyDir: nil, policy: nil).directory == "/var/lib/mijian")
        #expect(KeyStore.resolve(keyDir: nil, policy: nil).keyPath == "/var/lib/mijian/agent.key")
    }
}
