import Foundation
import MijianCore
import MijianEvidence
import Yams

extension MijianError.Code {
    /// The agent configuration file is malformed or names an unknown key.
    public static let configInvalid = MijianError.Code("config.invalid")
    /// The agent configuration file names a key it does not know.
    public static let configUnknownKey = MijianError.Code("config.unknown-key")
}

/// How sealed reports leave the machine.
public enum DeliveryMode: String, Sendable, CaseIterable {
    /// HTTPS POST to the collector.
    case https
    /// Copies into a directory an officer carries to the collector (air gap).
    case dropDir = "drop_dir"
    /// Reports stay in the spool (a unit that collects the spool by hand).
    case none
}

/// `mijian run`'s own settings, from `/etc/mijian/agent.yaml` (or `--config FILE`): where the
/// collector is, which CA to trust, the schedule, the spool's bound, what to watch.
public struct AgentConfiguration: Sendable, Equatable {
    /// The default location of the file.
    public static let defaultPath = "/etc/mijian/agent.yaml"

    /// Where reports go.
    public struct Delivery: Sendable, Equatable {
        /// HTTPS, drop directory, or none.
        public var mode: DeliveryMode = .none
        /// The collector's base URL (`https://10.0.0.5:8443`); reports go to `<url>/v1/reports`.
        public var url: String?
        /// The only CA (PEM) trusted for the collector's certificate.
        public var caFile: String?
        /// The directory envelopes are copied to in `drop_dir` mode.
        public var dropDir: String?
        /// The longest wait between two tries while the collector is away.
        public var retryMax: Duration = .seconds(300)

        /// No delivery.
        public init() {}
    }

    /// Delivery settings.
    public var delivery = Delivery()
    /// A full audit at least this often.
    public var auditInterval: Duration = .seconds(3600)
    /// A report at least this often.
    public var reportInterval: Duration = .seconds(900)
    /// Quiet time after a network change before the audit runs (bursts make one audit).
    public var debounce: Duration = .seconds(1)
    /// The spool directory; nil: `state_dir/spool`.
    public var spoolDir: String?
    /// The spool's bound in bytes; past it, reports without a failure are compacted.
    public var spoolMaxBytes: Int = 64 << 20
    /// Whether the live traffic watch runs.
    public var trafficEnabled = true
    /// Links to capture on; empty: the policy's `networks.links`, else every link that is up except loopback.
    public var trafficLinks: [String] = []
    /// The kernel ring of each link's capture, in bytes: mapped into the service for as long as it runs,
    /// so it is most of the service's memory; a burst larger than it is dropped (and reported).
    public var trafficBufferBytes: Int = 2 << 20
    /// Whether the USB monitor runs (when this build has one).
    public var usbEnabled = true
    /// The file the settings came from (for messages), or nil for the defaults.
    public var source: String?

    /// The defaults: no delivery, hourly audits, a report every 15 minutes.
    public init() {}

    /// The spool directory given the state directory.
    public func spoolDirectory(stateDir: String) -> String { spoolDir ?? "\(stateDir)/spool" }

    /// Parses the YAML text; `file` names the source in errors, which give file:line: key.
    public static func parse(_ bytes: [UInt8], file: String) throws(MijianError) -> AgentConfiguration {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw MijianError(.configInvalid, "\(file): not UTF-8 text", path: file)
        }
        let reader = YAMLReader(file: file)
        var config = AgentConfiguration()
        config.source = file
        let root: Node
        do {
            root = try reader.root(text)
        } catch {
            throw MijianError(.configInvalid, error.message, path: file)
        }
        do {
            try config.read(root, reader)
        } catch {
            // The policy reader's codes name policies; this file is the agent's own.
            throw MijianError(error.code == .policyUnknownKey ? .configUnknownKey : .configInvalid, error.message, path: file)
        }
        return config
    }

    private mutating func read(_ root: Node, _ reader: YAMLReader) throws(MijianError) {
        let top: Set = ["delivery", "audit_interval", "report_interval", "debounce", "spool", "traffic", "usb"]
        var deliveryNode: Node?
        for (key, _, value) in try reader.mapping(root, "", allowed: top) {
            switch key {
            case "delivery":
                deliveryNode = value
                for (sub, _, v) in try reader.mapping(value, key, allowed: ["mode", "url", "ca_file", "drop_dir", "retry_max"]) {
                    switch sub {
                    case "mode": delivery.mode = try reader.choice(v, "delivery.mode", as: DeliveryMode.self)
                    case "url":
                        let url = try reader.string(v, "delivery.url")
                        guard let parsed = URL(string: url), parsed.scheme == "https", let host = parsed.host, !host.isEmpty,
                            parsed.query == nil
                        else {
                            throw reader.error(v, "delivery.url", "expected the collector's https:// base URL such as https://10.0.0.5:8443, got \"\(url)\"")
                        }
                        delivery.url = url.hasSuffix("/") ? String(url.dropLast()) : url
                    case "ca_file": delivery.caFile = try absolute(v, "delivery.ca_file", reader)
                    case "retry_max": delivery.retryMax = try duration(v, "delivery.retry_max", reader, at: .seconds(1)...(.seconds(86_400)))
                    default: delivery.dropDir = try absolute(v, "delivery.drop_dir", reader)
                    }
                }
            case "audit_interval": auditInterval = try duration(value, key, reader, at: .seconds(10)...(.seconds(7 * 86_400)))
            case "report_interval": reportInterval = try duration(value, key, reader, at: .seconds(1)...(.seconds(86_400)))
            case "debounce": debounce = try duration(value, key, reader, at: .zero...(.seconds(60)))
            case "spool":
                for (sub, _, v) in try reader.mapping(value, key, allowed: ["dir", "max_bytes"]) {
                    if sub == "dir" { spoolDir = try absolute(v, "spool.dir", reader) }
                    else { spoolMaxBytes = try byteSize(v, "spool.max_bytes", reader) }
                }
            case "traffic":
                for (sub, _, v) in try reader.mapping(value, key, allowed: ["enabled", "links", "buffer"]) {
                    if sub == "enabled" { trafficEnabled = try reader.bool(v, "traffic.enabled") }
                    else if sub == "buffer" {
                        let text = try reader.string(v, "traffic.buffer")
                        guard let bytes = AgentConfiguration.byteSize(text), bytes >= 256 << 10, bytes <= 1 << 30 else {
                            throw reader.error(v, "traffic.buffer", "expected a capture buffer from 256K to 1G such as 2M or 8M, got \"\(text)\"")
                        }
                        trafficBufferBytes = bytes
                    } else {
                        trafficLinks = try reader.strings(v, "traffic.links")
                        for (index, link) in trafficLinks.enumerated() where link.isEmpty || link.contains("/") || link.utf8.count > 15 {
                            throw reader.error(try reader.sequence(v, "traffic.links")[index], "traffic.links[\(index)]", "\"\(link)\" is not an interface name")
                        }
                    }
                }
            case "usb":
                for (_, _, v) in try reader.mapping(value, key, allowed: ["enabled"]) { usbEnabled = try reader.bool(v, "usb.enabled") }
            default: break
            }
        }
        switch delivery.mode {
        case .https:
            if delivery.url == nil { throw reader.error(deliveryNode ?? root, "delivery.url", "required when delivery.mode is https") }
            if delivery.caFile == nil {
                throw reader.error(deliveryNode ?? root, "delivery.ca_file", "required when delivery.mode is https: the only CA trusted for the collector")
            }
        case .dropDir:
            if delivery.dropDir == nil { throw reader.error(deliveryNode ?? root, "delivery.drop_dir", "required when delivery.mode is drop_dir") }
        case .none: break
        }
    }

    private func absolute(_ node: Node, _ key: String, _ reader: YAMLReader) throws(MijianError) -> String {
        let path = try reader.string(node, key)
        guard path.hasPrefix("/") else { throw reader.error(node, key, "expected an absolute path, got \"\(path)\"") }
        return path
    }

    private func duration(_ node: Node, _ key: String, _ reader: YAMLReader, at range: ClosedRange<Duration>) throws(MijianError) -> Duration {
        let text = try reader.string(node, key)
        guard let value = AgentConfiguration.duration(text) else {
            throw reader.error(node, key, "expected a duration such as 30s, 15m, 1h or 500ms, got \"\(text)\"")
        }
        guard range.contains(value) else {
            throw reader.error(node, key, "\(text) is outside \(AgentConfiguration.text(range.lowerBound))–\(AgentConfiguration.text(range.upperBound))")
        }
        return value
    }

    private func byteSize(_ node: Node, _ key: String, _ reader: YAMLReader) throws(MijianError) -> Int {
        let text = try reader.string(node, key)
        guard let value = AgentConfiguration.byteSize(text), value >= 4096, value <= 1 << 40 else {
            throw reader.error(node, key, "expected a size from 4096 bytes to 1T such as 67108864, 512K, 64M or 1G, got \"\(text)\"")
        }
        return value
    }

    /// Parses `500ms`, `30s`, `15m`, `1h`, `2d` (one whole number and one unit).
    public static func duration(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (unit, millis) in units where text.hasSuffix(unit) {
            let digits = text.dropLast(unit.count)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits.count <= 9,
                let number = Int64(digits)
            else { continue }
            return .milliseconds(number * millis)
        }
        return nil
    }

    /// Parses `4096`, `512K`, `64M`, `1G` (powers of 1024).
    public static func byteSize(_ text: String) -> Int? {
        let units: [(String, Int)] = [("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)]
        for (unit, factor) in units where text.uppercased().hasSuffix(unit) {
            guard let number = Int(text.dropLast()), number >= 0, number <= (1 << 40) / factor else { return nil }
            return number * factor
        }
        return Int(text)
    }

    /// `15m`, `1h`, `30s`, `500ms`: the shortest exact form.
    public static func text(_ duration: Duration) -> String {
        let millis = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where millis >= size && millis % size == 0 {
            return "\(millis / size)\(unit)"
        }
        return "\(millis)ms"
    }

    /// The largest agent.yaml read.
    public static let maxFileBytes = 1 << 20

    /// Loads the file at `path`; a missing default file means the defaults, a missing named file is an error.
    /// The size is checked on the open descriptor before a byte is read.
    public static func load(_ path: String?) throws(MijianError) -> AgentConfiguration {
        let file = path ?? defaultPath
        let bytes: [UInt8]
        do {
            bytes = try EvidenceFiles.read(file, limit: maxFileBytes)
        } catch where error.code == .notFound {
            if path == nil { return AgentConfiguration() }
            throw MijianError(.notFound, "cannot read the agent configuration \(file): no such file", path: file, errno: error.errno)
        } catch where error.code == .tooLarge {
            throw MijianError(.tooLarge, "the agent configuration \(file) is larger than 1 MiB: \(error.message)", path: file)
        } catch {
            throw MijianError(error.code, "cannot read the agent configuration \(file): \(error.message)", path: file, errno: error.errno)
        }
        return try parse(bytes, file: file)
    }
}
