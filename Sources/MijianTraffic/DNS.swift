/// What a packet sent to port 53 asked for.
public enum DNSQuery: Sendable, Equatable {
    /// Not a query (a response, or a TCP segment without payload).
    case notQuery
    /// A query for these names (lower case, no trailing dot).
    case names([String])
    /// Port 53 carried something that does not parse as a DNS query; it is judged as a name outside.
    case undecodable
}

/// Reads the question names of DNS queries, following compression pointers a bounded number of times.
public enum DNSDecoder {
    /// The name shown for a query that could not be read.
    public static let undecodableName = "<undecodable query>"
    /// Most compression pointers followed in one name; a loop of pointers stops here.
    static let maxPointers = 16
    /// Most questions read from one message.
    static let maxQuestions = 8

    /// Most length-prefixed messages read from one TCP segment; any past them are unknown.
    static let maxMessages = 16

    /// Parses the payload of a UDP datagram or a TCP segment sent to port 53; `cut` says the segment
    /// goes on past `payload` (`DecodedPacket.payloadCut`).
    public static func query(payload: UnsafeRawBufferPointer, overTCP: Bool, cut: Bool = false) -> DNSQuery {
        var names: [String] = []
        var scratch: [UInt8] = []
        switch walk(payload: payload, overTCP: overTCP, cut: cut, scratch: &scratch, { name in
            names.append(String(decoding: name, as: UTF8.self))
            return true
        }) {
        case .notQuery: return .notQuery
        case .unreadable: return .undecodable
        // A question that cannot be read (cut by the snap length, or malformed), or one past the
        // questions read, is never taken for an allowed one: the query is judged as asking outside.
        case .ended(let complete): return .names(complete ? names : names + [undecodableName])
        case .stopped: return .names(names)
        }
    }

    /// Whether a payload sent to port 53 is certainly harmless: not a query, or a query whose every
    /// question was read and `policy` allows (names as `query` gives them). Makes no strings, so the
    /// common case of a capture (the unit's own names) costs no allocation; anything else is left to `query`.
    static func asksOnlyAllowedNames(
        payload: UnsafeRawBufferPointer, overTCP: Bool, cut: Bool = false, scratch: inout [UInt8], policy: borrowing EgressPolicy
    ) -> Bool {
        switch walk(payload: payload, overTCP: overTCP, cut: cut, scratch: &scratch, { policy.isAllowedName(utf8: $0) }) {
        case .notQuery, .ended(complete: true): return true
        case .unreadable, .ended(complete: false), .stopped: return false
        }
    }

    /// How a walk over a query's questions ended.
    enum Walk {
        /// A response, or a TCP segment without payload.
        case notQuery
        /// No question could be read (no header, no question, or the first name is malformed).
        case unreadable
        /// Every question up to `maxQuestions` was read, unless `complete` is false: a later question
        /// could not be read, or more were declared than are read.
        case ended(complete: Bool)
        /// `body` returned false.
        case stopped
    }

    /// Hands each question's name (its text in UTF-8: lower case, escaped, `.` for the root, built in
    /// `scratch`) to `body`, which returns whether to go on. The one reader behind `query` and
    /// `asksOnlyAllowedNames`.
    ///
    /// A UDP datagram is one message (RFC 1035 4.2.1): bytes after its questions are records or
    /// padding a resolver never reads as another query, so they are not judged. A TCP segment may
    /// carry several length-prefixed messages (RFC 7766 6.2.1.1), and a resolver answers each: every
    /// complete message is walked, up to `maxMessages`. What cannot be walked — a message its length
    /// prefix says goes on past the segment, a lone byte of a prefix, messages past the bound, or a
    /// segment `cut` short, where more may follow unseen — is judged as a question not read.
    static func walk(
        payload: UnsafeRawBufferPointer, overTCP: Bool, cut: Bool = false, scratch: inout [UInt8],
        _ body: (UnsafeBufferPointer<UInt8>) -> Bool
    ) -> Walk {
        guard overTCP else { return walkMessage(ByteView(payload), scratch: &scratch, body) }
        if payload.isEmpty { return cut ? .unreadable : .notQuery }
        let view = ByteView(payload)
        var offset = 0
        var read = false
        var complete = true
        var messages = 0
        while offset < view.count {
            guard messages < maxMessages, let length = view.u16(offset) else {
                complete = false
                break
            }
            messages += 1
            let message = ByteView(view.slice(offset + 2, upTo: Int(length)))
            let whole = message.count == Int(length)
            switch walkMessage(message, scratch: &scratch, body) {
            case .stopped: return .stopped
            case .notQuery: break
            case .unreadable: complete = false
            case .ended(let all):
                read = true
                if !all { complete = false }
            }
            guard whole else {
                complete = false
                break
            }
            offset += 2 + Int(length)
        }
        if cut { complete = false }
        if read { return .ended(complete: complete) }
        return complete ? .notQuery : .unreadable
    }

    /// `walk` over one DNS message.
    private static func walkMessage(_ view: ByteView, scratch: inout [UInt8], _ body: (UnsafeBufferPointer<UInt8>) -> Bool) -> Walk {
        guard let flags = view.u16(2), let questions = view.u16(4) else { return .unreadable }
        if flags & 0x8000 != 0 { return .notQuery }
        guard questions > 0 else { return .unreadable }
        var offset = 12
        for index in 0..<min(Int(questions), maxQuestions) {
            scratch.removeAll(keepingCapacity: true)
            guard let next = readName(view, at: offset, into: &scratch), view.has(next, 4) else {
                return index == 0 ? .unreadable : .ended(complete: false)
            }
            if scratch.isEmpty { scratch.append(0x2E) }
            guard scratch.withUnsafeBufferPointer(body) else { return .stopped }
            offset = next + 4
        }
        return .ended(complete: Int(questions) <= maxQuestions)
    }

    /// Appends the text of the name at `start` to `text` (nothing for the root); returns the offset just after it.
    static func readName(_ view: ByteView, at start: Int, into text: inout [UInt8]) -> Int? {
        let base = text.count
        var position = start
        var resume: Int?
        var pointers = 0
        var wire = 0
        while true {
            guard let length = view.u8(position) else { return nil }
            if length == 0 {
                position += 1
                break
            }
            switch length & 0xC0 {
            case 0xC0:
                guard let pointer = view.u16(position), pointers < maxPointers else { return nil }
                pointers += 1
                if resume == nil { resume = position + 2 }
                position = Int(pointer & 0x3FFF)
            case 0x00:
                let count = Int(length)
                wire += count + 1
                guard wire <= 255, view.has(position + 1, count) else { return nil }
                if text.count > base { text.append(0x2E) }
                for index in (position + 1)..<(position + 1 + count) {
                    append(view.base[index], to: &text)
                }
                position += 1 + count
            default:
                return nil
            }
        }
        return resume ?? position
    }

    /// Lower-cases letters and writes anything outside printable ASCII (and `.` `\` inside a label) as `\DDD`.
    static func append(_ byte: UInt8, to text: inout [UInt8]) {
        switch byte {
        case 0x41...0x5A: text.append(byte + 0x20)
        case 0x21...0x7E where byte != 0x2E && byte != 0x5C: text.append(byte)
        default:
            text.append(0x5C)
            text.append(0x30 + byte / 100)
            text.append(0x30 + byte / 10 % 10)
            text.append(0x30 + byte % 10)
        }
    }
}
