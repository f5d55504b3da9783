import MijianCore

/// Reads one USB device or interface from sysfs, the same way for the audit's whole-bus walk and
/// for the live USB control's one device per uevent.
public enum USBSysfs {
    /// The interface at a resolved sysfs path, or nil when it vanished while being read. A part
    /// that could not be read (not absent: refused, looping) is named in `unreadable`.
    public static func interface(root: HostRoot, name: String, path: String, aliases: (String) -> [String]) -> USBInterface? {
        let (read, unreadable) = root.collectingFailures { root -> USBInterface? in
            let modalias = root.attribute(path + "/modalias")
            var interface = USBInterface(
                name: name, sysfsPath: path, interfaceClass: hexByte(root.attribute(path + "/bInterfaceClass")),
                interfaceSubClass: hexByte(root.attribute(path + "/bInterfaceSubClass")),
                interfaceProtocol: hexByte(root.attribute(path + "/bInterfaceProtocol")),
                interfaceString: root.attribute(path + "/interface"), driver: driverName(root, path), modalias: modalias)
            if let modalias { interface.aliasMatches = aliases(modalias) }
            return interface
        }
        guard var interface = read else { return nil }
        interface.unreadable = unreadable
        if interface.interfaceClass == nil, unreadable.isEmpty, !root.exists(path) { return nil }
        return interface
    }

    /// The device at a resolved sysfs path (without its interfaces), or nil when it vanished. A
    /// part that could not be read (not absent: refused, looping) is named in `unreadable`.
    public static func device(root: HostRoot, name: String, path: String) -> USBDevice? {
        var (device, unreadable) = root.collectingFailures { root in readDevice(root: root, name: name, path: path) }
        device.unreadable = unreadable
        if device.vendor.isEmpty, unreadable.isEmpty, !root.exists(path) { return nil }
        return device
    }

    private static func readDevice(root: HostRoot, name: String, path: String) -> USBDevice {
        let vendor = root.attribute(path + "/idVendor")
        var device = USBDevice(
            name: name, sysfsPath: path, vendor: hexID(vendor), product: hexID(root.attribute(path + "/idProduct")),
            serial: root.kernelString(path + "/serial"), manufacturer: root.attribute(path + "/manufacturer"),
            productName: root.attribute(path + "/product"), deviceClass: hexByte(root.attribute(path + "/bDeviceClass")),
            deviceSubClass: hexByte(root.attribute(path + "/bDeviceSubClass")),
            deviceProtocol: hexByte(root.attribute(path + "/bDeviceProtocol")), driver: driverName(root, path))
        device.authorized = root.attribute(path + "/authorized").map { $0 != "0" }
        if device.isRootHub { device.interfaceAuthorizedDefault = root.attribute(path + "/interface_authorized_default").flatMap { Int($0) } }
        return device
    }

    /// A device with no interface directories (de-authorised, or not configured) still has its raw
    /// descriptors in sysfs: its interfaces are read from there, so a blocked stick or phone is still
    /// seen for what it is. Nil when there is nothing to read.
    public static func descriptorInterfaces(root: HostRoot, device: USBDevice) -> [USBInterface]? {
        let bytes: [UInt8]
        do {
            bytes = try root.readBytes(device.sysfsPath + "/descriptors", limit: 1 << 16)
        } catch {
            root.noteFailure(device.sysfsPath + "/descriptors", error)
            return nil
        }
        let found = USBDescriptors.interfaces(bytes)
        guard !found.isEmpty else { return nil }
        let prefix = device.isRootHub ? "\(device.name.dropFirst(3))-0" : device.name
        return found.map { entry in
            var interface = USBInterface(
                name: "\(prefix):\(entry.configuration).\(entry.number)", sysfsPath: device.sysfsPath + "/\(prefix):\(entry.configuration).\(entry.number)",
                interfaceClass: entry.cls, interfaceSubClass: entry.subclass, interfaceProtocol: entry.proto)
            interface.fromDescriptors = true
            return interface
        }
    }

    /// The device at `path` with every interface directory below it (`NAME:C.I`), sorted by name;
    /// nil when the device itself vanished. Interfaces that vanish on the way are left out and named
    /// in `vanished`; a directory that could not be listed is in the device's `unreadable`, so "no
    /// interfaces" is never said of a device whose interfaces could not be looked at.
    public static func deviceWithInterfaces(
        root: HostRoot, name: String, path: String, aliases: (String) -> [String], vanished: inout [String]
    ) -> USBDevice? {
        guard var device = device(root: root, name: name, path: path) else { return nil }
        let children: [String]
        do {
            children = try root.list(path)
        } catch {
            if error.code == .notFound { return nil }
            device.unreadable.append(FactSource(path: path, state: .error(error.description)))
            children = []
        }
        for child in children where isInterfaceName(child, of: name) {
            if let interface = interface(root: root, name: child, path: path + "/" + child, aliases: aliases) {
                device.interfaces.append(interface)
            } else {
                vanished.append(path + "/" + child)
            }
        }
        if device.interfaces.isEmpty, vanished.isEmpty {
            let (described, unreadable) = root.collectingFailures { descriptorInterfaces(root: $0, device: device) }
            device.unreadable += unreadable
            if let described { device.interfaces = described }
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

/// The raw descriptors sysfs keeps for every USB device (`descriptors`: the device descriptor, then
/// each configuration's descriptors as the device sent them, kept even when it is de-authorised).
public enum USBDescriptors {
    /// One interface descriptor (alternate setting 0).
    public struct Entry: Sendable, Equatable {
        /// bConfigurationValue of its configuration.
        public var configuration: UInt8
        /// bInterfaceNumber.
        public var number: UInt8
        /// bInterfaceClass, bInterfaceSubClass, bInterfaceProtocol.
        public var cls: UInt8
        /// bInterfaceSubClass.
        public var subclass: UInt8
        /// bInterfaceProtocol.
        public var proto: UInt8
    }

    /// The interfaces of every configuration; malformed or truncated input ends the walk early.
    public static func interfaces(_ bytes: [UInt8]) -> [Entry] {
        var out: [Entry] = []
        var offset = 0
        var configuration: UInt8 = 0
        while offset + 2 <= bytes.count {
            let length = Int(bytes[offset])
            let type = bytes[offset + 1]
            guard length >= 2, offset + length <= bytes.count else { break }
            if type == 0x02, length >= 6 { configuration = bytes[offset + 5] }
            if type == 0x04, length >= 9, bytes[offset + 3] == 0 {
                out.append(Entry(configuration: configuration, number: bytes[offset + 2], cls: bytes[offset + 5], subclass: bytes[offset + 6], proto: bytes[offset + 7]))
            }
            offset += length
        }
        return out
    }
}
