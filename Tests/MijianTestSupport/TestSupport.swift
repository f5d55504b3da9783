import Foundation
import MijianCore
import Synchronization

/// Helpers shared by the test targets.
public enum TestSupport {
    /// The repository's top directory (found from this file's path).
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A fresh empty directory under the system temporary directory, deleted when the test process
    /// exits (tests that finish with it earlier may delete it themselves).
    public static func temporaryDirectory(_ prefix: String = "mijian-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        TemporaryDirectories.register(url.path)
        return url
    }

    /// The embedded default policy, parsed.
    public static func defaultPolicy() throws -> Policy {
        try Policy.parse(Array(EmbeddedPolicies.classifiedWorkstation.utf8), file: "classified-workstation.yaml")
    }

    /// A policy from YAML text.
    public static func policy(_ yaml: String, file: String = "test.yaml") throws -> Policy {
        try Policy.parse(Array(yaml.utf8), file: file)
    }

    /// A fixed observation time for deterministic output.
    public static let fixedDate = Date(timeIntervalSince1970: 1_795_000_000)
}

/// Every directory `TestSupport.temporaryDirectory` made, removed by an `atexit` handler.
enum TemporaryDirectories {
    private static let paths = Mutex<(installed: Bool, paths: [String])>((false, []))

    static func register(_ path: String) {
        let install = paths.withLock { state in
            state.paths.append(path)
            defer { state.installed = true }
            return !state.installed
        }
        if install { atexit { TemporaryDirectories.removeAll() } }
    }

    private static func removeAll() {
        let all = paths.withLock { state in
            defer { state.paths.removeAll() }
            return state.paths
        }
        for path in all { try? FileManager.default.removeItem(atPath: path) }
    }
}
