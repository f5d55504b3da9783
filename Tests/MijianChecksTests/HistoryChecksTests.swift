import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianChecks

@Suite("wireless.history")
struct WirelessHistoryCheckTests {
    static func facts(_ history: HistoryFacts) -> AuditFacts {
        AuditFacts(root: "/fixture", live: false, observedAt: TestSupport.fixedDate, history: history)
    }

    static let okSources = [
        FactSource(path: "/etc/NetworkManager/system-connections", state: .ok, count: 1),
        FactSource(path: "/etc/wpa_supplicant", state: .missing), FactSource(path: "/var/lib/iwd", state: .missing),
        FactSource(path: "/var/lib/bluetooth", state: .missing),
    ]

    @Test("wired profiles only pass and name the sources examined")
    func wiredOnly() throws {
        let history = HistoryFacts(sources: Self.okSources, profiles: [SavedProfile(tool: .networkManager, type: "ethernet", name: "Wired", path: "/etc/NetworkManager/system-connections/Wired.nmconnection")])
        let findings = HistoryChecks.wirelessHistory(Self.facts(history), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.pass])
        #expect(findings.first?.statusDetail.contains("1 wired profile") == true)
        #expect(findings.first?.statusDetail.contains("/var/lib/iwd missing") == true)
    }

    @Test("each Wi-Fi, mobile, VPN profile and pairing fails with its path")
    func saved() throws {
        let history = HistoryFacts(sources: Self.okSources, profiles: [
            SavedProfile(tool: .networkManager, type: "wifi", name: "Office", ssid: "Office-5G", path: "/etc/NetworkManager/system-connections/Office.nmconnection"),
            SavedProfile(tool: .networkManager, type: "gsm", name: "China Mobile", path: "/etc/NetworkManager/system-connections/CM.nmconnection"),
            SavedProfile(tool: .networkManager, type: "wireguard", name: "wg0", path: "/etc/NetworkManager/system-connections/wg0.nmconnection"),
            SavedProfile(tool: .wpaSupplicant, type: "wifi", name: "Cafe", ssid: "Cafe", path: "/etc/wpa_supplicant/wpa_supplicant.conf", line: 4),
            SavedProfile(tool: .iwd, type: "psk", name: "Hotel", ssid: "Hotel", path: "/var/lib/iwd/Hotel.psk"),
        ], pairings: [BluetoothPairing(adapter: "A4:C3:F0:11:22:34", device: "40:4E:36:AA:BB:CC", name: "Pixel 7", path: "/var/lib/bluetooth/A4:C3:F0:11:22:34/40:4E:36:AA:BB:CC")])
        let findings = HistoryChecks.wirelessHistory(Self.facts(history), try HardwareFixtures.context())
        #expect(findings.count == 6)
        #expect(findings.allSatisfy { $0.status == .fail })
        #expect(findings.contains { $0.subject == "/etc/wpa_supplicant/wpa_supplicant.conf:4" })
        #expect(findings.contains { $0.statusDetail.contains("mobile broadband profile \"China Mobile\"") })
        #expect(findings.contains { $0.statusDetail.contains("VPN profile \"wg0\"") })
        #expect(findings.contains { $0.statusDetail.contains("(SSID \"Office-5G\")") })
        #expect(findings.contains { $0.statusDetail.contains("\"Pixel 7\" is paired") })
    }

    @Test("an unreadable profile directory is an error")
    func unreadable() throws {
        let history = HistoryFacts(sources: [FactSource(path: "/etc/NetworkManager/system-connections", state: .error("Permission denied"))])
        let findings = HistoryChecks.wirelessHistory(Self.facts(history), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.error])
    }
}

@Suite("log.retention")
struct LogRetentionCheckTests {
    static let now = TestSupport.fixedDate

    static func facts(_ history: HistoryFacts) -> AuditFacts {
        AuditFacts(root: "/fixture", live: false, observedAt: now, history: history)
    }

    @Test("a persistent journal passes and says how many days it reaches back")
    func persistent() throws {
        let file = LogFile(path: "/var/log/journal/m/system@x.journal~", modified: Self.now, firstEntry: Self.now.addingTimeInterval(-90 * 86_400 - 10))
        let history = HistoryFacts(journal: JournalFacts(persistentDirectory: true, persistentFiles: [file]))
        let findings = HistoryChecks.logRetention(Self.facts(history), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.pass])
        #expect(findings.first?.statusDetail.contains("reach back 90 day(s)") == true)
    }

    @Test("Storage=volatile with no kern.log fails; with kern.log it is informational")
    func volatile() throws {
        var journal = JournalFacts(persistentDirectory: true, volatileDirectory: true, storage: "volatile", storageLocation: "/etc/systemd/journald.conf.d/v.conf:2")
        #expect(!journal.isPersistent)
        var findings = HistoryChecks.logRetention(Self.facts(HistoryFacts(journal: journal)), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.fail])
        #expect(findings.first?.statusDetail.contains("Storage=volatile (/etc/systemd/journald.conf.d/v.conf:2)") == true)
        journal.persistentDirectory = false
        let kern = LogFile(path: "/var/log/kern.log", modified: Self.now, firstEntry: Self.now.addingTimeInterval(-3 * 86_400))
        findings = HistoryChecks.logRetention(Self.facts(HistoryFacts(journal: journal, kernelLogs: [kern])), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.informational])
        #expect(findings.first?.statusDetail.contains("3 day(s)") == true)
    }

    @Test("Storage=auto without /var/log/journal is volatile")
    func autoWithoutDirectory() throws {
        let findings = HistoryChecks.logRetention(Self.facts(HistoryFacts(journal: JournalFacts())), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.fail])
        #expect(findings.first?.statusDetail.contains("no /var/log/journal") == true)
    }
}
