import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianScan

/// Readers on documents built in memory: encodings, archives and every bound.
@Suite struct ReaderTests {
    static func read(_ bytes: [UInt8], name: String, limits: ScanLimits = ScanLimits(), path: String? = nil) -> [FileResult] {
        var options = ScanOptions(paths: [])
        options.limits = limits
        return Scanner(root: "/", options: options, pdf: PDFText(tool: nil, worker: nil)).read(MemorySource(bytes), path: path ?? "/" + name, depth: 0)
    }

    static let notice = "000123\n秘密★1年\n关于做好年度重点工作的通知\n各部门：现将有关事项通知如下。\n"

    @Test func gb18030TextIsDetected() throws {
        // "000123\n秘密★1年\n通知\n" as iconv -t GB18030 writes it.
        let bytes: [UInt8] = [0x30, 0x30, 0x30, 0x31, 0x32, 0x33, 0x0A, 0xC3, 0xD8, 0xC3, 0xDC, 0xA1, 0xEF, 0x31, 0xC4, 0xEA, 0x0A, 0xCD, 0xA8, 0xD6, 0xAA, 0x0A]
        let result = try #require(Self.read(bytes, name: "a.txt").first)
        #expect(result.encoding == "gb18030")
        #expect(result.status == .marked)
        #expect(result.hits.first?.text == "秘密★1年")
    }

    @Test func utf8AndUTF16WithByteOrderMarks() throws {
        let utf8 = try #require(Self.read([0xEF, 0xBB, 0xBF] + Array(Self.notice.utf8), name: "a.txt").first)
        #expect(utf8.encoding == "utf-8")
        #expect(utf8.status == .marked)
        var utf16: [UInt8] = [0xFF, 0xFE]
        for unit in Self.notice.utf16 { utf16 += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        let wide = try #require(Self.read(utf16, name: "a.txt").first)
        #expect(wide.encoding == "utf-16le")
        #expect(wide.status == .marked)
    }

    @Test func htmlFooterAndEntities() throws {
        let marked = "<html><head><title>秘密★1年</title></head><body><p>000123</p><p>秘密&#9733;1年</p><p>通知</p></body></html>"
        let result = try #require(Self.read(Array(marked.utf8), name: "a.html").first)
        #expect(result.format == .html)
        #expect(result.status == .marked)
        #expect(result.hits.count == 1)  // the title is not on the page
        let footer = "<html><body><p>通知</p><p>正文</p><footer><p>秘密★1年</p></footer></body></html>"
        #expect(Self.read(Array(footer.utf8), name: "b.html").first?.status == .mentioned)
    }

    @Test func markdownEmphasisIsRemoved() throws {
        let result = try #require(Self.read(Array("# 通知\n\n**机密★2年**\n\n正文\n".utf8), name: "a.md").first)
        #expect(result.format == .md)
        #expect(result.status == .marked)
    }

    @Test func binaryNoiseIsNoDocumentUnlessItsNameClaimsOne() {
        let noise = (0..<2048).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }
        #expect(Self.read(noise, name: "a.bin", path: "/a.bin").isEmpty)
        let claimed = Self.read(noise, name: "a.docx", path: "/a.docx")
        #expect(claimed.first?.status == .unread)
        #expect(claimed.first?.format == .docx)
    }

    @Test func zipMembersAreReadAndListed() throws {
        let zip = ZipWriter.archive([
            .init(name: "docs/notice.txt", data: Array(Self.notice.utf8)),
            .init(name: "readme.txt", data: Array("普通文件\n".utf8), deflate: false),
        ])
        let results = Self.read(zip, name: "a.zip", path: "/a.zip")
        #expect(results.map(\.path) == ["/a.zip", "/a.zip!docs/notice.txt", "/a.zip!readme.txt"])
        #expect(results.map(\.status) == [.marked, .marked, .clean])
    }

    @Test func encryptedMemberIsUnreadWithWhy() throws {
        let zip = ZipWriter.archive([.init(name: "secret.txt", data: Array(Self.notice.utf8), encrypted: true)])
        let results = Self.read(zip, name: "a.zip", path: "/a.zip")
        #expect(results[0].status == .unread)
        #expect(results[1].reason?.contains("encrypted") == true)
    }

    @Test func aMemberLargerThanTheLimitIsNotInflated() throws {
        var limits = ScanLimits()
        limits.memberBytes = 1 << 20
        let zip = ZipWriter.archive([.init(name: "big.txt", data: [UInt8](repeating: 0x41, count: 2 << 20))])
        let results = Self.read(zip, name: "a.zip", limits: limits, path: "/a.zip")
        #expect(results[1].status == .unread)
        #expect(results[1].reason?.contains("larger than") == true)
    }

    @Test func aMemberThatInflatesPastItsDeclaredSizeIsABomb() throws {
        var limits = ScanLimits()
        limits.memberBytes = 4 << 20
        var zip = ZipWriter.archive([.init(name: "bomb.txt", data: [UInt8](repeating: 0, count: 8 << 20))])
        // Claim 1 KiB uncompressed in the central directory, as a bomb does.
        let found = (0..<(zip.count - 4)).last { zip[$0] == 0x50 && zip[$0 + 1] == 0x4B && zip[$0 + 2] == 1 && zip[$0 + 3] == 2 }
        let directory = try #require(found)
        zip[directory + 24] = 0; zip[directory + 25] = 4; zip[directory + 26] = 0; zip[directory + 27] = 0
        let results = Self.read(zip, name: "a.zip", limits: limits, path: "/a.zip")
        #expect(results[1].status == .unread)
        #expect(results[1].reason?.contains("bomb") == true, "\(results[1].reason ?? "")")
    }

    @Test func archivesNestOnlyToTheDepthLimit() throws {
        var inner = ZipWriter.archive([.init(name: "notice.txt", data: Array(Self.notice.utf8))])
        for level in 0..<4 { inner = ZipWriter.archive([.init(name: "level\(level).zip", data: inner)]) }
        let results = Self.read(inner, name: "a.zip", path: "/a.zip")
        #expect(results.contains { $0.status == .unread && $0.reason?.contains("nested deeper") == true })
        #expect(!results.contains { $0.path.hasSuffix("notice.txt") })
    }

    @Test func aTruncatedZipIsUnread() throws {
        let zip = ZipWriter.archive([.init(name: "notice.txt", data: Array(Self.notice.utf8))])
        let results = Self.read(Array(zip.prefix(zip.count / 2)), name: "a.zip", path: "/a.zip")
        #expect(results.first?.status == .unread)
        #expect(results.first?.reason?.contains("end-of-central-directory") == true)
    }

    @Test func aPDFWithoutPdftotextIsUnreadAndSaysWhy() throws {
        let results = Self.read(Array("%PDF-1.7\n".utf8), name: "a.pdf")
        #expect(results.first?.status == .unread)
        #expect(results.first?.reason == "pdftotext not installed (Debian package poppler-utils)")
    }
}

/// The service's scan thread and the policy's scope.
@Suite struct ScanScheduleTests {
    @Test func theScanThreadRunsAtIdlePriority() async {
        let (policy, idle) = await IdleThread.run { IdleThread.currentPolicy() }
        // Root may always lower its own priority; SCHED_IDLE is 5.
        #expect(idle)
        #expect(policy == 5)
        #expect(IdleThread.currentPolicy() != 5)
    }

    /// The scan thread is in the idle I/O class (IOPRIO_CLASS_IDLE, 3) by an explicit
    /// ioprio_set, and a thread it starts to read files takes its CPU policy and I/O class.
    @Test func theScanThreadAndItsReadersAreInTheIdleIOClass() async {
        let ((own, reader), idle) = await IdleThread.run { () -> (Int32?, (Int32, Int32?)) in
            let priority = IdleThread.Priority.current()
            let box = ReaderPriority()
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                priority.apply()
                box.value = (IdleThread.currentPolicy(), IdleThread.currentIOClass())
                done.signal()
            }
            thread.start()
            done.wait()
            return (IdleThread.currentIOClass(), box.value)
        }
        #expect(idle)
        #expect(own == 3)
        #expect(reader.0 == 5)
        #expect(reader.1 == 3)
        #expect(IdleThread.currentIOClass() != 3)
    }

    @Test func scopePathsThatDoNotExistAreAbsentNotErrors() throws {
        let root = try TestSupport.temporaryDirectory("mijian-scope")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("home/a"), withIntermediateDirectories: true)
        try Data("000123\n绝密★长期\n".utf8).write(to: root.appendingPathComponent("home/a/n.txt"))
        let policy = try TestSupport.policy("id: t\nversion: \"1\"\nprofile: unclassified\nmarkings: {paths: [/home, /run/media], interval_hours: 0}\n")
        #expect(policy.markings.intervalHours == 0)
        let facts = MarkingProbe.observe(root: root.path, policy: policy, stateDir: nil)
        #expect(facts.errors.isEmpty)
        #expect(facts.totals.marked == 1)
        let typed = MarkingProbe.observe(root: root.path, policy: policy, paths: ["/run/media"], stateDir: nil)
        #expect(typed.errors.first?.reason == "no such file or directory")
    }
}

/// What a reading thread saw of its own priority.
private final class ReaderPriority: @unchecked Sendable {
    // Written by the thread before it signals, read after the wait.
    var value: (Int32, Int32?) = (0, nil)
}
