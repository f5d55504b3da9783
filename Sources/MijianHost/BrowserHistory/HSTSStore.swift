import Foundation
import MijianCore

extension BrowserHistoryProbe {
    /// Reads the profile's HSTS store, the first of the family's files that exists. A store that
    /// cannot be read or parsed is an error source of the profile, never an empty store.
    static func readHSTS(root: HostRoot, family: BrowserFamily, into profile: inout BrowserProfile) {
        for path in hstsStores(family, directory: profile.directory) {
            let bytes: [UInt8]
            do {
                bytes = try root.readBytes(path, limit: 64 << 20)
            } catch where error.code == .notFound {
                continue
            } catch {
                profile.hstsStore = FactSource(path: path, state: .error(error.description))
                return
            }
            do {
                let entries: [HSTSEntry]
                if path.hasSuffix("TransportSecurity") {
                    entries = try chromiumHSTS(bytes, path: path)
                } else if path.hasSuffix(".txt") {
                    entries = firefoxHSTSText(bytes)
                } else {
                    entries = try firefoxHSTSBinary(bytes, path: path)
                }
                profile.hsts = entries
                profile.hstsStore = FactSource(path: path, state: .ok, count: entries.count)
            } catch {
                profile.hstsStore = FactSource(path: path, state: .error(error.description))
            }
            return
        }
    }

    /// Chromium's `TransportSecurity`: `{"sts": [{"host": HASH, "sts_observed": s, "expiry": s,
    /// "sts_include_subdomains": b, "mode": "force-https"}], "version": 2}`, or the older form
    /// keyed by the hashed host.
    static func chromiumHSTS(_ bytes: [UInt8], path: String) throws(MijianError) -> [HSTSEntry] {
        let json: JSONValue
        do {
            json = try JSONParser().parse(bytes)
        } catch {
            throw MijianError(.malformed, "\(path) is not JSON: \(error.description)", path: path)
        }
        func entry(_ hash: String?, _ value: JSONValue) -> HSTSEntry {
            func seconds(_ key: String) -> Date? {
                switch value[key] {
                case .double(let number)?: return number > 0 ? Date(timeIntervalSince1970: number) : nil
                case .int(let number)?: return number > 0 ? Date(timeIntervalSince1970: Double(number)) : nil
                default: return nil
                }
            }
            return HSTSEntry(
                hashedHost: hash ?? value["host"]?.stringValue, observed: seconds("sts_observed"), expiry: seconds("expiry"),
                includeSubdomains: value["sts_include_subdomains"]?.boolValue ?? false)
        }
        if let list = json["sts"]?.arrayValue {
            return list.map { entry(nil, $0) }
        }
        guard let members = json.objectValue else {
            throw MijianError(.malformed, "\(path) is JSON but neither an object with \"sts\" nor one keyed by host", path: path)
        }
        // Version 1: every member but the bookkeeping ones is a hashed host.
        return members.filter { $0.1.objectValue != nil && $0.1["mode"] != nil }.map { entry($0.0, $0.1) }
    }

    /// Firefox's `SiteSecurityServiceState.txt`: `host:HSTS<TAB>score<TAB>day<TAB>expiry-ms,state,subdomains`.
    static func firefoxHSTSText(_ bytes: [UInt8]) -> [HSTSEntry] {
        var entries: [HSTSEntry] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: "\t")
            guard let key = fields.first, key.hasSuffix(":HSTS") || key.contains(":HSTS^") else { continue }
            let host = String(key[..<(key.range(of: ":HSTS")?.lowerBound ?? key.endIndex)])
            var entry = HSTSEntry(host: host.lowercased())
            if fields.count >= 3, let day = Double(fields[2]) { entry.observed = Date(timeIntervalSince1970: day * 86_400) }
            if fields.count >= 4 {
                let value = fields[3].split(separator: ",")
                if let ms = value.first.flatMap({ Double($0) }) { entry.expiry = Date(timeIntervalSince1970: ms / 1000) }
                if value.count >= 3 { entry.includeSubdomains = value[2] == "1" }
            }
            entries.append(entry)
        }
        return entries
    }

    /// The size of one slot of Firefox's `SiteSecurityServiceState.bin`: checksum, score and
    /// last-accessed day (three big-endian 16-bit words), the key (256 bytes, zero-padded), the value (24).
    static let firefoxSlotSize = 6 + 256 + 24

    /// Firefox's `SiteSecurityServiceState.bin` (the Rust data storage of recent Firefox): fixed
    /// slots, each key a host in clear, with origin attributes after `^`
    /// (`www.example.com^partitionKey=…`), each value `expiry-ms,state,include-subdomains`.
    /// Slots whose key is empty are free.
    static func firefoxHSTSBinary(_ bytes: [UInt8], path: String) throws(MijianError) -> [HSTSEntry] {
        guard bytes.count % firefoxSlotSize == 0 else {
            throw MijianError(.malformed, "\(path) is \(bytes.count) bytes, not a whole number of \(firefoxSlotSize)-byte slots", path: path)
        }
        var entries: [HSTSEntry] = []
        for start in stride(from: 0, to: bytes.count, by: firefoxSlotSize) {
            let day = Int(bytes[start + 4]) << 8 | Int(bytes[start + 5])
            let key = bytes[(start + 6)..<(start + 262)].prefix { $0 != 0 }
            guard !key.isEmpty else { continue }
            let host = String(decoding: key.prefix { $0 != UInt8(ascii: "^") }, as: UTF8.self).lowercased()
            let value = String(decoding: bytes[(start + 262)..<(start + firefoxSlotSize)].prefix { $0 != 0 }, as: UTF8.self).split(separator: ",")
            var entry = HSTSEntry(host: host, observed: day > 0 ? Date(timeIntervalSince1970: Double(day) * 86_400) : nil)
            if let ms = value.first.flatMap({ Double($0) }) { entry.expiry = Date(timeIntervalSince1970: ms / 1000) }
            if value.count >= 3 { entry.includeSubdomains = value[2] == "1" }
            entries.append(entry)
        }
        return entries
    }
}
