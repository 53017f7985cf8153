import Testing
import VQOutput
import VQWire
@testable import VirtioSCSI

@Suite struct SCSIDataInTests {
    static func command(_ cdb: [UInt8]) throws -> SCSICommand { try SCSICommand(decoding: cdb) }

    static func decode(_ cdb: [UInt8], _ data: [UInt8]) throws -> Field {
        try #require(SCSIDataIn.decode(command: try command(cdb), data: data))
    }

    @Test func standardInquiryRoundTrip() throws {
        let data = SCSIDataIn.inquiryStandard(vendor: "QEMU", product: "QEMU HARDDISK", revision: "2.5+")
        #expect(data.count == 36)
        let f = try Self.decode(SCSICommand.inquiry(alloc: 36), data)
        #expect(f.name == "virtio_scsi.inquiry")
        #expect(f.display == "direct access block device \"QEMU\" \"QEMU HARDDISK\" \"2.5+\"")
        #expect(f.first(named: "virtio_scsi.inquiry.device_type")?.value == .code(0, name: "direct access block device"))
        #expect(f.first(named: "virtio_scsi.inquiry.peripheral_qualifier")?.value == .code(0, name: "connected"))
        #expect(f.first(named: "virtio_scsi.inquiry.version")?.value == .code(6, name: "SPC-4"))
        #expect(f.first(named: "virtio_scsi.inquiry.hisup")?.value == .bool(true))
        #expect(f.first(named: "virtio_scsi.inquiry.response_data_format")?.value == .uint(2))
        #expect(f.first(named: "virtio_scsi.inquiry.additional_length")?.value == .uint(31))
        #expect(f.first(named: "virtio_scsi.inquiry.cmdque")?.value == .bool(true))
        #expect(f.first(named: "virtio_scsi.inquiry.rmb")?.value == .bool(false))
        #expect(f.first(named: "virtio_scsi.inquiry.vendor")?.value == .string("QEMU"))
        #expect(f.first(named: "virtio_scsi.inquiry.product")?.value == .string("QEMU HARDDISK"))
        #expect(f.first(named: "virtio_scsi.inquiry.revision")?.value == .string("2.5+"))
        #expect(f.first(named: "virtio_scsi.inquiry.partial") == nil)
        let cd = try Self.decode(SCSICommand.inquiry(alloc: 96),
                                 SCSIDataIn.inquiryStandard(vendor: "A very long vendor", product: "é", revision: "1", deviceType: 5, removable: true))
        #expect(cd.first(named: "virtio_scsi.inquiry.vendor")?.value == .string("A very l"))
        #expect(cd.first(named: "virtio_scsi.inquiry.product")?.value == .string("??"))
        #expect(cd.first(named: "virtio_scsi.inquiry.rmb")?.value == .bool(true))
        #expect(cd.first(named: "virtio_scsi.inquiry.device_type")?.value == .code(5, name: "CD/DVD device"))
    }

    @Test func inquiryPrefixesArePartialAtTheRightField() throws {
        let data = SCSIDataIn.inquiryStandard(vendor: "QEMU", product: "QEMU HARDDISK", revision: "2.5+")
        let fieldAt = ["peripheral_qualifier", "rmb", "version", "response_data_format", "additional_length",
                       "sccs", "encserv", "cmdque"] + Array(repeating: "vendor", count: 8)
            + Array(repeating: "product", count: 16) + Array(repeating: "revision", count: 4)
        #expect(SCSIDataIn.decode(command: try Self.command(SCSICommand.inquiry(alloc: 36)), data: []) == nil)
        for length in 1..<data.count {
            let f = try Self.decode(SCSICommand.inquiry(alloc: 36), Array(data[0..<length]))
            #expect(f.first(named: "virtio_scsi.inquiry.partial")?.value == .string("virtio_scsi.inquiry." + fieldAt[length]),
                    "length \(length)")
            #expect(f.display?.contains("partial") == true)
        }
        // A device that announces only 5 + 3 bytes is complete at 8.
        let short = try Self.decode(SCSICommand.inquiry(alloc: 36), [0, 0, 5, 2, 3, 0, 0, 0])
        #expect(short.first(named: "virtio_scsi.inquiry.partial") == nil)
        #expect(short.first(named: "virtio_scsi.inquiry.vendor") == nil)
    }

    @Test func vpdSupportedPagesAndSerial() throws {
        let pages = try Self.decode(SCSICommand.inquiry(evpd: true, page: 0, alloc: 255),
                                    SCSIDataIn.vpdSupportedPages([0x00, 0x80, 0x83, 0xb0, 0xb1]))
        #expect(pages.name == "virtio_scsi.vpd")
        #expect(pages.display == "Supported VPD pages (5)")
        #expect(pages.all(named: "virtio_scsi.vpd.supported_page").map(\.value) == [
            .code(0x00, name: "Supported VPD pages"), .code(0x80, name: "Unit serial number"),
            .code(0x83, name: "Device identification"), .code(0xb0, name: "Block limits"),
            .code(0xb1, name: "Block device characteristics"),
        ])
        let serial = try Self.decode(SCSICommand.inquiry(evpd: true, page: 0x80, alloc: 255), SCSIDataIn.vpdUnitSerialNumber("drive-scsi0 "))
        #expect(serial.first(named: "virtio_scsi.vpd.serial_number")?.value == .string("drive-scsi0"))
        #expect(serial.first(named: "virtio_scsi.vpd.page_code")?.value == .code(0x80, name: "Unit serial number"))
        let cut = try Self.decode(SCSICommand.inquiry(evpd: true, page: 0x80, alloc: 8), Array(SCSIDataIn.vpdUnitSerialNumber("0123456789").prefix(8)))
        #expect(cut.first(named: "virtio_scsi.vpd.serial_number")?.value == .string("0123"))
        #expect(cut.first(named: "virtio_scsi.vpd.partial")?.value == .string("virtio_scsi.vpd.serial_number"))
    }

    @Test func vpdDeviceIdentification() throws {
        let data = SCSIDataIn.vpdDeviceIdentification([
            .t10(vendor: "QEMU", id: "QEMU HARDDISK"), .naa(0x6001_4050_0000_0001), .relativeTargetPort(1),
        ])
        let f = try Self.decode(SCSICommand.inquiry(evpd: true, page: 0x83, alloc: 255), data)
        #expect(f.display == "Device identification (3 designators)")
        let ds = f.all(named: "virtio_scsi.vpd.designator")
        #expect(ds.count == 3)
        #expect(ds.map { $0.display ?? "" } == ["T10 vendor ID: QEMU    QEMU HARDDISK", "NAA: 0x6001405000000001",
                                                "relative target port: 1"])
        #expect(ds[0].first(named: "virtio_scsi.vpd.designator.code_set")?.value == .code(2, name: "ASCII"))
        #expect(ds[1].first(named: "virtio_scsi.vpd.designator.type")?.value == .code(3, name: "NAA"))
        #expect(ds[2].first(named: "virtio_scsi.vpd.designator.association")?.value == .code(1, name: "target port"))
        #expect(ds[1].first(named: "virtio_scsi.vpd.designator.length")?.value == .uint(8))
        // Cut inside the second designator: the first stays, the cut is named.
        let cut = try Self.decode(SCSICommand.inquiry(evpd: true, page: 0x83, alloc: 35), Array(data.prefix(35)))
        #expect(cut.all(named: "virtio_scsi.vpd.designator").count == 1)
        #expect(cut.first(named: "virtio_scsi.vpd.partial")?.value == .string("virtio_scsi.vpd.designator.identifier"))
    }

    @Test func vpdBlockLimitsAndCharacteristics() throws {
        let limits = try Self.decode(SCSICommand.inquiry(evpd: true, page: 0xb0, alloc: 64),
                                     SCSIDataIn.vpdBlockLimits(maxTransferLength: 32767, optimalTransferLength: 128,
                                                               optimalGranularity: 8, maxUnmapLBACount: 4_194_303,
                                                               maxUnmapDescriptorCount: 1, optimalUnmapGranularity: 8,
                                                               maxWriteSameLength: 0x3fffff))
        #expect(limits.display == "Block limits max transfer 32767")
        #expect(limits.first(named: "virtio_scsi.vpd.page_length")?.value == .uint(0x3c))
        #expect(limits.first(named: "virtio_scsi.vpd.max_transfer_length")?.value == .uint(32767))
        #expect(limits.first(named: "virtio_scsi.vpd.optimal_transfer_length")?.value == .uint(128))
        #expect(limits.first(named: "virtio_scsi.vpd.optimal_transfer_length_granularity")?.value == .uint(8))
        #expect(limits.first(named: "virtio_scsi.vpd.max_unmap_lba_count")?.value == .uint(4_194_303))
        #expect(limits.first(named: "virtio_scsi.vpd.max_unmap_descriptor_count")?.value == .uint(1))
        #expect(limits.first(named: "virtio_scsi.vpd.optimal_unmap_granularity")?.value == .uint(8))
        #expect(limits.first(named: "virtio_scsi.vpd.max_write_same_length")?.value == .uint(0x3fffff))
        #expect(limits.first(named: "virtio_scsi.vpd.partial") == nil)
        let ssd = try Self.decode(SCSICommand.inquiry(evpd: true, page: 0xb1, alloc: 64),
                                  SCSIDataIn.vpdBlockDeviceCharacteristics(rotationRate: 1, formFactor: 3))
        #expect(ssd.display == "Block device characteristics non-rotating medium")
        #expect(ssd.first(named: "virtio_scsi.vpd.form_factor")?.value == .code(3, name: "2.5 inch"))
        let disk = try Self.decode(SCSICommand.inquiry(evpd: true, page: 0xb1, alloc: 64),
                                   SCSIDataIn.vpdBlockDeviceCharacteristics(rotationRate: 7200))
        #expect(disk.first(named: "virtio_scsi.vpd.rotation_rate")?.display == "7200 rpm")
        let other = try Self.decode(SCSICommand.inquiry(evpd: true, page: 0xb2, alloc: 64), [0, 0xb2, 0, 2, 0xaa, 0xbb])
        #expect(other.first(named: "virtio_scsi.vpd.data")?.value == .bytes([0xaa, 0xbb]))
        #expect(other.first(named: "virtio_scsi.vpd.page_code")?.value == .code(0xb2, name: "Logical block provisioning"))
        // Limits cut after the maximum transfer length.
        let cut = try Self.decode(SCSICommand.inquiry(evpd: true, page: 0xb0, alloc: 14), Array(SCSIDataIn.vpdBlockLimits(maxTransferLength: 9).prefix(14)))
        #expect(cut.first(named: "virtio_scsi.vpd.max_transfer_length")?.value == .uint(9))
        #expect(cut.first(named: "virtio_scsi.vpd.partial")?.value == .string("virtio_scsi.vpd.optimal_transfer_length"))
    }

    @Test func readCapacity() throws {
        let rc10 = try Self.decode(SCSICommand.readCapacity10(), SCSIDataIn.readCapacity10(lastLBA: 2_097_151, blockLength: 512))
        #expect(rc10.name == "virtio_scsi.read_capacity")
        #expect(rc10.display == "last lba 2097151 block 512 (1.0 GiB)")
        #expect(rc10.first(named: "virtio_scsi.read_capacity.capacity")?.value == .uint(1 << 30))
        let big = try Self.decode(SCSICommand.readCapacity10(), SCSIDataIn.readCapacity10(lastLBA: 0xffff_ffff, blockLength: 512))
        #expect(big.first(named: "virtio_scsi.read_capacity.last_lba")?.display == "4294967295 (too large: use READ CAPACITY(16))")
        let rc16 = try Self.decode(SCSICommand.readCapacity16(),
                                   SCSIDataIn.readCapacity16(lastLBA: 0x1_0000_0000, blockLength: 4096, lbppbe: 3,
                                                             lbpme: true, lbprz: true, lowestAlignedLBA: 7))
        #expect(rc16.display == "last lba 4294967296 block 4096 (16.0 TiB) thin")
        #expect(rc16.first(named: "virtio_scsi.read_capacity.lbppbe")?.value == .uint(3))
        #expect(rc16.first(named: "virtio_scsi.read_capacity.lbpme")?.value == .bool(true))
        #expect(rc16.first(named: "virtio_scsi.read_capacity.lbprz")?.value == .bool(true))
        #expect(rc16.first(named: "virtio_scsi.read_capacity.lowest_aligned_lba")?.value == .uint(7))
        #expect(rc16.first(named: "virtio_scsi.read_capacity.prot_en")?.value == .bool(false))
        let overflow = try Self.decode(SCSICommand.readCapacity16(), SCSIDataIn.readCapacity16(lastLBA: .max, blockLength: 512))
        #expect(overflow.first(named: "virtio_scsi.read_capacity.capacity") == nil)
        let fields16 = ["last_lba", "block_length", "p_type", "lbppbe", "lowest_aligned_lba"]
        let starts = [0, 8, 12, 13, 14]
        for length in 1..<16 {
            let f = try Self.decode(SCSICommand.readCapacity16(), Array(SCSIDataIn.readCapacity16(lastLBA: 1, blockLength: 512).prefix(length)))
            let index = (starts.lastIndex { $0 <= length } ?? 0)
            let expected = starts.contains(length) ? fields16[index] : fields16[max(0, index)]
            #expect(f.first(named: "virtio_scsi.read_capacity.partial")?.value == .string("virtio_scsi.read_capacity." + expected), "length \(length)")
        }
        for length in 1..<8 {
            let f = try Self.decode(SCSICommand.readCapacity10(), Array(SCSIDataIn.readCapacity10(lastLBA: 1, blockLength: 512).prefix(length)))
            #expect(f.first(named: "virtio_scsi.read_capacity.partial")?.value == .string("virtio_scsi.read_capacity." + (length < 4 ? "last_lba" : "block_length")))
        }
    }

    @Test func reportLuns() throws {
        let data = SCSIDataIn.reportLuns([0, 1, 300])
        let f = try Self.decode(SCSICommand.reportLuns(alloc: 4096), data)
        #expect(f.name == "virtio_scsi.report_luns")
        #expect(f.display == "3 LUNs: 0, 1, 300")
        #expect(f.first(named: "virtio_scsi.report_luns.list_length")?.value == .uint(24))
        let luns = f.all(named: "virtio_scsi.report_luns.lun")
        #expect(luns.count == 3)
        #expect(luns[2].first(named: "virtio_scsi.report_luns.lun.address_method")?.value == .code(1, name: "flat space"))
        #expect(luns[2].first(named: "virtio_scsi.report_luns.lun.lun")?.value == .uint(300))
        #expect(luns[2].first(named: "virtio_scsi.report_luns.lun.raw")?.value == .hex(0x412c_0000_0000_0000))
        #expect(luns[1].first(named: "virtio_scsi.report_luns.lun.address_method")?.value == .code(0, name: "peripheral device"))
        // JSON: the repeated group becomes an array.
        let json = FieldJSON.line([f])
        #expect(json.contains("\"lun\":[{\"raw\":\"0x0000000000000000\""))
        // Cut by the allocation length: one of three.
        let cut = try Self.decode(SCSICommand.reportLuns(alloc: 16), Array(data.prefix(16)))
        #expect(cut.display == "1 of 3 LUNs (partial)")
        #expect(cut.all(named: "virtio_scsi.report_luns.lun").count == 1)
        #expect(cut.first(named: "virtio_scsi.report_luns.partial")?.value == .string("virtio_scsi.report_luns.lun"))
        let logical = SCSIDataIn.lunEntry(0x8521_0000_0000_0000)
        #expect(logical.1 == "target 5 bus 1 lun 1")
        let twoLevel = SCSIDataIn.lunEntry(0x0001_4002_0000_0000)
        #expect(twoLevel.1 == "1+0x400200000000")
        for length in 1..<8 {
            let short = try Self.decode(SCSICommand.reportLuns(alloc: 4096), Array(data.prefix(length)))
            #expect(short.first(named: "virtio_scsi.report_luns.partial")?.value
                == .string(length < 4 ? "virtio_scsi.report_luns.list_length" : "virtio_scsi.report_luns.lun"))
        }
    }

    @Test func otherCommandsHaveNoDataInDecoder() throws {
        #expect(SCSIDataIn.decode(command: try Self.command(SCSICommand.read10(lba: 0, blocks: 1)), data: [1, 2, 3]) == nil)
        #expect(SCSIDataIn.decode(command: try Self.command([0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]), data: [1]) == nil)
    }

    @Test func everyPrefixOfEveryBuilderIsPartialAndTheWholeIsNot() throws {
        let cases: [(cdb: [UInt8], data: [UInt8], partial: String)] = [
            (SCSICommand.inquiry(alloc: 36), SCSIDataIn.inquiryStandard(vendor: "V", product: "P", revision: "R"), "virtio_scsi.inquiry.partial"),
            (SCSICommand.inquiry(evpd: true, page: 0, alloc: 99), SCSIDataIn.vpdSupportedPages([0, 0x80, 0x83]), "virtio_scsi.vpd.partial"),
            (SCSICommand.inquiry(evpd: true, page: 0x80, alloc: 99), SCSIDataIn.vpdUnitSerialNumber("S1"), "virtio_scsi.vpd.partial"),
            (SCSICommand.inquiry(evpd: true, page: 0x83, alloc: 99),
             SCSIDataIn.vpdDeviceIdentification([.naa(0x6000_0000_0000_0001), .relativeTargetPort(2)]), "virtio_scsi.vpd.partial"),
            (SCSICommand.inquiry(evpd: true, page: 0xb0, alloc: 99), SCSIDataIn.vpdBlockLimits(maxTransferLength: 1), "virtio_scsi.vpd.partial"),
            (SCSICommand.inquiry(evpd: true, page: 0xb1, alloc: 99), SCSIDataIn.vpdBlockDeviceCharacteristics(rotationRate: 1), "virtio_scsi.vpd.partial"),
            (SCSICommand.readCapacity10(), SCSIDataIn.readCapacity10(lastLBA: 7, blockLength: 512), "virtio_scsi.read_capacity.partial"),
            (SCSICommand.readCapacity16(), Array(SCSIDataIn.readCapacity16(lastLBA: 7, blockLength: 512).prefix(16)), "virtio_scsi.read_capacity.partial"),
            (SCSICommand.reportLuns(alloc: 99), SCSIDataIn.reportLuns([0, 9]), "virtio_scsi.report_luns.partial"),
        ]
        var prefixes = 0
        for (cdb, data, partial) in cases {
            let whole = try Self.decode(cdb, data)
            #expect(whole.first(named: partial) == nil, "\(Hex.spaced(data))")
            for length in 1..<data.count {
                let f = try Self.decode(cdb, Array(data[0..<length]))
                #expect(f.first(named: partial) != nil, "\(Hex.spaced(data)) cut to \(length)")
                prefixes += 1
            }
        }
        #expect(prefixes == cases.reduce(0) { $0 + $1.data.count - 1 })
    }
}
