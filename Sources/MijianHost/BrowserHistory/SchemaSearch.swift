import Foundation
import Logging
import MijianCore

extension BrowserHistoryProbe {
    /// The SQLite file header: what a database starts with whatever it is named.
    static let sqliteMagic = Array("SQLite format 3\0".utf8)

    /// Directories of caches and source trees: thousands of files, never a history database;
    /// skipped so the bounds are spent where profiles can be.
    static let skippedDirectoryNames: Set<String> = ["Cache", "Code Cache", "GPUCache", "cache2", "CacheStorage", "ScriptCache", "Service Worker", "node_modules", ".git"]

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
    /// directories already read) for SQLite files with a history schema, within `bounds`. A
    /// browser that keeps its profile under a name no list knows is found here.
    static func searchBySchema(
        root: HostRoot, copies: PrivateCopyDirectory, user: String, home: String, skipping: Set<String>, bounds: SearchBounds,
        searched: inout SearchedHome, isInside: HostJudge?, logger: Logger
    ) -> [BrowserProfile] {
        var profiles: [BrowserProfile] = []
        var pending: [(path: String, depth: Int)] = [(home, 0)]
        while let (directory, depth) = pending.popLast() {
            let entries: [(name: String, kind: HostRoot.EntryKind)]
            do {
                entries = try root.entries(directory)
            } catch {
                root.noteFailure(directory, error)
                continue
            }
            // The likely places last onto the stack: searched first.
            let ordered = depth == 0 ? entries.sorted { !likelyPlaces.contains($0.name) && likelyPlaces.contains($1.name) } : entries
            for entry in ordered {
                guard searched.examined < bounds.entries else {
                    searched.truncated = "stopped after \(bounds.entries) entries"
                    return profiles
                }
                guard depth > 0 || isProfilePlace(entry.name) else { continue }
                searched.examined += 1
                let path = directory + "/" + entry.name
                switch entry.kind {
                case .directory:
                    guard !skipping.contains(path), !skippedDirectoryNames.contains(entry.name), !(depth == 1 && directory.hasSuffix("/.cache") && browserCaches.contains(entry.name)) else { continue }
                    if depth + 1 < bounds.depth {
                        pending.append((path, depth + 1))
                    } else if searched.truncated == nil {
                        searched.truncated = "directories deeper than \(bounds.depth) levels were not searched (first: \(path))"
                    }
                case .file:
                    guard !["-wal", "-shm", "-journal"].contains(where: { entry.name.hasSuffix($0) }) else { continue }
                    let header: [UInt8]?
                    do {
                        header = try root.prefix(path, count: sqliteMagic.count)
                    } catch {
                        root.noteFailure(path, error)
                        continue
                    }
                    guard header == sqliteMagic else { continue }
                    guard searched.sqliteFiles < bounds.sqliteFiles else {
                        searched.truncated = "stopped after opening \(bounds.sqliteFiles) SQLite files"
                        return profiles
                    }
                    searched.sqliteFiles += 1
                    if let profile = schemaProfile(root: root, copies: copies, user: user, directory: directory, database: path, isInside: isInside, logger: logger) {
                        profiles.append(profile)
                    }
                case .link, .other:
                    continue
                }
            }
        }
        return profiles
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
            guard name == "History" || name == "places.sqlite" else { return nil }
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
