#if canImport(Glibc)
import Glibc
#endif
import Logging
import MijianCore

/// What the kernel's module tree says about drivers: which modules a modalias would load
/// (`modules.alias`) and each module's family (its path in `modules.dep`, `modules.builtin`).
///
/// The live USB control loads it once and asks it for every vendor-specific interface, so a
/// Wi-Fi dongle of class ff is known for what it is before any driver binds.
public struct ModuleKnowledge: Sendable {
    /// The kernel release whose module tree was read.
    public let kernelRelease: String
    /// What was read, with its outcome.
    public let sources: [FactSource]
    private let aliases: ModuleAliasIndex?
    private let families: [String: DriverFamily]

    /// Reads `lib/modules/<release>` of the running kernel (or of `/proc/sys/kernel/osrelease` under `root`).
    public static func load(root: HostRoot, live: Bool, logger: Logger) -> ModuleKnowledge {
        var reader = HardwareReader(root: root, logger: logger)
        let release = reader.kernelRelease(live: live)
        reader.facts.kernelRelease = release
        let dir = "/lib/modules/\(release)"
        reader.readModulesDep(dir)
        reader.readModulesBuiltin(dir)
        let aliases = reader.readAliases(dir)
        var families: [String: DriverFamily] = [:]
        for file in reader.facts.availableModules + reader.facts.builtinModules { families[file.name] = file.family }
        return ModuleKnowledge(kernelRelease: release, sources: reader.facts.sources, aliases: aliases, families: families)
    }

    /// Knowledge with no module tree (names alone decide families; no alias matching).
    public static let none = ModuleKnowledge(kernelRelease: "", sources: [], aliases: nil, families: [:])

    /// Whether `modules.alias` was read.
    public var hasAliases: Bool { aliases != nil }

    /// Modules (normalised names) whose `modules.alias` patterns match a modalias.
    public func modules(matching modalias: String) -> [String] { aliases?.modules(matching: modalias) ?? [] }

    /// A module's family from its path in the module tree, else from its name.
    public func family(of module: String) -> DriverFamily? {
        let name = DriverFamily.normalise(module)
        return families[name] ?? DriverFamily.classify(name: name)
    }
}
