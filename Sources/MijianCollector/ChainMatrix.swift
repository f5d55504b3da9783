import Foundation

/// Where a host's chain stood after its last accepted report.
public struct ChainState: Sendable, Equatable {
    /// The epoch of the last accepted report.
    public var epoch: Int64
    /// Its sequence number.
    public var seq: Int64
    /// SHA-256 (hex) of its payload.
    public var digest: String

    /// Makes a chain state.
    public init(epoch: Int64, seq: Int64, digest: String) {
        self.epoch = epoch
        self.seq = seq
        self.digest = digest
    }
}

/// What the collector does with a report, judged by its place in the host's chain.
public enum ChainOutcome: String, Sendable, CaseIterable {
    /// The first report seen from this host.
    case first
    /// The next seq with the previous digest matching.
    case accepted
    /// Accepted past missing reports, which are recorded.
    case gap
    /// A new epoch (new key or re-install): accepted and noted.
    case newEpoch = "new-epoch"
    /// The exact report again: nothing changes (agents retry).
    case duplicate
    /// Same place in the chain, other content: stored and flagged, the chain does not move.
    case fork
    /// An older place in the chain: refused.
    case replay

    /// Whether the report's content is stored.
    public var isStored: Bool {
        switch self {
        case .first, .accepted, .gap, .newEpoch, .fork: return true
        case .duplicate, .replay: return false
        }
    }

    /// Whether the report moves the chain forward and counts as evidence.
    public var advances: Bool {
        switch self {
        case .first, .accepted, .gap, .newEpoch: return true
        case .duplicate, .fork, .replay: return false
        }
    }

    /// Whether the HTTP answer is a conflict (409).
    public var isConflict: Bool { self == .fork || self == .replay }
}

/// The chain matrix of the design: one pure decision per incoming report.
public enum ChainMatrix {
    /// The decision and, for a gap, the missing sequence numbers.
    public struct Decision: Sendable, Equatable {
        /// What happens to the report.
        public var outcome: ChainOutcome
        /// Sequence numbers that were skipped, when the outcome is a gap.
        public var missing: ClosedRange<Int64>?
        /// One sentence for people.
        public var detail: String
    }

    /// Decides what an incoming report (`epoch`, `seq`, `prev`, `digest`) is against the host's state.
    /// Its arithmetic cannot overflow: `seq - 1` is reached only for `seq > 0`, and `state.seq + 1`
    /// only for `seq > state.seq`, so below `Int64.max`; `refusal` bounds how far a report may jump.
    public static func decide(state: ChainState?, epoch: Int64, seq: Int64, prev: String, digest: String) -> Decision {
        guard let state else {
            if seq > 0 {
                return Decision(outcome: .gap, missing: 0...(seq - 1), detail: "first report from this host starts at seq \(seq); seqs 0–\(seq - 1) were never received")
            }
            return Decision(outcome: .first, missing: nil, detail: "first report from this host")
        }
        if epoch > state.epoch {
            if seq > 0 {
                return Decision(outcome: .newEpoch, missing: 0...(seq - 1), detail: "new epoch \(epoch) (was \(state.epoch)) starting at seq \(seq); seqs 0–\(seq - 1) missing")
            }
            return Decision(outcome: .newEpoch, missing: nil, detail: "new epoch \(epoch) (was \(state.epoch))")
        }
        if epoch < state.epoch {
            return Decision(outcome: .replay, missing: nil, detail: "epoch \(epoch) is older than the host's current epoch \(state.epoch)")
        }
        if seq == state.seq {
            if digest == state.digest {
                return Decision(outcome: .duplicate, missing: nil, detail: "already stored (epoch \(epoch), seq \(seq))")
            }
            return Decision(outcome: .fork, missing: nil, detail: "seq \(seq) of epoch \(epoch) was already received with digest \(state.digest)")
        }
        if seq < state.seq {
            return Decision(outcome: .replay, missing: nil, detail: "seq \(seq) is behind the chain (last accepted seq \(state.seq) of epoch \(epoch))")
        }
        if seq == state.seq + 1 {
            if prev == state.digest {
                return Decision(outcome: .accepted, missing: nil, detail: "next in chain")
            }
            return Decision(outcome: .fork, missing: nil, detail: "seq \(seq) names previous digest \(prev.isEmpty ? "(empty)" : prev), but seq \(state.seq) had \(state.digest)")
        }
        return Decision(outcome: .gap, missing: (state.seq + 1)...(seq - 1), detail: "seqs \(state.seq + 1)–\(seq - 1) of epoch \(epoch) missing")
    }
}

/// Clocks are untrusted: the chain orders reports, and a report whose `issued_at` the
/// collector's own clock contradicts is stored, flagged and shown.
public enum ClockSkew {
    /// How far a machine's clock may be off before its report is flagged: 10 minutes.
    public static let toleranceSeconds: Int64 = 600

    /// `ahead` when the report says it was issued more than the tolerance after it arrived (no
    /// delivery delay explains that); `backwards` when it says it was issued more than the
    /// tolerance before the report it follows in the chain; nil otherwise. A report issued long
    /// before it arrives is not flagged by itself: reports carried across an air gap, or held
    /// back while the collector was down, legitimately arrive days later.
    ///
    /// `epoch-ahead` when neither holds but the report's epoch (the Unix time its machine's clock
    /// said when the epoch began) lies more than the tolerance after the receive time: the
    /// machine's clock was fast when the epoch began. The report is accepted all the same (the
    /// chain orders reports, not clocks); the flag ends by itself once the collector's clock
    /// passes the epoch.
    public static func judge(issuedAt: Date, receivedAt: Date, previousIssuedAt: Date?, epoch: Int64? = nil) -> String? {
        if Int64((issuedAt.timeIntervalSince(receivedAt)).rounded()) > toleranceSeconds { return "ahead" }
        if let previousIssuedAt, Int64((previousIssuedAt.timeIntervalSince(issuedAt)).rounded()) > toleranceSeconds { return "backwards" }
        // In floating point: an epoch or a receive time far out cannot trap.
        if let epoch, Double(epoch) - receivedAt.timeIntervalSince1970 > Double(toleranceSeconds) { return "epoch-ahead" }
        return nil
    }

    /// Epoch minus receive time, whole seconds, clamped to the range of `Int64`.
    public static func epochSeconds(epoch: Int64, receivedAt: Date) -> Int64 {
        let now = receivedAt.timeIntervalSince1970.rounded(.down)
        guard now > -9.2e18, now < 9.2e18 else { return now > 0 ? Int64.min : Int64.max }
        let (difference, overflow) = epoch.subtractingReportingOverflow(Int64(now))
        return overflow ? (epoch > 0 ? Int64.max : Int64.min) : difference
    }

    /// Issue time minus receive time, whole seconds. The conversions to `Int64` here and in
    /// `judge` cannot trap: a report's times are RFC 3339 with four-digit years, within ±3.2e11 s.
    public static func seconds(issuedAt: Date, receivedAt: Date) -> Int64 {
        Int64(issuedAt.timeIntervalSince(receivedAt).rounded())
    }

    /// One sentence about a skew, in English.
    public static func describe(_ kind: String, seconds: Int64) -> String {
        switch kind {
        case "ahead": return "issued_at is \(duration(seconds)) after the collector received the report: the machine's clock is ahead"
        case "epoch-ahead":
            return "the report's epoch begins \(duration(seconds)) after the collector received it: the machine's clock was ahead when the epoch began"
        default: return "issued_at is earlier than the previous report's in the chain: the machine's clock went backwards (issued \(duration(seconds)) \(seconds < 0 ? "before" : "after") receipt)"
        }
    }

    /// `2 h 5 min`, `40 s`.
    public static func duration(_ seconds: Int64) -> String {
        let value = seconds.magnitude
        if value < 60 { return "\(value) s" }
        if value < 3600 { return "\(value / 60) min" }
        if value < 86_400 { return "\(value / 3600) h \(value % 3600 / 60) min" }
        return "\(value / 86_400) d \(value % 86_400 / 3600) h"
    }
}

/// How far a report may move its host's chain. A chain moves one seq per report, and a machine
/// that could not deliver for a long time (its spool compacted) jumps by as many reports as it
/// sealed meanwhile: the bound must be far past any real outage, or the machine's every later
/// report jumps past it and the machine is locked out. 2^32 seqs are 136 years at one report a
/// second, yet a seq of `Int64.max` (which, taken as a gap, would put the head where the host's
/// real next report is a "replay" for ever) is 2^31 such jumps away. An epoch is the Unix time, in seconds, its agent's clock said when it began, so it
/// is bounded absolutely, never by the collector's clock: a machine started with its clock fast
/// numbers every later epoch after that one, and a bound relative to today would refuse all of
/// them for ever. An epoch from the future is accepted and flagged (`ClockSkew`).
public struct ChainLimits: Sendable, Equatable {
    /// Most seqs a report may skip, in its epoch or from 0 in a new one.
    public var maxSeqJump: Int64 = 1 << 32
    /// The latest epoch: 9999-12-31T23:59:59Z in Unix seconds, the last second a report's
    /// four-digit RFC 3339 times can name. No clock an agent reads gets there, and `Int64.max`
    /// minus it leaves every later epoch and seq room.
    public var maxEpoch: Int64 = 253_402_300_799

    /// The defaults: 2^32 seqs, an epoch up to the end of the year 9999.
    public init() {}
}

extension ChainMatrix {
    /// The refusal for a report whose place the chain cannot take, checked before `decide`: a
    /// negative epoch or seq, an epoch past `maxEpoch`, or more than `maxSeqJump` seqs skipped. A
    /// refused report is not stored and the chain stays where it was, so the host's real next
    /// report is still accepted. Every difference is computed with overflow checks: the numbers
    /// come from the report. `receivedAt` is not used for the epoch: see `ChainLimits`.
    public static func refusal(state: ChainState?, epoch: Int64, seq: Int64, receivedAt: Date, limits: ChainLimits) -> IngestRefusal? {
        guard epoch >= 0, seq >= 0 else {
            return IngestRefusal(.badChain, detail: "epoch \(epoch), seq \(seq): neither may be negative")
        }
        guard epoch <= limits.maxEpoch else {
            return IngestRefusal(
                .badChain,
                detail: "epoch \(epoch) is past \(limits.maxEpoch) (the end of the year 9999 in Unix seconds), which no clock makes; the chain stays at its place")
        }
        let skipped: Int64
        if let state, epoch == state.epoch {
            // Only a seq past the head skips anything; seq and state.seq are both >= 0 here or the
            // subtraction reports its overflow.
            let (difference, overflow) = seq.subtractingReportingOverflow(state.seq)
            skipped = overflow ? Int64.max : max(difference - 1, 0)
        } else if let state, epoch < state.epoch {
            skipped = 0
        } else {
            skipped = seq
        }
        if skipped > limits.maxSeqJump {
            let from = state.map { epoch == $0.epoch ? "seq \($0.seq)" : "epoch \($0.epoch)" } ?? "no earlier report"
            return IngestRefusal(
                .seqJump,
                detail: "seq \(seq) of epoch \(epoch) would skip \(skipped) reports after \(from), more than the \(limits.maxSeqJump) allowed; the chain stays at its place")
        }
        return nil
    }
}
