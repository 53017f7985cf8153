import VQRecord
import VirtioSCSI

// Records in, decoded records out: the first layer of analysis (DESIGN.md rule 7: matching
// is a layer; printing, statistics and the live view listen to it). It keeps, per device,
// the configuration the decoders need (from device state markers) and, per queue and
// descriptor head, the decode of the request in flight, so that a completion is decoded
// with its request (a controlq response's layout and a command's data-in depend on it) and
// carries the request's key fields. Memory is bounded by the rings' sizes: at most one
// request per head.

/// One capture record with its decode and, for a completion, its request.
public struct DecodedRecord: Sendable {
    public let record: CaptureRecord
    /// The decode of the chain's driver-written (available) or device-written (used) part;
    /// nil for markers.
    public let decode: ChainDecode?
    /// For a completion: the decode of its request, when the tap saw it.
    public let request: ChainDecode?
    public let deviceName: String
    public let queueName: String
    /// The device configuration in force for this record.
    public let context: VirtioSCSIChainContext
}

public struct RecordDecoder {
    private struct DeviceState {
        var name: String
        var context: VirtioSCSIChainContext
        /// Requests in flight, keyed by queue << 16 | head.
        var pending: [UInt32: (transactionID: UInt64, decode: ChainDecode)] = [:]
    }

    private var devices: [UInt16: DeviceState] = [:]
    /// Used when a capture has no state marker (a hand-made file, a tap started without one).
    public var defaultContext: VirtioSCSIChainContext

    public init(defaultContext: VirtioSCSIChainContext = VirtioSCSIChainContext()) {
        self.defaultContext = defaultContext
    }

    public mutating func decode(_ record: CaptureRecord) -> DecodedRecord {
        // Taken out of the dictionary while it changes, so that its `pending` table is not
        // copied on every record (copy on write).
        var device = devices.removeValue(forKey: record.deviceInstance)
            ?? DeviceState(name: "dev\(record.deviceInstance)", context: defaultContext)
        defer { devices[record.deviceInstance] = device }
        let queueName = VirtioSCSIQueueRole(queue: record.queue).name
        let key = UInt32(record.queue) << 16 | UInt32(record.head)

        switch record.body {
        case let .deviceState(marker):
            if !marker.deviceName.isEmpty { device.name = marker.deviceName }
            device.context = VirtioSCSIChainContext(cdbSize: marker.cdbSize, senseSize: marker.senseSize, features: marker.features)
            if marker.state != .attached {
                // After a reset every head is free again: nothing in flight survives it.
                device.pending = device.pending.filter { $0.key >> 16 != UInt32(record.queue) }
            }
            return DecodedRecord(record: record, decode: nil, request: nil, deviceName: device.name, queueName: queueName, context: device.context)
        case .drop:
            return DecodedRecord(record: record, decode: nil, request: nil, deviceName: device.name, queueName: queueName, context: device.context)
        case let .chain(segments):
            switch record.kind {
            case .available:
                let d = VirtioSCSIChainDecoder.decodeAvailable(segments, queue: record.queue, context: device.context)
                device.pending[key] = (record.transactionID, d)
                return DecodedRecord(record: record, decode: d, request: nil, deviceName: device.name, queueName: queueName, context: device.context)
            default:
                var request: ChainDecode?
                if let p = device.pending[key], p.transactionID == record.transactionID || record.transactionID == 0 {
                    request = p.decode
                    device.pending[key] = nil
                }
                let d = VirtioSCSIChainDecoder.decodeUsed(segments, usedLength: record.usedLength, queue: record.queue,
                                                          context: device.context, request: request)
                return DecodedRecord(record: record, decode: d, request: request, deviceName: device.name, queueName: queueName, context: device.context)
            }
        }
    }

    /// Requests seen and not yet completed (for `inflight` and stuck-request reports).
    public var pendingCount: Int { devices.values.reduce(0) { $0 + $1.pending.count } }
}
