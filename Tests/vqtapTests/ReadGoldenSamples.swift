import PcapNG
import VQRecord
import VQWire
import VirtioSCSI

/// Constructed record streams behind samples/captures/: what a tap would record for a few
/// typical and a few broken exchanges. The .pcapng files are written from them with the
/// PcapNG writer (VQTAP_REGENERATE=1) and must read back to exactly these records.
enum CaptureSamples {
    static let base: UInt64 = 1_764_000_000_000_000_000  // 2025-11-24T16:00:00Z

    struct Stream {
        var records: [CaptureRecord] = []
        var time: UInt64 = CaptureSamples.base
        var transaction: UInt64 = 0
        var ring: [UInt16: UInt16] = [:]

        mutating func tick(_ ns: UInt64 = 250_000) -> UInt64 { time += ns; return time }

        mutating func attach(queues: UInt16 = 3, features: UInt64 = 0x1_3000_0006, cdbSize: UInt32 = 32, senseSize: UInt32 = 96) {
            for q in 0..<queues {
                records.append(CaptureRecord(kind: .deviceState, queue: q, body: .deviceState(DeviceStateMarker(
                    state: .attached, generation: 1, features: features, queueSize: 128, queueCount: queues, cdbSize: cdbSize,
                    senseSize: senseSize, descAddress: 0x10_0000 + UInt64(q) * 0x1_0000, availAddress: 0x10_0800 + UInt64(q) * 0x1_0000,
                    usedAddress: 0x10_1000 + UInt64(q) * 0x1_0000, deviceName: "scsi0")), timestampNs: tick(0)))
            }
        }

        /// One chain: the request record, then (unless `complete` is false) its completion.
        mutating func exchange(queue: UInt16 = 2, head: UInt16, readable: [[UInt8]], writable: [(length: UInt32, bytes: [UInt8])],
                               usedLength: UInt32? = nil, latency: UInt64 = 180_000, requestFlags: RecordFlags = [.indirect],
                               usedFlags: RecordFlags = [.indirect], complete: Bool = true, showRequest: Bool = true,
                               snaplen: Int? = nil) {
            transaction += 1
            var address: UInt64 = 0x20_0000 + UInt64(head) * 0x1_0000
            var segments: [RecordSegment] = []
            var cut = false
            for (i, b) in readable.enumerated() {
                let flags: UInt16 = RecordSegment.fromIndirectFlag | 1
                var bytes = b
                if let snaplen, i > 0, bytes.count > snaplen { bytes = Array(bytes.prefix(snaplen)); cut = true }
                segments.append(RecordSegment(address: address, length: UInt32(b.count), flags: flags, bytes: bytes))
                address += 0x1000
            }
            var writableSegments: [RecordSegment] = []
            for (i, w) in writable.enumerated() {
                let last = i == writable.count - 1
                writableSegments.append(RecordSegment(address: address, length: w.length,
                                                      flags: RecordSegment.fromIndirectFlag | 2 | (last ? 0 : 1), bytes: []))
                address += 0x1000
            }
            let index = ring[queue, default: 0]
            ring[queue] = index &+ 1
            if showRequest {
                records.append(CaptureRecord(kind: .available, queue: queue, head: head, flags: requestFlags.union(cut ? .snaplenTruncated : []),
                                             transactionID: transaction, ringIndex: index,
                                             body: .chain(ChainSegments(segments + writableSegments)), timestampNs: tick()))
            }
            guard complete else { return }
            let written = writable.reduce(0) { $0 + $1.bytes.count }
            var filled = writableSegments
            for i in filled.indices { filled[i].bytes = writable[i].bytes }
            records.append(CaptureRecord(kind: .used, queue: queue, head: head, flags: usedFlags.union(showRequest ? [] : .orphan),
                                         usedLength: usedLength ?? UInt32(written), transactionID: showRequest ? transaction : 0,
                                         latencyNs: showRequest ? latency : 0, ringIndex: index, body: .chain(ChainSegments(filled)), timestampNs: tick(latency)))
        }

        static let lun = VirtioSCSILUN(target: 0, lun: 0)

        static func request(_ cdb: [UInt8], id: UInt64, cdbSize: Int = 32, lun: VirtioSCSILUN = lun) -> [UInt8] {
            var w = ByteWriter()
            CommandRequest(lun: lun, id: id, cdb: cdb, cdbSize: cdbSize).encode(into: &w)
            return w.bytes
        }

        static func response(status: UInt8 = 0, response: VirtioSCSIResponse = .ok, sense: [UInt8] = [], residual: UInt32 = 0) -> [UInt8] {
            var w = ByteWriter()
            CommandResponse(senseLength: UInt32(sense.count), residual: residual, status: status, response: response, sense: sense).encode(into: &w)
            return w.bytes
        }

        /// A command with its data-in or data-out, completed.
        mutating func command(_ cdb: [UInt8], id: UInt64, head: UInt16, dataOut: [UInt8] = [], dataIn: [UInt8] = [], dataInLength: UInt32 = 0,
                              status: UInt8 = 0, response: VirtioSCSIResponse = .ok, sense: [UInt8] = [], residual: UInt32 = 0,
                              requestFlags: RecordFlags = [.indirect], usedFlags: RecordFlags = [.indirect], complete: Bool = true,
                              showRequest: Bool = true, snaplen: Int? = nil, latency: UInt64 = 180_000) {
            var readable = [Self.request(cdb, id: id)]
            if !dataOut.isEmpty { readable.append(dataOut) }
            var writable: [(UInt32, [UInt8])] = [(108, Self.response(status: status, response: response, sense: sense, residual: residual))]
            if dataInLength > 0 { writable.append((dataInLength, dataIn)) }
            exchange(head: head, readable: readable, writable: writable, latency: latency, requestFlags: requestFlags, usedFlags: usedFlags,
                     complete: complete, showRequest: showRequest, snaplen: snaplen)
        }
    }

    static func pattern(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) } }

    /// Discovery and I/O of a Linux guest: INQUIRY, READ CAPACITY, REPORT LUNS, reads, writes,
    /// a unit attention, a flush.
    static var basic: [CaptureRecord] {
        var s = Stream()
        s.attach()
        s.command(SCSICommand.testUnitReady(), id: 0xffff_8880_0412_3000, head: 0, status: 2,
                  sense: SenseData.fixed(key: 6, asc: 0x29, ascq: 0))
        s.command(SCSICommand.inquiry(alloc: 36), id: 0xffff_8880_0412_3100, head: 1,
                  dataIn: SCSIDataIn.inquiryStandard(vendor: "QEMU", product: "QEMU HARDDISK", revision: "2.5+"), dataInLength: 36)
        s.command(SCSICommand.readCapacity10(), id: 0xffff_8880_0412_3200, head: 2,
                  dataIn: SCSIDataIn.readCapacity10(lastLBA: 0x3f_ffff, blockLength: 512), dataInLength: 8)
        s.command(SCSICommand.reportLuns(alloc: 16), id: 0xffff_8880_0412_3300, head: 3,
                  dataIn: SCSIDataIn.reportLuns([0]), dataInLength: 16)
        s.command(SCSICommand.read10(lba: 2048, blocks: 1), id: 0xffff_8880_0412_3400, head: 4,
                  dataIn: pattern(512, seed: 1), dataInLength: 512, latency: 95_000)
        s.command(SCSICommand.write10(lba: 4096, blocks: 1, fua: true), id: 0xffff_8880_0412_3500, head: 5,
                  dataOut: pattern(512, seed: 2), latency: 420_000)
        s.command(SCSICommand.read16(lba: 0x1_0000_0000, blocks: 2), id: 0xffff_8880_0412_3600, head: 6,
                  dataIn: pattern(1024, seed: 3), dataInLength: 1024, latency: 1_250_000)
        s.command(SCSICommand.synchronizeCache10(), id: 0xffff_8880_0412_3700, head: 7, latency: 2_000_000)
        return s.records
    }

    /// The controlq and the eventq: a LUN reset and an abort, AN query, an event.
    static var control: [CaptureRecord] {
        var s = Stream()
        s.attach()
        s.command(SCSICommand.read10(lba: 8, blocks: 8), id: 0xffff_8880_0500_0000, head: 9, dataInLength: 4096, complete: false)
        var w = ByteWriter()
        TMFRequest(subtype: .abortTask, lun: Stream.lun, id: 0xffff_8880_0500_0000).encode(into: &w)
        let abort = w.bytes
        w = ByteWriter()
        TMFResponse(response: .ok).encode(into: &w)
        s.exchange(queue: 0, head: 0, readable: [abort], writable: [(1, w.bytes)], requestFlags: [], usedFlags: [])
        s.exchange(head: 9, readable: [Stream.request(SCSICommand.read10(lba: 8, blocks: 8), id: 0xffff_8880_0500_0000)],
                   writable: [(108, Stream.response(response: .aborted)), (4096, [])], usedLength: 108)
        w = ByteWriter()
        TMFRequest(subtype: .logicalUnitReset, lun: Stream.lun).encode(into: &w)
        let reset = w.bytes
        w = ByteWriter()
        TMFResponse(response: .functionSucceeded).encode(into: &w)
        s.exchange(queue: 0, head: 1, readable: [reset], writable: [(1, w.bytes)], latency: 3_000_000, requestFlags: [], usedFlags: [])
        w = ByteWriter()
        ANRequest(kind: .query, lun: Stream.lun, eventRequested: [.operationalChange, .powerManagement]).encode(into: &w)
        let query = w.bytes
        w = ByteWriter()
        ANResponse(eventActual: [], response: .ok).encode(into: &w)
        s.exchange(queue: 0, head: 2, readable: [query], writable: [(5, w.bytes)], requestFlags: [], usedFlags: [])
        w = ByteWriter()
        VirtioSCSIEvent(type: .paramChange, lun: Stream.lun, reason: 0x092a).encode(into: &w)
        s.exchange(queue: 1, head: 0, readable: [], writable: [(16, w.bytes)], latency: 5_000_000_000, requestFlags: [], usedFlags: [])
        return s.records
    }

    /// What goes wrong: drops, an orphan, a torn chain, a malformed chain, a bad target, a
    /// payload cut by the snap length, a 32-byte CDB, undecodable bytes.
    static var faults: [CaptureRecord] {
        var s = Stream()
        s.attach()
        s.command(SCSICommand.read10(lba: 16, blocks: 8), id: 0xffff_8880_0600_0000, head: 0, dataIn: pattern(4096, seed: 4),
                  dataInLength: 4096, requestFlags: [.indirect, .torn], usedFlags: [.indirect, .torn])
        s.records.append(CaptureRecord(kind: .drop, queue: 2, body: .drop(DropMarker(count: 7, reason: .availableLapped)), timestampNs: s.tick()))
        s.command(SCSICommand.read10(lba: 24, blocks: 1), id: 0xffff_8880_0600_1000, head: 1, dataIn: pattern(512, seed: 5),
                  dataInLength: 512, showRequest: false)
        s.command(SCSICommand.inquiry(alloc: 96), id: 0xffff_8880_0600_2000, head: 2, response: .badTarget)
        s.command(SCSICommand.write10(lba: 64, blocks: 8), id: 0xffff_8880_0600_3000, head: 3, dataOut: pattern(4096, seed: 6), snaplen: 64)
        // READ(32): variable-length CDB, 32 bytes: an extended-CDB AHS in iSCSI.
        var read32: [UInt8] = [0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0x00, 0x09] + Array(repeating: 0, count: 22)
        read32[19] = 0x40  // LBA 0x40
        read32[31] = 1     // transfer length 1
        s.command(read32, id: 0xffff_8880_0600_4000, head: 4, dataIn: pattern(512, seed: 7), dataInLength: 512)
        s.records.append(CaptureRecord(kind: .available, queue: 2, head: 77, flags: [.malformed], transactionID: 99, ringIndex: 9,
                                       errorCode: 3, errorDetail: 0x4000, body: .chain([]), timestampNs: s.tick()))
        s.exchange(head: 5, readable: [[1, 2, 3]], writable: [(108, [])], usedLength: 0)
        s.records.append(CaptureRecord(kind: .drop, queue: 2, body: .drop(DropMarker(count: 2, reason: .usedLapped)), timestampNs: s.tick()))
        return s.records
    }

    static var all: [(name: String, records: [CaptureRecord])] {
        [("basic", basic), ("control", control), ("faults", faults)]
    }
}
