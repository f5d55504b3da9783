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
        guard !flows.isEmpty else { return [] }
        var widths = headers.map(\.utf8.count)
        var total = 0
        for flow in flows { total += measure(flow, into: &widths) }
        var out: [UInt8] = []
        out.reserveCapacity(total + (flows.count + 1) * (widths.count * gap + 1) + widths.reduce(0, +))
        let spaces = [UInt8](repeating: 0x20, count: (widths.max() ?? 0) + gap)
        func pad(_ out: inout [UInt8], column: Int, used: Int, widths: [Int]) {
            guard column < widths.count - 1 else { return }
            out.append(contentsOf: spaces[0..<(widths[column] - used + gap)])
        }
        for (column, header) in headers.enumerated() {
            out.append(contentsOf: header.utf8)
            pad(&out, column: column, used: header.utf8.count, widths: widths)
        }
        out.append(0x0A)
        for flow in flows {
            var start = out.count
            appendAddress(flow.key.src, to: &out)
            pad(&out, column: 0, used: out.count - start, widths: widths)
            start = out.count
            appendAddress(flow.key.dst, to: &out)
            pad(&out, column: 1, used: out.count - start, widths: widths)
            start = out.count
            out.append(contentsOf: IPProtocol.name(flow.key.proto).utf8)
            pad(&out, column: 2, used: out.count - start, widths: widths)
            start = out.count
            if flow.key.dstPort < 0 { out.append(0x2D) } else { appendDecimal(Int64(flow.key.dstPort), to: &out) }
            pad(&out, column: 3, used: out.count - start, widths: widths)
            start = out.count
            appendDecimal(Int64(flow.stats.packets), to: &out)
            pad(&out, column: 4, used: out.count - start, widths: widths)
            start = out.count
            appendDecimal(Int64(flow.stats.bytes), to: &out)
            pad(&out, column: 5, used: out.count - start, widths: widths)
            start = out.count
            EgressFlow.appendTimestamp(flow.stats.firstSeen, to: &out)
            pad(&out, column: 6, used: out.count - start, widths: widths)
            start = out.count
            EgressFlow.appendTimestamp(flow.stats.lastSeen, to: &out)
            pad(&out, column: 7, used: out.count - start, widths: widths)
            for (index, name) in flow.stats.dnsNames.enumerated() {
                if index > 0 { out.append(0x2C) }
                out.append(contentsOf: name.utf8)
            }
            out.append(0x0A)
        }
        return out
    }

    /// Widens `widths` to fit every cell of one row and returns the row's cell bytes (every cell is
    /// ASCII: addresses, numbers, escaped names). Timestamps are always 24 bytes.
    static func measure(_ flow: EgressFlow, into widths: inout [Int]) -> Int {
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
        return cells.0 + cells.1 + cells.2 + cells.3 + cells.4 + cells.5 + cells.6 + 2 * timestampWidth
    }

    /// Bytes `EgressFlow.appendTimestamp` writes.
    static let timestampWidth = 24

    /// Writes an address as `IPAddress.description` does; IPv4 without building a string.
    public static func appendAddress(_ address: IPAddress, to out: inout [UInt8]) {
        guard case .v4(let value) = address else {
            out.append(contentsOf: address.description.utf8)
            return
        }
        for shift in [24, 16, 8, 0] as [UInt32] {
            appendDecimal(Int64(value >> shift & 0xFF), to: &out)
            if shift > 0 { out.append(0x2E) }
        }
    }

    /// Width of `appendAddress`'s output.
    static func addressWidth(_ address: IPAddress) -> Int {
        guard case .v4(let value) = address else { return address.description.utf8.count }
        var width = 3
        for shift in [24, 16, 8, 0] as [UInt32] { width += decimalWidth(Int64(value >> shift & 0xFF)) }
        return width
    }

    /// Writes a decimal integer.
    public static func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(0x2D) }
        var magnitude = value.magnitude
        let width = decimalWidth(value) - (value < 0 ? 1 : 0)
        let start = out.count
        out.append(contentsOf: repeatElement(0x30, count: width))
        var position = start + width - 1
        while magnitude > 0 {
            out[position] = 0x30 + UInt8(magnitude % 10)
            magnitude /= 10
            position -= 1
        }
    }

    /// Characters `appendDecimal` writes.
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
