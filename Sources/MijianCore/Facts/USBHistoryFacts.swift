import Foundation

/// Past USB connections found in kernel logs, and which log sources were read.
public struct USBHistoryFacts: Sendable, Equatable {
    /// One log source and what came of reading it.
    public struct Source: Sendable, Equatable {
        /// `file`, `gzip-file`, `journal`, `kmsg`.
        public var kind: String
        /// The path (or journal directory) read.
        public var path: String
        /// `ok`, `missing` or `error`.
        public var state: String
        /// Why it is missing or failed; empty when ok.
        public var detail: String
        /// Kernel lines examined.
        public var lines: Int
        /// The oldest time seen in it.
        public var oldest: Date?
        /// The newest time seen in it.
        public var newest: Date?
        /// The file actually read when `path` is reached through symbolic links; nil when it is `path` itself.
        public var resolvedPath: String?

        /// Makes a source record.
        public init(kind: String, path: String, state: String, detail: String = "", lines: Int = 0, oldest: Date? = nil, newest: Date? = nil) {
            self.kind = kind
            self.path = path
            self.state = state
            self.detail = detail
            self.lines = lines
            self.oldest = oldest
            self.newest = newest
        }
    }

    /// One USB device connection as the kernel logged it.
    public struct Connection: Sendable, Equatable {
        /// When the kernel announced it (nil when the log gave no usable time).
        public var time: Date?
        /// The bus path, e.g. `1-1.2`.
        public var busPath: String
        /// idVendor, four hex digits.
        public var vendor: String
        /// idProduct, four hex digits.
        public var product: String
        /// The serial string, when the device has one.
        public var serial: String?
        /// The product string.
        public var productName: String?
        /// The manufacturer string.
        public var manufacturer: String?
        /// Whether a storage driver (usb-storage, uas) took it.
        public var isStorage: Bool
        /// `path:line` of the announcing line.
        public var source: String

        /// Makes a connection record.
        public init(time: Date?, busPath: String, vendor: String, product: String, serial: String? = nil, productName: String? = nil, manufacturer: String? = nil, isStorage: Bool = false, source: String) {
            self.time = time
            self.busPath = busPath
            self.vendor = vendor
            self.product = product
            self.serial = serial
            self.productName = productName
            self.manufacturer = manufacturer
            self.isStorage = isStorage
            self.source = source
        }
    }

    /// Every source tried, in the order read.
    public var sources: [Source]
    /// Every connection found, oldest first (unknown times last).
    public var connections: [Connection]

    /// Makes facts.
    public init(sources: [Source] = [], connections: [Connection] = []) {
        self.sources = sources
        self.connections = connections
    }

    /// The oldest time any source reaches back to.
    public var reach: Date? { sources.compactMap(\.oldest).min() }
}
