// Audit in-process: observe every source the rules read and evaluate them, repeated; prints the
// median and p90 wall time. Usage: bench-audit [ROOT] [ITERATIONS] [RULE...]
// (ROOT defaults to / with live kernel sources; a fixture tree or a mounted image otherwise.
// No RULE: the full audit; with rules, only the probes they need run, as `mijian audit --rule`.)
import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianHost

let arguments = Array(CommandLine.arguments.dropFirst())
let rootPath = arguments.first ?? "/"
let iterations = arguments.count > 1 ? Int(arguments[1]) ?? 200 : 200
let only = Set(arguments.dropFirst(2))
let root = HostRoot(path: rootPath)
let live = rootPath == "/"
let logger = Logger(label: "bench-audit")

do {
    let policy = try Policy.parse(Array(EmbeddedPolicies.classifiedWorkstation.utf8), file: "built-in")
    let host = try HostProbe.hostInfo(root: root, identity: HostIdentity())
    let sets = AuditChecks.factSets(for: only, policy: policy)
    var samples: [Double] = []
    var findings = 0
    let clock = ContinuousClock()
    for _ in 0..<iterations {
        let elapsed = clock.measure {
            let facts = HostProbe.observe(root: root, live: live, logger: logger, collecting: sets)
            let context = CheckContext(policy: policy, hostID: host.hostID, observedAt: facts.observedAt)
            findings = AuditChecks.evaluate(facts, context: context, only: only).count
        }
        samples.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15)
    }
    samples.sort()
    let median = samples[samples.count / 2]
    let p90 = samples[min(samples.count - 1, samples.count * 9 / 10)]
    let rules = only.isEmpty ? "all" : only.sorted().joined(separator: ",")
    print(String(format: "bench-audit root=%@ live=%@ rules=%@ iterations=%d findings=%d median=%.2f ms p90=%.2f ms min=%.2f ms",
                 rootPath, live ? "yes" : "no", rules, iterations, findings, median, p90, samples[0]))
} catch {
    FileHandle.standardError.write(Data("bench-audit: \(error)\n".utf8))
    exit(2)
}
