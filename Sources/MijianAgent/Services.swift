import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianHost
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Runs blocking work (file walks, netlink dumps) on a thread of its own, so the cooperative pool stays free.
enum Blocking {
    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.start()
        }
    }

    /// Like `run`, but a graceful shutdown stops the wait (nil); the thread finishes alone.
    static func runUnlessShuttingDown<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T? {
        let result = Locked<T?>(nil)
        let done = Wakeup()
        let thread = Thread {
            let value = body()
            result.set(value)
            done.fire("done")
        }
        thread.start()
        await withGracefulShutdownHandler {
            _ = await done.wait(timeout: nil)
        } onGracefulShutdown: {
            done.fire("shutdown")
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

/// The policy in force, shared by the services; SIGHUP replaces it.
public final class PolicyHolder: Sendable {
    private let current: Mutex<Policy>
    /// The file it is read from, or nil for the built-in policy.
    public let path: String?

    /// Holds `policy`, read from `path`.
    public init(_ policy: Policy, path: String?) {
        current = Mutex(policy)
        self.path = path
    }

    /// The policy now.
    public var policy: Policy { current.withLock { $0 } }

    /// Replaces it.
    public func replace(_ policy: Policy) { current.withLock { $0 = policy } }

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
/// passed without another. A finding that newly fails asks for a report at once.
public struct AuditService: Service {
    let sealer: Sealer
    let policy: PolicyHolder
    let host: HostInfo
    let wakeup: Wakeup
    let sealNow: Wakeup
    let interval: Duration
    let debounce: Duration
    let logger: Logger
    let status: @Sendable (String) -> Void

    /// An audit service feeding `sealer`.
    public init(
        sealer: Sealer, policy: PolicyHolder, host: HostInfo, wakeup: Wakeup, sealNow: Wakeup, interval: Duration, debounce: Duration,
        logger: Logger, status: @escaping @Sendable (String) -> Void = { _ in }
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
    }

    /// Audits until graceful shutdown.
    public func run() async throws {
        await withGracefulShutdownHandler {
            var reason = "start"
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                let newlyFailing = await audit(reason: reason)
                if reason == "start" {
                    sealNow.fire("first audit")
                } else if !newlyFailing.isEmpty {
                    sealNow.fire("audit found \(newlyFailing.count) new failing finding(s) after \(reason)")
                } else if reason == "policy reloaded" {
                    sealNow.fire("policy reloaded")
                }
                guard let next = await wakeup.wait(timeout: interval) else {
                    reason = "audit interval"
                    continue
                }
                if next == "shutdown" { break }
                reason = next
                if next == "network change" {
                    // A burst of changes (a link coming up brings addresses and routes) makes one audit.
                    while let more = await wakeup.wait(timeout: debounce) {
                        if more == "shutdown" { return }
                        if more == "policy reloaded" { reason = more }
                    }
                }
            }
        } onGracefulShutdown: {
            wakeup.fire("shutdown")
        }
    }

    private func audit(reason: String) async -> [String] {
        let policy = self.policy.policy
        let host = self.host
        let logger = self.logger
        status("auditing (\(reason))")
        let started = ContinuousClock.now
        // Shutdown does not wait for an audit under way: its thread is left to finish alone.
        let now = sealer.now
        let result = await Blocking.runUnlessShuttingDown { () -> ([Finding], Date) in
            let at = now()
            let facts = HostProbe.observe(
                root: .live, live: true, logger: logger, at: at, collecting: AuditChecks.factSets(policy: policy))
            let context = CheckContext(policy: policy, hostID: host.hostID, observedAt: at)
            return (AuditChecks.evaluate(facts, context: context), at)
        }
        guard let result else { return [] }
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
/// the first after the first audit; a final one at shutdown.
public struct SealService: Service {
    let sealer: Sealer
    let sealNow: Wakeup
    let interval: Duration
    let logger: Logger

    /// A seal service over `sealer`.
    public init(sealer: Sealer, sealNow: Wakeup, interval: Duration, logger: Logger) {
        self.sealer = sealer
        self.sealNow = sealNow
        self.interval = interval
        self.logger = logger
    }

    /// Seals until graceful shutdown, then once more.
    public func run() async throws {
        await withGracefulShutdownHandler {
            // The first report waits for the first audit, so that it carries the audit's findings.
            guard let first = await sealNow.wait(timeout: nil), first != "shutdown" else { return }
            await sealer.seal(reason: first)
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                let reason = await sealNow.wait(timeout: interval) ?? "report interval"
                if reason == "shutdown" { break }
                await sealer.seal(reason: reason)
            }
        } onGracefulShutdown: {
            sealNow.fire("shutdown")
        }
        await sealer.seal(reason: "shutdown")
    }
}

/// SIGHUP: reads the policy file again. A policy that does not parse is refused (the old one
/// stays, the log and the next report say why, with file:line:key).
public struct ReloadService: Service {
    let policy: PolicyHolder
    let sealer: Sealer
    let audit: Wakeup
    let logger: Logger
    let notifier: SystemdNotifier?
    let onReload: @Sendable () -> Void

    /// A reload service for `policy`; `onReload` tells the other watches of a new policy.
    public init(
        policy: PolicyHolder, sealer: Sealer, audit: Wakeup, logger: Logger, notifier: SystemdNotifier?, onReload: @escaping @Sendable () -> Void = {}
    ) {
        self.onReload = onReload
        self.policy = policy
        self.sealer = sealer
        self.audit = audit
        self.logger = logger
        self.notifier = notifier
    }

    /// Waits for SIGHUP until graceful shutdown.
    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            notifier?.send("RELOADING=1")
            do {
                let loaded = try PolicyHolder.load(policy.path)
                policy.replace(loaded)
                await sealer.setPolicy(loaded)
                logger.notice("policy reloaded", metadata: ["agent.policy": "\(loaded.id) \(loaded.version)", "agent.policy_sha256": "\(loaded.sha256)"])
                audit.fire("policy reloaded")
                onReload()
            } catch {
                logger.error("policy not reloaded, the previous one stays in force: \(error)")
                await sealer.note(HealthProblem(kind: "policy.reload-failed", detail: "SIGHUP: the policy was not reloaded, the previous one stays in force: \(error)", failing: true))
            }
            notifier?.send("READY=1")
        }
    }
}

/// `WATCHDOG=1` at half of `WATCHDOG_USEC`, only while the sealer answers.
public struct WatchdogService: Service {
    let notifier: SystemdNotifier
    let interval: Duration
    let sealer: Sealer

    /// Pings `notifier` every `interval`.
    public init(notifier: SystemdNotifier, interval: Duration, sealer: Sealer) {
        self.notifier = notifier
        self.interval = interval
        self.sealer = sealer
    }

    /// Pings until graceful shutdown.
    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            // A wedged sealer stops the pings, and systemd restarts the service.
            _ = await sealer.ping()
            notifier.send("WATCHDOG=1")
            do {
                _ = try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
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
    let logger: Logger

    /// Runs `source` into `sink`.
    public init(source: any AgentEventSource, sink: EventSink, sealer: Sealer, logger: Logger) {
        self.source = source
        self.sink = sink
        self.sealer = sealer
        self.logger = logger
    }

    /// Runs until graceful shutdown or the source's end.
    public func run() async throws {
        let source = self.source
        let sink = self.sink
        do {
            _ = try await cancelWhenGracefulShutdown { try await source.run(into: sink) }
        } catch is CancellationError {
            return
        } catch {
            logger.error("event source \(source.name) stopped: \(error)")
            await sealer.note(HealthProblem(kind: "source.stopped", detail: "the \(source.name) watch stopped: \(error)", failing: true))
        }
    }
}
