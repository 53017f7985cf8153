import VQWire

// The one entry point for bytes of a known message kind (`vqtap decode KIND HEX`): picks the
// decoder, passes the configuration-dependent sizes (DESIGN.md rule 5), and reports bytes
// past the end of a fixed-size message as `virtio_scsi.trailing` instead of failing.

/// The message kinds a person can name on the command line.
public enum MessageKind: String, CaseIterable, Sendable {
    case commandRequest = "cmd-req"
    case commandResponse = "cmd-resp"
    case tmfRequest = "tmf-req"
    case tmfResponse = "tmf-resp"
    case anRequest = "an-req"
    case anResponse = "an-resp"
    case event
    case cdb
    case sense
    case config

    /// Whether the message has a fixed size, so that extra bytes are trailing rather than
    /// data-out / data-in (commands) or CDB / sense padding (the SCSI kinds).
    public var isFixedSize: Bool {
        switch self {
        case .tmfRequest, .tmfResponse, .anRequest, .anResponse, .event, .config: true
        case .commandRequest, .commandResponse, .cdb, .sense: false
        }
    }
}

/// One decoded message of any kind.
public enum VirtioSCSIMessage: Sendable, Equatable {
    case commandRequest(CommandRequest)
    case commandResponse(CommandResponse)
    case tmfRequest(TMFRequest)
    case tmfResponse(TMFResponse)
    case anRequest(ANRequest)
    case anResponse(ANResponse)
    case event(VirtioSCSIEvent)
    case cdb(SCSICommand)
    case sense(SenseData)
    case config(VirtioSCSIConfig)

    public var kind: MessageKind {
        switch self {
        case .commandRequest: .commandRequest
        case .commandResponse: .commandResponse
        case .tmfRequest: .tmfRequest
        case .tmfResponse: .tmfResponse
        case .anRequest: .anRequest
        case .anResponse: .anResponse
        case .event: .event
        case .cdb: .cdb
        case .sense: .sense
        case .config: .config
        }
    }

    var described: any FieldDescribable {
        switch self {
        case let .commandRequest(m): m
        case let .commandResponse(m): m
        case let .tmfRequest(m): m
        case let .tmfResponse(m): m
        case let .anRequest(m): m
        case let .anResponse(m): m
        case let .event(m): m
        case let .cdb(m): m
        case let .sense(m): m
        case let .config(m): m
        }
    }
}

/// A decoded message and the bytes found after its end.
public struct DecodedMessage: FieldDescribable, Sendable, Equatable {
    public static let trailingField = FieldDef("virtio_scsi.trailing", "Trailing bytes", .uint(bits: 32))

    public let message: VirtioSCSIMessage
    /// Bytes after a fixed-size message (always empty for the other kinds).
    public let trailing: [UInt8]

    public init(message: VirtioSCSIMessage, trailing: [UInt8] = []) {
        self.message = message
        self.trailing = trailing
    }

    public var summary: String {
        var s: String
        switch message {
        case let .cdb(c): s = "cdb " + c.summary
        case let .sense(d): s = "sense " + d.summary
        default: s = message.described.summary
        }
        if !trailing.isEmpty { s += " trailing \(trailing.count)" }
        return s
    }

    /// One `virtio_scsi` group for every kind (the SCSI kinds' groups are put inside it).
    public var fields: [Field] {
        var top = message.described.fields
        if top.count != 1 || top[0].def != VirtioSCSI.protocolField {
            top = [Field(group: VirtioSCSI.protocolField, top)]
        }
        if !trailing.isEmpty {
            top[0].children.append(Field(Self.trailingField, .uint(UInt64(trailing.count))))
        }
        return top
    }
}

public enum VirtioSCSIDecoder {
    /// Decodes `bytes` as one message of `kind`. For `cmd-req` everything after the cdb is
    /// data-out, for `cmd-resp` everything after the sense buffer is data-in; `command`, the
    /// CDB of the request a `cmd-resp` answers, lets the SCSI layer decode that data-in.
    public static func decode(kind: MessageKind, bytes: [UInt8], cdbSize: Int = VirtioSCSI.defaultCDBSize,
                              senseSize: Int = VirtioSCSI.defaultSenseSize, t10PI: Bool = false,
                              command: SCSICommand? = nil) throws(DecodeError) -> DecodedMessage {
        var r = ByteReader(bytes)
        let message: VirtioSCSIMessage
        switch kind {
        case .commandRequest: message = .commandRequest(try CommandRequest(decoding: &r, cdbSize: cdbSize, t10PI: t10PI))
        case .commandResponse: message = .commandResponse(try CommandResponse(decoding: &r, senseSize: senseSize, command: command))
        case .tmfRequest: message = .tmfRequest(try TMFRequest(decoding: &r))
        case .tmfResponse: message = .tmfResponse(try TMFResponse(decoding: &r))
        case .anRequest: message = .anRequest(try ANRequest(decoding: &r))
        case .anResponse: message = .anResponse(try ANResponse(decoding: &r))
        case .event: message = .event(try VirtioSCSIEvent(decoding: &r))
        case .cdb: message = .cdb(try SCSICommand(decoding: r.readRest()))
        case .sense: message = .sense(try SenseData(decoding: r.readRest()))
        case .config: message = .config(try VirtioSCSIConfig(decoding: &r))
        }
        return DecodedMessage(message: message, trailing: r.readRest())
    }
}
