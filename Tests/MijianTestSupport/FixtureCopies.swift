import Foundation

extension TestSupport {
    /// A copy of fixture host `name` (cp -a keeps sysfs links links) in a new temporary directory,
    /// for tests that run the built binary at the real time: its ClamAV database (when it has
    /// one) is rebuilt as of `signaturesBuilt`, the day before now unless said, as a unit that
    /// imports signatures daily has them. The committed fixture's date serves only audits at
    /// `fixedDate`; at the real time it would grow stale and malware.scanner would rightly fail.
    public static func hostCopy(_ name: String, signaturesBuilt: Date = Date(timeIntervalSinceNow: -86_400)) throws -> URL {
        let directory = try temporaryDirectory("mijian-host")
        let copy = directory.appendingPathComponent("host")
        let source = repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/\(name)")
        let copied = try run("/bin/cp", ["-a", source.path, copy.path])
        guard copied.status == 0 else { throw FixtureCopyError(message: "cp -a \(source.path): \(copied.stderr)") }
        let database = copy.appendingPathComponent("var/lib/clamav/daily.cud")
        if FileManager.default.fileExists(atPath: database.path) {
            try Data(try clamAVDatabase(Data(contentsOf: database), built: signaturesBuilt)).write(to: database)
        }
        return copy
    }

    /// A ClamAV database whose header (`ClamAV-VDB:build time:…:build time in seconds`, text
    /// padded with spaces to 512 bytes) carries the build time `built`; the body, which the
    /// header's MD5 covers, is unchanged.
    public static func clamAVDatabase(_ data: Data, built: Date) throws -> [UInt8] {
        var bytes = [UInt8](data)
        guard bytes.count >= 512 else { throw FixtureCopyError(message: "a ClamAV database shorter than its 512-byte header") }
        let header = String(decoding: bytes[0..<512], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        var fields = header.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 9, fields[0] == "ClamAV-VDB" else { throw FixtureCopyError(message: "not a ClamAV-VDB header: \(header)") }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "dd MMM yyyy HH-mm '+0000'"
        fields[1] = formatter.string(from: built)
        fields[8] = String(Int64(built.timeIntervalSince1970))
        let text = Array(fields.joined(separator: ":").utf8)
        guard text.count <= 512 else { throw FixtureCopyError(message: "a ClamAV-VDB header longer than 512 bytes") }
        bytes.replaceSubrange(0..<512, with: text + [UInt8](repeating: 0x20, count: 512 - text.count))
        return bytes
    }
}

/// Why a fixture host could not be copied.
public struct FixtureCopyError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
