import Foundation
import Logging
import MijianCore
import MijianEvidence
import Synchronization

/// Checks an envelope's signature against the registry and returns the verified report.
public protocol SubmissionVerifier: Sendable {
    /// Verifies before parsing, parses only the verified bytes; throws a refusal with its reason.
    func verify(_ envelope: [UInt8]) async throws(IngestRefusal) -> VerifiedSubmission
}

/// Counters for `/metrics`: outcomes and refusal reasons since the process started.
public final class CollectorMetrics: Sendable {
    private let counters = Mutex<[String: Int]>([:])

    /// Makes empty counters.
    public init() {}

    /// Counts one chain outcome.
    public func count(outcome: ChainOutcome) { counters.withLock { $0["outcome/\(outcome.rawValue)", default: 0] += 1 } }

    /// Counts one refusal.
    public func count(refusal reason: String) { counters.withLock { $0["refused/\(reason)", default: 0] += 1 } }

    /// Counts one refusal whose row could not be written to the store; the count so far.
    @discardableResult
    public func countUnrecordedRefusal() -> Int { counters.withLock { $0[Self.unrecordedRefusals, default: 0] += 1; return $0[Self.unrecordedRefusals] ?? 0 } }

    /// The counter of refusals the store could not record.
    public static let unrecordedRefusals = "unrecorded/refusal"

    /// A copy of every counter.
    public var values: [String: Int] { counters.withLock { $0 } }
}

/// One file's fate in `mijian-collector ingest`.
public struct FileIngestLine: Sendable, Equatable {
    /// The file.
    public var path: String
    /// The outcome or refusal reason.
    public var outcome: String
    /// One sentence.
    public var detail: String
}

/// Ingest: verification, the chain check and storage, shared by the HTTP server and file ingest.
public final class Collector: Sendable {
    /// The storage every request goes through: the ingest ledger, the registry, the queries.
    public let storage: any CollectorStorage
    /// The SQLite store's synchronous face, for the console; nil over another backend.
    public let sqlite: CollectorStore?
    /// The signature check.
    public let verifier: any SubmissionVerifier
    /// Counters for `/metrics`.
    public let metrics: CollectorMetrics
    /// Largest envelope accepted, in bytes.
    public let maxEnvelopeBytes: Int
    private let logger: Logger

    /// Makes a collector over the SQLite store and a verifier.
    public convenience init(store: CollectorStore, verifier: any SubmissionVerifier, maxEnvelopeBytes: Int = 16 << 20, logger: Logger) {
        self.init(storage: store.sqlite, sqlite: store, verifier: verifier, maxEnvelopeBytes: maxEnvelopeBytes, logger: logger)
    }

    /// Makes a collector over any backend (a SQLite one gets its synchronous face for the console).
    public convenience init(storage: any CollectorStorage, verifier: any SubmissionVerifier, maxEnvelopeBytes: Int = 16 << 20, logger: Logger) {
        let sqlite = (storage as? SQLiteStore).map(CollectorStore.init(sqlite:))
        self.init(storage: storage, sqlite: sqlite, verifier: verifier, maxEnvelopeBytes: maxEnvelopeBytes, logger: logger)
    }

    private init(storage: any CollectorStorage, sqlite: CollectorStore?, verifier: any SubmissionVerifier, maxEnvelopeBytes: Int, logger: Logger) {
        self.sqlite = sqlite
        self.storage = storage
        self.verifier = verifier
        self.metrics = CollectorMetrics()
        self.maxEnvelopeBytes = maxEnvelopeBytes
        self.logger = logger
    }

    /// Verifies and stores one envelope received over HTTP.
    public func submit(_ envelope: [UInt8], source: String, receivedAt: Date = Date()) async -> Result<IngestResult, IngestRefusal> {
        let source = CollectorStore.boundedSource(source)
        let verified: VerifiedSubmission
        do {
            verified = try await verify(envelope)
        } catch {
            return .failure(await refuse(error, receivedAt: receivedAt, source: source))
        }
        do {
            return finish(try await storage.record(IngestSubmission(verified, envelope: envelope, receivedAt: receivedAt, source: source)), source: source)
        } catch {
            logger.error("cannot store a report", metadata: ["collector.error": "\(error)", "collector.source": "\(source)"])
            metrics.count(refusal: "internal")
            return .failure(IngestRefusal(.internal, detail: "the report could not be stored; it was not accepted, send it again"))
        }
    }

    private func verify(_ envelope: [UInt8]) async throws(IngestRefusal) -> VerifiedSubmission {
        guard envelope.count <= maxEnvelopeBytes else {
            throw IngestRefusal(.tooLarge, detail: "\(envelope.count) bytes exceeds the limit of \(maxEnvelopeBytes)")
        }
        return try await verifier.verify(envelope)
    }

    /// Counts, records and logs a submission refused before the chain check (the log line names
    /// the source: the client's address or the file); returns the refusal. The refusal's text was
    /// bounded when it was made, the source is bounded here: nothing a client sent reaches the
    /// log, the store or the answer unbounded.
    @discardableResult
    public func refuse(_ refusal: IngestRefusal, receivedAt: Date, source: String) async -> IngestRefusal {
        let source = CollectorStore.boundedSource(source)
        metrics.count(refusal: refusal.reason)
        let count: Int64?
        do {
            count = try await storage.logRefusal(refusal, receivedAt: receivedAt, source: source)
        } catch {
            // The refusal stands (nothing was stored); what is lost is its row in the refusal
            // table: counted in /metrics, and said in the journal (throttled as refusals are).
            count = nil
            let unrecorded = metrics.countUnrecordedRefusal()
            if RefusalLogLimits.logs(Int64(unrecorded)) {
                logger.error("refusal not recorded in the store", metadata: [
                    "collector.error": "\(error)", "collector.reason": "\(refusal.reason)", "collector.source": "\(source)",
                    "collector.count": "\(unrecorded) refusal(s) not recorded since the start, logged again at each power of ten",
                ])
            }
        }
        logRefused(refusal, count: count, source: source)
        return refusal
    }

    /// The one path every "report refused" line goes through, whether the refusal was decided
    /// before the chain check or inside the store: throttled by the count of its row in the
    /// refusal table (see `RefusalLogLimits.logs`), so re-posting any refused envelope writes a
    /// few lines per address and reason each window, not one per request.
    private func logRefused(_ refusal: IngestRefusal, count: Int64?, source: String) {
        guard RefusalLogLimits.logs(count) else { return }
        var metadata: Logger.Metadata = ["collector.reason": "\(refusal.reason)", "collector.detail": "\(refusal.detail)", "collector.source": "\(source)"]
        if let count, count >= 10 {
            // From the tenth on, a line stands for all of its window so far; the next comes at the next power of ten.
            metadata["collector.count"] = "\(count) from this address for this reason in this window, logged again at each power of ten"
        }
        logger.notice("report refused", metadata: metadata)
    }

    private func finish(_ result: Result<IngestResult, IngestRefusal>, source: String) -> Result<IngestResult, IngestRefusal> {
        let source = CollectorStore.boundedSource(source)
        switch result {
        case .success(let outcome):
            metrics.count(outcome: outcome.outcome)
            // A replay can be sent again by anyone holding the envelope: its lines are throttled by
            // the count of its row in the repeat table, as refusals are. A fork or a gap is new
            // signed content and always logged.
            let repeatLogged = outcome.outcome != .replay || RefusalLogLimits.logs(outcome.repeatCount)
            if outcome.outcome == .fork || outcome.missing != nil || (outcome.outcome == .replay && repeatLogged) {
                var metadata: Logger.Metadata = [
                    "collector.host": "\(outcome.hostID)", "collector.seq": "\(outcome.epoch)/\(outcome.seq)", "collector.detail": "\(outcome.detail)",
                    "collector.source": "\(source)",
                ]
                if let count = outcome.repeatCount, count >= 10 {
                    metadata["collector.count"] = "\(count) times this report in this window, logged again at each power of ten"
                }
                logger.warning("chain \(outcome.outcome.rawValue)", metadata: metadata)
            }
            if let skew = outcome.clockSkew {
                logger.warning("clock skew", metadata: [
                    "collector.host": "\(outcome.hostID)", "collector.seq": "\(outcome.epoch)/\(outcome.seq)",
                    "collector.detail": "\(ClockSkew.describe(skew.kind, seconds: skew.seconds))", "collector.source": "\(source)",
                ])
            }
        case .failure(let refusal):
            metrics.count(refusal: refusal.reason)
            logRefused(refusal, count: refusal.windowCount, source: source)
        }
        return result
    }

    /// Ingests envelope files and directories of them (air-gapped transfer). Every file is
    /// verified first; the verified reports of each host are then applied in chain order, so a
    /// directory copied in any order is stored as the chain it is.
    public func ingest(paths: [String], receivedAt: Date = Date()) async throws(MijianError) -> [FileIngestLine] {
        var files: [String] = []
        for path in paths { try Self.expand(path, into: &files, depth: 0) }
        var lines: [FileIngestLine] = []
        var verified: [(path: String, envelope: [UInt8], submission: VerifiedSubmission)] = []
        for file in files {
            let bytes: [UInt8]
            do {
                bytes = try readLimited(file)
            } catch {
                lines.append(FileIngestLine(path: file, outcome: "unreadable", detail: error.description))
                continue
            }
            do {
                verified.append((file, bytes, try await verify(bytes)))
            } catch {
                _ = await refuse(error, receivedAt: receivedAt, source: "file:\(file)")
                lines.append(FileIngestLine(path: file, outcome: error.reason, detail: error.detail))
            }
        }
        verified.sort {
            let a = $0.submission.report
            let b = $1.submission.report
            return (a.host.hostID, a.epoch, a.seq, $0.path) < (b.host.hostID, b.epoch, b.seq, $1.path)
        }
        for item in verified {
            let source = "file:\(item.path)"
            let outcome: Result<IngestResult, IngestRefusal>
            do {
                outcome = try await storage.record(IngestSubmission(item.submission, envelope: item.envelope, receivedAt: receivedAt, source: source))
            } catch {
                throw error.mijianError
            }
            switch finish(outcome, source: source) {
            case .success(let result): lines.append(FileIngestLine(path: item.path, outcome: result.outcome.rawValue, detail: "\(result.payloadSHA256) \(result.detail)"))
            case .failure(let refusal): lines.append(FileIngestLine(path: item.path, outcome: refusal.reason, detail: refusal.detail))
            }
        }
        return lines
    }

    private func readLimited(_ path: String) throws(MijianError) -> [UInt8] {
        try EvidenceFiles.read(path, limit: maxEnvelopeBytes)
    }

    private static func expand(_ path: String, into files: inout [String], depth: Int) throws(MijianError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw MijianError(.notFound, "no such file or directory", path: path)
        }
        guard isDirectory.boolValue else {
            files.append(path)
            return
        }
        guard depth < 8 else { throw MijianError(.usage, "directories nest deeper than 8 levels", path: path) }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw MijianError(.io, "cannot list the directory: \(error.localizedDescription)", path: path)
        }
        for name in names.sorted() where !name.hasPrefix(".") {
            try expand(FilePathText.join(path, name), into: &files, depth: depth + 1)
        }
    }
}
