import Crypto
import Foundation
import Yams

/// What a host profile allows: the unit's networks, resolvers, the media ledger, rule overrides.
public struct Policy: Sendable, Equatable {
    /// Which kind of machine the policy is for.
    public enum Profile: String, Sendable, CaseIterable { case classified, unclassified }
    /// Whether USB storage is only reported or also blocked.
    public enum USBMode: String, Sendable, CaseIterable { case audit, enforce }
    /// Kinds of USB interface a policy may allow besides HID and hubs (`usb.allow`). Storage is
    /// allowed only through the media ledger; wireless, phone and tethering interfaces never.
    public enum USBAllowKind: String, Sendable, CaseIterable { case hid, hub, printer, audio, video, smartcard, other }

    /// One registered removable medium (台账 entry).
    public struct LedgerEntry: Sendable, Equatable, Hashable {
        /// idVendor, four lower-case hex digits.
        public var vendor: String
        /// idProduct, four lower-case hex digits.
        public var product: String
        /// The USB serial string.
        public var serial: String
        /// The number on its classification label.
        public var label: String?
        /// Its classification.
        public var classification: Classification?
        /// 责任人.
        public var responsible: String?

        /// Makes a ledger entry; ids are normalised to lower case.
        public init(vendor: String, product: String, serial: String, label: String? = nil, classification: Classification? = nil, responsible: String? = nil) {
            self.vendor = vendor.lowercased()
            self.product = product.lowercased()
            self.serial = serial
            self.label = label
            self.classification = classification
            self.responsible = responsible
        }

        /// Whether a device with these ids and serial is this medium.
        public func matches(vendor: String, product: String, serial: String?) -> Bool {
            self.vendor == vendor.lowercased() && self.product == product.lowercased() && serial == self.serial
        }
    }

    /// A per-rule override.
    public struct RuleOverride: Sendable, Equatable {
        /// False turns the rule off (its finding becomes notchecked, saying so).
        public var enabled: Bool
        /// A severity replacing the rule's default.
        public var severity: Severity?

        /// Makes an override.
        public init(enabled: Bool = true, severity: Severity? = nil) {
            self.enabled = enabled
            self.severity = severity
        }
    }

    /// Settings of the traffic watch.
    public struct Traffic: Sendable, Equatable {
        /// Count link-local peers as outbound.
        public var flagLinkLocal = false
        /// Count multicast and broadcast as outbound.
        public var flagMulticast = false
        /// Most flows kept; the rest are counted as cut.
        public var maxFlows = 65_536

        /// Defaults.
        public init() {}
    }

    /// Settings the collector reads.
    public struct Collector: Sendable, Equatable {
        /// A machine with no report for longer than this is silent.
        public var silentAfterDays = 7

        /// Defaults.
        public init() {}
    }

    /// The policy's id.
    public var id: String
    /// The policy's version.
    public var version: String
    /// Host profile.
    public var profile: Profile
    /// The unit's own networks.
    public var unitNetworks: [IPNetwork]
    /// Peers outside the unit that may be reached.
    public var allowedDestinations: [IPNetwork]
    /// Network links that may be up besides loopback (`networks.links`): names, or prefixes ending in `*`.
    /// Empty: any one link.
    public var allowedLinks: [String] = []
    /// The policy says its networks (unit, allowed destinations, resolvers) include public address
    /// space (`networks.covers_public_space: true`); without it such a policy is refused. See `publicSpace`.
    public var coversPublicSpace = false
    /// The unit's own resolvers.
    public var dnsResolvers: [IPAddress]
    /// DNS names that stay inside the unit.
    public var dnsAllowedSuffixes: [String]
    /// Registered removable media.
    public var ledger: [LedgerEntry]
    /// Audit or enforce.
    public var usbMode: USBMode
    /// Interface kinds the live USB control lets bind a driver (`usb.allow`; default HID and hubs).
    public var usbAllow: Set<USBAllowKind> = [.hid, .hub]
    /// Outbound channels the unit keeps on this machine (`channels.allow`, e.g. `[optical-read]`):
    /// present and allowed, they are listed, not failed. Modems and IrDA are never allowed.
    public var channelsAllow: Set<ChannelKind> = []
    /// Identity authentication per classification level, lockout, sshd and screen locks (`auth`).
    public var auth = AuthPolicy()
    /// Accepted malware scanners and their signatures' maximum age (`malware`).
    public var malware = MalwarePolicy()
    /// Prohibited software beyond the built-in list, and exemptions (`software`).
    public var software = SoftwarePolicy()
    /// What `net.history` reports of visited pages (`history.report`: host or url).
    public var history = HistoryPolicy()
    /// Where `data.markings` looks for classified markings (`markings:`).
    public var markings = MarkingScope()
    /// Per-rule overrides.
    public var rules: [String: RuleOverride]
    /// Where the agent keeps its key and chain state, when not the default.
    public var stateDir: String?
    /// Traffic watch settings.
    public var traffic: Traffic
    /// Collector settings.
    public var collector: Collector
    /// SHA-256 (hex) of the file's bytes.
    public var sha256: String

    /// Whether an address belongs to the unit's networks.
    public func isUnitAddress(_ address: IPAddress) -> Bool { unitNetworks.contains { $0.contains(address) } }

    /// Whether an address is the unit's or an allowed destination.
    public func isAllowedPeer(_ address: IPAddress) -> Bool {
        isUnitAddress(address) || allowedDestinations.contains { $0.contains(address) }
    }

    /// Whether `networks.links` names this link (exactly, or by a prefix ending in `*`).
    public func isAllowedLink(_ name: String) -> Bool {
        allowedLinks.contains { pattern in
            pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
        }
    }

    /// Whether a DNS name stays inside the unit (equal to or under an allowed suffix).
    public func isAllowedName(_ name: String) -> Bool {
        let name = name.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        return dnsAllowedSuffixes.contains { suffix in
            let suffix = suffix.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
            return name == suffix || name.hasSuffix("." + suffix)
        }
    }

    /// The severity a rule's failures carry under this policy.
    public func severity(for rule: RuleInfo) -> Severity { rules[rule.id]?.severity ?? rule.defaultSeverity }

    /// Whether a rule is enabled.
    public func isEnabled(_ ruleID: String) -> Bool { rules[ruleID]?.enabled ?? true }

    /// `{id, version, sha256}` for reports.
    public var info: PolicyInfo { PolicyInfo(id: id, version: version, sha256: sha256) }

    /// The digest a policy parsed from `bytes` carries (SHA-256 of the file, lower-case hex).
    public static func digest(of bytes: [UInt8]) -> String { Hex.lower(SHA256.hash(data: bytes)) }

    /// Parses policy YAML; `file` names the source in errors.
    public static func parse(_ bytes: [UInt8], file: String) throws(MijianError) -> Policy {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw MijianError(.policyInvalid, "\(file): not UTF-8 text", path: file)
        }
        let reader = YAMLReader(file: file)
        let root = try reader.root(text)
        var id: String?
        var version: String?
        var profile: Profile?
        var policy = Policy(
            id: "", version: "", profile: .classified, unitNetworks: [], allowedDestinations: [], dnsResolvers: [],
            dnsAllowedSuffixes: [], ledger: [], usbMode: .audit, rules: [:], stateDir: nil, traffic: Traffic(),
            collector: Collector(), sha256: digest(of: bytes))
        let top: Set = ["id", "version", "profile", "networks", "dns", "media", "usb", "rules", "state_dir", "traffic", "collector", "channels", "auth", "malware", "software", "history", "markings"]
        // The lists whose addresses may reach public space, kept to name their lines once the whole file is read.
        var publicCandidates = PublicSpaceCandidates()
        for (key, _, value) in try reader.mapping(root, "", allowed: top) {
            switch key {
            case "id": id = try reader.string(value, key)
            case "version": version = try reader.string(value, key)
            case "profile": profile = try reader.choice(value, key, as: Profile.self)
            case "state_dir": policy.stateDir = try reader.string(value, key)
            case "networks":
                let allowed: Set = ["unit", "allowed_destinations", "links", "covers_public_space"]
                for (sub, _, v) in try reader.mapping(value, key, allowed: allowed) {
                    switch sub {
                    case "unit":
                        policy.unitNetworks = try reader.networks(v, "networks.unit")
                        publicCandidates.unit = v
                    case "covers_public_space": policy.coversPublicSpace = try reader.bool(v, "networks.covers_public_space")
                    case "links":
                        policy.allowedLinks = try reader.strings(v, "networks.links")
                        for (index, link) in policy.allowedLinks.enumerated()
                        where link.isEmpty || link == "*" || link.dropLast().contains("*") || link.contains("/") {
                            throw reader.error(
                                try reader.sequence(v, "networks.links")[index], "networks.links[\(index)]",
                                "\"\(link)\" is not an interface name or a prefix ending in *")
                        }
                    default:
                        policy.allowedDestinations = try reader.networks(v, "networks.allowed_destinations")
                        publicCandidates.allowedDestinations = v
                    }
                }
            case "dns":
                for (sub, _, v) in try reader.mapping(value, key, allowed: ["resolvers", "allowed_suffixes"]) {
                    if sub == "resolvers" {
                        publicCandidates.resolvers = v
                        for (index, element) in try reader.sequence(v, "dns.resolvers").enumerated() {
                            let text = try reader.string(element, "dns.resolvers[\(index)]")
                            guard let address = IPAddress(text) else {
                                throw reader.error(element, "dns.resolvers[\(index)]", "\"\(text)\" is not an IP address")
                            }
                            policy.dnsResolvers.append(address)
                        }
                    } else {
                        policy.dnsAllowedSuffixes = try reader.strings(v, "dns.allowed_suffixes")
                    }
                }
            case "media":
                for (_, _, v) in try reader.mapping(value, key, allowed: ["ledger"]) {
                    for (index, element) in try reader.sequence(v, "media.ledger").enumerated() {
                        policy.ledger.append(try ledgerEntry(element, "media.ledger[\(index)]", reader))
                    }
                }
            case "usb":
                for (sub, _, v) in try reader.mapping(value, key, allowed: ["mode", "allow"]) {
                    if sub == "mode" {
                        policy.usbMode = try reader.choice(v, "usb.mode", as: USBMode.self)
                        continue
                    }
                    var kinds: Set<USBAllowKind> = []
                    for (index, element) in try reader.sequence(v, "usb.allow").enumerated() {
                        let text = try reader.string(element, "usb.allow[\(index)]")
                        guard let kind = USBAllowKind(rawValue: text) else {
                            let never = ["storage", "wireless", "bluetooth", "phone", "tethering", "network"].contains(text)
                            throw reader.error(
                                element, "usb.allow[\(index)]",
                                never
                                    ? "\"\(text)\" cannot be allowed by kind: storage is allowed only through media.ledger, and wireless, phone and tethering interfaces never"
                                    : "\"\(text)\" is not a kind (known: \(USBAllowKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                        }
                        kinds.insert(kind)
                    }
                    policy.usbAllow = kinds
                }
            case "channels":
                for (_, _, v) in try reader.mapping(value, key, allowed: ["allow"]) {
                    for (index, element) in try reader.sequence(v, "channels.allow").enumerated() {
                        let text = try reader.string(element, "channels.allow[\(index)]")
                        guard let kind = ChannelKind(rawValue: text) else {
                            throw reader.error(
                                element, "channels.allow[\(index)]",
                                "\"\(text)\" is not a channel (known: \(ChannelKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                        }
                        guard !ChannelKind.neverAllowed.contains(kind) else {
                            throw reader.error(
                                element, "channels.allow[\(index)]",
                                "\"\(text)\" cannot be allowed on a classified computer: a modem dials out of the unit and IrDA is a wireless link (七.6)")
                        }
                        policy.channelsAllow.insert(kind)
                    }
                }
            case "rules":
                let known = Set(RuleCatalogue.all.map(\.id))
                guard case .mapping(let mapping) = value else { throw reader.error(value, "rules", "expected a mapping of rule ids") }
                for (ruleNode, settings) in mapping {
                    let ruleID = try reader.string(ruleNode, "rules")
                    guard known.contains(ruleID) else {
                        throw reader.error(ruleNode, "rules.\(ruleID)", "no such rule (known: \(known.sorted().joined(separator: ", ")))", code: .policyUnknownKey)
                    }
                    var override = RuleOverride()
                    for (sub, _, v) in try reader.mapping(settings, "rules.\(ruleID)", allowed: ["enabled", "severity"]) {
                        if sub == "enabled" { override.enabled = try reader.bool(v, "rules.\(ruleID).enabled") }
                        else { override.severity = try reader.choice(v, "rules.\(ruleID).severity", as: Severity.self) }
                    }
                    policy.rules[ruleID] = override
                }
            case "traffic":
                for (sub, _, v) in try reader.mapping(value, key, allowed: ["flag_link_local", "flag_multicast", "max_flows"]) {
                    switch sub {
                    case "flag_link_local": policy.traffic.flagLinkLocal = try reader.bool(v, "traffic.\(sub)")
                    case "flag_multicast": policy.traffic.flagMulticast = try reader.bool(v, "traffic.\(sub)")
                    default: policy.traffic.maxFlows = try reader.int(v, "traffic.max_flows", range: 16...10_000_000)
                    }
                }
            case "auth": policy.auth = try AuthPolicy.parse(value, reader)
            case "malware": policy.malware = try MalwarePolicy.parse(value, reader)
            case "software": policy.software = try SoftwarePolicy.parse(value, reader)
            case "history": policy.history = try HistoryPolicy.parse(value, reader)
            case "markings": policy.markings = try MarkingScope.parse(value, reader)
            case "collector":
                for (_, _, v) in try reader.mapping(value, key, allowed: ["silent_after_days"]) {
                    policy.collector.silentAfterDays = try reader.int(v, "collector.silent_after_days", range: 1...3650)
                }
            default: break
            }
        }
        guard let id else { throw reader.error(root, "id", "missing: every policy names itself") }
        guard let version else { throw reader.error(root, "version", "missing") }
        guard let profile else { throw reader.error(root, "profile", "missing (classified | unclassified)") }
        policy.id = id
        policy.version = version
        policy.profile = profile
        try publicCandidates.check(policy, reader)
        return policy
    }

    private static func ledgerEntry(_ node: Node, _ path: String, _ reader: YAMLReader) throws(MijianError) -> LedgerEntry {
        var fields: [String: String] = [:]
        var classification: Classification?
        for (key, _, value) in try reader.mapping(node, path, allowed: ["vendor", "product", "serial", "label", "classification", "responsible"]) {
            let text = try reader.string(value, "\(path).\(key)")
            if key == "vendor" || key == "product" {
                guard text.count == 4, text.allSatisfy(\.isHexDigit) else {
                    throw reader.error(value, "\(path).\(key)", "expected four hex digits as sysfs prints them, got \"\(text)\"")
                }
            }
            if key == "classification" {
                guard let parsed = Classification(parsing: text) else {
                    throw reader.error(value, "\(path).\(key)", "expected 绝密, 机密, 秘密 or 非密, got \"\(text)\"")
                }
                classification = parsed
            }
            fields[key] = text
        }
        for required in ["vendor", "product", "serial"] where fields[required] == nil {
            throw reader.error(node, "\(path).\(required)", "missing: a ledger entry needs vendor, product and serial")
        }
        return LedgerEntry(
            vendor: fields["vendor"] ?? "", product: fields["product"] ?? "", serial: fields["serial"] ?? "",
            label: fields["label"], classification: classification, responsible: fields["responsible"])
    }
}

/// The machine's identity from `/etc/mijian/host.yaml`.
public struct HostIdentity: Sendable, Equatable {
    /// 设备编号.
    public var assetID: String?
    /// 密级.
    public var classification: Classification?
    /// 责任人.
    public var responsible: String?
    /// The owning unit.
    public var unit: String?

    /// Makes an identity.
    public init(assetID: String? = nil, classification: Classification? = nil, responsible: String? = nil, unit: String? = nil) {
        self.assetID = assetID
        self.classification = classification
        self.responsible = responsible
        self.unit = unit
    }

    /// Parses host YAML; `file` names the source in errors.
    public static func parse(_ bytes: [UInt8], file: String) throws(MijianError) -> HostIdentity {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw MijianError(.hostFileInvalid, "\(file): not UTF-8 text", path: file)
        }
        let reader = YAMLReader(file: file)
        var identity = HostIdentity()
        for (key, _, value) in try reader.mapping(try reader.root(text), "", allowed: ["asset_id", "classification", "responsible", "unit"]) {
            let text = try reader.string(value, key)
            // The collector refuses every report whose identity breaks the rule: refused here, where it can be fixed.
            if let problem = IdentityField.problem(text, typed: true) {
                throw reader.error(value, key, "the value \(problem.detail)", code: .hostFileInvalid)
            }
            switch key {
            case "asset_id": identity.assetID = text
            case "responsible": identity.responsible = text
            case "unit": identity.unit = text
            default:
                guard let parsed = Classification(parsing: text) else {
                    throw reader.error(value, key, "expected 绝密 | 机密 | 秘密 | 非密 (or juemi, jimi, mimi, feimi, unclassified), got \"\(text)\"")
                }
                identity.classification = parsed
            }
        }
        return identity
    }
}
