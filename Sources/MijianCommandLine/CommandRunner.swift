import ArgumentParser
import MijianCore

/// How both executables run their command trees: the same exit statuses and the same streams.
///
/// 0 success (help and version included), a command's own `ExitCode` as it is, 2 for usage and
/// runtime errors; a `MijianError` is printed as `NAME: error` on standard error; help that cannot
/// be written to standard output is an error, never a silent success.
public enum CommandRunner {
    public static func run<Root: ParsableCommand>(_ root: Root.Type, name: String, arguments: [String]) async -> Int32 {
        do {
            var command = try Root.parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as MijianError {
            StandardStreams.error("\(name): \(error)")
            return 2
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch {
            let code = Root.exitCode(for: error)
            let message = Root.fullMessage(for: error)
            if code == .success {
                if !message.isEmpty {
                    do throws(MijianError) { try StandardStreams.out(Array((message + "\n").utf8)) } catch {
                        StandardStreams.error("\(name): \(error)")
                        return 2
                    }
                }
                return 0
            }
            if !message.isEmpty { StandardStreams.error(message) }
            return 2
        }
    }
}
