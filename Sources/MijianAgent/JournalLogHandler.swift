#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianCore

/// Log lines on standard error in journald's level-prefix format (`<6>message key=value`), one
/// write per line so lines from different tasks never interleave.
public struct JournalLogHandler: LogHandler {
    /// Metadata added to every line.
    public var metadata: Logger.Metadata = [:]
    /// Provides metadata from the task context.
    public var metadataProvider: Logger.MetadataProvider?
    /// The least severe level written.
    public var logLevel: Logger.Level = .info
    private let label: String

    /// A handler for the logger `label`.
    public init(label: String) { self.label = label }

    /// Reads or writes one metadata value.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes `<N>message key=value…`.
    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var line = "<\(JournalLogHandler.priority(event.level))>\(event.message)"
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        // One line per record: a newline inside a message would start a record without a level.
        line = line.replacingOccurrences(of: "\n", with: " ") + "\n"
        let bytes = Array(line.utf8)
        // A log line that cannot be written (stderr closed) is dropped: logging must not fail the service.
        bytes.withUnsafeBytes { buffer in try? Syscall.writeAll(STDERR_FILENO, buffer, "cannot write to standard error") }
    }

    /// syslog priorities as sd-daemon(3) reads them.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}
