import ArgumentParser
import Foundation
import MijianCore
import MijianEvidence

/// `mijian verify`: check signed reports and enrolment requests carried as files.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify signed reports and enrolment requests; print host, seq, time and summary per file.",
        discussion: "Exit status: 0 every file verified, 1 at least one did not (the reason is printed per file), 2 usage error."
    )

    @Argument(help: ArgumentHelp("Envelope files to verify.", valueName: "FILE"))
    var files: [String] = []

    @Option(name: .long, help: ArgumentHelp("Verify with this public key (PEM).", valueName: "PUB.pem"))
    var key: String?

    @Option(name: .long, help: ArgumentHelp("Verify with the keys of this registry (a JSON file or a directory of them).", valueName: "REGISTRY"))
    var registry: String?

    @Option(name: .long, help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Option(name: .customLong("max-bytes"), help: ArgumentHelp("Refuse files larger than this many bytes.", valueName: "N"))
    var maxBytes: Int = 16 << 20

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one FILE to verify") }
        guard (key == nil) != (registry == nil) else { throw ValidationError("give exactly one of --key PUB.pem or --registry REGISTRY") }
        guard maxBytes > 0 else { throw ValidationError("--max-bytes must be positive") }
    }

    func run() async throws {
        let lookup: any KeyLookup
        if let key {
            let text = String(decoding: try EvidenceFiles.read(key, limit: 64 << 10), as: UTF8.self)
            do {
                lookup = try VerifyingKey(pem: text)
            } catch {
                throw MijianError(error.code, "\(key): \(error.message)", path: key)
            }
        } else if let registry {
            lookup = try KeyRegistry.load(from: registry)
        } else {
            throw ValidationError("give exactly one of --key PUB.pem or --registry REGISTRY")
        }
        let outcomes = VerifyRun.verify(files: files, with: EnvelopeVerifier(keys: lookup, maxBytes: maxBytes))
        switch format {
        case .text: try Console.out(VerifyRun.text(outcomes))
        case .json: try Console.out(bytes: VerifyRun.json(outcomes).prettySerialized())
        }
        if outcomes.contains(where: { if case .failure = $0.result { return true } else { return false } }) { throw ExitCode(1) }
    }
}

/// Verification of files and its two renderings.
enum VerifyRun {
    /// One file's outcome.
    struct Outcome {
        var file: String
        var result: Result<VerifiedEnvelope, VerificationFailure>
    }

    /// Verifies each file on its own; one bad file never stops the others.
    static func verify(files: [String], with verifier: EnvelopeVerifier) -> [Outcome] {
        var outcomes: [Outcome] = []
        for file in files {
            do {
                outcomes.append(Outcome(file: file, result: .success(try verifier.verifyFile(at: file))))
            } catch {
                outcomes.append(Outcome(file: file, result: .failure(error)))
            }
        }
        return outcomes
    }

    /// `FILE: ok: …` or `FILE: reason: detail`, one line per file.
    static func text(_ outcomes: [Outcome]) -> String {
        var lines: [String] = []
        for outcome in outcomes {
            switch outcome.result {
            case .failure(let failure):
                lines.append("\(outcome.file): \(failure.reason.rawValue): \(failure.detail)")
            case .success(.report(let verified)):
                let report = verified.report
                let counts = report.summary.filter { $0.1 > 0 }.map { "\($0.1) \($0.0.rawValue)" }.joined(separator: ", ")
                let verdict = report.isCompliant ? "no rule failed" : "NOT COMPLIANT"
                lines.append(
                    "\(outcome.file): ok: report from \(hostLabel(report.host)) epoch \(report.epoch) seq \(report.seq), "
                        + "issued \(RFC3339.string(from: report.issuedAt)), key \(verified.keyid); "
                        + "summary: \(counts.isEmpty ? "no findings" : counts) — \(verdict)")
            case .success(.enrolment(let verified)):
                let request = verified.request
                var line = "\(outcome.file): ok: enrolment request for \(request.keyid) from \(hostLabel(request.host)), "
                    + "agent \(request.agentVersion), requested \(RFC3339.string(from: request.requestedAt))"
                if let previous = request.previousKeyID {
                    line += ", rotating from \(previous) (signed by both keys)"
                } else {
                    line += " (self-signed: compare the keyid with `mijian keys show` on the machine before approving)"
                }
                lines.append(line)
            }
        }
        let failed = outcomes.count(where: { if case .failure = $0.result { return true } else { return false } })
        lines.append("\(outcomes.count - failed) verified, \(failed) failed")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `{"results": […], "verified": n, "failed": m}`.
    static func json(_ outcomes: [Outcome]) -> JSONValue {
        var results: [JSONValue] = []
        for outcome in outcomes {
            switch outcome.result {
            case .failure(let failure):
                results.append(["file": .string(outcome.file), "ok": false, "reason": .string(failure.reason.rawValue), "detail": .string(failure.detail)])
            case .success(.report(let verified)):
                let report = verified.report
                results.append([
                    "file": .string(outcome.file), "ok": true, "type": "report", "keyid": .string(verified.keyid),
                    "payload_sha256": .string(verified.payloadSHA256), "report_id": .string(report.reportID.uuidString.lowercased()),
                    "host": report.host.json, "epoch": .int(report.epoch), "seq": .int(report.seq), "prev_sha256": .string(report.prevSHA256),
                    "issued_at": .string(RFC3339.string(from: report.issuedAt)),
                    "summary": .object(report.summary.map { ($0.0.rawValue, .int(Int64($0.1))) }), "compliant": .bool(report.isCompliant),
                ])
            case .success(.enrolment(let verified)):
                let request = verified.request
                results.append([
                    "file": .string(outcome.file), "ok": true, "type": "enrolment", "keyid": .string(request.keyid),
                    "payload_sha256": .string(verified.payloadSHA256), "host": request.host.json,
                    "agent_version": .string(request.agentVersion), "requested_at": .string(RFC3339.string(from: request.requestedAt)),
                    "previous_keyid": .optional(request.previousKeyID), "public_key_pem": .string(request.publicKeyPEM),
                ])
            }
        }
        let failed = outcomes.count(where: { if case .failure = $0.result { return true } else { return false } })
        return ["results": .array(results), "verified": .integer(outcomes.count - failed), "failed": .integer(failed)]
    }

    private static func hostLabel(_ host: HostInfo) -> String {
        var label = host.hostname.isEmpty ? "(unnamed host)" : host.hostname
        if let asset = host.assetID { label += " [\(asset)]" }
        return label + " (host_id \(host.hostID.prefix(16))…)"
    }
}
