#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MijianAgent
import MijianCore
import MijianHost
import MijianTestSupport
import Synchronization
import Testing

/// The policy file as an event: an inotify watch on its directory, read on the service's
/// readiness thread, and the reload it starts, which wakes the USB watch with a typed reason.
@Suite("The policy file's changes are events, read on the readiness thread")
struct PolicyFileWatchTests {
    /// Waits (in real time, generously) until `watch` has something to say of the file, read
    /// when the kernel makes its descriptor readable.
    static func next(_ watch: PolicyFileWatch, seconds: Int32 = 10) -> PolicyFileWatch.Change {
        var descriptor = pollfd(fd: watch.descriptor, events: Int16(POLLIN), revents: 0)
        var change = PolicyFileWatch.Change.none
        while change == .none {
            guard poll(&descriptor, 1, seconds * 1000) == 1 else { return .none }
            change = watch.readChanges()
        }
        return change
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    @Test func aWriteARenameOverItARemovalAndTheDirectoryGoingAreTold() throws {
        let directory = try TestSupport.temporaryDirectory("policy-watch")
        let path = directory.appendingPathComponent("policy.yaml").path
        try Self.write("id: a\n", to: path)
        let watch = try PolicyFileWatch(path: path)
        #expect(watch.directory == directory.standardizedFileURL.path && watch.name == "policy.yaml")
        // Another file of the directory is not the policy.
        try Self.write("x", to: directory.appendingPathComponent("agent.yaml").path)
        #expect(watch.readChanges() == .none)
        // Written in place (truncate, write, close).
        try Self.write("id: b\n", to: path)
        #expect(Self.next(watch) == .written)
        // An editor's or dpkg's save: a new file renamed over the old one.
        let fresh = directory.appendingPathComponent("policy.yaml.dpkg-new").path
        try Self.write("id: c\n", to: fresh)
        _ = watch.readChanges()
        #expect(rename(fresh, path) == 0)
        #expect(Self.next(watch) == .written)
        #expect(unlink(path) == 0)
        #expect(Self.next(watch) == .removed)
        // The directory itself goes: the watch says it can see no more.
        try FileManager.default.removeItem(at: directory)
        guard case .lost(let why) = Self.next(watch) else {
            Issue.record("the directory's removal was not told")
            return
        }
        #expect(why.contains("no longer watched"))
    }

    @Test func aMissingDirectoryIsAnErrorThatNamesIt() throws {
        #expect(throws: MijianError.self) { try PolicyFileWatch(path: "/nonexistent-mijian-dir/policy.yaml") }
    }

    /// A reload service watching a policy file on its own readiness thread; cancelled by the test.
    struct Reloading {
        let rig: SealerRig
        let holder: PolicyHolder
        let path: String
        let readiness: ReadinessLoop
        let audit = Wakeup<WakeReason>.service()
        let task: Task<Void, any Error>

        init() async throws {
            rig = try SealerRig()
            try await rig.sealer.start()
            path = rig.state.appendingPathComponent("policy.yaml").path
            try PolicyFileWatchTests.write(EmbeddedPolicies.classifiedWorkstation, to: path)
            holder = PolicyHolder(try PolicyHolder.load(path), path: path)
            readiness = try ReadinessLoop()
            var logger = Logger(label: "reload-test")
            logger.logLevel = .critical
            let service = ReloadService(policy: holder, sealer: rig.sealer, audit: audit, readiness: readiness, logger: logger, notifier: nil)
            task = Task { try await service.run() }
        }

        func stop() async {
            task.cancel()
            _ = await task.result
            await readiness.stop()
        }
    }

    @Test func aWrittenPolicyFileIsReloadedAndWakesTheWatchesWithoutASignal() async throws {
        let reloading = try await Reloading()
        let changes = reloading.holder.changes()
        let original = reloading.holder.policy.sha256
        // The watch is registered once the service runs; a write before that would be missed by
        // the watch (not by the self-check), so the test waits for the registration to be made.
        #expect(await until { Self.registered(reloading.rig.state.path) })
        let changed = EmbeddedPolicies.classifiedWorkstation.replacingOccurrences(of: "version: \"2026.1\"", with: "version: \"2026.2\"")
        #expect(changed != EmbeddedPolicies.classifiedWorkstation)
        try Self.write(changed, to: reloading.path)
        // Event driven: the wake-up comes when the reload is done; the deadline is only a guard.
        let reason = await changes.wait(timeout: .seconds(30))
        #expect(reason == .policyReloaded)
        #expect(reloading.holder.policy.sha256 != original)
        #expect(reloading.holder.policy.version == "2026.2")
        #expect(await reloading.audit.wait(timeout: .seconds(30)) == .policyReloaded)

        // The same bytes written again: nothing to reload, nobody woken.
        try Self.write(changed, to: reloading.path)
        // A broken file: refused, the policy in force stays, the next report says why.
        try Self.write("id: broken\nversion: \"1\"\nprofil: classified\n", to: reloading.path)
        #expect(await until(seconds: 30) {
            let sealed = await reloading.rig.sealer.seal(reason: "test")
            guard sealed != nil, let last = try? reloading.rig.spooled().last else { return false }
            return (healthFinding(last.payload)?["status_detail"]?.stringValue ?? "").contains("profil: unknown key")
        })
        #expect(reloading.holder.policy.version == "2026.2", "a refused file leaves the policy in force")
        #expect(changes.take() == nil, "neither the same bytes nor a refused file is a new policy")
        await reloading.stop()
    }

    /// Whether this process has an inotify watch on `directory` (its fdinfo names the inode).
    static func registered(_ directory: String) -> Bool {
        var info = stat()
        guard stat(directory, &info) == 0 else { return false }
        let inode = String(UInt64(info.st_ino), radix: 16)
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fdinfo")) ?? []
        return fds.contains { fd in
            guard let text = try? String(contentsOfFile: "/proc/self/fdinfo/\(fd)", encoding: .utf8) else { return false }
            return text.split(separator: "\n").contains { $0.hasPrefix("inotify") && $0.contains(" ino:\(inode) ") }
        }
    }
}
