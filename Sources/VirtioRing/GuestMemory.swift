// Read access to guest-physical memory (DESIGN.md rule 3): the tap maps guest RAM PROT_READ,
// the simulator maps a shared file read-write, tests use InMemoryGuestMemory. Everything a
// walker or a ring reader needs goes through this protocol, so a range check is done once, in
// one place, with arithmetic that cannot overflow.
//
// A range [gpa, gpa + count) is valid when it lies inside ONE region; `gpa + count` must not
// overflow 64 bits (an end of exactly 2^64 counts as overflow, as in QEMU and Linux).

/// Why a guest-physical range or a ring layout cannot be used.
public enum RingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The range is not inside one region of guest memory.
    case outsideMemory(gpa: UInt64, count: Int)
    /// `gpa + count` does not fit in 64 bits.
    case addressOverflow(gpa: UInt64, count: Int)
    /// A split ring needs a power-of-2 size from 1 to 32768.
    case invalidQueueSize(UInt16)
    /// A ring area breaks the spec's alignment (desc 16, avail 2, used 4).
    case misalignedArea(area: String, gpa: UInt64, alignment: UInt64)

    public var description: String {
        switch self {
        case let .outsideMemory(gpa, count):
            return "guest range \(Self.hex(gpa)) + \(count) is outside guest memory"
        case let .addressOverflow(gpa, count):
            return "guest range \(Self.hex(gpa)) + \(count) overflows 64 bits"
        case let .invalidQueueSize(size):
            return "queue size \(size) is not a power of 2 (split rings need one)"
        case let .misalignedArea(area, gpa, alignment):
            return "\(area) at \(Self.hex(gpa)) is not aligned to \(alignment) bytes"
        }
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
}

/// Read-only access by guest-physical address. Implementations must never trap on any
/// address or count: out-of-range reads throw.
public protocol GuestMemory {
    /// Whether [gpa, gpa + count) lies inside one region. A negative count is never contained.
    func contains(gpa: UInt64, count: Int) -> Bool

    /// A host pointer to `count` bytes at `gpa` when they are one contiguous mapping, or nil
    /// (then callers use `read`). The pointer stays valid as long as the memory object does;
    /// the bytes behind it may change at any time (the guest writes them).
    func translate(gpa: UInt64, count: Int) -> UnsafeRawPointer?

    /// Copies `buffer.count` bytes from `gpa`.
    func read(_ gpa: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(RingError)

    /// A 16-bit little-endian ring index, loaded with acquire ordering so that the ring
    /// entries and descriptors it publishes are read after it.
    func loadAcquire16(_ gpa: UInt64) throws(RingError) -> UInt16

    func readLE16(_ gpa: UInt64) throws(RingError) -> UInt16
    func readLE32(_ gpa: UInt64) throws(RingError) -> UInt32
    func readLE64(_ gpa: UInt64) throws(RingError) -> UInt64
}

extension GuestMemory {
    public func translate(gpa: UInt64, count: Int) -> UnsafeRawPointer? { nil }

    /// Throws the error that fits: `addressOverflow` before `outsideMemory`.
    public func checkRange(gpa: UInt64, count: Int) throws(RingError) {
        guard count >= 0 else { throw .outsideMemory(gpa: gpa, count: count) }
        if gpa.addingReportingOverflow(UInt64(count)).overflow { throw .addressOverflow(gpa: gpa, count: count) }
        guard contains(gpa: gpa, count: count) else { throw .outsideMemory(gpa: gpa, count: count) }
    }

    public func readLE16(_ gpa: UInt64) throws(RingError) -> UInt16 {
        UInt16(littleEndian: try loadInteger(gpa, as: UInt16.self))
    }

    public func readLE32(_ gpa: UInt64) throws(RingError) -> UInt32 {
        UInt32(littleEndian: try loadInteger(gpa, as: UInt32.self))
    }

    public func readLE64(_ gpa: UInt64) throws(RingError) -> UInt64 {
        UInt64(littleEndian: try loadInteger(gpa, as: UInt64.self))
    }

    /// `count` bytes at `gpa`, copied.
    public func bytes(_ gpa: UInt64, count: Int) throws(RingError) -> [UInt8] {
        try checkRange(gpa: gpa, count: count)
        var out = [UInt8](repeating: 0, count: count)
        var failure: RingError?
        out.withUnsafeMutableBytes { buf in
            do throws(RingError) { try read(gpa, into: buf) } catch { failure = error }
        }
        if let failure { throw failure }
        return out
    }

    /// One descriptor, copied once (the caller validates the copy).
    public func readDescriptor(_ gpa: UInt64) throws(RingError) -> Descriptor {
        if let p = translate(gpa: gpa, count: Descriptor.size) { return Descriptor(loading: p) }
        var raw: (UInt64, UInt64) = (0, 0)
        var failure: RingError?
        withUnsafeMutableBytes(of: &raw) { buf in
            do throws(RingError) { try read(gpa, into: buf) } catch { failure = error }
        }
        if let failure { throw failure }
        return withUnsafeBytes(of: raw) { Descriptor(loading: $0.baseAddress.unsafelyUnwrapped) }
    }

    @inline(__always)
    func loadInteger<T: FixedWidthInteger>(_ gpa: UInt64, as: T.Type) throws(RingError) -> T {
        if let p = translate(gpa: gpa, count: MemoryLayout<T>.size) { return p.loadUnaligned(as: T.self) }
        var v: T = 0
        var failure: RingError?
        withUnsafeMutableBytes(of: &v) { buf in
            do throws(RingError) { try read(gpa, into: buf) } catch { failure = error }
        }
        if let failure { throw failure }
        return v
    }
}

extension Descriptor {
    /// Decodes the 16 little-endian bytes at `p` (no alignment needed).
    @inlinable @inline(__always)
    init(loading p: UnsafeRawPointer) {
        self.init(addr: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)),
                  len: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
                  flags: DescriptorFlags(rawValue: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self))),
                  next: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 14, as: UInt16.self)))
    }
}

/// Guest memory the simulator and tests may write. Ring indices are published with release
/// ordering so a reader that loads them with acquire sees the entries written before.
public protocol MutableGuestMemory: GuestMemory {
    func write(_ gpa: UInt64, from bytes: UnsafeRawBufferPointer) throws(RingError)
    func storeRelease16(_ gpa: UInt64, _ value: UInt16) throws(RingError)
}

extension MutableGuestMemory {
    public func writeBytes(_ gpa: UInt64, _ bytes: [UInt8]) throws(RingError) {
        var failure: RingError?
        bytes.withUnsafeBytes { buf in
            do throws(RingError) { try write(gpa, from: buf) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    public func writeLE16(_ gpa: UInt64, _ v: UInt16) throws(RingError) { try storeInteger(gpa, v.littleEndian) }
    public func writeLE32(_ gpa: UInt64, _ v: UInt32) throws(RingError) { try storeInteger(gpa, v.littleEndian) }
    public func writeLE64(_ gpa: UInt64, _ v: UInt64) throws(RingError) { try storeInteger(gpa, v.littleEndian) }

    public func writeDescriptor(_ gpa: UInt64, _ d: Descriptor) throws(RingError) {
        try checkRange(gpa: gpa, count: Descriptor.size)
        try writeLE64(gpa, d.addr)
        try writeLE32(gpa &+ 8, d.len)
        try writeLE16(gpa &+ 12, d.flags.rawValue)
        try writeLE16(gpa &+ 14, d.next)
    }

    func storeInteger<T: FixedWidthInteger>(_ gpa: UInt64, _ v: T) throws(RingError) {
        var failure: RingError?
        withUnsafeBytes(of: v) { buf in
            do throws(RingError) { try write(gpa, from: buf) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}

/// Guest-physical ranges backed by host memory (an mmap of the layout file's regions, or
/// test buffers): the fast `translate` both the tap's and the simulator's memories use.
/// Lookup is linear: a VM has a handful of regions.
public struct MappedRegions: @unchecked Sendable {
    public struct Region: @unchecked Sendable {
        public var gpa: UInt64
        public var size: UInt64
        /// Host address of the region's first byte. Writable only if the mapping is.
        public var base: UnsafeRawPointer

        public init(gpa: UInt64, size: UInt64, base: UnsafeRawPointer) {
            self.gpa = gpa; self.size = size; self.base = base
        }
    }

    public private(set) var regions: [Region]

    /// Regions must not overflow 64 bits, must fit the host address space and must not
    /// overlap (DeviceLayout validation checks the same for files).
    public init(_ regions: [Region]) throws(RingError) {
        for (i, r) in regions.enumerated() {
            if r.gpa.addingReportingOverflow(r.size).overflow || r.size > UInt64(Int.max) {
                throw .addressOverflow(gpa: r.gpa, count: Int(clamping: r.size))
            }
            for o in regions[..<i] where r.gpa < o.gpa + o.size && o.gpa < r.gpa + r.size {
                throw .outsideMemory(gpa: r.gpa, count: Int(clamping: r.size))
            }
        }
        self.regions = regions
    }

    /// Index of the region holding [gpa, gpa + count), if one does. Cannot overflow:
    /// `count <= size` is tested before `gpa - base <= size - count`.
    @inlinable @inline(__always)
    public func regionIndex(gpa: UInt64, count: Int) -> Int? {
        guard count >= 0 else { return nil }
        let n = UInt64(count)
        for i in regions.indices {
            let r = regions[i]
            if gpa >= r.gpa && n <= r.size && gpa - r.gpa <= r.size - n { return i }
        }
        return nil
    }

    @inlinable
    public func contains(gpa: UInt64, count: Int) -> Bool { regionIndex(gpa: gpa, count: count) != nil }

    @inlinable @inline(__always)
    public func translate(gpa: UInt64, count: Int) -> UnsafeRawPointer? {
        guard let i = regionIndex(gpa: gpa, count: count) else { return nil }
        let r = regions[i]
        return r.base + Int(gpa - r.gpa)
    }
}
