import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianScan
import ServiceLifecycle

/// `data.markings` in the service: the policy's `markings` scope scanned `firstDelay` after start
/// (not in the busy minutes of a boot) and every `markings.interval_hours`, on a thread of its own at idle priority (SCHED_IDLE), with the
/// index in the state directory so that unchanged files are not read again. Its finding goes
/// into every report until the next scan; a scan that newly fails asks for a report at once.
public struct MarkingScanService<C: Clock>: Service where C.Duration == Duration {
    let sealer: Sealer
    let policy: PolicyHolder
    let host: HostInfo
    let stateDir: String
    let sealNow: Wakeup<WakeReason>
    let logger: Logger
    let clock: C
    let firstDelay: Duration
    let scan: @Sendable (Policy) -> MarkingFacts

    /// A scan service feeding `sealer`; `scan` is the scan itself (this machine's, unless a test gives one).
    public init(
        sealer: Sealer, policy: PolicyHolder, host: HostInfo, stateDir: String, sealNow: Wakeup<WakeReason>, logger: Logger, clock: C,
        firstDelay: Duration = .seconds(300), scan: (@Sendable (Policy) -> MarkingFacts)? = nil
    ) {
        self.firstDelay = firstDelay
        self.sealer = sealer
        self.policy = policy
        self.host = host
        self.stateDir = stateDir
        self.sealNow = sealNow
        self.logger = logger
        self.clock = clock
        self.scan = scan ?? { policy in MarkingProbe.observe(root: "/", policy: policy, stateDir: stateDir) }
    }

    /// Scans until graceful shutdown; a policy with `markings.interval_hours: 0` or the rule disabled
    /// keeps it waiting (a reload may turn it on).
    public func run() async throws {
        var lastFailed = false
        do {
            _ = try await cancelWhenGracefulShutdown { try await clock.sleep(for: firstDelay) }
        } catch {
            return
        }
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let policy = self.policy.policy
            let hours = policy.markings.intervalHours
            if hours > 0, policy.isEnabled(RuleCatalogue.dataMarkings.id) {
                let scan = self.scan
                let started = ContinuousClock.now
                let at = sealer.now()
                let (facts, idle) = await IdleThread.run { scan(policy) }
                let context = CheckContext(policy: policy, hostID: host.hostID, observedAt: at, classification: host.classification)
                let finding = MarkingChecks.evaluate(facts, context: context)
                await sealer.setFindings([finding], from: "markings")
                logger.info(
                    "markings scan done",
                    metadata: [
                        "agent.scan.status": "\(finding.status.rawValue)", "agent.scan.files": "\(facts.totals.files)",
                        "agent.scan.marked": "\(facts.totals.marked)", "agent.scan.from_index": "\(facts.totals.fromIndex)",
                        "agent.scan.idle": "\(idle)", "agent.duration": "\(ContinuousClock.now - started)",
                    ])
                let failed = finding.status == .fail
                if failed, !lastFailed { sealNow.fire(.newFailingFindings(1, after: .interval)) }
                lastFailed = failed
            }
            let wait = Duration.seconds(3600 * max(1, hours))
            do {
                _ = try await cancelWhenGracefulShutdown { try await clock.sleep(for: wait) }
            } catch {
                return
            }
        }
    }
}
