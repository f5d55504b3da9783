import MijianCore

/// A forgiving pull tokenizer for the XML of office parts (and for HTML): start tags with their
/// attributes, end tags, text with entities resolved. It never fails: a part cut at the read
/// limit simply ends, which is what reading only the start of a part needs.
struct XMLTokenizer {
    enum Token {
        case start(name: String, attributes: XMLAttributes, selfClosing: Bool)
        case end(name: String)
        case text(String)
    }

    private let bytes: [UInt8]
    private var position = 0
    /// HTML: names folded to lower case, HTML's named entities, `<script>`/`<style>` bodies skipped.
    private let html: Bool
    private var rawTextEnd: String?

    init(_ bytes: [UInt8], html: Bool = false) {
        self.bytes = bytes
        self.html = html
    }

    mutating func next() -> Token? {
        while position < bytes.count {
            if let rawEnd = rawTextEnd {
                // Skip a script or style body up to its end tag.
                let needle = Array("</\(rawEnd)".utf8)
                var index = position
                while index + needle.count <= bytes.count {
                    if bytes[index] == 0x3C, Self.matchesFolded(bytes, index, needle) { break }
                    index += 1
                }
                position = index
                rawTextEnd = nil
                continue
            }
            if bytes[position] != 0x3C {
                var end = position
                while end < bytes.count, bytes[end] != 0x3C { end += 1 }
                let text = Self.decodeEntities(bytes[position..<end], html: html)
                position = end
                return .text(text)
            }
            // '<'
            if starts("<!--") {
                position = find("-->", from: position + 4).map { $0 + 3 } ?? bytes.count
                continue
            }
            if starts("<![CDATA[") {
                let start = position + 9
                let end = find("]]>", from: start) ?? bytes.count
                position = min(bytes.count, end + 3)
                return .text(String(decoding: bytes[start..<end], as: UTF8.self))
            }
            if starts("<?") || starts("<!") {
                position = find(">", from: position + 2).map { $0 + 1 } ?? bytes.count
                continue
            }
            guard let close = findTagEnd(from: position + 1) else {
                position = bytes.count
                return nil
            }
            let inner = bytes[(position + 1)..<close]
            position = close + 1
            if inner.first == 0x2F {
                var name = String(decoding: inner.dropFirst().prefix { !Self.isSpace($0) }, as: UTF8.self)
                if html { name = name.lowercased() }
                return .end(name: name)
            }
            let selfClosing = inner.last == 0x2F
            let body = selfClosing ? inner.dropLast() : inner
            var name = String(decoding: body.prefix { !Self.isSpace($0) }, as: UTF8.self)
            if html { name = name.lowercased() }
            let attributes = XMLAttributes(text: body.drop { !Self.isSpace($0) }, html: html)
            if html, !selfClosing, name == "script" || name == "style" { rawTextEnd = name }
            return .start(name: name, attributes: attributes, selfClosing: selfClosing)
        }
        return nil
    }

    private func starts(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard position + needle.count <= bytes.count else { return false }
        return Array(bytes[position..<position + needle.count]) == needle
    }

    private func find(_ text: String, from start: Int) -> Int? {
        let needle = Array(text.utf8)
        var index = start
        while index + needle.count <= bytes.count {
            if bytes[index] == needle[0], Array(bytes[index..<index + needle.count]) == needle { return index }
            index += 1
        }
        return nil
    }

    /// The '>' that ends a tag, quotes respected.
    private func findTagEnd(from start: Int) -> Int? {
        var quote: UInt8 = 0
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            if quote != 0 {
                if byte == quote { quote = 0 }
            } else if byte == 0x22 || byte == 0x27 {
                quote = byte
            } else if byte == 0x3E {
                return index
            }
            index += 1
        }
        return nil
    }

    private static func matchesFolded(_ bytes: [UInt8], _ index: Int, _ needle: [UInt8]) -> Bool {
        for offset in 0..<needle.count {
            var byte = bytes[index + offset]
            if byte >= 0x41, byte <= 0x5A { byte += 32 }
            if byte != needle[offset] { return false }
        }
        return true
    }

    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    /// HTML's named entities that can stand in a marking or between its parts.
    private static let htmlEntities: [String: String] = [
        "nbsp": "\u{00A0}", "ensp": " ", "emsp": " ", "thinsp": " ", "ideographicspace": "\u{3000}", "starf": "★", "bigstar": "★",
        "star": "☆", "ast": "*", "midast": "*", "middot": "·", "hellip": "…", "ldquo": "“", "rdquo": "”", "lsquo": "‘",
        "rsquo": "’", "mdash": "—", "ndash": "–", "copy": "©", "reg": "®", "colon": ":",
    ]

    static func decodeEntities(_ bytes: ArraySlice<UInt8>, html: Bool) -> String {
        guard bytes.contains(0x26) else { return String(decoding: bytes, as: UTF8.self) }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            guard byte == 0x26, let semicolon = bytes[index..<min(bytes.endIndex, index + 34)].firstIndex(of: 0x3B) else {
                output.append(byte)
                index += 1
                continue
            }
            let name = String(decoding: bytes[(index + 1)..<semicolon], as: UTF8.self)
            var replacement: String?
            switch name {
            case "lt": replacement = "<"
            case "gt": replacement = ">"
            case "amp": replacement = "&"
            case "quot": replacement = "\""
            case "apos": replacement = "'"
            default:
                if name.hasPrefix("#x") || name.hasPrefix("#X") {
                    replacement = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                } else if name.hasPrefix("#") {
                    replacement = UInt32(name.dropFirst()).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                } else if html {
                    replacement = htmlEntities[name] ?? htmlEntities[name.lowercased()]
                }
            }
            if let replacement {
                output.append(contentsOf: replacement.utf8)
                index = semicolon + 1
            } else {
                output.append(byte)
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// A start tag's attributes, parsed when one is asked for: most elements of an office part are
/// never asked, and a dictionary made for each of them cost more than the rest of the tokenizer.
/// An attribute given twice reads as its last value.
struct XMLAttributes {
    /// The tag's text after its name.
    let text: ArraySlice<UInt8>
    /// HTML: names compared folded to lower case.
    let html: Bool

    subscript(_ key: String) -> String? {
        var found: String?
        var index = text.startIndex
        while index < text.endIndex {
            while index < text.endIndex, XMLTokenizer.isSpace(text[index]) { index += 1 }
            let nameStart = index
            while index < text.endIndex, text[index] != 0x3D, !XMLTokenizer.isSpace(text[index]) { index += 1 }
            guard index > nameStart else { index += 1; continue }
            let name = text[nameStart..<index]
            let matches = html ? String(decoding: name, as: UTF8.self).lowercased() == key : name.elementsEqual(key.utf8)
            while index < text.endIndex, XMLTokenizer.isSpace(text[index]) { index += 1 }
            guard index < text.endIndex, text[index] == 0x3D else {
                if matches { found = "" }
                continue
            }
            index += 1
            while index < text.endIndex, XMLTokenizer.isSpace(text[index]) { index += 1 }
            guard index < text.endIndex else { break }
            let quote = text[index]
            let value: Range<Int>
            if quote == 0x22 || quote == 0x27 {
                var end = index + 1
                while end < text.endIndex, text[end] != quote { end += 1 }
                value = (index + 1)..<end
                index = min(text.endIndex, end + 1)
            } else {
                let valueStart = index
                while index < text.endIndex, !XMLTokenizer.isSpace(text[index]) { index += 1 }
                value = valueStart..<index
            }
            if matches { found = XMLTokenizer.decodeEntities(text[value], html: html) }
        }
        return found
    }
}

/// Collects paragraphs from office XML as lines: the paragraph elements, the text elements inside
/// them, the elements that stand for a tab, a space or a line break, and the elements whose text
/// is not shown (field codes, deleted text, the fallback copy of a text box).
struct ParagraphCollector {
    struct Vocabulary {
        var paragraphs: Set<String>
        /// Elements whose text counts; empty: all text inside a paragraph counts.
        var texts: Set<String> = []
        var tabs: Set<String> = []
        var breaks: Set<String> = []
        var spaces: Set<String> = []
        var skipped: Set<String> = []
        var pageBreaks: Set<String> = []

        static let word = Vocabulary(
            paragraphs: ["w:p"], texts: ["w:t"], tabs: ["w:tab", "w:ptab"], breaks: ["w:br", "w:cr"],
            skipped: ["w:instrText", "w:delText", "mc:Fallback", "w:footnoteReference", "w:endnoteReference"],
            pageBreaks: ["w:lastRenderedPageBreak"])
        static let odf = Vocabulary(
            paragraphs: ["text:p", "text:h"], tabs: ["text:tab"], breaks: ["text:line-break"], spaces: ["text:s"],
            skipped: ["text:note-citation", "text:note-body", "office:annotation", "text:tracked-changes", "svg:desc", "svg:title"],
            pageBreaks: [])
        static let drawing = Vocabulary(paragraphs: ["a:p"], texts: ["a:t"], tabs: ["a:tab"], breaks: ["a:br"], skipped: ["mc:Fallback"])
    }

    /// A paragraph's lines (split at line breaks) and the page it starts on.
    struct Paragraph {
        var lines: [String]
        var page: Int
        var region: TextRegion = .body
    }

    let vocabulary: Vocabulary

    /// The paragraphs of `bytes` in document order, stopping after `limit` non-empty lines or
    /// at the end of `stopAt` (an element that closes the part of interest, e.g. the first slide).
    /// With `regions`, only paragraphs inside one of its elements are taken, each with that region
    /// (ODF's `style:header` and `style:footer`).
    func paragraphs(
        _ bytes: [UInt8], limit: Int, stopAt: String? = nil, regions: [String: TextRegion] = [:],
        onStart: ((String, XMLAttributes) -> Void)? = nil
    ) -> [Paragraph] {
        var tokenizer = XMLTokenizer(bytes)
        var regionStack: [TextRegion] = []
        var result: [Paragraph] = []
        var stack: [String] = []  // open paragraphs' text, innermost last
        var textDepth = 0
        var skipDepth = 0
        var page = 1
        var pendingPageBreak = false
        var lineCount = 0
        func flush(_ text: String) {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                .filter { !$0.allSatisfy(\.isWhitespace) }
            if !lines.isEmpty, regions.isEmpty || !regionStack.isEmpty {
                result.append(Paragraph(lines: lines, page: page, region: regionStack.last ?? .body))
                lineCount += lines.count
            }
        }
        while lineCount < limit, let token = tokenizer.next() {
            switch token {
            case .start(let name, let attributes, let selfClosing):
                onStart?(name, attributes)
                if let region = regions[name], !selfClosing { regionStack.append(region) }
                if vocabulary.skipped.contains(name) {
                    if !selfClosing { skipDepth += 1 }
                    continue
                }
                guard skipDepth == 0 else { continue }
                if vocabulary.paragraphs.contains(name) {
                    if pendingPageBreak { page += 1; pendingPageBreak = false }
                    if selfClosing { continue }
                    stack.append("")
                    continue
                }
                if name == "w:pageBreakBefore", attributes["w:val"].map({ $0 != "0" && $0 != "false" }) ?? true, stack.count == 1, stack[0].isEmpty, !result.isEmpty {
                    page += 1
                }
                if vocabulary.pageBreaks.contains(name), !result.isEmpty || !(stack.last ?? "").isEmpty { pendingPageBreak = true }
                guard !stack.isEmpty else { continue }
                if vocabulary.texts.contains(name), !selfClosing { textDepth += 1 }
                if vocabulary.tabs.contains(name) { stack[stack.count - 1] += "\t" }
                if vocabulary.spaces.contains(name) { stack[stack.count - 1] += String(repeating: " ", count: Int(attributes["text:c"] ?? "1") ?? 1) }
                if vocabulary.breaks.contains(name) {
                    if attributes["w:type"] == "page" {
                        flush(stack[stack.count - 1])
                        stack[stack.count - 1] = ""
                        page += 1
                    } else {
                        stack[stack.count - 1] += "\n"
                    }
                }
            case .end(let name):
                if regions[name] != nil { _ = regionStack.popLast() }
                if vocabulary.skipped.contains(name) {
                    skipDepth = max(0, skipDepth - 1)
                    continue
                }
                guard skipDepth == 0 else { continue }
                if vocabulary.texts.contains(name) { textDepth = max(0, textDepth - 1) }
                if vocabulary.paragraphs.contains(name), let text = stack.popLast() { flush(text) }
                if name == stopAt { return result }
            case .text(let text):
                guard skipDepth == 0, !stack.isEmpty, vocabulary.texts.isEmpty || textDepth > 0 else { continue }
                stack[stack.count - 1] += text
            }
        }
        for text in stack.reversed() { flush(text) }
        return result
    }
}
