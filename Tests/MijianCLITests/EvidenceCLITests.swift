import Crypto
import Foundation
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

@testable import MijianCLI

@Suite("mijian keys, audit --sign, enroll, verify")
struct EvidenceCLITests {
    /// A host tree with just enough to identify the machine, and a key directory.
    struct Machine {
        let base: String
        let root: String
        let keyDir: String

        init() throws {
            base = try TestSupport.temporaryDirectory("mijian-cli-evidence").path
            root = "\(base)/root"
            keyDir = "\(base)/keys"
            try FileManager.default.createDirectory(atPath: "\(root)/etc", withIntermediateDirectories: true)
            try Data("0123456789abcdef0123456789abcdef\n".utf8).write(to: URL(fileURLWithPath: "\(root)/etc/machine-id"))
            try Data("ws-0042\n".utf8).write(to: URL(fileURLWithPath: "\(root)/etc/hostname"))
        }

        func path(_ name: String) -> String { "\(base)/\(name)" }
    }

    @Test("keys init creates a 0600 key once; keys show prints it")
    func keysInit() async throws {
        let machine = try Machine()
        #expect(await MijianMain.run(arguments: ["keys", "init", "--key-dir", machine.keyDir]) == 0)
        var info = stat()
        #expect(stat("\(machine.keyDir)/agent.key", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let before = try Data(contentsOf: URL(fileURLWithPath: "\(machine.keyDir)/agent.key"))
        #expect(await MijianMain.run(arguments: ["keys", "init", "--key-dir", machine.keyDir]) == 2)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(machine.keyDir)/agent.key")) == before)
        #expect(await MijianMain.run(arguments: ["keys", "show", "--key-dir", machine.keyDir]) == 0)
        #expect(await MijianMain.run(arguments: ["keys", "show", "--key-dir", machine.keyDir + "/none"]) == 2)
    }

    @Test("audit --sign writes chained envelopes that verify; a tampered one fails with exit 1")
    func signAndVerify() async throws {
        let machine = try Machine()
        let first = machine.path("first.json")
        let second = machine.path("second.json")
        let base = ["audit", "--sign", "--root", machine.root, "--key-dir", machine.keyDir]
        #expect(await MijianMain.run(arguments: base + ["--output", first]) == 2)
        #expect(!FileManager.default.fileExists(atPath: first))
        #expect(await MijianMain.run(arguments: ["keys", "init", "--key-dir", machine.keyDir]) == 0)
        let audited = await MijianMain.run(arguments: base + ["--output", first])
        #expect(audited == 0 || audited == 1)
        #expect(await MijianMain.run(arguments: base + ["--output", second]) == audited)
        let pub = "\(machine.keyDir)/agent.pub"
        #expect(await MijianMain.run(arguments: ["verify", first, second, "--key", pub]) == 0)
        #expect(await MijianMain.run(arguments: ["verify", first, "--key", pub, "--format", "json"]) == 0)

        let key = try VerifyingKey(pem: String(contentsOfFile: pub, encoding: .utf8))
        let verifier = EnvelopeVerifier(keys: key)
        let a = try verifier.verifyReport(EvidenceFiles.read(first, limit: 1 << 24))
        let b = try verifier.verifyReport(EvidenceFiles.read(second, limit: 1 << 24))
        #expect(a.report.seq == 0)
        #expect(b.report.seq == 1)
        #expect(b.report.prevSHA256 == a.payloadSHA256)
        #expect(a.report.host.hostname == "ws-0042")

        var envelope = try Envelope.parse(EvidenceFiles.read(second, limit: 1 << 24))
        envelope.payload[envelope.payload.count / 2] ^= 0x01
        let tampered = machine.path("tampered.json")
        try Data(envelope.serialized()).write(to: URL(fileURLWithPath: tampered))
        #expect(await MijianMain.run(arguments: ["verify", first, tampered, "--key", pub]) == 1)

        let outcomes = VerifyRun.verify(files: [first, tampered], with: verifier)
        let text = VerifyRun.text(outcomes)
        #expect(text.contains("\(first): ok: report from ws-0042"))
        #expect(text.contains("seq 0"))
        #expect(text.contains("\(tampered): bad-signature: "))
        #expect(text.contains("1 verified, 1 failed"))
        let json = VerifyRun.json(outcomes)
        #expect(json["failed"] == .int(1))
        #expect(json["results"]?.arrayValue?.last?["reason"] == .string("bad-signature"))
        #expect(json["results"]?.arrayValue?.first?["seq"] == .int(0))
    }

    @Test("audit --sign --policy: the signed report carries that policy, read once for the keys and the audit")
    func signWithAPolicyFile() async throws {
        let machine = try Machine()
        #expect(await MijianMain.run(arguments: ["keys", "init", "--key-dir", machine.keyDir]) == 0)
        let policy = machine.path("unit.yaml")
        let text = "id: unit-7\nversion: \"3\"\nprofile: classified\nnetworks:\n  unit: [10.7.0.0/16]\nrules:\n  log.retention:\n    enabled: false\n  audit.system:\n    enabled: false\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: policy))
        let signed = machine.path("signed.json")
        let code = await MijianMain.run(arguments: ["audit", "--sign", "--root", machine.root, "--key-dir", machine.keyDir, "--policy", policy, "--output", signed])
        // The root holds /etc alone: the hardware, network and log rules cannot look, and with
        // log.retention and audit.system (the ones that fail there: no journal, no audit=1 on any
        // command line) disabled nothing fails, so the status is 3.
        #expect(code == 3)
        let key = try VerifyingKey(pem: String(contentsOfFile: "\(machine.keyDir)/agent.pub", encoding: .utf8))
        let report = try EnvelopeVerifier(keys: key).verifyReport(EvidenceFiles.read(signed, limit: 1 << 24)).report
        #expect(report.policy.id == "unit-7" && report.policy.version == "3")
        #expect(report.policy.sha256 == Hex.lower(SHA256.hash(data: Array(text.utf8))))
        #expect(report.findings.first { $0.rule.id == "log.retention" }?.status == .notchecked)
        #expect(report.findings.first { $0.rule.id == "audit.system" }?.status == .notchecked)
    }

    @Test("enroll writes a request that verifies; rotation signs with both keys")
    func enroll() async throws {
        let machine = try Machine()
        #expect(await MijianMain.run(arguments: ["keys", "init", "--key-dir", machine.keyDir]) == 0)
        let request = machine.path("request.json")
        #expect(await MijianMain.run(arguments: ["enroll", "--output", request, "--key-dir", machine.keyDir, "--root", machine.root]) == 0)
        let oldPub = machine.path("old.pub")
        try FileManager.default.copyItem(atPath: "\(machine.keyDir)/agent.pub", toPath: oldPub)
        #expect(await MijianMain.run(arguments: ["verify", request, "--key", oldPub]) == 0)

        let oldKey = machine.path("old.key")
        try FileManager.default.moveItem(atPath: "\(machine.keyDir)/agent.key", toPath: oldKey)
        #expect(await MijianMain.run(arguments: ["keys", "init", "--key-dir", machine.keyDir]) == 0)
        let rotation = machine.path("rotation.json")
        #expect(
            await MijianMain.run(arguments: [
                "enroll", "--output", rotation, "--previous-key", oldKey, "--key-dir", machine.keyDir, "--root", machine.root,
            ]) == 0)
        let envelope = try Envelope.parse(EvidenceFiles.read(rotation, limit: 1 << 20))
        #expect(envelope.signatures.count == 2)
        #expect(await MijianMain.run(arguments: ["verify", rotation, "--key", oldPub]) == 0)
        #expect(await MijianMain.run(arguments: ["verify", rotation, "--key", "\(machine.keyDir)/agent.pub"]) == 1)
    }

    @Test("verify: usage errors exit 2", arguments: [
        ["verify", "x.json"], ["verify", "--key", "k.pem"], ["verify", "x.json", "--key", "k.pem", "--registry", "r.json"],
        ["verify", "x.json", "--key", "/nonexistent/k.pem"], ["verify", "x.json", "--registry", "/nonexistent/r.json"],
    ])
    func usage(arguments: [String]) async {
        #expect(await MijianMain.run(arguments: arguments) == 2)
    }

    @Test("verify with a registry")
    func registry() async throws {
        let machine = try Machine()
        #expect(await MijianMain.run(arguments: ["keys", "init", "--key-dir", machine.keyDir]) == 0)
        let envelopeFile = machine.path("report.json")
        let code = await MijianMain.run(arguments: ["audit", "--sign", "--root", machine.root, "--key-dir", machine.keyDir, "--output", envelopeFile])
        #expect(code == 0 || code == 1)
        let key = try VerifyingKey(pem: String(contentsOfFile: "\(machine.keyDir)/agent.pub", encoding: .utf8))
        let registryFile = machine.path("registry.json")
        try KeyRegistry(entries: [KeyRegistry.Entry(key: key, hostID: "h", hostname: "ws-0042", approvedAt: Date())]).write(to: registryFile)
        #expect(await MijianMain.run(arguments: ["verify", envelopeFile, "--registry", registryFile]) == 0)
        try KeyRegistry(entries: [KeyRegistry.Entry(key: key, hostID: "h", hostname: "ws-0042", approvedAt: Date(), revokedAt: Date())])
            .write(to: registryFile)
        #expect(await MijianMain.run(arguments: ["verify", envelopeFile, "--registry", registryFile]) == 1)
    }
}
