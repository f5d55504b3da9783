import MijianCore
import Testing

/// The identity rule both the agent and the collector keep: host.yaml fields that break it are
/// refused at their line, and what the machine itself says is made to keep it.
@Suite struct IdentityBoundsTests {
    static let file = "/etc/mijian/host.yaml"

    static func refusal(_ text: String) -> MijianError? {
        do {
            _ = try HostIdentity.parse(Array(text.utf8), file: file)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        ("asset_id: JSJ-1\nunit: " + String(repeating: "某", count: 100) + "\n", ":2: unit: the value is 300 bytes"),
        ("unit: \"a\\tb\"\n", ":1: unit: the value holds the control character U+0009"),
        ("responsible: \"张三\\u202E\"\n", ":1: responsible: the value holds the invisible or direction-changing character U+202E"),
        ("asset_id: \"JSJ\\u200B-1\"\n", ":1: asset_id: the value holds the invisible or direction-changing character U+200B"),
        ("asset_id: \"JSJ\\x85\"\n", ":1: asset_id: the value holds the control character U+0085"),
    ])
    func aHostFileFieldThatBreaksTheRuleIsRefusedAtItsLine(text: String, expected: String) throws {
        let error = try #require(Self.refusal(text))
        #expect(error.code == .hostFileInvalid)
        #expect(error.message.hasPrefix(Self.file + expected), "\(error.message)")
    }

    @Test func fieldsWithinTheRuleAreAccepted() throws {
        // 85 three-byte characters: 255 bytes.
        let unit = String(repeating: "某", count: 85)
        let identity = try HostIdentity.parse(Array("unit: \(unit)\nresponsible: 张三\nasset_id: JSJ-2026-0042\n".utf8), file: Self.file)
        #expect(identity.unit == unit)
        #expect(IdentityField.problem(String(repeating: "a", count: IdentityField.maxBytes)) == nil)
        #expect(IdentityField.problem(String(repeating: "a", count: IdentityField.maxBytes + 1)) == .tooLong(IdentityField.maxBytes + 1))
        // A machine may report a bidi character (the collector accepts it); only typed text refuses it.
        #expect(IdentityField.problem("a\u{202E}b") == nil)
        #expect(IdentityField.problem("a\u{202E}b", typed: true) == .invisible("\u{202E}"))
    }

    @Test func whatTheMachineSaysIsMadeToKeepTheRule() {
        for value in ["6.1.0-13-amd64\u{1B}[31m", String(repeating: "k", count: 5000), String(repeating: "\u{7}", count: 200), "ok"] {
            let reportable = IdentityField.reportable(value)
            #expect(IdentityField.problem(reportable) == nil, "\(reportable)")
        }
        #expect(IdentityField.reportable("6.1.0\u{9}x") == "6.1.0\\u{9}x")
        #expect(IdentityField.reportable("6.1.0-13-amd64") == "6.1.0-13-amd64")
        #expect(IdentityField.reportable(String(repeating: "k", count: 300)).hasSuffix("…"))
    }
}
