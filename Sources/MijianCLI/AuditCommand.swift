import ArgumentParser
import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianEvidence
import MijianHost

/// Output formats of reports.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `mijian audit`: one-shot check of this machine or of a mounted disk.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check this machine (or a mounted disk with --root) against the policy.",
        discussion: """
            Exit status: 0 every rule run was judged and none failed, 1 a rule failed, 3 no rule failed but at least one \
            could not look (error; the report is still written), 2 usage or runtime error (no report).
            """
    )

    @OptionGroup var common: AuditOptions

    func run() async throws {
        if common.sign { return try SignedAudit.run(common) }
        let outcome = try AuditRun.perform(common)
        try AuditRun.emit(outcome.report, format: common.format, output: common.output)
        let status = AuditRun.exitStatus(of: outcome.report)
        if status != 0 { throw ExitCode(status) }
    }
}

/// Options shared by every command that audits.
struct AuditOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Read host files under DIR instead of /; live kernel sources are replaced by their proc-file fallbacks.", valueName: "DIR"))
    var root: String?

    @Option(name: .long, help: ArgumentHelp("Policy YAML (default: the built-in classified-workstation policy).", valueName: "FILE"))
    var policy: String?

    @Option(name: .customLong("host-file"), help: ArgumentHelp("Host identity YAML (default: /etc/mijian/host.yaml when present).", valueName: "FILE"))
    var hostFile: String?

    @Option(name: .long, help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Option(name: .customLong("rule"), help: ArgumentHelp("Run only this rule (repeatable); only the sources it reads are observed.", valueName: "ID"))
    var rules: [String] = []

    @Option(name: .long, help: ArgumentHelp("Write the report to FILE (replaced atomically; a FIFO or a device such as /dev/null is written in place) instead of standard output.", valueName: "FILE"))
    var output: String?

    @Flag(name: .long, help: "Write the report as a signed DSSE envelope, the next link of this machine's chain.")
    var sign = false

    @Option(name: .customLong("key-dir"), help: ArgumentHelp("Key and chain directory for --sign (default: the policy's state_dir, else /var/lib/mijian).", valueName: "DIR"))
    var keyDir: String?

    func validate() throws {
        let known = Set(RuleCatalogue.auditRules.map(\.id))
        for rule in rules where !known.contains(rule) {
            throw ValidationError("unknown rule '\(rule)'; audit rules are: \(RuleCatalogue.auditRules.map(\.id).joined(separator: ", "))")
        }
        if let root {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--root \(root): no such directory")
            }
        }
    }
}

/// The audit pipeline shared by `audit` and the signing commands: load, observe, evaluate.
enum AuditRun {
    /// The exit status of an audit whose report was written: 1 when a rule failed (an `error`
    /// elsewhere never hides a fail), 3 when none failed but a rule could not look (`error`), 0
    /// only when every rule run was judged and none failed. A script that checks `$?` must not
    /// take a machine whose sources could not be read for a clean one.
    static func exitStatus(of report: Report) -> Int32 {
        if !report.isCompliant { return 1 }
        return report.findings.contains { $0.status == .error } ? 3 : 0
    }

    struct Outcome {
        var report: Report
        var policy: Policy
        var policyBytes: [UInt8]
        /// The fact groups the report's facts came from.
        var collected: Set<FactSet>
    }

    /// Loads the policy (file or embedded) and its bytes.
    static func loadPolicy(_ path: String?) throws(MijianError) -> (Policy, [UInt8]) {
        if let path {
            let bytes: [UInt8]
            do {
                bytes = try EvidenceFiles.read(path, limit: 1 << 20)
            } catch {
                throw MijianError(error.code, "cannot read policy \(path)\(error.errno == nil ? ": " + error.message : "")", path: path, errno: error.errno)
            }
            return (try Policy.parse(bytes, file: path), bytes)
        }
        let bytes = Array(EmbeddedPolicies.classifiedWorkstation.utf8)
        return (try Policy.parse(bytes, file: "(built-in) classified-workstation.yaml"), bytes)
    }

    /// Loads the host identity: the given file, or `/etc/mijian/host.yaml` under the root when present.
    static func loadIdentity(_ path: String?, root: HostRoot) throws(MijianError) -> HostIdentity {
        if let path {
            let bytes: [UInt8]
            do {
                bytes = try EvidenceFiles.read(path, limit: 1 << 20)
            } catch {
                throw MijianError(error.code, "cannot read host file \(path)\(error.errno == nil ? ": " + error.message : "")", path: path, errno: error.errno)
            }
            return try HostIdentity.parse(bytes, file: path)
        }
        guard let text = try root.readTextIfPresent("/etc/mijian/host.yaml", limit: 1 << 20) else { return HostIdentity() }
        return try HostIdentity.parse(Array(text.utf8), file: root.real("/etc/mijian/host.yaml"))
    }

    /// Observes and evaluates; the report is unsigned (seq 0, no chain). `loaded` is the policy
    /// and its bytes when the caller has read them already (`--sign` reads them to find the keys).
    static func perform(
        _ options: AuditOptions, loaded: (Policy, [UInt8])? = nil, now: @Sendable () -> Date = { Date() }, reportID: UUID = UUID(),
        logger: Logger = Logger(label: "mijian.audit")
    ) throws(MijianError) -> Outcome {
        let started = now()
        let only = Set(options.rules)
        let live = options.root == nil
        // On the live machine the kernel's TCP dump, the longest single read, starts first and
        // runs while the policy and the identity are read; unused if the policy disables the rules.
        let socketDump = live && AuditChecks.mayRead(.sockets, only: only) ? HostProbe.SocketDump() : nil
        let policy: Policy
        let bytes: [UInt8]
        if let loaded { (policy, bytes) = loaded } else { (policy, bytes) = try loadPolicy(options.policy) }
        let root = HostRoot(path: options.root ?? "/")
        try root.check()
        let identity = try loadIdentity(options.hostFile, root: root)
        let host = try HostProbe.hostInfo(root: root, identity: identity)
        // Only the probes the selected (and enabled) rules read run: `--rule net.sockets` reads sockets alone.
        let sets = AuditChecks.factSets(for: only, policy: policy)
        var tcpSockets = NetworkProbe.kernelTCP
        if let socketDump { tcpSockets = { () throws(MijianError) in try socketDump.result() } }
        let facts = HostProbe.observe(root: root, live: live, logger: logger, at: started, collecting: sets, policy: policy, tcpSockets: tcpSockets)
        let context = CheckContext(policy: policy, hostID: host.hostID, observedAt: started, classification: host.classification)
        let findings = AuditChecks.evaluate(facts, context: context, only: only)
        let report = Report(
            reportID: reportID, issuedAt: now(), windowStart: started, windowEnd: started, host: host, policy: policy.info, findings: findings)
        return Outcome(report: report, policy: policy, policyBytes: bytes, collected: facts.collected)
    }

    /// Prints or writes the report in the chosen format.
    static func emit(_ report: Report, format: OutputFormat, output: String?) throws(MijianError) {
        let bytes: [UInt8]
        switch format {
        case .json: bytes = report.json.prettySerialized()
        case .text: bytes = Array(TextReport.render(report, colour: output == nil && Console.colourOut).utf8)
        }
        if let output {
            try AtomicFile.writeOutput(bytes, to: output)
        } else {
            try Console.out(bytes: bytes)
        }
    }
}

/// The rule ids that have a check, for tests and `--help`.
enum MijianChecksRegistry {
    static var ruleIDs: [String] { AuditChecks.all.map(\.rule.id) }
}
