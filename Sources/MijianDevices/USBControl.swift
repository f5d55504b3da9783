import Foundation
import MijianCore
import MijianHost

/// The live USB control: every uevent of the `usb` subsystem, the coldplug walk and the walk after an
/// overflow come here; each USB interface is judged as it appears, and in enforce mode the kernel's
/// own switches carry the decision out (`interface_authorized_default`, per-interface `authorized`,
/// `drivers_probe`, and the device's `authorized` when every interface is denied).
///
/// One instance is driven from one task; it is not thread-safe.
public final class USBControl {
    /// What a decision is made against.
    public struct Configuration: Sendable {
        /// Where `/sys` is read and written.
        public var root: HostRoot
        /// The policy (ledger, `usb.allow`).
        public var policy: Policy
        /// Enforce (write the kernel's switches) or audit (report would-deny).
        public var enforce: Bool
        /// Module tree knowledge for vendor-specific interfaces.
        public var knowledge: ModuleKnowledge

        /// Makes a configuration.
        public init(root: HostRoot, policy: Policy, enforce: Bool, knowledge: ModuleKnowledge) {
            self.root = root
            self.policy = policy
            self.enforce = enforce
            self.knowledge = knowledge
        }
    }

    private struct Tracked {
        var device: USBDevice
        var interfaces: Set<String>
        /// The interfaces as read when they were judged (device path below `/sys` → interface):
        /// what a `bind` of the device needs of them again is only their driver.
        var read: [String: USBInterface] = [:]
    }

    /// The current configuration.
    public private(set) var configuration: Configuration
    private let writer: SysfsWriter
    private var devices: [String: Tracked] = [:]
    private var interfaceOwners: [String: String] = [:]
    private var barrier: UInt64 = 0
    /// Where the decision being made spends its time.
    private var timing = DecisionTiming()
    /// The thread's CPU time when the decision being made was taken up.
    private var cpuStarted: UInt64 = 0
    /// Events that repeated what was already judged (an add after coldplug saw the device, or one the
    /// kernel had sent before the walk began).
    public private(set) var duplicatesSkipped = 0
    /// Events handled.
    public private(set) var eventsHandled = 0

    /// A control with nothing judged yet.
    public init(_ configuration: Configuration) {
        self.configuration = configuration
        self.writer = SysfsWriter(root: configuration.root)
    }

    /// Device paths (below `/sys`) of the devices judged and still present.
    public var trackedDevices: [String] { devices.keys.sorted() }

    /// Replaces the policy (SIGHUP) and judges every present interface again under it, so a medium
    /// struck from the ledger loses its driver at once rather than at its next plug.
    public func reload(policy: Policy, enforce: Bool, now: Date = Date()) -> [Event] {
        configuration.policy = policy
        configuration.enforce = enforce
        interfaceOwners = [:]
        for key in devices.keys {
            devices[key]?.interfaces = []
            devices[key]?.read = [:]
        }
        return resync(reason: "policy \(policy.id) \(policy.version) (sha256 \(policy.sha256.prefix(12))…) loaded: every present interface judged again", now: now)
    }

    // MARK: start, coldplug, resync

    /// In enforce mode, switches every root hub to `interface_authorized_default = 0`; then judges every
    /// device present as if it had just arrived. Call after the monitor is receiving.
    public func start(source: EventSource = .coldplug, now: Date = Date()) -> [Event] {
        var events: [Event] = []
        if configuration.enforce { events += lockRootHubs(now: now) }
        events += walk(source: source, reportRemovals: false, now: now).events
        return events
    }

    /// After an overflow: walks sysfs again, judges what is new, reports what went, and says so.
    public func resync(reason: String, now: Date = Date()) -> [Event] {
        var events: [Event] = []
        if configuration.enforce { events += lockRootHubs(now: now) }
        let (walked, judged, removed) = walk(source: .resync, reportRemovals: true, now: now)
        events += walked
        events.append(Event(type: "usb.resync", observedAt: now, data: [
            "reason": .string(reason), "devices_present": .integer(devices.count), "newly_judged": .integer(judged),
            "removed_unseen": .integer(removed), "barrier_seqnum": .int(Int64(clamping: barrier)),
        ]))
        return events
    }

    private func lockRootHubs(now: Date) -> [Event] {
        // A hub that could not be looked at stays unlocked: that is said, never passed over.
        var errors: [Event] = []
        let names: [String]
        do {
            names = try configuration.root.list("/sys/bus/usb/devices")
        } catch {
            return [errorEvent(devpath: "/bus/usb/devices", what: "cannot list /sys/bus/usb/devices, so no root hub was locked", errno: error.errno, source: .coldplug, now: now)]
        }
        var writes: [SysfsWrite] = []
        for name in names where name.hasPrefix("usb") && !name.contains(":") {
            let (resolved, failures) = configuration.root.collectingFailures { $0.resolve("/sys/bus/usb/devices/\(name)") }
            guard let path = resolved else {
                if let failure = failures.first {
                    errors.append(errorEvent(
                        devpath: "/bus/usb/devices/\(name)", what: "root hub not locked: \(failure.errorReason ?? "unreadable")", errno: nil,
                        source: .coldplug, now: now))
                }
                continue
            }
            if configuration.root.attribute(path + "/interface_authorized_default") == "0" { continue }
            writes.append(writer.write(path + "/interface_authorized_default", "0"))
        }
        guard !writes.isEmpty else { return errors }
        return [Event(type: "usb.enforcement", observedAt: now, data: [
            "what": .string("interface_authorized_default = 0 on root hubs: no new interface binds a driver before it is judged"),
            "writes": .array(writes.map(\.json)), "failed": .integer(writes.count(where: { !$0.succeeded })),
        ])] + errors
    }

    private func readBarrier() -> UInt64 {
        configuration.root.attribute("/sys/kernel/uevent_seqnum").flatMap { UInt64($0) } ?? 0
    }

    private func walk(source: EventSource, reportRemovals: Bool, now: Date) -> (events: [Event], judged: Int, removed: Int) {
        let root = configuration.root
        barrier = readBarrier()
        var events: [Event] = []
        var seen: Set<String> = []
        var judged = 0
        let names: [String]
        do {
            names = try root.list("/sys/bus/usb/devices")
        } catch {
            events.append(errorEvent(devpath: "/bus/usb/devices", what: "cannot list /sys/bus/usb/devices", errno: error.errno, source: source, now: now))
            return (events, 0, 0)
        }
        for name in names where !name.contains(":") {
            let started = Monotonic.now()
            timing = DecisionTiming()
            cpuStarted = ThreadCPU.now()
            let (resolved, unresolved) = root.collectingFailures { $0.resolve("/sys/bus/usb/devices/\(name)") }
            guard let path = resolved, path.hasPrefix("/sys/") else {
                // A device that could not be looked at is never judged by its absence: it is
                // reported, and in enforce mode its interfaces stay locked by the root hub.
                if let failure = unresolved.first {
                    events.append(errorEvent(
                        devpath: "/bus/usb/devices/\(name)", what: "cannot resolve /sys/bus/usb/devices/\(name): \(failure.errorReason ?? "unreadable")",
                        errno: nil, source: source, now: now))
                }
                continue
            }
            let devpath = String(path.dropFirst(4))
            var vanished: [String] = []
            guard let device = reading(.readDevice, { USBSysfs.deviceWithInterfaces(root: root, name: name, path: path, aliases: aliases, vanished: &vanished) }) else {
                events.append(errorEvent(devpath: devpath, what: "device vanished while being read", errno: ENOENT, source: source, now: now))
                continue
            }
            seen.insert(devpath)
            let fresh = device.interfaces.filter { interfaceOwners[String($0.sysfsPath.dropFirst(4))] == nil }
            if devices[devpath] != nil, fresh.isEmpty { continue }
            if devices[devpath] == nil {
                devices[devpath] = Tracked(device: device, interfaces: [])
                if device.isRootHub, configuration.enforce, root.attribute(path + "/interface_authorized_default") != "0" {
                    // A controller that appeared during the walk.
                    events += lockRootHubs(now: now)
                }
            }
            guard !device.isRootHub else {
                track(interfaces: device.interfaces, of: devpath)
                continue
            }
            judged += 1
            var partial = device
            partial.interfaces = fresh
            events.append(decide(partial, devpath: devpath, scope: "device", source: source, seqnum: 0, started: started, now: now, vanished: vanished))
        }
        var removed = 0
        if reportRemovals {
            for devpath in devices.keys.sorted() where !seen.contains(devpath) {
                if let tracked = untrack(devpath) {
                    removed += 1
                    events.append(removalEvent(tracked.device, devpath: devpath, source: source, seqnum: 0, note: "gone before the walk after the overflow", now: now))
                }
            }
        }
        return (events, judged, removed)
    }

    // MARK: events

    /// Judges one uevent; `receivedAt` is when it came off the socket (monotonic nanoseconds), and
    /// `queue` what it waited behind before it came here (the decision's `timing_us` says so).
    public func handle(_ event: UEvent, receivedAt: UInt64, source: EventSource, queue: QueueTime = QueueTime(), now: Date = Date()) -> [Event] {
        guard event.subsystem == "usb" else { return [] }
        eventsHandled += 1
        timing = DecisionTiming()
        cpuStarted = ThreadCPU.now()
        timing[.handoff] = queue.handoff
        timing[.behindDecisions] = queue.behindDecisions
        timing[.behindOutput] = queue.behindOutput
        if event.seqnum != 0, event.seqnum <= barrier {
            duplicatesSkipped += 1
            return []
        }
        let devpath = event.devpath
        let path = "/sys" + devpath
        let root = configuration.root
        switch (event.action, event.devtype) {
        case ("add", "usb_device"):
            if devices[devpath] != nil {
                duplicatesSkipped += 1
                return []
            }
            guard let device = reading(.readDevice, { USBSysfs.device(root: root, name: event.kernelName, path: path) }) else {
                return [errorEvent(devpath: devpath, what: "device vanished before it could be read", errno: ENOENT, source: source, seqnum: event.seqnum, now: now)]
            }
            devices[devpath] = Tracked(device: device, interfaces: [])
            var events = [arrivalEvent(device, devpath: devpath, source: source, seqnum: event.seqnum, now: now)]
            if device.isRootHub, configuration.enforce { events += lockRootHubs(now: now) }
            return events
        case ("add", "usb_interface"):
            if interfaceOwners[devpath] != nil {
                duplicatesSkipped += 1
                return []
            }
            let parentDevpath = Self.parent(of: devpath)
            let interfaceName = event.kernelName
            guard let interface = reading(.readInterfaces, { USBSysfs.interface(root: root, name: interfaceName, path: path, aliases: aliases) }) else {
                return [errorEvent(devpath: devpath, what: "interface vanished before it could be judged", errno: ENOENT, source: source, seqnum: event.seqnum, now: now)]
            }
            let parentName = parentDevpath.split(separator: "/").last.map(String.init) ?? ""
            guard var device = devices[parentDevpath]?.device ?? reading(.readDevice, { USBSysfs.device(root: root, name: parentName, path: "/sys" + parentDevpath) }) else {
                return [errorEvent(devpath: devpath, what: "the interface's device vanished before it could be judged", errno: ENOENT, source: source, seqnum: event.seqnum, now: now)]
            }
            if devices[parentDevpath] == nil { devices[parentDevpath] = Tracked(device: device, interfaces: []) }
            device.interfaces = [interface]
            if device.isRootHub {
                track(interfaces: [interface], of: parentDevpath)
                return []
            }
            return [decide(device, devpath: parentDevpath, scope: "interface", source: source, seqnum: event.seqnum, started: receivedAt, now: now, vanished: [])]
        case ("bind", "usb_device"):
            guard let tracked = devices[devpath], !tracked.device.isRootHub else { return [] }
            var vanished: [String] = []
            guard let device = reading(.readDevice, { bound(tracked, name: event.kernelName, path: path, vanished: &vanished) }) else {
                return []
            }
            // Interfaces whose add was not seen (none, unless a message was lost) are judged now.
            let fresh = device.interfaces.filter { interfaceOwners[String($0.sysfsPath.dropFirst(4))] == nil }
            var events: [Event] = []
            if !fresh.isEmpty {
                var partial = device
                partial.interfaces = fresh
                events.append(decide(partial, devpath: devpath, scope: "interface", source: source, seqnum: event.seqnum, started: receivedAt, now: now, vanished: vanished))
            }
            events.append(wholeDevice(device, devpath: devpath, source: source, seqnum: event.seqnum, started: receivedAt, now: now))
            return events
        case ("remove", "usb_device"):
            guard let tracked = untrack(devpath) else { return [] }
            return [removalEvent(tracked.device, devpath: devpath, source: source, seqnum: event.seqnum, note: nil, now: now)]
        case ("remove", "usb_interface"):
            if let owner = interfaceOwners.removeValue(forKey: devpath) {
                devices[owner]?.interfaces.remove(devpath)
                devices[owner]?.read.removeValue(forKey: devpath)
            }
            return []
        default:
            return []
        }
    }

    // MARK: deciding and acting

    private func decide(
        _ device: USBDevice, devpath: String, scope: String, source: EventSource, seqnum: UInt64, started: UInt64, now: Date, vanished: [String]
    ) -> Event {
        let decision = timing.measure(.decide) {
            USBPolicyDecider.decide(device, policy: configuration.policy, enforce: configuration.enforce, family: configuration.knowledge.family(of:))
        }
        var writes: [SysfsWrite] = []
        if configuration.enforce {
            // Interfaces read from the raw descriptors have no switch to write: their device is already kept out.
            for item in decision.interfaces where !item.interface.fromDescriptors {
                let path = item.interface.sysfsPath
                let current = timing.measure(.readAuthorized) { configuration.root.attribute(path + "/authorized") }
                if item.verdict == .allow {
                    if current == "0" {
                        let authorised = write(.writeInterfaceAuthorized, path + "/authorized", "1")
                        writes.append(authorised)
                        // An interface authorised after it appeared is not probed by itself.
                        if authorised.succeeded { writes.append(write(.writeDriversProbe, "/sys/bus/usb/drivers_probe", item.interface.name)) }
                    }
                } else if current != "0" {
                    writes.append(write(.writeInterfaceAuthorized, path + "/authorized", "0"))
                }
            }
        }
        track(interfaces: device.interfaces, of: devpath)
        var whole: Verdict = .allow
        if scope == "device" {
            whole = decision.wholeDevice
            if whole == .deny, !decision.interfaces.isEmpty || decision.unreadableVerdict == .deny, device.authorized != false {
                writes.append(write(.writeDeviceAuthorized, device.sysfsPath + "/authorized", "0"))
            }
        }
        let latency = closeTiming(started: started)
        return decisionEvent(decision, devpath: devpath, scope: scope, whole: whole, writes: writes, vanished: vanished, source: source, seqnum: seqnum, latencyMicros: latency, now: now)
    }

    /// After `bind`: every interface exists; a device whose every interface is denied is de-authorised whole.
    private func wholeDevice(_ device: USBDevice, devpath: String, source: EventSource, seqnum: UInt64, started: UInt64, now: Date) -> Event {
        let decision = timing.measure(.decide) {
            USBPolicyDecider.decide(device, policy: configuration.policy, enforce: configuration.enforce, family: configuration.knowledge.family(of:))
        }
        let whole = decision.wholeDevice
        var writes: [SysfsWrite] = []
        if whole == .deny, device.authorized != false { writes.append(write(.writeDeviceAuthorized, device.sysfsPath + "/authorized", "0")) }
        let latency = closeTiming(started: started)
        return decisionEvent(decision, devpath: devpath, scope: "device", whole: whole, writes: writes, vanished: [], source: source, seqnum: seqnum, latencyMicros: latency, now: now)
    }

    // MARK: timing

    /// The module tree's matches for a modalias, timed as `aliases`.
    private func aliases(_ modalias: String) -> [String] {
        timing.measure(.aliases) { configuration.knowledge.modules(matching: modalias) }
    }

    /// Runs a read of sysfs, adding its time less the alias matching inside it to `phase`.
    private func reading<T>(_ phase: DecisionTiming.Phase, _ body: () -> T) -> T {
        let inAliases = timing[.aliases]
        let started = Monotonic.now()
        let value = body()
        let spent = Monotonic.now() &- started
        let matching = timing[.aliases] &- inAliases
        timing.add(phase, spent > matching ? spent - matching : 0)
        return value
    }

    /// One write to a kernel switch, its time added to `phase`.
    private func write(_ phase: DecisionTiming.Phase, _ hostPath: String, _ value: String) -> SysfsWrite {
        let record = writer.write(hostPath, value)
        timing.add(phase, record.nanos)
        return record
    }

    /// The decision's latency in microseconds, from `started` to now; the phases are closed on it.
    private func closeTiming(started: UInt64) -> UInt64 {
        let total = Monotonic.now() &- started
        timing.close(total: total)
        timing.cpu = ThreadCPU.now() &- cpuStarted
        return total / 1000
    }

    /// The device at `bind`, with every interface it has now. Its attributes and the interfaces
    /// already judged were read when they appeared and do not change while it stays (a new
    /// configuration removes and adds interfaces, with their events): of those only `authorized`
    /// and the drivers are read again, for the decision and its evidence; an interface not seen
    /// before is read in full. A device whose interface directories cannot be listed, or that has
    /// none, is read in full as on a walk.
    private func bound(_ tracked: Tracked, name: String, path: String, vanished: inout [String]) -> USBDevice? {
        let root = configuration.root
        let listed: [String]
        do {
            listed = try root.list(path).filter { USBSysfs.isInterfaceName($0, of: name) }
        } catch {
            if error.code == .notFound { return nil }
            return USBSysfs.deviceWithInterfaces(root: root, name: name, path: path, aliases: aliases, vanished: &vanished)
        }
        guard !listed.isEmpty else {
            return USBSysfs.deviceWithInterfaces(root: root, name: name, path: path, aliases: aliases, vanished: &vanished)
        }
        var device = tracked.device
        var gone: [String] = []
        let (_, unreadable) = root.collectingFailures { root in
            device.authorized = root.attribute(path + "/authorized").map { $0 != "0" }
            device.driver = USBSysfs.driverName(root, path)
            device.interfaces = []
            for child in listed {
                let interfacePath = path + "/" + child
                if var known = tracked.read[String(interfacePath.dropFirst(4))] {
                    known.driver = USBSysfs.driverName(root, interfacePath)
                    device.interfaces.append(known)
                } else if let interface = USBSysfs.interface(root: root, name: child, path: interfacePath, aliases: aliases) {
                    device.interfaces.append(interface)
                } else {
                    gone.append(interfacePath)
                }
            }
        }
        vanished += gone
        device.unreadable += unreadable
        return device
    }

    private func track(interfaces: [USBInterface], of devpath: String) {
        for interface in interfaces {
            let interfacePath = String(interface.sysfsPath.dropFirst(4))
            interfaceOwners[interfacePath] = devpath
            devices[devpath]?.interfaces.insert(interfacePath)
            devices[devpath]?.read[interfacePath] = interface
        }
    }

    private func untrack(_ devpath: String) -> Tracked? {
        guard let tracked = devices.removeValue(forKey: devpath) else { return nil }
        for interface in tracked.interfaces { interfaceOwners.removeValue(forKey: interface) }
        // Devices below a removed hub go with it; their own remove events may follow or not.
        for child in devices.keys where child.hasPrefix(devpath + "/") { _ = untrack(child) }
        return tracked
    }

    static func parent(of devpath: String) -> String {
        guard let slash = devpath.lastIndex(of: "/"), slash != devpath.startIndex else { return "/" }
        return String(devpath[..<slash])
    }

    // MARK: event bodies

    /// A device's identity for events.
    public static func identity(_ device: USBDevice, devpath: String) -> JSONValue {
        [
            "name": .string(device.name), "devpath": .string(devpath), "vendor": .string(device.vendor), "product": .string(device.product),
            "serial": .optional(device.serial), "manufacturer": .optional(device.manufacturer), "product_name": .optional(device.productName),
            "class": .string([device.deviceClass, device.deviceSubClass, device.deviceProtocol].map { $0.map { HexText.byte($0) } ?? "??" }.joined(separator: "/")),
        ]
    }

    private func arrivalEvent(_ device: USBDevice, devpath: String, source: EventSource, seqnum: UInt64, now: Date) -> Event {
        Event(type: "usb.arrival", observedAt: now, data: [
            "source": .string(source.rawValue), "seqnum": .int(Int64(clamping: seqnum)), "device": Self.identity(device, devpath: devpath),
        ])
    }

    private func removalEvent(_ device: USBDevice, devpath: String, source: EventSource, seqnum: UInt64, note: String?, now: Date) -> Event {
        var members: [(String, JSONValue)] = [
            ("source", .string(source.rawValue)), ("seqnum", .int(Int64(clamping: seqnum))), ("device", Self.identity(device, devpath: devpath)),
        ]
        if let note { members.append(("note", .string(note))) }
        return Event(type: "usb.removal", observedAt: now, data: .object(members))
    }

    private func errorEvent(devpath: String, what: String, errno: Int32?, source: EventSource, seqnum: UInt64 = 0, now: Date) -> Event {
        var members: [(String, JSONValue)] = [
            ("source", .string(source.rawValue)), ("seqnum", .int(Int64(clamping: seqnum))), ("devpath", .string(devpath)), ("what", .string(what)),
        ]
        if let errno {
            members.append(("errno", .integer(Int(errno))))
            members.append(("error", .string(MijianError.strerror(errno))))
        }
        return Event(type: "usb.error", observedAt: now, data: .object(members))
    }

    private func decisionEvent(
        _ decision: DeviceDecision, devpath: String, scope: String, whole: Verdict, writes: [SysfsWrite], vanished: [String],
        source: EventSource, seqnum: UInt64, latencyMicros: UInt64, now: Date
    ) -> Event {
        let failed = writes.filter { !$0.succeeded }
        var members: [(String, JSONValue)] = [
            ("source", .string(source.rawValue)), ("seqnum", .int(Int64(clamping: seqnum))), ("scope", .string(scope)),
            ("mode", .string(configuration.enforce ? "enforce" : "audit")), ("decision", .string(decision.verdict.rawValue)),
            ("whole_device", .string(whole.rawValue)), ("device", Self.identity(decision.device, devpath: devpath)),
            ("interfaces", .array(decision.interfaces.map(\.json))),
        ]
        if let entry = decision.ledgerEntry {
            members.append(("ledger", [
                "label": .optional(entry.label), "classification": .optional(entry.classification?.rawValue), "responsible": .optional(entry.responsible),
            ]))
        }
        members.append(("writes", .array(writes.map(\.json))))
        members.append(("failed_writes", .integer(failed.count)))
        if !vanished.isEmpty { members.append(("vanished", .strings(vanished))) }
        if !decision.unreadable.isEmpty { members.append(("unreadable", .array(decision.unreadable.map(\.json)))) }
        members.append(("latency_us", .int(Int64(clamping: latencyMicros))))
        members.append(("timing_us", timing.json))
        members.append(("cpu_us", .int(Int64(clamping: timing.cpu / 1000))))
        return Event(type: "usb.decision", observedAt: now, data: .object(members))
    }
}

extension Event {
    /// Whether a USB event is one the policy objects to or one that could not be carried out: a
    /// deny or would-deny, a refused write, a device that vanished mid-decision, a lost stream.
    public var isUSBFailure: Bool {
        switch type {
        case "usb.decision":
            guard case .object(let members) = data else { return true }
            let decision = members.first { $0.0 == "decision" }?.1
            let failed = members.first { $0.0 == "failed_writes" }?.1
            return decision != .string("allow") || (failed != nil && failed != .int(0))
        case "usb.error", "usb.resync": return true
        case "usb.enforcement":
            guard case .object(let members) = data else { return true }
            return members.first { $0.0 == "failed" }?.1 != .int(0)
        default: return false
        }
    }
}
