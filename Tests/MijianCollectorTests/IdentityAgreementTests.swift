import MijianCollector
import MijianCore
import Testing

/// The agent and the collector keep one identity rule: whatever the agent accepts in host.yaml, or
/// makes of what the machine says, the collector never refuses for its identity.
@Suite struct IdentityAgreementTests {
    static let values: [String] = [
        "", "JSJ-2026-0042", "某局办公室", String(repeating: "a", count: 255), String(repeating: "a", count: 256),
        String(repeating: "a", count: 257), String(repeating: "某", count: 85), String(repeating: "某", count: 86),
        String(repeating: "某", count: 100), "a\tb", "a\nb", "a\u{7F}b", "a\u{85}b", "a\u{9F}b", "a\u{A0}b", "a\u{202E}b",
        "a\u{200B}b", "a\u{2066}b", "\u{FEFF}a", "6.1.0-13-amd64\u{1B}[31m", String(repeating: "\u{7}", count: 300),
    ]

    @Test func theCollectorRefusesExactlyWhatTheRuleRefuses() {
        #expect(IdentityBounds.maxFieldBytes == IdentityField.maxBytes)
        for value in Self.values {
            let collector = IdentityBounds.refusal(fields: [("report.host.unit", value)])
            #expect((collector == nil) == (IdentityField.problem(value) == nil), "\(value.debugDescription): \(String(describing: collector))")
        }
    }

    @Test func whatTheAgentAcceptsTheCollectorAccepts() {
        for value in Self.values {
            let yaml = "unit: \"\(value.unicodeScalars.map { "\\U" + String(repeating: "0", count: 8 - String($0.value, radix: 16).count) + String($0.value, radix: 16) }.joined())\"\n"
            if (try? HostIdentity.parse(Array(yaml.utf8), file: "host.yaml")) != nil {
                #expect(IdentityBounds.refusal(fields: [("report.host.unit", value)]) == nil, "\(value.debugDescription)")
            }
            #expect(IdentityBounds.refusal(fields: [("report.host.kernel", IdentityField.reportable(value))]) == nil, "\(value.debugDescription)")
        }
    }
}
