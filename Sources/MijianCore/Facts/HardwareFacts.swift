/// USB and PCI devices, wireless classes, rfkill, loaded modules and modprobe configuration.
public struct HardwareFacts: Sendable, Equatable {
    /// Makes empty facts.
    public init() {}
}
