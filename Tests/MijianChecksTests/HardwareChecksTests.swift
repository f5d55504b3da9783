import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianChecks

/// Hand-built facts for the hardware rules.
enum HardwareFixtures {
    static let usbBus = "/sys/devices/pci0000:00/0000:00:14.0/usb1"
    static let release = "6.1.0-28-amd64"

    static func context(_ policy: Policy? = nil) throws -> CheckContext {
        CheckContext(policy: try policy ?? TestSupport.defaultPolicy(), hostID: "test-host", observedAt: TestSupport.fixedDate)
    }

    static func facts(_ hardware: HardwareFacts) -> AuditFacts {
        AuditFacts(root: "/fixture", live: false, observedAt: TestSupport.fixedDate, hardware: hardware)
    }

    /// Sources as a healthy machine reports them.
    static let okSources: [FactSource] = [
        FactSource(path: "/sys/bus/pci/devices", state: .ok, count: 3), FactSource(path: "/sys/bus/usb/devices", state: .ok, count: 4),
        FactSource(path: "/sys/class/net", state: .ok, count: 2), FactSource(path: "/sys/class/block", state: .ok, count: 1),
        FactSource(path: "/lib/modules/\(release)/modules.alias", state: .ok, count: 40),
        FactSource(path: "/lib/modules/\(release)/modules.dep", state: .ok, count: 40),
        FactSource(path: "/lib/modules/\(release)/modules.builtin", state: .ok, count: 5),
        FactSource(path: "/proc/modules", state: .ok, count: 10),
    ]

    static func keyboard() -> USBDevice {
        USBDevice(
            name: "1-3", sysfsPath: "\(usbBus)/1-3", vendor: "046d", product: "c31c", manufacturer: "Logitech", productName: "USB Keyboard",
            deviceClass: 0, deviceSubClass: 0, deviceProtocol: 0, driver: "usb",
            interfaces: [USBInterface(name: "1-3:1.0", sysfsPath: "\(usbBus)/1-3/1-3:1.0", interfaceClass: 3, interfaceSubClass: 1, interfaceProtocol: 1, driver: "usbhid", aliasMatches: ["usbhid"])])
    }

    static func realtekDongle(driver: String? = nil) -> USBDevice {
        USBDevice(
            name: "1-2", sysfsPath: "\(usbBus)/1-2", vendor: "0bda", product: "8179", serial: "00E04C0001", manufacturer: "Realtek",
            productName: "802.11n NIC", deviceClass: 0, deviceSubClass: 0, deviceProtocol: 0, driver: "usb",
            interfaces: [USBInterface(
                name: "1-2:1.0", sysfsPath: "\(usbBus)/1-2/1-2:1.0", interfaceClass: 0xFF, interfaceSubClass: 0xFF, interfaceProtocol: 0xFF,
                driver: driver, modalias: "usb:v0BDAp8179d0000dc00dsc00dp00icFFiscFFipFFin00", aliasMatches: ["r8188eu", "rtl8xxxu"])])
    }

    static func stick(serial: String? = "4C530001230615117204") -> USBDevice {
        let path = "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1"
        return USBDevice(
            name: "2-1", sysfsPath: path, vendor: "0781", product: "5583", serial: serial, manufacturer: "SanDisk", productName: "Ultra Fit",
            deviceClass: 0, deviceSubClass: 0, deviceProtocol: 0, driver: "usb",
            interfaces: [USBInterface(name: "2-1:1.0", sysfsPath: path + "/2-1:1.0", interfaceClass: 8, interfaceSubClass: 6, interfaceProtocol: 0x50, driver: "usb-storage", aliasMatches: ["usb_storage"])],
            blockDevices: [USBBlockDevice(name: "sdb", sysfsPath: path + "/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb")])
    }

    static let storageDisabled: [ModprobeDirective] = [
        ModprobeDirective(kind: .install, module: "usb_storage", argument: "/bin/false", file: "/etc/modprobe.d/s.conf", line: 1),
        ModprobeDirective(kind: .install, module: "uas", argument: "/bin/false", file: "/etc/modprobe.d/s.conf", line: 2),
    ]

    static let storageModules = [
        ModuleFile(name: "usb_storage", path: "kernel/drivers/usb/storage/usb-storage.ko", family: .storage),
        ModuleFile(name: "uas", path: "kernel/drivers/usb/storage/uas.ko", family: .storage),
    ]

    static func clean() -> HardwareFacts {
        HardwareFacts(
            kernelRelease: release, sources: okSources, usbDevices: [keyboard()],
            pciDevices: [PCIDevice(address: "0000:00:1f.6", sysfsPath: "/sys/devices/pci0000:00/0000:00:1f.6", classCode: 0x020000, vendor: "8086", device: "15bc", driver: "e1000e", aliasMatches: ["e1000e"])],
            loadedModules: ["e1000e", "usbhid"], modprobe: storageDisabled, availableModules: storageModules, aliasPatternCount: 40)
    }
}

@Suite("wireless.hardware")
struct WirelessHardwareCheckTests {
    @Test("a wired machine passes and says what it examined")
    func cleanPasses() throws {
        let findings = HardwareChecks.wirelessHardware(HardwareFixtures.facts(HardwareFixtures.clean()), try HardwareFixtures.context())
        #expect(findings.count == 1)
        let finding = try #require(findings.first)
        #expect(finding.status == .pass)
        #expect(finding.statusDetail.contains("1 PCI and 1 USB devices"))
        #expect(finding.statusDetail.contains("40 modules.alias patterns"))
        #expect(!finding.evidence.isEmpty)
    }

    @Test("a vendor-class (ff) Realtek dongle with no driver fails through modules.alias")
    func vendorClassDongle() throws {
        var hardware = HardwareFixtures.clean()
        hardware.usbDevices.append(HardwareFixtures.realtekDongle())
        hardware.availableModules.append(ModuleFile(name: "r8188eu", path: "kernel/drivers/staging/r8188eu/r8188eu.ko", family: .wifi))
        let findings = HardwareChecks.wirelessHardware(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        let fail = try #require(findings.first { $0.status == .fail })
        #expect(findings.count == 1)
        #expect(fail.subject == "\(HardwareFixtures.usbBus)/1-2")
        #expect(fail.statusDetail.contains("r8188eu (Wi-Fi)"))
        #expect(fail.statusDetail.contains("rtl8xxxu (Wi-Fi)"))
    }

    @Test("without modules.alias a driverless device makes the rule an error, not a pass")
    func missingAliasIsError() throws {
        var hardware = HardwareFixtures.clean()
        var dongle = HardwareFixtures.realtekDongle()
        dongle.interfaces[0].aliasMatches = []
        hardware.usbDevices.append(dongle)
        hardware.sources = hardware.sources.map { $0.path.hasSuffix("modules.alias") ? FactSource(path: $0.path, state: .missing) : $0 }
        let findings = HardwareChecks.wirelessHardware(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.error])
        #expect(findings.first?.statusDetail.contains("vendor-class Wi-Fi dongle") == true)
    }

    @Test("Wi-Fi card, phy, rfkill and netdev fold into one finding per device; a USB Bluetooth adapter is another")
    func laptop() throws {
        let wifiPath = "/sys/devices/pci0000:00/0000:00:14.3"
        var hardware = HardwareFixtures.clean()
        hardware.pciDevices.append(PCIDevice(address: "0000:00:14.3", sysfsPath: wifiPath, classCode: 0x028000, vendor: "8086", device: "a0f0", driver: "iwlwifi", aliasMatches: ["iwlwifi"]))
        let btPath = "\(HardwareFixtures.usbBus)/1-10"
        hardware.usbDevices.append(USBDevice(
            name: "1-10", sysfsPath: btPath, vendor: "8087", product: "0a2b", deviceClass: 0xE0, deviceSubClass: 1, deviceProtocol: 1,
            interfaces: [USBInterface(name: "1-10:1.0", sysfsPath: btPath + "/1-10:1.0", interfaceClass: 0xE0, interfaceSubClass: 1, interfaceProtocol: 1, driver: "btusb", aliasMatches: ["btusb"])]))
        hardware.wirelessEntries = [
            WirelessClassEntry(kind: .ieee80211, name: "phy0", classPath: "/sys/class/ieee80211/phy0", sysfsPath: wifiPath + "/ieee80211/phy0"),
            WirelessClassEntry(kind: .rfkill, name: "rfkill0", classPath: "/sys/class/rfkill/rfkill0", sysfsPath: wifiPath + "/ieee80211/phy0/rfkill0", rfkillType: "wlan", rfkillSoft: false, rfkillHard: false),
            WirelessClassEntry(kind: .netWireless, name: "wlan0", classPath: "/sys/class/net/wlan0", sysfsPath: wifiPath + "/net/wlan0"),
            WirelessClassEntry(kind: .bluetooth, name: "hci0", classPath: "/sys/class/bluetooth/hci0", sysfsPath: btPath + "/1-10:1.0/bluetooth/hci0"),
            WirelessClassEntry(kind: .rfkill, name: "rfkill9", classPath: "/sys/class/rfkill/rfkill9", sysfsPath: "/sys/devices/platform/thinkpad_acpi/rfkill/rfkill9", rfkillType: "bluetooth", rfkillSoft: true, rfkillHard: false),
        ]
        let findings = HardwareChecks.wirelessHardware(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.count == 3)
        #expect(findings.allSatisfy { $0.status == .fail })
        let wifi = try #require(findings.first { $0.subject == wifiPath })
        #expect(wifi.statusDetail.contains("PCI class 0x0280"))
        #expect(wifi.statusDetail.contains("driver iwlwifi bound (Wi-Fi)"))
        #expect(wifi.statusDetail.contains("ieee80211 phy0"))
        #expect(wifi.statusDetail.contains("rfkill rfkill0 type wlan"))
        #expect(wifi.statusDetail.contains("Wi-Fi interface wlan0"))
        let bt = try #require(findings.first { $0.subject == btPath })
        #expect(bt.statusDetail.contains("class e0/01/01 (Bluetooth)"))
        #expect(bt.statusDetail.contains("bluetooth hci0"))
        let platform = try #require(findings.first { $0.subject.hasPrefix("/sys/devices/platform") })
        #expect(platform.statusDetail.contains("soft-blocked"))
    }

    @Test("PCI class 0x0d11 (Bluetooth) fails even with no driver")
    func pciWirelessClass() throws {
        var hardware = HardwareFixtures.clean()
        hardware.pciDevices.append(PCIDevice(address: "0000:03:00.0", sysfsPath: "/sys/devices/pci0000:00/0000:03:00.0", classCode: 0x0D1100, vendor: "1234", device: "5678"))
        let findings = HardwareChecks.wirelessHardware(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.fail])
        #expect(findings.first?.statusDetail.contains("0x0d11 (Bluetooth)") == true)
    }

    @Test("an unreadable bus is an error and no sysfs at all is an error")
    func unreadable() throws {
        var hardware = HardwareFixtures.clean()
        hardware.sources[1] = FactSource(path: "/sys/bus/usb/devices", state: .error("cannot list: Permission denied"))
        var findings = HardwareChecks.wirelessHardware(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.error])
        #expect(findings.first?.subject == "/sys/bus/usb/devices")

        let empty = HardwareFacts(sources: [FactSource(path: "/sys/bus/pci/devices", state: .missing), FactSource(path: "/sys/class/net", state: .missing)])
        findings = HardwareChecks.wirelessHardware(HardwareFixtures.facts(empty), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.error])
        #expect(findings.first?.subject == "/sys")
    }
}

@Suite("wireless.modules")
struct WirelessModulesCheckTests {
    static let wifiModules = [
        ModuleFile(name: "iwlwifi", path: "kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko", family: .wifi),
        ModuleFile(name: "cfg80211", path: "kernel/net/wireless/cfg80211.ko", family: .wifi),
    ]
    static let btModules = [ModuleFile(name: "btusb", path: "kernel/drivers/bluetooth/btusb.ko", family: .bluetooth)]

    @Test("install /bin/false for every wireless driver passes")
    func allDisabled() throws {
        var hardware = HardwareFixtures.clean()
        hardware.availableModules += Self.wifiModules + Self.btModules
        hardware.modprobe += [
            ModprobeDirective(kind: .install, module: "iwlwifi", argument: "/bin/false", file: "/etc/modprobe.d/w.conf", line: 1),
            ModprobeDirective(kind: .install, module: "cfg80211", argument: "/bin/true", file: "/etc/modprobe.d/w.conf", line: 2),
            ModprobeDirective(kind: .install, module: "btusb", argument: "/usr/bin/false", file: "/etc/modprobe.d/w.conf", line: 3),
        ]
        let findings = HardwareChecks.wirelessModules(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.pass, .pass])
        #expect(Set(findings.map(\.subject)) == ["modules:wifi", "modules:bluetooth"])
    }

    @Test("blacklist alone fails and explains why; a missing directive fails; - and _ are one name")
    func blacklistVersusInstall() throws {
        var hardware = HardwareFixtures.clean()
        hardware.availableModules += Self.wifiModules + Self.btModules
        hardware.modprobe += [
            ModprobeDirective(kind: .blacklist, module: "iwlwifi", file: "/etc/modprobe.d/w.conf", line: 4),
            ModprobeDirective(kind: .install, module: "btusb", argument: "/bin/false", file: "/etc/modprobe.d/w.conf", line: 5),
        ]
        let findings = HardwareChecks.wirelessModules(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        let wifi = try #require(findings.first { $0.subject == "modules:wifi" })
        #expect(wifi.status == .fail)
        #expect(wifi.statusDetail.contains("1 not disabled at all (cfg80211)"))
        #expect(wifi.statusDetail.contains("1 only blacklisted (iwlwifi)"))
        #expect(wifi.statusDetail.contains("not `modprobe NAME`"))
        #expect(findings.first { $0.subject == "modules:bluetooth" }?.status == .pass)
        #expect(hardware.disposition(of: "usb-storage") == .disabled(HardwareFixtures.storageDisabled[0]))
    }

    @Test("a loaded driver fails, a built-in driver fails and says modprobe.d cannot disable it")
    func loadedAndBuiltin() throws {
        var hardware = HardwareFixtures.clean()
        hardware.loadedModules += ["btusb"]
        hardware.builtinModules = [ModuleFile(name: "cfg80211", path: "kernel/net/wireless/cfg80211.ko", family: .wifi)]
        let findings = HardwareChecks.wirelessModules(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        let loaded = try #require(findings.first { $0.subject == "module:btusb" })
        #expect(loaded.status == .fail)
        #expect(loaded.statusDetail.contains("Bluetooth driver btusb is loaded"))
        let builtin = try #require(findings.first { $0.subject == "builtin:cfg80211" })
        #expect(builtin.status == .fail)
        #expect(builtin.statusDetail.contains("modprobe.d cannot disable a built-in driver"))
    }

    @Test("a driver that matches a present device is named on its own")
    func deviceMatch() throws {
        var hardware = HardwareFixtures.clean()
        hardware.usbDevices.append(HardwareFixtures.realtekDongle())
        hardware.availableModules += [ModuleFile(name: "rtl8xxxu", path: "kernel/drivers/net/wireless/realtek/rtl8xxxu/rtl8xxxu.ko", family: .wifi)]
        hardware.modprobe.append(ModprobeDirective(kind: .blacklist, module: "rtl8xxxu", file: "/etc/modprobe.d/r.conf", line: 2))
        let findings = HardwareChecks.wirelessModules(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        let named = try #require(findings.first { $0.subject == "module:rtl8xxxu" })
        #expect(named.status == .fail)
        #expect(named.statusDetail.contains("only blacklisted at /etc/modprobe.d/r.conf:2"))
    }

    @Test("module_blacklist= on the kernel command line counts as disabled")
    func commandLine() throws {
        var hardware = HardwareFixtures.clean()
        hardware.availableModules += Self.btModules
        hardware.commandLineBlacklist = ["btusb"]
        let findings = HardwareChecks.wirelessModules(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.pass])
    }

    @Test("no modules.dep while modules load is an error; no wireless modules at all passes")
    func sources() throws {
        var hardware = HardwareFixtures.clean()
        var findings = HardwareChecks.wirelessModules(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.pass])
        #expect(findings.first?.subject == "host")
        hardware.sources = hardware.sources.map { $0.path.hasSuffix("modules.dep") ? FactSource(path: $0.path, state: .missing) : $0 }
        findings = HardwareChecks.wirelessModules(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.error])
    }
}

@Suite("usb.storage")
struct USBStorageCheckTests {
    @Test("a registered stick passes naming its label and responsible person; control on passes")
    func registered() throws {
        var hardware = HardwareFixtures.clean()
        hardware.usbDevices.append(HardwareFixtures.stick())
        var policy = try TestSupport.defaultPolicy()
        policy.ledger = [Policy.LedgerEntry(vendor: "0781", product: "5583", serial: "4C530001230615117204", label: "秘-U-0012", classification: .confidential, responsible: "张三")]
        let findings = HardwareChecks.usbStorage(HardwareFixtures.facts(hardware), try HardwareFixtures.context(policy))
        let stick = try #require(findings.first { $0.subject.hasSuffix("/2-1") })
        #expect(stick.status == .pass)
        #expect(stick.statusDetail.contains("label 秘-U-0012"))
        #expect(stick.statusDetail.contains("responsible 张三"))
        let control = try #require(findings.first { $0.subject == "usb-storage-control" })
        #expect(control.status == .pass)
    }

    @Test("an unregistered stick fails; a stick without a serial fails; storage control off fails on its own")
    func unregistered() throws {
        var hardware = HardwareFixtures.clean()
        hardware.usbDevices.append(HardwareFixtures.stick())
        var noSerial = HardwareFixtures.stick(serial: nil)
        noSerial.name = "2-2"
        noSerial.sysfsPath = "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-2"
        hardware.usbDevices.append(noSerial)
        hardware.modprobe = []
        hardware.loadedModules.append("usb_storage")
        let findings = HardwareChecks.usbStorage(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.first { $0.subject.hasSuffix("/2-1") }?.status == .fail)
        #expect(findings.first { $0.subject.hasSuffix("/2-1") }?.statusDetail.contains("not in the media ledger") == true)
        #expect(findings.first { $0.subject.hasSuffix("/2-2") }?.statusDetail.contains("no serial") == true)
        let control = try #require(findings.first { $0.subject == "usb-storage-control" })
        #expect(control.status == .fail)
        #expect(control.statusDetail.contains("usb_storage is loaded"))
        #expect(control.statusDetail.contains("uas is installed and not disabled"))
    }

    @Test("a ledger entry with another serial does not register the stick")
    func serialMatters() throws {
        var hardware = HardwareFixtures.clean()
        hardware.usbDevices.append(HardwareFixtures.stick())
        var policy = try TestSupport.defaultPolicy()
        policy.ledger = [Policy.LedgerEntry(vendor: "0781", product: "5583", serial: "OTHER")]
        let findings = HardwareChecks.usbStorage(HardwareFixtures.facts(hardware), try HardwareFixtures.context(policy))
        #expect(findings.first { $0.subject.hasSuffix("/2-1") }?.status == .fail)
    }

    @Test("built-in usb-storage cannot be controlled in modprobe.d")
    func builtinStorage() throws {
        var hardware = HardwareFixtures.clean()
        hardware.builtinModules = [ModuleFile(name: "usb_storage", path: "kernel/drivers/usb/storage/usb-storage.ko", family: .storage)]
        let findings = HardwareChecks.usbStorage(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.first { $0.subject == "host" }?.status == .pass)
        let control = try #require(findings.first { $0.subject == "usb-storage-control" })
        #expect(control.status == .fail)
        #expect(control.statusDetail.contains("built into the kernel"))
    }
}

@Suite("usb.phone")
struct USBPhoneCheckTests {
    static func device(_ vendor: String, _ interfaces: [(UInt8, UInt8, UInt8, String?)]) -> USBDevice {
        let path = "\(HardwareFixtures.usbBus)/1-2"
        return USBDevice(
            name: "1-2", sysfsPath: path, vendor: vendor, product: "4ee4", deviceClass: 0, deviceSubClass: 0, deviceProtocol: 0,
            interfaces: interfaces.enumerated().map { index, spec in
                USBInterface(name: "1-2:1.\(index)", sysfsPath: "\(path)/1-2:1.\(index)", interfaceClass: spec.0, interfaceSubClass: spec.1, interfaceProtocol: spec.2, interfaceString: spec.3)
            })
    }

    @Test("MTP, PTP, ADB, RNDIS, ECM, NCM and Apple devices fail; a keyboard passes", arguments: [
        ("18d1", [(UInt8(0xFF), UInt8(0xFF), UInt8(0x00), Optional("MTP"))], "(MTP)"),
        ("04a9", [(0x06, 0x01, 0x01, nil)], "PTP/MTP"),
        ("18d1", [(0xFF, 0x42, 0x01, "ADB Interface")], "Android Debug Bridge"),
        ("18d1", [(0xE0, 0x01, 0x03, nil), (0x0A, 0x00, 0x00, nil)], "RNDIS"),
        ("2717", [(0xEF, 0x04, 0x01, nil)], "RNDIS"),
        ("1234", [(0x02, 0x06, 0x00, nil)], "CDC ECM"),
        ("1234", [(0x02, 0x0D, 0x00, nil)], "CDC NCM"),
        ("05ac", [(0xFF, 0xFE, 0x02, nil)], "Apple"),
    ] as [(String, [(UInt8, UInt8, UInt8, String?)], String)])
    func phones(vendor: String, interfaces: [(UInt8, UInt8, UInt8, String?)], expected: String) throws {
        var hardware = HardwareFixtures.clean()
        hardware.usbDevices.append(Self.device(vendor, interfaces))
        let findings = HardwareChecks.usbPhone(HardwareFixtures.facts(hardware), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.fail])
        #expect(findings.first?.statusDetail.contains(expected) == true)
    }

    @Test("no phone passes and counts what it examined")
    func none() throws {
        let findings = HardwareChecks.usbPhone(HardwareFixtures.facts(HardwareFixtures.clean()), try HardwareFixtures.context())
        #expect(findings.map(\.status) == [.pass])
        #expect(findings.first?.statusDetail.contains("1 USB devices examined") == true)
    }
}

@Suite("driver families")
struct DriverFamilyTests {
    @Test("paths and names decide the family; - and _ are alike")
    func classify() {
        #expect(DriverFamily.classify(name: "foo", path: "kernel/drivers/net/wireless/foo/foo.ko.xz") == .wifi)
        #expect(DriverFamily.classify(name: "hci_foo", path: "kernel/drivers/bluetooth/hci_foo.ko") == .bluetooth)
        #expect(DriverFamily.classify(name: "t7", path: "kernel/drivers/net/wwan/t7xx/t7.ko") == .wwan)
        #expect(DriverFamily.classify(name: "bar", path: "updates/dkms/kernel/drivers/bluetooth/bar.ko") == .bluetooth)
        #expect(DriverFamily.classify(name: "usb-storage") == .storage)
        #expect(DriverFamily.classify(name: "qmi_wwan") == .wwan)
        #expect(DriverFamily.classify(name: "e1000e", path: "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko") == nil)
        #expect(DriverFamily.moduleName(fromPath: "kernel/drivers/usb/storage/usb-storage.ko.zst") == "usb_storage")
        #expect(ModprobeDirective(kind: .install, module: "x", argument: "/bin/true", file: "f", line: 1).disablesModule)
        #expect(!ModprobeDirective(kind: .install, module: "x", argument: "/sbin/modprobe --ignore-install x", file: "f", line: 1).disablesModule)
    }
}
