#if canImport(Glibc)
import Glibc
#endif

/// An error a person can act on: an opaque code callers match, a message, and the cause.
public struct MijianError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Stable codes callers can match; the message is for people.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's dotted name, e.g. `policy.unknown-key`.
        public let name: String
        /// Makes a code from its name.
        public init(_ name: String) { self.name = name }
        /// The code's name.
        public var description: String { name }

        public static let policyInvalid = Code("policy.invalid")
        public static let policyUnknownKey = Code("policy.unknown-key")
        public static let hostFileInvalid = Code("host-file.invalid")
        public static let io = Code("io")
        public static let notFound = Code("not-found")
        public static let permission = Code("permission")
        public static let malformed = Code("malformed")
        public static let tooLarge = Code("too-large")
        public static let usage = Code("usage")
        public static let netlink = Code("netlink")
        public static let capture = Code("capture")
        public static let crypto = Code("crypto")
        public static let verification = Code("verification")
        public static let state = Code("state")
    }

    /// What kind of failure this is.
    public var code: Code
    /// One sentence a person can act on.
    public var message: String
    /// The file or object concerned, when there is one.
    public var path: String?
    /// The errno captured at the failing call, when there is one.
    public var errno: Int32?

    /// Makes an error.
    public init(_ code: Code, _ message: String, path: String? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.errno = errno
    }

    /// The message, the path and the system's words for errno.
    public var description: String {
        var text = message
        if let path, !message.contains(path) { text += " (\(path))" }
        if let errno { text += ": \(MijianError.strerror(errno))" }
        return text
    }

    /// The C library's text for an errno value.
    public static func strerror(_ code: Int32) -> String {
        #if canImport(Glibc)
        if let text = Glibc.strerror(code) { return String(cString: text) }
        #endif
        return "errno \(code)"
    }
}
