import Dispatch
import Foundation
import MijianCore
import Synchronization
import Testing

@testable import MijianEvidence

@Suite("Chain state and report signing")
struct ChainTests {
    @Test("Reports chain: seq counts up, prev_sha256 names the previous payload, state is on disk before release")
    func chaining() throws {
        let store = KeyStore(directory: try Fixtures.directory())
        let key = try store.initialise()
        let signer = try ReportSigner(store: store)
        let verifier = EnvelopeVerifier(keys: key.publicKey)
        var previousDigest = ""
        var epoch: Int64?
        for expected in Int64(0)..<4 {
            let (envelope, report) = try signer.sign(Fixtures.report(), now: Fixtures.date)
            let verified = try verifier.verifyReport(envelope.serialized())
            #expect(verified.report == report)
            #expect(report.seq == expected)
            #expect(report.prevSHA256 == previousDigest)
            #expect(report.agent.keyid == key.keyid)
            if let epoch { #expect(report.epoch == epoch) }
            epoch = report.epoch
            let state = try #require(try ChainState.load(from: store.chainPath))
            #expect(state.seq == expected + 1)
            #expect(state.prevSHA256 == verified.payloadSHA256)
            #expect(state.keyid == key.keyid)
            previousDigest = verified.payloadSHA256
        }
        #expect(epoch == Int64(Fixtures.date.timeIntervalSince1970))
        var info = stat()
        #expect(stat(store.chainPath, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
    }

    @Test("A new key starts a new, higher epoch at seq 0")
    func newKeyNewEpoch() throws {
        let store = KeyStore(directory: try Fixtures.directory())
        _ = try store.initialise()
        let first = try ReportSigner(store: store)
        _ = try first.sign(Fixtures.report(), now: Fixtures.date)
        let (_, second) = try first.sign(Fixtures.report(), now: Fixtures.date)
        #expect(second.seq == 1)
        let rotated = ReportSigner(store: store, key: try SigningKey.generate())
        let (_, fresh) = try rotated.sign(Fixtures.report(), now: Fixtures.date.addingTimeInterval(-86_400))
        #expect(fresh.seq == 0)
        #expect(fresh.prevSHA256 == "")
        #expect(fresh.epoch == second.epoch + 1)
    }

    @Test("A damaged chain state is an error, never a silent restart at seq 0", arguments: [
        "", "{", "{\"schema\":\"mijian.chain/v1\"}",
        "{\"schema\":\"mijian.chain/v1\",\"keyid\":\"k\",\"epoch\":1,\"seq\":2.0,\"prev_sha256\":\"\",\"last_report_id\":null,\"updated_at\":\"2026-11-29T00:00:00Z\"}",
        "{\"schema\":\"mijian.chain/v1\",\"schema\":\"mijian.chain/v1\"}",
    ])
    func damagedState(text: String) throws {
        let store = KeyStore(directory: try Fixtures.directory())
        _ = try store.initialise()
        try Data(text.utf8).write(to: URL(fileURLWithPath: store.chainPath))
        let signer = try ReportSigner(store: store)
        let error = #expect(throws: MijianError.self) { try signer.sign(Fixtures.report()) }
        #expect(error?.code == .state)
        #expect(try String(contentsOfFile: store.chainPath, encoding: .utf8) == text)
    }

    @Test("Concurrent signers never issue one seq twice")
    func concurrentSigners() throws {
        let store = KeyStore(directory: try Fixtures.directory())
        _ = try store.initialise()
        let signer = try ReportSigner(store: store)
        let seqs = Mutex<[Int64]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 24) { _ in
            do {
                let (_, report) = try signer.sign(Fixtures.report())
                seqs.withLock { $0.append(report.seq) }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(seqs.withLock { $0.sorted() } == Array(0..<24))
    }

    @Test("Chain state round-trips through its JSON")
    func stateRoundTrip() throws {
        let state = ChainState(keyid: "sha256:00", epoch: 5, seq: 9, prevSHA256: String(repeating: "e", count: 64), lastReportID: "x", updatedAt: Fixtures.date)
        #expect(try ChainState(json: state.json) == state)
        let path = try Fixtures.directory() + "/chain.json"
        #expect(try ChainState.load(from: path) == nil)
        try state.save(to: path)
        #expect(try ChainState.load(from: path) == state)
    }
}
