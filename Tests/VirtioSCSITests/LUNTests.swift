import Testing
import VQWire
@testable import VirtioSCSI

@Suite struct LUNTests {
    @Test func linuxEncodingIsFlatAndRoundTrips() throws {
        let lun = VirtioSCSILUN(target: 0, lun: 5)
        let bytes = encoded { lun.encode(into: &$0) }
        #expect(bytes == [0x01, 0x00, 0x40, 0x05, 0, 0, 0, 0])
        var r = ByteReader(bytes)
        let back = try VirtioSCSILUN(decoding: &r)
        #expect(back == lun)
        #expect(r.isAtEnd)
        #expect(back.target == 0)
        #expect(back.lun == 5)
        #expect(back.addressMethod == .flat)
        #expect(back.nonconformity == nil)
        #expect(back.summary == "0:5")
    }

    @Test func flatAddressingCarries14Bits() throws {
        let lun = VirtioSCSILUN(bytes: [0x01, 0x07, 0x7f, 0xff, 0, 0, 0, 0])
        #expect(lun.target == 7)
        #expect(lun.lun == 16383)
        #expect(lun.summary == "7:16383")
        #expect(VirtioSCSILUN(target: 7, lun: 16383).bytes == lun.bytes)
        #expect(VirtioSCSILUN(target: 2, lun: 300).bytes == [0x01, 0x02, 0x41, 0x2c, 0, 0, 0, 0])
    }

    @Test func peripheralAddressingIsTheSameLUN() {
        // QEMU's events write LUNs below 256 without the flat bit.
        let lun = VirtioSCSILUN(bytes: [0x01, 0x00, 0x00, 0x05, 0, 0, 0, 0])
        #expect(lun.target == 0)
        #expect(lun.lun == 5)
        #expect(lun.addressMethod == .peripheral)
        #expect(lun.nonconformity == nil)
        #expect(lun.summary == "0:5")
        #expect(VirtioSCSILUN(target: 0, lun: 5, addressMethod: .peripheral).bytes == lun.bytes)
    }

    @Test func reportLUNsWellKnownLUN() {
        let lun = VirtioSCSILUN(bytes: [0xc1, 0x01, 0, 0, 0, 0, 0, 0])
        #expect(lun.isReportLUNsWellKnown)
        #expect(lun.target == nil)
        #expect(lun.lun == nil)
        #expect(lun.nonconformity == nil)
        #expect(lun.summary == "wlun:REPORT_LUNS")
        #expect(lun.field.first(named: "virtio_scsi.lun.well_known")?.value == .bool(true))
        #expect(lun.field.first(named: "virtio_scsi.lun.target") == nil)
    }

    @Test(arguments: [
        ([0x02, 0x00, 0x40, 0x05, 0, 0, 0, 0] as [UInt8], "first byte 0x02, expected 0x01", nil as UInt16?),
        ([0xc1, 0x03, 0, 0, 0, 0, 0, 0], "well-known LUN other than REPORT LUNS (C1 01 00 00 00 00 00 00)", nil),
        ([0x01, 0x00, 0x80, 0x05, 0, 0, 0, 0], "address method 2 in byte 2, expected peripheral (0) or flat (1)", nil),
        ([0x01, 0x00, 0xc0, 0x05, 0, 0, 0, 0], "address method 3 in byte 2, expected peripheral (0) or flat (1)", nil),
        ([0x01, 0x00, 0x02, 0x05, 0, 0, 0, 0], "peripheral address with bus 0x02, expected bus 0", 0x205),
        ([0x01, 0x00, 0x40, 0x05, 0, 0, 0, 1], "bytes 4-7 not zero", 5),
    ])
    func nonconformingFormsAreShownNotRejected(bytes: [UInt8], reason: String, lun: UInt16?) throws {
        var r = ByteReader(bytes)
        let decoded = try VirtioSCSILUN(decoding: &r)
        #expect(decoded.nonconformity == reason)
        #expect(decoded.lun == lun)
        #expect(decoded.field.first(named: "virtio_scsi.lun.nonconforming")?.value == .string(reason))
        #expect(decoded.field.first(named: "virtio_scsi.lun.raw")?.value == .bytes(bytes))
        #expect(encoded { decoded.encode(into: &$0) } == bytes)
        if let lun {
            #expect(decoded.summary == "0:\(lun)(nonconforming)")
        } else {
            #expect(decoded.summary == "nonconforming-lun:" + Hex.compact(bytes))
        }
    }

    @Test func fieldsAreOneGroupWithRawTargetLUN() {
        let field = VirtioSCSILUN(target: 3, lun: 1).field
        #expect(field.name == "virtio_scsi.lun")
        #expect(field.value == .none)
        #expect(field.displayText == "3:1")
        #expect(field.children.map(\.name) == [
            "virtio_scsi.lun.raw", "virtio_scsi.lun.target", "virtio_scsi.lun.lun", "virtio_scsi.lun.address_method",
        ])
        #expect(field.first(named: "virtio_scsi.lun.target")?.value == .uint(3))
        #expect(field.first(named: "virtio_scsi.lun.lun")?.value == .uint(1))
        #expect(field.first(named: "virtio_scsi.lun.address_method")?.value == .code(1, name: "FLAT"))
    }

    @Test func truncationSweep() {
        let bytes = VirtioSCSILUN(target: 1, lun: 2).bytes
        let n = expectTruncationSweep(bytes, [("virtio_scsi.lun", 8)]) { (b: [UInt8]) throws(DecodeError) in
            var r = ByteReader(b)
            _ = try VirtioSCSILUN(decoding: &r)
        }
        #expect(n == 8)
    }
}
