import Atomics
import Foundation
import Testing
import VirtioRing
import VirtioSCSI
import VQWire
@testable import VQSim

/// A second, read-only mapping that knows only the layout file walks the rings while the
/// simulator runs, as a tap would.
@Suite(.serialized) struct ReaderTests {
    final class Box: @unchecked Sendable { var result: SimResult?; let done = ManagedAtomic<Bool>(false) }

    func withRunningSim(_ tweak: (inout SimConfig) -> Void, _ body: (DeviceLayout, Simulator) throws -> Void) throws -> SimResult {
        var c = SimConfig()
        let id = UUID().uuidString.prefix(8)
        c.memoryPath = "/dev/shm/vqtap-test-\(id)"
        c.layoutPath = NSTemporaryDirectory() + "vqtap-layout-\(id).json"
        c.ramSize = 32 << 20
        c.diskSize = 1 << 20
        c.durationNs = 0
        c.rate = 50_000
        c.iodepth = 32
        c.blockSizes = [(4096, 1)]
        tweak(&c)
        let sim = try Simulator(config: c)
        let box = Box()
        let t = Thread {
            box.result = sim.run()
            box.done.store(true, ordering: .releasing)
        }
        t.start()
        defer {
            sim.stop()
            while !box.done.load(ordering: .acquiring) { usleep(1000) }
            if let path = c.layoutPath { unlink(path) }
        }
        var layout: DeviceLayout?
        for _ in 0..<500 {
            if let l = try? DeviceLayout.load(path: c.layoutPath ?? ""), l.status == .ready { layout = l; break }
            usleep(2000)
        }
        guard let layout else { Issue.record("no layout file"); return SimResult(driver: .init(), device: .init(), elapsed: 0, iops: 0, errors: [], exitCode: 1, memoryPath: "", truthLines: 0) }
        try body(layout, sim)
        sim.stop()
        while !box.done.load(ordering: .acquiring) { usleep(1000) }
        return box.result ?? SimResult(driver: .init(), device: .init(), elapsed: 0, iops: 0, errors: [], exitCode: 1, memoryPath: "", truthLines: 0)
    }

    struct Walk { var valid = 0; var torn = 0; var walked = 0; var indexChecks = 0; var decoded = 0 }

    /// Walks every chain between used.idx and avail.idx of one request queue with the tap's
    /// ChainWalker, knowing only the layout.
    func walkQueue(_ walker: inout ChainWalker<ReadOnlyGuestMemory>, _ q: DeviceLayout.Queue, into w: inout Walk) {
        let mem = walker.memory
        let layout = walker.layout
        // used.idx before avail.idx (virtio-facts.md), both with acquire ordering.
        guard let usedIdx = try? layout.usedIdx(in: mem), let availIdx = try? layout.availIdx(in: mem) else {
            Issue.record("queue \(q.index): ring outside the region"); return
        }
        // Invariant: at any instant avail.idx - used.idx <= queue size. Read avail first, then
        // used: used can only have moved closer, so the signed distance still obeys it.
        if let a = try? layout.availIdx(in: mem), let u = try? layout.usedIdx(in: mem) {
            w.indexChecks += 1
            #expect(Int(Int16(bitPattern: a &- u)) <= Int(q.size), "avail.idx \(a) - used.idx \(u) exceeds the queue size")
        }
        // Descheduled between the two loads: the ring moved on; try again next round.
        guard Int(availIdx &- usedIdx) <= Int(q.size) else { return }
        var i = usedIdx
        while i != availIdx {
            defer { i &+= 1 }
            w.walked += 1
            guard let head = try? layout.availEntry(i, in: mem), let chain = try? walker.walk(head: head) else { w.torn += 1; continue }
            // A virtio-scsi command: header (19 + cdb_size) readable, then the response (12 + sense_size) writable.
            let segs = chain.segments
            let firstWritable = segs.firstIndex { $0.isWritable }
            let ok = segs.count >= 2 && segs[0].len == 51 && !segs[0].isWritable && firstWritable.map { segs[$0].len == 108 } == true
            guard ok else { w.torn += 1; continue }
            w.valid += 1
            // The project's decoder reads the header the same way the device did.
            guard let header = try? mem.bytesAt(segs[0].addr, count: Int(segs[0].len)) else { continue }
            var r = ByteReader(header)
            if let req = try? CommandRequest(decoding: &r), let t = req.lun.target, t < 2, req.id >> 32 == 0xffff_8881 {
                w.decoded += 1
            }
        }
    }

    @Test(arguments: [true, false])
    func readOnlyMappingSeesConsistentRings(indirect: Bool) throws {
        var walk = Walk()
        let result = try withRunningSim({ $0.featureIndirect = indirect; $0.latency = .parse("fixed:200us").value }) { layout, sim in
            #expect(layout.device.type == "virtio-scsi")
            #expect(layout.device.id == 8)
            #expect(layout.pid == getpid())
            #expect(layout.queues.count == 4)
            #expect(layout.config["cdb_size"] == 32 && layout.config["sense_size"] == 96)
            #expect(layout.features & (1 << 32) != 0)
            #expect((layout.features & (1 << 28) != 0) == indirect)
            guard let region = layout.regions.first else { Issue.record("no region"); return }
            let m = try SimMemory(readOnly: region.file, gpaBase: region.gpa)
            #expect(UInt64(m.size) == region.size)
            let mem = try ReadOnlyGuestMemory(m)
            var walkers = try layout.queues.filter { $0.index >= 2 }.map { (q: DeviceLayout.Queue) throws -> (DeviceLayout.Queue, ChainWalker<ReadOnlyGuestMemory>) in
                (q, ChainWalker(memory: mem, layout: try SplitQueueLayout(q)))
            }
            let deadline = Date().addingTimeInterval(0.3)
            while Date() < deadline {
                for k in walkers.indices { walkQueue(&walkers[k].1, walkers[k].0, into: &walk) }
            }
        }
        #expect(result.driver.verifyErrors == 0)
        #expect(walk.indexChecks > 100)
        #expect(walk.walked > 100)
        // Chains may be reposted while we read (LIFO reuse): nearly all must still be whole.
        #expect(Double(walk.valid) >= 0.9 * Double(walk.walked), "valid \(walk.valid) of \(walk.walked)")
        #expect(Double(walk.decoded) >= 0.9 * Double(walk.valid), "decoded \(walk.decoded) of \(walk.valid)")
    }
}

/// The tap's view: GuestMemory over a read-only mapping of the simulator's file.
struct ReadOnlyGuestMemory: GuestMemory, @unchecked Sendable {
    let mapping: SimMemory
    let regions: MappedRegions

    init(_ m: SimMemory) throws {
        mapping = m
        regions = try MappedRegions([.init(gpa: m.gpaBase, size: UInt64(m.size), base: UnsafeRawPointer(m.base))])
    }

    func contains(gpa: UInt64, count: Int) -> Bool { regions.contains(gpa: gpa, count: count) }

    func bytesAt(_ gpa: UInt64, count: Int) throws(RingError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var failure: RingError?
        out.withUnsafeMutableBytes { b in
            do throws(RingError) { try read(gpa, into: b) } catch { failure = error }
        }
        if let failure { throw failure }
        return out
    }
    func translate(gpa: UInt64, count: Int) -> UnsafeRawPointer? { regions.translate(gpa: gpa, count: count) }

    func read(_ gpa: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(RingError) {
        guard let p = regions.translate(gpa: gpa, count: buffer.count) else { throw .outsideMemory(gpa: gpa, count: buffer.count) }
        if let dst = buffer.baseAddress { dst.copyMemory(from: p, byteCount: buffer.count) }
    }

    func loadAcquire16(_ gpa: UInt64) throws(RingError) -> UInt16 {
        guard let p = regions.translate(gpa: gpa, count: 2) else { throw .outsideMemory(gpa: gpa, count: 2) }
        let atomic = UnsafeAtomic<UInt16>(at: UnsafeMutablePointer(mutating: p.assumingMemoryBound(to: UInt16.AtomicRepresentation.self)))
        return UInt16(littleEndian: atomic.load(ordering: .acquiring))
    }

    func readLE16(_ gpa: UInt64) throws(RingError) -> UInt16 {
        guard let p = regions.translate(gpa: gpa, count: 2) else { throw .outsideMemory(gpa: gpa, count: 2) }
        return UInt16(littleEndian: p.loadUnaligned(as: UInt16.self))
    }

    func readLE32(_ gpa: UInt64) throws(RingError) -> UInt32 {
        guard let p = regions.translate(gpa: gpa, count: 4) else { throw .outsideMemory(gpa: gpa, count: 4) }
        return UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))
    }

    func readLE64(_ gpa: UInt64) throws(RingError) -> UInt64 {
        guard let p = regions.translate(gpa: gpa, count: 8) else { throw .outsideMemory(gpa: gpa, count: 8) }
        return UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
    }
}
