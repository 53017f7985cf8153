import CVQSys
import Foundation
import Synchronization
import VQRecord
import VirtioRing
import VirtioTap

// The tap's own ceiling (issue 4): replay ring states from memory and time only the poller.
// One 256-entry split ring in a /dev/shm file, mapped read-write here (the "driver" and
// "device") and read-only by the tap's MappedGuestMemory, the type a live capture uses.
// Chains look like Linux virtio-scsi reads: an indirect table of a 51-byte request header,
// a 108-byte response and a 4 KiB data-in buffer; 32 in flight out of 64 heads (each
// with its own buffers), returned in order and reused oldest-freed first, so that a head
// comes back only after the tap saw it returned: the steady state of a tap that keeps up
// (a driver reusing buffers before the tap looked makes torn chains, counted, not this
// ceiling). Each step returns `batch` chains and posts as many new ones, then the tap
// polls. As in a live capture, each poll's records are handed to a second thread, which
// frees them (the printer or writer does, live); `inline` frees them on the polling thread.
// Usage: vqtap-tap-replay [chains] [batch] [snaplen] [handoff|inline]

let args = CommandLine.arguments
let total = args.count > 1 ? Int(args[1]) ?? 4_000_000 : 4_000_000
let batch = args.count > 2 ? Int(args[2]) ?? 8 : 8
let snaplen = args.count > 3 ? Int(args[3]) ?? 64 : 64
let handoff = args.count > 4 ? args[4] != "inline" : true
let iodepth = 32
let slots = 2 * iodepth
let queueSize: UInt16 = 256
let memSize = 4 << 20
let path = "/dev/shm/vqtap-replay-\(getpid())"

func makeMemory() -> UnsafeMutableRawPointer {
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0, ftruncate(fd, off_t(memSize)) == 0,
          let p = mmap(nil, memSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
        print("cannot create \(path)")
        exit(1)
    }
    close(fd)
    return p
}
nonisolated(unsafe) let raw = makeMemory()
defer { unlink(path) }

let ring = try SplitQueueLayout.legacy(base: 0x1000, size: queueSize)
func at(_ gpa: UInt64) -> UnsafeMutableRawPointer { raw + Int(gpa) }
func le16(_ gpa: UInt64, _ v: UInt16) { at(gpa).storeBytes(of: v.littleEndian, as: UInt16.self) }
func le32(_ gpa: UInt64, _ v: UInt32) { at(gpa).storeBytes(of: v.littleEndian, as: UInt32.self) }
func le64(_ gpa: UInt64, _ v: UInt64) { at(gpa).storeBytes(of: v.littleEndian, as: UInt64.self) }
func desc(_ gpa: UInt64, addr: UInt64, len: UInt32, flags: UInt16, next: UInt16) {
    le64(gpa, addr); le32(gpa + 8, len); le16(gpa + 12, flags); le16(gpa + 14, next)
}
func release16(_ gpa: UInt64, _ v: UInt16) {
    atomicMemoryFence(ordering: .releasing)
    le16(gpa, v)
}

// Static buffers per slot (head = slot).
for s in 0..<slots {
    let base = UInt64(0x10000 + s * 0x2000)
    let table = base
    let header = base + 0x100, response = base + 0x200, data = base + 0x1000
    desc(table, addr: header, len: 51, flags: 1, next: 1)
    desc(table + 16, addr: response, len: 108, flags: 3, next: 2)
    desc(table + 32, addr: data, len: 4096, flags: 2, next: 0)
    desc(ring.descAddress(UInt16(s)), addr: table, len: 48, flags: 4, next: 0)
    at(header).storeBytes(of: UInt8(1), as: UInt8.self)
    at(header + 19).storeBytes(of: UInt8(0x28), as: UInt8.self)
}

let memory = try MappedGuestMemory(regions: [DeviceLayout.Region(file: path, gpa: 0, size: UInt64(memSize))])
var poller = QueuePoller(memory: memory, layout: ring,
                         config: QueueCaptureConfig(queue: 2, readableHeader: 51, writableHeader: 108, snaplen: snaplen))
let clock = TapClock()
var out: [CaptureRecord] = []
out.reserveCapacity(4 * batch)
try poller.attach(clock: clock, into: &out)

struct Driver {
    let ring: SplitQueueLayout
    var availIdx: UInt16 = 0, usedIdx: UInt16 = 0
    var free = (0..<slots).map { UInt16($0) }
    var firstFree = 0
    var inflight: [UInt16] = []
    var tag: UInt64 = 0

    mutating func post(_ n: Int) {
        for _ in 0..<n {
            guard firstFree < free.count else { break }
            let h = free[firstFree]
            firstFree += 1
            if firstFree >= 4096 { free.removeFirst(firstFree); firstFree = 0 }
            tag &+= 1
            le64(UInt64(0x10000 + Int(h) * 0x2000 + 0x100 + 8), tag)
            le16(ring.availRingAddress(availIdx), h)
            availIdx &+= 1
            inflight.append(h)
        }
        release16(ring.availIdxAddress, availIdx)
    }

    mutating func complete(_ n: Int) {
        for _ in 0..<min(n, inflight.count) {
            let h = inflight.removeFirst()
            let e = ring.usedRingAddress(usedIdx)
            le32(e, UInt32(h)); le32(e + 4, 108 + 4096)
            usedIdx &+= 1
            free.append(h)
        }
        release16(ring.usedIdxAddress, usedIdx)
    }
}

var driver = Driver(ring: ring)
/// CPU time of this thread: a loaded machine preempts us, and that is not the poller's cost.
func threadCPUNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

driver.post(iodepth)
// The driver's own cost, measured alone, is subtracted from the run with the poller.
var alone = Driver(ring: ring)
let d0 = threadCPUNs()
alone.post(iodepth)
var steps = 0
while steps * batch < total {
    alone.complete(batch)
    alone.post(batch)
    steps += 1
}
let driverNs = threadCPUNs() - d0
// Back to a ring state the poller has seen.
driver.complete(iodepth)
driver.post(iodepth)
try poller.poll(clock: clock, into: &out)
out.removeAll(keepingCapacity: true)
/// Batches on their way to the freeing thread (the live capture's RecordHandoff, minus
/// the printing).
final class Handoff: @unchecked Sendable {
    let queue = Mutex<(batches: [[CaptureRecord]], done: Bool)>(([], false))
    func push(_ records: [CaptureRecord]) { queue.withLock { $0.batches.append(records) } }
    func drain() {
        while true {
            let (taken, done) = queue.withLock { q -> ([[CaptureRecord]], Bool) in
                let t = q.batches
                q.batches = []
                return (t, q.done)
            }
            if taken.isEmpty {
                if done { return }
                usleep(100)
            }
        }
    }
}
let freeing = Handoff()
let freeingThread = Thread { freeing.drain() }
if handoff { freeingThread.start() }

let base = poller.counters
var chains = 0
var records = 0
let t0 = threadCPUNs()
while chains < total {
    driver.complete(batch)
    driver.post(batch)
    try poller.poll(clock: clock, into: &out)
    records += out.count
    if handoff { freeing.push(out) }
    out.removeAll(keepingCapacity: true)
    chains += batch
}
let pollNs = threadCPUNs() - t0 - driverNs
freeing.queue.withLock { $0.done = true }
var c = poller.counters
c.captured -= base.captured; c.torn -= base.torn
let rate = Double(chains) / (Double(pollNs) / 1e9)
print(String(format: "replay: %d chains (batch %d, snaplen %d, records freed %@) in %.3f s of poller CPU time: %.0f chains/s, %.0f records/s",
             chains, batch, snaplen, handoff ? "by another thread" : "by the poller", Double(pollNs) / 1e9, rate,
             Double(records) / (Double(pollNs) / 1e9)))
print("counters: \(c.text)")
