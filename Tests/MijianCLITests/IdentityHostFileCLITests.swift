import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// A host.yaml whose fields the collector would refuse is refused by the agent first, at its line;
/// one the agent accepts is stored by the collector.
@Suite struct IdentityHostFileCLITests {
    let mijian = TestSupport.productPath("mijian")
    let collector = TestSupport.productPath("mijian-collector")

    /// A disk image with a machine id, a key directory and a collector data directory under a new directory.
    func setUp() throws -> (base: String, image: String, keys: String) {
        let base = try TestSupport.temporaryDirectory("mijian-identity").path
        try FileManager.default.createDirectory(atPath: base + "/img/etc", withIntermediateDirectories: true)
        try Data("0123456789abcdef0123456789abcdef\n".utf8).write(to: URL(fileURLWithPath: base + "/img/etc/machine-id"))
        let keys = try TestSupport.run(mijian, ["keys", "init", "--key-dir", base + "/keys"])
        #expect(keys.status == 0, "\(keys.stderr)")
        return (base, base + "/img", base + "/keys")
    }

    @Test(arguments: [
        ("asset_id: JSJ-1\nunit: " + String(repeating: "某", count: 100) + "\n", ":2: unit: the value is 300 bytes"),
        ("asset_id: JSJ-1\nunit: \"某局\\t办公室\"\n", ":2: unit: the value holds the control character U+0009"),
    ])
    func auditSignAndEnrollRefuseAFieldTheCollectorWouldRefuse(text: String, expected: String) throws {
        let (base, image, keys) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let host = base + "/host.yaml"
        try Data(text.utf8).write(to: URL(fileURLWithPath: host))
        for arguments in [
            ["audit", "--root", image, "--rule", "net.public-dns", "--host-file", host],
            ["audit", "--root", image, "--rule", "net.public-dns", "--host-file", host, "--sign", "--key-dir", keys, "--output", base + "/r.json"],
            ["enroll", "--key-dir", keys, "--root", image, "--host-file", host, "--output", base + "/req.json"],
        ] {
            let result = try TestSupport.run(mijian, arguments)
            #expect(result.status == 2, "\(arguments[0]): \(result.stderr)")
            #expect(result.stderr.contains(host + expected), "\(arguments[0]): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: base + "/r.json"))
        #expect(!FileManager.default.fileExists(atPath: base + "/req.json"))
    }

    @Test func aHostFileTheAgentAcceptsIsNeverRefusedForIdentity() throws {
        let (base, image, keys) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let host = base + "/host.yaml"
        // Every typed field at the bound: 85 three-byte characters (255 bytes) or 256 ASCII bytes.
        let longest = String(repeating: "某", count: 85)
        try Data("asset_id: \(String(repeating: "J", count: 256))\nresponsible: \(longest)\nunit: \(longest)\nclassification: 秘密\n".utf8)
            .write(to: URL(fileURLWithPath: host))
        // What the machine says of itself is odd too: a tab in its host name, a 300-byte OS name.
        try Data("ws\tone\n".utf8).write(to: URL(fileURLWithPath: image + "/etc/hostname"))
        try Data("PRETTY_NAME=\"\(String(repeating: "D", count: 300))\"\n".utf8).write(to: URL(fileURLWithPath: image + "/etc/os-release"))
        let data = base + "/data"
        let steps: [(String, [String])] = [
            (mijian, ["enroll", "--key-dir", keys, "--root", image, "--host-file", host, "--output", base + "/req.json"]),
            (collector, ["enroll", "approve", "--data", data, base + "/req.json"]),
            (mijian, ["audit", "--root", image, "--rule", "net.public-dns", "--host-file", host, "--sign", "--key-dir", keys, "--output", base + "/r.json"]),
        ]
        for (tool, arguments) in steps {
            let result = try TestSupport.run(tool, arguments)
            #expect(result.status == 0 || (arguments[0] == "audit" && result.status == 1), "\(arguments): \(result.stderr)")
        }
        let ingest = try TestSupport.run(collector, ["ingest", "--data", data, base + "/r.json"])
        #expect(ingest.status == 0, "\(ingest.stdout) \(ingest.stderr)")
        #expect(ingest.stdout.hasPrefix("first\t"), "\(ingest.stdout)")
        let hosts = try TestSupport.run(collector, ["hosts", "--data", data, "--format", "json"])
        #expect(hosts.stdout.contains("ws\\\\u{9}one"), "\(hosts.stdout)")
    }
}
