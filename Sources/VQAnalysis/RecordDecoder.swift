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

/// What `RecordDecoder.decodeFast` made of a record.
public enum FastDecode: Equatable {
    /// Not a record for the fast path: decode it in full (`decode(view.record)`).
    case full
    /// A command request: `RecordDecoder.command` holds its key fields.
    case request
    /// A completion: `RecordDecoder.response` holds its key fields, and `command` its
    /// request's when `paired` (the tap saw it).
    case completion(paired: Bool)
}

public struct RecordDecoder {
    /// A request in flight, per queue and head: none, decoded in full (its decode is in
    /// `DeviceState.full`), or the key the fast path kept of it. Plain data: the slots are
    /// touched twice per command.
    private struct Slot {
        static let empty: UInt8 = 0, full: UInt8 = 1, key: UInt8 = 2
        var state: UInt8
        var transactionID: UInt64
        var key: CommandRequestKey?
    }

    private struct DeviceState {
        var name: String
        var context: VirtioSCSIChainContext
        /// Requests in flight, by queue and descriptor head (grown on demand: at most the
        /// rings' sizes).
        var slots: [[Slot]] = []
        /// The decodes of the requests in slots marked full, keyed by queue << 16 | head.
        var full: [UInt32: ChainDecode] = [:]
        var pendingCount = 0

        @inline(__always)
        func slot(_ queue: UInt16, _ head: UInt16) -> Slot {
            let q = Int(queue), h = Int(head)
            guard q < slots.count, h < slots[q].count else { return Slot(state: Slot.empty, transactionID: 0) }
            return slots[q][h]
        }

        mutating func set(_ queue: UInt16, _ head: UInt16, _ s: Slot, decode: ChainDecode? = nil) {
            let q = Int(queue), h = Int(head)
            if q >= slots.count {
                if s.state == Slot.empty { return }
                slots += Array(repeating: [], count: q + 1 - slots.count)
            }
            if h >= slots[q].count {
                if s.state == Slot.empty { return }
                slots[q] += Array(repeating: Slot(state: Slot.empty, transactionID: 0), count: max(h + 1, 256) - slots[q].count)
            }
            let old = slots[q][h].state
            if old == Slot.full { full[UInt32(queue) << 16 | UInt32(head)] = nil }
            if old != Slot.empty { pendingCount -= 1 }
            if s.state != Slot.empty { pendingCount += 1 }
            if let decode { full[UInt32(queue) << 16 | UInt32(head)] = decode }
            slots[q][h] = s
        }

        /// Frees a slot the fast path filled (it holds no full decode).
        @inline(__always)
        mutating func release(_ queue: UInt16, _ head: UInt16) {
            slots[Int(queue)][Int(head)].state = Slot.empty
            pendingCount -= 1
        }

        mutating func clear(queue: UInt16) {
            let q = Int(queue)
            guard q < slots.count else { return }
            pendingCount -= slots[q].reduce(0) { $0 + ($1.state == Slot.empty ? 0 : 1) }
            slots[q] = []
            full = full.filter { $0.key >> 16 != UInt32(queue) }
        }
    }

    private var devices: [DeviceState] = []
    private var deviceIndex: [UInt16: Int] = [:]
    private var lastInstance: UInt16 = 0
    private var lastIndex = -1
    /// The key fields of the last record `decodeFast` decoded (see `FastDecode`), kept here
    /// rather than returned: they are read in place, per record.
    public private(set) var command = CommandRequestKey()
    public private(set) var response = CommandResponseKey()
    /// Used when a capture has no state marker (a hand-made file, a tap started without one).
    public var defaultContext: VirtioSCSIChainContext

    public init(defaultContext: VirtioSCSIChainContext = VirtioSCSIChainContext()) {
        self.defaultContext = defaultContext
    }

    private mutating func index(of instance: UInt16) -> Int {
        if instance == lastInstance && lastIndex >= 0 { return lastIndex }
        let i: Int
        if let known = deviceIndex[instance] {
            i = known
        } else {
            i = devices.count
            devices.append(DeviceState(name: "dev\(instance)", context: defaultContext))
            deviceIndex[instance] = i
        }
        lastInstance = instance
        lastIndex = i
        return i
    }

    public mutating func decode(_ record: CaptureRecord) -> DecodedRecord {
        let i = index(of: record.deviceInstance)
        let queueName = VirtioSCSIQueueRole(queue: record.queue).name

        switch record.body {
        case let .deviceState(marker):
            if !marker.deviceName.isEmpty { devices[i].name = marker.deviceName }
            devices[i].context = VirtioSCSIChainContext(cdbSize: marker.cdbSize, senseSize: marker.senseSize, features: marker.features)
            if marker.state != .attached {
                // After a reset every head is free again: nothing in flight survives it.
                devices[i].clear(queue: record.queue)
            }
            return DecodedRecord(record: record, decode: nil, request: nil, deviceName: devices[i].name, queueName: queueName, context: devices[i].context)
        case .drop:
            return DecodedRecord(record: record, decode: nil, request: nil, deviceName: devices[i].name, queueName: queueName, context: devices[i].context)
        case let .chain(segments):
            let context = devices[i].context
            switch record.kind {
            case .available:
                let d = VirtioSCSIChainDecoder.decodeAvailable(segments, queue: record.queue, context: context)
                devices[i].set(record.queue, record.head, Slot(state: Slot.full, transactionID: record.transactionID), decode: d)
                return DecodedRecord(record: record, decode: d, request: nil, deviceName: devices[i].name, queueName: queueName, context: context)
            default:
                var request: ChainDecode?
                let p = devices[i].slot(record.queue, record.head)
                if p.state != Slot.empty, p.transactionID == record.transactionID || record.transactionID == 0 {
                    if p.state == Slot.full {
                        request = devices[i].full[UInt32(record.queue) << 16 | UInt32(record.head)]
                    } else {
                        request = p.key?.chainDecode(queue: record.queue)
                    }
                    devices[i].set(record.queue, record.head, Slot(state: Slot.empty, transactionID: 0))
                }
                let d = VirtioSCSIChainDecoder.decodeUsed(segments, usedLength: record.usedLength, queue: record.queue,
                                                          context: context, request: request)
                return DecodedRecord(record: record, decode: d, request: request, deviceName: devices[i].name, queueName: queueName, context: context)
            }
        }
    }

    /// The cheap decode of a command or its completion on a request queue, keeping the same
    /// pairing state as `decode`; `.full` (and nothing changed) when the record needs the
    /// full decode: then pass `view.record` to `decode`.
    public mutating func decodeFast(_ view: RecordView) -> FastDecode {
        // Malformed chains, a used length beyond the buffers and unknown flag bits are
        // rare and print or count differently: the full decode takes them.
        guard view.queue >= 2, view.flags.rawValue & ~Self.fastFlags == 0 else { return .full }
        let i = index(of: view.deviceInstance)
        let context = devices[i].context
        if view.kind == .available {
            guard command.read(view, context: context) else { return .full }
            devices[i].set(view.queue, view.head, Slot(state: Slot.key, transactionID: view.transactionID, key: command))
            return .request
        }
        let p = devices[i].slot(view.queue, view.head)
        let paired = p.state != Slot.empty && (p.transactionID == view.transactionID || view.transactionID == 0)
        // A request decoded in full pairs with a completion decoded in full.
        guard !paired || p.state == Slot.key, response.read(view, context: context) else { return .full }
        if paired, let key = p.key {
            command = key
            devices[i].release(view.queue, view.head)
        }
        return .completion(paired: paired)
    }

    /// The name of the device of the last record decoded.
    public var deviceName: String { lastIndex >= 0 ? devices[lastIndex].name : "" }

    /// indirect, snaplen, torn, orphan, pre-attach.
    private static let fastFlags: UInt32 = 0x7f & ~(RecordFlags.malformed.rawValue | RecordFlags.usedLengthExceeds.rawValue)

    /// Requests seen and not yet completed (for `inflight` and stuck-request reports).
    public var pendingCount: Int { devices.reduce(0) { $0 + $1.pendingCount } }
}
