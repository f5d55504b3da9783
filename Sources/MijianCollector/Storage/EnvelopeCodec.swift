import CZstd
import Synchronization

/// How the SQLite store keeps an envelope: the bytes the agent signed and sent, byte for byte,
/// either as they came or in a Zstandard frame (RFC 8878) that gives them back exactly.
///
/// Envelopes are the evidence and are kept for ever, and they are most of what the store holds
/// (a report of 50 findings is about 17 KB signed; this machine's own audit is 110 KB). Stored
/// verbatim, each one spread over several overflow pages that the one writer wrote to the log and
/// the checkpointer copied again. A frame is about a fifth of the JSON and costs about a
/// millisecond per megabyte to make, on the request's own thread before the writer sees it.
///
/// A frame is kept only when it is smaller and gives back the very bytes it was made from
/// (decompressed and compared when it is made); otherwise the envelope is kept as it came. Each
/// frame records its content size and an XXH64 checksum of the content, so a damaged frame is
/// an error when it is read, never other bytes.
enum EnvelopeCodec {
    /// The column `reports.envelope_encoding`: 0 for the bytes as they came (every report stored
    /// before frames, and any envelope a frame would not shrink), 1 for a Zstandard frame.
    enum Encoding: Int64, Sendable {
        case verbatim = 0
        case zstd = 1
    }

    /// An envelope as the store writes it.
    struct Packed: Sendable {
        var bytes: [UInt8]
        var encoding: Encoding
    }

    /// The most a stored frame may say it holds: the collector refuses envelopes over 16 MiB by
    /// default; a frame claiming more than this was not written by it and is not allocated.
    static let maxContentBytes = 256 << 20

    /// Zstandard's fastest level: about 1 GB/s here, a fifth of the size on reports.
    static let level: Int32 = 1

    /// Contexts kept for reuse: making one per envelope allocates its tables again (a
    /// decompression context is about 100 KB, which glibc maps and unmaps for every call).
    private static let compressors = Mutex<[Compressor]>([])
    private static let decompressors = Mutex<[Decompressor]>([])

    private final class Compressor: @unchecked Sendable {
        // Used by one thread at a time: taken out of `compressors` under its lock and put back.
        let context: OpaquePointer
        init?() {
            guard let context = ZSTD_createCCtx() else { return nil }
            guard ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, EnvelopeCodec.level)) == 0,
                ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)) == 0,
                ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)) == 0
            else {
                ZSTD_freeCCtx(context)
                return nil
            }
            self.context = context
        }
        deinit { ZSTD_freeCCtx(context) }
    }

    private final class Decompressor: @unchecked Sendable {
        // As `Compressor`: one thread at a time.
        let context: OpaquePointer
        init?() {
            guard let context = ZSTD_createDCtx() else { return nil }
            self.context = context
        }
        deinit { ZSTD_freeDCtx(context) }
    }

    /// At most this many contexts of each kind are kept (more threads than that make their own).
    private static let keptContexts = 16

    /// The envelope as it will be stored: a frame when one is smaller and proven to give back the
    /// same bytes, else the bytes themselves.
    static func pack(_ envelope: [UInt8]) -> Packed {
        guard let frame = frame(envelope), frame.count < envelope.count,
            let back = try? unpackedFrame(frame, limit: envelope.count), back == envelope
        else { return Packed(bytes: envelope, encoding: .verbatim) }
        return Packed(bytes: frame, encoding: .zstd)
    }

    /// A Zstandard frame of the bytes with their size and checksum, or nil when zstd fails.
    static func frame(_ bytes: [UInt8]) -> [UInt8]? {
        guard let compressor = compressors.withLock({ $0.popLast() }) ?? Compressor() else { return nil }
        var failed = false
        let out = [UInt8](unsafeUninitializedCapacity: ZSTD_compressBound(bytes.count)) { output, count in
            let size = bytes.withUnsafeBytes { input in ZSTD_compress2(compressor.context, output.baseAddress, output.count, input.baseAddress, input.count) }
            failed = ZSTD_isError(size) != 0
            count = failed ? 0 : size
        }
        if failed {
            // A failed call can leave the context mid-frame: start the next one afresh.
            ZSTD_CCtx_reset(compressor.context, ZSTD_reset_session_only)
        }
        compressors.withLock { if $0.count < keptContexts { $0.append(compressor) } }
        return failed ? nil : out
    }

    /// Why stored bytes could not be given back.
    struct Failure: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    /// The envelope's bytes as they were signed, from a stored value and its encoding.
    static func unpack(_ stored: [UInt8], encoding: Int64, limit: Int = maxContentBytes) throws(Failure) -> [UInt8] {
        switch Encoding(rawValue: encoding) {
        case .verbatim: return stored
        case .zstd: return try unpackedFrame(stored, limit: limit)
        case nil: throw Failure(description: "envelope_encoding \(encoding) is not one this collector knows (0 as sent, 1 Zstandard): the row was written by another program")
        }
    }

    private static func unpackedFrame(_ frame: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        let declared = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        // ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR are the two largest values.
        guard declared < UInt64.max - 1 else {
            throw Failure(description: "the stored Zstandard frame (\(frame.count) bytes) is damaged: its header gives no content size")
        }
        guard declared <= UInt64(limit) else {
            throw Failure(description: "the stored Zstandard frame says it holds \(declared) bytes, more than the \(limit) an envelope may have: it is damaged")
        }
        let size = Int(declared)
        guard let decompressor = decompressors.withLock({ $0.popLast() }) ?? Decompressor() else {
            throw Failure(description: "zstd could not make a decompression context (out of memory?)")
        }
        defer { decompressors.withLock { if $0.count < keptContexts { $0.append(decompressor) } } }
        var produced = 0
        let out = [UInt8](unsafeUninitializedCapacity: size) { output, count in
            produced = frame.withUnsafeBytes { input in ZSTD_decompressDCtx(decompressor.context, output.baseAddress, size, input.baseAddress, input.count) }
            // Bytes the call did not write are never read: the array ends where they begin.
            count = ZSTD_isError(produced) != 0 ? 0 : min(produced, size)
        }
        if ZSTD_isError(produced) != 0 {
            let name = ZSTD_getErrorName(produced).map { String(cString: $0) } ?? "error \(produced)"
            throw Failure(description: "the stored Zstandard frame (\(frame.count) bytes) is damaged: \(name)")
        }
        guard produced == size else {
            throw Failure(description: "the stored Zstandard frame gave \(produced) bytes where its header says \(size): it is damaged")
        }
        return out
    }
}
