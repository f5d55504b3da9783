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

    @Test("White space, mixed alphabets, bad padding and spare bits are refused", arguments: [
        "aGk= ", "aG k=", "+/-_", "aGk==", "aG=k", "a", "aGk===", "aGl=", "aQ==x", "aGk\n",
    ])
    func base64Refusals(text: String) {
        #expect(throws: Base64.Failure.self) { try Base64.decode(text) }
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
