import CTapAnchor
import CVQSys
import Foundation
import VirtioRing

// The anchor of the tap's completeness bar (issue 4): the minimal C poller of virtio-facts.md
// (CTapAnchor) attached to the same simulator as `vqtap capture`, on the same core, in the
// same benchmark run. It copies each chain's request header once and decides nothing;
// `vqtap-bench-compare --anchor TRUTH KEYS` counts how many of the truth's commands its
// copies got right: the share any passive poller could have had on this machine then.
// Usage: vqtap-tap-anchor LAYOUT CPU > KEYS
//   waits up to 30 s for LAYOUT to say "ready", polls the request queues until the layout's
//   pid exits, then prints "attach WALL_NS" and a line "queue tag opcode lba" per copy.

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("vqtap-tap-anchor: \(message)\n".utf8))
    exit(1)
}

let args = CommandLine.arguments
guard args.count == 3, let cpu = Int32(args[2]) else { fail("usage: vqtap-tap-anchor LAYOUT CPU > KEYS") }

var layout: DeviceLayout?
let deadline = Date().addingTimeInterval(30)
while Date() < deadline {
    if let l = try? DeviceLayout.load(path: args[1]), l.status == .ready { layout = l; break }
    usleep(1000)
}
guard let layout, let pid = layout.pid else { fail("\(args[1]): no ready layout with a pid within 30 s") }

var regions: [vqa_region] = []
for region in layout.regions {
    let fd = open(region.file, O_RDONLY)
    guard fd >= 0 else { fail("\(region.file): \(String(cString: strerror(errno)))") }
    guard let base = mmap(nil, Int(region.size), PROT_READ, MAP_SHARED, fd, off_t(region.offset)), base != MAP_FAILED else {
        fail("\(region.file): mmap: \(String(cString: strerror(errno)))")
    }
    close(fd)
    regions.append(vqa_region(base: base.assumingMemoryBound(to: UInt8.self), gpa: region.gpa, size: region.size))
}
// The request queues (0 is control, 1 events).
let queues = layout.queues.filter { $0.index >= 2 }.map {
    vqa_queue(index: $0.index, size: $0.size, desc: $0.desc, avail: $0.avail, used: $0.used)
}

let capacity = 8 << 20
let keys = UnsafeMutablePointer<vqa_key>.allocate(capacity: capacity)
// Touched before the loop, so that no page fault of ours lands in it.
memset(keys, 0, capacity * MemoryLayout<vqa_key>.stride)
if vq_pin_thread_to_cpu(cpu) != 0 { fail("cannot pin to CPU \(cpu)") }

var counts = vqa_counts()
// virtio_scsi_cmd_req: lun[8] tag[8] task_attr prio crn, then the CDB.
guard vqa_run(regions, Int32(regions.count), queues, Int32(queues.count), 19, pid, keys, capacity, &counts) == 0 else {
    fail("\(args[1]): a queue's rings are outside the regions")
}

var out = "attach \(counts.attach_ns)\n"
out.reserveCapacity(Int(counts.copied) * 48)
for i in 0..<Int(counts.copied) {
    let k = keys[i]
    out += "\(k.queue) \(String(format: "0x%016llx", k.tag)) \(k.opcode) \(k.lba == UInt64.max ? -1 : Int64(bitPattern: k.lba))\n"
}
FileHandle.standardOutput.write(Data(out.utf8))
FileHandle.standardError.write(Data(("anchor: postings \(counts.postings) copied \(counts.copied) lapped \(counts.lapped) "
    + "unreadable \(counts.unreadable) completions \(counts.completions) polls \(counts.polls) "
    + "gaps over-20us \(counts.gaps_over_20us) over-100us \(counts.gaps_over_100us) over-1ms \(counts.gaps_over_1ms) "
    + "longest \(counts.longest_gap_ns / 1000)us\n").utf8))
