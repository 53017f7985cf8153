#if canImport(Glibc)
import Glibc
#endif

/// The writer's output buffer: whole blocks gathered in one growing allocation, integers
/// stored little-endian in place (no per-byte appends), written out and reused.
public final class BlockBuffer {
    @exclusivity(unchecked) private var base: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var capacity: Int
    @exclusivity(unchecked) public private(set) var count = 0

    public init(capacity: Int = 1 << 16) {
        self.capacity = max(capacity, 64)
        guard let p = malloc(self.capacity) else { preconditionFailure("out of memory") }
        base = p
    }

    deinit { free(base) }

    @inline(__always) public func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    private func grow(_ needed: Int) {
        var c = capacity
        while c < needed { c *= 2 }
        guard let p = realloc(base, c) else { preconditionFailure("out of memory") }
        base = p
        capacity = c
    }

    @inline(__always) public func u8(_ v: UInt8) {
        reserve(1)
        base.storeBytes(of: v, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always) public func le16(_ v: UInt16) {
        reserve(2)
        base.storeBytes(of: v.littleEndian, toByteOffset: count, as: UInt16.self)
        count += 2
    }

    @inline(__always) public func le32(_ v: UInt32) {
        reserve(4)
        base.storeBytes(of: v.littleEndian, toByteOffset: count, as: UInt32.self)
        count += 4
    }

    @inline(__always) public func le64(_ v: UInt64) {
        reserve(8)
        base.storeBytes(of: v.littleEndian, toByteOffset: count, as: UInt64.self)
        count += 8
    }

    // Stores after a `reserve` that covered them (the hot paths reserve a whole block once).
    @inline(__always) func uncheckedLE16(_ v: UInt16) {
        base.storeBytes(of: v.littleEndian, toByteOffset: count, as: UInt16.self)
        count += 2
    }

    @inline(__always) func uncheckedLE32(_ v: UInt32) {
        base.storeBytes(of: v.littleEndian, toByteOffset: count, as: UInt32.self)
        count += 4
    }

    @inline(__always) func uncheckedLE64(_ v: UInt64) {
        base.storeBytes(of: v.littleEndian, toByteOffset: count, as: UInt64.self)
        count += 8
    }

    @inline(__always) func uncheckedBytes(_ b: UnsafeRawBufferPointer) {
        guard let from = b.baseAddress, b.count > 0 else { return }
        (base + count).copyMemory(from: from, byteCount: b.count)
        count += b.count
    }

    @inline(__always) func uncheckedBytes(_ b: [UInt8]) {
        let n = b.count
        guard n > 0 else { return }
        b.withUnsafeBytes { src in
            if let s = src.baseAddress { (base + count).copyMemory(from: s, byteCount: n) }
        }
        count += n
    }

    @inline(__always) func uncheckedZeros(_ n: Int) {
        for i in 0..<n { base.storeBytes(of: UInt8(0), toByteOffset: count + i, as: UInt8.self) }
        count += n
    }

    public func bytes<C: Collection>(_ b: C) where C.Element == UInt8 {
        let n = b.count
        reserve(n)
        let done: Bool? = b.withContiguousStorageIfAvailable { src -> Bool in
            if let s = src.baseAddress, n > 0 { (base + count).copyMemory(from: s, byteCount: n) }
            return true
        }
        if done == nil {
            var i = count
            for v in b { base.storeBytes(of: v, toByteOffset: i, as: UInt8.self); i += 1 }
        }
        count += n
    }

    public func zeros(_ n: Int) {
        guard n > 0 else { return }
        reserve(n)
        (base + count).initializeMemory(as: UInt8.self, repeating: 0, count: n)
        count += n
    }

    /// Overwrites a 32-bit value written earlier (a block's total length).
    public func patchLE32(_ v: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= count, "patch outside the buffer")
        base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    public func removeAll() { count = 0 }

    public func withUnsafeBytes<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    public var array: [UInt8] { withUnsafeBytes { Array($0) } }
}
