import VQWire

// Appendix H, "Device Operation: controlq", "Asynchronous notification query" and
// "Asynchronous notification subscription", struct virtio_scsi_ctrl_an
// (Linux: virtio_scsi_ctrl_an_req / _resp).
//
//   request (device-readable, 16 bytes)          response (device-writable, 5 bytes)
//   0          4          12                16   0              4          5
//   +----------+----------+-----------------+    +--------------+----------+
//   | type     | lun[8]   | event_requested |    | event_actual | response |
//   | (le32)   |          | (le32)          |    | (le32)       |          |
//   +----------+----------+-----------------+    +--------------+----------+
//   type: 1 AN_QUERY, 2 AN_SUBSCRIBE. Event masks: ANEvents (unknown bits kept).

public struct ANRequest: FieldDescribable, Sendable, Equatable {
    public static let size = 16

    public static let eventRequestedField = FieldDef("virtio_scsi.an.event_requested", "Events requested", .flags(bits: 32))

    public static let allFields = [eventRequestedField]

    public enum Kind: Sendable, Hashable {
        case query, subscribe

        public var controlType: ControlType { self == .query ? .anQuery : .anSubscribe }
        public var name: String { self == .query ? "QUERY" : "SUBSCRIBE" }
    }

    public var kind: Kind
    public var lun: VirtioSCSILUN
    public var eventRequested: ANEvents

    public init(kind: Kind, lun: VirtioSCSILUN, eventRequested: ANEvents) {
        self.kind = kind
        self.lun = lun
        self.eventRequested = eventRequested
    }

    public init(decoding r: inout ByteReader) throws(DecodeError) {
        let typeOffset = r.offset
        let type = ControlType(rawValue: try r.readLE32(ControlRequest.typeField.name))
        switch type {
        case .anQuery: kind = .query
        case .anSubscribe: kind = .subscribe
        default:
            throw .malformed(ControlRequest.typeField.name, at: typeOffset,
                             "type \(type.rawValue) is not AN_QUERY (1) or AN_SUBSCRIBE (2)")
        }
        lun = try VirtioSCSILUN(decoding: &r)
        eventRequested = ANEvents(rawValue: try r.readLE32(Self.eventRequestedField.name))
    }

    public func encode(into w: inout ByteWriter) {
        w.writeLE32(kind.controlType.rawValue)
        lun.encode(into: &w)
        w.writeLE32(eventRequested.rawValue)
    }

    /// `an-req QUERY 0:0 events MEDIA_CHANGE|DEVICE_BUSY`.
    public var summary: String { "an-req \(kind.name) \(lun.summary) events \(eventRequested.text)" }

    public var fields: [Field] {
        let type = kind.controlType
        return [Field(group: VirtioSCSI.protocolField, [
            Field(ControlRequest.typeField, .code(UInt64(type.rawValue), name: type.name)),
            lun.field,
            Field(Self.eventRequestedField, eventRequested.value()),
        ])]
    }
}

public struct ANResponse: FieldDescribable, Sendable, Equatable {
    public static let size = 5

    public static let eventActualField = FieldDef("virtio_scsi.an.event_actual", "Events supported", .flags(bits: 32))
    public static let responseField = FieldDef("virtio_scsi.an.response", "AN response", .code(bits: 8))

    public static let allFields = [eventActualField, responseField]

    public var eventActual: ANEvents
    public var response: VirtioSCSIResponse

    public init(eventActual: ANEvents, response: VirtioSCSIResponse = .ok) {
        self.eventActual = eventActual
        self.response = response
    }

    public init(decoding r: inout ByteReader) throws(DecodeError) {
        eventActual = ANEvents(rawValue: try r.readLE32(Self.eventActualField.name))
        response = VirtioSCSIResponse(rawValue: try r.readU8(Self.responseField.name))
    }

    public func encode(into w: inout ByteWriter) {
        w.writeLE32(eventActual.rawValue)
        w.writeU8(response.rawValue)
    }

    /// `an-resp OK events MEDIA_CHANGE`.
    public var summary: String { "an-resp \(response.name(in: .asyncNotification)) events \(eventActual.text)" }

    public var fields: [Field] {
        [Field(group: VirtioSCSI.protocolField, [
            Field(Self.eventActualField, eventActual.value()),
            Field(Self.responseField, .code(UInt64(response.rawValue), name: response.name(in: .asyncNotification))),
        ])]
    }
}
