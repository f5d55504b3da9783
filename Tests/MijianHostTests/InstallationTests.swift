#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// `host.installation` on the fixture hosts `install-*` (built by
/// `scripts/fixtures/make-install-hosts.py`): what the probe reads and what the rule decides.
@Suite("host.installation")
struct InstallationTests {
    static func facts(_ name: String, root: HostRoot? = nil) -> InstallationFacts {
        InstallationProbe.observe(root: root ?? FixtureHosts.root(name), live: false, logger: FixtureHosts.logger)
    }

    static func findings(_ name: String, root: HostRoot? = nil) throws -> [Finding] {
        let facts = HostProbe.observe(
            root: root ?? FixtureHosts.root(name), live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate, collecting: [.installation])
        let context = CheckContext(policy: try TestSupport.defaultPolicy(), hostID: "installation", observedAt: TestSupport.fixedDate)
        return AuditChecks.evaluate(facts, context: context, only: ["host.installation"])
    }

    static func date(_ text: String) -> Date? { RFC3339.date(from: text) }

    /// A copy of a fixture host in a temporary directory, so file times can be set.
    static func copy(_ name: String) throws -> URL {
        let directory = try TestSupport.temporaryDirectory("mijian-install")
        let target = directory.appendingPathComponent(name)
        try FileManager.default.copyItem(at: TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/\(name)"), to: target)
        return target
    }

    @Test("the installer's log dates the installation; the rotated gzip package log agrees; the root directory of a fixture is not a file system")
    func installerLogDates() throws {
        let facts = Self.facts("install-dualboot")
        #expect(facts.installedAt == Self.date("2026-03-15T09:01:02Z"))
        #expect(facts.installedAtSource?.kind == .installerLog)
        #expect(facts.installedAtSource?.source == "/var/log/installer/syslog")
        #expect(facts.installedAtSource?.detail.contains("media-info") == true)
        let dpkg = facts.clues.first { $0.kind == .dpkgLog }
        #expect(dpkg?.date == Self.date("2026-03-15T09:07:44Z"))
        #expect(dpkg?.source == "/var/log/dpkg.log.2.gz")
        #expect(facts.reinstalledAt == nil)
        #expect(!facts.clues.contains { $0.kind == .rootBirth })
        #expect(facts.notes.contains { $0.contains("not taken as an installation date") })
        #expect(facts.clues.contains { $0.kind == .machineID && $0.source == "/etc/machine-id" })
        #expect(!facts.sources.contains { $0.errorReason != nil }, "\(facts.sources.filter { $0.errorReason != nil })")
    }

    @Test("the year of a year-less installer syslog is the medium's, or the next one when the day falls before its build")
    func syslogYear() {
        let build = Self.date("2026-12-20T00:00:00Z")
        let text = "Jan  3 09:01:02 syslogd started: BusyBox v1.35.0\n"
        #expect(InstallationParsers.firstInstallerDate(text, notBefore: build, fallbackYear: 1999) == Self.date("2027-01-03T09:01:02Z"))
        #expect(InstallationParsers.firstInstallerDate("Dec 24 10:00:00 main-menu[1]: x\n", notBefore: build, fallbackYear: 1999) == Self.date("2026-12-24T10:00:00Z"))
        #expect(InstallationParsers.firstInstallerDate("no stamp here\n", notBefore: build, fallbackYear: 1999) == nil)
        #expect(InstallationParsers.firstInstallerDate("2024-04-25 10:12:13,123 DEBUG subiquity\n", notBefore: nil, fallbackYear: 1999) == Self.date("2024-04-25T10:12:13Z"))
    }

    @Test("os-prober's Windows entry and the firmware's Windows Boot Manager are other systems and fail; Debian's own, PXE and firmware settings are not")
    func otherSystems() throws {
        let facts = Self.facts("install-dualboot")
        #expect(facts.otherSystems.map(\.origin) == [.grub, .efi, .systemPartition])
        #expect(facts.otherSystems.first?.name == "Windows Boot Manager (on /dev/nvme0n1p1)")
        #expect(facts.otherSystems.first?.detail.contains("chainloader /efi/Microsoft/Boot/bootmgfw.efi") == true)
        #expect(facts.otherSystems[1].name == "Windows Boot Manager")
        #expect(facts.otherSystems[1].detail.contains("Boot0001") == true)
        #expect(facts.otherSystems[1].detail.contains("\\EFI\\Microsoft\\Boot\\bootmgfw.efi") == true)
        // Ubuntu's loaders left on the system partition with no firmware entry; Windows' loader
        // directory is not named twice, Debian's own and the fallback BOOT are not others.
        #expect(facts.otherSystems[2].name == "\\EFI\\ubuntu")
        #expect(facts.otherSystems[2].detail == "loaders on the EFI system partition: grubx64.efi, shimx64.efi")
        let findings = try Self.findings("install-dualboot")
        let fails = findings.filter { $0.status == .fail }
        #expect(fails.count == 3)
        #expect(fails.allSatisfy { $0.statusDetail.contains("Another operating system can be booted") })
        #expect(!findings.contains { $0.status == .error || $0.status == .pass })

        let single = Self.facts("install-vm-host")
        #expect(single.otherSystems.isEmpty, "the same grub.cfg without os-prober's entry, a system partition with Debian's and the fallback loader: \(single.otherSystems)")
    }

    @Test("EFI_LOAD_OPTION: the UTF-16 description and the media file path node")
    func loadOption() throws {
        let path = FixtureHosts.root("install-dualboot").real("/sys/firmware/efi/efivars/Boot0001-8be4df61-93ca-11d2-aa0d-00e098032b8c")
        let option = InstallationParsers.loadOption(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(option == InstallationParsers.LoadOption(active: true, description: "Windows Boot Manager", filePath: "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"))
        #expect(InstallationParsers.loadOption([7, 0, 0]) == nil)
    }

    @Test("wtmp and btmp in glibc's struct utmp give boots, logins with their users, and failed logins")
    func usage() throws {
        let facts = Self.facts("install-dualboot")
        let boots = facts.usage.first { $0.kind == .boot && $0.source == "/var/log/wtmp" }
        #expect(boots?.count == 3)
        #expect(boots?.first == Self.date("2026-03-15T09:25:00Z"))
        #expect(boots?.last == Self.date("2026-11-16T07:58:00Z"))
        let logins = facts.usage.first { $0.kind == .login }
        #expect(logins?.count == 4)
        #expect(logins?.users == ["root", "zhang"])
        let failed = facts.usage.first { $0.kind == .failedLogin }
        #expect(failed?.count == 2)
        #expect(failed?.users == ["admin", "zhang"])
        let host = try Self.findings("install-dualboot").first { $0.subject == "host" }
        #expect(host?.status == .informational)
        #expect(host?.statusDetail.contains("Installed 2026-03-15 by the installer log (/var/log/installer/syslog).") == true)
        #expect(host?.statusDetail.contains("3 boot(s) 2026-03-15 – 2026-11-16 (/var/log/wtmp)") == true)
        #expect(host?.statusDetail.contains("4 login(s) 2026-03-15 – 2026-11-16 by root, zhang") == true)
        #expect(host?.statusDetail.contains("2 failed login(s)") == true)
        // Last month's rotation is read too.
        let rotated = facts.usage.first { $0.kind == .boot && $0.source == "/var/log/wtmp.1" }
        #expect(rotated?.count == 1)
        #expect(rotated?.first == Self.date("2026-10-12T07:50:00Z"))
        #expect(facts.usage.first { $0.kind == .login && $0.source == "/var/log/wtmp.1" }?.users == ["zhang"])
    }

    @Test("guests: a NAT libvirt network and VirtualBox NAT fail; isolated, host-only and a loose image are told, not passed")
    func guests() throws {
        let facts = Self.facts("install-vm-host")
        let byName = Dictionary(facts.virtualMachines.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(Set(byName.keys) == ["win10", "lab-db", "WinXP", "Kali", "CentOS 7", "kylin-v10.qcow2", "win11"], "\(facts.virtualMachines.map(\.name))")
        #expect(facts.virtualMachines.count == 7, "WinXP is in the registry and under the home: listed once")
        #expect(byName["Kali"]?.network == .attached([GuestAdapter(mode: "bridged to", target: "eno1", reachesOut: true)]))
        #expect(byName["Kali"]?.images == ["/srv/vms/Kali/Kali.vdi"])
        #expect(byName["win11"]?.source == "/home/zhang/.local/share/gnome-boxes/images/win11")
        #expect(byName["win10"]?.network == .attached([GuestAdapter(mode: "network", target: "default", reachesOut: true)]))
        #expect(byName["lab-db"]?.network == .attached([GuestAdapter(mode: "isolated network", target: "lab", reachesOut: false)]))
        #expect(byName["WinXP"]?.network == .attached([GuestAdapter(mode: "NAT", reachesOut: true)]))
        #expect(byName["WinXP"]?.user == "zhang")
        #expect(byName["WinXP"]?.images == ["/home/zhang/VirtualBox VMs/WinXP/WinXP.vdi"])
        #expect(byName["CentOS 7"]?.network == .attached([GuestAdapter(mode: "host-only", target: "ethernet0", reachesOut: false)]))
        if case .unknown = byName["kylin-v10.qcow2"]?.network {} else { Issue.record("a loose image's network is unknown") }
        let findings = try Self.findings("install-vm-host")
        #expect(Set(findings.filter { $0.status == .fail }.map(\.subject)) == ["/etc/libvirt/qemu/win10.xml", "/home/zhang/VirtualBox VMs/WinXP/WinXP.vbox", "/srv/vms/Kali/Kali.vbox"])
        #expect(findings.filter { $0.status == .informational }.count == 5)
        #expect(!findings.contains { $0.status == .pass || $0.status == .error })
    }

    @Test("on an unclassified machine another system and a guest with a network are told, not failed")
    func unclassifiedProfile() throws {
        let facts = HostProbe.observe(
            root: FixtureHosts.root("install-vm-host"), live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate, collecting: [.installation])
        let policy = try Policy.parse(Array(EmbeddedPolicies.unclassifiedWorkstation.utf8), file: "unclassified.yaml")
        let context = CheckContext(policy: policy, hostID: "installation", observedAt: TestSupport.fixedDate)
        let findings = AuditChecks.evaluate(facts, context: context, only: ["host.installation"])
        #expect(findings.count == 8)
        #expect(findings.allSatisfy { $0.status == .informational })
        #expect(findings.first { $0.subject == "/etc/libvirt/qemu/win10.xml" }?.statusDetail.contains("has a network of its own (network default)") == true)
    }

    @Test("a package log older than the installer's log is a reinstallation over kept files, named with its date")
    func reinstall() throws {
        let facts = Self.facts("install-vm-host")
        #expect(facts.installedAt == Self.date("2025-06-02T14:20:00Z"))
        #expect(facts.reinstalledAt?.date == Self.date("2026-10-30T09:01:02Z"))
        let host = try Self.findings("install-vm-host").first { $0.subject == "host" }
        #expect(host?.statusDetail.contains("reinstalled over kept files") == true)
        #expect(host?.statusDetail.contains("Reinstalled 19 day(s) before this audit") == true)
    }

    @Test("machine-id written long after the installation says the identity was made again")
    func machineIDAge() throws {
        let copy = try Self.copy("install-dualboot")
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        let written = try #require(Self.date("2026-09-01T00:00:00Z"))
        try FileManager.default.setAttributes([.modificationDate: written], ofItemAtPath: copy.appendingPathComponent("etc/machine-id").path)
        let facts = Self.facts("", root: HostRoot(path: copy.path))
        #expect(facts.clues.first { $0.kind == .machineID }?.date == written)
        let host = try Self.findings("", root: HostRoot(path: copy.path)).first { $0.subject == "host" }
        #expect(host?.statusDetail.contains("machine-id was written 169 day(s) after the installation") == true)
    }

    @Test("a corrupt rotated log, a truncated efivar, a directory for grub.cfg and a cut wtmp are errors or notes, never passed over")
    func unreadable() throws {
        let facts = Self.facts("install-broken")
        let errors = Dictionary(facts.sources.compactMap { source in source.errorReason.map { (source.path, $0) } }, uniquingKeysWith: { first, _ in first })
        #expect(errors["/var/log/dpkg.log.2.gz"]?.contains("gzip") == true)
        #expect(errors["/sys/firmware/efi/efivars/Boot0003-8be4df61-93ca-11d2-aa0d-00e098032b8c"]?.contains("EFI_LOAD_OPTION") == true)
        #expect(errors["/boot/grub/grub.cfg"] != nil)
        #expect(facts.notes.contains { $0.contains("/var/log/wtmp ends with a partial record of 116 bytes") })
        #expect(facts.installedAt == Self.date("2026-09-01T08:00:00Z"))
        let findings = try Self.findings("install-broken")
        #expect(Set(findings.filter { $0.status == .error }.map(\.subject)).isSuperset(of: ["/var/log/dpkg.log.2.gz", "/boot/grub/grub.cfg"]))
        #expect(!findings.contains { $0.status == .pass })
    }

    @Test("an installer log that cannot be read is an error, and the date falls back to the package log")
    func refusedInstallerLog() throws {
        let root = FixtureHosts.root("install-dualboot").refusing("/var/log/installer")
        let findings = try Self.findings("install-dualboot", root: root)
        #expect(root.refusedCalls > 0)
        #expect(findings.contains { $0.subject == "/var/log/installer" && $0.status == .error })
        #expect(findings.first { $0.subject == "host" }?.statusDetail.contains("by the first package log entry") == true)
    }

    @Test("grub.cfg: os-prober's section and chain-loaded entries, not the firmware settings entry")
    func grubEntries() {
        let text = """
            ### BEGIN /etc/grub.d/10_linux ###
            menuentry 'Debian GNU/Linux' --class debian {
            \tlinux\t/boot/vmlinuz root=UUID=x ro
            }
            ### END /etc/grub.d/10_linux ###
            ### BEGIN /etc/grub.d/30_os-prober ###
            menuentry 'Ubuntu 24.04 LTS (24.04) (on /dev/sda2)' --class gnu-linux --class gnu --class os $menuentry_id_option 'osprober-gnulinux-simple-x' {
            \tlinux /boot/vmlinuz-6.8.0-31-generic root=/dev/sda2
            }
            ### END /etc/grub.d/30_os-prober ###
            """
        let entries = InstallationParsers.grubEntries(text)
        #expect(entries.map(\.title) == ["Debian GNU/Linux", "Ubuntu 24.04 LTS (24.04) (on /dev/sda2)"])
        #expect(entries.map(\.section) == ["10_linux", "30_os-prober"])
        #expect(entries.last?.linux == "/boot/vmlinuz-6.8.0-31-generic")
    }

    @Test("journalctl --list-boots text (systemd 252, TZ=UTC) and JSON (systemd 254 and later)")
    func journalBoots() {
        let text = """
            IDX BOOT ID                          FIRST ENTRY                 LAST ENTRY
             -1 4a3f0c1e2d5b4e6f8a9b0c1d2e3f4a5b Sun 2026-11-15 08:00:01 UTC Sun 2026-11-15 18:02:11 UTC
              0 5b4a1d2f3e6c5f7a9bac1d2e3f4a5b6c Mon 2026-11-16 07:58:00 UTC Mon 2026-11-16 18:00:00 UTC
            """
        let boots = InstallationParsers.journalBoots(text)
        #expect(boots.count == 2)
        #expect(boots.first?.first == Self.date("2026-11-15T08:00:01Z"))
        #expect(boots.last?.last == Self.date("2026-11-16T18:00:00Z"))
        let json = #"[{"index":0,"boot_id":"5b4a1d2f3e6c5f7a9bac1d2e3f4a5b6c","first_entry":1795334280000000,"last_entry":1795370400000000}]"#
        #expect(InstallationParsers.journalBoots(json).first?.first == Date(timeIntervalSince1970: 1_795_334_280))
    }

    @Test("the journal's boots, from a real journal file that systemd's own writer made, are listed by journalctl under --root")
    func journalFileBoots() throws {
        let root = try TestSupport.temporaryDirectory("mijian-boots")
        defer { try? FileManager.default.removeItem(at: root) }
        let journal = root.appendingPathComponent("var/log/journal/5d8e0f1a2b3c4d5e6f708192a3b4c5d6")
        try FileManager.default.createDirectory(at: journal, withIntermediateDirectories: true)
        var export = ""
        for (boot, micros) in [("0123456789abcdef0123456789abcdef", 1_794_988_800_000_000), ("0123456789abcdef0123456789abcdef", 1_794_992_400_000_000), ("fedcba9876543210fedcba9876543210", 1_795_075_200_000_000)] {
            export += "__REALTIME_TIMESTAMP=\(micros)\n__MONOTONIC_TIMESTAMP=\(micros % 10_000_000_000)\n_BOOT_ID=\(boot)\n_TRANSPORT=journal\nMESSAGE=up\n\n"
        }
        let exportFile = root.appendingPathComponent("export.txt")
        try Data(export.utf8).write(to: exportFile)
        let written = try TestSupport.run("/bin/sh", ["-c", "/lib/systemd/systemd-journal-remote -o '\(journal.path)/system.journal' - < '\(exportFile.path)'"])
        #expect(written.status == 0, "\(written.stderr)")
        let facts = InstallationProbe.observe(root: HostRoot(path: root.path), live: false, logger: FixtureHosts.logger)
        #expect(facts.source("/var/log/journal")?.state == .ok)
        let boots = try #require(facts.usage.first { $0.kind == .boot && $0.source == "/var/log/journal" })
        #expect(boots.count == 2)
        #expect(boots.first == Self.date("2026-11-18T08:00:00Z"))
        #expect(boots.last == Self.date("2026-11-19T08:00:00Z"))
    }

    @Test("under --root on a mounted file system the root's birth time dates it, read with statx and said to be a mount root")
    func mountedRoot() throws {
        let mount = try TestSupport.temporaryDirectory("mijian-mounted-root")
        defer { try? FileManager.default.removeItem(at: mount) }
        let before = Date().addingTimeInterval(-2)
        let mounted = try TestSupport.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mount.path])
        try #require(mounted.status == 0, "mount: \(mounted.stderr)")
        defer { _ = try? TestSupport.run("/usr/bin/umount", [mount.path]) }
        let root = HostRoot(path: mount.path)
        let birth = try root.birth("/")
        #expect(birth.mountRoot == true)
        let born = try #require(birth.born)
        #expect(born >= before && born <= Date().addingTimeInterval(2))
        let facts = InstallationProbe.observe(root: root, live: false, logger: FixtureHosts.logger)
        let clue = try #require(facts.clues.first { $0.kind == .rootBirth })
        #expect(clue.date == born)
        #expect(clue.detail.contains("the root of a mounted file system (--root)"))
        #expect(facts.installedAtSource?.kind == .rootBirth)

        // A directory inside it is no mount root: its birth dates only the directory.
        let inner = mount.appendingPathComponent("image")
        try FileManager.default.createDirectory(at: inner, withIntermediateDirectories: true)
        #expect(try HostRoot(path: inner.path).birth("/").mountRoot == false)
        let innerFacts = InstallationProbe.observe(root: HostRoot(path: inner.path), live: false, logger: FixtureHosts.logger)
        #expect(!innerFacts.clues.contains { $0.kind == .rootBirth })
    }

    @Test("the live machine: the root's birth time is a clue, or the note says the file system records none")
    func live() {
        let facts = InstallationProbe.observe(root: .live, live: true, logger: FixtureHosts.logger)
        let born = facts.clues.contains { $0.kind == .rootBirth && $0.source == "/" }
        #expect(born || facts.notes.contains { $0.contains("records no birth time") }, "\(facts.notes)")
        #expect(facts.source("/")?.state == .ok)
    }
}
