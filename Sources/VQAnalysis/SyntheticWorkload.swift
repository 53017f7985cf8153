#if canImport(Glibc)
import Glibc
#endif
import VQRecord
import VirtioSCSI

// A deterministic record stream that looks like a busy disk: several LUNs on a few request
// queues, mixed reads and writes of mixed sizes, a long-tailed latency, a few errors, a
// periodic ABORT_TASK of a hung command, and hot-plug events. The screen goldens and the
// benchmarks are fed from it; a seed makes it repeatable.

public struct SyntheticWorkload {
    public struct Options: Sendable {
        public var seed: UInt64 = 1
        public var requestQueues: UInt16 = 2
        public var luns: [LUNAddress] = [LUNAddress(target: 0, lun: 0), LUNAddress(target: 0, lun: 1),
                                         LUNAddress(target: 0, lun: 2), LUNAddress(target: 1, lun: 0)]
        /// Commands per second, all queues together.
        public var iops: Double = 20_000
        public var queueSize: UInt16 = 128
        /// An ABORT_TASK every this many commands, of a command hung since half as many
        /// commands before; 0: none.
        public var tmfEvery: UInt64 = 50_000
        /// How many commands before its ABORT_TASK the victim is issued (it hangs until
        /// then); 0: half of `tmfEvery`.
        public var hangCommands: UInt64 = 0
        /// A hot-plug event every this many commands; 0: none.
        public var eventEvery: UInt64 = 30_000
        public var startNs: UInt64 = 1_700_000_000_000_000_000
        public init() {}
    }

    private struct Pending: Comparable {
        var endNs: UInt64
        var id: UInt64
        var queue: UInt16
        var head: UInt16
        var kind: Kind
        enum Kind { case command(status: UInt8, sense: [UInt8], dataIn: UInt32, response: VirtioSCSIResponse), tmf }
        static func < (a: Pending, b: Pending) -> Bool { (a.endNs, a.id) < (b.endNs, b.id) }
        static func == (a: Pending, b: Pending) -> Bool { a.id == b.id }
    }

    public let options: Options
    private var builder = RecordStreamBuilder()
    private var rng: UInt64
    private var nowNs: UInt64
    private var heap: [Pending] = []
    private var freeHeads: [[UInt16]]
    private var commands: UInt64 = 0
    private var nextTag: UInt64 = 0x1000
    private var eventHeads: [UInt16: UInt64] = [:]
    /// The command an ABORT_TASK will name: (queue, head, id, lun, tag).
    private var victim: (queue: UInt16, head: UInt16, id: UInt64, lun: LUNAddress, tag: UInt64)?

    public init(options: Options = Options()) {
        self.options = options
        rng = options.seed | 1
        nowNs = options.startNs
        freeHeads = Array(repeating: Array((0..<options.queueSize).reversed()), count: Int(options.requestQueues))
        builder.attach(name: "scsi0", requestQueues: options.requestQueues,
                       features: 1 << 0 | 1 << 1 | 1 << 2 | 1 << 28 | 1 << 29 | 1 << 32, queueSize: options.queueSize, at: nowNs)
        for h in 0..<UInt16(8) { eventHeads[h] = builder.postEventBuffer(head: h, at: nowNs) }
    }

    private mutating func random() -> UInt64 {
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        return rng
    }

    private mutating func uniform() -> Double { Double(random() >> 11) / Double(1 << 53) }

    /// A long tail: mostly 40-200 us, 1% 1-20 ms, 0.05% 50-300 ms.
    private mutating func latency(write: Bool) -> UInt64 {
        let u = uniform()
        let base: Double = write ? 90_000 : 60_000
        if u < 0.0005 { return UInt64(50e6 + uniform() * 250e6) }
        if u < 0.01 { return UInt64(1e6 + uniform() * 19e6) }
        // Exponential-ish body.
        return UInt64(base * (0.6 - 0.5 * log1p(-uniform() * 0.999)))
    }

    private mutating func push(_ p: Pending) {
        heap.append(p)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i] < heap[parent] else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func pop() -> Pending? {
        guard let first = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && heap[l] < heap[m] { m = l }
                if r < heap.count && heap[r] < heap[m] { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return first
    }

    /// Records of everything that happens up to `endNs`, in time order.
    public mutating func records(until endNs: UInt64) -> [CaptureRecord] {
        let interval = 1e9 / options.iops
        while true {
            let nextArrival = nowNs + UInt64(max(1, interval * -log1p(-uniform() * 0.9999)))
            while let p = heap.first, p.endNs <= min(nextArrival, endNs) {
                _ = pop()
                complete(p)
            }
            guard nextArrival <= endNs else { break }
            nowNs = nextArrival
            arrive()
        }
        nowNs = max(nowNs, endNs)
        let out = builder.records
        builder.removeAll()
        return out
    }

    private mutating func complete(_ p: Pending) {
        switch p.kind {
        case let .command(status, sense, dataIn, response):
            builder.complete(p.id, status: status, response: response, sense: sense, dataIn: dataIn, at: p.endNs)
            freeHeads[Int(p.queue) - 2].append(p.head)
            if victim?.id == p.id { victim = nil }
        case .tmf:
            builder.tmfResponse(p.id, .ok, at: p.endNs)
        }
    }

    private mutating func arrive() {
        commands += 1
        let queue = UInt16(2 + random() % UInt64(options.requestQueues))
        guard let head = freeHeads[Int(queue) - 2].popLast() else { return }
        let lun = options.luns[Int(random() % UInt64(options.luns.count))]
        let u = uniform()
        let blocks: UInt32 = [8, 8, 8, 16, 32, 64, 128, 256][Int(random() % 8)]
        let cdb: [UInt8], write: Bool
        switch u {
        case ..<0.6: cdb = SCSICommand.read10(lba: UInt32(random() % 1_000_000), blocks: UInt16(blocks)); write = false
        case ..<0.95: cdb = SCSICommand.write10(lba: UInt32(random() % 1_000_000), blocks: UInt16(blocks)); write = true
        case ..<0.99: cdb = SCSICommand.synchronizeCache10(); write = false
        default: cdb = SCSICommand.testUnitReady(); write = false
        }
        let isData = cdb[0] == 0x28 || cdb[0] == 0x2a
        let bytes = isData ? blocks * 512 : 0
        nextTag += 0x40
        let id = builder.command(queue: queue, head: head, tag: nextTag, lun: lun, cdb: cdb, dataOut: write ? bytes : 0,
                                 dataIn: write ? 0 : bytes, at: nowNs)
        var status: UInt8 = 0, sense: [UInt8] = [], response = VirtioSCSIResponse.ok
        var dataIn: UInt32 = write ? 0 : bytes
        let e = uniform()
        if e < 0.0005 {
            status = 0x02
            sense = SenseData.fixed(key: 0x03, asc: 0x11, ascq: 0x00)
            dataIn = 0
        } else if e < 0.001 {
            status = 0x02
            sense = SenseData.fixed(key: 0x06, asc: 0x29, ascq: 0x00)
            dataIn = 0
        } else if e < 0.0012 {
            status = 0x08
            dataIn = 0
        }
        var end = nowNs + latency(write: write)
        let hang = options.hangCommands > 0 ? min(options.hangCommands, options.tmfEvery - 1) : options.tmfEvery / 2
        if options.tmfEvery > 0, commands % options.tmfEvery == options.tmfEvery - hang, victim == nil {
            // This one hangs until the ABORT_TASK below ends it.
            victim = (queue, head, id, lun, nextTag)
            end = nowNs + 3_600_000_000_000
            response = .aborted
            dataIn = 0
        }
        push(Pending(endNs: end, id: id, queue: queue, head: head, kind: .command(status: status, sense: sense, dataIn: dataIn, response: response)))
        if options.tmfEvery > 0, commands % options.tmfEvery == 0, let v = victim {
            let tmf = builder.tmf(head: UInt16(commands / options.tmfEvery % 64), .abortTask, lun: v.lun, tag: v.tag, at: nowNs)
            // The aborted command completes first, then the TMF.
            heap.removeAll { $0.id == v.id }
            rebuildHeap()
            push(Pending(endNs: nowNs + 200_000, id: v.id, queue: v.queue, head: v.head,
                         kind: .command(status: 0, sense: [], dataIn: 0, response: .aborted)))
            push(Pending(endNs: nowNs + 300_000, id: tmf, queue: 0, head: 0, kind: .tmf))
        }
        if options.eventEvery > 0, commands % options.eventEvery == 0, let (h, bufferID) = eventHeads.min(by: { $0.key < $1.key }) {
            let target = options.luns[Int(random() % UInt64(options.luns.count))]
            builder.event(bufferID, VirtioSCSIEvent(type: .transportReset, lun: VirtioSCSILUN(target: target.target, lun: target.lun),
                                                    reason: UInt32(random() % 2)), at: nowNs)
            eventHeads[h] = builder.postEventBuffer(head: h, at: nowNs)
        }
    }

    private mutating func rebuildHeap() {
        let items = heap
        heap.removeAll(keepingCapacity: true)
        for p in items { push(p) }
    }
}
