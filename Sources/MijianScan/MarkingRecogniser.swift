import MijianCore

/// One line of text as a reader found it (a paragraph, a cell, a text object, a line of a text
/// file) and where it sits. Readers give the non-empty lines of the parts a marking can be in, in
/// reading order, numbered from 1 per part.
public struct TextLine: Sendable, Equatable {
    /// The text, as the office software would show it.
    public var text: String
    /// Where it sits.
    public var location: HitLocation

    /// Makes a line.
    public init(_ text: String, _ location: HitLocation) {
        self.text = text
        self.location = location
    }
}

/// The national marking grammar (国家秘密标志): a level (绝密, 机密, 秘密), the star ★ (typed
/// also as ☆, ＊ or *), and a period: `N年`, `N个月`, `长期`, a date `YYYY年M月D日`, or a
/// `解密条件`. Full-width forms, spaces and the line breaks a converter inserts may sit between
/// the parts. Where it sits decides what it is: at the top of the first page (GB/T 9704-2012 puts
/// it top left, on the second line, under the copy number) or in a page header it is the
/// document's marking; anywhere else (mid-paragraph, further down, in a footer) it is a mention.
public enum MarkingRecogniser {
    /// Non-empty lines of the first page's body that count as its top (copy number, marking,
    /// urgency, and one line of slack for a title block or a converter's split).
    public static let topLines = 4
    /// Characters besides the marking a line may hold and still be the marking's line (`密级：`
    /// before it; an urgency or a copy number after it).
    public static let companionLimit = 12
    /// Scores from which a hit is a marking.
    public static let markingScore = 60

    /// Level words, each two characters.
    private static let levels: [(Character, Character, Classification)] = [
        ("绝", "密", .topSecret), ("机", "密", .secret), ("秘", "密", .confidential),
    ]
    /// Words that make a level word something other than a state-secret level (商业秘密, 工作秘密 …).
    private static let notStateSecret: Set<String> = ["商业", "工作", "保守", "技术", "个人", "经营", "核心"]
    /// What a label before the marking on its line may say.
    private static let labels: Set<String> = ["密级", "密级标志", "密级和保密期限", "密级及保密期限"]

    /// Every hit in `lines`, each scored as marking or mention.
    public static func hits(in lines: [TextLine]) -> [MarkingHit] {
        // Every level word ends in 密 (U+5BC6, E5 AF 86 in UTF-8), which no folding makes: text
        // without it holds no hit, and most text is let go here before any Character is made.
        guard lines.contains(where: { containsMi($0.text) }) else { return [] }
        let normalised = lines.map { Normalised($0.text) }
        var hits: [MarkingHit] = []
        for index in normalised.indices {
            let chars = normalised[index].chars
            guard chars.count >= 2, chars.contains("密") else { continue }
            var position = 0
            while position + 1 < chars.count {
                defer { position += 1 }
                guard let level = levels.first(where: { $0.0 == chars[position] })?.2 else { continue }
                // A justified or letter-spaced line puts spaces between the level's characters (秘 密).
                var second = position + 1
                while second < chars.count, second - position <= 3, chars[second].isWhitespace { second += 1 }
                guard second < chars.count, chars[second] == "密" else { continue }
                if let hit = match(level: level, at: position, levelEnd: second + 1, line: index, lines: lines, normalised: normalised) {
                    hits.append(hit)
                }
            }
        }
        demoteLists(&hits)
        return hits.sorted { ($0.kind == .marking ? 0 : 1, -$0.score) < ($1.kind == .marking ? 0 : 1, -$1.score) }
    }

    /// Whether the UTF-8 of `text` holds 密.
    static func containsMi(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            guard bytes.count >= 3 else { return false }
            var index = 0
            while index + 2 < bytes.count {
                if bytes[index] == 0xE5, bytes[index + 1] == 0xAF, bytes[index + 2] == 0x86 { return true }
                index += 1
            }
            return false
        }
    }

    /// Lines of the first page within which several different markings, each on a line of its
    /// own, make a list (a ledger's column, a handout's examples) rather than a document's marking.
    public static let listLines = 16

    /// A document carries one marking: two or more different ones, each on a line of its own near
    /// the top of the first page of one part, are a list, and none of them is the document's.
    /// (The same marking repeated — a header and the body, an attachment — is not a list.)
    static func demoteLists(_ hits: inout [MarkingHit]) {
        let standalone = hits.filter {
            $0.location.region == .body && $0.location.page == 1 && $0.location.line <= listLines && $0.isolated
        }
        for part in Set(standalone.map(\.location.part)) {
            let texts = Set(standalone.filter { $0.location.part == part }.map(\.text))
            guard texts.count >= 2 else { continue }
            for index in hits.indices where hits[index].location.part == part && hits[index].kind == .marking && hits[index].location.region == .body {
                hits[index].kind = .mention
                hits[index].score = 40
                hits[index].reason = "one of \(texts.count) different markings each on a line of its own near the top of the first page: a list (a ledger, examples), not the document's own marking"
            }
        }
    }

    /// A cursor over the normalised lines.
    private struct Cursor {
        var line: Int
        var index: Int
    }

    private static func match(level: Classification, at start: Int, levelEnd: Int, line: Int, lines: [TextLine], normalised: [Normalised]) -> MarkingHit? {
        var text: [Character] = Array(normalised[line].original[start..<levelEnd]).filter { !$0.isWhitespace }
        var cursor = Cursor(line: line, index: levelEnd)
        // The star, after spaces or a converter's line break.
        guard skipSpace(&cursor, normalised, crossing: true), normalised[cursor.line].chars[cursor.index] == "★" else { return nil }
        text.append(normalised[cursor.line].original[cursor.index])
        cursor.index += 1
        // A row of stars is a rating (★★★★☆), not a marking.
        if cursor.index < normalised[cursor.line].chars.count, normalised[cursor.line].chars[cursor.index] == "★" { return nil }
        var end = cursor
        var period: String?
        var probe = cursor
        if skipSpace(&probe, normalised, crossing: true), let (_, after) = Self.period(normalised[probe.line], at: probe.index) {
            let written = normalised[probe.line].original[probe.index..<after].filter { !$0.isWhitespace }
            period = String(written)
            text.append(contentsOf: written)
            end = Cursor(line: probe.line, index: after)
        }
        let before = String(normalised[line].chars[0..<start]).filter { !$0.isWhitespace }
        let afterText = normalised[end.line].chars[end.index...]
        let after = String(afterText).filter { !$0.isWhitespace }
        let separated = afterText.first?.isWhitespace ?? true
        let location = lines[line].location
        let qualifier = String(before.suffix(2))
        let beforeLabel = before.hasSuffix("：") || before.hasSuffix(":") ? String(before.dropLast()) : before
        // A decryption condition runs on to the end of its line: the condition is part of the marking.
        let condition = period == "解密条件"
        // GB/T 9704-1999 put the copy number and the marking on one line (a tab between them).
        let beforeRaw = normalised[line].chars[0..<start]
        let copyNumber = !before.isEmpty && before.count <= 8 && before.allSatisfy { $0.isASCII && $0.isNumber } && (beforeRaw.last?.isWhitespace ?? false)
        let isolated = (before.isEmpty || labels.contains(beforeLabel) || copyNumber) && (after.isEmpty || condition || (separated && after.count <= companionLimit))
        let top = location.region == .header || (location.region == .body && location.page == 1 && location.line <= topLines)
        let hitText = String(text)
        func hit(_ kind: HitKind, _ score: Int, _ reason: String) -> MarkingHit {
            var hit = MarkingHit(kind: kind, level: level, text: hitText, period: period, location: location, score: score, reason: reason)
            hit.isolated = isolated
            return hit
        }
        let grammar = period == nil ? "level and star without a period" : "level, star and period"
        if notStateSecret.contains(qualifier) {
            return hit(.mention, 10, "\(qualifier)\(level.rawValue) is not a state-secret level, although a star follows")
        }
        if location.region == .footer {
            return hit(.mention, 30, "\(grammar) in a page footer, where no marking sits")
        }
        guard isolated else {
            return hit(.mention, 30, "\(grammar) inside running text (the line holds other words before or after it)")
        }
        guard top else {
            return hit(.mention, 45, "\(grammar) on a line of its own, but on line \(location.line) of page \(location.page), below the top of the first page")
        }
        let place = location.region == .header ? "in a page header" : "on line \(location.line) at the top of the first page"
        return period == nil
            ? hit(.marking, 75, "\(grammar) on a line of its own \(place) (the default period applies)")
            : hit(.marking, 95, "\(grammar) on a line of its own \(place)")
    }

    /// Moves over spaces; at the end of a line whose rest is blank, on to the start of the next
    /// (at most two line breaks: what a converter inserts). False when nothing follows.
    private static func skipSpace(_ cursor: inout Cursor, _ lines: [Normalised], crossing: Bool) -> Bool {
        var crossed = 0
        while true {
            let chars = lines[cursor.line].chars
            while cursor.index < chars.count, chars[cursor.index].isWhitespace { cursor.index += 1 }
            if cursor.index < chars.count { return true }
            guard crossing, crossed < 2, cursor.line + 1 < lines.count else { return false }
            crossed += 1
            cursor = Cursor(line: cursor.line + 1, index: 0)
        }
    }

    private static let chineseDigits: Set<Character> = ["〇", "零", "一", "二", "两", "三", "四", "五", "六", "七", "八", "九", "十"]

    /// A period starting at `index`: its kind and the index after it. Spaces may stand between a
    /// number and its unit (`1 年`, `2027 年 6 月 30 日`), as PDF text extraction writes them.
    static func period(_ line: Normalised, at index: Int) -> (String, Int)? {
        let chars = line.chars
        func skip(_ position: Int) -> Int {
            var position = position
            while position < chars.count, chars[position].isWhitespace { position += 1 }
            return position
        }
        func word(_ text: String, at position: Int) -> Int? {
            let word = Array(text)
            guard position + word.count <= chars.count, Array(chars[position..<position + word.count]) == word else { return nil }
            return position + word.count
        }
        if let end = word("长期", at: index) { return ("长期", end) }
        if let end = word("解密条件", at: index) { return ("解密条件", end) }
        func number(at position: Int) -> Int {
            var end = position
            while end < chars.count, chars[end].isASCII && chars[end].isNumber || chineseDigits.contains(chars[end]) { end += 1 }
            return end
        }
        let digitsEnd = number(at: index)
        guard digitsEnd > index, digitsEnd - index <= 4 else { return nil }
        let unit = skip(digitsEnd)
        if let end = word("个月", at: unit) { return ("个月", end) }
        guard let yearEnd = word("年", at: unit) else { return nil }
        // YYYY年M月D日
        let monthStart = skip(yearEnd)
        let monthEnd = number(at: monthStart)
        if digitsEnd - index == 4, monthEnd > monthStart, let afterMonth = word("月", at: skip(monthEnd)) {
            let dayStart = skip(afterMonth)
            let dayEnd = number(at: dayStart)
            if dayEnd > dayStart, let end = word("日", at: skip(dayEnd)) { return ("date", end) }
        }
        return ("年", yearEnd)
    }

    /// A line with full-width ASCII folded to half-width, the ideographic space to a space and
    /// every star form to ★; `original` keeps the characters as written, index for index.
    struct Normalised {
        let original: [Character]
        let chars: [Character]

        init(_ text: String) {
            original = Array(text)
            chars = original.map(Normalised.fold)
        }

        static let stars: Set<Character> = ["★", "☆", "*", "＊", "﹡", "⋆", "✱", "✲", "✳", "✶", "✩", "✪", "✫", "✬", "✭", "✮", "✯", "✰", "⭐"]

        static func fold(_ character: Character) -> Character {
            if stars.contains(character) { return "★" }
            guard let scalar = character.unicodeScalars.first, character.unicodeScalars.count == 1 else { return character }
            switch scalar.value {
            case 0x3000, 0x00A0, 0x2002...0x200B, 0xFEFF: return " "
            case 0xFF01...0xFF5E: return Character(Unicode.Scalar(scalar.value - 0xFEE0) ?? scalar)
            default: return character
            }
        }
    }
}
