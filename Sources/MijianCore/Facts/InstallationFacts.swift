import Foundation

/// A trace that dates the installation of the operating system.
public enum InstallClueKind: String, Sendable, CaseIterable, Hashable {
    /// The Debian installer's logs (`/var/log/installer/`): written at the end of the installation.
    case installerLog = "installer-log"
    /// The root file system's birth time (statx `stx_btime`): when the file system was made.
    case rootBirth = "root-birth"
    /// The oldest entry of the package log (`/var/log/dpkg.log` and its rotated copies).
    case dpkgLog = "dpkg-log"
    /// `/etc/machine-id`'s birth (or modification) time: when this system's identity was made.
    case machineID = "machine-id"

    /// A short English name for sentences.
    public var label: String {
        switch self {
        case .installerLog: return "installer log"
        case .rootBirth: return "root file system birth"
        case .dpkgLog: return "first package log entry"
        case .machineID: return "machine-id"
        }
    }
}

/// One dated trace of the installation.
public struct InstallClue: Sendable, Equatable {
    /// What kind of trace it is.
    public var kind: InstallClueKind
    /// The date it gives.
    public var date: Date
    /// The host path it came from.
    public var source: String
    /// How the date was read (`first line of syslog`, `statx btime of the root directory`, …).
    public var detail: String

    /// Makes a clue.
    public init(kind: InstallClueKind, date: Date, source: String, detail: String) {
        self.kind = kind
        self.date = date
        self.source = source
        self.detail = detail
    }

    /// The evidence key of the date: `date` for a time read from a file's content, `modified` or
    /// `born` for a file's own time.
    public var dateKey: String {
        switch kind {
        case .installerLog, .dpkgLog: return "date"
        case .rootBirth: return "born"
        case .machineID: return "modified"
        }
    }

    /// Evidence form.
    public var json: JSONValue {
        .object([
            // A file time is named for what it is: `modified` for machine-id's mtime, `born` for a birth time.
            ("kind", .string(kind.rawValue)), (dateKey, .string(RFC3339.string(from: date))), ("source", .string(source)),
            ("detail", .string(detail)),
        ])
    }
}

/// Where another operating system was found.
public enum OtherSystemOrigin: String, Sendable, Hashable {
    /// A GRUB menu entry (os-prober's, or hand-written) for a system that is not this one.
    case grub
    /// A UEFI boot entry (`Boot####` variable) whose loader is not this system's.
    case efi
    /// A loader directory of another system on the EFI system partition (`/boot/efi/EFI/<vendor>`).
    case systemPartition = "esp"
}

/// Another operating system the machine can boot.
public struct OtherSystem: Sendable, Equatable {
    /// Where it was found.
    public var origin: OtherSystemOrigin
    /// The menu title or the EFI description.
    public var name: String
    /// The file it was read from.
    public var source: String
    /// The loader path, device or entry number, for evidence.
    public var detail: String

    /// Makes a record.
    public init(origin: OtherSystemOrigin, name: String, source: String, detail: String) {
        self.origin = origin
        self.name = name
        self.source = source
        self.detail = detail
    }

    /// Evidence form.
    public var json: JSONValue {
        .object([("origin", .string(origin.rawValue)), ("name", .string(name)), ("source", .string(source)), ("detail", .string(detail))])
    }
}

/// A virtualisation product whose guests were found.
public enum Hypervisor: String, Sendable, Hashable {
    case virtualbox, vmware, libvirt, qemu
}

/// One network adapter of a guest, as its configuration attaches it.
public struct GuestAdapter: Sendable, Equatable, Hashable {
    /// The attachment as the product names it (`NAT`, `bridged`, `network`, `user`, `hostonly`, `internal`).
    public var mode: String
    /// What it is attached to (`eth0`, `default`), when named.
    public var target: String?
    /// Whether the guest reaches past this host through it (NAT, bridged, a forwarding libvirt
    /// network, user-mode networking, macvtap); host-only and internal networks do not.
    public var reachesOut: Bool

    /// Makes an adapter record.
    public init(mode: String, target: String? = nil, reachesOut: Bool) {
        self.mode = mode
        self.target = target
        self.reachesOut = reachesOut
    }

    /// `NAT`, `bridged to eth0`.
    public var text: String { target.map { "\(mode) \($0)" } ?? mode }
}

/// What a guest's network adapters reach, as its configuration says.
public enum GuestNetwork: Sendable, Equatable, Hashable {
    /// The configuration has no network adapter attached to anything.
    case none
    /// Adapters attached to networks.
    case attached([GuestAdapter])
    /// How the guest's adapters attach could not be told (a disk image without a configuration:
    /// its network is chosen when it is started).
    case unknown(String)

    /// Whether an adapter reaches past the host.
    public var reachesOut: Bool {
        if case .attached(let adapters) = self { return adapters.contains { $0.reachesOut } }
        return false
    }
}

/// A virtual machine (or a disk image of one) found on the host.
public struct VirtualMachine: Sendable, Equatable {
    /// The product.
    public var hypervisor: Hypervisor
    /// The guest's name (from its configuration, or the image's file name).
    public var name: String
    /// The configuration or image file.
    public var source: String
    /// The user whose home held it, if any.
    public var user: String?
    /// Its network adapters.
    public var network: GuestNetwork
    /// The disk images it names or that were found, host paths.
    public var images: [String]

    /// Makes a record.
    public init(hypervisor: Hypervisor, name: String, source: String, user: String? = nil, network: GuestNetwork, images: [String] = []) {
        self.hypervisor = hypervisor
        self.name = name
        self.source = source
        self.user = user
        self.network = network
        self.images = images
    }

    /// Evidence form.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("hypervisor", .string(hypervisor.rawValue)), ("name", .string(name)), ("source", .string(source)), ("user", .optional(user)),
        ]
        switch network {
        case .none: members.append(("network", .string("none")))
        case .attached(let adapters):
            members.append(("network", .array(adapters.map { .object([("mode", .string($0.mode)), ("target", .optional($0.target)), ("reaches_out", .bool($0.reachesOut))]) })))
        case .unknown(let why): members.append(("network", .string("unknown: \(why)")))
        }
        if !images.isEmpty { members.append(("images", .array(images.map { .string($0) }))) }
        return .object(members)
    }
}

/// The kind of a usage record.
public enum UsageKind: String, Sendable, Hashable {
    /// A boot (the journal's boot list, or a `reboot` record of wtmp).
    case boot
    /// A login (wtmp `USER_PROCESS`).
    case login
    /// A failed login (btmp).
    case failedLogin = "failed-login"
}

/// When the machine was used, from one source: how many records, the first and the last.
public struct UsageSpan: Sendable, Equatable {
    /// What was counted.
    public var kind: UsageKind
    /// The file or directory read.
    public var source: String
    /// How many records.
    public var count: Int
    /// The oldest record.
    public var first: Date?
    /// The newest record.
    public var last: Date?
    /// Users seen (logins only), sorted.
    public var users: [String]

    /// Makes a span.
    public init(kind: UsageKind, source: String, count: Int, first: Date?, last: Date?, users: [String] = []) {
        self.kind = kind
        self.source = source
        self.count = count
        self.first = first
        self.last = last
        self.users = users
    }

    /// Evidence form.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("kind", .string(kind.rawValue)), ("source", .string(source)), ("count", .integer(count)),
            ("first", .optional(first.map { RFC3339.string(from: $0) })), ("last", .optional(last.map { RFC3339.string(from: $0) })),
        ]
        if !users.isEmpty { members.append(("users", .array(users.map { .string($0) }))) }
        return .object(members)
    }
}

/// When this operating system was installed, whether it was reinstalled, what else the machine
/// boots or runs, and when it was used (`host.installation`, and evidence for `net.history`).
public struct InstallationFacts: Sendable, Equatable {
    /// The installation date: the earliest of the installer log, the root file system's birth and
    /// the first package log entry; nil when none of them could be read.
    public var installedAt: Date?
    /// The trace `installedAt` came from.
    public var installedAtSource: InstallClue?
    /// Every dated trace read.
    public var clues: [InstallClue]
    /// Other operating systems in the boot menu or the firmware's boot entries.
    public var otherSystems: [OtherSystem]
    /// Virtual machines and their images.
    public var virtualMachines: [VirtualMachine]
    /// Boots and logins.
    public var usage: [UsageSpan]
    /// Every source read, with its outcome.
    public var sources: [FactSource]
    /// Things said about the sources (the root's birth time under `--root`, a file system without
    /// birth times, entries skipped).
    public var notes: [String]

    /// Makes facts; all empty by default.
    public init(installedAt: Date? = nil, installedAtSource: InstallClue? = nil, clues: [InstallClue] = [], otherSystems: [OtherSystem] = [], virtualMachines: [VirtualMachine] = [], usage: [UsageSpan] = [], sources: [FactSource] = [], notes: [String] = []) {
        self.installedAt = installedAt
        self.installedAtSource = installedAtSource
        self.clues = clues
        self.otherSystems = otherSystems
        self.virtualMachines = virtualMachines
        self.usage = usage
        self.sources = sources
        self.notes = notes
    }

    /// The recorded outcome for a source path.
    public func source(_ path: String) -> FactSource? { sources.first { $0.path == path } }

    /// The kinds of trace that date an installation (machine-id only says when the identity was made).
    public static let datingKinds: Set<InstallClueKind> = [.installerLog, .rootBirth, .dpkgLog]

    /// Dating traces further apart than this say the system was reinstalled, restored or copied.
    public static let disagreement: TimeInterval = 7 * 86_400

    /// The kinds of trace that a reinstallation makes anew. The package log is not one: it is
    /// rotated (monthly, twelve kept), so a first entry later than the installation is normal.
    public static let reinstallKinds: Set<InstallClueKind> = [.installerLog, .rootBirth]

    /// The latest installer log or root file system birth when it is more than `disagreement`
    /// after `installedAt`: a reinstallation over kept files (a package log older than the
    /// installer's log), a restore onto a new file system, or a copy.
    public var reinstalledAt: InstallClue? {
        guard let installedAt else { return nil }
        let latest = clues.filter { Self.reinstallKinds.contains($0.kind) }.max { $0.date < $1.date }
        guard let latest, latest.date.timeIntervalSince(installedAt) > Self.disagreement else { return nil }
        return latest
    }

    /// Sets `installedAt` from the clues: the earliest dating clue.
    public mutating func settleInstallDate() {
        let dating = clues.filter { Self.datingKinds.contains($0.kind) }.sorted { $0.date < $1.date }
        installedAtSource = dating.first
        installedAt = dating.first?.date
    }
}
