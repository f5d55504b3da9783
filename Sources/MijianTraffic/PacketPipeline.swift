import Foundation

/// Packets copied out of libpcap's buffer so another thread can judge them while the next ones are read.
struct PacketBatch: Sendable {
    /// Most packets in one batch.
    static let packetLimit = 4096
    /// The packets' bytes, one after another.
    private(set) var bytes: [UInt8] = []
    /// Where each packet ends in `bytes`.
    private(set) var ends: [Int] = []
    /// Each packet's capture time, nanoseconds since the epoch.
    private(set) var times: [Int64] = []

    /// A new batch; `reserve` sizes its storage for a full batch of headers-only packets.
    init(reserve: Bool = true) {
        guard reserve else { return }
        bytes.reserveCapacity(PacketBatch.packetLimit * 128)
        ends.reserveCapacity(PacketBatch.packetLimit)
        times.reserveCapacity(PacketBatch.packetLimit)
    }

    /// A batch holding nothing and no storage, left behind in the pipe's slots.
    static let empty = PacketBatch(reserve: false)

    var count: Int { ends.count }
    var isFull: Bool { ends.count >= PacketBatch.packetLimit }

    mutating func append(_ packet: CapturedPacket) {
        bytes.append(contentsOf: packet.bytes)
        ends.append(bytes.count)
        times.append(packet.time)
    }

    /// Hands each packet to `body` in the order it was read.
    func forEach(_ body: (UnsafeRawBufferPointer, Int64) -> Void) {
        bytes.withUnsafeBytes { all in
            var start = 0
            for index in 0..<ends.count {
                body(UnsafeRawBufferPointer(rebasing: all[start..<ends[index]]), times[index])
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

    init(analyzer: EgressAnalyzer, linkType: LinkType, pipe: PacketPipe) {
        self.analyzer = analyzer
        self.linkType = linkType
        self.pipe = pipe
    }

    /// Starts judging.
    func start() {
        let thread = Thread { [self] in
            let linkType = self.linkType
            var analyzer = self.analyzer
            while let batch = pipe.take() {
                batch.forEach { bytes, time in analyzer.process(bytes, linkType: linkType, time: time) }
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
