import Crypto
import Foundation
import HummingbirdBcrypt
import MijianCore
import Synchronization

/// Passwords: bcrypt (hummingbird-auth), off the cooperative thread pool since each hash takes a
/// quarter of a second by design.
public enum ConsolePasswords {
    /// The bcrypt cost of new hashes.
    public static let defaultCost: UInt8 = 12
    /// Shortest password accepted.
    public static let minimumLength = 10
    /// Longest password accepted: bcrypt reads at most 72 bytes, so longer would only look stronger.
    public static let maximumBytes = 72

    /// Checks a new password's length; nil when acceptable, else the reason.
    public static func problem(_ password: String) -> String? {
        if password.count < minimumLength { return "the password must have at least \(minimumLength) characters" }
        if password.utf8.count > maximumBytes { return "the password must have at most \(maximumBytes) bytes (bcrypt reads no more)" }
        return nil
    }

    /// A bcrypt hash of `password`.
    public static func hash(_ password: String, cost: UInt8 = defaultCost) -> String {
        Bcrypt.hash(password, cost: min(max(cost, 4), 31))
    }

    /// Checks `password` against `hash` on a thread of its own.
    static func verify(_ password: String, hash: String) async -> Bool {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Bcrypt.verify(password, hash: hash)) }
        }
    }

    /// Bcrypt runs here, never on the cooperative pool.
    private static let queue = DispatchQueue(label: "mijian.console.bcrypt", attributes: .concurrent)

    /// A hash of a password nobody has: checked for an unknown account, so that the answer takes
    /// as long as for a known one and does not tell which names exist.
    static let decoy = Bcrypt.hash("decoy-password-for-unknown-accounts", cost: defaultCost)
}

/// Session ids and CSRF tokens: 256 random bits from the system's generator, hex.
enum ConsoleTokens {
    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.lower((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// The SHA-256 of a session id, as the store keeps it: a copy of the database holds no usable session.
    static func digest(_ id: String) -> String { Hex.lower(SHA256.hash(data: Array(id.utf8))) }

    /// Compares two tokens in time that depends only on their lengths.
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count, !x.isEmpty else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}

/// Failed logins counted per account and per client address in a sliding window; past the limit
/// the login is refused without checking the password, until the oldest failure leaves the window.
final class LoginThrottle: Sendable {
    /// Failures allowed per account in the window.
    let perAccount: Int
    /// Failures allowed per address in the window.
    let perAddress: Int
    /// The window.
    let window: TimeInterval
    private let failures = Mutex<[String: [Date]]>([:])

    init(perAccount: Int = 5, perAddress: Int = 20, window: TimeInterval = 900) {
        self.perAccount = perAccount
        self.perAddress = perAddress
        self.window = window
    }

    /// Seconds to wait before another try, or nil when a try is allowed now.
    func wait(account: String, address: String, now: Date) -> Int? {
        failures.withLock { table in
            var longest: TimeInterval?
            for (key, limit) in [("u:" + account, perAccount), ("a:" + address, perAddress)] {
                let recent = (table[key] ?? []).filter { now.timeIntervalSince($0) < window }
                table[key] = recent.isEmpty ? nil : recent
                if recent.count >= limit, let oldest = recent.first {
                    let left = window - now.timeIntervalSince(oldest)
                    longest = max(longest ?? 0, left)
                }
            }
            return longest.map { Int($0.rounded(.up)) }
        }
    }

    /// Counts a failure.
    func fail(account: String, address: String, now: Date) {
        failures.withLock { table in
            table["u:" + account, default: []].append(now)
            table["a:" + address, default: []].append(now)
            // Bounded: a flood of made-up names cannot grow the table without end.
            if table.count > 100_000 { table = table.filter { now.timeIntervalSince($0.value.last ?? now) < window } }
        }
    }

    /// Forgets an account's failures after a good login.
    func succeed(account: String) {
        failures.withLock { table in table["u:" + account] = nil }
    }
}

/// A URL-encoded form body.
struct ConsoleForm: Sendable {
    /// Most bytes of a form body.
    static let maxBytes = 256 << 10
    /// Most bytes of the login form, the one form posted without a session.
    static let maxLoginBytes = 4 << 10
    private(set) var fields: [(String, String)] = []

    init(_ bytes: [UInt8]) {
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decode(parts[0])
            let value = parts.count > 1 ? Self.decode(parts[1]) : ""
            fields.append((key, value))
        }
    }

    init(query: String) { self.init(Array(query.utf8)) }

    subscript(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }

    /// A field trimmed, nil when absent or blank.
    func text(_ name: String) -> String? {
        guard let value = self[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    static func decode(_ bytes: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(0x20)
            } else if byte == UInt8(ascii: "%"), index + 2 < bytes.endIndex,
                let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}
