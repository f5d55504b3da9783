#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import MijianChecks
import MijianCore
import MijianHost
import MijianScan

/// `mijian scan`: documents with a classified marking (七.8), judged by `data.markings`.
struct ScanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Find documents with a classified marking (绝密/机密/秘密★period) in the policy's scope or in PATHs.",
        discussion: """
            Reads only where a marking can be (the first page, page headers) of text (UTF-8, GB18030), HTML, XML, \
            Markdown, OOXML, OpenDocument, OFD, WPS, Word 97 and PDF files (poppler: the mijian-pdftext worker, else \
            pdftotext), inside zip, tar and gzip archives, and mail (.eml, Maildir, mbox: the Subject, the body's first \
            lines, each attachment by its format). Exit status: 0 no marking where the policy forbids one, 1 a marked document on an unclassified \
            computer, 3 none found but a file or path could not be read, 2 usage or runtime error.
            """
    )

    @Argument(help: ArgumentHelp("Files or directories to scan (default: the policy's markings.paths).", valueName: "PATH"))
    var paths: [String] = []

    @Option(name: .long, help: ArgumentHelp("Read files under DIR instead of /; a symbolic link out of DIR is refused.", valueName: "DIR"))
    var root: String?

    @Option(name: .long, help: ArgumentHelp("Policy YAML (default: the built-in classified-workstation policy).", valueName: "FILE"))
    var policy: String?

    @Option(name: .long, help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Option(name: .long, help: ArgumentHelp("Write the report to FILE (replaced atomically; a FIFO or a device such as /dev/null is written in place) instead of standard output.", valueName: "FILE"))
    var output: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Where the index of scanned files is kept (default: the policy's state_dir, else /var/lib/mijian).", valueName: "DIR"))
    var stateDir: String?

    @Flag(name: .customLong("no-index"), help: "Read every file, and keep no index.")
    var noIndex = false

    func validate() throws {
        for path in paths where path.isEmpty { throw ValidationError("an empty PATH names nothing") }
        if let root {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--root \(root): no such directory")
            }
        }
    }

    func run() async throws {
        let (policy, _) = try AuditRun.loadPolicy(self.policy)
        let rootPath = root ?? "/"
        let hostRoot = HostRoot(path: rootPath)
        try hostRoot.check()
        let started = Date()
        let typed = paths.isEmpty ? nil : paths.map { ScanPaths.hostPath($0, live: root == nil) }
        var facts = MarkingProbe.observe(root: hostRoot.path, policy: policy, paths: typed, stateDir: noIndex ? nil : stateDir ?? policy.stateDir ?? "/var/lib/mijian")
        // A tree that is no machine (a directory of documents given as --root) has no identity:
        // the finding's uid then names no host, and the scan is still reported.
        let host = try? HostProbe.hostInfo(root: hostRoot, identity: (try? AuditRun.loadIdentity(nil, root: hostRoot)) ?? HostIdentity())
        if host == nil { facts.notes.append("\(hostRoot.path) holds no machine identity (etc/machine-id): the finding names no host") }
        let context = CheckContext(policy: policy, hostID: host?.hostID ?? "", observedAt: started, classification: host?.classification)
        let finding = MarkingChecks.evaluate(facts, context: context)
        let report = ScanReport(facts: facts, policy: policy.info, startedAt: started, finishedAt: Date(), finding: finding)
        let bytes: [UInt8] = format == .json ? report.json.prettySerialized() : Array(ScanText.render(report).utf8)
        if let output { try AtomicFile.writeOutput(bytes, to: output) } else { try Console.out(bytes: bytes) }
        switch finding.status {
        case .fail: throw ExitCode(1)
        case .error: throw ExitCode(3)
        default: return
        }
    }
}

/// Paths as the user typed them, made host paths.
enum ScanPaths {
    /// On the live machine a relative path is taken from the working directory; under `--root` from the root's `/`.
    static func hostPath(_ path: String, live: Bool) -> String {
        if path.hasPrefix("/") || !live { return "/" + path.split(separator: "/").joined(separator: "/") }
        let base = FileManager.default.currentDirectoryPath
        return (base == "/" ? "" : base) + "/" + path
    }
}

/// The scan as a person reads it: marked documents, then mentions, unread files, paths not walked, totals, the verdict.
enum ScanText {
    static func render(_ report: ScanReport) -> String {
        var lines: [String] = []
        let facts = report.facts
        lines.append("Mijian scan of \(facts.paths.joined(separator: ", "))\(facts.root == "/" ? "" : " under \(facts.root)")")
        lines.append("policy \(report.policy.id) \(report.policy.version), \(RFC3339.string(from: report.startedAt))")
        lines.append("")
        for file in facts.files where file.status == .marked || file.status == .mentioned {
            for hit in file.hits {
                let place = "\(hit.location.part) page \(hit.location.page) line \(hit.location.line)\(hit.location.region == .body ? "" : " (\(hit.location.region.rawValue))")"
                lines.append("\(hit.kind == .marking ? "MARKING" : "mention")  \(file.path)  [\(file.format.rawValue)]  \(hit.text)  at \(place), score \(hit.score): \(hit.reason)")
            }
        }
        for file in facts.files where file.status == .unread {
            lines.append("UNREAD   \(file.path)  [\(file.format.rawValue)]  \(file.reason ?? "")")
        }
        for error in facts.errors { lines.append("NOT WALKED  \(error.path): \(error.reason)") }
        for note in facts.notes { lines.append("NOTE: \(note)") }
        let totals = facts.totals
        lines.append("")
        lines.append(
            "\(totals.files) documents: \(totals.marked) marked, \(totals.mentioned) with mentions, \(totals.clean) clean, \(totals.unread) unread; "
                + "\(totals.notDocuments) other files, \(totals.excluded) excluded, \(totals.fromIndex) from the index; \(totals.bytesRead) bytes read of \(totals.bytesExamined)")
        if let finding = report.finding { lines.append("\(finding.rule.id) (\(finding.rule.itemsText)): \(finding.status.rawValue): \(finding.statusDetail)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
