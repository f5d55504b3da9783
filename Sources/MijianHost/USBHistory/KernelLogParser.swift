import Foundation
import MijianCore

/// Turns kernel log messages into USB connection records.
///
/// It follows the messages of the kernel's hub driver (`New USB device found, idVendor=…`,
/// `Product:`, `Manufacturer:`, `SerialNumber:`) per bus path, and marks a device as storage when
/// `usb-storage` names its interface or a `uas` SCSI host appears right after it was announced.
public struct KernelLogParser {
    private var open: [String: Int] = [:]
    private var lastAnnounced: (index: Int, time: Date?)?
    /// Connections found so far, in log order.
    public private(set) var connections: [USBHistoryFacts.Connection] = []

    /// Makes an empty parser.
    public init() {}

    /// False only for a message `feed` would ignore: every message it acts on starts with the
    /// bytes `usb` (`usb `, `usb-storage `) or `scsi host`. Lets a reader skip making strings of
    /// the kernel's other records. (ASCII letters have no other canonically equivalent form, so
    /// the byte test agrees with `hasPrefix` on strings.)
    static func mayMatch(_ message: some Collection<UInt8>) -> Bool {
        message.starts(with: usbPrefix) || message.starts(with: scsiHostPrefix)
    }
    private static let usbPrefix = Array("usb".utf8)
    private static let scsiHostPrefix = Array("scsi host".utf8)

    /// Feeds one kernel message (without syslog or kmsg prefixes) with its time and origin.
    public mutating func feed(message: Substring, time: Date?, source: @autoclosure () -> String) {
        if message.hasPrefix("usb ") {
            let rest = message.dropFirst(4)
            guard let colon = rest.firstIndex(of: ":") else { return }
            let bus = String(rest[..<colon])
            guard bus.first?.isNumber == true, !bus.contains(" ") else { return }
            let text = rest[rest.index(after: colon)...].drop { $0 == " " }
            if text.hasPrefix("New USB device found,") {
                guard let vendor = Self.value(of: "idVendor=", in: text), let product = Self.value(of: "idProduct=", in: text) else { return }
                connections.append(USBHistoryFacts.Connection(
                    time: time, busPath: bus, vendor: vendor.lowercased(), product: product.lowercased(), source: source()))
                open[bus] = connections.count - 1
                lastAnnounced = (connections.count - 1, time)
            } else if let index = open[bus] {
                if text.hasPrefix("SerialNumber: ") {
                    connections[index].serial = String(text.dropFirst("SerialNumber: ".count))
                } else if text.hasPrefix("Product: ") {
                    connections[index].productName = String(text.dropFirst("Product: ".count))
                } else if text.hasPrefix("Manufacturer: ") {
                    connections[index].manufacturer = String(text.dropFirst("Manufacturer: ".count))
                } else if text.hasPrefix("USB disconnect") {
                    open[bus] = nil
                }
            }
        } else if message.hasPrefix("usb-storage ") {
            // `usb-storage 1-1:1.0: USB Mass Storage device detected`
            let rest = message.dropFirst("usb-storage ".count)
            guard let colon = rest.firstIndex(of: ":") else { return }
            let bus = String(rest[..<colon])
            if let index = open[bus] { connections[index].isStorage = true }
        } else if message.hasPrefix("scsi host"), message.hasSuffix(": uas"), let last = lastAnnounced {
            // uas names no bus path: it belongs to the device announced just before it.
            if let announced = last.time, let time, time.timeIntervalSince(announced) > 30 { return }
            connections[last.index].isStorage = true
        }
    }

    /// `0781` from `idVendor=0781, idProduct=…`.
    static func value(of key: String, in text: Substring) -> String? {
        guard let range = text.range(of: key) else { return nil }
        let value = text[range.upperBound...].prefix { $0.isHexDigit }
        return value.count == 4 ? String(value) : nil
    }

    /// Splits a syslog line into time and kernel message; nil when it is not a kernel line.
    /// Handles RFC 3339 (`2026-11-29T03:55:18.123456+08:00 host kernel: …`) and the traditional
    /// `Nov 29 03:55:18 host kernel: …` (the year comes from `year`).
    public static func splitSyslog(_ line: Substring, year: Int) -> (time: Date?, message: Substring)? {
        guard let marker = line.range(of: " kernel: ") else { return nil }
        var message = line[marker.upperBound...]
        if message.hasPrefix("["), let close = message.firstIndex(of: "]") {
            message = message[message.index(after: close)...].drop { $0 == " " }
        }
        let head = line[..<marker.lowerBound]
        var time: Date?
        if let first = head.first, first.isNumber, let space = head.firstIndex(of: " ") {
            time = RFC3339.date(from: String(head[..<space]))
        } else if head.count >= 15 {
            time = traditional(head.prefix(15), year: year)
        }
        return (time, message)
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private static func traditional(_ text: Substring, year: Int) -> Date? {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, let month = months.firstIndex(of: String(parts[0])), let day = Int(parts[1]) else { return nil }
        let clock = parts[2].split(separator: ":")
        guard clock.count == 3, let hour = Int(clock[0]), let minute = Int(clock[1]), let second = Int(clock[2]) else { return nil }
        return RFC3339.date(from: String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", year, month + 1, day, hour, minute, second))
    }
}
