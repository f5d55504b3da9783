#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianScan

/// The mijian-pdftext worker (built beside the test binary by `swift build --build-tests`):
/// the same first-page text as pdftotext, one process for many PDFs, and a worker that hangs or
/// dies costs one PDF, listed unread with why, never the scan.
@Suite struct PDFWorkerTests {
    static let corpus = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/markings/corpus")

    static func worker() throws -> String { try #require(PDFText.locateWorker(), "mijian-pdftext is built beside the tests") }

    static func read(_ path: String, pdf: PDFText, limits: ScanLimits = ScanLimits()) throws -> ReadOutcome {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        var info = stat()
        fstat(fd, &info)
        return pdf.read(FileSource(fd: fd, path: path, size: Int64(info.st_size)), limits: limits)
    }

    static func summary(_ outcome: ReadOutcome) -> String {
        switch outcome {
        case .document(_, let lines, _, _): return lines.map(\.text).joined(separator: "\n")
        case .unread(_, let reason): return "unread: " + (reason.contains("password") ? "password" : reason.contains("no text layer") ? "no text" : "unreadable")
        default: return "other"
        }
    }

    @Test func theWorkerGivesPdftotextsTextForEveryCorpusPDF() throws {
        let tool = try #require(PDFText.locate(), "pdftotext (poppler-utils) is installed for the tests")
        let viaWorker = PDFText(tool: nil, worker: try Self.worker())
        let viaTool = PDFText(tool: tool, worker: nil)
        let pdfs = try #require(FileManager.default.enumerator(atPath: Self.corpus.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".pdf") }
        #expect(pdfs.count >= 20)
        for pdf in pdfs {
            let path = Self.corpus.appendingPathComponent(pdf).path
            #expect(Self.summary(try Self.read(path, pdf: viaWorker)) == Self.summary(try Self.read(path, pdf: viaTool)), "\(pdf)")
        }
    }

    @Test func oneWorkerServesManyPDFs() throws {
        let pdf = PDFText(tool: nil, worker: try Self.worker())
        let path = Self.corpus.appendingPathComponent("office/notice-mimi-1y.pdf").path
        for _ in 0..<5 {
            guard case .document(_, let lines, _, _) = try Self.read(path, pdf: pdf) else {
                Issue.record("not read")
                return
            }
            #expect(lines.contains { $0.text.hasPrefix("秘密★1") })
        }
        #expect(pdf.pool?.idleCount == 1)
    }

    /// Stand-ins for poppler on a hostile PDF: one that never answers, one that dies.
    static func script(_ body: String) throws -> String {
        let directory = try TestSupport.temporaryDirectory("mijian-pdfworker")
        let path = directory.appendingPathComponent("worker").path
        try Data("#!/bin/sh\n\(body)\n".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o755)
        return path
    }

    @Test func aWorkerThatHangsIsKilledAtTheDeadlineAndThePDFIsUnread() throws {
        var limits = ScanLimits()
        limits.pdfSeconds = 1
        let pdf = PDFText(tool: nil, worker: try Self.script("exec sleep 60"))
        let started = Date()
        guard case .unread(.pdf, let reason) = try Self.read(Self.corpus.appendingPathComponent("office/notice-mimi-1y.pdf").path, pdf: pdf, limits: limits) else {
            Issue.record("not unread")
            return
        }
        #expect(reason == "poppler took longer than 1 s on the first page")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(pdf.pool?.idleCount == 0)
    }

    @Test func aWorkerThatDiesCostsOnePDFAndIsReplaced() throws {
        let pdf = PDFText(tool: nil, worker: try Self.script("exit 3"))
        let path = Self.corpus.appendingPathComponent("office/notice-mimi-1y.pdf").path
        for _ in 0..<2 {
            guard case .unread(.pdf, let reason) = try Self.read(path, pdf: pdf) else {
                Issue.record("not unread")
                return
            }
            #expect(reason.hasPrefix("the PDF reader ended on this file"), "\(reason)")
        }
    }

    @Test func withoutAWorkerPdftotextReads() throws {
        let tool = try #require(PDFText.locate())
        let pdf = PDFText(tool: tool, worker: "/nonexistent/mijian-pdftext")
        guard case .document(_, let lines, _, _) = try Self.read(Self.corpus.appendingPathComponent("office/notice-mimi-1y.pdf").path, pdf: pdf) else {
            Issue.record("not read")
            return
        }
        #expect(lines.contains { $0.text.hasPrefix("秘密★1") })
    }
}
