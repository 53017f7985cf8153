import VQRecord
import VQWire

// From captured chains to virtio-scsi messages: which bytes of a chain are headers (the
// framer the tap is handed, so the snap length cuts payload only) and how the readable and
// writable parts of a chain on each queue decode. Queue roles: 0 controlq, 1 eventq,
// 2.. request queues (Appendix H, "Configuration").

public enum VirtioSCSIQueueRole: Sendable, Equatable {
    case control
    case event
    /// Request queue n (virtqueue n + 2).
    case request(Int)

    public init(queue: UInt16) {
        switch queue {
        case 0: self = .control
        case 1: self = .event
        default: self = .request(Int(queue) - 2)
        }
    }

    /// `controlq`, `eventq`, `request0`: the interface names of a capture.
    public var name: String {
        switch self {
        case .control: "controlq"
        case .event: "eventq"
        case let .request(n): "request\(n)"
        }
    }
}

/// The configuration a chain's layout depends on (DESIGN.md rule 5).
public struct VirtioSCSIChainContext: Sendable, Equatable {
    public var cdbSize: Int
    public var senseSize: Int
    public var t10PI: Bool

    public init(cdbSize: Int = VirtioSCSI.defaultCDBSize, senseSize: Int = VirtioSCSI.defaultSenseSize, t10PI: Bool = false) {
        self.cdbSize = cdbSize
        self.senseSize = senseSize
        self.t10PI = t10PI
    }

    /// VIRTIO_SCSI_F_T10_PI is feature bit 3.
    public init(cdbSize: UInt32, senseSize: UInt32, features: UInt64) {
        self.init(cdbSize: Int(cdbSize), senseSize: Int(senseSize), t10PI: features & (1 << 3) != 0)
    }
}

public struct VirtioSCSIFramer: ChainFramer {
    public var context: VirtioSCSIChainContext

    public init(_ context: VirtioSCSIChainContext = VirtioSCSIChainContext()) { self.context = context }

    public func readableHeaderLength(queue: UInt16) -> Int {
        switch VirtioSCSIQueueRole(queue: queue) {
        case .control: TMFRequest.size  // the larger of the two controlq requests
        case .event: 0
        case .request: CommandRequest.headerSize(t10PI: context.t10PI) + context.cdbSize
        }
    }

    public func writableHeaderLength(queue: UInt16) -> Int {
        switch VirtioSCSIQueueRole(queue: queue) {
        case .control: ANResponse.size  // the larger of the two controlq responses
        case .event: VirtioSCSIEvent.size
        case .request: CommandResponse.headerSize + context.senseSize
        }
    }
}

/// What one side of a captured chain holds.
public struct ChainDecode: FieldDescribable, Sendable {
    // Indirect: a decode travels inside transactions and events, which are copied per record.
    public indirect enum Content: Sendable {
        case message(VirtioSCSIMessage)
        /// A buffer the driver posted on the eventq, for the device to fill.
        case eventBuffer(length: UInt32)
        /// The bytes did not decode; `bytes` is what was there.
        case undecodable(DecodeError, bytes: [UInt8])
    }

    public static let payloadLengthField = FieldDef("virtio_scsi.payload_length", "Payload length", .uint(bits: 32))
    public static let payloadCapturedField = FieldDef("virtio_scsi.payload_captured", "Payload captured", .uint(bits: 32))
    public static let errorField = FieldDef("virtio_scsi.error", "Decode error", .string)
    public static let bytesField = FieldDef("virtio_scsi.bytes", "Bytes", .bytes)
    public static let eventBufferField = FieldDef("virtio_scsi.event_buffer_length", "Event buffer length", .uint(bits: 32))
    public static let allFields = [payloadLengthField, payloadCapturedField, errorField, bytesField, eventBufferField]

    public var role: VirtioSCSIQueueRole
    public var content: Content
    /// Bytes beyond the headers: data-out of a request, data-in of a response, as the
    /// descriptors say, and how many of them were captured.
    public var payloadLength: UInt64
    public var payloadCaptured: UInt64

    public var message: VirtioSCSIMessage? {
        if case let .message(m) = content { return m }
        return nil
    }

    /// The decoded SCSI command of a command request.
    public var command: SCSICommand? {
        if case let .commandRequest(r)? = message, case let .success(c) = r.command { return c }
        return nil
    }

    public var summary: String {
        switch content {
        case let .message(m):
            var s = DecodedMessage(message: m).summary
            if payloadCaptured < payloadLength { s += " (\(payloadCaptured) of \(payloadLength) payload bytes captured)" }
            return s
        case let .eventBuffer(length):
            return "event buffer posted (\(length) bytes)"
        case let .undecodable(error, bytes):
            return "undecodable \(bytes.count) bytes: \(error.description)"
        }
    }

    public var fields: [Field] {
        switch content {
        case let .message(m):
            var top = DecodedMessage(message: m).fields
            if payloadCaptured < payloadLength, !top.isEmpty {
                top[0].children.append(Field(Self.payloadLengthField, .uint(payloadLength)))
                top[0].children.append(Field(Self.payloadCapturedField, .uint(payloadCaptured)))
            }
            return top
        case let .eventBuffer(length):
            return [Field(group: VirtioSCSI.protocolField, [Field(Self.eventBufferField, .uint(UInt64(length)))])]
        case let .undecodable(error, bytes):
            return [Field(group: VirtioSCSI.protocolField, [
                Field(Self.errorField, .string(error.description)),
                Field(Self.bytesField, .bytes(bytes)),
            ])]
        }
    }
}

/// Decodes the two sides of captured chains. Feed it the request when decoding a completion:
/// a controlq response's layout and a command's data-in depend on it.
public enum VirtioSCSIChainDecoder {
    /// The driver-written part of a chain the driver made available.
    public static func decodeAvailable(_ segments: ChainSegments, queue: UInt16, context: VirtioSCSIChainContext) -> ChainDecode {
        let role = VirtioSCSIQueueRole(queue: queue)
        let (bytes, length) = gather(segments, writable: false)
        let header = VirtioSCSIFramer(context).readableHeaderLength(queue: queue)
        let payloadLength = UInt64(max(0, Int(clamping: length) - header))
        let payloadCaptured = UInt64(max(0, bytes.count - header))
        var r = ByteReader(bytes)
        do throws(DecodeError) {
            switch role {
            case .request:
                let m = try CommandRequest(decoding: &r, cdbSize: context.cdbSize, t10PI: context.t10PI)
                return ChainDecode(role: role, content: .message(.commandRequest(m)), payloadLength: payloadLength, payloadCaptured: payloadCaptured)
            case .control:
                switch try ControlRequest(decoding: &r) {
                case let .taskManagement(m):
                    return ChainDecode(role: role, content: .message(.tmfRequest(m)), payloadLength: 0, payloadCaptured: 0)
                case let .asyncNotification(m):
                    return ChainDecode(role: role, content: .message(.anRequest(m)), payloadLength: 0, payloadCaptured: 0)
                }
            case .event:
                let writable = segments.withUnsafeEntries { e in (0..<e.count).reduce(UInt64(0)) { $0 + (e.isWritable($1) ? UInt64(e.length($1)) : 0) } }
                return ChainDecode(role: role, content: .eventBuffer(length: UInt32(clamping: writable)), payloadLength: 0, payloadCaptured: 0)
            }
        } catch {
            return ChainDecode(role: role, content: .undecodable(error, bytes: bytes), payloadLength: payloadLength, payloadCaptured: payloadCaptured)
        }
    }

    /// The device-written part of a chain the device returned. `request` is the decode of
    /// the same chain when it was made available (nil for an orphan completion).
    public static func decodeUsed(_ segments: ChainSegments, usedLength: UInt32, queue: UInt16,
                                  context: VirtioSCSIChainContext, request: ChainDecode?) -> ChainDecode {
        let role = VirtioSCSIQueueRole(queue: queue)
        let (gathered, _) = gather(segments, writable: true)
        let bytes = gathered.count > Int(usedLength) ? Array(gathered[0..<Int(usedLength)]) : gathered
        let header = VirtioSCSIFramer(context).writableHeaderLength(queue: queue)
        let payloadLength = UInt64(max(0, Int(usedLength) - header))
        let payloadCaptured = UInt64(max(0, bytes.count - header))
        var r = ByteReader(bytes)
        do throws(DecodeError) {
            switch role {
            case .request:
                var protectionIn: UInt32 = 0
                if case let .commandRequest(req)? = request?.message { protectionIn = req.protectionInfo?.bytesIn ?? 0 }
                let m = try CommandResponse(decoding: &r, senseSize: context.senseSize, command: request?.command, protectionBytesIn: protectionIn)
                return ChainDecode(role: role, content: .message(.commandResponse(m)), payloadLength: payloadLength, payloadCaptured: payloadCaptured)
            case .control:
                let type: ControlType
                switch request?.message {
                case .tmfRequest?: type = .taskManagement
                case let .anRequest(a)?: type = a.kind.controlType
                default:
                    // An orphan: the response's length says which layout it has.
                    type = usedLength >= UInt32(ANResponse.size) ? .anQuery : .taskManagement
                }
                switch try ControlResponse(decoding: &r, for: type) {
                case let .taskManagement(m):
                    return ChainDecode(role: role, content: .message(.tmfResponse(m)), payloadLength: 0, payloadCaptured: 0)
                case let .asyncNotification(m):
                    return ChainDecode(role: role, content: .message(.anResponse(m)), payloadLength: 0, payloadCaptured: 0)
                }
            case .event:
                let m = try VirtioSCSIEvent(decoding: &r)
                return ChainDecode(role: role, content: .message(.event(m)), payloadLength: 0, payloadCaptured: 0)
            }
        } catch {
            return ChainDecode(role: role, content: .undecodable(error, bytes: bytes), payloadLength: payloadLength, payloadCaptured: payloadCaptured)
        }
    }

    /// The captured bytes of the readable (or writable) segments in chain order, stopping
    /// after the first segment that was not captured whole (later bytes would land at the
    /// wrong offsets), and the descriptors' total length.
    static func gather(_ segments: ChainSegments, writable: Bool) -> (bytes: [UInt8], length: UInt64) {
        segments.withUnsafeEntries { e in
            var bytes: [UInt8] = []
            var length: UInt64 = 0
            var complete = true
            for i in 0..<e.count where e.isWritable(i) == writable {
                length += UInt64(e.length(i))
                guard complete else { continue }
                let b = e.bytes(i)
                bytes.append(contentsOf: b)
                if b.count < Int(e.length(i)) { complete = false }
            }
            return (bytes, length)
        }
    }
}
