import Foundation
import MijianCore
import MijianEvidence

/// Loading what every collector command needs: the unit's policies, the table, the answers.
public enum CollectorSetup {
    /// The default data directory.
    public static let defaultDataDirectory = "/var/lib/mijian-collector"

    /// Reads a file with a size limit and a clear error.
    public static func read(_ path: String, limit: Int = 4 << 20) throws(MijianError) -> [UInt8] {
        // EvidenceFiles.read refuses a directory, FIFO or device before reading, and never blocks.
        try EvidenceFiles.read(path, limit: limit)
    }

    /// The unit's policies: the given files, or the built-in classified and unclassified ones.
    public static func policies(_ paths: [String]) throws(MijianError) -> [Policy] {
        if paths.isEmpty {
            return [
                try Policy.parse(Array(EmbeddedPolicies.classifiedWorkstation.utf8), file: "classified-workstation.yaml"),
                try Policy.parse(Array(EmbeddedPolicies.unclassifiedWorkstation.utf8), file: "unclassified-workstation.yaml"),
            ]
        }
        var out: [Policy] = []
        for path in paths { out.append(try Policy.parse(try read(path), file: path)) }
        return out
    }

    /// The self-assessment table: the given file or the built-in one.
    public static func table(_ path: String?) throws(MijianError) -> AssessmentTable {
        guard let path else { return try AssessmentTable.parse(Array(EmbeddedAssessmentTable.selfAssessmentZH.utf8), file: "self-assessment.zh.yaml") }
        return try AssessmentTable.parse(try read(path), file: path)
    }

    /// People's answers, or none.
    public static func answers(_ path: String?, table: AssessmentTable) throws(MijianError) -> AssessmentAnswers {
        guard let path else { return .none }
        return try AssessmentAnswers.parse(try read(path), file: path, table: table)
    }

    /// Splits `HOST:PORT` (IPv6 in brackets).
    public static func listenAddress(_ text: String) throws(MijianError) -> (host: String, port: Int) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw MijianError(.usage, "--listen \(text): expected [ADDRESS]:PORT")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw MijianError(.usage, "--listen \(text): expected HOST:PORT, e.g. 127.0.0.1:8443") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty else {
            throw MijianError(.usage, "--listen \(text): expected HOST:PORT with a port from 0 to 65535")
        }
        return (String(host), port)
    }

    /// Whether an address is loopback (plain HTTP there never leaves the machine).
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        return IPAddress(host)?.isLoopback ?? false
    }
}
