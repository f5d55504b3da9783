import Foundation
import Logging
import MijianCore

/// Observes the outbound channels of a host other than networks and radios: serial ports with a
/// UART, USB serial adapters and modems, parallel ports, FireWire, PCMCIA/CardBus sockets, IrDA
/// and optical drives, and the state of their drivers.
public enum ChannelProbe {
    /// Reads what `hardware.channels` judges from `root`. A read that failed for another reason
    /// than absence and that no device record took as its own is an `error` source.
    public static func observe(root: HostRoot, live: Bool, logger: Logger) -> ChannelFacts {
        var (facts, failures) = root.collectingFailures { root in
            var reader = ChannelReader(root: root, logger: logger)
            return reader.read(live: live)
        }
        facts.sources.addUnclaimed(failures)
        return facts
    }

    /// Where the kernel's CD-ROM layer lists each drive's capabilities.
    public static let cdromInfo = "/proc/sys/dev/cdrom/info"

    /// The rows of `/proc/sys/dev/cdrom/info` that say a drive can write a medium.
    static let writeRows = ["Can write CD-R", "Can write CD-RW", "Can write DVD-R", "Can write DVD-RAM", "Can write MRW", "Can write RAM"]

    /// `/proc/sys/dev/cdrom/info` as drive name → (row → value). The file is a table: one row per
    /// capability, a column per drive (`drive name:\t\tsr1\tsr0`), values separated by tabs.
    static func parseCDROMInfo(_ text: String) -> [String: [(String, String)]] {
        var drives: [String] = []
        var table: [String: [(String, String)]] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon])
            let values = line[line.index(after: colon)...].split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
            if key == "drive name" {
                drives = values
                continue
            }
            guard !drives.isEmpty, values.count == drives.count else { continue }
            for (drive, value) in zip(drives, values) { table[drive, default: []].append((key, value)) }
        }
        for drive in drives where table[drive] == nil { table[drive] = [] }
        return table
    }
}

/// The work of one channel observation.
struct ChannelReader {
    let root: HostRoot
    let logger: Logger
    var facts = ChannelFacts()

    init(root: HostRoot, logger: Logger) {
        self.root = root
        self.logger = logger
    }

    mutating func read(live: Bool) -> ChannelFacts {
        // The module state is read the way the hardware probe reads it: the same kernel release,
        // /proc/modules, modprobe.d and the kernel command line.
        var hardware = HardwareReader(root: root, logger: logger)
        facts.kernelRelease = hardware.kernelRelease(live: live)
        hardware.readLoadedModules()
        hardware.readCommandLine()
        hardware.facts.modprobe = ModprobeConfig.read(root: root, sources: &hardware.facts.sources)
        facts.loadedModules = hardware.facts.loadedModules
        facts.commandLineBlacklist = hardware.facts.commandLineBlacklist
        facts.modprobe = hardware.facts.modprobe
        facts.sources += hardware.facts.sources
        let modulesDir = "/lib/modules/\(facts.kernelRelease)"
        readModuleList(modulesDir + "/modules.dep", builtin: false)
        readModuleList(modulesDir + "/modules.builtin", builtin: true)
        readTTYs()
        for (directory, kind) in [("/sys/class/wwan", ChannelKind.modem), ("/sys/class/parport", .parallel), ("/sys/class/printer", .parallel), ("/sys/bus/firewire/devices", .firewire), ("/sys/class/pcmcia_socket", .pcmcia), ("/sys/class/irda", .irda)] {
            readClass(directory, kind)
        }
        readOptical()
        readPCIControllers()
        for note in facts.notes { logger.debug("channel probe skipped something", metadata: ["mijian.note": "\(note)"]) }
        return facts
    }

    // MARK: sources

    private mutating func record(_ path: String, _ state: FactSource.State, count: Int = 0) {
        facts.sources.append(FactSource(path: path, state: state, count: count))
    }

    private mutating func listRecorded(_ path: String) -> [String]? {
        root.list(path, recordingInto: &facts.sources)
    }

    /// The channel drivers of `modules.dep` (the part before each colon) or `modules.builtin`.
    private mutating func readModuleList(_ path: String, builtin: Bool) {
        let bytes: [UInt8]
        do {
            bytes = try root.readBytes(path, limit: 64 << 20)
        } catch where error.code == .notFound {
            return record(path, .missing)
        } catch {
            return record(path, .error(error.description))
        }
        var lines = 0
        var seen: Set<String> = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            lines += 1
            let file = line.split(separator: UInt8(ascii: ":"), maxSplits: 1, omittingEmptySubsequences: false).first ?? line[...]
            let text = String(decoding: file, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            let name = DriverFamily.moduleName(fromPath: text)
            guard let kind = ChannelKind.drivers[name], seen.insert(name).inserted else { continue }
            facts.modules.append(ChannelModule(name: name, path: text, kind: kind, builtin: builtin))
        }
        record(path, .ok, count: lines)
    }

    // MARK: devices

    /// A device's attributes read with the failures (not absence) of each noted as its own.
    private func device(_ body: (HostRoot) -> ChannelDevice?) -> ChannelDevice? {
        let (read, unreadable) = root.collectingFailures(body)
        guard var device = read else { return nil }
        device.unreadable = unreadable
        return device
    }

    private static func driverName(_ root: HostRoot, _ path: String) -> String? { USBSysfs.driverName(root, path) }

    /// The driver of a UART's hardware: since Linux 6.5 a port's `device` is a serial-base port
    /// (`00:00:0.0`, driver `port`) below a controller (`ctrl`) below the PNP, platform or PCI
    /// device that holds the driver people know (`serial`, `serial8250`, `8250_pci`).
    static func uartDriver(_ root: HostRoot, _ path: String) -> String? {
        guard var device = root.resolve(path + "/device") else { return driverName(root, path + "/device") }
        for _ in 0..<3 {
            let driver = driverName(root, device)
            if let driver, driver != "port", driver != "ctrl" { return driver }
            device = ChannelReader.parent(of: device)
        }
        return driverName(root, path + "/device")
    }

    /// The USB interface directory (`1-2:1.0`) above a tty's device path, when there is one.
    static func usbInterface(above path: String) -> String? {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false)
        while let last = parts.last {
            if last.contains(":"), last.contains("-"), last.contains(".") { return parts.joined(separator: "/") }
            parts.removeLast()
        }
        return nil
    }

    private mutating func readTTYs() {
        let classDir = "/sys/class/tty"
        guard let names = listRecorded(classDir) else { return }
        for name in names {
            let isUART = name.hasPrefix("ttyS") && name.dropFirst(4).allSatisfy(\.isNumber)
            let isUSB = name.hasPrefix("ttyUSB")
            let isACM = name.hasPrefix("ttyACM")
            guard isUART || isUSB || isACM else { continue }
            let listedAt = "\(classDir)/\(name)"
            guard let path = root.resolve(listedAt) else {
                facts.notes.append("\(listedAt) vanished or does not resolve; skipped")
                continue
            }
            if isUART {
                var placeholder = false
                let read = device { root in
                    let type = root.attribute(path + "/type")
                    if type == "0" { placeholder = true }
                    var attributes: [(String, String)] = []
                    for key in ["type", "port", "irq", "dev"] { if let value = root.attribute(path + "/" + key) { attributes.append((key, value)) } }
                    return ChannelDevice(
                        kind: .serial, name: name, listedAt: listedAt, sysfsPath: path, driver: Self.uartDriver(root, path),
                        attributes: attributes, reason: type.map { "UART type \($0) (not 0: a real port)" } ?? "UART type unreadable")
                }
                guard let read else { continue }
                if placeholder, read.unreadable.isEmpty {
                    facts.placeholderPorts.append(name)
                } else {
                    facts.devices.append(read)
                }
                continue
            }
            let read = device { root in
                let interface = Self.usbInterface(above: path)
                let interfaceDriver = interface.flatMap { Self.driverName(root, $0) }
                let portDriver = Self.driverName(root, path + "/device")
                var attributes: [(String, String)] = []
                if let interface {
                    attributes.append(("usb_interface", interface))
                    let device = ChannelReader.parent(of: interface)
                    for key in ["idVendor", "idProduct", "manufacturer", "product"] { if let value = root.attribute(device + "/" + key) { attributes.append((key, value)) } }
                }
                if let portDriver, portDriver != interfaceDriver { attributes.append(("port_driver", portDriver)) }
                let driver = interfaceDriver ?? portDriver
                if isACM {
                    return ChannelDevice(
                        kind: .modem, name: name, listedAt: listedAt, sysfsPath: path, driver: driver, attributes: attributes,
                        reason: "CDC-ACM modem (ttyACM)")
                }
                let modemDriver = [interfaceDriver, portDriver].compactMap { $0 }.first { candidate in
                    let name = DriverFamily.normalise(candidate)
                    let base = String(name.reversed().drop(while: \.isNumber).reversed())
                    return [name, base].contains { ChannelKind.drivers[$0] == .modem || DriverFamily.classify(name: $0) == .wwan }
                }
                if let modemDriver {
                    return ChannelDevice(
                        kind: .modem, name: name, listedAt: listedAt, sysfsPath: path, driver: driver, attributes: attributes,
                        reason: "serial port of the WWAN/modem driver \(modemDriver)")
                }
                return ChannelDevice(
                    kind: .usbSerial, name: name, listedAt: listedAt, sysfsPath: path, driver: driver, attributes: attributes,
                    reason: driver == nil ? "USB serial adapter, no driver bound" : "USB serial adapter")
            }
            if let read { facts.devices.append(read) }
        }
    }

    /// Every entry of a class or bus directory is a device of `kind`.
    private mutating func readClass(_ directory: String, _ kind: ChannelKind) {
        guard let names = listRecorded(directory) else { return }
        for name in names {
            let listedAt = "\(directory)/\(name)"
            // `lp0` of the printer class is the parallel-port printer driver; USB printers are `usb/lp0`.
            if directory == "/sys/class/printer", !name.hasPrefix("lp") { continue }
            let path = root.resolve(listedAt)
            if path == nil, !root.exists(listedAt) {
                facts.notes.append("\(listedAt) vanished while being read; skipped")
                continue
            }
            let read = device { root in
                var driver = Self.driverName(root, (path ?? listedAt) + "/device")
                if driver == nil { driver = Self.driverName(root, path ?? listedAt) }
                return ChannelDevice(kind: kind, name: name, listedAt: listedAt, sysfsPath: path, driver: driver, reason: "listed in \(directory)")
            }
            if let read { facts.devices.append(read) }
        }
    }

    private mutating func readOptical() {
        let classDir = "/sys/class/block"
        guard let names = listRecorded(classDir) else { return }
        let drives = names.filter { $0.hasPrefix("sr") && $0.dropFirst(2).allSatisfy(\.isNumber) }
        guard !drives.isEmpty else { return }
        var info: [String: [(String, String)]]?
        var infoProblem = "\(ChannelProbe.cdromInfo) is missing"
        do {
            if let text = try root.readTextIfPresent(ChannelProbe.cdromInfo, limit: 65_536) {
                let table = ChannelProbe.parseCDROMInfo(text)
                info = table
                record(ChannelProbe.cdromInfo, .ok, count: table.count)
            } else {
                record(ChannelProbe.cdromInfo, .missing)
            }
        } catch {
            infoProblem = "\(ChannelProbe.cdromInfo) could not be read"
            record(ChannelProbe.cdromInfo, .error(error.description))
        }
        for name in drives {
            let listedAt = "\(classDir)/\(name)"
            guard let path = root.resolve(listedAt) else {
                facts.notes.append("\(listedAt) vanished or does not resolve; skipped")
                continue
            }
            let read = device { root in
                var attributes: [(String, String)] = []
                let scsi = path + "/device"
                for key in ["vendor", "model", "type"] { if let value = root.attribute(scsi + "/" + key) { attributes.append((key, value)) } }
                let driver = Self.driverName(root, scsi)
                guard let rows = info?[name] else {
                    // What cannot be shown to be a reader is taken for a writer.
                    return ChannelDevice(
                        kind: .opticalWrite, name: name, listedAt: listedAt, sysfsPath: path, driver: driver, attributes: attributes,
                        reason: info == nil ? "optical drive; \(infoProblem), so whether it writes is unknown and it is taken as a writer"
                            : "optical drive not listed in \(ChannelProbe.cdromInfo), so whether it writes is unknown and it is taken as a writer")
                }
                let writes = rows.filter { ChannelProbe.writeRows.contains($0.0) && $0.1 == "1" }.map(\.0)
                attributes += rows.filter { $0.0.hasPrefix("Can write") || $0.0.hasPrefix("Can read DVD") }.map { ($0.0, $0.1) }
                if writes.isEmpty {
                    return ChannelDevice(kind: .opticalRead, name: name, listedAt: listedAt, sysfsPath: path, driver: driver, attributes: attributes, reason: "optical drive that cannot write (\(ChannelProbe.cdromInfo))")
                }
                return ChannelDevice(
                    kind: .opticalWrite, name: name, listedAt: listedAt, sysfsPath: path, driver: driver, attributes: attributes,
                    reason: "optical drive that can write: " + writes.map { $0.replacingOccurrences(of: "Can write ", with: "") }.joined(separator: ", "))
            }
            if let read { facts.devices.append(read) }
        }
    }

    /// PCI class and subclass (`0x0c00`) of the controllers of each channel: seen even when their
    /// driver is disabled, so no class device or bus entry shows them.
    static let pciClasses: [UInt16: (ChannelKind, String)] = [
        0x0700: (.serial, "serial controller"), 0x0701: (.parallel, "parallel port controller"), 0x0703: (.modem, "modem"),
        0x0c00: (.firewire, "IEEE 1394 (FireWire) controller"), 0x0605: (.pcmcia, "PCMCIA bridge"), 0x0607: (.pcmcia, "CardBus bridge"),
        0x0d00: (.irda, "IrDA controller"),
    ]

    /// PCI functions of a channel class that no device found above lies below.
    private mutating func readPCIControllers() {
        let busPath = "/sys/bus/pci/devices"
        guard let names = listRecorded(busPath) else { return }
        let seen = facts.devices.compactMap(\.sysfsPath)
        for name in names {
            let listedAt = "\(busPath)/\(name)"
            guard let path = root.resolve(listedAt) else {
                facts.notes.append("\(listedAt) vanished or does not resolve; skipped")
                continue
            }
            var unknownClass = false
            let read = device { root -> ChannelDevice? in
                guard let text = root.attribute(path + "/class") else {
                    unknownClass = true
                    return ChannelDevice(kind: .serial, name: name, listedAt: listedAt, sysfsPath: path, reason: "PCI class unreadable")
                }
                guard let code = UInt32(USBSysfs.hexID(text), radix: 16), let (kind, what) = Self.pciClasses[UInt16(truncatingIfNeeded: code >> 8)] else { return nil }
                let driver = Self.driverName(root, path)
                let attributes = [("class", text)] + ["vendor", "device"].compactMap { key in root.attribute(path + "/" + key).map { (key, $0) } }
                return ChannelDevice(
                    kind: kind, name: name, listedAt: listedAt, sysfsPath: path, driver: driver, attributes: attributes,
                    reason: "PCI \(what)" + (driver == nil ? ", no driver bound" : ""))
            }
            guard let read else { continue }
            // A class that could not be read leaves the device unknown: kept only with what failed.
            if unknownClass, read.unreadable.isEmpty { continue }
            if !unknownClass, seen.contains(where: { $0.hasPrefix(path + "/") }) { continue }
            facts.devices.append(read)
        }
    }

    static func parent(of path: String) -> String { HardwareReader.parent(of: path) }
}
