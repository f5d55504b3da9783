import MijianCore

/// POSIX tar (ustar, GNU long names): regular members read into memory, each within the limits.
enum Tar {
    static func looksLike(_ head: [UInt8]) -> Bool {
        head.count >= 262 && Array(head[257..<262]) == Array("ustar".utf8)
    }

    static func members(_ source: any ByteSource, limits: ScanLimits) -> ReadOutcome {
        var members: [(name: String, bytes: Result<[UInt8], Unreadable>)] = []
        var offset: Int64 = 0
        var longName: String?
        var total = 0
        var note: String?
        while offset + 512 <= source.size, members.count < limits.members {
            let header: [UInt8]
            do { header = try source.read(at: offset, count: 512) } catch { return .unread(.tar, error.message) }
            if header.allSatisfy({ $0 == 0 }) { break }
            guard verifyChecksum(header) else {
                return members.isEmpty ? .unread(.tar, "a tar header with a wrong checksum: corrupt") : .archive(.tar, members, note: "the archive is corrupt after \(members.count) members")
            }
            let size = octal(header[124..<136])
            let type = header[156]
            var name = longName ?? field(header[0..<100])
            longName = nil
            let prefix = field(header[345..<500])
            if !prefix.isEmpty, Array(header[257..<263]) == Array("ustar\0".utf8) { name = prefix + "/" + name }
            let dataOffset = offset + 512
            offset = dataOffset + (size + 511) / 512 * 512
            guard dataOffset + size <= source.size else {
                members.append((name, .failure(Unreadable("the member runs past the end of the archive: truncated"))))
                break
            }
            switch type {
            case UInt8(ascii: "L"):
                if let bytes = try? source.read(at: dataOffset, count: Int(min(size, 4096))) { longName = field(bytes[...]) }
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
                guard size <= Int64(limits.memberBytes) else {
                    members.append((name, .failure(Unreadable("larger than \(limits.memberBytes) bytes"))))
                    continue
                }
                guard total < limits.archiveBytes else {
                    note = "members after \(limits.archiveBytes) bytes were not read"
                    members.append((name, .failure(Unreadable("not read: the archive's byte limit was reached"))))
                    continue
                }
                do {
                    let bytes = try source.read(at: dataOffset, count: Int(size))
                    total += bytes.count
                    members.append((name, .success(bytes)))
                } catch {
                    members.append((name, .failure(Unreadable(error.message))))
                }
            default:
                continue  // directories, links, devices, pax headers
            }
        }
        return .archive(.tar, members, note: note)
    }

    static func field(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    static func octal(_ bytes: ArraySlice<UInt8>) -> Int64 {
        if let first = bytes.first, first & 0x80 != 0 {
            // GNU base-256 for sizes of 8 GiB and more.
            return bytes.dropFirst().reduce(Int64(first & 0x7F)) { $0 << 8 | Int64($1) }
        }
        var value: Int64 = 0
        for byte in bytes where byte >= 0x30 && byte <= 0x37 { value = value * 8 + Int64(byte - 0x30) }
        return value
    }

    static func verifyChecksum(_ header: [UInt8]) -> Bool {
        let stored = octal(header[148..<156])
        var sum: Int64 = 0
        for (index, byte) in header.enumerated() { sum += (148..<156).contains(index) ? 32 : Int64(byte) }
        return sum == stored
    }
}
