import Atomics
import Foundation
import Testing
import VirtioRing
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

    struct Walk { var valid = 0; var torn = 0; var walked = 0; var indexChecks = 0 }

    /// Walks every chain between used.idx and avail.idx of one request queue, bounded like a tap.
    func walkQueue(_ m: SimMemory, _ q: DeviceLayout.Queue, indirect: Bool, into w: inout Walk) {
        guard let desc = m.offset(gpa: q.desc, length: UInt64(q.size) * 16),
              let avail = m.offset(gpa: q.avail, length: 6 + 2 * UInt64(q.size)),
              let used = m.offset(gpa: q.used, length: 6 + 8 * UInt64(q.size)) else {
            Issue.record("queue \(q.index): ring outside the region"); return
        }
        let usedIdx = UnsafeAtomic<UInt16>(at: (m.base + used + 2).assumingMemoryBound(to: UInt16.AtomicRepresentation.self)).load(ordering: .acquiring)
        let availIdx = UnsafeAtomic<UInt16>(at: (m.base + avail + 2).assumingMemoryBound(to: UInt16.AtomicRepresentation.self)).load(ordering: .acquiring)
        let inFlight = Int(availIdx &- usedIdx)
        w.indexChecks += 1
        #expect(inFlight <= Int(q.size), "avail.idx \(availIdx) - used.idx \(usedIdx) exceeds the queue size")
        var i = usedIdx
        while i != availIdx {
            let head = Int(m.load16(avail + 4 + 2 * (Int(i) % Int(q.size))))
            i &+= 1
            w.walked += 1
            guard head < Int(q.size) else { w.torn += 1; continue }
            let d = desc + 16 * head
            let addr = m.load64(d), len = m.load32(d + 8), flags = m.load16(d + 12)
            var segs: [(UInt64, UInt32, UInt16)] = []
            if flags & 4 != 0 {
                guard len % 16 == 0, len / 16 <= UInt32(q.size), let t = m.offset(gpa: addr, length: UInt64(len)) else { w.torn += 1; continue }
                var j = 0, steps = 0
                while steps < Int(len / 16) {
                    let o = t + 16 * j
                    let f = m.load16(o + 12)
                    segs.append((m.load64(o), m.load32(o + 8), f))
                    steps += 1
                    if f & 1 == 0 { break }
                    j = Int(m.load16(o + 14))
                    if j >= Int(len / 16) { break }
                }
            } else {
                var idx = head, steps = 0
                while steps < Int(q.size) {
                    let o = desc + 16 * idx
                    let f = m.load16(o + 12)
                    segs.append((m.load64(o), m.load32(o + 8), f))
                    steps += 1
                    if f & 1 == 0 { break }
                    idx = Int(m.load16(o + 14))
                    if idx >= Int(q.size) { break }
                }
            }
            // A virtio-scsi command: header (19 + cdb_size) readable, then the response (12 + sense_size) writable.
            let firstWritable = segs.firstIndex { $0.2 & 2 != 0 }
            let ok = segs.count >= 2 && segs[0].1 == 51 && segs[0].2 & 2 == 0 && firstWritable.map { segs[$0].1 == 108 } == true
                && segs.allSatisfy { m.offset(gpa: $0.0, length: UInt64($0.1)) != nil }
            if ok { w.valid += 1 } else { w.torn += 1 }
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
            let deadline = Date().addingTimeInterval(0.3)
            while Date() < deadline {
                for q in layout.queues where q.index >= 2 { walkQueue(m, q, indirect: indirect, into: &walk) }
            }
        }
        #expect(result.driver.verifyErrors == 0)
        #expect(walk.indexChecks > 100)
        #expect(walk.walked > 100)
        // Chains may be reposted while we read (LIFO reuse): nearly all must still be whole.
        #expect(Double(walk.valid) >= 0.9 * Double(walk.walked), "valid \(walk.valid) of \(walk.walked)")
    }
}
