// Full audit in-process: observe every source and evaluate every rule, repeated; prints the
// median and p90 wall time. Usage: bench-audit [ROOT] [ITERATIONS]
// (ROOT defaults to / with live kernel sources; a fixture tree or a mounted image otherwise.)
import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianHost

let arguments = Array(CommandLine.arguments.dropFirst())
let rootPath = arguments.first ?? "/"
let iterations = arguments.count > 1 ? Int(arguments[1]) ?? 200 : 200
let root = HostRoot(path: rootPath)
let live = rootPath == "/"
let logger = Logger(label: "bench-audit")

do {
    let policy = try Policy.parse(Array(EmbeddedPolicies.classifiedWorkstation.utf8), file: "built-in")
    let host = try HostProbe.hostInfo(root: root, identity: HostIdentity())
    var samples: [Double] = []
    var findings = 0
    let clock = ContinuousClock()
    for _ in 0..<iterations {
        let elapsed = clock.measure {
            let facts = HostProbe.observe(root: root, live: live, logger: logger)
            let context = CheckContext(policy: policy, hostID: host.hostID, observedAt: facts.observedAt)
            findings = AuditChecks.evaluate(facts, context: context).count
        }
        samples.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15)
    }
    samples.sort()
    let median = samples[samples.count / 2]
    let p90 = samples[min(samples.count - 1, samples.count * 9 / 10)]
    print(String(format: "bench-audit root=%@ live=%@ iterations=%d findings=%d median=%.2f ms p90=%.2f ms min=%.2f ms",
                 rootPath, live ? "yes" : "no", iterations, findings, median, p90, samples[0]))
} catch {
    FileHandle.standardError.write(Data("bench-audit: \(error)\n".utf8))
    exit(2)
}
