/// Whether a source a probe wanted to read was read, absent, or unreadable.
public struct FactSource: Sendable, Equatable, Hashable {
    /// The outcome of reading one source.
    public enum State: Sendable, Equatable, Hashable {
        /// Read; `count` says how many entries it gave.
        case ok
        /// Not present under the root (not an error by itself; the check decides).
        case missing
        /// Present but unreadable; the reason is for people.
        case error(String)
    }

    /// The host path read (a file or a directory).
    public var path: String
    /// What happened.
    public var state: State
    /// How many entries it gave (lines, devices, files), when it was read.
    public var count: Int
    /// The file actually read when `path` is reached through symbolic links (resolved inside the
    /// root); nil when it is `path` itself.
    public var resolvedPath: String?

    /// Makes a source record; a `resolvedPath` equal to `path` is dropped.
    public init(path: String, state: State, count: Int = 0, resolvedPath: String? = nil) {
        self.path = path
        self.state = state
        self.count = count
        self.resolvedPath = resolvedPath == path ? nil : resolvedPath
    }

    /// `ok`, `missing` or `error`.
    public var stateName: String {
        switch state {
        case .ok: return "ok"
        case .missing: return "missing"
        case .error: return "error"
        }
    }

    /// The reason when unreadable.
    public var errorReason: String? {
        if case .error(let reason) = state { return reason }
        return nil
    }

    /// `{path, resolved_path?, state, count, error?}` for evidence.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("path", .string(path))]
        if let resolvedPath { members.append(("resolved_path", .string(resolvedPath))) }
        members += [("state", .string(stateName)), ("count", .integer(count))]
        if let reason = errorReason { members.append(("error", .string(reason))) }
        return .object(members)
    }
}

/// The kind of radio or peripheral a driver module serves, decided from its path under
/// `lib/modules` or from a maintained list of names.
public enum DriverFamily: String, Sendable, CaseIterable, Hashable {
    case wifi, bluetooth, wwan, nfc, irda
    /// USB mass storage (usb-storage, uas, ums-*).
    case storage
    /// USB networking that phones use for tethering (rndis_host, cdc_ether, cdc_ncm, ipheth).
    case usbnet

    /// Whether this family is a radio the wireless rules forbid.
    public var isWireless: Bool {
        switch self {
        case .wifi, .bluetooth, .wwan, .nfc, .irda: return true
        case .storage, .usbnet: return false
        }
    }

    /// A short English name for sentences.
    public var label: String {
        switch self {
        case .wifi: return "Wi-Fi"
        case .bluetooth: return "Bluetooth"
        case .wwan: return "WWAN/cellular"
        case .nfc: return "NFC"
        case .irda: return "IrDA"
        case .storage: return "USB storage"
        case .usbnet: return "USB networking"
        }
    }

    /// `iwl-wifi` → `iwl_wifi`: modprobe treats `-` and `_` alike in module names.
    public static func normalise(_ name: String) -> String {
        String(name.map { $0 == "-" ? "_" : $0 })
    }

    /// The module name of a `modules.dep`/`modules.builtin` path (`kernel/…/usb-storage.ko.xz` → `usb_storage`).
    public static func moduleName(fromPath path: String) -> String {
        var base = Substring(path)
        if let slash = base.lastIndex(of: "/") { base = base[base.index(after: slash)...] }
        if let dot = base.firstRange(of: ".ko") { base = base[..<dot.lowerBound] }
        return normalise(String(base))
    }

    /// Directory prefixes under `lib/modules/<release>/` and the family they hold.
    public static let pathPrefixes: [(String, DriverFamily)] = [
        ("kernel/drivers/net/wireless/", .wifi), ("kernel/net/wireless/", .wifi), ("kernel/net/mac80211/", .wifi),
        ("kernel/drivers/staging/rtl8", .wifi), ("kernel/drivers/staging/r8188eu/", .wifi),
        ("kernel/drivers/staging/wlan-ng/", .wifi), ("kernel/drivers/staging/vt665", .wifi),
        ("kernel/drivers/staging/wfx/", .wifi), ("kernel/drivers/staging/ks7010/", .wifi),
        ("kernel/drivers/bluetooth/", .bluetooth), ("kernel/net/bluetooth/", .bluetooth),
        ("kernel/drivers/net/wwan/", .wwan), ("kernel/drivers/bus/mhi/", .wwan),
        ("kernel/drivers/nfc/", .nfc), ("kernel/net/nfc/", .nfc),
        ("kernel/drivers/net/irda/", .irda), ("kernel/net/irda/", .irda), ("kernel/drivers/staging/irda/", .irda),
        ("kernel/drivers/usb/storage/", .storage),
    ]

    /// Module names whose family is known whatever their path (normalised names).
    public static let knownNames: [String: DriverFamily] = {
        var names: [String: DriverFamily] = [:]
        for name in [
            "iwlwifi", "iwlmvm", "iwldvm", "iwlmld", "iwl4965", "iwl3945", "iwlegacy", "cfg80211", "mac80211", "lib80211",
            "ath", "ath5k", "ath6kl_usb", "ath6kl_sdio", "ath9k", "ath9k_htc", "ath9k_common", "ath9k_hw", "ath10k_core",
            "ath10k_pci", "ath10k_usb", "ath11k", "ath11k_pci", "ath12k", "carl9170", "ar5523", "rtl8xxxu", "r8188eu",
            "r8712u", "rtl8192cu", "rtl8192ce", "rtl8192de", "rtl8192se", "rtl8188ee", "rtl8723be", "rtl8723ae",
            "rtl8821ae", "rtlwifi", "rtl_usb", "rtl_pci", "rtw88_core", "rtw88_pci", "rtw88_usb", "rtw88_8822bu",
            "rtw88_8821cu", "rtw89_core", "rtw89_pci", "rtl8723bs", "rtl8192e", "rtl8192u", "mt7601u", "mt76", "mt76_usb",
            "mt76x0u", "mt76x0e", "mt76x2u", "mt76x2e", "mt7615e", "mt7663u", "mt7921e", "mt7921u", "mt7921s",
            "mt7925e", "mt7996e", "rt2500usb", "rt73usb", "rt2800usb", "rt2800pci", "rt2x00lib", "rt2x00usb", "zd1211rw",
            "brcmfmac", "brcmsmac", "b43", "b43legacy", "bcma", "wl", "mwifiex", "mwifiex_pcie", "mwifiex_usb",
            "mwifiex_sdio", "mwl8k", "libertas", "usb8xxx", "p54usb", "p54pci", "at76c50x_usb", "rsi_usb", "rsi_sdio",
            "wilc1000", "wfx", "qtnfmac", "atmel", "orinoco", "orinoco_usb", "hostap", "airo", "prism2_usb",
        ] { names[name] = .wifi }
        for name in [
            "bluetooth", "btusb", "btintel", "btrtl", "btbcm", "btmtk", "btqca", "btmrvl", "btmrvl_sdio", "btsdio",
            "hci_uart", "hci_vhci", "bfusb", "bcm203x", "bpa10x", "ath3k", "btnxpuart", "rfcomm", "bnep", "hidp",
        ] { names[name] = .bluetooth }
        for name in [
            "qmi_wwan", "option", "cdc_mbim", "qcserial", "usb_wwan", "sierra", "sierra_net", "huawei_cdc_ncm", "cdc_wdm",
            "wwan", "mhi_wwan_ctrl", "mhi_wwan_mbim", "iosm", "mtk_t7xx", "rpmsg_wwan_ctrl", "gobi", "hso", "kalmia",
        ] { names[name] = .wwan }
        for name in ["nfc", "pn533", "pn533_usb", "pn544", "port100", "nfcmrvl", "nfcmrvl_usb", "st21nfca", "nxp_nci", "nci"] {
            names[name] = .nfc
        }
        for name in ["irda", "ircomm", "irnet", "irtty_sir", "ks959_sir", "ksdazzle_sir", "mcs7780", "stir4200", "irda_usb", "nsc_ircc", "smsc_ircc2"] {
            names[name] = .irda
        }
        for name in ["usb_storage", "uas", "ums_realtek", "ums_alauda", "ums_cypress", "ums_datafab", "ums_eneub6250", "ums_freecom", "ums_isd200", "ums_jumpshot", "ums_karma", "ums_onetouch", "ums_sddr09", "ums_sddr55", "ums_usbat"] {
            names[name] = .storage
        }
        for name in ["rndis_host", "cdc_ether", "cdc_ncm", "cdc_eem", "ipheth", "usbnet", "cdc_subset"] {
            names[name] = .usbnet
        }
        names["rndis_wlan"] = .wifi
        return names
    }()

    /// The family of a module from its path (when known) or its name; nil when it is none of these.
    public static func classify(name: String, path: String? = nil) -> DriverFamily? {
        let normalised = normalise(name)
        if let known = knownNames[normalised] { return known }
        if let path {
            var relative = Substring(path)
            if !relative.hasPrefix("kernel/"), let range = relative.firstRange(of: "/kernel/") {
                relative = relative[relative.index(after: range.lowerBound)...]
            }
            // Byte comparison: thousands of modules.dep lines pass through here.
            let bytes = relative.utf8
            for (prefix, family) in pathPrefixes where bytes.starts(with: prefix.utf8) { return family }
            if bytes.starts(with: "kernel/drivers/net/usb/".utf8) {
                switch normalised {
                case "rndis_host", "cdc_ether", "cdc_ncm", "cdc_eem", "ipheth": return .usbnet
                default: break
                }
            }
        }
        return nil
    }
}

/// One interface of a USB device, as sysfs shows it.
public struct USBInterface: Sendable, Equatable {
    /// Kernel name, e.g. `1-3:1.0`.
    public var name: String
    /// Resolved sysfs path (`/sys/devices/…/1-3/1-3:1.0`).
    public var sysfsPath: String
    /// bInterfaceClass, bInterfaceSubClass, bInterfaceProtocol; nil when unreadable.
    public var interfaceClass: UInt8?
    /// bInterfaceSubClass.
    public var interfaceSubClass: UInt8?
    /// bInterfaceProtocol.
    public var interfaceProtocol: UInt8?
    /// The interface string (`interface` attribute), e.g. `MTP`.
    public var interfaceString: String?
    /// The bound driver (name of the `driver` link's target).
    public var driver: String?
    /// The `modalias` attribute.
    public var modalias: String?
    /// Modules whose `modules.alias` patterns match the modalias (normalised names).
    public var aliasMatches: [String]
    /// True when the interface has no sysfs directory and was read from the device's raw
    /// descriptors: the device is de-authorised or unconfigured, so nothing can bind it.
    public var fromDescriptors = false
    /// The parts of it that could not be read (an attribute refused, a link that loops), each an
    /// `error` source: a nil above may then mean "unknown", not "absent".
    public var unreadable: [FactSource] = []

    /// Makes an interface record.
    public init(name: String, sysfsPath: String, interfaceClass: UInt8? = nil, interfaceSubClass: UInt8? = nil, interfaceProtocol: UInt8? = nil, interfaceString: String? = nil, driver: String? = nil, modalias: String? = nil, aliasMatches: [String] = []) {
        self.name = name
        self.sysfsPath = sysfsPath
        self.interfaceClass = interfaceClass
        self.interfaceSubClass = interfaceSubClass
        self.interfaceProtocol = interfaceProtocol
        self.interfaceString = interfaceString
        self.driver = driver
        self.modalias = modalias
        self.aliasMatches = aliasMatches
    }

    /// `cc/ss/pp` in hex, `??` for unreadable parts.
    public var classTriple: String {
        [interfaceClass, interfaceSubClass, interfaceProtocol].map { $0.map { HexText.byte($0) } ?? "??" }.joined(separator: "/")
    }

    /// Whether class, subclass and protocol are exactly these.
    public func isClass(_ cls: UInt8, _ sub: UInt8? = nil, _ proto: UInt8? = nil) -> Bool {
        interfaceClass == cls && (sub == nil || interfaceSubClass == sub) && (proto == nil || interfaceProtocol == proto)
    }

    /// Evidence form.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(name)), ("sysfs_path", .string(sysfsPath)), ("class", .string(classTriple)),
            ("interface", .optional(interfaceString)), ("driver", .optional(driver)), ("modalias", .optional(modalias)),
            ("alias_matches", .strings(aliasMatches)),
        ]
        if fromDescriptors { members.append(("read_from", .string("descriptors (device de-authorised or unconfigured)"))) }
        if !unreadable.isEmpty { members.append(("unreadable", .array(unreadable.map(\.json)))) }
        return .object(members)
    }
}

/// A block device whose resolved sysfs path lies on the USB bus.
public struct USBBlockDevice: Sendable, Equatable {
    /// Kernel name, e.g. `sdb`.
    public var name: String
    /// Resolved sysfs path.
    public var sysfsPath: String

    /// Makes a record.
    public init(name: String, sysfsPath: String) {
        self.name = name
        self.sysfsPath = sysfsPath
    }
}

/// A USB device (not an interface), as sysfs shows it.
public struct USBDevice: Sendable, Equatable {
    /// Kernel name, e.g. `1-3`.
    public var name: String
    /// Resolved sysfs path.
    public var sysfsPath: String
    /// idVendor, four lower-case hex digits ("" when unreadable).
    public var vendor: String
    /// idProduct, four lower-case hex digits.
    public var product: String
    /// The serial string, when the device has one.
    public var serial: String?
    /// The manufacturer string.
    public var manufacturer: String?
    /// The product string.
    public var productName: String?
    /// bDeviceClass, bDeviceSubClass, bDeviceProtocol.
    public var deviceClass: UInt8?
    /// bDeviceSubClass.
    public var deviceSubClass: UInt8?
    /// bDeviceProtocol.
    public var deviceProtocol: UInt8?
    /// The bound driver (usually `usb`).
    public var driver: String?
    /// Its interfaces in the active configuration.
    public var interfaces: [USBInterface]
    /// Block devices below it.
    public var blockDevices: [USBBlockDevice]
    /// The device's `authorized` attribute: false when it is de-authorised (no interface can bind).
    public var authorized: Bool?
    /// A root hub's `interface_authorized_default` (0: new interfaces bind only once authorised).
    public var interfaceAuthorizedDefault: Int?
    /// The parts of the device itself that could not be read, each an `error` source (its
    /// interfaces carry their own).
    public var unreadable: [FactSource] = []

    /// What could not be read of the device and of its interfaces: when not empty, what the
    /// device is cannot be fully known.
    public var unreadableParts: [FactSource] { unreadable + interfaces.flatMap(\.unreadable) }

    /// Makes a device record.
    public init(name: String, sysfsPath: String, vendor: String, product: String, serial: String? = nil, manufacturer: String? = nil, productName: String? = nil, deviceClass: UInt8? = nil, deviceSubClass: UInt8? = nil, deviceProtocol: UInt8? = nil, driver: String? = nil, interfaces: [USBInterface] = [], blockDevices: [USBBlockDevice] = []) {
        self.name = name
        self.sysfsPath = sysfsPath
        self.vendor = vendor
        self.product = product
        self.serial = serial
        self.manufacturer = manufacturer
        self.productName = productName
        self.deviceClass = deviceClass
        self.deviceSubClass = deviceSubClass
        self.deviceProtocol = deviceProtocol
        self.driver = driver
        self.interfaces = interfaces
        self.blockDevices = blockDevices
    }

    /// Whether this is a root hub of a host controller (`usbN`).
    public var isRootHub: Bool { name.hasPrefix("usb") }

    /// `vvvv:pppp`.
    public var ids: String { "\(vendor):\(product)" }

    /// `vvvv:pppp "Manufacturer Product"` for sentences.
    public var displayName: String {
        let words = [manufacturer, productName].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        return words.isEmpty ? ids : "\(ids) \"\(words)\""
    }

    /// Evidence form.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(name)), ("sysfs_path", .string(sysfsPath)), ("vendor", .string(vendor)), ("product", .string(product)),
            ("serial", .optional(serial)), ("manufacturer", .optional(manufacturer)), ("product_name", .optional(productName)),
            ("class", .string([deviceClass, deviceSubClass, deviceProtocol].map { $0.map { HexText.byte($0) } ?? "??" }.joined(separator: "/"))),
            ("driver", .optional(driver)), ("interfaces", .array(interfaces.map(\.json))),
            ("block_devices", .array(blockDevices.map { ["name": .string($0.name), "sysfs_path": .string($0.sysfsPath)] })),
        ]
        if authorized == false { members.append(("authorized", .bool(false))) }
        if let interfaceAuthorizedDefault { members.append(("interface_authorized_default", .integer(interfaceAuthorizedDefault))) }
        if !unreadable.isEmpty { members.append(("unreadable", .array(unreadable.map(\.json)))) }
        return .object(members)
    }
}

/// A PCI function, as sysfs shows it.
public struct PCIDevice: Sendable, Equatable {
    /// Slot name, e.g. `0000:00:14.3`.
    public var address: String
    /// Resolved sysfs path.
    public var sysfsPath: String
    /// The 24-bit class code (`0x028000` → base 0x02, sub 0x80, prog-if 0x00); nil when unreadable.
    public var classCode: UInt32?
    /// Vendor id, four lower-case hex digits.
    public var vendor: String
    /// Device id, four lower-case hex digits.
    public var device: String
    /// The bound driver.
    public var driver: String?
    /// The `modalias` attribute.
    public var modalias: String?
    /// Modules whose `modules.alias` patterns match (normalised names).
    public var aliasMatches: [String]
    /// The parts of it that could not be read, each an `error` source.
    public var unreadable: [FactSource] = []

    /// Makes a device record.
    public init(address: String, sysfsPath: String, classCode: UInt32?, vendor: String, device: String, driver: String? = nil, modalias: String? = nil, aliasMatches: [String] = []) {
        self.address = address
        self.sysfsPath = sysfsPath
        self.classCode = classCode
        self.vendor = vendor
        self.device = device
        self.driver = driver
        self.modalias = modalias
        self.aliasMatches = aliasMatches
    }

    /// Base class and subclass as one 16-bit value (`0x0280`).
    public var classAndSubclass: UInt16? { classCode.map { UInt16(truncatingIfNeeded: $0 >> 8) } }

    /// Evidence form.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("address", .string(address)), ("sysfs_path", .string(sysfsPath)),
            ("class", .optional(classCode.map { "0x" + HexText.hex($0, digits: 6) })), ("vendor", .string(vendor)),
            ("device", .string(device)), ("driver", .optional(driver)), ("modalias", .optional(modalias)),
            ("alias_matches", .strings(aliasMatches)),
        ]
        if !unreadable.isEmpty { members.append(("unreadable", .array(unreadable.map(\.json)))) }
        return .object(members)
    }
}

/// An entry of a wireless-related sysfs class (`/sys/class/ieee80211/phy0`, a wireless net interface, …).
public struct WirelessClassEntry: Sendable, Equatable {
    /// Which class it was found in.
    public enum Kind: String, Sendable, CaseIterable {
        /// A network interface with `wireless/` or `phy80211` (Wi-Fi) or DEVTYPE=wwan.
        case netWireless = "net-wireless"
        case netWWAN = "net-wwan"
        case ieee80211, bluetooth, rfkill, wwan, nfc, irda
    }

    /// The class.
    public var kind: Kind
    /// The entry's name (`phy0`, `hci0`, `wlan0`, `rfkill1`).
    public var name: String
    /// The class path (`/sys/class/ieee80211/phy0`).
    public var classPath: String
    /// The resolved device path, when the link resolves.
    public var sysfsPath: String?
    /// rfkill `type` (wlan, bluetooth, wwan, nfc, …).
    public var rfkillType: String?
    /// rfkill soft block (1 = blocked).
    public var rfkillSoft: Bool?
    /// rfkill hard block (1 = blocked).
    public var rfkillHard: Bool?

    /// Makes an entry.
    public init(kind: Kind, name: String, classPath: String, sysfsPath: String?, rfkillType: String? = nil, rfkillSoft: Bool? = nil, rfkillHard: Bool? = nil) {
        self.kind = kind
        self.name = name
        self.classPath = classPath
        self.sysfsPath = sysfsPath
        self.rfkillType = rfkillType
        self.rfkillSoft = rfkillSoft
        self.rfkillHard = rfkillHard
    }

    /// One phrase for sentences.
    public var phrase: String {
        switch kind {
        case .rfkill:
            let type = rfkillType ?? "unknown"
            let soft = rfkillSoft.map { $0 ? "soft-blocked" : "not soft-blocked" } ?? "soft state unknown"
            let hard = rfkillHard.map { $0 ? "hard-blocked" : "not hard-blocked" } ?? "hard state unknown"
            return "rfkill \(name) type \(type) (\(soft), \(hard))"
        case .netWireless: return "Wi-Fi interface \(name)"
        case .netWWAN: return "WWAN interface \(name)"
        default: return "\(kind.rawValue) \(name)"
        }
    }

    /// Evidence form.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("class", .string(kind.rawValue)), ("name", .string(name)), ("class_path", .string(classPath)),
            ("sysfs_path", .optional(sysfsPath)),
        ]
        if kind == .rfkill {
            members.append(("type", .optional(rfkillType)))
            members.append(("soft", rfkillSoft.map { .bool($0) } ?? .null))
            members.append(("hard", rfkillHard.map { .bool($0) } ?? .null))
        }
        return .object(members)
    }
}

/// One directive of the modprobe configuration, with where it was written.
public struct ModprobeDirective: Sendable, Equatable {
    /// The directive's keyword.
    public enum Kind: String, Sendable { case blacklist, install, remove, alias, options, softdep }
    /// Which directive.
    public var kind: Kind
    /// The module (or alias pattern for `alias`), normalised for all but `alias`.
    public var module: String
    /// The rest of the line (the command for `install`, the target for `alias`).
    public var argument: String
    /// The file it came from (host path).
    public var file: String
    /// Its line number (1-based).
    public var line: Int

    /// Makes a directive.
    public init(kind: Kind, module: String, argument: String = "", file: String, line: Int) {
        self.kind = kind
        self.module = module
        self.argument = argument
        self.file = file
        self.line = line
    }

    /// `file:line`.
    public var location: String { "\(file):\(line)" }

    /// Whether this `install` runs only `true`/`false`, so loading the module does nothing.
    public var disablesModule: Bool {
        guard kind == .install else { return false }
        let words = argument.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard let command = words.first else { return false }
        let trimmed = command.hasSuffix(";") ? command.dropLast() : command
        return ["/bin/true", "/bin/false", "/usr/bin/true", "/usr/bin/false", "true", "false"].contains(String(trimmed))
    }
}

/// A module file known to `modules.dep` or `modules.builtin`, in a family the checks care about.
public struct ModuleFile: Sendable, Equatable {
    /// Normalised module name.
    public var name: String
    /// Path relative to `lib/modules/<release>/`.
    public var path: String
    /// Its family.
    public var family: DriverFamily

    /// Makes a record.
    public init(name: String, path: String, family: DriverFamily) {
        self.name = name
        self.path = path
        self.family = family
    }
}

/// How one module stands against the modprobe configuration.
public enum ModuleDisposition: Sendable, Equatable {
    /// `install NAME /bin/false` (or true): loading it runs nothing.
    case disabled(ModprobeDirective)
    /// `blacklist NAME` only: alias autoloading skips it, explicit and dependency loads still work.
    case blacklisted(ModprobeDirective)
    /// Listed on the kernel command line with `module_blacklist=`: the kernel refuses to load it.
    case kernelBlacklisted
    /// Nothing stops it.
    case loadable
}

/// USB and PCI devices, wireless classes, rfkill, loaded modules and modprobe configuration.
public struct HardwareFacts: Sendable, Equatable {
    /// The kernel release whose `lib/modules` directory was read.
    public var kernelRelease: String
    /// Every source read, with its outcome.
    public var sources: [FactSource]
    /// USB devices (root hubs included) with their interfaces.
    public var usbDevices: [USBDevice]
    /// Block devices on the USB bus that no USB device record claimed.
    public var strayUSBBlockDevices: [USBBlockDevice]
    /// PCI functions.
    public var pciDevices: [PCIDevice]
    /// Wireless-related sysfs class entries.
    public var wirelessEntries: [WirelessClassEntry]
    /// Loaded modules (`/proc/modules`), normalised.
    public var loadedModules: [String]
    /// Modprobe directives from every configuration directory, in the order modprobe reads them.
    public var modprobe: [ModprobeDirective]
    /// Modules named by `module_blacklist=` / `modprobe.blacklist=` on the kernel command line.
    public var commandLineBlacklist: [String]
    /// Modules of interesting families in `modules.dep` (loadable).
    public var availableModules: [ModuleFile]
    /// Modules of interesting families in `modules.builtin` (built into the kernel).
    public var builtinModules: [ModuleFile]
    /// How many patterns `modules.alias` gave for USB and PCI.
    public var aliasPatternCount: Int
    /// Things skipped on the way (vanished devices, unreadable attributes).
    public var notes: [String]

    /// Makes facts; all empty by default.
    public init(kernelRelease: String = "", sources: [FactSource] = [], usbDevices: [USBDevice] = [], strayUSBBlockDevices: [USBBlockDevice] = [], pciDevices: [PCIDevice] = [], wirelessEntries: [WirelessClassEntry] = [], loadedModules: [String] = [], modprobe: [ModprobeDirective] = [], commandLineBlacklist: [String] = [], availableModules: [ModuleFile] = [], builtinModules: [ModuleFile] = [], aliasPatternCount: Int = 0, notes: [String] = []) {
        self.kernelRelease = kernelRelease
        self.sources = sources
        self.usbDevices = usbDevices
        self.strayUSBBlockDevices = strayUSBBlockDevices
        self.pciDevices = pciDevices
        self.wirelessEntries = wirelessEntries
        self.loadedModules = loadedModules
        self.modprobe = modprobe
        self.commandLineBlacklist = commandLineBlacklist
        self.availableModules = availableModules
        self.builtinModules = builtinModules
        self.aliasPatternCount = aliasPatternCount
        self.notes = notes
    }

    /// The recorded outcome for a source path.
    public func source(_ path: String) -> FactSource? { sources.first { $0.path == path } }

    /// The family of a module by what the facts know of its path, else by its name.
    public func family(of module: String) -> DriverFamily? {
        let name = DriverFamily.normalise(module)
        if let file = availableModules.first(where: { $0.name == name }) ?? builtinModules.first(where: { $0.name == name }) {
            return file.family
        }
        return DriverFamily.classify(name: name)
    }

    /// How the configuration treats a module: install-disabled beats command-line blacklist beats blacklist.
    public func disposition(of module: String) -> ModuleDisposition {
        let name = DriverFamily.normalise(module)
        // modprobe uses the first `install` it reads for a name.
        if let install = modprobe.first(where: { $0.kind == .install && $0.module == name }), install.disablesModule {
            return .disabled(install)
        }
        if commandLineBlacklist.contains(name) { return .kernelBlacklisted }
        if let blacklist = modprobe.first(where: { $0.kind == .blacklist && $0.module == name }) { return .blacklisted(blacklist) }
        return .loadable
    }
}

/// Hex spellings used in facts and sentences.
public enum HexText {
    /// Two lower-case hex digits.
    public static func byte(_ value: UInt8) -> String { hex(UInt32(value), digits: 2) }

    /// `digits` lower-case hex digits, zero-padded.
    public static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
