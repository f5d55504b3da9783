#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore

/// The first page of a PDF as text, from poppler's `pdftotext -f 1 -l 1 -layout` run as a child
/// process with a time limit. The file reaches it as its standard input (an open descriptor of
/// the file, or an unlinked temporary file for an archive member), so it never opens a path of its
/// own and `--root` confinement holds. No pdftotext: the PDF is unread and says so.
public struct PDFText: Sendable {
    /// The pdftotext binary, or nil when it is not installed.
    public let tool: String?

    /// Looks for pdftotext in the usual places (the scan never searches PATH).
    public init(tool: String? = PDFText.locate()) { self.tool = tool }

    /// `/usr/bin/pdftotext` or `/bin/pdftotext` when executable.
    public static func locate() -> String? {
        ["/usr/bin/pdftotext", "/bin/pdftotext", "/usr/local/bin/pdftotext"].first { access($0, X_OK) == 0 }
    }

    func read(_ source: any ByteSource, limits: ScanLimits) -> ReadOutcome {
        guard let tool else { return .unread(.pdf, "pdftotext not installed (Debian package poppler-utils)") }
        let fd: Int32
        var owned = false
        if let file = source as? FileSource {
            fd = file.fd
        } else {
            // An archive member: an unlinked temporary file, gone when closed.
            var template = Array((ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp").utf8CString.dropLast()) + Array("/mijian-scan-XXXXXX".utf8CString)
            let memory = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
                guard let base = buffer.baseAddress else { return -1 }
                return mkstemp(base)
            }
            guard memory >= 0 else { return .unread(.pdf, "cannot make a temporary file for pdftotext: \(MijianError.strerror(errno))") }
            template.withUnsafeBufferPointer { buffer in
                if let base = buffer.baseAddress { _ = unlink(base) }
            }
            _ = fcntl(memory, F_SETFD, FD_CLOEXEC)
            do {
                let bytes = try source.read(at: 0, count: Int(source.size))
                try Syscall.writeAll(memory, bytes, "cannot fill the memory file for pdftotext")
            } catch {
                close(memory)
                return .unread(.pdf, error.message)
            }
            fd = memory
            owned = true
        }
        defer { if owned { close(fd) } }
        lseek(fd, 0, SEEK_SET)
        let run = Child.run(
            tool, ["-f", "1", "-l", "1", "-layout", "-enc", "UTF-8", "/dev/stdin", "-"], stdin: fd, seconds: limits.pdfSeconds)
        let output: [UInt8]
        switch run {
        case .failed(let why): return .unread(.pdf, "pdftotext could not be started: \(why)")
        case .timedOut: return .unread(.pdf, "pdftotext took longer than \(limits.pdfSeconds) s on the first page")
        case .exited(let status, let out, let err):
            guard status == 0 else {
                let message = String(decoding: err, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
                let reason = message.lowercased().contains("password") ? "encrypted: the PDF needs a password (\(message))" : "pdftotext could not read it (exit \(status)): \(message)"
                return .unread(.pdf, reason)
            }
            output = out
        }
        let text = String(decoding: output.prefix(1 << 20), as: UTF8.self)
        // -layout keeps columns apart with runs of spaces; each column segment is a line of its own.
        var lines: [TextLine] = []
        for line in TextDecoding.lines(text) where lines.count < limits.lines {
            let segments = line.components(separatedBy: "   ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let joined = segments.joined(separator: "   ")
            lines.append(TextLine(joined, HitLocation(part: "page 1", line: lines.count + 1)))
        }
        guard !lines.isEmpty else { return .unread(.pdf, "no text layer on the first page (a scanned image?)") }
        return .document(.pdf, lines, encoding: nil, note: nil)
    }
}

/// A child process run with posix_spawn: its standard input a given descriptor, its output and
/// errors read through pipes as they come (bounded), killed at a deadline. No Foundation
/// `Process`, whose wait polls a run loop and costs tens of milliseconds a child.
enum Child {
    enum Result {
        case exited(Int32, out: [UInt8], err: [UInt8])
        case timedOut
        case failed(String)
    }

    static func run(_ tool: String, _ arguments: [String], stdin: Int32, seconds: Int, maxOutput: Int = 1 << 20) -> Result {
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0 else { return .failed(MijianError.strerror(errno)) }
        guard pipe(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            return .failed(MijianError.strerror(errno))
        }
        // Only the child's 0, 1 and 2 (dup2 clears the flag) reach pdftotext.
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        var argv: [UnsafeMutablePointer<CChar>?] = ([tool] + arguments).map { text in text.withCString { strdup($0) } }
        argv.append(nil)
        var envp: [UnsafeMutablePointer<CChar>?] = ["LC_ALL=C.UTF-8", "PATH=/usr/bin:/bin"].map { text in text.withCString { strdup($0) } }
        envp.append(nil)
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, &actions, nil, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        defer { close(outPipe[0]); close(errPipe[0]) }
        guard spawned == 0 else { return .failed(MijianError.strerror(spawned)) }
        var out: [UInt8] = [], err: [UInt8] = []
        var open = [true, true]
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while open[0] || open[1] {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let elapsed = Int(now.tv_sec - start.tv_sec) * 1000 + Int(now.tv_nsec - start.tv_nsec) / 1_000_000
            let left = seconds * 1000 - elapsed
            if left <= 0 {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return .timedOut
            }
            var fds = [pollfd(fd: open[0] ? outPipe[0] : -1, events: Int16(POLLIN), revents: 0), pollfd(fd: open[1] ? errPipe[0] : -1, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, Int32(left))
            if ready < 0, errno == EINTR { continue }
            for index in 0..<2 where open[index] && fds[index].revents != 0 {
                let got = buffer.withUnsafeMutableBytes { read(index == 0 ? outPipe[0] : errPipe[0], $0.baseAddress, $0.count) }
                if got > 0 {
                    if index == 0 { if out.count < maxOutput { out += buffer[0..<got] } } else if err.count < 1 << 16 { err += buffer[0..<got] }
                } else if got == 0 || errno != EINTR {
                    open[index] = false
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return .failed("waitpid: \(MijianError.strerror(errno))") }
        }
        // WIFEXITED / WEXITSTATUS by hand (macros Swift does not import).
        let exited = status & 0x7F == 0
        return .exited(exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), out: out, err: err)
    }
}
