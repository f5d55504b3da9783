#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianAgent
import MijianCore
import MijianEvidence
import MijianTestSupport

/// A sealer over a fresh key in a temporary state directory, with findings the test chooses.
struct SealerRig {
    let state: URL
    let store: KeyStore
    let sealer: Sealer
    let spool: Spool
    let sink: EventSink
    let host = HostInfo(hostID: "test-host", hostname: "ws-test")
    let policy: Policy

    init(spoolDirectory: String? = nil, maxBytes: Int = 64 << 20, now: @escaping @Sendable () -> Date = { Date() }) throws {
        state = try TestSupport.temporaryDirectory("agent-sealer")
        store = KeyStore(directory: state.path)
        _ = try store.initialise()
        policy = try TestSupport.defaultPolicy()
        spool = Spool(directory: spoolDirectory ?? state.appendingPathComponent("spool").path, maxBytes: maxBytes)
        sink = EventSink()
        var logger = Logger(label: "agent-test")
        logger.logLevel = .critical
        sealer = Sealer(signer: try ReportSigner(store: store), spool: spool, sink: sink, policy: policy, host: host, logger: logger, now: now)
    }

    /// A finding of `net.internet-route`, failing or passing, padded to about `padding` bytes of evidence.
    func finding(failing: Bool, padding: Int = 0) -> Finding {
        let context = CheckContext(policy: policy, hostID: host.hostID, observedAt: Date())
        let evidence = Evidence(kind: "test", source: "test", observedAt: Date(), data: ["padding": .string(String(repeating: "x", count: padding))])
        return context.finding(RuleCatalogue.internetRoute, subject: "routes", status: failing ? .fail : .pass, detail: failing ? "a default route" : "no route", evidence: [evidence])
    }

    /// Every spooled report's payload, in chain order.
    func spooled() throws -> [(entry: SpoolEntry, payload: JSONValue, digest: String)] {
        try spool.entries().map { entry in
            let envelope = try Envelope.parse(try spool.read(entry))
            return (entry, try JSONParser().parse(envelope.payload), envelope.payloadSHA256)
        }
    }
}

/// The `agent.health` finding of a report payload.
func healthFinding(_ payload: JSONValue) -> JSONValue? {
    payload["findings"]?.arrayValue?.first { $0["rule"]?["id"]?.stringValue == "agent.health" }
}

/// Runs a command and fails the test when it does not succeed.
@discardableResult
func sh(_ path: String, _ arguments: [String]) throws -> String {
    let result = try TestSupport.run(path, arguments)
    guard result.status == 0 else { throw MijianError(.io, "\(path) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr)") }
    return result.stdout
}

/// Makes network namespace `name` with a veth pair (v0 10.9.0.2/24 and v1, both up) and a route to
/// TEST-NET-2 (198.51.100.0/24) through 10.9.0.1, whose neighbour entry is set so that packets
/// leave v0 without waiting for ARP. The caller deletes it (`ip netns del`).
func makeEgressNamespace(_ name: String) throws {
    try sh("/usr/sbin/ip", ["netns", "add", name])
    for step in [
        ["link", "set", "lo", "up"], ["link", "add", "v0", "type", "veth", "peer", "name", "v1"], ["addr", "add", "10.9.0.2/24", "dev", "v0"],
        ["link", "set", "v0", "up"], ["link", "set", "v1", "up"],
        ["neigh", "add", "10.9.0.1", "lladdr", "02:00:00:00:00:01", "dev", "v0"], ["route", "add", "198.51.100.0/24", "via", "10.9.0.1"],
    ] {
        try sh("/usr/sbin/ip", ["netns", "exec", name, "ip"] + step)
    }
}
