import Foundation

/// Something that went wrong in the agent since the last report, for its `agent.health` finding.
public struct HealthProblem: Sendable, Equatable {
    /// `spool.compacted`, `spool.write-error`, `spool.over-bound`, `chain.save-error`, `policy.reload-failed`, …
    public var kind: String
    /// One sentence.
    public var detail: String
    /// Whether it makes the finding fail (evidence lost or at risk) rather than only inform.
    public var failing: Bool
    /// When it happened.
    public var at: Date

    /// Makes a problem.
    public init(kind: String, detail: String, failing: Bool, at: Date = Date()) {
        self.kind = kind
        self.detail = detail
        self.failing = failing
        self.at = at
    }

    /// The problem as `agent.health`'s evidence lists it.
    public var json: JSONValue {
        ["kind": .string(kind), "detail": .string(detail), "failing": .bool(failing), "at": .string(RFC3339.string(from: at))]
    }
}

/// The agent's signing key as `lstat` found it.
public struct AgentKeyFacts: Sendable, Equatable {
    /// Its path.
    public var path: String
    /// Why it could not be examined, when it could not (`strerror`).
    public var error: String?
    /// Its permission bits.
    public var mode: Int
    /// Its owner.
    public var uid: Int
    /// Whether it is a regular file.
    public var regularFile: Bool
    /// The agent's own effective uid.
    public var agentUID: Int

    /// Bundles them.
    public init(path: String, error: String?, mode: Int, uid: Int, regularFile: Bool, agentUID: Int) {
        self.path = path
        self.error = error
        self.mode = mode
        self.uid = uid
        self.regularFile = regularFile
        self.agentUID = agentUID
    }
}

/// The policy file on disk, as read at a seal.
public struct AgentPolicyFileFacts: Sendable, Equatable {
    /// Its path; nil for the built-in policy.
    public var path: String?
    /// SHA-256 of its bytes, when it could be read.
    public var sha256: String?
    /// Why it could not be read, when it could not.
    public var error: String?

    /// Bundles them.
    public init(path: String?, sha256: String?, error: String?) {
        self.path = path
        self.sha256 = sha256
        self.error = error
    }
}

/// The agent's own files, looked at every seal.
public struct AgentFileFacts: Sendable, Equatable {
    /// The signing key.
    public var key: AgentKeyFacts
    /// The policy file.
    public var policyFile: AgentPolicyFileFacts

    /// Bundles them.
    public init(key: AgentKeyFacts, policyFile: AgentPolicyFileFacts) {
        self.key = key
        self.policyFile = policyFile
    }
}

/// The agent's spool as a seal finds it.
public struct AgentSpoolFacts: Sendable, Equatable {
    /// Its directory.
    public var directory: String
    /// Reports in it.
    public var reports: Int
    /// Their bytes.
    public var bytes: Int
    /// Its bound.
    public var maxBytes: Int
    /// Reports in it with a failure.
    public var failingReports: Int
    /// Sealed reports held in memory because the disk refused them.
    public var heldInMemory: Int

    /// Bundles them.
    public init(directory: String, reports: Int, bytes: Int, maxBytes: Int, failingReports: Int, heldInMemory: Int) {
        self.directory = directory
        self.reports = reports
        self.bytes = bytes
        self.maxBytes = maxBytes
        self.failingReports = failingReports
        self.heldInMemory = heldInMemory
    }
}

/// What `agent.health` judges at a seal: the problems noted since the last report, the events
/// the sink had to drop, the agent's own files, its spool and delivery, and its sources' figures.
public struct AgentHealthFacts: Sendable, Equatable {
    /// Seconds since the service started.
    public var uptimeSeconds: Int64
    /// Reports sealed before this one.
    public var reportsSealed: Int
    /// When the latest audit ran.
    public var lastAuditAt: Date?
    /// Problems noted since the last report, in the order they came.
    public var problems: [HealthProblem]
    /// Events dropped since the last report: more than the sink holds.
    public var droppedEvents: Int
    /// How many events the sink holds between two reports.
    public var eventCapacity: Int
    /// The agent's key and policy file; nil when it was not asked to look.
    public var files: AgentFileFacts?
    /// The spool.
    public var spool: AgentSpoolFacts
    /// Delivery's figures.
    public var delivery: JSONValue
    /// Each source's own figures (pcap counters), by name.
    public var sources: JSONValue

    /// Bundles them.
    public init(
        uptimeSeconds: Int64, reportsSealed: Int, lastAuditAt: Date?, problems: [HealthProblem], droppedEvents: Int, eventCapacity: Int,
        files: AgentFileFacts?, spool: AgentSpoolFacts, delivery: JSONValue, sources: JSONValue
    ) {
        self.uptimeSeconds = uptimeSeconds
        self.reportsSealed = reportsSealed
        self.lastAuditAt = lastAuditAt
        self.problems = problems
        self.droppedEvents = droppedEvents
        self.eventCapacity = eventCapacity
        self.files = files
        self.spool = spool
        self.delivery = delivery
        self.sources = sources
    }
}
