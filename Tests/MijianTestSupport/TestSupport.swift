import Foundation
import MijianCore

/// Helpers shared by the test targets.
public enum TestSupport {
    /// The repository's top directory (found from this file's path).
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A fresh empty directory under the system temporary directory.
    public static func temporaryDirectory(_ prefix: String = "mijian-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
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
