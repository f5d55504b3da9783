import Foundation
import MijianCore

/// `usb.history`: USB storage connected in the past, from kernel logs, against the media ledger.
public enum USBHistoryChecks {
    /// The check.
    public static let all: [Check] = [Check(rule: RuleCatalogue.usbHistory, needs: [.usbHistory], evaluate: evaluate)]

    /// One finding per distinct medium seen; a pass that says how far back the logs reach when
    /// none was; an error when no log source could be read at all.
    static func evaluate(_ facts: AuditFacts, _ context: CheckContext) -> [Finding] {
        let history = facts.usbHistory
        let rule = RuleCatalogue.usbHistory
        let sourceEvidence = history.sources.map { source in
            var data: [(String, JSONValue)] = [
                ("state", .string(source.state)), ("detail", .string(source.detail)), ("kernel_lines", .integer(source.lines)),
                ("oldest", .optional(source.oldest.map { RFC3339.string(from: $0) })),
                ("newest", .optional(source.newest.map { RFC3339.string(from: $0) })),
            ]
            if let resolved = source.resolvedPath { data.insert(("resolved_path", .string(resolved)), at: 0) }
            return Evidence(kind: source.kind, source: source.path, observedAt: facts.observedAt, data: .object(data))
        }
        let readable = history.sources.filter { $0.state == "ok" }
        guard !readable.isEmpty else {
            let why = history.sources.map { "\($0.path): \($0.state)\($0.detail.isEmpty ? "" : " (\($0.detail))")" }.joined(separator: "; ")
            return [context.finding(
                rule, subject: "usb-history", status: .error,
                detail: "No kernel log source could be read, so past USB connections are unknown: \(why.isEmpty ? "no sources" : why).",
                evidence: sourceEvidence)]
        }
        // A source that could not be read while others could: what it holds is unknown, so the
        // rule cannot pass on the others alone.
        let unreadable = history.sources.filter { $0.state == "error" }.map { source in
            context.finding(
                rule, subject: "usb-history:source:\(source.path)", status: .error,
                detail: "Could not read \(source.path), so the USB connections it logged are unknown: \(source.detail.isEmpty ? "unreadable" : source.detail).",
                evidence: sourceEvidence)
        }
        let reach = describeReach(history.reach, now: facts.observedAt)
        var media: [String: [USBHistoryFacts.Connection]] = [:]
        var order: [String] = []
        for connection in history.connections where connection.isStorage {
            let key = "\(connection.vendor):\(connection.product):\(connection.serial ?? "(no serial)")"
            if media[key] == nil { order.append(key) }
            media[key, default: []].append(connection)
        }
        let others = history.connections.count(where: { !$0.isStorage })
        guard !order.isEmpty else {
            if !unreadable.isEmpty { return unreadable }
            return [context.finding(
                rule, subject: "usb-history", status: .pass,
                detail: "No USB storage connection in \(readable.count) kernel log source(s); \(reach); \(others) other USB device connection(s) logged.",
                evidence: sourceEvidence)]
        }
        var findings = unreadable
        for key in order {
            let seen = media[key] ?? []
            guard let first = seen.first else { continue }
            let entry = context.policy.ledger.first { $0.matches(vendor: first.vendor, product: first.product, serial: first.serial) }
            let times = seen.map { $0.time.map { RFC3339.string(from: $0) } ?? "unknown time" }
            let name = [first.manufacturer, first.productName].compactMap { $0 }.joined(separator: " ")
            let described = "\(first.vendor):\(first.product)\(name.isEmpty ? "" : " \(name)") serial \(first.serial ?? "(none)")"
            let data: JSONValue = [
                "vendor": .string(first.vendor), "product": .string(first.product), "serial": .optional(first.serial),
                "product_name": .optional(first.productName), "manufacturer": .optional(first.manufacturer),
                "ledger_label": .optional(entry?.label),
                "connections": .array(seen.map { connection in
                    ["time": .optional(connection.time.map { RFC3339.string(from: $0) }), "bus_path": .string(connection.busPath), "source": .string(connection.source)]
                }),
            ]
            let evidence = [Evidence(kind: "kernel-log", source: first.source, observedAt: facts.observedAt, data: data)] + sourceEvidence
            if let entry {
                findings.append(context.finding(
                    rule, subject: "usb-history:\(key)", status: .pass,
                    detail: "Registered medium \(entry.label ?? described) was connected \(seen.count) time(s), last \(times.last ?? "?"); \(reach).",
                    evidence: evidence))
            } else {
                let why = first.serial == nil ? "has no serial number, so it cannot match the ledger" : "is not in the media ledger"
                findings.append(context.finding(
                    rule, subject: "usb-history:\(key)", status: .fail,
                    detail: "USB storage \(described) \(why); connected \(seen.count) time(s): \(times.joined(separator: ", ")).",
                    evidence: evidence))
            }
        }
        return findings
    }

    private static func describeReach(_ reach: Date?, now: Date) -> String {
        guard let reach else { return "the logs carry no usable timestamps, so their reach is unknown" }
        let days = Int(now.timeIntervalSince(reach) / 86_400)
        return "logs reach back to \(RFC3339.string(from: reach)) (\(days) day(s))"
    }
}
