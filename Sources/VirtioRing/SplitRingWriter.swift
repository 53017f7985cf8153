// Writes a split virtqueue the way a driver (avail side) and a device (used side) do, for
// tests and the simulator. Layout: SplitQueueLayout.swift. Indices are published with
// release stores after the entries they cover, as virtio 1.x 2.7.13 asks of a driver.

public struct SplitRingWriter<Memory: MutableGuestMemory> {
    public var memory: Memory
    public let layout: SplitQueueLayout

    /// A buffer to put in a chain.
    public struct Buffer: Sendable, Hashable {
        public var addr: UInt64
        public var len: UInt32
        public var writable: Bool
        public init(addr: UInt64, len: UInt32, writable: Bool = false) {
            self.addr = addr; self.len = len; self.writable = writable
        }
    }

    public init(memory: Memory, layout: SplitQueueLayout) {
        self.memory = memory
        self.layout = layout
    }

    /// Zeroes the three areas (flags, indices, rings, event fields, descriptors).
    public func reset() throws(RingError) {
        try memory.writeBytes(layout.desc, [UInt8](repeating: 0, count: layout.descAreaSize))
        try memory.writeBytes(layout.avail, [UInt8](repeating: 0, count: layout.availAreaSize))
        try memory.writeBytes(layout.used, [UInt8](repeating: 0, count: layout.usedAreaSize))
    }

    public func writeDescriptor(_ d: Descriptor, at index: UInt16) throws(RingError) {
        try memory.writeDescriptor(layout.descAddress(index), d)
    }

    /// An indirect table: `descriptors` written back to back from `gpa`.
    public func writeTable(_ descriptors: [Descriptor], at gpa: UInt64) throws(RingError) {
        try memory.checkRange(gpa: gpa, count: descriptors.count * Descriptor.size)
        for (k, d) in descriptors.enumerated() {
            try memory.writeDescriptor(gpa + UInt64(k * Descriptor.size), d)
        }
    }

    /// Descriptors for `buffers` linked with NEXT, entry k pointing at `indices[k + 1]`.
    public static func linked(_ buffers: [Buffer], indices: [UInt16]) -> [Descriptor] {
        precondition(indices.count == buffers.count, "one index per buffer")
        return buffers.enumerated().map { k, b in
            let last = k == buffers.count - 1
            var flags: DescriptorFlags = b.writable ? .write : []
            if !last { flags.insert(.next) }
            return Descriptor(addr: b.addr, len: b.len, flags: flags, next: last ? 0 : indices[k + 1])
        }
    }

    /// A direct chain in the ring's table, in the descriptors `indices` (the first is the head).
    public func writeDirectChain(_ buffers: [Buffer], indices: [UInt16]) throws(RingError) {
        for (d, i) in zip(Self.linked(buffers, indices: indices), indices) { try writeDescriptor(d, at: i) }
    }

    /// An indirect chain like Linux builds: the table at `tableAddr` with entries 0..n-1
    /// linked in order, and one INDIRECT descriptor at `index` pointing at it.
    public func writeIndirectChain(_ buffers: [Buffer], at index: UInt16, tableAddr: UInt64) throws(RingError) {
        let table = Self.linked(buffers, indices: (0..<buffers.count).map { UInt16(truncatingIfNeeded: $0) })
        try writeTable(table, at: tableAddr)
        try writeDescriptor(Descriptor(addr: tableAddr, len: UInt32(buffers.count * Descriptor.size), flags: .indirect), at: index)
    }

    /// Driver side: puts `head` in the next available slot and publishes it. Returns the
    /// free-running index the entry was written at.
    @discardableResult
    public func publishAvail(_ head: UInt16) throws(RingError) -> UInt16 {
        let idx = try layout.availIdx(in: memory)
        try memory.writeLE16(layout.availRingAddress(idx), head)
        try memory.storeRelease16(layout.availIdxAddress, idx &+ 1)
        return idx
    }

    /// Device side: returns chain `id` with `len` bytes written. Returns the index used.
    @discardableResult
    public func publishUsed(id: UInt32, len: UInt32) throws(RingError) -> UInt16 {
        let idx = try layout.usedIdx(in: memory)
        try memory.writeLE32(layout.usedRingAddress(idx), id)
        try memory.writeLE32(layout.usedRingAddress(idx) &+ 4, len)
        try memory.storeRelease16(layout.usedIdxAddress, idx &+ 1)
        return idx
    }

    /// Sets both free-running indices (to start a test near the 65535 -> 0 wrap).
    public func setIndices(avail: UInt16, used: UInt16) throws(RingError) {
        try memory.storeRelease16(layout.availIdxAddress, avail)
        try memory.storeRelease16(layout.usedIdxAddress, used)
    }

    public func setUsedEvent(_ v: UInt16) throws(RingError) { try memory.writeLE16(layout.usedEventAddress, v) }
    public func setAvailEvent(_ v: UInt16) throws(RingError) { try memory.writeLE16(layout.availEventAddress, v) }
    public func setAvailFlags(_ v: UInt16) throws(RingError) { try memory.writeLE16(layout.availFlagsAddress, v) }
    public func setUsedFlags(_ v: UInt16) throws(RingError) { try memory.writeLE16(layout.usedFlagsAddress, v) }
}

extension SplitRingWriter: Sendable where Memory: Sendable {}
