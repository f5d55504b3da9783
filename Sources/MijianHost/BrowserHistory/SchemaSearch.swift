#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianCore

extension BrowserHistoryProbe {
    /// The SQLite file header: what a database starts with whatever it is named.
    static let sqliteMagic = Array("SQLite format 3\0".utf8)

    /// Directories of caches and source trees: thousands of files, never a history database;
    /// skipped so the bounds are spent where profiles can be.
    static let skippedDirectoryNames: Set<String> = ["Cache", "Code Cache", "GPUCache", "cache2", "CacheStorage", "ScriptCache", "Service Worker", "node_modules", ".git"]

    /// Whether a directory is a git repository's (a bare one, as package managers keep in their
    /// caches, or a `.git`): `HEAD`, `objects` and `refs` in it. Its `objects` holds only git's
    /// compressed objects named by their hashes, hundreds of directories of them, and is not
    /// searched, as `.git` is not.
    static func isGitDirectory(_ entries: [(name: String, kind: HostRoot.EntryKind)]) -> Bool {
        var found = 0
        for entry in entries {
            switch (entry.name, entry.kind) {
            case ("HEAD", .file), ("objects", .directory), ("refs", .directory): found += 1
            default: continue
            }
        }
        return found == 3
    }

    /// The browsers' own caches under `~/.cache`: their disk caches, no database.
    static let browserCaches: Set<String> = ["mozilla", "chromium", "google-chrome", "microsoft-edge", "BraveSoftware", "vivaldi", "opera", "yandex-browser"]

    /// Whether a home's top-level entry is where a browser can keep a profile: a dot-directory
    /// (`.config`, `.local`, `.var`, `.mozilla`-likes) or `snap`; the user's own documents are not.
    static func isProfilePlace(_ name: String) -> Bool { (name.hasPrefix(".") && !toolchainDirectories.contains(name)) || name == "snap" }

    /// Dot-directories of language toolchains and package caches: tens of thousands of files
    /// each, installed by tools, never a browser's profile; not searched, so the entry bound is
    /// spent on the places profiles are kept.
    static let toolchainDirectories: Set<String> = [
        ".rustup", ".cargo", ".pyenv", ".rbenv", ".nvm", ".npm", ".m2", ".gradle", ".swiftpm", ".conda", ".julia", ".ccache", ".cpan", ".opam",
        ".sdkman", ".gem", ".stack", ".ghcup", ".vscode-server",
    ]

    /// The top-level places browsers use most, searched first.
    static let likelyPlaces: Set<String> = [".config", ".local", ".var", "snap", ".mozilla"]

    /// Walks a home's profile places (links never followed, `skipping` the browsers' own
    /// directories already read) for SQLite files, within `bounds`, and appends to `reads` the
    /// read of each (`schemaProfile`: kept when it has a history's schema). A browser that keeps
    /// its profile under a name no list knows is found here.
    ///
    /// Cheap per entry: each directory is read once (getdents, whose `d_type` gives an entry's
    /// kind: no directory is stat'ed), and its entries are looked at relative to its descriptor
    /// (`openEntry`, `statusOfEntry`: no path resolved again from the root, no link followed); a
    /// file is stat'ed, and opened to read its first 16 bytes only when its size can be a
    /// database's. Searched depth first, a directory's files before its subdirectories, in the
    /// order of the walk by paths it replaces; at most `bounds.depth` directories are open at once.
    static func searchBySchema(
        root: HostRoot, copies: PrivateCopyDirectory, user: String, home: String, skipping: Set<String>, bounds: SearchBounds,
        searched: inout SearchedHome, isInside: HostJudge?, logger: Logger, reads: inout [ProfileRead]
    ) {
        let homeFD: Int32
        do {
            homeFD = try root.open(home, flags: O_RDONLY | O_DIRECTORY, "cannot list \(home)")
        } catch {
            root.noteFailure(home, error)
            return
        }
        guard var top = SearchedDirectory(homeFD, path: home, depth: 0, root: root) else { return }
        // The directories being searched, outermost first; each holds the subdirectories left to search.
        var open: [SearchedDirectory] = []
        defer {
            top.close()
            for directory in open { directory.close() }
        }
        var header = [UInt8](repeating: 0, count: sqliteMagic.count)
        while true {
            let (directory, depth) = (top.path, top.depth)
            let fd = top.fd
            let gitDirectory = isGitDirectory(top.entries)
            // The likely places last onto the stack: searched first.
            let ordered = depth == 0 ? top.entries.sorted { !likelyPlaces.contains($0.name) && likelyPlaces.contains($1.name) } : top.entries
            for entry in ordered {
                guard searched.examined < bounds.entries else {
                    searched.truncated = "stopped after \(bounds.entries) entries"
                    return
                }
                guard depth > 0 || isProfilePlace(entry.name) else { continue }
                searched.examined += 1
                switch entry.kind {
                case .directory:
                    let path = directory + "/" + entry.name
                    guard !skipping.contains(path), !skippedDirectoryNames.contains(entry.name), !(depth == 1 && directory.hasSuffix("/.cache") && browserCaches.contains(entry.name)),
                        !(gitDirectory && entry.name == "objects")
                    else { continue }
                    if depth + 1 < bounds.depth {
                        top.pending.append(entry.name)
                    } else if searched.truncated == nil {
                        searched.truncated = "directories deeper than \(bounds.depth) levels were not searched (first: \(path))"
                    }
                case .file:
                    guard !["-wal", "-shm", "-journal"].contains(where: { entry.name.hasSuffix($0) }) else { continue }
                    do throws(MijianError) {
                        guard try startsWithSQLiteMagic(entry.name, in: fd, at: directory, root: root, buffer: &header) else { continue }
                    } catch {
                        root.noteFailure(directory + "/" + entry.name, error)
                        continue
                    }
                    guard searched.sqliteFiles < bounds.sqliteFiles else {
                        searched.truncated = "stopped after opening \(bounds.sqliteFiles) SQLite files"
                        return
                    }
                    searched.sqliteFiles += 1
                    let path = directory + "/" + entry.name
                    reads.append { schemaProfile(root: root, copies: copies, user: user, directory: directory, database: path, isInside: isInside, logger: logger) }
                case .link, .other:
                    continue
                }
            }
            top.entries = []
            // The next directory: the last subdirectory left of the innermost directory that has one.
            while true {
                if let name = top.pending.popLast() {
                    let path = top.path + "/" + name
                    let child: Int32
                    do {
                        child = try root.openEntry(name, in: top.fd, at: top.path, flags: O_RDONLY | O_DIRECTORY, "cannot list \(path)")
                    } catch {
                        root.noteFailure(path, error)
                        continue
                    }
                    guard let next = SearchedDirectory(child, path: path, depth: top.depth + 1, root: root) else { continue }
                    open.append(top)
                    top = next
                    break
                }
                guard let outer = open.popLast() else { return }
                top.close()
                top = outer
            }
        }
    }

    /// A directory of the search: its descriptor (its entries are opened relative to it), its
    /// entries, and the subdirectories left to search (last first).
    struct SearchedDirectory {
        let fd: Int32
        let path: String
        let depth: Int
        var entries: [(name: String, kind: HostRoot.EntryKind)]
        var pending: [String] = []

        /// Reads the directory open at `fd` (owned from here on); nil, with the failure noted,
        /// when it cannot be read.
        init?(_ fd: Int32, path: String, depth: Int, root: HostRoot) {
            do {
                entries = try HostRoot.entries(of: fd, path)
            } catch {
                root.noteFailure(path, error)
                Glibc.close(fd)
                return nil
            }
            self.fd = fd
            self.path = path
            self.depth = depth
        }

        func close() { Glibc.close(fd) }
    }

    /// The names a browser gives its history database: a file so named is opened whatever its
    /// size, as one that cannot be read is reported (`schemaProfile`).
    static let historyNames: Set<String> = ["History", "places.sqlite"]

    /// Whether a file of `size` bytes can be an SQLite database: SQLite writes the main file in
    /// whole pages (512 to 65,536 bytes, a power of two), so its size is a multiple of 512, and
    /// not 0 (a database whose every page is still in its WAL has no header to find either).
    static func isPlausibleDatabaseSize(_ size: Int64) -> Bool { size >= 512 && size % 512 == 0 }

    /// Whether the file `name` of the directory open at `directoryFD` is an SQLite database:
    /// its size a whole number of pages (one fstatat, no open) unless it has a history's name,
    /// and its first 16 bytes (one pread) SQLite's header.
    static func startsWithSQLiteMagic(_ name: String, in directoryFD: Int32, at directory: String, root: HostRoot, buffer: inout [UInt8]) throws(MijianError) -> Bool {
        let path = directory + "/" + name
        if !historyNames.contains(name) {
            let info = try root.statusOfEntry(name, in: directoryFD, at: directory)
            guard info.st_mode & S_IFMT == S_IFREG, isPlausibleDatabaseSize(Int64(info.st_size)) else { return false }
        }
        // O_NONBLOCK: a FIFO put in a file's place since the directory was read does not block.
        let fd = try root.openEntry(name, in: directoryFD, at: directory, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY, "cannot open \(path)")
        defer { Glibc.close(fd) }
        let count = buffer.count
        let read = try Syscall.call("cannot read \(path)", path: path) { buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, 0) } }
        return read == count && buffer == sqliteMagic
    }

    /// The profile of a database found by its schema; nil when it is some other SQLite file. A
    /// file that claims to be SQLite but cannot be opened is reported only when its name is one
    /// a browser uses (`History`, `places.sqlite`): any other broken SQLite file is not the audit's business.
    static func schemaProfile(
        root: HostRoot, copies: PrivateCopyDirectory, user: String, directory: String, database: String, isInside: HostJudge?, logger: Logger
    ) -> BrowserProfile? {
        var profile = BrowserProfile(browser: "", family: nil, user: user, directory: directory, database: database, discovery: .schema)
        let name = database.split(separator: "/").last.map(String.init) ?? ""
        do {
            try read(database, root: root, copies: copies, family: nil, isInside: isInside, into: &profile)
        } catch {
            guard historyNames.contains(name) else { return nil }
            profile.error = error.description
            profile.browser = "unknown browser (found by name, unreadable)"
            return profile
        }
        guard let family = profile.family else { return nil }
        profile.browser = "unknown \(family == .chromium ? "Chromium" : "Firefox")-family browser (found by schema)"
        readHSTS(root: root, family: family, into: &profile)
        logger.debug("browser profile found by schema", metadata: ["history.database": .string(database)])
        return profile
    }
}
