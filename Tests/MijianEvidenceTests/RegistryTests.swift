import Foundation
import MijianCore
import Testing

@testable import MijianEvidence

@Suite("Key registry")
struct RegistryTests {
    @Test("A registry written and loaded back verifies its keys' reports; a revoked key's reports are refused")
    func roundTripAndRevocation() throws {
        let active = try SigningKey.generate()
        let retired = try SigningKey.generate()
        let registry = try KeyRegistry(entries: [
            KeyRegistry.Entry(key: active.publicKey, hostID: "h1", hostname: "ws-0042", approvedAt: Fixtures.date),
            KeyRegistry.Entry(key: retired.publicKey, hostID: "h2", hostname: "ws-0043", approvedAt: Fixtures.date, revokedAt: Fixtures.date),
        ])
        let path = try Fixtures.directory() + "/registry.json"
        try registry.write(to: path)
        let loaded = try KeyRegistry.load(from: path)
        #expect(loaded.entries == registry.entries)
        let verifier = EnvelopeVerifier(keys: loaded)
        #expect(try verifier.verifyReport(Fixtures.signedReport(active)).keyid == active.keyid)
        #expect(Fixtures.reason { try verifier.verifyReport(Fixtures.signedReport(retired)) } == .revoked)
        #expect(Fixtures.reason { try verifier.verifyReport(Fixtures.signedReport(try SigningKey.generate())) } == .unknownKey)
    }

    @Test("A directory of registry files is read together; a keyid listed twice is an error")
    func directory() throws {
        let one = try SigningKey.generate()
        let two = try SigningKey.generate()
        let directory = try Fixtures.directory()
        try KeyRegistry(entries: [KeyRegistry.Entry(key: one.publicKey, hostID: "h1", hostname: "a", approvedAt: Fixtures.date)])
            .write(to: "\(directory)/a.json")
        try KeyRegistry(entries: [KeyRegistry.Entry(key: two.publicKey, hostID: "h2", hostname: "b", approvedAt: Fixtures.date)])
            .write(to: "\(directory)/b.json")
        try Data("ignored".utf8).write(to: URL(fileURLWithPath: "\(directory)/README"))
        let loaded = try KeyRegistry.load(from: directory)
        #expect(loaded.entries.map(\.key.keyid) == [one.keyid, two.keyid])
        try KeyRegistry(entries: [KeyRegistry.Entry(key: one.publicKey, hostID: "h1", hostname: "a", approvedAt: Fixtures.date)])
            .write(to: "\(directory)/c.json")
        let error = #expect(throws: MijianError.self) { try KeyRegistry.load(from: directory) }
        #expect(error?.code == .registry)
        #expect(error?.message.contains("c.json") == true)
    }

    @Test("An entry whose keyid is not its key's, or a malformed file, is refused with the file named")
    func inconsistentEntries() throws {
        let key = try SigningKey.generate()
        let entry = KeyRegistry.Entry(key: key.publicKey, hostID: "h1", hostname: "a", approvedAt: Fixtures.date)
        let good = String(decoding: try KeyRegistry(entries: [entry]).json.serialized(), as: UTF8.self)
        let directory = try Fixtures.directory()
        for (index, text) in [
            good.replacingOccurrences(of: key.keyid, with: "sha256:" + String(repeating: "0", count: 64)),
            good.replacingOccurrences(of: "\"hostname\":\"a\"", with: "\"hostname\":\"a\",\"hostname\":\"b\""),
            good.replacingOccurrences(of: "mijian.registry/v1", with: "other"),
            good.replacingOccurrences(of: "\"revoked_at\":null", with: "\"revoked_at\":\"yesterday\""),
            "[]",
        ].enumerated() {
            let path = "\(directory)/bad\(index).json"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: MijianError.self) { try KeyRegistry.load(from: path) }
            #expect(error?.code == .registry)
            #expect(error?.message.contains(path) == true)
        }
        #expect(throws: MijianError.self) { try KeyRegistry.load(from: "\(directory)/none.json") }
    }

    @Test("An approved enrolment becomes a registry entry for that key and host")
    func approve() throws {
        let key = try SigningKey.generate()
        let request = try EnrolmentRequest.signed(key: key, previous: nil, host: Fixtures.host, at: Fixtures.date)
        let verified = try EnvelopeVerifier(keys: key.publicKey).verifyEnrolment(request.serialized())
        let entry = try KeyRegistry.Entry(approving: verified, at: Fixtures.date)
        #expect(entry.key == key.publicKey)
        #expect(entry.hostID == Fixtures.host.hostID)
        #expect(entry.hostname == "ws-0042")
        #expect(entry.revokedAt == nil)
    }
}
