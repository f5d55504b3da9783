#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import Testing

/// Running the built executables and comparing output with recorded snapshots.
extension TestSupport {
    /// The path of a product built beside the test bundle (e.g. `mijian`).
    public static func productPath(_ name: String) -> String {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let beside = bundleDir.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return repositoryRoot.appendingPathComponent(".build/debug/\(name)").path
    }

    /// What a finished process said.
    public struct ProcessResult: Sendable {
        /// Exit status.
        public var status: Int32
        /// Standard output.
        public var stdout: String
        /// Standard error.
        public var stderr: String
    }

    /// Runs an executable to completion with the given arguments and environment additions.
    public static func run(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both pipes to the end before waiting, so a large output cannot block the child.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            outData = out.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return ProcessResult(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs an executable with its standard output on /dev/full, where every write fails with
    /// ENOSPC as on a full disk; standard error is captured.
    public static func runToFullDisk(_ path: String, _ arguments: [String]) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        guard let full = FileHandle(forWritingAtPath: "/dev/full") else { throw POSIXError(.ENODEV) }
        defer { try? full.close() }
        let err = Pipe()
        process.standardOutput = full
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: "", stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Compares `actual` with `Tests/<target>/Snapshots/<name>`; with MIJIAN_UPDATE_SNAPSHOTS=1
    /// it rewrites the file instead (review the diff before committing).
    public static func assertSnapshot(_ actual: String, target: String, name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = repositoryRoot.appendingPathComponent("Tests/\(target)/Snapshots/\(name)")
        if ProcessInfo.processInfo.environment["MIJIAN_UPDATE_SNAPSHOTS"] == "1" {
            try Data(actual.utf8).write(to: url, options: .atomic)
            return
        }
        guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
            Issue.record("missing snapshot \(url.path); run the tests with MIJIAN_UPDATE_SNAPSHOTS=1 to record it", sourceLocation: sourceLocation)
            return
        }
        if expected != actual {
            let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
            let first = zip(expectedLines, actualLines).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(expectedLines.count, actualLines.count)
            let want = first < expectedLines.count ? String(expectedLines[first]) : "(end)"
            let got = first < actualLines.count ? String(actualLines[first]) : "(end)"
            Issue.record("snapshot \(name) differs at line \(first + 1):\n  expected: \(want)\n  actual:   \(got)", sourceLocation: sourceLocation)
        }
    }
}

/// Running an executable with arguments as raw bytes (not necessarily UTF-8) in a chosen directory.
extension TestSupport {
    /// How a raw run ended: the exit status, or 128 + the signal that killed it (as a shell says),
    /// or nil when it was still running at the deadline and was killed.
    public struct RawResult: Sendable {
        /// Exit status, 128 + signal, or nil for a timeout.
        public var status: Int32?
        /// Standard error.
        public var stderr: String

        /// Makes a result.
        public init(status: Int32?, stderr: String) {
            self.status = status
            self.stderr = stderr
        }
    }

    /// Runs `path` with `arguments` in `directory`, standard input from /dev/null and output to
    /// files, killing it after `seconds`.
    public static func runRaw(_ path: String, _ arguments: [[UInt8]], in directory: String, seconds: Double = 20) throws -> RawResult {
        let outputs = try temporaryDirectory("mijian-raw")
        let outPath = outputs.appendingPathComponent("out").path
        let errPath = outputs.appendingPathComponent("err").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // env -C changes directory and execs the program (glibc's addchdir_np is not visible here).
        let argv: [UnsafeMutablePointer<CChar>?] = ([Array("env".utf8), Array("-C".utf8), Array(directory.utf8), Array(path.utf8)] + arguments).map { bytes in
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (index, byte) in bytes.enumerated() { pointer[index] = CChar(bitPattern: byte) }
            pointer[bytes.count] = 0
            return pointer
        } + [nil]
        defer { for pointer in argv { pointer?.deallocate() } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/usr/bin/env", &actions, nil, argv, environ)
        guard spawned == 0 else { throw MijianError(.io, "cannot start \(path)", path: path, errno: spawned) }
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(seconds)
        var finished = false
        while Date() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid {
                finished = true
                break
            }
            usleep(2_000)
        }
        if !finished {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: outputs)
        guard finished else { return RawResult(status: nil, stderr: stderr) }
        let signal = status & 0x7f
        return RawResult(status: signal == 0 ? (status >> 8) & 0xff : 128 + signal, stderr: stderr)
    }
}
