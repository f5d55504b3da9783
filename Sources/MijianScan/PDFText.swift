#if canImport(Glibc)
import Glibc
#endif
import CMijianSystem
import Foundation
import SystemPackage
import MijianCore

/// The first page of a PDF as text, from poppler. Two ways, the same text: a `mijian-pdftext`
/// worker process (poppler's C++ library, physical layout) kept for many PDFs, one per reading
/// thread; or, without it, `pdftotext -f 1 -l 1 -layout` run once a PDF. Either runs apart from
/// the scan, with a time limit: a hostile PDF that crashes or hangs poppler costs the scan that
/// one file (listed unread with why), and a worker that died is replaced. The file reaches
/// poppler as an open descriptor (passed over a socket to the worker, pdftotext's standard
/// input), or an unlinked temporary file for an archive member, so poppler never opens a path
/// of its own and `--root` confinement holds. Neither installed: the PDF is unread and says so.
public struct PDFText: Sendable {
    /// The pdftotext binary, or nil when it is not installed.
    public let tool: String?
    /// The mijian-pdftext worker binary, or nil when it is not installed.
    public let worker: String?
    let pool: PDFWorkerPool?

    /// Looks for the worker and for pdftotext in the usual places (the scan never searches PATH).
    public init(tool: String? = PDFText.locate(), worker: String? = PDFText.locateWorker()) {
        self.tool = tool
        self.worker = worker
        pool = worker.map { PDFWorkerPool(path: $0) }
    }

    /// `/usr/bin/pdftotext` or `/bin/pdftotext` when executable.
    public static func locate() -> String? {
        ["/usr/bin/pdftotext", "/bin/pdftotext", "/usr/local/bin/pdftotext"].first { access($0, X_OK) == 0 }
    }

    /// `mijian-pdftext` beside the running executable (a build directory, /usr/bin), else in
    /// /usr/lib/mijian or /usr/libexec/mijian.
    public static func locateWorker() -> String? {
        var candidates: [String] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(FilePath(executable).removingLastComponent().appending("mijian-pdftext").string)
        }
        candidates += ["/usr/lib/mijian/mijian-pdftext", "/usr/libexec/mijian/mijian-pdftext"]
        return candidates.first { access($0, X_OK) == 0 }
    }

    /// What reads PDFs, for the report's notes; nil when nothing does.
    public var reader: String? { worker ?? tool }

    func read(_ source: any ByteSource, limits: ScanLimits) -> ReadOutcome {
        if pool != nil { return readWithWorker(source, limits: limits) }
        guard let tool else { return .unread(.pdf, "pdftotext not installed (Debian package poppler-utils)") }
        return withDescriptor(source) { fd in readWithTool(tool, fd: fd, limits: limits) }
    }

    /// The worker's answer; pdftotext when no worker can be started.
    private func readWithWorker(_ source: any ByteSource, limits: ScanLimits) -> ReadOutcome {
        withDescriptor(source) { fd in
            guard let pool, let answer = pool.firstPage(fd, seconds: limits.pdfSeconds) else {
                if let tool { return readWithTool(tool, fd: fd, limits: limits) }
                return .unread(.pdf, "the PDF reader mijian-pdftext could not be started, and pdftotext is not installed")
            }
            switch answer {
            case .text(let bytes): return Self.lines(bytes, limits: limits)
            case .locked(let message): return .unread(.pdf, "encrypted: the PDF needs a password (\(message))")
            case .unreadable(let message): return .unread(.pdf, "poppler could not read it: \(message.isEmpty ? "no reason given" : message)")
            case .noPages: return .unread(.pdf, "the PDF has no pages")
            case .timedOut: return .unread(.pdf, "poppler took longer than \(limits.pdfSeconds) s on the first page")
            case .died(let why): return .unread(.pdf, "the PDF reader ended on this file (\(why)): a damaged or hostile PDF")
            }
        }
    }

    /// Runs `body` with a descriptor of the PDF at offset 0: the file's own, or an unlinked
    /// temporary file holding an archive member.
    private func withDescriptor(_ source: any ByteSource, _ body: (Int32) -> ReadOutcome) -> ReadOutcome {
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
            guard memory >= 0 else { return .unread(.pdf, "cannot make a temporary file for poppler: \(MijianError.strerror(errno))") }
            template.withUnsafeBufferPointer { buffer in
                if let base = buffer.baseAddress { _ = unlink(base) }
            }
            _ = fcntl(memory, F_SETFD, FD_CLOEXEC)
            do {
                let bytes = try source.read(at: 0, count: Int(source.size))
                try Syscall.writeAll(memory, bytes, "cannot fill the memory file for poppler")
            } catch {
                close(memory)
                return .unread(.pdf, error.message)
            }
            fd = memory
            owned = true
        }
        defer { if owned { close(fd) } }
        lseek(fd, 0, SEEK_SET)
        return body(fd)
    }

    private func readWithTool(_ tool: String, fd: Int32, limits: ScanLimits) -> ReadOutcome {
        let run = Child.run(
            tool, ["-f", "1", "-l", "1", "-layout", "-enc", "UTF-8", "/dev/stdin", "-"], stdin: fd, seconds: limits.pdfSeconds)
        switch run {
        case .failed(let why): return .unread(.pdf, "pdftotext could not be started: \(why)")
        case .timedOut: return .unread(.pdf, "pdftotext took longer than \(limits.pdfSeconds) s on the first page")
        case .exited(let status, let out, let err):
            guard status == 0 else {
                let message = String(decoding: err, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
                let reason = message.lowercased().contains("password") ? "encrypted: the PDF needs a password (\(message))" : "pdftotext could not read it (exit \(status)): \(message)"
                return .unread(.pdf, reason)
            }
            return Self.lines(out, limits: limits)
        }
    }

    /// The first page's lines from its text in physical layout.
    static func lines(_ output: [UInt8], limits: ScanLimits) -> ReadOutcome {
        let text = String(decoding: output.prefix(1 << 20), as: UTF8.self)
        // The layout keeps columns apart with runs of spaces; each column segment is a line of its own.
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

/// mijian-pdftext processes, one checked out per reading thread at a time and kept for the next
/// PDF; a worker that timed out or died is not returned (its process is killed and reaped).
/// Workers end when the pool does (their socket closes: they read end of file and exit).
final class PDFWorkerPool: @unchecked Sendable {
    // `idle` is guarded by `lock`; a checked-out worker belongs to one thread.
    let path: String
    private let lock = NSLock()
    private var idle: [PDFWorker] = []

    init(path: String) { self.path = path }

    deinit { for worker in idle { worker.stop() } }

    /// Workers started and waiting for a PDF.
    var idleCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return idle.count
    }

    enum Answer: Equatable {
        case text([UInt8])
        case locked(String)
        case unreadable(String)
        case noPages
        case timedOut
        case died(String)
    }

    /// The first page of the PDF open as `fd`; nil when no worker could be started.
    func firstPage(_ fd: Int32, seconds: Int) -> Answer? {
        let worker: PDFWorker
        lock.lock()
        if let kept = idle.popLast() {
            lock.unlock()
            worker = kept
        } else {
            lock.unlock()
            guard let started = PDFWorker(path: path) else { return nil }
            worker = started
        }
        let answer = worker.ask(fd, seconds: seconds)
        switch answer {
        case .timedOut, .died:
            worker.stop()
        default:
            lock.lock()
            idle.append(worker)
            lock.unlock()
        }
        return answer
    }
}

/// One mijian-pdftext process and the parent's end of its socket.
final class PDFWorker {
    let pid: pid_t
    let socket: Int32

    /// Starts the worker (its standard input the socket's other end, output and errors to
    /// /dev/null); nil when it cannot be started.
    init?(path: String) {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else { return nil }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pair[1], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        var envp: [UnsafeMutablePointer<CChar>?] = [strdup("LC_ALL=C.UTF-8"), nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, &argv, &envp)
        close(pair[1])
        guard spawned == 0 else {
            close(pair[0])
            return nil
        }
        self.pid = pid
        socket = pair[0]
    }

    /// Sends `fd` and waits for the answer until the deadline.
    func ask(_ fd: Int32, seconds: Int) -> PDFWorkerPool.Answer {
        guard mijian_send_fd(socket, fd) == 0 else { return .died("it took no file: \(MijianError.strerror(errno))") }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += seconds
        guard let header = receive(5, until: deadline) else { return timedOutOrDied(deadline) }
        let length = Int(header[1]) | Int(header[2]) << 8 | Int(header[3]) << 16 | Int(header[4]) << 24
        guard length <= 64 << 20, let body = receive(length, until: deadline) else { return timedOutOrDied(deadline) }
        switch header[0] {
        case 0: return .text(body)
        case 1: return .locked(Self.message(body))
        case 3: return .noPages
        default: return .unreadable(Self.message(body))
        }
    }

    private static func message(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(512), as: UTF8.self)
        return text.hasPrefix("error: ") ? String(text.dropFirst(7)) : text
    }

    private var lastEnd = false

    /// `count` bytes from the socket, or nil at the deadline or at end of file.
    private func receive(_ count: Int, until deadline: timespec) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let left = Int(deadline.tv_sec - now.tv_sec) * 1000 + Int(deadline.tv_nsec - now.tv_nsec) / 1_000_000
            guard left > 0 else { return nil }
            var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(left))
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { continue }
            let got = bytes.withUnsafeMutableBytes { raw in Glibc.read(socket, raw.baseAddress.map { $0 + filled }, count - filled) }
            if got < 0, errno == EINTR { continue }
            guard got > 0 else {
                lastEnd = true
                return nil
            }
            filled += got
        }
        return bytes
    }

    private func timedOutOrDied(_ deadline: timespec) -> PDFWorkerPool.Answer {
        guard lastEnd else { return .timedOut }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        reaped = true
        return .died(status & 0x7F != 0 ? "killed by signal \(status & 0x7F)" : "exit \((status >> 8) & 0xFF)")
    }

    private var reaped = false

    /// Kills and reaps the process, closes the socket.
    func stop() {
        close(socket)
        guard !reaped else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        reaped = true
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
