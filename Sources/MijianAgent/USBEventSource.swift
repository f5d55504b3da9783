import Foundation
import Logging
import MijianCore
import MijianDevices
import MijianHost

/// The live USB control inside `mijian run`: a uevent monitor (udev when udevd answers, else the
/// kernel's) read on the service's readiness thread, the coldplug walk, a walk after every
/// overflow, and a new judgement of every present interface when a new policy is in force (the
/// policy holder's wake-up: a reload on SIGHUP or a written policy file). Every event goes into
/// the next report; a deny, a would-deny, a refused write or a lost stream asks for that report at once.
public struct USBEventSource: AgentEventSource {
    /// `usb`.
    public let name = "usb"
    private let policy: PolicyHolder
    private let logger: Logger
    private let receiveBufferSize: Int
    private let udevCheck: USBWatch.UdevCheck

    /// A source judging by `policy`, and again whenever it is replaced.
    public init(policy: PolicyHolder, logger: Logger, receiveBufferSize: Int = 8 << 20, udevCheck: USBWatch.UdevCheck = .live) {
        self.policy = policy
        self.logger = logger
        self.receiveBufferSize = receiveBufferSize
        self.udevCheck = udevCheck
    }

    /// Runs until cancelled, on a readiness thread of its own.
    public func run(into sink: EventSink) async throws {
        let readiness = try ReadinessLoop(name: "mijian-uevents")
        do {
            try await run(into: sink, readiness: readiness)
        } catch {
            await readiness.stop()
            throw error
        }
        await readiness.stop()
    }

    /// Runs until cancelled, its monitor read on `readiness`.
    public func run(into sink: EventSink, readiness: ReadinessLoop) async throws {
        // Subscribed before the policy is read: no reload between the two is missed.
        let changes = policy.changes()
        let knowledge = ModuleKnowledge.load(root: .live, live: true, logger: logger)
        let current = policy.policy
        let control = USBControl(.init(root: .live, policy: current, enforce: current.usbMode == .enforce, knowledge: knowledge))
        var source: EventSource = .kernel
        if let reason = UdevDaemon.unavailableReason() {
            logger.notice("usb: reading the kernel's uevents", metadata: ["usb.why": "\(reason)"])
        } else {
            source = .udev
        }
        let holder = policy
        let logger = self.logger
        let watch = USBWatch(readiness: readiness, receiveBufferSize: receiveBufferSize, udevCheck: udevCheck)
        let next: @Sendable () async -> Policy? = {
            while let reason = await changes.wait(timeout: nil) {
                if reason == .policyReloaded { return holder.policy }
            }
            return nil
        }
        try await watch.run(control: control, source: source, policyChanges: next) { output in
            switch output {
            case .events(let events):
                for event in events { await sink.record(event, failing: event.isUSBFailure) }
            case .note(.watching(let source, let bufferNote)):
                if let bufferNote { logger.warning("usb: \(bufferNote)") }
                let policy = holder.policy
                logger.notice(
                    "usb: watching", metadata: ["usb.source": "\(source.rawValue)", "usb.mode": "\(policy.usbMode.rawValue)", "usb.policy": "\(policy.id)"])
            case .note(.overflow):
                logger.warning("usb: the uevent socket overflowed (ENOBUFS); walking sysfs again")
            case .note(.sourceLost(let reason)):
                logger.warning("usb: udev source lost; switching to the kernel's uevents", metadata: ["usb.why": "\(reason)"])
            case .note(.policyReloaded(let latest)):
                logger.notice("usb: policy reloaded; judging every present interface again", metadata: ["usb.mode": "\(latest.usbMode.rawValue)"])
            }
        }
    }
}
