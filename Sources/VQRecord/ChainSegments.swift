// The segments of a chain record, in one allocation: a table of fixed-size entries, then
// the captured bytes of every segment one after the other. A record used to hold an array
// of segments each with an array of bytes (three or four allocations per record, freed by
// another thread than the tap's): allocating, retaining and freeing them cost as much as
// everything else `top` does per record (measured at 500,000 chains/s).
//
//   entry (24 bytes, native byte order; never written to a file: RecordCoding writes the
//   pcapng layout of man/vqtap-pcapng.5):
//   0               8       12  14  16      20      24
//   +---------------+-------+---+---+-------+-------+
//   |    address    |length |flg|---|offset |capturd|   offset: of the bytes, from the
//   +---------------+-------+---+---+-------+-------+   start of the storage's elements
//
//   storage: [entry 0][entry 1]...[entry n-1][bytes of 0][bytes of 1]...
//
// The tap builds the chains of consecutive records in one shared storage (`SegmentSlab`):
// one allocation per few dozen records, and no malloc lock shared with the thread that
// frees them (the two threads took turns on glibc's arena lock at 1.8 M chains/s).

/// The storage of one chain's segments (immutable once built).
final class SegmentStorage: ManagedBuffer<Int, UInt8> {
    static let entrySize = 24

    static func make(capacity: Int) -> SegmentStorage {
        let b = create(minimumCapacity: capacity) { _ in capacity }
        return unsafeDowncast(b, to: SegmentStorage.self)
    }
}

/// Where a producer builds the chains of its records one after the other, in storages of
/// `capacity` bytes (a chain larger than that gets one of its own).
public struct SegmentSlab {
    var storage: SegmentStorage?
    var used = 0
    var capacity = 0
    public let slabCapacity: Int

    public init(capacity: Int = 16 * 1024) { slabCapacity = capacity }

    /// A storage with `need` bytes free at `used`.
    mutating func room(for need: Int) -> (SegmentStorage, Int) {
        if let storage, capacity - used >= need { return (storage, used) }
        if need > slabCapacity / 4 { return (SegmentStorage.make(capacity: need), 0) }
        let s = SegmentStorage.make(capacity: slabCapacity)
        storage = s
        used = 0
        capacity = slabCapacity
        return (s, 0)
    }
}

/// The segments of a chain, as a collection of `RecordSegment` values (each access to an
/// element copies its bytes into an array: hot paths use the accessors by index instead).
/// Sendable: the storage is never written after its init.
public struct ChainSegments: RandomAccessCollection, @unchecked Sendable, Equatable, ExpressibleByArrayLiteral {
    let storage: SegmentStorage?
    /// Where the table starts in the storage, and how many entries it has.
    let start: Int32
    let entryCount: Int32

    public init() { storage = nil; start = 0; entryCount = 0 }

    public init(arrayLiteral elements: RecordSegment...) { self.init(elements) }

    public init(_ segments: [RecordSegment]) {
        guard !segments.isEmpty else { self.init(); return }
        self.init(count: segments.count, byteCapacity: segments.reduce(0) { $0 + $1.bytes.count }) { w in
            for s in segments {
                s.bytes.withUnsafeBytes { w.append(address: s.address, length: s.length, flags: s.flags, bytes: $0) }
            }
        }
    }

    /// Up to `count` segments holding up to `byteCapacity` bytes in all, appended by `fill`
    /// (what does not fit is left out).
    public init(count: Int, byteCapacity: Int, _ fill: (inout Writer) -> Void) {
        var own = SegmentSlab(capacity: 0)
        self.init(in: &own, count: count, byteCapacity: byteCapacity, fill)
    }

    /// The same, built in `slab` after the chains built there before.
    public init(in slab: inout SegmentSlab, count: Int, byteCapacity: Int, _ fill: (inout Writer) -> Void) {
        guard count > 0 else { self.init(); return }
        // Offsets are 32 bits: beyond, segments and bytes are left out (no chain comes near).
        let count = Swift.min(count, 1 << 20)
        let need = count * SegmentStorage.entrySize + Swift.min(Swift.max(0, byteCapacity), Int(Int32.max / 2))
        let (s, at) = slab.room(for: need)
        let written: (Int, Int) = s.withUnsafeMutablePointerToElements { base in
            var w = Writer(base: UnsafeMutableRawPointer(base), table: at, slots: count, end: at + need)
            fill(&w)
            return (w.count, w.bytesEnd)
        }
        if s === slab.storage { slab.used = written.1 }
        if written.0 > 0 {
            self.init(storage: s, start: Int32(at), entryCount: Int32(written.0))
        } else {
            self.init()
        }
    }

    init(storage: SegmentStorage, start: Int32, entryCount: Int32) {
        self.storage = storage; self.start = start; self.entryCount = entryCount
    }

    /// Appends segments into the storage being built.
    public struct Writer {
        let base: UnsafeMutableRawPointer
        let table: Int
        let slots: Int
        let capacity: Int
        public private(set) var count = 0
        var bytesEnd: Int

        init(base: UnsafeMutableRawPointer, table: Int, slots: Int, end: Int) {
            self.base = base; self.table = table; self.slots = slots; capacity = end
            bytesEnd = table + slots * SegmentStorage.entrySize
        }

        /// A segment and its captured bytes (cut to the room left).
        public mutating func append(address: UInt64, length: UInt32, flags: UInt16, bytes: UnsafeRawBufferPointer) {
            guard count < slots else { return }
            let n = Swift.min(bytes.count, capacity - bytesEnd)
            if n > 0, let from = bytes.baseAddress { (base + bytesEnd).copyMemory(from: from, byteCount: n) }
            let e = base + table + count * SegmentStorage.entrySize
            e.storeBytes(of: address, as: UInt64.self)
            e.storeBytes(of: length, toByteOffset: 8, as: UInt32.self)
            e.storeBytes(of: flags, toByteOffset: 12, as: UInt16.self)
            e.storeBytes(of: 0, toByteOffset: 14, as: UInt16.self)
            e.storeBytes(of: UInt32(truncatingIfNeeded: bytesEnd), toByteOffset: 16, as: UInt32.self)
            e.storeBytes(of: UInt32(truncatingIfNeeded: n), toByteOffset: 20, as: UInt32.self)
            bytesEnd += n
            count += 1
        }

        /// A segment without bytes.
        public mutating func append(address: UInt64, length: UInt32, flags: UInt16) {
            append(address: address, length: length, flags: flags, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    // MARK: Collection

    public var startIndex: Int { 0 }
    public var endIndex: Int { Int(entryCount) }
    public var count: Int { Int(entryCount) }
    public var isEmpty: Bool { storage == nil }

    public subscript(i: Int) -> RecordSegment {
        checked(i) { RecordSegment(address: $0.address(i), length: $0.length(i), flags: $0.flags(i), bytes: Array($0.bytes(i))) }
    }

    // MARK: Accessors (no copies)

    /// Calls `body` with the table and bytes (for a loop over every segment).
    @inline(__always)
    public func withUnsafeEntries<R>(_ body: (Entries) throws -> R) rethrows -> R {
        guard let storage else { return try body(Entries(base: nil, table: 0, count: 0)) }
        return try storage.withUnsafeMutablePointerToElements {
            try body(Entries(base: UnsafeRawPointer($0), table: Int(start), count: Int(entryCount)))
        }
    }

    /// The table and bytes of a storage, valid inside `withUnsafeEntries`.
    public struct Entries {
        let base: UnsafeRawPointer?
        let table: Int
        public let count: Int

        @inline(__always) func entry(_ i: Int) -> UnsafeRawPointer {
            // count > 0 implies base.
            base.unsafelyUnwrapped + (table &+ i &* SegmentStorage.entrySize)
        }

        @inline(__always) public func address(_ i: Int) -> UInt64 { entry(i).loadUnaligned(as: UInt64.self) }
        @inline(__always) public func length(_ i: Int) -> UInt32 { entry(i).loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
        @inline(__always) public func flags(_ i: Int) -> UInt16 { entry(i).loadUnaligned(fromByteOffset: 12, as: UInt16.self) }
        @inline(__always) public func isWritable(_ i: Int) -> Bool { flags(i) & 2 != 0 }
        @inline(__always) public func captured(_ i: Int) -> Int { Int(entry(i).loadUnaligned(fromByteOffset: 20, as: UInt32.self)) }

        @inline(__always) public func bytes(_ i: Int) -> UnsafeRawBufferPointer {
            let e = entry(i)
            let offset = Int(e.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
            return UnsafeRawBufferPointer(start: base.unsafelyUnwrapped + offset, count: captured(i))
        }
    }

    // By index, checked (a wrong index stops here rather than read past the table).
    public func address(_ i: Int) -> UInt64 { checked(i) { $0.address(i) } }
    public func length(_ i: Int) -> UInt32 { checked(i) { $0.length(i) } }
    public func flags(_ i: Int) -> UInt16 { checked(i) { $0.flags(i) } }
    public func isWritable(_ i: Int) -> Bool { checked(i) { $0.isWritable(i) } }
    public func captured(_ i: Int) -> Int { checked(i) { $0.captured(i) } }

    /// The captured bytes of segment `i`, in place.
    public func withBytes<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try checked(i) { try body($0.bytes(i)) }
    }

    @inline(__always)
    private func checked<R>(_ i: Int, _ body: (Entries) throws -> R) rethrows -> R {
        precondition(i >= 0 && i < count, "segment \(i) of \(count)")
        return try withUnsafeEntries(body)
    }

    /// The bytes captured in all.
    public var capturedTotal: Int {
        withUnsafeEntries { e in
            var n = 0
            for i in 0..<e.count { n += e.captured(i) }
            return n
        }
    }

    public static func == (a: ChainSegments, b: ChainSegments) -> Bool {
        if a.storage === b.storage && a.start == b.start && a.entryCount == b.entryCount { return true }
        guard a.count == b.count else { return false }
        return a.withUnsafeEntries { x in
            b.withUnsafeEntries { y in
                for i in 0..<x.count {
                    guard x.address(i) == y.address(i), x.length(i) == y.length(i), x.flags(i) == y.flags(i),
                          x.bytes(i).elementsEqual(y.bytes(i)) else { return false }
                }
                return true
            }
        }
    }
}

extension ChainSegments: CustomStringConvertible {
    public var description: String { Array(self).description }
}
