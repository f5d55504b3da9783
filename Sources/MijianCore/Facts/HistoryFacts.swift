import Foundation

/// A saved network profile: a NetworkManager connection, a wpa_supplicant network, an iwd network, an
/// ifupdown stanza, a pppd peer or a wvdial dialer.
///
/// Only the type, name and SSID are kept; keys, passwords and certificates are never read into facts.
public struct SavedProfile: Sendable, Equatable {
    /// Which tool saved it.
    public enum Tool: String, Sendable {
        case networkManager = "NetworkManager", wpaSupplicant = "wpa_supplicant", iwd, ifupdown, pppd, wvdial
    }

    /// Which tool.
    public var tool: Tool
    /// The connection type as the tool writes it (`wifi`, `802-11-wireless`, `gsm`, `vpn`, `ethernet`, `psk`, …).
    public var type: String
    /// The profile's name (`id=`, the iwd file name, or the SSID).
    public var name: String
    /// The SSID when it is a Wi-Fi profile.
    public var ssid: String?
    /// The VPN service type or other subtype, when given.
    public var subtype: String?
    /// The file it is in (host path).
    public var path: String
    /// The line it starts on, when the file holds several.
    public var line: Int?
    /// The Wi-Fi mode (NetworkManager's `[wifi] mode=`): `infrastructure`, `ap`, `adhoc`, `mesh`.
    public var mode: String?

    /// Makes a profile record.
    public init(tool: Tool, type: String, name: String, ssid: String? = nil, subtype: String? = nil, path: String, line: Int? = nil, mode: String? = nil) {
        self.tool = tool
        self.type = type
        self.name = name
        self.ssid = ssid
        self.subtype = subtype
        self.path = path
        self.line = line
        self.mode = mode
    }

    /// Whether the profile makes this machine a network others join: an access point (a
    /// hotspot) or an ad-hoc or mesh network.
    public var isHotspot: Bool { mode.map { ["ap", "adhoc", "mesh"].contains($0.lowercased()) } ?? false }

    /// What kind of link it is, for the wireless rule; nil for wired links.
    public var category: String? {
        switch type.lowercased() {
        case "wifi", "802-11-wireless", "wifi-p2p", "802-11-olpc-mesh", "psk", "open", "8021x", "wpa", "wep": return "Wi-Fi"
        case "gsm", "cdma", "wimax": return "mobile broadband"
        case "bluetooth": return "Bluetooth"
        case "vpn", "wireguard", "openvpn", "ipsec": return "VPN"
        case "ppp": return "dial-up (PPP)"
        default: return nil
        }
    }

    /// `file` or `file:line`.
    public var location: String { line.map { "\(path):\($0)" } ?? path }

    /// Evidence form (no secrets: only the fields above exist).
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("tool", .string(tool.rawValue)), ("type", .string(type)), ("name", .string(name)), ("ssid", .optional(ssid)),
            ("subtype", .optional(subtype)), ("path", .string(path)), ("line", line.map { .integer($0) } ?? .null),
        ]
        if let mode { members.append(("mode", .string(mode))) }
        return .object(members)
    }
}

/// A configuration that makes this machine a Wi-Fi access point: hostapd's, or create_ap's.
public struct AccessPointConfig: Sendable, Equatable {
    /// The tool it configures.
    public enum Tool: String, Sendable {
        case hostapd
        case createAP = "create_ap"
    }

    /// Which tool.
    public var tool: Tool
    /// The file (host path).
    public var path: String
    /// The wireless interface it serves (`interface=`, `WIFI_IFACE=`).
    public var interface: String?
    /// The network name it offers.
    public var ssid: String?
    /// The link it shares (create_ap's `INTERNET_IFACE`), when named.
    public var shares: String?

    /// Makes a record.
    public init(tool: Tool, path: String, interface: String? = nil, ssid: String? = nil, shares: String? = nil) {
        self.tool = tool
        self.path = path
        self.interface = interface
        self.ssid = ssid
        self.shares = shares
    }

    /// Evidence form (no passphrase is kept).
    public var json: JSONValue {
        .object([
            ("tool", .string(tool.rawValue)), ("path", .string(path)), ("interface", .optional(interface)), ("ssid", .optional(ssid)),
            ("shares", .optional(shares)),
        ])
    }
}

/// A Bluetooth device paired with an adapter (`/var/lib/bluetooth/<adapter>/<device>`).
public struct BluetoothPairing: Sendable, Equatable {
    /// The adapter's address.
    public var adapter: String
    /// The paired device's address.
    public var device: String
    /// The device's name from `info`, when present.
    public var name: String?
    /// The directory (host path).
    public var path: String

    /// Makes a record.
    public init(adapter: String, device: String, name: String? = nil, path: String) {
        self.adapter = adapter
        self.device = device
        self.name = name
        self.path = path
    }

    /// Evidence form.
    public var json: JSONValue {
        ["adapter": .string(adapter), "device": .string(device), "name": .optional(name), "path": .string(path)]
    }
}

/// A log file that holds kernel messages (`kern.log*`, `syslog*`) or a journal file.
public struct LogFile: Sendable, Equatable {
    /// Host path.
    public var path: String
    /// Last modification.
    public var modified: Date
    /// The first entry's time, when it could be read (plain text with an RFC 3339 or year-less
    /// syslog stamp, or a journal file header).
    public var firstEntry: Date?
    /// Size in bytes.
    public var size: Int64

    /// Makes a record.
    public init(path: String, modified: Date, firstEntry: Date? = nil, size: Int64 = 0) {
        self.path = path
        self.modified = modified
        self.firstEntry = firstEntry
        self.size = size
    }

    /// The earliest time the file proves: its first entry, else its modification time.
    public var reach: Date { firstEntry.map { min($0, modified) } ?? modified }

    /// Evidence form.
    public var json: JSONValue {
        [
            "path": .string(path), "modified": .string(RFC3339.string(from: modified)),
            "first_entry": .optional(firstEntry.map { RFC3339.string(from: $0) }), "size": .integer(size),
        ]
    }
}

/// How journald keeps its journal.
public struct JournalFacts: Sendable, Equatable {
    /// Whether `/var/log/journal` exists (with `Storage=auto` that makes the journal persistent).
    public var persistentDirectory: Bool
    /// Whether `/run/log/journal` exists (a volatile journal in use).
    public var volatileDirectory: Bool
    /// The last `Storage=` value found, nil when none (journald's default is `auto`).
    public var storage: String?
    /// Where that value was written (`file:line`).
    public var storageLocation: String?
    /// Journal files under `/var/log/journal`.
    public var persistentFiles: [LogFile]

    /// Makes journal facts.
    public init(persistentDirectory: Bool = false, volatileDirectory: Bool = false, storage: String? = nil, storageLocation: String? = nil, persistentFiles: [LogFile] = []) {
        self.persistentDirectory = persistentDirectory
        self.volatileDirectory = volatileDirectory
        self.storage = storage
        self.storageLocation = storageLocation
        self.persistentFiles = persistentFiles
    }

    /// Whether journald writes to disk: `persistent`, or `auto` with `/var/log/journal` present.
    public var isPersistent: Bool {
        switch (storage ?? "auto").lowercased() {
        case "persistent": return true
        case "auto": return persistentDirectory
        default: return false
        }
    }
}

/// Saved wireless/VPN profiles, Bluetooth pairings, USB history and log retention.
public struct HistoryFacts: Sendable, Equatable {
    /// Every source read, with its outcome.
    public var sources: [FactSource]
    /// Saved network profiles of every tool (wired ones included; the check filters).
    public var profiles: [SavedProfile]
    /// Bluetooth pairings.
    public var pairings: [BluetoothPairing]
    /// hostapd and create_ap configurations.
    public var accessPoints: [AccessPointConfig] = []
    /// The journal's configuration and files.
    public var journal: JournalFacts
    /// Plain-text kernel and system logs (`/var/log/kern.log*`, `/var/log/syslog*`).
    public var kernelLogs: [LogFile]
    /// Things skipped on the way.
    public var notes: [String]

    /// Makes facts; all empty by default.
    public init(sources: [FactSource] = [], profiles: [SavedProfile] = [], pairings: [BluetoothPairing] = [], journal: JournalFacts = JournalFacts(), kernelLogs: [LogFile] = [], notes: [String] = []) {
        self.sources = sources
        self.profiles = profiles
        self.pairings = pairings
        self.journal = journal
        self.kernelLogs = kernelLogs
        self.notes = notes
    }

    /// The recorded outcome for a source path.
    public func source(_ path: String) -> FactSource? { sources.first { $0.path == path } }
}
