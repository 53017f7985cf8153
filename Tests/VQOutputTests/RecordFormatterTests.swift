import Testing
import VQAnalysis
import VQRecord
import VQWire
import VirtioSCSI
@testable import VQOutput

/// The record path of `capture` and `read`: records in, decoded and paired, printed.
@Suite struct RecordFormatterTests {
    static let t0: UInt64 = 1_764_020_000_123_456_789  // 21:33:20.123456789 UTC

    static func bytes(_ encode: (inout ByteWriter) -> Void) -> [UInt8] {
        var w = ByteWriter()
        encode(&w)
        return w.bytes
    }

    static let request = CommandRequest(lun: VirtioSCSILUN(target: 0, lun: 5), id: 0xffff_8881_2345_6780,
                                        cdb: SCSICommand.read10(lba: 2048, blocks: 8))
    static let response = CommandResponse(senseLength: 0, status: 0, dataIn: [UInt8](repeating: 0x11, count: 4096))

    static var records: [CaptureRecord] {
        let header = bytes { request.encode(into: &$0) }
        let written = bytes { response.encode(into: &$0) }
        let available: [RecordSegment] = [
            RecordSegment(address: 0x1000, length: 51, flags: 1 | RecordSegment.fromIndirectFlag, bytes: header),
            RecordSegment(address: 0x2000, length: 108, flags: 3 | RecordSegment.fromIndirectFlag),
            RecordSegment(address: 0x3000, length: 4096, flags: 2 | RecordSegment.fromIndirectFlag),
        ]
        var used = available
        used[0].bytes = []
        used[1].bytes = Array(written[0..<108])
        used[2].bytes = Array(written[108..<172])
        return [
            CaptureRecord(kind: .deviceState, queue: 2, body: .deviceState(DeviceStateMarker(
                state: .attached, generation: 1, features: 0x1_3000_0007, queueSize: 256, queueCount: 3, deviceName: "scsi0")),
                timestampNs: t0),
            CaptureRecord(kind: .available, queue: 2, head: 17, flags: [.indirect], transactionID: 1, ringIndex: 40,
                          body: .chain(ChainSegments(available)), timestampNs: t0 + 1000),
            CaptureRecord(kind: .used, queue: 2, head: 17, flags: [.indirect, .snaplenTruncated], usedLength: 4204,
                          transactionID: 1, latencyNs: 81_234, ringIndex: 40, body: .chain(ChainSegments(used)), timestampNs: t0 + 82_234),
            CaptureRecord(kind: .drop, queue: 2, body: .drop(DropMarker(count: 3, reason: .availableLapped)), timestampNs: t0 + 90_000),
            CaptureRecord(kind: .used, queue: 2, head: 9, flags: [.orphan], usedLength: 108, transactionID: 0, ringIndex: 41,
                          body: .chain([RecordSegment(address: 0x5000, length: 108, flags: 2, bytes: Array(written[0..<108]))]),
                          timestampNs: t0 + 95_000),
        ]
    }

    static func decoded() -> [DecodedRecord] {
        var decoder = RecordDecoder()
        return records.map { decoder.decode($0) }
    }

    @Test func oneLinePerRecord() {
        let f = RecordFormatter(verbosity: 0)
        #expect(Self.decoded().map(f.text) == [
            "21:33:20.123456789 scsi0 request0 * attached: generation 1, 256 entries, cdb_size 32, sense_size 96, features 0x130000007",
            "21:33:20.123457789 scsi0 request0 > cmd-req 0:5 tag 0xffff888123456780 simple Read(10) lba 2048 len 8 [indirect]",
            "21:33:20.123539023 scsi0 request0 < cmd-resp OK GOOD residual 0 data-in 64 (64 of 4096 payload bytes captured) (0:5 tag 0xffff888123456780 simple Read(10) lba 2048 len 8, 81.2us) [indirect,snaplen]",
            "21:33:20.123546789 scsi0 request0 ! dropped 3 chains: available ring lapped",
            "21:33:20.123551789 scsi0 request0 < cmd-resp OK GOOD residual 0 [orphan]",
        ])
    }

    @Test func pairingUsesQueueHeadAndTransaction() {
        let d = Self.decoded()
        #expect(d[2].request?.command?.opcode == 0x28)
        #expect(d[4].request == nil)
    }

    @Test func jsonCarriesTheRequestOfACompletion() {
        let line = RecordFormatter().json(Self.decoded()[2])
        #expect(line.hasPrefix(#"{"time_ns":1764020000123539023,"record":"used","device":"scsi0","queue":2,"queue_name":"request0","head":17,"ring_index":40,"transaction_id":1,"used_length":4204,"latency_ns":81234,"segments":[{"address":"0x0000000000001000","length":51,"flags":32769,"captured":0}"#))
        #expect(line.contains(#""flags":["indirect","snaplen"]"#))
        #expect(line.contains(#""virtio_scsi":{"sense_len":0,"residual":0,"#))
        #expect(line.contains(#""request":{"virtio_scsi":{"lun":{"raw":"0100400500000000","target":0,"lun":5"#))
        #expect(line.contains(#""cdb":{"opcode":40,"opcode_name":"Read(10)""#))
    }

    @Test func verboseAddsDetailsAndFields() {
        let lines = RecordFormatter(verbosity: 1).text(Self.decoded()[1]).split(separator: "\n").map(String.init)
        #expect(lines[1] == "    head 17, ring index 40, transaction 1, 3 segments")
        #expect(lines[2] == "    virtio-scsi")
        #expect(lines.contains("            Logical block address: 2048"))
        let vv = RecordFormatter(verbosity: 2).text(Self.decoded()[1]).split(separator: "\n").map(String.init)
        #expect(vv.contains("    segment 0: 0x0000000000001000 len 51 captured 51 NEXT (indirect table)"))
        #expect(vv.contains("\t0x0000:  0100 4005 0000 0000 8067 4523 8188 ffff  ..@......gE#...."))
    }

    @Test(arguments: [
        (UInt64(999), "999ns"), (1_000, "1.00us"), (81_234, "81.2us"), (999_499, "999us"),
        (1_350_000, "1.35ms"), (20_000_000, "20.0ms"), (2_001_000_000, "2.00s"),
    ])
    func latencyHasThreeSignificantDigits(ns: UInt64, text: String) {
        #expect(RecordFormatter.latency(ns) == text)
    }
}
