import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianHost
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Runs blocking work (file walks, netlink dumps) on a serial queue, so the cooperative pool
/// stays free and no audit starts a thread of its own.
enum Blocking {
    /// Waits for `body` on `queue`; a graceful shutdown stops the wait (nil), and the work finishes alone.
    static func runUnlessShuttingDown<T: Sendable>(on queue: DispatchQueue, _ body: @escaping @Sendable () -> T) async -> T? {
        let result = Locked<T?>(nil)
        let done = Wakeup<Ending>()
        queue.async {
            result.set(body())
            done.fire(.finished)
        }
        await withGracefulShutdownHandler {
            _ = await done.wait(timeout: nil)
        } onGracefulShutdown: {
            done.fire(.shutdown)
        }
        return result.value
    }
}

/// A value behind a lock, shareable between a thread and tasks.
final class Locked<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    init(_ value: Value) { storage = Mutex(value) }

    var value: Value { storage.withLock { $0 } }

    func set(_ value: Value) { storage.withLock { $0 = value } }

    func withValue<Result: Sendable>(_ body: (inout sending Value) -> sending Result) -> Result { storage.withLock { body(&$0) } }
}

/// The policy in force, shared by the services; a reload replaces it, and tells every channel
/// `changes()` gave out (`.policyReloaded`), so no one asks it again and again.
public final class PolicyHolder: Sendable {
    private let current: Mutex<Policy>
    private let listeners = Mutex<[Wakeup<WakeReason>]>([])
    /// The file it is read from, or nil for the built-in policy.
    public let path: String?

    /// Holds `policy`, read from `path`.
    public init(_ policy: Policy, path: String?) {
        current = Mutex(policy)
        self.path = path
    }

    /// The policy now.
    public var policy: Policy { current.withLock { $0 } }

    /// Replaces it, and fires `.policyReloaded` on every channel of `changes()`.
    public func replace(_ policy: Policy) {
        current.withLock { $0 = policy }
        for listener in listeners.withLock({ $0 }) { listener.fire(.policyReloaded) }
    }

    /// A channel fired with `.policyReloaded` at every later `replace`; read `policy` after it fires.
    public func changes() -> Wakeup<WakeReason> {
        let channel = Wakeup<WakeReason>.service()
        listeners.withLock { $0.append(channel) }
        return channel
    }

    /// Reads a policy file, or the built-in classified-workstation policy when `path` is nil.
    public static func load(_ path: String?) throws(MijianError) -> Policy {
        guard let path else {
            return try Policy.parse(Array(EmbeddedPolicies.classifiedWorkstation.utf8), file: "(built-in) classified-workstation.yaml")
        }
        let bytes: [UInt8]
        do {
            bytes = try HostRoot.live.readBytes(URL(fileURLWithPath: path).standardizedFileURL.path, limit: 1 << 20)
        } catch {
            throw MijianError(error.code, "cannot read policy \(path)", path: path, errno: error.errno)
        }
        return try Policy.parse(bytes, file: path)
    }
}

/// The full audit: at start, every `interval`, and after network changes once `debounce` has
/// passed without another. The start audit's end, and a finding that newly fails, ask for a report.
public struct AuditService<C: Clock>: Service where C.Duration == Duration {
    let sealer: Sealer
    let policy: PolicyHolder
    let host: HostInfo
    let wakeup: Wakeup<WakeReason>
    let sealNow: Wakeup<WakeReason>
    let interval: Duration
    let debounce: Duration
    let logger: Logger
    let status: @Sendable (String) -> Void
    let clock: C
    let observe: @Sendable (Policy, HostInfo, Date) -> [Finding]
    /// The service's one worker: audits run here one after another.
    let queue = DispatchQueue(label: "mijian.audit", qos: .utility)

    /// An audit service feeding `sealer`; its waits run on `clock`, and `observe` is the audit
    /// itself (this host's, unless a test gives one).
    public init(
        sealer: Sealer, policy: PolicyHolder, host: HostInfo, wakeup: Wakeup<WakeReason>, sealNow: Wakeup<WakeReason>, interval: Duration,
        debounce: Duration, logger: Logger, status: @escaping @Sendable (String) -> Void = { _ in }, clock: C,
        observe: (@Sendable (Policy, HostInfo, Date) -> [Finding])? = nil
    ) {
        self.sealer = sealer
        self.policy = policy
        self.host = host
        self.wakeup = wakeup
        self.sealNow = sealNow
        self.interval = interval
        self.debounce = debounce
        self.logger = logger
        self.status = status
        self.clock = clock
        self.observe = observe ?? { policy, host, at in
            let facts = HostProbe.observe(
                root: .live, live: true, logger: logger, at: at, collecting: AuditChecks.factSets(policy: policy), policy: policy)
            let context = CheckContext(policy: policy, hostID: host.hostID, observedAt: at, classification: host.classification)
            return AuditChecks.evaluate(facts, context: context)
        }
    }

    /// Audits until graceful shutdown.
    public func run() async throws {
        await withGracefulShutdownHandler {
            // nil: the audit at start.
            var trigger: WakeReason?
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                // An audit cut short by shutdown told the sealer nothing, and is not reported as done.
                guard let newlyFailing = await audit(trigger) else { return }
                if let trigger {
                    if !newlyFailing.isEmpty {
                        sealNow.fire(.newFailingFindings(newlyFailing.count, after: trigger))
                    } else if trigger == .policyReloaded {
                        sealNow.fire(.policyReloaded)
                    }
                } else {
                    sealNow.fire(.startAuditDone)
                }
                guard let next = await wakeup.wait(timeout: interval, clock: clock) else {
                    trigger = .interval
                    continue
                }
                switch next {
                case .shutdown:
                    return
                case .networkChange:
                    trigger = next
                    // A burst of changes (a link coming up brings addresses and routes) makes one audit.
                    while let more = await wakeup.wait(timeout: debounce, clock: clock) {
                        switch more {
                        case .shutdown: return
                        case .policyReloaded: trigger = more
                        default: continue
                        }
                    }
                default:
                    trigger = next
                }
            }
        } onGracefulShutdown: {
            wakeup.fire(.shutdown)
        }
    }

    /// The uids of findings that newly fail, or nil when shutdown came first.
    private func audit(_ trigger: WakeReason?) async -> [String]? {
        let policy = self.policy.policy
        let host = self.host
        let logger = self.logger
        let reason = trigger.map { "\($0)" } ?? "start"
        status("auditing (\(reason))")
        let started = ContinuousClock.now
        // Shutdown does not wait for an audit under way: it is left to finish alone.
        let now = sealer.now
        let observe = self.observe
        let result = await Blocking.runUnlessShuttingDown(on: queue) { () -> ([Finding], Date) in
            let at = now()
            return (observe(policy, host, at), at)
        }
        guard let result else { return nil }
        let (findings, at) = result
        let newlyFailing = await sealer.updateAudit(findings, at: at)
        logger.info(
            "audit done (\(reason))",
            metadata: [
                "agent.findings": "\(findings.count)", "agent.failing": "\(findings.count(where: { $0.status == .fail }))",
                "agent.new_failing": "\(newlyFailing.count)", "agent.duration": "\(ContinuousClock.now - started)",
            ])
        return newlyFailing
    }
}

/// Seals a report every `interval` and whenever asked (a failing event, a new failing finding);
/// the first once the start audit is done, holding whatever came before it; a final one at shutdown.
public struct SealService<C: Clock>: Service where C.Duration == Duration {
    let sealer: Sealer
    let sealNow: Wakeup<WakeReason>
    let interval: Duration
    let logger: Logger
    let clock: C

    /// A seal service over `sealer`, its interval on `clock`.
    public init(sealer: Sealer, sealNow: Wakeup<WakeReason>, interval: Duration, logger: Logger, clock: C) {
        self.sealer = sealer
        self.sealNow = sealNow
        self.interval = interval
        self.logger = logger
        self.clock = clock
    }

    /// Seals until graceful shutdown, then once more.
    public func run() async throws {
        var audited = false
        await withGracefulShutdownHandler {
            // The first report carries the start audit's findings: a failing event before it (a
            // deny at coldplug, a USB watch that cannot start) stays in the sink for that report,
            // so no report ever holds the agent's health alone marked as if nothing failed.
            guard await Self.startAuditDone(sealNow) else { return }
            audited = true
            await sealer.seal(reason: "\(WakeReason.startAuditDone)")
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                let reason = await sealNow.wait(timeout: interval, clock: clock) ?? .interval
                switch reason {
                case .shutdown:
                    return
                case .interval:
                    await sealer.seal(reason: "report interval")
                default:
                    await sealer.seal(reason: "\(reason)")
                }
            }
        } onGracefulShutdown: {
            sealNow.fire(.shutdown)
        }
        if !audited {
            // Stopped before the start audit ended: the only report says so, and fails.
            await sealer.note(HealthProblem(
                kind: "audit.none", detail: "the service stopped before its first audit ended: this report holds none of the audit's findings",
                failing: true, at: sealer.now()))
        }
        await sealer.seal(reason: "\(WakeReason.shutdown)")
    }

    /// Waits out every other reason until the start audit is done (true) or shutdown comes (false).
    static func startAuditDone(_ sealNow: Wakeup<WakeReason>) async -> Bool {
        while !Task.isCancelled {
            switch await sealNow.wait(timeout: nil) {
            case .startAuditDone: return true
            case .shutdown, nil: return false
            default: continue
            }
        }
        return false
    }
}

/// `WATCHDOG=1` at half of `WATCHDOG_USEC`, only while the sealer answers.
public struct WatchdogService<C: Clock>: Service where C.Duration == Duration {
    let ping: @Sendable (String) -> Void
    let interval: Duration
    let sealer: Sealer
    let clock: C

    /// Pings `notifier` every `interval` of `clock`.
    public init(notifier: SystemdNotifier, interval: Duration, sealer: Sealer, clock: C) {
        self.init(ping: { notifier.send($0) }, interval: interval, sealer: sealer, clock: clock)
    }

    /// Says `WATCHDOG=1` through `ping` every `interval` of `clock`.
    public init(ping: @escaping @Sendable (String) -> Void, interval: Duration, sealer: Sealer, clock: C) {
        self.ping = ping
        self.interval = interval
        self.sealer = sealer
        self.clock = clock
    }

    /// Pings until graceful shutdown.
    public func run() async throws {
        let clock = self.clock
        let interval = self.interval
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            // A wedged sealer stops the pings, and systemd restarts the service.
            _ = await sealer.ping()
            ping("WATCHDOG=1")
            do {
                _ = try await cancelWhenGracefulShutdown { try await clock.sleep(for: interval) }
            } catch {
                return
            }
        }
    }
}

/// Every `interval`, gives back the code and heap pages the service is not using
/// (`CodePages.rest()`): what a delivery, an audit or a capture that came up ran stays mapped
/// only until the next rest.
public struct RestService: Service {
    let interval: Duration

    /// Rests every `interval`.
    public init(interval: Duration) { self.interval = interval }

    /// Rests until graceful shutdown.
    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                _ = try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            CodePages.rest()
        }
    }
}

/// Runs an event source; its failure is logged and told in `agent.health`, without stopping the agent.
public struct EventSourceService: Service {
    let source: any AgentEventSource
    let sink: EventSink
    let sealer: Sealer
    let readiness: ReadinessLoop?
    let logger: Logger

    /// Runs `source` into `sink`, its descriptors waited on by `readiness` when given.
    public init(source: any AgentEventSource, sink: EventSink, sealer: Sealer, readiness: ReadinessLoop? = nil, logger: Logger) {
        self.source = source
        self.sink = sink
        self.sealer = sealer
        self.readiness = readiness
        self.logger = logger
    }

    /// Runs until graceful shutdown or the source's end.
    public func run() async throws {
        let source = self.source
        let sink = self.sink
        let readiness = self.readiness
        do {
            _ = try await cancelWhenGracefulShutdown {
                if let readiness { try await source.run(into: sink, readiness: readiness) } else { try await source.run(into: sink) }
            }
        } catch is CancellationError {
            return
        } catch {
            logger.error("event source \(source.name) stopped: \(error)")
            await sealer.note(HealthProblem(kind: "source.stopped", detail: "the \(source.name) watch stopped: \(error)", failing: true, at: sealer.now()))
        }
    }
}
