import VQWire

// Data-in of the commands that describe a device: SPC-4 6.6.2 standard INQUIRY data, 7.8 VPD
// pages (0x00, 0x80, 0x83; SBC-3 6.6.4 0xb0, 6.6.3 0xb1), SBC-3 5.16 / 5.17 READ CAPACITY
// (10) / (16) parameter data, SPC-4 6.33 REPORT LUNS parameter data.
//
//   INQUIRY  0        1      2       3           4        5-7    8-15    16-31    32-35
//           +--------+------+-------+-----------+--------+------+-------+--------+-----+
//           |PQ|type |RMB   |version|HiSup|fmt  |add len |flags |vendor |product |rev  |
//           +--------+------+-------+-----------+--------+------+-------+--------+-----+
//   VPD      PQ|type, page code, page length (2, big-endian), page (length bytes)
//   RC(10)   last LBA (4), block length (4)
//   RC(16)   last LBA (8), block length (4), P_TYPE|PROT_EN, P_I_EXP|LBPPBE,
//            LBPME|LBPRZ|lowest aligned LBA (2), reserved to 32
//   LUNS     list length (4), reserved (4), 8-byte LUNs
//
// Data is often cut (allocation length, snap length): everything whose bytes are all there
// decodes, and the group says where it was cut (`partial`). What lies past the length the
// data announces is absent, not cut.

public enum SCSIDataIn {
    /// The decoded data-in of INQUIRY, READ CAPACITY (10/16) and REPORT LUNS, as one group
    /// field (`virtio_scsi.inquiry`, `virtio_scsi.vpd`, `virtio_scsi.read_capacity`,
    /// `virtio_scsi.report_luns`), or nil for other commands and empty data. Partial data
    /// (snaplen, allocation length) decodes as far as it goes.
    public static func decode(command: SCSICommand, data: [UInt8]) -> Field? {
        guard !data.isEmpty else { return nil }
        switch (command.opcode, command.serviceAction) {
        case (0x12, _):
            return command.vpdPage == nil ? decodeInquiry(data) : decodeVPD(data)
        case (0x25, _): return decodeReadCapacity(data, long: false)
        case (0x9e, 0x10): return decodeReadCapacity(data, long: true)
        case (0xa0, _): return decodeReportLuns(data)
        default: return nil
        }
    }
}

private typealias F = SCSIDataIn.Fields

/// Collects the fields of one data-in group and where the data ran out.
private struct Decoding {
    var list = FieldList()
    var cutAt: String?
    var summary = ""

    /// Runs `body`; where it throws is where the data was cut (the fixed headers are
    /// always announced).
    mutating func run(_ body: (inout Decoding) throws(DecodeError) -> Void) {
        do {
            try body(&self)
        } catch {
            cutAt = error.field
        }
    }

    func group(_ def: FieldDef, partial: FieldDef) -> Field {
        var fields = list.fields
        var display = summary
        if let cutAt {
            fields.append(Field(partial, .string(cutAt)))
            display += display.isEmpty ? "partial" : " (partial)"
        }
        return Field(group: def, display: display, fields)
    }
}

extension SCSIDataIn {
    // MARK: standard INQUIRY data

    static func decodeInquiry(_ data: [UInt8]) -> Field {
        var d = Decoding()
        var r = ByteReader(data)
        d.run { (d: inout Decoding) throws(DecodeError) in
            let b0 = try r.readU8(F.peripheralQualifier.name)
            let (qualifier, type) = (b0 >> 5, b0 & 0x1f)
            d.list.add(F.peripheralQualifier, .code(UInt64(qualifier), name: Names.qualifier(qualifier)))
            d.list.add(F.deviceType, .code(UInt64(type), name: Names.deviceType(type)))
            d.summary = Names.deviceType(type)
            let b1 = try r.readU8(F.removable.name)
            d.list.add(F.removable, .bool(b1 & 0x80 != 0))
            d.list.add(F.luCongregate, .bool(b1 & 0x40 != 0))
            let version = try r.readU8(F.version.name)
            d.list.add(F.version, .code(UInt64(version), name: Names.version(version)))
            let b3 = try r.readU8(F.responseDataFormat.name)
            d.list.add(F.normACA, .bool(b3 & 0x20 != 0))
            d.list.add(F.hiSup, .bool(b3 & 0x10 != 0))
            d.list.add(F.responseDataFormat, .uint(UInt64(b3 & 0x0f)))
            let additional = try r.readU8(F.additionalLength.name)
            d.list.add(F.additionalLength, .uint(UInt64(additional)))
            // Fields past 5 + additional length are absent (old devices send 36 bytes or less).
            let announced = Int(additional)
            var body = try r.readSubReader(min(r.remaining, announced), F.additionalLength.name)
            let cut = data.count < 5 + announced
            do throws(DecodeError) {
                let b5 = try body.readU8(F.sccs.name)
                d.list.add(F.sccs, .bool(b5 & 0x80 != 0))
                d.list.add(F.acc, .bool(b5 & 0x40 != 0))
                d.list.add(F.tpgs, .uint(UInt64((b5 >> 4) & 3)))
                d.list.add(F.thirdPartyCopy, .bool(b5 & 0x08 != 0))
                d.list.add(F.protect, .bool(b5 & 0x01 != 0))
                let b6 = try body.readU8(F.encServ.name)
                d.list.add(F.encServ, .bool(b6 & 0x40 != 0))
                d.list.add(F.multiP, .bool(b6 & 0x10 != 0))
                let b7 = try body.readU8(F.cmdQue.name)
                d.list.add(F.cmdQue, .bool(b7 & 0x02 != 0))
                let vendor = Names.ascii(try body.readBytes(8, F.vendor.name))
                d.list.add(F.vendor, .string(vendor))
                d.summary += " \"\(vendor)\""
                let product = Names.ascii(try body.readBytes(16, F.product.name))
                d.list.add(F.product, .string(product))
                d.summary += " \"\(product)\""
                let revision = Names.ascii(try body.readBytes(4, F.revision.name))
                d.list.add(F.revision, .string(revision))
                d.summary += " \"\(revision)\""
            } catch {
                if cut { d.cutAt = error.field }
            }
        }
        return d.group(F.inquiry, partial: F.inquiryPartial)
    }

    // MARK: VPD pages

    static func decodeVPD(_ data: [UInt8]) -> Field {
        var d = Decoding()
        var r = ByteReader(data)
        d.run { (d: inout Decoding) throws(DecodeError) in
            let b0 = try r.readU8(F.vpdPeripheralQualifier.name)
            d.list.add(F.vpdPeripheralQualifier, .code(UInt64(b0 >> 5), name: Names.qualifier(b0 >> 5)))
            d.list.add(F.vpdDeviceType, .code(UInt64(b0 & 0x1f), name: Names.deviceType(b0 & 0x1f)))
            let page = try r.readU8(F.pageCode.name)
            d.list.add(F.pageCode, .code(UInt64(page), name: CDBNames.vpdPage(page)))
            d.summary = CDBNames.vpdPage(page)
            let length = try r.readBE16(F.pageLength.name)
            d.list.add(F.pageLength, .uint(UInt64(length)))
            let cut = r.remaining < Int(length)
            var body = try r.readSubReader(min(r.remaining, Int(length)), F.pageLength.name)
            do throws(DecodeError) {
                switch page {
                case 0x00: try supportedPages(&body, &d)
                case 0x80:
                    let serial = Names.ascii(body.readRest())
                    d.list.add(F.serialNumber, .string(serial))
                    d.summary += " \"\(serial)\""
                    if cut { d.cutAt = F.serialNumber.name }
                case 0x83: try deviceIdentification(&body, &d)
                case 0xb0: try blockLimits(&body, &d)
                case 0xb1: try blockDeviceCharacteristics(&body, &d)
                default:
                    d.list.add(F.pageData, .bytes(body.readRest()))
                    if cut { d.cutAt = F.pageData.name }
                }
            } catch {
                // Short pages from older devices end early by their own length.
                if cut { d.cutAt = error.field }
            }
            if cut && d.cutAt == nil { d.cutAt = F.pageLength.name }
        }
        return d.group(F.vpd, partial: F.vpdPartial)
    }

    private static func supportedPages(_ r: inout ByteReader, _ d: inout Decoding) throws(DecodeError) {
        var count = 0
        while !r.isAtEnd {
            let p = try r.readU8(F.supportedPage.name)
            d.list.add(F.supportedPage, .code(UInt64(p), name: CDBNames.vpdPage(p)))
            count += 1
        }
        d.summary += " (\(count))"
    }

    private static func deviceIdentification(_ r: inout ByteReader, _ d: inout Decoding) throws(DecodeError) {
        var count = 0
        while !r.isAtEnd {
            let b0 = try r.readU8(F.codeSet.name)
            let b1 = try r.readU8(F.designatorType.name)
            try r.skip(1, F.designatorLength.name)
            let length = try r.readU8(F.designatorLength.name)
            let id = try r.readBytes(Int(length), F.identifier.name)
            let codeSet = b0 & 0x0f, association = (b1 >> 4) & 3, type = b1 & 0x0f
            var g = FieldList()
            g.add(F.protocolIdentifier, .uint(UInt64(b0 >> 4)))
            g.add(F.codeSet, .code(UInt64(codeSet), name: Names.codeSet(codeSet)))
            g.add(F.piv, .bool(b1 & 0x80 != 0))
            g.add(F.association, .code(UInt64(association), name: Names.association(association)))
            g.add(F.designatorType, .code(UInt64(type), name: Names.designatorType(type)))
            g.add(F.designatorLength, .uint(UInt64(length)))
            let text = Names.identifier(id, codeSet: codeSet, type: type)
            g.add(F.identifier, .string(text))
            d.list.add(Field(group: F.designator, display: "\(Names.designatorType(type)): \(text)", g.fields))
            count += 1
        }
        d.summary += " (\(count) designator\(count == 1 ? "" : "s"))"
    }

    private static func blockLimits(_ r: inout ByteReader, _ d: inout Decoding) throws(DecodeError) {
        func blocks(_ def: FieldDef, _ v: UInt32) { d.list.add(def, .uint(UInt64(v)), display: "\(v) blocks") }
        d.list.add(F.wsnz, .bool(try r.readU8(F.wsnz.name) & 1 != 0))
        d.list.add(F.maxCompareWriteLength, .uint(UInt64(try r.readU8(F.maxCompareWriteLength.name))))
        blocks(F.optimalGranularity, UInt32(try r.readBE16(F.optimalGranularity.name)))
        let maxTransfer = try r.readBE32(F.maxTransferLength.name)
        blocks(F.maxTransferLength, maxTransfer)
        d.summary += " max transfer \(maxTransfer)"
        blocks(F.optimalTransferLength, try r.readBE32(F.optimalTransferLength.name))
        blocks(F.maxPrefetchLength, try r.readBE32(F.maxPrefetchLength.name))
        blocks(F.maxUnmapLBACount, try r.readBE32(F.maxUnmapLBACount.name))
        d.list.add(F.maxUnmapDescriptorCount, .uint(UInt64(try r.readBE32(F.maxUnmapDescriptorCount.name))))
        blocks(F.optimalUnmapGranularity, try r.readBE32(F.optimalUnmapGranularity.name))
        let alignment = try r.readBE32(F.unmapAlignment.name)
        d.list.add(F.unmapAlignmentValid, .bool(alignment & 0x8000_0000 != 0))
        d.list.add(F.unmapAlignment, .uint(UInt64(alignment & 0x7fff_ffff)))
        let writeSame = try r.readBE64(F.maxWriteSameLength.name)
        d.list.add(F.maxWriteSameLength, .uint(writeSame), display: "\(writeSame) blocks")
    }

    private static func blockDeviceCharacteristics(_ r: inout ByteReader, _ d: inout Decoding) throws(DecodeError) {
        let rate = try r.readBE16(F.rotationRate.name)
        let rateText = rate == 0 ? "not reported" : rate == 1 ? "non-rotating medium" : "\(rate) rpm"
        d.list.add(F.rotationRate, .uint(UInt64(rate)), display: rateText)
        d.summary += " \(rateText)"
        d.list.add(F.productType, .uint(UInt64(try r.readU8(F.productType.name))))
        let b7 = try r.readU8(F.formFactor.name)
        d.list.add(F.formFactor, .code(UInt64(b7 & 0x0f), name: Names.formFactor(b7 & 0x0f)))
        let b8 = try r.readU8(F.zoned.name)
        let zoned = (b8 >> 4) & 3
        d.list.add(F.zoned, .code(UInt64(zoned), name: Names.zoned(zoned)))
        d.list.add(F.fuab, .bool(b8 & 0x02 != 0))
        d.list.add(F.vbuls, .bool(b8 & 0x01 != 0))
    }

    // MARK: READ CAPACITY

    static func decodeReadCapacity(_ data: [UInt8], long: Bool) -> Field {
        var d = Decoding()
        var r = ByteReader(data)
        d.run { (d: inout Decoding) throws(DecodeError) in
            let last = long ? try r.readBE64(F.lastLBA.name) : UInt64(try r.readBE32(F.lastLBA.name))
            d.list.add(F.lastLBA, .uint(last), display: !long && last == 0xffff_ffff ? "\(last) (too large: use READ CAPACITY(16))" : nil)
            let blockLength = try r.readBE32(F.blockLength.name)
            d.list.add(F.blockLength, .uint(UInt64(blockLength)))
            let (blocks, o1) = last.addingReportingOverflow(1)
            let (bytes, o2) = blocks.multipliedReportingOverflow(by: UInt64(blockLength))
            if !o1 && !o2 {
                d.list.add(F.capacity, .uint(bytes), display: "\(bytes) bytes (\(Names.size(bytes)))")
                d.summary = "last lba \(last) block \(blockLength) (\(Names.size(bytes)))"
            } else {
                d.summary = "last lba \(last) block \(blockLength)"
            }
            guard long else { return }
            let b12 = try r.readU8(F.protectionType.name)
            d.list.add(F.protectionType, .uint(UInt64((b12 >> 1) & 7)))
            d.list.add(F.protectionEnabled, .bool(b12 & 1 != 0))
            let b13 = try r.readU8(F.lbppbe.name)
            d.list.add(F.piExponent, .uint(UInt64(b13 >> 4)))
            let lbppbe = b13 & 0x0f
            d.list.add(F.lbppbe, .uint(UInt64(lbppbe)), display: "\(lbppbe) (\(1 << lbppbe) logical blocks per physical block)")
            let alignment = try r.readBE16(F.lowestAlignedLBA.name)
            d.list.add(F.lbpme, .bool(alignment & 0x8000 != 0))
            d.list.add(F.lbprz, .bool(alignment & 0x4000 != 0))
            d.list.add(F.lowestAlignedLBA, .uint(UInt64(alignment & 0x3fff)))
            if alignment & 0x8000 != 0 { d.summary += " thin" }
        }
        return d.group(F.readCapacity, partial: F.readCapacityPartial)
    }

    // MARK: REPORT LUNS

    static func decodeReportLuns(_ data: [UInt8]) -> Field {
        var d = Decoding()
        var r = ByteReader(data)
        d.run { (d: inout Decoding) throws(DecodeError) in
            let listLength = try r.readBE32(F.listLength.name)
            d.list.add(F.listLength, .uint(UInt64(listLength)), display: "\(listLength) bytes")
            try r.skip(4, F.lun.name)
            let announced = Int(listLength / 8)
            d.list.add(F.lunCount, .uint(UInt64(announced)))
            var luns: [String] = []
            for _ in 0..<announced {
                let raw = try r.readBE64(F.lun.name)
                let (field, text) = lunEntry(raw)
                d.list.add(field)
                luns.append(text)
            }
            d.summary = "\(announced) LUN\(announced == 1 ? "" : "s")" + (luns.isEmpty ? "" : ": " + luns.joined(separator: ", "))
        }
        if d.cutAt != nil {
            let shown = d.list.fields.filter { $0.def == F.lun }.count
            let listed = d.list.fields.first { $0.def == F.lunCount }.map { $0.displayText } ?? "?"
            d.summary = "\(shown) of \(listed) LUNs"
        }
        return d.group(F.reportLuns, partial: F.reportLunsPartial)
    }

    /// One LUN of the list, SAM-5 4.7: the first level's address method, then any lower levels.
    static func lunEntry(_ raw: UInt64) -> (Field, String) {
        let b0 = UInt8(truncatingIfNeeded: raw >> 56), b1 = UInt8(truncatingIfNeeded: raw >> 48)
        let method = b0 >> 6
        var g = FieldList()
        g.add(F.lunRaw, .hex(raw))
        g.add(F.addressMethod, .code(UInt64(method), name: Names.addressMethod(method)))
        var text: String
        switch method {
        case 0:  // peripheral device: bus, then target or LUN
            let bus = b0 & 0x3f
            g.add(F.lunBus, .uint(UInt64(bus)))
            g.add(F.lunNumber, .uint(UInt64(b1)))
            text = bus == 0 ? String(b1) : "bus \(bus) lun \(b1)"
        case 1:  // flat space: 14-bit LUN
            let lun = UInt16(b0 & 0x3f) << 8 | UInt16(b1)
            g.add(F.lunNumber, .uint(UInt64(lun)))
            text = String(lun)
        case 2:  // logical unit: target, bus, LUN
            g.add(F.lunTarget, .uint(UInt64(b0 & 0x3f)))
            g.add(F.lunBus, .uint(UInt64(b1 >> 5)))
            g.add(F.lunNumber, .uint(UInt64(b1 & 0x1f)))
            text = "target \(b0 & 0x3f) bus \(b1 >> 5) lun \(b1 & 0x1f)"
        default:
            text = Hex.u64(raw)
        }
        let lower = raw & 0x0000_ffff_ffff_ffff
        if lower != 0, method != 3 {
            g.add(F.secondLevel, .hex(lower))
            text += "+\(Hex.short(lower))"
        }
        return (Field(group: F.lun, display: text, g.fields), text)
    }
}

/// Names of the codes in data-in.
enum Names {
    static func qualifier(_ v: UInt8) -> String {
        switch v {
        case 0: return "connected"
        case 1: return "not connected"
        case 3: return "not supported"
        default: return Naming.unknown(UInt64(v))
        }
    }

    /// SPC-4 table 146, lower case as in the `-v` output.
    static func deviceType(_ v: UInt8) -> String {
        switch v {
        case 0x00: return "direct access block device"
        case 0x01: return "sequential access device"
        case 0x02: return "printer device"
        case 0x03: return "processor device"
        case 0x04: return "write-once device"
        case 0x05: return "CD/DVD device"
        case 0x07: return "optical memory device"
        case 0x08: return "media changer device"
        case 0x0c: return "storage array controller device"
        case 0x0d: return "enclosure services device"
        case 0x0e: return "simplified direct access device"
        case 0x0f: return "optical card reader/writer device"
        case 0x11: return "object-based storage device"
        case 0x12: return "automation/drive interface"
        case 0x13: return "security manager device"
        case 0x14: return "host managed zoned block device"
        case 0x1e: return "well known logical unit"
        case 0x1f: return "unknown or no device type"
        default: return Naming.unknown(UInt64(v))
        }
    }

    static func version(_ v: UInt8) -> String {
        switch v {
        case 0x00: return "no standard claimed"
        case 0x03: return "SPC"
        case 0x04: return "SPC-2"
        case 0x05: return "SPC-3"
        case 0x06: return "SPC-4"
        case 0x07: return "SPC-5"
        default: return Naming.unknown(UInt64(v))
        }
    }

    static func codeSet(_ v: UInt8) -> String {
        switch v {
        case 1: return "binary"
        case 2: return "ASCII"
        case 3: return "UTF-8"
        default: return Naming.unknown(UInt64(v))
        }
    }

    static func association(_ v: UInt8) -> String {
        ["logical unit", "target port", "target device", "reserved"][Int(v & 3)]
    }

    static func designatorType(_ v: UInt8) -> String {
        switch v {
        case 0x0: return "vendor specific"
        case 0x1: return "T10 vendor ID"
        case 0x2: return "EUI-64"
        case 0x3: return "NAA"
        case 0x4: return "relative target port"
        case 0x5: return "target port group"
        case 0x6: return "logical unit group"
        case 0x7: return "MD5 logical unit identifier"
        case 0x8: return "SCSI name string"
        case 0x9: return "protocol specific port identifier"
        case 0xa: return "UUID"
        default: return Naming.unknown(UInt64(v))
        }
    }

    /// Text identifiers as text, relative port numbers as numbers, the rest in hex.
    static func identifier(_ id: [UInt8], codeSet: UInt8, type: UInt8) -> String {
        if codeSet == 2 || codeSet == 3 { return ascii(id) }
        if type == 4 || type == 5 || type == 6, id.count == 4 {
            var r = ByteReader(id)
            if let port = try? r.readBE32("identifier") { return String(port & 0xffff) }
        }
        return "0x" + Hex.compact(id)
    }

    static func formFactor(_ v: UInt8) -> String {
        switch v {
        case 0: return "not reported"
        case 1: return "5.25 inch"
        case 2: return "3.5 inch"
        case 3: return "2.5 inch"
        case 4: return "1.8 inch"
        case 5: return "less than 1.8 inch"
        default: return Naming.unknown(UInt64(v))
        }
    }

    static func zoned(_ v: UInt8) -> String {
        ["not reported", "host aware", "device managed", "reserved"][Int(v & 3)]
    }

    static func addressMethod(_ v: UInt8) -> String {
        ["peripheral device", "flat space", "logical unit", "extended logical unit"][Int(v & 3)]
    }

    /// Printable ASCII with the padding spaces (and NULs) trimmed; other bytes as `.`.
    static func ascii(_ bytes: [UInt8]) -> String {
        var end = bytes.count
        while end > 0 && (bytes[end - 1] == 0x20 || bytes[end - 1] == 0) { end -= 1 }
        var start = 0
        while start < end && bytes[start] == 0x20 { start += 1 }
        return String(decoding: bytes[start..<end].map { (0x20...0x7e).contains($0) ? $0 : 0x2e }, as: UTF8.self)
    }

    /// `1.5 GiB`: powers of 1024, one decimal.
    static func size(_ bytes: UInt64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var unit: UInt64 = 1
        var i = 0
        while i < units.count - 1 && bytes / unit >= 1024 { unit *= 1024; i += 1 }
        if i == 0 { return "\(bytes) bytes" }
        let whole = bytes / unit, tenths = (bytes % unit) * 10 / unit
        return "\(whole).\(tenths) \(units[i])"
    }
}
