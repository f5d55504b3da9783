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
        let dir = try TestSupport.temporaryDirectory("mijian-devices")
        let policy = dir.appendingPathComponent("policy.yaml")
        try Data("""
            id: unit
            version: "1"
            profile: classified
            media:
              ledger:
                - {vendor: "0781", product: "5583", serial: "4C530001230615117204", label: 秘-U-0012}
            usb: {mode: enforce}
            """.utf8).write(to: policy)
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
}
