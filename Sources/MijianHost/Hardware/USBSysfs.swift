import MijianCore

/// Reads one USB device or interface from sysfs, the same way for the audit's whole-bus walk and
/// for the live USB control's one device per uevent.
public enum USBSysfs {
    /// The interface at a resolved sysfs path, or nil when it vanished while being read.
    public static func interface(root: HostRoot, name: String, path: String, aliases: (String) -> [String]) -> USBInterface? {
        let modalias = root.attribute(path + "/modalias")
        var interface = USBInterface(
            name: name, sysfsPath: path, interfaceClass: hexByte(root.attribute(path + "/bInterfaceClass")),
            interfaceSubClass: hexByte(root.attribute(path + "/bInterfaceSubClass")),
            interfaceProtocol: hexByte(root.attribute(path + "/bInterfaceProtocol")),
            interfaceString: root.attribute(path + "/interface"), driver: driverName(root, path), modalias: modalias)
        if let modalias { interface.aliasMatches = aliases(modalias) }
        if interface.interfaceClass == nil, !root.exists(path) { return nil }
        return interface
    }

    /// The device at a resolved sysfs path (without its interfaces), or nil when it vanished.
    public static func device(root: HostRoot, name: String, path: String) -> USBDevice? {
        let vendor = root.attribute(path + "/idVendor")
        if vendor == nil, !root.exists(path) { return nil }
        return USBDevice(
            name: name, sysfsPath: path, vendor: hexID(vendor), product: hexID(root.attribute(path + "/idProduct")),
            serial: root.attribute(path + "/serial"), manufacturer: root.attribute(path + "/manufacturer"),
            productName: root.attribute(path + "/product"), deviceClass: hexByte(root.attribute(path + "/bDeviceClass")),
            deviceSubClass: hexByte(root.attribute(path + "/bDeviceSubClass")),
            deviceProtocol: hexByte(root.attribute(path + "/bDeviceProtocol")), driver: driverName(root, path))
    }

    /// The device at `path` with every interface directory below it (`NAME:C.I`), sorted by name;
    /// nil when the device itself vanished. Interfaces that vanish on the way are left out and named in `vanished`.
    public static func deviceWithInterfaces(
        root: HostRoot, name: String, path: String, aliases: (String) -> [String], vanished: inout [String]
    ) -> USBDevice? {
        guard var device = device(root: root, name: name, path: path) else { return nil }
        let children = (try? root.list(path)) ?? []
        for child in children where isInterfaceName(child, of: name) {
            if let interface = interface(root: root, name: child, path: path + "/" + child, aliases: aliases) {
                device.interfaces.append(interface)
            } else {
                vanished.append(path + "/" + child)
            }
        }
        return device
    }

    /// Whether `child` is an interface of device `device` (`1-3:1.0` of `1-3`, `1-0:1.0` of `usb1`).
    public static func isInterfaceName(_ child: String, of device: String) -> Bool {
        guard let colon = child.firstIndex(of: ":") else { return false }
        let prefix = child[..<colon]
        if device.hasPrefix("usb") { return prefix == "\(device.dropFirst(3))-0" }
        return prefix == device
    }

    /// The bound driver's name (the `driver` link's last component).
    public static func driverName(_ root: HostRoot, _ devicePath: String) -> String? {
        guard let target = root.readLink(devicePath + "/driver") else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }

    /// A sysfs hex byte (`08`), or nil.
    public static func hexByte(_ text: String?) -> UInt8? {
        guard let text else { return nil }
        return UInt8(text.trimmingCharacters(in: .whitespaces), radix: 16)
    }

    /// A sysfs hex id in lower case without `0x` ("" when absent).
    public static func hexID(_ text: String?) -> String {
        guard var text = text?.lowercased() else { return "" }
        if text.hasPrefix("0x") { text.removeFirst(2) }
        return text
    }
}
