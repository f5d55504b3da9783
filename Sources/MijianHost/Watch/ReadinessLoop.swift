#if canImport(Glibc)
import Glibc
#endif
import CMijianSystem
import Foundation
import MijianCore
import Synchronization

/// The service's one thread for its blocking sources: it waits in `epoll_wait` on every
/// descriptor registered (the rtnetlink subscription, each link's capture) and on an eventfd,
/// and calls a descriptor's handler when the kernel says it is readable. Nothing waits on a
/// timer: a packet or a change is read when it comes, and a removal or a stop is seen at once.
///
/// Handlers run on this thread, one at a time, and must not block. Registrations leave only on
/// this thread, between two handler calls: once `remove` returns, the handler is never called
/// again and its owner may close the descriptor; what a handler had read is handled in full.
public final class ReadinessLoop: Sendable {
    /// Why a handler is called.
    public enum Condition: Sendable, Equatable {
        /// The descriptor is readable.
        case readable
        /// The kernel reports an error or hang-up on it (EPOLLERR, EPOLLHUP): a handler that
        /// finds nothing to read must find out why, or it would be called again and again.
        case failed
        /// The last read before the registration goes.
        case lastRead
    }

    /// Reads what is ready; false when the descriptor is done (an error), so it is dropped.
    public typealias Handler = @Sendable (Condition) -> Bool

    /// One registration, for `remove`.
    public struct Registration: Sendable, Hashable {
        fileprivate let id: UInt64
    }

    private enum Command {
        case remove(UInt64, lastRead: Bool, CheckedContinuation<Void, Never>)
        case stop(CheckedContinuation<Void, Never>?)
    }

    private struct State {
        var handlers: [UInt64: (fd: Int32, handler: Handler)] = [:]
        var commands: [Command] = []
        var nextID: UInt64 = 1
        /// Set once the thread has left its loop: commands are then carried out by their callers.
        var stopped = false
    }

    private let epoll: Int32
    private let wake: Int32
    private let state = Mutex(State())
    /// The `data` of the eventfd's epoll entry; registrations count from 1.
    private static let wakeID: UInt64 = 0

    /// Makes the epoll set and its eventfd, and starts the thread.
    public init(name: String = "mijian-readiness") throws(MijianError) {
        epoll = try Syscall.call("cannot make an epoll set") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        do {
            wake = try Syscall.call("cannot make an eventfd") { eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK)) }
        } catch {
            close(epoll)
            throw error
        }
        do {
            try Self.control(epoll, EPOLL_CTL_ADD, wake, id: Self.wakeID)
        } catch {
            close(wake)
            close(epoll)
            throw error
        }
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    deinit {
        close(wake)
        close(epoll)
    }

    private static func control(_ epoll: Int32, _ operation: Int32, _ fd: Int32, id: UInt64) throws(MijianError) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = id
        try Syscall.call("cannot \(operation == EPOLL_CTL_ADD ? "add" : "remove") descriptor \(fd) to the epoll set") {
            epoll_ctl(epoll, operation, fd, &event)
        }
    }

    /// Calls `handler` on this loop's thread whenever `fd` is readable (level-triggered: what a
    /// handler leaves unread makes it readable again), from now until `remove`.
    public func add(_ fd: Int32, _ handler: @escaping Handler) throws(MijianError) -> Registration {
        let id = try state.withLock { state throws(MijianError) -> UInt64 in
            guard !state.stopped else { throw MijianError(.state, "the readiness thread has stopped") }
            let id = state.nextID
            state.nextID += 1
            // In the table before the kernel can report it.
            state.handlers[id] = (fd, handler)
            return id
        }
        do {
            try Self.control(epoll, EPOLL_CTL_ADD, fd, id: id)
        } catch {
            _ = state.withLock { $0.handlers.removeValue(forKey: id) }
            throw error
        }
        return Registration(id: id)
    }

    /// Stops calling the registration's handler; with `lastRead` it is called once more first, so
    /// what the kernel already holds for it is read. Returns once the thread has let it go.
    public func remove(_ registration: Registration, lastRead: Bool) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stopped = state.withLock { state -> Bool in
                if !state.stopped { state.commands.append(.remove(registration.id, lastRead: lastRead, continuation)) }
                return state.stopped
            }
            if stopped {
                // The thread is gone, and the registrations with it: nothing is read any more.
                _ = carryOut(.remove(registration.id, lastRead: lastRead, continuation))
            } else {
                signal()
            }
        }
    }

    /// Ends the thread once the commands before it are carried out; registrations left are dropped unread.
    public func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stopped = state.withLock { state -> Bool in
                if !state.stopped { state.commands.append(.stop(continuation)) }
                return state.stopped
            }
            if stopped {
                continuation.resume()
            } else {
                signal()
            }
        }
    }

    private func signal() {
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    /// Carries out one command; false for `stop`.
    private func carryOut(_ command: Command) -> Bool {
        switch command {
        case .remove(let id, let lastRead, let continuation):
            let entry = state.withLock { $0.handlers.removeValue(forKey: id) }
            if let entry {
                if lastRead { _ = entry.handler(.lastRead) }
                // The descriptor may already be gone with its owner's error: nothing to undo then.
                try? Self.control(epoll, EPOLL_CTL_DEL, entry.fd, id: id)
            }
            continuation.resume()
            return true
        case .stop(let continuation):
            let left = state.withLock { state in
                state.stopped = true
                defer { state.handlers = [:] }
                return state.handlers
            }
            for (id, entry) in left { try? Self.control(epoll, EPOLL_CTL_DEL, entry.fd, id: id) }
            continuation?.resume()
            return false
        }
    }

    /// Carries out every command waiting, in order; false once one was `stop`.
    private func carryOutCommands() -> Bool {
        while true {
            let next = state.withLock { state -> Command? in state.commands.isEmpty ? nil : state.commands.removeFirst() }
            guard let next else { return true }
            if !carryOut(next) {
                // Commands that came after the stop: the thread is gone, so they are done here.
                let rest = state.withLock { state in
                    defer { state.commands = [] }
                    return state.commands
                }
                for command in rest { _ = carryOut(command) }
                return false
            }
        }
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        let capacity = Int32(events.count)
        while true {
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, capacity, -1) }
            if count < 0 {
                if errno == EINTR { continue }
                // epoll_wait fails only on a bad set: nothing can be read any more, and every wait must end.
                _ = carryOut(.stop(nil))
                _ = carryOutCommands()
                return
            }
            // Commands first: a stop or a removal is carried out before any further read.
            guard carryOutCommands() else { return }
            for index in 0..<Int(count) {
                let id = events[index].data.u64
                if id == Self.wakeID {
                    var value: UInt64 = 0
                    _ = read(wake, &value, 8)
                    continue
                }
                guard let entry = state.withLock({ $0.handlers[id] }) else { continue }
                let failed = events[index].events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
                if !entry.handler(failed ? .failed : .readable) {
                    _ = state.withLock { $0.handlers.removeValue(forKey: id) }
                    try? Self.control(epoll, EPOLL_CTL_DEL, entry.fd, id: id)
                }
                guard carryOutCommands() else { return }
            }
        }
    }
}
