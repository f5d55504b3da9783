#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianCore
import MijianEvidence
import MijianHost
import ServiceLifecycle
import Synchronization

/// Everything `mijian run` needs, loaded and checked before anything starts.
public struct AgentSetup: Sendable {
    /// The agent configuration.
    public var configuration: AgentConfiguration
    /// The policy in force (SIGHUP reloads it).
    public var policy: PolicyHolder
    /// This machine.
    public var host: HostInfo
    /// Where the key and chain state live.
    public var store: KeyStore

    /// Bundles the setup.
    public init(configuration: AgentConfiguration, policy: PolicyHolder, host: HostInfo, store: KeyStore) {
        self.configuration = configuration
        self.policy = policy
        self.host = host
        self.store = store
    }
}

/// An exclusive lock on `state_dir/agent.lock` for the life of the service: one agent per chain.
final class AgentLock: Sendable {
    private let fd: Int32

    init(path: String) throws(MijianError) {
        let fd = try Syscall.call("cannot open \(path)", path: path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600) }
        do {
            try Syscall.call("cannot lock \(path)", path: path) { flock(fd, LOCK_EX | LOCK_NB) }
        } catch {
            close(fd)
            if error.errno == EWOULDBLOCK {
                throw MijianError(.state, "another `mijian run` already holds \(path); one agent signs one chain", path: path)
            }
            throw error
        }
        self.fd = fd
    }

    deinit { close(fd) }
}

/// `mijian run`: the service group of the workstation agent.
public enum Agent {
    /// Runs until SIGTERM or SIGINT (exit 0 after a final report), or until a service fails
    /// (thrown, after a log line naming it). `sources` plug in further event watches (USB);
    /// `notifySocket` is systemd's socket (`$NOTIFY_SOCKET` unless given).
    public static func run(
        _ setup: AgentSetup, sources: [any AgentEventSource] = [],
        notifySocket: String? = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], logger: Logger
    ) async throws {
        let configuration = setup.configuration
        // Key, chain state and lock live here: a directory another user can change is refused before anything is read from it.
        try setup.store.prepareDirectory()
        let lock = try AgentLock(path: "\(setup.store.directory)/agent.lock")
        defer { withExtendedLifetime(lock) {} }
        let signer = try ReportSigner(store: setup.store)
        let spool = Spool(directory: configuration.spoolDirectory(stateDir: setup.store.directory), maxBytes: configuration.spoolMaxBytes)
        let sealNow = Wakeup<WakeReason>.service()
        let auditNow = Wakeup<WakeReason>.service()
        let delivered = Wakeup<WakeReason>.service()
        let sink = EventSink(sealNow: sealNow)
        let sealer = Sealer(signer: signer, spool: spool, sink: sink, policy: setup.policy.policy, host: setup.host, logger: logger)
        try await sealer.start()
        await sealer.setSelfCheck(SelfCheck(
            policyFile: setup.policy.path.map { URL(fileURLWithPath: $0).standardizedFileURL.path }, keyFile: setup.store.keyPath))
        let notifier = SystemdNotifier(socketPath: notifySocket, logger: logger)
        let first = FirstTime()
        await sealer.setOnSealed { summary in
            delivered.fire(.reportSealed)
            // Code run only to start, audit or seal is given back while the service rests, and so is
            // the heap that sealing freed (glibc keeps freed pages otherwise).
            let released = CodePages.rest()
            if first.take() {
                notifier?.send("READY=1")
                if let released {
                    logger.info("code pages given back after the first report: \(released.bytes >> 10) KiB in \(released.mappings) mapping(s)")
                }
            }
            notifier?.send(
                "STATUS=report seq \(summary.seq) sealed (\(summary.reason)); \(summary.spooled) in the spool"
                    + (summary.pending > 0 ? ", \(summary.pending) held in memory (disk refused)" : ""))
        }
        let transport: (any ReportTransport)?
        switch configuration.delivery.mode {
        case .https:
            transport = try HTTPSTransport(url: configuration.delivery.url ?? "", caFile: configuration.delivery.caFile ?? "", logger: logger)
        case .dropDir:
            transport = DropDirectoryTransport(directory: configuration.delivery.dropDir ?? "")
        case .none:
            transport = nil
        }
        logger.notice(
            "mijian run starting",
            metadata: [
                "agent.keyid": "\(signer.key.keyid)", "agent.policy": "\(setup.policy.policy.id) \(setup.policy.policy.version)",
                "agent.spool": "\(spool.directory)", "agent.delivery": "\(configuration.delivery.mode.rawValue)",
                "agent.report_interval": "\(AgentConfiguration.text(configuration.reportInterval))",
                "agent.audit_interval": "\(AgentConfiguration.text(configuration.auditInterval))",
            ])
        // Shutdown runs backwards through this list: watches stop first, then the final report
        // is sealed, then delivery gets its last moment.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let transport {
            services.append(.init(service: DeliveryService(
                sealer: sealer, transport: transport, wakeup: delivered, logger: logger, maxBackoff: configuration.delivery.retryMax), serviceName: "delivery"))
        }
        services.append(.init(
            service: SealService(sealer: sealer, sealNow: sealNow, interval: configuration.reportInterval, logger: logger, clock: ContinuousClock()),
            serviceName: "sealer"))
        services.append(.init(
            service: AuditService(
                sealer: sealer, policy: setup.policy, host: setup.host, wakeup: auditNow, sealNow: sealNow,
                interval: configuration.auditInterval, debounce: configuration.debounce, logger: logger,
                status: { notifier?.send("STATUS=\($0)") }, clock: ContinuousClock()),
            serviceName: "audit"))
        services.append(.init(service: MarkingScanService(sealer: sealer, policy: setup.policy, host: setup.host, stateDir: setup.store.directory, sealNow: sealNow, logger: logger, clock: ContinuousClock()), serviceName: "markings"))
        let trafficNow = Wakeup<WakeReason>.service()
        // One thread waits on every blocking source's descriptor (rtnetlink, each capture, the
        // uevent monitor, the policy file's directory).
        let readiness = try ReadinessLoop()
        services.append(.init(
            service: NetworkChangeService(audit: auditNow, readiness: readiness, logger: logger, onChange: { trafficNow.fire(.networkChange) }),
            serviceName: "rtnetlink"))
        if configuration.trafficEnabled {
            services.append(.init(
                service: TrafficService(
                    sealer: sealer, sink: sink, policy: setup.policy, links: configuration.trafficLinks,
                    bufferBytes: configuration.trafficBufferBytes, wakeup: trafficNow, readiness: readiness, logger: logger),
                serviceName: "traffic"))
        }
        for source in sources {
            services.append(.init(
                service: EventSourceService(source: source, sink: sink, sealer: sealer, readiness: readiness, logger: logger),
                successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore, serviceName: source.name))
        }
        services.append(.init(service: ReloadService(
                policy: setup.policy, sealer: sealer, audit: auditNow, readiness: readiness, logger: logger, notifier: notifier,
                onReload: { trafficNow.fire(.policyReloaded) }), serviceName: "reload"))
        services.append(.init(service: RestService(interval: .seconds(60)), serviceName: "rest"))
        if let notifier, let interval = SystemdNotifier.watchdogInterval() {
            services.append(.init(service: WatchdogService(notifier: notifier, interval: interval, sealer: sealer, clock: ContinuousClock()), serviceName: "watchdog"))
        }
        var group = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .milliseconds(4500)
        group.maximumCancellationDuration = .seconds(10)
        do {
            try await ServiceGroup(configuration: group).run()
            await readiness.stop()
            ProbeWorkers.stopAll()
        } catch {
            await readiness.stop()
            ProbeWorkers.stopAll()
            notifier?.send("STATUS=stopped: \(error)")
            logger.critical("mijian run stopped: \(error)")
            throw MijianError(.state, "mijian run stopped: \(error)")
        }
        let count = await sealer.sealedCount
        logger.notice("mijian run stopped", metadata: ["agent.reports_sealed": "\(count)"])
    }
}

/// True exactly once.
final class FirstTime: Sendable {
    private let done = Mutex<Bool>(false)

    func take() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}
