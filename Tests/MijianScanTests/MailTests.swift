import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianScan

/// Mail messages and spools built in memory: MIME structure, transfer encodings, charsets,
/// encoded words, attachments read by their formats, evidence, and every bound.
@Suite struct MailTests {
    static func read(_ text: String, name: String = "m.eml", limits: ScanLimits = ScanLimits()) -> [FileResult] {
        ReaderTests.read(Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8), name: name, limits: limits, path: "/" + name)
    }

    static func headers(_ subject: String = "通知", id: Int = 1) -> String {
        "From: a@example.cn\nTo: b@example.cn\nSubject: \(subject)\nDate: Mon, 5 Jan 2026 09:00:00 +0800\nMessage-ID: <\(id)@example.cn>\nMIME-Version: 1.0\n"
    }

    static func b64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString(options: .lineLength76Characters) }

    @Test func aMarkedBodyInBase64IsAMarkingAndEvidenceNamesTheMessageNotItsText() throws {
        let body = Self.b64(Array("秘密★1年\n关于年度工作的通知\n机要内容不得外传\n".utf8))
        let results = Self.read(Self.headers() + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" + body + "\n")
        let message = try #require(results.first)
        #expect(message.format == .eml)
        #expect(message.status == .marked)
        #expect(message.hits.first?.text == "秘密★1年")
        #expect(message.hits.first?.location.part == "body")
        #expect(message.reason == "Message-ID <1@example.cn>, Date Mon, 5 Jan 2026 09:00:00 +0800")
        // The finding's rows hold the marking and where it is, never the message's words.
        let evidence = String(decoding: JSONValue.array(results.map(\.json)).serialized(), as: UTF8.self)
        #expect(!evidence.contains("机要内容"))
        #expect(!evidence.contains("年度工作"))
    }

    @Test func quotedPrintableWithSoftBreaksAndAGBKCharset() throws {
        // "000015\n机密★2年\n" in GBK, quoted-printable, the marking line broken by a soft break.
        let gbk: [UInt8] = [0xBB, 0xFA, 0xC3, 0xDC, 0xA1, 0xEF, 0x32, 0xC4, 0xEA]
        let encoded = gbk.map { String(format: "=%02X", $0) }
        let qp = "000015\n" + encoded[0..<4].joined() + "=\n" + encoded[4...].joined() + "\n"
        let results = Self.read(Self.headers() + "Content-Type: text/plain; charset=gb2312\nContent-Transfer-Encoding: quoted-printable\n\n" + qp)
        #expect(results.first?.status == .marked)
        #expect(results.first?.encoding == "gb18030")
        #expect(results.first?.hits.first?.text == "机密★2年")
    }

    @Test func encodedWordsInTheSubjectAreDecodedAndJoined() throws {
        #expect(Mail.decodeWords(Array("=?gbk?b?w9jD3KHvMcTq?= =?utf-8?q?_=E5=85=B3=E4=BA=8E?=".utf8)) == "秘密★1年 关于")
        #expect(Mail.decodeWords(Array("Re: =?UTF-8?B?6YCa55+l?= today".utf8)) == "Re: 通知 today")
        #expect(Mail.subjectLines("回复：【机密★2年】关于会议") == ["机密★2年", "关于会议"])
        #expect(Mail.subjectLines("秘密★1年 关于做好年度重点工作的通知") == ["秘密★1年", "关于做好年度重点工作的通知"])
        let subject = "=?gbk?b?w9jD3KHvMcTqILnY09rNqNaq?="  // 秘密★1年 关于通知
        let results = Self.read(Self.headers(subject) + "Content-Type: text/plain; charset=utf-8\n\n请办理。\n")
        #expect(results.first?.status == .marked)
        #expect(results.first?.hits.first?.location.part == "subject")
        // The same words inside a subject sentence are a mention.
        let mention = Self.read(Self.headers("关于秘密★1年文件的清理") + "\n请办理。\n")
        #expect(mention.first?.status == .mentioned)
    }

    @Test func attachmentsAreReadByTheirFormatInsideNestedMultiparts() throws {
        let docx = ZipWriter.archive([
            .init(name: "[Content_Types].xml", data: Array("<Types/>".utf8)),
            .init(name: "word/document.xml", data: Array(#"<w:document xmlns:w="w"><w:body><w:p><w:r><w:t>000123</w:t></w:r></w:p><w:p><w:r><w:t>绝密★长期</w:t></w:r></w:p></w:body></w:document>"#.utf8)),
        ])
        let inner = Self.headers("附件", id: 2) + "Content-Type: text/plain; charset=utf-8\n\n000001\n机密★1年\n"
        let text = Self.headers() + """
            Content-Type: multipart/mixed; boundary="outer"

            preamble
            --outer
            Content-Type: multipart/alternative; boundary="alt"

            --alt
            Content-Type: text/plain; charset=utf-8

            请查收。
            --alt
            Content-Type: text/html; charset=utf-8

            <p>请查收。</p>
            --alt--
            --outer
            Content-Type: application/octet-stream
            Content-Transfer-Encoding: base64
            Content-Disposition: attachment; filename*=utf-8''%E9%80%9A%E7%9F%A5.docx

            \(Self.b64(docx))
            --outer
            Content-Type: message/rfc822

            \(inner)
            --outer--

            """
        let results = Self.read(text)
        #expect(results.map(\.path) == ["/m.eml", "/m.eml!通知.docx", "/m.eml!part 4"])
        #expect(results.map(\.status) == [.marked, .marked, .marked])
        #expect(results[0].hits.isEmpty)
        #expect(results[1].format == .docx)
        #expect(results[2].format == .eml)
        #expect(results[2].reason?.contains("Message-ID <2@example.cn>") == true)
    }

    @Test func anMboxIsReadMessageByMessage() throws {
        let first = Self.headers("周报", id: 1) + "\n普通的工作总结\n>From the office\n"
        let second = Self.headers("通知", id: 2) + "\n000123\n秘密★6个月\n"
        let results = Self.read("From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n" + first + "\nFrom - Mon Jan  5 09:00:00 2026\n" + second, name: "alice")
        #expect(results.map(\.path) == ["/alice", "/alice!message 1", "/alice!message 2"])
        #expect(results.map(\.format) == [.mbox, .eml, .eml])
        #expect(results.map(\.status) == [.marked, .clean, .marked])
        #expect(results[0].reason == "2 messages")
        #expect(results[2].reason?.hasPrefix("Message-ID <2@example.cn>") == true)
    }

    @Test func aSpoolIsStreamedInWindowsAndAMessageOverTheLimitIsUnread() throws {
        var limits = ScanLimits()
        limits.memberBytes = 4096
        let big = Self.headers("大", id: 1) + "\n" + String(repeating: "普通内容普通内容\n", count: 400)
        let small = Self.headers("小", id: 2) + "\n000123\n绝密★长期\n"
        // Separators beyond Mailbox.chunk bytes: the walk reads more than one window.
        let filler = Self.headers("填充", id: 3) + "\n" + String(repeating: "a", count: 70) + "\n"
        var spool = "From a Thu Jan  1 00:00:00 2026\n" + big
        for _ in 0..<(Mailbox.chunk / filler.utf8.count + 10) { spool += "From a Thu Jan  1 00:00:00 2026\n" + filler }
        spool += "From a Thu Jan  1 00:00:00 2026\n" + small
        let results = ReaderTests.read(Array(spool.utf8), name: "spool", limits: limits, path: "/spool")
        #expect(results[1].status == .unread)
        #expect(results[1].reason?.contains("larger than 4096 bytes") == true)
        let last = try #require(results.last)
        #expect(last.status == .marked)
        #expect(last.reason?.contains("Message-ID <2@example.cn>") == true)
        #expect(results[0].status == .marked)
    }

    @Test func partsAndNestingAreBounded() throws {
        var text = Self.headers() + "Content-Type: multipart/mixed; boundary=b\n\n"
        for index in 0..<(Mail.maxParts + 20) { text += "--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=f\(index).bin\n\nxx\n" }
        text += "--b--\n"
        let results = Self.read(text)
        #expect(results.count == 1 + Mail.maxParts)
        #expect(results[0].reason?.contains("only the first \(Mail.maxParts) parts") == true)
        var nested = "--n0\nContent-Type: text/plain\n\n000123\n秘密★1年\n"
        for level in 0..<(Mail.maxNesting + 2) { nested = "--n\(level + 1)\nContent-Type: multipart/mixed; boundary=n\(level)\n\n" + nested }
        let deep = Self.read(Self.headers() + "Content-Type: multipart/mixed; boundary=n\(Mail.maxNesting + 2)\n\n" + nested)
        #expect(deep[0].status == .clean)
        #expect(deep[0].reason?.contains("nested at most") == true)
    }

    @Test func textThatOnlyLooksLikeHeadersIsNotMail() {
        #expect(!Mail.looksLikeMessage(Array("标题: 通知\n秘密★1年\n".utf8)))
        #expect(!Mail.looksLikeMessage(Array("Subject: x\nKeywords: y\nAuthor: z\n\nbody\n".utf8)))
        #expect(Mail.looksLikeMessage(Array("Return-Path: <a@b>\nReceived: from x\nSubject: y\n\n".utf8)))
        #expect(!Mail.looksLikeMbox(Array("From here on we go\nand on\n".utf8)))
        #expect(ReaderTests.read(Array("From here on we go\n秘密★1年\n".utf8), name: "a.txt").first?.format == .txt)
    }

    @Test func transferEncodingsDecode() {
        #expect(Mail.base64(Array("5ZGo\r\n5oql".utf8)) == Array("周报".utf8))
        #expect(Mail.quotedPrintable(Array("a=3Db=\r\nc= \nd".utf8)) == Array("a=bcd".utf8))
        let unknown = Entity(Array("Content-Transfer-Encoding: x-uuencode\n\nabc".utf8)[...]).decodedBody()
        #expect(unknown == .failure(Unreadable("the transfer encoding x-uuencode is not one MIME defines")))
    }
}
