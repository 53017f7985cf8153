// virtio 1.x, 2.7.5 "The Virtqueue Descriptor Table", 2.7.5.3 "Indirect Descriptors";
// virtio-facts.md "Split virtqueue". DESIGN.md rule 3: guest memory is hostile and changes
// under us, so every descriptor is copied exactly once and the copy is validated.
//
//   head -> desc[h] --NEXT--> desc[n] --NEXT--> ... desc[k] (INDIRECT, no NEXT)
//                                                    |
//                                                    v  table of len/16 descriptors
//                                               entry 0 --NEXT--> entry j --> ...
//
// Decision (2.7.5.3.1/2.7.5.3.2): "The device MUST handle the case of zero or more normal
// chained descriptors followed by a single descriptor with flags&VIRTQ_DESC_F_INDIRECT". So
// direct descriptors before one final INDIRECT descriptor are accepted; INDIRECT with NEXT
// and INDIRECT inside a table are errors. The WRITE flag of the INDIRECT descriptor itself
// is ignored (the device MUST ignore it). Readable-before-writable holds across the whole
// chain, table entries included. Zero-length buffers are accepted (the spec does not forbid
// them; a decoder sees an empty segment).
//
// Cost: O(chain length) per walk, one allocation (the returned segment array). Loops are
// found exactly, at the first revisited descriptor, with per-descriptor epoch stamps kept
// in the walker: a new walk bumps the epoch instead of clearing anything.

/// One buffer of a chain, as the descriptor said when it was copied.
public struct Segment: Sendable, Hashable {
    public var addr: UInt64
    public var len: UInt32
    public var flags: DescriptorFlags
    /// Index of the descriptor in its table (the ring's table, or the indirect table).
    public var index: UInt16
    /// Whether the descriptor came from an indirect table.
    public var fromIndirect: Bool

    public init(addr: UInt64, len: UInt32, flags: DescriptorFlags, index: UInt16, fromIndirect: Bool) {
        self.addr = addr; self.len = len; self.flags = flags; self.index = index; self.fromIndirect = fromIndirect
    }

    public var isWritable: Bool { flags.contains(.write) }
}

/// A validated snapshot of one descriptor chain.
public struct Chain: Sendable, Hashable {
    /// The INDIRECT descriptor that ended the direct part, and its table.
    public struct IndirectTable: Sendable, Hashable {
        public var desc: UInt16
        public var addr: UInt64
        public var len: UInt32
        public var entries: Int { Int(len) / Descriptor.size }

        @inlinable
        public init(desc: UInt16, addr: UInt64, len: UInt32) { self.desc = desc; self.addr = addr; self.len = len }
    }

    public var head: UInt16
    /// Buffers in chain order: device-readable first, then device-writable.
    public var segments: [Segment]
    public var indirectTable: IndirectTable?
    /// Descriptors of the ring's own table this chain holds (the INDIRECT one included).
    public var ringDescriptorCount: Int
    public var readableCount: Int
    public var writableCount: Int
    public var readableBytes: UInt64
    public var writableBytes: UInt64

    public var usesIndirect: Bool { indirectTable != nil }

    @inlinable
    public init(head: UInt16, segments: [Segment], indirectTable: IndirectTable?, ringDescriptorCount: Int,
                readableCount: Int, writableCount: Int, readableBytes: UInt64, writableBytes: UInt64) {
        self.head = head; self.segments = segments; self.indirectTable = indirectTable
        self.ringDescriptorCount = ringDescriptorCount
        self.readableCount = readableCount; self.writableCount = writableCount
        self.readableBytes = readableBytes; self.writableBytes = writableBytes
    }
}

/// A descriptor named in an error: an index in the ring's table or in the indirect table.
public struct DescriptorRef: Sendable, Hashable, CustomStringConvertible {
    public var index: UInt16
    public var inIndirectTable: Bool
    public init(_ index: UInt16, indirect: Bool = false) { self.index = index; self.inIndirectTable = indirect }
    public var description: String { inIndirectTable ? "indirect entry \(index)" : "desc \(index)" }
}

/// Why a chain was rejected. Every case names the head and the offending descriptor and value.
public enum ChainError: Error, Sendable, Hashable, CustomStringConvertible {
    case headOutOfRange(head: UInt16, queueSize: UInt16)
    /// A descriptor of the ring's own table cannot be read (the table is not in memory).
    case descriptorUnreadable(head: UInt16, at: DescriptorRef, gpa: UInt64)
    case nextOutOfRange(head: UInt16, at: DescriptorRef, next: UInt16, tableSize: Int)
    /// `at` is the descriptor reached a second time.
    case loop(head: UInt16, at: DescriptorRef)
    case bufferOutsideMemory(head: UInt16, at: DescriptorRef, addr: UInt64, len: UInt32)
    case bufferAddressOverflow(head: UInt16, at: DescriptorRef, addr: UInt64, len: UInt32)
    case readableAfterWritable(head: UInt16, at: DescriptorRef)
    /// More buffers than `limit` (the queue size unless the limits say otherwise).
    case chainTooLong(head: UInt16, at: DescriptorRef, limit: Int)
    case indirectWithNext(head: UInt16, at: DescriptorRef)
    case nestedIndirect(head: UInt16, at: DescriptorRef)
    case indirectTableEmpty(head: UInt16, at: DescriptorRef)
    case indirectTableMisaligned(head: UInt16, at: DescriptorRef, len: UInt32)
    case indirectTableTooLarge(head: UInt16, at: DescriptorRef, entries: Int, limit: Int)
    case indirectTableOutsideMemory(head: UInt16, at: DescriptorRef, addr: UInt64, len: UInt32)
    case indirectTableAddressOverflow(head: UInt16, at: DescriptorRef, addr: UInt64, len: UInt32)

    public var head: UInt16 {
        switch self {
        case let .headOutOfRange(h, _), let .descriptorUnreadable(h, _, _), let .nextOutOfRange(h, _, _, _),
             let .loop(h, _), let .bufferOutsideMemory(h, _, _, _), let .bufferAddressOverflow(h, _, _, _),
             let .readableAfterWritable(h, _), let .chainTooLong(h, _, _), let .indirectWithNext(h, _),
             let .nestedIndirect(h, _), let .indirectTableEmpty(h, _), let .indirectTableMisaligned(h, _, _),
             let .indirectTableTooLarge(h, _, _, _), let .indirectTableOutsideMemory(h, _, _, _),
             let .indirectTableAddressOverflow(h, _, _, _):
            return h
        }
    }

    /// One line, e.g. `descriptor loop at desc 7 (head 3)`.
    public var description: String {
        let x = RingError.hex
        switch self {
        case let .headOutOfRange(h, n):
            return "head \(h) out of range for queue size \(n)"
        case let .descriptorUnreadable(h, at, gpa):
            return "\(at) at \(x(gpa)) is outside guest memory (head \(h))"
        case let .nextOutOfRange(h, at, next, n):
            return "next \(next) out of range at \(at) (table of \(n), head \(h))"
        case let .loop(h, at):
            return "descriptor loop at \(at) (head \(h))"
        case let .bufferOutsideMemory(h, at, addr, len):
            return "buffer \(x(addr)) + \(len) at \(at) is outside guest memory (head \(h))"
        case let .bufferAddressOverflow(h, at, addr, len):
            return "buffer \(x(addr)) + \(len) at \(at) overflows 64 bits (head \(h))"
        case let .readableAfterWritable(h, at):
            return "readable buffer after a writable one at \(at) (head \(h))"
        case let .chainTooLong(h, at, limit):
            return "chain longer than \(limit) buffers at \(at) (head \(h))"
        case let .indirectWithNext(h, at):
            return "INDIRECT together with NEXT at \(at) (head \(h))"
        case let .nestedIndirect(h, at):
            return "INDIRECT inside an indirect table at \(at) (head \(h))"
        case let .indirectTableEmpty(h, at):
            return "indirect table of length 0 at \(at) (head \(h))"
        case let .indirectTableMisaligned(h, at, len):
            return "indirect table length \(len) is not a multiple of 16 at \(at) (head \(h))"
        case let .indirectTableTooLarge(h, at, entries, limit):
            return "indirect table of \(entries) entries exceeds the limit of \(limit) at \(at) (head \(h))"
        case let .indirectTableOutsideMemory(h, at, addr, len):
            return "indirect table \(x(addr)) + \(len) at \(at) is outside guest memory (head \(h))"
        case let .indirectTableAddressOverflow(h, at, addr, len):
            return "indirect table \(x(addr)) + \(len) at \(at) overflows 64 bits (head \(h))"
        }
    }
}

/// Bounds of a walk.
public struct ChainLimits: Sendable, Hashable {
    /// Largest indirect table accepted, in entries (Linux uses up to 66 for virtio-scsi;
    /// QEMU accepts 1024).
    public var maxIndirectEntries: Int
    /// Most buffers in one chain; nil means the queue size (2.7.5.3.1: "A driver MUST NOT
    /// create a descriptor chain longer than the Queue Size of the device").
    public var maxChainLength: Int?

    public init(maxIndirectEntries: Int = 4096, maxChainLength: Int? = nil) {
        precondition(maxIndirectEntries > 0 && (maxChainLength ?? 1) > 0, "chain limits must be positive")
        self.maxIndirectEntries = maxIndirectEntries
        self.maxChainLength = maxChainLength
    }
}

/// Walks the chains of one split queue. Keep one per queue and reuse it: it holds the loop
/// detection stamps and a scratch segment buffer, so a walk allocates only its result.
public struct ChainWalker<Memory: GuestMemory> {
    public var memory: Memory
    public let layout: SplitQueueLayout
    public let limits: ChainLimits

    // Internal state, inlinable so that the tap's walker is specialized for its memory type.
    @usableFromInline var epoch: UInt32 = 0
    @usableFromInline var ringStamps: [UInt32]
    @usableFromInline var tableStamps: [UInt32] = []
    @usableFromInline var scratch: [Segment] = []

    public init(memory: Memory, layout: SplitQueueLayout, limits: ChainLimits = ChainLimits()) {
        self.memory = memory
        self.layout = layout
        self.limits = limits
        ringStamps = [UInt32](repeating: 0, count: Int(layout.size))
        scratch.reserveCapacity(Int(layout.size))
    }

    /// The segments accepted before the last walk failed (for a record flagged malformed).
    public var segmentsBeforeFailure: [Segment] { scratch }

    /// Walks the chain at `head`. Reads each descriptor once, validates the copy.
    @inlinable
    public mutating func walk(head: UInt16) throws(ChainError) -> Chain {
        var chain = try walkKeepingSegments(head: head)
        chain.segments = exactCopy(scratch)
        return chain
    }

    /// The segments of the last walk that succeeded (valid until the next walk).
    public var lastSegments: [Segment] { scratch }

    /// Walks like `walk` but leaves the segments in `lastSegments` and returns the chain
    /// without them: a poller that copies them elsewhere saves an allocation per chain.
    @inlinable
    public mutating func walkKeepingSegments(head: UInt16) throws(ChainError) -> Chain {
        let n = layout.size
        guard head < n else { throw .headOutOfRange(head: head, queueSize: n) }
        nextEpoch()
        scratch.removeAll(keepingCapacity: true)
        var acc = Accumulator(head: head, limit: limits.maxChainLength ?? Int(n))
        let table = memory.translate(gpa: layout.desc, count: layout.descAreaSize)

        var i = head
        while true {
            let at = DescriptorRef(i)
            if ringStamps[Int(i)] == epoch { throw .loop(head: head, at: at) }
            ringStamps[Int(i)] = epoch
            let d: Descriptor
            if let table {
                d = Descriptor(loading: table + 16 * Int(i))
            } else {
                do { d = try memory.readDescriptor(layout.descAddress(i)) } catch {
                    throw .descriptorUnreadable(head: head, at: at, gpa: layout.descAddress(i))
                }
            }
            acc.ringDescriptors += 1
            if d.flags.contains(.indirect) {
                if d.flags.contains(.next) { throw .indirectWithNext(head: head, at: at) }
                try walkIndirect(d, at: at, into: &acc)
                break
            }
            try acc.add(d, at: at, memory: memory, to: &scratch)
            guard d.flags.contains(.next) else { break }
            guard d.next < n else { throw .nextOutOfRange(head: head, at: at, next: d.next, tableSize: Int(n)) }
            i = d.next
        }
        return Chain(head: head, segments: [], indirectTable: acc.indirect,
                     ringDescriptorCount: acc.ringDescriptors,
                     readableCount: acc.readableCount, writableCount: acc.writableCount,
                     readableBytes: acc.readableBytes, writableBytes: acc.writableBytes)
    }

    @inlinable
    mutating func walkIndirect(_ d: Descriptor, at: DescriptorRef, into acc: inout Accumulator) throws(ChainError) {
        let head = acc.head
        guard d.len != 0 else { throw .indirectTableEmpty(head: head, at: at) }
        guard d.len % UInt32(Descriptor.size) == 0 else { throw .indirectTableMisaligned(head: head, at: at, len: d.len) }
        let entries = Int(d.len) / Descriptor.size
        guard entries <= limits.maxIndirectEntries else {
            throw .indirectTableTooLarge(head: head, at: at, entries: entries, limit: limits.maxIndirectEntries)
        }
        if d.addr.addingReportingOverflow(UInt64(d.len)).overflow {
            throw .indirectTableAddressOverflow(head: head, at: at, addr: d.addr, len: d.len)
        }
        guard memory.contains(gpa: d.addr, count: Int(d.len)) else {
            throw .indirectTableOutsideMemory(head: head, at: at, addr: d.addr, len: d.len)
        }
        acc.indirect = Chain.IndirectTable(desc: at.index, addr: d.addr, len: d.len)
        // `next` is 16 bits: entries past 65535 cannot be reached.
        let reachable = min(entries, Int(UInt16.max) + 1)
        // Tables of up to 64 entries (all that drivers make) keep their loop stamps in a
        // register: no array write, no uniqueness check, per descriptor.
        let small = reachable <= 64
        var seen: UInt64 = 0
        if !small && tableStamps.count < reachable { tableStamps = [UInt32](repeating: 0, count: reachable) }
        let table = memory.translate(gpa: d.addr, count: Int(d.len))

        var j: UInt16 = 0
        while true {
            let ref = DescriptorRef(j, indirect: true)
            if small {
                let bit: UInt64 = 1 &<< UInt64(j)
                if seen & bit != 0 { throw .loop(head: head, at: ref) }
                seen |= bit
            } else {
                if tableStamps[Int(j)] == epoch { throw .loop(head: head, at: ref) }
                tableStamps[Int(j)] = epoch
            }
            let e: Descriptor
            let gpa = d.addr + UInt64(j) * UInt64(Descriptor.size)
            if let table {
                e = Descriptor(loading: table + Int(j) * Descriptor.size)
            } else {
                // The whole table was checked above; a failure here means memory shrank.
                do { e = try memory.readDescriptor(gpa) } catch {
                    throw .indirectTableOutsideMemory(head: head, at: at, addr: d.addr, len: d.len)
                }
            }
            if e.flags.contains(.indirect) { throw .nestedIndirect(head: head, at: ref) }
            try acc.add(e, at: ref, memory: memory, to: &scratch)
            guard e.flags.contains(.next) else { return }
            guard Int(e.next) < entries else { throw .nextOutOfRange(head: head, at: ref, next: e.next, tableSize: entries) }
            j = e.next
        }
    }

    /// A copy with capacity == count, never sharing the scratch buffer (sharing would make
    /// the next walk reallocate and the chain keep a queue-sized buffer alive).
    @inlinable
    func exactCopy(_ source: [Segment]) -> [Segment] {
        [Segment](unsafeUninitializedCapacity: source.count) { buf, initialized in
            source.withUnsafeBufferPointer { src in
                if let dst = buf.baseAddress, let from = src.baseAddress {
                    dst.initialize(from: from, count: src.count)
                }
            }
            initialized = source.count
        }
    }

    @inlinable
    mutating func nextEpoch() {
        if epoch == UInt32.max {
            // Once every 2^32 walks: forget every stamp.
            for k in ringStamps.indices { ringStamps[k] = 0 }
            for k in tableStamps.indices { tableStamps[k] = 0 }
            epoch = 0
        }
        epoch += 1
    }
}

extension ChainWalker: Sendable where Memory: Sendable {}

/// Running totals of a walk and the checks every buffer passes.
@usableFromInline
struct Accumulator {
    @usableFromInline let head: UInt16
    @usableFromInline let limit: Int
    @usableFromInline var indirect: Chain.IndirectTable?
    @usableFromInline var ringDescriptors = 0
    @usableFromInline var readableCount = 0
    @usableFromInline var writableCount = 0
    @usableFromInline var readableBytes: UInt64 = 0
    @usableFromInline var writableBytes: UInt64 = 0

    @inlinable
    init(head: UInt16, limit: Int) { self.head = head; self.limit = limit }

    @inlinable @inline(__always)
    mutating func add(_ d: Descriptor, at: DescriptorRef, memory: some GuestMemory, to segments: inout [Segment]) throws(ChainError) {
        if d.addr.addingReportingOverflow(UInt64(d.len)).overflow {
            throw .bufferAddressOverflow(head: head, at: at, addr: d.addr, len: d.len)
        }
        guard memory.contains(gpa: d.addr, count: Int(d.len)) else {
            throw .bufferOutsideMemory(head: head, at: at, addr: d.addr, len: d.len)
        }
        let writable = d.flags.contains(.write)
        if !writable && writableCount > 0 { throw .readableAfterWritable(head: head, at: at) }
        guard segments.count < limit else { throw .chainTooLong(head: head, at: at, limit: limit) }
        if writable {
            writableCount += 1
            writableBytes += UInt64(d.len)
        } else {
            readableCount += 1
            readableBytes += UInt64(d.len)
        }
        segments.append(Segment(addr: d.addr, len: d.len, flags: d.flags, index: at.index, fromIndirect: at.inIndirectTable))
    }
}
