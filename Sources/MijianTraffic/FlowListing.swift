import MijianCore

/// The human listing of flows: one aligned row per flow, written straight into bytes.
///
/// A flood can leave tens of thousands of flows; the listing measures every cell first, then writes
/// each row once, with no intermediate strings per cell.
public enum FlowListing {
    /// Column headings, in order.
    public static let headers = ["SRC", "DST", "PROTO", "PORT", "PACKETS", "BYTES", "FIRST SEEN", "LAST SEEN", "DNS NAMES"]
    /// Spaces between columns.
    static let gap = 2

    /// The heading line and one line per flow, each ending in a newline; empty when there are no flows.
    public static func text(_ flows: [EgressFlow]) -> [UInt8] {
        var out: [UInt8] = []
        write(flows) { out.append(contentsOf: $0) }
        return out
    }

    /// Writes the listing in pieces of about `chunk` bytes, so a listing of any length needs one small
    /// buffer; `emit` gets each piece in order and may throw to stop.
    public static func write<E: Error>(
        _ flows: [EgressFlow], chunk: Int = 1 << 18, to emit: (UnsafeRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        guard !flows.isEmpty else { return }
        var widths = headers.map(\.utf8.count)
        for flow in flows { measure(flow, into: &widths) }
        let sink = ByteSink(capacity: chunk + 4096)
        try write(flows, widths: widths, into: sink, chunk: chunk, emit: emit)
        if sink.count > 0 { try emit(sink.bytes) }
    }

    private static func write<E: Error>(
        _ flows: [EgressFlow], widths: [Int], into sink: ByteSink, chunk: Int, emit: (UnsafeRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        let octets = octetDigits
        let last = widths.count - 1
        for (column, header) in headers.enumerated() {
            sink.put(header)
            if column < last { sink.spaces(widths[column] - header.utf8.count + gap) }
        }
        sink.put(0x0A)
        func address(_ value: IPAddress, column: Int) {
            let start = sink.count
            if case .v4(let v4) = value {
                sink.put(octet: octets[Int(v4 >> 24)])
                sink.put(0x2E)
                sink.put(octet: octets[Int(v4 >> 16 & 0xFF)])
                sink.put(0x2E)
                sink.put(octet: octets[Int(v4 >> 8 & 0xFF)])
                sink.put(0x2E)
                sink.put(octet: octets[Int(v4 & 0xFF)])
            } else {
                sink.put(value.description)
            }
            sink.spaces(widths[column] - (sink.count - start) + gap)
        }
        func number(_ value: Int64, column: Int) {
            let start = sink.count
            sink.put(decimal: value)
            sink.spaces(widths[column] - (sink.count - start) + gap)
        }
        // Flows of one capture mostly share their second: its text is made once and reused.
        var cachedSecond = Int64.min
        var cachedHead: EgressFlow.TwelveBytes = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var cachedTail: EgressFlow.TwelveBytes = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        func time(_ value: Int64, column: Int) {
            let (second, fraction) = value.quotientAndRemainder(dividingBy: 1_000_000_000)
            if second == cachedSecond, fraction >= 0 {
                // Only the milliseconds differ: bytes 20-22 of the text.
                let millis = UInt16(truncatingIfNeeded: fraction / 1_000_000)
                var tail = cachedTail
                tail.8 = 0x30 + UInt8(millis / 100)
                tail.9 = 0x30 + UInt8(millis / 10 % 10)
                tail.10 = 0x30 + UInt8(millis % 10)
                sink.put(timestamp: (cachedHead, tail))
            } else {
                let text = EgressFlow.timestampBytes(value)
                if fraction >= 0 {
                    cachedSecond = second
                    (cachedHead, cachedTail) = text
                }
                sink.put(timestamp: text)
            }
            sink.spaces(widths[column] - timestampWidth + gap)
        }
        let protocols = (0...255).map { Array(IPProtocol.name(UInt8($0)).utf8) }
        try flows.withUnsafeBufferPointer { (flows) throws(E) in
            for index in flows.indices {
                address(flows[index].key.src, column: 0)
                address(flows[index].key.dst, column: 1)
                let proto = protocols[Int(flows[index].key.proto)]
                proto.withUnsafeBytes { sink.put($0) }
                sink.spaces(widths[2] - proto.count + gap)
                if flows[index].key.dstPort < 0 {
                    sink.put(0x2D)
                    sink.spaces(widths[3] - 1 + gap)
                } else {
                    number(Int64(flows[index].key.dstPort), column: 3)
                }
                number(Int64(flows[index].stats.packets), column: 4)
                number(Int64(flows[index].stats.bytes), column: 5)
                time(flows[index].stats.firstSeen, column: 6)
                time(flows[index].stats.lastSeen, column: 7)
                if !flows[index].stats.dnsNames.isEmpty {
                    for (position, name) in flows[index].stats.dnsNames.enumerated() {
                        if position > 0 { sink.put(0x2C) }
                        sink.put(name)
                    }
                }
                sink.put(0x0A)
                if sink.count >= chunk {
                    try emit(sink.bytes)
                    sink.clear()
                }
            }
        }
    }

    /// Widens `widths` to fit every cell of one row (every cell is ASCII: addresses, numbers, escaped
    /// names; timestamps are always 24 bytes).
    static func measure(_ flow: EgressFlow, into widths: inout [Int]) {
        var names = max(0, flow.stats.dnsNames.count - 1)
        for name in flow.stats.dnsNames { names += name.utf8.count }
        let cells = (
            addressWidth(flow.key.src), addressWidth(flow.key.dst), IPProtocol.name(flow.key.proto).utf8.count,
            flow.key.dstPort < 0 ? 1 : decimalWidth(Int64(flow.key.dstPort)), decimalWidth(Int64(flow.stats.packets)),
            decimalWidth(Int64(flow.stats.bytes)), names
        )
        widths[0] = max(widths[0], cells.0)
        widths[1] = max(widths[1], cells.1)
        widths[2] = max(widths[2], cells.2)
        widths[3] = max(widths[3], cells.3)
        widths[4] = max(widths[4], cells.4)
        widths[5] = max(widths[5], cells.5)
        widths[6] = max(widths[6], timestampWidth)
        widths[7] = max(widths[7], timestampWidth)
        widths[8] = max(widths[8], cells.6)
    }

    /// Bytes `EgressFlow.appendTimestamp` writes.
    static let timestampWidth = 24

    /// Each octet's decimal digits packed little-endian in the low bytes, with the count in the top byte.
    static let octetDigits: [UInt32] = (0...255).map { value in
        let digits = Array(String(value).utf8)
        var packed = UInt32(digits.count) << 24
        for (index, digit) in digits.enumerated() { packed |= UInt32(digit) << (8 * UInt32(index)) }
        return packed
    }

    /// Width of an address as the listing writes it.
    static func addressWidth(_ address: IPAddress) -> Int {
        guard case .v4(let value) = address else { return address.description.utf8.count }
        let table = octetDigits
        return 3 + Int(table[Int(value >> 24)] >> 24) + Int(table[Int(value >> 16 & 0xFF)] >> 24)
            + Int(table[Int(value >> 8 & 0xFF)] >> 24) + Int(table[Int(value & 0xFF)] >> 24)
    }

    /// Characters a decimal integer takes.
    static func decimalWidth(_ value: Int64) -> Int {
        var magnitude = value.magnitude
        var width = value < 0 ? 2 : 1
        while magnitude >= 10 {
            magnitude /= 10
            width += 1
        }
        return width
    }
}

/// A growable byte buffer with cheap appends, for writing large listings piece by piece.
final class ByteSink {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    /// Bytes written since the last `clear()`.
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(64, capacity)
        base = UnsafeMutablePointer<UInt8>.allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// The bytes written, valid until the next write or `clear()`.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Forgets the bytes written, keeping the storage.
    func clear() { count = 0 }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    private func reserve(_ extra: Int) {
        if extra > capacity - count { grow(extra) }
    }

    @inline(never)
    private func grow(_ extra: Int) {
        let grown = max(capacity * 2, count + extra)
        let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        storage.moveInitialize(from: base, count: count)
        base.deallocate()
        base = storage
        capacity = grown
    }

    @inline(__always)
    func put(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    func put(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    func put(_ text: String) {
        var text = text
        text.withUTF8 { put(UnsafeRawBufferPointer($0)) }
    }

    /// Writes the 24 bytes of a timestamp.
    @inline(__always)
    func put(timestamp: (EgressFlow.TwelveBytes, EgressFlow.TwelveBytes)) {
        reserve(24)
        let target = UnsafeMutableRawPointer(base + count)
        target.storeBytes(of: timestamp.0, as: EgressFlow.TwelveBytes.self)
        (target + 12).storeBytes(of: timestamp.1, as: EgressFlow.TwelveBytes.self)
        count += 24
    }

    /// Writes the one to three digits packed by `FlowListing.octetDigits`.
    @inline(__always)
    func put(octet packed: UInt32) {
        let length = Int(packed >> 24)
        reserve(length)
        var rest = packed
        for offset in 0..<length {
            base[count + offset] = UInt8(truncatingIfNeeded: rest)
            rest >>= 8
        }
        count += length
    }

    func put(decimal value: Int64) {
        if value < 0 { put(0x2D) }
        let magnitude = value.magnitude
        var divisor: UInt64 = 1
        while divisor <= magnitude / 10 { divisor *= 10 }
        reserve(20)
        var rest = magnitude
        while divisor > 0 {
            base[count] = 0x30 + UInt8(truncatingIfNeeded: rest / divisor)
            count += 1
            rest %= divisor
            divisor /= 10
        }
    }

    @inline(__always)
    func spaces(_ n: Int) {
        guard n > 0 else { return }
        reserve(n)
        (base + count).initialize(repeating: 0x20, count: n)
        count += n
    }
}
