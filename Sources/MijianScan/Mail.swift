#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore

/// One mail message as the scan reads it: the Subject and the first lines of the body (the text
/// a reader sees first), the attachments to read by their own formats, and the Message-ID and
/// Date that name the message in evidence (never its text).
struct MailMessage {
    /// The Subject (decoded, split at a leading marking or bracket) and the body's first lines.
    var lines: [TextLine] = []
    /// The body's character set as decoded.
    var encoding: String?
    /// Attachments and other parts that are not the body, by file name (or `part N`).
    var attachments: [(name: String, bytes: Result<[UInt8], Unreadable>)] = []
    /// `Message-ID <…>, Date …`: which message, for evidence.
    var identity: String
    /// What was left out (parts beyond the limit, a nesting too deep).
    var notes: [String] = []
}

/// Internet mail (RFC 5322 with MIME, RFCs 2045–2047 and 2231), as spools keep it: one message
/// per file (`.eml`, Maildir's `cur/` and `new/`, MH folders as Claws Mail keeps them) or many
/// in an mbox (`/var/mail/USER`, `~/mbox`, Thunderbird's and Evolution's local folders). Parts
/// are decoded (base64, quoted-printable) and their text converted from its charset (GB18030,
/// GBK, GB2312, UTF-8 and whatever iconv knows); encoded words in the Subject and in file names
/// are decoded. Everything is bounded: bytes of a message, parts of a message, nesting of
/// multiparts.
enum Mail {
    /// Most parts of one message looked at.
    static let maxParts = 256
    /// Most levels of multipart nesting followed.
    static let maxNesting = 8

    /// Header names that make a head a mail message's head.
    static let known: Set<String> = [
        "from", "to", "cc", "subject", "date", "message-id", "received", "return-path", "mime-version", "content-type",
        "delivered-to", "reply-to", "x-mailer", "user-agent", "x-mozilla-status", "x-mozilla-status2", "in-reply-to", "references",
        "content-transfer-encoding", "sender", "dkim-signature", "x-original-to", "envelope-to", "status", "x-status",
    ]

    // MARK: recognising

    /// Whether `head` starts an mbox: a `From ` separator line, then a message's header lines.
    static func looksLikeMbox(_ head: [UInt8]) -> Bool {
        guard head.starts(with: Array("From ".utf8)), let newline = head.firstIndex(of: 0x0A) else { return false }
        return looksLikeMessage(Array(head[(newline + 1)...]))
    }

    /// Whether `head` starts a message: every complete line up to the first empty one is a header
    /// field (`Name: value`) or its continuation, at least three fields are there, and at least
    /// two of them are fields a mail message has (From, Date, Received, Message-ID …), one of
    /// them From, Date, Received or Message-ID.
    static func looksLikeMessage(_ head: [UInt8]) -> Bool {
        var fields = 0
        var names = Set<String>()
        var start = 0
        while let end = head[start...].firstIndex(of: 0x0A) {
            var line = head[start..<end]
            if line.last == 0x0D { line = line.dropLast() }
            start = end + 1
            if line.isEmpty { break }
            if line.first == 0x20 || line.first == 0x09 {
                guard fields > 0 else { return false }
                continue
            }
            guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex,
                line[line.startIndex..<colon].allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else { return false }
            fields += 1
            names.insert(String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased())
        }
        let recognised = names.intersection(known)
        return fields >= 3 && recognised.count >= 2 && !recognised.isDisjoint(with: ["from", "date", "received", "message-id"])
    }

    // MARK: one message

    /// Reads one message held in memory.
    static func message(_ bytes: [UInt8], limits: ScanLimits) -> MailMessage {
        let entity = Entity(bytes[...])
        let messageID = entity.header("message-id").map { text(Array($0)).trimmingCharacters(in: .whitespaces) }
        let date = entity.header("date").map { text(Array($0)).trimmingCharacters(in: .whitespaces) }
        var identity: [String] = []
        if let messageID, !messageID.isEmpty { identity.append("Message-ID \(messageID)") }
        if let date, !date.isEmpty { identity.append("Date \(date)") }
        if identity.isEmpty { identity.append("no Message-ID or Date") }
        var message = MailMessage(identity: identity.joined(separator: ", "))
        if let subject = entity.header("subject") {
            for (index, line) in subjectLines(decodeWords(Array(subject))).enumerated() {
                message.lines.append(TextLine(line, HitLocation(part: "subject", line: index + 1)))
            }
        }
        var leaves: [Leaf] = []
        var truncated = false
        collect(entity, into: &leaves, nesting: 0, alternative: nil, truncated: &truncated)
        if truncated { message.notes.append("only the first \(maxParts) parts, nested at most \(maxNesting) deep, were looked at") }
        // The body: the first inline text/plain leaf, else the first inline text/html; the other
        // inline text of the same multipart/alternative is the same text again.
        let body = leaves.firstIndex { $0.isInlineText && $0.type == "text/plain" } ?? leaves.firstIndex { $0.isInlineText && $0.type == "text/html" }
        if let body {
            let leaf = leaves[body]
            switch leaf.entity.decodedBody() {
            case .success(let bytes):
                let (lines, encoding) = bodyLines(bytes, charset: leaf.entity.parameter("content-type", "charset"), html: leaf.type == "text/html", limit: limits.lines)
                message.lines += lines
                message.encoding = encoding
            case .failure(let failure):
                message.notes.append("the body could not be decoded: \(failure.reason)")
            }
        }
        for (index, leaf) in leaves.enumerated() where index != body {
            if let body, let group = leaves[body].alternative, leaf.alternative == group, leaf.isInlineText { continue }
            let name = leaf.entity.fileName() ?? "part \(index + 1)"
            message.attachments.append((name, leaf.entity.decodedBody()))
        }
        return message
    }

    /// A leaf part: no multipart (a message/rfc822 is a leaf, read as a document of its own).
    struct Leaf {
        let entity: Entity
        let type: String
        /// Which multipart/alternative it belongs to (its position), if any.
        let alternative: Int?

        var isInlineText: Bool {
            (type == "text/plain" || type == "text/html") && entity.fileName() == nil && !entity.isAttachment
        }
    }

    private static func collect(_ entity: Entity, into leaves: inout [Leaf], nesting: Int, alternative: Int?, truncated: inout Bool) {
        guard leaves.count < maxParts else {
            truncated = true
            return
        }
        let type = entity.contentType
        guard type.hasPrefix("multipart/"), let boundary = entity.parameter("content-type", "boundary") else {
            leaves.append(Leaf(entity: entity, type: type, alternative: alternative))
            return
        }
        guard nesting < maxNesting else {
            truncated = true
            return
        }
        let group = type == "multipart/alternative" ? leaves.count : alternative
        for part in parts(entity.body, boundary: Array(boundary.utf8)) {
            collect(Entity(part), into: &leaves, nesting: nesting + 1, alternative: group, truncated: &truncated)
        }
    }

    /// The body parts of a multipart between `--boundary` lines, up to `--boundary--`.
    static func parts(_ body: ArraySlice<UInt8>, boundary: [UInt8]) -> [ArraySlice<UInt8>] {
        let delimiter = Array("--".utf8) + boundary
        var parts: [ArraySlice<UInt8>] = []
        var start: Int?
        var lineStart = body.startIndex
        while lineStart < body.endIndex {
            let lineEnd = body[lineStart...].firstIndex(of: 0x0A) ?? body.endIndex
            let line = body[lineStart..<lineEnd]
            if line.starts(with: delimiter) {
                let rest = line.dropFirst(delimiter.count)
                let closing = rest.starts(with: [0x2D, 0x2D])
                if closing || rest.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                    if let begin = start {
                        // The line break before a delimiter belongs to the delimiter.
                        var end = lineStart
                        if end > begin, body[end - 1] == 0x0A { end -= 1 }
                        if end > begin, body[end - 1] == 0x0D { end -= 1 }
                        parts.append(body[begin..<max(begin, end)])
                    }
                    if closing { return parts }
                    start = min(lineEnd + 1, body.endIndex)
                }
            }
            lineStart = lineEnd + 1
        }
        // No closing delimiter: the last part runs to the end (a cut message).
        if let begin = start, begin < body.endIndex { parts.append(body[begin...]) }
        return parts
    }

    // MARK: text

    /// The first `limit` non-empty lines of a decoded body, quote marks (`> `) taken off, and
    /// the charset they were decoded from.
    static func bodyLines(_ bytes: [UInt8], charset: String?, html: Bool, limit: Int) -> ([TextLine], String?) {
        let head = Array(bytes.prefix(64 << 10))
        let truncated = head.count < bytes.count
        // The declared charset first; a part that is not what it declares (GBK sent as
        // "us-ascii" by an old client) is detected like a text file.
        let decoded: (text: String, encoding: String)?
        if let charset, let text = TextDecoding.convert(head, from: charset, truncated: truncated) {
            decoded = (text, TextDecoding.isGB(charset) ? "gb18030" : charset.lowercased())
        } else {
            decoded = TextDecoding.decode(head, truncated: truncated)
        }
        guard let (text, encoding) = decoded else { return ([], nil) }
        if html {
            let lines = HTMLText.lines(Array(text.utf8), limit: limit).enumerated().map { index, line in
                TextLine(line.text, HitLocation(part: "body", line: index + 1, region: line.location.region))
            }
            return (lines, encoding)
        }
        var lines: [TextLine] = []
        for line in TextDecoding.lines(text) {
            var shown = Substring(line)
            while let first = shown.first, first == ">" || first == " " { shown = shown.dropFirst() }
            if shown.allSatisfy(\.isWhitespace) { continue }
            lines.append(TextLine(String(shown), HitLocation(part: "body", line: lines.count + 1)))
            if lines.count >= limit { break }
        }
        return (lines, encoding)
    }

    /// The Subject as lines: reply and forward prefixes taken off, a leading bracketed tag
    /// (`【秘密★1年】`) or a leading marking followed by a space made a line of its own, as it is
    /// the message's label and the rest its title.
    static func subjectLines(_ subject: String) -> [String] {
        var text = Substring(subject.trimmingCharacters(in: .whitespaces))
        let prefixes = ["re:", "fw:", "fwd:", "回复:", "答复:", "转发:", "re：", "fw：", "fwd：", "回复：", "答复：", "转发："]
        var stripped = true
        while stripped {
            stripped = false
            for prefix in prefixes where text.lowercased().hasPrefix(prefix) {
                text = text.dropFirst(prefix.count).drop { $0 == " " || $0 == "\u{3000}" }
                stripped = true
            }
        }
        let pairs: [Character: Character] = ["【": "】", "[": "]", "(": ")", "（": "）", "〔": "〕", "［": "］"]
        if let first = text.first, let close = pairs[first], let end = text.firstIndex(of: close) {
            let tag = text[text.index(after: text.startIndex)..<end]
            let rest = text[text.index(after: end)...]
            return [String(tag), String(rest)].filter { !$0.allSatisfy(\.isWhitespace) }
        }
        // A star, something after it, then a space: the marking ends there.
        let stars = MarkingRecogniser.Normalised.stars
        if let star = text.prefix(8).firstIndex(where: { stars.contains($0) }) {
            let after = text[text.index(after: star)...]
            if let space = after.dropFirst().firstIndex(where: { $0 == " " || $0 == "\u{3000}" || $0 == "\t" }) {
                return [String(text[..<space]), String(text[space...]).trimmingCharacters(in: .whitespaces)].filter { !$0.isEmpty }
            }
        }
        return [String(text)]
    }

    /// A header value's text: encoded words (RFC 2047) decoded, raw 8-bit bytes taken as UTF-8
    /// or GB18030 (what Chinese mailers put in headers unencoded).
    static func decodeWords(_ value: [UInt8]) -> String {
        let raw = text(value)
        guard raw.contains("=?") else { return raw }
        var output = ""
        var rest = Substring(raw)
        var pendingSpace = ""
        var lastWasEncoded = false
        while !rest.isEmpty {
            guard let start = rest.range(of: "=?") else {
                output += pendingSpace + rest
                break
            }
            let before = rest[..<start.lowerBound]
            let after = rest[start.upperBound...]
            let pieces = after.split(separator: "?", maxSplits: 3, omittingEmptySubsequences: false)
            if pieces.count == 4, pieces[3].hasPrefix("="), let word = decodeWord(charset: String(pieces[0]), encoding: String(pieces[1]), text: String(pieces[2])) {
                // Whitespace between two encoded words is not shown.
                if !(lastWasEncoded && before.allSatisfy(\.isWhitespace)) { output += pendingSpace + before }
                output += word
                lastWasEncoded = true
                pendingSpace = ""
                rest = pieces[3].dropFirst()
            } else {
                output += pendingSpace + before + "=?"
                lastWasEncoded = false
                pendingSpace = ""
                rest = after
            }
        }
        return output
    }

    private static func decodeWord(charset: String, encoding: String, text: String) -> String? {
        let bytes: [UInt8]
        switch encoding.lowercased() {
        case "b": bytes = base64(Array(text.utf8))
        case "q": bytes = quotedPrintable(Array(text.replacingOccurrences(of: "_", with: " ").utf8))
        default: return nil
        }
        // RFC 2231 lets a language follow the charset (`utf-8*zh-cn`).
        let name = String(charset.split(separator: "*").first ?? Substring(charset))
        return TextDecoding.convert(bytes, from: name, truncated: false) ?? TextDecoding.decode(bytes, truncated: false)?.text
    }

    /// Header bytes as text: UTF-8, else GB18030, else Latin-1.
    static func text(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        if let text = TextDecoding.gb18030(bytes, truncated: false) { return text }
        return String(bytes.map { Character(Unicode.Scalar($0)) })
    }

    // MARK: transfer encodings

    /// Base64, with line breaks and anything outside the alphabet skipped (as mail readers do).
    static func base64(_ input: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in input {
            let value: UInt8
            switch byte {
            case 0x41...0x5A: value = byte - 0x41
            case 0x61...0x7A: value = byte - 0x61 + 26
            case 0x30...0x39: value = byte - 0x30 + 52
            case 0x2B, 0x2D: value = 62
            case 0x2F, 0x5F: value = 63
            case 0x3D: return output  // padding: the data ends
            default: continue
            }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return output
    }

    /// Quoted-printable: `=XX` bytes, soft line breaks (`=` at a line's end) joined.
    static func quotedPrintable(_ input: some Collection<UInt8>) -> [UInt8] {
        let input = Array(input)
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var index = 0
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x30...0x39: return byte - 0x30
            case 0x41...0x46: return byte - 0x41 + 10
            case 0x61...0x66: return byte - 0x61 + 10
            default: return nil
            }
        }
        while index < input.count {
            let byte = input[index]
            guard byte == 0x3D else {
                output.append(byte)
                index += 1
                continue
            }
            if index + 2 < input.count, let high = hex(input[index + 1]), let low = hex(input[index + 2]) {
                output.append(high << 4 | low)
                index += 3
                continue
            }
            // A soft line break: `=` then optional spaces and the line's end.
            var next = index + 1
            while next < input.count, input[next] == 0x20 || input[next] == 0x09 { next += 1 }
            if next < input.count, input[next] == 0x0D { next += 1 }
            if next < input.count, input[next] == 0x0A {
                index = next + 1
                continue
            }
            if next >= input.count {
                index = next
                continue
            }
            output.append(byte)
            index += 1
        }
        return output
    }
}

/// A MIME entity: its header fields (unfolded) and its body.
struct Entity {
    /// Field names lowercased, values as bytes without the folding line breaks.
    let fields: [(name: String, value: ArraySlice<UInt8>)]
    let body: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        var fields: [(name: String, value: ArraySlice<UInt8>)] = []
        var index = bytes.startIndex
        var bodyStart = bytes.endIndex
        while index < bytes.endIndex {
            let end = bytes[index...].firstIndex(of: 0x0A) ?? bytes.endIndex
            var line = bytes[index..<end]
            if line.last == 0x0D { line = line.dropLast() }
            let next = min(end + 1, bytes.endIndex)
            if line.isEmpty {
                bodyStart = next
                break
            }
            if line.first == 0x20 || line.first == 0x09, !fields.isEmpty {
                // A folded line: the value goes on (the line break is not part of it).
                fields[fields.count - 1].value = ArraySlice(fields[fields.count - 1].value + line)
            } else if let colon = line.firstIndex(of: 0x3A) {
                let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
                fields.append((name, line[(colon + 1)...].drop { $0 == 0x20 || $0 == 0x09 }))
            } else if fields.isEmpty, line.starts(with: Array("From ".utf8)) {
                // An mbox separator left on a message: not a field.
            } else {
                // Not a header line: the body starts here (a message without the empty line).
                bodyStart = index
                break
            }
            index = next
        }
        self.fields = fields
        self.body = bytes[bodyStart...]
    }

    func header(_ name: String) -> ArraySlice<UInt8>? { fields.first { $0.name == name }?.value }

    /// `type/subtype` lowercased; text/plain when absent (RFC 2045).
    var contentType: String {
        guard let value = header("content-type") else { return "text/plain" }
        let type = Mail.text(Array(value)).split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return type.contains("/") ? type : "text/plain"
    }

    var isAttachment: Bool {
        guard let value = header("content-disposition") else { return false }
        return Mail.text(Array(value)).lowercased().trimmingCharacters(in: .whitespaces).hasPrefix("attachment")
    }

    /// A parameter of a structured field: quoted strings, RFC 2231 continuations
    /// (`name*0*=`, `name*1*=`) and charset-tagged values (`name*=utf-8''%E6…`) joined and decoded.
    func parameter(_ field: String, _ name: String) -> String? {
        guard let value = header(field) else { return nil }
        var plain: String?
        var pieces: [(Int, String, Bool)] = []
        for item in Self.splitParameters(Mail.text(Array(value))).dropFirst() {
            guard let equals = item.firstIndex(of: "=") else { continue }
            let key = item[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var text = item[item.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = String(text.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"") }
            if key == name {
                plain = text
            } else if key.hasPrefix(name + "*") {
                let rest = key.dropFirst(name.count + 1)
                let extended = rest.isEmpty || rest.hasSuffix("*")
                let number = Int(rest.split(separator: "*").first ?? "0") ?? 0
                pieces.append((number, text, extended))
            }
        }
        guard !pieces.isEmpty else { return plain.map { Mail.decodeWords(Array($0.utf8)) } }
        pieces.sort { $0.0 < $1.0 }
        // The first extended piece names the charset: `utf-8'zh-cn'…`.
        var charset = "utf-8"
        var bytes: [UInt8] = []
        for (index, piece) in pieces.enumerated() {
            var text = Substring(piece.1)
            if index == 0, piece.2 {
                let parts = text.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                if parts.count == 3 {
                    if !parts[0].isEmpty { charset = String(parts[0]) }
                    text = parts[2]
                }
            }
            bytes += piece.2 ? Self.percentDecode(text) : Array(text.utf8)
        }
        return TextDecoding.convert(bytes, from: charset, truncated: false) ?? Mail.text(bytes)
    }

    /// The attachment's file name (Content-Disposition `filename`, else Content-Type `name`).
    func fileName() -> String? {
        let name = parameter("content-disposition", "filename") ?? parameter("content-type", "name")
        guard let name, !name.allSatisfy(\.isWhitespace) else { return nil }
        // A name is evidence, not a path: no separator of ours in it.
        return name.replacingOccurrences(of: "!", with: "_").replacingOccurrences(of: "/", with: "_")
    }

    /// The body with its transfer encoding undone.
    func decodedBody() -> Result<[UInt8], Unreadable> {
        let encoding = header("content-transfer-encoding").map { Mail.text(Array($0)).trimmingCharacters(in: .whitespaces).lowercased() } ?? "7bit"
        switch encoding {
        case "base64": return .success(Mail.base64(Array(body)))
        case "quoted-printable": return .success(Mail.quotedPrintable(body))
        case "7bit", "8bit", "binary", "": return .success(Array(body))
        default: return .failure(Unreadable("the transfer encoding \(encoding) is not one MIME defines"))
        }
    }

    /// `a; b="x;y"; c` split at the semicolons outside quotes.
    static func splitParameters(_ text: String) -> [String] {
        var items: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            if character == "\\", quoted { escaped = true; current.append(character); continue }
            if character == "\"" { quoted.toggle() }
            if character == ";", !quoted {
                items.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        items.append(current)
        return items
    }

    static func percentDecode(_ text: Substring) -> [UInt8] {
        let input = Array(text.utf8)
        var output: [UInt8] = []
        var index = 0
        while index < input.count {
            if input[index] == 0x25, index + 2 < input.count, let value = UInt8(String(decoding: input[(index + 1)...(index + 2)], as: UTF8.self), radix: 16) {
                output.append(value)
                index += 3
            } else {
                output.append(input[index])
                index += 1
            }
        }
        return output
    }
}

/// An mbox read message by message (lines starting `From ` separate them, as mbox(5) and
/// Python's mailbox module split them), a window of the file at a time: a spool of gigabytes is
/// never held whole.
struct Mailbox {
    let source: any ByteSource
    let limits: ScanLimits
    static let chunk = 1 << 20

    /// Calls `body` with each message's index (from 1) and bytes, or why it could not be had; a
    /// read error of the file ends the walk and is thrown.
    func forEachMessage(_ body: (Int, Result<[UInt8], Unreadable>) -> Void) throws(MijianError) {
        var offset: Int64 = 0
        var current: [UInt8] = []
        var oversized = false
        var index = 0
        var atLineStart = true
        var started = false
        func finish() {
            guard started else { return }
            index += 1
            if oversized {
                body(index, .failure(Unreadable("the message is larger than \(limits.memberBytes) bytes: not read")))
            } else {
                body(index, .success(current))
            }
            current = []
            oversized = false
        }
        let separator = Array("From ".utf8)
        var carry: [UInt8] = []
        while offset < source.size {
            let bytes = try source.read(at: offset, count: Self.chunk)
            if bytes.isEmpty { break }
            offset += Int64(bytes.count)
            let data = carry + bytes
            carry = []
            var lineStart = 0
            let last = offset >= source.size
            while lineStart < data.count {
                guard let newline = data[lineStart...].firstIndex(of: 0x0A) else {
                    // A line cut by the window: kept for the next one (or the end).
                    if last {
                        if !oversized { current += data[lineStart...] }
                    } else {
                        carry = Array(data[lineStart...])
                    }
                    break
                }
                let line = data[lineStart...newline]
                if atLineStart, line.starts(with: separator) {
                    finish()
                    started = true
                } else if started, !oversized {
                    if current.count + line.count > limits.memberBytes {
                        oversized = true
                        current = []
                    } else {
                        current += line
                    }
                }
                atLineStart = true
                lineStart = newline + 1
            }
        }
        finish()
    }
}
