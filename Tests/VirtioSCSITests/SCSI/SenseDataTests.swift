import Testing
import VQWire
@testable import VirtioSCSI

extension SenseData {
    func value(_ name: String) -> FieldValue? { fields.first(named: name)?.value }
}

@Suite struct SenseDataTests {
    @Test func fixedUnitAttention() throws {
        let s = try SenseData(decoding: SenseData.fixed(key: 6, asc: 0x29, ascq: 0x00) + Array(repeating: 0, count: 78))
        #expect(s.responseCode == 0x70 && s.key == 6 && s.asc == 0x29 && s.ascq == 0)
        #expect(!s.isDeferred && !s.isDescriptorFormat && !s.isTruncated)
        #expect(s.information == nil)
        #expect(s.summary == "UNIT ATTENTION asc 0x29/0x00 (Power on, reset, or bus device reset occurred)")
        #expect(s.value("virtio_scsi.sense.key") == .code(6, name: "UNIT ATTENTION"))
        #expect(s.value("virtio_scsi.sense.response_code") == .code(0x70, name: "current, fixed format"))
        #expect(s.value("virtio_scsi.sense.asc_text") == .string("Power on, reset, or bus device reset occurred"))
        #expect(s.value("virtio_scsi.sense.asc") == .uint(0x29))
        #expect(s.value("virtio_scsi.sense.additional_length") == .uint(10))
        #expect(s.value("virtio_scsi.sense.sks.sksv") == .bool(false))
        #expect(s.fields.first(named: "virtio_scsi.sense.truncated") == nil)
    }

    @Test func fixedMediumErrorWithInformationAndRetries() throws {
        let bytes = SenseData.fixed(key: 3, asc: 0x11, ascq: 0, information: 123_456, commandSpecific: 0xdead,
                                    fru: 7, senseKeySpecific: 5, deferred: true)
        #expect(bytes.count == 18)
        let s = try SenseData(decoding: bytes)
        #expect(s.isDeferred && s.responseCode == 0x71)
        #expect(s.information == 123_456)
        #expect(s.commandSpecific == 0xdead)
        #expect(s.fieldReplaceableUnit == 7)
        #expect(s.summary == "deferred MEDIUM ERROR asc 0x11/0x00 (Unrecovered read error) info 123456")
        #expect(s.value("virtio_scsi.sense.valid") == .bool(true))
        #expect(s.value("virtio_scsi.sense.sks.actual_retry_count") == .uint(5))
        #expect(s.fields.first(named: "virtio_scsi.sense.sks")?.display == "actual retry count 5")
    }

    @Test func fixedFlagsAndFieldPointerAndProgress() throws {
        var bytes = SenseData.fixed(key: 5, asc: 0x24, ascq: 0,
                                    senseKeySpecific: SenseData.fieldPointer(inCDB: true, byte: 1, bit: 4))
        bytes[2] |= 0xe0
        let s = try SenseData(decoding: bytes)
        #expect(s.filemark && s.endOfMedium && s.incorrectLength)
        #expect(s.key == 5)
        #expect(s.value("virtio_scsi.sense.sks.cd") == .bool(true))
        #expect(s.value("virtio_scsi.sense.sks.bpv") == .bool(true))
        #expect(s.value("virtio_scsi.sense.sks.bit_pointer") == .uint(4))
        #expect(s.value("virtio_scsi.sense.sks.field_pointer") == .uint(1))
        #expect(s.fields.first(named: "virtio_scsi.sense.sks")?.display == "CDB byte 1 bit 4")
        let progress = try SenseData(decoding: SenseData.fixed(key: 2, asc: 0x04, ascq: 0x04, senseKeySpecific: 0x8000))
        #expect(progress.value("virtio_scsi.sense.sks.progress") == .uint(0x8000))
        #expect(progress.fields.first(named: "virtio_scsi.sense.sks")?.display == "progress 50.0%")
        #expect(progress.summary == "NOT READY asc 0x04/0x04 (Logical unit not ready, format in progress)")
        let other = try SenseData(decoding: SenseData.fixed(key: 7, asc: 0x27, ascq: 0, senseKeySpecific: 0x1234))
        #expect(other.value("virtio_scsi.sense.sks.value") == .uint(0x1234))
        let copy = try SenseData(decoding: SenseData.fixed(key: 0x0a, asc: 0x1d, ascq: 0, senseKeySpecific: 0x20_0010))
        #expect(copy.value("virtio_scsi.sense.sks.sd") == .bool(true))
        #expect(copy.fields.first(named: "virtio_scsi.sense.sks")?.display == "segment byte 16")
        let invalid = try SenseData(decoding: SenseData.fixed(key: 5, asc: 0x20, ascq: 0))
        #expect(invalid.fields.first(named: "virtio_scsi.sense.sks")?.display == "not valid")
        let ua = try SenseData(decoding: SenseData.fixed(key: 6, asc: 0x2a, ascq: 0x09, senseKeySpecific: 0x01_0000))
        #expect(ua.value("virtio_scsi.sense.sks.overflow") == .bool(true))
    }

    @Test func shortAnnouncedLengthIsNotTruncation() throws {
        // Additional sense length 0: the 8-byte header is everything.
        let s = try SenseData(decoding: [0x70, 0, 0x02, 0, 0, 0, 0, 0] + Array(repeating: 0xff, count: 10))
        #expect(!s.isTruncated)
        #expect(s.key == 2 && s.asc == 0 && s.ascq == 0)
        #expect(s.value("virtio_scsi.sense.asc") == nil)
        // Additional bytes past the standard 18.
        let long = try SenseData(decoding: [0x70, 0, 0x05, 0, 0, 0, 0, 12] + Array(repeating: 0, count: 10) + [0xab, 0xcd])
        #expect(long.value("virtio_scsi.sense.additional_bytes") == .bytes([0xab, 0xcd]))
    }

    @Test func descriptorFormat() throws {
        let ata: [UInt8] = [0x09, 0x0c, 0x01, 0x04, 0x00, 0x01, 0x00, 0x10, 0x00, 0x20, 0x00, 0x30, 0x40, 0x51]
        let bytes = SenseData.descriptorFormat(
            key: 5, asc: 0x24, ascq: 0, information: 0x1_0000_0000,
            descriptors: [SenseData.senseKeySpecificDescriptor(SenseData.fieldPointer(inCDB: false, byte: 12)),
                          [0x03, 0x02, 0, 0x42], [0x05, 0x02, 0, 0x20], [0x01, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
                          ata, [0x80, 0x02, 0xaa, 0xbb]])
        let s = try SenseData(decoding: bytes)
        #expect(s.isDescriptorFormat && !s.isDeferred && !s.isTruncated)
        #expect(s.key == 5 && s.asc == 0x24 && s.ascq == 0)
        #expect(s.information == 0x1_0000_0000)
        #expect(s.commandSpecific == 9)
        #expect(s.fieldReplaceableUnit == 0x42)
        #expect(s.incorrectLength)
        #expect(s.summary == "ILLEGAL REQUEST asc 0x24/0x00 (Invalid field in cdb) info 4294967296")
        #expect(s.value("virtio_scsi.sense.sks.cd") == .bool(false))
        #expect(s.value("virtio_scsi.sense.sks.field_pointer") == .uint(12))
        let descriptors = s.fields[0].all(named: "virtio_scsi.sense.descriptor")
        #expect(descriptors.map { $0.display ?? "" } == ["Information", "Sense key specific", "Field replaceable unit",
                                                         "Block commands", "Command-specific information",
                                                         "ATA status return", "unknown(0x80)"])
        let ataGroup = descriptors[5]
        #expect(ataGroup.first(named: "virtio_scsi.sense.descriptor.lba") == Field(SenseData.Fields.ataLBA, .uint(0x30_2010)))
        #expect(ataGroup.first(named: "virtio_scsi.sense.descriptor.count")?.value == .uint(1))
        #expect(ataGroup.first(named: "virtio_scsi.sense.descriptor.status")?.value == .uint(0x51))
        #expect(ataGroup.first(named: "virtio_scsi.sense.descriptor.extend")?.value == .bool(true))
        #expect(descriptors[6].first(named: "virtio_scsi.sense.descriptor.data")?.value == .bytes([0xaa, 0xbb]))
        let deferred = try SenseData(decoding: SenseData.descriptorFormat(key: 1, asc: 0x5d, ascq: 0, deferred: true))
        #expect(deferred.isDeferred && deferred.responseCode == 0x73)
        #expect(deferred.summary == "deferred RECOVERED ERROR asc 0x5d/0x00 (Failure prediction threshold exceeded)")
    }

    @Test func descriptorTooShortForItsTypeIsShownRaw() throws {
        let s = try SenseData(decoding: SenseData.descriptorFormat(key: 3, asc: 0x11, ascq: 0, descriptors: [[0x00, 0x02, 0x80, 0]]))
        #expect(s.information == nil && !s.isTruncated)
        #expect(s.value("virtio_scsi.sense.descriptor.data") == .bytes([0x80, 0]))
    }

    @Test func vendorSpecificIsRaw() throws {
        let s = try SenseData(decoding: [0x7f, 1, 2, 3])
        #expect(s.isVendorSpecific)
        #expect(s.summary == "vendor specific sense (4 bytes)")
        #expect(s.value("virtio_scsi.sense.vendor_bytes") == .bytes([1, 2, 3]))
        #expect(s.value("virtio_scsi.sense.response_code") == .code(0x7f, name: "vendor specific"))
    }

    @Test func malformedResponseCode() {
        for code: UInt8 in [0x00, 0x6f, 0x74, 0x7e, 0x80 | 0x10] {
            let error = decodeError { () throws(DecodeError) in try SenseData(decoding: [code] + Array(repeating: 0, count: 17), baseOffset: 12) }
            #expect(error?.isMalformed == true && error?.field == "virtio_scsi.sense.response_code" && error?.offset == 12)
        }
    }

    @Test func fixedTruncationSweep() throws {
        let full = SenseData.fixed(key: 5, asc: 0x20, ascq: 0, information: 1, senseKeySpecific: 0x40_0000)
        let header = ["response_code", "key", "key", "information", "information", "information", "information", "additional_length"]
        let body = ["command_specific", "command_specific", "command_specific", "command_specific", "asc", "ascq", "fru", "sks", "sks", "sks"]
        for length in 0..<full.count {
            let prefix = Array(full[0..<length])
            if length < 8 {
                let error = decodeError { () throws(DecodeError) in try SenseData(decoding: prefix) }
                #expect(error?.isTruncated == true && error?.field == "virtio_scsi.sense." + header[length], "length \(length)")
            } else {
                let s = try SenseData(decoding: prefix)
                #expect(s.truncatedAt == "virtio_scsi.sense." + body[length - 8], "length \(length)")
                #expect(s.key == 5 && s.information == 1)
                #expect(s.summary.hasSuffix(" [truncated]"))
                #expect(s.value("virtio_scsi.sense.truncated") == .string("virtio_scsi.sense." + body[length - 8]))
            }
        }
        #expect(try SenseData(decoding: full).truncatedAt == nil)
        let offset = decodeError { () throws(DecodeError) in try SenseData(decoding: Array(full[0..<5]), baseOffset: 12) }
        #expect(offset == .truncated("virtio_scsi.sense.information", at: 15, needed: 4, available: 2))
        let longer = try SenseData(decoding: Array(([0x70, 0, 0x05, 0, 0, 0, 0, 12] + Array(repeating: 0, count: 12)).dropLast()))
        #expect(longer.truncatedAt == "virtio_scsi.sense.additional_bytes")
    }

    @Test func descriptorTruncationSweep() throws {
        let full = SenseData.descriptorFormat(key: 4, asc: 0x44, ascq: 0, information: 77,
                                              descriptors: [[0x03, 0x02, 0, 9]])
        #expect(full.count == 8 + 12 + 4)
        let header = ["response_code", "key", "asc", "ascq", "sdat_ovfl", "additional_length", "additional_length", "additional_length"]
        for length in 0..<full.count {
            let prefix = Array(full[0..<length])
            if length < 8 {
                let error = decodeError { () throws(DecodeError) in try SenseData(decoding: prefix) }
                #expect(error?.isTruncated == true && error?.field == "virtio_scsi.sense." + header[length], "length \(length)")
                continue
            }
            let s = try SenseData(decoding: prefix)
            let expected: String
            switch length {
            case 8, 20: expected = "descriptor.type"
            case 9, 21: expected = "descriptor.length"
            default: expected = "descriptor"
            }
            #expect(s.truncatedAt == "virtio_scsi.sense." + expected, "length \(length)")
            #expect(s.key == 4 && s.asc == 0x44)
            #expect(s.information == (length >= 20 ? 77 : nil))
        }
        let whole = try SenseData(decoding: full)
        #expect(!whole.isTruncated && whole.information == 77 && whole.fieldReplaceableUnit == 9)
        // A descriptor running past the announced length.
        let overrun = try SenseData(decoding: [0x72, 5, 0x24, 0, 0, 0, 0, 4, 0x03, 0x06, 0, 1, 0, 0])
        #expect(overrun.truncatedAt == "virtio_scsi.sense.descriptor")
    }
}
