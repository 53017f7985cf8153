import Testing
@testable import VirtioRing

/// A 16-entry ring at 0x1000 in a 64 KiB region at 0x1000, buffers from 0x4000, indirect
/// tables from 0x3000.
struct RingFixture {
    static let regionBase: UInt64 = 0x1000
    static let regionSize = 0x10000
    static let regionEnd = regionBase + UInt64(regionSize)
    static let tables: UInt64 = 0x3000
    static let data: UInt64 = 0x4000

    let mem = InMemoryGuestMemory(gpa: regionBase, size: regionSize)
    let layout: SplitQueueLayout
    let writer: SplitRingWriter<InMemoryGuestMemory>

    init(size: UInt16 = 16) {
        do { layout = try SplitQueueLayout(size: size, desc: 0x1000, avail: 0x2000, used: 0x2800) } catch {
            preconditionFailure("\(error)")
        }
        writer = SplitRingWriter(memory: mem, layout: layout)
    }

    func walker(_ limits: ChainLimits = ChainLimits()) -> ChainWalker<InMemoryGuestMemory> {
        ChainWalker(memory: mem, layout: layout, limits: limits)
    }

    func desc(_ i: UInt16, _ addr: UInt64, _ len: UInt32, _ flags: DescriptorFlags = [], next: UInt16 = 0) throws {
        try writer.writeDescriptor(Descriptor(addr: addr, len: len, flags: flags, next: next), at: i)
    }

    func walk(_ head: UInt16, _ limits: ChainLimits = ChainLimits()) throws(ChainError) -> Chain {
        var w = walker(limits)
        return try w.walk(head: head)
    }
}

typealias Buf = SplitRingWriter<InMemoryGuestMemory>.Buffer

@Suite struct ChainWalkerTests {
    // MARK: chains that are valid

    @Test func directChainOfThree() throws {
        let f = RingFixture()
        try f.writer.writeDirectChain([Buf(addr: 0x4000, len: 51), Buf(addr: 0x5000, len: 108, writable: true),
                                       Buf(addr: 0x6000, len: 512, writable: true)], indices: [3, 9, 4])
        let c = try f.walk(3)
        #expect(c.head == 3)
        #expect(c.segments == [
            Segment(addr: 0x4000, len: 51, flags: .next, index: 3, fromIndirect: false),
            Segment(addr: 0x5000, len: 108, flags: [.next, .write], index: 9, fromIndirect: false),
            Segment(addr: 0x6000, len: 512, flags: .write, index: 4, fromIndirect: false),
        ])
        #expect(c.segments.capacity == 3, "the result holds no spare capacity")
        #expect(c.readableCount == 1 && c.writableCount == 2)
        #expect(c.readableBytes == 51 && c.writableBytes == 620)
        #expect(c.ringDescriptorCount == 3)
        #expect(!c.usesIndirect)
        #expect(c.indirectTable == nil)
    }

    @Test func singleDescriptorWithoutNextIgnoresItsNextField() throws {
        let f = RingFixture()
        try f.desc(0, 0x4000, 8, [], next: 999)
        let c = try f.walk(0)
        #expect(c.segments.count == 1)
        #expect(c.readableBytes == 8)
    }

    @Test func indirectTableOf66EntriesLikeLinux() throws {
        let f = RingFixture()
        // virtio-scsi READ: request header, response, then 64 data-in buffers.
        var bufs = [Buf(addr: 0x4000, len: 51)]
        bufs += [Buf(addr: 0x5000, len: 108, writable: true)]
        bufs += (0..<64).map { Buf(addr: 0x6000 + UInt64($0) * 0x100, len: 0x100, writable: true) }
        try f.writer.writeIndirectChain(bufs, at: 5, tableAddr: RingFixture.tables)
        let c = try f.walk(5, ChainLimits(maxChainLength: 66))
        #expect(c.segments.count == 66)
        #expect(c.segments.allSatisfy { $0.fromIndirect })
        #expect(c.segments.map(\.index) == (0..<66).map { UInt16($0) })
        #expect(c.indirectTable == Chain.IndirectTable(desc: 5, addr: RingFixture.tables, len: 66 * 16))
        #expect(c.indirectTable?.entries == 66)
        #expect(c.usesIndirect)
        #expect(c.ringDescriptorCount == 1)
        #expect(c.readableCount == 1 && c.writableCount == 65)
        #expect(c.readableBytes == 51 && c.writableBytes == 108 + 64 * 0x100)
    }

    @Test func directDescriptorsBeforeAFinalIndirectOneAreAccepted() throws {
        // virtio 1.x 2.7.5.3.2: zero or more normal chained descriptors followed by a
        // single INDIRECT descriptor is valid.
        let f = RingFixture()
        try f.desc(7, 0x4000, 51, .next, next: 2)
        try f.writer.writeTable(SplitRingWriter<InMemoryGuestMemory>.linked(
            [Buf(addr: 0x5000, len: 4096), Buf(addr: 0x6000, len: 108, writable: true)], indices: [0, 1]), at: RingFixture.tables)
        // WRITE on the INDIRECT descriptor itself is ignored (the device MUST ignore it).
        try f.desc(2, RingFixture.tables, 32, [.indirect, .write])
        let c = try f.walk(7)
        #expect(c.segments.map(\.addr) == [0x4000, 0x5000, 0x6000])
        #expect(c.segments.map(\.fromIndirect) == [false, true, true])
        #expect(c.ringDescriptorCount == 2)
        #expect(c.readableCount == 2 && c.writableCount == 1)
        #expect(c.indirectTable?.desc == 2)
    }

    @Test func indirectEntriesFollowNextNotTableOrder() throws {
        let f = RingFixture()
        try f.writer.writeTable([
            Descriptor(addr: 0x4000, len: 1, flags: .next, next: 2),
            Descriptor(addr: 0x6000, len: 3, flags: .write),
            Descriptor(addr: 0x5000, len: 2, flags: .next, next: 1),
        ], at: RingFixture.tables)
        try f.desc(0, RingFixture.tables, 48, .indirect)
        let c = try f.walk(0)
        #expect(c.segments.map(\.index) == [0, 2, 1])
        #expect(c.segments.map(\.len) == [1, 2, 3])
    }

    @Test func chainAsLongAsTheQueueIsAccepted() throws {
        let f = RingFixture()
        let bufs = (0..<16).map { Buf(addr: 0x4000 + UInt64($0) * 16, len: 16, writable: $0 >= 8) }
        try f.writer.writeDirectChain(bufs, indices: (0..<16).map { UInt16(15 - $0) })
        let c = try f.walk(15)
        #expect(c.segments.count == 16)
        #expect(c.ringDescriptorCount == 16)
    }

    @Test func buffersEndingExactlyAtTheRegionEndAreValid() throws {
        let f = RingFixture()
        try f.desc(0, RingFixture.regionEnd - 16, 16)
        #expect(try f.walk(0).segments.first?.addr == RingFixture.regionEnd - 16)
        try f.desc(1, RingFixture.regionEnd, 0)
        #expect(try f.walk(1).readableBytes == 0, "an empty buffer at the end is inside")
    }

    @Test func aReusedWalkerGivesTheSameAnswersAndFindsLoopsEveryTime() throws {
        let f = RingFixture()
        try f.writer.writeDirectChain([Buf(addr: 0x4000, len: 1), Buf(addr: 0x4001, len: 1)], indices: [0, 1])
        try f.desc(2, 0x4000, 1, .next, next: 3)
        try f.desc(3, 0x4000, 1, .next, next: 2)
        var w = f.walker()
        for _ in 0..<1000 {
            #expect(try w.walk(head: 0).segments.count == 2)
            #expect(try w.walk(head: 1).segments.count == 1)
            #expect(throws: ChainError.loop(head: 2, at: DescriptorRef(2))) { try w.walk(head: 2) }
        }
    }

    @Test func theCopyPathGivesTheSameChains() throws {
        let f = RingFixture()
        try f.desc(7, 0x4000, 51, .next, next: 2)
        try f.writer.writeIndirectChain([Buf(addr: 0x5000, len: 9), Buf(addr: 0x6000, len: 7, writable: true)],
                                        at: 2, tableAddr: RingFixture.tables)
        var slow = ChainWalker(memory: CopyOnlyMemory(f.mem), layout: f.layout)
        #expect(try slow.walk(head: 7) == f.walk(7))
        try f.desc(9, 0x4000, 1, .next, next: 9)
        #expect(throws: ChainError.loop(head: 9, at: DescriptorRef(9))) { try slow.walk(head: 9) }
    }

    // MARK: one test per error

    @Test func headOutOfRange() {
        let f = RingFixture()
        #expect(throws: ChainError.headOutOfRange(head: 16, queueSize: 16)) { try f.walk(16) }
        #expect(throws: ChainError.headOutOfRange(head: 65535, queueSize: 16)) { try f.walk(65535) }
    }

    @Test func nextOutOfRange() throws {
        let f = RingFixture()
        try f.desc(0, 0x4000, 1, .next, next: 16)
        #expect(throws: ChainError.nextOutOfRange(head: 0, at: DescriptorRef(0), next: 16, tableSize: 16)) { try f.walk(0) }
    }

    @Test func nextOutOfRangeInsideAnIndirectTable() throws {
        let f = RingFixture()
        try f.writer.writeTable([Descriptor(addr: 0x4000, len: 1, flags: .next, next: 1),
                                 Descriptor(addr: 0x4000, len: 1, flags: .next, next: 2)], at: RingFixture.tables)
        try f.desc(0, RingFixture.tables, 32, .indirect)
        #expect(throws: ChainError.nextOutOfRange(head: 0, at: DescriptorRef(1, indirect: true), next: 2, tableSize: 2)) { try f.walk(0) }
    }

    @Test func loopIsReportedAtTheRevisitedDescriptor() throws {
        let f = RingFixture()
        try f.desc(3, 0x4000, 1, .next, next: 5)
        try f.desc(5, 0x4000, 1, .next, next: 7)
        try f.desc(7, 0x4000, 1, .next, next: 5)
        #expect(throws: ChainError.loop(head: 3, at: DescriptorRef(5))) { try f.walk(3) }
        try f.desc(8, 0x4000, 1, .next, next: 8)
        #expect(throws: ChainError.loop(head: 8, at: DescriptorRef(8))) { try f.walk(8) }
    }

    @Test func loopInsideAnIndirectTable() throws {
        let f = RingFixture()
        try f.writer.writeTable([Descriptor(addr: 0x4000, len: 1, flags: .next, next: 1),
                                 Descriptor(addr: 0x4000, len: 1, flags: .next, next: 0)], at: RingFixture.tables)
        try f.desc(0, RingFixture.tables, 32, .indirect)
        #expect(throws: ChainError.loop(head: 0, at: DescriptorRef(0, indirect: true))) { try f.walk(0) }
    }

    @Test func bufferOutsideMemory() throws {
        let f = RingFixture()
        try f.desc(0, RingFixture.regionEnd - 16, 17)
        #expect(throws: ChainError.bufferOutsideMemory(head: 0, at: DescriptorRef(0), addr: RingFixture.regionEnd - 16, len: 17)) { try f.walk(0) }
        try f.desc(1, 0x4000, 1, .next, next: 2)
        try f.desc(2, 0x10, 4, .write)
        #expect(throws: ChainError.bufferOutsideMemory(head: 1, at: DescriptorRef(2), addr: 0x10, len: 4)) { try f.walk(1) }
    }

    @Test func bufferOutsideMemoryInsideAnIndirectTable() throws {
        let f = RingFixture()
        try f.writer.writeTable([Descriptor(addr: 0xdead_0000_0000, len: 8)], at: RingFixture.tables)
        try f.desc(0, RingFixture.tables, 16, .indirect)
        #expect(throws: ChainError.bufferOutsideMemory(head: 0, at: DescriptorRef(0, indirect: true), addr: 0xdead_0000_0000, len: 8)) { try f.walk(0) }
    }

    @Test func bufferAddressOverflow() throws {
        let f = RingFixture()
        try f.desc(0, UInt64.max - 7, 9)
        #expect(throws: ChainError.bufferAddressOverflow(head: 0, at: DescriptorRef(0), addr: UInt64.max - 7, len: 9)) { try f.walk(0) }
        try f.desc(1, UInt64.max, 1)
        #expect(throws: ChainError.bufferAddressOverflow(head: 1, at: DescriptorRef(1), addr: UInt64.max, len: 1)) { try f.walk(1) }
    }

    @Test func indirectTableOutsideMemory() throws {
        let f = RingFixture()
        try f.desc(0, RingFixture.regionEnd - 32, 48, .indirect)
        #expect(throws: ChainError.indirectTableOutsideMemory(head: 0, at: DescriptorRef(0), addr: RingFixture.regionEnd - 32, len: 48)) { try f.walk(0) }
    }

    @Test func indirectTableAddressOverflow() throws {
        let f = RingFixture()
        try f.desc(0, UInt64.max - 15, 32, .indirect)
        #expect(throws: ChainError.indirectTableAddressOverflow(head: 0, at: DescriptorRef(0), addr: UInt64.max - 15, len: 32)) { try f.walk(0) }
    }

    @Test func indirectInsideAnIndirectTable() throws {
        let f = RingFixture()
        try f.writer.writeTable([Descriptor(addr: 0x4000, len: 1, flags: .next, next: 1),
                                 Descriptor(addr: RingFixture.tables, len: 32, flags: .indirect)], at: RingFixture.tables)
        try f.desc(0, RingFixture.tables, 32, .indirect)
        #expect(throws: ChainError.nestedIndirect(head: 0, at: DescriptorRef(1, indirect: true))) { try f.walk(0) }
    }

    @Test func indirectWithNext() throws {
        let f = RingFixture()
        try f.writer.writeTable([Descriptor(addr: 0x4000, len: 1)], at: RingFixture.tables)
        try f.desc(4, 0x4000, 1, .next, next: 6)
        try f.desc(6, RingFixture.tables, 16, [.indirect, .next], next: 1)
        #expect(throws: ChainError.indirectWithNext(head: 4, at: DescriptorRef(6))) { try f.walk(4) }
    }

    @Test func indirectTableOfLengthZero() throws {
        let f = RingFixture()
        try f.desc(0, RingFixture.tables, 0, .indirect)
        #expect(throws: ChainError.indirectTableEmpty(head: 0, at: DescriptorRef(0))) { try f.walk(0) }
    }

    @Test func indirectTableLengthNotAMultipleOf16() throws {
        let f = RingFixture()
        for len: UInt32 in [1, 15, 17, 40] {
            try f.desc(0, RingFixture.tables, len, .indirect)
            #expect(throws: ChainError.indirectTableMisaligned(head: 0, at: DescriptorRef(0), len: len)) { try f.walk(0) }
        }
    }

    @Test func indirectTableOverTheLimit() throws {
        let f = RingFixture()
        try f.desc(0, RingFixture.tables, 16 * 9, .indirect)
        #expect(throws: ChainError.indirectTableTooLarge(head: 0, at: DescriptorRef(0), entries: 9, limit: 8)) {
            try f.walk(0, ChainLimits(maxIndirectEntries: 8))
        }
        // A scribbled length (virtio-facts.md: freed tables are scribbled) is rejected before any read.
        try f.desc(1, RingFixture.tables, 0xffff_fff0, .indirect)
        #expect(throws: ChainError.indirectTableTooLarge(head: 1, at: DescriptorRef(1), entries: 0x0fff_ffff, limit: 4096)) { try f.walk(1) }
    }

    @Test func readableAfterWritable() throws {
        let f = RingFixture()
        try f.writer.writeDirectChain([Buf(addr: 0x4000, len: 1), Buf(addr: 0x5000, len: 1, writable: true),
                                       Buf(addr: 0x6000, len: 1)], indices: [0, 1, 2])
        #expect(throws: ChainError.readableAfterWritable(head: 0, at: DescriptorRef(2))) { try f.walk(0) }
    }

    @Test func readableInAnIndirectTableAfterAWritableDirectDescriptor() throws {
        let f = RingFixture()
        try f.desc(0, 0x5000, 4, [.write, .next], next: 1)
        try f.writer.writeTable([Descriptor(addr: 0x4000, len: 1)], at: RingFixture.tables)
        try f.desc(1, RingFixture.tables, 16, .indirect)
        #expect(throws: ChainError.readableAfterWritable(head: 0, at: DescriptorRef(0, indirect: true))) { try f.walk(0) }
    }

    @Test func chainLongerThanTheQueueSize() throws {
        let f = RingFixture()
        // 17 table entries in a queue of 16: the default limit is the queue size.
        let bufs = (0..<17).map { Buf(addr: 0x4000 + UInt64($0), len: 1) }
        try f.writer.writeIndirectChain(bufs, at: 0, tableAddr: RingFixture.tables)
        #expect(throws: ChainError.chainTooLong(head: 0, at: DescriptorRef(16, indirect: true), limit: 16)) { try f.walk(0) }
        #expect(try f.walk(0, ChainLimits(maxChainLength: 17)).segments.count == 17)
        // A smaller limit applies to direct chains too.
        try f.writer.writeDirectChain(Array(bufs[0..<4]), indices: [1, 2, 3, 4])
        #expect(throws: ChainError.chainTooLong(head: 1, at: DescriptorRef(4), limit: 3)) { try f.walk(1, ChainLimits(maxChainLength: 3)) }
    }

    @Test func descriptorTableOutsideMemory() throws {
        let mem = InMemoryGuestMemory(gpa: 0, size: 0x1000)
        let layout = try SplitQueueLayout(size: 16, desc: 0xff0, avail: 0, used: 0x100)
        var w = ChainWalker(memory: mem, layout: layout)
        try mem.writeDescriptor(0xff0, Descriptor(addr: 0x100, len: 1, flags: .next, next: 1))
        #expect(throws: ChainError.descriptorUnreadable(head: 0, at: DescriptorRef(1), gpa: 0x1000)) { try w.walk(head: 0) }
        #expect(w.segmentsBeforeFailure.map(\.addr) == [0x100])
    }

    @Test func errorsDescribeThemselvesInOneLine() {
        let d7 = DescriptorRef(7), e2 = DescriptorRef(2, indirect: true)
        let cases: [(ChainError, String)] = [
            (.headOutOfRange(head: 300, queueSize: 256), "head 300 out of range for queue size 256"),
            (.descriptorUnreadable(head: 3, at: d7, gpa: 0x1070), "desc 7 at 0x1070 is outside guest memory (head 3)"),
            (.nextOutOfRange(head: 3, at: d7, next: 900, tableSize: 256), "next 900 out of range at desc 7 (table of 256, head 3)"),
            (.loop(head: 3, at: d7), "descriptor loop at desc 7 (head 3)"),
            (.loop(head: 3, at: e2), "descriptor loop at indirect entry 2 (head 3)"),
            (.bufferOutsideMemory(head: 3, at: e2, addr: 0xdead0000, len: 16), "buffer 0xdead0000 + 16 at indirect entry 2 is outside guest memory (head 3)"),
            (.bufferAddressOverflow(head: 3, at: d7, addr: UInt64.max, len: 1), "buffer 0xffffffffffffffff + 1 at desc 7 overflows 64 bits (head 3)"),
            (.readableAfterWritable(head: 3, at: d7), "readable buffer after a writable one at desc 7 (head 3)"),
            (.chainTooLong(head: 3, at: e2, limit: 256), "chain longer than 256 buffers at indirect entry 2 (head 3)"),
            (.indirectWithNext(head: 3, at: d7), "INDIRECT together with NEXT at desc 7 (head 3)"),
            (.nestedIndirect(head: 3, at: e2), "INDIRECT inside an indirect table at indirect entry 2 (head 3)"),
            (.indirectTableEmpty(head: 3, at: d7), "indirect table of length 0 at desc 7 (head 3)"),
            (.indirectTableMisaligned(head: 3, at: d7, len: 40), "indirect table length 40 is not a multiple of 16 at desc 7 (head 3)"),
            (.indirectTableTooLarge(head: 3, at: d7, entries: 5000, limit: 4096), "indirect table of 5000 entries exceeds the limit of 4096 at desc 7 (head 3)"),
            (.indirectTableOutsideMemory(head: 3, at: d7, addr: 0x10, len: 32), "indirect table 0x10 + 32 at desc 7 is outside guest memory (head 3)"),
            (.indirectTableAddressOverflow(head: 3, at: d7, addr: UInt64.max, len: 32), "indirect table 0xffffffffffffffff + 32 at desc 7 overflows 64 bits (head 3)"),
        ]
        for (error, text) in cases {
            #expect(error.description == text)
            #expect(!error.description.contains("\n"))
            #expect(error.head == (error == .headOutOfRange(head: 300, queueSize: 256) ? 300 : 3))
        }
    }
}
