#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import MijianCore

/// An SQLite VFS that reads a database from a file descriptor the probe opened through `HostRoot`
/// (so the root wall holds), and from nothing else: no path is opened by SQLite, nothing is
/// written or locked, no journal or WAL is looked for (every other name "does not exist"), and
/// the file is declared immutable so SQLite takes no lock and reads only the pages a query needs.
///
/// Used for a database with no `-wal` and no non-empty `-journal` beside it: everything the
/// browser wrote is in the file itself. A database with either is copied with its side files
/// instead (`PrivateCopyDirectory`), because SQLite must apply them and may need to write to do so.
enum ReadOnlyVFS {
    /// The VFS's registered name.
    static let name = "mijian-readonly-fd"

    /// Extended result codes that are macros with shifts, which Swift does not import.
    static let ioerrRead = SQLITE_IOERR | (1 << 8)
    static let ioerrShortRead = SQLITE_IOERR | (2 << 8)
    static let ioerrFstat = SQLITE_IOERR | (7 << 8)
    static let ioerrDelete = SQLITE_IOERR | (10 << 8)

    /// The URI that opens descriptor `fd` through this VFS.
    static func uri(fd: Int32) -> String { "file:/mijian-readonly-fd/\(fd)?immutable=1" }

    /// Registers the VFS once per process; the SQLite code when it could not.
    static let registered: Int32 = {
        guard let base = sqlite3_vfs_find(nil) else { return SQLITE_ERROR }
        let methods = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
        methods.initialize(to: sqlite3_io_methods(
            iVersion: 1,
            xClose: { _ in SQLITE_OK },  // the descriptor belongs to the caller (`HistoryDatabase`)
            xRead: { file, buffer, amount, offset in
                guard let file, let buffer, amount >= 0 else { return ReadOnlyVFS.ioerrRead }
                let fd = ReadOnlyVFS.descriptor(file)
                var done = 0
                while done < Int(amount) {
                    let step = pread(fd, buffer + done, Int(amount) - done, off_t(offset) + off_t(done))
                    if step < 0, errno == EINTR { continue }
                    if step < 0 { return ReadOnlyVFS.ioerrRead }
                    if step == 0 { break }
                    done += step
                }
                if done < Int(amount) {
                    // SQLite expects the unread rest zeroed on a short read.
                    memset(buffer + done, 0, Int(amount) - done)
                    return ReadOnlyVFS.ioerrShortRead
                }
                return SQLITE_OK
            },
            xWrite: { _, _, _, _ in SQLITE_READONLY },
            xTruncate: { _, _ in SQLITE_READONLY },
            xSync: { _, _ in SQLITE_OK },
            xFileSize: { file, size in
                guard let file, let size else { return ReadOnlyVFS.ioerrFstat }
                var info = stat()
                guard fstat(ReadOnlyVFS.descriptor(file), &info) == 0 else { return ReadOnlyVFS.ioerrFstat }
                size.pointee = sqlite3_int64(info.st_size)
                return SQLITE_OK
            },
            xLock: { _, _ in SQLITE_OK },
            xUnlock: { _, _ in SQLITE_OK },
            xCheckReservedLock: { _, result in
                result?.pointee = 0
                return SQLITE_OK
            },
            xFileControl: { _, _, _ in SQLITE_NOTFOUND },
            xSectorSize: { _ in 4096 },
            xDeviceCharacteristics: { _ in SQLITE_IOCAP_IMMUTABLE },
            xShmMap: nil, xShmLock: nil, xShmBarrier: nil, xShmUnmap: nil, xFetch: nil, xUnfetch: nil))
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        var own = base.pointee
        own.iVersion = min(base.pointee.iVersion, 2)
        own.szOsFile = Int32(MemoryLayout<sqlite3_file>.stride + MemoryLayout<Int32>.stride)
        own.pNext = nil
        own.zName = UnsafePointer(strdup(name))
        own.pAppData = UnsafeMutableRawPointer(methods)
        own.xOpen = { vfs, name, file, flags, outFlags in
            guard let vfs, let file else { return SQLITE_CANTOPEN }
            file.pointee.pMethods = nil
            // Only the main database, named by its descriptor: no journal, WAL or temporary file.
            guard flags & SQLITE_OPEN_MAIN_DB != 0, let name, let fd = ReadOnlyVFS.descriptor(named: String(cString: name)) else { return SQLITE_CANTOPEN }
            UnsafeMutableRawPointer(file).storeBytes(of: fd, toByteOffset: MemoryLayout<sqlite3_file>.stride, as: Int32.self)
            file.pointee.pMethods = UnsafePointer(vfs.pointee.pAppData.assumingMemoryBound(to: sqlite3_io_methods.self))
            outFlags?.pointee = SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB
            return SQLITE_OK
        }
        own.xDelete = { _, _, _ in ReadOnlyVFS.ioerrDelete }
        own.xAccess = { _, _, _, result in
            result?.pointee = 0
            return SQLITE_OK
        }
        own.xFullPathname = { _, name, count, output in
            guard let name, let output, count > 0 else { return SQLITE_CANTOPEN }
            let length = strlen(name)
            guard length < Int(count) else { return SQLITE_CANTOPEN }
            memcpy(output, name, length + 1)
            return SQLITE_OK
        }
        vfs.initialize(to: own)
        return sqlite3_vfs_register(vfs, 0)
    }()

    /// The descriptor a file of this VFS reads.
    static func descriptor(_ file: UnsafeMutablePointer<sqlite3_file>) -> Int32 {
        UnsafeMutableRawPointer(file).load(fromByteOffset: MemoryLayout<sqlite3_file>.stride, as: Int32.self)
    }

    /// The descriptor in a name this VFS gave out (`/mijian-readonly-fd/N`).
    static func descriptor(named name: String) -> Int32? {
        let prefix = "/mijian-readonly-fd/"
        guard name.hasPrefix(prefix), let fd = Int32(name.dropFirst(prefix.count)), fd >= 0 else { return nil }
        return fd
    }
}
