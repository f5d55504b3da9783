#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianCLI
@testable import MijianScan

/// `mijian scan` on trees made by the test: the path cases (a FIFO, a link out of the root, `.`,
/// a trailing `/`, one letter), exit statuses, the JSON report, and the index.
@Suite(.serialized) struct ScanCommandTests {
    static let unclassified = """
        id: test-unclassified
        version: "1"
        profile: unclassified
        networks: {unit: [10.0.0.0/8]}
        markings: {paths: [/home], exclude: ["*.skip"]}
        """

    /// A root with `/home/a/notice.txt` (marked) and `/home/a/plain.txt`, a policy file beside it.
    static func tree(marked: Bool = true) throws -> (root: URL, policy: String, state: URL) {
        let base = try TestSupport.temporaryDirectory("mijian-scan")
        let root = base.appendingPathComponent("root")
        let home = root.appendingPathComponent("home/a")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        if marked { try Data("000123\n秘密★1年\n通知\n".utf8).write(to: home.appendingPathComponent("notice.txt")) }
        try Data("普通的工作总结\n".utf8).write(to: home.appendingPathComponent("plain.txt"))
        try Data("秘密★1年\n".utf8).write(to: home.appendingPathComponent("ignored.skip"))
        let policy = base.appendingPathComponent("policy.yaml")
        try Data(unclassified.utf8).write(to: policy)
        let state = base.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        return (root, policy.path, state)
    }

    static func run(_ arguments: [String], output: URL) async throws -> (Int32, JSONValue) {
        let code = await MijianMain.run(arguments: ["scan"] + arguments + ["--format", "json", "--output", output.path])
        let json = try JSONParser().parse(Array(try Data(contentsOf: output)))
        return (code, json)
    }

    @Test func aMarkedDocumentFailsAnUnclassifiedPolicy() async throws {
        let (root, policy, state) = try Self.tree()
        let (code, json) = try await Self.run(["--root", root.path, "--policy", policy, "--state-dir", state.path], output: state.appendingPathComponent("out.json"))
        #expect(code == 1)
        #expect(json["finding"]?["status"]?.stringValue == "fail")
        #expect(json["finding"]?["rule"]?.stringValue == "data.markings")
        let files = try #require(json["files"]?.arrayValue)
        #expect(files.compactMap { $0["path"]?.stringValue } == ["/home/a/notice.txt", "/home/a/plain.txt"])
        #expect(json["totals"]?["excluded"]?.intValue == 1)
        // The evidence is the marking alone, never the text around it.
        let text = String(decoding: try Data(contentsOf: state.appendingPathComponent("out.json")), as: UTF8.self)
        #expect(text.contains("秘密★1年"))
        #expect(!text.contains("通知") && !text.contains("普通的工作总结"))
    }

    @Test func aCleanTreePassesAndTheSecondScanComesFromTheIndex() async throws {
        let (root, policy, state) = try Self.tree(marked: false)
        let out = state.appendingPathComponent("out.json")
        let (first, json) = try await Self.run(["--root", root.path, "--policy", policy, "--state-dir", state.path], output: out)
        #expect(first == 0)
        #expect(json["finding"]?["status"]?.stringValue == "pass")
        #expect(json["totals"]?["from_index"]?.intValue == 0)
        let (second, again) = try await Self.run(["--root", root.path, "--policy", policy, "--state-dir", state.path], output: out)
        #expect(second == 0)
        #expect(again["totals"]?["from_index"]?.intValue == 1)
        #expect(again["totals"]?["bytes_read"]?.intValue == 0)
        // A changed file is read again, and now fails.
        try Data("000123\n机密★2年\n".utf8).write(to: root.appendingPathComponent("home/a/plain.txt"))
        let (third, changed) = try await Self.run(["--root", root.path, "--policy", policy, "--state-dir", state.path], output: out)
        #expect(third == 1)
        #expect(changed["totals"]?["from_index"]?.intValue == 0)
    }

    /// Sets a file's modification time (and so, by the kernel, its change time to now).
    static func setModified(_ path: String, seconds: Int) {
        var times = [timespec(tv_sec: seconds, tv_nsec: 0), timespec(tv_sec: seconds, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
    }

    @Test func theIndexNeverSkipsAChangedFileEvenWithItsSizeAndTimeRestored() async throws {
        let (root, policy, state) = try Self.tree(marked: false)
        let out = state.appendingPathComponent("out.json")
        let plain = root.appendingPathComponent("home/a/plain.txt").path
        Self.setModified(plain, seconds: 1_700_000_000)
        let (first, _) = try await Self.run(["--root", root.path, "--policy", policy, "--state-dir", state.path], output: out)
        #expect(first == 0)
        // Touched, content the same: the stamp changed, the content hash did not: from the index.
        Self.setModified(plain, seconds: 1_700_000_100)
        let (touched, again) = try await Self.run(["--root", root.path, "--policy", policy, "--state-dir", state.path], output: out)
        #expect(touched == 0)
        #expect(again["totals"]?["from_index"]?.intValue == 1)
        // Rewritten with as many bytes and its modification time put back: the change time
        // (which no one can set) differs, the content hash differs, and the file is read again.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: plain)[.size] as? Int)
        var marked = Array("秘密★1年\n".utf8)
        marked += Array(repeating: UInt8(ascii: "x"), count: size - marked.count - 1) + [0x0A]
        try Data(marked).write(to: URL(fileURLWithPath: plain))
        Self.setModified(plain, seconds: 1_700_000_100)
        let (rewritten, changed) = try await Self.run(["--root", root.path, "--policy", policy, "--state-dir", state.path], output: out)
        #expect(rewritten == 1)
        #expect(changed["totals"]?["from_index"]?.intValue == 0)
        #expect(changed["totals"]?["marked"]?.intValue == 1)
    }

    @Test func aCorruptIndexIsRebuiltWithANote() async throws {
        let (root, policy, state) = try Self.tree()
        try Data("{\"schema\": \"mijian.scan-index/v1\", \"files\": {\"/home/a/notice.txt\": {\"size\": 1".utf8)
            .write(to: state.appendingPathComponent(ScanIndex.fileName(root: root.path)))
        let (code, json) = try await Self.run(["--root", root.path, "--policy", policy, "--state-dir", state.path], output: state.appendingPathComponent("out.json"))
        #expect(code == 1)
        #expect(json["totals"]?["from_index"]?.intValue == 0)
        #expect(json["notes"]?.arrayValue?.contains { $0.stringValue?.contains("not trusted, rebuilt") == true } == true)
    }

    @Test func aFIFOIsNeverOpenedAndTheScanCannotVouch() async throws {
        let (root, policy, state) = try Self.tree(marked: false)
        #expect(mkfifo(root.appendingPathComponent("home/a/pipe").path, 0o600) == 0)
        // Named as a path: refused by type (opening it for reading would block this test forever).
        let (code, json) = try await Self.run(["--root", root.path, "--policy", policy, "--no-index", "/home/a/pipe"], output: state.appendingPathComponent("out.json"))
        #expect(code == 3)
        #expect(json["errors"]?.arrayValue?.first?["reason"]?.stringValue?.contains("a FIFO") == true)
        // Met in a walk: counted, not opened.
        let (walked, tree) = try await Self.run(["--root", root.path, "--policy", policy, "--no-index", "/home"], output: state.appendingPathComponent("out.json"))
        #expect(walked == 0)
        #expect(tree["totals"]?["not_documents"]?.intValue == 1)
    }

    @Test func aLinkOutOfTheRootIsRefused() async throws {
        let (root, policy, state) = try Self.tree(marked: false)
        let outside = state.appendingPathComponent("outside.txt")
        try Data("000123\n秘密★1年\n".utf8).write(to: outside)
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("home/a/link").path, withDestinationPath: outside.path)
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("home/up").path, withDestinationPath: "../../state")
        for path in ["/home/a/link", "/home/up/outside.txt"] {
            let (code, json) = try await Self.run(["--root", root.path, "--policy", policy, "--no-index", path], output: state.appendingPathComponent("out.json"))
            #expect(code == 3)
            #expect(json["errors"]?.arrayValue?.first?["reason"]?.stringValue?.contains("leads out of the root") == true)
            #expect(json["totals"]?["marked"]?.intValue == 0)
        }
    }

    @Test(arguments: [(".", "/"), ("home/", "/home"), ("h", "/h"), ("/home//a/./", "/home/a"), ("a/../..", "/")])
    func pathsUnderARootAreTakenFromItsTop(typed: String, host: String) {
        #expect(HostPathText.normalise(ScanPaths.hostPath(typed, live: false)) == host)
    }

    @Test func relativePathsOnTheLiveMachineAreTakenFromTheWorkingDirectory() {
        let cwd = FileManager.default.currentDirectoryPath
        #expect(HostPathText.normalise(ScanPaths.hostPath("a", live: true)) == HostPathText.normalise(cwd + "/a"))
        #expect(HostPathText.normalise(ScanPaths.hostPath(".", live: true)) == HostPathText.normalise(cwd))
    }

    @Test func theClassifiedPolicyMakesAnInventory() async throws {
        let (root, _, state) = try Self.tree()
        let (code, json) = try await Self.run(["--root", root.path, "--no-index", "/home"], output: state.appendingPathComponent("out.json"))
        #expect(code == 0)
        #expect(json["finding"]?["status"]?.stringValue == "informational")
        #expect(json["totals"]?["marked"]?.intValue == 2)  // the built-in policy excludes no *.skip
    }

    @Test func anEmptyPathIsAUsageError() async {
        #expect(await MijianMain.run(arguments: ["scan", ""]) == 2)
    }
}
