/// Routes, policy rules, interfaces, addresses, sockets and resolvers, with their sources.
public struct NetworkFacts: Sendable, Equatable {
    /// Makes empty facts.
    public init() {}
}
