/// An outbound channel other than a network or a radio link (七.6): what data can leave a
/// classified computer through besides USB storage.
public enum ChannelKind: String, Sendable, CaseIterable, Hashable, Comparable {
    /// A serial port with a real UART (`ttyS*` whose `type` is not 0).
    case serial
    /// A USB serial adapter (`ttyUSB*` of a driver that is not a modem's).
    case usbSerial = "usb-serial"
    /// A modem: CDC-ACM (`ttyACM*`), a WWAN driver's serial ports, a `wwan` class device.
    case modem
    /// A parallel port (`parport*`, `lp*`).
    case parallel
    /// An IEEE 1394 (FireWire) controller or device.
    case firewire
    /// A PCMCIA or CardBus socket.
    case pcmcia
    /// An infrared (IrDA) port.
    case irda
    /// An optical drive that can only read.
    case opticalRead = "optical-read"
    /// An optical drive that can write (burn) discs.
    case opticalWrite = "optical-write"

    /// Kinds no policy may allow: a modem dials out of the unit, and IrDA is a wireless link (七.6).
    public static let neverAllowed: Set<ChannelKind> = [.modem, .irda]

    /// A short English name for sentences.
    public var label: String {
        switch self {
        case .serial: return "serial port"
        case .usbSerial: return "USB serial adapter"
        case .modem: return "modem"
        case .parallel: return "parallel port"
        case .firewire: return "FireWire (IEEE 1394)"
        case .pcmcia: return "PCMCIA/CardBus socket"
        case .irda: return "IrDA port"
        case .opticalRead: return "optical drive (read-only)"
        case .opticalWrite: return "optical writer"
        }
    }

    /// Catalogue order.
    public static func < (lhs: ChannelKind, rhs: ChannelKind) -> Bool {
        (allCases.firstIndex(of: lhs) ?? 0) < (allCases.firstIndex(of: rhs) ?? 0)
    }

    /// The driver modules of each kind (normalised names): what makes the channel usable once a
    /// device appears. Optical drives are one kind for drivers (`sr_mod` serves readers and writers).
    public static let drivers: [String: ChannelKind] = {
        var names: [String: ChannelKind] = [:]
        for name in ["8250", "8250_pci", "8250_pnp", "8250_exar", "serial_cs", "jsm"] { names[name] = .serial }
        for name in ["usbserial", "pl2303", "ftdi_sio", "cp210x", "ch341", "ark3116", "belkin_sa", "cypress_m8", "digi_acceleport", "io_edgeport", "keyspan", "mct_u232", "oti6858", "spcp8x5", "ti_usb_3410_5052", "mos7720", "mos7840", "f81232", "kl5kusb105", "kobil_sct", "generic"] {
            names[name] = .usbSerial
        }
        for name in ["cdc_acm", "option", "usb_wwan", "qcserial", "sierra", "moto_modem", "hso", "ipw"] { names[name] = .modem }
        for name in ["parport", "parport_pc", "parport_serial", "parport_cs", "lp", "ppdev", "uss720"] { names[name] = .parallel }
        for name in ["firewire_core", "firewire_ohci", "firewire_sbp2", "firewire_net", "snd_firewire_lib", "ohci1394", "ieee1394"] {
            names[name] = .firewire
        }
        for name in ["pcmcia", "pcmcia_core", "pcmcia_rsrc", "yenta_socket", "pd6729", "i82092", "i82365", "tcic", "rsrc_nonstatic"] {
            names[name] = .pcmcia
        }
        for name in ["irda", "ircomm", "ircomm_tty", "irtty_sir", "irda_usb", "nsc_ircc", "smsc_ircc2", "ali_ircc", "via_ircc", "stir4200", "mcs7780", "ks959_sir", "ksdazzle_sir"] {
            names[name] = .irda
        }
        for name in ["sr_mod", "cdrom"] { names[name] = .opticalRead }
        return names
    }()
}

/// One channel device, as sysfs (and for optical drives `/proc/sys/dev/cdrom/info`) shows it.
public struct ChannelDevice: Sendable, Equatable {
    /// What it is.
    public var kind: ChannelKind
    /// The kernel name (`ttyS0`, `ttyACM0`, `parport0`, `fw0`, `sr0`, a PCI address).
    public var name: String
    /// Where it was listed (`/sys/class/tty/ttyS0`).
    public var listedAt: String
    /// The resolved sysfs path, when the link resolves.
    public var sysfsPath: String?
    /// The bound driver of the device (or of the USB interface above a tty).
    public var driver: String?
    /// Attributes read for evidence (`type`, `port`, `irq`, `dev`, USB ids, cdrom capabilities).
    public var attributes: [(String, String)]
    /// Why it is of this kind, for sentences.
    public var reason: String
    /// The parts that could not be read, each an `error` source: the kind may then be unknown.
    public var unreadable: [FactSource] = []

    /// Makes a device record.
    public init(kind: ChannelKind, name: String, listedAt: String, sysfsPath: String?, driver: String? = nil, attributes: [(String, String)] = [], reason: String) {
        self.kind = kind
        self.name = name
        self.listedAt = listedAt
        self.sysfsPath = sysfsPath
        self.driver = driver
        self.attributes = attributes
        self.reason = reason
    }

    /// Equal when every field is.
    public static func == (lhs: ChannelDevice, rhs: ChannelDevice) -> Bool {
        lhs.kind == rhs.kind && lhs.name == rhs.name && lhs.listedAt == rhs.listedAt && lhs.sysfsPath == rhs.sysfsPath
            && lhs.driver == rhs.driver && lhs.attributes.map(\.0) == rhs.attributes.map(\.0)
            && lhs.attributes.map(\.1) == rhs.attributes.map(\.1) && lhs.reason == rhs.reason && lhs.unreadable == rhs.unreadable
    }

    /// The subject of findings about it: its device path when known.
    public var subject: String { sysfsPath ?? listedAt }

    /// Evidence form.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("kind", .string(kind.rawValue)), ("name", .string(name)), ("listed_at", .string(listedAt)),
            ("sysfs_path", .optional(sysfsPath)), ("driver", .optional(driver)), ("reason", .string(reason)),
        ]
        if !attributes.isEmpty { members.append(("attributes", .object(attributes.map { ($0.0, .string($0.1)) }))) }
        if !unreadable.isEmpty { members.append(("unreadable", .array(unreadable.map(\.json)))) }
        return .object(members)
    }
}

/// A channel driver known to `modules.dep` (loadable) or `modules.builtin`.
public struct ChannelModule: Sendable, Equatable {
    /// Normalised module name.
    public var name: String
    /// Path relative to `lib/modules/<release>/`.
    public var path: String
    /// The channel it serves.
    public var kind: ChannelKind
    /// Built into the kernel (modprobe.d cannot stop it).
    public var builtin: Bool

    /// Makes a record.
    public init(name: String, path: String, kind: ChannelKind, builtin: Bool) {
        self.name = name
        self.path = path
        self.kind = kind
        self.builtin = builtin
    }
}

/// Serial, USB serial, modem, parallel, FireWire, PCMCIA, IrDA and optical devices, and their
/// drivers against the modprobe configuration.
public struct ChannelFacts: Sendable, Equatable {
    /// The kernel release whose `lib/modules` was read.
    public var kernelRelease: String
    /// Every source read, with its outcome.
    public var sources: [FactSource]
    /// Channel devices present.
    public var devices: [ChannelDevice]
    /// `ttyS*` entries whose `type` is 0: the kernel's placeholders for ports with no UART.
    public var placeholderPorts: [String]
    /// Channel drivers in `modules.dep` and `modules.builtin`.
    public var modules: [ChannelModule]
    /// Loaded modules (`/proc/modules`), normalised.
    public var loadedModules: [String]
    /// Modprobe directives, in the order modprobe reads them.
    public var modprobe: [ModprobeDirective]
    /// Modules refused on the kernel command line.
    public var commandLineBlacklist: [String]
    /// Things skipped on the way.
    public var notes: [String]

    /// Makes facts; all empty by default.
    public init(kernelRelease: String = "", sources: [FactSource] = [], devices: [ChannelDevice] = [], placeholderPorts: [String] = [], modules: [ChannelModule] = [], loadedModules: [String] = [], modprobe: [ModprobeDirective] = [], commandLineBlacklist: [String] = [], notes: [String] = []) {
        self.kernelRelease = kernelRelease
        self.sources = sources
        self.devices = devices
        self.placeholderPorts = placeholderPorts
        self.modules = modules
        self.loadedModules = loadedModules
        self.modprobe = modprobe
        self.commandLineBlacklist = commandLineBlacklist
        self.notes = notes
    }

    /// The recorded outcome for a source path.
    public func source(_ path: String) -> FactSource? { sources.first { $0.path == path } }

    /// How the modprobe configuration and the kernel command line treat a module: the same
    /// judgement `wireless.modules` makes.
    public func disposition(of module: String) -> ModuleDisposition {
        HardwareFacts(modprobe: modprobe, commandLineBlacklist: commandLineBlacklist).disposition(of: module)
    }
}
