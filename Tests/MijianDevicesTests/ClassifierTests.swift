import MijianCore
import MijianDevices
import MijianTestSupport
import Testing

@Suite("USB classifier and decisions") struct ClassifierTests {
    static func interface(_ cls: UInt8?, _ sub: UInt8?, _ proto: UInt8?, string: String? = nil, driver: String? = nil, aliases: [String] = []) -> USBInterface {
        USBInterface(name: "1-2:1.0", sysfsPath: "/sys/devices/x/1-2/1-2:1.0", interfaceClass: cls, interfaceSubClass: sub, interfaceProtocol: proto,
                     interfaceString: string, driver: driver, aliasMatches: aliases)
    }

    static func device(vendor: String = "0781", product: String = "5583", serial: String? = "S1", _ interfaces: [USBInterface]) -> USBDevice {
        USBDevice(name: "1-2", sysfsPath: "/sys/devices/x/1-2", vendor: vendor, product: product, serial: serial, interfaces: interfaces)
    }

    static func kind(_ interface: USBInterface, vendor: String = "0781") -> InterfaceKind {
        USBClassifier.classify(interface, of: device(vendor: vendor, [interface]), family: { DriverFamily.classify(name: $0) }).kind
    }

    @Test("every class of the table", arguments: [
        ((UInt8(0x08), UInt8(0x06), UInt8(0x50)), InterfaceKind.storage),
        ((0x08, 0x06, 0x62), .storage), ((0x08, 0x01, 0x00), .storage), ((0x08, 0x05, 0x00), .storage),
        ((0x03, 0x01, 0x01), .hid), ((0x09, 0x00, 0x00), .hub), ((0x07, 0x01, 0x02), .printer), ((0x01, 0x01, 0x00), .audio),
        ((0x0E, 0x01, 0x00), .video), ((0x0B, 0x00, 0x00), .smartcard), ((0xE0, 0x01, 0x01), .bluetooth), ((0xE0, 0x01, 0x04), .bluetooth),
        ((0xE0, 0x01, 0x03), .rndis), ((0xEF, 0x04, 0x01), .rndis), ((0xE0, 0x02, 0x01), .wireless), ((0x02, 0x06, 0x00), .cdc),
        ((0x02, 0x0D, 0x00), .cdc), ((0x0A, 0x00, 0x00), .cdc), ((0x06, 0x01, 0x01), .mtp), ((0xFF, 0x42, 0x01), .adb),
        ((0xFF, 0x42, 0x03), .adb), ((0xFF, 0xFF, 0xFF), .other), ((0xDC, 0x01, 0x01), .other), ((0xEF, 0x02, 0x01), .other),
    ] as [((UInt8, UInt8, UInt8), InterfaceKind)])
    func table(triple: (UInt8, UInt8, UInt8), expected: InterfaceKind) {
        #expect(Self.kind(Self.interface(triple.0, triple.1, triple.2)) == expected)
    }

    @Test func mtpByInterfaceStringAndAppleByVendor() {
        #expect(Self.kind(Self.interface(0xFF, 0xFF, 0x00, string: "MTP")) == .mtp)
        #expect(Self.kind(Self.interface(0xFF, 0xFE, 0x02), vendor: "05ac") == .apple)
        // An Apple keyboard's HID interface stays a keyboard.
        #expect(Self.kind(Self.interface(0x03, 0x01, 0x01), vendor: "05ac") == .hid)
    }

    @Test func vendorSpecificInterfacesByTheDriverTheKernelWouldBind() {
        #expect(Self.kind(Self.interface(0xFF, 0xFF, 0xFF, aliases: ["rtl8xxxu"])) == .wireless)
        #expect(Self.kind(Self.interface(0xFF, 0xFF, 0xFF, aliases: ["btusb"])) == .bluetooth)
        #expect(Self.kind(Self.interface(0xFF, 0xFF, 0xFF, aliases: ["qmi_wwan"])) == .wireless)
        #expect(Self.kind(Self.interface(0xFF, 0x00, 0x00, aliases: ["cdc_ether"])) == .usbnet)
        #expect(Self.kind(Self.interface(0xFF, 0x00, 0x00, driver: "ums_realtek")) == .storage)
        #expect(Self.kind(Self.interface(0xFF, 0x00, 0x00, aliases: ["ftdi_sio"])) == .other)
        #expect(Self.kind(Self.interface(nil, nil, nil)) == .other)
    }

    static let ledgerPolicy = """
        id: t
        version: "1"
        profile: classified
        media:
          ledger:
            - {vendor: "0781", product: "5583", serial: "4C530001", label: 秘-U-0012}
        usb: {mode: enforce}
        """

    static func decide(_ device: USBDevice, yaml: String = ledgerPolicy, enforce: Bool = true) throws -> DeviceDecision {
        USBPolicyDecider.decide(device, policy: try TestSupport.policy(yaml), enforce: enforce, family: { DriverFamily.classify(name: $0) })
    }

    @Test func registeredStickAllowedOtherSerialAndNoSerialDenied() throws {
        let storage = Self.interface(0x08, 0x06, 0x50)
        let registered = try Self.decide(Self.device(serial: "4C530001", [storage]))
        #expect(registered.verdict == .allow)
        #expect(registered.ledgerEntry?.label == "秘-U-0012")
        let other = try Self.decide(Self.device(serial: "4C530002", [storage]))
        #expect(other.verdict == .deny)
        #expect(other.interfaces[0].reason.contains("4C530002 is not in the media ledger"))
        #expect(other.wholeDevice == .deny)
        let noSerial = try Self.decide(Self.device(serial: nil, [storage]))
        #expect(noSerial.verdict == .deny)
        #expect(noSerial.interfaces[0].reason.contains("no serial"))
        let emptySerial = try Self.decide(Self.device(serial: "", [storage]))
        #expect(emptySerial.verdict == .deny)
        let otherProduct = try Self.decide(Self.device(product: "5584", serial: "4C530001", [storage]))
        #expect(otherProduct.verdict == .deny)
    }

    @Test func compositeKeyboardAndStorageIsJudgedInterfaceByInterface() throws {
        let decision = try Self.decide(Self.device(serial: "X", [Self.interface(0x03, 0x01, 0x01), Self.interface(0x08, 0x06, 0x50)]))
        #expect(decision.interfaces.map(\.verdict) == [.allow, .deny])
        #expect(decision.verdict == .deny)
        #expect(decision.wholeDevice == .allow, "the keyboard keeps the device authorised")
        #expect(decision.interfaces[1].rule == "usb.storage")
    }

    @Test func auditModeSaysWouldDeny() throws {
        let decision = try Self.decide(Self.device(serial: "X", [Self.interface(0x08, 0x06, 0x50)]), enforce: false)
        #expect(decision.verdict == .wouldDeny)
        #expect(decision.wholeDevice == .wouldDeny)
    }

    @Test func radiosAndPhonesAreDeniedWhateverUsbAllowSays() throws {
        let policy = Self.ledgerPolicy.replacingOccurrences(
            of: "usb: {mode: enforce}", with: "usb: {mode: enforce, allow: [hid, hub, printer, audio, video, smartcard, other]}")
        for triple: (UInt8, UInt8, UInt8) in [(0xE0, 0x01, 0x01), (0xE0, 0x01, 0x03), (0x02, 0x06, 0x00), (0x06, 0x01, 0x01), (0xFF, 0x42, 0x01)] {
            let decision = try Self.decide(Self.device([Self.interface(triple.0, triple.1, triple.2)]), yaml: policy)
            #expect(decision.verdict == .deny, "\(triple)")
        }
        let printer = try Self.decide(Self.device([Self.interface(0x07, 0x01, 0x02)]), yaml: policy)
        #expect(printer.verdict == .allow)
        let printerDefault = try Self.decide(Self.device([Self.interface(0x07, 0x01, 0x02)]))
        #expect(printerDefault.verdict == .deny)
        #expect(printerDefault.interfaces[0].rule == "print.devices")
    }

    @Test func usbAllowRejectsStorageAndUnknownKindsWithTheLine() throws {
        let bad = """
            id: t
            version: "1"
            profile: classified
            usb:
              mode: enforce
              allow: [hid, storage]
            """
        #expect(throws: MijianError.self) { try TestSupport.policy(bad) }
        do {
            _ = try TestSupport.policy(bad)
        } catch let error as MijianError {
            #expect(error.description.contains("test.yaml:6"), "\(error)")
            #expect(error.description.contains("usb.allow[1]"), "\(error)")
            #expect(error.description.contains("media.ledger"), "\(error)")
        }
        let unknown = bad.replacingOccurrences(of: "storage", with: "toaster")
        do {
            _ = try TestSupport.policy(unknown)
            Issue.record("an unknown kind was accepted")
        } catch let error as MijianError {
            #expect(error.description.contains("not a kind"), "\(error)")
        }
    }
}
