import VQWire

// Appendix H, "Device Operation: controlq", struct virtio_scsi_ctrl: every controlq request
// starts with a le32 type that selects the rest; the response layout follows the request's
// type, so a response is decoded given its request.
//
//   0          4
//   +----------+--------------------------------------------+
//   | type     | TMF (0): TMFRequest | AN_QUERY (1) /        |
//   | (le32)   | AN_SUBSCRIBE (2): ANRequest                 |
//   +----------+--------------------------------------------+

public enum ControlRequest: FieldDescribable, Sendable, Equatable {
    case taskManagement(TMFRequest)
    case asyncNotification(ANRequest)

    public static let typeField = FieldDef("virtio_scsi.ctrl.type", "Control type", .code(bits: 32))

    public static let allFields = [typeField]

    /// Dispatches on `type`; a type this decoder does not know is `unsupported`.
    public init(decoding r: inout ByteReader) throws(DecodeError) {
        var peek = r
        let typeOffset = peek.offset
        let type = ControlType(rawValue: try peek.readLE32(Self.typeField.name))
        switch type {
        case .taskManagement: self = .taskManagement(try TMFRequest(decoding: &r))
        case .anQuery, .anSubscribe: self = .asyncNotification(try ANRequest(decoding: &r))
        case let .unknown(v):
            throw .unsupported(Self.typeField.name, at: typeOffset, "controlq request type \(v) (\(type.name))")
        }
    }

    public func encode(into w: inout ByteWriter) {
        switch self {
        case let .taskManagement(m): m.encode(into: &w)
        case let .asyncNotification(m): m.encode(into: &w)
        }
    }

    public var type: ControlType {
        switch self {
        case .taskManagement: .taskManagement
        case let .asyncNotification(m): m.kind.controlType
        }
    }

    public var summary: String {
        switch self {
        case let .taskManagement(m): m.summary
        case let .asyncNotification(m): m.summary
        }
    }

    public var fields: [Field] {
        switch self {
        case let .taskManagement(m): m.fields
        case let .asyncNotification(m): m.fields
        }
    }
}

/// The device-written part of a controlq request, whose layout depends on the request type.
public enum ControlResponse: FieldDescribable, Sendable, Equatable {
    case taskManagement(TMFResponse)
    case asyncNotification(ANResponse)

    /// Decodes the response to a request of type `type` (TMF, AN_QUERY or AN_SUBSCRIBE).
    public init(decoding r: inout ByteReader, for type: ControlType) throws(DecodeError) {
        switch type {
        case .taskManagement: self = .taskManagement(try TMFResponse(decoding: &r))
        case .anQuery, .anSubscribe: self = .asyncNotification(try ANResponse(decoding: &r))
        case let .unknown(v):
            throw .unsupported(ControlRequest.typeField.name, at: r.offset, "controlq request type \(v) (\(type.name))")
        }
    }

    public init(decoding r: inout ByteReader, for request: ControlRequest) throws(DecodeError) {
        try self.init(decoding: &r, for: request.type)
    }

    public func encode(into w: inout ByteWriter) {
        switch self {
        case let .taskManagement(m): m.encode(into: &w)
        case let .asyncNotification(m): m.encode(into: &w)
        }
    }

    public var summary: String {
        switch self {
        case let .taskManagement(m): m.summary
        case let .asyncNotification(m): m.summary
        }
    }

    public var fields: [Field] {
        switch self {
        case let .taskManagement(m): m.fields
        case let .asyncNotification(m): m.fields
        }
    }
}
