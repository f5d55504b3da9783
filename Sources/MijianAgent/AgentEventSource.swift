import MijianCore

/// Something that watches the host and records events for the next report (USB, traffic).
public protocol AgentEventSource: Sendable {
    /// A short name for logs and health findings.
    var name: String { get }
    /// Runs until cancelled, recording each event into `sink`.
    func run(into sink: EventSink) async throws
}
