import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianEvidence

/// Reports, keys and envelopes shared by the evidence tests.
enum Fixtures {
    /// RFC 8032 test 1 private key as OpenSSL writes it (PKCS#8 PEM).
    static let rfc8032PrivatePEM = """
        -----BEGIN PRIVATE KEY-----
        MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
        -----END PRIVATE KEY-----

        """
    /// Its public key as `openssl pkey -pubout` prints it.
    static let rfc8032PublicPEM = """
        -----BEGIN PUBLIC KEY-----
        MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
        -----END PUBLIC KEY-----

        """
    /// `openssl pkey -pubout -outform DER | sha256sum` of that key.
    static let rfc8032KeyID = "sha256:06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9"

    static let date = Date(timeIntervalSince1970: 1_795_000_000)

    static let host = HostInfo(
        hostID: HostInfo.hostID(machineID: "0123456789abcdef0123456789abcdef"), hostname: "ws-0042", assetID: "JSJ-2026-0042",
        classification: .confidential, responsible: "张三", unit: "某局办公室", os: "Debian GNU/Linux 12 (bookworm)", kernel: "6.1.0-26-amd64",
        bootID: "6f1b0c0e-1111-4222-8333-944445555666")

    /// A report with a pass and a fail, `padding` extra evidence entries to grow it.
    static func report(keyid: String = "", seq: Int64 = 0, padding: Int = 0) -> Report {
        let route = RuleCatalogue.internetRoute
        let wireless = RuleCatalogue.wirelessHardware
        var evidence = [Evidence(kind: "netlink", source: "rtnetlink table main", observedAt: date, data: ["routes": ["10.0.0.0/8 dev eth0"]])]
        for index in 0..<padding {
            evidence.append(
                Evidence(
                    kind: "sysfs", source: "/sys/bus/usb/devices/1-\(index)", observedAt: date,
                    data: ["idVendor": "0781", "idProduct": "5583", "serial": .string("4C5300012306151172\(index)"), "class": 8]))
        }
        let findings = [
            Finding(
                uid: Finding.uid(hostID: host.hostID, ruleID: route.id, subject: "host"), rule: route, subject: "host",
                severity: .critical, status: .pass, statusDetail: "No route reaches public address space.", observedAt: date, evidence: evidence),
            Finding(
                uid: Finding.uid(hostID: host.hostID, ruleID: wireless.id, subject: "wlan0"), rule: wireless, subject: "wlan0",
                severity: .high, status: .fail, statusDetail: "A Wi-Fi interface is present: wlan0 (iwlwifi).", observedAt: date,
                evidence: [Evidence(kind: "sysfs", source: "/sys/class/net/wlan0", observedAt: date, data: ["driver": "iwlwifi", "wireless": true])]),
        ]
        return Report(
            reportID: UUID(uuidString: "5b0b0e59-3c1e-4c55-9f4c-2a0e4a1d7c11") ?? UUID(), epoch: 1_795_000_000, seq: seq,
            prevSHA256: seq == 0 ? "" : String(repeating: "ab", count: 32), issuedAt: date, windowStart: date.addingTimeInterval(-3600),
            windowEnd: date, agent: AgentInfo(keyid: keyid), host: host,
            policy: PolicyInfo(id: "classified-workstation", version: "2026.1", sha256: String(repeating: "cd", count: 32)), findings: findings,
            events: [Event(type: "usb.attach", observedAt: date, data: ["vendor": "0781", "product": "5583"])])
    }

    /// The serialized envelope of `report` signed by `key` (agent.keyid set to the key's).
    static func signedReport(_ key: SigningKey, seq: Int64 = 0, padding: Int = 0) throws -> [UInt8] {
        try DSSE.sign(payload: report(keyid: key.keyid, seq: seq, padding: padding).payloadBytes(), type: PayloadType.report, key: key).serialized()
    }

    /// The compact payload text of a report by `key`, for tests that edit it before signing.
    static func payloadText(_ key: SigningKey, seq: Int64 = 0) -> String {
        String(decoding: report(keyid: key.keyid, seq: seq).payloadBytes(), as: UTF8.self)
    }

    /// `text` edited and then validly signed by `key` as a report.
    static func signedPayload(_ text: String, key: SigningKey, type: String = PayloadType.report) throws -> [UInt8] {
        try DSSE.sign(payload: Array(text.utf8), type: type, key: key).serialized()
    }

    /// Parses an envelope the test made itself.
    static func envelope(_ bytes: [UInt8]) throws -> Envelope {
        do {
            return try Envelope.parse(bytes)
        } catch {
            throw error
        }
    }

    /// The serialized JSON of an envelope with the given base64 texts.
    static func envelopeText(type: String, payload: String, signatures: [(String, String)]) -> [UInt8] {
        let value: JSONValue = [
            "payloadType": .string(type), "payload": .string(payload),
            "signatures": .array(signatures.map { ["keyid": .string($0.0), "sig": .string($0.1)] }),
        ]
        return value.serialized()
    }

    /// The reason `body` fails verification with, or nil when it succeeds; any other error is a test failure.
    static func reason<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> VerificationFailure.Reason? {
        do {
            _ = try body()
            return nil
        } catch let failure as VerificationFailure {
            return failure.reason
        } catch {
            Issue.record("expected a verification outcome, got \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// A fresh temporary directory.
    static func directory() throws -> String { try TestSupport.temporaryDirectory("mijian-evidence").path }
}
