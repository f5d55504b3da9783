import CZlib

/// Builds zip archives in memory for the tests of bounds: stored or deflated members, the
/// encryption flag, members that claim what they are not. The layout is the one `zip` writes
/// (local header, data, central directory, end record).
struct ZipWriter {
    struct Member {
        var name: String
        var data: [UInt8]
        var deflate = true
        var encrypted = false
    }

    static func deflate(_ input: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 9, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return [] }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 64)
        var input = input
        let outputCount = output.count
        var produced = 0
        input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress
                stream.avail_in = uInt(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = uInt(outBuffer.count)
                _ = CZlib.deflate(&stream, Z_FINISH)
                produced = outputCount - Int(stream.avail_out)
            }
        }
        return Array(output.prefix(produced))
    }

    static func archive(_ members: [Member]) -> [UInt8] {
        var body: [UInt8] = []
        var directory: [UInt8] = []
        for member in members {
            let stored = member.deflate ? deflate(member.data) : member.data
            let crc = member.data.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
            let name = Array(member.name.utf8)
            let flags: UInt16 = member.encrypted ? 1 : 0
            let method: UInt16 = member.deflate ? 8 : 0
            let offset = UInt32(body.count)
            body += le32(0x0403_4B50) + le16(20) + le16(flags) + le16(method) + le16(0) + le16(0x5C21) + le32(crc)
                + le32(UInt32(stored.count)) + le32(UInt32(member.data.count)) + le16(UInt16(name.count)) + le16(0) + name + stored
            directory += le32(0x0201_4B50) + le16(0x031E) + le16(20) + le16(flags) + le16(method) + le16(0) + le16(0x5C21) + le32(crc)
                + le32(UInt32(stored.count)) + le32(UInt32(member.data.count)) + le16(UInt16(name.count)) + le16(0) + le16(0)
                + le16(0) + le16(0) + le32(0o100644 << 16) + le32(offset) + name
        }
        let end = le32(0x0605_4B50) + le16(0) + le16(0) + le16(UInt16(members.count)) + le16(UInt16(members.count))
            + le32(UInt32(directory.count)) + le32(UInt32(body.count)) + le16(0)
        return body + directory + end
    }

    static func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
    static func le32(_ value: UInt32) -> [UInt8] { le16(UInt16(value & 0xFFFF)) + le16(UInt16(value >> 16)) }
}
