import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// `HostProbe.observe` + `AuditChecks.evaluate` over every fixture tree, for the hardware and history rules.
@Suite("hardware and history rules end to end")
struct HardwareEndToEndTests {
    static let rules: Set<String> = ["wireless.hardware", "wireless.modules", "wireless.history", "usb.storage", "usb.phone", "log.retention"]

    static func audit(_ name: String) throws -> [Finding] {
        var policy = try TestSupport.defaultPolicy()
        policy.ledger = [Policy.LedgerEntry(vendor: "0781", product: "5583", serial: "4C530001230615117204", label: "秘-U-0012", classification: .confidential, responsible: "张三")]
        let facts = HostProbe.observe(root: FixtureHosts.root(name), live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate)
        let context = CheckContext(policy: policy, hostID: "fixture-\(name)", observedAt: TestSupport.fixedDate)
        return AuditChecks.evaluate(facts, context: context, only: rules)
    }

    static func statuses(_ findings: [Finding]) -> [String: Set<Status>] {
        var out: [String: Set<Status>] = [:]
        for finding in findings { out[finding.rule.id, default: []].insert(finding.status) }
        return out
    }

    static let expected: [String: [String: Set<Status>]] = [
        "wired-desktop": [
            "wireless.hardware": [.pass], "wireless.modules": [.pass], "wireless.history": [.pass], "usb.storage": [.pass],
            "usb.phone": [.pass], "log.retention": [.pass],
        ],
        "laptop-wifi-bt": [
            "wireless.hardware": [.fail], "wireless.modules": [.fail], "wireless.history": [.fail], "usb.storage": [.pass, .fail],
            "usb.phone": [.pass], "log.retention": [.informational],
        ],
        "usb-stick-registered": [
            "wireless.hardware": [.pass], "wireless.modules": [.pass], "wireless.history": [.pass], "usb.storage": [.pass, .fail],
            "usb.phone": [.pass], "log.retention": [.pass],
        ],
        "usb-stick-unregistered": [
            "wireless.hardware": [.pass], "wireless.modules": [.pass], "wireless.history": [.pass], "usb.storage": [.fail],
            "usb.phone": [.pass], "log.retention": [.pass],
        ],
        "phone-tethering": [
            "wireless.hardware": [.fail], "wireless.modules": [.pass], "wireless.history": [.pass], "usb.storage": [.pass],
            "usb.phone": [.fail], "log.retention": [.fail],
        ],
        "cellular-modem": [
            "wireless.hardware": [.fail], "wireless.modules": [.fail, .pass], "wireless.history": [.fail], "usb.storage": [.pass],
            "usb.phone": [.pass], "log.retention": [.pass],
        ],
        "wifi-vendor-class": [
            "wireless.hardware": [.fail], "wireless.modules": [.fail, .pass], "wireless.history": [.pass], "usb.storage": [.pass],
            "usb.phone": [.pass], "log.retention": [.pass],
        ],
        "serial-parallel-firewire": [
            "wireless.hardware": [.pass], "wireless.modules": [.pass], "wireless.history": [.pass], "usb.storage": [.pass],
            "usb.phone": [.pass], "log.retention": [.pass],
        ],
        "usb-modem-serial": [
            "wireless.hardware": [.pass], "wireless.modules": [.pass], "wireless.history": [.pass], "usb.storage": [.pass],
            "usb.phone": [.pass], "log.retention": [.pass],
        ],
        "optical-drives": [
            "wireless.hardware": [.pass], "wireless.modules": [.pass], "wireless.history": [.pass], "usb.storage": [.pass],
            "usb.phone": [.pass], "log.retention": [.pass],
        ],
    ]

    @Test("each fixture gives the expected statuses per rule", arguments: FixtureHosts.names)
    func statusesPerRule(name: String) throws {
        let findings = try Self.audit(name)
        let got = Self.statuses(findings)
        let want = try #require(Self.expected[name])
        for rule in Self.rules.sorted() {
            #expect(got[rule] == want[rule], "\(name) \(rule): \(findings.filter { $0.rule.id == rule }.map { "\($0.status) \($0.subject): \($0.statusDetail)" })")
        }
        #expect(findings.allSatisfy { !$0.statusDetail.isEmpty && !$0.evidence.isEmpty })
    }

    @Test("laptop: one Wi-Fi finding on the PCI card and one Bluetooth finding on the USB adapter; seven saved profiles and pairings")
    func laptop() throws {
        let findings = try Self.audit("laptop-wifi-bt")
        let hardware = findings.filter { $0.rule.id == "wireless.hardware" }
        #expect(hardware.map(\.subject) == ["/sys/devices/pci0000:00/0000:00:14.0/usb1/1-10", "/sys/devices/pci0000:00/0000:00:14.3"])
        #expect(hardware.last?.statusDetail.contains("rfkill rfkill0 type wlan") == true)
        #expect(findings.filter { $0.rule.id == "wireless.history" }.count == 7)
        #expect(findings.contains { $0.subject == "module:iwlwifi" && $0.status == .fail })
        let report = findings.map { $0.json.compactString }.joined()
        for secret in ["correct-horse-battery-staple", "hunter2-vpn-secret", "airport-secret-psk", "hotel-secret-pass", "ifupdown-secret-psk"] {
            #expect(!report.contains(secret))
        }
    }

    @Test("sticks: the registered one passes naming its label, the other fails; storage control fails on its own")
    func sticks() throws {
        let registered = try Self.audit("usb-stick-registered").filter { $0.rule.id == "usb.storage" }
        #expect(registered.first { $0.subject.hasSuffix("/usb2/2-1") }?.status == .pass)
        #expect(registered.first { $0.subject.hasSuffix("/usb2/2-1") }?.statusDetail.contains("秘-U-0012") == true)
        #expect(registered.first { $0.subject == "usb-storage-control" }?.status == .fail)
        let unregistered = try Self.audit("usb-stick-unregistered").filter { $0.rule.id == "usb.storage" }
        #expect(unregistered.first { $0.subject.hasSuffix("/usb2/2-1") }?.statusDetail.contains("E0D55EA574E5F350A9C1003F") == true)
    }

    @Test("the vendor-class dongle is caught by alias match alone, and its blacklisted drivers are called out")
    func vendorClass() throws {
        let findings = try Self.audit("wifi-vendor-class")
        let hardware = try #require(findings.first { $0.rule.id == "wireless.hardware" })
        #expect(hardware.subject == "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2")
        #expect(hardware.statusDetail.contains("modules.alias matches r8188eu (Wi-Fi), rtl8xxxu (Wi-Fi)"))
        let subjects = Set(findings.filter { $0.rule.id == "wireless.modules" && $0.status == .fail }.map(\.subject))
        #expect(subjects == ["module:r8188eu", "module:rtl8xxxu", "modules:wifi", "builtin:lib80211"])
    }

    @Test("phone: RNDIS and ADB named; modem: one device finding with option, qmi_wwan and wwan0")
    func phoneAndModem() throws {
        let phone = try #require(try Self.audit("phone-tethering").first { $0.rule.id == "usb.phone" })
        #expect(phone.statusDetail.contains("RNDIS: a phone sharing its mobile link"))
        #expect(phone.statusDetail.contains("Android Debug Bridge"))
        let modem = try Self.audit("cellular-modem").filter { $0.rule.id == "wireless.hardware" }
        #expect(modem.count == 1)
        #expect(modem.first?.statusDetail.contains("qmi_wwan (WWAN/cellular)") == true)
        #expect(modem.first?.statusDetail.contains("WWAN interface wwan0") == true)
    }

    @Test("the live machine audits without crashing and every finding says why")
    func live() throws {
        let facts = HostProbe.observe(root: .live, live: true, logger: FixtureHosts.logger)
        let context = CheckContext(policy: try TestSupport.defaultPolicy(), hostID: "live", observedAt: facts.observedAt)
        let findings = AuditChecks.evaluate(facts, context: context, only: Self.rules)
        #expect(Set(findings.map(\.rule.id)) == Self.rules)
        #expect(findings.allSatisfy { !$0.statusDetail.isEmpty })
    }
}
