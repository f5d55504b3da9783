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

    private enum Input: Sendable {
        case message(MonitorMessage)
        case tick
        case ended
    }

    /// Runs until cancelled.
    public func run(into sink: EventSink) async throws {
        let knowledge = ModuleKnowledge.load(root: .live, live: true, logger: logger)
        var current = policy.policy
        let control = USBControl(.init(root: .live, policy: current, enforce: current.usbMode == .enforce, knowledge: knowledge))
        var source: EventSource = .kernel
        if let reason = UdevDaemon.unavailableReason() {
            logger.notice("usb: reading the kernel's uevents", metadata: ["usb.why": "\(reason)"])
        } else {
            source = .udev
        }
        var monitor = try DeviceMonitor(source: source, subsystems: ["usb"], receiveBufferSize: receiveBufferSize)
        if let note = monitor.bufferNote { logger.warning("usb: \(note)") }
        logger.notice(
            "usb: watching", metadata: ["usb.source": "\(source.rawValue)", "usb.mode": "\(current.usbMode.rawValue)", "usb.policy": "\(current.id)"])
        var firstWalk = true
        while !Task.isCancelled {
            let (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
            monitor.start()
            let watching = monitor
            let forward = Task {
                for await message in watching.messages { continuation.yield(.message(message)) }
                continuation.yield(.ended)
            }
            let ticks = Task { [pollInterval] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: pollInterval)
                    continuation.yield(.tick)
                }
            }
            defer {
                watching.stop()
                forward.cancel()
                ticks.cancel()
            }
            if firstWalk {
                firstWalk = false
                await record(control.start(source: .coldplug), into: sink)
            } else {
                await record(control.resync(reason: "udev source lost; now reading the kernel's uevents"), into: sink)
            }
            var restart = false
            loop: for await input in inputs {
                if Task.isCancelled { break }
                switch input {
                case .message(.event(let event, let receivedAt)):
                    await record(control.handle(event, receivedAt: receivedAt, source: watching.source), into: sink)
                case .message(.overflow):
                    logger.warning("usb: the uevent socket overflowed (ENOBUFS); walking sysfs again")
                    await record(control.resync(reason: "uevent socket overflow (ENOBUFS)"), into: sink)
                case .message(.sourceLost(let reason)):
                    logger.warning("usb: udev source lost; switching to the kernel's uevents", metadata: ["usb.why": "\(reason)"])
                    restart = true
                case .message(.failure(let error)):
                    throw error
                case .tick:
                    let latest = policy.policy
                    if latest.sha256 != current.sha256 {
                        current = latest
                        logger.notice("usb: policy reloaded; judging every present interface again", metadata: ["usb.mode": "\(latest.usbMode.rawValue)"])
                        await record(control.reload(policy: latest, enforce: latest.usbMode == .enforce), into: sink)
                    }
                case .ended:
                    break loop
                }
                if restart { break }
            }
            guard restart, !Task.isCancelled else { return }
            source = .kernel
            monitor = try DeviceMonitor(source: .kernel, subsystems: ["usb"], receiveBufferSize: receiveBufferSize)
        }
    }

    private func record(_ events: [Event], into sink: EventSink) async {
        for event in events { await sink.record(event, failing: event.isUSBFailure) }
    }
}
