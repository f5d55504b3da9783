import Foundation
import MijianCore
import MijianDevices
import MijianHost
import MijianTestSupport
import Testing

@Suite("USB control on a sysfs fixture") struct USBControlTests {
    static let policyYAML = """
        id: t
        version: "1"
        profile: classified
        media:
          ledger:
            - {vendor: "46f4", product: "0001", serial: "REG-0001", label: 秘-U-0001}
        usb: {mode: enforce}
        """

    static let stick = [SysfsFixture.Interface(cls: 0x08, sub: 0x06, proto: 0x50)]
    static let keyboardAndStick = [SysfsFixture.Interface(cls: 0x03, sub: 0x01, proto: 0x01), SysfsFixture.Interface(cls: 0x08, sub: 0x06, proto: 0x50)]

    static func control(_ fixture: SysfsFixture, enforce: Bool = true) throws -> USBControl {
        USBControl(.init(root: HostRoot(path: fixture.path), policy: try TestSupport.policy(policyYAML), enforce: enforce, knowledge: .none))
    }

    static func run(_ control: USBControl, _ events: [UEvent]) -> [Event] {
        events.flatMap { control.handle($0, receivedAt: Monotonic.now(), source: .replay) }
    }

    static func member(_ json: JSONValue, _ key: String) -> JSONValue? {
        guard case .object(let members) = json else { return nil }
        return members.first { $0.0 == key }?.1
    }

    static func decisions(_ events: [Event]) -> [Event] { events.filter { $0.type == "usb.decision" } }

    @Test func startLocksRootHubsAndColdplugJudgesWhatIsPresent() throws {
        let fixture = try SysfsFixture()
        try fixture.plug(port: 2, vendor: "46f4", product: "0001", serial: "OTHER", interfaces: Self.stick, authorizedDefault: 1)
        try fixture.publishSeqnum()
        let control = try Self.control(fixture)
        let events = control.start()
        #expect(fixture.read("/sys\(SysfsFixture.controller)/usb1/interface_authorized_default") == "0")
        #expect(events.first?.type == "usb.enforcement")
        let decided = Self.decisions(events)
        #expect(decided.count == 1)
        #expect(Self.member(decided[0].data, "decision") == .string("deny"))
        #expect(Self.member(decided[0].data, "source") == .string("coldplug"))
        // An interface that was bound before the service started is unbound, and the device, all denied, de-authorised.
        #expect(fixture.read(fixture.interfacePath(port: 2, 0) + "/authorized") == "0")
        #expect(fixture.read(fixture.devicePath(port: 2) + "/authorized") == "0")
        #expect(events.allSatisfy { $0.type != "usb.decision" || $0.isUSBFailure })
    }

    @Test func unregisteredStickNeverAuthorisedAndDeviceDeauthorised() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture)
        _ = control.start()
        let stream = try fixture.plug(port: 3, vendor: "46f4", product: "0001", serial: "NOT-IN-LEDGER", interfaces: Self.stick)
        let events = Self.run(control, stream)
        #expect(events.map(\.type) == ["usb.arrival", "usb.decision", "usb.decision"])
        #expect(fixture.read(fixture.interfacePath(port: 3, 0) + "/authorized") == "0")
        #expect(fixture.read(fixture.devicePath(port: 3) + "/authorized") == "0")
        #expect(fixture.read("/sys/bus/usb/drivers_probe") == "", "nothing was probed")
        let whole = Self.decisions(events)[1]
        #expect(Self.member(whole.data, "scope") == .string("device"))
        #expect(Self.member(whole.data, "whole_device") == .string("deny"))
        guard case .int(let latency)? = Self.member(whole.data, "latency_us") else {
            Issue.record("no latency")
            return
        }
        #expect(latency >= 0)
    }

    @Test func registeredStickAuthorisedAndProbed() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture)
        _ = control.start()
        let events = Self.run(control, try fixture.plug(port: 4, vendor: "46f4", product: "0001", serial: "REG-0001", interfaces: Self.stick))
        #expect(fixture.read(fixture.interfacePath(port: 4, 0) + "/authorized") == "1")
        #expect(fixture.read("/sys/bus/usb/drivers_probe") == "1-4:1.0")
        #expect(fixture.read(fixture.devicePath(port: 4) + "/authorized") == "1")
        let decision = Self.decisions(events)[0]
        #expect(Self.member(decision.data, "decision") == .string("allow"))
        #expect(!decision.isUSBFailure)
        #expect(Self.member(decision.data, "ledger").flatMap { Self.member($0, "label") } == .string("秘-U-0001"))
    }

    @Test func sameVendorAndProductWithAnotherSerialDenied() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture)
        _ = control.start()
        let events = Self.run(control, try fixture.plug(port: 5, vendor: "46f4", product: "0001", serial: "REG-0002", interfaces: Self.stick))
        #expect(fixture.read(fixture.interfacePath(port: 5, 0) + "/authorized") == "0")
        #expect(Self.member(Self.decisions(events)[0].data, "decision") == .string("deny"))
    }

    @Test func deviceWithoutSerialDenied() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture)
        _ = control.start()
        let events = Self.run(control, try fixture.plug(port: 6, vendor: "46f4", product: "0001", serial: nil, interfaces: Self.stick))
        let decision = Self.decisions(events)[0]
        #expect(Self.member(decision.data, "decision") == .string("deny"))
        #expect(String(decoding: decision.data.serialized(), as: UTF8.self).contains("no serial"))
    }

    @Test func compositeKeepsItsKeyboardAndLosesItsStorage() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture)
        _ = control.start()
        _ = Self.run(control, try fixture.plug(port: 7, vendor: "1234", product: "5678", serial: "BADUSB", interfaces: Self.keyboardAndStick))
        #expect(fixture.read(fixture.interfacePath(port: 7, 0) + "/authorized") == "1")
        #expect(fixture.read("/sys/bus/usb/drivers_probe") == "1-7:1.0")
        #expect(fixture.read(fixture.interfacePath(port: 7, 1) + "/authorized") == "0")
        #expect(fixture.read(fixture.devicePath(port: 7) + "/authorized") == "1", "the keyboard keeps the device")
    }

    @Test func auditModeWritesNothingAndSaysWouldDeny() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture, enforce: false)
        let start = control.start()
        #expect(!start.contains { $0.type == "usb.enforcement" })
        #expect(fixture.read("/sys\(SysfsFixture.controller)/usb1/interface_authorized_default") == "1")
        let events = Self.run(control, try fixture.plug(port: 3, vendor: "46f4", product: "0001", serial: "X", interfaces: Self.stick, authorizedDefault: 1))
        #expect(fixture.read(fixture.interfacePath(port: 3, 0) + "/authorized") == "1")
        #expect(Self.decisions(events).allSatisfy { Self.member($0.data, "decision") == .string("would-deny") })
        #expect(Self.decisions(events).allSatisfy { Self.member($0.data, "writes") == .array([]) })
    }

    @Test func removalReportsTheDeviceItRemembers() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture)
        _ = control.start()
        _ = Self.run(control, try fixture.plug(port: 2, vendor: "46f4", product: "0001", serial: "REG-0001", interfaces: Self.stick))
        let events = Self.run(control, try fixture.unplug(port: 2))
        #expect(events.map(\.type) == ["usb.removal"])
        #expect(String(decoding: events[0].data.serialized(), as: UTF8.self).contains("REG-0001"))
        #expect(control.trackedDevices.allSatisfy { !$0.hasSuffix("/1-2") })
    }

    @Test func coldplugAndEventsDoNotJudgeADeviceTwice() throws {
        let fixture = try SysfsFixture()
        // Sent before the walk began: the seqnum barrier drops them.
        let early = try fixture.plug(port: 2, vendor: "46f4", product: "0001", serial: "REG-0001", interfaces: Self.stick)
        try fixture.publishSeqnum()
        let control = try Self.control(fixture)
        let start = control.start()
        #expect(Self.decisions(start).count == 1)
        #expect(Self.run(control, early).isEmpty)
        // Arrived during the walk (after the barrier was read): seen by the walk, its adds are duplicates.
        let during = try fixture.plug(port: 3, vendor: "46f4", product: "0001", serial: "X", interfaces: Self.stick)
        let again = control.resync(reason: "test")
        #expect(Self.decisions(again).count == 1)
        let before = control.duplicatesSkipped
        let replayed = Self.run(control, during)
        #expect(Self.decisions(replayed).filter { Self.member($0.data, "scope") == .string("interface") }.isEmpty)
        #expect(control.duplicatesSkipped > before)
    }

    @Test func aDeviceThatVanishesMidDecisionIsAnErrorEventNotAnAllow() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture)
        _ = control.start()
        var stream = try fixture.plug(port: 8, vendor: "46f4", product: "0001", serial: "X", interfaces: Self.stick)
        _ = try fixture.unplug(port: 8)
        stream.removeLast()
        let events = Self.run(control, stream)
        #expect(events.map(\.type) == ["usb.error", "usb.error"])
        #expect(events.allSatisfy { $0.isUSBFailure })
        #expect(String(decoding: events[1].data.serialized(), as: UTF8.self).contains("\"errno\":\(ENOENT)"))
        // A write the kernel refuses is recorded with its errno.
        let refused = SysfsWriter(root: HostRoot(path: fixture.path)).write(fixture.interfacePath(port: 8, 0) + "/authorized", "0")
        #expect(refused.errno == ENOENT)
        #expect(!refused.succeeded)
    }

    @Test func anOverflowIsFollowedByAWalkThatMissesNothing() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture)
        _ = control.start()
        let first = try fixture.plug(port: 2, vendor: "46f4", product: "0001", serial: "REG-0001", interfaces: Self.stick)
        _ = Self.run(control, first)
        // The storm: these messages never reach us.
        _ = try fixture.plug(port: 3, vendor: "46f4", product: "0001", serial: "LOST-1", interfaces: Self.stick)
        _ = try fixture.plug(port: 4, vendor: "1234", product: "5678", serial: "LOST-2", interfaces: Self.keyboardAndStick)
        _ = try fixture.unplug(port: 2)
        let events = control.resync(reason: "uevent socket overflow (ENOBUFS)")
        let resync = events.first { $0.type == "usb.resync" }
        #expect(resync.flatMap { Self.member($0.data, "newly_judged") } == .int(2))
        #expect(resync.flatMap { Self.member($0.data, "removed_unseen") } == .int(1))
        #expect(events.contains { $0.type == "usb.removal" })
        #expect(fixture.read(fixture.interfacePath(port: 3, 0) + "/authorized") == "0")
        #expect(fixture.read(fixture.interfacePath(port: 4, 0) + "/authorized") == "1")
        #expect(fixture.read(fixture.interfacePath(port: 4, 1) + "/authorized") == "0")
        #expect(Self.decisions(events).allSatisfy { Self.member($0.data, "source") == .string("resync") })
    }

    @Test func aRecordedStreamInTheKernelsFormatDrivesTheSamePath() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture)
        _ = control.start()
        let stream = try fixture.plug(port: 9, vendor: "46f4", product: "0001", serial: "X", interfaces: Self.keyboardAndStick)
        var recorded: [UInt8] = []
        for event in stream { recorded += event.kernelMessage() + [0] }
        let parsed = UEvent.parseStream(recorded)
        #expect(parsed == stream)
        let events = Self.run(control, parsed)
        #expect(fixture.read(fixture.interfacePath(port: 9, 1) + "/authorized") == "0")
        #expect(Self.decisions(events).count == 3)
    }

    @Test func aReloadedPolicyJudgesPresentDevicesAgain() throws {
        let fixture = try SysfsFixture()
        let control = try Self.control(fixture)
        _ = control.start()
        _ = Self.run(control, try fixture.plug(port: 2, vendor: "46f4", product: "0001", serial: "REG-0001", interfaces: Self.keyboardAndStick))
        #expect(fixture.read(fixture.interfacePath(port: 2, 1) + "/authorized") == "1")
        let struck = try TestSupport.policy(Self.policyYAML.replacingOccurrences(of: "REG-0001", with: "REG-0009"))
        let events = control.reload(policy: struck, enforce: true)
        #expect(fixture.read(fixture.interfacePath(port: 2, 1) + "/authorized") == "0", "struck from the ledger: unbound at once")
        #expect(fixture.read(fixture.interfacePath(port: 2, 0) + "/authorized") == "1", "the keyboard stays")
        #expect(events.contains { $0.type == "usb.resync" })
        #expect(Self.decisions(events).count == 1)
    }

    @Test func aDeauthorisedDeviceIsStillSeenForWhatItIsAndNotWrittenAgain() throws {
        let fixture = try SysfsFixture()
        try fixture.plug(port: 2, vendor: "46f4", product: "0001", serial: "NOT-REGISTERED", interfaces: Self.stick)
        try fixture.deauthorize(port: 2)
        let control = try Self.control(fixture)
        let events = control.start()
        let decision = Self.decisions(events)
        #expect(decision.count == 1)
        #expect(decision.first.flatMap { Self.member($0.data, "decision") } == .string("deny"))
        #expect(decision.first.flatMap { Self.member($0.data, "writes") } == .array([]), "nothing to write: it is already kept out")
        let text = decision.first.map { String(decoding: $0.data.serialized(), as: UTF8.self) } ?? ""
        #expect(text.contains("\"class\":\"08/06/50\""))
    }

    @Test func descriptorsParseLikeTheKernelKeepsThem() {
        let bytes = SysfsFixture.descriptors(vendor: "0781", product: "5583", interfaces: Self.keyboardAndStick)
        let entries = USBDescriptors.interfaces(bytes)
        #expect(entries.map(\.cls) == [0x03, 0x08])
        #expect(entries.map(\.number) == [0, 1])
        #expect(entries.allSatisfy { $0.configuration == 1 })
        // Truncated or nonsense input ends the walk without a crash.
        #expect(USBDescriptors.interfaces(Array(bytes.prefix(30))).isEmpty)
        #expect(USBDescriptors.interfaces([0, 0, 0]).isEmpty)
        #expect(USBDescriptors.interfaces([255, 4]).isEmpty)
    }

    @Test func parsesTheKernelsMessageFormat() {
        let raw = Array("add@/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0\0SUBSYSTEM=usb\0DEVTYPE=usb_interface\0PRODUCT=46f4/1/0\0INTERFACE=8/6/80\0SEQNUM=4711\0".utf8)
        let event = UEvent.parse(raw)
        #expect(event?.action == "add")
        #expect(event?.devtype == "usb_interface")
        #expect(event?.seqnum == 4711)
        #expect(event?.kernelName == "1-3:1.0")
        #expect(event?.properties["INTERFACE"] == "8/6/80")
        #expect(UEvent.parse(Array("add@/x\0ACTION=add\0".utf8)) == nil, "no DEVPATH or SUBSYSTEM")
    }
}
