#if canImport(Glibc)
import Glibc
#endif
import CMijianSystem
import Foundation
import MijianHost
import Synchronization

/// Gives back the process's mappings of program code it is not running.
///
/// A Swift program maps far more of its code than it runs at rest: the kernel maps 64 KiB around
/// every page of code touched (fault-around), and starting, auditing and sealing touch code all
/// over the binary. `release()` unmaps the resident pages of every private, read-only file
/// mapping of a program or library that holds no private (copied-on-write) page, with
/// `madvise(MADV_DONTNEED)`. The
/// pages stay in the page cache (clean, shared, reclaimable by the kernel at any time); code that
/// runs again is mapped back by an ordinary minor fault. Nothing else is touched: no writable or
/// shared mapping, no mapping that was ever written (text relocations), no anonymous memory.
public enum CodePages {
    /// What one `release()` did.
    public struct Released: Sendable, Equatable {
        /// Mappings given back.
        public var mappings: Int
        /// Their resident bytes just before.
        public var bytes: Int
    }

    /// One mapping of `/proc/self/smaps` as far as `release()` needs it.
    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var permissions: String
        var path: String
        var residentKiB: Int
        var anonymousKiB: Int

        /// Private, not writable, file-backed, never written (no copied-on-write page), resident.
        var clean: Bool {
            (permissions == "r-xp" || permissions == "r--p") && path.hasPrefix("/") && anonymousKiB == 0 && residentKiB > 0
        }
    }

    /// The mappings `release()` gives back: clean code, and the clean read-only segments (type
    /// metadata, unwind tables, constants) of the same programs and libraries, never a data file
    /// some library mapped. With `startup`, only objects that were mapped when the process
    /// started: those are never unmapped, so an address read from smaps cannot have become some
    /// other (anonymous, written) mapping by the time `madvise` runs, as a library unloaded later
    /// (`dlclose`) and its addresses reused could.
    static func releasable(_ mappings: [Mapping], startup: Set<String>? = nil) -> [Mapping] {
        let programs = Set(mappings.filter { $0.permissions.hasSuffix("xp") && $0.path.hasPrefix("/") }.map(\.path))
        return mappings.filter { $0.clean && programs.contains($0.path) && (startup?.contains($0.path) ?? true) }
    }

    /// The programs and libraries mapped when `recordStartup()` ran.
    private static let startupObjects = Mutex<Set<String>?>(nil)

    /// Notes the programs and libraries mapped now (call it first thing, before anything is
    /// loaded at run time); `release()` gives back pages of these only. Without it, nothing is released.
    public static func recordStartup() {
        guard let text = readAll("/proc/self/maps") else { return }
        let objects = Set(mappings(smaps: text).filter { $0.permissions.hasSuffix("xp") && $0.path.hasPrefix("/") }.map(\.path))
        startupObjects.withLock { if $0 == nil { $0 = objects } }
    }

    /// Parses smaps text into mappings (fields other than Rss and Anonymous are ignored).
    static func mappings(smaps text: String) -> [Mapping] {
        var result: [Mapping] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let first = line.first, first.isHexDigit, let dash = line.firstIndex(of: "-"),
                let space = line.firstIndex(of: " "), dash < space
            {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 5, let start = UInt(line[line.startIndex..<dash], radix: 16),
                    let end = UInt(line[line.index(after: dash)..<space], radix: 16)
                else { continue }
                let path = fields.dropFirst(5).joined(separator: " ")
                result.append(Mapping(start: start, end: end, permissions: String(fields[1]), path: path, residentKiB: 0, anonymousKiB: 0))
            } else if !result.isEmpty, line.hasPrefix("Rss:") || line.hasPrefix("Anonymous:") {
                let value = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) } ?? 0
                if line.hasPrefix("Rss:") { result[result.count - 1].residentKiB = value } else { result[result.count - 1].anonymousKiB = value }
            }
        }
        return result
    }

    /// A file of /proc read to its end (the kernel hands out smaps a page or so per read, so one
    /// read of its zero size is not the file), or nil when it cannot be read.
    static func readAll(_ path: String) -> String? {
        try? HostRoot.live.readText(path, limit: 16 << 20)
    }

    /// What the service does when it comes to rest (after a report, and every minute): gives back
    /// code pages (`release()`) and the heap's freed pages (`malloc_trim`).
    @discardableResult
    public static func rest() -> Released? {
        let released = release()
        _ = mijian_malloc_trim()
        return released
    }

    /// Releases this process's resident code pages; nil when `recordStartup()` did not run or
    /// `/proc/self/smaps` cannot be read (then nothing is touched).
    @discardableResult
    public static func release() -> Released? {
        #if os(Linux)
        guard let startup = startupObjects.withLock({ $0 }), let text = readAll("/proc/self/smaps") else { return nil }
        var released = Released(mappings: 0, bytes: 0)
        for mapping in releasable(mappings(smaps: text), startup: startup) where mapping.end > mapping.start {
            guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(address, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 {
                released.mappings += 1
                released.bytes += mapping.residentKiB * 1024
            }
        }
        return released
        #else
        return nil
        #endif
    }
}
