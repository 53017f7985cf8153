#if canImport(Glibc)
import Glibc
#endif
import Atomics

// The device: a virtio-scsi host with RAM-backed disks, as QEMU's hw/scsi/virtio-scsi.c and
// scsi-disk behave (virtio-facts.md). It reads only what the driver made available (acquire on
// avail.idx), validates every chain as a hostile guest may break it, and returns buffers with
// a releasing store of used.idx. Hot state lives in flat, preallocated memory.

struct DevSeg { var off: Int; var len: Int }

/// One request the device holds (latency model) until it is due.
struct DevReq {
    var tag: UInt64 = 0
    var seq: UInt32 = 0
    var lunIndex: Int32 = -1
    var segCount: Int32 = 0
    var readable: Int32 = 0
    var usedLen: UInt32 = 0
    var state: UInt8 = 0 // 0 idle, 1 pending
    var fault: UInt8 = 0
}

struct DevQueue {
    var ring: RingAccess
    var lastAvail: UInt16 = 0
    var usedIdx: UInt16 = 0
    var publishedUsed: UInt16 = 0
    let segs: UnsafeMutablePointer<DevSeg>
    let reqs: UnsafeMutablePointer<DevReq>
    /// Ground-truth marks per used-ring slot: injected device fault and the time it was returned.
    let usedFault: UnsafeMutablePointer<UInt8>
    let usedNs: UnsafeMutablePointer<UInt64>
}

struct DiskState {
    var data: UnsafeMutableRawPointer
    var blocks: UInt64
    var baseBlocks: UInt64
    var maxBlocks: UInt64
    var present: Bool
    var uaPending: Bool
    var ua: SenseCode
    var target: UInt8
    var lun: UInt16
}

struct WalkResult {
    var count: Int32 = 0
    var readable: Int32 = 0
    var outBytes: Int = 0
    var inBytes: Int = 0
    var error: UInt8 = 0

    static let names = ["", "descriptor loop or chain longer than the queue", "descriptor index out of range",
                        "buffer outside guest memory", "bad indirect table length", "nested indirect table",
                        "readable descriptor after a writable one", "too many segments", "INDIRECT with NEXT",
                        "head out of range", "request header too short", "response buffer too short",
                        "indirect descriptor without INDIRECT_DESC"]
}

public struct DeviceCounters: Sendable {
    public var commands: UInt64 = 0
    public var tmfs: UInt64 = 0
    public var ans: UInt64 = 0
    public var events: UInt64 = 0
    public var eventsDropped: UInt64 = 0
    public var rejectedChains: UInt64 = 0
    public var aborted: UInt64 = 0
    public var resetCommands: UInt64 = 0
    public var resets: UInt64 = 0
    public var notifications: UInt64 = 0
    public var injected: [UInt64] = Array(repeating: 0, count: SimFault.allCases.count + 1)
}

final class SimDevice: @unchecked Sendable {
    let config: SimConfig
    let mem: SimMemory
    let transport: SimTransport
    let truth: TruthSink?
    let memBase: UnsafeMutableRawPointer
    let gpaBase: UInt64
    let memSize: UInt64
    let maxSegs: Int
    let queueCount: Int
    let queues: UnsafeMutablePointer<DevQueue>
    let disks: UnsafeMutablePointer<DiskState>
    let diskCount: Int
    let scratch: UnsafeMutableRawPointer
    var rng: SimRandom
    var live = false
    var features: UInt64 = 0
    var cdbSize = 32
    var senseSize = 96
    var hdrSize = 51
    var respSize = 108
    var latencyZero: Bool
    var heap: [(due: UInt64, queue: UInt16, head: UInt16, seq: UInt32)] = []
    var seq: UInt32 = 0
    var eventsMissed = false
    var pendingEvents: [(event: UInt32, lun: UInt64, reason: UInt32)] = []
    var nextHotplug: UInt64 = 0
    var nextResize: UInt64 = 0
    var resizeTurn = 0
    var counters = DeviceCounters()
    let faultSenseLen: UInt64
    let faultEarlyUsed: UInt64
    let faultUsedLen: UInt64
    let faultDropEvents: Double
    let anyRequestFault: Bool
    let recordTimes: Bool

    init(config: SimConfig, memory: SimMemory, transport: SimTransport, truth: TruthSink?) throws(SimError) {
        self.config = config
        self.mem = memory
        self.transport = transport
        self.truth = truth
        memBase = memory.base
        gpaBase = memory.gpaBase
        memSize = UInt64(memory.size)
        maxSegs = SimDevice.segMax(queueSize: config.queueSize) + 2
        queueCount = config.queues + 2
        rng = SimRandom(seed: config.seed ^ 0xdead_beef)
        latencyZero = config.latency.isZero
        recordTimes = truth != nil
        func threshold(_ f: SimFault) -> UInt64 {
            guard let p = config.faults[f], p > 0 else { return 0 }
            return p >= 1 ? UInt64.max : UInt64(p * 18_446_744_073_709_551_615.0)
        }
        faultSenseLen = threshold(.senseLenOverflow)
        faultEarlyUsed = threshold(.earlyUsed)
        faultUsedLen = threshold(.usedLenOverflow)
        faultDropEvents = config.faults[.dropEvents] ?? 0
        anyRequestFault = faultSenseLen | faultEarlyUsed | faultUsedLen != 0

        let qsize = config.queueSize
        queues = .allocate(capacity: queueCount)
        let dummy = RingAccess(memory, RingPlace(size: qsize, descOff: 0, availOff: 0, usedOff: 0))
        for i in 0..<queueCount {
            let segs = UnsafeMutablePointer<DevSeg>.allocate(capacity: qsize * maxSegs)
            let reqs = UnsafeMutablePointer<DevReq>.allocate(capacity: qsize)
            reqs.initialize(repeating: DevReq(), count: qsize)
            let uf = UnsafeMutablePointer<UInt8>.allocate(capacity: qsize)
            uf.initialize(repeating: 0, count: qsize)
            let un = UnsafeMutablePointer<UInt64>.allocate(capacity: qsize)
            un.initialize(repeating: 0, count: qsize)
            (queues + i).initialize(to: DevQueue(ring: dummy, segs: segs, reqs: reqs, usedFault: uf, usedNs: un))
        }
        diskCount = config.targets * config.luns
        disks = .allocate(capacity: diskCount)
        let baseBlocks = config.diskSize / 512
        let maxBlocks = baseBlocks + baseBlocks / 8
        for t in 0..<config.targets {
            for l in 0..<config.luns {
                // Populated up front: a page fault per first write would cost more than the I/O itself.
                guard let p = mmap(nil, Int(maxBlocks * 512), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE, -1, 0), p != MAP_FAILED else {
                    throw SimError("--disk-size: cannot reserve \(maxBlocks * 512) bytes for a disk")
                }
                (disks + t * config.luns + l).initialize(to: DiskState(
                    data: p, blocks: baseBlocks, baseBlocks: baseBlocks, maxBlocks: maxBlocks, present: true,
                    uaPending: true, ua: .powerOnReset, target: UInt8(t), lun: UInt16(l)))
            }
        }
        scratch = .allocate(byteCount: 8192, alignment: 16)
        heap.reserveCapacity(qsize * config.queues * 2)
        pendingEvents.reserveCapacity(64)
    }

    deinit {
        for i in 0..<queueCount {
            queues[i].segs.deallocate(); queues[i].reqs.deallocate(); queues[i].usedFault.deallocate(); queues[i].usedNs.deallocate()
        }
        queues.deallocate()
        for i in 0..<diskCount { munmap(disks[i].data, Int(disks[i].maxBlocks * 512)) }
        disks.deallocate()
        scratch.deallocate()
    }

    /// The configuration's seg_max: data segments per command (plus header and response).
    static func segMax(queueSize: Int) -> Int { min(queueSize - 2, 128) }

    /// The ground-truth marks of the used slot `idx` of queue `q` (read by the truth recorder).
    @inline(__always) func mark(queue q: Int, usedIndex idx: UInt16) -> (fault: UInt8, ns: UInt64) {
        let slot = Int(idx) & (config.queueSize - 1)
        return (queues[q].usedFault[slot], queues[q].usedNs[slot])
    }

    // MARK: - Main loop

    /// One turn: transport state, new requests on every queue, due completions, events, timers.
    /// Returns the number of chains handled.
    @inline(__always)
    func step(now: UInt64) -> Int {
        let status = transport.status.load(ordering: .acquiring)
        if status != SimTransport.live {
            if live { resetDevice() }
            return 0
        }
        if !live { goLive(now: now) }
        var work = 0
        for qi in 2..<queueCount { work += pollRequests(qi, now: now) }
        work += pollControl(now: now)
        if !heap.isEmpty { work += completeDue(now: now) }
        for qi in 2..<queueCount { publish(qi) }
        if now >= nextHotplug || now >= nextResize { timers(now: now) }
        if eventsMissed || !pendingEvents.isEmpty { deliverEvents(now: now) }
        return work
    }

    /// When the device next has something to do on its own (a completion, a hot-plug, a
    /// resize; events waiting for eventq buffers are looked at every millisecond).
    func nextDueNs(now: UInt64) -> UInt64 {
        guard live else { return 0 }
        var next = min(nextHotplug, nextResize)
        if let first = heap.first { next = min(next, first.due) }
        if eventsMissed || !pendingEvents.isEmpty { next = min(next, now &+ 1_000_000) }
        return next
    }

    func goLive(now: UInt64) {
        features = transport.driverFeatures
        cdbSize = transport.cdbSize
        senseSize = transport.senseSize
        hdrSize = 19 + cdbSize
        respSize = 12 + senseSize
        for i in 0..<queueCount {
            queues[i].ring = RingAccess(mem, transport.places[i])
            queues[i].lastAvail = 0
            queues[i].usedIdx = 0
            queues[i].publishedUsed = 0
            for h in 0..<config.queueSize { queues[i].reqs[h].state = 0 }
        }
        heap.removeAll(keepingCapacity: true)
        live = true
        nextHotplug = config.hotplugEveryNs > 0 ? now + config.hotplugEveryNs : .max
        nextResize = config.resizeEveryNs > 0 ? now + config.resizeEveryNs : .max
    }

    /// Driver wrote status 0: forget every request (none completes), restore the configuration
    /// defaults, and raise a power-on UNIT ATTENTION on every LUN.
    func resetDevice() {
        live = false
        heap.removeAll(keepingCapacity: true)
        pendingEvents.removeAll(keepingCapacity: true)
        eventsMissed = false
        for i in 0..<diskCount where disks[i].present {
            disks[i].uaPending = true; disks[i].ua = .powerOnReset
        }
        counters.resets += 1
        transport.resetsDone.wrappingIncrement(ordering: .releasing)
    }

    @inline(__always) func publish(_ qi: Int) {
        let q = queues + qi
        if q.pointee.usedIdx != q.pointee.publishedUsed {
            let old = q.pointee.publishedUsed
            q.pointee.ring.usedIdx.store(q.pointee.usedIdx, ordering: .releasing)
            q.pointee.publishedUsed = q.pointee.usedIdx
            // An interrupt would be due now (EVENT_IDX: only when used_event was passed).
            if features & (1 << SimFeature.eventIdx) != 0 {
                if needEvent(event: q.pointee.ring.usedEvent(), new: q.pointee.usedIdx, old: old) { counters.notifications += 1 }
            } else {
                counters.notifications += 1
            }
        }
    }

    @inline(__always) func pushUsed(_ qi: Int, id: UInt32, len: UInt32, fault: UInt8, now: UInt64) {
        let q = queues + qi
        let idx = q.pointee.usedIdx
        q.pointee.ring.setUsedEntry(idx, id: id, len: len)
        let slot = Int(idx) & q.pointee.ring.mask
        q.pointee.usedFault[slot] = fault
        if recordTimes { q.pointee.usedNs[slot] = now }
        q.pointee.usedIdx = idx &+ 1
    }

    // MARK: - Request queues

    @inline(__always)
    func pollRequests(_ qi: Int, now stepNow: UInt64) -> Int {
        let q = queues + qi
        let availIdx = q.pointee.ring.availIdx.load(ordering: .acquiring)
        var n = 0
        // The truth's times must follow the driver's: read the clock after the acquire.
        let now = recordTimes && q.pointee.lastAvail != availIdx ? monotonicNs() : stepNow
        while q.pointee.lastAvail != availIdx {
            let head = q.pointee.ring.availEntry(q.pointee.lastAvail)
            q.pointee.lastAvail &+= 1
            handleCommand(qi, head: Int(head), now: now)
            n += 1
            // Per command, after it: a used entry for a head that was never made available.
            if faultEarlyUsed != 0 && rng.next() < faultEarlyUsed { injectEarlyUsed(qi, now: now) }
        }
        if n > 0 && features & (1 << SimFeature.eventIdx) != 0 { q.pointee.ring.setAvailEvent(q.pointee.lastAvail) }
        return n
    }

    /// Walks and validates the chain at `head` into the head's segment area.
    @inline(__always)
    func walk(_ q: UnsafeMutablePointer<DevQueue>, head: Int) -> WalkResult {
        var r = WalkResult()
        let size = q.pointee.ring.size
        guard head < size else { r.error = 9; return r }
        let segs = q.pointee.segs + head * maxSegs
        let descBase = q.pointee.ring.desc
        var idx = head
        var steps = 0
        var sawWrite = false
        while true {
            steps += 1
            if steps > size { r.error = 1; return r }
            let off = descBase + 16 * idx
            let addr = UInt64(littleEndian: memBase.loadUnaligned(fromByteOffset: off, as: UInt64.self))
            let len = Int(UInt32(littleEndian: memBase.loadUnaligned(fromByteOffset: off + 8, as: UInt32.self)))
            let flags = UInt16(littleEndian: memBase.loadUnaligned(fromByteOffset: off + 12, as: UInt16.self))
            let next = Int(UInt16(littleEndian: memBase.loadUnaligned(fromByteOffset: off + 14, as: UInt16.self)))
            if flags & 4 != 0 {
                if features & (1 << SimFeature.indirectDesc) == 0 { r.error = 12; return r }
                if flags & 1 != 0 { r.error = 8; return r }
                guard len > 0, len % 16 == 0, len / 16 <= size else { r.error = 4; return r }
                let count = len / 16
                guard let toff = checkedOffset(addr, len) else { r.error = 3; return r }
                var j = 0
                var isteps = 0
                while true {
                    isteps += 1
                    if isteps > count { r.error = 1; return r }
                    let o = toff + 16 * j
                    let a = UInt64(littleEndian: memBase.loadUnaligned(fromByteOffset: o, as: UInt64.self))
                    let l = Int(UInt32(littleEndian: memBase.loadUnaligned(fromByteOffset: o + 8, as: UInt32.self)))
                    let f = UInt16(littleEndian: memBase.loadUnaligned(fromByteOffset: o + 12, as: UInt16.self))
                    let nx = Int(UInt16(littleEndian: memBase.loadUnaligned(fromByteOffset: o + 14, as: UInt16.self)))
                    if f & 4 != 0 { r.error = 5; return r }
                    if !appendSeg(&r, segs, addr: a, len: l, write: f & 2 != 0, sawWrite: &sawWrite) { return r }
                    if f & 1 == 0 { break }
                    guard nx < count else { r.error = 2; return r }
                    j = nx
                }
                return r
            }
            if !appendSeg(&r, segs, addr: addr, len: len, write: flags & 2 != 0, sawWrite: &sawWrite) { return r }
            if flags & 1 == 0 { return r }
            guard next < size else { r.error = 2; return r }
            idx = next
        }
    }

    @inline(__always)
    func appendSeg(_ r: inout WalkResult, _ segs: UnsafeMutablePointer<DevSeg>, addr: UInt64, len: Int, write: Bool, sawWrite: inout Bool) -> Bool {
        guard let off = checkedOffset(addr, len) else { r.error = 3; return false }
        guard Int(r.count) < maxSegs else { r.error = 7; return false }
        if write {
            sawWrite = true
            r.inBytes += len
        } else {
            if sawWrite { r.error = 6; return false }
            r.readable += 1
            r.outBytes += len
        }
        segs[Int(r.count)] = DevSeg(off: off, len: len)
        r.count += 1
        return true
    }

    @inline(__always) func checkedOffset(_ gpa: UInt64, _ len: Int) -> Int? {
        guard gpa >= gpaBase else { return nil }
        let off = gpa &- gpaBase
        let l = UInt64(len)
        guard l <= memSize, off <= memSize &- l else { return nil }
        return Int(off)
    }

    /// Copies `count` bytes of the readable part, from byte `start`, to `dst`; returns bytes copied.
    @inline(__always)
    func gather(_ segs: UnsafeMutablePointer<DevSeg>, readable: Int, start: Int, into dst: UnsafeMutableRawPointer, count: Int) -> Int {
        var skip = start, done = 0, i = 0
        while i < readable && done < count {
            let s = segs[i]
            if skip >= s.len { skip -= s.len; i += 1; continue }
            let n = min(s.len - skip, count - done)
            (dst + done).copyMemory(from: memBase + s.off + skip, byteCount: n)
            done += n; skip = 0; i += 1
        }
        return done
    }

    /// Copies `count` bytes from `src` into the writable part from byte `start`; returns bytes copied.
    @inline(__always)
    func scatter(_ segs: UnsafeMutablePointer<DevSeg>, from first: Int, to end: Int, start: Int, from src: UnsafeRawPointer, count: Int) -> Int {
        var skip = start, done = 0, i = first
        while i < end && done < count {
            let s = segs[i]
            if skip >= s.len { skip -= s.len; i += 1; continue }
            let n = min(s.len - skip, count - done)
            (memBase + s.off + skip).copyMemory(from: src + done, byteCount: n)
            done += n; skip = 0; i += 1
        }
        return done
    }

    func reject(_ qi: Int, head: Int, error: UInt8, now: UInt64, queueName: String) {
        counters.rejectedChains += 1
        pushUsed(qi, id: UInt32(head), len: 0, fault: 0, now: now)
        truth?.deviceLine(kind: "rejected", queue: qi, head: head, extra: "\"reason\":\"\(WalkResult.names[Int(error)])\"", timeNs: now)
    }

    /// Fetches, executes and (latency 0) completes the command at `head`.
    @inline(__always)
    func handleCommand(_ qi: Int, head: Int, now: UInt64) {
        let q = queues + qi
        let w = walk(q, head: head)
        if w.error != 0 { reject(qi, head: head, error: w.error, now: now, queueName: "request"); return }
        let segs = q.pointee.segs + head * maxSegs
        let readable = Int(w.readable), count = Int(w.count)
        guard w.outBytes >= hdrSize else { reject(qi, head: head, error: 10, now: now, queueName: "request"); return }
        guard w.inBytes >= respSize else { reject(qi, head: head, error: 11, now: now, queueName: "request"); return }
        counters.commands += 1
        // The header: in its own descriptor as Linux lays it out, else gathered.
        let hdr: UnsafeRawPointer
        if segs[0].len >= hdrSize { hdr = UnsafeRawPointer(memBase + segs[0].off) } else {
            _ = gather(segs, readable: readable, start: 0, into: scratch, count: hdrSize)
            hdr = UnsafeRawPointer(scratch)
        }
        let lunRaw = UInt64(littleEndian: hdr.loadUnaligned(as: UInt64.self))
        let tag = UInt64(littleEndian: hdr.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let cdb = hdr + 19
        let dataOut = w.outBytes - hdrSize
        let dataIn = w.inBytes - respSize

        var response = VSResponse.ok
        var status = SAM.good
        var sense = SenseCode.none
        var transferred = 0
        var lunIndex: Int32 = -1
        let lunTarget = Int((lunRaw >> 8) & 0xff)
        let lunNumber = Int(((lunRaw >> 16) & 0x3f) << 8 | ((lunRaw >> 24) & 0xff))
        if lunRaw & 0xff != 1 || lunTarget >= config.targets || !targetPresent(lunTarget) {
            response = VSResponse.badTarget
        } else if dataOut > 0 && dataIn > 0 {
            response = VSResponse.failure // INOUT is not offered
        } else {
            if lunNumber < config.luns && disks[lunTarget * config.luns + lunNumber].present {
                lunIndex = Int32(lunTarget * config.luns + lunNumber)
            }
            (status, sense, transferred, response) = execute(cdb: cdb, lunIndex: lunIndex, target: lunTarget, lun: lunNumber,
                                                              segs: segs, readable: readable, count: count, dataOut: dataOut, dataIn: dataIn)
        }
        var fault: UInt8 = 0
        var senseLen = UInt32(sense == .none ? 0 : 18)
        if faultSenseLen != 0 && rng.next() < faultSenseLen {
            fault = SimFault.senseLenOverflow.code; senseLen = UInt32(senseSize + 32); counters.injected[Int(fault)] += 1
        }
        // residual = data length - bytes transferred (data-out is taken whole or not at all).
        let residual = dataIn > 0 ? dataIn - transferred : (status == SAM.good && response == VSResponse.ok ? 0 : dataOut)
        writeResponse(segs, readable: readable, count: count, senseLen: senseLen, residual: UInt32(clamping: residual),
                      status: status, response: response, sense: sense)
        var usedLen = UInt32(respSize + transferred)
        if faultUsedLen != 0 && rng.next() < faultUsedLen {
            fault = SimFault.usedLenOverflow.code; usedLen = UInt32(w.inBytes + 4096); counters.injected[Int(fault)] += 1
        }
        if latencyZero {
            pushUsed(qi, id: UInt32(head), len: usedLen, fault: fault, now: now)
            return
        }
        seq &+= 1
        let req = q.pointee.reqs + head
        req.pointee = DevReq(tag: tag, seq: seq, lunIndex: lunIndex, segCount: Int32(count), readable: Int32(readable),
                             usedLen: usedLen, state: 1, fault: fault)
        let lat = config.latency.sample(&rng)
        heapPush((now &+ lat, UInt16(qi), UInt16(head), seq))
    }

    @inline(__always) func targetPresent(_ t: Int) -> Bool {
        let base = t * config.luns
        for l in 0..<config.luns where disks[base + l].present { return true }
        return false
    }

    @inline(__always)
    func writeResponse(_ segs: UnsafeMutablePointer<DevSeg>, readable: Int, count: Int, senseLen: UInt32, residual: UInt32,
                       status: UInt8, response: UInt8, sense: SenseCode) {
        // virtio_scsi_cmd_resp: sense_len, residual, status_qualifier, status, response, sense[].
        let first = segs[readable]
        if first.len >= 12 + 18 {
            let p = memBase + first.off
            p.storeBytes(of: senseLen.littleEndian, as: UInt32.self)
            p.storeBytes(of: residual.littleEndian, toByteOffset: 4, as: UInt32.self)
            p.storeBytes(of: UInt16(0), toByteOffset: 8, as: UInt16.self)
            p.storeBytes(of: status, toByteOffset: 10, as: UInt8.self)
            p.storeBytes(of: response, toByteOffset: 11, as: UInt8.self)
            if sense != .none { writeFixedSense(p + 12, sense) }
            return
        }
        let tmp = scratch + 4096
        tmp.storeBytes(of: senseLen.littleEndian, as: UInt32.self)
        tmp.storeBytes(of: residual.littleEndian, toByteOffset: 4, as: UInt32.self)
        tmp.storeBytes(of: UInt16(0), toByteOffset: 8, as: UInt16.self)
        tmp.storeBytes(of: status, toByteOffset: 10, as: UInt8.self)
        tmp.storeBytes(of: response, toByteOffset: 11, as: UInt8.self)
        var n = 12
        if sense != .none { writeFixedSense(tmp + 12, sense); n += 18 }
        _ = scatter(segs, from: readable, to: count, start: 0, from: tmp, count: n)
    }

    @inline(__always) func writeFixedSense(_ p: UnsafeMutableRawPointer, _ s: SenseCode) {
        p.initializeMemory(as: UInt8.self, repeating: 0, count: 18)
        p.storeBytes(of: UInt8(0x70), as: UInt8.self)
        p.storeBytes(of: s.key, toByteOffset: 2, as: UInt8.self)
        p.storeBytes(of: UInt8(10), toByteOffset: 7, as: UInt8.self)
        p.storeBytes(of: s.asc, toByteOffset: 12, as: UInt8.self)
        p.storeBytes(of: s.ascq, toByteOffset: 13, as: UInt8.self)
    }

    // MARK: - SCSI disk

    /// Executes one CDB. Returns SAM status, sense, data-in bytes written, virtio response.
    @inline(__always)
    func execute(cdb: UnsafeRawPointer, lunIndex: Int32, target: Int, lun: Int, segs: UnsafeMutablePointer<DevSeg>,
                 readable: Int, count: Int, dataOut: Int, dataIn: Int) -> (UInt8, SenseCode, Int, UInt8) {
        let opcode = cdb.load(as: UInt8.self)
        // Fast path: READ/WRITE(10) and (16) on a present LUN with no UNIT ATTENTION pending.
        if lunIndex >= 0 {
            let d = disks + Int(lunIndex)
            if !d.pointee.uaPending {
                var lba: UInt64 = 0, blocks: UInt64 = 0, isRW = true
                switch opcode {
                case SCSIOp.read10, SCSIOp.write10:
                    lba = UInt64(UInt32(bigEndian: cdb.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
                    blocks = UInt64(UInt16(bigEndian: cdb.loadUnaligned(fromByteOffset: 7, as: UInt16.self)))
                case SCSIOp.read16, SCSIOp.write16:
                    lba = UInt64(bigEndian: cdb.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
                    blocks = UInt64(UInt32(bigEndian: cdb.loadUnaligned(fromByteOffset: 10, as: UInt32.self)))
                case SCSIOp.read6, SCSIOp.write6:
                    let b1 = UInt64(cdb.load(fromByteOffset: 1, as: UInt8.self) & 0x1f)
                    lba = b1 << 16 | UInt64(cdb.load(fromByteOffset: 2, as: UInt8.self)) << 8 | UInt64(cdb.load(fromByteOffset: 3, as: UInt8.self))
                    blocks = UInt64(cdb.load(fromByteOffset: 4, as: UInt8.self))
                    if blocks == 0 { blocks = 256 }
                default:
                    isRW = false
                }
                if isRW {
                    let cap = d.pointee.blocks
                    guard lba <= cap, blocks <= cap - lba else { return (SAM.checkCondition, .lbaOutOfRange, 0, VSResponse.ok) }
                    let bytes = Int(blocks) * 512
                    let diskPtr = d.pointee.data + Int(lba) * 512
                    let isRead = opcode == SCSIOp.read10 || opcode == SCSIOp.read16 || opcode == SCSIOp.read6
                    if isRead {
                        guard dataIn >= bytes else { return (SAM.good, .none, 0, VSResponse.overrun) }
                        let n = scatter(segs, from: readable, to: count, start: respSize, from: diskPtr, count: bytes)
                        return (SAM.good, .none, n, VSResponse.ok)
                    }
                    guard dataOut >= bytes else { return (SAM.good, .none, 0, VSResponse.overrun) }
                    _ = gather(segs, readable: readable, start: hdrSize, into: diskPtr, count: bytes)
                    return (SAM.good, .none, 0, VSResponse.ok)
                }
            }
        }
        return executeSlow(cdb: cdb, opcode: opcode, lunIndex: lunIndex, target: target, lun: lun, segs: segs,
                           readable: readable, count: count, dataOut: dataOut, dataIn: dataIn)
    }

    func executeSlow(cdb: UnsafeRawPointer, opcode: UInt8, lunIndex: Int32, target: Int, lun: Int, segs: UnsafeMutablePointer<DevSeg>,
                     readable: Int, count: Int, dataOut: Int, dataIn: Int) -> (UInt8, SenseCode, Int, UInt8) {
        func dataInReply(_ bytes: [UInt8], allocation: Int) -> (UInt8, SenseCode, Int, UInt8) {
            let n = min(bytes.count, allocation, dataIn)
            let written = bytes.withUnsafeBytes { b -> Int in
                guard let base = b.baseAddress else { return 0 }
                return scatter(segs, from: readable, to: count, start: respSize, from: base, count: n)
            }
            return (SAM.good, .none, written, VSResponse.ok)
        }
        func check(_ s: SenseCode) -> (UInt8, SenseCode, Int, UInt8) { (SAM.checkCondition, s, 0, VSResponse.ok) }
        func byte(_ i: Int) -> UInt8 { cdb.load(fromByteOffset: i, as: UInt8.self) }
        func be16(_ i: Int) -> Int { Int(byte(i)) << 8 | Int(byte(i + 1)) }
        func be32(_ i: Int) -> Int { be16(i) << 16 | be16(i + 2) }

        // Commands for a LUN that is not there (SPC-4 4.6.20): INQUIRY answers qualifier 3,
        // REPORT LUNS works on LUN 0, REQUEST SENSE reports it, everything else fails.
        guard lunIndex >= 0 else {
            switch opcode {
            case SCSIOp.inquiry:
                var d = SimSCSIData.inquiryStandard(); d[0] = 0x7f
                return dataInReply(d, allocation: be16(3))
            case SCSIOp.reportLuns:
                return dataInReply(SimSCSIData.reportLuns(presentLuns(target)), allocation: be32(6))
            case SCSIOp.requestSense:
                return dataInReply(SimSCSIData.fixedSense(.lunNotSupported), allocation: Int(byte(4)))
            default:
                return check(.lunNotSupported)
            }
        }
        let d = disks + Int(lunIndex)
        // A pending UNIT ATTENTION is reported once, to any command but INQUIRY, REPORT LUNS, REQUEST SENSE.
        if d.pointee.uaPending && opcode != SCSIOp.inquiry && opcode != SCSIOp.reportLuns && opcode != SCSIOp.requestSense {
            d.pointee.uaPending = false
            return check(d.pointee.ua)
        }
        switch opcode {
        case SCSIOp.read6, SCSIOp.read10, SCSIOp.read16, SCSIOp.write6, SCSIOp.write10, SCSIOp.write16:
            return execute(cdb: cdb, lunIndex: lunIndex, target: target, lun: lun, segs: segs, readable: readable,
                           count: count, dataOut: dataOut, dataIn: dataIn)
        case SCSIOp.testUnitReady, SCSIOp.startStopUnit:
            return (SAM.good, .none, 0, VSResponse.ok)
        case SCSIOp.synchronizeCache10, SCSIOp.synchronizeCache16:
            return (SAM.good, .none, 0, VSResponse.ok)
        case SCSIOp.inquiry:
            let evpd = byte(1) & 1 != 0, page = byte(2), alloc = be16(3)
            if !evpd {
                if page != 0 { return check(.invalidFieldInCDB) }
                return dataInReply(SimSCSIData.inquiryStandard(), allocation: alloc)
            }
            guard let data = SimSCSIData.inquiryVPD(page: page, target: d.pointee.target, lun: d.pointee.lun, capacityBlocks: d.pointee.blocks) else {
                return check(.invalidFieldInCDB)
            }
            return dataInReply(data, allocation: alloc)
        case SCSIOp.reportLuns:
            return dataInReply(SimSCSIData.reportLuns(presentLuns(target)), allocation: be32(6))
        case SCSIOp.readCapacity10:
            return dataInReply(SimSCSIData.readCapacity10(blocks: d.pointee.blocks), allocation: 8)
        case SCSIOp.serviceActionIn16:
            guard byte(1) & 0x1f == SCSIOp.readCapacity16SA else { return check(.invalidFieldInCDB) }
            return dataInReply(SimSCSIData.readCapacity16(blocks: d.pointee.blocks), allocation: be32(10))
        case SCSIOp.modeSense6, SCSIOp.modeSense10:
            let ten = opcode == SCSIOp.modeSense10
            guard let data = SimSCSIData.modeSense(ten: ten, page: byte(2) & 0x3f) else { return check(.invalidFieldInCDB) }
            return dataInReply(data, allocation: ten ? be16(7) : Int(byte(4)))
        case SCSIOp.requestSense:
            // Reports (and clears) a pending UNIT ATTENTION, else NO SENSE (SPC-4 6.39).
            let pending = d.pointee.uaPending ? d.pointee.ua : .none
            d.pointee.uaPending = false
            return dataInReply(SimSCSIData.fixedSense(pending), allocation: Int(byte(4)))
        case SCSIOp.verify10, SCSIOp.verify16:
            let lba = opcode == SCSIOp.verify10 ? UInt64(be32(2)) : UInt64(be32(2)) << 32 | UInt64(be32(6))
            let blocks = opcode == SCSIOp.verify10 ? UInt64(be16(7)) : UInt64(be32(10))
            guard lba <= d.pointee.blocks, blocks <= d.pointee.blocks - lba else { return check(.lbaOutOfRange) }
            return (SAM.good, .none, 0, VSResponse.ok)
        case SCSIOp.unmap:
            // Parameter list: 8-byte header, then 16-byte descriptors (lba, blocks).
            let plen = be16(7)
            guard plen >= 8, dataOut >= plen, plen <= 4096 else { return check(.parameterListLength) }
            let buf = scratch + 4096
            _ = gather(segs, readable: readable, start: hdrSize, into: buf, count: plen)
            let descLen = Int(UInt16(bigEndian: buf.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            var off = 8
            while off + 16 <= min(plen, 8 + descLen) {
                let lba = UInt64(bigEndian: buf.loadUnaligned(fromByteOffset: off, as: UInt64.self))
                let n = UInt64(UInt32(bigEndian: buf.loadUnaligned(fromByteOffset: off + 8, as: UInt32.self)))
                guard lba <= d.pointee.blocks, n <= d.pointee.blocks - lba else { return check(.lbaOutOfRange) }
                (d.pointee.data + Int(lba) * 512).initializeMemory(as: UInt8.self, repeating: 0, count: Int(n) * 512)
                off += 16
            }
            return (SAM.good, .none, 0, VSResponse.ok)
        default:
            return check(.invalidOpcode)
        }
    }

    func presentLuns(_ target: Int) -> [UInt16] {
        var out: [UInt16] = []
        for l in 0..<config.luns where disks[target * config.luns + l].present { out.append(UInt16(l)) }
        return out
    }

    // MARK: - Latency

    func heapPush(_ e: (due: UInt64, queue: UInt16, head: UInt16, seq: UInt32)) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if heap[p].due <= heap[i].due { break }
            heap.swapAt(p, i); i = p
        }
    }

    func heapPop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        let n = heap.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && heap[l].due < heap[m].due { m = l }
            if r < n && heap[r].due < heap[m].due { m = r }
            if m == i { break }
            heap.swapAt(i, m); i = m
        }
    }

    func completeDue(now: UInt64) -> Int {
        var n = 0
        while let top = heap.first, top.due <= now {
            heapPop()
            let q = queues + Int(top.queue)
            let req = q.pointee.reqs + Int(top.head)
            guard req.pointee.state == 1, req.pointee.seq == top.seq else { continue }
            req.pointee.state = 0
            pushUsed(Int(top.queue), id: UInt32(top.head), len: req.pointee.usedLen, fault: req.pointee.fault, now: now)
            n += 1
        }
        return n
    }

    /// Completes a held command early with `response` (ABORTED or RESET), before the TMF answer.
    func cancel(queue qi: Int, head: Int, response: UInt8, now: UInt64) {
        let q = queues + qi
        let req = q.pointee.reqs + head
        req.pointee.state = 0
        let segs = q.pointee.segs + head * maxSegs
        // Nothing was transferred: the residual is the whole data length.
        var writable = 0, readableBytes = 0
        for i in 0..<Int(req.pointee.segCount) {
            if i < Int(req.pointee.readable) { readableBytes += segs[i].len } else { writable += segs[i].len }
        }
        let residual = writable > respSize ? writable - respSize : max(0, readableBytes - hdrSize)
        writeResponse(segs, readable: Int(req.pointee.readable), count: Int(req.pointee.segCount), senseLen: 0, residual: UInt32(clamping: residual),
                      status: SAM.good, response: response, sense: .none)
        pushUsed(qi, id: UInt32(head), len: UInt32(respSize), fault: 0, now: now)
        if response == VSResponse.aborted { counters.aborted += 1 } else { counters.resetCommands += 1 }
    }

    /// The held commands matching `match`, as (queue, head).
    func held(_ match: (DevReq) -> Bool) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        for qi in 2..<queueCount {
            for h in 0..<config.queueSize where queues[qi].reqs[h].state == 1 && match(queues[qi].reqs[h]) { out.append((qi, h)) }
        }
        return out
    }

    // MARK: - Device faults

    /// Returns a head that is not in the device's hands, as if it had been made available.
    func injectEarlyUsed(_ qi: Int, now: UInt64) {
        let q = queues + qi
        // Only when every available entry was consumed, so the head is free in the driver too.
        guard q.pointee.ring.availIdx.load(ordering: .acquiring) == q.pointee.lastAvail else { return }
        let size = config.queueSize
        let head = Int(rng.below(UInt64(size)))
        guard q.pointee.reqs[head].state == 0 else { return }
        counters.injected[Int(SimFault.earlyUsed.code)] += 1
        pushUsed(qi, id: UInt32(head), len: UInt32(respSize), fault: SimFault.earlyUsed.code, now: now)
    }

    // MARK: - Controlq

    func pollControl(now stepNow: UInt64) -> Int {
        let q = queues + 0
        let availIdx = q.pointee.ring.availIdx.load(ordering: .acquiring)
        var n = 0
        let now = recordTimes && q.pointee.lastAvail != availIdx ? monotonicNs() : stepNow
        while q.pointee.lastAvail != availIdx {
            let head = Int(q.pointee.ring.availEntry(q.pointee.lastAvail))
            q.pointee.lastAvail &+= 1
            handleControl(head: head, now: now)
            n += 1
        }
        if n > 0 {
            if features & (1 << SimFeature.eventIdx) != 0 { q.pointee.ring.setAvailEvent(q.pointee.lastAvail) }
            for qi in 2..<queueCount { publish(qi) }
            publish(0)
        }
        return n
    }

    func handleControl(head: Int, now: UInt64) {
        let q = queues + 0
        let w = walk(q, head: head)
        if w.error != 0 { reject(0, head: head, error: w.error, now: now, queueName: "control"); return }
        let segs = q.pointee.segs + head * maxSegs
        let readable = Int(w.readable), count = Int(w.count)
        var req = [UInt8](repeating: 0, count: 24)
        let got = req.withUnsafeMutableBytes { b -> Int in
            guard let base = b.baseAddress else { return 0 }
            return gather(segs, readable: readable, start: 0, into: base, count: 24)
        }
        guard got >= 4 else { reject(0, head: head, error: 10, now: now, queueName: "control"); return }
        func le32(_ i: Int) -> UInt32 { UInt32(req[i]) | UInt32(req[i + 1]) << 8 | UInt32(req[i + 2]) << 16 | UInt32(req[i + 3]) << 24 }
        func le64(_ i: Int) -> UInt64 { UInt64(le32(i)) | UInt64(le32(i + 4)) << 32 }
        let type = le32(0)
        var reply: [UInt8]
        switch type {
        case VSControl.typeTMF:
            guard got >= 24, w.inBytes >= 1 else { reject(0, head: head, error: 10, now: now, queueName: "control"); return }
            counters.tmfs += 1
            reply = [tmf(subtype: le32(4), lunRaw: le64(8), tag: le64(16), now: now)]
        case VSControl.typeANQuery, VSControl.typeANSubscribe:
            guard got >= 16, w.inBytes >= 5 else { reject(0, head: head, error: 10, now: now, queueName: "control"); return }
            counters.ans += 1
            // QEMU: event_actual = 0, response OK.
            let lunRaw = le64(4)
            let t = Int((lunRaw >> 8) & 0xff)
            let ok = lunRaw & 0xff == 1 && t < config.targets && targetPresent(t)
            reply = [0, 0, 0, 0, ok ? VSResponse.ok : VSResponse.badTarget]
        default:
            counters.tmfs += 1
            reply = [VSResponse.failure]
        }
        let written = reply.withUnsafeBytes { b -> Int in
            guard let base = b.baseAddress else { return 0 }
            return scatter(segs, from: readable, to: count, start: 0, from: base, count: reply.count)
        }
        pushUsed(0, id: UInt32(head), len: UInt32(written), fault: 0, now: now)
    }

    /// A task management function with QEMU's semantics; cancelled commands complete first.
    func tmf(subtype: UInt32, lunRaw: UInt64, tag: UInt64, now: UInt64) -> UInt8 {
        let target = Int((lunRaw >> 8) & 0xff)
        let lun = Int(((lunRaw >> 16) & 0x3f) << 8 | ((lunRaw >> 24) & 0xff))
        guard lunRaw & 0xff == 1, target < config.targets, targetPresent(target) else { return VSResponse.badTarget }
        let nexusWide = subtype == VSControl.itNexusReset
        if !nexusWide && !(lun < config.luns && disks[target * config.luns + lun].present) { return VSResponse.incorrectLUN }
        let lunIndex = Int32(target * config.luns + lun)
        switch subtype {
        case VSControl.abortTask, VSControl.queryTask:
            let found = held { $0.tag == tag && $0.lunIndex == lunIndex }
            if subtype == VSControl.queryTask { return found.isEmpty ? VSResponse.ok : VSResponse.functionSucceeded }
            for (qi, h) in found { cancel(queue: qi, head: h, response: VSResponse.aborted, now: now) }
            return VSResponse.ok
        case VSControl.abortTaskSet, VSControl.clearTaskSet:
            for (qi, h) in held({ $0.lunIndex == lunIndex }) { cancel(queue: qi, head: h, response: VSResponse.aborted, now: now) }
            return VSResponse.ok
        case VSControl.queryTaskSet:
            return held { $0.lunIndex == lunIndex }.isEmpty ? VSResponse.ok : VSResponse.functionSucceeded
        case VSControl.logicalUnitReset:
            for (qi, h) in held({ $0.lunIndex == lunIndex }) { cancel(queue: qi, head: h, response: VSResponse.reset, now: now) }
            disks[Int(lunIndex)].uaPending = true; disks[Int(lunIndex)].ua = .powerOnReset
            return VSResponse.ok
        case VSControl.itNexusReset:
            let first = Int32(target * config.luns), last = first + Int32(config.luns)
            for (qi, h) in held({ $0.lunIndex >= first && $0.lunIndex < last }) { cancel(queue: qi, head: h, response: VSResponse.reset, now: now) }
            for i in Int(first)..<Int(last) where disks[i].present { disks[i].uaPending = true; disks[i].ua = .itNexusLoss }
            return VSResponse.ok
        default:
            return VSResponse.functionRejected
        }
    }

    // MARK: - Events, hot-plug, resize

    func timers(now: UInt64) {
        if now >= nextHotplug {
            nextHotplug = now + config.hotplugEveryNs
            let i = diskCount - 1
            let lunRaw = SimLUN.encode(target: disks[i].target, lun: disks[i].lun)
            if disks[i].present {
                disks[i].present = false
                if features & (1 << SimFeature.hotplug) != 0 { queueEvent(VSControl.eventTransportReset, lun: lunRaw, reason: VSControl.reasonRemoved) }
            } else {
                disks[i].present = true
                disks[i].uaPending = true; disks[i].ua = .powerOnReset
                if features & (1 << SimFeature.hotplug) != 0 { queueEvent(VSControl.eventTransportReset, lun: lunRaw, reason: VSControl.reasonRescan) }
            }
        }
        if now >= nextResize {
            nextResize = now + config.resizeEveryNs
            let i = resizeTurn % diskCount
            resizeTurn += 1
            disks[i].blocks = disks[i].blocks == disks[i].baseBlocks ? disks[i].maxBlocks : disks[i].baseBlocks
            if disks[i].present {
                disks[i].uaPending = true; disks[i].ua = .capacityChanged
                if features & (1 << SimFeature.change) != 0 {
                    queueEvent(VSControl.eventParamChange, lun: SimLUN.encode(target: disks[i].target, lun: disks[i].lun), reason: 0x2a | 0x09 << 8)
                }
            }
        }
    }

    func queueEvent(_ event: UInt32, lun: UInt64, reason: UInt32) {
        if faultDropEvents > 0 && rng.unit() < faultDropEvents {
            counters.injected[Int(SimFault.dropEvents.code)] += 1
            counters.eventsDropped += 1
            truth?.eventLine(head: nil, event: event, lunRaw: lun, reason: reason, outcome: "dropped", fault: .dropEvents,
                             usedNs: monotonicNs())
            return
        }
        pendingEvents.append((event, lun, reason))
    }

    /// Delivers queued events into eventq buffers; with none there, drops them and remembers
    /// it, then answers the next buffer with NO_EVENT | EVENTS_MISSED (QEMU).
    func deliverEvents(now: UInt64) {
        let q = queues + 1
        let availIdx = q.pointee.ring.availIdx.load(ordering: .acquiring)
        var delivered = false
        while !pendingEvents.isEmpty || eventsMissed {
            guard q.pointee.lastAvail != availIdx else {
                for e in pendingEvents {
                    counters.eventsDropped += 1
                    truth?.eventLine(head: nil, event: e.event, lunRaw: e.lun, reason: e.reason, outcome: "dropped", fault: nil, usedNs: now)
                    eventsMissed = true
                }
                pendingEvents.removeAll(keepingCapacity: true)
                break
            }
            var e = pendingEvents.isEmpty ? (event: VSControl.eventNoEvent, lun: UInt64(0), reason: UInt32(0)) : pendingEvents.removeFirst()
            if eventsMissed { e.event |= VSControl.eventsMissed; eventsMissed = false }
            let head = Int(q.pointee.ring.availEntry(q.pointee.lastAvail))
            q.pointee.lastAvail &+= 1
            let w = walk(q, head: head)
            if w.error != 0 || w.readable != 0 || w.inBytes < 16 {
                reject(1, head: head, error: w.error != 0 ? w.error : 11, now: now, queueName: "event")
                pendingEvents.insert(e, at: 0)
                continue
            }
            var buf = [UInt8](repeating: 0, count: 16)
            for i in 0..<4 { buf[i] = UInt8((e.event >> (8 * UInt32(i))) & 0xff) }
            for i in 0..<8 { buf[4 + i] = UInt8((e.lun >> (8 * UInt64(i))) & 0xff) }
            for i in 0..<4 { buf[12 + i] = UInt8((e.reason >> (8 * UInt32(i))) & 0xff) }
            let segs = q.pointee.segs + head * maxSegs
            let n = buf.withUnsafeBytes { b -> Int in
                guard let base = b.baseAddress else { return 0 }
                return scatter(segs, from: 0, to: Int(w.count), start: 0, from: base, count: 16)
            }
            pushUsed(1, id: UInt32(head), len: UInt32(n), fault: 0, now: now)
            counters.events += 1
            delivered = true
        }
        if delivered {
            if features & (1 << SimFeature.eventIdx) != 0 { q.pointee.ring.setAvailEvent(q.pointee.lastAvail) }
            publish(1)
        }
    }
}
