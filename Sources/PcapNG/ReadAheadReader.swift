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
    public var frame: Int { cursor.pointee.frame }

    /// One packet of a chunk.
    struct Packet {
        var timestampNs: UInt64
        var offset: Int
        var length: Int
    }

    /// What a chunk holds. Reached through a pointer: the fields of a class are checked for
    /// exclusive access at run time on every access, a sixth of `read -q`'s time (measured).
    struct ChunkData {
        var bytes: UnsafeMutableRawPointer
        var capacity: Int
        var used = 0
        var packets: [Packet] = []
        /// Why reading stopped after this chunk's packets (nil: the end of the file or more follow).
        var error: PcapReadError?
        var isLast = false
    }

    /// Packets read: their bytes one after another, and where each is.
    final class Chunk: @unchecked Sendable {
        let data: UnsafeMutablePointer<ChunkData>

        init(capacity: Int) {
            data = .allocate(capacity: 1)
            data.initialize(to: ChunkData(bytes: .allocate(byteCount: capacity, alignment: 16), capacity: capacity))
            data.pointee.packets.reserveCapacity(capacity / 128)
        }

        deinit {
            data.pointee.bytes.deallocate()
            data.deinitialize(count: 1)
            data.deallocate()
        }

        func clear() {
            data.pointee.used = 0
            data.pointee.packets.removeAll(keepingCapacity: true)
            data.pointee.error = nil
            data.pointee.isLast = false
        }

        /// Appends a packet to a chunk's data unless it would not fit (an empty chunk grows
        /// to take it). On the data, not the chunk: no reference counting per packet.
        static func append(_ d: UnsafeMutablePointer<ChunkData>, _ ns: UInt64, _ raw: UnsafeRawBufferPointer) -> Bool {
            if d.pointee.used + raw.count > d.pointee.capacity {
                guard d.pointee.used == 0 else { return false }
                d.pointee.bytes.deallocate()
                d.pointee.capacity = raw.count
                d.pointee.bytes = .allocate(byteCount: raw.count, alignment: 16)
            }
            if let base = raw.baseAddress, raw.count > 0 { (d.pointee.bytes + d.pointee.used).copyMemory(from: base, byteCount: raw.count) }
            d.pointee.packets.append(Packet(timestampNs: ns, offset: d.pointee.used, length: raw.count))
            d.pointee.used += raw.count
            return true
        }
    }

    /// Where the caller is (through a pointer, as `ChunkData`).
    struct Cursor {
        var current: Chunk?
        /// `current.data`, read per packet without touching the chunk's reference count
        /// (the reading thread's chunks may share its cache line).
        var data: UnsafeMutablePointer<ChunkData>?
        var index = 0
        var frame = 0
        var finished = false
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
    private let cursor: UnsafeMutablePointer<Cursor>
    private var closed = false

    /// Starts reading `reader` (used only by the reading thread from now on) in chunks of
    /// `chunkBytes`, at most `depth` chunks ahead.
    public init(_ reader: PcapFileReader, chunkBytes: Int = 1 << 20, depth: Int = 4) {
        path = reader.path
        linkType = reader.linkType
        cursor = .allocate(capacity: 1)
        cursor.initialize(to: Cursor())
        let exchange = exchange
        for _ in 0..<max(2, depth) { exchange.free.append(Chunk(capacity: max(4096, chunkBytes))) }
        let box = ReaderBox(reader)
        let thread = Thread { Self.read(box, exchange) }
        thread.name = "vqtap read-ahead"
        thread.start()
    }

    deinit {
        close()
        cursor.deinitialize(count: 1)
        cursor.deallocate()
    }

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
            let data = chunk.data
            if let c = carried {
                _ = c.bytes.withUnsafeBytes { Chunk.append(data, c.ns, $0) }
                carried = nil
            }
            do {
                while let fits = try reader?.nextPacket({ ns, raw throws(DecodeError) -> Bool in
                    if Chunk.append(data, ns, raw) { return true }
                    carried = (ns, Array(raw))
                    return false
                }), fits {}
                if carried == nil {
                    chunk.data.pointee.isLast = true
                    done = true
                }
            } catch {
                chunk.data.pointee.error = error
                chunk.data.pointee.isLast = true
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
        let c = cursor
        while true {
            if let d = c.pointee.data, c.pointee.index < d.pointee.packets.count {
                let packet = d.pointee.packets[c.pointee.index]
                c.pointee.index += 1
                c.pointee.frame += 1
                do {
                    return try body(packet.timestampNs, UnsafeRawBufferPointer(start: d.pointee.bytes + packet.offset, count: packet.length))
                } catch {
                    throw .badRecord(path: path, frame: c.pointee.frame, error: error)
                }
            }
            if c.pointee.finished { return nil }
            if let chunk = c.pointee.current {
                c.pointee.current = nil
                c.pointee.data = nil
                if chunk.data.pointee.isLast {
                    c.pointee.finished = true
                    if let error = chunk.data.pointee.error { throw error }
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
                c.pointee.finished = true
                return nil
            }
            c.pointee.current = next
            c.pointee.data = next.data
            c.pointee.index = 0
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
