/// Bounds-checked big-endian reads over borrowed packet bytes; every read past the end gives nil.
///
/// The view never copies and never traps: offsets are checked against the buffer's count before
/// each unaligned load, so hostile lengths in headers can only make a read fail.
struct ByteView {
    let base: UnsafeRawBufferPointer

    init(_ base: UnsafeRawBufferPointer) { self.base = base }

    var count: Int { base.count }

    func has(_ offset: Int, _ length: Int) -> Bool {
        offset >= 0 && length >= 0 && offset <= base.count && length <= base.count - offset
    }

    func u8(_ offset: Int) -> UInt8? {
        guard has(offset, 1) else { return nil }
        return base[offset]
    }

    func u16(_ offset: Int) -> UInt16? {
        guard has(offset, 2) else { return nil }
        return UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    func u32(_ offset: Int) -> UInt32? {
        guard has(offset, 4) else { return nil }
        return UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u128(_ offset: Int) -> UInt128? {
        guard let high = u64(offset), let low = u64(offset + 8) else { return nil }
        return UInt128(high) << 64 | UInt128(low)
    }

    func u64(_ offset: Int) -> UInt64? {
        guard has(offset, 8) else { return nil }
        return UInt64(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The bytes from `offset` to the end (empty when out of range).
    func tail(_ offset: Int) -> UnsafeRawBufferPointer {
        guard has(offset, 0) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: base[offset...])
    }

    /// At most `length` bytes from `offset` (fewer when the buffer ends first).
    func slice(_ offset: Int, upTo length: Int) -> UnsafeRawBufferPointer {
        guard has(offset, 0), length >= 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let end = offset + min(length, base.count - offset)
        return UnsafeRawBufferPointer(rebasing: base[offset..<end])
    }
}
