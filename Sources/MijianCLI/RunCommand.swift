#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Logging
import MijianAgent
import MijianCore
import MijianEvidence
import MijianHost

/// `mijian run`: the workstation service.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the workstation service: audit on change, seal signed reports, spool and deliver them.",
        discussion: """
            Runs until SIGTERM or SIGINT, which seal a final report and exit 0. SIGHUP reloads the policy. \
            Logs go to standard error in journald's format. Exit status 2: the configuration, the policy, \
            the key or a service failed (the log says which).
            """
    )

    @Option(name: .long, help: ArgumentHelp("Policy YAML (default: the built-in classified-workstation policy).", valueName: "FILE"))
    var policy: String?

    @Option(name: .long, help: ArgumentHelp("Agent configuration YAML (default: /etc/mijian/agent.yaml when present).", valueName: "FILE"))
    var config: String?

    @Option(name: .customLong("host-file"), help: ArgumentHelp("Host identity YAML (default: /etc/mijian/host.yaml when present).", valueName: "FILE"))
    var hostFile: String?

    @Option(name: .customLong("key-dir"), help: ArgumentHelp("Key, chain and spool directory (default: the policy's state_dir, else /var/lib/mijian).", valueName: "DIR"))
    var keyDir: String?

    func run() async throws {
        // What is mapped now (the program and the libraries it was linked with) is what resting may
        // give back pages of: none of it is ever unmapped.
        CodePages.recordStartup()
        // Until the reload service traps it, a SIGHUP must not end the process.
        signal(SIGHUP, SIG_IGN)
        var logger = Logger(label: "mijian.run") { JournalLogHandler(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["MIJIAN_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let setup: AgentSetup
        do {
            let configuration = try AgentConfiguration.load(config)
            let policy = try PolicyHolder.load(self.policy)
            let identity = try AuditRun.loadIdentity(hostFile, root: .live)
            let host = try HostProbe.hostInfo(root: .live, identity: identity)
            setup = AgentSetup(
                configuration: configuration, policy: PolicyHolder(policy, path: self.policy), host: host,
                store: KeyStore.resolve(keyDir: keyDir, policy: policy))
        } catch {
            logger.critical("mijian run cannot start: \(error)")
            throw ExitCode(2)
        }
        do {
            // The live USB control: the monitor, the coldplug walk and, under usb.mode: enforce, the kernel's switches.
            let sources: [any AgentEventSource] = setup.configuration.usbEnabled ? [USBEventSource(policy: setup.policy, logger: logger)] : []
            try await Agent.run(setup, sources: sources, logger: logger)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(2)
        }
    }
}
