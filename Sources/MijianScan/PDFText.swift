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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-f", "1", "-l", "1", "-layout", "-enc", "UTF-8", "/dev/stdin", "-"]
        process.environment = ["LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"]
        process.standardInput = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch { return .unread(.pdf, "pdftotext could not be started: \(error)") }
        let timedOut = Flag()
        let deadline = DispatchWorkItem {
            if process.isRunning {
                timedOut.set()
                process.terminate()
            }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(limits.pdfSeconds), execute: deadline)
        let errorText = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errorText.set(err.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        deadline.cancel()
        if timedOut.isSet { return .unread(.pdf, "pdftotext took longer than \(limits.pdfSeconds) s on the first page") }
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errorText.data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
            let reason = message.lowercased().contains("password") ? "encrypted: the PDF needs a password (\(message))" : "pdftotext could not read it (exit \(process.terminationStatus)): \(message)"
            return .unread(.pdf, reason)
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

/// A flag set once from another thread.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// Bytes handed over from another thread.
private final class Box: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = Data()
    func set(_ data: Data) { lock.withLock { stored = data } }
    var data: Data { lock.withLock { stored } }
}
