// bench-traffic: writes a synthetic capture (the mix Benchmarks/traffic.sh also writes), and times the in-process analyzer.
//
//   bench-traffic generate FILE [PACKETS]   write an Ethernet pcap (default 1,000,000 packets)
//   bench-traffic analyze FILE              read it through TrafficWatch and print packets/s
//
// The mix is what a unit LAN looks like with a few leaks: 90% TCP between unit hosts (some VLAN-tagged),
// 5% DNS queries for unit names to the unit resolver, 1% DNS queries for outside names, 4% TCP/UDP to
// outside TEST-NET addresses.
import Foundation
import Logging
import MijianCore
import MijianTraffic

func be16(_ value: Int, into out: inout [UInt8]) {
    out.append(UInt8((value >> 8) & 0xFF))
    out.append(UInt8(value & 0xFF))
}

func le32(_ value: UInt32, into out: inout [UInt8]) {
    for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8((value >> UInt32(shift)) & 0xFF)) }
}

func ipv4(src: [UInt8], dst: [UInt8], proto: UInt8, transport: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x45, 0]
    be16(20 + transport.count, into: &out)
    out += [0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]
    return out + src + dst + transport
}

func tcp(src: Int, dst: Int, payload: Int) -> [UInt8] {
    var out: [UInt8] = []
    be16(src, into: &out)
    be16(dst, into: &out)
    out += [0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
    return out + [UInt8](repeating: 0x61, count: payload)
}

func udp(src: Int, dst: Int, payload: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    be16(src, into: &out)
    be16(dst, into: &out)
    be16(8 + payload.count, into: &out)
    out += [0, 0]
    return out + payload
}

func dns(_ name: String) -> [UInt8] {
    var out: [UInt8] = [0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
    for label in name.split(separator: ".") {
        out.append(UInt8(label.utf8.count))
        out += Array(label.utf8)
    }
    return out + [0, 0, 1, 0, 1]
}

func ethernet(_ packet: [UInt8], vlan: Bool) -> [UInt8] {
    var out: [UInt8] = [0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]
    if vlan { out += [0x81, 0x00, 0x00, 0x0A] }
    return out + [0x08, 0x00] + packet
}

/// A small deterministic generator so every run writes the same file.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func generate(path: String, count: Int) throws {
    guard FileManager.default.createFile(atPath: path, contents: nil) else {
        throw MijianError(.io, "cannot create \(path)", path: path)
    }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    var out: [UInt8] = []
    le32(0xA1B2_C3D4, into: &out)
    out += [2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0, 0, 0]
    var random = SplitMix(state: 42)
    var seconds: UInt32 = 1_795_000_000
    var micros: UInt32 = 0
    for index in 0..<count {
        let roll = random.next() % 100
        let a = [10, UInt8(random.next() % 4), UInt8(random.next() % 256), UInt8(random.next() % 254 + 1)]
        let b = [10, UInt8(random.next() % 4), UInt8(random.next() % 256), UInt8(random.next() % 254 + 1)]
        let packet: [UInt8]
        switch roll {
        case 0..<90:
            packet = ipv4(src: a, dst: b, proto: 6, transport: tcp(src: 40000 + Int(random.next() % 20000), dst: [22, 80, 443, 445][Int(random.next() % 4)], payload: Int(random.next() % 40)))
        case 90..<95:
            packet = ipv4(src: a, dst: [10, 0, 0, 53], proto: 17, transport: udp(src: 50000, dst: 53, payload: dns("host\(random.next() % 500).unit.internal")))
        case 95..<96:
            packet = ipv4(src: a, dst: [10, 0, 0, 53], proto: 17, transport: udp(src: 50001, dst: 53, payload: dns("leak\(random.next() % 50).example.com")))
        default:
            let outside: [UInt8] = [203, 0, 113, UInt8(random.next() % 200 + 1)]
            let port = [443, 8080, 9999, 123][Int(random.next() % 4)]
            packet = random.next() % 2 == 0
                ? ipv4(src: a, dst: outside, proto: 6, transport: tcp(src: 40000, dst: port, payload: 0))
                : ipv4(src: a, dst: outside, proto: 17, transport: udp(src: 40000, dst: port, payload: [1, 2, 3, 4]))
        }
        let frame = ethernet(packet, vlan: index % 50 == 0)
        micros += 7
        if micros >= 1_000_000 {
            micros -= 1_000_000
            seconds += 1
        }
        le32(seconds, into: &out)
        le32(micros, into: &out)
        le32(UInt32(frame.count), into: &out)
        le32(UInt32(frame.count), into: &out)
        out += frame
        if out.count > 1 << 20 {
            handle.write(Data(out))
            out.removeAll(keepingCapacity: true)
        }
    }
    handle.write(Data(out))
}

let arguments = Array(CommandLine.arguments.dropFirst())
var logger = Logger(label: "bench-traffic")
logger.logLevel = .warning
do {
    switch (arguments.first, arguments.count) {
    case ("generate", 2), ("generate", 3):
        let count = arguments.count == 3 ? Int(arguments[2]) ?? 1_000_000 : 1_000_000
        try generate(path: arguments[1], count: count)
        print("bench-traffic: wrote \(count) packets to \(arguments[1])")
    case ("analyze", 2):
        let policy = EgressPolicy(try Policy.parse(Array(EmbeddedPolicies.classifiedWorkstation.utf8), file: "built-in"))
        let clock = ContinuousClock()
        var result: TrafficResult?
        let elapsed = try clock.measure { result = try TrafficWatch.read(file: arguments[1], policy: policy, logger: logger) }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let records = result?.records ?? 0
        print("bench-traffic: \(records) packets in \(String(format: "%.3f", seconds)) s = \(Int(Double(records) / seconds)) packets/s; \(result?.flows.count ?? 0) flows flagged")
    default:
        print("usage: bench-traffic generate FILE [PACKETS] | bench-traffic analyze FILE")
        exit(2)
    }
} catch {
    print("bench-traffic: \(error)")
    exit(2)
}
