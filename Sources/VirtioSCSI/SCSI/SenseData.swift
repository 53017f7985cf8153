import VQWire

// SPC-4 4.5 "Sense data": fixed format (4.5.3) and descriptor format (4.5.2).
//
//   fixed (0x70 current, 0x71 deferred)        descriptor (0x72 current, 0x73 deferred)
//   +------+-----+--------+------+-----+       +------+-----+-----+------+-----+-----+--------------+
//   |V|code| obs |F|E|I|key| info |len n|       | code | key | ASC | ASCQ | rsv |len n| descriptors..|
//   +------+-----+--------+------+-----+       +------+-----+-----+------+-----+-----+--------------+
//    0      1     2        3-6    7             0      1     2     3      4-6   7     8..7+n
//   +--------------+-----+------+-----+---------------+----------+
//   | cmd-specific | ASC | ASCQ | FRU | SKSV|sense-key| more...  |   descriptor: type, length m,
//   +--------------+-----+------+-----+---------------+----------+   then m bytes
//    8-11           12    13     14    15-17           18..7+n
//
// The header (bytes 0-7) must be there, or decoding throws `truncated`. What the additional
// sense length announces after it decodes as far as the bytes go; when they end early the
// sense is marked truncated (`truncatedAt` names the first field cut), the way a short
// sense_len or snap length cuts it. Response code 0x7f is vendor specific and shown raw.

public struct SenseData: FieldDescribable, Sendable, Equatable {
    public static let group = FieldDef("virtio_scsi.sense", "Sense data", .group)
    public static let keyField = FieldDef("virtio_scsi.sense.key", "Sense key", .code(bits: 4))

    public let bytes: [UInt8]
    public var responseCode: UInt8
    public var key: UInt8
    public var asc: UInt8
    public var ascq: UInt8
    public var isDescriptorFormat: Bool { responseCode == 0x72 || responseCode == 0x73 }
    public var isDeferred: Bool { responseCode == 0x71 || responseCode == 0x73 }
    public var isVendorSpecific: Bool { responseCode == 0x7f }
    /// The information field when the device marked it valid (often the failing LBA).
    public var information: UInt64?
    public var commandSpecific: UInt64?
    public var fieldReplaceableUnit: UInt8?
    public var filemark = false
    public var endOfMedium = false
    public var incorrectLength = false
    /// 8 + additional sense length.
    public var announcedLength = 0
    /// The first field the bytes end inside of, when they end before the announced length.
    public var truncatedAt: String?
    public var isTruncated: Bool { truncatedAt != nil }
    /// Decoded fields after the response code, in byte order.
    public var details: [Field] = []

    public init(decoding bytes: [UInt8], baseOffset: Int = 0) throws(DecodeError) {
        var r = ByteReader(bytes, baseOffset: baseOffset)
        let b0 = try r.readU8(Fields.responseCode.name)
        responseCode = b0 & 0x7f
        self.bytes = bytes
        key = 0; asc = 0; ascq = 0
        switch responseCode {
        case 0x70, 0x71: try decodeFixed(valid: b0 & 0x80 != 0, &r)
        case 0x72, 0x73: try decodeDescriptors(&r)
        case 0x7f: details.append(Field(Fields.vendorBytes, .bytes(r.readRest())))
        default:
            throw .malformed(Fields.responseCode.name, at: baseOffset,
                             "\(Hex.short(UInt64(responseCode))) is not a sense response code (0x70-0x73, 0x7f)")
        }
    }

    public var ascText: String { ASCText.text(asc: asc, ascq: ascq) }

    /// `UNIT ATTENTION asc 0x29/0x00 (Power on, reset, or bus device reset occurred)`.
    public var summary: String {
        if isVendorSpecific { return "vendor specific sense (\(bytes.count) bytes)" }
        var s = isDeferred ? "deferred " : ""
        s += "\(SenseKey.name(key)) asc \(Hex.short(UInt64(asc)))/\(Hex.short(UInt64(ascq))) (\(ascText))"
        if let information { s += " info \(information)" }
        if isTruncated { s += " [truncated]" }
        return s
    }

    /// One group field `virtio_scsi.sense`.
    public var fields: [Field] {
        let code = Field(Fields.responseCode, .code(UInt64(responseCode), name: Self.responseCodeName(responseCode)))
        var children = [code] + details
        if let truncatedAt {
            children.append(Field(Fields.truncated, .string(truncatedAt),
                                  display: "\(bytes.count) of \(announcedLength) bytes, cut in \(truncatedAt)"))
        }
        return [Field(group: Self.group, display: summary, children)]
    }

    public static func responseCodeName(_ code: UInt8) -> String {
        switch code & 0x7f {
        case 0x70: return "current, fixed format"
        case 0x71: return "deferred, fixed format"
        case 0x72: return "current, descriptor format"
        case 0x73: return "deferred, descriptor format"
        case 0x7f: return "vendor specific"
        default: return Naming.unknown(UInt64(code))
        }
    }
}

// MARK: - Decoding

private typealias F = SenseData.Fields

extension SenseData {
    private mutating func add(_ def: FieldDef, _ value: FieldValue, display: String? = nil) {
        details.append(Field(def, value, display: display))
    }

    private mutating func addKey(_ b: UInt8) {
        key = b & 0x0f
        details.append(Field(Self.keyField, .code(UInt64(key), name: SenseKey.name(key))))
    }

    private mutating func addASC(_ asc: UInt8, _ ascq: UInt8) {
        self.asc = asc
        self.ascq = ascq
        add(F.asc, .uint(UInt64(asc)), display: Hex.short(UInt64(asc)))
        add(F.ascq, .uint(UInt64(ascq)), display: Hex.short(UInt64(ascq)))
        add(F.ascText, .string(ASCText.text(asc: asc, ascq: ascq)))
    }

    /// The bytes the additional sense length announces that are there, and whether the
    /// announcement runs past the end.
    private mutating func body(_ r: inout ByteReader, additionalLength: UInt8) throws(DecodeError) -> (ByteReader, cut: Bool) {
        announcedLength = 8 + Int(additionalLength)
        let present = min(r.remaining, Int(additionalLength))
        return (try r.readSubReader(present, F.additionalLength.name), present < Int(additionalLength))
    }

    private mutating func decodeFixed(valid: Bool, _ r: inout ByteReader) throws(DecodeError) {
        add(F.valid, .bool(valid))
        try r.skip(1, Self.keyField.name)  // obsolete segment number
        let b2 = try r.readU8(Self.keyField.name)
        filemark = b2 & 0x80 != 0
        endOfMedium = b2 & 0x40 != 0
        incorrectLength = b2 & 0x20 != 0
        add(F.filemark, .bool(filemark))
        add(F.eom, .bool(endOfMedium))
        add(F.ili, .bool(incorrectLength))
        add(F.sdatOverflow, .bool(b2 & 0x10 != 0))
        addKey(b2)
        let info = try r.readBE32(F.information.name)
        add(F.information, .uint(UInt64(info)), display: "\(info) (\(Hex.short(UInt64(info))))")
        if valid { information = UInt64(info) }
        let n = try r.readU8(F.additionalLength.name)
        add(F.additionalLength, .uint(UInt64(n)))
        var (b, cut) = try body(&r, additionalLength: n)
        do {
            let cmd = try b.readBE32(F.commandSpecific.name)
            commandSpecific = UInt64(cmd)
            add(F.commandSpecific, .uint(UInt64(cmd)), display: Hex.short(UInt64(cmd)))
            let asc = try b.readU8(F.asc.name)
            let ascq = try b.readU8(F.ascq.name)
            addASC(asc, ascq)
            let fru = try b.readU8(F.fru.name)
            fieldReplaceableUnit = fru
            add(F.fru, .uint(UInt64(fru)), display: Hex.short(UInt64(fru)))
            details.append(Self.senseKeySpecific(key: key, try b.readBE24(F.senseKeySpecific.name)))
            if !b.isAtEnd { add(F.additionalBytes, .bytes(b.readRest())) }
            if cut { truncatedAt = F.additionalBytes.name }
        } catch {
            // Fields past the announced length are absent, not cut.
            if cut { truncatedAt = error.field }
        }
    }

    private mutating func decodeDescriptors(_ r: inout ByteReader) throws(DecodeError) {
        addKey(try r.readU8(Self.keyField.name))
        let asc = try r.readU8(F.asc.name)
        let ascq = try r.readU8(F.ascq.name)
        let b4 = try r.readU8(F.sdatOverflow.name)
        try r.skip(2, F.additionalLength.name)
        add(F.sdatOverflow, .bool(b4 & 0x80 != 0))
        addASC(asc, ascq)
        let n = try r.readU8(F.additionalLength.name)
        add(F.additionalLength, .uint(UInt64(n)))
        var (b, cut) = try body(&r, additionalLength: n)
        while !b.isAtEnd {
            do {
                let type = try b.readU8(F.descriptorType.name)
                let length = try b.readU8(F.descriptorLength.name)
                var d = try b.readSubReader(Int(length), F.descriptor.name)
                details += decodeDescriptor(type: type, length: length, &d)
            } catch {
                // A descriptor running past the announced length is cut as well.
                truncatedAt = error.field
                if !cut { add(F.additionalBytes, .bytes(b.readRest())) }
                return
            }
        }
        if cut { truncatedAt = F.descriptorType.name }
    }

    /// One descriptor: a group with its type and length, plus (for the types that carry
    /// what fixed format has in fixed places) the same sense-level fields as fixed format,
    /// so `virtio_scsi.sense.information` means one thing in both formats.
    private mutating func decodeDescriptor(type: UInt8, length: UInt8, _ d: inout ByteReader) -> [Field] {
        var list = FieldList()
        var shared = FieldList()
        list.add(F.descriptorType, .code(UInt64(type), name: Self.descriptorName(type)))
        list.add(F.descriptorLength, .uint(UInt64(length)))
        let start = d
        do {
            switch type {
            case 0x00, 0x01:  // information, command-specific information
                let b2 = try d.readU8(F.valid.name)
                try d.skip(1, F.information.name)
                let v = try d.readBE64(type == 0 ? F.information.name : F.commandSpecific.name)
                if type == 0x00 {
                    shared.add(F.valid, .bool(b2 & 0x80 != 0))
                    shared.add(F.information, .uint(v), display: "\(v) (\(Hex.short(v)))")
                    if b2 & 0x80 != 0 { information = v }
                } else {
                    commandSpecific = v
                    shared.add(F.commandSpecific, .uint(v), display: Hex.short(v))
                }
            case 0x02:  // sense key specific
                try d.skip(2, F.senseKeySpecific.name)
                shared.add(Self.senseKeySpecific(key: key, try d.readBE24(F.senseKeySpecific.name)))
            case 0x03:  // field replaceable unit
                try d.skip(1, F.fru.name)
                let fru = try d.readU8(F.fru.name)
                fieldReplaceableUnit = fru
                shared.add(F.fru, .uint(UInt64(fru)), display: Hex.short(UInt64(fru)))
            case 0x05:  // block commands
                try d.skip(1, F.ili.name)
                incorrectLength = try d.readU8(F.ili.name) & 0x20 != 0
                shared.add(F.ili, .bool(incorrectLength))
            case 0x09:  // ATA status return (SAT-3 12.2.2.7)
                let extend = try d.readU8(F.ataExtend.name) & 1 != 0
                let error = try d.readU8(F.ataError.name)
                let c1 = UInt64(try d.readU8(F.ataCount.name)), c0 = UInt64(try d.readU8(F.ataCount.name))
                var l = [UInt64]()
                for _ in 0..<6 { l.append(UInt64(try d.readU8(F.ataLBA.name))) }
                let device = try d.readU8(F.ataDevice.name)
                let status = try d.readU8(F.ataStatus.name)
                // Bytes 6-11: LBA 31:24, 7:0, 39:32, 15:8, 47:40, 23:16.
                var lba = l[1] | l[3] << 8 | l[5] << 16
                if extend { lba |= l[0] << 24 | l[2] << 32 | l[4] << 40 } else { lba |= UInt64(device & 0x0f) << 24 }
                list.add(F.ataExtend, .bool(extend))
                list.add(F.ataError, .uint(UInt64(error)), display: Hex.short(UInt64(error)))
                list.add(F.ataCount, .uint(extend ? c1 << 8 | c0 : c0))
                list.add(F.ataLBA, .uint(lba))
                list.add(F.ataDevice, .uint(UInt64(device)), display: Hex.short(UInt64(device)))
                list.add(F.ataStatus, .uint(UInt64(status)), display: Hex.short(UInt64(status)))
            default:
                list.add(F.descriptorData, .bytes(d.readRest()))
            }
            // Trailing bytes of a known type are reserved; show them only when set.
            let rest = d.readRest()
            if rest.contains(where: { $0 != 0 }) { list.add(F.descriptorData, .bytes(rest)) }
        } catch {
            // Shorter than its type needs: show the bytes.
            var raw = start
            list = FieldList()
            shared = FieldList()
            list.add(F.descriptorType, .code(UInt64(type), name: Self.descriptorName(type)))
            list.add(F.descriptorLength, .uint(UInt64(length)), display: "\(length) (too short for this type)")
            list.add(F.descriptorData, .bytes(raw.readRest()))
        }
        return [Field(group: F.descriptor, display: Self.descriptorName(type), list.fields)] + shared.fields
    }

    public static func descriptorName(_ type: UInt8) -> String {
        switch type {
        case 0x00: return "Information"
        case 0x01: return "Command-specific information"
        case 0x02: return "Sense key specific"
        case 0x03: return "Field replaceable unit"
        case 0x04: return "Stream commands"
        case 0x05: return "Block commands"
        case 0x06: return "OSD object identification"
        case 0x09: return "ATA status return"
        case 0x0a: return "Another progress indication"
        case 0x0b: return "User data segment referral"
        case 0x0c: return "Forwarded sense data"
        case 0x0d: return "Direct-access block device"
        default: return Naming.unknown(UInt64(type))
        }
    }

    /// SPC-4 4.5.2.4: three bytes (big-endian in `sks`) whose meaning depends on the sense key.
    static func senseKeySpecific(key: UInt8, _ sks: UInt32) -> Field {
        let b0 = UInt8(truncatingIfNeeded: sks >> 16)
        let valid = b0 & 0x80 != 0
        let value = UInt16(truncatingIfNeeded: sks)
        var list = FieldList()
        list.add(F.sksv, .bool(valid))
        guard valid else { return Field(group: F.senseKeySpecific, display: "not valid", list.fields) }
        var display: String
        switch key {
        case 0x05, 0x0a:  // ILLEGAL REQUEST: field pointer; COPY ABORTED: segment pointer
            let inCDB = b0 & 0x40 != 0
            let bpv = b0 & 0x08 != 0
            if key == 0x05 {
                list.add(F.commandData, .bool(inCDB), display: inCDB ? "yes (CDB)" : "no (parameter data)")
            } else {
                list.add(F.segmentDescriptor, .bool(b0 & 0x20 != 0))
            }
            list.add(F.bitPointerValid, .bool(bpv))
            list.add(F.bitPointer, .uint(UInt64(b0 & 7)))
            list.add(F.fieldPointer, .uint(UInt64(value)))
            display = key == 0x05 ? "\(inCDB ? "CDB" : "parameter data") byte \(value)" : "segment byte \(value)"
            if bpv { display += " bit \(b0 & 7)" }
        case 0x01, 0x03, 0x04:  // RECOVERED / MEDIUM / HARDWARE ERROR
            list.add(F.actualRetryCount, .uint(UInt64(value)))
            display = "actual retry count \(value)"
        case 0x00, 0x02:  // NO SENSE / NOT READY: progress of a format, sanitize, ...
            let percent = Self.percent(value)
            list.add(F.progress, .uint(UInt64(value)), display: "\(value) (\(percent))")
            display = "progress \(percent)"
        case 0x06:
            list.add(F.overflow, .bool(b0 & 0x01 != 0))
            display = b0 & 1 != 0 ? "unit attention queue overflow" : "no overflow"
        default:
            list.add(F.senseKeySpecificRaw, .uint(UInt64(sks & 0x7f_ffff)), display: Hex.short(UInt64(sks & 0x7f_ffff)))
            display = Hex.short(UInt64(sks & 0x7f_ffff))
        }
        return Field(group: F.senseKeySpecific, display: display, list.fields)
    }

    /// Progress indication as a percentage of 65536, one decimal.
    static func percent(_ v: UInt16) -> String {
        let tenths = (UInt32(v) * 1000 + 32768) / 65536
        return "\(tenths / 10).\(tenths % 10)%"
    }
}

// MARK: - Building (what a device returns)

extension SenseData {
    /// Fixed-format sense data, 18 bytes. The VALID bit is set when `information` is given.
    public static func fixed(key: UInt8, asc: UInt8, ascq: UInt8, information: UInt32? = nil,
                             commandSpecific: UInt32 = 0, fru: UInt8 = 0, senseKeySpecific: UInt32? = nil,
                             deferred: Bool = false) -> [UInt8] {
        var w = ByteWriter(capacity: 18)
        w.writeU8((information == nil ? 0 : 0x80) | (deferred ? 0x71 : 0x70))
        w.writeU8(0)
        w.writeU8(key & 0x0f)
        w.writeBE32(information ?? 0)
        w.writeU8(10)
        w.writeBE32(commandSpecific)
        w.writeU8(asc)
        w.writeU8(ascq)
        w.writeU8(fru)
        w.writeBE24(senseKeySpecific.map { $0 | 0x80_0000 } ?? 0)
        return w.bytes
    }

    /// Descriptor-format sense data: an information descriptor when `information` is given,
    /// then `descriptors` (each already type, length, data).
    public static func descriptorFormat(key: UInt8, asc: UInt8, ascq: UInt8, information: UInt64? = nil,
                                        descriptors: [[UInt8]] = [], deferred: Bool = false) -> [UInt8] {
        var all = descriptors
        if let information { all.insert(informationDescriptor(information), at: 0) }
        let length = all.reduce(0) { $0 + $1.count }
        precondition(length <= 244, "sense data holds at most 252 bytes")
        var w = ByteWriter(capacity: 8 + length)
        w.writeU8(deferred ? 0x73 : 0x72)
        w.writeU8(key & 0x0f)
        w.writeU8(asc)
        w.writeU8(ascq)
        w.writeZeros(3)
        w.writeU8(UInt8(length))
        for d in all { w.writeBytes(d) }
        return w.bytes
    }

    public static func informationDescriptor(_ value: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 12)
        w.writeU8(0x00); w.writeU8(0x0a); w.writeU8(0x80); w.writeU8(0); w.writeBE64(value)
        return w.bytes
    }

    /// A sense key specific descriptor (type 2) around a `fieldPointer`, `progress` or
    /// retry-count value.
    public static func senseKeySpecificDescriptor(_ value: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: 8)
        w.writeU8(0x02); w.writeU8(0x06); w.writeZeros(2); w.writeBE24(value | 0x80_0000); w.writeU8(0)
        return w.bytes
    }

    /// The sense key specific value of ILLEGAL REQUEST: which byte (and bit) was wrong.
    public static func fieldPointer(inCDB: Bool, byte: UInt16, bit: UInt8? = nil) -> UInt32 {
        (inCDB ? 0x40_0000 : 0) | (bit.map { 0x08_0000 | UInt32($0 & 7) << 16 } ?? 0) | UInt32(byte)
    }
}
