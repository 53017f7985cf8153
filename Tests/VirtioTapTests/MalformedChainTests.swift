import Testing
import VQRecord
import VirtioRing
@testable import VirtioTap

/// Every walker error becomes a record flagged malformed with its stable error code, never
/// a crash or a hang; the poller keeps going.
@Suite struct MalformedChainTests {
    static let walkerCodes = RingErrorCode.allCases.filter { $0.rawValue >= 1 && $0.rawValue <= 15 }

    /// Sets up the chain at head 1 that breaks the rule of `code`; returns the rig and the detail expected.
    static func rig(for code: RingErrorCode) throws -> (PollerRig, UInt64) {
        let far: UInt64 = 0x200000
        let top: UInt64 = 0xffff_ffff_ffff_fff0
        let buf = PollerRig.readable(1)
        let table = PollerRig.table(1)
        func plain(_ limits: ChainLimits = ChainLimits()) throws -> PollerRig { try PollerRig(limits: limits) }
        switch code {
        case .headOutOfRange:
            let r = try plain()
            try r.writer.publishAvail(99)
            return (r, 99)
        case .descriptorUnreadable:
            // The descriptor table runs past the end of memory: desc 7 cannot be read.
            let mem = InMemoryGuestMemory(gpa: 0, size: 0x100000)
            let ring = try SplitQueueLayout(size: 8, desc: 0xfffc0, avail: 0x2000, used: 0x3000)
            let r = try PollerRig(memory: mem, ring: ring)
            try r.writer.publishAvail(7)
            return (r, 0xfffc0 + 7 * 16)
        case .nextOutOfRange:
            let r = try plain()
            try r.writer.writeDescriptor(Descriptor(addr: buf, len: 4, flags: .next, next: 50), at: 1)
            try r.writer.publishAvail(1)
            return (r, 50)
        case .loop:
            let r = try plain()
            try r.writer.writeDescriptor(Descriptor(addr: buf, len: 4, flags: .next, next: 2), at: 1)
            try r.writer.writeDescriptor(Descriptor(addr: buf, len: 4, flags: .next, next: 1), at: 2)
            try r.writer.publishAvail(1)
            return (r, 1)
        case .bufferOutsideMemory:
            let r = try plain()
            try r.writer.writeDescriptor(Descriptor(addr: far, len: 4), at: 1)
            try r.writer.publishAvail(1)
            return (r, far)
        case .bufferAddressOverflow:
            let r = try plain()
            try r.writer.writeDescriptor(Descriptor(addr: top, len: 0x100), at: 1)
            try r.writer.publishAvail(1)
            return (r, top)
        case .readableAfterWritable:
            let r = try plain()
            try r.writer.writeDescriptor(Descriptor(addr: buf, len: 4, flags: [.write, .next], next: 2), at: 1)
            try r.writer.writeDescriptor(Descriptor(addr: buf, len: 4), at: 2)
            try r.writer.publishAvail(1)
            return (r, 2)
        case .chainTooLong:
            let r = try plain(ChainLimits(maxChainLength: 2))
            try r.writer.writeDirectChain([.init(addr: buf, len: 1), .init(addr: buf, len: 1), .init(addr: buf, len: 1)], indices: [1, 2, 3])
            try r.writer.publishAvail(1)
            return (r, 3)
        case .indirectWithNext:
            let r = try plain()
            try r.writer.writeDescriptor(Descriptor(addr: table, len: 16, flags: [.indirect, .next], next: 2), at: 1)
            try r.writer.publishAvail(1)
            return (r, 1)
        case .nestedIndirect:
            let r = try plain()
            try r.writer.writeTable([Descriptor(addr: buf, len: 4, flags: .next, next: 1), Descriptor(addr: table, len: 16, flags: .indirect)], at: table)
            try r.writer.writeDescriptor(Descriptor(addr: table, len: 32, flags: .indirect), at: 1)
            try r.writer.publishAvail(1)
            return (r, 1 | RingErrorCode.indirectEntryBit)
        case .indirectTableEmpty:
            let r = try plain()
            try r.writer.writeDescriptor(Descriptor(addr: table, len: 0, flags: .indirect), at: 1)
            try r.writer.publishAvail(1)
            return (r, 1)
        case .indirectTableMisaligned:
            let r = try plain()
            try r.writer.writeDescriptor(Descriptor(addr: table, len: 20, flags: .indirect), at: 1)
            try r.writer.publishAvail(1)
            return (r, 20)
        case .indirectTableTooLarge:
            let r = try plain(ChainLimits(maxIndirectEntries: 4))
            try r.writer.writeDescriptor(Descriptor(addr: table, len: 128, flags: .indirect), at: 1)
            try r.writer.publishAvail(1)
            return (r, 8)
        case .indirectTableOutsideMemory:
            let r = try plain()
            try r.writer.writeDescriptor(Descriptor(addr: far, len: 32, flags: .indirect), at: 1)
            try r.writer.publishAvail(1)
            return (r, far)
        case .indirectTableAddressOverflow:
            let r = try plain()
            try r.writer.writeDescriptor(Descriptor(addr: top, len: 32, flags: .indirect), at: 1)
            try r.writer.publishAvail(1)
            return (r, top)
        case .none, .usedIDOutOfRange, .usedLengthExceeds:
            throw TapError("not a walker error")
        }
    }

    @Test(arguments: walkerCodes)
    func eachWalkerErrorIsAMalformedRecordWithItsCode(_ code: RingErrorCode) throws {
        var (rig, detail) = try Self.rig(for: code)
        let records = try rig.poll()
        #expect(records.count == 1)
        let r = try #require(records.first)
        #expect(r.kind == .available)
        #expect(r.flags.contains(.malformed))
        #expect(!r.flags.contains(.torn))
        #expect(r.errorCode == code.rawValue)
        #expect(r.errorDetail == detail)
        #expect(rig.poller.counters == TapCounters(captured: 0, torn: 0, orphan: 0, dropped: 0, malformed: 1))
        // The poller goes on: a good chain after it is captured.
        try rig.post(head: 0, request: [1, 2])
        let next = try rig.poll()
        #expect(next.map(\.head) == [0])
        #expect(next.first?.flags == [.indirect])
    }

    @Test func everyCodeHasAStableNameAndUnknownCodesPrintAsValues() {
        #expect(RingErrorCode.allCases.count == 18)
        #expect(RingErrorCode.allCases.map(\.rawValue) == Array(0...17))
        #expect(RingErrorCode.name(of: 4) == "loop")
        #expect(RingErrorCode.name(of: 17) == "used-length-exceeds")
        #expect(RingErrorCode.name(of: 0x1f) == "unknown(0x1f)")
        #expect(Set(RingErrorCode.allCases.map(\.name)).count == 18)
    }
}

/// Guest memory that rewrites one descriptor right after it is first read: the driver
/// changing a chain while the tap copies it.
final class ChangingMemory: GuestMemory, @unchecked Sendable {
    let inner: InMemoryGuestMemory
    let target: UInt64
    let replacement: Descriptor
    var reads = 0

    init(inner: InMemoryGuestMemory, target: UInt64, replacement: Descriptor) {
        self.inner = inner; self.target = target; self.replacement = replacement
    }

    func contains(gpa: UInt64, count: Int) -> Bool { inner.contains(gpa: gpa, count: count) }
    // No translate: every read goes through `read`, where the change happens.
    func read(_ gpa: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(RingError) {
        try inner.read(gpa, into: buffer)
        if gpa == target && buffer.count == Descriptor.size {
            reads += 1
            if reads == 1 { try inner.writeDescriptor(target, replacement) }
        }
    }
    func loadAcquire16(_ gpa: UInt64) throws(RingError) -> UInt16 { try inner.readLE16(gpa) }
}

@Suite struct ChangedDescriptorTests {
    @Test func aDescriptorChangedBetweenTwoReadsMakesTheChainTorn() throws {
        let mem = InMemoryGuestMemory(gpa: 0, size: 0x100000)
        let ring = try SplitQueueLayout.legacy(base: PollerRig.ringBase, size: 8)
        let writer = SplitRingWriter(memory: mem, layout: ring)
        try writer.writeDirectChain([.init(addr: 0x10000, len: 8), .init(addr: 0x11000, len: 8, writable: true)], indices: [2, 3])
        try writer.publishAvail(2)
        let changing = ChangingMemory(inner: mem, target: ring.descAddress(3),
                                      replacement: Descriptor(addr: 0x12000, len: 8, flags: .write))
        var poller = QueuePoller(memory: changing, layout: ring, config: QueueCaptureConfig(queue: 2))
        var out: [CaptureRecord] = []
        try poller.poll(clock: TapClock(frozenAt: 1), into: &out)
        #expect(out.count == 1)
        #expect(out.first?.flags.contains(.torn) == true)
        #expect(out.first?.segments.map(\.address) == [0x10000, 0x11000])
        #expect(changing.reads == 2)
        #expect(poller.counters == TapCounters(captured: 0, torn: 1, orphan: 0, dropped: 0, malformed: 0))
        // Its completion inherits the verdict.
        try writer.publishUsed(id: 2, len: 8)
        out.removeAll()
        try poller.poll(clock: TapClock(frozenAt: 2), into: &out)
        #expect(out.first?.flags.contains(.torn) == true)
        #expect(out.first?.transactionID != 0)
    }
}
