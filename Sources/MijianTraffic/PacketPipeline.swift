import Foundation

/// Packets copied out of libpcap's buffer so another thread can judge them while the next ones are read.
///
/// Each record is a 16-byte header (capture time, wire length, captured length) and the captured bytes,
/// packed one after another in storage owned here. A batch belongs to one thread at a time: the reader
/// fills it, hands it through a `PacketPipe`, and does not touch it again until it comes back recycled.
final class PacketBatch: @unchecked Sendable {
    /// Most packets in one batch.
    static let packetLimit = 4096
    /// Batch size in bytes past which no packet is added (a file's snap length may be 256 KiB per packet).
    static let byteLimit = 1 << 20
    private static let headerSize = 16
    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private var used = 0
    /// Packets held.
    private(set) var count = 0

    /// A new batch with room for a full batch of headers-only packets.
    init() {
        capacity = PacketBatch.byteLimit + (1 << 16)
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
    }

    deinit { storage.deallocate() }

    /// Empties the batch, keeping its storage for the next packets.
    func clear() {
        used = 0
        count = 0
    }

    var isFull: Bool { count >= PacketBatch.packetLimit || used >= PacketBatch.byteLimit }

    /// Copies one packet in: its captured bytes, capture time (nanoseconds since the epoch) and wire length.
    func append(_ bytes: UnsafeRawBufferPointer, time: Int64, wireLength: Int) {
        let length = bytes.count
        let needed = PacketBatch.headerSize + length
        if needed > capacity - used { grow(needed) }
        let record = storage + used
        record.storeBytes(of: time, toByteOffset: 0, as: Int64.self)
        record.storeBytes(of: Int32(clamping: wireLength), toByteOffset: 8, as: Int32.self)
        record.storeBytes(of: Int32(length), toByteOffset: 12, as: Int32.self)
        if let source = bytes.baseAddress, length > 0 {
            (record + PacketBatch.headerSize).copyMemory(from: source, byteCount: length)
        }
        // Keep every header 8-byte aligned.
        used += (needed + 7) & ~7
        count += 1
    }

    @inline(never)
    private func grow(_ needed: Int) {
        let grown = max(capacity * 2, used + needed + 8)
        let larger = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 8)
        larger.copyMemory(from: storage, byteCount: used)
        storage.deallocate()
        storage = larger
        capacity = grown
    }

    /// Hands each packet (bytes, time, wire length) to `body` in the order it was read.
    func forEach(_ body: (UnsafeRawBufferPointer, Int64, Int) -> Void) {
        var offset = 0
        for _ in 0..<count {
            let record = storage + offset
            let time = record.load(fromByteOffset: 0, as: Int64.self)
            let wireLength = Int(record.load(fromByteOffset: 8, as: Int32.self))
            let length = Int(record.load(fromByteOffset: 12, as: Int32.self))
            body(UnsafeRawBufferPointer(start: record + PacketBatch.headerSize, count: length), time, wireLength)
            offset += (PacketBatch.headerSize + length + 7) & ~7
        }
    }
}

/// A bounded first-in first-out hand-over of batches from one reading thread to one judging thread.
/// The reader waits when `capacity` batches are waiting, so a slow judge bounds the memory held.
final class PacketPipe: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [PacketBatch] = []
    private var head = 0
    private var closed = false
    private let capacity: Int
    /// Judged batches, emptied, for the reader to fill again (so their memory is touched once).
    private var spare: [PacketBatch] = []

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Queues a batch, waiting while the pipe is full.
    func put(_ batch: PacketBatch) {
        condition.lock()
        while queue.count - head >= capacity { condition.wait() }
        queue.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    /// No more batches will come.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Gives back a judged batch for reuse.
    func recycle(_ batch: PacketBatch) {
        batch.clear()
        condition.lock()
        if spare.count < capacity + 2 { spare.append(batch) }
        condition.unlock()
    }

    /// An empty batch: a recycled one when there is one.
    func emptyBatch() -> PacketBatch {
        condition.lock()
        let reused = spare.popLast()
        condition.unlock()
        return reused ?? PacketBatch()
    }

    /// The next batch, or nil once the pipe is closed and drained.
    func take() -> PacketBatch? {
        condition.lock()
        defer { condition.unlock() }
        while head == queue.count, !closed { condition.wait() }
        guard head < queue.count else { return nil }
        let batch = queue[head]
        head += 1
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        condition.broadcast()
        return batch
    }
}

/// Judges batches on a thread of its own, so reading the next packets and judging these overlap.
final class JudgingThread: @unchecked Sendable {
    let pipe: PacketPipe
    private let finished = DispatchSemaphore(value: 0)
    /// Written by the thread before `finished` is signalled, read only after `wait()`.
    private var analyzer: EgressAnalyzer
    private let linkType: LinkType
    private let filter: CompiledFilter?

    /// A judge for batches of `linkType` frames; `filter`, when given, drops what it does not keep before judging.
    init(analyzer: EgressAnalyzer, linkType: LinkType, filter: CompiledFilter?, pipe: PacketPipe) {
        self.analyzer = analyzer
        self.linkType = linkType
        self.filter = filter
        self.pipe = pipe
    }

    /// Starts judging.
    func start() {
        let thread = Thread { [self] in
            let linkType = self.linkType
            let filter = self.filter
            var analyzer = self.analyzer
            while let batch = pipe.take() {
                if let filter {
                    let policy = analyzer.policy
                    let ethernet = linkType == .ethernet
                    let reach = EgressPolicy.filterReach(linkType: linkType)
                    batch.forEach { bytes, time, wireLength in
                        // The plain inside traffic the filter would drop is dropped without running it.
                        if ethernet, policy.isPlainInsideTraffic(ethernetFrame: bytes) { return }
                        // A record shorter than the filter reads is judged, never filtered: the filter
                        // would reject it for its length alone, and it would go uncounted.
                        if bytes.count < reach || filter.passes(bytes, wireLength: wireLength) {
                            analyzer.process(bytes, linkType: linkType, time: time)
                        }
                    }
                } else {
                    batch.forEach { bytes, time, _ in analyzer.process(bytes, linkType: linkType, time: time) }
                }
                pipe.recycle(batch)
            }
            self.analyzer = analyzer
            finished.signal()
        }
        thread.name = "mijian-traffic-judge"
        thread.start()
    }

    /// Waits until the pipe is closed and every batch judged; the analyzer with everything counted.
    func wait() -> EgressAnalyzer {
        finished.wait()
        return analyzer
    }
}
