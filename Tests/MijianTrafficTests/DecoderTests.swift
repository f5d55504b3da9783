import MijianCore
import MijianTestSupport
import Testing

@testable import MijianTraffic

typealias B = PacketBuilder

/// Decodes `frame` with the given link type.
func decode(_ frame: [UInt8], _ linkType: LinkType) -> DecodedPacket? {
    frame.withUnsafeBytes { PacketDecoder.decode($0, linkType: linkType) }
}

@Suite("Packet decoder")
struct DecoderTests {
    let udp4 = B.ipv4(src: "10.1.2.3", dst: "203.0.113.9", proto: 17, payload: B.udp(src: 40000, dst: 9999, payload: [1, 2, 3]))
    let tcp6 = B.ipv6(src: "fd00::1", dst: "2001:db8::9", next: 6, payload: B.tcp(src: 40001, dst: 443))

    func expectUDP4(_ packet: DecodedPacket?) {
        #expect(packet?.src == IPAddress("10.1.2.3"))
        #expect(packet?.dst == IPAddress("203.0.113.9"))
        #expect(packet?.proto == 17)
        #expect(packet?.srcPort == 40000)
        #expect(packet?.dstPort == 9999)
        #expect(packet?.ipLength == 31)
    }

    func expectTCP6(_ packet: DecodedPacket?) {
        #expect(packet?.src == IPAddress("fd00::1"))
        #expect(packet?.dst == IPAddress("2001:db8::9"))
        #expect(packet?.proto == 6)
        #expect(packet?.dstPort == 443)
        #expect(packet?.ipLength == 60)
    }

    @Test func ethernet() {
        expectUDP4(decode(B.ethernet(etherType: 0x0800, payload: udp4), .ethernet))
        expectTCP6(decode(B.ethernet(etherType: 0x86DD, payload: tcp6), .ethernet))
        #expect(decode(B.ethernet(etherType: 0x0806, payload: [UInt8](repeating: 0, count: 28)), .ethernet) == nil)
    }

    @Test func vlanStackedAndQinQ() {
        expectUDP4(decode(B.ethernet(etherType: 0x0800, payload: udp4, tags: [(0x8100, 10)]), .ethernet))
        expectUDP4(decode(B.ethernet(etherType: 0x0800, payload: udp4, tags: [(0x8100, 10), (0x8100, 20)]), .ethernet))
        expectTCP6(decode(B.ethernet(etherType: 0x86DD, payload: tcp6, tags: [(0x88A8, 100), (0x8100, 20)]), .ethernet))
        // Nine tags (the kernel lets VLAN devices stack) are walked; past the bound the frame is unjudged.
        expectUDP4(decode(B.ethernet(etherType: 0x0800, payload: udp4, tags: [(UInt16, UInt16)](repeating: (0x8100, 1), count: 9)), .ethernet))
        let tooMany = [(UInt16, UInt16)](repeating: (0x8100, 1), count: PacketDecoder.maxTags + 1)
        #expect(decode(B.ethernet(etherType: 0x0800, payload: udp4, tags: tooMany), .ethernet) == nil)
    }

    @Test func cookedV1AndV2() {
        expectUDP4(decode(B.sll(protocol: 0x0800, payload: udp4), .linuxSLL))
        expectTCP6(decode(B.sll(protocol: 0x86DD, payload: tcp6), .linuxSLL))
        expectUDP4(decode(B.sll2(protocol: 0x0800, payload: udp4), .linuxSLL2))
        expectTCP6(decode(B.sll2(protocol: 0x86DD, payload: tcp6), .linuxSLL2))
        expectUDP4(decode(B.sll(protocol: 0x8100, payload: [0, 5, 0x08, 0x00] + udp4), .linuxSLL))
    }

    @Test func rawIP() {
        for type in [LinkType.raw, .rawOpenBSD, .rawLinktype] {
            expectUDP4(decode(udp4, type))
            expectTCP6(decode(tcp6, type))
        }
        expectUDP4(decode(udp4, .ipv4))
        expectTCP6(decode(tcp6, .ipv6))
        #expect(decode(tcp6, .ipv4) == nil)
    }

    @Test func nullAndLoop() {
        expectUDP4(decode(B.null(family: 2, payload: udp4), .null))
        expectUDP4(decode(B.null(family: 2, payload: udp4, bigEndian: true), .null))
        for family: UInt32 in [10, 24, 28, 30] { expectTCP6(decode(B.null(family: family, payload: tcp6), .null)) }
        expectUDP4(decode(B.null(family: 2, payload: udp4, bigEndian: true), .loop))
        expectTCP6(decode(B.null(family: 24, payload: tcp6, bigEndian: true), .loop))
        #expect(decode(B.null(family: 7, payload: udp4), .null) == nil)
    }

    @Test func ipv4OptionsAndFragments() {
        let options = B.ipv4(
            src: "10.1.2.3", dst: "203.0.113.9", proto: 17, payload: B.udp(src: 40000, dst: 9999, payload: [1, 2, 3]),
            options: [0x94, 0x04, 0, 0, 0x01])
        let withOptions = decode(options, .raw)
        #expect(withOptions?.dstPort == 9999)
        #expect(withOptions?.ipLength == 39)
        let first = decode(
            B.ipv4(src: "10.1.2.3", dst: "203.0.113.9", proto: 6, payload: B.tcp(src: 1, dst: 80), moreFragments: true), .raw)
        #expect(first?.dstPort == 80)
        #expect(first?.isLaterFragment == false)
        let later = decode(B.ipv4(src: "10.1.2.3", dst: "203.0.113.9", proto: 6, payload: [9, 9, 9, 9, 9, 9, 9, 9], fragmentOffset: 185), .raw)
        #expect(later?.dst == IPAddress("203.0.113.9"))
        #expect(later?.isLaterFragment == true)
        #expect(later?.dstPort == nil)
        #expect(later?.proto == 6)
        // A header length below 20 is malformed.
        var bad = udp4
        bad[0] = 0x44
        #expect(decode(bad, .raw) == nil)
    }

    @Test func ipv6ExtensionChain() throws {
        let dns = B.udp(src: 5353, dst: 53, payload: B.dnsQuery(["www.example.org"]))
        let chain = B.extensionHeader(next: 43) + B.extensionHeader(next: 60, units: 2) + B.extensionHeader(next: 51)
            + B.authenticationHeader(next: 44) + B.fragmentHeader(next: 17, offset: 0, more: true) + dns
        let packet = try #require(decode(B.ipv6(src: "fd00::1", dst: "fd00::53", next: 0, payload: chain), .raw))
        #expect(packet.proto == 17)
        #expect(packet.dstPort == 53)
        let payload = try #require(packet.payload)
        #expect(payload.count == dns.count - 8)
        let later = decode(
            B.ipv6(src: "fd00::1", dst: "2001:db8::1", next: 44, payload: B.fragmentHeader(next: 6, offset: 100, more: false) + [1, 2, 3, 4]), .raw)
        #expect(later?.isLaterFragment == true)
        #expect(later?.proto == 6)
        #expect(later?.dstPort == nil)
        #expect(later?.dst == IPAddress("2001:db8::1"))
        // A chain that never ends stops at the bound without trapping.
        let endless = (0..<40).flatMap { _ in B.extensionHeader(next: 0) }
        #expect(decode(B.ipv6(src: "fd00::1", dst: "fd00::2", next: 0, payload: endless), .raw)?.dstPort == nil)
    }

    @Test func icmp() {
        let v4 = decode(B.ipv4(src: "10.0.0.1", dst: "198.51.100.7", proto: 1, payload: B.icmpEcho()), .raw)
        #expect(v4?.proto == 1)
        #expect(v4?.dstPort == nil)
        let v6 = decode(B.ipv6(src: "fd00::1", dst: "2001:db8::7", next: 58, payload: [128, 0, 0, 0, 0, 1, 0, 1]), .raw)
        #expect(v6?.proto == 58)
        #expect(v6?.dstPort == nil)
    }

    @Test func everyPrefixOfEveryFrameDecodesWithoutTrapping() {
        let dns = B.udp(src: 5353, dst: 53, payload: B.dnsQuery(["a.b.example", "c.b.example"], compress: true))
        let frames: [([UInt8], LinkType)] = [
            (B.ethernet(etherType: 0x0800, payload: udp4, tags: [(0x88A8, 1), (0x8100, 2)]), .ethernet),
            (B.sll2(protocol: 0x86DD, payload: B.ipv6(src: "fd00::1", dst: "fd00::2", next: 0, payload: B.extensionHeader(next: 44) + B.fragmentHeader(next: 17, offset: 0, more: false) + dns)), .linuxSLL2),
            (B.sll(protocol: 0x0800, payload: B.ipv4(src: "10.0.0.1", dst: "10.0.0.53", proto: 17, payload: dns, options: [1, 1, 1, 1])), .linuxSLL),
            (B.null(family: 2, payload: udp4), .null),
        ]
        for (frame, type) in frames {
            var decodedCount = 0
            for length in 0...frame.count {
                if let packet = decode(Array(frame.prefix(length)), type) {
                    decodedCount += 1
                    if let payload = packet.payload { #expect(payload.upperBound <= length) }
                }
            }
            #expect(decodedCount > 0)
        }
    }
}

@Suite("DNS decoder")
struct DNSTests {
    func query(_ bytes: [UInt8], tcp: Bool = false) -> DNSQuery {
        bytes.withUnsafeBytes { DNSDecoder.query(payload: $0, overTCP: tcp) }
    }

    @Test func namesAndCompression() {
        #expect(query(B.dnsQuery(["WWW.Example.ORG"])) == .names(["www.example.org"]))
        #expect(query(B.dnsQuery(["a.unit.internal", "b.unit.internal"], compress: true)) == .names(["a.unit.internal", "b.unit.internal"]))
        #expect(query(B.dnsQuery(["x.example"], response: true)) == .notQuery)
    }

    @Test func overTCP() {
        let message = B.dnsQuery(["outside.example"])
        var framed: [UInt8] = []
        framed.be16(UInt16(message.count))
        #expect(query(framed + message, tcp: true) == .names(["outside.example"]))
        #expect(query([], tcp: true) == .notQuery)
        #expect(query([0], tcp: true) == .undecodable)
    }

    @Test func pointerLoopsAndBadLabelsAreBounded() {
        // A pointer to itself, and two pointing at each other.
        let selfLoop: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]
        #expect(query(selfLoop) == .undecodable)
        let pair: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 14, 0xC0, 12, 0, 1, 0, 1]
        #expect(query(pair) == .undecodable)
        let reserved: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 1, 0, 1]
        #expect(query(reserved) == .undecodable)
        let longName = (0..<10).map { _ in String(repeating: "a", count: 30) }.joined(separator: ".")
        #expect(query(B.dnsQuery([longName])) == .undecodable)
        #expect(query([1, 2, 3]) == .undecodable)
        let escaped: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x2E, 0x00, 0, 0, 1, 0, 1]
        #expect(query(escaped) == .names(["a\\046\\000"]))
    }

    @Test func theAllocationFreeCheckNeverClearsWhatTheFullDecoderWouldFlag() throws {
        let policy = try egressPolicy()
        var seeds: [[UInt8]] = [
            B.dnsQuery(["host.unit.internal"]), B.dnsQuery(["a.unit.internal", "b.unit.internal"], compress: true),
            B.dnsQuery(["HOST.Unit.Internal"]), B.dnsQuery(["unit.internal.evil.com"]), B.dnsQuery(["x.example"], response: true),
            B.dnsQuery(["ok.unit.internal", "exfil.example.com"]), B.dnsQuery([]), [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        ]
        seeds.append(B.dnsQuery((0..<9).map { "q\($0).unit.internal" }))
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        var cleared = 0
        var scratch: [UInt8] = []
        for round in 0..<4_000 {
            var payload = seeds[round % seeds.count]
            // Flip, cut or extend a few bytes.
            for _ in 0..<Int(next() % 4) where !payload.isEmpty {
                switch next() % 3 {
                case 0: payload[Int(next() % UInt64(payload.count))] = UInt8(truncatingIfNeeded: next())
                case 1: payload.removeLast(Int(next() % UInt64(min(payload.count, 6))))
                default: payload.append(UInt8(truncatingIfNeeded: next()))
                }
            }
            for tcp in [false, true] {
                var bytes = payload
                if tcp { bytes = [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload }
                let fast = bytes.withUnsafeBytes {
                    DNSDecoder.asksOnlyAllowedNames(payload: $0, overTCP: tcp, scratch: &scratch, policy: policy)
                }
                let full = bytes.withUnsafeBytes { DNSDecoder.query(payload: $0, overTCP: tcp) }
                let fullAllows: Bool
                switch full {
                case .notQuery: fullAllows = true
                case .names(let names): fullAllows = names.allSatisfy { policy.isAllowedName($0) }
                case .undecodable: fullAllows = false
                }
                #expect(fast == fullAllows, "\(bytes) tcp \(tcp): fast \(fast), full \(full)")
                if fast { cleared += 1 }
            }
        }
        // The mutations leave plenty of both outcomes.
        #expect(cleared > 500)
        #expect(cleared < 7_500)
    }

    @Test func questionsThatWereNotReadAreNeverTakenForAllowedOnes() {
        // The second question cut off (as a 512-byte snap length can cut a long query).
        let both = B.dnsQuery(["ok.unit.internal", "exfil.example.com"])
        #expect(query(Array(both.dropLast(12))) == .names(["ok.unit.internal", DNSDecoder.undecodableName]))
        // More questions than the decoder reads: the rest are unknown.
        var many = B.dnsQuery((0..<(DNSDecoder.maxQuestions + 1)).map { "q\($0).unit.internal" })
        #expect(many[5] == UInt8(DNSDecoder.maxQuestions + 1))
        guard case .names(let names) = query(many) else {
            Issue.record("expected names")
            return
        }
        #expect(names.count == DNSDecoder.maxQuestions + 1)
        #expect(names.last == DNSDecoder.undecodableName)
        many[5] = UInt8(DNSDecoder.maxQuestions)
        #expect(query(many) == .names((0..<DNSDecoder.maxQuestions).map { "q\($0).unit.internal" }))
    }
}
