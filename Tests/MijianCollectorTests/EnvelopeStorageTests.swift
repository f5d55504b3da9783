import Foundation
import GRDB
import MijianCore
import MijianEvidence
@testable import MijianCollector
import MijianTestSupport
import Testing

/// Envelopes are the evidence: the SQLite store may keep one in a Zstandard frame, but it must
/// give back the very bytes that were signed, say so when it cannot, and read what older
/// collectors stored as sent.
@Suite("Envelopes kept compressed and given back byte for byte")
struct EnvelopeStorageTests {
    /// Bytes of every kind an envelope could hold or a frame could be confused by.
    static var samples: [[UInt8]] {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<20_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let json = Array(#"{"payloadType":"application/vnd.mijian.report+json","payload":""#.utf8)
            + Array(Data(String(repeating: #"{"rule":"net.history","status":"pass","detail":"某局 张三 e\#u{301}"},"#, count: 400).utf8).base64EncodedString().utf8)
            + Array(#"","signatures":[{"keyid":"ab","sig":"cd"}]}"#.utf8)
        return [[], [0], Array("{}".utf8), json, random, Array(repeating: 0, count: 70_000), json + [0, 0xFF, 0xFE] + json]
    }

    @Test func everyEnvelopeComesBackAsItWent() throws {
        for sample in Self.samples {
            let packed = EnvelopeCodec.pack(sample)
            #expect(try EnvelopeCodec.unpack(packed.bytes, encoding: packed.encoding.rawValue) == sample)
            // A frame only when it is smaller: random bytes, the empty and the tiny stay as sent.
            #expect(packed.bytes.count <= sample.count)
            if packed.encoding == .zstd { #expect(packed.bytes.count < sample.count) }
        }
        let json = Self.samples[3]
        #expect(EnvelopeCodec.pack(json).encoding == .zstd)
        #expect(EnvelopeCodec.pack(Self.samples[4]).encoding == .verbatim)
        #expect(EnvelopeCodec.pack([]).encoding == .verbatim)
    }

    @Test func aDamagedFrameIsAnErrorNeverOtherBytes() throws {
        let json = Self.samples[3]
        let frame = EnvelopeCodec.pack(json).bytes
        // Every single byte changed, one at a time: an error, or (where zstd ignores the byte,
        // such as unused header bits) the very same envelope; never different bytes.
        var refused = 0
        for index in frame.indices {
            var damaged = frame
            damaged[index] ^= 0x5A
            do {
                #expect(try EnvelopeCodec.unpack(damaged, encoding: 1) == json, "byte \(index) changed gave other bytes")
            } catch {
                #expect(error.description.contains("damaged"), "\(error.description)")
                refused += 1
            }
        }
        // The checksum covers the content: nearly every change is caught.
        #expect(refused >= frame.count - 2, "\(refused) of \(frame.count) changes refused")
        // Cut short anywhere: an error.
        for length in [0, 1, 5, frame.count / 2, frame.count - 1] {
            #expect(throws: EnvelopeCodec.Failure.self) { try EnvelopeCodec.unpack(Array(frame.prefix(length)), encoding: 1) }
        }
        // Two frames back to back hold more than the first one's header says.
        #expect(throws: EnvelopeCodec.Failure.self) { try EnvelopeCodec.unpack(frame + frame, encoding: 1) }
        // A frame saying it holds more than any envelope is not allocated.
        let large = EnvelopeCodec.pack(Array(repeating: 0, count: 70_000))
        #expect(large.encoding == .zstd)
        do {
            _ = try EnvelopeCodec.unpack(large.bytes, encoding: 1, limit: 65_536)
            Issue.record("a frame over the limit was read")
        } catch {
            #expect(error.description.contains("70000 bytes, more than the 65536"))
        }
        // An encoding this collector does not know is not guessed at.
        do {
            _ = try EnvelopeCodec.unpack(json, encoding: 7)
            Issue.record("an unknown encoding was read")
        } catch {
            #expect(error.description.contains("envelope_encoding 7"))
        }
    }

    @Test func theStoreKeepsFramesAndGivesBackTheSignedBytes() async throws {
        let (collector, _) = try TestUnit.collector()
        let machine = try TestMachine(index: 1, hostname: "ws-01", assetID: "JSJ-01", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        var sent: [(sha: String, envelope: [UInt8])] = []
        for day in 1...3 {
            let report = machine.report(findings: machine.cleanFindings(at: TestUnit.day(day)), issuedAt: TestUnit.day(day))
            let envelope = try machine.envelope(report)
            _ = try machine.next(findings: report.findings, issuedAt: TestUnit.day(day))
            guard case .success = await collector.submit(envelope, source: "test", receivedAt: TestUnit.day(day)) else {
                Issue.record("report \(day) was not stored")
                return
            }
            sent.append((TestUnit.sha256(report.payloadBytes()), envelope))
        }
        let store = try collector.store
        let rows = try store.sqlite.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT payload_sha256, length(envelope) AS stored, envelope_encoding FROM reports ORDER BY id")
        }
        #expect(rows.count == 3)
        for (row, item) in zip(rows, sent) {
            #expect(row["payload_sha256"] as String == item.sha)
            #expect(row["envelope_encoding"] as Int64 == 1)
            // A clean audit's envelope is several times larger than its frame.
            #expect((row["stored"] as Int) * 3 < item.envelope.count)
            #expect(try await store.sqlite.envelope(hostID: machine.host.hostID, payloadSHA256: item.sha) == item.envelope)
        }
        // The console and the command line read the same bytes.
        let payload = try store.reportPayload(hostID: machine.host.hostID, epoch: 0, seq: 1)
        #expect(payload == (try Envelope.parse(sent[1].envelope).payload))

        // A frame damaged on disk: an error that names the report, not a report.
        let damagedSHA = sent[2].sha
        try await store.sqlite.writer.write { db in
            guard var frame = try Data.fetchOne(db, sql: "SELECT envelope FROM reports WHERE payload_sha256 = ?", arguments: [damagedSHA]) else { return }
            frame[frame.count / 2] ^= 0x01
            try db.execute(sql: "UPDATE reports SET envelope = ? WHERE payload_sha256 = ?", arguments: [frame, damagedSHA])
        }
        do {
            _ = try await store.sqlite.envelope(hostID: machine.host.hostID, payloadSHA256: sent[2].sha)
            Issue.record("a damaged frame was read")
        } catch {
            #expect(error.description.contains("sha256:\(sent[2].sha)"))
            #expect(error.description.contains("damaged"))
        }
    }

    @Test func envelopesStoredBeforeFramesAreReadAsTheyWere() async throws {
        // A store as the collector before frames left it: its envelopes as sent, then opened by this one.
        let directory = try TestSupport.temporaryDirectory("envelope-old").path
        let machine = try TestMachine(index: 2, hostname: "ws-02", assetID: "JSJ-02", classification: .confidential)
        let report = machine.report(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        let envelope = try machine.envelope(report)
        let sha = TestUnit.sha256(report.payloadBytes())
        do {
            let queue = try DatabaseQueue(path: directory + "/collector.sqlite")
            try SQLiteStore.migrator(refusalLimits: RefusalLogLimits()).migrate(queue, upTo: "v7-host-summaries")
            try await queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO reports (payload_sha256, host_id, keyid, epoch, seq, prev_sha256, issued_at, received_at, year, outcome, source, policy_sha256, fail_count, envelope)
                        VALUES (?, ?, ?, 0, 0, '', '2026-01-02T00:00:00Z', '2026-01-02T00:00:00Z', 2026, 'first', 'test', '', 0, ?)
                        """, arguments: [sha, machine.host.hostID, machine.key.keyid, Data(envelope)])
            }
        }
        let store = try CollectorStore(directory: directory)
        let encoding = try await store.sqlite.writer.read { db in try Int64.fetchOne(db, sql: "SELECT envelope_encoding FROM reports") }
        #expect(encoding == 0)
        #expect(try await store.sqlite.envelope(hostID: machine.host.hostID, payloadSHA256: sha) == envelope)
    }
}
