#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianCore

/// Observes the hardware facts of a host.
public enum HardwareProbe {
    /// Reads what the checks need from `root` (live kernel sources too when `live`).
    /// A read that failed for another reason than absence and that no device record took as its
    /// own (a class link that does not resolve, the kernel release) is an `error` source.
    public static func observe(root: HostRoot, live: Bool, logger: Logger) -> HardwareFacts {
        var (facts, failures) = root.collectingFailures { root in
            var reader = HardwareReader(root: root, logger: logger)
            return reader.read(live: live)
        }
        facts.sources.addUnclaimed(failures)
        return facts
    }
}

/// The work of one hardware observation; collects sources and notes as it goes.
struct HardwareReader {
    let root: HostRoot
    let logger: Logger
    var facts = HardwareFacts()

    init(root: HostRoot, logger: Logger) {
        self.root = root
        self.logger = logger
    }

    mutating func read(live: Bool) -> HardwareFacts {
        facts.kernelRelease = kernelRelease(live: live)
        let modulesDir = "/lib/modules/\(facts.kernelRelease)"
        readModulesDep(modulesDir)
        readModulesBuiltin(modulesDir)
        let aliases = readAliases(modulesDir)
        readPCI(aliases)
        readUSB(aliases)
        readUSBBlockDevices()
        readWirelessClasses()
        readLoadedModules()
        facts.modprobe = ModprobeConfig.read(root: root, sources: &facts.sources)
        readCommandLine()
        for note in facts.notes { logger.debug("hardware probe skipped something", metadata: ["mijian.note": "\(note)"]) }
        return facts
    }

    // MARK: sources

    private mutating func record(_ path: String, _ state: FactSource.State, count: Int = 0) {
        facts.sources.append(FactSource(path: path, state: state, count: count))
    }

    /// Lists a directory, recording the outcome; nil when missing or unreadable.
    private mutating func listRecorded(_ path: String) -> [String]? {
        root.list(path, recordingInto: &facts.sources)
    }

    /// Reads a file whole, recording the outcome; nil when missing or unreadable.
    private mutating func readRecorded(_ path: String, limit: Int = 64 << 20) -> [UInt8]? {
        do {
            let bytes = try root.readBytes(path, limit: limit)
            return bytes
        } catch where error.code == .notFound {
            record(path, .missing)
            return nil
        } catch {
            record(path, .error(error.description))
            return nil
        }
    }

    // MARK: kernel and modules

    func kernelRelease(live: Bool) -> String {
        if let release = root.attribute("/proc/sys/kernel/osrelease"), !release.isEmpty { return release }
        guard live else { return "" }
        var name = utsname()
        guard uname(&name) == 0 else { return "" }
        return withUnsafeBytes(of: name.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Family prefixes as bytes, for the modules.dep scan.
    private static let prefixBytes: [([UInt8], DriverFamily)] = DriverFamily.pathPrefixes.map { (Array($0.0.utf8), $0.1) }

    /// Scans modules.dep on bytes: a line becomes strings only when its module is in a family of interest.
    mutating func readModulesDep(_ dir: String) {
        let path = dir + "/modules.dep"
        guard let bytes = readRecorded(path) else { return }
        var lines = 0
        var seen: Set<String> = []
        let kernel = Array("kernel/".utf8)
        bytes.withUnsafeBufferPointer { buffer in
            var start = 0
            while start < buffer.count {
                var end = start
                while end < buffer.count, buffer[end] != UInt8(ascii: "\n") { end += 1 }
                defer { start = end + 1 }
                lines += 1
                var colon = start
                while colon < end, buffer[colon] != UInt8(ascii: ":") { colon += 1 }
                guard colon < end else { continue }
                var nameStart = start
                for index in start..<colon where buffer[index] == UInt8(ascii: "/") { nameStart = index + 1 }
                var nameEnd = nameStart
                while nameEnd + 2 < colon, !(buffer[nameEnd] == UInt8(ascii: ".") && buffer[nameEnd + 1] == UInt8(ascii: "k") && buffer[nameEnd + 2] == UInt8(ascii: "o")) { nameEnd += 1 }
                if nameEnd + 2 >= colon { nameEnd = colon }
                let name = String(decoding: buffer[nameStart..<nameEnd].map { $0 == UInt8(ascii: "-") ? UInt8(ascii: "_") : $0 }, as: UTF8.self)
                var family = DriverFamily.knownNames[name]
                if family == nil {
                    let line = UnsafeBufferPointer(rebasing: buffer[start..<colon])
                    if line.starts(with: kernel) {
                        for (prefix, candidate) in Self.prefixBytes where line.starts(with: prefix) {
                            family = candidate
                            break
                        }
                    } else {
                        family = DriverFamily.classify(name: name, path: String(decoding: line, as: UTF8.self))
                    }
                }
                guard let family, seen.insert(name).inserted else { continue }
                facts.availableModules.append(ModuleFile(name: name, path: String(decoding: buffer[start..<colon], as: UTF8.self), family: family))
            }
        }
        record(path, .ok, count: lines)
    }

    mutating func readModulesBuiltin(_ dir: String) {
        let path = dir + "/modules.builtin"
        guard let bytes = readRecorded(path) else { return }
        var lines = 0
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            lines += 1
            let file = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            let name = DriverFamily.moduleName(fromPath: file)
            if let family = DriverFamily.classify(name: name, path: file) {
                facts.builtinModules.append(ModuleFile(name: name, path: file, family: family))
            }
        }
        record(path, .ok, count: lines)
    }

    mutating func readAliases(_ dir: String) -> ModuleAliasIndex? {
        let path = dir + "/modules.alias"
        guard let bytes = readRecorded(path) else { return nil }
        let index = ModuleAliasIndex(bytes: bytes)
        facts.aliasPatternCount = index.count
        record(path, .ok, count: index.count)
        return index
    }

    mutating func readLoadedModules() {
        let path = "/proc/modules"
        guard let bytes = readRecorded(path) else { return }
        var names: [String] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let word = line.split(separator: UInt8(ascii: " ")).first else { continue }
            names.append(DriverFamily.normalise(String(decoding: word, as: UTF8.self)))
        }
        facts.loadedModules = names
        record(path, .ok, count: names.count)
    }

    mutating func readCommandLine() {
        let path = "/proc/cmdline"
        guard let bytes = readRecorded(path, limit: 65_536) else { return }
        let words = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        for word in words {
            for key in ["module_blacklist=", "modprobe.blacklist="] where word.hasPrefix(key) {
                for name in word.dropFirst(key.count).split(separator: ",") {
                    facts.commandLineBlacklist.append(DriverFamily.normalise(String(name)))
                }
            }
        }
        record(path, .ok, count: words.count)
    }

    // MARK: devices

    private mutating func readPCI(_ aliases: ModuleAliasIndex?) {
        let busPath = "/sys/bus/pci/devices"
        guard let names = listRecorded(busPath) else { return }
        for name in names {
            guard let path = busEntry(busPath, name) else { continue }
            var (device, unreadable) = root.collectingFailures { root in
                let classText = USBSysfs.hexID(root.attribute(path + "/class"))
                let modalias = root.attribute(path + "/modalias")
                var device = PCIDevice(
                    address: name, sysfsPath: path, classCode: UInt32(classText, radix: 16),
                    vendor: USBSysfs.hexID(root.attribute(path + "/vendor")), device: USBSysfs.hexID(root.attribute(path + "/device")),
                    driver: USBSysfs.driverName(root, path), modalias: modalias)
                if let modalias, let aliases { device.aliasMatches = aliases.modules(matching: modalias) }
                return device
            }
            device.unreadable = unreadable
            if device.classCode == nil, unreadable.isEmpty, !root.exists(path) {
                facts.notes.append("\(path) vanished while being read; skipped")
                continue
            }
            facts.pciDevices.append(device)
        }
    }

    private mutating func readUSB(_ aliases: ModuleAliasIndex?) {
        let busPath = "/sys/bus/usb/devices"
        guard let names = listRecorded(busPath) else { return }
        var devices: [USBDevice] = []
        var interfaces: [USBInterface] = []
        for name in names {
            guard let path = busEntry(busPath, name) else { continue }
            if name.contains(":") {
                guard let interface = USBSysfs.interface(root: root, name: name, path: path, aliases: { aliases?.modules(matching: $0) ?? [] }) else {
                    facts.notes.append("\(path) vanished while being read; skipped")
                    continue
                }
                interfaces.append(interface)
            } else {
                guard let device = USBSysfs.device(root: root, name: name, path: path) else {
                    facts.notes.append("\(path) vanished while being read; skipped")
                    continue
                }
                devices.append(device)
            }
        }
        var byPath: [String: Int] = [:]
        for (index, device) in devices.enumerated() { byPath[device.sysfsPath] = index }
        for interface in interfaces {
            let parent = Self.parent(of: interface.sysfsPath)
            if let index = byPath[parent] {
                devices[index].interfaces.append(interface)
            } else {
                facts.notes.append("\(interface.sysfsPath) has no USB device above it; skipped")
            }
        }
        for index in devices.indices where devices[index].interfaces.isEmpty {
            let (described, unreadable) = root.collectingFailures { USBSysfs.descriptorInterfaces(root: $0, device: devices[index]) }
            devices[index].unreadable += unreadable
            if let described { devices[index].interfaces = described }
        }
        facts.usbDevices = devices
    }

    /// The resolved directory of a bus entry, or nil: skipped when it vanished or does not resolve,
    /// an `error` source of its own (under the bus's name, which the rules judge from) when
    /// something other than a directory stands there, since the device was then never seen.
    private mutating func busEntry(_ busPath: String, _ name: String) -> String? {
        let entry = "\(busPath)/\(name)"
        guard let path = root.resolve(entry) else {
            facts.notes.append("\(entry) vanished or does not resolve; skipped")
            return nil
        }
        do {
            guard try root.directoryIfPresent(path) else {
                facts.notes.append("\(entry) vanished while being read; skipped")
                return nil
            }
        } catch {
            record(entry, .error(error.description))
            return nil
        }
        return path
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// The USB device whose path is the longest prefix of `path`.
    private func usbOwner(of path: String) -> Int? {
        var best: (Int, Int)?
        for (index, device) in facts.usbDevices.enumerated() where !device.isRootHub {
            let prefix = device.sysfsPath + "/"
            if path.hasPrefix(prefix), prefix.count > (best?.1 ?? 0) { best = (index, prefix.count) }
        }
        return best?.0
    }

    private mutating func readUSBBlockDevices() {
        let classPath = "/sys/class/block"
        guard let names = listRecorded(classPath) else { return }
        for name in names {
            guard let path = root.resolve("\(classPath)/\(name)") else {
                facts.notes.append("\(classPath)/\(name) vanished or does not resolve; skipped")
                continue
            }
            // Whole disks only: partitions live one level below their disk.
            guard Self.parent(of: path).hasSuffix("/block") else { continue }
            let block = USBBlockDevice(name: name, sysfsPath: path)
            if let owner = usbOwner(of: path) {
                facts.usbDevices[owner].blockDevices.append(block)
            } else if path.split(separator: "/").contains(where: { $0.hasPrefix("usb") && $0.count > 3 && $0.dropFirst(3).allSatisfy(\.isNumber) }) {
                facts.strayUSBBlockDevices.append(block)
            }
        }
    }

    private mutating func readWirelessClasses() {
        if let names = listRecorded("/sys/class/net") {
            for name in names {
                let classPath = "/sys/class/net/\(name)"
                let resolved = root.resolve(classPath)
                guard let path = resolved else {
                    facts.notes.append("\(classPath) vanished or does not resolve; skipped")
                    continue
                }
                if root.exists(path + "/wireless") || root.exists(path + "/phy80211") {
                    facts.wirelessEntries.append(WirelessClassEntry(kind: .netWireless, name: name, classPath: classPath, sysfsPath: path))
                } else if let uevent = root.attribute(path + "/uevent"), uevent.split(separator: "\n").contains(where: { $0 == "DEVTYPE=wwan" }) {
                    facts.wirelessEntries.append(WirelessClassEntry(kind: .netWWAN, name: name, classPath: classPath, sysfsPath: path))
                }
            }
        }
        let classes: [(String, WirelessClassEntry.Kind)] = [
            ("ieee80211", .ieee80211), ("bluetooth", .bluetooth), ("rfkill", .rfkill), ("wwan", .wwan), ("nfc", .nfc), ("irda", .irda),
        ]
        for (directory, kind) in classes {
            let classDir = "/sys/class/\(directory)"
            guard let names = listRecorded(classDir) else { continue }
            for name in names {
                let classPath = "\(classDir)/\(name)"
                let path = root.resolve(classPath)
                if path == nil, !root.exists(classPath) {
                    facts.notes.append("\(classPath) vanished while being read; skipped")
                    continue
                }
                var entry = WirelessClassEntry(kind: kind, name: name, classPath: classPath, sysfsPath: path)
                if kind == .rfkill {
                    let base = path ?? classPath
                    entry.rfkillType = root.attribute(base + "/type")
                    entry.rfkillSoft = root.attribute(base + "/soft").map { $0 == "1" }
                    entry.rfkillHard = root.attribute(base + "/hard").map { $0 == "1" }
                }
                facts.wirelessEntries.append(entry)
            }
        }
    }
}
