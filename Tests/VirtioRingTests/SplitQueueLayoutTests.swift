import Testing
@testable import VirtioRing

@Suite struct SplitQueueLayoutTests {
    // The addresses QEMU 7.2 reported for a request queue (virtio-facts.md).
    let qemu = DeviceLayout.Queue(index: 2, name: "request0", size: 256, desc: 43_950_080, avail: 43_954_176, used: 43_954_752)

    @Test func everyFieldAddressOfAModernLayout() throws {
        let l = try SplitQueueLayout(qemu)
        #expect(l.descAddress(0) == 43_950_080)
        #expect(l.descAddress(255) == 43_950_080 + 255 * 16)
        #expect(l.availFlagsAddress == 43_954_176)
        #expect(l.availIdxAddress == 43_954_178)
        #expect(l.availRingAddress(0) == 43_954_180)
        #expect(l.availRingAddress(255) == 43_954_180 + 510)
        #expect(l.usedEventAddress == 43_954_180 + 512)
        #expect(l.usedFlagsAddress == 43_954_752)
        #expect(l.usedIdxAddress == 43_954_754)
        #expect(l.usedRingAddress(0) == 43_954_756)
        #expect(l.usedRingAddress(255) == 43_954_756 + 255 * 8)
        #expect(l.availEventAddress == 43_954_756 + 256 * 8)
        #expect(l.descAreaSize == 4096)
        #expect(l.availAreaSize == 518)
        #expect(l.usedAreaSize == 2054)
    }

    @Test func ringAddressesTakeFreeRunningIndicesAcrossTheWrap() throws {
        let l = try SplitQueueLayout(size: 8, desc: 0, avail: 0x80, used: 0x100)
        #expect(l.slot(65535) == 7)
        #expect(l.slot(0) == 0)
        #expect(l.slot(8) == 0)
        #expect(l.availRingAddress(65535) == l.availRingAddress(7))
        #expect(l.availRingAddress(65528) == l.availRingAddress(0))
        #expect(l.usedRingAddress(65535) == 0x100 + 4 + 7 * 8)
    }

    @Test func distanceWrapsAt65536() {
        #expect(SplitRing.distance(from: 65535, to: 0) == 1)
        #expect(SplitRing.distance(from: 65530, to: 4) == 10)
        #expect(SplitRing.distance(from: 7, to: 7) == 0)
        #expect(SplitRing.distance(from: 1, to: 0) == 65535)
        #expect(SplitRing.distance(from: 0, to: 256) == 256)
    }

    @Test func needEventTruthTable() {
        // (event, new, old, expected): notify iff event is in [old, new) modulo 65536.
        let table: [(UInt16, UInt16, UInt16, Bool)] = [
            (0, 1, 0, true),          // moved past event 0
            (1, 1, 0, false),         // new == event: not yet crossed
            (5, 10, 0, true),         // event inside the step
            (9, 10, 0, true),         // event == new - 1
            (10, 10, 0, false),
            (0, 10, 1, false),        // event before old: already notified
            (1, 10, 1, true),         // event == old
            (3, 3, 3, false),         // no movement
            (65535, 1, 65534, true),  // step across the wrap, event before it
            (0, 1, 65535, true),      // event right at the wrap
            (2, 1, 65535, false),     // event beyond new
            (65534, 1, 65535, false), // event before old across the wrap
        ]
        for (event, new, old, expected) in table {
            #expect(SplitRing.needEvent(event: event, new: new, old: old) == expected, "event \(event) new \(new) old \(old)")
        }
    }

    @Test func legacyLayoutMatchesLinuxVringSize() throws {
        let l = try SplitQueueLayout.legacy(base: 0x10000, size: 256)
        #expect(l.desc == 0x10000)
        #expect(l.avail == 0x11000)
        #expect(l.used == 0x12000)
        #expect(SplitQueueLayout.legacySize(size: 256) == 10246)
        #expect(SplitQueueLayout.legacySize(size: 128) == 4096 + 6 + 1024)
        let small = try SplitQueueLayout.legacy(base: 0, size: 4, align: 64)
        #expect(small.avail == 64)
        #expect(small.used == 128)
        #expect(throws: RingError.addressOverflow(gpa: UInt64.max - 4095, count: 10246)) {
            try SplitQueueLayout.legacy(base: UInt64.max - 4095, size: 256)
        }
    }

    @Test func invalidLayoutsAreErrors() {
        for size: UInt16 in [0, 3, 100, 65535] {
            #expect(throws: RingError.invalidQueueSize(size)) { try SplitQueueLayout(size: size, desc: 0, avail: 0x1000, used: 0x2000) }
        }
        #expect(throws: RingError.misalignedArea(area: "descriptor table", gpa: 8, alignment: 16)) {
            try SplitQueueLayout(size: 4, desc: 8, avail: 0x1000, used: 0x2000)
        }
        #expect(throws: RingError.misalignedArea(area: "available ring", gpa: 0x1001, alignment: 2)) {
            try SplitQueueLayout(size: 4, desc: 0, avail: 0x1001, used: 0x2000)
        }
        #expect(throws: RingError.misalignedArea(area: "used ring", gpa: 0x2002, alignment: 4)) {
            try SplitQueueLayout(size: 4, desc: 0, avail: 0x1000, used: 0x2002)
        }
        #expect(throws: RingError.addressOverflow(gpa: UInt64.max - 15, count: 38)) {
            try SplitQueueLayout(size: 4, desc: 0, avail: 0x1000, used: UInt64.max - 15)
        }
        #expect(throws: RingError.addressOverflow(gpa: UInt64.max - 15, count: 64)) {
            try SplitQueueLayout(size: 4, desc: UInt64.max - 15, avail: 0x1000, used: 0x2000)
        }
    }

    @Test func checkFindsAnAreaOutsideMemory() throws {
        let mem = InMemoryGuestMemory(gpa: 0, size: 0x1000)
        try SplitQueueLayout(size: 8, desc: 0, avail: 0x80, used: 0x100).check(in: mem)
        let l = try SplitQueueLayout(size: 8, desc: 0, avail: 0x80, used: 0xfc0)
        #expect(throws: RingError.outsideMemory(gpa: 0xfc0, count: 70)) { try l.check(in: mem) }
    }

    @Test func writerPublishesEntriesAcrossTheIndexWrap() throws {
        let mem = InMemoryGuestMemory(gpa: 0, size: 0x1000)
        let l = try SplitQueueLayout(size: 4, desc: 0, avail: 0x100, used: 0x200)
        let w = SplitRingWriter(memory: mem, layout: l)
        try w.setIndices(avail: 65534, used: 65534)
        #expect(try w.publishAvail(3) == 65534)
        #expect(try w.publishAvail(1) == 65535)
        #expect(try w.publishAvail(2) == 0)
        #expect(try l.availIdx(in: mem) == 1)
        #expect(try l.availEntry(65534, in: mem) == 3)
        #expect(try l.availEntry(65535, in: mem) == 1)
        #expect(try l.availEntry(0, in: mem) == 2)
        #expect(try mem.readLE16(0x100 + 4 + 2 * 3) == 1, "65535 % 4 is slot 3")
        #expect(try w.publishUsed(id: 1, len: 96) == 65534)
        #expect(try w.publishUsed(id: 3, len: 0) == 65535)
        #expect(try l.usedIdx(in: mem) == 0)
        #expect(try l.usedEntry(65534, in: mem) == UsedElement(id: 1, len: 96))
        #expect(try l.usedEntry(65535, in: mem) == UsedElement(id: 3, len: 0))
        #expect(SplitRing.distance(from: try l.usedIdx(in: mem), to: try l.availIdx(in: mem)) == 1)
        try w.setUsedEvent(7)
        try w.setAvailEvent(9)
        #expect(try l.usedEvent(in: mem) == 7)
        #expect(try l.availEvent(in: mem) == 9)
        #expect(try mem.readLE16(0x100 + 4 + 8) == 7)
        #expect(try mem.readLE16(0x200 + 4 + 32) == 9)
    }
}
