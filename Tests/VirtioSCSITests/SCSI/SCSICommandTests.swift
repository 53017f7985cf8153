import Testing
import VQWire
@testable import VirtioSCSI

extension SCSICommand {
    func value(_ name: String) -> FieldValue? { fields.first(named: name)?.value }
}

@Suite struct SCSICommandTests {
    // MARK: decoded values

    @Test func read10() throws {
        let cdb: [UInt8] = [0x28, 0x18, 0, 0, 0x08, 0, 0x05, 0, 8, 0] + Array(repeating: 0xee, count: 22)
        let c = try SCSICommand(decoding: cdb)
        #expect(c.name == "Read(10)")
        #expect(c.cdbLength == 10)
        #expect(c.lba == 2048)
        #expect(c.transferLength == 8)
        #expect(c.fua)
        #expect(c.dataDirection == .fromDevice)
        #expect(c.summary == "Read(10) lba 2048 len 8 dpo fua")
        #expect(c.value("virtio_scsi.cdb.group_number") == .uint(5))
        #expect(c.value("virtio_scsi.cdb.dpo") == .bool(true))
        #expect(c.value("virtio_scsi.cdb.opcode") == .code(0x28, name: "Read(10)"))
        #expect(c.value("virtio_scsi.cdb.control") == .uint(0))
        #expect(c.fields.count == 1 && c.fields[0].display == c.summary)
    }

    @Test func readWrite6ZeroMeans256() throws {
        let c = try SCSICommand(decoding: [0x0a, 0xff, 0x12, 0x34, 0, 0])
        #expect(c.name == "Write(6)")
        #expect(c.lba == 0x1f_1234)
        #expect(c.transferLength == 256)
        #expect(c.dataDirection == .toDevice)
        #expect(c.summary == "Write(6) lba 2036276 len 256")
        #expect(c.fields.first(named: "virtio_scsi.cdb.transfer_length")?.display == "256 blocks (0 in the CDB)")
    }

    @Test func write16AndVerify() throws {
        let w = try SCSICommand(decoding: [0x8a, 0x08, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 128, 0, 0])
        #expect(w.summary == "Write(16) lba 4294967296 len 128 fua")
        #expect(w.dataDirection == .toDevice)
        let v = try SCSICommand(decoding: [0x2f, 0x02, 0, 0, 0, 9, 0, 0, 1, 0])
        #expect(v.summary == "Verify(10) lba 9 len 1 bytchk 1")
        #expect(v.value("virtio_scsi.cdb.bytchk") == .code(1, name: "compare data-out"))
        #expect(v.dataDirection == .toDevice)
        #expect(try SCSICommand(decoding: SCSICommand.verify16(lba: 1, blocks: 2)).dataDirection == SCSIDataDirection.none)
        let v12 = try SCSICommand(decoding: [0xaf, 0, 0, 0, 0, 7, 0, 0, 0, 3, 0x01, 0])
        #expect(v12.summary == "Verify(12) lba 7 len 3")
        #expect(v12.value("virtio_scsi.cdb.group_number") == .uint(1))
    }

    @Test func writeSameAndUnmap() throws {
        let ws = try SCSICommand(decoding: [0x93, 0x09, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 0])
        #expect(ws.summary == "Write same(16) lba 4096 len 8192 unmap ndob")
        #expect(ws.dataDirection == SCSIDataDirection.none)
        #expect(ws.value("virtio_scsi.cdb.anchor") == .bool(false))
        let ws10 = try SCSICommand(decoding: [0x41, 0x08, 0, 0, 0, 1, 0, 0, 1, 0])
        #expect(ws10.summary == "Write same(10) lba 1 len 1 anchor")
        #expect(ws10.dataDirection == .toDevice)
        let u = try SCSICommand(decoding: SCSICommand.unmap(paramLen: 24, anchor: true))
        #expect(u.summary == "Unmap anchor paramlen 24")
        #expect(u.parameterListLength == 24)
        #expect(u.dataDirection == .toDevice)
    }

    @Test func variableLength32() throws {
        var cdb: [UInt8] = [0x7f, 0, 0, 0, 0, 0, 0x02, 0x18, 0x00, 0x09, 0x08, 0]
        cdb += [0, 0, 0, 0, 0, 0, 0x10, 0x00]  // lba
        cdb += [0, 0, 0, 1, 0, 2, 0xff, 0xff]  // eilbrt, elbat, lbatm
        cdb += [0, 0, 0, 16]
        let c = try SCSICommand(decoding: cdb + [0xaa, 0xbb])
        #expect(c.name == "Read(32)")
        #expect(c.serviceAction == 9)
        #expect(c.cdbLength == 32)
        #expect(c.summary == "Read(32) lba 4096 len 16 fua")
        #expect(c.value("virtio_scsi.cdb.eilbrt") == .uint(1))
        #expect(c.value("virtio_scsi.cdb.elbat") == .uint(2))
        #expect(c.value("virtio_scsi.cdb.lbatm") == .uint(0xffff))
        #expect(c.value("virtio_scsi.cdb.group_number") == .uint(2))
        #expect(c.value("virtio_scsi.cdb.opcode") == .code(0x7f, name: "Variable length"))
        #expect(c.value("virtio_scsi.cdb.service_action") == .code(9, name: "Read(32)"))
        var ws = cdb
        ws[9] = 0x0d; ws[10] = 0x09
        let w = try SCSICommand(decoding: ws)
        #expect(w.summary == "Write same(32) lba 4096 len 16 unmap ndob")
        #expect(w.dataDirection == SCSIDataDirection.none)
        // Another service action: only the announced length must be there.
        let other = try SCSICommand(decoding: [0x7f, 0, 0, 0, 0, 0, 0, 0x02, 0x18, 0x00])
        #expect(other.name == "Variable length (unknown service action 0x1800)")
        #expect(other.cdbLength == 10)
    }

    @Test func inquiryAndModePages() throws {
        let i = try SCSICommand(decoding: SCSICommand.inquiry(evpd: true, page: 0x83, alloc: 255))
        #expect(i.summary == "Inquiry evpd page 0x83 alloc 255")
        #expect(i.vpdPage == 0x83)
        #expect(i.value("virtio_scsi.cdb.page_code") == .code(0x83, name: "Device identification"))
        let standard = try SCSICommand(decoding: SCSICommand.inquiry(alloc: 36))
        #expect(standard.summary == "Inquiry alloc 36")
        #expect(standard.vpdPage == nil)
        #expect(standard.value("virtio_scsi.cdb.page_code") == .code(0, name: "standard INQUIRY data"))
        let ms = try SCSICommand(decoding: SCSICommand.modeSense10(page: 0x3f, subpage: 0xff, pc: 2, dbd: true, alloc: 4096))
        #expect(ms.summary == "Mode sense(10) dbd page 0x3f subpage 0xff pc 2 alloc 4096")
        #expect(ms.value("virtio_scsi.cdb.pc") == .code(2, name: "default values"))
        #expect(ms.value("virtio_scsi.cdb.page_code") == .code(0x3f, name: "All pages"))
        #expect(ms.value("virtio_scsi.cdb.llbaa") == .bool(false))
        let ms6 = try SCSICommand(decoding: SCSICommand.modeSense6(page: 0x08, alloc: 192))
        #expect(ms6.summary == "Mode sense(6) page 0x08 pc 0 alloc 192")
        let sel = try SCSICommand(decoding: [0x55, 0x11, 0, 0, 0, 0, 0, 0, 28, 0])
        #expect(sel.summary == "Mode select(10) pf sp paramlen 28")
        #expect(sel.dataDirection == .toDevice)
        let sel6 = try SCSICommand(decoding: [0x15, 0x10, 0, 0, 12, 0])
        #expect(sel6.summary == "Mode select(6) pf paramlen 12")
    }

    @Test func capacityLunsSenseStartStop() throws {
        let rc = try SCSICommand(decoding: SCSICommand.readCapacity16())
        #expect(rc.name == "Read capacity(16)")
        #expect(rc.serviceAction == 0x10)
        #expect(rc.summary == "Read capacity(16) alloc 32")
        #expect(rc.value("virtio_scsi.cdb.opcode") == .code(0x9e, name: "Service action in(16)"))
        let rc10 = try SCSICommand(decoding: SCSICommand.readCapacity10())
        #expect(rc10.summary == "Read capacity(10)")
        #expect(rc10.allocationLength == 8)
        #expect(rc10.lba == nil)
        let luns = try SCSICommand(decoding: SCSICommand.reportLuns(select: 2, alloc: 16384))
        #expect(luns.summary == "Report luns select 0x02 alloc 16384")
        #expect(luns.value("virtio_scsi.cdb.select_report") == .code(2, name: "all logical units"))
        let rs = try SCSICommand(decoding: SCSICommand.requestSense(descriptorFormat: true, alloc: 252))
        #expect(rs.summary == "Request Sense desc alloc 252")
        let ssu = try SCSICommand(decoding: SCSICommand.startStopUnit(start: false, loej: true, immed: true))
        #expect(ssu.summary == "Start stop unit stop immed loej")
        #expect(ssu.dataDirection == SCSIDataDirection.none)
        let idle = try SCSICommand(decoding: SCSICommand.startStopUnit(start: false, powerCondition: 2))
        #expect(idle.summary == "Start stop unit power IDLE")
        #expect(idle.value("virtio_scsi.cdb.power_condition") == .code(2, name: "IDLE"))
        let tur = try SCSICommand(decoding: SCSICommand.testUnitReady())
        #expect(tur.summary == "Test Unit Ready")
        #expect(tur.dataDirection == SCSIDataDirection.none)
        let pamr = try SCSICommand(decoding: [0x1e, 0, 0, 0, 1, 0])
        #expect(pamr.summary == "Prevent allow medium removal prevent")
        let lbaStatus = try SCSICommand(decoding: [0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0x10, 0, 2, 0])
        #expect(lbaStatus.summary == "Get LBA status(16) lba 64 alloc 4096")
        #expect(lbaStatus.value("virtio_scsi.cdb.report_type") == .code(2, name: "mapped LBAs"))
    }

    @Test func persistentReservationsAndSupportedOpcodes() throws {
        let prin = try SCSICommand(decoding: [0x5e, 0x01, 0, 0, 0, 0, 0, 0x20, 0, 0])
        #expect(prin.summary == "Persistent reserve in, read reservation alloc 8192")
        #expect(prin.value("virtio_scsi.cdb.service_action") == .code(1, name: "Persistent reserve in, read reservation"))
        let prout = try SCSICommand(decoding: [0x5f, 0x01, 0x03, 0, 0, 0, 0, 0, 24, 0])
        #expect(prout.summary == "Persistent reserve out, reserve type \"Exclusive Access\" paramlen 24")
        #expect(prout.value("virtio_scsi.cdb.scope") == .code(0, name: "LU_SCOPE"))
        #expect(prout.value("virtio_scsi.cdb.type") == .code(3, name: "Exclusive Access"))
        #expect(prout.dataDirection == .toDevice)
        let rsoc = try SCSICommand(decoding: [0xa3, 0x0c, 0x82, 0x9e, 0, 0x10, 0, 0, 2, 0, 0, 0])
        #expect(rsoc.summary == "Report supported operation codes rctd options 2 opcode 0x9e sa 0x10 alloc 512")
        #expect(rsoc.value("virtio_scsi.cdb.requested_opcode") == .code(0x9e, name: "Read capacity(16)"))
        let tpg = try SCSICommand(decoding: [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])
        #expect(tpg.summary == "Report target port groups alloc 256")
    }

    @Test func ataPassThrough() throws {
        // IDENTIFY DEVICE through ATA PASS-THROUGH(16): PIO data-in, 1 block from the device.
        let c = try SCSICommand(decoding: [0x85, 0x08, 0x0e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0xec, 0])
        #expect(c.summary == "ATA pass-through(16) IDENTIFY DEVICE (0xec) protocol PIO data-in")
        #expect(c.dataDirection == .fromDevice)
        #expect(c.value("virtio_scsi.cdb.ata.protocol") == .code(4, name: "PIO data-in"))
        #expect(c.value("virtio_scsi.cdb.ata.t_length") == .code(2, name: "in COUNT"))
        #expect(c.value("virtio_scsi.cdb.ata.count") == .uint(1))
        #expect(c.value("virtio_scsi.cdb.ata.command") == .code(0xec, name: "IDENTIFY DEVICE"))
        // 48-bit LBA of READ DMA EXT, extend set.
        let ext = try SCSICommand(decoding: [0x85, 0x0d, 0x0e, 0, 0, 0, 8, 0x04, 0x01, 0x05, 0x02, 0x06, 0x03, 0x40, 0x25, 0])
        #expect(ext.value("virtio_scsi.cdb.ata.lba") == .uint(0x0605_0403_0201))
        #expect(ext.value("virtio_scsi.cdb.ata.extend") == .bool(true))
        let flush = try SCSICommand(decoding: [0xa1, 0x06, 0x20, 0, 0, 0, 0, 0, 0, 0xe7, 0, 0])
        #expect(flush.dataDirection == SCSIDataDirection.none)
        #expect(flush.value("virtio_scsi.cdb.ata.protocol") == .code(3, name: "non-data"))
        #expect(flush.value("virtio_scsi.cdb.ata.ck_cond") == .bool(true))
    }

    @Test func otherAndUnknownOpcodes() throws {
        let logSense = try SCSICommand(decoding: [0x4d, 0, 0x40, 0, 0, 0, 0, 0, 0xff, 0])
        #expect(logSense.summary == "Log sense")
        #expect(logSense.dataDirection == .fromDevice)
        #expect(logSense.cdbLength == 10)
        let unknown = try SCSICommand(decoding: [0x02, 0, 0, 0, 0, 0])
        #expect(unknown.name == "unknown(0x02)")
        #expect(unknown.dataDirection == .unknown)
        let vendor = try SCSICommand(decoding: [0xc5, 1, 2])
        #expect(vendor.cdbLength == nil)
        #expect(vendor.name == "Vendor specific [0xc5]")
        #expect(vendor.value("virtio_scsi.cdb.bytes") == .bytes([1, 2]))
        let sanitize = try SCSICommand(decoding: [0x48, 0x03, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(sanitize.name == "Sanitize, cryptographic erase")
        let unknownSA = try SCSICommand(decoding: [0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(unknownSA.name == "Service action in(16) (unknown service action 0x1f)")
    }

    // MARK: builders round trip

    @Test func readWriteBuildersChooseLikeLinux() throws {
        let cases: [(UInt64, UInt32, UInt8)] = [
            (0, 1, 0x28), (0xffff_ffff, 0xffff, 0x28), (0x1_0000_0000, 1, 0x88), (5, 0x1_0000, 0x88),
        ]
        for (lba, blocks, opcode) in cases {
            for fua in [false, true] {
                let r = try SCSICommand(decoding: SCSICommand.read(lba: lba, blocks: blocks, fua: fua))
                #expect(r.opcode == opcode && r.lba == lba && r.transferLength == blocks && r.fua == fua)
                let w = try SCSICommand(decoding: SCSICommand.write(lba: lba, blocks: blocks, fua: fua))
                #expect(w.opcode == opcode + 2 && w.lba == lba && w.transferLength == blocks && w.fua == fua)
                #expect(w.dataDirection == .toDevice)
            }
        }
    }

    @Test func everyBuilderRoundTrips() throws {
        let r6 = try SCSICommand(decoding: SCSICommand.read6(lba: 0x1f_ffff, blocks: 256))
        #expect(r6.lba == 0x1f_ffff && r6.transferLength == 256 && r6.bytes[4] == 0)
        let w6 = try SCSICommand(decoding: SCSICommand.write6(lba: 7, blocks: 3))
        #expect(w6.name == "Write(6)" && w6.lba == 7 && w6.transferLength == 3)
        let r10 = try SCSICommand(decoding: SCSICommand.read10(lba: 1, blocks: 2, dpo: true))
        #expect(r10.summary == "Read(10) lba 1 len 2 dpo")
        let w10 = try SCSICommand(decoding: SCSICommand.write10(lba: 3, blocks: 4, fua: true))
        #expect(w10.summary == "Write(10) lba 3 len 4 fua")
        let r16 = try SCSICommand(decoding: SCSICommand.read16(lba: 1 << 40, blocks: 1 << 20))
        #expect(r16.lba == 1 << 40 && r16.transferLength == 1 << 20)
        let w16 = try SCSICommand(decoding: SCSICommand.write16(lba: 9, blocks: 1, dpo: true))
        #expect(w16.summary == "Write(16) lba 9 len 1 dpo")
        let v10 = try SCSICommand(decoding: SCSICommand.verify10(lba: 5, blocks: 6, bytchk: 1))
        #expect(v10.summary == "Verify(10) lba 5 len 6 bytchk 1")
        let v16 = try SCSICommand(decoding: SCSICommand.verify16(lba: 5, blocks: 6))
        #expect(v16.summary == "Verify(16) lba 5 len 6")
        let inq = try SCSICommand(decoding: SCSICommand.inquiry(evpd: true, page: 0xb0, alloc: 64))
        #expect(inq.vpdPage == 0xb0 && inq.allocationLength == 64)
        let luns = try SCSICommand(decoding: SCSICommand.reportLuns(alloc: 4096))
        #expect(luns.allocationLength == 4096)
        let rc16 = try SCSICommand(decoding: SCSICommand.readCapacity16(alloc: 12))
        #expect(rc16.allocationLength == 12)
        let sc10 = try SCSICommand(decoding: SCSICommand.synchronizeCache10(lba: 8, blocks: 9, immed: true))
        #expect(sc10.summary == "Synchronize cache(10) immed lba 8 len 9")
        let sc16 = try SCSICommand(decoding: SCSICommand.synchronizeCache16())
        #expect(sc16.summary == "Synchronize cache(16) lba 0 len 0")
        #expect(sc16.dataDirection == SCSIDataDirection.none)
        let u = try SCSICommand(decoding: SCSICommand.unmap(paramLen: 40))
        #expect(u.summary == "Unmap paramlen 40")
        let ms6 = try SCSICommand(decoding: SCSICommand.modeSense6(page: 0x1c, subpage: 1, pc: 3, dbd: true, alloc: 255))
        #expect(ms6.summary == "Mode sense(6) dbd page 0x1c subpage 0x01 pc 3 alloc 255")
        let ms10 = try SCSICommand(decoding: SCSICommand.modeSense10(page: 8, llbaa: true, alloc: 512))
        #expect(ms10.summary == "Mode sense(10) llbaa page 0x08 pc 0 alloc 512")
        let rs = try SCSICommand(decoding: SCSICommand.requestSense())
        #expect(rs.summary == "Request Sense alloc 96")
        let ssu = try SCSICommand(decoding: SCSICommand.startStopUnit(start: true))
        #expect(ssu.summary == "Start stop unit start")
        let tur = try SCSICommand(decoding: SCSICommand.testUnitReady())
        #expect(tur.bytes.count == 6 && tur.cdbLength == 6)
    }

    // MARK: truncation and malformed

    /// For each representative CDB, the field each byte belongs to (reserved bytes belong to
    /// the next field read): every prefix must fail naming that field.
    static let layouts: [(cdb: [UInt8], fieldAt: [String])] = {
        func n(_ s: String) -> String { "virtio_scsi.cdb." + s }
        let op = n("opcode"), ctl = n("control"), lba = n("lba"), tl = n("transfer_length"), alloc = n("allocation_length")
        let grp = n("group_number"), sa = n("service_action"), param = n("parameter_list_length")
        var read32: [UInt8] = [0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0, 0x0b] + Array(repeating: 0, count: 22)
        read32[31] = 1
        return [
            (SCSICommand.testUnitReady(), [op, ctl, ctl, ctl, ctl, ctl]),
            (SCSICommand.read6(lba: 1, blocks: 1), [op, lba, lba, lba, tl, ctl]),
            (SCSICommand.read10(lba: 1, blocks: 1), [op, n("rdprotect"), lba, lba, lba, lba, grp, tl, tl, ctl]),
            (SCSICommand.write16(lba: 1, blocks: 1), [op, n("wrprotect")] + Array(repeating: lba, count: 8)
                + Array(repeating: tl, count: 4) + [grp, ctl]),
            ([0xaa, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0], [op, n("wrprotect"), lba, lba, lba, lba, tl, tl, tl, tl, grp, ctl]),
            (SCSICommand.inquiry(alloc: 36), [op, n("evpd"), n("page_code"), alloc, alloc, ctl]),
            (SCSICommand.modeSense10(page: 8, alloc: 8), [op, n("dbd"), n("pc"), n("subpage_code"), alloc, alloc, alloc, alloc, alloc, ctl]),
            (SCSICommand.modeSense6(page: 8, alloc: 8), [op, n("dbd"), n("pc"), n("subpage_code"), alloc, ctl]),
            ([0x55, 0x10, 0, 0, 0, 0, 0, 0, 8, 0], [op, n("pf"), param, param, param, param, param, param, param, ctl]),
            (SCSICommand.readCapacity16(), [op, sa] + Array(repeating: lba, count: 8) + Array(repeating: alloc, count: 4) + [n("pmi"), ctl]),
            (SCSICommand.readCapacity10(), [op, lba, lba, lba, lba, lba, n("pmi"), n("pmi"), n("pmi"), ctl]),
            (SCSICommand.reportLuns(alloc: 16), [op, n("select_report"), n("select_report"), alloc, alloc, alloc, alloc, alloc, alloc, alloc, ctl, ctl]),
            (SCSICommand.unmap(paramLen: 24), [op, n("anchor"), grp, grp, grp, grp, grp, param, param, ctl]),
            (SCSICommand.synchronizeCache10(), [op, n("immed"), lba, lba, lba, lba, grp, tl, tl, ctl]),
            ([0x93, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0], [op, n("wrprotect")] + Array(repeating: lba, count: 8)
                + Array(repeating: tl, count: 4) + [grp, ctl]),
            (SCSICommand.requestSense(), [op, n("desc"), alloc, alloc, alloc, ctl]),
            (SCSICommand.startStopUnit(start: true), [op, n("immed"), n("power_condition_modifier"), n("power_condition_modifier"), n("power_condition"), ctl]),
            ([0x1e, 0, 0, 0, 1, 0], [op, n("prevent"), n("prevent"), n("prevent"), n("prevent"), ctl]),
            ([0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], [op, sa, n("scope"), param, param, param, param, param, param, ctl]),
            ([0x5e, 0, 0, 0, 0, 0, 0, 0, 24, 0], [op, sa, alloc, alloc, alloc, alloc, alloc, alloc, alloc, ctl]),
            ([0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0], [op, sa, n("rctd"), n("requested_opcode"), n("requested_service_action"),
                                                           n("requested_service_action"), alloc, alloc, alloc, alloc, ctl, ctl]),
            ([0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], [op, sa] + Array(repeating: lba, count: 8)
                + Array(repeating: alloc, count: 4) + [n("report_type"), ctl]),
            ([0x85, 0x08, 0x0e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0xec, 0], [op, n("ata.protocol"), n("ata.t_length"), n("ata.features"),
                n("ata.features"), n("ata.count"), n("ata.count")] + Array(repeating: n("ata.lba"), count: 6) + [n("ata.device"), n("ata.command"), ctl]),
            ([0xa1, 0x08, 0x0e, 0, 1, 0, 0, 0, 0x40, 0xec, 0, 0], [op, n("ata.protocol"), n("ata.t_length"), n("ata.features"), n("ata.count"),
                n("ata.lba"), n("ata.lba"), n("ata.lba"), n("ata.device"), n("ata.command"), ctl, ctl]),
            (read32, [op, ctl, grp, grp, grp, grp, grp, n("additional_length"), sa, sa, n("wrprotect"), lba] + Array(repeating: lba, count: 8)
                + Array(repeating: n("eilbrt"), count: 4) + [n("elbat"), n("elbat"), n("lbatm"), n("lbatm")] + Array(repeating: tl, count: 4)),
            ([0x7f, 0, 0, 0, 0, 0, 0, 0x04, 0x18, 0, 0, 0], [op, ctl, grp, grp, grp, grp, grp, n("additional_length"), sa, sa, n("bytes"), n("bytes")]),
            ([0x4d, 0, 0, 0, 0, 0, 0, 0, 0, 0], [op] + Array(repeating: ctl, count: 9)),
            ([0x48, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], [op, sa] + Array(repeating: ctl, count: 8)),
        ]
    }()

    @Test func everyPrefixIsTruncatedAtTheRightField() throws {
        var prefixes = 0
        for (cdb, fieldAt) in Self.layouts {
            try #require(cdb.count == fieldAt.count, "layout of \(Hex.spaced(cdb))")
            #expect(try SCSICommand(decoding: cdb).cdbLength == cdb.count)
            for length in 0..<cdb.count {
                let error = decodeError { () throws(DecodeError) in try SCSICommand(decoding: Array(cdb[0..<length]), baseOffset: 19) }
                #expect(error?.isTruncated == true && error?.field == fieldAt[length],
                        "\(Hex.spaced(cdb)) cut to \(length): \(String(describing: error))")
                let offset = error?.offset ?? -1
                #expect(offset >= 19 + length - 7 && offset < 19 + cdb.count, "offset \(String(describing: error))")
                prefixes += 1
            }
        }
        #expect(prefixes == Self.layouts.reduce(0) { $0 + $1.cdb.count })
    }

    @Test func truncationReportsTheFieldOffset() {
        let error = decodeError { () throws(DecodeError) in try SCSICommand(decoding: [0x28, 0], baseOffset: 19) }
        #expect(error == .truncated("virtio_scsi.cdb.lba", at: 21, needed: 4, available: 0))
        let mid = decodeError { () throws(DecodeError) in try SCSICommand(decoding: [0x28, 0, 1, 2], baseOffset: 19) }
        #expect(mid == .truncated("virtio_scsi.cdb.lba", at: 21, needed: 4, available: 2))
    }

    @Test func malformedVariableLength() {
        let noRoom = decodeError { () throws(DecodeError) in try SCSICommand(decoding: [0x7f, 0, 0, 0, 0, 0, 0, 0x01, 0, 9]) }
        #expect(noRoom?.isMalformed == true && noRoom?.field == "virtio_scsi.cdb.additional_length" && noRoom?.offset == 7)
        let wrong = decodeError { () throws(DecodeError) in
            try SCSICommand(decoding: [0x7f, 0, 0, 0, 0, 0, 0, 0x10, 0, 0x09] + Array(repeating: 0, count: 22))
        }
        #expect(wrong == .malformed("virtio_scsi.cdb.additional_length", at: 7, "Read(32) has additional CDB length 0x18, not 0x10"))
    }
}
