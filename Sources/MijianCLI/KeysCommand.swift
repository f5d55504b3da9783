import ArgumentParser
import Foundation
import MijianCore
import MijianEvidence

/// Where the key and chain live, for the commands that use them.
struct KeyDirOptions: ParsableArguments {
    @Option(name: .customLong("key-dir"), help: ArgumentHelp("Key and chain directory (default: the policy's state_dir, else /var/lib/mijian).", valueName: "DIR"))
    var keyDir: String?

    @Option(name: .long, help: ArgumentHelp("Policy YAML whose state_dir names the key directory.", valueName: "FILE"))
    var policy: String?

    /// The store these options name.
    func store() throws(MijianError) -> KeyStore {
        if keyDir == nil, let policy {
            return KeyStore.resolve(keyDir: nil, policy: try AuditRun.loadPolicy(policy).0)
        }
        return KeyStore.resolve(keyDir: keyDir, policy: nil)
    }
}

/// `mijian keys`: this machine's signing key.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create or show this machine's Ed25519 signing key.",
        subcommands: [KeysInitCommand.self, KeysShowCommand.self]
    )
}

/// `mijian keys init`: a new key, mode 0600, never overwriting one.
struct KeysInitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create agent.key (mode 0600) and agent.pub; refuses to overwrite an existing key."
    )

    @OptionGroup var location: KeyDirOptions

    func run() async throws {
        let store = try location.store()
        let key = try store.initialise()
        try Console.out(
            """
            created \(store.keyPath) (mode 0600) and \(store.publicKeyPath)
            keyid: \(key.keyid)
            \(key.publicKey.pem)
            Next: `mijian enroll --output request.json` and carry the request to the secrecy office.

            """)
    }
}

/// `mijian keys show`: keyid and public key.
struct KeysShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the keyid (SHA-256 of the SPKI DER) and the public key as PEM."
    )

    @OptionGroup var location: KeyDirOptions

    @Option(name: .long, help: "Output format: text or json.")
    var format: OutputFormat = .text

    func run() async throws {
        let store = try location.store()
        let key = try store.signingKey()
        switch format {
        case .text:
            try Console.out("keyid: \(key.keyid)\n\(key.publicKey.pem)")
        case .json:
            let value: JSONValue = [
                "keyid": .string(key.keyid), "public_key_pem": .string(key.publicKey.pem), "key_file": .string(store.keyPath),
            ]
            try Console.out(bytes: value.prettySerialized())
        }
    }
}
