import Yams

/// Where `data.markings` (and `mijian scan` without paths) looks for classified markings, and how far.
public struct MarkingScope: Sendable, Equatable {
    /// Host paths scanned: home directories, mounted media, mail spools. `*` in a component
    /// matches names (`/media/*/*`).
    public var paths = ["/home", "/root", "/media", "/run/media", "/mnt", "/var/mail", "/var/spool/mail"]
    /// Paths left out: a pattern with `/` matches the whole host path (a directory and everything
    /// under it), one without matches names (`.cache`, `*.iso`).
    public var exclude = [".cache", ".git", "node_modules", ".local/share/Trash", "*.iso"]
    /// Files larger than this are not read (a document beyond it is listed as unread).
    public var maxFileBytes: Int = 512 << 20
    /// How deep directories are walked below each path.
    public var maxDepth = 32
    /// How deep archives are opened inside one another.
    public var archiveDepth = 3
    /// Hours between the service's scans of the scope (at idle priority); 0: `mijian run` does not scan.
    public var intervalHours = 24

    /// The defaults.
    public init() {}

    /// The `markings:` section of a policy.
    static func parse(_ node: Node, _ reader: YAMLReader) throws(MijianError) -> MarkingScope {
        var scope = MarkingScope()
        let allowed: Set = ["paths", "exclude", "max_file_bytes", "max_depth", "archive_depth", "interval_hours"]
        for (key, _, value) in try reader.mapping(node, "markings", allowed: allowed) {
            switch key {
            case "paths":
                scope.paths = try reader.strings(value, "markings.paths")
                for (index, path) in scope.paths.enumerated() where !path.hasPrefix("/") {
                    throw reader.error(try reader.sequence(value, "markings.paths")[index], "markings.paths[\(index)]", "\"\(path)\" is not an absolute host path")
                }
            case "exclude": scope.exclude = try reader.strings(value, "markings.exclude")
            case "max_file_bytes": scope.maxFileBytes = try reader.int(value, "markings.max_file_bytes", range: 1024...(1 << 40))
            case "max_depth": scope.maxDepth = try reader.int(value, "markings.max_depth", range: 0...256)
            case "interval_hours": scope.intervalHours = try reader.int(value, "markings.interval_hours", range: 0...(24 * 366))
            default: scope.archiveDepth = try reader.int(value, "markings.archive_depth", range: 1...8)
            }
        }
        return scope
    }
}
