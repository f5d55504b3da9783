import Synchronization

/// The bytes of request bodies held in memory, bounded across all connections and per client
/// address. A body takes from the budget the memory it occupies as it arrives (not what its
/// `Content-Length` promises, which would let a client that sends nothing hold the budget); a
/// body that does not fit is refused with `503` and `Retry-After`, and gives back what it held.
/// `reservedBytes` of the whole are for clients that have had a report accepted (`KnownClients`):
/// addresses that never delivered one can fill the rest, never that part.
public final class BodyBudget: Sendable {
    private struct State {
        var total = 0
        var perClient: [String: Int] = [:]
    }

    /// Most body bytes held at once.
    public let maxBytes: Int
    /// Most body bytes held at once for one client address.
    public let maxBytesPerClient: Int
    /// The part of `maxBytes` only known clients may hold.
    public let reservedBytes: Int
    private let state = Mutex(State())

    /// A budget of `maxBytes` in all and `maxBytesPerClient` per client, of which `reservedBytes`
    /// are kept for known clients (never so much that an unknown client could not hold one whole share).
    public init(maxBytes: Int, maxBytesPerClient: Int, reservedBytes: Int = 0) {
        self.maxBytes = max(0, maxBytes)
        self.maxBytesPerClient = max(0, min(maxBytesPerClient, maxBytes))
        self.reservedBytes = max(0, min(reservedBytes, self.maxBytes - self.maxBytesPerClient))
    }

    /// Bytes held now.
    public var heldBytes: Int { state.withLock { $0.total } }

    /// Takes `bytes` for `client`; false (taking nothing) when the client or the collector would
    /// go past its bound. A client that is not `known` may not take from the reserved part.
    func take(_ bytes: Int, client: String, known: Bool) -> Bool {
        guard bytes > 0 else { return bytes == 0 }
        let bound = known ? maxBytes : maxBytes - reservedBytes
        return state.withLock { state in
            let (total, totalOverflow) = state.total.addingReportingOverflow(bytes)
            let (mine, mineOverflow) = state.perClient[client, default: 0].addingReportingOverflow(bytes)
            guard !totalOverflow, !mineOverflow, total <= bound, mine <= maxBytesPerClient else { return false }
            state.total = total
            state.perClient[client] = mine
            return true
        }
    }

    /// Gives back `bytes` taken for `client`.
    func give(_ bytes: Int, client: String) {
        guard bytes > 0 else { return }
        state.withLock { state in
            state.total = max(0, state.total - bytes)
            let left = state.perClient[client, default: 0] - bytes
            state.perClient[client] = left > 0 ? left : nil
        }
    }
}
