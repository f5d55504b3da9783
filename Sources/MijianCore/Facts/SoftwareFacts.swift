import Foundation

/// One process of the process table (`/proc/PID/comm` and the first word of `cmdline`). The rest
/// of the command line is never kept: arguments may carry passwords.
public struct RunningProcess: Sendable, Equatable, Hashable {
    /// The process id.
    public var pid: Int
    /// `comm`: the kernel's name of the process (at most 15 bytes).
    public var name: String
    /// The last path component of `argv[0]`; empty for kernel threads.
    public var executable: String

    /// Makes a record.
    public init(pid: Int, name: String, executable: String) {
        self.pid = pid
        self.name = name
        self.executable = executable
    }

    /// Whether the process runs a program of this name: `comm` (truncated by the kernel to 15
    /// bytes) or the name of its executable.
    public func runs(_ program: String) -> Bool {
        executable == program || name == program || (program.utf8.count > 15 && name == String(decoding: program.utf8.prefix(15), as: UTF8.self))
    }

    /// Evidence form (`pid`, `comm`, `exe`).
    public var json: JSONValue { ["pid": .integer(pid), "comm": .string(name), "exe": .string(executable)] }
}

/// A systemd unit enabled through a link in a `.wants` or `.requires` directory of `/etc/systemd/system`.
public struct EnabledUnit: Sendable, Equatable, Hashable {
    /// The unit's name (`auditd.service`).
    public var name: String
    /// The link's path (`/etc/systemd/system/multi-user.target.wants/auditd.service`).
    public var path: String

    /// Makes a record.
    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

/// What runs and what starts at boot: the process table and the systemd units enabled.
public struct ServiceFacts: Sendable, Equatable {
    /// Every source read, with its outcome.
    public var sources: [FactSource]
    /// Processes; empty when no process table was under the root.
    public var processes: [RunningProcess]
    /// Whether a process table was read (`/proc` held process directories): on an offline disk
    /// it is not, and only what starts at boot can be said.
    public var processTableRead: Bool
    /// Units enabled under `/etc/systemd/system`.
    public var enabledUnits: [EnabledUnit]
    /// Units masked (a link to `/dev/null` in `/etc/systemd/system`): never started, whatever wants them.
    public var maskedUnits: [String] = []

    /// Makes facts; all empty by default.
    public init(sources: [FactSource] = [], processes: [RunningProcess] = [], processTableRead: Bool = false, enabledUnits: [EnabledUnit] = []) {
        self.sources = sources
        self.processes = processes
        self.processTableRead = processTableRead
        self.enabledUnits = enabledUnits
    }

    /// Processes running any of `programs`.
    public func running(_ programs: [String]) -> [RunningProcess] {
        processes.filter { process in programs.contains { process.runs($0) } }
    }

    /// Enabled units among `names`.
    public func enabled(_ names: [String]) -> [EnabledUnit] {
        enabledUnits.filter { names.contains($0.name) }
    }
}

/// Where an installed program was found.
public enum InstallKind: String, Sendable, CaseIterable, Hashable {
    /// A Debian package of `/var/lib/dpkg/status` in an installed state.
    case dpkg
    /// A directory under `/opt`.
    case opt
    /// A flatpak application (`/var/lib/flatpak/app/ID`).
    case flatpak
    /// A snap (`/snap/NAME` or `/var/lib/snapd/snaps/NAME_REV.snap`).
    case snap
    /// An install path a policy names, present.
    case path
}

/// One installed program.
public struct InstalledItem: Sendable, Equatable, Hashable {
    /// Where it was found.
    public var kind: InstallKind
    /// Its name: the package, the `/opt` directory, the flatpak id, the snap.
    public var name: String
    /// The version, when the source says it.
    public var version: String?
    /// dpkg's state word (`installed`, `unpacked`, `half-configured` …).
    public var state: String?
    /// The path that shows it (the status file, the directory).
    public var location: String

    /// Makes a record.
    public init(kind: InstallKind, name: String, version: String? = nil, state: String? = nil, location: String) {
        self.kind = kind
        self.name = name
        self.version = version
        self.state = state
        self.location = location
    }

    /// Evidence form.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("kind", .string(kind.rawValue)), ("name", .string(name))]
        if let version { members.append(("version", .string(version))) }
        if let state { members.append(("state", .string(state))) }
        members.append(("location", .string(location)))
        return .object(members)
    }
}

/// What is installed: dpkg's database, `/opt`, flatpak and snap.
public struct SoftwareFacts: Sendable, Equatable {
    /// The dpkg database.
    public static let dpkgStatus = "/var/lib/dpkg/status"
    /// Every source read, with its outcome.
    public var sources: [FactSource]
    /// Installed programs.
    public var installed: [InstalledItem]

    /// Makes facts; all empty by default.
    public init(sources: [FactSource] = [], installed: [InstalledItem] = []) {
        self.sources = sources
        self.installed = installed
    }

    /// The installed Debian package of this name.
    public func package(_ name: String) -> InstalledItem? {
        installed.first { $0.kind == .dpkg && $0.name == name }
    }

    /// The recorded outcome for a source path.
    public func source(_ path: String) -> FactSource? { sources.first { $0.path == path } }
}
