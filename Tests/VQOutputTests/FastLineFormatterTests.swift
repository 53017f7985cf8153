import Testing
import VQAnalysis
import VQRecord
import VQWire
import VirtioSCSI
@testable import VQOutput

/// The fast path of `read` (RecordView, decodeFast, FastLineFormatter) prints the very lines
/// of the full decode, record for record, whichever way each record goes.
@Suite struct FastLineFormatterTests {
    /// Lines of the full path and of the fast path (with its fallback), and how many records
    /// took the fast path.
    static func lines(_ records: [CaptureRecord]) -> (full: [String], fast: [String], fastCount: Int) {
        let formatter = RecordFormatter(verbosity: 0)
        var full = RecordDecoder()
        var quick = RecordDecoder()
        var fastLines = FastLineFormatter()
        var a: [String] = [], b: [String] = []
        var fastCount = 0
        for r in records {
            a.append(formatter.text(full.decode(r)))
            r.encoded.withUnsafeBytes { raw in
                if let view = RecordView(raw, timestampNs: r.timestampNs), case let fast = quick.decodeFast(view), fast != .full {
                    var out: [UInt8] = []
                    fastLines.append(view, fast, decoder: quick, to: &out)
                    b.append(String(decoding: out, as: UTF8.self))
                    fastCount += 1
                } else {
                    b.append(formatter.text(quick.decode(r)))
                }
            }
        }
        return (a, b, fastCount)
    }

    @Test func sameLinesAsTheFullDecodeOnTheSyntheticWorkload() {
        var o = SyntheticWorkload.Options()
        o.tmfEvery = 2_000
        o.eventEvery = 3_000
        var w = SyntheticWorkload(options: o)
        let records = w.records(until: o.startNs + 300_000_000)
        let (full, fast, fastCount) = Self.lines(records)
        #expect(records.count > 5_000)
        #expect(fastCount > records.count / 2)
        #expect(fastCount < records.count)
        for (i, (x, y)) in zip(full, fast).enumerated() where x != y {
            Issue.record("record \(i): full \(x)\nfast \(y)")
            break
        }
        #expect(full == fast)
    }

    static func bytes(_ encode: (inout ByteWriter) -> Void) -> [UInt8] {
        var w = ByteWriter()
        encode(&w)
        return w.bytes
    }

    /// A request and its completion with the given CDB and header details.
    static func pair(cdb: [UInt8], head: UInt16, id: UInt64, attribute: TaskAttribute = .simple, priority: UInt8 = 0, crn: UInt8 = 0,
                     dataOut: [UInt8] = [], dataOutLength: UInt32 = 0, status: UInt8 = 0, response: VirtioSCSIResponse = .ok,
                     residual: UInt32 = 0, dataIn: Int = 0, usedLength: UInt32? = nil, flags: RecordFlags = [.indirect],
                     at t: UInt64) -> [CaptureRecord] {
        let header = bytes {
            CommandRequest(lun: VirtioSCSILUN(target: 1, lun: 300), id: id, taskAttribute: attribute, priority: priority, crn: crn, cdb: cdb)
                .encode(into: &$0)
        }
        let written = bytes { CommandResponse(senseLength: 0, residual: residual, status: status, response: response).encode(into: &$0) }
        var available = [RecordSegment(address: 0x1000, length: 51, flags: 1, bytes: header)]
        if dataOutLength > 0 { available.append(RecordSegment(address: 0x4000, length: dataOutLength, flags: 1, bytes: dataOut)) }
        available.append(RecordSegment(address: 0x2000, length: 108, flags: 3))
        if dataIn > 0 { available.append(RecordSegment(address: 0x3000, length: 4096, flags: 2)) }
        var used = available.filter(\.isWritable)
        used[0].bytes = written
        if dataIn > 0 { used[1].bytes = [UInt8](repeating: 7, count: dataIn) }
        return [
            CaptureRecord(kind: .available, queue: 2, head: head, flags: flags, transactionID: id, body: .chain(ChainSegments(available)), timestampNs: t),
            CaptureRecord(kind: .used, queue: 2, head: head, flags: flags, usedLength: usedLength ?? UInt32(108 + dataIn), transactionID: id,
                          latencyNs: 123_456, body: .chain(ChainSegments(used)), timestampNs: t + 123_456),
        ]
    }

    @Test func sameLinesForEveryKindOfCommandTheFastPathTakes() {
        let t: UInt64 = 1_764_020_000_000_000_000
        var records = [CaptureRecord(kind: .deviceState, queue: 2, body: .deviceState(DeviceStateMarker(state: .attached, generation: 1,
                                                                                                         queueSize: 128, deviceName: "scsi7")),
                                     timestampNs: t)]
        records += Self.pair(cdb: SCSICommand.read10(lba: 99, blocks: 1, fua: true, dpo: true), head: 1, id: 1, at: t + 1)
        records += Self.pair(cdb: SCSICommand.write16(lba: 1 << 40, blocks: 70_000, fua: true), head: 2, id: 2, attribute: .ordered,
                             priority: 3, crn: 9, dataOut: [1, 2, 3], dataOutLength: 4096, at: t + 2)
        records += Self.pair(cdb: SCSICommand.testUnitReady(), head: 3, id: 3, attribute: .unknown(7), status: 0x08, at: t + 3)
        records += Self.pair(cdb: [0xa8, 0, 0, 0, 1, 0, 0, 0, 0, 8, 0, 0], head: 4, id: 4, response: .badTarget, at: t + 4)
        records += Self.pair(cdb: [0x35, 0x02, 0, 0, 0, 5, 0, 0, 9, 0], head: 5, id: 5, residual: 512, dataIn: 64, usedLength: 4204,
                             flags: [.indirect, .torn, .snaplenTruncated], at: t + 5)
        records += Self.pair(cdb: SCSICommand.read10(lba: 1, blocks: 1), head: 6, id: 6, status: 0x18, response: .unknown(0x33), at: t + 6)
        // An orphan completion, a completion of another transaction, a response cut short.
        records.append(Self.pair(cdb: SCSICommand.read10(lba: 1, blocks: 1), head: 7, id: 70, at: t + 7)[1])
        let other = Self.pair(cdb: SCSICommand.read16(lba: 5, blocks: 5), head: 8, id: 80, at: t + 8)
        var stray = other[1]
        stray.transactionID = 81
        records += [other[0], stray, other[1]]
        records += Self.pair(cdb: SCSICommand.read10(lba: 2, blocks: 2), head: 9, id: 9, usedLength: 50, at: t + 9)
        var zero = Self.pair(cdb: SCSICommand.read10(lba: 3, blocks: 3), head: 10, id: 10, flags: [.indirect, .preAttach], at: t + 10)
        zero[1].transactionID = 0
        records += zero
        let (full, fast, fastCount) = Self.lines(records)
        #expect(fastCount >= 16)
        for (i, (x, y)) in zip(full, fast).enumerated() where x != y {
            Issue.record("record \(i): full \(x)\nfast \(y)")
        }
        #expect(full == fast)
    }

    @Test func numbersPrintAsTheFullFormatterPrintsThem() {
        for v: UInt64 in [0, 7, 9, 10, 99, 100, 12345, 1 << 32, .max] {
            var out: [UInt8] = []
            FastLineFormatter.decimal(v, &out)
            #expect(String(decoding: out, as: UTF8.self) == String(v))
            out = []
            FastLineFormatter.hex16(v, &out)
            #expect(String(decoding: out, as: UTF8.self) == Hex.u64(v))
        }
        for ns: UInt64 in [0, 1, 999_999_999, 1_764_020_000_123_456_789, 86_399_999_999_999] {
            var out: [UInt8] = []
            FastLineFormatter.clock(ns, &out)
            #expect(String(decoding: out, as: UTF8.self) == RecordFormatter.clock(ns))
        }
    }
}
