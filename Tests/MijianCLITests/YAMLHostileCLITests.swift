import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// Every YAML file both executables read, given an alias bomb or deep nesting: each refuses it
/// within seconds (they hung before), naming the file, line and column, with exit status 2.
@Suite struct YAMLHostileCLITests {
    let mijian = TestSupport.productPath("mijian")
    let collector = TestSupport.productPath("mijian-collector")

    /// The twelve-line bomb used as a mapping key, the same as a value, and 100,000 nested lists.
    static let documents: [(name: String, text: String, location: String)] = [
        ("key", bombLines + "z: {*a11: 1}\n", ":1:5: anchor &a0"),
        ("value", bombLines + "z: *a11\n", ":1:5: anchor &a0"),
        ("nested", "id: x\nz: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n", ":2:5: lists and mappings nested deeper than 32 levels"),
    ]

    static let bombLines: String = {
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1...11 {
            lines.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]")
        }
        return lines.joined(separator: "\n") + "\n"
    }()

    /// Writes each hostile document, runs `arguments(path)` with a 10 s deadline, and checks the refusal.
    func expectRefused(_ program: String, _ what: String, _ arguments: (String) -> [String], in directory: URL) throws {
        for document in Self.documents {
            let path = directory.appendingPathComponent("hostile-\(document.name).yaml").path
            try Data(document.text.utf8).write(to: URL(fileURLWithPath: path))
            let result = try TestSupport.runRaw(program, arguments(path).map { Array($0.utf8) }, in: directory.path, seconds: 10)
            guard let status = result.status else {
                Issue.record("\(what), \(document.name): still running after 10 s")
                continue
            }
            #expect(status == 2, "\(what), \(document.name): exit \(status): \(result.stderr.prefix(400))")
            #expect(result.stderr.contains(path + document.location), "\(what), \(document.name): \(result.stderr.prefix(400))")
            #expect(result.stderr.utf8.count < 4096, "\(what), \(document.name): the message echoes the document")
        }
    }

    @Test func auditPolicyAndHostFile() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-hostile")
        defer { try? FileManager.default.removeItem(at: directory) }
        let root = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/wired-desktop").path
        try expectRefused(mijian, "audit --policy", { ["audit", "--root", root, "--policy", $0] }, in: directory)
        try expectRefused(mijian, "audit --host-file", { ["audit", "--root", root, "--host-file", $0] }, in: directory)
    }

    @Test func runConfigAndPolicy() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-hostile")
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectRefused(mijian, "run --config", { ["run", "--config", $0, "--key-dir", directory.path] }, in: directory)
        let config = directory.appendingPathComponent("agent.yaml")
        try Data("delivery:\n  mode: none\n".utf8).write(to: config)
        try expectRefused(mijian, "run --policy", { ["run", "--config", config.path, "--policy", $0, "--key-dir", directory.path] }, in: directory)
    }

    @Test func collectorPolicyTableAndAnswers() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-hostile")
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data").path
        let base = ["assessment", "--data", data, "--year", "2026"]
        try expectRefused(collector, "collector --policy", { base + ["--policy", $0] }, in: directory)
        try expectRefused(collector, "collector --table", { base + ["--table", $0] }, in: directory)
        try expectRefused(collector, "collector --answers", { base + ["--answers", $0] }, in: directory)
    }
}
