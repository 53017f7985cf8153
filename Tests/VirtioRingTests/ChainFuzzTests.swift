import Testing
@testable import VirtioRing

/// SplitMix64: small, seeded, the same sequence on every platform.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

@Suite struct ChainFuzzTests {
    static let queueSize: UInt16 = 8
    static let tableEntries = 24

    /// Descriptors that are plausible often enough to reach deep into the walker: addresses
    /// mostly inside memory or near its edges, small `next` values, indirect lengths that are
    /// mostly multiples of 16.
    static func randomDescriptor(_ rng: inout SplitMix64, tables: UInt64) -> Descriptor {
        let end = RingFixture.regionEnd
        let addr: UInt64
        switch rng.next() % 8 {
        case 0: addr = rng.next()
        case 1: addr = UInt64.max - rng.next() % 64
        case 2: addr = end - rng.next() % 64
        case 3: addr = tables + 16 * (rng.next() % 8)
        case 4: addr = RingFixture.regionBase - rng.next() % 32
        default: addr = RingFixture.data + rng.next() % 0x8000
        }
        let len: UInt32
        switch rng.next() % 6 {
        case 0: len = UInt32(truncatingIfNeeded: rng.next())
        case 1: len = UInt32(16 * (rng.next() % UInt64(tableEntries + 2)))
        case 2: len = UInt32(rng.next() % 40)
        default: len = UInt32(rng.next() % 0x1000)
        }
        let flags = rng.next() % 16 == 0 ? UInt16(truncatingIfNeeded: rng.next()) : UInt16(rng.next() % 8)
        let next = rng.next() % 16 == 0 ? UInt16(truncatingIfNeeded: rng.next()) : UInt16(rng.next() % UInt64(tableEntries + 2))
        return Descriptor(addr: addr, len: len, flags: DescriptorFlags(rawValue: flags), next: next)
    }

    /// Mostly well-formed: NEXT to the following entry, WRITE only towards the end, rare
    /// INDIRECT; ring descriptors point at the indirect table a quarter of the time.
    static func plausibleDescriptor(_ rng: inout SplitMix64, position: Int, count: Int, inTable: Bool) -> Descriptor {
        if !inTable && rng.next() % 4 == 0 {
            let entries = 1 + rng.next() % UInt64(tableEntries)
            let len = rng.next() % 32 == 0 ? UInt32(rng.next() % 400) : UInt32(16 * entries)
            return Descriptor(addr: RingFixture.tables, len: len, flags: rng.next() % 32 == 0 ? [.indirect, .next] : .indirect)
        }
        var flags: DescriptorFlags = []
        if rng.next() % 6 != 0 { flags.insert(.next) }
        if position * 2 > count || rng.next() % 16 == 0 { flags.insert(.write) }
        if inTable && rng.next() % 64 == 0 { flags.insert(.indirect) }
        let next = rng.next() % 16 == 0 ? UInt16(rng.next() % UInt64(count + 1)) : UInt16((position + 1) % count)
        let addr = rng.next() % 64 == 0 ? RingFixture.regionEnd - rng.next() % 16 : RingFixture.data + rng.next() % 0x8000
        return Descriptor(addr: addr, len: UInt32(rng.next() % 0x200), flags: flags, next: next)
    }

    @Test func randomTablesGiveAChainOrAnErrorAndChainsKeepTheInvariants() throws {
        var rng = SplitMix64(seed: 0x7671_7461_7000_0001)
        let f = RingFixture(size: Self.queueSize)
        let limits = ChainLimits(maxIndirectEntries: 16)
        var fast = f.walker(limits)
        var slow = ChainWalker(memory: CopyOnlyMemory(f.mem), layout: f.layout, limits: limits)
        var chains = 0, indirectChains = 0
        var errorKinds = Set<String>()

        for iteration in 0..<20_000 {
            if iteration % 3 == 2 {
                let n = Int(Self.queueSize)
                for i in 0..<n {
                    try f.writer.writeDescriptor(Self.plausibleDescriptor(&rng, position: i, count: n, inTable: false), at: UInt16(i))
                }
                try f.writer.writeTable((0..<Self.tableEntries).map {
                    Self.plausibleDescriptor(&rng, position: $0, count: Self.tableEntries, inTable: true)
                }, at: RingFixture.tables)
            } else if iteration % 3 == 0 {
                // Raw random bytes: the ring's table and the indirect tables.
                let raw = (0..<(Int(Self.queueSize) + Self.tableEntries) * 16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                try f.mem.writeBytes(f.layout.desc, Array(raw[0..<Int(Self.queueSize) * 16]))
                try f.mem.writeBytes(RingFixture.tables, Array(raw[(Int(Self.queueSize) * 16)...]))
            } else {
                for i in 0..<Self.queueSize {
                    try f.writer.writeDescriptor(Self.randomDescriptor(&rng, tables: RingFixture.tables), at: i)
                }
                try f.writer.writeTable((0..<Self.tableEntries).map { _ in Self.randomDescriptor(&rng, tables: RingFixture.tables) },
                                        at: RingFixture.tables)
            }
            for head in 0...Self.queueSize {
                let fastResult = Result { () throws(ChainError) in try fast.walk(head: head) }
                let slowResult = Result { () throws(ChainError) in try slow.walk(head: head) }
                #expect(fastResult == slowResult, "iteration \(iteration) head \(head)")
                switch fastResult {
                case let .success(chain):
                    chains += 1
                    if chain.usesIndirect { indirectChains += 1 }
                    try Self.checkInvariants(chain, memory: f.mem, limits: limits, queueSize: Self.queueSize)
                case let .failure(error):
                    #expect(error.head == head)
                    errorKinds.insert(Mirror(reflecting: error).children.first?.label ?? "?")
                }
            }
        }
        // The generator reaches both outcomes and indirect tables, not only the first check.
        #expect(chains > 10_000)
        #expect(indirectChains > 1_000)
        // Every error but descriptorUnreadable (the ring's table is in memory here).
        #expect(errorKinds.count == 14, "\(errorKinds.sorted())")
    }

    static func checkInvariants(_ c: Chain, memory: InMemoryGuestMemory, limits: ChainLimits, queueSize: UInt16) throws {
        #expect(!c.segments.isEmpty)
        #expect(c.segments.count <= limits.maxChainLength ?? Int(queueSize))
        #expect(c.ringDescriptorCount >= 1 && c.ringDescriptorCount <= Int(queueSize))
        var sawWritable = false, sawIndirect = false
        var readable = (0, UInt64(0)), writable = (0, UInt64(0))
        for s in c.segments {
            #expect(memory.contains(gpa: s.addr, count: Int(s.len)))
            #expect(!s.flags.contains(.indirect))
            if s.isWritable { sawWritable = true; writable.0 += 1; writable.1 += UInt64(s.len) } else {
                #expect(!sawWritable, "readable after writable in \(c)")
                readable.0 += 1; readable.1 += UInt64(s.len)
            }
            if s.fromIndirect { sawIndirect = true } else { #expect(!sawIndirect, "direct after indirect") }
            #expect(s.fromIndirect || s.index < queueSize)
        }
        #expect(readable == (c.readableCount, c.readableBytes))
        #expect(writable == (c.writableCount, c.writableBytes))
        #expect(sawIndirect == c.usesIndirect)
        if let t = c.indirectTable {
            #expect(t.len > 0 && t.len % 16 == 0)
            #expect(t.entries <= limits.maxIndirectEntries)
            #expect(memory.contains(gpa: t.addr, count: Int(t.len)))
            #expect(c.segments.filter(\.fromIndirect).count <= t.entries)
            #expect(c.segments.filter(\.fromIndirect).allSatisfy { Int($0.index) < t.entries })
        }
    }
}
