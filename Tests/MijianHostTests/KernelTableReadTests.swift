#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianTestSupport
import Testing

@testable import MijianHost

/// The live socket tables read without the final empty read give every socket a read to the end gives.
@Suite("procfs socket tables")
struct KernelTableReadTests {
    /// `count` TCP listeners on loopback (closed by the caller), enough to spread `/proc/net/tcp` over several reads.
    static func listeners(_ count: Int) -> [Int32] {
        var fds: [Int32] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, listen(fd, 1) == 0 else {
                close(fd)
                continue
            }
            fds.append(fd)
        }
        return fds
    }

    /// Each socket of a table: local and remote address, state and inode (timers and queues change from read to read).
    static func sockets(_ text: String?) -> Set<String> {
        Set((text ?? "").split(separator: "\n").dropFirst().map { line in
            let words = line.split(separator: " ")
            return words.count > 9 ? "\(words[1]) \(words[2]) \(words[3]) \(words[9])" : String(line)
        })
    }

    /// Every socket that a read to the end finds before and after is in the table read in between
    /// (other tests open and close sockets meanwhile).
    static func expectComplete(_ file: String) throws -> String? {
        let before = sockets(try HostRoot.live.readTextIfPresent(file))
        let table = try HostRoot.live.readKernelTableIfPresent(file)
        let after = sockets(try HostRoot.live.readTextIfPresent(file))
        let missing = before.intersection(after).subtracting(sockets(table))
        #expect(missing.isEmpty, "\(file) misses \(missing.prefix(3))")
        return table
    }

    @Test("few sockets (one read) and many (several reads): every socket a read to the end finds")
    func sameSocketsAsReadingToTheEnd() throws {
        for file in ["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"] { _ = try Self.expectComplete(file) }
        let fds = Self.listeners(120)
        defer { fds.forEach { _ = close($0) } }
        #expect(fds.count == 120)
        let table = try #require(try Self.expectComplete("/proc/net/tcp"))
        #expect(table.utf8.count > 3 * HostRoot.pageSize)
        // Every listener is there: listening (state 0A) on 127.0.0.1 (0100007F).
        #expect(table.split(separator: "\n").count { $0.contains("0100007F:") && $0.contains(" 0A ") } >= 120)
    }

    @Test("a table missing under a root is nil; a regular file is read whole")
    func underARoot() throws {
        let root = try TestSupport.temporaryDirectory("mijian-table")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("proc/net"), withIntermediateDirectories: true)
        let text = (0..<200).map { "line \($0) " + String(repeating: "x", count: 140) }.joined(separator: "\n") + "\n"
        try Data(text.utf8).write(to: root.appendingPathComponent("proc/net/tcp"))
        let host = HostRoot(path: root.path)
        #expect(try host.readKernelTableIfPresent("/proc/net/tcp") == text)
        #expect(try host.readKernelTableIfPresent("/proc/net/udp") == nil)
    }
}
