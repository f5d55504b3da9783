#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// Every path-taking option of both executables, given awkward paths: each run ends with a
/// clear error (exit 2 and a message) or works (0, or 1 for findings); none crashes, none hangs.
@Suite struct PathArgumentTests {
    /// Awkward values for a path: empty, dots, one character (Foundation's NSString path functions
    /// trapped on it), trailing and doubled slashes, very long, not UTF-8, a directory, a FIFO.
    static let values: [[UInt8]] = [
        [], Array(".".utf8), Array("..".utf8), Array("x".utf8), Array("x/".utf8), Array("x//y".utf8), Array("./".utf8),
        Array(repeating: UInt8(ascii: "a"), count: 5000), [0x78, 0xFF, 0xFE], Array("dir".utf8), Array("fifo".utf8),
    ]

    /// Shared inputs, by absolute path: an image, a key, a signed report, an enrolment request,
    /// a capture file, a collector data directory with the machine enrolled.
    struct Inputs {
        let base: String
        var image: String { base + "/img" }
        var keys: String { base + "/keys" }
        var report: String { base + "/report.json" }
        var request: String { base + "/request.json" }
        var capture: String { base + "/capture.pcap" }
        var data: String { base + "/data" }
    }

    static func inputs(mijian: String, collector: String) throws -> Inputs {
        let base = try TestSupport.temporaryDirectory("mijian-paths")
        let inputs = Inputs(base: base.path)
        let fm = FileManager.default
        try fm.createDirectory(atPath: inputs.image + "/etc", withIntermediateDirectories: true)
        try Data("0123456789abcdef0123456789abcdef\n".utf8).write(to: URL(fileURLWithPath: inputs.image + "/etc/machine-id"))
        var capture = PcapWriter(linkType: 1)
        // One whole ARP frame: judged (not IP), so the capture itself never makes the run exit 2.
        capture.add(PacketBuilder.ethernet(etherType: 0x0806, payload: Array(repeating: 0, count: 28)))
        _ = try capture.write(to: base, name: "capture.pcap")
        let setup: [(String, [String])] = [
            (mijian, ["keys", "init", "--key-dir", inputs.keys]),
            (mijian, ["enroll", "--key-dir", inputs.keys, "--root", inputs.image, "--output", inputs.request]),
            (mijian, ["audit", "--root", inputs.image, "--rule", "net.public-dns", "--sign", "--key-dir", inputs.keys, "--output", inputs.report]),
            (collector, ["enroll", "approve", "--data", inputs.data, inputs.request]),
        ]
        for (tool, arguments) in setup {
            let result = try TestSupport.run(tool, arguments)
            #expect(result.status == 0 || result.status == 1, "\(arguments): \(result.stderr)")
        }
        return inputs
    }

    /// Each option, as the arguments that put `value` in it.
    static func cases(_ inputs: Inputs, mijian: String, collector: String) -> [(tool: String, name: String, arguments: ([UInt8]) -> [[UInt8]])] {
        func text(_ words: [String]) -> [[UInt8]] { words.map { Array($0.utf8) } }
        let audit = ["audit", "--root", inputs.image, "--rule", "net.public-dns"]
        let enroll = ["enroll", "--key-dir", inputs.keys, "--root", inputs.image]
        let assessment = ["assessment", "--data", inputs.data, "--year", "2026"]
        return [
            (mijian, "audit --root", { text(["audit", "--rule", "net.public-dns", "--root"]) + [$0] }),
            (mijian, "audit --output", { text(audit + ["--output"]) + [$0] }),
            (mijian, "audit --policy", { text(audit + ["--policy"]) + [$0] }),
            (mijian, "audit --host-file", { text(audit + ["--host-file"]) + [$0] }),
            (mijian, "audit --sign --key-dir", { text(audit + ["--sign", "--output", "signed.json", "--key-dir"]) + [$0] }),
            (mijian, "devices --root", { text(["devices", "--root"]) + [$0] }),
            (mijian, "devices --policy", { text(["devices", "--root", inputs.image, "--policy"]) + [$0] }),
            (mijian, "keys init --key-dir", { text(["keys", "init", "--key-dir"]) + [$0] }),
            (mijian, "keys show --key-dir", { text(["keys", "show", "--key-dir"]) + [$0] }),
            (mijian, "keys show --policy", { text(["keys", "show", "--policy"]) + [$0] }),
            (mijian, "enroll --output", { text(enroll + ["--output"]) + [$0] }),
            (mijian, "enroll --previous-key", { text(enroll + ["--output", "r.json", "--previous-key"]) + [$0] }),
            (mijian, "enroll --host-file", { text(enroll + ["--output", "r.json", "--host-file"]) + [$0] }),
            (mijian, "enroll --root", { text(["enroll", "--key-dir", inputs.keys, "--output", "r.json", "--root"]) + [$0] }),
            (mijian, "enroll --key-dir", { text(["enroll", "--root", inputs.image, "--output", "r.json", "--key-dir"]) + [$0] }),
            (mijian, "verify FILE", { text(["verify", "--key", inputs.keys + "/agent.pub"]) + [$0] }),
            (mijian, "verify --key", { text(["verify", inputs.report, "--key"]) + [$0] }),
            (mijian, "verify --registry", { text(["verify", inputs.report, "--registry"]) + [$0] }),
            (mijian, "traffic --read", { text(["traffic", "--read"]) + [$0] }),
            (mijian, "traffic --policy", { text(["traffic", "--read", inputs.capture, "--policy"]) + [$0] }),
            (mijian, "traffic --host-file", { text(["traffic", "--read", inputs.capture, "--host-file"]) + [$0] }),
            (mijian, "traffic --output", { text(["traffic", "--read", inputs.capture, "--output"]) + [$0] }),
            (collector, "ingest --data", { text(["ingest", inputs.report, "--data"]) + [$0] }),
            (collector, "ingest PATH", { text(["ingest", "--data", "d"]) + [$0] }),
            (collector, "enroll approve REQUEST", { text(["enroll", "approve", "--data", "d"]) + [$0] }),
            (collector, "enroll list --data", { text(["enroll", "list", "--data"]) + [$0] }),
            (collector, "hosts --data", { text(["hosts", "--data"]) + [$0] }),
            (collector, "assessment --output", { text(assessment + ["--output"]) + [$0] }),
            (collector, "assessment --answers", { text(assessment + ["--answers"]) + [$0] }),
            (collector, "assessment --table", { text(assessment + ["--table"]) + [$0] }),
            (collector, "assessment --policy", { text(assessment + ["--policy"]) + [$0] }),
            // None of the values is a certificate, so serve stops before it listens.
            (collector, "serve --tls-cert --tls-key", { text(["serve", "--data", "d", "--listen", "127.0.0.1:0", "--tls-cert"]) + [$0] + text(["--tls-key"]) + [$0] }),
        ]
    }

    @Test func awkwardPathsGiveAnErrorOrWorkNeverACrash() throws {
        let mijian = TestSupport.productPath("mijian")
        let collector = TestSupport.productPath("mijian-collector")
        let inputs = try Self.inputs(mijian: mijian, collector: collector)
        let cases = Self.cases(inputs, mijian: mijian, collector: collector)
        let runs = cases.flatMap { option in Self.values.map { (tool: option.tool, name: option.name, argv: option.arguments($0), value: $0) } }
        let outcomes = Outcomes(count: runs.count)
        // Each run in a fresh working directory of its own (nested, so `..` stays in the test's
        // directory), holding a directory and a FIFO for the values that name them.
        DispatchQueue.concurrentPerform(iterations: runs.count) { index in
            let run = runs[index]
            let work = "\(inputs.base)/run-\(index)/work"
            do {
                try FileManager.default.createDirectory(atPath: work + "/dir", withIntermediateDirectories: true)
                guard mkfifo(work + "/fifo", 0o600) == 0 else { throw POSIXError(.EIO) }
                outcomes.set(index, try TestSupport.runRaw(run.tool, run.argv, in: work))
            } catch {
                outcomes.set(index, TestSupport.RawResult(status: nil, stderr: "could not run: \(error)"))
            }
        }
        for (index, run) in runs.enumerated() {
            let (name, value) = (run.name, run.value)
            let shown = value.count > 40 ? "\(value.count) bytes" : "'\(String(decoding: value, as: UTF8.self))'"
            guard let result = outcomes.get(index), let status = result.status else {
                Issue.record("\(name) \(shown): did not finish (\(outcomes.get(index)?.stderr ?? ""))")
                continue
            }
            #expect([0, 1, 2].contains(status), "\(name) \(shown): exit \(status)\(status >= 128 ? " (killed by signal \(status - 128))" : ""): \(result.stderr)")
            if status == 2 {
                #expect(!result.stderr.isEmpty, "\(name) \(shown): exit 2 without a message")
            }
        }
        // The two reported crashes now work.
        let one = Array("x".utf8)
        for name in ["audit --output", "keys init --key-dir", "enroll --output", "traffic --output", "assessment --output"] {
            guard let index = runs.firstIndex(where: { $0.name == name && $0.value == one }) else {
                Issue.record("no case \(name)")
                continue
            }
            let status = outcomes.get(index)?.status
            #expect(status == 0 || status == 1, "\(name) x: exit \(status.map(String.init) ?? "none"): \(outcomes.get(index)?.stderr ?? "")")
        }
    }

    /// Standard output on a full disk (or any failing write) is exit 2 with a message on standard
    /// error, for every command that prints: never a crash, never a silent 0 or 1.
    @Test func standardOutputOnAFullDiskIsExitTwoWithAMessage() throws {
        let mijian = TestSupport.productPath("mijian")
        let collector = TestSupport.productPath("mijian-collector")
        let inputs = try Self.inputs(mijian: mijian, collector: collector)
        defer { try? FileManager.default.removeItem(atPath: inputs.base) }
        let audit = ["audit", "--root", inputs.image, "--rule", "net.public-dns"]
        let runs: [(String, [String])] = [
            (mijian, ["--version"]), (mijian, ["audit", "--help"]), (mijian, audit), (mijian, audit + ["--format", "json"]),
            (mijian, ["devices", "--root", TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/usb-stick-registered").path]),
            (mijian, ["keys", "show", "--key-dir", inputs.keys]),
            (mijian, ["verify", inputs.report, "--key", inputs.keys + "/agent.pub"]), (mijian, ["traffic", "--read", inputs.capture]),
            (collector, ["--version"]), (collector, ["enroll", "list", "--data", inputs.data]), (collector, ["hosts", "--data", inputs.data]),
            (collector, ["assessment", "--data", inputs.data, "--year", "2026"]),
        ]
        for (tool, arguments) in runs {
            let name = "\(URL(fileURLWithPath: tool).lastPathComponent) \(arguments.joined(separator: " "))"
            let result = try TestSupport.runToFullDisk(tool, arguments)
            #expect(result.status == 2, "\(name): exit \(result.status): \(result.stderr)")
            #expect(result.stderr.contains("cannot write to standard output") && result.stderr.contains("No space left on device"), "\(name): \(result.stderr)")
            #expect(!result.stderr.contains("Fatal error"), "\(name): \(result.stderr)")
        }
        // A signed report that could not be written does not move the chain: the next report
        // takes its seq (the setup signed seq 0), so no link is missing.
        func seq(_ path: String) throws -> Int64? {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            let envelope: JSONValue = try JSONParser().parse(bytes)
            guard let encoded = envelope["payload"]?.stringValue, let payload = Data(base64Encoded: encoded) else { return nil }
            let report: JSONValue = try JSONParser().parse(Array(payload))
            return report["seq"]?.intValue
        }
        #expect(try seq(inputs.report) == 0)
        let lost = try TestSupport.runToFullDisk(mijian, audit + ["--sign", "--key-dir", inputs.keys])
        #expect(lost.status == 2 && lost.stderr.contains("cannot write to standard output"), "\(lost.stderr)")
        let unwritable = try TestSupport.run(mijian, audit + ["--sign", "--key-dir", inputs.keys, "--output", inputs.base + "/no/such/dir/r.json"])
        #expect(unwritable.status == 2, "\(unwritable.stderr)")
        let next = inputs.base + "/next.json"
        let written = try TestSupport.run(mijian, audit + ["--sign", "--key-dir", inputs.keys, "--output", next])
        #expect(written.status == 0 || written.status == 1, "\(written.stderr)")
        #expect(try seq(next) == 1)
    }
}

/// Results of concurrent runs, by index.
final class Outcomes: @unchecked Sendable {
    private var results: [TestSupport.RawResult?]
    private let lock = NSLock()

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: TestSupport.RawResult) {
        lock.lock()
        defer { lock.unlock() }
        results[index] = result
    }

    func get(_ index: Int) -> TestSupport.RawResult? {
        lock.lock()
        defer { lock.unlock() }
        return results[index]
    }
}
