import VQWire

// Data-in a simulated device returns (layouts in SCSIDataIn.swift). The device cuts each to
// the command's allocation length; these builders return the whole thing.

/// One designator of the device identification VPD page (SPC-4 7.8.6).
public struct VPDDesignator: Sendable, Equatable {
    public var codeSet: UInt8
    public var association: UInt8
    public var type: UInt8
    public var identifier: [UInt8]

    public init(codeSet: UInt8, association: UInt8, type: UInt8, identifier: [UInt8]) {
        self.codeSet = codeSet
        self.association = association
        self.type = type
        self.identifier = identifier
    }

    /// T10 vendor ID based: 8-byte vendor (space padded) and a vendor-specific string.
    public static func t10(vendor: String, id: String) -> VPDDesignator {
        VPDDesignator(codeSet: 2, association: 0, type: 1,
                      identifier: SCSIDataIn.padded(vendor, 8) + SCSIDataIn.padded(id, id.utf8.count))
    }

    /// NAA IEEE registered (type 5 in the top nibble of `value`), 8 bytes.
    public static func naa(_ value: UInt64) -> VPDDesignator {
        var w = ByteWriter(capacity: 8)
        w.writeBE64(value)
        return VPDDesignator(codeSet: 1, association: 0, type: 3, identifier: w.bytes)
    }

    public static func relativeTargetPort(_ port: UInt16) -> VPDDesignator {
        var w = ByteWriter(capacity: 4)
        w.writeBE16(0); w.writeBE16(port)
        return VPDDesignator(codeSet: 1, association: 1, type: 4, identifier: w.bytes)
    }
}

extension SCSIDataIn {
    /// Standard INQUIRY data, 36 bytes (additional length 31), SPC-4 version, HiSup set,
    /// response data format 2.
    public static func inquiryStandard(vendor: String, product: String, revision: String,
                                       deviceType: UInt8 = 0, removable: Bool = false,
                                       version: UInt8 = 6, commandQueuing: Bool = true) -> [UInt8] {
        var w = ByteWriter(capacity: 36)
        w.writeU8(deviceType & 0x1f)
        w.writeU8(removable ? 0x80 : 0)
        w.writeU8(version)
        w.writeU8(0x12)
        w.writeU8(31)
        w.writeU8(0)
        w.writeU8(0)
        w.writeU8(commandQueuing ? 0x02 : 0)
        w.writeBytes(padded(vendor, 8))
        w.writeBytes(padded(product, 16))
        w.writeBytes(padded(revision, 4))
        return w.bytes
    }

    /// `text` as printable ASCII (other characters become `?`), space padded or cut to `width`.
    static func padded(_ text: String, _ width: Int) -> [UInt8] {
        let ascii = text.utf8.prefix(width).map { (0x20...0x7e).contains($0) ? $0 : 0x3f }
        return ascii + Array(repeating: 0x20, count: width - ascii.count)
    }

    private static func vpdPage(_ page: UInt8, deviceType: UInt8, _ body: [UInt8]) -> [UInt8] {
        precondition(body.count <= 0xffff, "VPD page longer than 65535 bytes")
        var w = ByteWriter(capacity: 4 + body.count)
        w.writeU8(deviceType & 0x1f)
        w.writeU8(page)
        w.writeBE16(UInt16(body.count))
        w.writeBytes(body)
        return w.bytes
    }

    public static func vpdSupportedPages(_ pages: [UInt8], deviceType: UInt8 = 0) -> [UInt8] {
        vpdPage(0x00, deviceType: deviceType, pages)
    }

    public static func vpdUnitSerialNumber(_ serial: String, deviceType: UInt8 = 0) -> [UInt8] {
        vpdPage(0x80, deviceType: deviceType, padded(serial, serial.utf8.count))
    }

    public static func vpdDeviceIdentification(_ designators: [VPDDesignator], deviceType: UInt8 = 0) -> [UInt8] {
        var w = ByteWriter()
        for d in designators {
            precondition(d.identifier.count <= 255, "designator longer than 255 bytes")
            w.writeU8(d.codeSet & 0x0f)
            w.writeU8((d.association & 3) << 4 | d.type & 0x0f)
            w.writeU8(0)
            w.writeU8(UInt8(d.identifier.count))
            w.writeBytes(d.identifier)
        }
        return vpdPage(0x83, deviceType: deviceType, w.bytes)
    }

    /// Block limits (SBC-3 6.6.4), page length 0x3c. Lengths in logical blocks.
    public static func vpdBlockLimits(maxTransferLength: UInt32, optimalTransferLength: UInt32 = 0,
                                      optimalGranularity: UInt16 = 0, maxUnmapLBACount: UInt32 = 0,
                                      maxUnmapDescriptorCount: UInt32 = 0, optimalUnmapGranularity: UInt32 = 0,
                                      maxWriteSameLength: UInt64 = 0, deviceType: UInt8 = 0) -> [UInt8] {
        var w = ByteWriter(capacity: 60)
        w.writeU8(0)
        w.writeU8(0)
        w.writeBE16(optimalGranularity)
        w.writeBE32(maxTransferLength)
        w.writeBE32(optimalTransferLength)
        w.writeBE32(0)
        w.writeBE32(maxUnmapLBACount)
        w.writeBE32(maxUnmapDescriptorCount)
        w.writeBE32(optimalUnmapGranularity)
        w.writeBE32(0)
        w.writeBE64(maxWriteSameLength)
        w.writeZeros(60 - w.count)
        return vpdPage(0xb0, deviceType: deviceType, w.bytes)
    }

    /// Block device characteristics (SBC-3 6.6.3), page length 0x3c. `rotationRate` 1 is a
    /// non-rotating medium; `formFactor` 0 not reported, 2 3.5", 3 2.5".
    public static func vpdBlockDeviceCharacteristics(rotationRate: UInt16, formFactor: UInt8 = 0, deviceType: UInt8 = 0) -> [UInt8] {
        var w = ByteWriter(capacity: 60)
        w.writeBE16(rotationRate)
        w.writeU8(0)
        w.writeU8(formFactor & 0x0f)
        w.writeZeros(56)
        return vpdPage(0xb1, deviceType: deviceType, w.bytes)
    }

    public static func readCapacity10(lastLBA: UInt32, blockLength: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: 8)
        w.writeBE32(lastLBA)
        w.writeBE32(blockLength)
        return w.bytes
    }

    /// READ CAPACITY(16) parameter data, 32 bytes.
    public static func readCapacity16(lastLBA: UInt64, blockLength: UInt32, lbppbe: UInt8 = 0,
                                      lbpme: Bool = false, lbprz: Bool = false, lowestAlignedLBA: UInt16 = 0) -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        w.writeBE64(lastLBA)
        w.writeBE32(blockLength)
        w.writeU8(0)
        w.writeU8(lbppbe & 0x0f)
        w.writeBE16((lbpme ? 0x8000 : 0) | (lbprz ? 0x4000 : 0) | lowestAlignedLBA & 0x3fff)
        w.writeZeros(16)
        return w.bytes
    }

    /// REPORT LUNS parameter data: LUNs below 256 in peripheral device addressing, others
    /// (up to 16383) in flat space addressing, as QEMU reports them.
    public static func reportLuns(_ luns: [UInt16]) -> [UInt8] {
        var w = ByteWriter(capacity: 8 + 8 * luns.count)
        w.writeBE32(UInt32(luns.count * 8))
        w.writeZeros(4)
        for lun in luns {
            precondition(lun <= 0x3fff, "flat space LUNs have 14 bits")
            w.writeU8(lun < 256 ? 0 : 0x40 | UInt8(lun >> 8))
            w.writeU8(UInt8(truncatingIfNeeded: lun))
            w.writeZeros(6)
        }
        return w.bytes
    }
}
