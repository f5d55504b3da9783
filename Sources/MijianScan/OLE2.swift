import MijianCore

/// A Compound File Binary (OLE2) container — legacy Word `.doc`, WPS Office's `.wps`, and the
/// wrapper of password-protected OOXML — read through its FAT, every chain bounded.
struct CompoundFile {
    static let magic: [UInt8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]

    struct Entry {
        let name: String
        let type: UInt8
        let start: UInt32
        let size: Int64
    }

    let source: any ByteSource
    let sectorSize: Int
    let miniSectorSize: Int
    let miniCutoff: Int64
    let fat: [UInt32]
    let miniFAT: [UInt32]
    let entries: [Entry]
    let limit: Int

    init(_ source: any ByteSource, limit: Int) throws(Unreadable) {
        self.source = source
        self.limit = limit
        let header: [UInt8]
        do { header = try source.read(at: 0, count: 512) } catch { throw Unreadable(error.message) }
        guard header.count == 512, Array(header[0..<8]) == Self.magic else { throw Unreadable("not an OLE2 compound file") }
        let shift = Int(le16(header, 0x1E))
        guard shift == 9 || shift == 12 else { throw Unreadable("OLE2 header names a sector size of 2^\(shift): corrupt") }
        sectorSize = 1 << shift
        miniSectorSize = 1 << Int(le16(header, 0x20))
        miniCutoff = Int64(le32(header, 0x38))
        let fatSectors = Int(le32(header, 0x2C))
        let totalSectors = Int((source.size + Int64(sectorSize) - 1) / Int64(sectorSize))
        guard fatSectors <= totalSectors else { throw Unreadable("OLE2 header counts more FAT sectors than the file holds: corrupt") }
        // The DIFAT: 109 entries in the header, then a chain of DIFAT sectors.
        var difat: [UInt32] = (0..<109).map { le32(header, 0x4C + $0 * 4) }.filter { $0 < 0xFFFF_FFFA }
        var next = le32(header, 0x44)
        var hops = 0
        while next < 0xFFFF_FFFA, difat.count < fatSectors, hops <= totalSectors {
            let sector: [UInt8]
            do { sector = try source.read(at: Int64(next + 1) * Int64(sectorSize), count: sectorSize) } catch { throw Unreadable(error.message) }
            let perSector = sectorSize / 4 - 1
            difat += (0..<perSector).map { le32(sector, $0 * 4) }.filter { $0 < 0xFFFF_FFFA }
            next = le32(sector, perSector * 4)
            hops += 1
        }
        var fat: [UInt32] = []
        for sector in difat.prefix(fatSectors) {
            let bytes: [UInt8]
            do { bytes = try source.read(at: Int64(sector + 1) * Int64(sectorSize), count: sectorSize) } catch { throw Unreadable(error.message) }
            fat += (0..<(bytes.count / 4)).map { le32(bytes, $0 * 4) }
        }
        self.fat = fat
        let directory = try Self.chain(source, fat: fat, start: le32(header, 0x30), sectorSize: sectorSize, limit: 4 << 20)
        var entries: [Entry] = []
        for offset in stride(from: 0, to: directory.count - 127, by: 128) {
            let nameLength = min(64, Int(le16(directory, offset + 0x40)))
            let name = TextDecoding.utf16(directory[offset..<offset + max(0, nameLength - 2)], littleEndian: true)
            let size = sectorSize == 512 ? Int64(le32(directory, offset + 0x78)) : Int64(le32(directory, offset + 0x78)) | Int64(le32(directory, offset + 0x7C)) << 32
            entries.append(Entry(name: name, type: directory[offset + 0x42], start: le32(directory, offset + 0x74), size: size))
        }
        self.entries = entries
        if let root = entries.first, root.type == 5 {
            miniFAT = try Self.chain(source, fat: fat, start: le32(header, 0x3C), sectorSize: sectorSize, limit: 16 << 20)
                .withUnsafeBytes { raw in (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian } }
        } else {
            miniFAT = []
        }
    }

    /// A stream by name (`WordDocument`, `1Table`, `EncryptionInfo`); nil when absent.
    func stream(_ name: String) throws(Unreadable) -> [UInt8]? {
        guard let entry = entries.first(where: { $0.type == 2 && $0.name == name }) else { return nil }
        guard entry.size <= Int64(limit) else { throw Unreadable("the \(name) stream is larger than \(limit) bytes") }
        if entry.size < miniCutoff {
            guard let root = entries.first else { return nil }
            let mini = try Self.chain(source, fat: fat, start: root.start, sectorSize: sectorSize, limit: limit)
            var output: [UInt8] = []
            var sector = entry.start
            var hops = 0
            while sector < 0xFFFF_FFFA, output.count < Int(entry.size), hops <= miniFAT.count {
                let offset = Int(sector) * miniSectorSize
                guard offset + miniSectorSize <= mini.count else { throw Unreadable("the \(name) stream points outside the mini stream: corrupt") }
                output += mini[offset..<offset + miniSectorSize]
                guard Int(sector) < miniFAT.count else { break }
                sector = miniFAT[Int(sector)]
                hops += 1
            }
            return Array(output.prefix(Int(entry.size)))
        }
        return Array(try Self.chain(source, fat: fat, start: entry.start, sectorSize: sectorSize, limit: Int(entry.size)).prefix(Int(entry.size)))
    }

    func has(_ name: String) -> Bool { entries.contains { $0.name == name } }

    private static func chain(_ source: any ByteSource, fat: [UInt32], start: UInt32, sectorSize: Int, limit: Int) throws(Unreadable) -> [UInt8] {
        var output: [UInt8] = []
        var sector = start
        var hops = 0
        while sector < 0xFFFF_FFFA, output.count < limit {
            guard hops <= fat.count else { throw Unreadable("an OLE2 sector chain loops: corrupt") }
            do { output += try source.read(at: Int64(sector + 1) * Int64(sectorSize), count: sectorSize) } catch { throw Unreadable(error.message) }
            guard Int(sector) < fat.count else { break }
            sector = fat[Int(sector)]
            hops += 1
        }
        return output
    }
}

/// The text of a Word 97–2003 binary document (and of WPS files saved in that format): the FIB,
/// the piece table in the table stream, the main story's first paragraphs and the header stories.
enum WordBinary {
    static func lines(_ file: CompoundFile, limits: ScanLimits) throws(Unreadable) -> [TextLine] {
        guard let word = try file.stream("WordDocument") else { throw Unreadable("an OLE2 file without a WordDocument stream") }
        guard word.count >= 0x1AA, le16(word, 0) == 0xA5EC else { throw Unreadable("the WordDocument stream has no Word 97 FIB (an older Word or WPS format)") }
        let flags = le16(word, 0x0A)
        if flags & 0x0100 != 0 { throw Unreadable("encrypted: a password-protected Word document") }
        let tableName = flags & 0x0200 != 0 ? "1Table" : "0Table"
        guard let table = try file.stream(tableName) else { throw Unreadable("the \(tableName) stream the FIB names is missing") }
        let ccpText = Int(le32(word, 0x4C)), ccpFtn = Int(le32(word, 0x50)), ccpHdd = Int(le32(word, 0x54))
        let fcClx = Int(le32(word, 0x1A2)), lcbClx = Int(le32(word, 0x1A6))
        guard lcbClx > 0, fcClx + lcbClx <= table.count else { throw Unreadable("the piece table lies outside the \(tableName) stream: corrupt") }
        let pieces = try Self.pieces(Array(table[fcClx..<fcClx + lcbClx]))
        func text(_ range: Range<Int>) -> String {
            var units: [UInt16] = []
            for piece in pieces where piece.cp.overlaps(range) {
                let from = max(range.lowerBound, piece.cp.lowerBound), to = min(range.upperBound, piece.cp.upperBound)
                for cp in from..<to {
                    if piece.compressed {
                        let offset = piece.fc / 2 + (cp - piece.cp.lowerBound)
                        guard offset < word.count else { break }
                        units.append(UInt16(word[offset]))
                    } else {
                        let offset = piece.fc + 2 * (cp - piece.cp.lowerBound)
                        guard offset + 1 < word.count else { break }
                        units.append(le16(word, offset))
                    }
                }
            }
            return String(decoding: units, as: UTF16.self)
        }
        var lines: [TextLine] = []
        // The main story: paragraphs end at CR or a cell mark; 0x0B is a line break, 0x0C a page break.
        let main = text(0..<min(ccpText, limits.textBytes))
        lines += split(main, part: "WordDocument", region: .body, limit: limits.lines)
        // Header stories: after the main text and the footnotes; plcfHdd splits them.
        let fcHdd = Int(le32(word, 0xF2)), lcbHdd = Int(le32(word, 0xF6))
        if ccpHdd > 0, lcbHdd >= 8, fcHdd + lcbHdd <= table.count {
            let base = ccpText + ccpFtn
            let count = lcbHdd / 4
            let cps = (0..<count).map { Int(le32(table, fcHdd + $0 * 4)) }
            for story in 6..<max(6, count - 1) {
                let start = base + cps[story], end = base + min(cps[story + 1], ccpHdd)
                guard start < end else { continue }
                let kind = (story - 6) % 6
                let region: TextRegion = [0, 1, 4].contains(kind) ? .header : .footer
                lines += split(text(start..<min(end, start + 4096)), part: "WordDocument:" + (region == .header ? "header" : "footer"), region: region, limit: 16)
            }
        }
        return lines
    }

    struct Piece {
        let cp: Range<Int>
        let fc: Int
        let compressed: Bool
    }

    static func pieces(_ clx: [UInt8]) throws(Unreadable) -> [Piece] {
        var position = 0
        while position < clx.count, clx[position] == 0x01 {
            position += 3 + Int(le16(clx, position + 1))
        }
        guard position + 5 <= clx.count, clx[position] == 0x02 else { throw Unreadable("no piece table in the Clx: corrupt") }
        let length = Int(le32(clx, position + 1))
        let start = position + 5
        guard length >= 4, start + length <= clx.count else { throw Unreadable("the piece table is cut short: corrupt") }
        let count = (length - 4) / 12
        var pieces: [Piece] = []
        for index in 0..<count {
            let cpStart = Int(le32(clx, start + index * 4)), cpEnd = Int(le32(clx, start + (index + 1) * 4))
            let descriptor = start + (count + 1) * 4 + index * 8
            let fcRaw = le32(clx, descriptor + 2)
            guard cpEnd >= cpStart else { continue }
            pieces.append(Piece(cp: cpStart..<cpEnd, fc: Int(fcRaw & 0x3FFF_FFFF), compressed: fcRaw & 0x4000_0000 != 0))
        }
        return pieces
    }

    /// Paragraphs of Word's text stream as lines: field instructions (between 0x13 and 0x14)
    /// dropped, control characters removed.
    static func split(_ text: String, part: String, region: TextRegion, limit: Int) -> [TextLine] {
        var lines: [TextLine] = []
        var current = ""
        var page = 1
        var fieldDepth = 0
        var inInstruction = false
        func flush() {
            if !current.allSatisfy(\.isWhitespace) { lines.append(TextLine(current, HitLocation(part: part, page: page, line: lines.count + 1, region: region))) }
            current = ""
        }
        for scalar in text.unicodeScalars {
            if lines.count >= limit { break }
            switch scalar.value {
            case 0x13: fieldDepth += 1; inInstruction = true
            case 0x14: inInstruction = false
            case 0x15: fieldDepth = max(0, fieldDepth - 1); inInstruction = false
            case 0x0D, 0x07: flush()
            case 0x0B: flush()
            case 0x0C: flush(); page += 1
            case 0x09: if !inInstruction { current.unicodeScalars.append(" ") }
            case 0..<0x20: continue
            default: if !inInstruction { current.unicodeScalars.append(scalar) }
            }
        }
        flush()
        return lines
    }
}
