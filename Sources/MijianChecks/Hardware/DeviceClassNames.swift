import MijianCore

/// Human names for the USB and PCI classes the hardware rules look for.
enum DeviceClassNames {
    /// A phrase for a USB interface whose class marks a radio, or nil.
    static func usbWireless(_ interface: USBInterface) -> String? {
        guard interface.interfaceClass == 0xE0 else { return nil }
        let what: String
        switch (interface.interfaceSubClass, interface.interfaceProtocol) {
        case (0x01, 0x01): what = "Bluetooth"
        case (0x01, 0x02): what = "UWB radio control"
        case (0x01, 0x03): what = "RNDIS: a phone or modem sharing its mobile link"
        case (0x01, 0x04): what = "Bluetooth AMP"
        case (0x02, _): what = "Wireless USB"
        default: what = "wireless controller"
        }
        return "USB interface \(interface.name) class \(interface.classTriple) (\(what))"
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

    /// Phrases for the reasons a USB device looks like a phone or tethering link.
    static func phoneReasons(_ device: USBDevice) -> [String] {
        var reasons: [String] = []
        if device.vendor == "05ac" { reasons.append("Apple vendor id 05ac") }
        if device.deviceClass == 0x06 { reasons.append("device class 06 (still image: PTP/MTP)") }
        for interface in device.interfaces {
            let at = "interface \(interface.name) \(interface.classTriple)"
            if interface.isClass(0x06) { reasons.append("\(at) still image (PTP/MTP)") }
            else if let string = interface.interfaceString, string.uppercased().contains("MTP") { reasons.append("\(at) named \"\(string)\" (MTP)") }
            if interface.isClass(0xFF, 0x42, 0x01) { reasons.append("\(at) Android Debug Bridge") }
            if interface.isClass(0xFF, 0x42, 0x03) { reasons.append("\(at) Android fastboot") }
            if interface.isClass(0xE0, 0x01, 0x03) || interface.isClass(0xEF, 0x04, 0x01) { reasons.append("\(at) RNDIS tethering") }
            if interface.isClass(0x02, 0x06) { reasons.append("\(at) CDC ECM (Ethernet over USB)") }
            if interface.isClass(0x02, 0x0D) { reasons.append("\(at) CDC NCM (Ethernet over USB)") }
            if interface.isClass(0x02, 0x0C) { reasons.append("\(at) CDC EEM (Ethernet over USB)") }
            if interface.driver == "ipheth" { reasons.append("\(at) bound to ipheth (iPhone tethering)") }
        }
        return reasons
    }
}
