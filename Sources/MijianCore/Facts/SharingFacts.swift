import Foundation

/// One section of `smb.conf` (after includes), or one usershare.
public struct SambaShare: Sendable, Equatable {
    /// The section name (`homes`, `printers`, `data`); a usershare's name.
    public var name: String
    /// Its parameters, keys lower-cased with single spaces (`guest ok`, `read only`).
    public var parameters: [String: String]
    /// Where the section starts (`file:line`), or the usershare file.
    public var location: String
    /// Whether it came from the usershares directory.
    public var isUsershare: Bool

    /// Makes a record.
    public init(name: String, parameters: [String: String], location: String, isUsershare: Bool = false) {
        self.name = name
        self.parameters = parameters
        self.location = location
        self.isUsershare = isUsershare
    }

    /// Whether Samba offers it: not `[global]`, not `available = no`; `[printers]` only with
    /// printers loaded. A yes/no parameter is read as Samba reads it.
    public func isOffered(global: [String: String]) -> Bool {
        let lowered = name.lowercased()
        guard lowered != "global", SambaShare.boolean(parameters["available"]) ?? true else { return false }
        if lowered == "printers" { return SambaShare.boolean(global["load printers"]) ?? true }
        return true
    }

    /// Samba's reading of a boolean (`yes/no`, `true/false`, `1/0`, `on/off`).
    public static func boolean(_ text: String?) -> Bool? {
        switch text?.lowercased() {
        case "yes", "true", "1", "on": return true
        case "no", "false", "0", "off": return false
        default: return nil
        }
    }

    /// Evidence form.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("name", .string(name)), ("location", .string(location))]
        if isUsershare { members.append(("usershare", .bool(true))) }
        for key in ["path", "available", "browseable", "guest ok", "read only", "printable", "valid users", "hosts allow"] {
            if let value = parameters[key] { members.append((key, .string(value))) }
        }
        return .object(members)
    }
}

/// One export of `/etc/exports` or `exports.d/*.exports`.
public struct NFSExport: Sendable, Equatable {
    /// The exported directory.
    public var path: String
    /// Its clients with options, as written (`10.1.0.0/16(ro,sync)`, `*(rw)`).
    public var clients: [String]
    /// `file:line`.
    public var location: String

    /// Makes a record.
    public init(path: String, clients: [String], location: String) {
        self.path = path
        self.clients = clients
        self.location = location
    }

    /// Evidence form.
    public var json: JSONValue { ["path": .string(path), "clients": .array(clients.map { .string($0) }), "location": .string(location)] }
}

/// One CUPS queue of `printers.conf`.
public struct PrinterQueue: Sendable, Equatable {
    /// The queue name.
    public var name: String
    /// `DeviceURI`, where jobs go.
    public var deviceURI: String?
    /// `Shared Yes`.
    public var shared: Bool
    /// `file:line` of its section.
    public var location: String

    /// Makes a record.
    public init(name: String, deviceURI: String?, shared: Bool, location: String) {
        self.name = name
        self.deviceURI = deviceURI
        self.shared = shared
        self.location = location
    }

    /// Schemes whose host part is where the jobs go over the network.
    public static let networkSchemes: Set = ["ipp", "ipps", "http", "https", "socket", "lpd", "smb", "ipp14"]

    /// The host of a network device URI (`ipp://HOST:631/…`, `socket://HOST:9100`); nil for a
    /// local device (`usb://HP/…` names a maker, not a host) or a URI without one.
    public var deviceHost: String? {
        guard let uri = deviceURI, let scheme = uri.range(of: "://"), let name = self.scheme, Self.networkSchemes.contains(name) else { return nil }
        var rest = uri[scheme.upperBound...]
        if let at = rest.lastIndex(of: "@"), !rest[..<at].contains("/") { rest = rest[rest.index(after: at)...] }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            return String(rest[rest.index(after: rest.startIndex)..<close])
        }
        let end = rest.firstIndex { $0 == ":" || $0 == "/" || $0 == "?" } ?? rest.endIndex
        let host = String(rest[..<end])
        return host.isEmpty ? nil : host
    }

    /// The URI's scheme (`ipp`, `socket`, `usb`, `lpd`, `dnssd` …).
    public var scheme: String? { deviceURI.flatMap { uri in uri.range(of: ":").map { String(uri[..<$0.lowerBound]).lowercased() } } }

    /// Evidence form; the URI's user and password, if any, are not repeated.
    public var json: JSONValue {
        ["name": .string(name), "device_uri": .optional(deviceURI.map(Self.withoutCredentials)), "shared": .bool(shared), "location": .string(location)]
    }

    /// A URI with any `user:password@` removed.
    public static func withoutCredentials(_ uri: String) -> String {
        guard let scheme = uri.range(of: "://") else { return uri }
        let rest = uri[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return uri }
        return String(uri[..<scheme.upperBound]) + rest[rest.index(after: at)...]
    }
}

/// Server programs whose configuration shares something, and whether each is installed.
public enum SharingServer: String, Sendable, CaseIterable {
    case samba, nfs, cups, avahi

    /// The daemon whose presence makes the configuration live.
    public var daemon: String {
        switch self {
        case .samba: return "/usr/sbin/smbd"
        case .nfs: return "/usr/sbin/rpc.nfsd"
        case .cups: return "/usr/sbin/cupsd"
        case .avahi: return "/usr/sbin/avahi-daemon"
        }
    }
}

/// What the machine shares: Samba, NFS, CUPS, avahi; and the printers it sends to.
public struct SharingFacts: Sendable, Equatable {
    /// Every source read, with its outcome.
    public var sources: [FactSource]
    /// The servers whose daemon is installed.
    public var installedServers: Set<SharingServer>
    /// `[global]` parameters of `smb.conf`.
    public var sambaGlobal: [String: String]
    /// Sections of `smb.conf` and usershares.
    public var sambaShares: [SambaShare]
    /// Includes that could not be followed (a `%` substitution), `file:line: path`.
    public var unresolvedIncludes: [String]
    /// NFS exports.
    public var exports: [NFSExport]
    /// CUPS queues.
    public var printers: [PrinterQueue]
    /// `Listen` and `Port` directives of `cupsd.conf`.
    public var cupsListen: [ConfigSetting]
    /// `Browsing` of `cupsd.conf`, when set.
    public var cupsBrowsing: ConfigSetting?
    /// Service files of `/etc/avahi/services`.
    public var avahiServices: [String]
    /// `publish-*` and `disable-publishing` of `avahi-daemon.conf`.
    public var avahiPublishing: [ConfigSetting]
    /// Lines of `/var/log/cups/page_log` (print records), when there is one.
    public var pageLogLines: Int?
    /// The time of the page log's last record (`[06/Dec/2026:10:00:00 +0800]` without brackets);
    /// the rest of a record, user and document name, is not kept.
    public var lastPageRecord: String?

    /// Makes facts; all empty by default.
    public init(sources: [FactSource] = [], installedServers: Set<SharingServer> = [], sambaGlobal: [String: String] = [:], sambaShares: [SambaShare] = [], unresolvedIncludes: [String] = [], exports: [NFSExport] = [], printers: [PrinterQueue] = [], cupsListen: [ConfigSetting] = [], cupsBrowsing: ConfigSetting? = nil, avahiServices: [String] = [], avahiPublishing: [ConfigSetting] = [], pageLogLines: Int? = nil, lastPageRecord: String? = nil) {
        self.sources = sources
        self.installedServers = installedServers
        self.sambaGlobal = sambaGlobal
        self.sambaShares = sambaShares
        self.unresolvedIncludes = unresolvedIncludes
        self.exports = exports
        self.printers = printers
        self.cupsListen = cupsListen
        self.cupsBrowsing = cupsBrowsing
        self.avahiServices = avahiServices
        self.avahiPublishing = avahiPublishing
        self.pageLogLines = pageLogLines
        self.lastPageRecord = lastPageRecord
    }

    /// The recorded outcome for a source path.
    public func source(_ path: String) -> FactSource? { sources.first { $0.path == path } }
}
