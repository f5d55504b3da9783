import Foundation

/// Packets copied out of libpcap's buffer so another thread can judge them while the next ones are read.
struct PacketBatch: Sendable {
    /// Most packets in one batch.
    static let packetLimit = 4096
    /// Batch size in bytes past which no packet is added (a file's snap length may be 256 KiB per packet).
    static let byteLimit = 1 << 20
    /// The packets' bytes, one after another.
    private(set) var bytes: [UInt8] = []
    /// Where each packet ends in `bytes`.
    private(set) var ends: [Int] = []
    /// Each packet's capture time, nanoseconds since the epoch.
    private(set) var times: [Int64] = []
    /// Each packet's length on the wire.
    private(set) var wireLengths: [Int] = []

    /// A new batch; `reserve` sizes its storage for a full batch of headers-only packets.
    init(reserve: Bool = true) {
        guard reserve else { return }
        bytes.reserveCapacity(PacketBatch.packetLimit * 128)
        ends.reserveCapacity(PacketBatch.packetLimit)
        times.reserveCapacity(PacketBatch.packetLimit)
        wireLengths.reserveCapacity(PacketBatch.packetLimit)
    }

    /// Empties the batch, keeping its storage for the next packets.
    mutating func clear() {
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        times.removeAll(keepingCapacity: true)
        wireLengths.removeAll(keepingCapacity: true)
    }

    /// A batch holding nothing and no storage, left behind in the pipe's slots.
    static let empty = PacketBatch(reserve: false)

    var count: Int { ends.count }
    var isFull: Bool { ends.count >= PacketBatch.packetLimit || bytes.count >= PacketBatch.byteLimit }

    mutating func append(_ packet: CapturedPacket) {
        bytes.append(contentsOf: packet.bytes)
        ends.append(bytes.count)
        times.append(packet.time)
        wireLengths.append(packet.wireLength)
    }

    /// Hands each packet (bytes, time, wire length) to `body` in the order it was read.
    func forEach(_ body: (UnsafeRawBufferPointer, Int64, Int) -> Void) {
        bytes.withUnsafeBytes { all in
            var start = 0
            for index in 0..<ends.count {
                body(UnsafeRawBufferPointer(rebasing: all[start..<ends[index]]), times[index], wireLengths[index])
                start = ends[index]
            }
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
        var batch = batch
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
        queue[head] = PacketBatch.empty
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
                    batch.forEach { bytes, time, wireLength in
                        if filter.passes(bytes, wireLength: wireLength) { analyzer.process(bytes, linkType: linkType, time: time) }
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
