import MijianCore
import Testing

@Suite struct IPTests {
    @Test func parsesAndPrints() throws {
        for text in ["0.0.0.0", "10.1.2.3", "255.255.255.255", "::", "::1", "fe80::1", "2001:db8::8:800:200c:417a", "1:2:3:4:5:6:7:8", "::ffff:10.0.0.1"] {
            let address = try #require(IPAddress(text), "\(text)")
            #expect(IPAddress(address.description) == address)
        }
        #expect(IPAddress("2001:0db8:0:0:0:0:0:1")?.description == "2001:db8::1")
        #expect(IPAddress("::ffff:10.0.0.1")?.mappedV4 == IPAddress("10.0.0.1"))
        for bad in ["256.1.1.1", "1.2.3", "01.2.3.4", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "", ":::"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func prefixesContain() throws {
        let net = try #require(IPNetwork("10.0.0.0/8"))
        #expect(net.contains(IPAddress("10.255.0.1")!))
        #expect(!net.contains(IPAddress("11.0.0.0")!))
        #expect(net.contains(IPAddress("::ffff:10.0.0.1")!))
        #expect(IPNetwork("10.1.2.3/8")?.description == "10.0.0.0/8")
        #expect(IPNetwork("0.0.0.0/0")!.contains(IPNetwork("128.0.0.0/1")!))
        #expect(IPNetwork("::/0")!.upperBound == ~UInt128(0))
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("fd00::/8")!.contains(IPAddress("fd12::1")!))
    }

    @Test func classifiesPublicSpace() {
        #expect(IPAddress("8.8.8.8")!.isPublic)
        #expect(IPAddress("2606:4700::1111")!.isPublic)
        for text in ["3fff:1::1", "10.0.0.1", "192.168.1.1", "172.20.0.1", "127.0.0.1", "169.254.1.1", "192.0.2.1", "198.51.100.7", "203.0.113.9", "224.0.0.251", "fe80::1", "fd00::1", "::1", "ff02::1", "2001:db8::1", "::ffff:10.0.0.1"] {
            #expect(!IPAddress(text)!.isPublic, "\(text)")
        }
        #expect(IPAddress("::ffff:8.8.8.8")!.isPublic)
    }
}
