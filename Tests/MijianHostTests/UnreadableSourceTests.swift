#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MijianChecks
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

/// A source that could not be read is never a pass: every fixture host is audited once for every
/// path its probes opened, listed, looked at or read as a link, with that one path refused as the
/// kernel refuses a mode-000 file or directory to a process without the capabilities that
/// override file modes (`HostRoot.refusing`: EACCES from the very call, and for everything reached
/// through a refused directory).
///
/// With path P refused, compared with the audit of the untouched fixture (the baseline):
/// 1. No fail is lost in silence: every (rule, subject) that failed still fails, or its rule has
///    an `error` finding.
/// 2. The refusal shows: when a call was refused, some finding names the errno ("Permission
///    denied") in its detail or evidence, and is `error`, or `fail` (a device that fails on what
///    could be read, its evidence naming what could not).
/// 3. A rule that read P passes nothing unless P provably did not matter to it: when P is among
///    what the rule reads (`readsPerRule`: every path its fact groups' probes opened, and for the
///    four hardware rules the part of the sysfs and module tree each one judges from; P counts when
///    it, or what it resolves to, is a path read or listed or a directory above one, or a directory
///    above a path looked up), the rule has an
///    `error` finding, or its findings are exactly those of the baseline with no pass among them.
///    A rule that did not read P gives exactly its baseline findings.
/// 4. A path whose refusal made no call fail (a link is read, not followed; O_PATH needs no
///    permission on the path itself) changes nothing.
@Suite("unreadable sources: every path of every fixture refused in turn")
struct UnreadableSourceTests {
    static func context() throws -> CheckContext {
        CheckContext(policy: try RuleFactSetTests.policy(), hostID: "unreadable", observedAt: TestSupport.fixedDate)
    }

    /// The facts of one observation of `root`.
    static func observe(_ root: HostRoot, _ sets: Set<FactSet> = FactSet.all) -> AuditFacts {
        HostProbe.observe(root: root, live: false, logger: FixtureHosts.logger, at: TestSupport.fixedDate, collecting: sets)
    }

    /// (rule, subject, status) of every finding, for comparisons.
    struct Key: Hashable, CustomStringConvertible {
        var rule: String
        var subject: String
        var status: Status
        var description: String { "\(rule) \(subject) \(status.rawValue)" }
    }

    static func keys(_ findings: [Finding], rule: String) -> Set<Key> {
        Set(findings.filter { $0.rule.id == rule }.map { Key(rule: $0.rule.id, subject: $0.subject, status: $0.status) })
    }

    static func isModuleSource(_ path: String) -> Bool {
        path.hasPrefix("/lib/modules/") || path == "/proc/modules" || path == "/proc/cmdline" || path.contains("modprobe.d")
            || path == "/proc/sys/kernel/osrelease"
    }

    /// Whether `path` is at or below `directory`.
    static func within(_ path: String, _ directory: String) -> Bool {
        path == directory || path.hasPrefix(directory + "/")
    }

    /// What one rule reads: paths whose contents it read or listed, and paths it only looked up
    /// (O_PATH: whether it exists, what it is, where it leads), each as opened and as resolved.
    struct Reads {
        var content: Set<String> = []
        var lookups: Set<String> = []

        /// Whether refusing `target` refuses one of these reads: a content read at or below it, or
        /// a lookup below it (a lookup of the refused path itself needs no permission on it).
        func refused(by target: String) -> Bool {
            content.contains { within($0, target) } || lookups.contains { $0.hasPrefix(target + "/") }
        }
    }

    /// What each rule reads: for most rules every path its fact groups' probes opened; for the four
    /// hardware rules and the four identity rules, which share one probe each, the part each one
    /// judges from; for net.history the installation's sources only when it has profiles to date.
    static func readsPerRule(root: HostRoot, groupLogs: [FactSet: HostAccessLog], facts: HardwareFacts, datesProfiles: Bool = false) -> [String: Reads] {
        var resolvedCache: [String: String] = [:]
        func resolved(_ path: String) -> String {
            if let known = resolvedCache[path] { return known }
            let found = root.resolve(path) ?? path
            resolvedCache[path] = found
            return found
        }
        func reads(_ log: HostAccessLog?, _ keep: (String) -> Bool) -> Reads {
            var out = Reads()
            guard let log else { return out }
            let content = log.contentPaths
            for path in Set(log.paths) where keep(path) {
                if content.contains(path) {
                    out.content.insert(path)
                    out.content.insert(resolved(path))
                } else {
                    out.lookups.insert(path)
                    out.lookups.insert(resolved(path))
                }
            }
            return out
        }
        let hardware = groupLogs[.hardware]
        let nonHubs = facts.usbDevices.filter { !$0.isRootHub }
        // The USB device reader reads a device's and its interfaces' own attributes and links.
        let usbParts = Set(nonHubs.map(\.sysfsPath) + nonHubs.flatMap { $0.interfaces.map(\.sysfsPath) })
        let hubLocks = Set(facts.usbDevices.filter(\.isRootHub).map { $0.sysfsPath + "/interface_authorized_default" })
        let onUSBDevice: (String) -> Bool = { path in
            [path, resolved(path)].contains { usbParts.contains($0) || usbParts.contains(parent($0)) }
        }
        let usbList: (String) -> Bool = { $0 == "/sys/bus/usb/devices" || onUSBDevice($0) }
        var out: [String: Reads] = [:]
        for check in AuditChecks.all {
            let rule = check.rule.id
            switch rule {
            case "wireless.hardware":
                out[rule] = reads(hardware) { $0 != "/proc/modules" && $0 != "/proc/cmdline" && !$0.contains("modprobe.d") }
            case "wireless.modules":
                out[rule] = reads(hardware) {
                    isModuleSource($0) || within($0, "/sys/bus/usb/devices") || within($0, "/sys/bus/pci/devices") || $0.hasSuffix("/modalias")
                }
            case "usb.storage":
                out[rule] = reads(hardware) { usbList($0) || within($0, "/sys/class/block") || isModuleSource($0) || hubLocks.contains($0) }
            case "usb.phone":
                out[rule] = reads(hardware, usbList)
            // The identity rules share one probe; each judges from its own files (as its sources'
            // errors say), and from the directories above them the probe lists to find them.
            case "auth.password":
                out[rule] = reads(groupLogs[.auth]) {
                    inOrAbove($0, ["/etc/pam.d", "/etc/security/pwquality.conf", "/etc/security/pwquality.conf.d", "/etc/login.defs", "/etc/passwd", "/etc/shadow"])
                }
            case "auth.lockout":
                out[rule] = reads(groupLogs[.auth]) { inOrAbove($0, ["/etc/pam.d", "/etc/security/faillock.conf"]) }
            case "auth.accounts":
                out[rule] = reads(groupLogs[.auth]) { inOrAbove($0, ["/etc/passwd", "/etc/shadow", "/etc/pam.d", "/etc/ssh", "/etc/systemd", "/usr/sbin/sshd"]) }
            case "auth.screenlock":
                out[rule] = reads(groupLogs[.auth]) {
                    inOrAbove($0, [
                        "/etc/dconf", "/usr/share/dconf", "/usr/share/glib-2.0", "/usr/share/xsessions", "/usr/share/wayland-sessions", "/usr/bin/xscreensaver",
                        "/etc/X11/app-defaults", "/usr/share/X11/app-defaults", "/etc/profile", "/etc/profile.d", "/etc/bash.bashrc",
                    ])
                }
            // The installation's date serves only to date the profiles found; with none it judges nothing.
            case "net.history":
                var merged = reads(groupLogs[.browserHistory]) { _ in true }
                if datesProfiles {
                    let part = reads(groupLogs[.installation]) { _ in true }
                    merged.content.formUnion(part.content)
                    merged.lookups.formUnion(part.lookups)
                }
                out[rule] = merged
            default:
                var merged = Reads()
                for set in check.needs {
                    let part = reads(groupLogs[set]) { _ in true }
                    merged.content.formUnion(part.content)
                    merged.lookups.formUnion(part.lookups)
                }
                out[rule] = merged
            }
        }
        return out
    }

    /// Whether `path` is one of `places`, inside one, or a directory above one.
    static func inOrAbove(_ path: String, _ places: [String]) -> Bool {
        places.contains { within(path, $0) || within($0, path) }
    }

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// What is wrong with an audit in which `path` was refused (`refusedCalls` calls failed).
    static func violations(
        path: String, targets: [String], refusedCalls: Int, refused: [Finding], baseline: [Finding], reads: [String: Reads]
    ) -> [String] {
        guard refusedCalls > 0 else {
            // Nothing was refused (the path was only named, or reached through O_PATH): nothing may change.
            let before = baseline.map { Key(rule: $0.rule.id, subject: $0.subject, status: $0.status) }
            let after = refused.map { Key(rule: $0.rule.id, subject: $0.subject, status: $0.status) }
            return before == after ? [] : ["\(path): no call was refused, yet the findings changed: \(Set(before).symmetricDifference(after))"]
        }
        var out: [String] = []
        let errorText = MijianError.strerror(EACCES)
        let shows = refused.contains { finding in
            (finding.status == .error || finding.status == .fail)
                && (finding.statusDetail.contains(errorText) || String(decoding: finding.json.serialized(), as: UTF8.self).contains(errorText))
        }
        if !shows { out.append("\(path): \(refusedCalls) call(s) refused, and no error or fail finding names \"\(errorText)\"") }
        for check in AuditChecks.all {
            let rule = check.rule.id
            let before = keys(baseline, rule: rule)
            let after = keys(refused, rule: rule)
            let hasError = after.contains { $0.status == .error }
            for lost in before where lost.status == .fail && !after.contains(lost) && !hasError {
                out.append("\(path): \(lost) is no longer a fail and \(rule) has no error: \(after.sorted { $0.subject < $1.subject })")
            }
            let read = reads[rule] ?? Reads()
            let relevant = targets.contains { read.refused(by: $0) }
            if relevant {
                if !hasError, after != before || after.contains(where: { $0.status == .pass }) {
                    out.append("\(path): \(rule) read it and has no error: \(after.sorted { $0.subject < $1.subject })")
                }
            } else if after != before {
                out.append("\(path): \(rule) does not read it but changed: \(before.subtracting(after)) → \(after.subtracting(before))")
            }
        }
        return out
    }

    @Test("no finding turns from fail to pass, and a rule that read the refused path is an error", arguments: FixtureHosts.names)
    func everyPathRefused(name: String) throws {
        let context = try Self.context()
        let root = FixtureHosts.root(name)
        let log = HostAccessLog()
        let facts = Self.observe(root.recording(into: log))
        let baseline = AuditChecks.evaluate(facts, context: context)
        var groupLogs: [FactSet: HostAccessLog] = [:]
        for set in FactSet.allCases {
            let groupLog = HostAccessLog()
            _ = Self.observe(root.recording(into: groupLog), [set])
            groupLogs[set] = groupLog
        }
        var seen: Set<String> = []
        let paths = log.paths.filter { seen.insert($0).inserted && $0 != "/" }
        #expect(paths.count > 50, "\(name): only \(paths.count) paths recorded")
        let reads = Self.readsPerRule(root: root, groupLogs: groupLogs, facts: facts.hardware, datesProfiles: !facts.browserHistory.profiles.isEmpty)
        var problems: [String] = []
        var refusedAudits = 0
        for path in paths {
            let refusing = root.refusing(path)
            let refused = AuditChecks.evaluate(Self.observe(refusing), context: context)
            if refusing.refusedCalls > 0 { refusedAudits += 1 }
            let targets = [path] + (root.resolve(path).map { $0 == path ? [] : [$0] } ?? [])
            problems += Self.violations(
                path: path, targets: targets, refusedCalls: refusing.refusedCalls, refused: refused, baseline: baseline, reads: reads)
        }
        // Most paths are really refused somewhere (links are read, not followed, so a few are not).
        #expect(refusedAudits * 2 > paths.count, "\(name): only \(refusedAudits) of \(paths.count) refusals failed a call")
        let listed = problems.prefix(40).joined(separator: "\n")
        #expect(problems.isEmpty, "\(name): \(problems.count) problems over \(paths.count) paths:\n\(listed)")
    }

    /// Where `hostPath` of `root` really is, and what it is (S_IFDIR, S_IFREG …) without following a
    /// final link; nil when it cannot be looked at.
    static func kind(_ root: HostRoot, _ hostPath: String) -> mode_t? {
        var info = stat()
        guard lstat(root.real(hostPath), &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    /// What is wrong with an audit in which one path stood as the wrong type, compared with the
    /// untouched tree's: a (rule, subject) that failed no longer fails and its rule has no error.
    static func lostFails(_ label: String, swapped: [Finding], baseline: [Finding]) -> [String] {
        var out: [String] = []
        for check in AuditChecks.all {
            let rule = check.rule.id
            let after = keys(swapped, rule: rule)
            guard !after.contains(where: { $0.status == .error }) else { continue }
            for lost in keys(baseline, rule: rule) where lost.status == .fail && !after.contains(lost) {
                out.append("\(label): \(lost) is no longer a fail and \(rule) has no error: \(after.sorted { $0.subject < $1.subject })")
            }
        }
        return out
    }

    /// The second mode of the property: the sources stand there, but as the wrong type. On a copy of
    /// each fixture, every directory the probes listed, looked into or resolved through is replaced
    /// by a regular file in turn (ENOTDIR where the probe reads it, or what is inside it), and every
    /// regular file they read by an empty directory (EISDIR, "not a regular file"); each is put back
    /// before the next. Every path the probes opened is taken, resolved inside the root, so a
    /// device's directory is swapped once however many links lead to it. No (rule, subject) that
    /// failed may stop failing unless its rule has an `error` finding; most swaps must show as a
    /// new `error` finding.
    @Test("a directory replaced by a file, or a file by a directory: no fail turns into a pass", arguments: FixtureHosts.names)
    func everyPathOfTheWrongType(name: String) throws {
        let context = try Self.context()
        let scratch = try TestSupport.temporaryDirectory("mijian-wrong-type")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tree = scratch.appendingPathComponent("host").path
        let copied = try TestSupport.run("/bin/cp", ["-a", FixtureHosts.root(name).path, tree])
        try #require(copied.status == 0, "cp -a: \(copied.stderr)")
        let root = HostRoot(path: tree)
        let log = HostAccessLog()
        let baseline = AuditChecks.evaluate(Self.observe(root.recording(into: log)), context: context)
        let baselineErrors = Set(baseline.filter { $0.status == .error }.map { Key(rule: $0.rule.id, subject: $0.subject, status: $0.status) })
        var seen: Set<String> = []
        var swaps: [(path: String, isDirectory: Bool)] = []
        for opened in log.paths {
            guard let resolved = root.resolve(opened), resolved != "/", seen.insert(resolved).inserted else { continue }
            switch Self.kind(root, resolved) {
            case S_IFDIR: swaps.append((resolved, true))
            case S_IFREG: swaps.append((resolved, false))
            default: continue
            }
        }
        let directories = swaps.filter(\.isDirectory).count
        #expect(directories > 10 && swaps.count - directories > 10, "\(name): only \(directories) directories and \(swaps.count - directories) files")
        let aside = scratch.appendingPathComponent("aside").path
        var problems: [String] = []
        var shown = 0
        for swap in swaps {
            let real = root.real(swap.path)
            try #require(rename(real, aside) == 0, "cannot move \(real) aside: \(MijianError.strerror(errno))")
            let made = swap.isDirectory ? FileManager.default.createFile(atPath: real, contents: Array("x\n".utf8).withUnsafeBytes { Data($0) }) : mkdir(real, 0o755) == 0
            let swapped = made ? AuditChecks.evaluate(Self.observe(root), context: context) : []
            if swap.isDirectory { unlink(real) } else { rmdir(real) }
            try #require(rename(aside, real) == 0, "cannot put \(real) back: \(MijianError.strerror(errno))")
            try #require(made, "cannot make \(real) the wrong type")
            let label = "\(swap.path) as a \(swap.isDirectory ? "file" : "directory")"
            problems += Self.lostFails(label, swapped: swapped, baseline: baseline)
            if swapped.contains(where: { $0.status == .error && !baselineErrors.contains(Key(rule: $0.rule.id, subject: $0.subject, status: $0.status)) }) {
                shown += 1
            }
        }
        // A few swaps change nothing a rule judges (a directory only checked for existence).
        #expect(shown * 2 > swaps.count, "\(name): only \(shown) of \(swaps.count) swaps gave a new error finding")
        let listed = problems.prefix(40).joined(separator: "\n")
        #expect(problems.isEmpty, "\(name): \(problems.count) problems over \(swaps.count) swaps (\(directories) directories):\n\(listed)")
    }

    @Test("the refusal seam fails as the kernel does: the path, what is inside it, and what links reach through it")
    func refusalSeam() throws {
        let root = FixtureHosts.root("usb-stick-unregistered")
        let stick = try #require(root.resolve("/sys/bus/usb/devices/1-3"))
        let refused = root.refusing(stick)
        // Its name still opens (O_PATH needs no permission on it), its contents do not.
        #expect(refused.isDirectory(stick))
        #expect(throws: MijianError.self) { try refused.list(stick) }
        do {
            _ = try refused.readText(stick + "/idVendor")
            Issue.record("a file inside a refused directory was read")
        } catch {
            #expect(error.code == .permission && error.errno == EACCES)
        }
        // Through the bus's link, and through a link that ends below it.
        let (vendor, failures) = refused.collectingFailures { $0.attribute("/sys/bus/usb/devices/1-3/idVendor") }
        #expect(vendor == nil)
        #expect(failures.map(\.path) == ["/sys/bus/usb/devices/1-3/idVendor"])
        #expect(failures.first?.errorReason?.contains(MijianError.strerror(EACCES)) == true)
        #expect(refused.resolve("/sys/bus/usb/devices/1-3:1.0") == nil)
        // Refusing a link refuses what it names, as chmod does.
        let viaLink = root.refusing("/sys/bus/usb/devices/1-3")
        #expect(throws: MijianError.self) { try viaLink.readText(stick + "/idVendor") }
        // Absence is an answer, not a failure.
        let (absent, none) = root.collectingFailures { $0.attribute("/sys/bus/usb/devices/1-3/no-such-attribute") }
        #expect(absent == nil && none.isEmpty)
    }
}
