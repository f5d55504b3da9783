import Foundation
import MijianCore
import Testing

@testable import MijianEvidence

/// The direct report decoder and the fast envelope scanner against the JSON-tree paths they
/// stand in for: the same result on everything either accepts, and no acceptance of anything
/// the tree paths refuse.
@Suite("Direct decoding agrees with the JSON-tree path")
struct DirectDecodingTests {
    let key: SigningKey
    var verifier: EnvelopeVerifier { EnvelopeVerifier(keys: key.publicKey) }

    init() throws { key = try SigningKey.generate() }

    /// Both paths on `payload`: the tree's outcome, and the direct decoder's (nil = declined).
    func outcomes(_ payload: [UInt8], maxDepth: Int = 32) -> (tree: Result<Report, VerificationFailure>, direct: Report?) {
        let verifier = EnvelopeVerifier(keys: key.publicKey, maxPayloadDepth: maxDepth)
        let tree: Result<Report, VerificationFailure>
        do {
            tree = .success(try verifier.decodeReportThroughTree(payload))
        } catch {
            tree = .failure(error)
        }
        return (tree, Report.decodingDirectly(payload, maxDepth: maxDepth))
    }

    /// The direct decoder accepts only what the tree accepts, and then decodes the same report.
    func expectAgreement(_ payload: [UInt8], maxDepth: Int = 32, sourceLocation: SourceLocation = #_sourceLocation) {
        let (tree, direct) = outcomes(payload, maxDepth: maxDepth)
        guard let direct else { return }
        switch tree {
        case .success(let report): #expect(direct == report, sourceLocation: sourceLocation)
        case .failure(let failure):
            Issue.record("the direct decoder accepted what the tree refuses (\(failure)): \(String(decoding: payload, as: UTF8.self))", sourceLocation: sourceLocation)
        }
    }

    static let reports: [Report] = {
        var reports = [Fixtures.report(), Fixtures.report(keyid: "sha256:ab", seq: 3, padding: 3), Fixtures.report(seq: 9, padding: 40)]
        var sparse = Fixtures.report()
        sparse.host = HostInfo(hostID: "h", hostname: "n")
        sparse.events = []
        reports.append(sparse)
        var empty = Fixtures.report()
        empty.findings = []
        reports.append(empty)
        var odd = Fixtures.report(padding: 2)
        odd.host.hostname = "ws \"quoted\" \\ back\tslash \u{1} 密"
        odd.agent.version = "0.1.0-dev+é"
        odd.findings[0].statusDetail = "line one\nline two \u{1F600}"
        odd.findings[1].evidence[0].data = ["nested": [["a": 1, "b": [true, false, nil]], .double(2.5), -7, "x"], "empty": [:], "list": []]
        reports.append(odd)
        return reports
    }()

    @Test("Every fixture report decodes directly, to the report that was encoded", arguments: 0..<reports.count)
    func fixtures(index: Int) throws {
        let report = Self.reports[index]
        let payload = report.payloadBytes()
        let (tree, direct) = outcomes(payload)
        #expect(try tree.get() == report)
        #expect(direct == report)
        // Data kept as the payload's bytes encodes to the same payload.
        #expect(direct?.payloadBytes() == payload)
        // Indented JSON is the same document: both paths take it.
        let pretty = report.json.prettySerialized()
        #expect(Report.decodingDirectly(pretty) == report)
        expectAgreement(pretty)
    }

    @Test("Escaped keys, reordered members and absent optionals: same report or declined, never different")
    func otherForms() throws {
        let text = String(decoding: Fixtures.report(padding: 2).payloadBytes(), as: UTF8.self)
        let edits: [(String, String)] = [
            ("\"schema\":", "\"sch\\u0065ma\":"),
            ("\"hostname\":\"ws-0042\"", "\"hostname\":\"ws\\u002d0042\""),
            ("\"asset_id\":\"JSJ-2026-0042\",", ""),
            ("\"boot_id\":\"6f1b0c0e-1111-4222-8333-944445555666\"", "\"boot_id\":null"),
            ("\"issued_at\":\"2026-11-18T", "\"issued_at\":\"2026-11-18t"),
            ("{\"schema\":\"mijian.report/v1\",", "{"),
            // The catalogue lends a rule's strings only when the bytes are the same.
            ("\"title\":\"No route reaches the internet\"", "\"title\":\"No route reaches the internet!\""),
            ("\"title\":\"No route reaches the internet\"", "\"title\":\"No route reaches the interne\\u0074\""),
            ("\"title\":\"No route reaches the internet\"", "\"title\":\"No route reaches the interne\""),
            ("{\"system\":\"bm-self-assessment\",\"id\":\"七.3\"}", "{\"system\":\"bm-self-assessment\",\"id\":\"\\u4e03.3\"}"),
            ("{\"system\":\"bm-self-assessment\",\"id\":\"七.3\"}", "{\"id\":\"七.3\",\"system\":\"bm-self-assessment\"}"),
            ("{\"system\":\"bm-self-assessment\",\"id\":\"七.3\"}", "{\"system\":\"bm-self-assessmenT\",\"id\":\"七.3\"}"),
            ("{\"system\":\"bm-self-assessment\",\"id\":\"七.3\"},", ""),
            ("\"rule\":{\"id\":\"net.internet-route\",", "\"rule\":{\"id\":\"net.public-dns\","),
            // A catalogue rule written as the encoder writes it is the catalogue's; any other
            // bytes are read member by member.
            ("\"rule\":{\"id\":\"net.internet-route\",\"version\":\"1\"", "\"rule\":{\"id\":\"net.internet-route\",\"version\":\"2\""),
            ("\"rule\":{\"id\":\"net.internet-route\",\"version\":\"1\"", "\"rule\":{\"id\":\"net.internet-route\",\"version\":\"\\u0031\""),
            ("\"rule\":{\"id\":\"net.internet-route\",", "\"rule\":{\"id\":\"net.internet-rout\\u0065\","),
            ("{\"system\":\"bm-self-assessment\",\"id\":\"七.3\"}", "{\"system\":\"bm-self-assessment\",\"id\":\"七.3\"},{\"system\":\"bm-score\",\"id\":\"1\"}"),
            // Evidence written other than as the encoder writes it is read member by member.
            ("{\"kind\":\"netlink\",\"source\":\"rtnetlink table main\",", "{\"source\":\"rtnetlink table main\",\"kind\":\"netlink\","),
            ("{\"kind\":\"netlink\",", "{ \"kind\":\"netlink\","),
            ("\"data\":{\"routes\":[\"10.0.0.0/8 dev eth0\"]}}", "\"data\":{\"routes\":[\"10.0.0.0/8 dev eth0\"]} }"),
            ("\"severity\":\"critical\"", "\"severity\":\"critica\\u006c\""),
            ("\"status\":\"fail\"", "\"status\":\"fai\\u006c\""),
            ("5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c11", "5B0B0E59-3C1E-4C55-9F4C-2A0E4A1D7C11"),
            ("5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c11", "5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7C11"),
            ("5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c11", "5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c1\\u0031"),
        ]
        for (original, replacement) in edits {
            #expect(text.contains(original), "\(original)")
            var edited = text.replacingOccurrences(of: original, with: replacement)
            if original.hasPrefix("{\"schema\"") { edited = edited.replacingOccurrences(of: "\"events\":[", with: "\"schema\":\"mijian.report/v1\",\"events\":[") }
            let payload = Array(edited.utf8)
            let (tree, direct) = outcomes(payload)
            #expect((try? tree.get()) != nil, "\(replacement)")
            if ["\"title\"", "{\"system\"", "\"rule\"", "\"severity\"", "\"status\"", "{\"kind\"", "\"data\""].contains(where: original.hasPrefix) {
                #expect(direct != nil, "\(replacement)")
            }
            expectAgreement(payload)
        }
        // Reordered members are read directly, not only through the tree.
        let moved = text.replacingOccurrences(of: "{\"schema\":\"mijian.report/v1\",", with: "{").replacingOccurrences(
            of: "\"events\":[", with: "\"schema\":\"mijian.report/v1\",\"events\":[")
        #expect(Report.decodingDirectly(Array(moved.utf8)) == Fixtures.report(padding: 2))
    }

    /// Every edit the tamper suite and the decoding tests make, and more of the same kind.
    static let refusedEdits: [(String, String)] = [
        ("\"schema\":\"mijian.report/v1\"", "\"schema\":\"mijian.report/v1\",\"schema\":\"mijian.report/v1\""),
        ("\"hostname\":\"ws-0042\"", "\"hostname\":\"ws-0042\",\"hostname\":\"ws-0042\""),
        ("\"driver\":\"iwlwifi\"", "\"driver\":\"iwlwifi\",\"driver\":\"none\""),
        ("\"vendor\":\"0781\"", "\"vendor\":\"0781\",\"vendor\":\"0781\""),
        ("\"seq\":0", "\"seq\":0.0"), ("\"seq\":0", "\"seq\":0e0"), ("\"seq\":0", "\"seq\":\"0\""), ("\"seq\":0", "\"seq\":-3"),
        ("\"seq\":0", "\"seq\":99999999999999999999"), ("\"seq\":0", "\"seq\":00"), ("\"seq\":0", "\"seq\":null"),
        ("\"epoch\":1795000000", "\"epoch\":1795000000.5"), ("\"epoch\":1795000000", "\"epoch\":null"),
        ("\"issued_at\":\"2026-11-18T", "\"issued_at\":\"2026/11/18T"), ("\"issued_at\":\"2026-11-18T", "\"issued_at\":\"2026-13-18T"),
        ("\"observed_at\":\"2026", "\"observed_at\":\"x2026"),
        ("\"report_id\":\"", "\"report_id\":\"x"),
        ("5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c11", "5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c1g"),
        ("5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c11", "5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c1"),
        ("5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c11", "5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c111"),
        ("5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c11", "5b0b0e593c1e-4c55-9f4c-2a0e4a1d7c11-"),
        ("\"schema\":\"mijian.report/v1\"", "\"schema\":\"mijian.report/v0\""),
        ("\"classification\":\"秘密\"", "\"classification\":\"mimi\""),
        ("\"classification\":\"秘密\"", "\"classification\":7"),
        ("\"status\":\"fail\"", "\"status\":\"failed\""),
        ("\"severity\":\"high\"", "\"severity\":\"severe\""),
        ("\"pass\":1", "\"pass\":2"), ("\"fail\":1", "\"fail\":0"), ("\"notchecked\":0,", ""), ("\"notchecked\":0,", "\"notchecked\":0,\"extra\":0,"),
        ("\"events\":[", "\"surprise\":true,\"events\":["), ("\"events\":", "\"extra\":1,\"events\":"),
        ("\"window\":{", "\"window\":{\"length\":1,"),
        ("\"prev_sha256\":\"\"", "\"prev_sha256\":\"zz\""),
        ("\"hostname\":\"ws-0042\"", "\"hostname\":42"), ("\"hostname\":\"ws-0042\"", "\"hostname\":null"),
        ("\"hostname\":\"ws-0042\",", ""),
        ("\"findings\":[", "\"findings\":[1,"), ("\"findings\":[", "\"findings\":[{},"), ("\"findings\":[", "\"findings\":{},\"x\":["),
        ("\"references\":[", "\"references\":[{\"system\":\"s\"},"), ("\"references\":[", "\"references\":[{\"system\":\"s\",\"id\":\"i\",\"id\":\"j\"},"),
        ("\"title\":", "\"title\":null,\"t\":"),
        ("\"data\":{\"vendor\":\"0781\"", "\"data\":{\"deep\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],\"vendor\":\"0781\""),
        ("\"type\":\"usb.attach\",", ""), ("\"type\":\"usb.attach\"", "\"type\":\"usb.attach\",\"type\":\"usb.detach\""),
        ("\"kind\":\"netlink\"", "\"kind\":\"net\\link\""), ("\"kind\":\"netlink\"", "\"kind\":\"net\u{1}link\""),
        ("\"agent\":{", "\"agent\":{\"name\":\"x\","),
        ("\"policy\":{\"id\"", "\"policy\":{\"sha256\":\"\",\"id\""),
        ("}]}", "}]},"), ("\"events\":[", "\"events\":[,"), (":", "::"), ("\"uid\"", "\"uid\" \"uid\""),
    ]

    @Test("Every refused edit of a signed payload is refused by both paths, with the tree's reason", arguments: 0..<refusedEdits.count)
    func refusals(index: Int) throws {
        let (original, replacement) = Self.refusedEdits[index]
        let text = Fixtures.payloadText(key)
        #expect(text.contains(original))
        let payload = Array(text.replacingOccurrences(of: original, with: replacement).utf8)
        let (tree, direct) = outcomes(payload)
        #expect(throws: VerificationFailure.self) { try tree.get() }
        #expect(direct == nil)
        // Through the whole verifier, the refusal is the tree's, reason and detail.
        let signed = try Fixtures.signedPayload(String(decoding: payload, as: UTF8.self), key: key)
        do {
            _ = try verifier.verifyReport(signed)
            Issue.record("a refused payload verified")
        } catch {
            if case .failure(let expected) = tree { #expect(error == expected) }
        }
    }

    /// Evidence and event data: forms the in-place check keeps as bytes, then forms it refuses or
    /// leaves to the tree (escaped or non-ASCII keys, whose equality is `String`'s).
    static let keptData: [String] = [
        #"{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}"#, #"[1,-0,0.5,-2.5e3,1E+2,1e-2,true,false,null,"",{},[]]"#,
        #""x\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00é😀"# + "\u{7F}\"", #"{"k":"\u0000"}"#, "9223372036854775807", "-9223372036854775808",
        "123456789012345678", "-1234567890123456789", #" { "a" : [ 1 , 2 ] } "#, "1.7976931348623157e308",
    ]
    static let otherData: [String] = [
        #"{"a":1,"a":2}"#, #"{"a":{"b":1,"b":2}}"#, #"[{"x":1,"x":1}]"#, #"{"ab":1,"a":2,"ab":3}"#, "9223372036854775808",
        "-9223372036854775809", "1e400", "-1e400", "01", "-01", "1.", "-", ".5", "1e", "1e+", "+1", #""\ud800""#, #""\udc00""#,
        #""\ud800\u0041""#, #""\ud800x""#, #""\x""#, #""\u12G4""#, #""\u12""#, "tru", "nul", "falsy", "[1,]", "[,1]", #"{"a"}"#, #"{"a":}"#,
        #"{"a":1,}"#, "[", "{", #""abc"#, "", #"{"é":1,"é":2}"#, #"{"é":1,"e\u0301":2}"#, #"{"\u0061":1,"a":2}"#, #"{"é":1}"#,
        #"{"a\"b":1}"#, "\"a\u{1}b\"", "\"a\tb\"",
    ]
    static let badUTF8: [[UInt8]] = [
        [0xC0, 0x80], [0xC1, 0xBF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE0, 0x80, 0x80], [0xE2, 0x82], [0x80],
        [0xF5, 0x80, 0x80, 0x80], [0xF0, 0x80, 0x80, 0x80], [0xFF],
    ]

    /// The fixture payload with evidence data (depth 5) or event data (depth 3) replaced by `data`.
    func payloads(withData data: [UInt8]) -> [[UInt8]] {
        let text = Array(Fixtures.payloadText(key).utf8)
        return [Array(#"{"driver":"iwlwifi","wireless":true}"#.utf8), Array(#"{"vendor":"0781","product":"5583"}"#.utf8)].compactMap { needle in
            guard let at = firstRange(of: needle, in: text) else { return nil }
            var payload = text
            payload.replaceSubrange(at, with: data)
            return payload
        }
    }

    @Test("Data checked in place: kept forms decode directly to the tree's report and encode to the same bytes")
    func keptDataForms() {
        for form in Self.keptData {
            let payloads = payloads(withData: Array(form.utf8))
            #expect(payloads.count == 2)
            for payload in payloads {
                let (tree, direct) = outcomes(payload)
                let report = try? tree.get()
                #expect(report != nil, "\(form)")
                #expect(direct != nil, "\(form)")
                #expect(direct == report, "\(form)")
                #expect(direct?.payloadBytes() == report?.payloadBytes(), "\(form)")
                expectAgreement(payload)
            }
        }
    }

    @Test("Data checked in place: refused forms are refused by both paths, the rest agree")
    func otherDataForms() {
        var forms = Self.otherData.map { Array($0.utf8) }
        for bad in Self.badUTF8 {
            forms.append([0x22, 0x61] + bad + [0x22])
            forms.append(Array(#"{"k"#.utf8) + bad + Array(#"":1}"#.utf8))
        }
        for form in forms {
            let payloads = payloads(withData: form)
            #expect(payloads.count == 2)
            for payload in payloads {
                let (tree, direct) = outcomes(payload)
                if (try? tree.get()) == nil { #expect(direct == nil, "\(String(decoding: form, as: UTF8.self))") }
                expectAgreement(payload)
            }
        }
    }

    @Test("Invalid UTF-8 in a string or a key is refused by both paths")
    func invalidUTF8() {
        let text = Array(Fixtures.payloadText(key).utf8)
        for (needle, bad) in [(Array("ws-0042".utf8), [0x77, 0x73, 0xC3, 0x28]), (Array("hostname".utf8), [0x68, 0xFF, 0x73, 0x74])] as [([UInt8], [UInt8])] {
            guard let at = firstRange(of: needle, in: text) else {
                Issue.record("no \(needle) in the payload")
                continue
            }
            var payload = text
            payload.replaceSubrange(at, with: bad)
            let (tree, direct) = outcomes(payload)
            #expect(throws: VerificationFailure.self) { try tree.get() }
            #expect(direct == nil)
        }
    }

    @Test("A depth limit below the schema's is left to the tree; nested data obeys the limit")
    func depthLimits() {
        let payload = Fixtures.report(padding: 1).payloadBytes()
        #expect(Report.decodingDirectly(payload, maxDepth: 4) == nil)
        for depth in 4...8 { expectAgreement(payload, maxDepth: depth) }
        var report = Fixtures.report()
        report.findings[0].evidence[0].data = ["a": [[[["b": 1]]]]]
        let deep = report.payloadBytes()
        #expect(Report.decodingDirectly(deep, maxDepth: 10) == report)
        #expect(Report.decodingDirectly(deep, maxDepth: 9) == nil)
        for depth in 5...11 { expectAgreement(deep, maxDepth: depth) }
        #expect(Report.decodingDirectly(payload, maxBytes: payload.count - 1) == nil)
    }

    @Test("Thousands of seeded mutations: the direct decoder never accepts what the tree refuses, nor decodes differently")
    func mutations() {
        var random = SeededRandom(seed: 0x6D69_6A69_616E)
        let base = Array(Fixtures.payloadText(key).utf8)
        let alphabet = Array("{}[]:,\"\\ 0123456789.-eE+tfnul\u{7F}".utf8) + [0x00, 0x0A, 0xC3, 0xFF]
        var accepted = 0
        for round in 0..<3000 {
            var payload = base
            for _ in 0...(round % 3) {
                let at = Int.random(in: 0..<payload.count, using: &random)
                switch Int.random(in: 0..<5, using: &random) {
                case 0: payload[at] = alphabet[Int.random(in: 0..<alphabet.count, using: &random)]
                case 1: payload.remove(at: at)
                case 2: payload.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &random)], at: at)
                case 3: payload[at] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
                default:
                    // Repeat a stretch: duplicated members and values.
                    let length = Int.random(in: 1...40, using: &random)
                    let end = min(payload.count, at + length)
                    payload.insert(contentsOf: payload[at..<end], at: end)
                }
            }
            let (tree, direct) = outcomes(payload)
            if direct != nil { accepted += 1 }
            if let direct {
                switch tree {
                case .success(let report): #expect(direct == report)
                case .failure(let failure): Issue.record("accepted a refused mutation (\(failure)): \(String(decoding: payload, as: UTF8.self))")
                }
            }
        }
        // Some mutations stay valid (a digit in a string, a changed letter), and those decode directly.
        #expect(accepted > 100)
    }

    @Test("RFC 3339 by arithmetic gives what timegm gives, days past a month's end included")
    func datesMatchTimegm() {
        for year in [1601, 1900, 1970, 1999, 2000, 2024, 2026, 2100, 2400, 9999] {
            for month in 1...12 {
                for day in [1, 15, 28, 29, 30, 31] {
                    for (hour, minute, second) in [(0, 0, 0), (23, 59, 60), (12, 34, 56)] {
                        let text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hour, minute, second)
                        var parts = tm()
                        parts.tm_year = Int32(year - 1900)
                        parts.tm_mon = Int32(month - 1)
                        parts.tm_mday = Int32(day)
                        parts.tm_hour = Int32(hour)
                        parts.tm_min = Int32(minute)
                        parts.tm_sec = Int32(second)
                        let epoch = Double(timegm(&parts))
                        #expect(RFC3339.date(from: text + "Z") == Date(timeIntervalSince1970: epoch), "\(text)")
                        #expect(RFC3339.date(from: text + ".25+01:30") == Date(timeIntervalSince1970: epoch - 5400 + 0.25), "\(text)")
                    }
                }
            }
        }
    }

    // MARK: the envelope

    /// The scanner's outcome against the tree parser's: the same envelope, or the same refusal.
    func expectEnvelopeAgreement(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let tree: Result<Envelope, VerificationFailure>
        do {
            tree = .success(try Envelope.parseThroughTree(bytes, maxBytes: 16 << 20))
        } catch {
            tree = .failure(error)
        }
        let fast: Result<Envelope, VerificationFailure>
        do {
            fast = .success(try Envelope.parse(bytes))
        } catch {
            fast = .failure(error)
        }
        #expect(fast == tree, sourceLocation: sourceLocation)
        if let scanned = Envelope.scan(bytes) { #expect(tree == .success(scanned), sourceLocation: sourceLocation) }
    }

    @Test("The envelope scanner and the tree parser agree on good envelopes, other forms and tamper cases")
    func envelopes() throws {
        let signed = try Fixtures.signedReport(key, padding: 3)
        #expect(Envelope.scan(signed) != nil)
        expectEnvelopeAgreement(signed)
        let envelope = try Envelope.parse(signed)
        let signature = try #require(envelope.signatures.first)
        let text = String(decoding: signed, as: UTF8.self)
        var variants: [String] = [
            String(decoding: envelope.json.prettySerialized(), as: UTF8.self),
            text.replacingOccurrences(of: "\"payload\":\"", with: "\"payload\" : \"").replacingOccurrences(of: "\"signatures\":", with: "\n\"signatures\":\t"),
            text.replacingOccurrences(of: "\"payloadType\":", with: "\"payload\\u0054ype\":"),
            text.replacingOccurrences(of: "\"payloadType\":", with: "\"payloadType\":\"x\",\"payloadType\":"),
            text.replacingOccurrences(of: "\"signatures\":[", with: "\"signatures\":[],\"signatures\":["),
            text.replacingOccurrences(of: "\"keyid\":", with: "\"keyid\":\"\",\"k\":"),
            text.replacingOccurrences(of: "\"keyid\":\"", with: "\"keyid\":\"\\u0041"),
            text.replacingOccurrences(of: "\"sig\":\"", with: "\"sig\":\"AAAA"),
            text.replacingOccurrences(of: "\"payload\":\"", with: "\"payload\":\"\\/"),
            text.replacingOccurrences(of: "\"payload\":\"e", with: "\"payload\":\"\\u0065"),
            text.replacingOccurrences(of: "}]}", with: "}]}x"), text.replacingOccurrences(of: "}]}", with: "}],}"),
            text.replacingOccurrences(of: "}]}", with: "},{}]}"), text.replacingOccurrences(of: "}]}", with: "},1]}"),
            text.replacingOccurrences(of: "\"payloadType\":\"application/vnd.mijian.report.v1+json\"", with: "\"payloadType\":\"测试\""),
            text.replacingOccurrences(of: "\"payloadType\":\"application/vnd.mijian.report.v1+json\"", with: "\"payloadType\":1"),
            "{\"payloadType\":\"t\",\"payload\":\"\",\"signatures\":[]}", "{}", "[]", "", " {\"payloadType\":\"t\",\"payload\":\"e30=\",\"signatures\":[]} ",
        ]
        for (urlSafe, padded) in [(true, false), (false, false), (true, true)] {
            let bytes = Fixtures.envelopeText(
                type: PayloadType.report, payload: Base64.encode(envelope.payload, urlSafe: urlSafe, padded: padded),
                signatures: [(signature.keyid, Base64.encode(signature.sig, urlSafe: urlSafe, padded: padded))])
            variants.append(String(decoding: bytes, as: UTF8.self))
            #expect(Envelope.scan(bytes) != nil)
        }
        for variant in variants { expectEnvelopeAgreement(Array(variant.utf8)) }
        var random = SeededRandom(seed: 0xD55E)
        let alphabet = Array("{}[]:,\"\\ =+/-_A".utf8) + [0x00, 0xC3]
        for _ in 0..<1500 {
            var bytes = signed
            let at = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<3, using: &random) {
            case 0: bytes[at] = alphabet[Int.random(in: 0..<alphabet.count, using: &random)]
            case 1: bytes.remove(at: at)
            default: bytes.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &random)], at: at)
            }
            expectEnvelopeAgreement(bytes)
        }
    }

    // MARK: helpers

    func firstRange(of needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
        guard needle.count <= haystack.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            return start..<start + needle.count
        }
        return nil
    }
}
