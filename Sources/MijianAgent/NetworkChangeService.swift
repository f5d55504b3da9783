import Logging
import MijianCore
import MijianHost
import ServiceLifecycle

/// Watches rtnetlink and asks for an audit whenever a link, address, route or rule changes.
public struct NetworkChangeService: Service {
    let audit: Wakeup<WakeReason>
    let readiness: ReadinessLoop
    let logger: Logger
    let onChange: @Sendable () -> Void

    /// Fires `audit` with `.networkChange` (and calls `onChange`) for every burst of changes the
    /// readiness thread reads.
    init(audit: Wakeup<WakeReason>, readiness: ReadinessLoop, logger: Logger, onChange: @escaping @Sendable () -> Void = {}) {
        self.audit = audit
        self.readiness = readiness
        self.logger = logger
        self.onChange = onChange
    }

    /// Runs until graceful shutdown (or cancellation); the subscription is read on the service's
    /// readiness thread, which lets it go at once when the service stops.
    public func run() async throws {
        let subscription = try NetworkChangeSubscription()
        let audit = self.audit
        let onChange = self.onChange
        let registration = try readiness.add(subscription.descriptor) { _ in
            if subscription.readChanges() > 0 {
                audit.fire(.networkChange)
                onChange()
            }
            return true
        }
        logger.info("watching rtnetlink: links, addresses, routes and rules (IPv4 and IPv6)")
        // Ends on graceful shutdown, and throws on cancellation: the registration goes either way.
        try? await gracefulShutdown()
        await readiness.remove(registration, lastRead: false)
        withExtendedLifetime(subscription) {}
    }
}
