import Logging
import MijianCore
import MijianHost
import ServiceLifecycle
import UnixSignals

/// Reads the policy file again on SIGHUP, and whenever the file is written or renamed over (an
/// inotify watch on its directory, read on the service's readiness thread: an editor's save,
/// `dpkg` installing a new version). A policy that does not parse is refused (the old one stays,
/// the log and the next report say why, with file:line:key); a written file whose digest is the
/// policy in force changes nothing.
public struct ReloadService: Service {
    let policy: PolicyHolder
    let sealer: Sealer
    let audit: Wakeup<WakeReason>
    let readiness: ReadinessLoop?
    let logger: Logger
    let notifier: SystemdNotifier?
    let onReload: @Sendable () -> Void

    /// A reload service for `policy`; with `readiness`, the policy file is watched on it.
    /// `onReload` tells the other watches of a new policy.
    public init(
        policy: PolicyHolder, sealer: Sealer, audit: Wakeup<WakeReason>, readiness: ReadinessLoop? = nil, logger: Logger, notifier: SystemdNotifier?,
        onReload: @escaping @Sendable () -> Void = {}
    ) {
        self.onReload = onReload
        self.policy = policy
        self.sealer = sealer
        self.audit = audit
        self.readiness = readiness
        self.logger = logger
        self.notifier = notifier
    }

    /// Reloads on SIGHUP and on a written policy file until graceful shutdown.
    public func run() async throws {
        let requests = Wakeup<WakeReason>.service()
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let watched = watchFile(requests)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in signals { requests.fire(.reloadAsked) }
            }
            await withGracefulShutdownHandler {
                while let reason = await requests.wait(timeout: nil) {
                    switch reason {
                    case .reloadAsked: await reload(asked: true)
                    case .policyFileChanged: await reload(asked: false)
                    case .shutdown: return
                    default: continue
                    }
                }
            } onGracefulShutdown: {
                requests.fire(.shutdown)
            }
            group.cancelAll()
        }
        if let watched, let readiness {
            await readiness.remove(watched.registration, lastRead: false)
            withExtendedLifetime(watched.watch) {}
        }
    }

    /// Registers the inotify watch of the policy file's directory, when there is a file and a readiness thread.
    private func watchFile(_ requests: Wakeup<WakeReason>) -> (watch: PolicyFileWatch, registration: ReadinessLoop.Registration)? {
        guard let path = policy.path, let readiness else { return nil }
        let logger = self.logger
        do {
            let watch = try PolicyFileWatch(path: path)
            let registration = try readiness.add(watch.descriptor) { _ in
                switch watch.readChanges() {
                case .none:
                    break
                case .written:
                    requests.fire(.policyFileChanged)
                case .removed:
                    logger.notice("the policy file \(path) was removed; the policy in force stays")
                case .lost(let why):
                    logger.warning("policy file watch: \(why); reading \(path) again")
                    requests.fire(.policyFileChanged)
                }
                return true
            }
            logger.info("watching the policy file \(path) (inotify on \(watch.directory))")
            return (watch, registration)
        } catch {
            logger.warning("the policy file \(path) is not watched; SIGHUP reloads it: \(error)")
            return nil
        }
    }

    /// Reads the policy file again: `asked` by SIGHUP (systemd hears RELOADING=1 then READY=1,
    /// and the policy is audited again even when unchanged), or because the file was written.
    private func reload(asked: Bool) async {
        if asked { notifier?.send("RELOADING=1") }
        defer { if asked { notifier?.send("READY=1") } }
        let why = asked ? "SIGHUP" : "the policy file was written"
        do {
            let loaded = try PolicyHolder.load(policy.path)
            if !asked, loaded.sha256 == policy.policy.sha256 { return }
            // Said before it takes effect: the USB watch, woken by the replacement, logs its own
            // line after this one.
            logger.notice(
                "policy reloaded (\(why))", metadata: ["agent.policy": "\(loaded.id) \(loaded.version)", "agent.policy_sha256": "\(loaded.sha256)"])
            policy.replace(loaded)
            await sealer.setPolicy(loaded)
            audit.fire(.policyReloaded)
            onReload()
        } catch {
            logger.error("policy not reloaded (\(why)), the previous one stays in force: \(error)")
            await sealer.note(HealthProblem(
                kind: "policy.reload-failed", detail: "\(why): the policy was not reloaded, the previous one stays in force: \(error)", failing: true,
                at: sealer.now()))
        }
    }
}
