#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// `--output FILE` as a user types it: a file is replaced atomically, but a device, a FIFO or a
/// link is never replaced by a file of the same name (a report written as root to `/dev/null`
/// once left a regular file there for every other program).
@Suite("--output paths")
struct OutputFileTests {
    static let report = Array("{\"report\": \"…\"}\n".utf8)

    /// A device node of `kind` (`S_IFCHR`, `S_IFBLK`) with small numbers at `path` (glibc's
    /// `makedev` is a macro Swift does not import); needs root, as CI has.
    static func makeNode(_ path: String, _ kind: mode_t, _ major: UInt64, _ minor: UInt64) throws {
        try #require(mknod(path, kind | 0o600, dev_t((major << 8) | minor)) == 0, "mknod needs root: \(String(cString: strerror(errno)))")
    }

    /// The error `body` throws, nil when it returns.
    static func failure(_ body: () throws(MijianError) -> Void) -> MijianError? {
        do {
            try body()
            return nil
        } catch {
            return error
        }
    }

    static func kind(_ path: String, follow: Bool = false) -> mode_t {
        var info = stat()
        guard (follow ? stat(path, &info) : lstat(path, &info)) == 0 else { return 0 }
        return info.st_mode & S_IFMT
    }

    /// The directory holds only `names` (no temporary file was left beside them).
    static func onlyEntries(_ directory: String, _ names: Set<String>) throws -> Bool {
        Set(try FileManager.default.contentsOfDirectory(atPath: directory)) == names
    }

    @Test("a character device (the null device's own numbers, made here) is written in place and stays a device")
    func characterDevice() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-output-chr").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let null = directory + "/null"
        try Self.makeNode(null, S_IFCHR, 1, 3)
        try AtomicFile.writeOutput(Self.report, to: null)
        try AtomicFile.writeOutput(Self.report, to: null)
        #expect(Self.kind(null) == S_IFCHR)
        #expect(try Self.onlyEntries(directory, ["null"]))
        // The same device through a link (as /dev/stdout is one): written through, the link kept.
        let link = directory + "/stdout"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: null)
        try AtomicFile.writeOutput(Self.report, to: link)
        #expect(Self.kind(link) == S_IFLNK && Self.kind(null) == S_IFCHR)
    }

    @Test("a FIFO with a reader gets the report; a FIFO nobody reads is an error at once, not a wait")
    func fifo() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-output-fifo").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fifo = directory + "/pipe"
        try #require(mkfifo(fifo, 0o600) == 0)
        #expect(Self.failure { () throws(MijianError) in try AtomicFile.writeOutput(Self.report, to: fifo) }.map { $0.code == .io && $0.description.contains("no process is reading the FIFO") } == true)
        #expect(Self.kind(fifo) == S_IFIFO)
        // A reader (`cat`, as a shell's `>(…)` would start one) receives every byte. Until it has
        // opened the FIFO the write is refused, as above: tried again until it is taken.
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/bin/cat")
        reader.arguments = [fifo]
        let out = Pipe()
        reader.standardOutput = out
        try reader.run()
        var written = false
        for _ in 0..<500 {
            let failure = Self.failure { () throws(MijianError) in try AtomicFile.writeOutput(Self.report, to: fifo) }
            if failure == nil {
                written = true
                break
            }
            try #require(failure?.description.contains("no process is reading") == true, "\(String(describing: failure))")
            usleep(10_000)
        }
        #expect(written)
        reader.waitUntilExit()
        #expect(Array(out.fileHandleForReading.readDataToEndOfFile()) == Self.report)
        #expect(Self.kind(fifo) == S_IFIFO)
    }

    @Test("a file is replaced atomically; through a link the target is replaced and the link kept")
    func filesAndLinks() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-output-file").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/report.json"
        try AtomicFile.writeOutput(Self.report, to: file)
        #expect(FileManager.default.contents(atPath: file).map(Array.init) == Self.report)
        try AtomicFile.writeOutput(Array("second\n".utf8), to: file)
        #expect(FileManager.default.contents(atPath: file).map(Array.init) == Array("second\n".utf8))
        let link = directory + "/latest.json"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "report.json")
        try AtomicFile.writeOutput(Self.report, to: link)
        #expect(Self.kind(link) == S_IFLNK)
        #expect(FileManager.default.contents(atPath: file).map(Array.init) == Self.report)
        #expect(try Self.onlyEntries(directory, ["report.json", "latest.json"]))
    }

    @Test("a directory and a block device are refused, and left as they were")
    func refused() throws {
        let directory = try TestSupport.temporaryDirectory("mijian-output-refused").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let disk = directory + "/disk"
        try Self.makeNode(disk, S_IFBLK, 7, 0)
        for (path, words) in [(disk, "block device"), (directory, "is a directory")] {
            let failure = Self.failure { () throws(MijianError) in try AtomicFile.writeOutput(Self.report, to: path) }
            #expect(failure?.code == .usage && failure?.description.contains(words) == true, "\(String(describing: failure))")
        }
        #expect(Self.kind(disk) == S_IFBLK)
        #expect(try Self.onlyEntries(directory, ["disk"]))
    }
}
