import Foundation
import MijianCore
import MijianDevices
import MijianTestSupport
import Testing

/// `mijian devices` as a user meets it.
@Suite struct DevicesCLITests {
    let mijian = TestSupport.productPath("mijian")

    static func fixture(_ host: String) -> String {
        TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/\(host)").path
    }

    @Test func anUnregisteredStickIsWouldDenyInAuditModeAndExitOne() throws {
        let result = try TestSupport.run(mijian, ["devices", "--root", Self.fixture("usb-stick-unregistered")])
        #expect(result.status == 1)
        #expect(result.stdout.contains("2-1:1.0  08/06/50  storage  would-deny"))
        #expect(result.stdout.contains("1-3:1.0  03/01/01  hid  allow"))
        #expect(result.stdout.contains("1 the policy objects to"))
    }

    @Test func theLedgerAllowsTheRegisteredStickAndJSONSaysWhy() throws {
        let policy = try Self.ledgerPolicy(serial: "4C530001230615117204", in: try TestSupport.temporaryDirectory("mijian-devices"))
        let result = try TestSupport.run(mijian, ["devices", "list", "--root", Self.fixture("usb-stick-registered"), "--policy", policy.path, "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONParser().parse(Array(result.stdout.utf8))
        guard case .object(let top) = json, case .array(let devices)? = top.first(where: { $0.0 == "devices" })?.1 else {
            Issue.record("no devices array")
            return
        }
        let text = result.stdout
        #expect(devices.count == 3)
        #expect(text.contains("\"serial\": \"4C530001230615117204\""))
        #expect(text.contains("registered medium 秘-U-0012"))
        #expect(text.contains("\"mode\": \"enforce\""))
        #expect(!text.contains("\"decision\": \"deny\""))
    }

    @Test func aPolicyThatAllowsStorageByKindIsRefusedWithItsLine() throws {
        let dir = try TestSupport.temporaryDirectory("mijian-devices")
        let policy = dir.appendingPathComponent("policy.yaml")
        try Data("id: unit\nversion: \"1\"\nprofile: classified\nusb:\n  allow: [hid, storage]\n".utf8).write(to: policy)
        let result = try TestSupport.run(mijian, ["devices", "--root", Self.fixture("usb-stick-registered"), "--policy", policy.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(policy.path):5: usb.allow[1]"))
    }

    @Test func aRootWithoutUSBIsAnErrorNotAnEmptyList() throws {
        let dir = try TestSupport.temporaryDirectory("mijian-devices")
        let result = try TestSupport.run(mijian, ["devices", "--root", dir.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("/sys/bus/usb/devices"))
        let file = dir.appendingPathComponent("f")
        try Data().write(to: file)
        let notDirectory = try TestSupport.run(mijian, ["devices", "--root", file.path])
        #expect(notDirectory.status == 2)
        #expect(notDirectory.stderr.contains("not a directory"))
    }

    @Test func watchNamesItsSourceAndStopsOnTime() throws {
        let result = try TestSupport.run(mijian, ["devices", "watch", "--for", "1", "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let source = UdevDaemon.unavailableReason() == nil ? "udev" : "kernel"
        #expect(result.stderr.contains("watching USB (source \(source)"), "\(result.stderr)")
        // Every line is one JSON event.
        for line in result.stdout.split(separator: "\n") {
            let event = try JSONParser().parse(Array(line.utf8))
            guard case .object(let members) = event else {
                Issue.record("not an object: \(line)")
                continue
            }
            #expect(members.first?.0 == "type")
        }
    }

    @Test func withoutCapNetAdminTheBufferStaysSmallerAndTheWatchStillRuns() throws {
        // What the service's unit leaves it: no CAP_NET_ADMIN, so no SO_RCVBUFFORCE past rmem_max.
        let result = try TestSupport.run("/usr/bin/setpriv", [
            "--bounding-set", "-net_admin", "--inh-caps", "-net_admin", mijian, "devices", "watch", "--for", "1", "--receive-buffer", "\(1 << 30)",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("could not be raised"), "\(result.stderr)")
        #expect(result.stderr.contains("watching USB"), "\(result.stderr)")
    }

    /// The registered stick with `serial` in place of its own (sysfs ends it with the one newline
    /// the kernel adds), under a policy whose ledger holds `ledger` (a quoted YAML string).
    static func stick(serial: String, ledger: String) throws -> (root: String, policy: String) {
        let dir = try TestSupport.temporaryDirectory("mijian-serial")
        let root = dir.appendingPathComponent("host")
        let copied = try TestSupport.run("/bin/cp", ["-a", fixture("usb-stick-registered"), root.path])
        guard copied.status == 0 else { throw MijianError(.io, "cp: \(copied.stderr)") }
        let file = root.appendingPathComponent("sys/bus/usb/devices/2-1/serial").resolvingSymlinksInPath()
        try Data((serial + "\n").utf8).write(to: file)
        return (root.path, try ledgerPolicy(serial: ledger, in: dir).path)
    }

    /// An enforcing policy in `directory` whose ledger registers the stick 0781:5583 with `serial` (a quoted YAML string).
    static func ledgerPolicy(serial: String, in directory: URL) throws -> URL {
        let policy = directory.appendingPathComponent("policy.yaml")
        try Data("""
            id: unit
            version: "1"
            profile: classified
            media:
              ledger:
                - {vendor: "0781", product: "5583", serial: "\(serial)", label: 秘-U-0012}
            usb: {mode: enforce}
            """.utf8).write(to: policy)
        return policy
    }

    /// The storage decision `mijian devices` and the audit's usb.storage take for that stick.
    func storageDecision(serial: String, ledger: String) throws -> (devices: String, audit: String) {
        let (root, policy) = try Self.stick(serial: serial, ledger: ledger)
        let listed = try TestSupport.run(mijian, ["devices", "--root", root, "--policy", policy])
        let line = listed.stdout.split(separator: "\n").first { $0.contains("2-1:1.0") }.map(String.init) ?? "(no line: \(listed.stdout) \(listed.stderr))"
        let audited = try TestSupport.run(mijian, ["audit", "--root", root, "--policy", policy, "--rule", "usb.storage", "--format", "json"])
        let findings = try JSONParser().parse(Array(audited.stdout.utf8))["findings"]?.arrayValue ?? []
        let device = findings.first { $0["subject"]?.stringValue?.contains("2-1") == true }
        return (line, device?["status"]?.stringValue ?? "(no finding for 2-1: \(audited.stdout) \(audited.stderr))")
    }

    /// The kernel ends a serial with one newline and nothing else: a trailing space is part of the
    /// serial, as USBGuard compares it, and never trimmed into a match.
    @Test func aSerialWithATrailingSpaceIsNotTheLedgersSerial() throws {
        let plain = try storageDecision(serial: "4C530001230615117204", ledger: "4C530001230615117204")
        #expect(plain.devices.contains("storage  allow"), "\(plain.devices)")
        #expect(plain.audit == "pass")
        let spaced = try storageDecision(serial: "4C530001230615117204 ", ledger: "4C530001230615117204")
        #expect(spaced.devices.contains("storage  deny"), "\(spaced.devices)")
        #expect(spaced.audit == "fail")
    }

    @Test func aLedgerSerialWithATrailingSpaceMatchesOnlyItself() throws {
        let itself = try storageDecision(serial: "4C530001230615117204 ", ledger: "4C530001230615117204 ")
        #expect(itself.devices.contains("storage  allow"), "\(itself.devices)")
        #expect(itself.audit == "pass")
        let trimmed = try storageDecision(serial: "4C530001230615117204", ledger: "4C530001230615117204 ")
        #expect(trimmed.devices.contains("storage  deny"), "\(trimmed.devices)")
        #expect(trimmed.audit == "fail")
    }
}
