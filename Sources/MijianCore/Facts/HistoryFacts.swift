/// Saved wireless/VPN profiles, Bluetooth pairings, USB history and log retention.
public struct HistoryFacts: Sendable, Equatable {
    /// Makes empty facts.
    public init() {}
}
