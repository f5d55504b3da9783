import Foundation

extension Report {
    /// Decodes a `mijian.report/v1` payload straight from its bytes, without a `JSONValue` tree.
    /// Evidence and event `data` are checked in place by the parser's rules and kept as slices of
    /// `payload`; they become `JSONValue`s only when read.
    ///
    /// It reads JSON with `JSONParser`'s own rules (strings, escapes, UTF-8, numbers, depth,
    /// duplicate keys) and checks what `Report(json:)` checks. It only ever accepts: on anything it
    /// does not take (any refusal, and forms it leaves to the tree path, such as escaped keys) it
    /// returns nil, and the caller decodes with `JSONParser` and `Report(json:)`, which give the
    /// refusal its reason. The two paths agree on every report either accepts (see the tests).
    public static func decodingDirectly(_ payload: [UInt8], maxDepth: Int = 64, maxBytes: Int = 16 << 20) -> Report? {
        // Evidence `data` sits at depth 5; a smaller limit is left to the tree path.
        guard payload.count <= maxBytes, maxDepth >= ReportReader.deepestSchemaDepth else { return nil }
        return payload.withUnsafeBufferPointer { bytes in
            var reader = ReportReader(payload: payload[...], state: JSONParser.State(bytes: bytes, maxDepth: maxDepth))
            do {
                return try reader.report()
            } catch {
                return nil
            }
        }
    }

    /// The evidence of a finding from the bytes of its array, which the direct decoder checked
    /// (so decoding cannot fail; it would give no evidence).
    static func evidence(checked bytes: ArraySlice<UInt8>) -> [Evidence] {
        bytes.withUnsafeBufferPointer { buffer in
            var reader = ReportReader(payload: bytes, state: JSONParser.State(bytes: buffer, maxDepth: Int.max - 8))
            return (try? reader.evidenceList()) ?? []
        }
    }
}

/// The direct path gives up; the tree path decides.
private struct Decline: Error {}

/// The schema of a report, walked over `JSONParser.State`.
private struct ReportReader {
    /// The depth of evidence `data`: report, findings, finding, evidence, evidence item, data.
    static let deepestSchemaDepth = 5

    /// The bytes `state` reads (its index 0 is `payload.startIndex`), for the slices that keep
    /// evidence and event data.
    let payload: ArraySlice<UInt8>
    var state: JSONParser.State
    /// Key ranges (start, length) of the objects being checked, innermost last: duplicates are
    /// found by comparing bytes, without making strings.
    var keyRanges: [KeyRange] = []
    /// How many of `keyRanges` are in use; the rest are left over from objects already closed.
    var keyCount = 0
    /// The last timestamp read in place, by position and length: reports repeat theirs.
    var lastDate: (start: Int, count: Int, date: Date)?

    // MARK: tokens

    /// The next byte after white space, without taking it.
    @inline(__always)
    mutating func peek() throws(Decline) -> UInt8 {
        state.skipSpace()
        guard state.index < state.bytes.count else { throw Decline() }
        return state.bytes[state.index]
    }

    @inline(__always)
    mutating func take(_ byte: UInt8) throws(Decline) {
        guard try peek() == byte else { throw Decline() }
        state.index += 1
    }

    /// Opens an object or an array (`{` or `[`); true when it is empty and already closed.
    mutating func open(_ opening: UInt8, _ closing: UInt8) throws(Decline) -> Bool {
        try take(opening)
        if try peek() == closing {
            state.index += 1
            return true
        }
        return false
    }

    /// After an element or member: true when another follows (`,` taken), false at the close.
    mutating func more(_ closing: UInt8) throws(Decline) -> Bool {
        let byte = try peek()
        state.index += 1
        if byte == 0x2C { return true }
        if byte == closing { return false }
        throw Decline()
    }

    /// Reads `"key":` and returns which of `names` it is. A key outside them, or one written with
    /// an escape or a control character, declines (the tree path names the unknown member).
    mutating func key(_ names: KeyNames, hint: Int) throws(Decline) -> Int {
        state.skipSpace()
        // Members usually come in schema order: `"name":` of member `hint` is tried first, by two
        // word compares, when 17 bytes remain to load them from.
        let bytes = state.bytes
        let at = state.index
        if hint < names.entries.count, at + 17 <= bytes.count, bytes[at] == 0x22, let address = bytes.baseAddress {
            let expected = names.entries[hint]
            let length = expected.length
            if at + length + 3 <= bytes.count, bytes[at + 1 + length] == 0x22, bytes[at + 2 + length] == 0x3A {
                let raw = UnsafeRawPointer(address + at + 1)
                let low = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
                let high = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                if low & expected.lowMask == expected.packed.low, high & expected.highMask == expected.packed.high {
                    state.index = at + length + 3
                    return hint
                }
            }
        }
        try take(0x22)
        // The key's bytes packed into two words as it is scanned; no schema key is longer than 16.
        var packed = PackedKey()
        var length = 0
        while true {
            guard state.index < bytes.count else { throw Decline() }
            let byte = bytes[state.index]
            state.index += 1
            if byte == 0x22 { break }
            guard byte != 0x5C, byte >= 0x20, length < 16 else { throw Decline() }
            packed.add(byte, at: length)
            length += 1
        }
        try take(0x3A)
        guard let which = names.packed.firstIndex(of: packed) else { throw Decline() }
        return which
    }

    /// Marks member `which` as seen; a second sighting is a duplicate key.
    @inline(__always)
    func first(_ which: Int, _ seen: inout UInt32) throws(Decline) {
        let bit: UInt32 = 1 << UInt32(which)
        guard seen & bit == 0 else { throw Decline() }
        seen |= bit
    }

    /// True when every one of `count` members was seen.
    @inline(__always)
    func all(_ count: Int, _ seen: UInt32) -> Bool { seen == (1 << UInt32(count)) - 1 }

    // MARK: values

    mutating func string() throws(Decline) -> String {
        guard try peek() == 0x22 else { throw Decline() }
        do {
            return try state.string()
        } catch {
            throw Decline()
        }
    }

    /// A string or null.
    mutating func optionalString() throws(Decline) -> String? {
        if try peek() == 0x6E {
            do {
                _ = try state.expect("null", .null)
            } catch {
                throw Decline()
            }
            return nil
        }
        return try string()
    }

    mutating func int() throws(Decline) -> Int64 {
        let byte = try peek()
        guard byte == 0x2D || (0x30...0x39).contains(byte) else { throw Decline() }
        do {
            guard case .int(let value) = try state.number() else { throw Decline() }
            return value
        } catch {
            throw Decline()
        }
    }

    /// An RFC 3339 string, read in place when it has no escape.
    mutating func date() throws(Decline) -> Date {
        guard try peek() == 0x22 else { throw Decline() }
        let bytes = state.bytes
        let start = state.index + 1
        // The same text as the last time read, then its closing quote: the same time.
        if let last = lastDate, start + last.count < bytes.count, bytes[start + last.count] == 0x22, let address = bytes.baseAddress,
            memcmp(address + last.start, address + start, last.count) == 0
        {
            state.index = start + last.count + 1
            return last.date
        }
        var end = start
        while end < bytes.count, bytes[end] != 0x22, bytes[end] != 0x5C, bytes[end] >= 0x20, bytes[end] < 0x80 { end += 1 }
        if end < bytes.count, bytes[end] == 0x22 {
            state.index = end + 1
            let count = end - start
            if let last = lastDate, last.count == count {
                var offset = 0
                while offset < count, bytes[last.start + offset] == bytes[start + offset] { offset += 1 }
                if offset == count { return last.date }
            }
            guard let date = RFC3339.date(utf8: UnsafeBufferPointer(rebasing: bytes[start..<end])) else { throw Decline() }
            lastDate = (start, count, date)
            return date
        }
        guard let date = RFC3339.date(from: try string()) else { throw Decline() }
        return date
    }

    /// Any JSON value at `depth`, checked in place: its bytes, a slice of the payload.
    mutating func checkedData(depth: Int) throws(Decline) -> JSONData {
        state.skipSpace()
        let start = state.index
        try check(depth: depth)
        let offset = payload.startIndex
        return .checked(payload[offset + start..<offset + state.index])
    }

    /// A UUID: the 8-4-4-4-12 hex form is read in place; any other text goes to `UUID(uuidString:)`.
    mutating func uuid() throws(Decline) -> UUID? {
        guard try peek() == 0x22 else { throw Decline() }
        let bytes = state.bytes
        let start = state.index + 1
        if start + 37 <= bytes.count, bytes[start + 36] == 0x22 {
            var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let valid = withUnsafeMutableBytes(of: &value) { out in
                var nibbles = 0
                for position in 0..<36 {
                    let byte = bytes[start + position]
                    if position == 8 || position == 13 || position == 18 || position == 23 {
                        guard byte == 0x2D else { return false }
                        continue
                    }
                    let digit: UInt8
                    switch byte {
                    case 0x30...0x39: digit = byte - 0x30
                    case 0x41...0x46: digit = byte - 0x41 + 10
                    case 0x61...0x66: digit = byte - 0x61 + 10
                    default: return false
                    }
                    out[nibbles / 2] |= nibbles % 2 == 0 ? digit << 4 : digit
                    nibbles += 1
                }
                return true
            }
            if valid {
                state.index = start + 37
                return UUID(uuid: value)
            }
        }
        return UUID(uuidString: try string())
    }

    mutating func enumeration<T: RawRepresentable & CaseIterable>(_ type: T.Type, _ names: KeyNames) throws(Decline) -> T where T.RawValue == String {
        // The raw value written plainly, as the encoder writes it, is matched in place.
        if let which = plain(names) { return T.allCases[T.allCases.index(T.allCases.startIndex, offsetBy: which)] }
        guard let value = T(rawValue: try string()) else { throw Decline() }
        return value
    }

    /// When the string at the current position is `"name"` for one of `names`, written without
    /// escapes (so it is that name), moves past it and returns which; otherwise nil, unmoved.
    mutating func plain(_ names: KeyNames) -> Int? {
        state.skipSpace()
        let bytes = state.bytes
        let at = state.index
        guard at + 18 <= bytes.count, bytes[at] == 0x22, let address = bytes.baseAddress else { return nil }
        let raw = UnsafeRawPointer(address + at + 1)
        let low = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        let high = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        for (which, expected) in names.entries.enumerated()
        where bytes[at + 1 + expected.length] == 0x22 && low & expected.lowMask == expected.packed.low && high & expected.highMask == expected.packed.high {
            state.index = at + expected.length + 2
            return which
        }
        return nil
    }

    /// When the bytes at the current position are exactly `expected`, moves past them: true.
    mutating func same(_ expected: [UInt8]) -> Bool {
        state.skipSpace()
        let bytes = state.bytes
        let at = state.index
        guard at + expected.count <= bytes.count, let address = bytes.baseAddress else { return false }
        let equal = expected.withUnsafeBufferPointer { expected in
            expected.baseAddress.map { memcmp(address + at, $0, expected.count) == 0 } ?? true
        }
        if equal { state.index = at + expected.count }
        return equal
    }

    // MARK: the schema

    static let windowKeys = KeyNames(["start", "end"])
    static let agentKeys = KeyNames(["name", "version", "keyid"])
    static let policyKeys = KeyNames(["id", "version", "sha256"])
    static let ruleKeys = KeyNames(["id", "version", "title"])
    static let referenceKeys = KeyNames(["system", "id"])

    static let reportKeys = KeyNames([
        "schema", "report_id", "epoch", "seq", "prev_sha256", "issued_at", "window", "agent", "host", "policy", "summary", "findings", "events",
    ])

    mutating func report() throws(Decline) -> Report {
        var schemaOK = false
        var reportID: UUID?
        var epoch: Int64 = 0, seq: Int64 = 0
        var prev = ""
        var issuedAt = Date(timeIntervalSince1970: 0), windowStart = issuedAt, windowEnd = issuedAt
        var agent = AgentInfo()
        var host = HostInfo(hostID: "", hostname: "")
        var policy = PolicyInfo(id: "", version: "", sha256: "")
        var summary: [Int64] = []
        var findings: [Finding] = []
        var events: [Event] = []
        var seen: UInt32 = 0
        guard try !open(0x7B, 0x7D) else { throw Decline() }
        repeat {
            let which = try key(Self.reportKeys, hint: seen.nonzeroBitCount)
            try first(which, &seen)
            switch which {
            case 0: schemaOK = try string() == Report.schema
            case 1: reportID = try uuid()
            case 2: epoch = try int()
            case 3: seq = try int()
            case 4: prev = try string()
            case 5: issuedAt = try date()
            case 6: (windowStart, windowEnd) = try window()
            case 7:
                let fields = try strings(Self.agentKeys)
                agent = AgentInfo(name: fields.0, version: fields.1, keyid: fields.2)
            case 8: host = try hostInfo()
            case 9:
                let fields = try strings(Self.policyKeys)
                policy = PolicyInfo(id: fields.0, version: fields.1, sha256: fields.2)
            case 10: summary = try summaryCounts()
            case 11: findings = try findingList()
            default: events = try eventList()
            }
        } while try more(0x7D)
        state.skipSpace()
        guard state.index == state.bytes.count, all(Self.reportKeys.packed.count, seen), schemaOK, let reportID else { throw Decline() }
        guard epoch >= 0, seq >= 0, prev.isEmpty || Report.isSHA256Hex(prev) else { throw Decline() }
        let report = Report(
            reportID: reportID, epoch: epoch, seq: seq, prevSHA256: prev, issuedAt: issuedAt, windowStart: windowStart, windowEnd: windowEnd,
            agent: agent, host: host, policy: policy, findings: findings, events: events)
        // The summary must agree with the findings, status by status.
        var counts = [Int64](repeating: 0, count: Status.allCases.count)
        for finding in findings {
            guard let index = Status.allCases.firstIndex(of: finding.status) else { throw Decline() }
            counts[index] += 1
        }
        guard counts == summary else { throw Decline() }
        return report
    }

    mutating func window() throws(Decline) -> (Date, Date) {
        var start = Date(timeIntervalSince1970: 0), end = start
        var seen: UInt32 = 0
        guard try !open(0x7B, 0x7D) else { throw Decline() }
        repeat {
            let which = try key(Self.windowKeys, hint: seen.nonzeroBitCount)
            try first(which, &seen)
            if which == 0 { start = try date() } else { end = try date() }
        } while try more(0x7D)
        guard all(2, seen) else { throw Decline() }
        return (start, end)
    }

    /// An object of three required string members, in the order of `names`.
    mutating func strings(_ names: KeyNames) throws(Decline) -> (String, String, String) {
        var fields = ("", "", "")
        var seen: UInt32 = 0
        guard try !open(0x7B, 0x7D) else { throw Decline() }
        repeat {
            let which = try key(names, hint: seen.nonzeroBitCount)
            try first(which, &seen)
            switch which {
            case 0: fields.0 = try string()
            case 1: fields.1 = try string()
            default: fields.2 = try string()
            }
        } while try more(0x7D)
        guard all(names.packed.count, seen) else { throw Decline() }
        return fields
    }

    /// A reference: `system` and `id`, both required strings.
    mutating func reference(matching known: Reference?) throws(Decline) -> Reference {
        var system = "", id = ""
        var seen: UInt32 = 0
        guard try !open(0x7B, 0x7D) else { throw Decline() }
        repeat {
            let which = try key(Self.referenceKeys, hint: seen.nonzeroBitCount)
            try first(which, &seen)
            if which == 0 { system = try string(matching: known?.system) } else { id = try string(matching: known?.id) }
        } while try more(0x7D)
        guard all(2, seen) else { throw Decline() }
        return Reference(system: system, id: id)
    }

    static let hostKeys = KeyNames(["host_id", "hostname", "asset_id", "classification", "responsible", "unit", "os", "kernel", "boot_id"])

    mutating func hostInfo() throws(Decline) -> HostInfo {
        var fields: [String?] = Array(repeating: nil, count: Self.hostKeys.packed.count)
        var seen: UInt32 = 0
        guard try !open(0x7B, 0x7D) else { throw Decline() }
        repeat {
            let which = try key(Self.hostKeys, hint: seen.nonzeroBitCount)
            try first(which, &seen)
            switch which {
            // host_id, hostname, os, kernel: strings; the others may be null or absent.
            case 0, 1, 6, 7: fields[which] = try string()
            default: fields[which] = try optionalString()
            }
        } while try more(0x7D)
        guard let hostID = fields[0], let hostname = fields[1], let os = fields[6], let kernel = fields[7] else { throw Decline() }
        var classification: Classification?
        if let text = fields[3] {
            guard let value = Classification(rawValue: text) else { throw Decline() }
            classification = value
        }
        return HostInfo(
            hostID: hostID, hostname: hostname, assetID: fields[2], classification: classification, responsible: fields[4], unit: fields[5], os: os,
            kernel: kernel, bootID: fields[8])
    }

    static let statusKeys = KeyNames(["pass", "fail", "error", "notapplicable", "notchecked", "informational"])

    /// The claimed counts, in `Status.allCases` order.
    mutating func summaryCounts() throws(Decline) -> [Int64] {
        var counts = [Int64](repeating: 0, count: Self.statusKeys.packed.count)
        var seen: UInt32 = 0
        guard try !open(0x7B, 0x7D) else { throw Decline() }
        repeat {
            let which = try key(Self.statusKeys, hint: seen.nonzeroBitCount)
            try first(which, &seen)
            counts[which] = try int()
        } while try more(0x7D)
        guard all(Self.statusKeys.packed.count, seen) else { throw Decline() }
        return counts
    }

    mutating func findingList() throws(Decline) -> [Finding] {
        var findings: [Finding] = []
        if try open(0x5B, 0x5D) { return findings }
        repeat { findings.append(try finding()) } while try more(0x5D)
        return findings
    }

    static let findingKeys = KeyNames(["uid", "rule", "references", "subject", "severity", "status", "status_detail", "observed_at", "evidence"])

    mutating func finding() throws(Decline) -> Finding {
        var uid = "", subject = "", detail = ""
        var rule = ("", "", "")
        var references: [Reference] = []
        var severity = Severity.informational
        var status = Status.pass
        var observedAt = Date(timeIntervalSince1970: 0)
        var evidence = EvidenceList.value([])
        var canonical: CanonicalRule?
        var seen: UInt32 = 0
        guard try !open(0x7B, 0x7D) else { throw Decline() }
        repeat {
            let which = try key(Self.findingKeys, hint: seen.nonzeroBitCount)
            try first(which, &seen)
            switch which {
            case 0: uid = try string()
            case 1:
                // A rule of the catalogue, written as the encoder writes it: the catalogue's own.
                if let match = canonicalRule() {
                    rule = (match.info.id, match.info.version, match.info.title)
                    canonical = match
                } else {
                    rule = try ruleFields()
                }
            case 2:
                if let canonical, same(canonical.referencesBytes) {
                    references = canonical.info.references
                } else {
                    references = try referenceList(known: rule.0.isEmpty ? nil : RuleCatalogue.rule(rule.0)?.references)
                }
            case 3: subject = try string()
            case 4: severity = try enumeration(Severity.self, Self.severityNames)
            case 5: status = try enumeration(Status.self, Self.statusNames)
            case 6: detail = try string()
            case 7: observedAt = try date()
            default: evidence = try checkedEvidenceList()
            }
        } while try more(0x7D)
        guard all(Self.findingKeys.packed.count, seen) else { throw Decline() }
        if let canonical, references == canonical.info.references {
            return Finding(
                uid: uid, rule: canonical.info, subject: subject, severity: severity, status: status, statusDetail: detail, observedAt: observedAt,
                evidenceContent: evidence)
        }
        let known = RuleCatalogue.rule(rule.0)
        let info = RuleInfo(
            id: rule.0, version: rule.1, title: rule.2, titleZH: known?.titleZH ?? rule.2, references: references,
            defaultSeverity: known?.defaultSeverity ?? severity)
        return Finding(
            uid: uid, rule: info, subject: subject, severity: severity, status: status, statusDetail: detail, observedAt: observedAt,
            evidenceContent: evidence)
    }

    static let severityNames = KeyNames(Severity.allCases.map(\.rawValue))
    static let statusNames = KeyNames(Status.allCases.map(\.rawValue))

    /// When the value at the current position is the `rule` object of a catalogue rule byte for
    /// byte as the encoder writes it, moves past it and returns that rule; otherwise nil, unmoved.
    mutating func canonicalRule() -> CanonicalRule? {
        state.skipSpace()
        let bytes = state.bytes
        let at = state.index
        // `{"id":"` and the id's first 8 bytes pick the candidates; memcmp decides.
        guard at + 15 <= bytes.count, let address = bytes.baseAddress else { return nil }
        let word = UInt64(littleEndian: UnsafeRawPointer(address + at + 7).loadUnaligned(as: UInt64.self))
        for candidate in CanonicalRule.all where candidate.idWord == word && same(candidate.ruleBytes) { return candidate }
        return nil
    }

    /// A finding's references; `known`, the catalogue's for its rule when the rule came first,
    /// lends its strings (and its array, when they are all the same) instead of new ones.
    mutating func referenceList(known: [Reference]?) throws(Decline) -> [Reference] {
        var references: [Reference] = []
        if try open(0x5B, 0x5D) { return references }
        repeat {
            let index = references.count
            references.append(try reference(matching: known.flatMap { index < $0.count ? $0[index] : nil }))
        } while try more(0x5D)
        if let known, known == references { return known }
        return references
    }

    /// A rule object: `id`, `version`, `title`. When the id comes first and names a rule of the
    /// catalogue, the catalogue's version and title are used when they are the same bytes.
    mutating func ruleFields() throws(Decline) -> (String, String, String) {
        var fields = ("", "", "")
        var known: RuleInfo?
        var seen: UInt32 = 0
        guard try !open(0x7B, 0x7D) else { throw Decline() }
        repeat {
            let which = try key(Self.ruleKeys, hint: seen.nonzeroBitCount)
            try first(which, &seen)
            switch which {
            case 0:
                fields.0 = try string()
                known = RuleCatalogue.rule(fields.0)
            case 1: fields.1 = try string(matching: known?.version)
            default: fields.2 = try string(matching: known?.title)
            }
        } while try more(0x7D)
        guard all(3, seen) else { throw Decline() }
        return fields
    }

    /// A string; when its bytes between the quotes are exactly `candidate`'s UTF-8 and hold no
    /// escape, quote or control byte, `candidate` itself (the same value, no new storage).
    mutating func string(matching candidate: String?) throws(Decline) -> String {
        guard try peek() == 0x22 else { throw Decline() }
        if var candidate {
            let bytes = state.bytes
            let start = state.index + 1
            let count = candidate.utf8.count
            if start + count < bytes.count, bytes[start + count] == 0x22, let address = bytes.baseAddress {
                var plain = true
                for index in start..<start + count where bytes[index] < 0x20 || bytes[index] == 0x22 || bytes[index] == 0x5C {
                    plain = false
                    break
                }
                let same = plain && candidate.withUTF8 { utf8 in utf8.baseAddress.map { memcmp(address + start, $0, count) == 0 } ?? (count == 0) }
                if same {
                    state.index = start + count + 1
                    return candidate
                }
            }
        }
        return try string()
    }

    static let evidenceKeys = KeyNames(["kind", "source", "observed_at", "data"])
    static let eventKeys = KeyNames(["type", "observed_at", "data"])

    mutating func evidenceList() throws(Decline) -> [Evidence] {
        var evidence: [Evidence] = []
        if try open(0x5B, 0x5D) { return evidence }
        repeat {
            let item = try stamped(Self.evidenceKeys, dataDepth: 5)
            evidence.append(Evidence(kind: item.texts.0, source: item.texts.1, observedAt: item.observedAt, content: item.data))
        } while try more(0x5D)
        return evidence
    }

    /// A finding's evidence array, each item checked as `evidenceList` would read it, without
    /// making strings or data: the array's bytes, a slice of the payload.
    mutating func checkedEvidenceList() throws(Decline) -> EvidenceList {
        state.skipSpace()
        let start = state.index
        if try !open(0x5B, 0x5D) {
            repeat { try checkEvidenceItem() } while try more(0x5D)
        }
        let offset = payload.startIndex
        return .checked(payload[offset + start..<offset + state.index])
    }

    static let kindLiteral = Literal(#"{"kind":"#)
    static let sourceLiteral = Literal(#","source":"#)
    static let observedLiteral = Literal(#","observed_at":"#)
    static let dataLiteral = Literal(#","data":"#)

    /// An evidence item, checked in place. Written as the encoder writes it (its members in
    /// order, no white space) it is read between those fixed bytes; any other form, from its
    /// first byte, by `checkStamped`. Either way it is checked by the same rules.
    mutating func checkEvidenceItem() throws(Decline) {
        state.skipSpace()
        let start = state.index
        if matches(Self.kindLiteral), at(0x22) {
            try checkString()
            if matches(Self.sourceLiteral), at(0x22) {
                try checkString()
                if matches(Self.observedLiteral) {
                    _ = try date()
                    if matches(Self.dataLiteral) {
                        state.skipSpace()
                        try check(depth: 5)
                        if at(0x7D) {
                            state.index += 1
                            return
                        }
                    }
                }
            }
        }
        state.index = start
        try checkStamped(Self.evidenceKeys, dataDepth: 5)
    }

    /// True when the byte at the current position is `byte`.
    @inline(__always)
    func at(_ byte: UInt8) -> Bool { state.index < state.bytes.count && state.bytes[state.index] == byte }

    /// When the bytes at the current position are `literal`'s, moves past them: true.
    @inline(__always)
    mutating func matches(_ literal: Literal) -> Bool {
        let bytes = state.bytes
        let at = state.index
        guard at + 16 <= bytes.count, let address = bytes.baseAddress else { return false }
        let raw = UnsafeRawPointer(address + at)
        let low = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        let high = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard low & literal.lowMask == literal.low, high & literal.highMask == literal.high else { return false }
        state.index = at + literal.length
        return true
    }

    /// What `stamped` reads, checked in place: the strings by the parser's rules, the time as
    /// RFC 3339, the data as JSON at `dataDepth`; every member required, none twice, no other.
    mutating func checkStamped(_ names: KeyNames, dataDepth: Int) throws(Decline) {
        let count = names.packed.count
        var seen: UInt32 = 0
        guard try !open(0x7B, 0x7D) else { throw Decline() }
        repeat {
            let which = try key(names, hint: seen.nonzeroBitCount)
            try first(which, &seen)
            if which == count - 1 {
                state.skipSpace()
                try check(depth: dataDepth)
            } else if which == count - 2 {
                _ = try date()
            } else {
                guard try peek() == 0x22 else { throw Decline() }
                try checkString()
            }
        } while try more(0x7D)
        guard all(count, seen) else { throw Decline() }
    }

    mutating func eventList() throws(Decline) -> [Event] {
        var events: [Event] = []
        if try open(0x5B, 0x5D) { return events }
        repeat {
            let item = try stamped(Self.eventKeys, dataDepth: 3)
            events.append(Event(type: item.texts.0, observedAt: item.observedAt, content: item.data))
        } while try more(0x5D)
        return events
    }

    /// An evidence item or an event: one or two strings, then `observed_at` and `data`, all required.
    mutating func stamped(_ names: KeyNames, dataDepth: Int) throws(Decline) -> (texts: (String, String), observedAt: Date, data: JSONData) {
        let count = names.packed.count
        var texts = ("", "")
        var observedAt = Date(timeIntervalSince1970: 0)
        var data = JSONData.value(.null)
        var seen: UInt32 = 0
        guard try !open(0x7B, 0x7D) else { throw Decline() }
        repeat {
            let which = try key(names, hint: seen.nonzeroBitCount)
            try first(which, &seen)
            switch which {
            case count - 1: data = try checkedData(depth: dataDepth)
            case count - 2: observedAt = try date()
            case 0: texts.0 = try string()
            default: texts.1 = try string()
            }
        } while try more(0x7D)
        guard all(count, seen) else { throw Decline() }
        return (texts, observedAt, data)
    }
}

// MARK: checking JSON in place

extension ReportReader {
    /// Checks the JSON value at the current position (white space already skipped) by
    /// `JSONParser`'s rules, at `depth`, without making it, and moves past it. It declines what
    /// the parser refuses, and also keys with an escape or a byte outside ASCII (whose equality
    /// is the parser's `String` comparison, not a byte comparison): the tree path decides those.
    mutating func check(depth: Int) throws(Decline) {
        guard depth <= state.maxDepth, state.index < state.bytes.count else { throw Decline() }
        switch state.bytes[state.index] {
        case 0x7B: try checkObject(depth: depth)
        case 0x5B: try checkArray(depth: depth)
        case 0x22: try checkString()
        case 0x74: try checkWord("true")
        case 0x66: try checkWord("false")
        case 0x6E: try checkWord("null")
        case 0x2D, 0x30...0x39: try checkNumber()
        default: throw Decline()
        }
    }

    private mutating func checkWord(_ word: StaticString) throws(Decline) {
        let count = word.utf8CodeUnitCount
        guard state.index + count <= state.bytes.count else { throw Decline() }
        let start = word.utf8Start
        for offset in 0..<count where state.bytes[state.index + offset] != start[offset] { throw Decline() }
        state.index += count
    }

    private mutating func checkArray(depth: Int) throws(Decline) {
        state.index += 1
        if try peek() == 0x5D {
            state.index += 1
            return
        }
        repeat {
            state.skipSpace()
            try check(depth: depth + 1)
        } while try more(0x5D)
    }

    /// Most members an object may have here; a larger one is left to the tree path, whose
    /// duplicate check does not grow with the square of the count.
    static let maxCheckedMembers = 128

    private mutating func checkObject(depth: Int) throws(Decline) {
        state.index += 1
        if try peek() == 0x7D {
            state.index += 1
            return
        }
        let base = keyCount
        defer { keyCount = base }
        let bytes = state.bytes
        guard let address = bytes.baseAddress else { throw Decline() }
        repeat {
            // The key: printable ASCII without escapes, else declined.
            try take(0x22)
            let start = state.index
            state.index = JSONParser.State.skipPlainWords(bytes, from: start)
            while true {
                guard state.index < bytes.count else { throw Decline() }
                let byte = bytes[state.index]
                if byte == 0x22 { break }
                guard byte >= 0x20, byte < 0x80, byte != 0x5C else { throw Decline() }
                state.index += 1
            }
            let count = state.index - start
            state.index += 1
            guard keyCount - base < Self.maxCheckedMembers else { throw Decline() }
            var other = base
            while other < keyCount {
                let range = keyRanges[other]
                if range.count == count, memcmp(address + range.start, address + start, count) == 0 { throw Decline() }
                other += 1
            }
            if keyCount < keyRanges.count {
                keyRanges[keyCount] = KeyRange(start: start, count: count)
            } else {
                keyRanges.append(KeyRange(start: start, count: count))
            }
            keyCount += 1
            try take(0x3A)
            state.skipSpace()
            try check(depth: depth + 1)
        } while try more(0x7D)
    }

    /// A string: escapes as the parser reads them, no control byte, well-formed UTF-8.
    private mutating func checkString() throws(Decline) {
        let bytes = state.bytes
        var index = JSONParser.State.skipPlainWords(bytes, from: state.index + 1)
        while true {
            guard index < bytes.count else { throw Decline() }
            let byte = bytes[index]
            if byte >= 0x20, byte < 0x80, byte != 0x22, byte != 0x5C {
                index += 1
                continue
            }
            if byte == 0x22 { break }
            guard byte >= 0x20 else { throw Decline() }
            if byte == 0x5C {
                guard index + 1 < bytes.count else { throw Decline() }
                switch bytes[index + 1] {
                case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74: index += 2
                case 0x75:
                    let scalar = try Self.hex4(bytes, index + 2)
                    index += 6
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == 0x5C, bytes[index + 1] == 0x75,
                            (0xDC00..<0xE000).contains(try Self.hex4(bytes, index + 2))
                        else { throw Decline() }
                        index += 6
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw Decline()
                    }
                default: throw Decline()
                }
                continue
            }
            guard let length = JSONParser.State.utf8SequenceLength(bytes, at: index) else { throw Decline() }
            index += length
        }
        state.index = index + 1
    }

    /// Four hex digits at `index`, as the parser reads a `\u` escape.
    private static func hex4(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int) throws(Decline) -> UInt32 {
        guard index + 4 <= bytes.count else { throw Decline() }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = bytes[index + offset]
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: throw Decline()
            }
            value = value << 4 | digit
        }
        return value
    }

    /// A number by the parser's grammar; an integer must fit in 64 bits and any other number
    /// must be finite as a `Double`.
    private mutating func checkNumber() throws(Decline) {
        let bytes = state.bytes
        let start = state.index
        var index = start
        let negative = bytes[index] == 0x2D
        if negative { index += 1 }
        let digitsStart = index
        while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
        guard index > digitsStart else { throw Decline() }
        if bytes[digitsStart] == 0x30, index - digitsStart > 1 { throw Decline() }
        let digitsEnd = index
        var isInteger = true
        if index < bytes.count, bytes[index] == 0x2E {
            isInteger = false
            index += 1
            let fractionStart = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            guard index > fractionStart else { throw Decline() }
        }
        if index < bytes.count, bytes[index] == 0x65 || bytes[index] == 0x45 {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == 0x2B || bytes[index] == 0x2D { index += 1 }
            let exponentStart = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            guard index > exponentStart else { throw Decline() }
        }
        state.index = index
        if isInteger {
            // Up to 18 digits always fit; longer ones are accumulated as the parser does.
            guard digitsEnd - digitsStart > 18 else { return }
            var value: Int64 = 0
            for position in digitsStart..<digitsEnd {
                let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
                let (next, overflowB) = shifted.subtractingReportingOverflow(Int64(bytes[position] - 0x30))
                guard !overflowA, !overflowB else { throw Decline() }
                value = next
            }
            guard negative || value != Int64.min else { throw Decline() }
            return
        }
        guard let value = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)), value.isFinite else {
            throw Decline()
        }
    }
}

/// A rule of the catalogue as the encoder writes it into a finding: the bytes of its `rule`
/// object and of its `references` array. A finding that holds exactly these bytes decodes to the
/// catalogue's own values (the encoder's output parses back to what it encoded), so the direct
/// decoder takes those instead of making new ones. A class: the decoder passes one reference.
final class CanonicalRule: Sendable {
    let info: RuleInfo
    let ruleBytes: [UInt8]
    let referencesBytes: [UInt8]
    /// Bytes 7 to 14 of `ruleBytes` (after `{"id":"`), for a first comparison.
    let idWord: UInt64

    init(_ info: RuleInfo) {
        self.info = info
        ruleBytes = Finding.ruleJSON(info).serialized()
        referencesBytes = Finding.referencesJSON(info.references).serialized()
        var word: UInt64 = 0
        for (position, byte) in ruleBytes.dropFirst(7).prefix(8).enumerated() { word |= UInt64(byte) << UInt64(8 * position) }
        idWord = word
    }

    /// The first rule of the catalogue under each id.
    static let all: [CanonicalRule] = {
        var ids = Set<String>()
        return RuleCatalogue.all.filter { ids.insert($0.id).inserted }.map(CanonicalRule.init)
    }()
}

/// Up to 16 fixed bytes packed into two words with the masks that keep them, for one comparison.
private struct Literal {
    let low: UInt64
    let high: UInt64
    let lowMask: UInt64
    let highMask: UInt64
    let length: Int

    init(_ text: StaticString) {
        let length = min(16, text.utf8CodeUnitCount)
        var key = PackedKey()
        for position in 0..<length { key.add(text.utf8Start[position], at: position) }
        low = key.low
        high = key.high
        lowMask = length >= 8 ? ~0 : (1 << UInt64(8 * length)) - 1
        highMask = length >= 16 ? ~0 : length <= 8 ? 0 : (1 << UInt64(8 * (length - 8))) - 1
        self.length = length
    }
}

/// Where a key's bytes are in the payload.
private struct KeyRange {
    var start: Int
    var count: Int
}

/// A key of at most 16 bytes packed into two words, zero-filled. Keys hold no zero byte (control
/// bytes decline), so equal words mean equal keys.
private struct PackedKey: Equatable {
    var low: UInt64 = 0
    var high: UInt64 = 0

    @inline(__always)
    mutating func add(_ byte: UInt8, at position: Int) {
        if position < 8 {
            low |= UInt64(byte) << UInt64(8 * position)
        } else {
            high |= UInt64(byte) << UInt64(8 * (position - 8))
        }
    }
}

/// The member names of one object of the schema, packed for comparison.
private struct KeyNames {
    /// One name: its packed bytes, its length, and the masks that keep that many bytes of two words.
    struct Entry {
        let packed: PackedKey
        let length: Int
        let lowMask: UInt64
        let highMask: UInt64
    }

    let packed: [PackedKey]
    /// The names of at most 16 bytes (all of the schema's), for `key`'s comparison in place.
    let entries: [Entry]

    init(_ names: [StaticString]) {
        self.init(names.map { $0.description })
    }

    init(_ names: [String]) {
        packed = names.map { name in
            var key = PackedKey()
            for (position, byte) in name.utf8.prefix(16).enumerated() { key.add(byte, at: position) }
            return key
        }
        var entries: [Entry] = []
        for (name, key) in zip(names, packed) {
            let length = name.utf8.count
            guard length <= 16 else { break }
            let lowMask: UInt64 = length >= 8 ? ~0 : (1 << UInt64(8 * length)) - 1
            let highMask: UInt64 = length >= 16 ? ~0 : length <= 8 ? 0 : (1 << UInt64(8 * (length - 8))) - 1
            entries.append(Entry(packed: key, length: length, lowMask: lowMask, highMask: highMask))
        }
        self.entries = entries
    }
}
