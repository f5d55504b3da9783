#if canImport(Glibc)
import Glibc
#endif
import MijianCore

/// Where one decision's time went, from the uevent taken off the socket to the last sysfs write
/// done, in monotonic nanoseconds per phase. The phases add up to the decision's `latency_us`
/// (`other` is the rest: the control's own bookkeeping between them).
public struct DecisionTiming: Sendable, Equatable {
    /// One part of a decision's time.
    public enum Phase: String, Sendable, CaseIterable {
        /// The uevent turned into a message on the monitor's thread and handed through the
        /// watch's streams, while nothing of the watch's own ran.
        case handoff
        /// Waiting while the watch judged earlier events (and walked sysfs).
        case behindDecisions = "behind_decisions"
        /// Waiting while the watch's owner took earlier events (printing them, putting them into
        /// a report, logging).
        case behindOutput = "behind_output"
        /// Reading the device's attributes and its interface directories from sysfs.
        case readDevice = "read_device"
        /// Reading the interfaces' attributes from sysfs.
        case readInterfaces = "read_interfaces"
        /// Matching the interfaces' modaliases against `modules.alias`.
        case aliases
        /// Classifying the interfaces and applying the policy (ledger, `usb.allow`).
        case decide
        /// Reading the interfaces' `authorized` before writing it.
        case readAuthorized = "read_authorized"
        /// Writing an interface's `authorized`.
        case writeInterfaceAuthorized = "write_interface_authorized"
        /// Writing `drivers_probe` after authorising an interface.
        case writeDriversProbe = "write_drivers_probe"
        /// Writing the device's `authorized` (every interface denied).
        case writeDeviceAuthorized = "write_device_authorized"
        /// The rest, between the phases above.
        case other
    }

    /// Nanoseconds per phase, in `Phase.allCases` order.
    public private(set) var nanos: [UInt64] = Array(repeating: 0, count: Phase.allCases.count)
    /// CPU nanoseconds the control's thread spent on this decision (from the uevent taken by the
    /// control to the decision): beside the phases after `behind_output`, it tells the control's
    /// own work from the time its thread waited for the CPU.
    public var cpu: UInt64 = 0

    /// Nothing measured yet.
    public init() {}

    /// The nanoseconds spent in `phase`.
    public subscript(phase: Phase) -> UInt64 {
        get { nanos[Self.index(phase)] }
        set { nanos[Self.index(phase)] = newValue }
    }

    /// Adds `nanoseconds` to `phase`.
    public mutating func add(_ phase: Phase, _ nanoseconds: UInt64) {
        nanos[Self.index(phase)] &+= nanoseconds
    }

    /// Runs `body`, adding its time to `phase`.
    public mutating func measure<T>(_ phase: Phase, _ body: () throws -> T) rethrows -> T {
        let started = Monotonic.now()
        defer { add(phase, Monotonic.now() &- started) }
        return try body()
    }

    /// Sets `other` to what `total` holds beyond the measured phases.
    public mutating func close(total: UInt64) {
        let measured = zip(Phase.allCases, nanos).reduce(UInt64(0)) { $0 &+ ($1.0 == .other ? 0 : $1.1) }
        self[.other] = total > measured ? total - measured : 0
    }

    /// Evidence form: microseconds per phase, every phase named.
    public var json: JSONValue {
        .object(zip(Phase.allCases, nanos).map { ($0.0.rawValue, .int(Int64(clamping: $0.1 / 1000))) })
    }

    private static func index(_ phase: Phase) -> Int {
        Phase.allCases.firstIndex(of: phase) ?? 0
    }
}

/// CPU time of the calling thread.
public enum ThreadCPU {
    /// Now, in nanoseconds of CLOCK_THREAD_CPUTIME_ID.
    public static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

/// How long a uevent waited before the control took it, split by what the watch was doing.
public struct QueueTime: Sendable, Equatable {
    /// Nanoseconds in the monitor's thread and the watch's streams.
    public var handoff: UInt64
    /// Nanoseconds the watch spent judging earlier events meanwhile.
    public var behindDecisions: UInt64
    /// Nanoseconds the watch's owner spent on earlier events meanwhile.
    public var behindOutput: UInt64

    /// A wait split into its parts.
    public init(handoff: UInt64 = 0, behindDecisions: UInt64 = 0, behindOutput: UInt64 = 0) {
        self.handoff = handoff
        self.behindDecisions = behindDecisions
        self.behindOutput = behindOutput
    }
}

/// What the watch did lately (judging, its owner taking the output), to tell what a uevent waited
/// behind: intervals of monotonic nanoseconds, the last few kept.
struct BusyLog {
    enum Kind { case decisions, output }
    private var intervals: [(kind: Kind, start: UInt64, end: UInt64)] = []
    private let keep = 64

    mutating func note(_ kind: Kind, from start: UInt64, to end: UInt64) {
        if intervals.count == keep { intervals.removeFirst() }
        intervals.append((kind, start, end))
    }

    /// The wait from `received` to `taken`, split.
    func queue(received: UInt64, taken: UInt64) -> QueueTime {
        guard taken > received else { return QueueTime() }
        var decisions: UInt64 = 0
        var output: UInt64 = 0
        for interval in intervals where interval.end > received && interval.start < taken {
            let overlap = min(interval.end, taken) - max(interval.start, received)
            switch interval.kind {
            case .decisions: decisions += overlap
            case .output: output += overlap
            }
        }
        let total = taken - received
        let busy = min(total, decisions + output)
        return QueueTime(handoff: total - busy, behindDecisions: min(decisions, busy), behindOutput: busy - min(decisions, busy))
    }
}
