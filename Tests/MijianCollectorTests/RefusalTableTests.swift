import Foundation
import GRDB
import Logging
@testable import MijianCollector
import MijianCore
import MijianEvidence
import MijianTestSupport
import Testing

/// Refusals repeat what a client sent; the refusal log is written for anyone who reaches the port.
@Suite("Refusals: bounded text, counted rows, a bounded table", .serialized)
struct RefusalTableTests {
    /// 15 MiB of client text, as the attack used.
    static let huge = String(repeating: "A", count: 15 << 20)

    /// Envelopes whose keyid, payloadType or member name is `text`.
    static func hostileEnvelopes(_ text: String) -> [(what: String, bytes: [UInt8])] {
        let payload = Array("{}".utf8)
        let sig = [UInt8](repeating: 7, count: 64)
        let keyid = Envelope(payloadType: PayloadType.report, payload: payload, signatures: [Envelope.Signature(keyid: text, sig: sig)])
        let type = Envelope(payloadType: text, payload: payload, signatures: [Envelope.Signature(keyid: "sha256:00", sig: sig)])
        var member = Array("{\"".utf8)
        member += Array(text.utf8)
        member += Array("\":1,\"payloadType\":\"\(PayloadType.report)\",\"payload\":\"e30=\",\"signatures\":[]}".utf8)
        return [("keyid", keyid.serialized()), ("payloadType", type.serialized()), ("member name", member)]
    }

    @Test func fifteenMebibytesOfClientTextAreBoundedInTheAnswerTheStoreAndTheLog() async throws {
        let capture = LogCapture()
        let (collector, _) = try TestUnit.collector(logger: capture.logger)
        var limits = ServerLimits()
        limits.maxBodyBytes = 16 << 20
        let answers = try await LiveClient.with(collector, limits: limits) { client in
            var answers: [(String, Int, [UInt8])] = []
            for (what, bytes) in Self.hostileEnvelopes(Self.huge) {
                let (status, body) = try await client.request("/v1/reports", method: "POST", body: bytes)
                answers.append((what, status, body))
            }
            return answers
        }
        let bound = IngestRefusal.maxDetailBytes
        for (what, status, body) in answers {
            #expect((400..<500).contains(status), "\(what): status \(status)")
            #expect(body.count <= bound + 256, "\(what): the answer is \(body.count) bytes")
            let detail = (try? JSONParser().parse(body))?["detail"]?.stringValue ?? ""
            #expect(!detail.isEmpty && detail.utf8.count <= bound, "\(what): detail of \(detail.utf8.count) bytes")
            #expect(detail.contains("bytes left out"), "\(what): the detail does not say it was cut: \(detail.prefix(200))")
        }
        let rows = try collector.store.refusals()
        #expect(rows.reduce(0) { $0 + $1.count } == 3)
        for row in rows {
            #expect(row.detail.utf8.count <= bound, "\(row.reason): stored detail of \(row.detail.utf8.count) bytes")
            #expect(row.source.utf8.count <= CollectorStore.maxSourceBytes)
        }
        let refusedLines = capture.all.filter { $0.contains("report refused") }
        #expect(refusedLines.count == 3)
        for line in refusedLines { #expect(line.utf8.count <= bound + 512, "a log line of \(line.utf8.count) bytes") }
    }

    @Test func controlCharactersAndBidiOverridesAreEscapedEverywhere() async throws {
        let capture = LogCapture()
        let (collector, _) = try TestUnit.collector(logger: capture.logger)
        let forged = "x\u{1B}[2J\nNOTICE report accepted\u{202E}gpj.exe\u{7F}\u{85}"
        for (what, bytes) in Self.hostileEnvelopes(forged) {
            guard case .failure(let refusal) = await collector.submit(bytes, source: "http 192.0.2.9:4000\n\u{1B}[0m") else {
                Issue.record("\(what) was not refused")
                continue
            }
            let bad = refusal.detail.unicodeScalars.filter { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x202E }
            #expect(bad.isEmpty, "\(what): \(refusal.detail)")
            // The JSON parser refuses a raw control character in a member name before anyone echoes it.
            if what != "member name" { #expect(refusal.detail.contains("x\\u{1B}[2J\\u{A}NOTICE"), "\(what): \(refusal.detail)") }
        }
        for row in try collector.store.refusals() {
            #expect(!row.detail.unicodeScalars.contains { $0.value < 0x20 }, "stored: \(row.detail)")
            #expect(!row.source.unicodeScalars.contains { $0.value < 0x20 }, "stored source: \(row.source)")
        }
        for line in capture.all { #expect(!line.unicodeScalars.contains { $0.value < 0x20 && $0.value != 0x09 }, "log: \(line)") }
    }

    @Test func tenThousandRefusalsFromOneSourceMakeOneRow() async throws {
        let (collector, _) = try TestUnit.collector()
        let start = TestUnit.day(10)
        _ = await collector.submit(Array("not json".utf8), source: "http 203.0.113.1:1", receivedAt: start)
        for index in 0..<10_000 {
            // Each request on its own connection, so its own port, within the hour.
            _ = await collector.submit(Array("not json".utf8), source: "http 192.0.2.7:\(1024 + index)", receivedAt: start.addingTimeInterval(Double(index % 3000)))
        }
        let rows = try collector.store.refusals().filter { $0.address == "http 192.0.2.7" }
        #expect(rows.count == 1)
        #expect(rows.first?.count == 10_000)
        #expect(rows.first?.reason == "malformed")
        #expect(rows.first?.source == "http 192.0.2.7:1024")
        #expect(try collector.store.counts().log["refused/malformed"] == 10_001)
        #expect(collector.metrics.values["refused/malformed"] == 10_001)
        #expect(try collector.store.refusals().count == 2)
        // The next hour is a row of its own.
        _ = await collector.submit(Array("not json".utf8), source: "http 192.0.2.7:9", receivedAt: start.addingTimeInterval(3600))
        #expect(try collector.store.refusals().filter { $0.address == "http 192.0.2.7" }.count == 2)
    }

    @Test func aFloodFromOneAddressWritesAFewLogLinesNotOneARequest() async throws {
        let capture = LogCapture()
        let (collector, _) = try TestUnit.collector(logger: capture.logger)
        for index in 0..<1_000 {
            _ = await collector.submit(Array("not json".utf8), source: "http 192.0.2.11:\(2000 + index)", receivedAt: TestUnit.day(2))
        }
        _ = await collector.submit(Array("not json".utf8), source: "http 192.0.2.12:1", receivedAt: TestUnit.day(2))
        let lines = capture.all.filter { $0.contains("collector.source=http 192.0.2.11:") }
        // The first ten, then at 100 and 1,000, each saying how many it stands for.
        #expect(lines.count == 12)
        #expect(lines.last?.contains("collector.count=1000 from this address") == true, "\(lines.last ?? "")")
        #expect(capture.all.contains { $0.contains("collector.source=http 192.0.2.12:1") })
        #expect(collector.metrics.values["refused/malformed"] == 1_001)
        #expect(RefusalLogLimits.logs(nil) && RefusalLogLimits.logs(10) && !RefusalLogLimits.logs(11) && RefusalLogLimits.logs(10_000) && !RefusalLogLimits.logs(Int64.max))
    }

    @Test func aRefusalTheStoreCannotRecordStandsAndIsCountedAndSaid() async throws {
        let capture = LogCapture()
        let (collector, _) = try TestUnit.collector(logger: capture.logger)
        let store = try #require(collector.sqlite)
        // The refusal table gone: every write of a refusal fails, as on a disk that cannot take one more page.
        try await store.pool.write { db in try db.execute(sql: "DROP TABLE refusals") }
        for index in 0..<12 {
            let result = await collector.submit(Array("not json".utf8), source: "http 192.0.2.21:\(3000 + index)", receivedAt: TestUnit.day(2))
            guard case .failure(let refusal) = result else {
                Issue.record("a malformed envelope was accepted")
                continue
            }
            // Still the refusal the envelope earned, not a server error: nothing of it was stored.
            #expect(refusal.code == .malformed, "\(refusal)")
        }
        #expect(collector.metrics.values["refused/malformed"] == 12)
        #expect(collector.metrics.values[CollectorMetrics.unrecordedRefusals] == 12)
        let missing = capture.all.filter { $0.contains("refusal not recorded in the store") }
        // The first ten, then none until the hundredth; each names the store's error.
        #expect(missing.count == 10, "\(missing)")
        #expect(missing.allSatisfy { $0.contains("record a refusal") && $0.contains("refusals") }, "\(missing.first ?? "")")
        #expect(capture.all.filter { $0.contains("report refused") }.count == 12)
    }

    @Test func theWritersOwnCopyComesSoonerOnASmallDisk() {
        #expect(SQLiteStore.writerPages(freeBytes: nil) == Checkpointer.writerPages)
        #expect(SQLiteStore.writerPages(freeBytes: 100 << 30) == Checkpointer.writerPages)
        #expect(SQLiteStore.writerPages(freeBytes: 16 << 20) == 1_024)
        #expect(SQLiteStore.writerPages(freeBytes: 64 << 20) == 4_000)
        #expect(SQLiteStore.writerPages(freeBytes: 0) == 256)
        #expect(SQLiteStore.writerPages(freeBytes: -1) == Checkpointer.writerPages)
    }

    @Test func addressesAreCountedWithoutTheirPort() {
        #expect(CollectorStore.refusalAddress("http 192.0.2.7:51234") == "http 192.0.2.7")
        #expect(CollectorStore.refusalAddress("http [2001:db8:0:7::1]:443") == "http [2001:db8:0:7::]/64")
        #expect(CollectorStore.refusalAddress("http [2001:db8:0:7:ffff:1:2:3]:443") == "http [2001:db8:0:7::]/64")
        #expect(CollectorStore.refusalAddress("http [::1]:5") == "http [::]/64")
        #expect(CollectorStore.refusalAddress("http [::ffff:192.0.2.7]:5") == "http 192.0.2.7")
        #expect(CollectorStore.refusalAddress("http [not an address]:5") == "http [not an address]")
        #expect(CollectorStore.refusalAddress("file:/srv/in/a:1") == "file:/srv/in/a:1")
        #expect(CollectorStore.refusalAddress("http unknown") == "http unknown")
        #expect(CollectorStore.refusalAddress("test") == "test")
    }

    @Test func anEnrolledMachinesReportStoresAfterAFloodOfRefusals() async throws {
        // A data disk of 16 MiB: the flood below, one row a refusal, fills it many times over.
        let mount = try TestSupport.temporaryDirectory("collector-tmpfs")
        let mounted = try TestSupport.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mount.path])
        try #require(mounted.status == 0, "mount: \(mounted.stderr)")
        defer { _ = try? TestSupport.run("/usr/bin/umount", [mount.path]) }
        var refusalLimits = RefusalLogLimits()
        refusalLimits.maxRows = 500
        let store = try CollectorStore(directory: mount.path, refusalLimits: refusalLimits)
        // The writer copies the log itself before it could fill the disk: a quarter of 16 MiB.
        let threshold = try await store.sqlite.writer.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") }
        #expect(threshold.map { $0 <= 1_024 && $0 >= 256 } == true, "wal_autocheckpoint \(threshold.map(String.init) ?? "?")")
        let collector = Collector(store: store, verifier: EvidenceSubmissionVerifier(store: store), logger: TestUnit.logger)
        let machine = try TestMachine(index: 21, hostname: "ws-21", assetID: "JSJ-21", classification: .confidential)
        try TestUnit.enrol([machine], into: collector)
        // 6,000 addresses, each with a detail as long as a client can make it.
        let long = String(repeating: "k", count: 64 << 10)
        for index in 0..<6_000 {
            let source = "http 10.\(index / 65_536).\(index / 256 % 256).\(index % 256):40000"
            await collector.refuse(IngestRefusal(.unknownKey, detail: "no enrolled key has keyid \(long)"), receivedAt: TestUnit.day(1), source: source)
        }
        let rows = try store.refusals(limit: 10_000)
        #expect(rows.count == 500)
        let drops = try store.refusalDrops()
        #expect(drops.windows == 5_500)
        #expect(drops.requests == 5_500)
        #expect(try store.counts().log["refused/unknown-key"] == 500)
        // The oldest windows went: the newest addresses are kept.
        #expect(rows.contains { $0.address == "http 10.0.23.111" })
        let report = try machine.next(findings: machine.cleanFindings(at: TestUnit.day(1)), issuedAt: TestUnit.day(1))
        switch await collector.submit(report, source: "http 192.0.2.50:5000", receivedAt: TestUnit.day(1)) {
        case .success(let result): #expect(result.outcome == .first)
        case .failure(let refusal): Issue.record("the enrolled machine's report was refused: \(refusal)")
        }
        #expect(try store.hosts().map(\.hostname) == ["ws-21"])
    }

    @Test func refusalsLoggedOneRowEachBeforeAreMovedIntoTheCountedTable() throws {
        // A database as the previous version left it: one ingest_log row per refusal.
        let directory = try TestSupport.temporaryDirectory("collector-migrate").path
        let sqlite = FilePathText.join(directory, "collector.sqlite")
        _ = try CollectorStore(directory: directory)
        var statements = ["DROP TABLE refusals", "DROP TABLE refusal_drops", "DELETE FROM grdb_migrations WHERE identifier = 'v3-refusals'"]
        for index in 0..<300 {
            statements.append(
                "INSERT INTO ingest_log (received_at, source, outcome, reason, detail) VALUES ('2026-03-01T10:\(String(format: "%02d", index % 60)):00Z', 'http 192.0.2.8:\(index)', 'refused', 'bad-signature', '\(String(repeating: "z", count: 9000))')")
        }
        statements.append("INSERT INTO ingest_log (received_at, source, host_id, outcome, detail) VALUES ('2026-03-01T10:00:00Z', 'http 192.0.2.9:1', 'h', 'duplicate', 'already stored')")
        let queue = try DatabaseQueue(path: sqlite)
        try queue.write { db in try db.execute(sql: statements.joined(separator: ";\n")) }
        try queue.close()
        let store = try CollectorStore(directory: directory)
        let rows = try store.refusals()
        #expect(rows.count == 1)
        #expect(rows.first?.count == 300)
        #expect(rows.first?.address == "http 192.0.2.8")
        #expect((rows.first?.detail.utf8.count ?? .max) <= IngestRefusal.maxDetailBytes)
        let counts = try store.counts().log
        #expect(counts["refused/bad-signature"] == 300)
        #expect(counts["duplicate"] == 1)
    }

    @Test func untrustedTextKeepsItsEndsAndSaysWhatWasLeftOut() {
        let text = "payloadType is \"" + String(repeating: "é", count: 100_000) + "\", not \"x\""
        let bounded = UntrustedText.bounded(text)
        #expect(bounded.utf8.count <= UntrustedText.maxDetailBytes)
        #expect(bounded.hasPrefix("payloadType is \"éé"))
        #expect(bounded.hasSuffix("éé\", not \"x\""))
        #expect(bounded.contains("bytes left out"))
        // What fits is left as it is, but for escapes.
        #expect(UntrustedText.bounded("key sha256:ab is not enrolled") == "key sha256:ab is not enrolled")
        #expect(UntrustedText.bounded("a\\b\u{0}") == "a\\b\\u{0}")
        // Bounded twice, as a verification failure and again as a refusal: the same text.
        let once = UntrustedText.bounded("x\u{1B}y" + String(repeating: "q", count: 5000))
        #expect(UntrustedText.bounded(once) == once)
        #expect(UntrustedText.bounded(String(repeating: "\u{1}", count: 10_000)).utf8.count <= UntrustedText.maxDetailBytes)
    }
}
