import VQWire

// SPC-4 4.2 "The command descriptor block (CDB)"; commands from SPC-4 6 and SBC-3 5, SAT-3 12.
//
//   6-byte  (opcodes 0x00-0x1f)     10-byte (0x20-0x5f)           16-byte (0x80-0x9f)
//   +----+--------------+----+----+ +----+----+-------+---+----+ +----+----+-------+-------+---+----+
//   | op |  LBA (21 b)  |len |ctl | | op |flg | LBA 4 |grp|len2|ctl| op |flg | LBA 8 |len 4  |grp|ctl |
//   +----+--------------+----+----+ +----+----+-------+---+----+ +----+----+-------+-------+---+----+
//    0    1           3  4    5      0    1    2-5     6   7-8  9  0    1    2-9     10-13   14  15
//
//   12-byte (0xa0-0xbf): op, flags, LBA 2-5, length 6-9, group 10, control 11.
//   variable length (0x7f): op, control, 2-5 misc, group 6, additional length 7 (CDB is
//   8 + that), service action 8-9 (big-endian), then per service action: READ/WRITE/VERIFY/
//   WRITE SAME(32) flags 10, LBA 12-19, reference tag 20-23, app tag 24-25, mask 26-27,
//   length 28-31.
//
// The length comes from the opcode group; bytes after it (cdb_size padding) are ignored.
// Fields are read in CDB order, so a short CDB throws `truncated` naming the first field
// that is not all there.

public enum SCSIDataDirection: Sendable, Equatable {
    case none, fromDevice, toDevice, unknown
}

public struct SCSICommand: FieldDescribable, Sendable, Equatable {
    public static let group = FieldDef("virtio_scsi.cdb", "CDB", .group)
    public static let opcodeField = FieldDef("virtio_scsi.cdb.opcode", "Opcode", .code(bits: 8))

    public let bytes: [UInt8]
    public let opcode: UInt8
    public var serviceAction: UInt16?
    public var name: String
    public var lba: UInt64?
    /// Blocks for reads, writes, verifies and write-sames.
    public var transferLength: UInt32?
    /// Bytes the initiator will accept (INQUIRY, REPORT LUNS, MODE SENSE, ...).
    public var allocationLength: UInt32?
    public var dataDirection: SCSIDataDirection
    /// Bytes of the command (6, 10, 12, 16, 8 + n), or nil for reserved and vendor-specific
    /// opcode groups, whose length the standard does not say.
    public var cdbLength: Int?
    /// Bytes of data-out the command announces (MODE SELECT, UNMAP, PERSISTENT RESERVE OUT).
    public var parameterListLength: UInt32?
    /// The VPD page an INQUIRY asks for (EVPD set), nil for standard INQUIRY data.
    public var vpdPage: UInt8?
    public var fua = false
    /// The decoded fields after the opcode, in CDB order.
    public var details: [Field] = []
    /// Words after the name in `summary` (`lba 2048`, `len 8`, `fua`).
    public var summaryWords: [String] = []

    /// Decodes a CDB. `bytes` may be longer than the command (the cdb_size field is padded).
    public init(decoding bytes: [UInt8], baseOffset: Int = 0) throws(DecodeError) {
        var c = CDBCursor(ByteReader(bytes, baseOffset: baseOffset))
        opcode = try c.u8(0, Self.opcodeField)
        self.bytes = bytes
        name = SCSIOpcodes.name(opcode: opcode, serviceAction: nil)
        dataDirection = .unknown
        switch opcode {
        case 0x00...0x1f: cdbLength = 6
        case 0x20...0x5f: cdbLength = 10
        case 0x80...0x9f: cdbLength = 16
        case 0xa0...0xbf: cdbLength = 12
        default: cdbLength = nil
        }
        try decodeBody(&c)
    }

    public var summary: String {
        summaryWords.isEmpty ? name : name + " " + summaryWords.joined(separator: " ")
    }

    /// One group field `virtio_scsi.cdb` with the decoded CDB fields as children.
    public var fields: [Field] {
        let opcodeName = SCSIOpcodes.hasServiceAction(opcode) ? SCSIOpcodes.familyName(opcode) : name
        return [Field(group: Self.group, display: summary,
                      [Field(Self.opcodeField, .code(UInt64(opcode), name: opcodeName))] + details)]
    }
}

/// Reads CDB fields at their byte positions, in increasing order, through a ByteReader.
struct CDBCursor {
    private var reader: ByteReader
    private let start: Int
    private(set) var position = 0

    init(_ reader: ByteReader) {
        self.reader = reader
        start = reader.offset
    }

    /// Moves to byte `pos`; if the CDB ends before it, the field there is truncated.
    private mutating func seek(_ pos: Int, _ f: FieldDef, width: Int) throws(DecodeError) {
        precondition(pos >= position, "CDB fields are read in increasing order")
        let gap = pos - position
        guard gap <= reader.remaining else {
            throw .truncated(f.name, at: start + pos, needed: width, available: 0)
        }
        try reader.skip(gap, f.name)
        position = pos
    }

    mutating func u8(_ pos: Int, _ f: FieldDef) throws(DecodeError) -> UInt8 {
        try seek(pos, f, width: 1)
        defer { position += 1 }
        return try reader.readU8(f.name)
    }

    mutating func be16(_ pos: Int, _ f: FieldDef) throws(DecodeError) -> UInt16 {
        try seek(pos, f, width: 2)
        defer { position += 2 }
        return try reader.readBE16(f.name)
    }

    mutating func be24(_ pos: Int, _ f: FieldDef) throws(DecodeError) -> UInt32 {
        try seek(pos, f, width: 3)
        defer { position += 3 }
        return try reader.readBE24(f.name)
    }

    mutating func be32(_ pos: Int, _ f: FieldDef) throws(DecodeError) -> UInt32 {
        try seek(pos, f, width: 4)
        defer { position += 4 }
        return try reader.readBE32(f.name)
    }

    mutating func be64(_ pos: Int, _ f: FieldDef) throws(DecodeError) -> UInt64 {
        try seek(pos, f, width: 8)
        defer { position += 8 }
        return try reader.readBE64(f.name)
    }

    mutating func rest() -> [UInt8] { reader.readRest() }

    /// Offset of CDB byte `pos` in errors.
    func offset(of pos: Int) -> Int { start + pos }
}

// MARK: - Decoding

private typealias F = SCSICommand.Fields

extension SCSICommand {
    private mutating func add(_ def: FieldDef, _ value: FieldValue, display: String? = nil) {
        details.append(Field(def, value, display: display))
    }

    /// A bit field; set bits named in `words` go to the summary.
    private mutating func flag(_ def: FieldDef, _ on: Bool, word: String? = nil) {
        details.append(Field(def, .bool(on)))
        if on, let word { summaryWords.append(word) }
    }

    private mutating func code(_ def: FieldDef, _ v: UInt8, _ name: String) {
        details.append(Field(def, .code(UInt64(v), name: name)))
    }

    private mutating func setLBA(_ v: UInt64) {
        lba = v
        add(F.lba, .uint(v))
        summaryWords += ["lba", String(v)]
    }

    private mutating func setBlocks(_ v: UInt32, display: String? = nil) {
        transferLength = v
        add(F.transferLength, .uint(UInt64(v)), display: display ?? (v == 1 ? "1 block" : "\(v) blocks"))
        summaryWords += ["len", String(v)]
    }

    private mutating func setAllocation(_ v: UInt32) {
        allocationLength = v
        add(F.allocationLength, .uint(UInt64(v)), display: "\(v) bytes")
        summaryWords += ["alloc", String(v)]
    }

    private mutating func setParameterList(_ v: UInt32) {
        parameterListLength = v
        add(F.parameterListLength, .uint(UInt64(v)), display: "\(v) bytes")
        summaryWords += ["paramlen", String(v)]
    }

    private mutating func group(_ c: inout CDBCursor, _ pos: Int, mask: UInt8 = 0x3f) throws(DecodeError) {
        let g = try c.u8(pos, F.groupNumber) & mask
        add(F.groupNumber, .uint(UInt64(g)))
    }

    private mutating func control(_ c: inout CDBCursor, _ pos: Int) throws(DecodeError) {
        let v = try c.u8(pos, F.control)
        add(F.control, .uint(UInt64(v)), display: Hex.short(UInt64(v)))
    }

    private mutating func setServiceAction(_ sa: UInt16) {
        serviceAction = sa
        name = SCSIOpcodes.name(opcode: opcode, serviceAction: sa)
        add(F.serviceAction, .code(UInt64(sa), name: name))
    }

    private mutating func decodeBody(_ c: inout CDBCursor) throws(DecodeError) {
        switch opcode {
        case 0x00: // TEST UNIT READY
            dataDirection = .none
            try control(&c, 5)
        case 0x03: // REQUEST SENSE
            dataDirection = .fromDevice
            flag(F.desc, try c.u8(1, F.desc) & 1 != 0, word: "desc")
            setAllocation(UInt32(try c.u8(4, F.allocationLength)))
            try control(&c, 5)
        case 0x08, 0x0a: // READ(6), WRITE(6)
            dataDirection = opcode == 0x08 ? .fromDevice : .toDevice
            setLBA(UInt64(try c.be24(1, F.lba) & 0x1f_ffff))
            let n = try c.u8(4, F.transferLength)
            setBlocks(n == 0 ? 256 : UInt32(n), display: n == 0 ? "256 blocks (0 in the CDB)" : nil)
            try control(&c, 5)
        case 0x12: // INQUIRY
            dataDirection = .fromDevice
            let evpd = try c.u8(1, F.evpd) & 1 != 0
            flag(F.evpd, evpd, word: "evpd")
            let page = try c.u8(2, F.pageCode)
            let pageName = evpd ? CDBNames.vpdPage(page) : page == 0 ? "standard INQUIRY data" : "\(Naming.unknown(UInt64(page))) without EVPD"
            code(F.pageCode, page, pageName)
            if evpd {
                vpdPage = page
                summaryWords += ["page", Hex.short(UInt64(page))]
            }
            setAllocation(UInt32(try c.be16(3, F.allocationLength)))
            try control(&c, 5)
        case 0x15, 0x55: // MODE SELECT(6), (10)
            dataDirection = .toDevice
            let b1 = try c.u8(1, F.pf)
            flag(F.pf, b1 & 0x10 != 0, word: "pf")
            flag(F.sp, b1 & 0x01 != 0, word: "sp")
            if opcode == 0x15 {
                setParameterList(UInt32(try c.u8(4, F.parameterListLength)))
                try control(&c, 5)
            } else {
                setParameterList(UInt32(try c.be16(7, F.parameterListLength)))
                try control(&c, 9)
            }
        case 0x1a, 0x5a: // MODE SENSE(6), (10)
            dataDirection = .fromDevice
            let b1 = try c.u8(1, F.dbd)
            if opcode == 0x5a { flag(F.llbaa, b1 & 0x10 != 0, word: "llbaa") }
            flag(F.dbd, b1 & 0x08 != 0, word: "dbd")
            let b2 = try c.u8(2, F.pageControl)
            let pc = b2 >> 6, page = b2 & 0x3f
            code(F.pageControl, pc, CDBNames.pageControl(pc))
            code(F.pageCode, page, CDBNames.modePage(page))
            let subpage = try c.u8(3, F.subpageCode)
            add(F.subpageCode, .uint(UInt64(subpage)), display: Hex.short(UInt64(subpage)))
            summaryWords += ["page", Hex.short(UInt64(page))]
            if subpage != 0 { summaryWords += ["subpage", Hex.short(UInt64(subpage))] }
            summaryWords += ["pc", String(pc)]
            if opcode == 0x1a {
                setAllocation(UInt32(try c.u8(4, F.allocationLength)))
                try control(&c, 5)
            } else {
                setAllocation(UInt32(try c.be16(7, F.allocationLength)))
                try control(&c, 9)
            }
        case 0x1b: // START STOP UNIT
            dataDirection = .none
            flag(F.immed, try c.u8(1, F.immed) & 1 != 0, word: "immed")
            let modifier = try c.u8(3, F.powerConditionModifier) & 0x0f
            add(F.powerConditionModifier, .uint(UInt64(modifier)))
            let b4 = try c.u8(4, F.powerCondition)
            let condition = b4 >> 4
            code(F.powerCondition, condition, CDBNames.powerCondition(condition))
            if condition != 0 { summaryWords += ["power", CDBNames.powerCondition(condition)] }
            flag(F.noFlush, b4 & 0x04 != 0, word: "no_flush")
            flag(F.loej, b4 & 0x02 != 0, word: "loej")
            let start = b4 & 0x01 != 0
            flag(F.start, start)
            if condition == 0 { summaryWords.insert(start ? "start" : "stop", at: 0) }
            try control(&c, 5)
        case 0x1e: // PREVENT ALLOW MEDIUM REMOVAL
            dataDirection = .none
            let prevent = try c.u8(4, F.prevent) & 3
            code(F.prevent, prevent, CDBNames.prevent(prevent))
            summaryWords.append(prevent == 0 ? "allow" : prevent == 1 ? "prevent" : "prevent \(prevent)")
            try control(&c, 5)
        case 0x25: // READ CAPACITY(10)
            dataDirection = .fromDevice
            let lba = try c.be32(2, F.lba)
            let pmi = try c.u8(8, F.pmi) & 1 != 0
            flag(F.pmi, pmi, word: "pmi")
            if pmi || lba != 0 { setLBA(UInt64(lba)) }
            allocationLength = 8
            try control(&c, 9)
        case 0x28, 0x2a, 0x2e, 0x2f, 0x88, 0x8a, 0x8e, 0x8f, 0xa8, 0xaa, 0xae, 0xaf:
            try decodeReadWrite(&c)
        case 0x35, 0x91: // SYNCHRONIZE CACHE(10), (16)
            dataDirection = .none
            flag(F.immed, try c.u8(1, F.immed) & 0x02 != 0, word: "immed")
            if opcode == 0x35 {
                setLBA(UInt64(try c.be32(2, F.lba)))
                try group(&c, 6)
                setBlocks(UInt32(try c.be16(7, F.transferLength)))
                try control(&c, 9)
            } else {
                setLBA(try c.be64(2, F.lba))
                setBlocks(try c.be32(10, F.transferLength))
                try group(&c, 14)
                try control(&c, 15)
            }
        case 0x41, 0x93: // WRITE SAME(10), (16)
            let b1 = try c.u8(1, F.wrprotect)
            add(F.wrprotect, .uint(UInt64(b1 >> 5)))
            let anchor = b1 & (opcode == 0x41 ? 0x08 : 0x10) != 0
            let unmap = b1 & (opcode == 0x41 ? 0x04 : 0x08) != 0
            let ndob = opcode == 0x93 && b1 & 0x01 != 0
            details.append(Field(F.anchor, .bool(anchor)))
            details.append(Field(F.unmap, .bool(unmap)))
            if opcode == 0x93 { details.append(Field(F.ndob, .bool(ndob))) }
            dataDirection = ndob ? .none : .toDevice
            if opcode == 0x41 {
                setLBA(UInt64(try c.be32(2, F.lba)))
                try group(&c, 6)
                setBlocks(UInt32(try c.be16(7, F.transferLength)))
                try control(&c, 9)
            } else {
                setLBA(try c.be64(2, F.lba))
                setBlocks(try c.be32(10, F.transferLength))
                try group(&c, 14)
                try control(&c, 15)
            }
            summaryWords += [(anchor, "anchor"), (unmap, "unmap"), (ndob, "ndob")].filter(\.0).map(\.1)
        case 0x42: // UNMAP
            dataDirection = .toDevice
            flag(F.anchor, try c.u8(1, F.anchor) & 1 != 0, word: "anchor")
            try group(&c, 6)
            setParameterList(UInt32(try c.be16(7, F.parameterListLength)))
            try control(&c, 9)
        case 0x5e: // PERSISTENT RESERVE IN
            dataDirection = .fromDevice
            setServiceAction(UInt16(try c.u8(1, F.serviceAction) & 0x1f))
            setAllocation(UInt32(try c.be16(7, F.allocationLength)))
            try control(&c, 9)
        case 0x5f: // PERSISTENT RESERVE OUT
            dataDirection = .toDevice
            setServiceAction(UInt16(try c.u8(1, F.serviceAction) & 0x1f))
            let b2 = try c.u8(2, F.scope)
            code(F.scope, b2 >> 4, CDBNames.reservationScope(b2 >> 4))
            code(F.type, b2 & 0x0f, CDBNames.reservationType(b2 & 0x0f))
            if b2 & 0x0f != 0 { summaryWords += ["type", "\"\(CDBNames.reservationType(b2 & 0x0f))\""] }
            setParameterList(try c.be32(5, F.parameterListLength))
            try control(&c, 9)
        case 0x7f:
            try decodeVariableLength(&c)
        case 0x85, 0xa1:
            try decodeATAPassThrough(&c)
        case 0x9e: // SERVICE ACTION IN(16)
            dataDirection = .fromDevice
            let sa = try c.u8(1, F.serviceAction) & 0x1f
            setServiceAction(UInt16(sa))
            switch sa {
            case 0x10: // READ CAPACITY(16)
                let lba = try c.be64(2, F.lba)
                let alloc = try c.be32(10, F.allocationLength)
                let pmi = try c.u8(14, F.pmi) & 1 != 0
                if pmi || lba != 0 { setLBA(lba) }
                setAllocation(alloc)
                flag(F.pmi, pmi, word: "pmi")
            case 0x12: // GET LBA STATUS(16)
                setLBA(try c.be64(2, F.lba))
                setAllocation(try c.be32(10, F.allocationLength))
                let type = try c.u8(14, F.reportType) & 3
                code(F.reportType, type, CDBNames.reportType(type))
            default:
                setAllocation(try c.be32(10, F.allocationLength))
            }
            try control(&c, 15)
        case 0xa0: // REPORT LUNS
            dataDirection = .fromDevice
            let select = try c.u8(2, F.selectReport)
            code(F.selectReport, select, CDBNames.selectReport(select))
            summaryWords += ["select", Hex.short(UInt64(select))]
            setAllocation(try c.be32(6, F.allocationLength))
            try control(&c, 11)
        case 0xa3: // MAINTENANCE IN
            dataDirection = .fromDevice
            let sa = try c.u8(1, F.serviceAction) & 0x1f
            setServiceAction(UInt16(sa))
            if sa == 0x0c { // REPORT SUPPORTED OPERATION CODES
                let b2 = try c.u8(2, F.rctd)
                flag(F.rctd, b2 & 0x80 != 0, word: "rctd")
                let options = b2 & 0x07
                code(F.reportingOptions, options, CDBNames.reportingOptions(options))
                summaryWords += ["options", String(options)]
                let op = try c.u8(3, F.requestedOpcode)
                let rsa = try c.be16(4, F.requestedServiceAction)
                code(F.requestedOpcode, op, SCSIOpcodes.name(opcode: op, serviceAction: options >= 2 ? rsa : nil))
                add(F.requestedServiceAction, .uint(UInt64(rsa)), display: Hex.short(UInt64(rsa)))
                if options != 0 { summaryWords += ["opcode", Hex.short(UInt64(op))] }
                if options >= 2 { summaryWords += ["sa", Hex.short(UInt64(rsa))] }
            }
            setAllocation(try c.be32(6, F.allocationLength))
            try control(&c, 11)
        default:
            try decodeOther(&c)
        }
    }

    /// READ, WRITE, WRITE AND VERIFY and VERIFY in their 10, 12 and 16-byte forms.
    private mutating func decodeReadWrite(_ c: inout CDBCursor) throws(DecodeError) {
        let kind = opcode & 0x0f  // 8 read, 0xa write, 0xe write and verify, 0xf verify
        let protect = kind == 0x08 ? F.rdprotect : kind == 0x0f ? F.vrprotect : F.wrprotect
        let b1 = try c.u8(1, protect)
        add(protect, .uint(UInt64(b1 >> 5)))
        details.append(Field(F.dpo, .bool(b1 & 0x10 != 0)))
        var flagWords: [String] = []
        var bytchk: UInt8 = 0
        if kind == 0x0e || kind == 0x0f {
            bytchk = (b1 >> 1) & 3
            code(F.bytchk, bytchk, CDBNames.bytchk(bytchk))
            if bytchk != 0 { flagWords += ["bytchk", String(bytchk)] }
        } else {
            fua = b1 & 0x08 != 0
            details.append(Field(F.fua, .bool(fua)))
        }
        if b1 & 0x10 != 0 { flagWords.append("dpo") }
        if fua { flagWords.append("fua") }
        switch kind {
        case 0x08: dataDirection = .fromDevice
        case 0x0f: dataDirection = bytchk == 0 ? .none : .toDevice
        default: dataDirection = .toDevice
        }
        switch opcode >> 4 {
        case 0x2:
            setLBA(UInt64(try c.be32(2, F.lba)))
            try group(&c, 6)
            setBlocks(UInt32(try c.be16(7, F.transferLength)))
            try control(&c, 9)
        case 0xa:
            setLBA(UInt64(try c.be32(2, F.lba)))
            setBlocks(try c.be32(6, F.transferLength))
            try group(&c, 10)
            try control(&c, 11)
        default:
            setLBA(try c.be64(2, F.lba))
            setBlocks(try c.be32(10, F.transferLength))
            try group(&c, 14)
            try control(&c, 15)
        }
        summaryWords += flagWords
    }

    /// Variable-length CDBs (opcode 0x7f): READ/WRITE/VERIFY/WRITE SAME(32) and others.
    private mutating func decodeVariableLength(_ c: inout CDBCursor) throws(DecodeError) {
        try control(&c, 1)
        try group(&c, 6)
        let extra = try c.u8(7, F.additionalLength)
        add(F.additionalLength, .uint(UInt64(extra)))
        let length = 8 + Int(extra)
        cdbLength = length
        guard extra >= 2 else {
            throw .malformed(F.additionalLength.name, at: c.offset(of: 7),
                             "additional CDB length \(extra) leaves no room for the service action")
        }
        let sa = try c.be16(8, F.serviceAction)
        setServiceAction(sa)
        switch sa {
        case 0x09, 0x0a, 0x0b, 0x0d: // READ, VERIFY, WRITE, WRITE SAME (32)
            guard length == 32 else {
                throw .malformed(F.additionalLength.name, at: c.offset(of: 7),
                                 "\(name) has additional CDB length 0x18, not \(Hex.short(UInt64(extra)))")
            }
            let protect = sa == 0x09 ? F.rdprotect : sa == 0x0a ? F.vrprotect : F.wrprotect
            let b10 = try c.u8(10, protect)
            add(protect, .uint(UInt64(b10 >> 5)))
            var flagWords: [String] = []
            var bytchk: UInt8 = 0
            var ndob = false
            if sa == 0x0d {
                details.append(Field(F.anchor, .bool(b10 & 0x10 != 0)))
                details.append(Field(F.unmap, .bool(b10 & 0x08 != 0)))
                ndob = b10 & 0x01 != 0
                details.append(Field(F.ndob, .bool(ndob)))
                if b10 & 0x10 != 0 { flagWords.append("anchor") }
                if b10 & 0x08 != 0 { flagWords.append("unmap") }
                if ndob { flagWords.append("ndob") }
            } else {
                details.append(Field(F.dpo, .bool(b10 & 0x10 != 0)))
                if sa == 0x0a {
                    bytchk = (b10 >> 1) & 3
                    code(F.bytchk, bytchk, CDBNames.bytchk(bytchk))
                    if bytchk != 0 { flagWords += ["bytchk", String(bytchk)] }
                } else {
                    fua = b10 & 0x08 != 0
                    details.append(Field(F.fua, .bool(fua)))
                }
                if b10 & 0x10 != 0 { flagWords.append("dpo") }
                if fua { flagWords.append("fua") }
            }
            switch sa {
            case 0x09: dataDirection = .fromDevice
            case 0x0a: dataDirection = bytchk == 0 ? .none : .toDevice
            case 0x0d: dataDirection = ndob ? .none : .toDevice
            default: dataDirection = .toDevice
            }
            setLBA(try c.be64(12, F.lba))
            add(F.eilbrt, .uint(UInt64(try c.be32(20, F.eilbrt))))
            add(F.elbat, .uint(UInt64(try c.be16(24, F.elbat))))
            add(F.lbatm, .uint(UInt64(try c.be16(26, F.lbatm))))
            setBlocks(try c.be32(28, F.transferLength))
            summaryWords += flagWords
        default:
            dataDirection = .unknown
        }
        // The whole announced CDB must be there.
        if length > c.position {
            _ = try c.u8(length - 1, F.raw)
        }
    }

    /// ATA PASS-THROUGH (12) and (16), SAT-3 12.2.2 and 12.2.3.
    private mutating func decodeATAPassThrough(_ c: inout CDBCursor) throws(DecodeError) {
        let long = opcode == 0x85
        var ata = FieldList()
        let b1 = try c.u8(1, F.ataProtocol)
        let proto = (b1 >> 1) & 0x0f
        ata.add(F.ataMultipleCount, .uint(UInt64(b1 >> 5)))
        ata.add(F.ataProtocol, .code(UInt64(proto), name: CDBNames.ataProtocol(proto)))
        let extend = long && b1 & 1 != 0
        if long { ata.add(F.ataExtend, .bool(extend)) }
        let b2 = try c.u8(2, F.ataTransferLength)
        let tLength = b2 & 3
        let toHost = b2 & 0x08 != 0
        ata.add(F.ataOffLine, .uint(UInt64(b2 >> 6)))
        ata.add(F.ataCheckCondition, .bool(b2 & 0x20 != 0))
        ata.add(F.ataTransferType, .bool(b2 & 0x10 != 0), display: b2 & 0x10 != 0 ? "blocks" : "bytes")
        ata.add(F.ataTransferDirection, .bool(toHost), display: toHost ? "from device" : "to device")
        ata.add(F.ataByteBlock, .bool(b2 & 0x04 != 0))
        ata.add(F.ataTransferLength, .code(UInt64(tLength), name: CDBNames.ataTransferLength(tLength)))
        var features: UInt16, count: UInt16, lbaValue: UInt64, device: UInt8, command: UInt8
        if long {
            features = try c.be16(3, F.ataFeatures)
            count = try c.be16(5, F.ataCount)
            let l7 = UInt64(try c.u8(7, F.ataLBA)), l8 = UInt64(try c.u8(8, F.ataLBA))
            let l9 = UInt64(try c.u8(9, F.ataLBA)), l10 = UInt64(try c.u8(10, F.ataLBA))
            let l11 = UInt64(try c.u8(11, F.ataLBA)), l12 = UInt64(try c.u8(12, F.ataLBA))
            device = try c.u8(13, F.ataDevice)
            command = try c.u8(14, F.ataCommand)
            if extend {
                lbaValue = l11 << 40 | l9 << 32 | l7 << 24 | l12 << 16 | l10 << 8 | l8
            } else {
                features &= 0xff
                count &= 0xff
                lbaValue = UInt64(device & 0x0f) << 24 | l12 << 16 | l10 << 8 | l8
            }
        } else {
            features = UInt16(try c.u8(3, F.ataFeatures))
            count = UInt16(try c.u8(4, F.ataCount))
            let low = UInt64(try c.u8(5, F.ataLBA)), mid = UInt64(try c.u8(6, F.ataLBA))
            let high = UInt64(try c.u8(7, F.ataLBA))
            device = try c.u8(8, F.ataDevice)
            command = try c.u8(9, F.ataCommand)
            lbaValue = UInt64(device & 0x0f) << 24 | high << 16 | mid << 8 | low
        }
        ata.add(F.ataFeatures, .uint(UInt64(features)), display: Hex.short(UInt64(features)))
        ata.add(F.ataCount, .uint(UInt64(count)))
        ata.add(F.ataLBA, .uint(lbaValue))
        ata.add(F.ataDevice, .uint(UInt64(device)), display: Hex.short(UInt64(device)))
        ata.add(F.ataCommand, .code(UInt64(command), name: CDBNames.ataCommand(command)))
        details.append(Field(group: F.ata, ata.fields))
        dataDirection = tLength == 0 ? .none : toHost ? .fromDevice : .toDevice
        summaryWords += [CDBNames.ataCommand(command), "(\(Hex.short(UInt64(command))))",
                         "protocol", CDBNames.ataProtocol(proto)]
        try control(&c, long ? 15 : 11)
    }

    /// Commands decoded only as far as their service action and control byte.
    private mutating func decodeOther(_ c: inout CDBCursor) throws(DecodeError) {
        guard let length = cdbLength else {
            add(F.raw, .bytes(c.rest()))
            return
        }
        if SCSIOpcodes.hasServiceAction(opcode) {
            setServiceAction(UInt16(try c.u8(1, F.serviceAction) & 0x1f))
        }
        switch opcode {
        case 0x1c, 0x3c, 0x4d, 0x84, 0x86, 0x8c, 0x95, 0x9b, 0xa2, 0xab: dataDirection = .fromDevice
        case 0x1d, 0x3b, 0x4c, 0x83, 0x87, 0x8d, 0xb5: dataDirection = .toDevice
        case 0x01, 0x0b, 0x2b, 0x34, 0x90: dataDirection = .none
        default: dataDirection = .unknown
        }
        try control(&c, length - 1)
    }
}
