#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// `hardware.channels` on the fixture hosts: what the probe sees and what the rule decides.
@Suite("hardware.channels")
struct ChannelTests {
    static func channels(_ name: String, root: HostRoot? = nil) -> ChannelFacts {
        ChannelProbe.observe(root: root ?? FixtureHosts.root(name), live: false, logger: FixtureHosts.logger)
    }

    static func policy(allow: String = "[]") throws -> Policy {
        var text = EmbeddedPolicies.classifiedWorkstation
        // The channels block's own line (other blocks have an `allow:` too).
        let line = "  allow: []                    # channels this unit keeps"
        #expect(text.contains(line))
        text = text.replacingOccurrences(of: line, with: "  allow: \(allow)                    # channels this unit keeps")
        #expect(text.contains("allow: \(allow)"))
        return try Policy.parse(Array(text.utf8), file: "channels.yaml")
    }

    static func findings(_ name: String, policy: Policy, root: HostRoot? = nil) -> [Finding] {
        let facts = HostProbe.observe(
            root: root ?? FixtureHosts.root(name), live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate, collecting: [.channels])
        let context = CheckContext(policy: policy, hostID: "channels", observedAt: TestSupport.fixedDate)
        return AuditChecks.evaluate(facts, context: context, only: ["hardware.channels"])
    }

    static func status(_ findings: [Finding], _ subjectSuffix: String) -> Status? {
        findings.first { $0.subject.hasSuffix(subjectSuffix) }?.status
    }

    @Test("a UART is a serial port; a ttyS of type 0 is the kernel's placeholder, not a port")
    func serialPorts() throws {
        let desk = Self.channels("serial-parallel-firewire")
        let serial = desk.devices.filter { $0.kind == .serial }
        #expect(serial.map(\.name) == ["ttyS0"])
        #expect(serial.first?.sysfsPath == "/sys/devices/pnp0/00:05/tty/ttyS0")
        #expect(serial.first?.driver == "serial")
        #expect(serial.first?.attributes.first { $0.0 == "port" }?.1 == "0x3F8")
        #expect(desk.placeholderPorts == ["ttyS1", "ttyS2", "ttyS3"])

        let wired = Self.channels("wired-desktop")
        #expect(wired.devices.isEmpty)
        #expect(wired.placeholderPorts == ["ttyS0", "ttyS1", "ttyS2", "ttyS3"])
        let findings = Self.findings("wired-desktop", policy: try Self.policy())
        #expect(!findings.isEmpty && findings.allSatisfy { $0.status == .pass }, "\(findings.map { "\($0.subject) \($0.status)" })")
        #expect(findings.contains { $0.subject == "host" && $0.statusDetail.contains("4 ttyS entries have UART type 0") })
    }

    @Test("parallel ports, lp, FireWire and a CardBus socket are present and fail; their loaded drivers fail")
    func parallelFireWirePCMCIA() throws {
        let facts = Self.channels("serial-parallel-firewire")
        #expect(Set(facts.devices.map(\.kind)) == [.serial, .parallel, .firewire, .pcmcia])
        #expect(facts.devices.first { $0.name == "parport0" }?.driver == "parport_pc")
        #expect(facts.devices.first { $0.name == "fw0" }?.sysfsPath == "/sys/devices/pci0000:00/0000:05:00.0/fw0")
        let findings = Self.findings("serial-parallel-firewire", policy: try Self.policy())
        for subject in ["/tty/ttyS0", "/parport0", "/lp0", "/fw0", "/pcmcia_socket0", "module:parport_pc", "module:firewire_ohci", "modules:parallel"] {
            #expect(Self.status(findings, subject) == .fail, "\(subject)")
        }
        #expect(!findings.contains { $0.status == .pass && !$0.subject.hasPrefix("modules:") })
        // Allowed, the serial port is listed as a pass; the rest still fail.
        let allowed = Self.findings("serial-parallel-firewire", policy: try Self.policy(allow: "[serial, parallel]"))
        #expect(Self.status(allowed, "/tty/ttyS0") == .pass)
        #expect(Self.status(allowed, "/parport0") == .pass)
        #expect(Self.status(allowed, "module:parport_pc") == nil)
        #expect(Self.status(allowed, "/fw0") == .fail)
    }

    @Test("a CDC-ACM modem and a WWAN driver's serial ports are modems; a PL2303 is a USB serial adapter")
    func usbModemsAndAdapters() throws {
        let facts = Self.channels("usb-modem-serial")
        let acm = try #require(facts.devices.first { $0.name == "ttyACM0" })
        #expect(acm.kind == .modem && acm.driver == "cdc_acm")
        let adapter = try #require(facts.devices.first { $0.name == "ttyUSB0" })
        #expect(adapter.kind == .usbSerial && adapter.driver == "pl2303")
        #expect(adapter.attributes.first { $0.0 == "idVendor" }?.1 == "067b")
        let quectel = Self.channels("cellular-modem").devices
        #expect(quectel.map(\.name) == ["ttyUSB0", "ttyUSB1", "ttyUSB2", "ttyUSB3"])
        #expect(quectel.allSatisfy { $0.kind == .modem })

        // No policy allows a modem: even a policy allowing every other kind fails it.
        let policy = try Self.policy(allow: "[usb-serial]")
        let findings = Self.findings("usb-modem-serial", policy: policy)
        #expect(Self.status(findings, "/ttyACM0") == .fail)
        #expect(findings.first { $0.subject.hasSuffix("/ttyACM0") }?.statusDetail.contains("no policy may allow it") == true)
        #expect(Self.status(findings, "/tty/ttyUSB0") == .pass)
        #expect(Self.status(Self.findings("cellular-modem", policy: policy), "/tty/ttyUSB2") == .fail)
    }

    @Test("an optical writer and a reader: the allow list decides, a writer allowance covers a reader")
    func opticalDrives() throws {
        let facts = Self.channels("optical-drives")
        #expect(facts.devices.map(\.name) == ["sr0", "sr1", "0000:04:00.0"])
        #expect(facts.devices.map(\.kind) == [.opticalWrite, .opticalRead, .firewire])
        let none = Self.findings("optical-drives", policy: try Self.policy())
        #expect(Self.status(none, "/sr0") == .fail && Self.status(none, "/sr1") == .fail)
        #expect(Self.status(none, "module:sr_mod") == .fail)

        let read = Self.findings("optical-drives", policy: try Self.policy(allow: "[optical-read]"))
        #expect(Self.status(read, "/sr0") == .fail)
        #expect(Self.status(read, "/sr1") == .pass)
        #expect(Self.status(read, "module:sr_mod") == nil)
        #expect(Self.status(read, "modules:optical-read") == .pass)
        #expect(read.first { $0.subject.hasSuffix("/sr0") }?.statusDetail.contains("CD-R, CD-RW, DVD-R") == true)

        let write = Self.findings("optical-drives", policy: try Self.policy(allow: "[optical-write, firewire]"))
        #expect(Self.status(write, "/sr0") == .pass && Self.status(write, "/sr1") == .pass)
        #expect(!write.contains { $0.status != .pass })
    }

    @Test("a drive whose capabilities cannot be read is taken for a writer, and the read is an error")
    func cdromInfoRefused() throws {
        let root = FixtureHosts.root("optical-drives").refusing(ChannelProbe.cdromInfo)
        let facts = Self.channels("optical-drives", root: root)
        #expect(facts.devices.map(\.kind) == [.opticalWrite, .opticalWrite, .firewire])
        let findings = Self.findings("optical-drives", policy: try Self.policy(allow: "[optical-read]"), root: root)
        #expect(Self.status(findings, ChannelProbe.cdromInfo) == .error)
        #expect(Self.status(findings, "/sr1") == .fail)
        #expect(!findings.contains { $0.subject.hasSuffix("/sr1") && $0.status == .pass })
    }

    @Test("a UART whose type cannot be read is an error, never a pass or a placeholder")
    func uartTypeRefused() throws {
        let root = FixtureHosts.root("wired-desktop").refusing("/sys/devices/platform/serial8250/tty/ttyS2/type")
        let facts = Self.channels("wired-desktop", root: root)
        #expect(facts.placeholderPorts == ["ttyS0", "ttyS1", "ttyS3"])
        let findings = Self.findings("wired-desktop", policy: try Self.policy(allow: "[serial]"), root: root)
        let ttyS2 = try #require(findings.first { $0.subject.hasSuffix("/ttyS2") })
        #expect(ttyS2.status == .error)
        #expect(ttyS2.statusDetail.contains(MijianError.strerror(EACCES)))
        #expect(!findings.contains { $0.subject == "host" })
    }

    @Test("a FireWire controller without a driver is still a channel; one with fw0 below it is named once")
    func pciControllers() throws {
        let findings = Self.findings("optical-drives", policy: try Self.policy(allow: "[optical-write]"))
        let controller = try #require(findings.first { $0.subject == "/sys/devices/pci0000:00/0000:04:00.0" })
        #expect(controller.status == .fail)
        #expect(controller.statusDetail.contains("IEEE 1394 (FireWire) controller, no driver bound"))
        let desk = Self.channels("serial-parallel-firewire").devices
        #expect(!desk.contains { $0.name.hasPrefix("0000:") })
        // A PCI class that cannot be read is an error: the function could be a FireWire controller.
        let refused = FixtureHosts.root("wired-desktop").refusing("/sys/devices/pci0000:00/0000:00:1f.6/class")
        let errors = Self.findings("wired-desktop", policy: try Self.policy(), root: refused)
        #expect(Self.status(errors, "/0000:00:1f.6") == .error)
        #expect(!errors.contains { $0.subject == "host" })
    }

    @Test("without sysfs the channels are not vouched for")
    func noSysfs() throws {
        let dir = try TestSupport.temporaryDirectory("mijian-channels")
        let findings = Self.findings("", policy: try Self.policy(), root: HostRoot(path: dir.path))
        #expect(findings.contains { $0.subject == "/sys/class/tty" && $0.status == .error })
        #expect(!findings.contains { $0.status == .pass })
    }

    @Test("/proc/sys/dev/cdrom/info: one column per drive")
    func cdromTable() {
        let text = "CD-ROM information, Id: cdrom.c 3.20 2003/12/17\n\ndrive name:\t\tsr1\tsr0\nCan write CD-R:\t\t0\t1\nCan read DVD:\t\t1\t1\n\n"
        let table = ChannelProbe.parseCDROMInfo(text)
        #expect(table["sr0"]?.first { $0.0 == "Can write CD-R" }?.1 == "1")
        #expect(table["sr1"]?.first { $0.0 == "Can write CD-R" }?.1 == "0")
    }

    @Test("channels.allow: kinds by name; modems and IrDA are refused at their line")
    func policyAllowList() throws {
        #expect(try Self.policy(allow: "[optical-read, serial]").channelsAllow == [.opticalRead, .serial])
        #expect(try Self.policy().channelsAllow.isEmpty)
        for (value, words) in [("[modem]", "cannot be allowed"), ("[irda]", "cannot be allowed"), ("[burner]", "is not a channel")] {
            do {
                _ = try Self.policy(allow: value)
                Issue.record("\(value) was accepted")
            } catch let error as MijianError {
                #expect(error.message.contains(words), "\(error.message)")
                #expect(error.message.contains("channels.allow[0]"), "\(error.message)")
            }
        }
    }
}
