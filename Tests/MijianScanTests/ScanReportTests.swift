import MijianCore
import Testing

@testable import MijianScan

/// The JSON shape `mijian scan --format json` promises: key order and what a hit carries.
@Suite struct ScanReportTests {
    @Test func hitCarriesTheMarkingAloneAndWhereItWasFound() {
        let hit = MarkingHit(
            kind: .marking, level: .confidential, text: "秘密★1年", period: "1年",
            location: HitLocation(part: "word/document.xml", line: 2), score: 95, reason: "top of the first page")
        let result = FileResult(path: "/home/a/doc.docx", format: .docx, status: FileResult.status(of: [hit]), size: 1200, hits: [hit])
        #expect(result.status == .marked)
        let text = result.json.compactString
        #expect(text.hasPrefix(#"{"path":"/home/a/doc.docx","format":"docx","status":"marked","size":1200,"from_index":false,"hits":[{"kind":"marking","level":"秘密","text":"秘密★1年","period":"1年","where":{"part":"word/document.xml","page":1,"line":2,"region":"body"},"score":95"#))
    }
}
