import Testing
@testable import VirtioRing

/// GuestMemory without the pointer fast path: every read goes through `read`.
final class CopyOnlyMemory: GuestMemory {
    let inner: InMemoryGuestMemory
    init(_ inner: InMemoryGuestMemory) { self.inner = inner }
    func contains(gpa: UInt64, count: Int) -> Bool { inner.contains(gpa: gpa, count: count) }
    func read(_ gpa: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(RingError) { try inner.read(gpa, into: buffer) }
    func loadAcquire16(_ gpa: UInt64) throws(RingError) -> UInt16 { try inner.loadAcquire16(gpa) }
}

@Suite struct GuestMemoryTests {
    let mem = InMemoryGuestMemory(regions: [(gpa: 0x1000, size: 0x100), (gpa: 0x1_0000_0000, size: 0x40)])

    @Test func rangesEndingExactlyAtARegionEndAreInside() throws {
        #expect(mem.contains(gpa: 0x1000, count: 0x100))
        #expect(mem.contains(gpa: 0x10ff, count: 1))
        #expect(mem.contains(gpa: 0x1100, count: 0))
        #expect(mem.contains(gpa: 0x1_0000_0000 + 0x38, count: 8))
        try mem.checkRange(gpa: 0x10f8, count: 8)
        #expect(try mem.readLE64(0x10f8) == 0)
    }

    @Test func oneBytePastARegionIsOutside() {
        #expect(!mem.contains(gpa: 0x1000, count: 0x101))
        #expect(!mem.contains(gpa: 0x10f9, count: 8))
        #expect(!mem.contains(gpa: 0x1100, count: 1))
        #expect(!mem.contains(gpa: 0xfff, count: 1))
        #expect(throws: RingError.outsideMemory(gpa: 0x10f9, count: 8)) { try mem.readLE64(0x10f9) }
        #expect(throws: RingError.outsideMemory(gpa: 0x1_0000_0040, count: 2)) { try mem.readLE16(0x1_0000_0040) }
    }

    @Test func aRangeAcrossTwoRegionsIsOutside() {
        let two = InMemoryGuestMemory(regions: [(gpa: 0, size: 16), (gpa: 16, size: 16)])
        #expect(two.contains(gpa: 8, count: 8))
        #expect(two.contains(gpa: 16, count: 8))
        #expect(!two.contains(gpa: 12, count: 8))
    }

    @Test func rangesWhoseEndOverflowsAreTheirOwnError() {
        #expect(!mem.contains(gpa: UInt64.max, count: 2))
        #expect(!mem.contains(gpa: 0x1000, count: -1))
        #expect(!mem.contains(gpa: 0x1000, count: Int.max))
        #expect(throws: RingError.addressOverflow(gpa: UInt64.max - 3, count: 8)) { try mem.readLE64(UInt64.max - 3) }
        // An end of exactly 2^64 is an overflow too.
        #expect(throws: RingError.addressOverflow(gpa: UInt64.max, count: 1)) { try mem.checkRange(gpa: UInt64.max, count: 1) }
        #expect(throws: RingError.outsideMemory(gpa: UInt64.max, count: 0)) { try mem.checkRange(gpa: UInt64.max, count: 0) }
        #expect(throws: RingError.outsideMemory(gpa: 0x1000, count: -4)) { try mem.checkRange(gpa: 0x1000, count: -4) }
    }

    @Test func littleEndianReadsAndWrites() throws {
        try mem.writeBytes(0x1010, [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(try mem.readLE64(0x1010) == 0x1122_3344_5566_7788)
        #expect(try mem.readLE32(0x1010) == 0x5566_7788)
        #expect(try mem.readLE16(0x1011) == 0x6677)
        #expect(try mem.loadAcquire16(0x1016) == 0x1122)
        try mem.writeLE32(0x1_0000_0000, 0xdead_beef)
        #expect(try mem.bytes(0x1_0000_0000, count: 4) == [0xef, 0xbe, 0xad, 0xde])
        #expect(throws: RingError.outsideMemory(gpa: 0x10fe, count: 4)) { try mem.writeLE32(0x10fe, 1) }
        #expect(try mem.readLE16(0x10fe) == 0, "a failed write changes nothing")
    }

    @Test func theCopyPathAgreesWithThePointerPath() throws {
        try mem.writeBytes(0x1020, (0..<16).map { UInt8($0) })
        let slow = CopyOnlyMemory(mem)
        #expect(slow.translate(gpa: 0x1020, count: 16) == nil)
        #expect(try slow.readLE64(0x1020) == mem.readLE64(0x1020))
        #expect(try slow.readDescriptor(0x1020) == mem.readDescriptor(0x1020))
        #expect(try slow.readDescriptor(0x1020) == Descriptor(addr: 0x0706_0504_0302_0100, len: 0x0b0a_0908, flags: DescriptorFlags(rawValue: 0x0d0c), next: 0x0f0e))
        #expect(throws: RingError.outsideMemory(gpa: 0x10f8, count: 16)) { try slow.readDescriptor(0x10f8) }
    }

    @Test func mappedRegionsRejectOverflowAndOverlap() throws {
        let p = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        defer { p.deallocate() }
        let base = UnsafeRawPointer(p)
        #expect(throws: RingError.addressOverflow(gpa: UInt64.max - 15, count: 16)) {
            try MappedRegions([.init(gpa: UInt64.max - 15, size: 16, base: base)])
        }
        #expect(throws: RingError.outsideMemory(gpa: 0x20, count: 32)) {
            try MappedRegions([.init(gpa: 0, size: 64, base: base), .init(gpa: 0x20, size: 32, base: base)])
        }
        let m = try MappedRegions([.init(gpa: 0x100, size: 32, base: base), .init(gpa: 0x200, size: 32, base: base + 32)])
        #expect(m.translate(gpa: 0x208, count: 8) == base + 40)
        #expect(m.translate(gpa: 0x100, count: 32) == base)
        #expect(m.translate(gpa: 0x100, count: 33) == nil)
        #expect(m.regionIndex(gpa: 0x21f, count: 1) == 1)
        #expect(m.regionIndex(gpa: 0x220, count: 1) == nil)
    }

    @Test func errorsReadAsOneLine() {
        #expect(RingError.outsideMemory(gpa: 0x10f9, count: 8).description == "guest range 0x10f9 + 8 is outside guest memory")
        #expect(RingError.addressOverflow(gpa: UInt64.max, count: 1).description == "guest range 0xffffffffffffffff + 1 overflows 64 bits")
        #expect(RingError.invalidQueueSize(3).description == "queue size 3 is not a power of 2 (split rings need one)")
        #expect(RingError.misalignedArea(area: "used ring", gpa: 0x1002, alignment: 4).description == "used ring at 0x1002 is not aligned to 4 bytes")
    }
}
