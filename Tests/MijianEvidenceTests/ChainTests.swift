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

    @Test("A chain state at the end of the numbers is a clear error, never a trap")
    func stateAtTheLastSeqOrEpoch() throws {
        let store = KeyStore(directory: try Fixtures.directory())
        let key = try store.initialise()
        let signer = try ReportSigner(store: store)
        func refusal(_ body: () throws -> Void) -> MijianError? {
            do {
                try body()
                return nil
            } catch let error as MijianError {
                return error
            } catch {
                return nil
            }
        }
        // This key's chain at seq Int64.max: no report can follow.
        try ChainState(keyid: key.keyid, epoch: 5, seq: .max, prevSHA256: "", updatedAt: Fixtures.date).save(to: store.chainPath)
        let exhausted = refusal { _ = try signer.sign(Fixtures.report(), now: Fixtures.date) }
        #expect(exhausted?.code == .state)
        #expect(exhausted?.message.contains("seq \(Int64.max) is the last there is") == true, "\(String(describing: exhausted))")
        // Another key's chain at epoch Int64.max: a new key has no epoch left after it.
        try ChainState(keyid: "sha256:other", epoch: .max, seq: 3, prevSHA256: "", updatedAt: Fixtures.date).save(to: store.chainPath)
        let noEpoch = refusal { _ = try signer.sign(Fixtures.report(), now: Fixtures.date) }
        #expect(noEpoch?.code == .state)
        #expect(noEpoch?.message.contains("leaves no epoch after it") == true, "\(String(describing: noEpoch))")
        // A released report said to be at seq Int64.max (from a spool file): moving past it is an error.
        try FileManager.default.removeItem(atPath: store.chainPath)
        // The epoch a new chain gets at Fixtures.date, so that signing after it continues it.
        let position = ChainPosition(keyid: key.keyid, epoch: Int64(Fixtures.date.timeIntervalSince1970), seq: .max, payloadSHA256: "", reportID: nil)
        let pastTheEnd = refusal { try signer.advance(past: position) }
        #expect(pastTheEnd?.code == .state)
        let afterTheEnd = refusal { try signer.sign(Fixtures.report(), now: Fixtures.date, after: position) { _, _ in } }
        #expect(afterTheEnd?.code == .state)
        #expect(try ChainState.load(from: store.chainPath) == nil, "nothing was saved")
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
