import MijianCore
import Testing

@Suite struct JSONTests {
    @Test func serialisesInOrderWithIntegers() {
        let value: JSONValue = ["b": 1, "a": ["x", .double(1.5), .null, true], "s": "q\"\\/\n\u{01}"]
        #expect(value.compactString == #"{"b":1,"a":["x",1.5,null,true],"s":"q\"\\/\n\u0001"}"#)
    }

    @Test func writesEveryIntegerExactly() {
        let values: [Int64] = [0, 9, 10, -1, -10, 99, 100, 1_795_000_000_123, .max, .min]
        let expected = "[0,9,10,-1,-10,99,100,1795000000123,9223372036854775807,-9223372036854775808]"
        #expect(JSONValue.array(values.map { .int($0) }).compactString == expected)
    }

    @Test func parsesWhatItWrites() throws {
        let value: JSONValue = ["k": ["n": -42, "f": .double(0.25), "u": "密检 ✓", "e": [], "o": [:]]]
        #expect(try JSONParser().parse(value.serialized()) == value)
        #expect(try JSONParser().parse(value.prettySerialized()) == value)
    }

    @Test func rejectsDuplicateKeysAnywhere() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser().parse(Array(#"{"a":{"b":1,"b":2}}"#.utf8)) }
        do {
            _ = try JSONParser().parse(Array(#"[{"a":1,"a":1}]"#.utf8))
            Issue.record("duplicate accepted")
        } catch {
            #expect(error.reason == .duplicateKey)
            #expect(error.offset == 8)
        }
    }

    @Test func limitsDepthAndSize() {
        let deep = Array(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).map { UInt8($0.asciiValue ?? 0) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser(maxDepth: 64).parse(deep) }
        #expect((try? JSONParser(maxDepth: 128).parse(deep)) != nil)
        #expect(throws: JSONParser.Failure.self) { try JSONParser(maxBytes: 4).parse(Array("12345".utf8)) }
    }

    @Test func keepsIntegersApartFromFractions() throws {
        #expect(try JSONParser().parse(Array("7".utf8)) == .int(7))
        #expect(try JSONParser().parse(Array("7.0".utf8)) == .double(7))
        #expect(try JSONParser().parse(Array("1e2".utf8)) == .double(100))
        #expect(throws: JSONParser.Failure.self) { try JSONParser().parse(Array("99999999999999999999".utf8)) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser().parse(Array("01".utf8)) }
        #expect(try JSONParser().parse(Array("-9223372036854775808".utf8)) == .int(.min))
        #expect(try JSONParser().parse(Array("9223372036854775807".utf8)) == .int(.max))
        #expect(try JSONParser().parse(Array("-0".utf8)) == .int(0))
        #expect(throws: JSONParser.Failure.self) { try JSONParser().parse(Array("9223372036854775808".utf8)) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser().parse(Array("-9223372036854775809".utf8)) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser().parse(Array("-".utf8)) }
    }

    @Test func rejectsInvalidUTF8InsteadOfRepairingIt() throws {
        #expect(throws: JSONParser.Failure.self) { try JSONParser().parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser().parse([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) }
        #expect(try JSONParser().parse(Array("\"é\"".utf8)) == .string("é"))
        #expect(Hex.lower([0x00, 0x0F, 0xA5, 0xFF]) == "000fa5ff")
    }

    @Test func readsStringsWhateverWhereTheirSpecialBytesFall() throws {
        // Plain bytes are skipped eight at a time: a quote, escape, control or non-ASCII byte at
        // every position of strings around the word size is still seen where it is.
        let specials: [(text: [UInt8], value: String?)] = [
            (Array("\\\"".utf8), "\""), (Array("\\n".utf8), "\n"), ([0xC3, 0xA9], "é"), ([0x7F], "\u{7F}"), ([0x01], nil), ([0xFF], nil),
            ([0x1F], nil), ([0x20], " "), ([0x5B], "["),
        ]
        for length in 0..<20 {
            for position in 0...length {
                for special in specials {
                    var text: [UInt8] = [0x22] + Array(repeating: 0x61, count: position)
                    text += special.text + Array(repeating: 0x62, count: length - position) + [0x22]
                    let expected = special.value.map { String(repeating: "a", count: position) + $0 + String(repeating: "b", count: length - position) }
                    if let expected {
                        #expect(try JSONParser().parse(text) == .string(expected), "\(text)")
                    } else {
                        #expect(throws: JSONParser.Failure.self, "\(text)") { try JSONParser().parse(text) }
                    }
                }
            }
        }
    }

    @Test func acceptsExactlyTheUTF8ThatStringValidationAccepts() throws {
        // Every one- and two-byte sequence, and three- and four-byte ones over the boundary values.
        let edges: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]
        var sequences: [[UInt8]] = []
        for first in 0...255 {
            for second in 0...255 { sequences.append([UInt8(first), UInt8(second)]) }
        }
        for first in 0xC0...0xFF {
            for second in edges {
                for third in edges {
                    sequences.append([UInt8(first), second, third])
                    for fourth in edges where first >= 0xF0 { sequences.append([UInt8(first), second, third, fourth]) }
                }
            }
        }
        for bytes in sequences where !bytes.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            let expected = String(validating: bytes, as: UTF8.self)
            let parsed = try? JSONParser().parse([0x22] + bytes + [0x22])
            #expect(parsed == expected.map { .string($0) }, "\(bytes)")
        }
    }

    @Test func rejectsBrokenText() {
        for text in ["", "{", "[1,]", "{\"a\"}", "\"\\x\"", "tru", "{} {}", "\"\u{01}\"", "\"\\ud800\""] {
            #expect(throws: JSONParser.Failure.self, "\(text)") { try JSONParser().parse(Array(text.utf8)) }
        }
    }
}
