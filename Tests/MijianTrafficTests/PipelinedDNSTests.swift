import MijianTestSupport
import Testing

@testable import MijianTraffic

/// Every DNS message in a TCP segment is judged; a UDP datagram is one message.
@Suite("DNS decoder: several messages in one segment")
struct PipelinedDNSTests {
    func query(_ bytes: [UInt8], tcp: Bool = true, cut: Bool = false) -> DNSQuery {
        bytes.withUnsafeBytes { DNSDecoder.query(payload: $0, overTCP: tcp, cut: cut) }
    }

    func framed(_ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.be16(UInt16(message.count))
        return out + message
    }

    @Test func everyMessageOfASegmentIsRead() {
        let both = framed(B.dnsQuery(["host.unit.internal"])) + framed(B.dnsQuery(["secret-data.evil.example"]))
        #expect(query(both) == .names(["host.unit.internal", "secret-data.evil.example"]))
        // A response among them hides nothing.
        let behindResponse = framed(B.dnsQuery(["x.example"], response: true)) + framed(B.dnsQuery(["secret.evil.example"]))
        #expect(query(behindResponse) == .names(["secret.evil.example"]))
        #expect(query(framed(B.dnsQuery(["x.example"], response: true))) == .notQuery)
    }

    @Test func whatCannotBeReadIsNeverTakenForAnAllowedQuestion() {
        let first = framed(B.dnsQuery(["host.unit.internal"]))
        let undecodable = DNSDecoder.undecodableName
        // A second message the segment holds only part of, a lone prefix byte, an empty message.
        #expect(query(first + framed(B.dnsQuery(["b.unit.internal"]) + [0, 0]).dropLast(2)) == .names(["host.unit.internal", "b.unit.internal", undecodable]))
        #expect(query(first + [0]) == .names(["host.unit.internal", undecodable]))
        #expect(query(first + [0, 0]) == .names(["host.unit.internal", undecodable]))
        // A segment the capture cut, or a first fragment: more may follow unseen.
        #expect(query(first, cut: true) == .names(["host.unit.internal", undecodable]))
        #expect(query([], cut: true) == .undecodable)
        // More messages than the bound.
        let many = (0...DNSDecoder.maxMessages).flatMap { framed(B.dnsQuery(["q\($0).unit.internal"])) }
        #expect(query(many) == .names((0..<DNSDecoder.maxMessages).map { "q\($0).unit.internal" } + [undecodable]))
        let atBound = (0..<DNSDecoder.maxMessages).flatMap { framed(B.dnsQuery(["q\($0).unit.internal"])) }
        #expect(query(atBound) == .names((0..<DNSDecoder.maxMessages).map { "q\($0).unit.internal" }))
    }

    @Test func theFastPathAgreesOnPipelinedSegments() throws {
        let policy = try egressPolicy()
        var scratch: [UInt8] = []
        let inside = framed(B.dnsQuery(["host.unit.internal"]))
        for (payload, cut, allowed) in [
            (inside + inside, false, true), (inside + framed(B.dnsQuery(["secret.evil.example"])), false, false),
            (inside + [0], false, false), (inside, true, false),
        ] {
            let fast = payload.withUnsafeBytes { DNSDecoder.asksOnlyAllowedNames(payload: $0, overTCP: true, cut: cut, scratch: &scratch, policy: policy) }
            #expect(fast == allowed, "\(payload)")
        }
    }

    @Test func aUDPDatagramIsOneMessage() {
        // A resolver reads one message per datagram; bytes after the questions are never another query.
        let datagram = B.dnsQuery(["host.unit.internal"]) + framed(B.dnsQuery(["secret.evil.example"]))
        #expect(query(datagram, tcp: false) == .names(["host.unit.internal"]))
    }

    @Test func theDecoderSaysWhenASegmentGoesOnPastTheCapture() throws {
        let segment = B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 6, payload: B.tcp(src: 40000, dst: 53, payload: framed(B.dnsQuery(["host.unit.internal"]))))
        let whole = try #require(segment.withUnsafeBytes { PacketDecoder.decode($0, linkType: .raw) })
        #expect(!whole.payloadCut)
        let cut = try #require(Array(segment.dropLast(1)).withUnsafeBytes { PacketDecoder.decode($0, linkType: .raw) })
        #expect(cut.payloadCut)
        let fragment = B.ipv4(src: "10.1.1.1", dst: "10.0.0.53", proto: 6, payload: B.tcp(src: 40000, dst: 53, payload: framed(B.dnsQuery(["host.unit.internal"]))), moreFragments: true)
        #expect(try #require(fragment.withUnsafeBytes { PacketDecoder.decode($0, linkType: .raw) }).payloadCut)
        // An inside first fragment whose questions are all allowed still cannot pass: the rest is unseen.
        let analyzer = analyze([fragment], .raw, policy: try egressPolicy())
        #expect(analyzer.violations == 1)
    }
}
