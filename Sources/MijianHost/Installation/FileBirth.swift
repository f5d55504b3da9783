#if canImport(Glibc)
import Glibc
#endif
import CMijianSystem
import Foundation
import MijianCore

/// What statx(2) says of a file's times and place.
struct FileBirth: Equatable {
    /// The birth time, when the file system records one (ext4, btrfs, xfs v5 do; tmpfs before 5.x, vfat do not).
    var born: Date?
    /// The modification time.
    var modified: Date
    /// Whether the path is the root of a mounted file system (STATX_ATTR_MOUNT_ROOT, Linux 5.8);
    /// nil when the kernel does not say.
    var mountRoot: Bool?
}

extension HostRoot {
    /// statx(2) is not in the Swift overlay of glibc; the function is looked up once (glibc 2.28+).
    private typealias StatxFunction = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UInt32, UnsafeMutableRawPointer) -> Int32
    private static let statxFunction: StatxFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "statx") else { return nil }
        return unsafeBitCast(symbol, to: StatxFunction.self)
    }()

    /// The birth and modification times of a path inside the root (links followed inside it), and
    /// whether it is a mount root. `struct statx` is read by its kernel ABI offsets.
    func birth(_ hostPath: String) throws(MijianError) -> FileBirth {
        guard let statx = HostRoot.statxFunction else {
            throw MijianError(.unsupported, "this C library has no statx, so birth times cannot be read", path: hostPath)
        }
        let fd = try open(hostPath, flags: mijian_o_path, "cannot find \(hostPath)")
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let statxBasicStats: UInt32 = 0x7FF
        let statxBtime: UInt32 = 0x800
        let atEmptyPath: Int32 = 0x1000
        _ = try Syscall.call("cannot statx \(hostPath)", path: hostPath) {
            buffer.withUnsafeMutableBytes { raw -> Int32 in
                guard let base = raw.baseAddress else { return -1 }
                return statx(fd, "", atEmptyPath, statxBasicStats | statxBtime, base)
            }
        }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(buffer[at + $1]) << (8 * UInt32($1)) } }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(buffer[at + $1]) << (8 * UInt64($1)) } }
        func time(_ at: Int) -> Date {
            Date(timeIntervalSince1970: TimeInterval(Int64(bitPattern: u64(at))) + TimeInterval(u32(at + 8)) / 1_000_000_000)
        }
        let mask = u32(0)
        let attributes = u64(8)
        let attributesMask = u64(56)
        let mountRootBit: UInt64 = 0x2000
        return FileBirth(
            born: mask & statxBtime != 0 && u64(80) != 0 ? time(80) : nil, modified: time(112),
            mountRoot: attributesMask & mountRootBit != 0 ? attributes & mountRootBit != 0 : nil)
    }
}
