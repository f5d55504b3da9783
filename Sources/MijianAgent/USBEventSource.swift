import Foundation
import Logging
import MijianCore
import MijianDevices
import MijianHost

/// The live USB control inside `mijian run`: a uevent monitor (udev when udevd answers, else the
/// kernel's), the coldplug walk, a walk after every overflow, and a new judgement of every present
/// interface when the policy is reloaded. Every event goes into the next report; a deny, a
/// would-deny, a refused write or a lost stream asks for that report at once.
public struct USBEventSource: AgentEventSource {
    /// `usb`.
    public let name = "usb"
    private let policy: PolicyHolder
    private let logger: Logger
    private let receiveBufferSize: Int
    private let pollInterval: Duration

    /// A source reading the policy from `policy` (its changes are picked up within `pollInterval`).
    public init(policy: PolicyHolder, logger: Logger, receiveBufferSize: Int = 8 << 20, pollInterval: Duration = .seconds(1)) {
        self.policy = policy
        self.logger = logger
        self.receiveBufferSize = receiveBufferSize
        self.pollInterval = pollInterval
    }

    /// Runs until cancelled.
    public func run(into sink: EventSink) async throws {
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
        let watch = USBWatch(pollInterval: pollInterval, receiveBufferSize: receiveBufferSize)
        try await watch.run(control: control, source: source, policy: { holder.policy }) { output in
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
