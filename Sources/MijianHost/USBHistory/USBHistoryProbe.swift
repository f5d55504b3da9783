#if canImport(Glibc)
import Glibc
#endif
import CZlib
import Foundation
import Logging
import MijianCore

/// Reads past USB connections from every kernel log source a host keeps: rsyslog files (plain and
/// gzip-rotated), the systemd journal (through `journalctl --directory`), and on the live machine
/// the kernel ring buffer (`/dev/kmsg`). Every source tried is recorded with what came of it.
public enum USBHistoryProbe {
    /// Largest uncompressed log read from one file.
    static let maxLogBytes = 512 << 20

    /// Observes USB history under `root`.
    public static func observe(root: HostRoot, live: Bool, logger: Logger) -> USBHistoryFacts {
        var parser = KernelLogParser()
        var sources: [USBHistoryFacts.Source] = []
        sources += readSyslogFiles(root: root, parser: &parser, logger: logger)
        for directory in live ? ["/var/log/journal", "/run/log/journal"] : ["/var/log/journal"] {
            // A part of the journal that could not be looked at (the directory, a machine's
            // subdirectory, a file) makes the source an error, never "missing" or "nothing logged".
            var (source, failures) = root.collectingFailures { root in
                readJournal(root: root, directory: directory, parser: &parser, logger: logger)
            }
            if !failures.isEmpty, source.state != "error" {
                source.state = "error"
                source.detail = failures.compactMap { $0.errorReason }.joined(separator: "; ")
            }
            sources.append(source)
        }
        if live && root.isLive { sources.append(readKmsg(parser: &parser)) }
        return USBHistoryFacts(sources: sources, connections: deduplicate(parser.connections))
    }

    /// The same connection logged by several sources counts once.
    static func deduplicate(_ connections: [USBHistoryFacts.Connection]) -> [USBHistoryFacts.Connection] {
        var out: [USBHistoryFacts.Connection] = []
        for connection in connections {
            if let index = out.firstIndex(where: { existing in
                existing.busPath == connection.busPath && existing.vendor == connection.vendor
                    && existing.product == connection.product && (existing.serial == connection.serial || connection.serial == nil)
                    && abs((existing.time ?? .distantPast).timeIntervalSince(connection.time ?? .distantFuture)) <= 2
            }) {
                out[index].isStorage = out[index].isStorage || connection.isStorage
                if out[index].serial == nil { out[index].serial = connection.serial }
                continue
            }
            out.append(connection)
        }
        return out.sorted { ($0.time ?? .distantFuture) < ($1.time ?? .distantFuture) }
    }

    /// kern.log* (or syslog*/messages* when there is no kern.log), oldest rotation first.
    static func readSyslogFiles(root: HostRoot, parser: inout KernelLogParser, logger: Logger) -> [USBHistoryFacts.Source] {
        let names: [String]
        do {
            names = try root.listIfPresent("/var/log")
        } catch {
            return [USBHistoryFacts.Source(kind: "file", path: "/var/log", state: "error", detail: error.description)]
        }
        var family = "kern.log"
        if !names.contains(where: { $0.hasPrefix("kern.log") }) {
            family = names.contains { $0.hasPrefix("syslog") } ? "syslog" : "messages"
        }
        let files = names.filter { $0 == family || $0.hasPrefix(family + ".") }
            .sorted { rotation($0, family) > rotation($1, family) }
        if files.isEmpty {
            return [USBHistoryFacts.Source(kind: "file", path: "/var/log/kern.log", state: "missing", detail: "no kern.log, syslog or messages files")]
        }
        return files.map { name in
            let path = "/var/log/\(name)"
            let gzip = name.hasSuffix(".gz")
            do {
                let read = try root.readResolved(path, limit: maxLogBytes)
                let bytes = gzip ? try gunzip(read.bytes, path: path) : read.bytes
                let year = yearOf(root.fileInfo(path)?.mtime)
                var source = USBHistoryFacts.Source(kind: gzip ? "gzip-file" : "file", path: path, state: "ok")
                if read.resolvedPath != path { source.resolvedPath = read.resolvedPath }
                var lineNumber = 0
                for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
                    lineNumber += 1
                    guard let (time, message) = KernelLogParser.splitSyslog(line, year: year) else { continue }
                    source.lines += 1
                    note(time, in: &source)
                    parser.feed(message: message, time: time, source: "\(path):\(lineNumber)")
                }
                return source
            } catch {
                logger.warning("log source unreadable", metadata: ["path": "\(path)", "error": "\(error)"])
                return USBHistoryFacts.Source(kind: gzip ? "gzip-file" : "file", path: path, state: "error", detail: "\(error)")
            }
        }
    }

    private static func note(_ time: Date?, in source: inout USBHistoryFacts.Source) {
        guard let time else { return }
        if source.oldest.map({ time < $0 }) ?? true { source.oldest = time }
        if source.newest.map({ time > $0 }) ?? true { source.newest = time }
    }

    private static func rotation(_ name: String, _ family: String) -> Int {
        guard name.count > family.count + 1 else { return 0 }
        let suffix = name.dropFirst(family.count + 1).prefix { $0.isNumber }
        return Int(suffix) ?? 0
    }

    private static func yearOf(_ mtime: Int64?) -> Int {
        var seconds = time_t(mtime ?? Int64(Date().timeIntervalSince1970))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return Int(parts.tm_year) + 1900
    }

    /// Inflates a gzip file, refusing output beyond `maxLogBytes`.
    static func gunzip(_ input: [UInt8], path: String) throws(MijianError) -> [UInt8] {
        var stream = z_stream()
        guard mijian_inflate_init_gzip(&stream) == Z_OK else {
            throw MijianError(.io, "cannot start gzip decoding of \(path)", path: path)
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var input = input
        var status: Int32 = Z_OK
        input.withUnsafeMutableBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = uInt(inBuffer.count)
            while status == Z_OK {
                chunk.withUnsafeMutableBufferPointer { outBuffer in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = uInt(outBuffer.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    output.append(contentsOf: outBuffer[0..<(outBuffer.count - Int(stream.avail_out))])
                }
                if output.count > maxLogBytes { status = Z_MEM_ERROR; break }
                if status == Z_BUF_ERROR && stream.avail_in == 0 { break }
            }
        }
        guard status == Z_STREAM_END else {
            let reason = output.count > maxLogBytes ? "more than \(maxLogBytes) bytes uncompressed" : (status == Z_BUF_ERROR ? "truncated" : "corrupt (zlib status \(status))")
            throw MijianError(.malformed, "\(path): gzip data is \(reason)", path: path)
        }
        return output
    }

    /// Kernel messages of a journal directory, through journalctl (the journal's own reader).
    static func readJournal(root: HostRoot, directory: String, parser: inout KernelLogParser, logger: Logger) -> USBHistoryFacts.Source {
        var source = USBHistoryFacts.Source(kind: "journal", path: directory, state: "ok")
        guard root.isDirectoryExpected(directory) else {
            source.state = "missing"
            source.detail = "no journal directory"
            return source
        }
        let journalctl = ["/usr/bin/journalctl", "/bin/journalctl"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let journalctl else {
            source.state = "error"
            source.detail = "journalctl is not installed, so the journal cannot be read"
            return source
        }
        let location: [String]
        if root.isLive {
            // journalctl on a directory without journal files reads nothing and says nothing (and
            // costs a process, 10 ms and more); without any, the source is what it would report.
            guard hasJournalFiles(root: root, directory: directory) else { return source }
            location = ["--directory=\(directory)"]
        } else {
            // journalctl follows links the ordinary way, so under a root it gets only files already
            // resolved inside the root by the kernel, by their real paths.
            let files = journalFiles(root: root, directory: directory)
            if files.isEmpty { return source }
            location = files.map { "--file=\($0)" }
        }
        let run: JournalctlRun
        do {
            run = try JournalctlRun.run(journalctl, location + ["_TRANSPORT=kernel", "-o", "json", "--output-fields=MESSAGE", "--no-pager", "-q"])
        } catch {
            source.state = "error"
            source.detail = "cannot run journalctl: \(error)"
            return source
        }
        let data = run.output
        let stderr = run.errors
        var lineNumber = 0
        for line in data.split(separator: 0x0A) {
            lineNumber += 1
            guard let entry = try? JSONParser(maxDepth: 4, maxBytes: 1 << 20).parse(line) else { continue }
            var time: Date?
            if let micros = entry["__REALTIME_TIMESTAMP"]?.stringValue.flatMap({ Double($0) }) {
                time = Date(timeIntervalSince1970: micros / 1_000_000)
            }
            let message: String
            switch entry["MESSAGE"] {
            case .string(let text)?: message = text
            case .array(let bytes)?: message = String(decoding: bytes.compactMap { $0.intValue.map { UInt8(truncatingIfNeeded: $0) } }, as: UTF8.self)
            default: continue
            }
            source.lines += 1
            note(time, in: &source)
            parser.feed(message: Substring(message), time: time, source: "journal \(directory) entry \(lineNumber)")
        }
        if run.status != 0 && source.lines == 0 {
            source.state = "error"
            source.detail = "journalctl exited \(run.status): \(String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))"
        }
        return source
    }

    /// Whether `directory` or a subdirectory of it holds anything named like a journal file
    /// (`*.journal`, `*.journal~`): a superset of what `journalctl --directory` reads (it only
    /// enters machine-id subdirectories). True when a listing fails, so that journalctl decides.
    static func hasJournalFiles(root: HostRoot, directory: String) -> Bool {
        let isJournal = { (name: String) in name.hasSuffix(".journal") || name.hasSuffix(".journal~") }
        guard let names = try? root.list(directory) else { return true }
        for name in names {
            if isJournal(name) { return true }
            let path = "\(directory)/\(name)"
            guard root.isDirectory(path) else { continue }
            guard let inner = try? root.list(path) else { return true }
            if inner.contains(where: isJournal) { return true }
        }
        return false
    }

    /// Real paths of the journal files of `directory` and of its subdirectories (one per machine
    /// id), each a regular file resolved inside the root; names with glob characters are left out,
    /// since journalctl would expand them.
    static func journalFiles(root: HostRoot, directory: String) -> [String] {
        var candidates: [String] = []
        let isJournal = { (name: String) in name.hasSuffix(".journal") || name.hasSuffix(".journal~") }
        for name in listNoting(root, directory) {
            let path = "\(directory)/\(name)"
            if isJournal(name) {
                candidates.append(path)
            } else if root.isDirectory(path) {
                candidates += listNoting(root, path).filter(isJournal).map { "\(path)/\($0)" }
            }
        }
        return candidates.filter { !$0.contains(where: { "*?[]\\".contains($0) }) }.compactMap { root.realPathOfRegularFile($0) }
    }

    /// A directory's names; a failure other than absence is noted on the root (`collectingFailures`)
    /// and gives none.
    private static func listNoting(_ root: HostRoot, _ directory: String) -> [String] {
        do {
            return try root.list(directory)
        } catch {
            root.noteFailure(directory, error)
            return []
        }
    }

    /// The live kernel ring buffer: this boot's messages, timed from the boot clock.
    static func readKmsg(parser: inout KernelLogParser) -> USBHistoryFacts.Source {
        var source = USBHistoryFacts.Source(kind: "kmsg", path: "/dev/kmsg", state: "ok")
        let fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            source.state = "error"
            source.detail = "cannot open /dev/kmsg: \(MijianError.strerror(errno))"
            return source
        }
        defer { close(fd) }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let bootTime = Date().timeIntervalSince1970 - (Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var record = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                let code = errno
                if code == EINTR || code == EPIPE { continue }  // EPIPE: older records were overwritten
                if code != EAGAIN {
                    source.state = "error"
                    source.detail = "reading /dev/kmsg failed: \(MijianError.strerror(code))"
                }
                break
            }
            if count == 0 { break }
            record += 1
            // `PRIORITY,SEQ,MICROS,FLAGS;message\n` + continuation lines: the ASCII header is read
            // as bytes, and only a message the parser can act on becomes a string (hundreds of
            // records per audit, a few of them USB).
            let header = KmsgHeader(buffer.prefix(count))
            guard let header else { continue }
            let time = header.micros.map { Date(timeIntervalSince1970: bootTime + Double($0) / 1e6) }
            source.lines += 1
            note(time, in: &source)
            let body = buffer[header.bodyStart..<count]
            guard KernelLogParser.mayMatch(body) else { continue }
            let message = String(decoding: body.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
            parser.feed(message: Substring(message), time: time, source: "/dev/kmsg record \(record)")
        }
        return source
    }
}

/// The header of one `/dev/kmsg` record: `PRIORITY,SEQ,MICROS,FLAGS[,…];` (the kernel's
/// Documentation/ABI/testing/dev-kmsg), read as bytes.
struct KmsgHeader {
    /// Microseconds since boot: nil when the field is absent or not a decimal number.
    var micros: UInt64?
    /// Where the message starts: just after the `;`.
    var bodyStart: Int

    /// Nil when the record has no `;` (not a record).
    init?(_ record: some Collection<UInt8>) {
        var field = 0
        var value: UInt64 = 0
        var digits = 0
        var valid = true
        var index = 0
        for byte in record {
            index += 1
            if byte == UInt8(ascii: ";") {
                if field == 2 { micros = digits > 0 && valid ? value : nil }
                bodyStart = index
                return
            }
            if byte == UInt8(ascii: ",") {
                if field == 2 { micros = digits > 0 && valid ? value : nil }
                field += 1
                continue
            }
            guard field == 2 else { continue }
            if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 19 {
                value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
                digits += 1
            } else {
                valid = false
            }
        }
        return nil
    }
}
