#if canImport(Glibc)
import Glibc
#endif
import Atomics

// The simulated guest RAM: a file (by default in /dev/shm) mapped MAP_SHARED, read and written
// by the driver and the device, and mapped read-only by a tap. Guest-physical address `gpaBase`
// is file offset 0. Only this file, the rings and the device and driver touch raw memory
// (DESIGN.md rule 1).

public struct SimError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var exitCode: Int32
    public init(_ message: String, exitCode: Int32 = 1) { self.message = message; self.exitCode = exitCode }
    public var description: String { message }
}

public final class SimMemory: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let gpaBase: UInt64
    public let base: UnsafeMutableRawPointer
    let fd: Int32
    let writable: Bool

    /// Creates (or truncates) the file at `path` to `size` bytes and maps it read-write.
    public init(creating path: String, size: Int, gpaBase: UInt64) throws(SimError) {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SimError("--memory \(path): cannot create: \(String(cString: strerror(errno)))") }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let e = String(cString: strerror(errno)); close(fd); unlink(path)
            throw SimError("--memory \(path): cannot size to \(size) bytes: \(e)")
        }
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            let e = String(cString: strerror(errno)); close(fd); unlink(path)
            throw SimError("--memory \(path): cannot map: \(e)")
        }
        self.path = path; self.size = size; self.gpaBase = gpaBase; self.base = p; self.fd = fd; self.writable = true
    }

    /// Maps an existing file read-only, as a tap does (used by tests).
    public init(readOnly path: String, gpaBase: UInt64) throws(SimError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SimError("\(path): cannot open: \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { close(fd); throw SimError("\(path): empty or unreadable") }
        let size = Int(st.st_size)
        guard let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            close(fd); throw SimError("\(path): cannot map")
        }
        self.path = path; self.size = size; self.gpaBase = gpaBase; self.base = p; self.fd = fd; self.writable = false
    }

    deinit {
        munmap(base, size)
        close(fd)
    }

    public func removeFile() { unlink(path) }

    /// True while the file still has its full size and a name (a tap can find it).
    public var isIntact: Bool {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        return Int(st.st_size) >= size && st.st_nlink > 0
    }

    @inline(__always) public func gpa(ofOffset off: Int) -> UInt64 { gpaBase &+ UInt64(off) }

    /// The file offset of `[gpa, gpa+length)` if it lies inside the memory, else nil (cannot overflow).
    @inline(__always) public func offset(gpa: UInt64, length: UInt64) -> Int? {
        guard gpa >= gpaBase else { return nil }
        let off = gpa &- gpaBase
        let total = UInt64(size)
        guard length <= total, off <= total &- length else { return nil }
        return Int(off)
    }

    @inline(__always) func load16(_ off: Int) -> UInt16 { UInt16(littleEndian: base.loadUnaligned(fromByteOffset: off, as: UInt16.self)) }
    @inline(__always) func load32(_ off: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: off, as: UInt32.self)) }
    @inline(__always) func load64(_ off: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: off, as: UInt64.self)) }
    @inline(__always) func store8(_ off: Int, _ v: UInt8) { base.storeBytes(of: v, toByteOffset: off, as: UInt8.self) }
    @inline(__always) func store16(_ off: Int, _ v: UInt16) { base.storeBytes(of: v.littleEndian, toByteOffset: off, as: UInt16.self) }
    @inline(__always) func store32(_ off: Int, _ v: UInt32) { base.storeBytes(of: v.littleEndian, toByteOffset: off, as: UInt32.self) }
    @inline(__always) func store64(_ off: Int, _ v: UInt64) { base.storeBytes(of: v.littleEndian, toByteOffset: off, as: UInt64.self) }
    @inline(__always) func load8(_ off: Int) -> UInt8 { base.load(fromByteOffset: off, as: UInt8.self) }

    /// A read-write mapping's ring index as an atomic (acquire/release hand-off).
    @inline(__always) func atomic16(_ off: Int) -> UnsafeAtomic<UInt16> {
        UnsafeAtomic(at: (base + off).assumingMemoryBound(to: UInt16.AtomicRepresentation.self))
    }

    public func bytes(at off: Int, count: Int) -> [UInt8] {
        [UInt8](UnsafeRawBufferPointer(start: base + off, count: count))
    }
}

/// Hands out guest memory, page-aligned where asked, from a bump pointer.
struct BumpAllocator {
    var next: Int
    let limit: Int

    mutating func take(_ bytes: Int, align: Int = 64) -> Int? {
        let start = (next + align - 1) / align * align
        guard bytes >= 0, start <= limit, bytes <= limit - start else { return nil }
        next = start + bytes
        return start
    }
}

/// Where one split virtqueue lives (file offsets), and typed access to its fields.
/// virtio 1.x 2.7: desc table 16*N, avail `flags idx ring[N] used_event`, used `flags idx {id len}[N] avail_event`.
struct RingPlace: Equatable {
    var size: Int
    var descOff: Int
    var availOff: Int
    var usedOff: Int

    static func bytes(size: Int) -> (desc: Int, avail: Int, used: Int) {
        (16 * size, 6 + 2 * size, 6 + 8 * size)
    }
}

/// Raw accessors for one ring in a mapping. Plain stores for entries and descriptors; the index
/// stores release them and the index loads acquire them (virtio 1.x 2.7.13, the memory model).
struct RingAccess {
    let mem: UnsafeMutableRawPointer
    let size: Int
    let mask: Int
    let desc: Int
    let avail: Int
    let used: Int

    init(_ m: SimMemory, _ p: RingPlace) {
        mem = m.base; size = p.size; mask = p.size - 1; desc = p.descOff; avail = p.availOff; used = p.usedOff
    }

    @inline(__always) var availIdx: UnsafeAtomic<UInt16> {
        UnsafeAtomic(at: (mem + avail + 2).assumingMemoryBound(to: UInt16.AtomicRepresentation.self))
    }
    @inline(__always) var usedIdx: UnsafeAtomic<UInt16> {
        UnsafeAtomic(at: (mem + used + 2).assumingMemoryBound(to: UInt16.AtomicRepresentation.self))
    }
    @inline(__always) func availEntry(_ idx: UInt16) -> UInt16 {
        UInt16(littleEndian: mem.loadUnaligned(fromByteOffset: avail + 4 + 2 * (Int(idx) & mask), as: UInt16.self))
    }
    @inline(__always) func setAvailEntry(_ idx: UInt16, _ head: UInt16) {
        mem.storeBytes(of: head.littleEndian, toByteOffset: avail + 4 + 2 * (Int(idx) & mask), as: UInt16.self)
    }
    @inline(__always) func usedEntry(_ idx: UInt16) -> (id: UInt32, len: UInt32) {
        let off = used + 4 + 8 * (Int(idx) & mask)
        return (UInt32(littleEndian: mem.loadUnaligned(fromByteOffset: off, as: UInt32.self)),
                UInt32(littleEndian: mem.loadUnaligned(fromByteOffset: off + 4, as: UInt32.self)))
    }
    @inline(__always) func setUsedEntry(_ idx: UInt16, id: UInt32, len: UInt32) {
        let off = used + 4 + 8 * (Int(idx) & mask)
        mem.storeBytes(of: id.littleEndian, toByteOffset: off, as: UInt32.self)
        mem.storeBytes(of: len.littleEndian, toByteOffset: off + 4, as: UInt32.self)
    }
    /// `used_event` (after avail.ring[N]), written by the driver with EVENT_IDX.
    @inline(__always) func setUsedEvent(_ v: UInt16) {
        mem.storeBytes(of: v.littleEndian, toByteOffset: avail + 4 + 2 * size, as: UInt16.self)
    }
    @inline(__always) func usedEvent() -> UInt16 {
        UInt16(littleEndian: mem.loadUnaligned(fromByteOffset: avail + 4 + 2 * size, as: UInt16.self))
    }
    /// `avail_event` (after used.ring[N]), written by the device with EVENT_IDX.
    @inline(__always) func setAvailEvent(_ v: UInt16) {
        mem.storeBytes(of: v.littleEndian, toByteOffset: used + 4 + 8 * size, as: UInt16.self)
    }
    @inline(__always) func availEvent() -> UInt16 {
        UInt16(littleEndian: mem.loadUnaligned(fromByteOffset: used + 4 + 8 * size, as: UInt16.self))
    }
    @inline(__always) func setDesc(_ i: Int, addr: UInt64, len: UInt32, flags: UInt16, next: UInt16) {
        let off = desc + 16 * i
        mem.storeBytes(of: addr.littleEndian, toByteOffset: off, as: UInt64.self)
        mem.storeBytes(of: len.littleEndian, toByteOffset: off + 8, as: UInt32.self)
        mem.storeBytes(of: flags.littleEndian, toByteOffset: off + 12, as: UInt16.self)
        mem.storeBytes(of: next.littleEndian, toByteOffset: off + 14, as: UInt16.self)
    }
}

/// `need_event` of virtio 1.x 2.7.10: does moving the index from `old` to `new` pass `event`?
@inline(__always) func needEvent(event: UInt16, new: UInt16, old: UInt16) -> Bool {
    (new &- event &- 1) < (new &- old)
}

/// Monotonic nanoseconds (CLOCK_MONOTONIC).
@inline(__always) func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

func wallClockNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// xoshiro-style fast generator (splitmix64): the workload and fault draws, seedable for tests.
struct SimRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9e37_79b9_7f4a_7c15 : seed }
    @inline(__always) mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    /// Uniform in 0..<n (n > 0), by multiply-shift.
    @inline(__always) mutating func below(_ n: UInt64) -> UInt64 {
        UInt64((UInt128(next()) &* UInt128(n)) >> 64)
    }
    /// Uniform in [0, 1).
    @inline(__always) mutating func unit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
    /// Standard normal (Box-Muller).
    mutating func normal() -> Double {
        let u1 = max(unit(), 1e-300), u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
