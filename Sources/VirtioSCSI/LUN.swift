import VQWire

// Appendix H, "Device Operation: request queues" (the lun field); virtio-facts.md for the
// REPORT LUNS well-known LUN and what drivers write.
//
//   0      1        2        3       4                    8
//   +------+--------+--------+-------+--------------------+
//   | 0x01 | target | AM|LUN | LUN   |  00 00 00 00       |   u8 lun[8]
//   +------+--------+--------+-------+--------------------+
//   AM (byte 2 bits 6-7): 00 peripheral (single level, bus 0), 01 flat; LUN is 14 bits.
//   Linux always writes flat (0x40); QEMU's events write peripheral below LUN 256.
//   REPORT LUNS well-known LUN: C1 01 00 00 00 00 00 00.
//
// Anything else is decoded, shown as nonconforming with the reason, never rejected: the
// device answers it (BAD_TARGET / INCORRECT_LUN), and a capture must show what was sent.

public struct VirtioSCSILUN: FieldDescribable, Sendable, Hashable {
    public static let size = 8

    public static let group = FieldDef("virtio_scsi.lun", "LUN", .group)
    public static let rawField = FieldDef("virtio_scsi.lun.raw", "Raw", .bytes)
    public static let targetField = FieldDef("virtio_scsi.lun.target", "Target", .uint(bits: 8))
    public static let lunField = FieldDef("virtio_scsi.lun.lun", "LUN", .uint(bits: 16))
    public static let addressMethodField = FieldDef("virtio_scsi.lun.address_method", "Address method", .code(bits: 2))
    public static let wellKnownField = FieldDef("virtio_scsi.lun.well_known", "REPORT LUNS well-known LUN", .bool)
    public static let nonconformingField = FieldDef("virtio_scsi.lun.nonconforming", "Nonconforming", .string)

    public static let allFields = [group, rawField, targetField, lunField, addressMethodField, wellKnownField, nonconformingField]

    public static let reportLUNsWellKnown: [UInt8] = [0xc1, 0x01, 0, 0, 0, 0, 0, 0]

    public enum AddressMethod: UInt8, Sendable, Hashable {
        case peripheral = 0
        case flat = 1

        public var name: String { self == .peripheral ? "PERIPHERAL" : "FLAT" }
    }

    /// The 8 bytes as sent.
    public let bytes: [UInt8]
    /// Target and LUN, when byte 0 is 1 and the address method is peripheral or flat
    /// (also when other bytes make the LUN nonconforming).
    public let target: UInt8?
    public let lun: UInt16?
    public let addressMethod: AddressMethod?
    public let isReportLUNsWellKnown: Bool
    /// Why the bytes are not in the one format the spec allows, or nil.
    public let nonconformity: String?

    /// Interprets 8 LUN bytes. Passing another count is a programmer error.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == Self.size, "a virtio-scsi LUN is 8 bytes")
        self.bytes = bytes
        if bytes == Self.reportLUNsWellKnown {
            target = nil; lun = nil; addressMethod = nil
            isReportLUNsWellKnown = true
            nonconformity = nil
            return
        }
        isReportLUNsWellKnown = false
        let method = AddressMethod(rawValue: bytes[2] >> 6)
        guard bytes[0] == 1, let method else {
            target = nil; lun = nil; addressMethod = nil
            if bytes[0] == 0xc1 {
                nonconformity = "well-known LUN other than REPORT LUNS (C1 01 00 00 00 00 00 00)"
            } else if bytes[0] != 1 {
                nonconformity = "first byte \(Hex.short(UInt64(bytes[0]))), expected 0x01"
            } else {
                nonconformity = "address method \(bytes[2] >> 6) in byte 2, expected peripheral (0) or flat (1)"
            }
            return
        }
        target = bytes[1]
        lun = UInt16(bytes[2] & 0x3f) << 8 | UInt16(bytes[3])
        addressMethod = method
        if method == .peripheral && bytes[2] != 0 {
            nonconformity = "peripheral address with bus \(Hex.short(UInt64(bytes[2] & 0x3f))), expected bus 0"
        } else if bytes[4...].contains(where: { $0 != 0 }) {
            nonconformity = "bytes 4-7 not zero"
        } else {
            nonconformity = nil
        }
    }

    /// The encoding Linux's driver writes: `01 TT 4L LL 00 00 00 00` (flat addressing).
    /// `lun` must fit 14 bits; peripheral addressing fits only LUNs below 256.
    public init(target: UInt8, lun: UInt16, addressMethod: AddressMethod = .flat) {
        precondition(lun < 0x4000, "a virtio-scsi LUN has 14 bits")
        precondition(addressMethod == .flat || lun < 0x100, "peripheral addressing holds LUNs below 256")
        let high = UInt8(truncatingIfNeeded: lun >> 8) | (addressMethod == .flat ? 0x40 : 0)
        self.init(bytes: [1, target, high, UInt8(truncatingIfNeeded: lun), 0, 0, 0, 0])
    }

    public init(decoding r: inout ByteReader) throws(DecodeError) {
        self.init(bytes: try r.readBytes(Self.size, Self.group.name))
    }

    public func encode(into w: inout ByteWriter) {
        w.writeBytes(bytes)
    }

    /// `0:5`, `wlun:REPORT_LUNS`, `0:5(nonconforming)` or `nonconforming-lun:0200400500000000`.
    public var summary: String {
        if isReportLUNsWellKnown { return "wlun:REPORT_LUNS" }
        guard let target, let lun else { return "nonconforming-lun:" + Hex.compact(bytes) }
        return nonconformity == nil ? "\(target):\(lun)" : "\(target):\(lun)(nonconforming)"
    }

    public var field: Field {
        var list = FieldList()
        list.add(Self.rawField, .bytes(bytes))
        if let target, let lun, let addressMethod {
            list.add(Self.targetField, .uint(UInt64(target)))
            list.add(Self.lunField, .uint(UInt64(lun)))
            list.add(Self.addressMethodField, .code(UInt64(addressMethod.rawValue), name: addressMethod.name))
        }
        if isReportLUNsWellKnown { list.add(Self.wellKnownField, .bool(true)) }
        if let nonconformity { list.add(Self.nonconformingField, .string(nonconformity)) }
        return Field(group: Self.group, display: summary, list.fields)
    }

    public var fields: [Field] { [field] }
}
