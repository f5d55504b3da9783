import Foundation
import MijianCore
import Testing

@Suite("Strict report decoding")
struct ReportDecodingTests {
    @Test("A report decodes back to itself, through bytes too")
    func roundTrip() throws {
        let report = Fixtures.report(keyid: "sha256:ab", seq: 3, padding: 3)
        #expect(try Report(json: report.json) == report)
        let parsed = try JSONParser().parse(report.payloadBytes())
        #expect(try Report(json: parsed) == report)
        #expect(try Report(json: parsed).payloadBytes() == report.payloadBytes())
    }

    @Test("Optional host members may be null")
    func nullOptionals() throws {
        var report = Fixtures.report()
        report.host = HostInfo(hostID: "h", hostname: "n")
        #expect(try Report(json: report.json) == report)
    }

    @Test("Wrong types, bad timestamps, unknown members and lying summaries are refused", arguments: [
        ("\"seq\":0", "\"seq\":0.0"),
        ("\"seq\":0", "\"seq\":\"0\""),
        ("\"issued_at\":\"2026-11-18T", "\"issued_at\":\"2026/11/18T"),
        ("\"report_id\":\"", "\"report_id\":\"x"),
        ("\"schema\":\"mijian.report/v1\"", "\"schema\":\"mijian.report/v0\""),
        ("\"classification\":\"秘密\"", "\"classification\":\"mimi\""),
        ("\"status\":\"fail\"", "\"status\":\"failed\""),
        ("\"severity\":\"high\"", "\"severity\":\"severe\""),
        ("\"pass\":1", "\"pass\":2"),
        ("\"notchecked\":0,", ""),
        ("\"events\":[", "\"surprise\":true,\"events\":["),
        ("\"window\":{", "\"window\":{\"length\":1,"),
        ("\"prev_sha256\":\"\"", "\"prev_sha256\":\"zz\""),
        ("\"hostname\":\"ws-0042\"", "\"hostname\":42"),
        ("\"findings\":[", "\"findings\":[1,"),
    ])
    func refusals(original: String, replacement: String) throws {
        let text = String(decoding: Fixtures.report().payloadBytes(), as: UTF8.self)
        #expect(text.contains(original))
        let value = try JSONParser().parse(Array(text.replacingOccurrences(of: original, with: replacement).utf8))
        #expect(throws: MijianError.self) { try Report(json: value) }
    }

    @Test("A missing member is named in the error")
    func missingMember() throws {
        guard case .object(let members) = Fixtures.report().json else {
            Issue.record("a report is not an object")
            return
        }
        let value = JSONValue.object(members.filter { $0.0 != "policy" })
        let error = #expect(throws: MijianError.self) { try Report(json: value) }
        #expect(error?.message.contains("report.policy") == true)
    }
}
