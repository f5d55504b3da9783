import MijianCore
import Testing

@testable import MijianScan

/// The text reader reads the first lines, where a marking can be, and no more of the file.
@Suite struct TextHeadTests {
    /// Bytes in memory that remember how far into them a reader went.
    final class CountingSource: ByteSource, @unchecked Sendable {
        let bytes: [UInt8]
        private(set) var furthest = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var size: Int64 { Int64(bytes.count) }
        var bytesRead: Int64 { 0 }
        func read(at offset: Int64, count: Int) throws(MijianError) -> [UInt8] {
            let start = Int(offset), end = min(bytes.count, Int(offset) + count)
            guard start < end else { return [] }
            furthest = max(furthest, end)
            return Array(bytes[start..<end])
        }
    }

    static func read(_ source: CountingSource, name: String = "note.txt") -> FileResult? {
        Scanner(root: "/", options: ScanOptions(paths: []), pdf: PDFText(tool: nil, worker: nil)).read(source, path: "/" + name, depth: 0).first
    }

    static let body = "一季度办公室完成了会议组织、文件收发和后勤保障等工作，下一步将继续完善制度，提高办事效率。\n"

    @Test func aLongNoteIsReadOnlyAsFarAsItsFirstLines() throws {
        let text = "000123\n秘密★1年\n" + String(repeating: Self.body, count: 2000)
        let source = CountingSource(Array(text.utf8))
        let result = try #require(Self.read(source))
        #expect(result.status == .marked)
        #expect(result.hits.first?.text == "秘密★1年")
        #expect(source.furthest <= DocumentReader.textHeadBytes, "read \(source.furthest) of \(text.utf8.count) bytes")
    }

    @Test func aGBKNoteCutInsideACharacterIsStillGB18030() throws {
        // "12\n秘密★1年\n" then lines of 20 × 通知 in GBK (81 bytes each): the 16 KiB head ends
        // between the two bytes of a character.
        let marking: [UInt8] = [0x31, 0x32, 0x0A, 0xC3, 0xD8, 0xC3, 0xDC, 0xA1, 0xEF, 0x31, 0xC4, 0xEA, 0x0A]
        let line = Array([[UInt8]](repeating: [0xCD, 0xA8, 0xD6, 0xAA], count: 20).joined()) + [0x0A]
        let gbk = marking + Array([[UInt8]](repeating: line, count: 400).joined())
        #expect((DocumentReader.textHeadBytes - marking.count) % line.count % 2 == 1)
        let source = CountingSource(gbk)
        let result = try #require(Self.read(source))
        #expect(result.encoding == "gb18030")
        #expect(result.status == .marked)
        #expect(source.furthest <= DocumentReader.textHeadBytes)
    }

    @Test func longLinesAreReadBeyondTheHeadUpToTheLineLimit() throws {
        // 40 lines of 600 bytes: the first 16 KiB hold 27 of them, fewer than the 64 lines judged,
        // so the reader goes on; line 30 (past 16 KiB) is a mention and is seen.
        let long = String(repeating: "a", count: 599) + "\n"
        var lines = Array(repeating: long, count: 40)
        lines[29] = "培训材料中的秘密★1年标志写法示例，仅供学习。\n"
        let source = CountingSource(Array(lines.joined().utf8))
        let result = try #require(Self.read(source))
        #expect(source.furthest > DocumentReader.textHeadBytes)
        #expect(result.status == .mentioned)
        #expect(result.hits.first?.location.line == 30)
    }

    @Test func linesPastTheLimitAreNotJudged() throws {
        var lines = Array(repeating: "第一段。\n", count: 100)
        lines[ScanLimits().lines + 5] = "培训材料中的秘密★1年标志写法示例。\n"
        let result = try #require(Self.read(CountingSource(Array(lines.joined().utf8))))
        #expect(result.status == .clean)
    }

    @Test func linesSplitAtEveryBreakAndBlankLinesAreDropped() {
        let text = "甲\r\n乙\r丙\n\n \u{3000}\t\n丁\u{2028}戊\u{0C}己 "
        #expect(TextDecoding.lines(text) == ["甲", "乙", "丙", "丁", "戊", "己 "])
    }

    @Test func textWithoutTheCharacter密HoldsNoHitAndTextWithItIsStillJudged() {
        #expect(!MarkingRecogniser.containsMi("秘★1年 机要"))
        #expect(MarkingRecogniser.containsMi("机 密★2年"))
        let spaced = MarkingRecogniser.hits(in: [TextLine("000123", HitLocation(part: "text", line: 1)), TextLine("机 密★2年", HitLocation(part: "text", line: 2))])
        #expect(spaced.first?.kind == .marking)
    }

    @Test func theDeclaredCharsetIsFoundInTheHead() {
        #expect(DocumentReader.declaredCharset(Array("<?xml version=\"1.0\" Encoding=\"GBK\"?><a/>".utf8)) == "gbk")
        #expect(DocumentReader.declaredCharset(Array("<html><head><meta charset='GB2312'>".utf8)) == "gb2312")
        #expect(DocumentReader.declaredCharset(Array("<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\">".utf8)) == "utf-8")
        #expect(DocumentReader.declaredCharset(Array("纯文本，没有声明。".utf8)) == nil)
    }
}
