import Testing
@testable import VQWire

@Suite struct ByteReaderTests {
    @Test func readsLittleAndBigEndian() throws {
        var r = ByteReader([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xaa, 0xbb, 0xcc])
        #expect(try r.readLE32("a") == 0x0403_0201)
        #expect(try r.readBE32("b") == 0x0506_0708)
        #expect(try r.readBE24("c") == 0xaabbcc)
        #expect(r.isAtEnd)
        var r64 = ByteReader([1, 0, 0, 0, 0, 0, 0, 0x80] + [0x80, 0, 0, 0, 0, 0, 0, 1])
        #expect(try r64.readLE64("x") == 0x8000_0000_0000_0001)
        #expect(try r64.readBE64("y") == 0x8000_0000_0000_0001)
    }

    @Test func truncationNamesFieldAndOffsetAndConsumesNothing() throws {
        var r = ByteReader([1, 2, 3], baseOffset: 10)
        #expect(try r.readU8("first") == 1)
        #expect(throws: DecodeError.truncated("virtio_scsi.id", at: 11, needed: 8, available: 2)) {
            _ = try r.readLE64("virtio_scsi.id")
        }
        #expect(r.offset == 11)
        #expect(try r.readLE16("rest") == 0x0302)
    }

    @Test func hugeAndNegativeCountsAreTruncationNotTraps() {
        var r = ByteReader([1, 2, 3])
        #expect(throws: DecodeError.truncated("f", at: 0, needed: Int.max, available: 3)) {
            _ = try r.readBytes(Int.max, "f")
        }
        #expect(throws: DecodeError.truncated("g", at: 0, needed: -1, available: 3)) {
            try r.skip(-1, "g")
        }
    }

    @Test func subReaderReportsOffsetsInTheWholeMessage() throws {
        var r = ByteReader([0, 0, 0, 0, 9, 9])
        try r.skip(4, "pad")
        var sub = try r.readSubReader(2, "tail")
        #expect(r.isAtEnd)
        #expect(try sub.readU8("a") == 9)
        #expect(throws: DecodeError.truncated("b", at: 5, needed: 2, available: 1)) { _ = try sub.readLE16("b") }
    }

    @Test func errorDescriptionsAreOneLine() {
        #expect(DecodeError.truncated("virtio_scsi.cdb", at: 19, needed: 32, available: 5).description
            == "truncated: virtio_scsi.cdb at offset 19: needs 32 bytes, 5 available")
        #expect(DecodeError.malformed("virtio_scsi.lun", at: 0, "first byte is 0x02, not 0x01").description
            == "malformed: virtio_scsi.lun at offset 0: first byte is 0x02, not 0x01")
        #expect(DecodeError.unsupported("virtio_scsi.type", at: 0, "control type 7").description
            == "unsupported: virtio_scsi.type at offset 0: control type 7")
    }

    @Test func writerRoundTripsEveryWidth() throws {
        var w = ByteWriter()
        w.writeU8(0xfe); w.writeLE16(0x1234); w.writeLE32(0xdead_beef); w.writeLE64(0x0102_0304_0506_0708)
        w.writeBE16(0x1234); w.writeBE24(0x0a0b0c); w.writeBE32(0xdead_beef); w.writeBE64(0x0102_0304_0506_0708)
        w.writeBytes([1, 2, 3], paddedTo: 5); w.writeBytes([1, 2, 3], paddedTo: 2); w.writeZeros(2)
        var r = ByteReader(w.bytes)
        #expect(try r.readU8("") == 0xfe)
        #expect(try r.readLE16("") == 0x1234)
        #expect(try r.readLE32("") == 0xdead_beef)
        #expect(try r.readLE64("") == 0x0102_0304_0506_0708)
        #expect(try r.readBE16("") == 0x1234)
        #expect(try r.readBE24("") == 0x0a0b0c)
        #expect(try r.readBE32("") == 0xdead_beef)
        #expect(try r.readBE64("") == 0x0102_0304_0506_0708)
        #expect(try r.readBytes(5, "") == [1, 2, 3, 0, 0])
        #expect(try r.readBytes(2, "") == [1, 2])
        #expect(r.readRest() == [0, 0])
    }
}
