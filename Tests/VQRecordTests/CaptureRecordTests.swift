import Testing
import VQWire
@testable import VQRecord

@Suite struct CaptureRecordTests {
    static let chain = CaptureRecord(
        kind: .used, queue: 2, head: 17, flags: [.indirect, .snaplenTruncated], usedLength: 108,
        transactionID: 0x1122_3344_5566_7788, latencyNs: 81_000, ringIndex: 65535,
        body: .chain([
            RecordSegment(address: 0x1000, length: 51, flags: 1 | RecordSegment.fromIndirectFlag, bytes: Array(0..<51)),
            RecordSegment(address: 0x2000, length: 108, flags: 2 | RecordSegment.fromIndirectFlag, bytes: [0xaa, 0xbb]),
            RecordSegment(address: 0xffff_ffff_ffff_f000, length: 4096, flags: 2, bytes: []),
        ]))
    static let drop = CaptureRecord(kind: .drop, queue: 3, body: .drop(DropMarker(count: 12, reason: .availableLapped)))
    static let state = CaptureRecord(kind: .deviceState, queue: 0, body: .deviceState(DeviceStateMarker(
        state: .reattached, generation: 4, features: 0x1_3000_0007, queueSize: 256, queueCount: 4, cdbSize: 32,
        senseSize: 96, descAddress: 0x29e_9000, availAddress: 0x29e_a000, usedAddress: 0x29e_a240, deviceName: "scsi0")))

    @Test(arguments: [chain, drop, state])
    func roundTrips(_ record: CaptureRecord) throws {
        let bytes = record.encoded
        #expect(bytes.count % 4 == 0)
        #expect(try CaptureRecord(decoding: bytes) == record)
    }

    @Test func headerLayoutIsThePublishedOne() {
        let b = Self.chain.encoded
        #expect(Array(b[0..<4]) == Array("VQRC".utf8))
        #expect(b[4] == 1)  // version
        #expect(b[5] == 2)  // used
        #expect(Array(b[6..<8]) == [56, 0])
        #expect(Array(b[8..<10]) == [8, 0])  // SCSI host
        #expect(Array(b[12..<14]) == [2, 0])  // queue
        #expect(Array(b[14..<16]) == [17, 0])  // head
        #expect(Array(b[16..<20]) == [3, 0, 0, 0])  // flags
        #expect(Array(b[20..<24]) == [108, 0, 0, 0])
        #expect(Array(b[24..<32]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(Array(b[40..<44]) == [0xff, 0xff, 3, 0])  // ring index, segment count
        // First segment: address, length 51, captured 51, flags, then 51 bytes + 1 pad byte.
        #expect(Array(b[56..<64]) == [0, 0x10, 0, 0, 0, 0, 0, 0])
        #expect(Array(b[64..<72]) == [51, 0, 0, 0, 51, 0, 0, 0])
        #expect(Array(b[72..<74]) == [1, 0x80])
        #expect(b.count == 56 + (20 + 52) + (20 + 4) + 20)
    }

    @Test(arguments: [chain, drop, state])
    func everyPrefixIsTruncatedNeverATrap(_ record: CaptureRecord) {
        let bytes = record.encoded
        for n in 0..<bytes.count {
            do {
                _ = try CaptureRecord(decoding: Array(bytes[0..<n]))
                Issue.record("prefix of \(n) bytes decoded")
            } catch {
                #expect(error.isTruncated, "prefix \(n): \(error)")
            }
        }
    }

    @Test func truncationNamesTheField() {
        let bytes = Self.chain.encoded
        #expect(throws: DecodeError.truncated("vqtap.record.transaction_id", at: 24, needed: 8, available: 4)) {
            _ = try CaptureRecord(decoding: Array(bytes[0..<28]))
        }
        #expect(throws: DecodeError.truncated("vqtap.segment.bytes", at: 76, needed: 51, available: 10)) {
            _ = try CaptureRecord(decoding: Array(bytes[0..<86]))
        }
    }

    @Test func rejectsWhatIsNotARecord() {
        var bytes = Self.chain.encoded
        bytes[0] = 0x50
        #expect(throws: DecodeError.malformed("vqtap.record.magic", at: 0, "50515243 is not a vqtap capture record (56515243)")) {
            _ = try CaptureRecord(decoding: bytes)
        }
    }

    @Test func malformedAndUnsupportedCases() {
        func mutate(_ r: CaptureRecord, _ at: Int, _ v: UInt8) -> [UInt8] {
            var b = r.encoded
            b[at] = v
            return b
        }
        // A newer version is unsupported, not malformed.
        #expect(throws: DecodeError.unsupported("vqtap.record.version", at: 4, "record version 2; this vqtap reads version 1")) {
            _ = try CaptureRecord(decoding: mutate(Self.chain, 4, 2))
        }
        #expect(throws: DecodeError.unsupported("vqtap.record.kind", at: 5, "record kind 9")) {
            _ = try CaptureRecord(decoding: mutate(Self.chain, 5, 9))
        }
        #expect(throws: DecodeError.malformed("vqtap.record.header_length", at: 6, "40 is shorter than the 56-byte header")) {
            _ = try CaptureRecord(decoding: mutate(Self.chain, 6, 40))
        }
        // Captured length above the descriptor length.
        #expect(throws: DecodeError.malformed("vqtap.segment.captured_length", at: 68, "52 bytes captured of a 51-byte buffer")) {
            _ = try CaptureRecord(decoding: mutate(Self.chain, 68, 52))
        }
        #expect(throws: DecodeError.unsupported("vqtap.drop.reason", at: 64, "drop reason 9")) {
            _ = try CaptureRecord(decoding: mutate(Self.drop, 64, 9))
        }
        #expect(throws: DecodeError.unsupported("vqtap.state.state", at: 56, "device state 9")) {
            _ = try CaptureRecord(decoding: mutate(Self.state, 56, 9))
        }
    }

    @Test func skipsHeaderFieldsANewerWriterAdded() throws {
        var b = Self.drop.encoded
        b[6] = 64
        b.insert(contentsOf: [UInt8](repeating: 0xee, count: 8), at: 56)
        #expect(try CaptureRecord(decoding: b) == Self.drop)
    }

    @Test func flagNames() {
        #expect(RecordFlags([.torn, .orphan]).names == ["torn", "orphan"])
        #expect(RecordFlags(rawValue: 0x100).names == ["unknown(0x100)"])
    }
}
