import VQWire

// CDBs a simulated driver sends (SBC-3 5, SPC-4 6): each builder returns the command's bytes,
// unpadded; the virtio-scsi request pads them to cdb_size. `read`/`write` choose the CDB size
// as Linux's sd does: 10 bytes while the LBA fits 32 bits and the count 16, else 16 bytes.

extension SCSICommand {
    public static func read(lba: UInt64, blocks: UInt32, fua: Bool = false) -> [UInt8] {
        fitsTen(lba: lba, blocks: blocks)
            ? read10(lba: UInt32(lba), blocks: UInt16(blocks), fua: fua)
            : read16(lba: lba, blocks: blocks, fua: fua)
    }

    public static func write(lba: UInt64, blocks: UInt32, fua: Bool = false) -> [UInt8] {
        fitsTen(lba: lba, blocks: blocks)
            ? write10(lba: UInt32(lba), blocks: UInt16(blocks), fua: fua)
            : write16(lba: lba, blocks: blocks, fua: fua)
    }

    private static func fitsTen(lba: UInt64, blocks: UInt32) -> Bool {
        lba <= UInt64(UInt32.max) && blocks <= UInt32(UInt16.max)
    }

    /// READ(6): a 21-bit LBA and 1...256 blocks (256 is sent as 0).
    public static func read6(lba: UInt32, blocks: UInt16) -> [UInt8] { rw6(0x08, lba: lba, blocks: blocks) }
    public static func write6(lba: UInt32, blocks: UInt16) -> [UInt8] { rw6(0x0a, lba: lba, blocks: blocks) }

    private static func rw6(_ opcode: UInt8, lba: UInt32, blocks: UInt16) -> [UInt8] {
        precondition(lba <= 0x1f_ffff && (1...256).contains(blocks), "READ/WRITE(6) takes a 21-bit LBA and 1...256 blocks")
        var w = ByteWriter(capacity: 6)
        w.writeU8(opcode)
        w.writeBE24(lba)
        w.writeU8(UInt8(truncatingIfNeeded: blocks))
        w.writeU8(0)
        return w.bytes
    }

    public static func read10(lba: UInt32, blocks: UInt16, fua: Bool = false, dpo: Bool = false) -> [UInt8] {
        rw10(0x28, flags: bits(fua: fua, dpo: dpo), lba: lba, blocks: blocks)
    }

    public static func write10(lba: UInt32, blocks: UInt16, fua: Bool = false, dpo: Bool = false) -> [UInt8] {
        rw10(0x2a, flags: bits(fua: fua, dpo: dpo), lba: lba, blocks: blocks)
    }

    /// VERIFY(10); `bytchk` 0 verifies the medium only, 1 compares data-out.
    public static func verify10(lba: UInt32, blocks: UInt16, bytchk: UInt8 = 0) -> [UInt8] {
        rw10(0x2f, flags: (bytchk & 3) << 1, lba: lba, blocks: blocks)
    }

    public static func read16(lba: UInt64, blocks: UInt32, fua: Bool = false, dpo: Bool = false) -> [UInt8] {
        rw16(0x88, flags: bits(fua: fua, dpo: dpo), lba: lba, blocks: blocks)
    }

    public static func write16(lba: UInt64, blocks: UInt32, fua: Bool = false, dpo: Bool = false) -> [UInt8] {
        rw16(0x8a, flags: bits(fua: fua, dpo: dpo), lba: lba, blocks: blocks)
    }

    public static func verify16(lba: UInt64, blocks: UInt32, bytchk: UInt8 = 0) -> [UInt8] {
        rw16(0x8f, flags: (bytchk & 3) << 1, lba: lba, blocks: blocks)
    }

    private static func bits(fua: Bool, dpo: Bool) -> UInt8 { (fua ? 0x08 : 0) | (dpo ? 0x10 : 0) }

    private static func rw10(_ opcode: UInt8, flags: UInt8, lba: UInt32, blocks: UInt16) -> [UInt8] {
        var w = ByteWriter(capacity: 10)
        w.writeU8(opcode); w.writeU8(flags); w.writeBE32(lba); w.writeU8(0); w.writeBE16(blocks); w.writeU8(0)
        return w.bytes
    }

    private static func rw16(_ opcode: UInt8, flags: UInt8, lba: UInt64, blocks: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: 16)
        w.writeU8(opcode); w.writeU8(flags); w.writeBE64(lba); w.writeBE32(blocks); w.writeU8(0); w.writeU8(0)
        return w.bytes
    }

    public static func testUnitReady() -> [UInt8] { [0x00, 0, 0, 0, 0, 0] }

    public static func requestSense(descriptorFormat: Bool = false, alloc: UInt8 = 96) -> [UInt8] {
        [0x03, descriptorFormat ? 1 : 0, 0, 0, alloc, 0]
    }

    public static func inquiry(evpd: Bool = false, page: UInt8 = 0, alloc: UInt16) -> [UInt8] {
        var w = ByteWriter(capacity: 6)
        w.writeU8(0x12); w.writeU8(evpd ? 1 : 0); w.writeU8(page); w.writeBE16(alloc); w.writeU8(0)
        return w.bytes
    }

    public static func reportLuns(select: UInt8 = 0, alloc: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: 12)
        w.writeU8(0xa0); w.writeU8(0); w.writeU8(select); w.writeZeros(3); w.writeBE32(alloc); w.writeU8(0); w.writeU8(0)
        return w.bytes
    }

    public static func readCapacity10() -> [UInt8] { [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0] }

    /// READ CAPACITY(16), which is SERVICE ACTION IN(16) service action 0x10.
    public static func readCapacity16(alloc: UInt32 = 32) -> [UInt8] {
        var w = ByteWriter(capacity: 16)
        w.writeU8(0x9e); w.writeU8(0x10); w.writeZeros(8); w.writeBE32(alloc); w.writeU8(0); w.writeU8(0)
        return w.bytes
    }

    public static func synchronizeCache10(lba: UInt32 = 0, blocks: UInt16 = 0, immed: Bool = false) -> [UInt8] {
        rw10(0x35, flags: immed ? 0x02 : 0, lba: lba, blocks: blocks)
    }

    public static func synchronizeCache16(lba: UInt64 = 0, blocks: UInt32 = 0, immed: Bool = false) -> [UInt8] {
        rw16(0x91, flags: immed ? 0x02 : 0, lba: lba, blocks: blocks)
    }

    /// UNMAP; the parameter list (8-byte header + 16 bytes per range) goes in data-out.
    public static func unmap(paramLen: UInt16, anchor: Bool = false) -> [UInt8] {
        var w = ByteWriter(capacity: 10)
        w.writeU8(0x42); w.writeU8(anchor ? 1 : 0); w.writeZeros(5); w.writeBE16(paramLen); w.writeU8(0)
        return w.bytes
    }

    /// MODE SENSE(6); `pc` 0 current, 1 changeable, 2 default, 3 saved values.
    public static func modeSense6(page: UInt8, subpage: UInt8 = 0, pc: UInt8 = 0, dbd: Bool = false, alloc: UInt8) -> [UInt8] {
        [0x1a, dbd ? 0x08 : 0, (pc & 3) << 6 | page & 0x3f, subpage, alloc, 0]
    }

    public static func modeSense10(page: UInt8, subpage: UInt8 = 0, pc: UInt8 = 0, dbd: Bool = false,
                                   llbaa: Bool = false, alloc: UInt16) -> [UInt8] {
        var w = ByteWriter(capacity: 10)
        w.writeU8(0x5a); w.writeU8((dbd ? 0x08 : 0) | (llbaa ? 0x10 : 0)); w.writeU8((pc & 3) << 6 | page & 0x3f)
        w.writeU8(subpage); w.writeZeros(3); w.writeBE16(alloc); w.writeU8(0)
        return w.bytes
    }

    /// START STOP UNIT; a non-zero `powerCondition` (SBC-3 table 96) overrides start/loej.
    public static func startStopUnit(start: Bool, loej: Bool = false, immed: Bool = false, powerCondition: UInt8 = 0) -> [UInt8] {
        [0x1b, immed ? 1 : 0, 0, 0, (powerCondition & 0x0f) << 4 | (loej ? 0x02 : 0) | (start ? 0x01 : 0), 0]
    }
}
