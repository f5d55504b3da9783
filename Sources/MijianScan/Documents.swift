import Foundation
import MijianCore

/// What reading one file gave: the lines where a marking can be, members to read in turn, or why
/// it could not be read.
enum ReadOutcome {
    /// A document and its lines (`note`: something worth saying, e.g. a part that was missing).
    case document(DocumentFormat, [TextLine], encoding: String?, note: String?)
    /// An archive: its members, each its bytes or why they could not be had; `note` says what
    /// was left out (members beyond the limit).
    case archive(DocumentFormat, [(name: String, bytes: Result<[UInt8], Unreadable>)], note: String?)
    /// One mail message: its Subject and body lines, its attachments.
    case message(MailMessage)
    /// An mbox: its messages are read one by one from the source.
    case mailbox
    /// A document that could not be read.
    case unread(DocumentFormat, String)
    /// Not a document format.
    case notDocument
}

/// Reads a file as the office software would, only where a marking can be: recognises the format
/// by content (the extension only tells `wps` and Markdown apart) and hands out lines.
struct DocumentReader {
    let limits: ScanLimits
    let pdf: PDFText

    func read(_ source: any ByteSource, name: String) -> ReadOutcome {
        let head: [UInt8]
        do { head = try source.head(1024) } catch { return .unread(.other, error.message) }
        let lowerName = name.lowercased()
        let wpsName = lowerName.hasSuffix(".wps") || lowerName.hasSuffix(".wpt")
        if ZipArchive.looksLike(head) { return readZip(source, wps: wpsName, claimed: Self.claimedFormat(lowerName)) }
        if head.starts(with: CompoundFile.magic) { return readOLE2(source, wps: wpsName) }
        if Self.isPDF(head) { return pdf.read(source, limits: limits) }
        if head.starts(with: [0x1F, 0x8B]) { return readGzip(source, name: name) }
        if Tar.looksLike(head) { return Tar.members(source, limits: limits) }
        if Mail.looksLikeMbox(head) { return .mailbox }
        if Mail.looksLikeMessage(head) { return readMessage(source) }
        let outcome = readText(source, name: lowerName, head: head)
        if case .notDocument = outcome, let format = Self.claimedFormat(lowerName), source.size > 0 {
            // Named as a document but none by content: damaged, or renamed to hide what it is.
            return .unread(format, "named .\(lowerName.split(separator: ".").last ?? "") but its content is no such document: corrupt or disguised")
        }
        return outcome
    }

    /// The format a binary document's extension claims.
    static func claimedFormat(_ name: String) -> DocumentFormat? {
        guard let ext = name.split(separator: ".").last.map(String.init), name.contains(".") else { return nil }
        switch ext {
        case "docx", "docm", "dotx": return .docx
        case "xlsx", "xlsm": return .xlsx
        case "pptx", "pptm": return .pptx
        case "odt": return .odt
        case "ods": return .ods
        case "odp": return .odp
        case "ofd": return .ofd
        case "wps", "wpt": return .wps
        case "doc", "dot": return .doc
        case "pdf": return .pdf
        case "zip": return .zip
        case "tar": return .tar
        case "gz", "tgz": return .gz
        default: return nil
        }
    }

    static func isPDF(_ head: [UInt8]) -> Bool {
        // `%PDF-` anywhere in the head, compared in place: every file's head is looked at.
        guard head.count >= 5 else { return false }
        for index in 0...(head.count - 5) where head[index] == 0x25 {
            if head[index + 1] == 0x50, head[index + 2] == 0x44, head[index + 3] == 0x46, head[index + 4] == 0x2D { return true }
        }
        return false
    }

    // MARK: text, HTML, XML, Markdown

    private func readText(_ source: any ByteSource, name: String, head: [UInt8]) -> ReadOutcome {
        // A NUL in the first bytes is binary (an image, a video, an executable), unless a UTF-16
        // byte-order mark says the text is in 16-bit units: not read further.
        if head.contains(0), !head.starts(with: [0xFF, 0xFE]), !head.starts(with: [0xFE, 0xFF]) { return .notDocument }
        let trimmed = head.drop { XMLTokenizer.isSpace($0) || $0 == 0xEF || $0 == 0xBB || $0 == 0xBF }
        let start = String(decoding: trimmed.prefix(256), as: UTF8.self).lowercased()
        let isHTML = start.hasPrefix("<!doctype html") || start.hasPrefix("<html") || ((name.hasSuffix(".html") || name.hasSuffix(".htm")) && start.hasPrefix("<"))
        let isXML = !isHTML && start.hasPrefix("<")
        let markdown = name.hasSuffix(".md") || name.hasSuffix(".markdown")
        // A marking is in the first lines: a small head is read first, and the whole `textBytes`
        // only when the head holds no more than `limits.lines` lines (the last line of a cut read
        // may be cut too, so one line more than the limit is needed to trust the head).
        var want = min(limits.textBytes, Self.textHeadBytes)
        while true {
            let bytes: [UInt8]
            do { bytes = try source.head(want) } catch { return .unread(.txt, error.message) }
            let truncated = source.size > Int64(bytes.count)
            guard let (text, encoding) = TextDecoding.decode(bytes, declared: Self.declaredCharset(bytes), truncated: truncated) else { return .notDocument }
            let (format, lines) = textLines(text, html: isHTML, xml: isXML, markdown: markdown, limit: limits.lines + 1)
            if !truncated || lines.count > limits.lines || want >= limits.textBytes {
                return .document(format, Array(lines.prefix(limits.lines)), encoding: encoding, note: nil)
            }
            want = limits.textBytes
        }
    }

    /// Bytes of a text file read first: the first lines of most documents.
    static let textHeadBytes = 16 << 10

    /// The first `limit` lines of decoded text as HTML, XML, Markdown or plain text show them.
    private func textLines(_ text: String, html: Bool, xml: Bool, markdown: Bool, limit: Int) -> (DocumentFormat, [TextLine]) {
        if html { return (.html, HTMLText.lines(Array(text.utf8), limit: limit)) }
        if xml {
            var tokenizer = XMLTokenizer(Array(text.utf8))
            var lines: [TextLine] = []
            while lines.count < limit, let token = tokenizer.next() {
                if case .text(let value) = token {
                    for line in TextDecoding.lines(value) {
                        lines.append(TextLine(line, HitLocation(part: "xml", line: lines.count + 1)))
                    }
                }
            }
            return (.xml, Array(lines.prefix(limit)))
        }
        var lines: [TextLine] = []
        TextDecoding.forEachLine(text) { line in
            let shown = markdown ? Self.markdownText(line) : line
            if shown.allSatisfy(\.isWhitespace) { return true }
            lines.append(TextLine(shown, HitLocation(part: markdown ? "markdown" : "text", line: lines.count + 1)))
            return lines.count < limit
        }
        return (markdown ? .md : .txt, lines)
    }

    /// A Markdown line as it renders: heading marks, quotes, list bullets and emphasis dropped.
    static func markdownText(_ line: String) -> String {
        var text = Substring(line).drop { $0 == " " }
        while let first = text.first, first == "#" || first == ">" { text = text.dropFirst().drop { $0 == " " } }
        if text.hasPrefix("- ") || text.hasPrefix("+ ") { text = text.dropFirst(2) }
        return String(text).replacingOccurrences(of: "**", with: "").replacingOccurrences(of: "__", with: "")
    }

    /// `charset=` of an HTML meta tag or `encoding=` of an XML declaration in the first bytes.
    static func declaredCharset(_ bytes: [UInt8]) -> String? {
        // ASCII case folded on the bytes: no String is made of the head to look for two words.
        let head = bytes.prefix(1024).map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        for key in [Array("charset=".utf8), Array("encoding=".utf8)] where head.count >= key.count {
            guard let at = (0...(head.count - key.count)).first(where: { head[$0] == key[0] && Array(head[$0..<$0 + key.count]) == key }) else { continue }
            let value = head[(at + key.count)...].drop { $0 == 0x22 || $0 == 0x27 || $0 == 0x20 }
            let name = value.prefix { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
            if !name.isEmpty { return String(decoding: name, as: UTF8.self) }
        }
        return nil
    }

    // MARK: zip containers

    private func readZip(_ source: any ByteSource, wps: Bool, claimed: DocumentFormat?) -> ReadOutcome {
        let zip: ZipArchive
        do { zip = try ZipArchive(source, limits: limits) } catch { return .unread(claimed ?? .zip, error.reason) }
        do {
            if zip.entry("word/document.xml") != nil { return .document(wps ? .wps : .docx, try OOXML.word(zip, limits: limits), encoding: nil, note: nil) }
            if zip.entry("xl/workbook.xml") != nil { return .document(.xlsx, try OOXML.sheet(zip, limits: limits), encoding: nil, note: nil) }
            if zip.entry("ppt/presentation.xml") != nil { return .document(.pptx, try OOXML.slide(zip, limits: limits), encoding: nil, note: nil) }
            if zip.entry("OFD.xml") != nil { return .document(.ofd, try OFD.lines(zip, limits: limits), encoding: nil, note: nil) }
            if zip.entries.contains(where: { $0.name.hasSuffix("Content.xml") && $0.name.contains("Pages/Page_") }) {
                return .unread(.ofd, "an OFD package without OFD.xml, the entry file GB/T 33190 requires: corrupt")
            }
            if let mimetype = try zip.read("mimetype", limit: 128).map({ String(decoding: $0, as: UTF8.self) }),
                mimetype.hasPrefix("application/vnd.oasis.opendocument.")
            {
                return try ODF.read(zip, mimetype: mimetype, limits: limits)
            }
        } catch {
            let format: DocumentFormat =
                zip.entry("word/document.xml") != nil ? (wps ? .wps : .docx)
                : zip.entry("xl/workbook.xml") != nil ? .xlsx : zip.entry("ppt/presentation.xml") != nil ? .pptx
                : zip.entry("OFD.xml") != nil ? .ofd : .odt
            return .unread(format, error.reason)
        }
        var members: [(name: String, bytes: Result<[UInt8], Unreadable>)] = []
        var total = 0
        var note: String?
        if zip.entries.count >= limits.members { note = "only the first \(limits.members) members were looked at" }
        for entry in zip.entries where !entry.isDirectory {
            guard total < limits.archiveBytes else {
                note = "members after \(limits.archiveBytes) inflated bytes were not read"
                members.append((entry.name, .failure(Unreadable("not read: the archive's inflated-bytes limit was reached"))))
                continue
            }
            guard entry.size <= Int64(limits.memberBytes) else {
                members.append((entry.name, .failure(Unreadable("larger than \(limits.memberBytes) bytes uncompressed"))))
                continue
            }
            do {
                // One byte past the declared size is enough to catch a member that lies about it.
                let (bytes, complete) = try zip.read(entry, limit: Int(min(Int64(limits.memberBytes), entry.size + 1)))
                total += bytes.count
                if Int64(bytes.count) > entry.size {
                    members.append((entry.name, .failure(Unreadable("inflates past the \(entry.size) bytes its directory declares: a zip bomb, or corrupt"))))
                } else if !complete && Int64(bytes.count) < entry.size {
                    members.append((entry.name, .failure(Unreadable("the member is cut short: corrupt"))))
                } else {
                    members.append((entry.name, .success(bytes)))
                }
            } catch {
                members.append((entry.name, .failure(error)))
            }
        }
        return .archive(.zip, members, note: note)
    }

    // MARK: OLE2

    private func readOLE2(_ source: any ByteSource, wps: Bool) -> ReadOutcome {
        let format: DocumentFormat = wps ? .wps : .doc
        let file: CompoundFile
        do { file = try CompoundFile(source, limit: limits.memberBytes) } catch { return .unread(format, error.reason) }
        if file.has("EncryptionInfo") || file.has("EncryptedPackage") {
            return .unread(wps ? .wps : .docx, "encrypted: a password-protected OOXML document (EncryptionInfo)")
        }
        guard file.has("WordDocument") else {
            let kind = file.has("Workbook") || file.has("Book") ? "an Excel 97–2003 workbook" : file.has("PowerPoint Document") ? "a PowerPoint 97–2003 presentation" : "an OLE2 file without a Word document"
            return .unread(.other, "\(kind), which the scan does not read")
        }
        do { return .document(format, try WordBinary.lines(file, limits: limits), encoding: nil, note: nil) } catch { return .unread(format, error.reason) }
    }

    // MARK: mail

    private func readMessage(_ source: any ByteSource) -> ReadOutcome {
        guard source.size <= Int64(limits.memberBytes) else {
            return .unread(.eml, "a mail message larger than \(limits.memberBytes) bytes: not read")
        }
        do { return .message(Mail.message(try source.read(at: 0, count: Int(source.size)), limits: limits)) } catch { return .unread(.eml, error.message) }
    }

    // MARK: gzip

    private func readGzip(_ source: any ByteSource, name: String) -> ReadOutcome {
        let result: (bytes: [UInt8], complete: Bool)
        do {
            result = try Inflater.inflate(source, from: 0, compressedSize: nil, gzip: true, limit: limits.memberBytes, maxRatio: limits.maxRatio, name: "gzip data")
        } catch {
            return .unread(.gz, error.reason)
        }
        var inner = name
        for suffix in [".gz", ".tgz"] where inner.lowercased().hasSuffix(suffix) {
            inner = String(inner.dropLast(suffix.count)) + (suffix == ".tgz" ? ".tar" : "")
        }
        if inner == name { inner = name + ".out" }
        let base = inner.split(separator: "/").last.map(String.init) ?? inner
        // A compressed tar is one archive: its members are listed under the .tar.gz itself.
        if result.complete, Tar.looksLike(Array(result.bytes.prefix(512))) { return Tar.members(MemorySource(result.bytes), limits: limits) }
        guard result.complete else {
            return .archive(.gz, [(base, .failure(Unreadable("more than \(limits.memberBytes) bytes uncompressed, or the data is cut short")))], note: nil)
        }
        return .archive(.gz, [(base, .success(result.bytes))], note: nil)
    }
}

/// The page text of HTML: block elements end lines, `<head>`, scripts and styles are not shown,
/// and text inside `<footer>` is the footer region.
enum HTMLText {
    static let blocks: Set<String> = [
        "p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "td", "th", "table", "section", "article", "header",
        "footer", "blockquote", "pre", "ul", "ol", "hr", "body", "center", "dd", "dt",
    ]

    static func lines(_ bytes: [UInt8], limit: Int) -> [TextLine] {
        var tokenizer = XMLTokenizer(bytes, html: true)
        var lines: [TextLine] = []
        var current = ""
        var inHead = false
        var footerDepth = 0
        var region: TextRegion = .body
        func flush() {
            for text in TextDecoding.lines(current) {
                lines.append(TextLine(text, HitLocation(part: "html", line: lines.count + 1, region: region)))
            }
            current = ""
        }
        while lines.count < limit, let token = tokenizer.next() {
            switch token {
            case .start(let name, _, _):
                if name == "head" { inHead = true }
                if name == "body" { inHead = false }
                if blocks.contains(name) { flush() }
                if name == "footer" { footerDepth += 1 }
                region = footerDepth > 0 ? .footer : .body
            case .end(let name):
                if name == "head" { inHead = false }
                if blocks.contains(name) || name == "title" { flush() }
                if name == "footer" { footerDepth = max(0, footerDepth - 1) }
                region = footerDepth > 0 ? .footer : .body
            case .text(let text):
                if !inHead { current += text.replacingOccurrences(of: "\n", with: " ") }
            }
        }
        flush()
        return Array(lines.prefix(limit))
    }
}

/// Office Open XML: Word's body and header parts, a workbook's first sheet, a presentation's first slide.
enum OOXML {
    static func word(_ zip: ZipArchive, limits: ScanLimits) throws(Unreadable) -> [TextLine] {
        guard let document = try zip.read("word/document.xml", limit: limits.partBytes) else { throw Unreadable("word/document.xml is missing") }
        let collector = ParagraphCollector(vocabulary: .word)
        var lines = number(collector.paragraphs(document, limit: limits.lines), part: "word/document.xml")
        let parts = zip.entries.map(\.name).filter { ($0.hasPrefix("word/header") || $0.hasPrefix("word/footer")) && $0.hasSuffix(".xml") }.sorted()
        for part in parts.prefix(12) {
            guard let bytes = try zip.read(part, limit: limits.partBytes) else { continue }
            let region: TextRegion = part.hasPrefix("word/header") ? .header : .footer
            lines += number(collector.paragraphs(bytes, limit: 16), part: part, region: region)
        }
        return lines
    }

    static func number(_ paragraphs: [ParagraphCollector.Paragraph], part: String, region: TextRegion? = nil) -> [TextLine] {
        var lines: [TextLine] = []
        for paragraph in paragraphs {
            for text in paragraph.lines {
                lines.append(TextLine(text, HitLocation(part: part, page: paragraph.page, line: lines.count + 1, region: region ?? paragraph.region)))
            }
        }
        return lines
    }

    /// The first sheet's first rows, cell by cell (shared strings resolved), and its header and footer.
    static func sheet(_ zip: ZipArchive, limits: ScanLimits) throws(Unreadable) -> [TextLine] {
        var shared: [String] = []
        if let bytes = try zip.read("xl/sharedStrings.xml", limit: limits.partBytes) {
            var tokenizer = XMLTokenizer(bytes)
            var current: String?
            var inText = 0, inPhonetic = 0
            while shared.count < 4096, let token = tokenizer.next() {
                switch token {
                case .start(let name, _, let selfClosing):
                    if name == "si" { current = "" }
                    if name == "t", !selfClosing { inText += 1 }
                    if name == "rPh", !selfClosing { inPhonetic += 1 }
                    if name == "si", selfClosing { shared.append("") ; current = nil }
                case .end(let name):
                    if name == "t" { inText = max(0, inText - 1) }
                    if name == "rPh" { inPhonetic = max(0, inPhonetic - 1) }
                    if name == "si", let text = current { shared.append(text); current = nil }
                case .text(let text):
                    if inText > 0, inPhonetic == 0 { current? += text }
                }
            }
        }
        let sheetName = firstSheet(zip) ?? "xl/worksheets/sheet1.xml"
        guard let sheet = try zip.read(sheetName, limit: limits.partBytes) else { throw Unreadable("\(sheetName) is missing") }
        var tokenizer = XMLTokenizer(sheet)
        var lines: [TextLine] = []
        var cellType: String?
        var value = ""
        var inValue = false
        var headerElement: TextRegion?
        var headerText = ""
        var rows = 0
        var cellsRead = 0
        var rowCells: [String] = []
        while let token = tokenizer.next() {
            switch token {
            case .start(let name, let attributes, let selfClosing):
                if name == "row" { rows += 1 }
                if name == "c" { cellType = attributes["t"]; value = "" }
                if name == "v" || name == "t", !selfClosing { inValue = true }
                if ["oddHeader", "evenHeader", "firstHeader"].contains(name) { headerElement = .header; headerText = "" }
                if ["oddFooter", "evenFooter", "firstFooter"].contains(name) { headerElement = .footer; headerText = "" }
            case .end(let name):
                if name == "v" || name == "t" { inValue = false }
                if name == "c", cellsRead < limits.lines {
                    var text = value
                    if cellType == "s", let index = Int(value.trimmingCharacters(in: .whitespaces)), index >= 0, index < shared.count { text = shared[index] }
                    if !text.allSatisfy(\.isWhitespace) {
                        cellsRead += 1
                        rowCells.append(text)
                    }
                }
                if name == "row", !rowCells.isEmpty {
                    lines.append(TextLine(rowCells.joined(separator: cellSeparator), HitLocation(part: sheetName, line: lines.count + 1)))
                    rowCells = []
                }
                if let region = headerElement, name.hasSuffix("Header") || name.hasSuffix("Footer") {
                    for segment in headerSegments(headerText) {
                        lines.append(TextLine(segment, HitLocation(part: sheetName + ":" + name, line: lines.count + 1, region: region)))
                    }
                    headerElement = nil
                }
            case .text(let text):
                if headerElement != nil { headerText += text } else if inValue { value += text }
            }
            if rows > limits.lines && headerElement == nil && cellsRead >= limits.lines { break }
        }
        return lines
    }

    /// Joins the cells of a row into one line. Not a space: a marking that shares its row with
    /// other cells is a value in a table (a ledger's 密级 column), not a sheet's marking, which
    /// stands alone in its row.
    static let cellSeparator = "\u{1F}"

    /// A header's sections (`&L`, `&C`, `&R`) without its formatting codes (`&"font"`, `&12`, `&B`).
    static func headerSegments(_ text: String) -> [String] {
        var segments: [String] = []
        var current = ""
        var characters = Array(text)[...]
        while let character = characters.popFirst() {
            guard character == "&", let code = characters.first else { current.append(character); continue }
            characters = characters.dropFirst()
            switch code {
            case "L", "C", "R":
                segments.append(current)
                current = ""
            case "\"":
                characters = characters.drop { $0 != "\"" }.dropFirst()
            case "&": current.append("&")
            default:
                if code.isNumber { characters = characters.drop { $0.isNumber } }
            }
        }
        segments.append(current)
        return segments.filter { !$0.allSatisfy(\.isWhitespace) }
    }

    /// The part of the workbook's first sheet, from `xl/workbook.xml` and its relationships.
    static func firstSheet(_ zip: ZipArchive) -> String? {
        guard let workbook = try? zip.read("xl/workbook.xml", limit: 1 << 20),
            let rels = try? zip.read("xl/_rels/workbook.xml.rels", limit: 1 << 20)
        else { return nil }
        guard let id = firstAttribute(workbook, element: "sheet", attribute: "r:id") else { return nil }
        return relationshipTarget(rels, id: id, base: "xl/")
    }

    static func firstAttribute(_ bytes: [UInt8], element: String, attribute: String) -> String? {
        var tokenizer = XMLTokenizer(bytes)
        while let token = tokenizer.next() {
            if case .start(let name, let attributes, _) = token, name == element || name.hasSuffix(":" + element), let value = attributes[attribute] { return value }
        }
        return nil
    }

    static func relationshipTarget(_ rels: [UInt8], id: String, base: String) -> String? {
        var tokenizer = XMLTokenizer(rels)
        while let token = tokenizer.next() {
            if case .start(let name, let attributes, _) = token, name == "Relationship", attributes["Id"] == id, let target = attributes["Target"] {
                return resolve(target, base: base)
            }
        }
        return nil
    }

    /// The first slide's paragraphs, shapes ordered from the top of the slide down.
    static func slide(_ zip: ZipArchive, limits: ScanLimits) throws(Unreadable) -> [TextLine] {
        var name = "ppt/slides/slide1.xml"
        if let presentation = try? zip.read("ppt/presentation.xml", limit: 1 << 20),
            let rels = try? zip.read("ppt/_rels/presentation.xml.rels", limit: 1 << 20),
            let id = firstAttribute(presentation, element: "p:sldId", attribute: "r:id"),
            let target = relationshipTarget(rels, id: id, base: "ppt/")
        {
            name = target
        }
        guard let bytes = try zip.read(name, limit: limits.partBytes) else { throw Unreadable("\(name), the first slide, is missing") }
        var lines: [TextLine] = []
        for text in shapeTexts(bytes, placeholders: true) where lines.count < limits.lines {
            lines.append(TextLine(text, HitLocation(part: name, line: lines.count + 1)))
        }
        // What the slide's layout and master show on every slide (a text box, not a placeholder's
        // prompt) sits on slide 1 too, like a page header.
        var part = name
        for _ in 0..<2 {
            let directory = part.split(separator: "/").dropLast().joined(separator: "/")
            let file = part.split(separator: "/").last.map(String.init) ?? part
            guard let rels = try? zip.read(directory + "/_rels/" + file + ".rels", limit: 1 << 20),
                let target = relationshipTarget(rels, type: part == name ? "slideLayout" : "slideMaster", base: directory + "/"),
                let bytes = try? zip.read(target, limit: limits.partBytes)
            else { break }
            for text in shapeTexts(bytes, placeholders: false) {
                lines.append(TextLine(text, HitLocation(part: target, line: lines.count + 1, region: .header)))
            }
            part = target
        }
        return lines
    }

    /// The text of a slide part's shapes, from the top of the slide down (shapes without an
    /// offset keep their order); without `placeholders`, placeholder shapes (whose text in a
    /// layout or master is a prompt, never shown) are left out.
    static func shapeTexts(_ bytes: [UInt8], placeholders: Bool) -> [String] {
        var shapes: [(y: Int64, order: Int, paragraphs: [String])] = []
        var tokenizer = XMLTokenizer(bytes)
        var current: (y: Int64?, placeholder: Bool, paragraphs: [String])?
        var paragraph: String?
        var inText = 0
        var depth = 0
        while let token = tokenizer.next() {
            switch token {
            case .start(let element, let attributes, let selfClosing):
                if element == "p:sp" || element == "p:graphicFrame" || element == "p:cxnSp", !selfClosing {
                    if depth == 0 { current = (nil, false, []) }
                    depth += 1
                }
                if element == "p:ph" { current?.placeholder = true }
                if element == "a:off", current?.y == nil, let y = attributes["y"].flatMap({ Int64($0) }) { current?.y = y }
                if element == "a:p", !selfClosing { paragraph = "" }
                if element == "a:t", !selfClosing { inText += 1 }
                if element == "a:br" { paragraph? += "\n" }
            case .end(let element):
                if element == "a:t" { inText = max(0, inText - 1) }
                if element == "a:p", let text = paragraph {
                    current?.paragraphs.append(text)
                    paragraph = nil
                }
                if element == "p:sp" || element == "p:graphicFrame" || element == "p:cxnSp" {
                    depth = max(0, depth - 1)
                    if depth == 0, let shape = current {
                        if placeholders || !shape.placeholder { shapes.append((shape.y ?? Int64.max / 2, shapes.count, shape.paragraphs)) }
                        current = nil
                    }
                }
            case .text(let text):
                if inText > 0 { paragraph? += text }
            }
        }
        return shapes.sorted(by: { ($0.y, $0.order) < ($1.y, $1.order) }).flatMap { $0.paragraphs.flatMap { TextDecoding.lines($0) } }
    }

    /// The target of the first relationship whose type ends in `/type`.
    static func relationshipTarget(_ rels: [UInt8], type: String, base: String) -> String? {
        var tokenizer = XMLTokenizer(rels)
        while let token = tokenizer.next() {
            if case .start(let name, let attributes, _) = token, name == "Relationship", attributes["Type"]?.hasSuffix("/" + type) == true,
                let target = attributes["Target"]
            {
                return resolve(target, base: base)
            }
        }
        return nil
    }

    /// A relationship target (relative, with `..`) as a member name.
    static func resolve(_ target: String, base: String) -> String {
        if target.hasPrefix("/") { return String(target.dropFirst()) }
        var parts = base.split(separator: "/").map(String.init)
        for piece in target.split(separator: "/") {
            if piece == ".." { _ = parts.popLast() } else if piece != "." { parts.append(String(piece)) }
        }
        return parts.joined(separator: "/")
    }
}

/// OpenDocument: the body of `content.xml` (the first sheet or the first slide of a spreadsheet
/// or presentation) and the page headers and footers of `styles.xml`.
enum ODF {
    static let headerRegions: [String: TextRegion] = [
        "style:header": .header, "style:header-left": .header, "style:header-first": .header,
        "style:footer": .footer, "style:footer-left": .footer, "style:footer-first": .footer,
    ]

    static func read(_ zip: ZipArchive, mimetype: String, limits: ScanLimits) throws(Unreadable) -> ReadOutcome {
        let kind = mimetype.dropFirst("application/vnd.oasis.opendocument.".count)
        let format: DocumentFormat = kind.hasPrefix("spreadsheet") ? .ods : kind.hasPrefix("presentation") ? .odp : .odt
        if let manifest = try zip.read("META-INF/manifest.xml", limit: 1 << 20), find("encryption-data", in: manifest) != nil {
            return .unread(format, "encrypted: a password-protected OpenDocument file")
        }
        guard let whole = try zip.read("content.xml", limit: limits.partBytes) else { throw Unreadable("content.xml is missing") }
        let content = from("<office:body", in: whole)
        let collector = ParagraphCollector(vocabulary: .odf)
        var lines: [TextLine]
        if format == .ods {
            lines = sheetRows(content, limit: limits.lines)
        } else {
            lines = OOXML.number(collector.paragraphs(content, limit: limits.lines, stopAt: format == .odp ? "draw:page" : nil), part: "content.xml")
        }
        if let whole = try zip.read("styles.xml", limit: limits.partBytes) {
            let styles = from("<office:master-styles", in: whole)
            // A presentation's master page shows its text boxes on every slide: a header.
            let regions = format == .odp ? headerRegions.merging(["style:master-page": .header]) { first, _ in first } : headerRegions
            lines += OOXML.number(collector.paragraphs(styles, limit: 32, regions: regions), part: "styles.xml")
        }
        return .document(format, lines, encoding: nil, note: nil)
    }
}

extension ODF {
    /// The part from the first `marker` on, or all of it when the marker is not there. What
    /// the readers take from an ODF part lies in one element near its end: the body of
    /// `content.xml` (after the font declarations and the automatic styles) and the master
    /// pages of `styles.xml` (the only place headers and footers are), after every style of the
    /// document. Tokenizing what comes before them cost most of an ODF file's time.
    static func from(_ marker: String, in bytes: [UInt8]) -> [UInt8] {
        find(marker, in: bytes).map { Array(bytes[$0...]) } ?? bytes
    }

    /// Where `marker` first is in `bytes` (compared as bytes: no String made of a part).
    static func find(_ marker: String, in bytes: [UInt8]) -> Int? {
        let needle = Array(marker.utf8)
        guard let first = needle.first, bytes.count >= needle.count else { return nil }
        var index = 0
        let last = bytes.count - needle.count
        while index <= last {
            guard let at = bytes[index...last].firstIndex(of: first) else { return nil }
            if bytes[at..<(at + needle.count)].elementsEqual(needle) { return at }
            index = at + 1
        }
        return nil
    }

    /// The first table's rows, each a line of its cells (as `OOXML.cellSeparator` joins them).
    static func sheetRows(_ content: [UInt8], limit: Int) -> [TextLine] {
        var tokenizer = XMLTokenizer(content)
        var lines: [TextLine] = []
        var row: [String] = []
        var cell: String?
        var inParagraph = 0
        while lines.count < limit, let token = tokenizer.next() {
            switch token {
            case .start(let name, let attributes, let selfClosing):
                if name == "table:table-row" { row = [] }
                if name == "table:table-cell", !selfClosing { cell = "" }
                if name == "text:p", !selfClosing {
                    if let current = cell, !current.isEmpty { cell = current + " " }
                    inParagraph += 1
                }
                if name == "text:s", inParagraph > 0 { cell? += String(repeating: " ", count: Int(attributes["text:c"] ?? "1") ?? 1) }
                if name == "office:annotation", !selfClosing { inParagraph -= 1000 }
            case .end(let name):
                if name == "text:p" { inParagraph -= 1 }
                if name == "office:annotation" { inParagraph += 1000 }
                if name == "table:table-cell", let text = cell {
                    if !text.allSatisfy(\.isWhitespace) { row.append(text) }
                    cell = nil
                }
                if name == "table:table-row", !row.isEmpty {
                    lines.append(TextLine(row.joined(separator: OOXML.cellSeparator), HitLocation(part: "content.xml", line: lines.count + 1)))
                    row = []
                }
                if name == "table:table" { return lines }
            case .text(let text):
                if inParagraph > 0 { cell? += text }
            }
        }
        return lines
    }
}

/// OFD (GB/T 33190): `OFD.xml` names the document, the document its pages; the first page's
/// `TextObject`s (with their `TextCode`s) are placed by their boundaries, top of the page first.
enum OFD {
    static func lines(_ zip: ZipArchive, limits: ScanLimits) throws(Unreadable) -> [TextLine] {
        guard let ofd = try zip.read("OFD.xml", limit: 1 << 20) else { throw Unreadable("OFD.xml is missing") }
        guard let docRoot = elementText(ofd, "DocRoot").map(path) else { throw Unreadable("OFD.xml names no DocRoot") }
        guard let document = try zip.read(docRoot, limit: limits.partBytes) else { throw Unreadable("\(docRoot), the document OFD.xml names, is missing") }
        let directory = docRoot.split(separator: "/").dropLast().joined(separator: "/")
        var pageLoc: String?
        var pageHeight = 297.0
        var tokenizer = XMLTokenizer(document)
        var inPhysical = false
        while let token = tokenizer.next() {
            switch token {
            case .start(let name, let attributes, _):
                if local(name) == "Page", pageLoc == nil, let loc = attributes["BaseLoc"] { pageLoc = loc }
                if local(name) == "PhysicalBox" { inPhysical = true }
            case .end(let name):
                if local(name) == "PhysicalBox" { inPhysical = false }
            case .text(let text):
                if inPhysical, let height = text.split(separator: " ").compactMap({ Double($0) }).dropFirst(3).first { pageHeight = height }
            }
        }
        guard let pageLoc else { throw Unreadable("\(docRoot) lists no page") }
        let pagePath = pageLoc.hasPrefix("/") ? path(pageLoc) : (directory.isEmpty ? "" : directory + "/") + path(pageLoc)
        guard let content = try zip.read(pagePath, limit: limits.partBytes) else { throw Unreadable("\(pagePath), the first page, is missing") }
        // Text objects with their top and left (mm), from Boundary="x y w h" plus a TextCode's own X/Y.
        var objects: [(y: Double, x: Double, text: String)] = []
        var object: (x: Double, y: Double)?
        var code: (x: Double, y: Double, text: String)?
        tokenizer = XMLTokenizer(content)
        while let token = tokenizer.next() {
            switch token {
            case .start(let name, let attributes, let selfClosing):
                if local(name) == "TextObject" {
                    let box = (attributes["Boundary"] ?? "").split(separator: " ").compactMap { Double($0) }
                    object = (box.first ?? 0, box.count > 1 ? box[1] : 0)
                }
                if local(name) == "TextCode", !selfClosing {
                    code = (Double(attributes["X"] ?? "") ?? 0, Double(attributes["Y"] ?? "") ?? 0, "")
                }
            case .end(let name):
                if local(name) == "TextCode", let found = code, let object {
                    // Y is the baseline; a line's top is near enough for ordering.
                    objects.append((object.y + found.y, object.x + found.x, found.text))
                    code = nil
                }
                if local(name) == "TextObject" { object = nil }
            case .text(let text):
                code?.text += text
            }
        }
        // Objects on one baseline (within 2 mm) are one line; a wide gap between them is layout.
        var rows: [(y: Double, parts: [(x: Double, text: String)])] = []
        for item in objects.sorted(by: { ($0.y, $0.x) < ($1.y, $1.x) }) {
            if let last = rows.last, abs(last.y - item.y) <= 2 { rows[rows.count - 1].parts.append((item.x, item.text)) } else { rows.append((item.y, [(item.x, item.text)])) }
        }
        var lines: [TextLine] = []
        for row in rows where lines.count < limits.lines {
            let text = row.parts.sorted { $0.x < $1.x }.map(\.text).joined()
            guard !text.allSatisfy(\.isWhitespace) else { continue }
            let region: TextRegion = row.y > pageHeight * 0.92 ? .footer : .body
            lines.append(TextLine(text, HitLocation(part: pagePath, line: lines.count + 1, region: region)))
        }
        return lines
    }

    static func local(_ name: String) -> Substring { name.split(separator: ":").last ?? Substring(name) }

    static func path(_ text: String) -> String { String(text.drop { $0 == "/" }).trimmingCharacters(in: .whitespacesAndNewlines) }

    static func elementText(_ bytes: [UInt8], _ element: String) -> String? {
        var tokenizer = XMLTokenizer(bytes)
        var inside = false
        var text = ""
        while let token = tokenizer.next() {
            switch token {
            case .start(let name, _, _): if local(name) == element { inside = true }
            case .end(let name): if local(name) == element, inside { return text }
            case .text(let value): if inside { text += value }
            }
        }
        return nil
    }
}
