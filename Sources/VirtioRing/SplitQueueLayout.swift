// virtio 1.x, 2.7 "Split Virtqueues" (2.7.5 descriptor table, 2.7.6 available ring,
// 2.7.8 used ring, 2.7.7/2.7.10 event suppression); virtio-facts.md "Split virtqueue".
//
//   desc  +0        16*N                       (16-byte aligned)
//         | desc[0] | desc[1] | ... | desc[N-1] |
//
//   avail +0      +2    +4          +4+2N       +6+2N        (2-byte aligned)
//         | flags | idx | ring[0..N-1] | used_event |
//
//   used  +0      +2    +4                     +4+8N        +6+8N   (4-byte aligned)
//         | flags | idx | ring[0..N-1] {le32 id; le32 len} | avail_event |
//
// Indices are free-running u16 counters that wrap at 65536; the slot is idx % N. N is a power
// of 2 (so 65536 is a multiple of N and the slot is idx & (N - 1)).

/// Index arithmetic shared by every split-ring user.
public enum SplitRing {
    public static let maxQueueSize: UInt16 = 32768

    /// How many entries lie between two free-running indices: `to - from` modulo 65536.
    @inlinable @inline(__always)
    public static func distance(from: UInt16, to: UInt16) -> UInt16 { to &- from }

    /// virtio 1.x 2.7.7.2 / Linux `vring_need_event`: whether moving an index from `old` to
    /// `new` crosses `event`, i.e. a notification is due.
    @inlinable @inline(__always)
    public static func needEvent(event: UInt16, new: UInt16, old: UInt16) -> Bool {
        new &- event &- 1 < new &- old
    }

    public static func isValidSize(_ size: UInt16) -> Bool {
        size != 0 && size & (size &- 1) == 0 && size <= maxQueueSize
    }
}

/// One used-ring element: the head of the returned chain and the bytes the device wrote.
public struct UsedElement: Sendable, Hashable {
    public var id: UInt32
    public var len: UInt32
    public init(id: UInt32, len: UInt32) { self.id = id; self.len = len }
}

/// Where the parts of one split virtqueue are in guest-physical memory.
public struct SplitQueueLayout: Sendable, Hashable {
    public let size: UInt16
    public let desc: UInt64
    public let avail: UInt64
    public let used: UInt64

    /// Checks the size (power of 2), the alignments and that no area's end overflows, so
    /// every address below is computed without overflow.
    public init(size: UInt16, desc: UInt64, avail: UInt64, used: UInt64) throws(RingError) {
        guard SplitRing.isValidSize(size) else { throw .invalidQueueSize(size) }
        let n = Int(size)
        for (area, gpa, count, alignment) in [("descriptor table", desc, 16 * n, UInt64(16)),
                                              ("available ring", avail, 6 + 2 * n, 2),
                                              ("used ring", used, 6 + 8 * n, 4)] {
            if gpa.addingReportingOverflow(UInt64(count)).overflow { throw .addressOverflow(gpa: gpa, count: count) }
            if gpa % alignment != 0 { throw .misalignedArea(area: area, gpa: gpa, alignment: alignment) }
        }
        self.size = size; self.desc = desc; self.avail = avail; self.used = used
    }

    public init(_ queue: DeviceLayout.Queue) throws(RingError) {
        try self.init(size: queue.size, desc: queue.desc, avail: queue.avail, used: queue.used)
    }

    /// The legacy (virtio 0.9) layout: desc table at `base`, the available ring right after
    /// it, the used ring at the next `align` boundary (`align` is a power of 2, 4096 on PCI).
    public static func legacy(base: UInt64, size: UInt16, align: UInt64 = 4096) throws(RingError) -> SplitQueueLayout {
        guard SplitRing.isValidSize(size) else { throw .invalidQueueSize(size) }
        precondition(align != 0 && align & (align - 1) == 0, "legacy ring alignment must be a power of 2")
        let total = legacySize(size: size, align: align)
        if base.addingReportingOverflow(total).overflow { throw .addressOverflow(gpa: base, count: Int(clamping: total)) }
        let avail = base + 16 * UInt64(size)
        let used = alignUp(avail + 6 + 2 * UInt64(size), align)
        return try SplitQueueLayout(size: size, desc: base, avail: avail, used: used)
    }

    /// Bytes a legacy ring occupies (Linux `vring_size`).
    public static func legacySize(size: UInt16, align: UInt64 = 4096) -> UInt64 {
        let n = UInt64(size)
        return alignUp(16 * n + 6 + 2 * n, align) + 6 + 8 * n
    }

    static func alignUp(_ v: UInt64, _ align: UInt64) -> UInt64 { (v + align - 1) & ~(align - 1) }

    // Area sizes (the trailing event fields are counted: they exist in every layout, used
    // only with EVENT_IDX).
    public var descAreaSize: Int { 16 * Int(size) }
    public var availAreaSize: Int { 6 + 2 * Int(size) }
    public var usedAreaSize: Int { 6 + 8 * Int(size) }

    /// The slot of a free-running index.
    @inlinable @inline(__always)
    public func slot(_ idx: UInt16) -> UInt16 { idx & (size &- 1) }

    /// Address of desc[i]; `i < size` (a chain walker checks guest-supplied indices first).
    @inlinable @inline(__always)
    public func descAddress(_ i: UInt16) -> UInt64 {
        precondition(i < size, "descriptor index \(i) out of range for queue size \(size)")
        return desc &+ 16 &* UInt64(i)
    }

    public var availFlagsAddress: UInt64 { avail }
    @inlinable public var availIdxAddress: UInt64 { avail &+ 2 }
    /// The avail.ring entry for the free-running index `idx` (its slot is `idx % size`).
    @inlinable @inline(__always)
    public func availRingAddress(_ idx: UInt16) -> UInt64 { avail &+ 4 &+ 2 &* UInt64(slot(idx)) }
    public var usedEventAddress: UInt64 { avail &+ 4 &+ 2 &* UInt64(size) }

    public var usedFlagsAddress: UInt64 { used }
    @inlinable public var usedIdxAddress: UInt64 { used &+ 2 }
    /// The used.ring element for the free-running index `idx`: `id` here, `len` 4 bytes on.
    @inlinable @inline(__always)
    public func usedRingAddress(_ idx: UInt16) -> UInt64 { used &+ 4 &+ 8 &* UInt64(slot(idx)) }
    public var availEventAddress: UInt64 { used &+ 4 &+ 8 &* UInt64(size) }

    /// Throws if any of the three areas is not inside guest memory.
    public func check(in memory: some GuestMemory) throws(RingError) {
        try memory.checkRange(gpa: desc, count: descAreaSize)
        try memory.checkRange(gpa: avail, count: availAreaSize)
        try memory.checkRange(gpa: used, count: usedAreaSize)
    }

    // Ring reads. Indices are loaded with acquire ordering (rule 3): read used.idx before
    // avail.idx and take the timestamp after both (virtio-facts.md).

    public func availIdx(in memory: some GuestMemory) throws(RingError) -> UInt16 {
        try memory.loadAcquire16(availIdxAddress)
    }

    public func usedIdx(in memory: some GuestMemory) throws(RingError) -> UInt16 {
        try memory.loadAcquire16(usedIdxAddress)
    }

    /// The head the driver published at free-running index `idx` (not range-checked: a
    /// walker checks it against the queue size).
    public func availEntry(_ idx: UInt16, in memory: some GuestMemory) throws(RingError) -> UInt16 {
        try memory.readLE16(availRingAddress(idx))
    }

    public func usedEntry(_ idx: UInt16, in memory: some GuestMemory) throws(RingError) -> UsedElement {
        let raw = try memory.readLE64(usedRingAddress(idx))
        return UsedElement(id: UInt32(truncatingIfNeeded: raw), len: UInt32(truncatingIfNeeded: raw >> 32))
    }

    public func usedEvent(in memory: some GuestMemory) throws(RingError) -> UInt16 {
        try memory.readLE16(usedEventAddress)
    }

    public func availEvent(in memory: some GuestMemory) throws(RingError) -> UInt16 {
        try memory.readLE16(availEventAddress)
    }
}
