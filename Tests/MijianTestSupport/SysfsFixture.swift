import Foundation
import MijianCore
import MijianDevices

/// A sysfs tree laid out as the kernel lays out USB (Documentation/ABI/testing/sysfs-bus-usb,
/// drivers/usb/core/sysfs.c): devices under `/sys/devices/pci0000:00/0000:00:14.0/usbN`, each
/// interface a directory `B-P:C.I` below its device, `/sys/bus/usb/devices/*` symbolic links to
/// them, `/sys/bus/usb/drivers_probe`, and `/sys/kernel/uevent_seqnum`.
public final class SysfsFixture {
    /// One interface's class triple and string.
    public struct Interface: Sendable {
        public var cls: UInt8
        public var sub: UInt8
        public var proto: UInt8
        public var string: String?
        /// Makes an interface description.
        public init(cls: UInt8, sub: UInt8, proto: UInt8, string: String? = nil) {
            self.cls = cls
            self.sub = sub
            self.proto = proto
            self.string = string
        }
    }

    public let root: URL
    public private(set) var seqnum: UInt64 = 1000
    public static let controller = "/devices/pci0000:00/0000:00:14.0"

    public init() throws {
        root = try TestSupport.temporaryDirectory("mijian-sysfs")
        try mkdir("/sys/bus/usb/devices")
        try mkdir("/sys/kernel")
        try write("/sys/bus/usb/drivers_probe", "")
        try write("/sys/kernel/uevent_seqnum", "\(seqnum)\n")
        try addRootHub(bus: 1)
    }

    public var path: String { root.path }

    public func mkdir(_ hostPath: String) throws {
        try FileManager.default.createDirectory(at: root.appendingPathComponent(String(hostPath.dropFirst())), withIntermediateDirectories: true)
    }

    public func write(_ hostPath: String, _ text: String) throws {
        try Data(text.utf8).write(to: root.appendingPathComponent(String(hostPath.dropFirst())))
    }

    public func read(_ hostPath: String) -> String? {
        (try? String(contentsOf: root.appendingPathComponent(String(hostPath.dropFirst())), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func remove(_ hostPath: String) throws {
        try FileManager.default.removeItem(at: root.appendingPathComponent(String(hostPath.dropFirst())))
    }

    private func link(_ name: String, to devpath: String) throws {
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent("sys/bus/usb/devices/\(name)").path, withDestinationPath: "../../../devices" + devpath.dropFirst("/devices".count))
    }

    public func addRootHub(bus: Int) throws {
        let devpath = "\(Self.controller)/usb\(bus)"
        let path = "/sys" + devpath
        try mkdir(path)
        for (key, value) in [("idVendor", "1d6b"), ("idProduct", "0002"), ("bDeviceClass", "09"), ("bDeviceSubClass", "00"), ("bDeviceProtocol", "01"),
                             ("authorized", "1"), ("authorized_default", "1"), ("interface_authorized_default", "1"), ("product", "xHCI Host Controller")] {
            try write("\(path)/\(key)", value + "\n")
        }
        try link("usb\(bus)", to: devpath)
        let interface = "\(path)/\(bus)-0:1.0"
        try mkdir(interface)
        for (key, value) in [("bInterfaceClass", "09"), ("bInterfaceSubClass", "00"), ("bInterfaceProtocol", "00"), ("authorized", "1")] {
            try write("\(interface)/\(key)", value + "\n")
        }
        try link("\(bus)-0:1.0", to: devpath + "/\(bus)-0:1.0")
    }

    /// Creates a device and its interfaces as the kernel does with `interface_authorized_default`
    /// `authorizedDefault` (interfaces start with that `authorized`), and returns its uevents:
    /// device add, interface adds, device bind.
    @discardableResult
    public func plug(
        port: Int, vendor: String, product: String, serial: String?, manufacturer: String = "Maker", productName: String = "Thing",
        interfaces: [Interface], authorizedDefault: Int = 0, deviceClass: UInt8 = 0
    ) throws -> [UEvent] {
        let name = "1-\(port)"
        let devpath = "\(Self.controller)/usb1/\(name)"
        let path = "/sys" + devpath
        try mkdir(path)
        var attributes = [("idVendor", vendor), ("idProduct", product), ("bDeviceClass", hex(deviceClass)), ("bDeviceSubClass", "00"),
                          ("bDeviceProtocol", "00"), ("authorized", "1"), ("manufacturer", manufacturer), ("product", productName)]
        if let serial { attributes.append(("serial", serial)) }
        for (key, value) in attributes { try write("\(path)/\(key)", value + "\n") }
        try link(name, to: devpath)
        try Data(Self.descriptors(vendor: vendor, product: product, interfaces: interfaces)).write(to: root.appendingPathComponent("sys" + devpath + "/descriptors"))
        var events = [event("add", devpath, "usb_device", ["PRODUCT": "\(vendor)/\(product)/100", "TYPE": "0/0/0"])]
        for (index, interface) in interfaces.enumerated() {
            let interfaceName = "\(name):1.\(index)"
            let interfacePath = "\(path)/\(interfaceName)"
            try mkdir(interfacePath)
            let modalias = "usb:v\(vendor.uppercased())p\(product.uppercased())d0100dc00dsc00dp00ic\(hex(interface.cls).uppercased())isc\(hex(interface.sub).uppercased())ip\(hex(interface.proto).uppercased())in\(hex(UInt8(index)).uppercased())"
            var values = [("bInterfaceClass", hex(interface.cls)), ("bInterfaceSubClass", hex(interface.sub)), ("bInterfaceProtocol", hex(interface.proto)),
                          ("authorized", String(authorizedDefault)), ("modalias", modalias)]
            if let string = interface.string { values.append(("interface", string)) }
            for (key, value) in values { try write("\(interfacePath)/\(key)", value + "\n") }
            try link(interfaceName, to: devpath + "/\(interfaceName)")
            events.append(event("add", devpath + "/\(interfaceName)", "usb_interface", ["INTERFACE": "\(interface.cls)/\(interface.sub)/\(interface.proto)", "MODALIAS": modalias]))
        }
        events.append(event("bind", devpath, "usb_device", ["DRIVER": "usb"]))
        return events
    }

    /// The raw descriptors as sysfs keeps them: the 18-byte device descriptor, then configuration 1
    /// (9 bytes) with each interface descriptor (9 bytes) followed by a bulk endpoint (7 bytes).
    public static func descriptors(vendor: String, product: String, interfaces: [Interface]) -> [UInt8] {
        let v = UInt16(vendor, radix: 16) ?? 0
        let p = UInt16(product, radix: 16) ?? 0
        var out: [UInt8] = [18, 1, 0x00, 0x02, 0, 0, 0, 64, UInt8(v & 0xFF), UInt8(v >> 8), UInt8(p & 0xFF), UInt8(p >> 8), 0x00, 0x01, 1, 2, 3, 1]
        let total = 9 + interfaces.count * 16
        out += [9, 2, UInt8(total & 0xFF), UInt8(total >> 8), UInt8(interfaces.count), 1, 0, 0x80, 50]
        for (index, interface) in interfaces.enumerated() {
            out += [9, 4, UInt8(index), 0, 1, interface.cls, interface.sub, interface.proto, 0]
            out += [7, 5, 0x81, 0x02, 0x00, 0x02, 0]
        }
        return out
    }

    /// What the kernel does on `authorized = 0` of a device: its configuration goes, and with it
    /// every interface directory; the device and its raw descriptors stay.
    public func deauthorize(port: Int) throws {
        let name = "1-\(port)"
        let devpath = "\(Self.controller)/usb1/\(name)"
        let children = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("sys" + devpath).path).filter { $0.hasPrefix(name + ":") }
        for child in children {
            try remove("/sys/bus/usb/devices/\(child)")
            try remove("/sys" + devpath + "/" + child)
        }
        try write("/sys" + devpath + "/authorized", "0\n")
    }

    /// Removes a device from the tree and returns its remove uevents (interfaces first, as the kernel sends them).
    public func unplug(port: Int) throws -> [UEvent] {
        let name = "1-\(port)"
        let devpath = "\(Self.controller)/usb1/\(name)"
        let children = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("sys" + devpath).path).filter { $0.hasPrefix(name + ":") }.sorted()
        var events: [UEvent] = []
        for child in children {
            events.append(event("remove", devpath + "/\(child)", "usb_interface"))
            try remove("/sys/bus/usb/devices/\(child)")
        }
        try remove("/sys/bus/usb/devices/\(name)")
        try remove("/sys" + devpath)
        events.append(event("remove", devpath, "usb_device"))
        return events
    }

    public func event(_ action: String, _ devpath: String, _ devtype: String, _ extra: [String: String] = [:]) -> UEvent {
        seqnum += 1
        // Every key the kernel puts in the message, as `UEvent.parse` keeps them.
        var properties = extra
        properties["ACTION"] = action
        properties["DEVPATH"] = devpath
        properties["SUBSYSTEM"] = "usb"
        properties["DEVTYPE"] = devtype
        properties["SEQNUM"] = String(seqnum)
        return UEvent(action: action, devpath: devpath, subsystem: "usb", devtype: devtype, seqnum: seqnum, properties: properties)
    }

    /// Advances the kernel's counter as if `count` events had been sent (and lost).
    public func publishSeqnum() throws { try write("/sys/kernel/uevent_seqnum", "\(seqnum)\n") }

    public func devicePath(port: Int) -> String { "/sys\(Self.controller)/usb1/1-\(port)" }
    public func interfacePath(port: Int, _ index: Int) -> String { "\(devicePath(port: port))/1-\(port):1.\(index)" }

    private func hex(_ value: UInt8) -> String {
        let text = String(value, radix: 16)
        return text.count == 1 ? "0" + text : text
    }
}
