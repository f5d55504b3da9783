import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianScan

/// The labelled corpus (`Tests/Fixtures/markings`, made by `scripts/fixtures/make-markings-corpus.py`
/// with LibreOffice, zip, tar, gzip, iconv and qpdf): no marking may be missed, and the share of
/// files called marked that hold no marking stays under the stated bound.
@Suite struct CorpusTests {
    /// Largest share of the corpus's files without a marking that the scan may call marked.
    static let falsePositiveBound = 0.02

    struct Label {
        let path: String
        let format: String
        let expect: String
    }

    static func labels() throws -> [Label] {
        let url = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/markings/labels.json")
        let json = try JSONParser().parse(Array(try Data(contentsOf: url)))
        return try #require(json.arrayValue).compactMap { entry in
            guard let path = entry["path"]?.stringValue, let format = entry["format"]?.stringValue, let expect = entry["expect"]?.stringValue else { return nil }
            return Label(path: path, format: format, expect: expect)
        }
    }

    static func scan() -> [String: FileResult] {
        let corpus = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/markings/corpus").path
        let facts = Scanner(root: corpus, options: ScanOptions(paths: ["/"])).run()
        return Dictionary(facts.files.map { (String($0.path.dropFirst()), $0) }, uniquingKeysWith: { first, _ in first })
    }

    @Test func noMarkingIsMissedAndFalsePositivesStayUnderTheBound() throws {
        let labels = try Self.labels()
        #expect(labels.count >= 100)
        let results = Self.scan()
        var missed: [String] = []
        var falsePositives: [String] = []
        var agree = 0
        let expected: [String: FileStatus] = ["marking": .marked, "mention": .mentioned, "none": .clean, "unread": .unread]
        for label in labels {
            let status = results[label.path]?.status
            if status == expected[label.expect] { agree += 1 }
            if label.expect == "marking", status != .marked { missed.append("\(label.path): \(status?.rawValue ?? "not listed")") }
            if label.expect != "marking", status == .marked { falsePositives.append(label.path) }
        }
        let negatives = labels.filter { $0.expect != "marking" }.count
        let rate = Double(falsePositives.count) / Double(max(1, negatives))
        print("corpus: \(labels.count) labelled, \(labels.count - negatives) marked, \(missed.count) missed; \(falsePositives.count) of \(negatives) unmarked called marked (rate \(rate)); \(agree) agree with their label exactly")
        #expect(missed.isEmpty, "missed markings: \(missed)")
        #expect(rate <= Self.falsePositiveBound, "false positives: \(falsePositives)")
    }

    /// A file the corpus says cannot be read is never reported clean: what was not read is not vouched for.
    @Test func unreadableFilesAreNeverClean() throws {
        let results = Self.scan()
        for label in try Self.labels() where label.expect == "unread" {
            let result = try #require(results[label.path], "\(label.path) not listed")
            #expect(result.status == .unread, "\(label.path): \(result.status)")
            #expect(result.reason?.isEmpty == false)
        }
    }

    /// Every format of the corpus is recognised by content as the label says.
    @Test func formatsAreRecognisedByContent() throws {
        let results = Self.scan()
        for label in try Self.labels() {
            guard let result = results[label.path], result.status != .unread || result.format != .other else { continue }
            #expect(result.format.rawValue == label.format, "\(label.path): \(result.format) for \(label.format)")
        }
    }
}
