import MijianCore

/// Hardware rules of the audit.
public enum HardwareChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.wirelessHardware, needs: [.hardware], evaluate: wirelessHardware),
        Check(rule: RuleCatalogue.wirelessModules, needs: [.hardware], evaluate: wirelessModules),
        Check(rule: RuleCatalogue.usbStorage, needs: [.hardware], evaluate: usbStorage),
        Check(rule: RuleCatalogue.usbPhone, needs: [.hardware], evaluate: usbPhone),
    ]

    // MARK: shared

    static func sourcesEvidence(_ context: CheckContext, _ facts: HardwareFacts, _ paths: (String) -> Bool) -> Evidence {
        context.evidence("sources", "host", .array(facts.sources.filter { paths($0.path) }.map(\.json)))
    }

    static func list(_ items: [String], limit: Int = 8) -> String {
        list(items.prefix(limit), of: items.count)
    }

    /// The first items of a list of `total` (those given), and how many more.
    static func list(_ first: some Collection<String>, of total: Int) -> String {
        total <= first.count ? first.joined(separator: ", ") : first.joined(separator: ", ") + " and \(total - first.count) more"
    }

    static func isModulesFile(_ path: String) -> Bool {
        path.hasPrefix("/lib/modules/") || path == "/proc/modules" || path == "/proc/cmdline" || path.contains("modprobe.d")
            || path == kernelReleaseFile
    }

    /// Where the kernel release comes from: it names the module tree every module source lies in.
    static let kernelReleaseFile = "/proc/sys/kernel/osrelease"

    /// Whether a source is the USB device list or an entry of it (a link that did not resolve).
    static func isUSBBusSource(_ path: String) -> Bool {
        path == "/sys/bus/usb/devices" || path.hasPrefix("/sys/bus/usb/devices/")
    }

    /// Whether a source is the USB device list or an entry of it other than a root hub (`usbN`)
    /// and its interfaces (`N-0:C.I`): what the device rules judge from. A device below a hub
    /// that could not be read has an entry of its own.
    static func isUSBDeviceSource(_ path: String) -> Bool {
        guard isUSBBusSource(path) else { return false }
        let name = path.dropFirst("/sys/bus/usb/devices/".count)
        if name.hasPrefix("usb") { return false }
        if let colon = name.firstIndex(of: ":"), name[..<colon].hasSuffix("-0") { return false }
        return true
    }

    /// Whether a source is the PCI device list or an entry of it.
    static func isPCIBusSource(_ path: String) -> Bool {
        path == "/sys/bus/pci/devices" || path.hasPrefix("/sys/bus/pci/devices/")
    }

    /// `USB device 1-3 046d:c31c "Logitech USB Keyboard"`; the name alone when its ids could not be read.
    static func usbName(_ device: USBDevice) -> String {
        device.vendor.isEmpty && device.product.isEmpty ? "USB device \(device.name)" : "USB device \(device.name) \(device.displayName)"
    }

    /// `unreadable` as one clause: each path with why.
    static func unreadableText(_ unreadable: [FactSource]) -> String {
        list(unreadable.map { "\($0.path) (\($0.errorReason ?? "unreadable"))" }, limit: 3)
    }

    /// An `error` finding for a device part of which could not be read, so that what it is (storage,
    /// phone, radio) is unknown: a part that could not be read is never taken for one that is absent.
    static func unreadableDevice(
        _ rule: RuleInfo, _ context: CheckContext, subject: String, name: String, unreadable: [FactSource], unknown: String, data: JSONValue
    ) -> Finding {
        context.finding(
            rule, subject: subject, status: .error,
            detail: "Could not read all of \(name): \(unreadableText(unreadable)); so \(unknown) is unknown.",
            evidence: [context.evidence("sysfs", subject, data), context.evidence("sources", subject, .array(unreadable.map(\.json)))])
    }

    // MARK: wireless.hardware

    private struct Group {
        var subject: String
        var reasons: [String] = []
        var data: [JSONValue] = []
        var kind = "sysfs"
    }

    /// An `error` finding when the USB bus could not be looked at: no sysfs under the root at all
    /// (an offline disk image) or the USB device list was never read. A live kernel without a USB
    /// bus (sysfs present, `/sys/bus/usb` absent) can have no USB device, so that is no error.
    static func usbUnseen(_ rule: RuleInfo, _ all: AuditFacts, _ context: CheckContext) -> Finding? {
        let facts = all.hardware
        let usb = facts.source("/sys/bus/usb/devices")
        let noSysfs = facts.source("/sys/bus/pci/devices")?.state == .missing && facts.source("/sys/class/net")?.state == .missing
        guard usb == nil || (usb?.state == .missing && noSysfs) else { return nil }
        return context.finding(
            rule, subject: "/sys/bus/usb", status: .error,
            detail: noSysfs
                ? "No sysfs under \(all.root): USB devices cannot be seen (an offline disk shows none), so their absence is not vouched for."
                : "The USB device list (/sys/bus/usb/devices) was not read, so the absence of USB devices is not vouched for.",
            evidence: [sourcesEvidence(context, facts, { $0.hasPrefix("/sys/") })])
    }

    /// Wi-Fi, Bluetooth, WWAN, NFC or IrDA hardware, one finding per device.
    static func wirelessHardware(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.wirelessHardware
        let facts = all.hardware
        let sysfsSource: (String) -> Bool = {
            $0.hasPrefix("/sys/") || $0.hasSuffix("/modules.alias") || $0.hasSuffix("/modules.dep") || $0.hasSuffix("/modules.builtin")
                || $0 == kernelReleaseFile
        }
        var findings = context.sourceErrors(rule, facts.sources, sysfsSource)
        if facts.source("/sys/bus/pci/devices")?.state == .missing, facts.source("/sys/class/net")?.state == .missing {
            findings.append(context.finding(
                rule, subject: "/sys", status: .error,
                detail: "No sysfs under \(all.root) (neither /sys/bus/pci nor /sys/class/net): the hardware cannot be seen, so nothing is vouched for.",
                evidence: [sourcesEvidence(context, facts, sysfsSource)]))
            return findings
        }

        var groups: [Group] = []
        var index: [String: Int] = [:]
        func add(_ subject: String, _ reason: String, _ data: JSONValue) {
            if let at = index[subject] {
                groups[at].reasons.append(reason)
                groups[at].data.append(data)
            } else {
                index[subject] = groups.count
                groups.append(Group(subject: subject, reasons: [reason], data: [data]))
            }
        }
        func familyReasons(_ driver: String?, _ matches: [String], where place: String) -> [String] {
            var reasons: [String] = []
            if let driver, let family = facts.family(of: driver), family.isWireless {
                reasons.append("\(place)driver \(driver) bound (\(family.label))")
            }
            let wireless = matches.compactMap { name in facts.family(of: name).flatMap { $0.isWireless ? "\(name) (\($0.label))" : nil } }
            if !wireless.isEmpty { reasons.append("\(place)modules.alias matches \(wireless.joined(separator: ", "))") }
            return reasons
        }

        var devicePaths: [String] = []
        for device in facts.pciDevices {
            devicePaths.append(device.sysfsPath)
            var reasons: [String] = []
            if let phrase = DeviceClassNames.pciWireless(device) { reasons.append(phrase) }
            reasons += familyReasons(device.driver, device.aliasMatches, where: "")
            if !reasons.isEmpty {
                add(device.sysfsPath, "PCI \(device.address) \(device.vendor):\(device.device): " + reasons.joined(separator: "; "), device.json)
            }
        }
        var undecided = 0
        for device in facts.usbDevices where !device.isRootHub {
            devicePaths.append(device.sysfsPath)
            var reasons: [String] = []
            if device.deviceClass == 0xE0 { reasons.append("device class e0 (wireless controller)") }
            for interface in device.interfaces {
                if let phrase = DeviceClassNames.usbWireless(interface, of: device, family: facts.family(of:)) { reasons.append(phrase) }
                reasons += familyReasons(interface.driver, interface.aliasMatches, where: "interface \(interface.name) ")
                if interface.driver == nil, interface.aliasMatches.isEmpty { undecided += 1 }
            }
            if !reasons.isEmpty {
                add(device.sysfsPath, "USB \(device.name) \(device.displayName): " + reasons.joined(separator: "; "), device.json)
            }
        }
        for entry in facts.wirelessEntries {
            let path = entry.sysfsPath ?? entry.classPath
            let owner = devicePaths.filter { path.hasPrefix($0 + "/") }.max { $0.count < $1.count }
            add(owner ?? path, "sysfs \(entry.phrase) at \(entry.classPath)", entry.json)
        }

        for device in facts.pciDevices where index[device.sysfsPath] == nil && !device.unreadable.isEmpty {
            findings.append(unreadableDevice(
                rule, context, subject: device.sysfsPath, name: "PCI device \(device.address)", unreadable: device.unreadable,
                unknown: "whether it is a radio", data: device.json))
        }
        for device in facts.usbDevices where index[device.sysfsPath] == nil && !device.unreadableParts.isEmpty {
            findings.append(unreadableDevice(
                rule, context, subject: device.sysfsPath, name: usbName(device), unreadable: device.unreadableParts,
                unknown: device.isRootHub ? "what it holds" : "whether it is a radio", data: device.json))
        }
        for group in groups.sorted(by: { $0.subject < $1.subject }) {
            findings.append(context.finding(
                rule, subject: group.subject, status: .fail,
                detail: "Wireless hardware present (even if down or without a driver): " + group.reasons.joined(separator: "; ") + ".",
                evidence: group.data.map { context.evidence("sysfs", group.subject, $0) }))
        }

        let aliasState = facts.sources.first { $0.path.hasSuffix("/modules.alias") }
        let aliasMissing = aliasState.map { $0.state != .ok } ?? true
        if aliasMissing, undecided > 0 {
            findings.append(context.finding(
                rule, subject: "modules.alias", status: .error,
                detail: "lib/modules/\(facts.kernelRelease)/modules.alias could not be read, so \(undecided) USB interface(s) with no bound driver could not be matched to a driver family; a vendor-class Wi-Fi dongle would go unseen.",
                evidence: [sourcesEvidence(context, facts, sysfsSource)]))
        }
        if groups.isEmpty, findings.isEmpty {
            let usbCount = facts.usbDevices.filter { !$0.isRootHub }.count
            var detail = "No wireless hardware: examined \(facts.pciDevices.count) PCI and \(usbCount) USB devices (classes, drivers, \(facts.aliasPatternCount) modules.alias patterns) and the net, ieee80211, bluetooth, rfkill, wwan, nfc and irda classes."
            if aliasMissing { detail += " modules.alias was not available; every device had a bound driver or a class that decided." }
            findings.append(context.finding(
                rule, subject: "host", status: .pass, detail: detail,
                evidence: [sourcesEvidence(context, facts, sysfsSource)]))
        }
        return findings
    }

    // MARK: wireless.modules

    static func dispositionText(_ disposition: ModuleDisposition) -> String {
        switch disposition {
        case .disabled(let directive): return "disabled by `install \(directive.module) \(directive.argument)` at \(directive.location)"
        case .kernelBlacklisted: return "refused by module_blacklist= on the kernel command line"
        case .blacklisted(let directive): return "only blacklisted at \(directive.location): that stops alias autoloading, not `modprobe \(directive.module)` or loads by other modules; add `install \(directive.module) /bin/false`"
        case .loadable: return "not disabled"
        }
    }

    private static func isStopped(_ disposition: ModuleDisposition) -> Bool {
        switch disposition {
        case .disabled, .kernelBlacklisted: return true
        case .blacklisted, .loadable: return false
        }
    }

    static func dispositionName(_ disposition: ModuleDisposition) -> String {
        switch disposition {
        case .disabled: return "disabled"
        case .kernelBlacklisted: return "kernel-blacklisted"
        case .blacklisted: return "blacklisted-only"
        case .loadable: return "loadable"
        }
    }

    /// Wireless and Bluetooth drivers loaded, built in, or installable and not disabled.
    static func wirelessModules(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.wirelessModules
        let facts = all.hardware
        // The devices present say which drivers would be bound now: a device list or a modalias
        // that could not be read leaves that unknown.
        var findings = context.sourceErrors(rule, facts.sources) { isModulesFile($0) || isUSBBusSource($0) || isPCIBusSource($0) }
        let isModalias: (FactSource) -> Bool = { $0.path.hasSuffix("/modalias") }
        for device in facts.pciDevices where device.unreadable.contains(where: isModalias) {
            findings.append(unreadableDevice(
                rule, context, subject: device.sysfsPath, name: "PCI device \(device.address)", unreadable: device.unreadable.filter(isModalias),
                unknown: "which driver it would load", data: device.json))
        }
        for device in facts.usbDevices where device.unreadableParts.contains(where: isModalias) {
            findings.append(unreadableDevice(
                rule, context, subject: device.sysfsPath, name: usbName(device),
                unreadable: device.unreadableParts.filter(isModalias), unknown: "which driver it would load", data: device.json))
        }
        let sources = sourcesEvidence(context, facts, isModulesFile)
        let depState = facts.sources.first { $0.path.hasSuffix("/modules.dep") }?.state
        let procState = facts.source("/proc/modules")?.state

        for name in facts.loadedModules {
            guard let family = facts.family(of: name), family.isWireless else { continue }
            findings.append(context.finding(
                rule, subject: "module:\(name)", status: .fail,
                detail: "\(family.label) driver \(name) is loaded (/proc/modules); it is \(dispositionText(facts.disposition(of: name))).",
                evidence: [context.evidence("procfs", "/proc/modules", ["module": .string(name), "family": .string(family.rawValue)])]))
        }
        for module in facts.builtinModules where module.family.isWireless {
            findings.append(context.finding(
                rule, subject: "builtin:\(module.name)", status: .fail,
                detail: "\(module.family.label) driver \(module.name) is built into kernel \(facts.kernelRelease) (modules.builtin: \(module.path)); modprobe.d cannot disable a built-in driver, only a kernel without it can.",
                evidence: [context.evidence("file", "/lib/modules/\(facts.kernelRelease)/modules.builtin", ["module": .string(module.name), "path": .string(module.path), "family": .string(module.family.rawValue)])]))
        }

        let loaded = Set(facts.loadedModules)
        // Drivers that a device present now would bind: the most urgent ones, each named.
        var wanted: [String: [String]] = [:]
        for device in facts.usbDevices {
            for interface in device.interfaces { for name in interface.aliasMatches { wanted[name, default: []].append(interface.sysfsPath) } }
        }
        for device in facts.pciDevices { for name in device.aliasMatches { wanted[name, default: []].append(device.sysfsPath) } }
        for module in facts.availableModules where module.family.isWireless && !loaded.contains(module.name) {
            guard let devices = wanted[module.name] else { continue }
            let disposition = facts.disposition(of: module.name)
            guard !isStopped(disposition) else { continue }
            findings.append(context.finding(
                rule, subject: "module:\(module.name)", status: .fail,
                detail: "\(module.family.label) driver \(module.name) matches a device present now (\(list(devices, limit: 3))) and is \(dispositionText(disposition)).",
                evidence: [context.evidence("file", module.path, ["module": .string(module.name), "devices": .strings(devices), "disposition": .string(dispositionName(disposition))])]))
        }

        var familiesSeen = false
        for family in DriverFamily.allCases where family.isWireless {
            let modules = facts.availableModules.filter { $0.family == family }
            guard !modules.isEmpty else { continue }
            familiesSeen = true
            var open: [String] = []
            var partial: [String] = []
            var stopped = 0
            var rows: [JSONValue] = []
            for module in modules {
                let disposition = facts.disposition(of: module.name)
                switch disposition {
                case .disabled, .kernelBlacklisted: stopped += 1
                case .blacklisted: partial.append(module.name)
                case .loadable: open.append(module.name)
                }
                var row: [(String, JSONValue)] = [("module", .string(module.name)), ("path", .string(module.path)), ("disposition", .string(dispositionName(disposition)))]
                switch disposition {
                case .disabled(let directive), .blacklisted(let directive): row.append(("directive", .string(directive.location)))
                default: break
                }
                rows.append(.object(row))
            }
            let data: JSONValue = ["family": .string(family.rawValue), "modules": .array(rows)]
            let moduleEvidence = context.evidence("file", "/lib/modules/\(facts.kernelRelease)/modules.dep", data)
            if open.isEmpty, partial.isEmpty {
                findings.append(context.finding(
                    rule, subject: "modules:\(family.rawValue)", status: .pass,
                    detail: "All \(modules.count) installed \(family.label) driver(s) are disabled with `install NAME /bin/false` (or refused on the kernel command line).",
                    evidence: [moduleEvidence, sources]))
            } else {
                var parts: [String] = []
                if !open.isEmpty { parts.append("\(open.count) not disabled at all (\(list(open)))") }
                if !partial.isEmpty { parts.append("\(partial.count) only blacklisted (\(list(partial))), which stops alias autoloading but not `modprobe NAME` or loads by other modules") }
                findings.append(context.finding(
                    rule, subject: "modules:\(family.rawValue)", status: .fail,
                    detail: "\(modules.count) \(family.label) driver(s) installed in lib/modules/\(facts.kernelRelease): " + parts.joined(separator: "; ") + "; \(stopped) disabled. Disable each with `install NAME /bin/false` in /etc/modprobe.d.",
                    evidence: [moduleEvidence, sources]))
            }
        }

        if depState != .ok, !findings.contains(where: { $0.subject.hasPrefix("/lib/modules") }) {
            if procState == .ok {
                findings.append(context.finding(
                    rule, subject: "modules.dep", status: .error,
                    detail: "Modules are loadable (/proc/modules exists) but lib/modules/\(facts.kernelRelease)/modules.dep is missing, so it cannot be said which wireless drivers could be loaded.",
                    evidence: [sources]))
            } else if findings.isEmpty {
                findings.append(context.finding(
                    rule, subject: "host", status: .informational,
                    detail: "Neither /proc/modules nor lib/modules/\(facts.kernelRelease)/modules.dep exists: no loadable modules here, and which drivers are built in cannot be listed without modules.builtin.",
                    evidence: [sources]))
            }
        } else if findings.isEmpty, !familiesSeen {
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "No wireless or Bluetooth driver is loaded, built in, or installed in lib/modules/\(facts.kernelRelease) (\(facts.loadedModules.count) loaded modules examined).",
                evidence: [sources]))
        }
        return findings
    }

    // MARK: usb.storage

    /// USB mass storage present, against the ledger; and whether storage drivers can load.
    static func usbStorage(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.usbStorage
        let facts = all.hardware
        let relevant: (String) -> Bool = {
            isUSBDeviceSource($0) || $0 == "/sys/class/block" || $0.hasPrefix("/sys/class/block/") || isModulesFile($0)
        }
        var findings = context.sourceErrors(rule, facts.sources, relevant)
        var present = 0
        // Of a root hub this rule reads only its lock (storage control).
        for device in facts.usbDevices where device.isRootHub {
            let lock = device.unreadable.filter { $0.path.hasSuffix("/interface_authorized_default") }
            guard !lock.isEmpty else { continue }
            findings.append(unreadableDevice(
                rule, context, subject: device.sysfsPath, name: "USB root hub \(device.name)", unreadable: lock,
                unknown: "whether it locks new interfaces", data: device.json))
        }
        for device in facts.usbDevices where !device.isRootHub {
            let storage = device.interfaces.filter { $0.isClass(0x08) }
            let unreadable = device.unreadableParts
            guard !storage.isEmpty || !device.blockDevices.isEmpty else {
                if !unreadable.isEmpty {
                    findings.append(unreadableDevice(
                        rule, context, subject: device.sysfsPath, name: usbName(device), unreadable: unreadable,
                        unknown: "whether it is storage", data: device.json))
                }
                continue
            }
            present += 1
            var what: [String] = []
            if !storage.isEmpty { what.append("mass-storage interface \(storage.map { "\($0.name) \($0.classTriple)" }.joined(separator: ", "))") }
            if !device.blockDevices.isEmpty { what.append("block device \(device.blockDevices.map(\.name).joined(separator: ", "))") }
            let seen = what.joined(separator: " and ")
            let data = context.evidence("sysfs", device.sysfsPath, device.json)
            if !unreadable.isEmpty {
                // Storage, but not all of it could be read (its serial, another interface): which
                // medium it is, and so whether the ledger registers it, is not vouched for.
                findings.append(unreadableDevice(
                    rule, context, subject: device.sysfsPath, name: "USB storage \(device.displayName) (\(seen))", unreadable: unreadable,
                    unknown: "whether it is a registered medium", data: device.json))
            } else if let entry = context.policy.ledger.first(where: { $0.matches(vendor: device.vendor, product: device.product, serial: device.serial) }) {
                var whose: [String] = []
                if let label = entry.label { whose.append("label \(label)") }
                if let classification = entry.classification { whose.append(classification.rawValue) }
                if let responsible = entry.responsible { whose.append("responsible \(responsible)") }
                findings.append(context.finding(
                    rule, subject: device.sysfsPath, status: .pass,
                    detail: "USB storage \(device.displayName) serial \(entry.serial) (\(seen)) is registered in the media ledger" + (whose.isEmpty ? "." : " (\(whose.joined(separator: ", "))).")
                        , evidence: [data]))
            } else if let serial = device.serial, !serial.isEmpty {
                findings.append(context.finding(
                    rule, subject: device.sysfsPath, status: .fail,
                    detail: "USB storage \(device.displayName) serial \(serial) (\(seen)) is not in the media ledger of policy \(context.policy.id).",
                    evidence: [data]))
            } else {
                findings.append(context.finding(
                    rule, subject: device.sysfsPath, status: .fail,
                    detail: "USB storage \(device.displayName) (\(seen)) reports no serial number, so it cannot be matched to the media ledger.",
                    evidence: [data]))
            }
        }
        for block in facts.strayUSBBlockDevices {
            present += 1
            findings.append(context.finding(
                rule, subject: block.sysfsPath, status: .fail,
                detail: "Block device \(block.name) is on the USB bus but its USB device could not be read, so it cannot be matched to the media ledger.",
                evidence: [context.evidence("sysfs", block.sysfsPath, ["name": .string(block.name)])]))
        }
        if present == 0, findings.isEmpty, let unseen = usbUnseen(rule, all, context) {
            findings.append(unseen)
        } else if present == 0, findings.isEmpty {
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "No USB mass storage present: \(facts.usbDevices.filter { !$0.isRootHub }.count) USB devices and the block devices examined.",
                evidence: [sourcesEvidence(context, facts, relevant)]))
        }
        findings.append(storageControl(facts, context))
        return findings
    }

    private static func storageControl(_ facts: HardwareFacts, _ context: CheckContext) -> Finding {
        let rule = RuleCatalogue.usbStorage
        let subject = "usb-storage-control"
        let depOK = facts.sources.first { $0.path.hasSuffix("/modules.dep") }?.state == .ok
        let loaded = Set(facts.loadedModules)
        var problems: [String] = []
        var rows: [JSONValue] = []
        for name in ["usb_storage", "uas"] {
            let disposition = facts.disposition(of: name)
            let builtin = facts.builtinModules.first { $0.name == name }
            let available = facts.availableModules.first { $0.name == name }
            rows.append([
                "module": .string(name), "loaded": .bool(loaded.contains(name)), "builtin": .bool(builtin != nil),
                "installed": .bool(available != nil), "disposition": .string(dispositionName(disposition)),
            ])
            if loaded.contains(name) { problems.append("\(name) is loaded") }
            if builtin != nil { problems.append("\(name) is built into the kernel and cannot be disabled in modprobe.d") }
            else if available != nil, !isStopped(disposition), !loaded.contains(name) { problems.append("\(name) is installed and \(dispositionText(disposition))") }
        }
        let data = context.evidence("modules", "/lib/modules/\(facts.kernelRelease)", .array(rows))
        // The kernel's interface lock (set by the live USB control, kept when it stops) is control
        // whatever the modules: no interface binds a driver until it is authorised.
        let hubs = facts.usbDevices.filter(\.isRootHub)
        if !hubs.isEmpty, hubs.allSatisfy({ $0.interfaceAuthorizedDefault == 0 }) {
            let lock = context.evidence("sysfs", "/sys/bus/usb/devices", .array(hubs.map { hub in
                ["name": .string(hub.name), "sysfs_path": .string(hub.sysfsPath), "interface_authorized_default": .integer(0)]
            }))
            return context.finding(
                rule, subject: subject, status: .pass,
                detail: "USB storage control is on: every root hub (\(hubs.map(\.name).joined(separator: ", "))) has interface_authorized_default = 0, so no USB interface binds a driver until it is authorised"
                    + (problems.isEmpty ? "." : "; the storage drivers themselves are not stopped (" + problems.joined(separator: "; ") + ")."),
                evidence: [lock, data])
        }
        if !problems.isEmpty {
            return context.finding(
                rule, subject: subject, status: .fail,
                detail: "USB storage control is off: " + problems.joined(separator: "; ") + ".", evidence: [data])
        }
        if !depOK, facts.source("/proc/modules")?.state == .ok {
            return context.finding(
                rule, subject: subject, status: .error,
                detail: "lib/modules/\(facts.kernelRelease)/modules.dep could not be read, so it cannot be said whether usb-storage or uas could be loaded.",
                evidence: [data])
        }
        if !depOK {
            return context.finding(
                rule, subject: subject, status: .informational,
                detail: "No module tree for kernel \(facts.kernelRelease) and no /proc/modules: usb-storage is not loadable here, but whether it is built in cannot be listed.",
                evidence: [data])
        }
        return context.finding(
            rule, subject: subject, status: .pass,
            detail: "usb-storage and uas are neither loaded, built in, nor loadable (absent or disabled with `install … /bin/false`).",
            evidence: [data])
    }

    // MARK: usb.phone

    /// Phones and tethering on USB.
    static func usbPhone(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.usbPhone
        let facts = all.hardware
        var findings = context.sourceErrors(rule, facts.sources, isUSBDeviceSource)
        var phones = 0
        for device in facts.usbDevices where !device.isRootHub {
            let reasons = DeviceClassNames.phoneReasons(device, family: facts.family(of:))
            guard !reasons.isEmpty else {
                if !device.unreadableParts.isEmpty {
                    findings.append(unreadableDevice(
                        rule, context, subject: device.sysfsPath, name: usbName(device),
                        unreadable: device.unreadableParts, unknown: "whether it is a phone", data: device.json))
                }
                continue
            }
            phones += 1
            findings.append(context.finding(
                rule, subject: device.sysfsPath, status: .fail,
                detail: "Phone or tethering device \(device.displayName) on USB: " + reasons.joined(separator: "; ") + ".",
                evidence: [context.evidence("sysfs", device.sysfsPath, device.json)]))
        }
        if phones == 0, findings.isEmpty, let unseen = usbUnseen(rule, all, context) {
            findings.append(unseen)
        } else if phones == 0, findings.isEmpty {
            let state = facts.source("/sys/bus/usb/devices")?.stateName ?? "not read"
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "No phone on USB: \(facts.usbDevices.filter { !$0.isRootHub }.count) USB devices examined (/sys/bus/usb/devices \(state)) for MTP/PTP, ADB, RNDIS, CDC networking, USB networking drivers and Apple devices.",
                evidence: [sourcesEvidence(context, facts, { $0 == "/sys/bus/usb/devices" })]))
        }
        return findings
    }
}
