import MijianCore

/// Human names for the USB and PCI classes the hardware rules look for.
enum DeviceClassNames {
    /// A phrase for a USB interface the classifier calls a radio (Bluetooth or another wireless
    /// controller), or nil: the live control's table, so the audit and `mijian run` judge alike.
    static func usbWireless(_ interface: USBInterface, of device: USBDevice, family: (String) -> DriverFamily?) -> String? {
        let classification = USBClassifier.classify(interface, of: device, family: family)
        if classification.kind == .bluetooth || classification.kind == .wireless {
            return "USB interface \(interface.name) \(classification.reason)"
        }
        // Class e0 is the wireless controller class whatever else the interface is (RNDIS over
        // e0/01/03 is a phone sharing its mobile link: usb.phone judges it too).
        guard interface.interfaceClass == 0xE0 else { return nil }
        return "USB interface \(interface.name) class \(interface.classTriple) (wireless controller class; \(classification.kind.rawValue): \(classification.reason))"
    }

    /// A phrase for a PCI class that marks a radio, or nil.
    static func pciWireless(_ device: PCIDevice) -> String? {
        guard let code = device.classAndSubclass else { return nil }
        let text = "0x" + HexText.hex(UInt32(code), digits: 4)
        if code >> 8 == 0x0D {
            let what: String
            switch code & 0xFF {
            case 0x00: what = "IrDA"
            case 0x01: what = "consumer IR"
            case 0x10: what = "RF controller"
            case 0x11: what = "Bluetooth"
            case 0x12: what = "broadband"
            case 0x20, 0x21: what = "802.11"
            default: what = "wireless controller"
            }
            return "PCI class \(text) (\(what))"
        }
        if code == 0x0280 { return "PCI class \(text) (network controller \"other\", the class Wi-Fi cards report)" }
        return nil
    }

    /// Phrases for the interfaces the classifier calls a phone or a tethering link (the kinds of
    /// `usb.phone`), and the device class still image.
    static func phoneReasons(_ device: USBDevice, family: (String) -> DriverFamily?) -> [String] {
        var reasons: [String] = []
        if device.deviceClass == 0x06 { reasons.append("device class 06 (still image: PTP/MTP)") }
        for interface in device.interfaces {
            let classification = USBClassifier.classify(interface, of: device, family: family)
            guard classification.kind.rule.id == RuleCatalogue.usbPhone.id else { continue }
            reasons.append("interface \(interface.name) \(classification.kind.rawValue): \(classification.reason)")
        }
        return reasons
    }
}
