import Crypto
import Foundation

/// Who produced a report.
public struct AgentInfo: Sendable, Equatable {
    /// `mijian`.
    public var name: String
    /// The agent's version.
    public var version: String
    /// The signing key's id, or empty when unsigned.
    public var keyid: String

    /// Makes agent info.
    public init(name: String = "mijian", version: String = MijianVersion.current, keyid: String = "") {
        self.name = name
        self.version = version
        self.keyid = keyid
    }
}

/// The version of this build.
public enum MijianVersion {
    /// The release version.
    public static let current = "0.1.0"
}

/// What the report says about the machine.
public struct HostInfo: Sendable, Equatable {
    /// HMAC of /etc/machine-id under an app-specific key; never the raw id.
    public var hostID: String
    /// The host name.
    public var hostname: String
    /// 设备编号, from the host file.
    public var assetID: String?
    /// 密级 of the machine, from the host file.
    public var classification: Classification?
    /// 责任人.
    public var responsible: String?
    /// The owning unit.
    public var unit: String?
    /// PRETTY_NAME from os-release.
    public var os: String
    /// Kernel release.
    public var kernel: String
    /// The boot id, when live.
    public var bootID: String?

    /// Makes host info.
    public init(
        hostID: String, hostname: String, assetID: String? = nil, classification: Classification? = nil,
        responsible: String? = nil, unit: String? = nil, os: String = "", kernel: String = "", bootID: String? = nil
    ) {
        self.hostID = hostID
        self.hostname = hostname
        self.assetID = assetID
        self.classification = classification
        self.responsible = responsible
        self.unit = unit
        self.os = os
        self.kernel = kernel
        self.bootID = bootID
    }

    /// The app-specific host id for a machine-id.
    public static func hostID(machineID: String) -> String {
        let key = SymmetricKey(data: Array("mijian.host-id.v1".utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(machineID.trimmingCharacters(in: .whitespacesAndNewlines).utf8), using: key)
        return Hex.lower(mac)
    }
}

/// Which policy decided.
public struct PolicyInfo: Sendable, Equatable {
    /// The policy id.
    public var id: String
    /// The policy version.
    public var version: String
    /// SHA-256 (hex) of the policy file's bytes.
    public var sha256: String

    /// Makes policy info.
    public init(id: String, version: String, sha256: String) {
        self.id = id
        self.version = version
        self.sha256 = sha256
    }
}

/// One report: what a machine saw and decided in a window, ready to be signed.
public struct Report: Sendable, Equatable {
    /// The payload schema id.
    public static let schema = "mijian.report/v1"

    /// A fresh UUID per report.
    public var reportID: UUID
    /// The chain's epoch; a new key or re-install starts a new one.
    public var epoch: Int64
    /// Position in the chain within the epoch.
    public var seq: Int64
    /// SHA-256 (hex) of the previous report's payload bytes; empty at seq 0.
    public var prevSHA256: String
    /// When the report was made.
    public var issuedAt: Date
    /// The period the events cover.
    public var windowStart: Date
    /// The period's end.
    public var windowEnd: Date
    /// Who made it.
    public var agent: AgentInfo
    /// Which machine.
    public var host: HostInfo
    /// Which policy.
    public var policy: PolicyInfo
    /// The verdicts.
    public var findings: [Finding]
    /// What the daemon saw.
    public var events: [Event]

    /// Makes a report.
    public init(
        reportID: UUID = UUID(), epoch: Int64 = 0, seq: Int64 = 0, prevSHA256: String = "", issuedAt: Date,
        windowStart: Date, windowEnd: Date, agent: AgentInfo = AgentInfo(), host: HostInfo, policy: PolicyInfo,
        findings: [Finding], events: [Event] = []
    ) {
        self.reportID = reportID
        self.epoch = epoch
        self.seq = seq
        self.prevSHA256 = prevSHA256
        self.issuedAt = issuedAt
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.agent = agent
        self.host = host
        self.policy = policy
        self.findings = findings
        self.events = events
    }

    /// Counts per status, every status present (zero included), in a fixed order.
    public var summary: [(Status, Int)] {
        Status.allCases.map { status in (status, findings.count(where: { $0.status == status })) }
    }

    /// True when no finding failed.
    public var isCompliant: Bool { !findings.contains { $0.status == .fail } }

    /// The payload as JSON, keys in schema order.
    public var json: JSONValue {
        [
            "schema": .string(Report.schema),
            "report_id": .string(reportID.uuidString.lowercased()),
            "epoch": .int(epoch),
            "seq": .int(seq),
            "prev_sha256": .string(prevSHA256),
            "issued_at": .string(RFC3339.string(from: issuedAt)),
            "window": ["start": .string(RFC3339.string(from: windowStart)), "end": .string(RFC3339.string(from: windowEnd))],
            "agent": ["name": .string(agent.name), "version": .string(agent.version), "keyid": .string(agent.keyid)],
            "host": [
                "host_id": .string(host.hostID), "hostname": .string(host.hostname), "asset_id": .optional(host.assetID),
                "classification": .optional(host.classification?.rawValue), "responsible": .optional(host.responsible),
                "unit": .optional(host.unit), "os": .string(host.os), "kernel": .string(host.kernel),
                "boot_id": .optional(host.bootID),
            ],
            "policy": ["id": .string(policy.id), "version": .string(policy.version), "sha256": .string(policy.sha256)],
            "summary": .object(summary.map { ($0.0.rawValue, .int(Int64($0.1))) }),
            "findings": .array(findings.map(\.json)),
            "events": .array(events.map(\.json)),
        ]
    }

    /// The exact payload bytes (compact JSON) that get signed and chained.
    public func payloadBytes() -> [UInt8] { json.serialized() }
}
