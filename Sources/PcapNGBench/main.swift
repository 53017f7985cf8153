// vqtap-pcap-bench: the writing side of benchmarks/pcap (the script there runs it).
//   vqtap-pcap-bench write FILE N   writes N records (READ(10) request and completion pairs,
//                                   64 payload bytes captured) and prints records/s and the
//                                   two record sizes (for the pcap_dump anchor); the file is
//                                   also the input of the reading benchmarks
import Foundation
import PcapNG
import VQRecord
import VQWire
import VirtioSCSI

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func records(_ i: Int, base: UInt64) -> (CaptureRecord, CaptureRecord) {
    var w = ByteWriter()
    let id = 0xffff_8880_0000_0000 | UInt64(i & 0xffff) << 8
    CommandRequest(lun: VirtioSCSILUN(target: 0, lun: 0), id: id, cdb: SCSICommand.read10(lba: UInt32(truncatingIfNeeded: i * 8), blocks: 8)).encode(into: &w)
    let head = UInt16(i % 128)
    let ts = base + UInt64(i) * 2_000
    let request = CaptureRecord(kind: .available, queue: 2, head: head, flags: [.indirect], transactionID: UInt64(i + 1), ringIndex: UInt16(truncatingIfNeeded: i),
                                body: .chain([RecordSegment(address: 0x20_0000, length: 51, flags: 0x8001, bytes: w.bytes),
                                              RecordSegment(address: 0x20_1000, length: 108, flags: 0x8003),
                                              RecordSegment(address: 0x20_2000, length: 4096, flags: 0x8002)]), timestampNs: ts)
    var r = ByteWriter()
    CommandResponse(senseLength: 0, status: 0).encode(into: &r)
    let data = [UInt8](repeating: UInt8(i & 0xff), count: 64)
    let used = CaptureRecord(kind: .used, queue: 2, head: head, flags: [.indirect, .snaplenTruncated], usedLength: 108 + 4096, transactionID: UInt64(i + 1),
                             latencyNs: 1_000, ringIndex: UInt16(truncatingIfNeeded: i),
                             body: .chain([RecordSegment(address: 0x20_1000, length: 108, flags: 0x8003, bytes: r.bytes),
                                           RecordSegment(address: 0x20_2000, length: 4096, flags: 0x8002, bytes: data)]), timestampNs: ts + 1_000)
    return (request, used)
}

let args = CommandLine.arguments
guard args.count == 4, args[1] == "write", let n = Int(args[3]) else {
    FileHandle.standardError.write(Data("usage: vqtap-pcap-bench write FILE N\n".utf8))
    exit(1)
}
let state = CaptureRecord(kind: .deviceState, queue: 2, body: .deviceState(DeviceStateMarker(state: .attached, generation: 1, queueSize: 128, queueCount: 3, deviceName: "scsi0")),
                          timestampNs: 1_764_000_000_000_000_000)
// Build the records first: the bench measures the writer, not the record construction.
// A ring of 128 request/completion pairs (one per head, as in a 128-entry ring), each
// written with fresh timestamps and transaction ids: like the live tap, the writer gets
// records that were just made (hot in cache), as pcap_dump gets its buffer.
let base: UInt64 = 1_764_000_000_000_000_000
let pairs = (0..<128).map { records($0, base: base) }
do {
    let start = now()
    var writer = try CaptureFileWriter(path: args[2], encoder: RecordPacketEncoder())
    try writer.write(state)
    for i in 0..<(n / 2) {
        var (a, b) = pairs[i & 127]
        a.timestampNs = base + UInt64(i) * 2_000
        a.transactionID = UInt64(i + 1)
        b.timestampNs = a.timestampNs + 1_000
        b.transactionID = a.transactionID
        try writer.write(a)
        try writer.write(b)
    }
    try writer.close()
    let seconds = now() - start
    let sizes = pairs.first.map { "\($0.0.encodedLength) \($0.1.encodedLength)" } ?? "0 0"
    print("\(Int(Double(n) / seconds)) \(sizes)")
} catch {
    FileHandle.standardError.write(Data("vqtap-pcap-bench: \(error)\n".utf8))
    exit(1)
}
