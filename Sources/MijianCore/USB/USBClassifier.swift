/// What one USB interface is, for the policy: decided from its class triple, its interface string,
/// the device's vendor, and for vendor-specific interfaces the drivers `modules.alias` would load.
public enum InterfaceKind: String, Sendable, Equatable, CaseIterable {
    case storage, hid, hub, printer, audio, video, smartcard
    /// Bluetooth (e0/01/01, e0/01/04) or a vendor interface a Bluetooth driver claims.
    case bluetooth
    /// Any other wireless controller, or a vendor interface a Wi-Fi, WWAN, NFC or IrDA driver claims.
    case wireless
    /// RNDIS (e0/01/03, ef/04/01): a phone sharing its mobile link.
    case rndis
    /// CDC networking (02/06 ECM, 02/0c EEM, 02/0d NCM, 02/0e MBIM) and its data interface (0a):
    /// Ethernet over USB, as phones tether.
    case cdc
    /// CDC communications that are not networking (02/02 ACM and the other subclasses) and their
    /// data interface (0a): a modem, a serial line. Judged with the other channels.
    case modem
    /// A vendor interface a USB-network driver claims.
    case usbnet
    /// MTP/PTP (06, or an interface string "MTP").
    case mtp
    /// Android Debug Bridge (ff/42/01) or fastboot (ff/42/03).
    case adb
    /// A non-HID interface of an Apple device (vendor 05ac): an iPhone or iPad.
    case apple
    /// Anything else (vendor-specific with no known driver, diagnostic, billboard, …).
    case other

    /// The rule whose item a denial of this kind serves.
    public var rule: RuleInfo {
        switch self {
        case .storage: return RuleCatalogue.usbStorage
        case .bluetooth, .wireless: return RuleCatalogue.wirelessHardware
        case .rndis, .cdc, .usbnet, .mtp, .adb, .apple: return RuleCatalogue.usbPhone
        case .printer: return RuleCatalogue.printDevices
        case .modem: return RuleCatalogue.hardwareChannels
        case .hid, .hub, .audio, .video, .smartcard, .other: return RuleCatalogue.usbControl
        }
    }

    /// The `usb.allow` kind that may allow it, or nil when no kind can (storage, radios, phones).
    public var allowKind: Policy.USBAllowKind? {
        switch self {
        case .hid: return .hid
        case .hub: return .hub
        case .printer: return .printer
        case .audio: return .audio
        case .video: return .video
        case .smartcard: return .smartcard
        case .other: return .other
        case .storage, .bluetooth, .wireless, .rndis, .cdc, .modem, .usbnet, .mtp, .adb, .apple: return nil
        }
    }
}

/// An interface's kind and the words that say why.
public struct InterfaceClassification: Sendable, Equatable {
    /// The kind.
    public var kind: InterfaceKind
    /// Why, for people: `class 08/06/50 (mass storage, SCSI, bulk-only)`.
    public var reason: String

    /// Makes a classification.
    public init(kind: InterfaceKind, reason: String) {
        self.kind = kind
        self.reason = reason
    }
}

/// Per-interface classification (never per device: a keyboard with a storage interface is two
/// things). The one table: the audit's rules, `mijian devices` and the live control all ask it.
public enum USBClassifier {
    /// Classifies one interface of `device`; `family` names a module's driver family.
    public static func classify(
        _ interface: USBInterface, of device: USBDevice, family: (String) -> DriverFamily?
    ) -> InterfaceClassification {
        let triple = "class \(interface.classTriple)"
        let base = classify(interface, of: device, triple: triple, family: family)
        // An Apple device's non-HID interfaces are a phone or tablet whatever they claim to be.
        if device.vendor == "05ac", base.kind != .hid, base.kind != .hub {
            return InterfaceClassification(kind: .apple, reason: "\(triple) of an Apple device (vendor 05ac): iPhone/iPad")
        }
        return base
    }

    /// CDC communications subclasses that carry a network (ECM, EEM, NCM, MBIM); the others are modems and serial lines.
    static let cdcNetworking: Set<UInt8> = [0x06, 0x0C, 0x0D, 0x0E]

    private static func classify(
        _ interface: USBInterface, of device: USBDevice, triple: String, family: (String) -> DriverFamily?
    ) -> InterfaceClassification {
        if let string = interface.interfaceString, string.uppercased().contains("MTP") {
            return InterfaceClassification(kind: .mtp, reason: "\(triple) named \"\(string)\" (MTP)")
        }
        guard let cls = interface.interfaceClass else {
            return InterfaceClassification(kind: .other, reason: "class unreadable")
        }
        let sub = interface.interfaceSubClass
        let proto = interface.interfaceProtocol
        switch cls {
        case 0x08: return InterfaceClassification(kind: .storage, reason: "\(triple) (mass storage\(sub == 0x06 && proto == 0x62 ? ", UAS" : ""))")
        case 0x03: return InterfaceClassification(kind: .hid, reason: "\(triple) (HID)")
        case 0x09: return InterfaceClassification(kind: .hub, reason: "\(triple) (hub)")
        case 0x07: return InterfaceClassification(kind: .printer, reason: "\(triple) (printer)")
        case 0x01: return InterfaceClassification(kind: .audio, reason: "\(triple) (audio)")
        case 0x0E: return InterfaceClassification(kind: .video, reason: "\(triple) (video)")
        case 0x0B: return InterfaceClassification(kind: .smartcard, reason: "\(triple) (smart card)")
        case 0x06: return InterfaceClassification(kind: .mtp, reason: "\(triple) (still image: PTP/MTP)")
        case 0x02:
            if let sub, cdcNetworking.contains(sub) {
                return InterfaceClassification(kind: .cdc, reason: "\(triple) (CDC \(cdcName(sub)): Ethernet over USB)")
            }
            return InterfaceClassification(kind: .modem, reason: "\(triple) (CDC communications \(sub.map { cdcName($0) } ?? "?"): modem or serial line)")
        case 0x0A:
            // A data interface carries what its communications interface says it carries; when
            // no communications interface could be read, what it carries is not known.
            let communications = device.interfaces.filter { $0.interfaceClass == 0x02 }
            if communications.isEmpty, device.interfaces.contains(where: { $0.interfaceClass == nil }) {
                return InterfaceClassification(
                    kind: .other, reason: "\(triple) (CDC data whose communications interface could not be read: what it carries is unknown)")
            }
            let modem = communications.contains { !cdcNetworking.contains($0.interfaceSubClass ?? 0xFF) }
            return modem
                ? InterfaceClassification(kind: .modem, reason: "\(triple) (CDC data of a modem or serial line)")
                : InterfaceClassification(kind: .cdc, reason: "\(triple) (CDC data)")
        case 0xE0:
            switch (sub, proto) {
            case (0x01, 0x01), (0x01, 0x04): return InterfaceClassification(kind: .bluetooth, reason: "\(triple) (Bluetooth)")
            case (0x01, 0x03): return InterfaceClassification(kind: .rndis, reason: "\(triple) (RNDIS: a phone sharing its mobile link)")
            default: return InterfaceClassification(kind: .wireless, reason: "\(triple) (wireless controller)")
            }
        case 0xEF where sub == 0x04 && proto == 0x01:
            return InterfaceClassification(kind: .rndis, reason: "\(triple) (RNDIS over misc class)")
        case 0xFF where sub == 0x42 && (proto == 0x01 || proto == 0x03):
            return InterfaceClassification(kind: .adb, reason: "\(triple) (Android \(proto == 0x01 ? "Debug Bridge" : "fastboot"))")
        default: break
        }
        // Vendor-specific and everything else: what driver would the kernel bind?
        var families: [(String, DriverFamily)] = []
        for name in ([interface.driver].compactMap { $0 } + interface.aliasMatches) {
            if let found = family(name), !families.contains(where: { $0.0 == name }) { families.append((name, found)) }
        }
        if let (name, found) = families.first(where: { $0.1.isWireless }) {
            let kind: InterfaceKind = found == .bluetooth ? .bluetooth : .wireless
            return InterfaceClassification(kind: kind, reason: "\(triple) claimed by \(name) (\(found.label))")
        }
        if let (name, _) = families.first(where: { $0.1 == .usbnet }) {
            return InterfaceClassification(kind: .usbnet, reason: "\(triple) claimed by \(name) (USB networking: tethering)")
        }
        if let (name, _) = families.first(where: { $0.1 == .storage }) {
            return InterfaceClassification(kind: .storage, reason: "\(triple) claimed by \(name) (USB storage)")
        }
        let drivers = ([interface.driver].compactMap { $0 } + interface.aliasMatches)
        return InterfaceClassification(
            kind: .other, reason: "\(triple)" + (drivers.isEmpty ? " (no known driver)" : " (drivers: \(drivers.joined(separator: ", ")))"))
    }

    /// The name of a CDC communications subclass.
    static func cdcName(_ sub: UInt8) -> String {
        switch sub {
        case 0x01: "direct line"
        case 0x02: "ACM"
        case 0x03: "telephone"
        case 0x04: "multi-channel"
        case 0x05: "CAPI"
        case 0x06: "ECM"
        case 0x07: "ATM"
        case 0x08: "wireless handset"
        case 0x09: "device management"
        case 0x0A: "mobile direct line"
        case 0x0B: "OBEX"
        case 0x0C: "EEM"
        case 0x0D: "NCM"
        case 0x0E: "MBIM"
        default: "subclass " + HexText.hex(UInt32(sub), digits: 2)
        }
    }
}
