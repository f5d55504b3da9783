#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import MijianCommandLine
import MijianCore

/// The `mijian` command line, callable from the thin executable.
public enum MijianMain {
    /// Parses the process arguments, runs the command and exits: 0 compliant / success, 1 findings
    /// or verification failures, 2 usage or runtime errors, 3 an audit in which no rule failed but
    /// one could not look (`error`).
    public static func run() async -> Never {
        let code = await run(arguments: Array(CommandLine.arguments.dropFirst()))
        exit(code)
    }

    /// Runs with explicit arguments and returns the exit status (used by tests).
    public static func run(arguments: [String]) async -> Int32 {
        await CommandRunner.run(MijianCommand.self, name: "mijian", arguments: arguments)
    }
}

/// The root command.
struct MijianCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mijian",
        abstract: "Security posture of a classified workstation: audit, sign and prove.",
        version: MijianVersion.current,
        subcommands: [AuditCommand.self, ScanCommand.self, DevicesCommand.self, TrafficCommand.self, KeysCommand.self, EnrollCommand.self, VerifyCommand.self, RunCommand.self]
    )
}

/// Writing to the terminal and to files.
enum Console {
    /// Writes text to standard output, all of it or an error (`StandardStreams`).
    static func out(_ text: String) throws(MijianError) {
        try StandardStreams.out(Array(text.utf8))
    }

    /// Writes bytes to standard output, all of them or an error.
    static func out(bytes: [UInt8]) throws(MijianError) {
        try StandardStreams.out(bytes)
    }

    /// Writes a line to standard error.
    static func error(_ text: String) {
        StandardStreams.error(text)
    }

    /// Whether standard output is a terminal that wants colour.
    static var colourOut: Bool {
        isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }
}
