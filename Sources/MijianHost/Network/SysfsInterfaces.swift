import MijianCore

/// Reads network interfaces from `/sys/class/net` (under a root), and adds sysfs details
/// (driver, bus, DEVTYPE, tun flags, wireless) to links read over netlink.
enum SysfsInterfaces {
    static let classDirectory = "/sys/class/net"

    /// Every interface under `/sys/class/net`, recording what was read in `sources`.
    static func read(root: HostRoot, sources: inout [SourceRead]) -> [NetworkInterface] {
        let names: [String]
        do {
            names = try root.list(classDirectory)
        } catch {
            let reason = error.code == .notFound ? "\(classDirectory) is not present under \(root.path)" : error.description
            sources.append(SourceRead(kind: "sysfs", source: classDirectory, state: .error(reason)))
            return []
        }
        var interfaces: [NetworkInterface] = []
        for name in names {
            let base = "\(classDirectory)/\(name)"
            var interface = NetworkInterface(name: name)
            interface.index = root.attribute("\(base)/ifindex").flatMap { Int($0) }
            interface.linkType = root.attribute("\(base)/type").flatMap { Int($0) }
            interface.flags = root.attribute("\(base)/flags").flatMap { hex($0) } ?? 0
            interface.operState = root.attribute("\(base)/operstate")
            details(&interface, root: root, base: base)
            if interface.kind == nil { interface.kind = interface.devType }
            if let master = root.resolve("\(base)/master"), let masterName = master.split(separator: "/").last {
                interface.master = String(masterName)
            }
            interfaces.append(interface)
        }
        // Masters by index too, as netlink gives them.
        for position in interfaces.indices {
            guard let master = interfaces[position].master else { continue }
            interfaces[position].masterIndex = interfaces.first { $0.name == master }?.index
        }
        sources.append(SourceRead(kind: "sysfs", source: classDirectory, state: .ok, count: interfaces.count))
        return interfaces
    }

    /// Adds sysfs details to a netlink link, when sysfs shows the same interface (same index):
    /// in another network namespace sysfs describes other devices and is not used.
    static func enrich(_ link: NetworkInterface, root: HostRoot) -> NetworkInterface {
        let base = "\(classDirectory)/\(link.name)"
        guard let index = root.attribute("\(base)/ifindex").flatMap({ Int($0) }), index == link.index else { return link }
        var interface = link
        details(&interface, root: root, base: base)
        return interface
    }

    private static func details(_ interface: inout NetworkInterface, root: HostRoot, base: String) {
        if let uevent = root.attribute("\(base)/uevent") {
            for line in uevent.split(separator: "\n") where line.hasPrefix("DEVTYPE=") {
                interface.devType = String(line.dropFirst("DEVTYPE=".count))
            }
        }
        if let flags = root.attribute("\(base)/tun_flags").flatMap({ hex($0) }) {
            interface.tunFlags = flags
            if interface.kind == nil { interface.kind = flags & 0x2 != 0 ? "tap" : "tun" }
        }
        interface.isWireless = root.exists("\(base)/wireless") || root.exists("\(base)/phy80211")
        if let driver = root.resolve("\(base)/device/driver") {
            interface.driver = String(driver.split(separator: "/").last ?? "")
        }
        if let subsystem = root.resolve("\(base)/device/subsystem"), let name = subsystem.split(separator: "/").last {
            interface.bus = String(name)
        } else if let device = root.resolve("\(base)/device") {
            interface.bus = device.split(separator: "/").contains { $0.hasPrefix("usb") } ? "usb" : nil
        }
    }

    private static func hex(_ text: String) -> UInt32? {
        let digits = text.hasPrefix("0x") ? text.dropFirst(2) : Substring(text)
        return UInt32(digits, radix: 16)
    }
}
