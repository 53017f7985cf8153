// Guest memory held in this process: tests build rings in it, and it is the reference
// behaviour of GuestMemory (every range checked, every failure an error, never a trap).
// It is a class because guest memory is shared: a walker reads what a writer just wrote.
// Not thread-safe; ring indices are plain loads and stores.

public final class InMemoryGuestMemory: MutableGuestMemory, @unchecked Sendable {
    public let mapped: MappedRegions
    private let buffers: [UnsafeMutableRawBufferPointer]

    /// Zero-filled regions. Overlapping or overflowing regions are a programmer error.
    public convenience init(regions: [(gpa: UInt64, size: Int)]) {
        self.init(contents: regions.map { (gpa: $0.gpa, bytes: [UInt8](repeating: 0, count: $0.size)) })
    }

    /// Regions with the given initial bytes (an empty region is not allowed).
    public init(contents: [(gpa: UInt64, bytes: [UInt8])]) {
        var buffers: [UnsafeMutableRawBufferPointer] = []
        var regions: [MappedRegions.Region] = []
        for c in contents {
            precondition(!c.bytes.isEmpty, "InMemoryGuestMemory: empty region at \(RingError.hex(c.gpa))")
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: c.bytes.count, alignment: 64)
            buf.copyBytes(from: c.bytes)
            buffers.append(buf)
            regions.append(.init(gpa: c.gpa, size: UInt64(c.bytes.count), base: UnsafeRawPointer(buf.baseAddress.unsafelyUnwrapped)))
        }
        self.buffers = buffers
        do { mapped = try MappedRegions(regions) } catch {
            preconditionFailure("InMemoryGuestMemory: \(error)")
        }
    }

    /// One region at `gpa`.
    public convenience init(gpa: UInt64, size: Int) { self.init(regions: [(gpa: gpa, size: size)]) }

    deinit { for b in buffers { b.deallocate() } }

    public func contains(gpa: UInt64, count: Int) -> Bool { mapped.contains(gpa: gpa, count: count) }

    public func translate(gpa: UInt64, count: Int) -> UnsafeRawPointer? { mapped.translate(gpa: gpa, count: count) }

    public func read(_ gpa: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(RingError) {
        try checkRange(gpa: gpa, count: buffer.count)
        guard let p = mapped.translate(gpa: gpa, count: buffer.count), let dst = buffer.baseAddress else { return }
        dst.copyMemory(from: p, byteCount: buffer.count)
    }

    public func loadAcquire16(_ gpa: UInt64) throws(RingError) -> UInt16 { try readLE16(gpa) }

    public func write(_ gpa: UInt64, from bytes: UnsafeRawBufferPointer) throws(RingError) {
        try checkRange(gpa: gpa, count: bytes.count)
        guard let p = mapped.translate(gpa: gpa, count: bytes.count), let src = bytes.baseAddress else { return }
        UnsafeMutableRawPointer(mutating: p).copyMemory(from: src, byteCount: bytes.count)
    }

    public func storeRelease16(_ gpa: UInt64, _ value: UInt16) throws(RingError) { try writeLE16(gpa, value) }
}
