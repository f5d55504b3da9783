import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianDevices
import MijianHost
import MijianTestSupport
import Testing

/// What the audit says about devices the USB control has kept out: still present, still a finding.
@Suite struct AuditOfBlockedDevicesTests {
    static func audit(_ fixture: SysfsFixture, rules: Set<String>) throws -> [Finding] {
        let facts = HostProbe.observe(root: HostRoot(path: fixture.path), live: false, logger: Logger(label: "test"))
        let context = CheckContext(policy: try TestSupport.policy(USBControlTests.policyYAML), hostID: "h", observedAt: TestSupport.fixedDate)
        return AuditChecks.evaluate(facts, context: context, only: rules)
    }

    @Test func aDeauthorisedStickStillFailsUsbStorage() throws {
        let fixture = try SysfsFixture()
        try fixture.plug(port: 2, vendor: "46f4", product: "0001", serial: "NOT-REGISTERED", interfaces: USBControlTests.stick)
        try fixture.deauthorize(port: 2)
        let findings = try Self.audit(fixture, rules: ["usb.storage"])
        let stick = findings.first { $0.subject.hasSuffix("/1-2") }
        #expect(stick?.status == .fail, "\(findings.map(\.statusDetail))")
        #expect(stick?.statusDetail.contains("NOT-REGISTERED") == true)
    }

    @Test func aDeauthorisedTetheringPhoneStillFailsUsbPhone() throws {
        let fixture = try SysfsFixture()
        try fixture.plug(port: 3, vendor: "18d1", product: "4ee4", serial: "PHONE", interfaces: [.init(cls: 0xE0, sub: 0x01, proto: 0x03), .init(cls: 0x0A, sub: 0x00, proto: 0x00)])
        try fixture.deauthorize(port: 3)
        let findings = try Self.audit(fixture, rules: ["usb.phone"])
        #expect(findings.contains { $0.status == .fail && $0.statusDetail.contains("RNDIS") }, "\(findings.map(\.statusDetail))")
    }

    @Test func theInterfaceLockIsStorageControl() throws {
        let fixture = try SysfsFixture()
        let unlocked = try Self.audit(fixture, rules: ["usb.storage"]).first { $0.subject == "usb-storage-control" }
        #expect(unlocked?.statusDetail.contains("interface_authorized_default") != true)
        try fixture.write("/sys\(SysfsFixture.controller)/usb1/interface_authorized_default", "0\n")
        let locked = try Self.audit(fixture, rules: ["usb.storage"]).first { $0.subject == "usb-storage-control" }
        #expect(locked?.status == .pass)
        #expect(locked?.statusDetail.contains("interface_authorized_default = 0") == true)
    }
}
