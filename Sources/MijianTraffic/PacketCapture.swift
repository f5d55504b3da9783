#if canImport(Glibc)
import Glibc
#endif
import CPcap
import Foundation
import MijianCore

/// One packet as libpcap hands it over: valid only inside the callback that receives it.
public struct CapturedPacket {
    /// The captured bytes (at most the snap length).
    public let bytes: UnsafeRawBufferPointer
    /// Capture time, nanoseconds since the Unix epoch.
    public let time: Int64
    /// Length of the frame on the wire.
    public let wireLength: Int
}

/// Counters libpcap keeps for a live capture (`pcap_stats`).
public struct CaptureStatistics: Sendable, Equatable {
    /// Packets that passed the filter.
    public var received: UInt32
    /// Packets dropped because the buffer was full.
    public var dropped: UInt32
    /// Packets the interface or driver dropped.
    public var interfaceDropped: UInt32

    /// Counters as `pcap_stats` gives them.
    public init(received: UInt32, dropped: UInt32, interfaceDropped: UInt32) {
        self.received = received
        self.dropped = dropped
        self.interfaceDropped = interfaceDropped
    }
}

/// Owns one `pcap_t`; the handle never leaves this class and is closed in `deinit`.
public final class PacketCapture {
    private let handle: OpaquePointer
    /// What was opened: a file path or an interface name.
    public let source: String
    /// The capture's link type (known once the handle is active).
    public private(set) var linkType = LinkType(rawValue: -1)
    /// Whether timestamps come in nanoseconds (else microseconds).
    private var nanoseconds = false
    /// Whether this reads a file (its filter is run by the caller, per record) rather than an interface (filters run in the kernel).
    private let offline: Bool
    /// The compiled filter of an offline capture, for the caller to run on each record.
    public private(set) var compiledFilter: CompiledFilter?
    /// Records read so far (all of them, filtered or not).
    public private(set) var recordsRead = 0

    private init(handle: OpaquePointer, source: String, offline: Bool) {
        self.handle = handle
        self.source = source
        self.offline = offline
    }

    /// Reads the link type and timestamp precision of an active handle.
    private func activated() {
        linkType = LinkType(rawValue: pcap_datalink(handle))
        nanoseconds = pcap_get_tstamp_precision(handle) == Int32(PCAP_TSTAMP_PRECISION_NANO)
    }

    deinit { pcap_close(handle) }

    private static func errorBuffer() -> [CChar] { [CChar](repeating: 0, count: Int(mijian_pcap_errbuf_size())) }

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// libpcap's last error for this handle.
    private var lastError: String { String(cString: pcap_geterr(handle)) }

    /// Opens a pcap or pcapng file.
    public static func open(file path: String) throws(MijianError) -> PacketCapture {
        var status = stat()
        try Syscall.call("cannot open capture \(path)", path: path) { stat(path, &status) }
        if status.st_mode & S_IFMT == S_IFDIR {
            throw MijianError(.usage, "\(path) is a directory, not a capture file", path: path)
        }
        // libpcap would wait on a FIFO for a writer, or read a device without end.
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw MijianError(.usage, "\(path) is not a regular file, so it is not read as a capture file", path: path)
        }
        var buffer = errorBuffer()
        guard let handle = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &buffer) else {
            let reason = text(buffer)
            throw MijianError(.malformed, "\(path) is not a readable pcap or pcapng capture: \(reason)", path: path)
        }
        let capture = PacketCapture(handle: handle, source: path, offline: true)
        capture.activated()
        guard LinkType.supported.contains(capture.linkType) else {
            throw MijianError(.malformed, "\(path) has link type \(capture.linkType), which the decoder does not read", path: path)
        }
        return capture
    }

    /// Opens an interface for a live watch: small snap length, immediate delivery, a large kernel buffer,
    /// non-blocking reads (the caller waits in `poll`).
    public static func open(interface: String, snapLength: Int32, bufferBytes: Int32) throws(MijianError) -> PacketCapture {
        var buffer = errorBuffer()
        guard let handle = pcap_create(interface, &buffer) else {
            throw MijianError(.capture, "cannot open interface \(interface): \(text(buffer))", path: interface)
        }
        let capture = PacketCapture(handle: handle, source: interface, offline: false)
        func check(_ result: Int32, _ what: String) throws(MijianError) {
            if result != 0 { throw MijianError(.capture, "\(what) on \(interface) failed: \(capture.lastError)", path: interface) }
        }
        try check(pcap_set_snaplen(handle, snapLength), "setting the snap length")
        try check(pcap_set_promisc(handle, 0), "turning promiscuous mode off")
        try check(pcap_set_immediate_mode(handle, 1), "setting immediate mode")
        try check(pcap_set_buffer_size(handle, bufferBytes), "setting the buffer size")
        try check(pcap_set_timeout(handle, 100), "setting the read timeout")
        // Nanosecond stamps are a nicety; a device without them keeps microseconds.
        _ = pcap_set_tstamp_precision(handle, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let activation = pcap_activate(handle)
        if activation < 0 {
            let status = String(cString: pcap_statustostr(activation))
            let detail = capture.lastError
            let code: MijianError.Code = activation == PCAP_ERROR_PERM_DENIED ? .permission : (activation == PCAP_ERROR_NO_SUCH_DEVICE ? .notFound : .capture)
            throw MijianError(code, "cannot capture on \(interface): \(status)\(detail.isEmpty ? "" : " (\(detail))")", path: interface)
        }
        capture.activated()
        guard LinkType.supported.contains(capture.linkType) else {
            throw MijianError(.capture, "interface \(interface) has link type \(capture.linkType), which the decoder does not read", path: interface)
        }
        buffer = errorBuffer()
        if pcap_setnonblock(handle, 1, &buffer) != 0 {
            throw MijianError(.capture, "cannot make the capture on \(interface) non-blocking: \(text(buffer))", path: interface)
        }
        return capture
    }

    /// Installs a BPF filter compiled by libpcap for this link type: in the kernel for an interface,
    /// per record here for a file (so every record is still counted and a read error names the right one).
    public func setFilter(_ expression: String) throws(MijianError) {
        let compiled = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        compiled.initialize(to: bpf_program())
        guard mijian_pcap_compile(handle, expression, compiled) == 0 else {
            compiled.deallocate()
            throw MijianError(.capture, "cannot compile the filter for \(source): \(lastError)", path: source)
        }
        if !offline {
            let installed = pcap_setfilter(handle, compiled)
            pcap_freecode(compiled)
            compiled.deallocate()
            if installed != 0 { throw MijianError(.capture, "cannot install the filter on \(source): \(lastError)", path: source) }
            return
        }
        compiledFilter = CompiledFilter(owning: compiled)
    }

    /// The snap length in force.
    public var snapLength: Int { Int(pcap_snapshot(handle)) }

    /// Reads a file to its end into batches handed to `pipe` (the last, partial one included), without
    /// running the filter: the judging thread does (`compiledFilter`). A read error (truncated or corrupt
    /// file) is thrown after every packet before it was handed over, naming the packet number and offset.
    func readAll(into pipe: PacketPipe) throws(MijianError) {
        var batch = pipe.emptyBatch()
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let scale: Int64 = nanoseconds ? 1 : 1000
        while true {
            let result = pcap_next_ex(handle, &header, &data)
            guard result == 1, let header, let data else {
                if batch.count > 0 { pipe.put(batch) }
                if result == PCAP_ERROR_BREAK { return }
                throw readError()
            }
            recordsRead += 1
            let fields = header.pointee
            batch.append(
                UnsafeRawBufferPointer(start: data, count: Int(fields.caplen)),
                time: Int64(fields.ts.tv_sec) * 1_000_000_000 + Int64(fields.ts.tv_usec) * scale, wireLength: Int(fields.len))
            if batch.isFull {
                pipe.put(batch)
                batch = pipe.emptyBatch()
            }
        }
    }

    private func readError() -> MijianError {
        let offset = mijian_pcap_file_offset(handle)
        return MijianError(
            .malformed,
            "capture \(source) stopped at packet \(recordsRead + 1) (byte offset \(offset)) after \(recordsRead) good packets: \(lastError)",
            path: source)
    }

    /// The descriptor that becomes readable when packets wait (`pcap_get_selectable_fd`): a thread
    /// waits on it in `poll` or `epoll` and calls `dispatch` when it is. Nil for a file.
    public var selectableDescriptor: Int32? {
        guard !offline else { return nil }
        let descriptor = pcap_get_selectable_fd(handle)
        return descriptor >= 0 ? descriptor : nil
    }

    /// Hands `body` the packets that are ready, at most `limit`, without waiting (the handle is
    /// non-blocking): `pcap_dispatch`. Returns how many were handed over; a read error is thrown.
    @discardableResult
    public func dispatch(limit: Int32, _ body: (CapturedPacket) -> Void) throws(MijianError) -> Int {
        let nanoseconds = self.nanoseconds
        let result = withoutActuallyEscaping(body) { body -> Int32 in
            var context = DispatchContext(body: body, nanoseconds: nanoseconds)
            return withUnsafeMutablePointer(to: &context) { pointer in
                pcap_dispatch(handle, limit, { user, header, data in
                    guard let user, let header, let data else { return }
                    let context = UnsafeMutableRawPointer(user).assumingMemoryBound(to: DispatchContext.self)
                    let fields = header.pointee
                    let fraction = Int64(fields.ts.tv_usec)
                    let time = Int64(fields.ts.tv_sec) * 1_000_000_000 + (context.pointee.nanoseconds ? fraction : fraction * 1000)
                    context.pointee.body(CapturedPacket(
                        bytes: UnsafeRawBufferPointer(start: data, count: Int(fields.caplen)), time: time, wireLength: Int(fields.len)))
                }, UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: UInt8.self))
            }
        }
        // PCAP_ERROR_BREAK only follows pcap_breakloop, which nothing here calls.
        guard result >= 0 else { throw MijianError(.capture, "reading from \(source) failed: \(lastError)", path: source) }
        recordsRead += Int(result)
        return Int(result)
    }

    /// The error the kernel holds for a live capture's socket (`SO_ERROR`, read and so cleared):
    /// ENETDOWN when the link went down or away; 0 when none or for a file.
    public func takeSocketError() -> Int32 {
        guard let descriptor = selectableDescriptor else { return 0 }
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &code, &length) == 0 else { return errno }
        return code
    }

    /// What `pcap_dispatch`'s callback needs, passed through its user pointer.
    private struct DispatchContext {
        let body: (CapturedPacket) -> Void
        let nanoseconds: Bool
    }

    /// Watches until `deadline`: hands over what is ready, then waits in `poll` on the selectable
    /// descriptor for the time left, so a silent interface cannot hold the watch past its end.
    public func watch(until deadline: ContinuousClock.Instant, _ body: (CapturedPacket) -> Void) throws(MijianError) {
        guard let descriptor = selectableDescriptor else {
            throw MijianError(.capture, "the capture on \(source) has no selectable descriptor", path: source)
        }
        let clock = ContinuousClock()
        while true {
            let handed = try dispatch(limit: 10_000, body)
            let left = clock.now.duration(to: deadline)
            if left <= .zero { return }
            // More may be waiting: read again before waiting.
            if handed > 0 { continue }
            // Rounded up, so the wait never ends just before the deadline and spins.
            let millis = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let source = self.source
            _ = try Syscall.call("waiting for packets on \(source) failed", path: source) { poll(&request, 1, millis) }
        }
    }

    /// libpcap's counters for a live capture; nil for files.
    public func statistics() -> CaptureStatistics? {
        var counters = pcap_stat()
        guard pcap_stats(handle, &counters) == 0 else { return nil }
        return CaptureStatistics(received: counters.ps_recv, dropped: counters.ps_drop, interfaceDropped: counters.ps_ifdrop)
    }
}

/// A BPF program compiled by libpcap, owned here and freed in `deinit`. Running it reads the program
/// only, so one filter may judge packets on any thread while the capture reads on another.
public final class CompiledFilter: @unchecked Sendable {
    private let program: UnsafeMutablePointer<bpf_program>

    fileprivate init(owning program: UnsafeMutablePointer<bpf_program>) { self.program = program }

    deinit {
        pcap_freecode(program)
        program.deallocate()
    }

    /// Whether the filter keeps a packet of `wireLength` bytes whose first `bytes.count` were captured.
    public func passes(_ bytes: UnsafeRawBufferPointer, wireLength: Int) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        var header = pcap_pkthdr()
        header.caplen = UInt32(clamping: bytes.count)
        header.len = UInt32(clamping: max(wireLength, bytes.count))
        return pcap_offline_filter(program, &header, base.assumingMemoryBound(to: UInt8.self)) != 0
    }
}
