import VQWire

// Appendix H, "Device Operation: eventq", struct virtio_scsi_event; PARAM_CHANGE from
// virtio-facts.md (VIRTIO_SCSI_F_CHANGE).
//
//   0                        4          12         16
//   +------------------------+----------+----------+
//   | event (le32)           | lun[8]   | reason   |     device-writable, 16 bytes
//   | bit 31: EVENTS_MISSED  |          | (le32)   |
//   | bits 0-30: type        |          |          |
//   +------------------------+----------+----------+
//   type 0 NO_EVENT, 1 TRANSPORT_RESET (reason HARD 0 / RESCAN 1 / REMOVED 2),
//   2 ASYNC_NOTIFY (reason = ANEvents mask), 3 PARAM_CHANGE (reason = ASC | ASCQ << 8).
//
// A device may put NO_EVENT in a buffer shorter than event_info_size, so a NO_EVENT event
// needs only its first 4 bytes; every other event needs all 16.

public struct VirtioSCSIEvent: FieldDescribable, Sendable, Equatable {
    public static let size = 16
    public static let eventsMissedBit: UInt32 = 0x8000_0000

    public static let typeField = FieldDef("virtio_scsi.event.type", "Event", .code(bits: 31))
    public static let eventsMissedField = FieldDef("virtio_scsi.event.events_missed", "Events missed", .bool)
    public static let reasonField = FieldDef("virtio_scsi.event.reason", "Reason", .code(bits: 32))
    public static let anEventsField = FieldDef("virtio_scsi.event.an_events", "Asynchronous events", .flags(bits: 32))
    public static let ascField = FieldDef("virtio_scsi.event.asc", "ASC", .uint(bits: 8))
    public static let ascqField = FieldDef("virtio_scsi.event.ascq", "ASCQ", .uint(bits: 8))
    public static let ascTextField = FieldDef("virtio_scsi.event.asc_text", "Additional sense", .string)

    public static let allFields = [typeField, eventsMissedField, reasonField, anEventsField, ascField, ascqField, ascTextField]

    public var type: EventType
    public var eventsMissed: Bool
    /// nil only for a NO_EVENT written into a short buffer.
    public var lun: VirtioSCSILUN?
    public var reason: UInt32?

    public init(type: EventType, eventsMissed: Bool = false, lun: VirtioSCSILUN?, reason: UInt32?) {
        precondition(type.rawValue & Self.eventsMissedBit == 0, "the event type has 31 bits")
        precondition((lun == nil) == (reason == nil), "lun and reason come together")
        self.type = type
        self.eventsMissed = eventsMissed
        self.lun = lun
        self.reason = reason
    }

    public init(decoding r: inout ByteReader) throws(DecodeError) {
        let event = try r.readLE32(Self.typeField.name)
        type = EventType(rawValue: event & ~Self.eventsMissedBit)
        eventsMissed = event & Self.eventsMissedBit != 0
        if type == .noEvent && r.remaining < Self.size - 4 {
            lun = nil
            reason = nil
            return
        }
        lun = try VirtioSCSILUN(decoding: &r)
        reason = try r.readLE32(Self.reasonField.name)
    }

    public func encode(into w: inout ByteWriter) {
        w.writeLE32(type.rawValue | (eventsMissed ? Self.eventsMissedBit : 0))
        if let lun, let reason {
            lun.encode(into: &w)
            w.writeLE32(reason)
        }
    }

    /// PARAM_CHANGE: the additional sense code and qualifier of the change.
    public var asc: UInt8? { type == .paramChange ? reason.map { UInt8(truncatingIfNeeded: $0) } : nil }
    public var ascq: UInt8? { type == .paramChange ? reason.map { UInt8(truncatingIfNeeded: $0 >> 8) } : nil }

    /// The name of `reason` for this event type.
    public var reasonName: String? {
        guard let reason else { return nil }
        switch type {
        case .noEvent, .unknown: return reason == 0 ? "none" : Naming.unknown(UInt64(reason))
        case .transportReset: return ResetReason(rawValue: reason).name
        case .asyncNotify: return ANEvents(rawValue: reason).text
        case .paramChange:
            let asc = Hex.short(UInt64(reason & 0xff)), ascq = Hex.short(UInt64(reason >> 8 & 0xff))
            let rest = reason >> 16
            let text = ASCText.text(asc: UInt8(truncatingIfNeeded: reason), ascq: UInt8(truncatingIfNeeded: reason >> 8))
            return rest == 0 ? "asc \(asc)/\(ascq) (\(text))" : "asc \(asc)/\(ascq) (\(text)) \(Naming.unknown(UInt64(rest << 16)))"
        }
    }

    /// A NO_EVENT whose lun and reason are zero (or absent) carries nothing worth showing.
    public var isBlankNoEvent: Bool {
        type == .noEvent && (reason ?? 0) == 0 && (lun?.bytes.allSatisfy { $0 == 0 } ?? true)
    }

    /// `event TRANSPORT_RESET RESCAN 0:3`, `event NO_EVENT EVENTS_MISSED`,
    /// `event PARAM_CHANGE asc 0x2a/0x09 (Capacity data has changed) 0:0`.
    public var summary: String {
        var s = "event \(type.name)"
        if !isBlankNoEvent, let lun, let reasonName {
            s += " \(reasonName) \(lun.summary)"
        }
        if eventsMissed { s += " EVENTS_MISSED" }
        return s
    }

    public var fields: [Field] {
        var list = FieldList()
        list.add(Self.typeField, .code(UInt64(type.rawValue), name: type.name))
        list.add(Self.eventsMissedField, .bool(eventsMissed))
        if !isBlankNoEvent, let lun, let reason, let reasonName {
            list.add(lun.field)
            list.add(Self.reasonField, .code(UInt64(reason), name: reasonName))
            if type == .asyncNotify { list.add(Self.anEventsField, ANEvents(rawValue: reason).value()) }
            if let asc, let ascq {
                list.add(Self.ascField, .uint(UInt64(asc)))
                list.add(Self.ascqField, .uint(UInt64(ascq)))
                list.add(Self.ascTextField, .string(ASCText.text(asc: asc, ascq: ascq)))
            }
        }
        return [Field(group: VirtioSCSI.protocolField, list.fields)]
    }
}
