import Yams

/// The policy's `auth` section: what identity authentication each classification level requires,
/// account lockout, remote login, and screen locks. A policy without it gets the published rules.
public struct AuthPolicy: Sendable, Equatable {
    /// One acceptable way to log in at a level: a factor, and what the password beside it must be.
    public struct Method: Sendable, Equatable {
        /// The factor that must be mandatory in every login stack (`password`: none besides it).
        public var factor: AuthFactor
        /// The shortest password the stack may accept; nil when the method needs no password.
        public var minLength: Int?
        /// The longest a password may live, in days (login.defs and every account's own); nil: no limit.
        public var maxAgeDays: Int?
        /// The fewest character classes a password must mix; nil: not required.
        public var minClasses: Int?

        /// Makes a method.
        public init(factor: AuthFactor, minLength: Int? = nil, maxAgeDays: Int? = nil, minClasses: Int? = nil) {
            self.factor = factor
            self.minLength = minLength
            self.maxAgeDays = maxAgeDays
            self.minClasses = minClasses
        }

        /// `password ≥ 10 chars, changed within 7 days`.
        public var text: String {
            var parts: [String] = [factor == .password ? "password alone" : "\(factor.rawValue) + password"]
            if factor != .password, minLength == nil { parts = [factor.rawValue] }
            if let minLength { parts.append("≥ \(minLength) characters") }
            if let minClasses { parts.append("≥ \(minClasses) character classes") }
            if let maxAgeDays { parts.append("changed within \(maxAgeDays) days") }
            return parts.joined(separator: ", ")
        }
    }

    /// Whether an sshd may exist on the machine.
    public enum SSHD: String, Sendable, CaseIterable {
        /// A standalone classified machine serves no remote logins: sshd installed or enabled fails.
        case forbidden
        /// sshd may run, with root login and empty passwords off.
        case allowed
    }

    /// Methods per classification level; a machine meets its level when one method holds.
    public var levels: [Classification: [Method]]
    /// The most failed attempts before pam_faillock locks an account.
    public var maxDeny: Int
    /// The least `unlock_time` in seconds (0, never unlocked automatically, always meets it).
    public var minUnlockSeconds: Int
    /// Whether sshd may exist.
    public var sshd: SSHD
    /// The longest idle time before a desktop locks, in seconds.
    public var maxIdleSeconds: Int
    /// The longest delay between the screen blanking and the lock, in seconds.
    public var maxLockDelaySeconds: Int
    /// The longest `TMOUT` for text consoles, in seconds.
    public var maxShellTimeoutSeconds: Int

    /// The published rules: 秘密 — password ≥ 8 changed monthly; 机密 — key/IC card + password ≥ 4, or
    /// password alone ≥ 10 changed weekly; 绝密 — biometric, or key + password ≥ 6. Lockout after 5
    /// failures for 15 minutes (CIS Debian 12 5.3.3.1.1–2); no sshd; lock after 15 idle minutes,
    /// at most 5 seconds after blanking (CIS 1.7.4, STIG UBTU-22-271025); `TMOUT` ≤ 900 (CIS 5.4.3.2).
    public init() {
        levels = [
            .confidential: [Method(factor: .password, minLength: 8, maxAgeDays: 30)],
            .secret: [Method(factor: .token, minLength: 4), Method(factor: .password, minLength: 10, maxAgeDays: 7)],
            .topSecret: [Method(factor: .biometric), Method(factor: .token, minLength: 6)],
        ]
        maxDeny = 5
        minUnlockSeconds = 900
        sshd = .forbidden
        maxIdleSeconds = 900
        maxLockDelaySeconds = 5
        maxShellTimeoutSeconds = 900
    }

    /// The level whose methods judge a host of `classification`, and why: its own when the policy
    /// lists it; otherwise (no classification in host.yaml, or a level the policy leaves out) the
    /// strictest level the policy lists, since the machine may hold data of that level (fail closed).
    public func level(for classification: Classification?) -> (level: Classification, methods: [Method], reason: String)? {
        if let classification, let methods = levels[classification] {
            return (classification, methods, "host.yaml classification \(classification.rawValue)")
        }
        let order: [Classification] = [.topSecret, .secret, .confidential, .unclassified]
        guard let strictest = order.first(where: { levels[$0] != nil }), let methods = levels[strictest] else { return nil }
        let why = classification.map { "host.yaml classification \($0.rawValue) has no entry in auth.levels" } ?? "host.yaml names no classification"
        return (strictest, methods, "\(why); judged at the strictest level listed, \(strictest.rawValue)")
    }

    /// Parses the `auth` mapping.
    static func parse(_ node: Node, _ reader: YAMLReader) throws(MijianError) -> AuthPolicy {
        var policy = AuthPolicy()
        for (key, _, value) in try reader.mapping(node, "auth", allowed: ["levels", "lockout", "sshd", "screenlock"]) {
            switch key {
            case "levels":
                policy.levels = [:]
                guard case .mapping(let mapping) = value else { throw reader.error(value, "auth.levels", "expected a mapping of levels (秘密, 机密, 绝密)") }
                for (levelNode, methodsNode) in mapping {
                    let text = try reader.string(levelNode, "auth.levels")
                    guard let level = Classification(parsing: text) else {
                        throw reader.error(levelNode, "auth.levels.\(text)", "expected 绝密, 机密, 秘密 or 非密", code: .policyUnknownKey)
                    }
                    let path = "auth.levels.\(level.rawValue)"
                    guard policy.levels[level] == nil else { throw reader.error(levelNode, path, "level appears twice") }
                    var methods: [Method] = []
                    for (index, element) in try reader.sequence(methodsNode, path).enumerated() {
                        methods.append(try method(element, "\(path)[\(index)]", reader))
                    }
                    guard !methods.isEmpty else { throw reader.error(methodsNode, path, "a level needs at least one method") }
                    policy.levels[level] = methods
                }
            case "lockout":
                for (sub, _, v) in try reader.mapping(value, "auth.lockout", allowed: ["max_deny", "min_unlock_seconds"]) {
                    if sub == "max_deny" { policy.maxDeny = try reader.int(v, "auth.lockout.max_deny", range: 1...100) }
                    else { policy.minUnlockSeconds = try reader.int(v, "auth.lockout.min_unlock_seconds", range: 0...31_536_000) }
                }
            case "sshd": policy.sshd = try reader.choice(value, "auth.sshd", as: SSHD.self)
            default:
                let allowed: Set = ["max_idle_seconds", "max_lock_delay_seconds", "max_shell_timeout_seconds"]
                for (sub, _, v) in try reader.mapping(value, "auth.screenlock", allowed: allowed) {
                    let number = try reader.int(v, "auth.screenlock.\(sub)", range: sub == "max_lock_delay_seconds" ? 0...3600 : 1...86_400)
                    switch sub {
                    case "max_idle_seconds": policy.maxIdleSeconds = number
                    case "max_lock_delay_seconds": policy.maxLockDelaySeconds = number
                    default: policy.maxShellTimeoutSeconds = number
                    }
                }
            }
        }
        return policy
    }

    private static func method(_ node: Node, _ path: String, _ reader: YAMLReader) throws(MijianError) -> Method {
        var factor: AuthFactor?
        var method = Method(factor: .password)
        for (key, _, value) in try reader.mapping(node, path, allowed: ["factor", "min_length", "max_age_days", "min_classes"]) {
            switch key {
            case "factor": factor = try reader.choice(value, "\(path).factor", as: AuthFactor.self)
            case "min_length": method.minLength = try reader.int(value, "\(path).min_length", range: 1...256)
            case "max_age_days": method.maxAgeDays = try reader.int(value, "\(path).max_age_days", range: 1...99_999)
            default: method.minClasses = try reader.int(value, "\(path).min_classes", range: 1...4)
            }
        }
        guard let factor else { throw reader.error(node, "\(path).factor", "missing: password | token | biometric") }
        method.factor = factor
        if factor == .password, method.minLength == nil {
            throw reader.error(node, "\(path).min_length", "a password-alone method needs min_length")
        }
        return method
    }
}
