import Foundation

/// One run of journalctl, the only program the probes start: its output, its error text and
/// its exit status, read to the end before it is reaped.
struct JournalctlRun {
    var output: Data
    var errors: Data
    var status: Int32

    /// Runs `journalctl` with `arguments`, standard input closed, and `environment` added to the
    /// process's own; throws when the program cannot be started.
    static func run(_ journalctl: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> JournalctlRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: journalctl)
        process.arguments = arguments
        if !extra.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
        }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return JournalctlRun(output: data, errors: stderr, status: process.terminationStatus)
    }
}
