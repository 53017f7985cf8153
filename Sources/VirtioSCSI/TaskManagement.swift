import VQWire

// Appendix H, "Device Operation: controlq", "Task management function",
// struct virtio_scsi_ctrl_tmf (Linux: virtio_scsi_ctrl_tmf_req / _resp).
//
//   request (device-readable, 24 bytes)            response (device-writable, 1 byte)
//   0          4           8          16        24     0          1
//   +----------+-----------+----------+---------+      +----------+
//   | type = 0 | subtype   | lun[8]   | id      |      | response |
//   | (le32)   | (le32)    |          | (le64)  |      |          |
//   +----------+-----------+----------+---------+      +----------+
//
// The id matches the tag of a command for ABORT_TASK and QUERY_TASK; other subtypes
// ignore it (and the LUN, for I_T_NEXUS_RESET), but the fields are always present.

public struct TMFRequest: FieldDescribable, Sendable, Equatable {
    public static let size = 24

    public static let subtypeField = FieldDef("virtio_scsi.tmf.subtype", "TMF", .code(bits: 32))

    public static let allFields = [subtypeField]

    public var subtype: TMFSubtype
    public var lun: VirtioSCSILUN
    /// The tag of the command the function applies to.
    public var id: UInt64

    public init(subtype: TMFSubtype, lun: VirtioSCSILUN, id: UInt64 = 0) {
        self.subtype = subtype
        self.lun = lun
        self.id = id
    }

    public init(decoding r: inout ByteReader) throws(DecodeError) {
        let typeOffset = r.offset
        let type = try r.readLE32(ControlRequest.typeField.name)
        guard type == ControlType.taskManagement.rawValue else {
            throw .malformed(ControlRequest.typeField.name, at: typeOffset, "type \(type) is not TMF (0)")
        }
        subtype = TMFSubtype(rawValue: try r.readLE32(Self.subtypeField.name))
        lun = try VirtioSCSILUN(decoding: &r)
        id = try r.readLE64(CommandRequest.idField.name)
    }

    public func encode(into w: inout ByteWriter) {
        w.writeLE32(ControlType.taskManagement.rawValue)
        w.writeLE32(subtype.rawValue)
        lun.encode(into: &w)
        w.writeLE64(id)
    }

    /// `tmf-req ABORT_TASK 0:5 tag 0x00000000deadbeef`; the tag only where it matters.
    public var summary: String {
        var s = "tmf-req \(subtype.name) \(lun.summary)"
        if subtype.usesTag || id != 0 { s += " tag \(Hex.u64(id))" }
        return s
    }

    public var fields: [Field] {
        let type = ControlType.taskManagement
        return [Field(group: VirtioSCSI.protocolField, [
            Field(ControlRequest.typeField, .code(UInt64(type.rawValue), name: type.name)),
            Field(Self.subtypeField, .code(UInt64(subtype.rawValue), name: subtype.name)),
            lun.field,
            Field(CommandRequest.idField, .hex(id)),
        ])]
    }
}

public struct TMFResponse: FieldDescribable, Sendable, Equatable {
    public static let size = 1

    public static let responseField = FieldDef("virtio_scsi.tmf.response", "TMF response", .code(bits: 8))

    public static let allFields = [responseField]

    public var response: VirtioSCSIResponse

    public init(response: VirtioSCSIResponse) { self.response = response }

    public init(decoding r: inout ByteReader) throws(DecodeError) {
        response = VirtioSCSIResponse(rawValue: try r.readU8(Self.responseField.name))
    }

    public func encode(into w: inout ByteWriter) {
        w.writeU8(response.rawValue)
    }

    /// `tmf-resp FUNCTION_SUCCEEDED`.
    public var summary: String { "tmf-resp \(response.name(in: .taskManagement))" }

    public var fields: [Field] {
        [Field(group: VirtioSCSI.protocolField, [
            Field(Self.responseField, .code(UInt64(response.rawValue), name: response.name(in: .taskManagement))),
        ])]
    }
}
