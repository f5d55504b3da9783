import MijianCore

/// Where a device event came from; every event's evidence names it.
public enum EventSource: String, Sendable, Equatable {
    /// udevd's rebroadcast, after its rules ran.
    case udev
    /// The kernel's own uevent broadcast (no udevd, or udevd not answering).
    case kernel
    /// The walk of `/sys/bus/usb/devices` at start, as if every present device had just arrived.
    case coldplug
    /// The walk after the event stream overflowed.
    case resync
    /// A recorded stream read back (tests, benchmarks).
    case replay
}

/// One kernel uevent: what `ACTION=add\0DEVPATH=…\0SUBSYSTEM=usb\0…` says.
public struct UEvent: Sendable, Equatable {
    /// `add`, `remove`, `bind`, `unbind`, `change`, …
    public var action: String
    /// The kernel device path below `/sys` (`/devices/pci0000:00/…/1-3/1-3:1.0`).
    public var devpath: String
    /// `usb`, `block`, `net`, …
    public var subsystem: String
    /// `usb_device`, `usb_interface`, `disk`, …
    public var devtype: String?
    /// The kernel's sequence number (0 when the message had none).
    public var seqnum: UInt64
    /// Every `KEY=value` of the message.
    public var properties: [String: String]

    /// Makes an event.
    public init(action: String, devpath: String, subsystem: String, devtype: String? = nil, seqnum: UInt64 = 0, properties: [String: String] = [:]) {
        self.action = action
        self.devpath = devpath
        self.subsystem = subsystem
        self.devtype = devtype
        self.seqnum = seqnum
        self.properties = properties
    }

    /// The last component of the device path (`1-3:1.0`).
    public var kernelName: String {
        devpath.split(separator: "/").last.map(String.init) ?? devpath
    }

    /// Parses one message in the kernel's netlink format: an optional `ACTION@DEVPATH` header, then
    /// NUL-separated `KEY=value` pairs. Nil when ACTION, DEVPATH or SUBSYSTEM is missing.
    public static func parse(_ bytes: some Collection<UInt8>) -> UEvent? {
        var properties: [String: String] = [:]
        var first = true
        for field in bytes.split(separator: 0, omittingEmptySubsequences: true) {
            let text = String(decoding: field, as: UTF8.self)
            if first {
                first = false
                if text.contains("@"), !text.contains("=") { continue }
            }
            guard let equals = text.firstIndex(of: "=") else { continue }
            properties[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        guard let action = properties["ACTION"], let devpath = properties["DEVPATH"], let subsystem = properties["SUBSYSTEM"] else {
            return nil
        }
        return UEvent(
            action: action, devpath: devpath, subsystem: subsystem, devtype: properties["DEVTYPE"],
            seqnum: properties["SEQNUM"].flatMap { UInt64($0) } ?? 0, properties: properties)
    }

    /// The message in the kernel's format (header and NUL-terminated pairs), keys in a fixed order.
    public func kernelMessage() -> [UInt8] {
        var out = Array("\(action)@\(devpath)".utf8)
        out.append(0)
        var pairs = properties
        pairs["ACTION"] = action
        pairs["DEVPATH"] = devpath
        pairs["SUBSYSTEM"] = subsystem
        if let devtype { pairs["DEVTYPE"] = devtype }
        if seqnum > 0 { pairs["SEQNUM"] = String(seqnum) }
        let order = ["ACTION", "DEVPATH", "SUBSYSTEM", "DEVTYPE"]
        let keys = order.filter { pairs[$0] != nil } + pairs.keys.filter { !order.contains($0) }.sorted()
        for key in keys {
            out += Array("\(key)=\(pairs[key] ?? "")".utf8)
            out.append(0)
        }
        return out
    }

    /// Splits a recorded stream (messages separated by an empty field, i.e. two NULs, or one per line
    /// with `\0` written out) into messages.
    public static func parseStream(_ bytes: [UInt8]) -> [UEvent] {
        var events: [UEvent] = []
        var start = 0
        var index = 0
        while index < bytes.count {
            if bytes[index] == 0, index + 1 < bytes.count, bytes[index + 1] == 0 {
                if let event = parse(bytes[start..<index]) { events.append(event) }
                index += 2
                start = index
                continue
            }
            index += 1
        }
        if start < bytes.count, let event = parse(bytes[start..<bytes.count]) { events.append(event) }
        return events
    }
}
