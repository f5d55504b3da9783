import MijianCore
import MijianHost

/// Something that watches the host and records events for the next report (USB, traffic).
public protocol AgentEventSource: Sendable {
    /// A short name for logs and health findings.
    var name: String { get }
    /// Runs until cancelled, recording each event into `sink`.
    func run(into sink: EventSink) async throws
    /// Runs until cancelled, its blocking descriptors waited on by the service's `readiness`
    /// thread (by default, `run(into:)`: a source with no descriptors).
    func run(into sink: EventSink, readiness: ReadinessLoop) async throws
}

extension AgentEventSource {
    /// A source with no descriptors of its own runs as it would alone.
    public func run(into sink: EventSink, readiness: ReadinessLoop) async throws { try await run(into: sink) }
}
