import Foundation
import VQWire

// libpcap's part of reading a capture (read(2), its two copies of each block, parsing the
// block) costs about as much as decoding the records behind it. `ReadAheadReader` runs it on
// a thread of its own, a few chunks ahead of the caller: on two cores `vqtap stats` then
// takes about the time of its decoding alone (benchmarks/stats). Packets are handed out in
// the order read, from chunks the reading thread filled; a chunk goes back to it once the
// caller has moved past it.

/// Packets one at a time, handed to a closure without a copy: a capture file read directly
/// (`PcapFileReader`) or ahead on another thread (`ReadAheadReader`).
public protocol PacketReader: AnyObject {
    /// The number of the last frame handed out, from 1.
    var frame: Int { get }
    func nextPacket<T>(_ body: (UInt64, UnsafeRawBufferPointer) throws(DecodeError) -> T) throws(PcapReadError) -> T?
}

extension PcapFileReader: PacketReader {}

/// A `PcapFileReader` read on a thread of its own. Use from one thread; `close()` (or
/// deinit) stops the reading thread. Only for files: a pipe's packets would wait until a
/// chunk is full.
public final class ReadAheadReader: PacketReader {
    public let path: String
    public let linkType: Int32
    /// The number of the last frame handed out, from 1 (as tshark counts).
    public private(set) var frame = 0

    /// Packets read: their bytes one after another in `bytes`, and where each is.
    final class Chunk: @unchecked Sendable {
        var bytes: UnsafeMutableRawPointer
        var capacity: Int
        var used = 0
        var timestamps: [UInt64] = []
        var offsets: [Int] = []
        var lengths: [Int] = []
        /// Why reading stopped after this chunk's packets (nil: the end of the file or more follow).
        var error: PcapReadError?
        var isLast = false

        init(capacity: Int) {
            self.capacity = capacity
            bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            timestamps.reserveCapacity(capacity / 128)
            offsets.reserveCapacity(capacity / 128)
            lengths.reserveCapacity(capacity / 128)
        }

        deinit { bytes.deallocate() }

        func clear() {
            used = 0
            timestamps.removeAll(keepingCapacity: true)
            offsets.removeAll(keepingCapacity: true)
            lengths.removeAll(keepingCapacity: true)
            error = nil
            isLast = false
        }

        /// Appends a packet unless it would not fit (an empty chunk grows to take it).
        func append(_ ns: UInt64, _ raw: UnsafeRawBufferPointer) -> Bool {
            if used + raw.count > capacity {
                guard used == 0 else { return false }
                bytes.deallocate()
                capacity = raw.count
                bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            }
            if let base = raw.baseAddress, raw.count > 0 { (bytes + used).copyMemory(from: base, byteCount: raw.count) }
            timestamps.append(ns)
            offsets.append(used)
            lengths.append(raw.count)
            used += raw.count
            return true
        }
    }

    /// The chunks between the two threads.
    final class Exchange: @unchecked Sendable {
        let condition = NSCondition()
        var full: [Chunk] = []
        var free: [Chunk] = []
        var stop = false
        var readerDone = false
    }

    private let exchange = Exchange()
    private var current: Chunk?
    private var index = 0
    private var finished = false
    private var closed = false

    /// Starts reading `reader` (used only by the reading thread from now on) in chunks of
    /// `chunkBytes`, at most `depth` chunks ahead.
    public init(_ reader: PcapFileReader, chunkBytes: Int = 1 << 20, depth: Int = 4) {
        path = reader.path
        linkType = reader.linkType
        let exchange = exchange
        for _ in 0..<max(2, depth) { exchange.free.append(Chunk(capacity: max(4096, chunkBytes))) }
        let box = ReaderBox(reader)
        let thread = Thread { Self.read(box, exchange) }
        thread.name = "vqtap read-ahead"
        thread.start()
    }

    deinit { close() }

    /// Whether `path` is a regular file (read ahead), not a pipe, a FIFO or standard input
    /// (whose packets must come out as they arrive).
    public static func suits(path: String) -> Bool {
        guard path != "-" else { return false }
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// The reading thread: fills free chunks until the end of the file, an error or `stop`.
    private static func read(_ box: ReaderBox, _ exchange: Exchange) {
        let reader = box.reader
        box.reader = nil
        // The packet that did not fit in the last chunk: the first of the next one.
        var carried: (ns: UInt64, bytes: [UInt8])?
        var done = reader == nil
        while !done {
            exchange.condition.lock()
            while exchange.free.isEmpty && !exchange.stop { exchange.condition.wait() }
            if exchange.stop {
                exchange.condition.unlock()
                break
            }
            let chunk = exchange.free.removeLast()
            exchange.condition.unlock()
            chunk.clear()
            if let c = carried {
                _ = c.bytes.withUnsafeBytes { chunk.append(c.ns, $0) }
                carried = nil
            }
            do {
                while let fits = try reader?.nextPacket({ ns, raw throws(DecodeError) -> Bool in
                    if chunk.append(ns, raw) { return true }
                    carried = (ns, Array(raw))
                    return false
                }), fits {}
                if carried == nil {
                    chunk.isLast = true
                    done = true
                }
            } catch {
                chunk.error = error
                chunk.isLast = true
                done = true
            }
            exchange.condition.lock()
            exchange.full.append(chunk)
            exchange.condition.broadcast()
            exchange.condition.unlock()
        }
        exchange.condition.lock()
        exchange.readerDone = true
        exchange.condition.broadcast()
        exchange.condition.unlock()
    }

    /// The next packet's timestamp (ns) and bytes, handed to `body` without a copy (valid
    /// only during the call); nil at the end. A read error comes after every packet before it.
    public func nextPacket<T>(_ body: (UInt64, UnsafeRawBufferPointer) throws(DecodeError) -> T) throws(PcapReadError) -> T? {
        while true {
            if let chunk = current, index < chunk.timestamps.count {
                let i = index
                index += 1
                frame += 1
                do {
                    return try body(chunk.timestamps[i], UnsafeRawBufferPointer(start: chunk.bytes + chunk.offsets[i], count: chunk.lengths[i]))
                } catch {
                    throw .badRecord(path: path, frame: frame, error: error)
                }
            }
            if finished { return nil }
            if let chunk = current {
                current = nil
                if chunk.isLast {
                    finished = true
                    if let error = chunk.error { throw error }
                    return nil
                }
                exchange.condition.lock()
                exchange.free.append(chunk)
                exchange.condition.broadcast()
                exchange.condition.unlock()
            }
            exchange.condition.lock()
            while exchange.full.isEmpty && !exchange.readerDone { exchange.condition.wait() }
            let next = exchange.full.isEmpty ? nil : exchange.full.removeFirst()
            exchange.condition.unlock()
            guard let next else {
                finished = true
                return nil
            }
            current = next
            index = 0
        }
    }

    /// Stops the reading thread and waits for it (it ends within one packet).
    public func close() {
        guard !closed else { return }
        closed = true
        exchange.condition.lock()
        exchange.stop = true
        exchange.condition.broadcast()
        while !exchange.readerDone { exchange.condition.wait() }
        exchange.condition.unlock()
    }
}

/// Hands the reader to the reading thread.
private final class ReaderBox: @unchecked Sendable {
    var reader: PcapFileReader?
    init(_ reader: PcapFileReader) { self.reader = reader }
}
