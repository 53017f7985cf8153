#if canImport(Glibc)
import Glibc
#endif
import Atomics
import VirtioRing

// The driver: a virtio-scsi initiator that behaves like Linux's drivers/scsi/virtio_scsi.c
// (virtio-facts.md): it scans (INQUIRY, REPORT LUNS, VPD, READ CAPACITY(16), TEST UNIT READY),
// keeps 8 buffers on the eventq, puts each command in an indirect table (header and response
// in their own descriptors), uses 64-bit tags that are reused with their buffers, reuses
// freed descriptor heads last-in first-out, sends TMFs and AN messages on the controlq, and
// verifies every completion it receives. Buffers are laid out in guest memory once; the hot
// path only stores the fields that change.

enum DrvOp: UInt8 {
    case read, write, testUnitReady, inquiry, inquiryVPD, reportLuns, readCapacity10, readCapacity16
    case modeSense6, modeSense10, synchronizeCache, verify, unmap, requestSense, startStop
    case invalidOpcode, lbaOutOfRange, invalidField
    // controlq and eventq
    case tmf, an, eventBuffer
}

struct DrvSlot {
    var hdrOff = 0
    var respOff = 0
    var tableOff = 0
    var dataOff = 0
    var tag: UInt64 = 0
    var lba: UInt64 = 0
    var availNs: UInt64 = 0
    var lunRaw: UInt64 = 0
    var nblocks: UInt32 = 0
    var dataBytes: UInt32 = 0
    var allocation: UInt32 = 0
    var stamp: UInt32 = 0
    var epoch: UInt32 = 0
    var lunIndex: Int32 = -1
    var headRaw: UInt32 = 0
    var descCount: UInt16 = 0
    var head: UInt16 = 0
    var op: DrvOp = .read
    var opcode: UInt8 = 0
    var serviceAction: UInt8 = 0
    var dataIn = false
    var locked = false
    var fault: UInt8 = 0
    var abortable = false
    var tmfDone = false
    var expectBadTarget = false
    var isCold = false
    // controlq
    var ctrlType: UInt32 = 0
    var subtype: UInt32 = 0
    var tmfTargetTag: UInt64 = 0
    var tmfTargetQueue: Int32 = -1
    var tmfTargetSlot: Int32 = -1
}

struct DrvQueue {
    var ring: RingAccess
    var availIdx: UInt16 = 0
    var lastUsed: UInt16 = 0
    var published: UInt16 = 0
    var freeHead = 0
    var numFree = 0
    var inflight = 0
    var freeSlotCount = 0
    let slotCount: Int
    let descNext: UnsafeMutablePointer<UInt16>
    let headSlot: UnsafeMutablePointer<Int32>
    let slots: UnsafeMutablePointer<DrvSlot>
    let freeSlots: UnsafeMutablePointer<Int32>
}

/// Per-LUN state the driver keeps for verification.
struct DrvLUN {
    var target: UInt8
    var lun: UInt16
    var lunRaw: UInt64
    var blocks: UInt64
    let stamps: UnsafeMutablePointer<UInt32>
    let busy: UnsafeMutablePointer<UInt8>
    var seqLBA: UInt64 = 0
    var epoch: UInt32 = 0
    /// UNIT ATTENTION conditions the driver has caused and not yet seen (power-on counts one).
    var uaExpected = 1
    var removed = false
    var isHotplug = false
    /// LUN or I_T nexus resets sent and not yet answered.
    var resetsInFlight = 0
}

public struct DriverCounters: Sendable {
    public var commands: UInt64 = 0
    public var completed: UInt64 = 0
    public var reads: UInt64 = 0
    public var writes: UInt64 = 0
    public var others: UInt64 = 0
    public var bytesRead: UInt64 = 0
    public var bytesWritten: UInt64 = 0
    public var tmfs: UInt64 = 0
    public var ans: UInt64 = 0
    public var events: UInt64 = 0
    public var eventsMissed: UInt64 = 0
    public var unitAttentions: UInt64 = 0
    public var checkConditions: UInt64 = 0
    public var aborted: UInt64 = 0
    public var resetResponses: UInt64 = 0
    public var badTarget: UInt64 = 0
    public var rejected: UInt64 = 0
    public var orphans: UInt64 = 0
    public var lostInReset: UInt64 = 0
    public var deviceResets: UInt64 = 0
    public var verifiedBlocks: UInt64 = 0
    public var verifyErrors: UInt64 = 0
    public var injected: [UInt64] = Array(repeating: 0, count: SimFault.allCases.count + 1)
}

final class SimDriver: @unchecked Sendable {
    enum Phase { case starting, scanning, running, resetting, stopped }

    let config: SimConfig
    let mem: SimMemory
    let transport: SimTransport
    let truth: TruthSink?
    /// Only for the ground truth (device fault marks and return times): never for protocol decisions
    /// except telling a device's injected misbehaviour from a real bug.
    let truthMarks: SimDevice
    let memBase: UnsafeMutableRawPointer
    let qsize: Int
    let queueCount: Int
    let queues: UnsafeMutablePointer<DrvQueue>
    let luns: UnsafeMutablePointer<DrvLUN>
    let lunCount: Int
    let descScratch: UnsafeMutablePointer<(UInt64, UInt32, UInt16)>
    let hdrSize = 51
    let respSize = 108
    let cdbSize = 32
    let senseSize = 96
    var placeSets: [[RingPlace]] = []
    var placeSet = 0
    var phase = Phase.starting
    var rng: SimRandom
    var counters = DriverCounters()
    var errors: [String] = []
    var cold: [(op: DrvOp, lunIndex: Int32, target: UInt8, page: UInt8)] = []
    var coldInflight = 0
    var nextStamp: UInt32 = 1
    var startNs: UInt64 = 0
    var rateIssued: UInt64 = 0
    var nextTMF: UInt64 = .max
    var tmfTurn = 0
    var nextReset: UInt64 = .max
    var resetWaitFor: UInt64 = 0
    var generation: UInt64 = 0
    var starveUntil: UInt64 = 0
    var heldEventSlots: [Int32] = []
    var queueTurn = 2
    /// Tags named by ABORT_TASKs not yet answered: a command posted now with one may be aborted.
    var pendingAbortTags: [UInt64] = []
    var stopping = false
    var runStart: UInt64 = 0
    var elapsedEnd: UInt64 = 0
    var completedAtRunStart: UInt64 = 0
    let mixTotal: UInt64
    let bsTotal: UInt64
    let driverFaults: Bool
    let faultThresholds: [UInt64]
    let verify: Bool
    let deviceFaults: Bool
    let hotplugLUN: Int

    init(config: SimConfig, memory: SimMemory, transport: SimTransport, truth: TruthSink?, device: SimDevice) throws(SimError) {
        self.config = config
        self.mem = memory
        self.transport = transport
        self.truth = truth
        self.truthMarks = device
        memBase = memory.base
        qsize = config.queueSize
        queueCount = config.queues + 2
        rng = SimRandom(seed: config.seed)
        verify = config.verify
        mixTotal = UInt64(config.mix.read + config.mix.write + config.mix.other)
        bsTotal = config.blockSizes.reduce(0) { $0 + UInt64($1.weight) }
        var th = [UInt64](repeating: 0, count: SimFault.allCases.count + 1)
        for (f, p) in config.faults where p > 0 { th[Int(f.code)] = p >= 1 ? .max : UInt64(p * 18_446_744_073_709_551_615.0) }
        faultThresholds = th
        let driverSide: [SimFault] = [.descLoop, .badHead, .badAddr, .indirectOversize, .indirectNested, .readAfterWrite, .duplicateTag, .recycleAfterCompletion]
        driverFaults = driverSide.contains { (config.faults[$0] ?? 0) > 0 }
        deviceFaults = [.senseLenOverflow, .earlyUsed, .usedLenOverflow].contains { (config.faults[$0] ?? 0) > 0 }
        descScratch = .allocate(capacity: config.maxSegments * 2 + 8)

        // Guest memory: two sets of ring places (a reset may move the rings), then buffers.
        var alloc = BumpAllocator(next: 0x10000, limit: memory.size)
        let (db, ab, ub) = RingPlace.bytes(size: qsize)
        for _ in 0..<2 {
            var set: [RingPlace] = []
            for _ in 0..<queueCount {
                guard let d = alloc.take(db, align: 4096), let a = alloc.take(ab, align: 4096), let u = alloc.take(ub, align: 4096) else {
                    throw SimError("--ram-size: too small for the rings")
                }
                set.append(RingPlace(size: qsize, descOff: d, availOff: a, usedOff: u))
            }
            placeSets.append(set)
        }
        queues = .allocate(capacity: queueCount)
        let maxSegs = config.maxSegments
        for qi in 0..<queueCount {
            let slotCount = qi == 0 ? 8 : qi == 1 ? 8 : config.iodepth
            let slots = UnsafeMutablePointer<DrvSlot>.allocate(capacity: slotCount)
            let freeSlots = UnsafeMutablePointer<Int32>.allocate(capacity: slotCount)
            for s in 0..<slotCount {
                var slot = DrvSlot()
                if qi == 0 {
                    guard let h = alloc.take(32), let r = alloc.take(32) else { throw SimError("--ram-size: too small") }
                    slot.hdrOff = h; slot.respOff = r
                } else if qi == 1 {
                    guard let r = alloc.take(16) else { throw SimError("--ram-size: too small") }
                    slot.respOff = r
                } else {
                    guard let h = alloc.take(64), let r = alloc.take(128), let t = alloc.take(16 * (maxSegs + 6)),
                          let d = alloc.take(config.maxBlockSize, align: 4096) else {
                        throw SimError("--ram-size: \(config.ramSize) bytes is too small for --iodepth \(config.iodepth) x --queues \(config.queues)")
                    }
                    slot.hdrOff = h; slot.respOff = r; slot.tableOff = t; slot.dataOff = d
                    // Tags look like the kernel addresses of scsi_cmnd structures, one per buffer set.
                    slot.tag = 0xffff_8881_0000_0000 | UInt64(qi) << 24 | UInt64(s) << 9
                }
                (slots + s).initialize(to: slot)
                freeSlots[s] = Int32(slotCount - 1 - s)
            }
            let descNext = UnsafeMutablePointer<UInt16>.allocate(capacity: qsize)
            let headSlot = UnsafeMutablePointer<Int32>.allocate(capacity: qsize)
            (queues + qi).initialize(to: DrvQueue(ring: RingAccess(memory, placeSets[0][qi]), slotCount: slotCount, descNext: descNext,
                                                  headSlot: headSlot, slots: slots, freeSlots: freeSlots))
        }
        lunCount = config.targets * config.luns
        luns = .allocate(capacity: lunCount)
        let blocks = config.diskSize / 512
        for t in 0..<config.targets {
            for l in 0..<config.luns {
                let stamps = UnsafeMutablePointer<UInt32>.allocate(capacity: Int(blocks))
                stamps.initialize(repeating: 0, count: Int(blocks))
                let busy = UnsafeMutablePointer<UInt8>.allocate(capacity: Int(blocks))
                busy.initialize(repeating: 0, count: Int(blocks))
                (luns + t * config.luns + l).initialize(to: DrvLUN(target: UInt8(t), lun: UInt16(l), lunRaw: SimLUN.encode(target: UInt8(t), lun: UInt16(l)),
                                                                   blocks: blocks, stamps: stamps, busy: busy))
            }
        }
        hotplugLUN = config.hotplugEveryNs > 0 ? lunCount - 1 : -1
        if hotplugLUN >= 0 { luns[hotplugLUN].isHotplug = true }
    }

    deinit {
        for qi in 0..<queueCount {
            queues[qi].descNext.deallocate(); queues[qi].headSlot.deallocate(); queues[qi].slots.deallocate(); queues[qi].freeSlots.deallocate()
        }
        queues.deallocate()
        for i in 0..<lunCount { luns[i].stamps.deallocate(); luns[i].busy.deallocate() }
        luns.deallocate()
        descScratch.deallocate()
    }

    func fail(_ message: @autoclosure () -> String) {
        counters.verifyErrors += 1
        if errors.count < 20 { errors.append(message()) }
    }

    // MARK: - Initialisation and reset

    /// Lays the rings out (zeroed), hands their addresses to the transport, sets DRIVER_OK,
    /// posts the eventq buffers and queues the scan.
    func initialise(now: UInt64) {
        let places = placeSets[placeSet]
        for qi in 0..<queueCount {
            let p = places[qi]
            let (db, ab, ub) = RingPlace.bytes(size: qsize)
            (memBase + p.descOff).initializeMemory(as: UInt8.self, repeating: 0, count: db)
            (memBase + p.availOff).initializeMemory(as: UInt8.self, repeating: 0, count: ab)
            (memBase + p.usedOff).initializeMemory(as: UInt8.self, repeating: 0, count: ub)
            let q = queues + qi
            q.pointee.ring = RingAccess(mem, p)
            q.pointee.availIdx = 0; q.pointee.lastUsed = 0; q.pointee.published = 0
            q.pointee.inflight = 0
            for h in 0..<qsize { q.pointee.descNext[h] = UInt16((h + 1) % qsize); q.pointee.headSlot[h] = -1 }
            q.pointee.freeHead = 0; q.pointee.numFree = qsize
            q.pointee.freeSlotCount = q.pointee.slotCount
            for s in 0..<q.pointee.slotCount { q.pointee.freeSlots[s] = Int32(q.pointee.slotCount - 1 - s) }
        }
        transport.places = places
        transport.driverFeatures = transport.deviceFeatures & config.negotiatedFeatures
        transport.cdbSize = cdbSize
        transport.senseSize = senseSize
        transport.status.store(SimTransport.live, ordering: .releasing)
        generation += 1
        writeLayout(status: .ready)
        // Eight buffers on the eventq, as Linux keeps.
        for _ in 0..<8 { postEventBuffer(now: now) }
        publish(1)
        queueScan()
        phase = .scanning
        startNs = startNs == 0 ? now : startNs
    }

    func queueScan() {
        cold.removeAll()
        for t in 0...min(config.targets, 254) {
            let base = t < config.targets ? Int32(t * config.luns) : -1
            cold.append((.inquiry, base, UInt8(t), 0))
            guard t < config.targets else { continue }
            cold.append((.reportLuns, base, UInt8(t), 0))
            for l in 0..<config.luns {
                let i = Int32(t * config.luns + l)
                cold.append((.inquiry, i, UInt8(t), 0))
                for page: UInt8 in [0x00, 0x80, 0x83, 0xb0, 0xb1] { cold.append((.inquiryVPD, i, UInt8(t), page)) }
                cold.append((.testUnitReady, i, UInt8(t), 0))
                cold.append((.testUnitReady, i, UInt8(t), 0))
                cold.append((.readCapacity16, i, UInt8(t), 0))
                cold.append((.modeSense6, i, UInt8(t), 0x08))
            }
        }
    }

    func beginReset(now: UInt64) {
        phase = .resetting
        resetWaitFor = transport.resetsDone.load(ordering: .acquiring) &+ 1
        transport.status.store(0, ordering: .releasing)
        generation += 1
        writeLayout(status: .resetting)
        counters.deviceResets += 1
    }

    /// The device acknowledged the reset: every request in flight is lost, rings start over.
    func finishReset(now: UInt64) {
        for qi in 0..<queueCount {
            let q = queues + qi
            for h in 0..<qsize where q.pointee.headSlot[h] >= 0 {
                let s = Int(q.pointee.headSlot[h])
                let slot = q.pointee.slots + s
                if qi >= 2 {
                    counters.lostInReset += 1
                    if let truth { commandLine(truth, qi, slot, usedLen: nil, usedIndex: nil, outcome: "lost_in_reset", now: now) }
                    release(slot, good: false)
                } else if qi == 0, let truth {
                    controlLine(truth, slot, usedLen: nil, outcome: "lost_in_reset", now: now)
                }
                q.pointee.headSlot[h] = -1
            }
        }
        coldInflight = 0
        pendingAbortTags.removeAll()
        for i in 0..<lunCount { luns[i].uaExpected += 1; luns[i].epoch &+= 1; luns[i].resetsInFlight = 0 }
        heldEventSlots.removeAll()
        // Same addresses one time in three (QEMU sees that after a guest reboot), else the other set.
        if counters.deviceResets % 3 != 0 { placeSet ^= 1 }
        initialise(now: now)
    }

    func writeLayout(status: DeviceLayout.Status) {
        guard let path = config.layoutPath else { return }
        let places = placeSets[placeSet]
        var qs: [DeviceLayout.Queue] = []
        for (i, p) in places.enumerated() {
            let name = i == 0 ? "controlq" : i == 1 ? "eventq" : "request\(i - 2)"
            qs.append(DeviceLayout.Queue(index: UInt16(i), name: name, size: UInt16(p.size), desc: mem.gpa(ofOffset: p.descOff),
                                         avail: mem.gpa(ofOffset: p.availOff), used: mem.gpa(ofOffset: p.usedOff)))
        }
        let layout = DeviceLayout(
            generation: generation, status: status, pid: getpid(),
            device: DeviceLayout.Device(type: "virtio-scsi", id: 8, name: "scsi0", path: "vqtap-simulate"),
            features: transport.deviceFeatures & config.negotiatedFeatures,
            config: ["num_queues": UInt64(config.queues), "seg_max": UInt64(SimDevice.segMax(queueSize: qsize)), "max_sectors": 2048,
                     "cmd_per_lun": UInt64(qsize), "event_info_size": 16, "sense_size": UInt64(senseSize), "cdb_size": UInt64(cdbSize),
                     "max_channel": 0, "max_target": UInt64(config.targets - 1), "max_lun": UInt64(config.luns - 1)],
            regions: [DeviceLayout.Region(file: mem.path, offset: 0, gpa: mem.gpaBase, size: UInt64(mem.size))],
            queues: qs)
        do { try layout.write(path: path) } catch { fail("layout: cannot write \(path): \(error)") }
    }

    // MARK: - Main loop

    @inline(__always)
    func step(now: UInt64) -> Int {
        switch phase {
        case .starting:
            initialise(now: now)
            nextTMF = config.tmfEveryNs > 0 ? now + config.tmfEveryNs : .max
            nextReset = config.resetEveryNs > 0 ? now + config.resetEveryNs : .max
            return 1
        case .resetting:
            if transport.resetsDone.load(ordering: .acquiring) >= resetWaitFor { finishReset(now: now) }
            return 0
        case .stopped:
            return 0
        case .scanning, .running:
            break
        }
        var work = 0
        for qi in 2..<queueCount { work += reap(qi, now: now) }
        work += reapControl(now: now)
        work += reapEvents(now: now)
        if phase == .scanning {
            if cold.isEmpty && coldInflight == 0 { phase = .running; rateIssued = 0; startNs = now } else { issueCold(now: now) }
        }
        if phase == .running && !stopping {
            if !cold.isEmpty && coldInflight == 0 { issueCold(now: now) }
            work += issueWorkload(now: now)
            if now >= nextTMF { nextTMF = now + config.tmfEveryNs; sendControl(now: now) }
            if now >= nextReset { nextReset = now + config.resetEveryNs; beginReset(now: now) }
        }
        if starveUntil != 0 && now >= starveUntil {
            starveUntil = 0
            for s in heldEventSlots { postEventBuffer(slotIndex: Int(s), now: now) }
            heldEventSlots.removeAll()
            publish(1)
        }
        return work
    }

    /// When the driver next has something of its own to do (a rate-paced command, a TMF, a
    /// reset, the end of an eventq starvation): 0 when it cannot tell (it never sleeps then),
    /// .max when it only waits for the device. Lets a paced simulator sleep between commands.
    func nextDueNs() -> UInt64 {
        switch phase {
        case .starting, .resetting: return 0
        case .stopped: return .max
        case .scanning, .running: break
        }
        var next = min(nextTMF, nextReset)
        if starveUntil != 0 { next = min(next, starveUntil) }
        if phase == .running && !stopping {
            guard config.rate > 0 else { return 0 }
            var slotFree = false
            for qi in 2..<queueCount where queues[qi].freeSlotCount > 0 { slotFree = true; break }
            // Without a free slot the next command waits for a completion (the device's).
            if slotFree {
                let due = startNs &+ UInt64((UInt128(rateIssued + 1) * 1_000_000_000 + UInt128(config.rate) - 1) / UInt128(config.rate))
                next = min(next, due)
            }
        }
        return next
    }

    @inline(__always) func publish(_ qi: Int) {
        let q = queues + qi
        if q.pointee.availIdx != q.pointee.published {
            q.pointee.ring.availIdx.store(q.pointee.availIdx, ordering: .releasing)
            q.pointee.published = q.pointee.availIdx
        }
    }

    // MARK: - Issuing

    @inline(__always) func takeSlot(_ q: UnsafeMutablePointer<DrvQueue>) -> Int? {
        guard q.pointee.freeSlotCount > 0 else { return nil }
        q.pointee.freeSlotCount -= 1
        return Int(q.pointee.freeSlots[q.pointee.freeSlotCount])
    }

    @inline(__always) func putSlot(_ q: UnsafeMutablePointer<DrvQueue>, _ s: Int) {
        q.pointee.freeSlots[q.pointee.freeSlotCount] = Int32(s)
        q.pointee.freeSlotCount += 1
    }

    func issueWorkload(now: UInt64) -> Int {
        var budget = Int.max
        if config.rate > 0 {
            let due = UInt64((UInt128(now &- startNs) * UInt128(config.rate)) / 1_000_000_000)
            budget = due > rateIssued ? Int(min(due - rateIssued, UInt64(Int32.max))) : 0
            if budget == 0 { return 0 }
        }
        var issued = 0
        let nq = config.queues
        var idle = 0
        var qi = queueTurn
        // Round-robin over request queues, one request at a time, so the rate spreads evenly.
        while budget > 0 && idle < nq {
            let q = queues + qi
            if q.pointee.freeSlotCount > 0, issueOne(qi, now: now) {
                budget -= 1; issued += 1; idle = 0
            } else {
                idle += 1
            }
            qi += 1
            if qi == queueCount { qi = 2 }
        }
        queueTurn = qi
        rateIssued &+= UInt64(issued)
        for i in 2..<queueCount { publish(i) }
        return issued
    }

    /// Picks a workload command and posts it on queue `qi`. False when no descriptors are free.
    @inline(__always)
    func issueOne(_ qi: Int, now: UInt64) -> Bool {
        var r = rng.below(mixTotal)
        let op: DrvOp
        if r < UInt64(config.mix.read) { op = .read } else {
            r -= UInt64(config.mix.read)
            op = r < UInt64(config.mix.write) ? .write : pickOther()
        }
        var lunIndex = Int(rng.below(UInt64(lunCount)))
        if luns[lunIndex].removed {
            guard let alt = (0..<lunCount).first(where: { !luns[$0].removed }) else { return false }
            lunIndex = alt
        }
        let page: UInt8 = op == .inquiryVPD ? [0x00, 0x80, 0x83, 0xb0, 0xb1][Int(rng.below(5))] : 0
        return post(qi, op: op, lunIndex: lunIndex, target: luns[lunIndex].target, page: page, now: now)
    }

    func pickOther() -> DrvOp {
        let others: [DrvOp] = [.testUnitReady, .testUnitReady, .inquiry, .inquiryVPD, .readCapacity10, .readCapacity16, .modeSense6,
                               .modeSense10, .synchronizeCache, .synchronizeCache, .verify, .unmap, .requestSense, .startStop, .reportLuns,
                               .invalidOpcode, .lbaOutOfRange, .invalidField]
        return others[Int(rng.below(UInt64(others.count)))]
    }

    func issueCold(now: UInt64) {
        let qi = 2
        let q = queues + qi
        // The scan goes one command at a time, as Linux's scsi_scan does.
        while !cold.isEmpty && coldInflight == 0 && q.pointee.freeSlotCount > 0 {
            let c = cold[0]
            if c.lunIndex >= 0 && Int(c.lunIndex) < lunCount && c.op != .inquiry && c.op != .reportLuns && luns[Int(c.lunIndex)].removed && c.op != .testUnitReady {
                cold.removeFirst(); continue
            }
            guard post(qi, op: c.op, lunIndex: Int(c.lunIndex), target: c.target, page: c.page, now: now, isCold: true) else { break }
            cold.removeFirst()
            coldInflight += 1
        }
        publish(qi)
    }

    @inline(__always) func chooseBlocks() -> UInt32 {
        if config.blockSizes.count == 1 { return config.blockSizes[0].bytes / 512 }
        var r = rng.below(bsTotal)
        for b in config.blockSizes {
            if r < UInt64(b.weight) { return b.bytes / 512 }
            r -= UInt64(b.weight)
        }
        return config.blockSizes[0].bytes / 512
    }

    /// Locks `[lba, lba+n)` for a read (shared) or a write (exclusive); false if it conflicts.
    @inline(__always) func lock(_ l: UnsafeMutablePointer<DrvLUN>, _ lba: UInt64, _ n: UInt32, write: Bool) -> Bool {
        let busy = l.pointee.busy + Int(lba)
        for i in 0..<Int(n) {
            let b = busy[i]
            if write ? b != 0 : b & 0x80 != 0 { return false }
        }
        for i in 0..<Int(n) { if write { busy[i] = 0x80 } else { busy[i] &+= 1 } }
        return true
    }

    @inline(__always) func unlock(_ l: UnsafeMutablePointer<DrvLUN>, _ lba: UInt64, _ n: UInt32, write: Bool) {
        let busy = l.pointee.busy + Int(lba)
        for i in 0..<Int(n) { if write { busy[i] = 0 } else { busy[i] &-= 1 } }
    }

    /// Builds and posts one command. The header, CDB, data and descriptors are written into the
    /// slot's buffers with plain stores; `publish` makes them visible with a releasing store.
    @inline(__always)
    func post(_ qi: Int, op opIn: DrvOp, lunIndex: Int, target: UInt8, page: UInt8, now: UInt64, isCold: Bool = false) -> Bool {
        let q = queues + qi
        guard let s = takeSlot(q) else { return false }
        let slot = q.pointee.slots + s
        var op = opIn
        let l: UnsafeMutablePointer<DrvLUN>? = lunIndex >= 0 && lunIndex < lunCount ? luns + lunIndex : nil
        let lunRaw = l?.pointee.lunRaw ?? SimLUN.encode(target: target, lun: 0)
        slot.pointee.lunRaw = lunRaw
        slot.pointee.lunIndex = Int32(lunIndex)
        slot.pointee.expectBadTarget = l == nil
        slot.pointee.epoch = l?.pointee.epoch ?? 0
        slot.pointee.locked = false
        slot.pointee.fault = 0
        slot.pointee.abortable = false
        slot.pointee.tmfDone = false
        slot.pointee.serviceAction = 0
        slot.pointee.allocation = 0
        slot.pointee.nblocks = 0
        slot.pointee.lba = 0
        slot.pointee.dataBytes = 0
        slot.pointee.dataIn = false
        slot.pointee.isCold = isCold

        let hdr = memBase + slot.pointee.hdrOff
        hdr.storeBytes(of: lunRaw.littleEndian, as: UInt64.self)
        var tag = slot.pointee.tag
        let cdb = hdr + 19
        cdb.storeBytes(of: UInt64(0), as: UInt64.self)
        cdb.storeBytes(of: UInt64(0), toByteOffset: 8, as: UInt64.self)

        var dataBytes = 0
        var dataIn = false
        if (op == .read || op == .write), let l {
            let n = chooseBlocks()
            var lba: UInt64
            let span = l.pointee.blocks / UInt64(n)
            var attempts = 0
            while true {
                if config.sequential {
                    lba = l.pointee.seqLBA
                    l.pointee.seqLBA = lba + UInt64(n) + UInt64(n) <= l.pointee.blocks ? lba + UInt64(n) : 0
                } else {
                    lba = rng.below(span) * UInt64(n)
                }
                if !verify || lock(l, lba, n, write: op == .write) { slot.pointee.locked = verify; break }
                attempts += 1
                if attempts == 4 { op = .read; break } // unverified read: it disturbs nothing
            }
            slot.pointee.lba = lba
            slot.pointee.nblocks = n
            dataBytes = Int(n) * 512
            dataIn = op == .read
            // READ/WRITE(10) mostly, (16) one time in eight, (6) one time in 32 when it fits.
            let variant = rng.next() & 31
            let isRead = op == .read
            if variant == 0 && lba < 1 << 21 && n <= 256 {
                cdb.storeBytes(of: isRead ? SCSIOp.read6 : SCSIOp.write6, as: UInt8.self)
                cdb.storeBytes(of: UInt8(lba >> 16), toByteOffset: 1, as: UInt8.self)
                cdb.storeBytes(of: UInt16(lba & 0xffff).bigEndian, toByteOffset: 2, as: UInt16.self)
                cdb.storeBytes(of: UInt8(n & 0xff), toByteOffset: 4, as: UInt8.self)
                slot.pointee.opcode = isRead ? SCSIOp.read6 : SCSIOp.write6
            } else if variant < 4 || lba > 0xffff_ffff || n > 0xffff {
                cdb.storeBytes(of: isRead ? SCSIOp.read16 : SCSIOp.write16, as: UInt8.self)
                cdb.storeBytes(of: lba.bigEndian, toByteOffset: 2, as: UInt64.self)
                cdb.storeBytes(of: n.bigEndian, toByteOffset: 10, as: UInt32.self)
                slot.pointee.opcode = isRead ? SCSIOp.read16 : SCSIOp.write16
            } else {
                cdb.storeBytes(of: isRead ? SCSIOp.read10 : SCSIOp.write10, as: UInt8.self)
                cdb.storeBytes(of: UInt32(lba).bigEndian, toByteOffset: 2, as: UInt32.self)
                cdb.storeBytes(of: UInt16(n).bigEndian, toByteOffset: 7, as: UInt16.self)
                slot.pointee.opcode = isRead ? SCSIOp.read10 : SCSIOp.write10
            }
            if op == .write {
                var stamp = nextStamp
                nextStamp = nextStamp &+ 1
                if nextStamp == 0xffff_ffff { nextStamp = 1 }
                if stamp == 0 { stamp = 1 }
                slot.pointee.stamp = stamp
                // Each 512-byte block starts with (lba, stamp, lun): what a read must find later.
                let data = memBase + slot.pointee.dataOff
                let lunTag = UInt32(lunIndex) | 0x5aa5_0000
                for b in 0..<Int(n) {
                    let p = data + b * 512
                    p.storeBytes(of: (lba + UInt64(b)).littleEndian, as: UInt64.self)
                    p.storeBytes(of: stamp.littleEndian, toByteOffset: 8, as: UInt32.self)
                    p.storeBytes(of: lunTag.littleEndian, toByteOffset: 12, as: UInt32.self)
                }
            }
        } else {
            (dataBytes, dataIn) = buildOther(op, cdb: cdb, slot: slot, l: l, page: page)
        }
        slot.pointee.op = op
        slot.pointee.dataBytes = UInt32(dataBytes)
        slot.pointee.dataIn = dataIn

        // Descriptors: header, data-out, response, data-in (device-readable before writable).
        let d = descScratch
        var n = 0
        let dataGPA = mem.gpa(ofOffset: slot.pointee.dataOff)
        d[n] = (mem.gpa(ofOffset: slot.pointee.hdrOff), UInt32(hdrSize), 0); n += 1
        if !dataIn && dataBytes > 0 { n = appendData(n, gpa: dataGPA, bytes: dataBytes, write: false) }
        d[n] = (mem.gpa(ofOffset: slot.pointee.respOff), UInt32(respSize), 2); n += 1
        if dataIn && dataBytes > 0 { n = appendData(n, gpa: dataGPA, bytes: dataBytes, write: true) }

        var fault: SimFault? = nil
        if driverFaults { fault = drawDriverFault(qi: qi, slot: slot, n: &n, tag: &tag) }
        hdr.storeBytes(of: tag.littleEndian, toByteOffset: 8, as: UInt64.self)
        slot.pointee.tmfTargetTag = tag
        if !pendingAbortTags.isEmpty && pendingAbortTags.contains(tag) { slot.pointee.abortable = true }

        let indirect = config.featureIndirect
        let needed = indirect ? 1 : n
        guard q.pointee.numFree >= needed else {
            if slot.pointee.locked, let l { unlock(l, slot.pointee.lba, slot.pointee.nblocks, write: op == .write) }
            putSlot(q, s)
            return false
        }
        let head = q.pointee.freeHead
        let ring = q.pointee.ring
        if indirect {
            let table = memBase + slot.pointee.tableOff
            for i in 0..<n {
                let e = d[i]
                let flags = e.2 | (i + 1 < n ? 1 : 0)
                let p = table + 16 * i
                p.storeBytes(of: e.0.littleEndian, as: UInt64.self)
                p.storeBytes(of: e.1.littleEndian, toByteOffset: 8, as: UInt32.self)
                p.storeBytes(of: flags.littleEndian, toByteOffset: 12, as: UInt16.self)
                p.storeBytes(of: UInt16(i + 1).littleEndian, toByteOffset: 14, as: UInt16.self)
            }
            var tableLen = UInt32(16 * n)
            if let fault { tableLen = applyIndirectFault(fault, table: table, n: n, len: tableLen) }
            q.pointee.freeHead = Int(q.pointee.descNext[head])
            q.pointee.numFree -= 1
            ring.setDesc(head, addr: mem.gpa(ofOffset: slot.pointee.tableOff), len: tableLen, flags: 4, next: 0)
            slot.pointee.descCount = 1
        } else {
            var idx = head
            for i in 0..<n {
                let e = d[i]
                let next = Int(q.pointee.descNext[idx])
                let last = i + 1 == n
                ring.setDesc(idx, addr: e.0, len: e.1, flags: e.2 | (last ? 0 : 1), next: last ? 0 : UInt16(next))
                if last {
                    if fault == .descLoop { ring.setDesc(idx, addr: e.0, len: e.1, flags: e.2 | 1, next: UInt16(head)) }
                    q.pointee.freeHead = next
                } else {
                    idx = next
                }
            }
            q.pointee.numFree -= n
            slot.pointee.descCount = UInt16(n)
        }
        slot.pointee.head = UInt16(head)
        var posted = UInt32(head)
        if fault == .badHead { posted = UInt32(head + qsize) }
        slot.pointee.headRaw = posted
        q.pointee.headSlot[head] = Int32(s)
        ring.setAvailEntry(q.pointee.availIdx, UInt16(truncatingIfNeeded: posted))
        q.pointee.availIdx &+= 1
        q.pointee.inflight += 1
        if truth != nil || config.latency.isZero == false { slot.pointee.availNs = now }
        counters.commands += 1
        if op == .read { counters.reads += 1 } else if op == .write { counters.writes += 1 } else { counters.others += 1 }
        return true
    }

    @inline(__always) func appendData(_ start: Int, gpa: UInt64, bytes: Int, write: Bool) -> Int {
        var n = start
        var off = 0
        let seg = config.segmentSize
        while off < bytes {
            let len = min(seg, bytes - off)
            descScratch[n] = (gpa + UInt64(off), UInt32(len), write ? 2 : 0)
            n += 1; off += len
        }
        return n
    }

    /// CDB and data-out of the commands other than READ/WRITE; returns (data bytes, is data-in).
    func buildOther(_ op: DrvOp, cdb: UnsafeMutableRawPointer, slot: UnsafeMutablePointer<DrvSlot>, l: UnsafeMutablePointer<DrvLUN>?, page: UInt8) -> (Int, Bool) {
        func set(_ i: Int, _ v: UInt8) { cdb.storeBytes(of: v, toByteOffset: i, as: UInt8.self) }
        func be16(_ i: Int, _ v: Int) { cdb.storeBytes(of: UInt16(v).bigEndian, toByteOffset: i, as: UInt16.self) }
        func be32(_ i: Int, _ v: Int) { cdb.storeBytes(of: UInt32(v).bigEndian, toByteOffset: i, as: UInt32.self) }
        var opcode: UInt8 = 0
        var alloc = 0
        var dataOut = 0
        let blocks = l?.pointee.blocks ?? 1
        switch op {
        case .testUnitReady: opcode = SCSIOp.testUnitReady
        case .inquiry: opcode = SCSIOp.inquiry; alloc = 96; be16(3, alloc)
        case .inquiryVPD:
            opcode = SCSIOp.inquiry; alloc = 255; set(1, 1); set(2, page); be16(3, alloc)
        case .reportLuns: opcode = SCSIOp.reportLuns; alloc = 4096; be32(6, alloc)
        case .readCapacity10: opcode = SCSIOp.readCapacity10; alloc = 8
        case .readCapacity16: opcode = SCSIOp.serviceActionIn16; set(1, SCSIOp.readCapacity16SA); alloc = 32; be32(10, alloc); slot.pointee.serviceAction = SCSIOp.readCapacity16SA
        case .modeSense6: opcode = SCSIOp.modeSense6; set(2, 0x08); alloc = 192; set(4, UInt8(alloc))
        case .modeSense10: opcode = SCSIOp.modeSense10; set(2, 0x3f); alloc = 512; be16(7, alloc)
        case .synchronizeCache: opcode = SCSIOp.synchronizeCache10
        case .verify:
            opcode = SCSIOp.verify10
            let lba = rng.below(max(1, blocks - 8)); be32(2, Int(lba)); be16(7, 8)
            slot.pointee.lba = lba; slot.pointee.nblocks = 8
        case .unmap:
            opcode = SCSIOp.unmap
            // One descriptor over 8 blocks, locked like a write (they read back as zeros).
            if let l {
                let lba = rng.below(max(1, blocks / 8 - 1)) * 8
                if verify && !lock(l, lba, 8, write: true) { opcode = SCSIOp.testUnitReady; slot.pointee.op = .testUnitReady; break }
                slot.pointee.locked = verify
                slot.pointee.lba = lba; slot.pointee.nblocks = 8
                let p = memBase + slot.pointee.dataOff
                p.storeBytes(of: UInt16(22).bigEndian, as: UInt16.self)
                p.storeBytes(of: UInt16(16).bigEndian, toByteOffset: 2, as: UInt16.self)
                p.storeBytes(of: UInt32(0), toByteOffset: 4, as: UInt32.self)
                p.storeBytes(of: lba.bigEndian, toByteOffset: 8, as: UInt64.self)
                p.storeBytes(of: UInt32(8).bigEndian, toByteOffset: 16, as: UInt32.self)
                p.storeBytes(of: UInt32(0), toByteOffset: 20, as: UInt32.self)
                dataOut = 24
                be16(7, 24)
            }
        case .requestSense: opcode = SCSIOp.requestSense; alloc = 96; set(4, UInt8(alloc))
        case .startStop: opcode = SCSIOp.startStopUnit; set(4, 1)
        case .invalidOpcode:
            // REPORT SUPPORTED OPERATION CODES, which sd probes and this disk does not implement.
            opcode = SCSIOp.maintenanceIn; set(1, 0x0c); alloc = 512; be32(6, alloc); slot.pointee.serviceAction = 0x0c
        case .lbaOutOfRange:
            opcode = SCSIOp.read16; cdb.storeBytes(of: (blocks + blocks / 8 + 8).bigEndian, toByteOffset: 2, as: UInt64.self); be32(10, 1); alloc = 512
        case .invalidField:
            opcode = SCSIOp.inquiry; set(2, 0x80); alloc = 96; be16(3, alloc) // page code without EVPD
        case .read, .write, .tmf, .an, .eventBuffer:
            break
        }
        set(0, opcode)
        slot.pointee.opcode = opcode
        slot.pointee.allocation = UInt32(alloc)
        if dataOut > 0 { return (dataOut, false) }
        return (alloc, alloc > 0)
    }

    // MARK: - Driver faults

    func drawDriverFault(qi: Int, slot: UnsafeMutablePointer<DrvSlot>, n: inout Int, tag: inout UInt64) -> SimFault? {
        // One draw per configured fault, so each keeps its own rate; the first that fires wins.
        for f in [SimFault.descLoop, .badHead, .badAddr, .indirectOversize, .indirectNested, .readAfterWrite, .duplicateTag, .recycleAfterCompletion] {
            let t = faultThresholds[Int(f.code)]
            guard t != 0, rng.next() < t else { continue }
            if (f == .indirectOversize || f == .indirectNested) && !config.featureIndirect { continue }
            switch f {
            case .badAddr:
                descScratch[0].0 = mem.gpaBase &+ UInt64(mem.size) &+ 0x10_0000
            case .readAfterWrite:
                descScratch[n] = (mem.gpa(ofOffset: slot.pointee.hdrOff), UInt32(hdrSize), 0)
                n += 1
            case .duplicateTag:
                guard let other = inflightTag(excluding: slot) else { continue }
                tag = other
            default:
                break
            }
            slot.pointee.fault = f.code
            counters.injected[Int(f.code)] += 1
            return f
        }
        return nil
    }

    func inflightTag(excluding: UnsafeMutablePointer<DrvSlot>) -> UInt64? {
        for qi in 2..<queueCount {
            let q = queues + qi
            for h in 0..<qsize where q.pointee.headSlot[h] >= 0 {
                let s = q.pointee.slots + Int(q.pointee.headSlot[h])
                if s != excluding && s.pointee.lunRaw == excluding.pointee.lunRaw { return s.pointee.tmfTargetTag }
            }
        }
        return nil
    }

    func applyIndirectFault(_ f: SimFault, table: UnsafeMutableRawPointer, n: Int, len: UInt32) -> UInt32 {
        switch f {
        case .indirectOversize: return UInt32(16 * (qsize + 1))
        case .indirectNested:
            let flags = UInt16(table.load(fromByteOffset: 12, as: UInt16.self)) | 4
            table.storeBytes(of: flags.littleEndian, toByteOffset: 12, as: UInt16.self)
            return len
        case .descLoop:
            let p = table + 16 * (n - 1)
            let flags = UInt16(littleEndian: p.load(fromByteOffset: 12, as: UInt16.self)) | 1
            p.storeBytes(of: flags.littleEndian, toByteOffset: 12, as: UInt16.self)
            p.storeBytes(of: UInt16(0), toByteOffset: 14, as: UInt16.self)
            return len
        default: return len
        }
    }

    /// Faults that make the chain invalid: the device must return it unprocessed.
    func isRejectingFault(_ code: UInt8) -> Bool {
        guard let f = SimFault.from(code: code) else { return false }
        return [.descLoop, .badHead, .badAddr, .indirectOversize, .indirectNested, .readAfterWrite].contains(f)
    }

    // MARK: - Completions

    @inline(__always)
    func reap(_ qi: Int, now: UInt64) -> Int {
        let q = queues + qi
        let usedIdx = q.pointee.ring.usedIdx.load(ordering: .acquiring)
        var n = 0
        while q.pointee.lastUsed != usedIdx {
            let idx = q.pointee.lastUsed
            let (id, len) = q.pointee.ring.usedEntry(idx)
            q.pointee.lastUsed = idx &+ 1
            n += 1
            var head = Int(id)
            if head >= qsize { head -= qsize }
            var devFault: UInt8 = 0
            if deviceFaults {
                devFault = truthMarks.mark(queue: qi, usedIndex: idx).fault
                if devFault == SimFault.earlyUsed.code {
                    counters.orphans += 1
                    if let truth { orphanLine(truth, qi, head: Int(id), len: len, usedIndex: idx, now: now) }
                    continue
                }
            }
            guard head >= 0, head < qsize, q.pointee.headSlot[head] >= 0 else {
                counters.orphans += 1
                fail("queue \(qi): used id \(id) is not a head in flight")
                continue
            }
            let s = Int(q.pointee.headSlot[head])
            q.pointee.headSlot[head] = -1
            complete(qi, q, s, usedLen: len, usedIndex: idx, devFault: devFault, now: now)
        }
        if n > 0 && config.featureEventIdx { q.pointee.ring.setUsedEvent(q.pointee.lastUsed) }
        return n
    }

    @inline(__always)
    func complete(_ qi: Int, _ q: UnsafeMutablePointer<DrvQueue>, _ s: Int, usedLen: UInt32, usedIndex: UInt16, devFault: UInt8, now: UInt64) {
        let slot = q.pointee.slots + s
        let resp = memBase + slot.pointee.respOff
        let senseLen = UInt32(littleEndian: resp.loadUnaligned(as: UInt32.self))
        let status = resp.load(fromByteOffset: 10, as: UInt8.self)
        let response = resp.load(fromByteOffset: 11, as: UInt8.self)
        counters.completed += 1
        var good = false
        if slot.pointee.fault != 0 && isRejectingFault(slot.pointee.fault) {
            counters.rejected += 1
            if usedLen != 0 { fail("queue \(qi) head \(slot.pointee.head): a chain with \(SimFault.from(code: slot.pointee.fault)?.rawValue ?? "?") was not rejected") }
        } else if verify {
            good = check(qi, slot, usedLen: usedLen, senseLen: senseLen, status: status, response: response, devFault: devFault)
        } else {
            good = response == VSResponse.ok && status == SAM.good
        }
        if response == VSResponse.ok && status == SAM.checkCondition { counters.checkConditions += 1 }
        if let truth { commandLine(truth, qi, slot, usedLen: usedLen, usedIndex: usedIndex, outcome: nil, now: now) }
        release(slot, good: good)
        // Free the descriptors, last-in first-out: the chain goes back to the front.
        let head = Int(slot.pointee.head)
        var tail = head
        for _ in 1..<max(1, Int(slot.pointee.descCount)) { tail = Int(q.pointee.descNext[tail]) }
        q.pointee.descNext[tail] = UInt16(q.pointee.freeHead)
        q.pointee.freeHead = head
        q.pointee.numFree += Int(slot.pointee.descCount)
        q.pointee.inflight -= 1
        if slot.pointee.fault == SimFault.recycleAfterCompletion.code {
            // The buffers are rewritten the moment the completion is seen (a freed indirect
            // table scribbled by the allocator).
            (memBase + slot.pointee.tableOff).initializeMemory(as: UInt8.self, repeating: 0xa5, count: 64)
            (memBase + slot.pointee.hdrOff).initializeMemory(as: UInt8.self, repeating: 0x5a, count: hdrSize)
        }
        putSlot(q, s)
        if slot.pointee.isCold { coldInflight = max(0, coldInflight - 1) }
    }

    /// Releases the LBA lock; a completed write records its stamp, anything else leaves the
    /// blocks unknown (the device may or may not have written them).
    @inline(__always) func release(_ slot: UnsafeMutablePointer<DrvSlot>, good: Bool) {
        guard slot.pointee.locked, slot.pointee.lunIndex >= 0 else { return }
        let l = luns + Int(slot.pointee.lunIndex)
        let isWrite = slot.pointee.op == .write || slot.pointee.op == .unmap
        unlock(l, slot.pointee.lba, slot.pointee.nblocks, write: isWrite)
        if isWrite {
            let stamp: UInt32 = good ? (slot.pointee.op == .unmap ? 0 : slot.pointee.stamp) : 0xffff_ffff
            let st = l.pointee.stamps + Int(slot.pointee.lba)
            for i in 0..<Int(slot.pointee.nblocks) { st[i] = stamp }
        }
        slot.pointee.locked = false
    }

    /// Checks one completion against what the device must have answered. True for GOOD.
    @inline(__always)
    func check(_ qi: Int, _ slot: UnsafeMutablePointer<DrvSlot>, usedLen: UInt32, senseLen: UInt32, status: UInt8, response: UInt8, devFault: UInt8) -> Bool {
        let lunIndex = Int(slot.pointee.lunIndex)
        let op = slot.pointee.op
        let hotplugLun = lunIndex >= 0 && lunIndex == hotplugLUN
        if devFault == SimFault.usedLenOverflow.code {
            // The device lied about the length: clamp, as a careful driver does.
        } else if usedLen > UInt32(respSize) + (slot.pointee.dataIn ? slot.pointee.dataBytes : 0) {
            fail("queue \(qi) head \(slot.pointee.head): used length \(usedLen) is larger than the writable buffers")
        }
        if slot.pointee.dataIn && devFault == 0 && usedLen >= UInt32(respSize) {
            let residual = UInt32(littleEndian: (memBase + slot.pointee.respOff).loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            if residual != slot.pointee.dataBytes &- (usedLen - UInt32(respSize)) {
                fail("queue \(qi) head \(slot.pointee.head): residual \(residual) for \(usedLen - UInt32(respSize)) of \(slot.pointee.dataBytes) bytes")
            }
        }
        if senseLen > UInt32(senseSize) && devFault != SimFault.senseLenOverflow.code {
            fail("queue \(qi) head \(slot.pointee.head): sense_len \(senseLen) > sense_size")
        }
        switch response {
        case VSResponse.ok:
            break
        case VSResponse.badTarget:
            counters.badTarget += 1
            if !(slot.pointee.expectBadTarget || (hotplugLun && config.luns == 1)) { fail("queue \(qi): BAD_TARGET for \(lunText(slot))") }
            return false
        case VSResponse.aborted:
            counters.aborted += 1
            if !slot.pointee.abortable { fail("queue \(qi): ABORTED without an ABORT_TASK for \(lunText(slot))") }
            if slot.pointee.tmfDone { fail("queue \(qi): ABORTED completion after the TMF response") }
            return false
        case VSResponse.reset:
            counters.resetResponses += 1
            if lunIndex < 0 || (luns[lunIndex].epoch == slot.pointee.epoch && luns[lunIndex].resetsInFlight == 0) { fail("queue \(qi): RESET without a reset for \(lunText(slot))") }
            return false
        default:
            fail("queue \(qi): response \(VSResponse.name(response)) for \(SCSIOp.name(slot.pointee.opcode)) on \(lunText(slot))")
            return false
        }
        let sense = memBase + slot.pointee.respOff + 12
        let key = senseLen >= 14 ? sense.load(fromByteOffset: 2, as: UInt8.self) & 0x0f : 0
        let asc = senseLen >= 14 ? sense.load(fromByteOffset: 12, as: UInt8.self) : 0
        let ascq = senseLen >= 14 ? sense.load(fromByteOffset: 13, as: UInt8.self) : 0
        let expected: SenseCode? = op == .invalidOpcode ? .invalidOpcode : op == .lbaOutOfRange ? .lbaOutOfRange : op == .invalidField ? .invalidFieldInCDB : nil
        if status == SAM.checkCondition {
            let got = SenseCode(key: key, asc: asc, ascq: ascq)
            if key == 6 {
                counters.unitAttentions += 1
                let allowed = lunIndex >= 0 && (luns[lunIndex].uaExpected > 0 || config.resizeEveryNs > 0 || hotplugLun)
                if !allowed { fail("queue \(qi): unexpected UNIT ATTENTION \(hex(asc))/\(hex(ascq)) on \(lunText(slot))") }
                if lunIndex >= 0 { luns[lunIndex].uaExpected = max(0, luns[lunIndex].uaExpected - 1) }
                if usedLen != UInt32(respSize) && devFault == 0 { fail("queue \(qi): CHECK CONDITION with data (\(usedLen))") }
                return false
            }
            if let expected, got == expected { return false }
            if got == .lunNotSupported && hotplugLun { return false }
            fail("queue \(qi): CHECK CONDITION \(key)/\(hex(asc))/\(hex(ascq)) for \(SCSIOp.name(slot.pointee.opcode, serviceAction: slot.pointee.serviceAction)) on \(lunText(slot))")
            return false
        }
        if status != SAM.good { fail("queue \(qi): status \(SAM.statusName(status))"); return false }
        // A LUN that was unplugged answers INQUIRY with qualifier 3 data, whatever the page.
        if expected != nil && hotplugLun && op == .invalidField { return true }
        if let expected { fail("queue \(qi): GOOD where \(expected.key)/\(hex(expected.asc)) was due"); return false }
        if slot.pointee.expectBadTarget {
            // INQUIRY to LUN 0 of a missing target is answered BAD_TARGET; GOOD is wrong.
            fail("queue \(qi): GOOD for a missing target"); return false
        }
        switch op {
        case .read:
            if devFault == 0 && usedLen != UInt32(respSize) + slot.pointee.dataBytes { fail("queue \(qi): read used length \(usedLen), expected \(UInt32(respSize) + slot.pointee.dataBytes)") }
            if slot.pointee.locked { verifyRead(qi, slot) }
        case .write, .testUnitReady, .synchronizeCache, .verify, .unmap, .startStop:
            if devFault == 0 && usedLen != UInt32(respSize) { fail("queue \(qi): \(SCSIOp.name(slot.pointee.opcode)) used length \(usedLen), expected \(respSize)") }
        case .readCapacity16, .readCapacity10:
            let data = memBase + slot.pointee.dataOff
            if lunIndex >= 0 {
                let last = op == .readCapacity16 ? UInt64(bigEndian: data.loadUnaligned(as: UInt64.self)) : UInt64(UInt32(bigEndian: data.loadUnaligned(as: UInt32.self)))
                let base = luns[lunIndex].blocks
                if last != base - 1 && !(config.resizeEveryNs > 0 && last == base + base / 8 - 1) { fail("READ CAPACITY: last LBA \(last), expected \(base - 1)") }
            }
        case .inquiryVPD:
            let page = (memBase + slot.pointee.hdrOff).load(fromByteOffset: 19 + 2, as: UInt8.self)
            let got = (memBase + slot.pointee.dataOff).load(fromByteOffset: 1, as: UInt8.self)
            if usedLen < UInt32(respSize) + 4 || (got != page && !hotplugLun) { fail("INQUIRY VPD \(hex(page)): page \(hex(got)) in \(usedLen) bytes") }
        case .inquiry:
            let data = memBase + slot.pointee.dataOff
            if usedLen < UInt32(respSize) + 36 { fail("INQUIRY: \(usedLen) bytes") } else if data.load(as: UInt8.self) != 0 && !(hotplugLun && data.load(as: UInt8.self) == 0x7f) { fail("INQUIRY: peripheral \(hex(data.load(as: UInt8.self)))") }
        default:
            if usedLen > UInt32(respSize) + slot.pointee.allocation && devFault == 0 { fail("\(SCSIOp.name(slot.pointee.opcode)): more data than the allocation length") }
        }
        return true
    }

    /// Every block read must carry the header of the last completed write to it (or zeros).
    @inline(__always)
    func verifyRead(_ qi: Int, _ slot: UnsafeMutablePointer<DrvSlot>) {
        let l = luns + Int(slot.pointee.lunIndex)
        let data = memBase + slot.pointee.dataOff
        let lba = slot.pointee.lba
        let lunTag = UInt32(slot.pointee.lunIndex) | 0x5aa5_0000
        for b in 0..<Int(slot.pointee.nblocks) {
            let stamp = l.pointee.stamps[Int(lba) + b]
            if stamp == 0xffff_ffff { continue }
            let p = data + b * 512
            let gotLBA = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
            let gotStamp = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            let gotTag = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            let ok = stamp == 0 ? (gotLBA == 0 && gotStamp == 0 && gotTag == 0) : (gotLBA == lba + UInt64(b) && gotStamp == stamp && gotTag == lunTag)
            if !ok {
                fail("queue \(qi): data read back at \(lunText(slot)) lba \(lba + UInt64(b)) is (lba \(gotLBA), stamp \(gotStamp)), expected stamp \(stamp)")
                return
            }
            counters.verifiedBlocks += 1
        }
    }

    func lunText(_ slot: UnsafeMutablePointer<DrvSlot>) -> String {
        let raw = slot.pointee.lunRaw
        return "target \((raw >> 8) & 0xff) lun \(((raw >> 16) & 0x3f) << 8 | ((raw >> 24) & 0xff))"
    }

    func hex(_ v: UInt8) -> String { "0x" + (v < 16 ? "0" : "") + String(v, radix: 16) }

    // MARK: - Controlq: TMFs and asynchronous notifications

    func sendControl(now: UInt64) {
        let kinds: [(UInt32, UInt32)] = [(VSControl.typeTMF, VSControl.abortTask), (VSControl.typeTMF, VSControl.logicalUnitReset),
                                         (VSControl.typeTMF, VSControl.itNexusReset), (VSControl.typeTMF, VSControl.queryTask),
                                         (VSControl.typeANQuery, 0), (VSControl.typeANSubscribe, 0)]
        let (type, subtype) = kinds[tmfTurn % kinds.count]
        tmfTurn += 1
        postControl(type: type, subtype: subtype, now: now)
    }

    /// The oldest command in flight (the slowest), as (queue, slot).
    func slowest() -> (Int, Int)? {
        var best: (Int, Int)? = nil
        var bestNs = UInt64.max
        for qi in 2..<queueCount {
            let q = queues + qi
            for h in 0..<qsize where q.pointee.headSlot[h] >= 0 {
                let s = Int(q.pointee.headSlot[h])
                let slot = q.pointee.slots + s
                if slot.pointee.availNs < bestNs && slot.pointee.lunIndex >= 0 && slot.pointee.fault == 0 { bestNs = slot.pointee.availNs; best = (qi, s) }
            }
        }
        return best
    }

    @discardableResult
    func postControl(type: UInt32, subtype: UInt32, lunIndex lunArg: Int? = nil, now: UInt64) -> Bool {
        let q = queues + 0
        guard q.pointee.numFree >= 2, let s = takeSlot(q) else { return false }
        let slot = q.pointee.slots + s
        var lunIndex = lunArg ?? Int(rng.below(UInt64(lunCount)))
        var tag: UInt64 = 0
        slot.pointee.tmfTargetQueue = -1
        slot.pointee.tmfTargetSlot = -1
        if type == VSControl.typeTMF && (subtype == VSControl.abortTask || subtype == VSControl.queryTask) {
            if let (tq, ts) = slowest() {
                let target = queues[tq].slots + ts
                tag = target.pointee.tmfTargetTag
                lunIndex = Int(target.pointee.lunIndex)
                slot.pointee.tmfTargetQueue = Int32(tq); slot.pointee.tmfTargetSlot = Int32(ts)
                if subtype == VSControl.abortTask {
                    pendingAbortTags.append(tag)
                    // Every command in flight with this tag and LUN may now come back ABORTED.
                    for qi in 2..<queueCount {
                        for h in 0..<qsize where queues[qi].headSlot[h] >= 0 {
                            let o = queues[qi].slots + Int(queues[qi].headSlot[h])
                            if o.pointee.tmfTargetTag == tag && o.pointee.lunIndex == Int32(lunIndex) { o.pointee.abortable = true }
                        }
                    }
                }
            } else {
                tag = 0xffff_8881_dead_0000
            }
        }
        while luns[lunIndex].removed && lunIndex > 0 { lunIndex -= 1 }
        let l = luns + lunIndex
        if type == VSControl.typeTMF && subtype == VSControl.logicalUnitReset {
            l.pointee.epoch &+= 1; l.pointee.uaExpected += 1; l.pointee.resetsInFlight += 1
        } else if type == VSControl.typeTMF && subtype == VSControl.itNexusReset {
            for i in 0..<lunCount where luns[i].target == l.pointee.target { luns[i].epoch &+= 1; luns[i].uaExpected += 1; luns[i].resetsInFlight += 1 }
        }
        let req = memBase + slot.pointee.hdrOff
        req.initializeMemory(as: UInt8.self, repeating: 0, count: 32)
        (memBase + slot.pointee.respOff).initializeMemory(as: UInt8.self, repeating: 0xff, count: 8)
        req.storeBytes(of: type.littleEndian, as: UInt32.self)
        let reqLen: Int, respLen: Int
        if type == VSControl.typeTMF {
            req.storeBytes(of: subtype.littleEndian, toByteOffset: 4, as: UInt32.self)
            req.storeBytes(of: l.pointee.lunRaw.littleEndian, toByteOffset: 8, as: UInt64.self)
            req.storeBytes(of: tag.littleEndian, toByteOffset: 16, as: UInt64.self)
            reqLen = 24; respLen = 1
            counters.tmfs += 1
        } else {
            req.storeBytes(of: l.pointee.lunRaw.littleEndian, toByteOffset: 4, as: UInt64.self)
            // Operational change, media change, device busy: what an MMC host asks for.
            req.storeBytes(of: UInt32(2 | 16 | 64).littleEndian, toByteOffset: 12, as: UInt32.self)
            reqLen = 16; respLen = 5
            counters.ans += 1
        }
        slot.pointee.op = type == VSControl.typeTMF ? .tmf : .an
        slot.pointee.ctrlType = type; slot.pointee.subtype = subtype
        slot.pointee.lunRaw = l.pointee.lunRaw; slot.pointee.lunIndex = Int32(lunIndex)
        slot.pointee.tmfTargetTag = tag
        slot.pointee.availNs = now
        // Two direct descriptors (Linux: virtscsi_add_cmd with a request and a response buffer).
        let head = q.pointee.freeHead
        let second = Int(q.pointee.descNext[head])
        q.pointee.freeHead = Int(q.pointee.descNext[second])
        q.pointee.numFree -= 2
        let ring = q.pointee.ring
        ring.setDesc(head, addr: mem.gpa(ofOffset: slot.pointee.hdrOff), len: UInt32(reqLen), flags: 1, next: UInt16(second))
        ring.setDesc(second, addr: mem.gpa(ofOffset: slot.pointee.respOff), len: UInt32(respLen), flags: 2, next: 0)
        slot.pointee.head = UInt16(head); slot.pointee.descCount = 2; slot.pointee.headRaw = UInt32(head)
        q.pointee.headSlot[head] = Int32(s)
        ring.setAvailEntry(q.pointee.availIdx, UInt16(head))
        q.pointee.availIdx &+= 1
        q.pointee.inflight += 1
        publish(0)
        return true
    }

    func reapControl(now: UInt64) -> Int {
        let q = queues + 0
        let usedIdx = q.pointee.ring.usedIdx.load(ordering: .acquiring)
        guard q.pointee.lastUsed != usedIdx else { return 0 }
        // The device completed cancelled commands before answering the TMF: collect them first.
        for qi in 2..<queueCount { _ = reap(qi, now: now) }
        var n = 0
        while q.pointee.lastUsed != usedIdx {
            let idx = q.pointee.lastUsed
            let (id, len) = q.pointee.ring.usedEntry(idx)
            q.pointee.lastUsed = idx &+ 1
            n += 1
            let head = Int(id)
            guard head < qsize, q.pointee.headSlot[head] >= 0 else { counters.orphans += 1; fail("controlq: used id \(id) not in flight"); continue }
            let s = Int(q.pointee.headSlot[head])
            q.pointee.headSlot[head] = -1
            let slot = q.pointee.slots + s
            let resp = memBase + slot.pointee.respOff
            let response = slot.pointee.op == .tmf ? resp.load(as: UInt8.self) : resp.load(fromByteOffset: 4, as: UInt8.self)
            if verify {
                let lunIndex = Int(slot.pointee.lunIndex)
                let removedOK = lunIndex == hotplugLUN && (response == VSResponse.badTarget || response == VSResponse.incorrectLUN)
                if slot.pointee.op == .tmf {
                    let okSet: [UInt8] = slot.pointee.subtype == VSControl.queryTask ? [VSResponse.ok, VSResponse.functionSucceeded] : [VSResponse.ok]
                    if !okSet.contains(response) && !removedOK { fail("TMF \(VSControl.subtypeName(slot.pointee.subtype)): response \(VSResponse.name(response, control: true))") }
                    if len != 1 { fail("TMF: used length \(len)") }
                } else {
                    if response != VSResponse.ok && !removedOK { fail("AN: response \(VSResponse.name(response))") }
                    let actual = UInt32(littleEndian: resp.loadUnaligned(as: UInt32.self))
                    if actual != 0 { fail("AN: event_actual \(actual), QEMU answers 0") }
                    if len != 5 { fail("AN: used length \(len)") }
                }
            }
            if slot.pointee.op == .tmf && slot.pointee.subtype == VSControl.abortTask {
                // Any later ABORTED for that tag would break QEMU's order.
                let tag = slot.pointee.tmfTargetTag
                if let k = pendingAbortTags.firstIndex(of: tag) { pendingAbortTags.remove(at: k) }
                for qi in 2..<queueCount {
                    for h in 0..<qsize where queues[qi].headSlot[h] >= 0 {
                        let o = queues[qi].slots + Int(queues[qi].headSlot[h])
                        if o.pointee.abortable && o.pointee.tmfTargetTag == tag { o.pointee.tmfDone = true }
                    }
                }
            }
            if slot.pointee.op == .tmf && (slot.pointee.subtype == VSControl.logicalUnitReset || slot.pointee.subtype == VSControl.itNexusReset) {
                let l = luns + Int(slot.pointee.lunIndex)
                for i in 0..<lunCount where slot.pointee.subtype == VSControl.itNexusReset ? luns[i].target == l.pointee.target : i == Int(slot.pointee.lunIndex) {
                    luns[i].resetsInFlight = max(0, luns[i].resetsInFlight - 1)
                }
            }
            if let truth { controlLine(truth, slot, usedLen: len, outcome: nil, now: now, usedIndex: idx) }
            q.pointee.descNext[Int(q.pointee.descNext[head])] = UInt16(q.pointee.freeHead)
            q.pointee.freeHead = head
            q.pointee.numFree += 2
            q.pointee.inflight -= 1
            putSlot(q, s)
        }
        if config.featureEventIdx { q.pointee.ring.setUsedEvent(q.pointee.lastUsed) }
        return n
    }

    // MARK: - Eventq

    func postEventBuffer(slotIndex: Int? = nil, now: UInt64) {
        let q = queues + 1
        let s: Int
        if let slotIndex { s = slotIndex } else {
            guard let t = takeSlot(q) else { return }
            s = t
        }
        guard q.pointee.numFree >= 1 else { putSlot(q, s); return }
        let slot = q.pointee.slots + s
        (memBase + slot.pointee.respOff).initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        let head = q.pointee.freeHead
        q.pointee.freeHead = Int(q.pointee.descNext[head])
        q.pointee.numFree -= 1
        q.pointee.ring.setDesc(head, addr: mem.gpa(ofOffset: slot.pointee.respOff), len: 16, flags: 2, next: 0)
        slot.pointee.head = UInt16(head); slot.pointee.descCount = 1; slot.pointee.op = .eventBuffer
        slot.pointee.availNs = now
        q.pointee.headSlot[head] = Int32(s)
        q.pointee.ring.setAvailEntry(q.pointee.availIdx, UInt16(head))
        q.pointee.availIdx &+= 1
        q.pointee.inflight += 1
    }

    func reapEvents(now: UInt64) -> Int {
        let q = queues + 1
        let usedIdx = q.pointee.ring.usedIdx.load(ordering: .acquiring)
        var n = 0
        while q.pointee.lastUsed != usedIdx {
            let idx = q.pointee.lastUsed
            let (id, len) = q.pointee.ring.usedEntry(idx)
            q.pointee.lastUsed = idx &+ 1
            n += 1
            let head = Int(id)
            guard head < qsize, q.pointee.headSlot[head] >= 0 else { counters.orphans += 1; fail("eventq: used id \(id) not in flight"); continue }
            let s = Int(q.pointee.headSlot[head])
            q.pointee.headSlot[head] = -1
            let slot = q.pointee.slots + s
            let buf = memBase + slot.pointee.respOff
            let event = UInt32(littleEndian: buf.loadUnaligned(as: UInt32.self))
            let lunRaw = UInt64(littleEndian: buf.loadUnaligned(fromByteOffset: 4, as: UInt64.self))
            let reason = UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            counters.events += 1
            if verify && len != 16 { fail("eventq: used length \(len)") }
            if let truth { truth.eventLine(head: head, event: event, lunRaw: lunRaw, reason: reason, outcome: "delivered", fault: nil, usedNs: truthMarks.mark(queue: 1, usedIndex: idx).ns) }
            handleEvent(event: event, lunRaw: lunRaw, reason: reason)
            q.pointee.descNext[head] = UInt16(q.pointee.freeHead)
            q.pointee.freeHead = head
            q.pointee.numFree += 1
            q.pointee.inflight -= 1
            let starve = faultThresholds[Int(SimFault.eventqStarve.code)]
            if starveUntil == 0 && starve != 0 && rng.next() < starve {
                counters.injected[Int(SimFault.eventqStarve.code)] += 1
                starveUntil = now + 50_000_000
            }
            if starveUntil != 0 { heldEventSlots.append(Int32(s)) } else { postEventBuffer(slotIndex: s, now: now) }
        }
        if n > 0 {
            if config.featureEventIdx { q.pointee.ring.setUsedEvent(q.pointee.lastUsed) }
            publish(1)
        }
        return n
    }

    func handleEvent(event: UInt32, lunRaw: UInt64, reason: UInt32) {
        if event & VSControl.eventsMissed != 0 {
            counters.eventsMissed += 1
            // Linux rescans the host when events were lost.
            for t in 0..<config.targets { cold.append((.reportLuns, Int32(t * config.luns), UInt8(t), 0)) }
        }
        guard let (t, l) = SimLUN.decode(lunRaw), Int(t) < config.targets, Int(l) < config.luns else { return }
        let i = Int(t) * config.luns + Int(l)
        switch event & 0x7fff_ffff {
        case VSControl.eventTransportReset:
            if reason == VSControl.reasonRemoved { luns[i].removed = true }
            if reason == VSControl.reasonRescan {
                luns[i].removed = false
                luns[i].uaExpected += 1
                cold.append((.inquiry, Int32(i), t, 0))
                cold.append((.testUnitReady, Int32(i), t, 0))
                cold.append((.readCapacity16, Int32(i), t, 0))
            }
        case VSControl.eventParamChange:
            luns[i].uaExpected += 1
            cold.append((.readCapacity16, Int32(i), t, 0))
        default:
            break
        }
    }

    // MARK: - Ground truth lines

    func commandLine(_ truth: TruthSink, _ qi: Int, _ slot: UnsafeMutablePointer<DrvSlot>, usedLen: UInt32?, usedIndex: UInt16?, outcome: String?, now: UInt64) {
        var j = JSONLine()
        j.openObject()
        j.open("virtio_scsi")
        j.hexField("id", slot.pointee.tmfTargetTag)
        j.lun(slot.pointee.lunRaw)
        j.open("cdb")
        j.code("opcode", "opcode_name", UInt64(slot.pointee.opcode), SCSIOp.name(slot.pointee.opcode, serviceAction: slot.pointee.serviceAction))
        let op = slot.pointee.op
        if op == .read || op == .write || op == .verify || op == .lbaOutOfRange {
            j.field("lba", op == .lbaOutOfRange ? (slot.pointee.lunIndex >= 0 ? luns[Int(slot.pointee.lunIndex)].blocks + luns[Int(slot.pointee.lunIndex)].blocks / 8 + 8 : 0) : slot.pointee.lba)
            j.field("transfer_length", UInt64(op == .lbaOutOfRange ? 1 : slot.pointee.nblocks))
        } else if slot.pointee.allocation > 0 {
            j.field("allocation_length", UInt64(slot.pointee.allocation))
        }
        j.close()
        let rejected = slot.pointee.fault != 0 && isRejectingFault(slot.pointee.fault)
        if let usedLen, !rejected {
            let resp = memBase + slot.pointee.respOff
            let senseLen = UInt32(littleEndian: resp.loadUnaligned(as: UInt32.self))
            let status = resp.load(fromByteOffset: 10, as: UInt8.self)
            let response = resp.load(fromByteOffset: 11, as: UInt8.self)
            _ = usedLen
            j.code("response", "response_name", UInt64(response), VSResponse.name(response))
            j.code("status", "status_name", UInt64(status), SAM.statusName(status))
            j.field("sense_len", UInt64(senseLen))
            j.field("residual", UInt64(UInt32(littleEndian: resp.loadUnaligned(fromByteOffset: 4, as: UInt32.self))))
            if senseLen >= 14 && status == SAM.checkCondition {
                let sense = resp + 12
                j.open("sense")
                j.field("key", UInt64(sense.load(fromByteOffset: 2, as: UInt8.self) & 0x0f))
                j.field("asc", UInt64(sense.load(fromByteOffset: 12, as: UInt8.self)))
                j.field("ascq", UInt64(sense.load(fromByteOffset: 13, as: UInt8.self)))
                j.close()
            }
        }
        j.close()
        j.field("queue", qi)
        j.field("head", Int(slot.pointee.head))
        if slot.pointee.headRaw != UInt32(slot.pointee.head) { j.field("posted_head", UInt64(slot.pointee.headRaw)) }
        j.field("kind", "cmd")
        j.field("data_length", UInt64(slot.pointee.dataBytes))
        j.field("direction", slot.pointee.dataBytes == 0 ? "none" : slot.pointee.dataIn ? "in" : "out")
        j.field("time_ns", truth.wall(slot.pointee.availNs))
        j.field("avail_ns", slot.pointee.availNs)
        var fault = SimFault.from(code: slot.pointee.fault)?.rawValue
        if let usedLen, let usedIndex {
            let mark = truthMarks.mark(queue: qi, usedIndex: usedIndex)
            j.field("used_ns", mark.ns)
            j.field("used_len", UInt64(usedLen))
            if fault == nil, let f = SimFault.from(code: mark.fault) { fault = f.rawValue }
        }
        if rejected { j.field("outcome", "rejected") } else if let outcome { j.field("outcome", outcome) } else { j.field("outcome", "completed") }
        if let fault { j.field("fault", fault) }
        j.close()
        truth.write(j)
    }

    func orphanLine(_ truth: TruthSink, _ qi: Int, head: Int, len: UInt32, usedIndex: UInt16, now: UInt64) {
        let mark = truthMarks.mark(queue: qi, usedIndex: usedIndex)
        var j = JSONLine()
        j.openObject()
        j.field("queue", qi)
        j.field("head", head)
        j.field("kind", "orphan")
        j.field("time_ns", truth.wall(mark.ns))
        j.field("used_ns", mark.ns)
        j.field("used_len", UInt64(len))
        j.field("outcome", "orphan")
        j.field("fault", SimFault.from(code: mark.fault)?.rawValue ?? "none")
        j.close()
        truth.write(j)
    }

    func controlLine(_ truth: TruthSink, _ slot: UnsafeMutablePointer<DrvSlot>, usedLen: UInt32?, outcome: String?, now: UInt64, usedIndex: UInt16? = nil) {
        var j = JSONLine()
        j.openObject()
        j.open("virtio_scsi")
        j.open("ctrl")
        j.code("type", "type_name", UInt64(slot.pointee.ctrlType), VSControl.typeName(slot.pointee.ctrlType))
        j.close()
        let isTMF = slot.pointee.op == .tmf
        let resp = memBase + slot.pointee.respOff
        if isTMF {
            j.hexField("id", slot.pointee.tmfTargetTag)
            j.lun(slot.pointee.lunRaw)
            j.open("tmf")
            j.code("subtype", "subtype_name", UInt64(slot.pointee.subtype), VSControl.subtypeName(slot.pointee.subtype))
            if usedLen != nil {
                let r = resp.load(as: UInt8.self)
                j.code("response", "response_name", UInt64(r), VSResponse.name(r, control: true))
            }
            j.close()
        } else {
            j.lun(slot.pointee.lunRaw)
            j.open("an")
            j.field("event_requested", UInt64(2 | 16 | 64))
            if usedLen != nil {
                j.field("event_actual", UInt64(UInt32(littleEndian: resp.loadUnaligned(as: UInt32.self))))
                let r = resp.load(fromByteOffset: 4, as: UInt8.self)
                j.code("response", "response_name", UInt64(r), VSResponse.name(r))
            }
            j.close()
        }
        j.close()
        j.field("queue", 0)
        j.field("head", Int(slot.pointee.head))
        j.field("kind", isTMF ? "tmf" : "an")
        j.field("time_ns", truth.wall(slot.pointee.availNs))
        j.field("avail_ns", slot.pointee.availNs)
        if let usedLen, let usedIndex {
            j.field("used_ns", truthMarks.mark(queue: 0, usedIndex: usedIndex).ns)
            j.field("used_len", UInt64(usedLen))
        }
        j.field("outcome", outcome ?? "completed")
        j.close()
        truth.write(j)
    }
}
