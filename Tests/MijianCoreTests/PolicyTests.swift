import Foundation
import MijianCore
import MijianTestSupport
import Testing

@Suite struct PolicyTests {
    @Test func embeddedPolicyIsTheFileByteForByte() throws {
        let file = TestSupport.repositoryRoot.appendingPathComponent("Policies/classified-workstation.yaml")
        let bytes = try Data(contentsOf: file)
        #expect(Array(bytes) == Array(EmbeddedPolicies.classifiedWorkstation.utf8), "run scripts/embed-policies.sh")
    }

    @Test func defaultPolicyParses() throws {
        let policy = try TestSupport.defaultPolicy()
        #expect(policy.id == "classified-workstation")
        #expect(policy.profile == .classified)
        #expect(policy.isUnitAddress(IPAddress("10.1.2.3")!))
        #expect(!policy.isUnitAddress(IPAddress("8.8.8.8")!))
        #expect(policy.sha256.count == 64)
    }

    @Test func fullPolicyParses() throws {
        let policy = try TestSupport.policy("""
            id: p
            version: "1"
            profile: classified
            networks:
              unit: [10.0.0.0/8, "fd00::/8"]
              allowed_destinations: [192.0.2.10/32]
              links: [eno1, "enp*"]
            dns:
              resolvers: [10.0.0.53]
              allowed_suffixes: [unit.internal]
            media:
              ledger:
                - vendor: "0781"
                  product: "5583"
                  serial: "4C530001230615117204"
                  label: "秘-U-0012"
                  classification: 秘密
                  responsible: 张三
            usb: {mode: enforce}
            rules:
              net.sockets: {enabled: false, severity: low}
            traffic: {max_flows: 1000}
            """)
        #expect(policy.ledger.first?.matches(vendor: "0781", product: "5583", serial: "4C530001230615117204") == true)
        #expect(policy.ledger.first?.classification == .confidential)
        #expect(policy.usbMode == .enforce)
        #expect(policy.isEnabled("net.sockets") == false)
        #expect(policy.severity(for: RuleCatalogue.sockets) == .low)
        #expect(policy.isAllowedPeer(IPAddress("192.0.2.10")!))
        #expect(!policy.isAllowedPeer(IPAddress("192.0.2.11")!))
        #expect(policy.isAllowedName("a.unit.internal") && policy.isAllowedName("unit.internal."))
        #expect(!policy.isAllowedName("evilunit.internal"))
        #expect(policy.traffic.maxFlows == 1000)
        #expect(policy.allowedLinks == ["eno1", "enp*"])
        #expect(policy.isAllowedLink("eno1") && policy.isAllowedLink("enp3s0") && policy.isAllowedLink("enp"))
        #expect(!policy.isAllowedLink("eno11") && !policy.isAllowedLink("wlan0"))
    }

    private func failure(_ yaml: String) -> MijianError? {
        do {
            _ = try Policy.parse(Array(yaml.utf8), file: "/etc/p.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func unknownKeyNamesFileLineAndKey() throws {
        let error = try #require(failure("id: p\nversion: \"1\"\nprofile: classified\nnetworks:\n  unit: []\n  unti: []\n"))
        #expect(error.code == .policyUnknownKey)
        #expect(error.message.hasPrefix("/etc/p.yaml:6: networks.unti: unknown key"))
    }

    @Test func badValuesNameFileLineAndKey() throws {
        let cidr = try #require(failure("id: p\nversion: \"1\"\nprofile: classified\nnetworks:\n  unit:\n    - 10.0.0.0/33\n"))
        #expect(cidr.message.hasPrefix("/etc/p.yaml:6: networks.unit[0]:"))
        let profile = try #require(failure("id: p\nversion: \"1\"\nprofile: secretish\n"))
        #expect(profile.message.contains(":3: profile: expected one of classified | unclassified"))
        let rule = try #require(failure("id: p\nversion: \"1\"\nprofile: classified\nrules:\n  net.nope: {}\n"))
        #expect(rule.code == .policyUnknownKey && rule.message.contains(":5: rules.net.nope"))
        let ledger = try #require(failure("id: p\nversion: \"1\"\nprofile: classified\nmedia:\n  ledger:\n    - vendor: 781\n      product: \"5583\"\n      serial: x\n"))
        #expect(ledger.message.contains(":6: media.ledger[0].vendor: expected four hex digits"))
        let missing = try #require(failure("version: \"1\"\nprofile: classified\n"))
        #expect(missing.message.contains("id: missing"))
        let syntax = try #require(failure("id: [unclosed\n"))
        #expect(syntax.message.contains("not valid YAML") && syntax.message.contains("line"))
        let link = try #require(failure("id: p\nversion: \"1\"\nprofile: classified\nnetworks:\n  links:\n    - eth0\n    - \"e*th\"\n"))
        #expect(link.message.contains(":7: networks.links[1]: \"e*th\" is not an interface name or a prefix ending in *"))
        #expect(failure("id: p\nversion: \"1\"\nprofile: classified\nnetworks:\n  links: [\"*\"]\n") != nil)
        let empty = try #require(failure(""))
        #expect(empty.message.contains("empty"))
    }

    @Test func hostIdentityAcceptsAliases() throws {
        let identity = try HostIdentity.parse(Array("asset_id: JSJ-1\nclassification: jimi\nresponsible: 张三\nunit: u\n".utf8), file: "h.yaml")
        #expect(identity.classification == .secret)
        #expect(throws: MijianError.self) { try HostIdentity.parse(Array("classification: hush\n".utf8), file: "h.yaml") }
        #expect(throws: MijianError.self) { try HostIdentity.parse(Array("asset: 1\n".utf8), file: "h.yaml") }
    }
}
