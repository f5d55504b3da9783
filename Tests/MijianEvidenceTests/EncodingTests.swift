import CBase64
import Foundation
import Testing

@testable import MijianEvidence

@Suite("Base64, hex and PAE")
struct EncodingTests {
    @Test("Both alphabets, padded or not, decode to the same bytes")
    func base64Alphabets() throws {
        let bytes: [UInt8] = [0xfb, 0xff, 0xbf, 0x00, 0x3e, 0x3f]
        let standard = Base64.encode(bytes)
        #expect(standard == "+/+/AD4/")
        #expect(try Base64.decode(standard) == bytes)
        #expect(try Base64.decode("-_-_AD4_") == bytes)
        for length in 0...7 {
            let slice = Array(bytes.prefix(length))
            for urlSafe in [false, true] {
                for padded in [false, true] {
                    #expect(try Base64.decode(Base64.encode(slice, urlSafe: urlSafe, padded: padded)) == slice)
                }
            }
        }
        #expect(try Base64.decode("aGk") == Array("hi".utf8))
        #expect(try Base64.decode("aGk=") == Array("hi".utf8))
    }

    @Test("Random bytes of every length up to 200 round-trip, agreeing with Foundation's encoder")
    func base64RoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0...200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(Base64.encode(bytes) == Data(bytes).base64EncodedString())
            for urlSafe in [false, true] {
                for padded in [false, true] {
                    #expect(try Base64.decode(Base64.encode(bytes, urlSafe: urlSafe, padded: padded)) == bytes)
                }
            }
        }
    }

    @Test("White space, mixed alphabets, bad padding and spare bits are refused", arguments: [
        "aGk= ", "aG k=", "+/-_", "aGk==", "aG=k", "a", "aGk===", "aGl=", "aQ==x", "aGk\n",
    ])
    func base64Refusals(text: String) {
        #expect(throws: Base64.Failure.self) { try Base64.decode(text) }
    }

    /// Long texts go through whole 32-character blocks (AVX2 where the CPU has it) before the exact
    /// decoder: every byte value at every place of a block, and the alphabets mixed across the
    /// blocks, get the answer the exact decoder gives alone.
    @Test("Long texts: every byte at every place of a block, and alphabets mixed across blocks")
    func base64Blocks() throws {
        #expect(mijian_base64_has_avx2() == (try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8).contains(" avx2") ? 1 : 0))
        var generator = SystemRandomNumberGenerator()
        for length in [48, 49, 50, 96, 97, 98, 240, 1000, 20_000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let standard = Base64.encode(bytes)
            #expect(try Base64.decode(standard) == bytes, "length \(length)")
            #expect(try Base64.decode(Base64.encode(bytes, urlSafe: true, padded: false)) == bytes, "length \(length), URL-safe")
            #expect(Data(base64Encoded: standard).map(Array.init) == bytes)
        }
        // 96 characters of 'A' (72 zero bytes): each byte value at each place of the first two blocks.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        for place in [0, 1, 7, 15, 16, 17, 30, 31, 32, 45, 63] {
            for byte in UInt8.min...UInt8.max {
                var text = [UInt8](repeating: 0x41, count: 96)
                text[place] = byte
                let result = text.withUnsafeBufferPointer { Base64.decode(bytes: $0) }
                let sixBits: Int? =
                    alphabet.firstIndex(of: byte) ?? (byte == UInt8(ascii: "-") ? 62 : (byte == UInt8(ascii: "_") ? 63 : nil))
                if let sixBits {
                    var expected = [UInt8](repeating: 0, count: 72)
                    let bit = place * 6
                    let value = (UInt32(sixBits) << 18) >> UInt32(bit % 8)
                    expected[bit / 8] |= UInt8(truncatingIfNeeded: value >> 16)
                    if bit / 8 + 1 < 72 { expected[bit / 8 + 1] |= UInt8(truncatingIfNeeded: value >> 8) }
                    #expect((try? result.get()) == expected, "byte \(byte) at \(place)")
                } else {
                    #expect(throws: Base64.Failure.self, "byte \(byte) at \(place)") { try result.get() }
                }
            }
        }
        // The standard alphabet's '+' in a block, the URL-safe '-' later (in a block or in the tail): mixed.
        for late in [40, 70, 95] {
            var text = [UInt8](repeating: 0x41, count: 96)
            text[3] = UInt8(ascii: "+")
            text[late] = UInt8(ascii: "-")
            let result = text.withUnsafeBufferPointer { Base64.decode(bytes: $0) }
            #expect(result == .failure(Base64.Failure(detail: "base64 text mixes the standard and URL-safe alphabets")), "'-' at \(late)")
            text[3] = UInt8(ascii: "A")
            #expect((try? text.withUnsafeBufferPointer { Base64.decode(bytes: $0) }.get())?.count == 72, "URL-safe alone, '-' at \(late)")
        }
    }

    @Test("PAE matches the DSSE specification's example")
    func paeVector() {
        let pae = DSSE.pae(type: "http://example.com/HelloWorld", body: Array("hello world".utf8))
        #expect(String(decoding: pae, as: UTF8.self) == "DSSEv1 29 http://example.com/HelloWorld 11 hello world")
    }

    @Test("PAE counts bytes, not characters, of a non-ASCII payloadType")
    func paeNonASCII() throws {
        let type = "application/vnd.测试+json"
        #expect(type.count == 23)
        let pae = DSSE.pae(type: type, body: Array("密检".utf8))
        #expect(pae == Array("DSSEv1 27 application/vnd.测试+json 6 密检".utf8))
        let key = try SigningKey.generate()
        let envelope = try DSSE.sign(payload: Array("密检".utf8), type: type, key: key)
        let signature = try #require(envelope.signatures.first)
        #expect(key.publicKey.isValidSignature(signature.sig, for: pae))
        let characterCounted = Array("DSSEv1 23 application/vnd.测试+json 2 密检".utf8)
        #expect(!key.publicKey.isValidSignature(signature.sig, for: characterCounted))
        let reparsed = try Envelope.parse(envelope.serialized())
        #expect(reparsed == envelope)
    }

    @Test("Hex is lower case")
    func hex() {
        #expect(Hex.encode([0x00, 0xab, 0xff]) == "00abff")
    }
}
