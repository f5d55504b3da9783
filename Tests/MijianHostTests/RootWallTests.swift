#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianCore
import MijianHost
import MijianTestSupport
import Synchronization
import Testing

/// `--root` is a wall: every read under an image resolves inside it, by the kernel, whatever
/// links the image holds; FIFOs and device nodes are never opened for reading.
@Suite struct RootWallTests {
    /// A marker no file of the examining machine holds.
    static let marker = "nameserver 8.8.8.8 # image \(UUID().uuidString)\n"

    /// An image tree with hostile and ordinary links.
    static func image() throws -> URL {
        let root = try TestSupport.temporaryDirectory("mijian-wall")
        let fm = FileManager.default
        for directory in ["etc", "run/NetworkManager", "dev", "a/b", "var/lib"] {
            try fm.createDirectory(at: root.appendingPathComponent(directory), withIntermediateDirectories: true)
        }
        try Data(marker.utf8).write(to: root.appendingPathComponent("run/NetworkManager/resolv.conf"))
        let links: [(String, String)] = [
            ("etc/resolv.conf", "/run/NetworkManager/resolv.conf"),  // absolute, target inside the image
            ("etc/secret", "/etc/shadow"),  // absolute, target only on the examiner
            ("etc/system", "/etc"),  // a directory link: must list the image's /etc
            ("etc/climb", "../../../../../../../../etc/shadow"),  // `..` past the top
            ("a/b/up", "../../../../../.."),  // a directory link climbing out
            ("etc/loop1", "loop2"),
            ("etc/loop2", "/etc/loop1"),
            ("etc/fifo", "/run/pipe"),
            ("etc/zero", "/dev/zero"),
            ("etc/null", "/dev/null"),
            ("etc/masked.conf", "/dev/null"),  // no dev/null in the image: a mask all the same
        ]
        for (name, target) in links {
            try fm.createSymbolicLink(atPath: root.appendingPathComponent(name).path, withDestinationPath: target)
        }
        #expect(mkfifo(root.appendingPathComponent("run/pipe").path, 0o600) == 0)
        // Character devices 1:5 (zero) and 1:3 (null), made inside the image (root can).
        #expect(mknod(root.appendingPathComponent("dev/zero").path, S_IFCHR | 0o600, 0x105) == 0)
        try fm.removeItem(at: root.appendingPathComponent("etc/null"))
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("etc/null").path, withDestinationPath: "/dev/nul")
        #expect(mknod(root.appendingPathComponent("dev/nul").path, S_IFCHR | 0o600, 0x103) == 0)
        return root
    }

    @Test func anAbsoluteLinkIsFollowedInsideTheImage() throws {
        let directory = try Self.image()
        let root = HostRoot(path: directory.path)
        try root.check()
        #expect(try root.readText("/etc/resolv.conf") == Self.marker)
        let read = try root.readResolved("/etc/resolv.conf")
        #expect(read.resolvedPath == "/run/NetworkManager/resolv.conf")
        #expect(root.resolve("/etc/resolv.conf") == "/run/NetworkManager/resolv.conf")
        #expect(root.fileInfo("/etc/resolv.conf")?.size == Int64(Self.marker.utf8.count))
        #expect(root.readLink("/etc/resolv.conf") == "/run/NetworkManager/resolv.conf")
        // A directory link to /etc lists the image's /etc, not the examiner's.
        #expect(root.isDirectory("/etc/system"))
        #expect(try root.list("/etc/system") == (try root.list("/etc")))
        #expect(try !root.list("/etc/system").contains("shadow"))
        #expect(root.resolve("/etc/system/resolv.conf") == "/run/NetworkManager/resolv.conf")
    }

    @Test func aLinkToAFileOnlyTheExaminerHasIsMissing() throws {
        #expect(FileManager.default.fileExists(atPath: "/etc/shadow"), "the examiner's file the image points at")
        let root = HostRoot(path: try Self.image().path)
        #expect(try root.readTextIfPresent("/etc/secret") == nil)
        #expect(try root.readTextResolvedIfPresent("/etc/secret") == nil)
        #expect(throws: MijianError.self) { try root.readBytes("/etc/secret") }
        #expect(root.attribute("/etc/secret") == nil)
        #expect(root.fileInfo("/etc/secret") == nil)
        #expect(root.resolve("/etc/secret") == nil)
        #expect(root.exists("/etc/secret"), "the link itself is there")
        #expect(!root.exists("/etc/shadow"))
        #expect(root.realPathOfRegularFile("/etc/secret") == nil)
    }

    @Test func dotDotChainsStayInside() throws {
        let directory = try Self.image()
        let root = HostRoot(path: directory.path)
        #expect(try root.readTextIfPresent("/etc/climb") == nil)
        #expect(try root.readTextIfPresent("/../../../../etc/shadow") == nil)
        #expect(try root.readTextIfPresent("/a/b/up/etc/shadow") == nil)
        // `..` above the top is the top: the climb lands on the image's own files.
        #expect(try root.readText("/a/b/up/run/NetworkManager/resolv.conf") == Self.marker)
        #expect(root.resolve("/a/b/up") == "/")
        #expect(try root.list("/a/b/up") == (try root.list("/")))
        #expect(root.isDirectory("/a/b/up/etc"))
    }

    @Test func aLinkLoopIsAnErrorNotAHang() throws {
        let root = HostRoot(path: try Self.image().path)
        #expect(throws: MijianError.self) { try root.readTextIfPresent("/etc/loop1") }
        #expect(root.resolve("/etc/loop1") == nil)
        #expect(root.fileInfo("/etc/loop2") == nil)
        #expect(!root.isDirectory("/etc/loop1"))
        #expect(root.exists("/etc/loop1"))
        #expect(root.readLink("/etc/loop1") == "loop2")
    }

    @Test func fifosAndDevicesAreNeverOpenedForReading() throws {
        let directory = try Self.image()
        let root = HostRoot(path: directory.path)
        let pipe = directory.appendingPathComponent("run/pipe").path
        try Self.withoutBlocking(on: pipe) {
            for path in ["/etc/fifo", "/run/pipe"] {
                do throws(MijianError) {
                    _ = try root.readBytes(path)
                    Issue.record("\(path) was read")
                } catch {
                    #expect(error.code == .notRegularFile)
                    #expect(error.message.contains("FIFO"))
                }
                #expect(root.attribute(path) == nil)
                #expect(root.realPathOfRegularFile(path) == nil)
            }
            // The live machine's fast path refuses a FIFO too, without waiting for a writer.
            do throws(MijianError) {
                _ = try HostRoot.live.readBytes(pipe)
                Issue.record("the FIFO was read on the live path")
            } catch {
                #expect(error.code == .notRegularFile)
            }
        }
        // /dev/zero would never end: the code says it was refused, not read to the limit.
        do throws(MijianError) {
            _ = try root.readBytes("/etc/zero", limit: 16)
            Issue.record("a device was read")
        } catch {
            #expect(error.code == .notRegularFile)
            #expect(error.message.contains("character device"))
        }
        // A link to the null device masks a file (systemd, kmod): empty, and not opened.
        #expect(try root.readBytes("/etc/null").isEmpty)
        #expect(try root.readBytes("/etc/masked.conf").isEmpty)
        #expect(try root.readResolved("/etc/masked.conf").resolvedPath == "/dev/null")
    }

    @Test func aRootGivenThroughALinkNamesFilesInsideIt() throws {
        let directory = try Self.image()
        let alias = try TestSupport.temporaryDirectory("mijian-alias").appendingPathComponent("image")
        try FileManager.default.createSymbolicLink(atPath: alias.path, withDestinationPath: directory.path)
        let root = HostRoot(path: alias.path + "/")
        try root.check()
        #expect(try root.readResolved("/etc/resolv.conf").resolvedPath == "/run/NetworkManager/resolv.conf")
        #expect(root.resolve("/a/b/up/etc") == "/etc")
        let real = try #require(root.realPathOfRegularFile("/etc/resolv.conf"))
        #expect(real.hasSuffix("/run/NetworkManager/resolv.conf") && !real.contains("mijian-alias"))
        #expect(try String(contentsOfFile: real, encoding: .utf8) == Self.marker)
    }

    @Test func aRootThatCannotBeOpenedFailsEveryRead() throws {
        let root = HostRoot(path: "/nonexistent-\(UUID().uuidString)")
        #expect(throws: MijianError.self) { try root.check() }
        #expect(throws: MijianError.self) { try root.readBytes("/etc/hostname") }
        #expect(!root.exists("/"))
        #expect(HostRoot(path: "/tmp") == HostRoot(path: "/tmp/"))
        try HostRoot.live.check()
    }

    /// Runs `body`; should a read block on the FIFO, a writer opened after five seconds releases
    /// it, and the test fails instead of hanging.
    static func withoutBlocking(on fifo: String, _ body: () throws -> Void) throws {
        let flags = WatchdogFlags()
        let watchdog = Thread {
            for _ in 0..<50 {
                if flags.done.load(ordering: .acquiring) { return }
                usleep(100_000)
            }
            flags.rescued.store(true, ordering: .releasing)
            let fd = open(fifo, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
        }
        watchdog.start()
        defer { flags.done.store(true, ordering: .releasing) }
        try body()
        let rescued = flags.rescued.load(ordering: .acquiring)
        #expect(!rescued, "a read blocked on the FIFO")
    }
}

/// What the FIFO watchdog and the test tell each other.
final class WatchdogFlags: Sendable {
    let done = Atomic<Bool>(false)
    let rescued = Atomic<Bool>(false)
}
