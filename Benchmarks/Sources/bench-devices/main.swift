import Foundation
import MijianCore
import MijianDevices
import MijianHost
import MijianTestSupport

// Decision latency of the live USB control, from taking a uevent to the last sysfs write done,
// through the real code path (parse, read sysfs, classify, decide, write `authorized`,
// `drivers_probe`), on a sysfs fixture tree in a tmpfs-backed temporary directory.
//
// Usage: bench-devices [DEVICES]   (each device gives four events: add, two interface adds, bind)

let devices = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 2500
let policyText = """
    id: bench
    version: "1"
    profile: classified
    media:
      ledger:
        - {vendor: "46f4", product: "0001", serial: "REG-0001"}
    usb: {mode: enforce}
    """
let policy = try Policy.parse(Array(policyText.utf8), file: "bench.yaml")
let fixture = try SysfsFixture()
// The control starts on an empty bus (coldplug judges nothing), then every device arrives by event.
let control = USBControl(.init(root: HostRoot(path: fixture.path), policy: policy, enforce: true, knowledge: .none))
_ = control.start()
var stream: [UInt8] = []
let shapes: [[SysfsFixture.Interface]] = [
    [.init(cls: 0x08, sub: 0x06, proto: 0x50), .init(cls: 0x08, sub: 0x06, proto: 0x62)],
    [.init(cls: 0x03, sub: 0x01, proto: 0x01), .init(cls: 0x08, sub: 0x06, proto: 0x50)],
    [.init(cls: 0x03, sub: 0x01, proto: 0x01), .init(cls: 0x03, sub: 0x01, proto: 0x02)],
    [.init(cls: 0xE0, sub: 0x01, proto: 0x01), .init(cls: 0xFF, sub: 0xFF, proto: 0xFF)],
]
for index in 0..<devices {
    let serial = index % 5 == 0 ? "REG-0001" : "S\(index)"
    for event in try fixture.plug(port: index + 2, vendor: "46f4", product: "0001", serial: serial, interfaces: shapes[index % shapes.count]) {
        stream += event.kernelMessage() + [0]
    }
}
let recorded = UEvent.parseStream(stream)
var latencies: [Int64] = []
latencies.reserveCapacity(recorded.count)
// Each decision's own account of where its time went (timing_us), phase by phase.
var phases: [String: [Int64]] = [:]
let started = Monotonic.now()
for event in recorded {
    let received = Monotonic.now()
    for out in control.handle(event, receivedAt: received, source: .replay) where out.type == "usb.decision" {
        if case .object(let members) = out.data, case .int(let micros)? = members.first(where: { $0.0 == "latency_us" })?.1 {
            latencies.append(micros)
            if case .object(let timing)? = members.first(where: { $0.0 == "timing_us" })?.1 {
                for case (let phase, .int(let value)) in timing { phases[phase, default: []].append(value) }
            }
            if case .int(let cpu)? = members.first(where: { $0.0 == "cpu_us" })?.1 { phases["cpu (not a phase)", default: []].append(cpu) }
        }
    }
}
let total = Double(Monotonic.now() - started) / 1e9
latencies.sort()
let sorted = latencies
let percentile: (Double) -> Int64 = { p in sorted.isEmpty ? -1 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
print("events: \(recorded.count) recorded (\(devices) devices), decisions: \(latencies.count), wall: \(String(format: "%.3f", total)) s (\(Int(Double(recorded.count) / total)) events/s)")
print("decision latency (uevent taken → last sysfs write done): p50 \(percentile(0.50)) µs, p90 \(percentile(0.90)) µs, p99 \(percentile(0.99)) µs, max \(latencies.last ?? -1) µs")
let all = max(1, latencies.reduce(0, +))
print("phase                         p50      p99      max   share")
for phase in DecisionTiming.Phase.allCases.map(\.rawValue) + ["cpu (not a phase)"] {
    let values = (phases[phase] ?? []).sorted()
    guard !values.isEmpty else { continue }
    let at: (Double) -> Int64 = { p in values[min(values.count - 1, Int(Double(values.count) * p))] }
    let share = Double(values.reduce(0, +)) * 100 / Double(all)
    print(phase.padding(toLength: 26, withPad: " ", startingAt: 0) + [at(0.50), at(0.99), values.last ?? 0].map { String($0).leftPadded(8) }.joined(separator: " ") + String(format: "  %5.1f%%", share))
}
try? FileManager.default.removeItem(at: fixture.root)

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
