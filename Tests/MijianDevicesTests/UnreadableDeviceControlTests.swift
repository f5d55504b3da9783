import Foundation
import MijianCore
import MijianDevices
import MijianHost
import MijianTestSupport
import Testing

/// The live USB control never authorises what it could not read: a device or an interface whose
/// sysfs directory is refused (as mode 000 refuses a process without DAC override; here through
/// `HostRoot.refusing`) is unknown, and unknown is kept out, in enforce mode by writing 0.
@Suite("USB control: an unreadable device is never authorised")
struct UnreadableDeviceControlTests {
    static func control(_ fixture: SysfsFixture, refusing path: String, enforce: Bool = true) throws -> USBControl {
        let root = HostRoot(path: fixture.path).refusing(path)
        return USBControl(.init(root: root, policy: try TestSupport.policy(USBControlTests.policyYAML), enforce: enforce, knowledge: .none))
    }

    @Test("a registered stick with one interface that cannot be read is denied whole, never authorised")
    func registeredStickWithAnUnreadableInterface() throws {
        let fixture = try SysfsFixture()
        let stick = USBControlTests.stick + USBControlTests.stick
        // The tree is made first (a path that does not exist cannot be refused); the uevents follow.
        let stream = try fixture.plug(port: 4, vendor: "46f4", product: "0001", serial: "REG-0001", interfaces: stick)
        let control = try Self.control(fixture, refusing: fixture.interfacePath(port: 4, 1))
        let events = USBControlTests.run(control, stream)
        // Interface 0 is judged (and may bind) on its own uevent, before interface 1 exists; once the
        // unreadable one is seen, it is kept out and at bind the whole device is de-authorised.
        #expect(fixture.read(fixture.interfacePath(port: 4, 1) + "/authorized") != "1", "the unreadable interface was authorised")
        #expect(fixture.read("/sys/bus/usb/drivers_probe") != "1-4:1.1")
        #expect(fixture.read(fixture.devicePath(port: 4) + "/authorized") == "0")
        let decisions = USBControlTests.decisions(events)
        #expect(decisions.count == 3)
        #expect(decisions.dropFirst().allSatisfy { USBControlTests.member($0.data, "decision") == .string("deny") && $0.isUSBFailure })
        #expect(decisions.last.map { USBControlTests.member($0.data, "whole_device") == .string("deny") } == true)
        #expect(decisions.dropFirst().allSatisfy { String(decoding: $0.data.serialized(), as: UTF8.self).contains("Permission denied") })
    }

    @Test("a bound device whose directory cannot be read at start is de-authorised, not taken for one without interfaces")
    func coldplugOfAnUnreadableDevice() throws {
        let fixture = try SysfsFixture()
        try fixture.plug(port: 2, vendor: "46f4", product: "0001", serial: "REG-0001", interfaces: USBControlTests.stick, authorizedDefault: 1)
        try fixture.publishSeqnum()
        let control = try Self.control(fixture, refusing: fixture.devicePath(port: 2))
        let events = control.start()
        #expect(fixture.read(fixture.devicePath(port: 2) + "/authorized") == "0")
        let decided = USBControlTests.decisions(events)
        #expect(decided.count == 1)
        #expect(decided.first.map { USBControlTests.member($0.data, "whole_device") == .string("deny") } == true)
        #expect(decided.first.map { USBControlTests.member($0.data, "unreadable") != nil } == true)
    }

    @Test("audit mode says would-deny for a device it could not read")
    func auditModeWouldDeny() throws {
        let fixture = try SysfsFixture()
        try fixture.plug(port: 3, vendor: "46f4", product: "0001", serial: "REG-0001", interfaces: USBControlTests.stick, authorizedDefault: 1)
        try fixture.publishSeqnum()
        let control = try Self.control(fixture, refusing: fixture.devicePath(port: 3), enforce: false)
        let decided = USBControlTests.decisions(control.start())
        #expect(decided.count == 1)
        #expect(decided.first.map { USBControlTests.member($0.data, "decision") == .string("would-deny") } == true)
        #expect(fixture.read(fixture.devicePath(port: 3) + "/authorized") != "0", "audit mode wrote")
    }

    @Test("a USB device list that cannot be read is said at start: no hub locked, nothing judged")
    func unreadableBusAtStart() throws {
        let fixture = try SysfsFixture()
        try fixture.plug(port: 2, vendor: "46f4", product: "0001", serial: "REG-0001", interfaces: USBControlTests.stick, authorizedDefault: 1)
        try fixture.publishSeqnum()
        let control = try Self.control(fixture, refusing: "/sys/bus/usb/devices")
        let events = control.start()
        let errors = events.filter { $0.type == "usb.error" }.map { String(decoding: $0.data.serialized(), as: UTF8.self) }
        #expect(errors.contains { $0.contains("no root hub was locked") && $0.contains("Permission denied") }, "\(errors)")
        #expect(USBControlTests.decisions(events).isEmpty)
        #expect(events.allSatisfy { $0.type != "usb.error" || $0.isUSBFailure })
    }
}
