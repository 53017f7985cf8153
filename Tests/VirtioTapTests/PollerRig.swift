import VQRecord
import VirtioRing
@testable import VirtioTap

/// A split ring in test memory, a driver/device that writes it, and the poller under test.
/// Layout: ring at 0x1000, buffers of head h at 0x10000 + h * 0x1000 (readable at +0,
/// writable at +0x800), indirect tables at 0x80000 + h * 0x100.
struct PollerRig {
    let memory: InMemoryGuestMemory
    let ring: SplitQueueLayout
    let writer: SplitRingWriter<InMemoryGuestMemory>
    var poller: QueuePoller<InMemoryGuestMemory>
    var now: UInt64 = 1_000

    static let ringBase: UInt64 = 0x1000

    init(size: UInt16 = 8, readableHeader: Int = 4, writableHeader: Int = 4, snaplen: Int = 64,
         limits: ChainLimits = ChainLimits(), memory: InMemoryGuestMemory? = nil, ring: SplitQueueLayout? = nil) throws {
        let mem = memory ?? InMemoryGuestMemory(gpa: 0, size: 0x100000)
        let layout = try ring ?? SplitQueueLayout.legacy(base: Self.ringBase, size: size)
        self.memory = mem
        self.ring = layout
        writer = SplitRingWriter(memory: mem, layout: layout)
        poller = QueuePoller(memory: mem, layout: layout,
                             config: QueueCaptureConfig(queue: 2, readableHeader: readableHeader, writableHeader: writableHeader,
                                                        snaplen: snaplen, limits: limits))
    }

    static func readable(_ head: UInt16) -> UInt64 { 0x10000 + UInt64(head) * 0x1000 }
    static func writable(_ head: UInt16) -> UInt64 { readable(head) + 0x800 }
    static func table(_ head: UInt16) -> UInt64 { 0x80000 + UInt64(head) * 0x100 }

    /// A request at `head`: an indirect table of one readable and one writable buffer (those
    /// of head `buffersOf`, by default its own).
    func post(head: UInt16, request: [UInt8], responseLength: UInt32 = 16, buffersOf owner: UInt16? = nil) throws {
        let b = owner ?? head
        try memory.writeBytes(Self.readable(b), request)
        try writer.writeIndirectChain([.init(addr: Self.readable(b), len: UInt32(request.count)),
                                       .init(addr: Self.writable(b), len: responseLength, writable: true)],
                                      at: head, tableAddr: Self.table(head))
        try writer.publishAvail(head)
    }

    /// A direct chain of one writable buffer (an eventq buffer).
    func postWritable(head: UInt16, length: UInt32 = 16) throws {
        try writer.writeDirectChain([.init(addr: Self.writable(head), len: length, writable: true)], indices: [head])
        try writer.publishAvail(head)
    }

    /// The device writes `response` and returns the chain with `usedLength` (default: the response size).
    func complete(head: UInt16, response: [UInt8], usedLength: UInt32? = nil) throws {
        try memory.writeBytes(Self.writable(head), response)
        try writer.publishUsed(id: UInt32(head), len: usedLength ?? UInt32(response.count))
    }

    mutating func attach(at ns: UInt64? = nil) throws -> [CaptureRecord] {
        if let ns { now = ns }
        var out: [CaptureRecord] = []
        try poller.attach(clock: TapClock(frozenAt: now), into: &out)
        return out
    }

    mutating func poll(at ns: UInt64? = nil) throws -> [CaptureRecord] {
        if let ns { now = ns } else { now += 1_000 }
        var out: [CaptureRecord] = []
        try poller.poll(clock: TapClock(frozenAt: now), into: &out)
        return out
    }

    /// A request at `head` posted and returned before the poll at `ns`, whose records that
    /// poll holds for a verdict; with `rewrite`, the driver has also reaped it and written its
    /// next request's header into the buffer, not yet posted (a reuse faster than the trust
    /// window). Returns what the poll handed out.
    mutating func returnedBeforeItsCopy(head: UInt16, request: [UInt8], response: [UInt8], rewrite: [UInt8]? = nil,
                                        pollAt ns: UInt64) throws -> [CaptureRecord] {
        try post(head: head, request: request)
        try complete(head: head, response: response)
        if let rewrite { try memory.writeBytes(Self.readable(head), rewrite) }
        return try poll(at: ns)
    }

    /// A poll, then every record held for a verdict, as the capture's end hands them out.
    mutating func pollReleasingHeld(at ns: UInt64? = nil) throws -> [CaptureRecord] {
        var out = try poll(at: ns)
        poller.releaseAllHeld(into: &out)
        return out
    }
}

extension CaptureRecord {
    /// Bytes of every segment, in order, joined.
    var allBytes: [UInt8] { segments.flatMap(\.bytes) }
    var dropCount: UInt64? { if case let .drop(d) = body { return d.count }; return nil }
    var dropReason: DropMarker.Reason? { if case let .drop(d) = body { return d.reason }; return nil }
}

func bytes(_ count: Int, from start: UInt8 = 1) -> [UInt8] {
    (0..<count).map { start &+ UInt8(truncatingIfNeeded: $0) }
}

/// Guest memory that runs `rewrite` once, right after the first read of `target` as bytes
/// (not as a descriptor): the driver reusing a buffer just after the tap copied it.
final class RewritingMemory: GuestMemory, @unchecked Sendable {
    let inner: InMemoryGuestMemory
    let target: UInt64
    let rewrite: () throws -> Void
    var rewrites = 0

    init(inner: InMemoryGuestMemory, target: UInt64, rewrite: @escaping () throws -> Void) {
        self.inner = inner; self.target = target; self.rewrite = rewrite
    }

    func contains(gpa: UInt64, count: Int) -> Bool { inner.contains(gpa: gpa, count: count) }
    // No translate: every read goes through `read`, where the rewrite happens.
    func read(_ gpa: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(RingError) {
        try inner.read(gpa, into: buffer)
        if gpa == target && buffer.count != Descriptor.size && rewrites == 0 {
            rewrites += 1
            do { try rewrite() } catch { throw .outsideMemory(gpa: gpa, count: buffer.count) }
        }
    }
    func loadAcquire16(_ gpa: UInt64) throws(RingError) -> UInt16 { try inner.readLE16(gpa) }
}

/// Guest memory that runs `actions[n]` right after the n-th load of the index at `index`:
/// a driver and device that act at chosen points of the tap's poll. No translate: the
/// poller's direct load of used.idx after each copy goes through `loadAcquire16` too.
final class ScriptedMemory: GuestMemory, @unchecked Sendable {
    let inner: InMemoryGuestMemory
    let index: UInt64
    let actions: [Int: () throws -> Void]
    var loads = 0
    var ran = 0

    init(inner: InMemoryGuestMemory, index: UInt64, actions: [Int: () throws -> Void]) {
        self.inner = inner; self.index = index; self.actions = actions
    }

    func contains(gpa: UInt64, count: Int) -> Bool { inner.contains(gpa: gpa, count: count) }
    func read(_ gpa: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(RingError) { try inner.read(gpa, into: buffer) }
    func loadAcquire16(_ gpa: UInt64) throws(RingError) -> UInt16 {
        let value = try inner.readLE16(gpa)
        guard gpa == index else { return value }
        loads += 1
        if let action = actions[loads] {
            ran += 1
            do { try action() } catch { throw .outsideMemory(gpa: gpa, count: 2) }
        }
        return value
    }
}
