// Sign and verify throughput of report envelopes on one core.
// Run: cd Benchmarks && swift run -c release bench-evidence [seconds-per-measurement]
import Foundation
import MijianCore
import MijianEvidence

/// A report of about `targetBytes` payload bytes: a few findings with USB evidence entries.
func makeReport(keyid: String, targetBytes: Int) -> Report {
    let date = Date(timeIntervalSince1970: 1_795_000_000)
    let host = HostInfo(
        hostID: HostInfo.hostID(machineID: "0123456789abcdef0123456789abcdef"), hostname: "ws-0042", assetID: "JSJ-2026-0042",
        classification: .confidential, responsible: "张三", unit: "某局办公室", os: "Debian GNU/Linux 12 (bookworm)", kernel: "6.1.0-26-amd64")
    var evidence: [Evidence] = []
    func build() -> Report {
        let findings = RuleCatalogue.auditRules.enumerated().map { index, rule in
            Finding(
                uid: Finding.uid(hostID: host.hostID, ruleID: rule.id, subject: "host"), rule: rule, subject: "host", severity: rule.defaultSeverity,
                status: index == 4 ? .fail : .pass, statusDetail: "Checked \(rule.title.lowercased()).", observedAt: date,
                evidence: index == 0 ? evidence : [Evidence(kind: "file", source: "/etc/\(rule.id)", observedAt: date, data: ["lines": 3])])
        }
        return Report(
            epoch: 1_795_000_000, seq: 41, prevSHA256: String(repeating: "ab", count: 32), issuedAt: date, windowStart: date, windowEnd: date,
            agent: AgentInfo(keyid: keyid), host: host, policy: PolicyInfo(id: "classified-workstation", version: "2026.1", sha256: String(repeating: "cd", count: 32)),
            findings: findings)
    }
    var report = build()
    while report.payloadBytes().count < targetBytes {
        evidence.append(
            Evidence(
                kind: "sysfs", source: "/sys/bus/usb/devices/1-\(evidence.count)", observedAt: date,
                data: ["idVendor": "0781", "idProduct": "5583", "serial": .string("4C53000123061511\(evidence.count)"), "class": 8]))
        report = build()
    }
    return report
}

/// Runs `body` repeatedly for about `seconds`, returns operations per second.
func measure(_ name: String, seconds: Double, _ body: () throws -> Void) rethrows -> Double {
    for _ in 0..<50 { try body() }  // warm up
    let clock = ContinuousClock()
    var operations = 0
    let start = clock.now
    var elapsed = Duration.zero
    repeat {
        for _ in 0..<100 { try body() }
        operations += 100
        elapsed = clock.now - start
    } while elapsed < .milliseconds(Int64(seconds * 1000))
    let total = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = Double(operations) / total
    print("\(name): \(operations) in \(String(format: "%.2f", total)) s = \(String(format: "%.0f", rate))/s, \(String(format: "%.1f", 1e6 / rate)) µs each")
    return rate
}

let seconds = CommandLine.arguments.dropFirst().first.flatMap(Double.init) ?? 3
do {
    let key = try SigningKey.generate()
    let report = makeReport(keyid: key.keyid, targetBytes: 20_000)
    let payload = report.payloadBytes()
    let envelope = try DSSE.sign(payload: payload, type: PayloadType.report, key: key).serialized()
    let verifier = EnvelopeVerifier(keys: [key.keyid: key.publicKey])
    guard try verifier.verifyReport(envelope).report == report else {
        print("bench-evidence: the verified report differs from the signed one")
        exit(1)
    }
    print("payload \(payload.count) bytes, envelope \(envelope.count) bytes, \(report.findings.count) findings")
    let message = DSSE.pae(type: PayloadType.report, body: payload)
    let signature = try key.sign(message)
    _ = measure("ed25519 verify only (PAE of the payload)", seconds: seconds) {
        if !key.publicKey.isValidSignature(signature, for: message) { exit(1) }
    }
    let verifyRate = try measure("envelope verify (parse, base64, ed25519, strict decode)", seconds: seconds) {
        _ = try verifier.verifyReport(envelope)
    }
    _ = try measure("report sign (serialize payload, ed25519, envelope JSON)", seconds: seconds) {
        _ = try DSSE.sign(payload: report.payloadBytes(), type: PayloadType.report, key: key).serialized()
    }
    print("goal: at least 5000 envelopes verified per second: \(verifyRate >= 5000 ? "met" : "NOT met")")
} catch {
    print("bench-evidence: \(error)")
    exit(1)
}
