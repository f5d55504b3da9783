#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Logging
import MijianCore
import MijianDevices
import MijianHost

/// `mijian devices`: every USB device now, interface by interface, and what the policy decides.
struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List USB devices, interface by interface, with what the policy decides and why.",
        discussion: "Exit status: 0 the policy allows every interface, 1 it objects to one (deny or would-deny), 2 usage or runtime error.",
        subcommands: [DevicesList.self, DevicesWatch.self],
        defaultSubcommand: DevicesList.self
    )
}

/// The listing (the default subcommand).
struct DevicesList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List USB devices and the policy's decisions (the default).")

    @Option(name: .long, help: ArgumentHelp("Read sysfs and the module tree under DIR instead of /.", valueName: "DIR"))
    var root: String?

    @Option(name: .long, help: ArgumentHelp("Policy YAML (default: the built-in classified-workstation policy).", valueName: "FILE"))
    var policy: String?

    @Option(name: .long, help: "Output format: text or json.")
    var format: OutputFormat = .text

    func run() async throws {
        let (policy, _) = try AuditRun.loadPolicy(policy)
        let hostRoot = try DevicesSupport.root(root)
        let knowledge = ModuleKnowledge.load(root: hostRoot, live: root == nil, logger: Logger(label: "mijian.devices"))
        let enforce = policy.usbMode == .enforce
        let names: [String]
        do {
            names = try hostRoot.list("/sys/bus/usb/devices")
        } catch where error.code == .notFound {
            throw MijianError(.notFound, "\(hostRoot.real("/sys/bus/usb/devices")) does not exist: no USB bus (usbcore not loaded, or not a sysfs tree), so no device can be judged")
        } catch {
            throw MijianError(error.code, "cannot list \(hostRoot.real("/sys/bus/usb/devices")): the USB devices cannot be seen", path: error.path, errno: error.errno)
        }
        var decisions: [(String, DeviceDecision)] = []
        // Entries that could not be looked at (refused, looping; not vanished): unknown devices,
        // which the policy objects to as it objects to what it cannot judge.
        var unreadable: [FactSource] = []
        for name in names where !name.contains(":") {
            let (resolved, failures) = hostRoot.collectingFailures { $0.resolve("/sys/bus/usb/devices/\(name)") }
            unreadable += failures
            guard let path = resolved else { continue }
            var vanished: [String] = []
            guard let device = USBSysfs.deviceWithInterfaces(root: hostRoot, name: name, path: path, aliases: knowledge.modules(matching:), vanished: &vanished),
                  !device.isRootHub
            else { continue }
            decisions.append((String(path.dropFirst(4)), USBPolicyDecider.decide(device, policy: policy, enforce: enforce, family: knowledge.family(of:))))
        }
        switch format {
        case .json:
            var json: JSONValue = [
                "policy": ["id": .string(policy.id), "version": .string(policy.version), "sha256": .string(policy.sha256)],
                "mode": .string(policy.usbMode.rawValue), "root": .string(hostRoot.path),
                "module_tree": ["kernel": .string(knowledge.kernelRelease), "sources": .array(knowledge.sources.map(\.json))],
                "devices": .array(decisions.map { devpath, decision in
                    var members: [(String, JSONValue)] = [
                        ("device", USBControl.identity(decision.device, devpath: devpath)), ("decision", .string(decision.verdict.rawValue)),
                        ("whole_device", .string(decision.wholeDevice.rawValue)), ("authorized", .optional(hostRoot.attribute(decision.device.sysfsPath + "/authorized"))),
                        ("interfaces", .array(decision.interfaces.map { item in
                            var json = item.json
                            if case .object(var members) = json {
                                members.append(("authorized", .optional(hostRoot.attribute(item.interface.sysfsPath + "/authorized"))))
                                json = .object(members)
                            }
                            return json
                        })),
                    ]
                    if !decision.unreadable.isEmpty { members.append(("unreadable", .array(decision.unreadable.map(\.json)))) }
                    return .object(members)
                }),
            ]
            if !unreadable.isEmpty, case .object(var members) = json {
                members.append(("unreadable", .array(unreadable.map(\.json))))
                json = .object(members)
            }
            try Console.out(bytes: json.prettySerialized())
        case .text:
            var text = ""
            for (_, decision) in decisions {
                let device = decision.device
                text += "\(device.name)  \(device.displayName)  serial \(device.serial ?? "(none)")  → \(decision.verdict.rawValue)\n"
                if let first = decision.unreadable.first {
                    let more = decision.unreadable.count > 1 ? " and \(decision.unreadable.count - 1) more part(s)" : ""
                    text += "    could not be read: \(first.errorReason ?? first.path)\(more): what it is is unknown\n"
                }
                if decision.interfaces.isEmpty, decision.unreadable.isEmpty { text += "    (no interfaces: unconfigured or de-authorised)\n" }
                for item in decision.interfaces {
                    text += "    \(item.interface.name)  \(item.interface.classTriple)  \(item.classification.kind.rawValue)  \(item.verdict.rawValue): \(item.reason)\n"
                }
            }
            for part in unreadable { text += "\(part.path) could not be read (\(part.errorReason ?? "unreadable")): an unknown device\n" }
            let objecting = decisions.count(where: { $0.1.verdict.objects })
            text += "\(decisions.count) USB device(s) under \(hostRoot.path), policy \(policy.id) (usb.mode \(policy.usbMode.rawValue)): \(objecting) the policy objects to"
                + (unreadable.isEmpty ? ".\n" : "; \(unreadable.count) could not be read.\n")
            try Console.out(text)
        }
        if !unreadable.isEmpty || decisions.contains(where: { $0.1.verdict.objects }) { throw ExitCode(1) }
    }
}

/// `mijian devices watch`: live arrivals, decisions and removals.
struct DevicesWatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Watch USB devices live: judge each interface as it appears; with --enforce keep denied ones from their drivers.",
        discussion: "Runs until interrupted (or --for SECONDS). One line per event; --format json prints one JSON object per line."
    )

    /// Which uevent source to read.
    enum SourceChoice: String, ExpressibleByArgument, CaseIterable { case auto, udev, kernel }

    @Option(name: .long, help: ArgumentHelp("Policy YAML (default: the built-in classified-workstation policy).", valueName: "FILE"))
    var policy: String?

    @Flag(name: .long, help: "Enforce whatever the policy's usb.mode says: lock root hubs (interface_authorized_default = 0), authorise allowed interfaces, keep denied ones unbound.")
    var enforce = false

    @Option(name: .long, help: "Uevent source: auto (udev when udevd answers, else the kernel's), udev or kernel.")
    var source: SourceChoice = .auto

    @Option(name: .long, help: "Output format: text or json (one object per line).")
    var format: OutputFormat = .text

    @Option(name: .customLong("for"), help: ArgumentHelp("Stop after this many seconds.", valueName: "SECONDS"))
    var seconds: Double?

    @Option(name: .customLong("receive-buffer"), help: ArgumentHelp("Uevent socket receive buffer in bytes.", valueName: "BYTES"))
    var receiveBuffer: Int = 8 << 20

    func run() async throws {
        let (policy, _) = try AuditRun.loadPolicy(policy)
        let logger = Logger(label: "mijian.devices")
        let enforcing = enforce || policy.usbMode == .enforce
        let knowledge = ModuleKnowledge.load(root: .live, live: true, logger: logger)
        var chosen: EventSource = .kernel
        switch source {
        case .kernel: chosen = .kernel
        case .udev: chosen = .udev
        case .auto:
            if let reason = UdevDaemon.unavailableReason() {
                Console.error("mijian: uevent source kernel: \(reason)")
            } else {
                chosen = .udev
            }
        }
        let control = USBControl(.init(root: .live, policy: policy, enforce: enforcing, knowledge: knowledge))
        let printer = EventPrinter(format: format)
        let clock = ContinuousClock()
        let deadline = seconds.map { clock.now.advanced(by: .milliseconds(Int64(($0 * 1000).rounded()))) }
        // The same loop as the service's: the deadline holds after a fall back from udev to the kernel.
        // The monitor is read on a readiness thread, as in the service.
        let readiness = try ReadinessLoop(name: "mijian-uevents")
        do {
            try await watch(control, source: chosen, deadline: deadline, clock: clock, readiness: readiness, printer: printer, policy: policy, enforcing: enforcing)
        } catch {
            await readiness.stop()
            throw error
        }
        await readiness.stop()
    }

    private func watch(
        _ control: USBControl, source chosen: EventSource, deadline: ContinuousClock.Instant?, clock: ContinuousClock, readiness: ReadinessLoop,
        printer: EventPrinter, policy: Policy, enforcing: Bool
    ) async throws {
        let watch = USBWatch(readiness: readiness, receiveBufferSize: receiveBuffer)
        try await watch.run(control: control, source: chosen, deadline: deadline, clock: clock) { output in
            switch output {
            case .events(let events):
                try printer.print(events)
            case .note(.watching(let source, let bufferNote)):
                if let bufferNote { Console.error("mijian: \(bufferNote)") }
                Console.error("mijian: watching USB (source \(source.rawValue), \(enforcing ? "enforcing" : "audit mode: nothing is blocked"), policy \(policy.id))")
            case .note(.overflow):
                Console.error("mijian: the uevent socket overflowed (ENOBUFS): events were lost; walking sysfs again")
            case .note(.sourceLost(let reason)):
                Console.error("mijian: udev source lost: \(reason); switching to the kernel source")
            case .note(.policyReloaded):
                break
            }
        }
    }
}

/// Writes device events as text lines or JSON lines.
struct EventPrinter {
    let format: OutputFormat

    func print(_ events: [Event]) throws(MijianError) {
        guard !events.isEmpty else { return }
        var bytes: [UInt8] = []
        for event in events {
            switch format {
            case .json: bytes += event.json.serialized()
            case .text: bytes += Array(Self.line(event).utf8)
            }
            bytes.append(UInt8(ascii: "\n"))
        }
        try Console.out(bytes: bytes)
    }

    static func line(_ event: Event) -> String {
        func member(_ json: JSONValue, _ key: String) -> JSONValue? {
            guard case .object(let members) = json else { return nil }
            return members.first { $0.0 == key }?.1
        }
        func text(_ json: JSONValue?) -> String {
            switch json {
            case .string(let value): return value
            case .int(let value): return String(value)
            case .bool(let value): return String(value)
            case nil, .null: return "-"
            default: return json.map { String(decoding: $0.serialized(), as: UTF8.self) } ?? "-"
            }
        }
        let time = RFC3339.string(from: event.observedAt)
        let device = member(event.data, "device")
        let who = device.map { "\(text(member($0, "name"))) \(text(member($0, "vendor"))):\(text(member($0, "product"))) serial \(text(member($0, "serial")))" } ?? ""
        switch event.type {
        case "usb.decision":
            var line = "\(time) decision \(text(member(event.data, "decision"))) \(who) [\(text(member(event.data, "source")))]"
            if case .array(let interfaces)? = member(event.data, "interfaces") {
                for interface in interfaces {
                    line += "\n    \(text(member(interface, "name"))) \(text(member(interface, "class"))) \(text(member(interface, "kind"))) \(text(member(interface, "decision"))): \(text(member(interface, "reason")))"
                }
            }
            if case .array(let writes)? = member(event.data, "writes") {
                for write in writes {
                    line += "\n    write \(text(member(write, "value"))) > \(text(member(write, "path"))): \(text(member(write, "ok")) == "true" ? "done" : text(member(write, "error")))"
                }
            }
            return line + "\n    latency \(text(member(event.data, "latency_us"))) µs"
        case "usb.arrival": return "\(time) arrival \(who) [\(text(member(event.data, "source")))]"
        case "usb.removal": return "\(time) removal \(who) [\(text(member(event.data, "source")))]"
        case "usb.resync": return "\(time) resync: \(text(member(event.data, "reason"))); \(text(member(event.data, "newly_judged"))) newly judged, \(text(member(event.data, "removed_unseen"))) removed unseen"
        case "usb.error": return "\(time) error \(text(member(event.data, "devpath"))): \(text(member(event.data, "what"))) (\(text(member(event.data, "error"))))"
        default: return "\(time) \(event.type) \(String(decoding: event.data.serialized(), as: UTF8.self))"
        }
    }
}

/// Shared bits of the device commands.
enum DevicesSupport {
    /// The host root for `--root`, checked to be a directory.
    static func root(_ path: String?) throws(MijianError) -> HostRoot {
        guard let path else { return .live }
        var info = stat()
        guard stat(path, &info) == 0 else { throw MijianError(.notFound, "--root \(path): no such directory", path: path, errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw MijianError(.usage, "--root \(path): not a directory", path: path) }
        let root = HostRoot(path: path)
        // Reads under a root go through openat2(RESOLVE_IN_ROOT); a kernel without it cannot keep them inside.
        try root.check()
        return root
    }
}
