import Foundation

/// Whether a hit is a document's own classification marking or the marking's text used inside
/// the content (a training text, a quotation, a footer).
public enum HitKind: String, Sendable, CaseIterable {
    /// The grammar matched where a marking sits: the top of the first page, or a page header.
    case marking
    /// The grammar matched somewhere else (mid-paragraph, further down, a footer).
    case mention
}

/// Which part of a page a line of text came from.
public enum TextRegion: String, Sendable, CaseIterable {
    /// The body of the document (or a slide, a sheet, a page of a fixed-layout file).
    case body
    /// A page header (`word/header*.xml`, `style:header`, a spreadsheet's `oddHeader`).
    case header
    /// A page footer: a marking there is a mention at most.
    case footer
}

/// Where in a file a hit was found. `part` names the member or stream read (e.g.
/// `word/document.xml`, `Doc_0/Pages/Page_0/Content.xml`, `WordDocument`); `line` counts the
/// non-empty lines (paragraphs, cells, text objects) of that part as read, from 1.
public struct HitLocation: Sendable, Equatable {
    /// The member or stream of the file.
    public var part: String
    /// The page (1 for the first page; readers read no further than the first page or slide).
    public var page: Int
    /// The non-empty line of the part, from 1.
    public var line: Int
    /// Body, header or footer.
    public var region: TextRegion

    /// Makes a location.
    public init(part: String, page: Int = 1, line: Int, region: TextRegion = .body) {
        self.part = part
        self.page = page
        self.line = line
        self.region = region
    }
}

/// One match of the marking grammar. `text` is the matched marking alone (level, star, period),
/// never the text around it.
public struct MarkingHit: Sendable, Equatable {
    /// Marking or mention.
    public var kind: HitKind
    /// 绝密, 机密 or 秘密.
    public var level: Classification
    /// The matched marking as written (spaces and line breaks between its parts dropped).
    public var text: String
    /// The period as matched (`1年`, `长期`, `2027年6月30日`, `解密条件`), nil when none follows the star.
    public var period: String?
    /// Where it was found.
    public var location: HitLocation
    /// 0–100: how surely this is a document's marking (grammar and position); ≥ 60 is a marking.
    public var score: Int
    /// Why it was scored so, one sentence.
    public var reason: String
    /// The marking stands on a line of its own (a label or a copy number before it at most); not in JSON.
    public var isolated = false

    /// Makes a hit.
    public init(kind: HitKind, level: Classification, text: String, period: String?, location: HitLocation, score: Int, reason: String) {
        self.kind = kind
        self.level = level
        self.text = text
        self.period = period
        self.location = location
        self.score = score
        self.reason = reason
    }
}

/// A file's outcome.
public enum FileStatus: String, Sendable, CaseIterable {
    /// At least one hit is a marking.
    case marked
    /// Hits, none of them a marking.
    case mentioned
    /// Read where a marking can be, nothing found.
    case clean
    /// Could not be read (encrypted, corrupt, too large, no text layer, no tool): `reason` says why.
    case unread
}

/// The formats the readers know, by content (the extension only names `wps` files, whose content
/// is either Word's binary format or OOXML).
public enum DocumentFormat: String, Sendable, CaseIterable {
    case txt, html, xml, md, docx, xlsx, pptx, odt, ods, odp, ofd, wps, doc, pdf, zip, tar, gz, eml, mbox
    /// Not a document format: looked at (its first bytes) and not read.
    case other
}

/// One file (or archive member) examined by a scan.
public struct FileResult: Sendable, Equatable {
    /// The path: a host path, and for an archive member `archive.zip!dir/doc.docx` (nested: `a.zip!b.tar!c.txt`).
    public var path: String
    /// Its format, by content.
    public var format: DocumentFormat
    /// The outcome.
    public var status: FileStatus
    /// Size in bytes.
    public var size: Int64
    /// Why it is unread, or a note (an encoding guessed, a part missing); nil when there is nothing to say.
    public var reason: String?
    /// Every hit, markings first.
    public var hits: [MarkingHit]
    /// The outcome was taken from the index: size, mtime, inode (or content hash) unchanged.
    public var fromIndex: Bool
    /// How the text was decoded, for plain text (`utf-8`, `gb18030`, `utf-16le`, …).
    public var encoding: String?

    /// Makes a result.
    public init(path: String, format: DocumentFormat, status: FileStatus, size: Int64, reason: String? = nil, hits: [MarkingHit] = [], fromIndex: Bool = false, encoding: String? = nil) {
        self.path = path
        self.format = format
        self.status = status
        self.size = size
        self.reason = reason
        self.hits = hits
        self.fromIndex = fromIndex
        self.encoding = encoding
    }

    /// The status the hits give a file that was read.
    public static func status(of hits: [MarkingHit]) -> FileStatus {
        if hits.contains(where: { $0.kind == .marking }) { return .marked }
        return hits.isEmpty ? .clean : .mentioned
    }
}

/// Counts over a scan.
public struct ScanTotals: Sendable, Equatable {
    /// Files and members listed in `files`.
    public var files = 0
    /// Per status.
    public var marked = 0, mentioned = 0, clean = 0, unread = 0
    /// Files seen that are not documents (media, executables): counted, not listed.
    public var notDocuments = 0
    /// Paths left out by the scope's exclusions, size or depth limits (counted, not listed).
    public var excluded = 0
    /// Results taken from the index without reading.
    public var fromIndex = 0
    /// Bytes read from disk (archive members count as their archive's reads).
    public var bytesRead: Int64 = 0
    /// Total size of the files examined.
    public var bytesExamined: Int64 = 0

    /// Empty totals.
    public init() {}
}

/// What `data.markings` judges: the files a scan of the policy's scope examined.
public struct MarkingFacts: Sendable, Equatable {
    /// The root the paths were read under.
    public var root: String
    /// The host paths scanned.
    public var paths: [String]
    /// Every document examined (archive members as `archive.zip!member`).
    public var files: [FileResult]
    /// Paths that could not be walked, with why.
    public var errors: [PathError]
    /// Counts.
    public var totals: ScanTotals
    /// Something about the scan worth saying in evidence (an index rebuilt, a tool missing).
    public var notes: [String]

    /// A path that could not be walked.
    public struct PathError: Sendable, Equatable {
        /// The host path.
        public var path: String
        /// Why.
        public var reason: String

        /// Makes one.
        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    /// Makes facts.
    public init(root: String = "/", paths: [String] = [], files: [FileResult] = [], errors: [PathError] = [], totals: ScanTotals = ScanTotals(), notes: [String] = []) {
        self.root = root
        self.paths = paths
        self.files = files
        self.errors = errors
        self.totals = totals
        self.notes = notes
    }
}

extension FileResult {
    /// The result as JSON.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("path", .string(path)), ("format", .string(format.rawValue)), ("status", .string(status.rawValue)), ("size", .int(size)),
        ]
        if let reason { members.append(("reason", .string(reason))) }
        if let encoding { members.append(("encoding", .string(encoding))) }
        members.append(("from_index", .bool(fromIndex)))
        members.append(("hits", .array(hits.map(\.json))))
        return .object(members)
    }
}

extension MarkingHit {
    /// The hit as JSON.
    public var json: JSONValue {
        .object([
            ("kind", .string(kind.rawValue)), ("level", .string(level.rawValue)), ("text", .string(text)), ("period", .optional(period)),
            ("where", .object([
                ("part", .string(location.part)), ("page", .integer(location.page)), ("line", .integer(location.line)),
                ("region", .string(location.region.rawValue)),
            ])),
            ("score", .integer(score)), ("reason", .string(reason)),
        ])
    }
}

extension ScanTotals {
    /// The totals as JSON.
    public var json: JSONValue {
        .object([
            ("files", .integer(files)), ("marked", .integer(marked)), ("mentioned", .integer(mentioned)), ("clean", .integer(clean)),
            ("unread", .integer(unread)), ("not_documents", .integer(notDocuments)), ("excluded", .integer(excluded)),
            ("from_index", .integer(fromIndex)), ("bytes_read", .int(bytesRead)), ("bytes_examined", .int(bytesExamined)),
        ])
    }

    /// Counts a file the index knows is no document.
    public mutating func fromIndexNotDocuments(_ notDocument: Bool) {
        if notDocument { notDocuments += 1 }
    }

    /// Counts one listed result.
    public mutating func count(_ result: FileResult) {
        files += 1
        switch result.status {
        case .marked: marked += 1
        case .mentioned: mentioned += 1
        case .clean: clean += 1
        case .unread: unread += 1
        }
        if result.fromIndex { fromIndex += 1 }
    }
}
