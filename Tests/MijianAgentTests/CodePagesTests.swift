import Foundation
@testable import MijianAgent
import Testing

@Suite("Code pages given back while the service rests")
struct CodePagesTests {
    /// Shaped like the kernel's /proc/PID/smaps (fs/proc/task_mmu.c): a header line per mapping, then fields.
    static let smaps = """
        55d4c2a00000-55d4c4f00000 r-xp 00000000 fd:01 1311 /usr/bin/mijian
        Size:              37888 kB
        Rss:               14768 kB
        Pss:               14768 kB
        Anonymous:             0 kB
        VmFlags: rd ex mr mw me sd
        55d4c4f00000-55d4c5000000 r--p 02500000 fd:01 1311 /usr/bin/mijian
        Size:               1024 kB
        Rss:                1104 kB
        Anonymous:          1104 kB
        VmFlags: rd mr mw me ac sd
        7f1a2b000000-7f1a2b100000 r-xp 00000000 fd:01 2222 /usr/lib/x86_64-linux-gnu/libtextrel.so
        Rss:                 400 kB
        Anonymous:             8 kB
        7f1a2c000000-7f1a2c900000 rw-s 00000000 00:08 2451199 socket:[2451199]
        Rss:                9444 kB
        Anonymous:             0 kB
        7f1a2d000000-7f1a2d200000 r-xp 00000000 fd:01 3333 /usr/lib/x86_64-linux-gnu/libc.so.6
        Rss:                1200 kB
        Anonymous:             0 kB
        7f1a2e000000-7f1a2e021000 rw-p 00000000 00:00 0 [heap]
        Rss:                1644 kB
        Anonymous:          1644 kB
        7ffd5a1f0000-7ffd5a1f2000 r-xp 00000000 00:00 0 [vdso]
        Rss:                   8 kB
        Anonymous:             0 kB
        7f1a2f000000-7f1a2f010000 r-xp 00000000 fd:01 4444 /opt/My Tools/lib with spaces.so
        Rss:                  64 kB
        Anonymous:             0 kB
        7f1a30000000-7f1a30010000 r-xp 00000000 fd:01 5555 /usr/lib/cold.so
        Rss:                   0 kB
        Anonymous:             0 kB
        7f1a31000000-7f1a31800000 r--p 00000000 fd:01 6666 /usr/lib/locale/locale-archive
        Rss:                 300 kB
        Anonymous:             0 kB
        55d4c5000000-55d4c5100000 r--p 02600000 fd:01 1311 /usr/bin/mijian
        Rss:                 900 kB
        Anonymous:             0 kB
        """

    @Test func onlyCleanPrivateCodeMappingsAreReleasable() {
        let mappings = CodePages.mappings(smaps: Self.smaps)
        #expect(mappings.count == 11)
        let releasable = CodePages.releasable(mappings).map { "\($0.permissions) \($0.path)" }
        // Not the relocated read-only data, not a library with written (text-relocated) pages, not the
        // capture ring (shared), not the heap, not the vdso, not a mapping with nothing resident, not a
        // data file a library mapped; the clean metadata of the program is.
        #expect(releasable == [
            "r-xp /usr/bin/mijian", "r-xp /usr/lib/x86_64-linux-gnu/libc.so.6", "r-xp /opt/My Tools/lib with spaces.so", "r--p /usr/bin/mijian",
        ])
        #expect(mappings.first?.start == 0x55d4_c2a0_0000 && mappings.first?.end == 0x55d4_c4f0_0000)
        #expect(mappings.first?.residentKiB == 14768)
        #expect(mappings[1].anonymousKiB == 1104)
    }

    /// With the objects mapped at start known, a library mapped later (it could be unloaded, and
    /// its addresses reused by other memory) is never released.
    @Test func onlyObjectsMappedAtStartAreReleasable() {
        let mappings = CodePages.mappings(smaps: Self.smaps)
        let startup: Set = ["/usr/bin/mijian", "/usr/lib/x86_64-linux-gnu/libc.so.6"]
        let releasable = CodePages.releasable(mappings, startup: startup).map { "\($0.permissions) \($0.path)" }
        #expect(releasable == ["r-xp /usr/bin/mijian", "r-xp /usr/lib/x86_64-linux-gnu/libc.so.6", "r--p /usr/bin/mijian"])
    }

    /// Resident KiB of this process's releasable code mappings, read from the kernel.
    func residentCodeKiB() throws -> Int {
        let text = try #require(CodePages.readAll("/proc/self/smaps"))
        return CodePages.releasable(CodePages.mappings(smaps: text)).reduce(0) { $0 + $1.residentKiB }
    }

    /// Every code mapping of the process is seen, not only those of the kernel's first read.
    @Test func everyMappingOfTheProcessIsRead() throws {
        let text = try #require(CodePages.readAll("/proc/self/smaps"))
        let maps = try #require(CodePages.readAll("/proc/self/maps"))
        let mappings = CodePages.mappings(smaps: text)
        #expect(text.utf8.count > 16384)
        // The mappings can change between the two reads (threads, allocations): compare the code mappings only.
        let code = maps.split(separator: "\n").filter { $0.contains(" r-xp ") }.count
        #expect(abs(mappings.filter { $0.permissions == "r-xp" }.count - code) <= 2, "smaps \(mappings.count) mappings, maps \(code) code mappings")
        #expect(code >= 2)
    }

    @Test func releasingGivesBackResidentCodeAndTheProcessRunsOn() throws {
        CodePages.recordStartup()
        let before = try residentCodeKiB()
        #expect(before > 1024, "the test process maps at least 1 MiB of code")
        let released = try #require(CodePages.release())
        #expect(released.mappings >= 1)
        #expect(released.bytes >= before * 1024 / 2)
        let after = try residentCodeKiB()
        // Other tests run at the same time and fault some code back in, but far from all of it.
        #expect(after < before / 2, "before \(before) KiB, after \(after) KiB")
        // Code given back runs again (mapped back by a minor fault).
        let sorted = (0..<1000).map { ($0 * 7919) % 1000 }.sorted()
        #expect(sorted == Array(0..<1000))
        let data = try JSONSerialization.data(withJSONObject: ["still": "running"])
        #expect(!data.isEmpty)
    }
}
