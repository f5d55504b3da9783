import Foundation
import Logging
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// The fixture host trees, read from the source tree so their symbolic links stay links.
enum FixtureHosts {
    static let names = [
        "wired-desktop", "laptop-wifi-bt", "usb-stick-registered", "usb-stick-unregistered", "phone-tethering", "cellular-modem",
        "wifi-vendor-class", "serial-parallel-firewire", "usb-modem-serial", "optical-drives",
    ]

    static func root(_ name: String) -> HostRoot {
        HostRoot(path: TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/\(name)").path)
    }

    static let logger = Logger(label: "mijian.test")

    static func hardware(_ name: String) -> HardwareFacts {
        HardwareProbe.observe(root: root(name), live: false, logger: logger)
    }
}

@Suite("glob and modules.alias")
struct ModuleAliasTests {
    @Test("fnmatch patterns: *, ?, sets, ranges, negation")
    func glob() {
        #expect(Glob.matches(pattern: "usb:v0BDAp8179d*dc*dsc*dp*icFFiscFFipFFin*", text: "usb:v0BDAp8179d0000dc00dsc00dp00icFFiscFFipFFin00"))
        #expect(!Glob.matches(pattern: "usb:v0BDAp8179d*dc*dsc*dp*icFFiscFFipFFin*", text: "usb:v0BDAp8178d0000dc00dsc00dp00icFFiscFFipFFin00"))
        #expect(Glob.matches(pattern: "a?c", text: "abc"))
        #expect(!Glob.matches(pattern: "a?c", text: "ac"))
        #expect(Glob.matches(pattern: "d0[0-2]*", text: "d01x"))
        #expect(!Glob.matches(pattern: "d0[0-2]*", text: "d03x"))
        #expect(Glob.matches(pattern: "x[!F]y", text: "xAy"))
        #expect(!Glob.matches(pattern: "x[!F]y", text: "xFy"))
        #expect(Glob.matches(pattern: "*", text: ""))
        #expect(Glob.matches(pattern: "a*b*c", text: "aXXbYYbc"))
        #expect(!Glob.matches(pattern: "a*b*c", text: "aXXbYYbd"))
        #expect(Glob.matches(pattern: "a[b", text: "a[b"))
    }

    @Test("the index finds vendor-keyed and class-keyed patterns, USB and PCI, and skips other buses")
    func index() {
        let text = """
            alias usb:v0BDAp8179d*dc*dsc*dp*icFFiscFFipFFin* rtl8xxxu
            alias usb:v0BDAp8179d*dc*dsc*dp*ic*isc*ip*in* r8188eu
            alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb-storage
            alias usb:v*p*d*dc*dsc*dp*icE0isc01ip01in* btusb
            alias pci:v00008086d0000A0F0sv*sd00000244bc*sc*i* iwlwifi
            alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
            alias of:N*T*Csnps,dwc3 dwc3
            alias usb:v0BD[A-C]p81??d*dc*dsc*dp*ic*isc*ip*in* ranged
            """
        let index = ModuleAliasIndex(bytes: Array(text.utf8))
        #expect(index.count == 7)
        #expect(index.modules(matching: "usb:v0BDAp8179d0000dc00dsc00dp00icFFiscFFipFFin00") == ["r8188eu", "ranged", "rtl8xxxu"])
        #expect(index.modules(matching: "usb:v0781p5583d0100dc00dsc00dp00ic08isc06ip50in00") == ["usb_storage"])
        #expect(index.modules(matching: "usb:v8087p0A2Bd0010dcE0dsc01dp01icE0isc01ip01in00") == ["btusb"])
        #expect(index.modules(matching: "pci:v00008086d0000A0F0sv00008086sd00000244bc02sc80i00") == ["iwlwifi"])
        #expect(index.modules(matching: "pci:v00008086d0000A36Dsv000017AAsd00005097bc0Csc03i30") == ["xhci_pci"])
        #expect(index.modules(matching: "of:NdwcT(null)Csnps,dwc3").isEmpty)
    }

    @Test("modprobe.d: comments, continuation lines, - and _ alike, install commands")
    func modprobe() {
        let text = "# comment\nblacklist iwl-wifi # why\ninstall usb-storage \\\n  /bin/false\noptions btusb enable_autosuspend=0\nalias usb:v0BDA* off\n"
        let directives = ModprobeConfig.parse(text, file: "/etc/modprobe.d/x.conf")
        #expect(directives.count == 4)
        #expect(directives[0].kind == .blacklist && directives[0].module == "iwl_wifi" && directives[0].line == 2)
        #expect(directives[1].kind == .install && directives[1].module == "usb_storage" && directives[1].line == 3)
        #expect(directives[1].disablesModule)
        #expect(directives[3].kind == .alias && directives[3].module == "usb:v0BDA*")
        #expect(directives[1].argument == "/bin/false")
        #expect(directives[2].argument == "enable_autosuspend=0")
    }

    /// kmod splits lines at LF and words at space and tab only: a CR stays in the last word, so a
    /// file with CRLF line ends blacklists `btusb\r` and installs `/bin/false\r` (which the shell
    /// cannot find). Every line is read, and none of them counts as disabling a module.
    @Test("modprobe.d: CRLF line ends are lines, and the CR stays in the last word as kmod keeps it")
    func modprobeCRLF() {
        let text = "blacklist btusb\r\ninstall usb-storage /bin/false\r\noptions iwlwifi 11n_disable=1 \\\r\nblacklist cfg80211\n"
        let directives = ModprobeConfig.parse(text, file: "/etc/modprobe.d/dos.conf")
        #expect(directives.map(\.kind) == [.blacklist, .install, .options, .blacklist])
        #expect(directives.map(\.line) == [1, 2, 3, 4])
        #expect(directives.first?.module == "btusb\r")
        #expect(directives[1].module == "usb_storage" && directives[1].argument == "/bin/false\r")
        #expect(!directives[1].disablesModule)
        // `\` before CR is not a continuation for kmod either.
        #expect(directives[2].argument == "11n_disable=1 \\\r")
        #expect(directives[3].module == "cfg80211")
    }

    @Test("modprobe.d: a directive over three lines keeps its first line and every word, once")
    func modprobeContinuations() {
        let text = "options\tbtusb \\\n  reset=1 \\\n\tenable_autosuspend=0   # a comment\ninstall  iwlwifi   /bin/true  --x\n"
        let directives = ModprobeConfig.parse(text, file: "/etc/modprobe.d/y.conf")
        #expect(directives.count == 2)
        #expect(directives.first?.kind == .options && directives.first?.module == "btusb" && directives.first?.line == 1)
        #expect(directives.first?.argument == "reset=1 enable_autosuspend=0")
        #expect(directives.last?.argument == "/bin/true --x" && directives.last?.line == 4)
    }
}

@Suite("modprobe.d precedence")
struct ModprobePrecedenceTests {
    @Test("a file in /etc/modprobe.d hides the same name in /lib/modprobe.d; files are read in name order")
    func precedence() throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (path, text) in [
            ("lib/modprobe.d/wireless.conf", "install btusb /bin/false\n"), ("etc/modprobe.d/wireless.conf", "blacklist btusb\n"),
            ("lib/modprobe.d/00-first.conf", "install iwlwifi /bin/false\n"), ("etc/modprobe.d/zz-last.conf", "install iwlwifi /bin/echo\n"),
            ("etc/modprobe.d/notes.txt", "install cfg80211 /bin/false\n"),
        ] {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: false, encoding: .utf8)
        }
        var sources: [FactSource] = []
        let directives = ModprobeConfig.read(root: HostRoot(path: directory.path), sources: &sources)
        #expect(directives.map(\.location) == ["/lib/modprobe.d/00-first.conf:1", "/etc/modprobe.d/wireless.conf:1", "/etc/modprobe.d/zz-last.conf:1"])
        let facts = HardwareFacts(modprobe: directives)
        #expect(facts.disposition(of: "iwlwifi") == .disabled(directives[0]))
        #expect(facts.disposition(of: "btusb") == .blacklisted(directives[1]))
        #expect(facts.disposition(of: "cfg80211") == .loadable)
        #expect(sources.contains { $0.path == "/run/modprobe.d" && $0.state == .missing })
    }
}

@Suite("hardware probe over fixture trees")
struct HardwareProbeTests {
    @Test("wired desktop: PCI, USB keyboard and mouse, no radios, everything disabled, sources read")
    func wiredDesktop() throws {
        let facts = FixtureHosts.hardware("wired-desktop")
        #expect(facts.kernelRelease == "6.1.0-28-amd64")
        #expect(facts.pciDevices.map(\.address) == ["0000:00:00.0", "0000:00:14.0", "0000:00:17.0", "0000:00:1f.6"])
        let ethernet = try #require(facts.pciDevices.first { $0.address == "0000:00:1f.6" })
        #expect(ethernet.classCode == 0x020000 && ethernet.driver == "e1000e" && ethernet.aliasMatches == ["e1000e"])
        #expect(ethernet.sysfsPath == "/sys/devices/pci0000:00/0000:00:1f.6")
        let keyboard = try #require(facts.usbDevices.first { $0.name == "1-3" })
        #expect(keyboard.vendor == "046d" && keyboard.product == "c31c" && keyboard.serial == nil)
        #expect(keyboard.interfaces.map(\.driver) == ["usbhid", "usbhid"])
        #expect(keyboard.interfaces.first?.aliasMatches == ["usbhid"])
        #expect(facts.usbDevices.filter(\.isRootHub).count == 2)
        #expect(facts.wirelessEntries.isEmpty)
        #expect(facts.loadedModules.contains("e1000e"))
        #expect(facts.disposition(of: "iwlwifi") != .loadable)
        #expect(facts.disposition(of: "usb-storage") != .loadable)
        #expect(facts.availableModules.contains { $0.name == "usb_storage" && $0.family == .storage })
        #expect(facts.availableModules.contains { $0.name == "r8188eu" && $0.family == .wifi })
        #expect(facts.source("/sys/bus/usb/devices")?.state == .ok)
        #expect(facts.source("/lib/modules/6.1.0-28-amd64/modules.alias")?.state == .ok)
        #expect(facts.aliasPatternCount > 40)
        #expect(facts.notes.isEmpty)
    }

    @Test("laptop: Intel Wi-Fi on PCI 0x0280 with iwlwifi, phy0, wlan netdev, rfkill; USB Bluetooth 8087:0a2b with btusb and hci0")
    func laptop() throws {
        let facts = FixtureHosts.hardware("laptop-wifi-bt")
        let wifi = try #require(facts.pciDevices.first { $0.address == "0000:00:14.3" })
        #expect(wifi.classAndSubclass == 0x0280 && wifi.driver == "iwlwifi" && wifi.aliasMatches == ["iwlwifi"])
        let bt = try #require(facts.usbDevices.first { $0.name == "1-10" })
        #expect(bt.ids == "8087:0a2b" && bt.deviceClass == 0xE0)
        #expect(bt.interfaces.count == 2)
        #expect(bt.interfaces.allSatisfy { $0.isClass(0xE0, 0x01, 0x01) && $0.driver == "btusb" && $0.aliasMatches == ["btusb"] })
        let kinds = facts.wirelessEntries.map { "\($0.kind.rawValue):\($0.name)" }.sorted()
        #expect(kinds == ["bluetooth:hci0", "ieee80211:phy0", "net-wireless:wlp0s20f3", "rfkill:rfkill0", "rfkill:rfkill1"])
        let rfkill1 = try #require(facts.wirelessEntries.first { $0.name == "rfkill1" })
        #expect(rfkill1.rfkillType == "bluetooth" && rfkill1.rfkillSoft == true && rfkill1.rfkillHard == false)
        #expect(rfkill1.sysfsPath == "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-10/1-10:1.0/bluetooth/hci0/rfkill1")
        #expect(facts.loadedModules.contains("iwlwifi") && facts.loadedModules.contains("btusb"))
        if case .blacklisted(let directive) = facts.disposition(of: "btusb") {
            #expect(directive.location == "/etc/modprobe.d/bluetooth.conf:2")
        } else {
            Issue.record("btusb should be blacklisted only")
        }
    }

    @Test("USB sticks: usb-storage bound, sdb under the USB path, partitions not counted twice")
    func sticks() throws {
        for (name, serial) in [("usb-stick-registered", "4C530001230615117204"), ("usb-stick-unregistered", "E0D55EA574E5F350A9C1003F")] {
            let facts = FixtureHosts.hardware(name)
            let stick = try #require(facts.usbDevices.first { $0.name == "2-1" })
            #expect(stick.serial == serial)
            #expect(stick.interfaces.first?.isClass(0x08, 0x06, 0x50) == true)
            #expect(stick.interfaces.first?.driver == "usb-storage")
            #expect(stick.interfaces.first?.aliasMatches == ["usb_storage"])
            #expect(stick.blockDevices.map(\.name) == ["sdb"])
            #expect(stick.blockDevices.first?.sysfsPath == "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb")
            #expect(facts.strayUSBBlockDevices.isEmpty)
            #expect(facts.loadedModules.contains("usb_storage"))
        }
    }

    @Test("phone tethering: RNDIS e0/01/03 bound to rndis_host, ADB ff/42/01, usb0 not a wireless netdev")
    func phone() throws {
        let facts = FixtureHosts.hardware("phone-tethering")
        let phone = try #require(facts.usbDevices.first { $0.name == "1-2" })
        #expect(phone.ids == "18d1:4ee4")
        #expect(phone.interfaces.map(\.classTriple) == ["e0/01/03", "0a/00/00", "ff/42/01"])
        #expect(phone.interfaces.first?.driver == "rndis_host")
        #expect(phone.interfaces.first?.aliasMatches == ["rndis_host"])
        #expect(phone.interfaces.last?.interfaceString == "ADB Interface")
        #expect(facts.wirelessEntries.isEmpty)
        #expect(FixtureHosts.root("phone-tethering").resolve("/sys/class/net/usb0/device") == phone.interfaces.first?.sysfsPath)
    }

    @Test("cellular modem: Quectel 2c7c:0125 with option and qmi_wwan, wwan0 netdev")
    func modem() throws {
        let facts = FixtureHosts.hardware("cellular-modem")
        let modem = try #require(facts.usbDevices.first { $0.name == "1-6" })
        #expect(modem.ids == "2c7c:0125")
        #expect(modem.interfaces.map { $0.driver ?? "-" } == ["option", "option", "option", "option", "qmi_wwan"])
        #expect(modem.interfaces.last?.aliasMatches == ["option", "qmi_wwan"])
        #expect(facts.wirelessEntries.map(\.kind) == [.netWWAN])
        #expect(facts.wirelessEntries.first?.sysfsPath?.hasPrefix(modem.sysfsPath + "/") == true)
        #expect(facts.disposition(of: "qmi_wwan") == .loadable)
    }

    @Test("vendor-class dongle: no driver, no class entry, matched only by modules.alias; lib80211 built in")
    func vendorClass() throws {
        let facts = FixtureHosts.hardware("wifi-vendor-class")
        let dongle = try #require(facts.usbDevices.first { $0.name == "1-2" })
        #expect(dongle.ids == "0bda:8179")
        #expect(dongle.interfaces.first?.driver == nil)
        #expect(dongle.interfaces.first?.isClass(0xFF, 0xFF, 0xFF) == true)
        #expect(dongle.interfaces.first?.aliasMatches == ["r8188eu", "rtl8xxxu"])
        #expect(facts.wirelessEntries.isEmpty)
        #expect(facts.builtinModules.map(\.name) == ["lib80211"])
    }

    @Test("a bus link that no longer resolves is skipped with a note, not a crash")
    func vanished() throws {
        let directory = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let manager = FileManager.default
        let device = directory.appendingPathComponent("sys/devices/pci0000:00/0000:00:14.0/usb1")
        try manager.createDirectory(at: device, withIntermediateDirectories: true)
        try "1d6b\n".write(to: device.appendingPathComponent("idVendor"), atomically: false, encoding: .utf8)
        let bus = directory.appendingPathComponent("sys/bus/usb/devices")
        try manager.createDirectory(at: bus, withIntermediateDirectories: true)
        try manager.createSymbolicLink(atPath: bus.appendingPathComponent("usb1").path, withDestinationPath: "../../../devices/pci0000:00/0000:00:14.0/usb1")
        try manager.createSymbolicLink(atPath: bus.appendingPathComponent("1-9").path, withDestinationPath: "../../../devices/pci0000:00/0000:00:14.0/usb1/1-9")
        let facts = HardwareProbe.observe(root: HostRoot(path: directory.path), live: false, logger: FixtureHosts.logger)
        #expect(facts.usbDevices.map(\.name) == ["usb1"])
        #expect(facts.notes.contains { $0.contains("1-9") && $0.contains("skipped") })
        #expect(facts.source("/sys/bus/pci/devices")?.state == .missing)
    }

    @Test("the live probe runs on this machine without failing a source it can reach")
    func live() throws {
        let facts = HardwareProbe.observe(root: .live, live: true, logger: FixtureHosts.logger)
        #expect(!facts.kernelRelease.isEmpty)
        let pci = try #require(facts.source("/sys/bus/pci/devices"))
        #expect(pci.errorReason == nil)
        if pci.state == .ok { #expect(facts.pciDevices.count == pci.count - facts.notes.filter { $0.contains("/sys/bus/pci") }.count) }
        #expect(facts.source("/sys/class/net")?.state == .ok)
        let history = HistoryProbe.observe(root: .live, live: true, logger: FixtureHosts.logger)
        #expect(history.sources.contains { $0.path == "/var/log" })
    }
}
