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
    /// `DeviceState.full`), or the key the fast path kept of it (in `DeviceState.keys`, with
    /// its segments when it came as a `CaptureRecord`). Plain data: the slots are touched
    /// twice per command.
    private struct Slot {
        static let empty: UInt8 = 0, full: UInt8 = 1, key: UInt8 = 2
        var state: UInt8
        var transactionID: UInt64
    }

    /// What the fast path keeps of a request it read from a `CaptureRecord`: the chain and
    /// its context, so that its completion can still be decoded in full, and so that a
    /// transaction can be detailed later.
    private struct KeptChain {
        var segments: ChainSegments
        var context: VirtioSCSIChainContext
    }

    private struct DeviceState {
        var name: String
        var context: VirtioSCSIChainContext
        /// Requests in flight, by queue and descriptor head (grown on demand: at most the
        /// rings' sizes), and the keys of those in state `key`.
        var slots: [[Slot]] = []
        var keys: [[CommandRequestKey]] = []
        /// The chains of the requests in state `key` that came as `CaptureRecord`s, keyed
        /// like `full`.
        var chains: [UInt32: KeptChain] = [:]
        /// The decodes of the requests in slots marked full, keyed by queue << 16 | head.
        var full: [UInt32: ChainDecode] = [:]
        var pendingCount = 0

        @inline(__always)
        func slot(_ queue: UInt16, _ head: UInt16) -> Slot {
            let q = Int(queue), h = Int(head)
            guard q < slots.count, h < slots[q].count else { return Slot(state: Slot.empty, transactionID: 0) }
            return slots[q][h]
        }

        /// Makes room for `head` on `queue`.
        @inline(__always)
        mutating func reserve(_ queue: UInt16, _ head: UInt16) {
            let q = Int(queue), h = Int(head)
            if q >= slots.count {
                slots += Array(repeating: [], count: q + 1 - slots.count)
                keys += Array(repeating: [], count: q + 1 - keys.count)
            }
            if h >= slots[q].count {
                let n = max(h + 1, 256) - slots[q].count
                slots[q] += Array(repeating: Slot(state: Slot.empty, transactionID: 0), count: n)
                keys[q] += Array(repeating: CommandRequestKey(), count: n)
            }
        }

        mutating func set(_ queue: UInt16, _ head: UInt16, _ s: Slot, decode: ChainDecode? = nil) {
            let q = Int(queue), h = Int(head)
            if s.state == Slot.empty && (q >= slots.count || h >= slots[q].count) { return }
            reserve(queue, head)
            let old = slots[q][h].state
            let at = UInt32(queue) << 16 | UInt32(head)
            if old == Slot.full { full[at] = nil }
            if old == Slot.key && !chains.isEmpty { chains[at] = nil }
            if old != Slot.empty { pendingCount -= 1 }
            if s.state != Slot.empty { pendingCount += 1 }
            if let decode { full[at] = decode }
            slots[q][h] = s
        }

        /// Puts a request's key in its slot (whatever was there goes).
        @inline(__always)
        mutating func setKey(_ queue: UInt16, _ head: UInt16, transactionID: UInt64, _ key: CommandRequestKey) {
            let q = Int(queue), h = Int(head)
            if q >= slots.count || h >= slots[q].count { reserve(queue, head) }
            if slots[q][h].state != Slot.empty {
                set(queue, head, Slot(state: Slot.empty, transactionID: 0))
            }
            slots[q][h] = Slot(state: Slot.key, transactionID: transactionID)
            keys[q][h] = key
            pendingCount += 1
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
            keys[q] = []
            full = full.filter { $0.key >> 16 != UInt32(queue) }
            chains = chains.filter { $0.key >> 16 != UInt32(queue) }
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
    /// Whether a paired completion copies its request's key into `command` (the one-line
    /// output prints it; the analysis does not need it).
    public var wantsRequestKey = true
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
                    let at = UInt32(record.queue) << 16 | UInt32(record.head)
                    if p.state == Slot.full {
                        request = devices[i].full[at]
                    } else if let kept = devices[i].chains[at] {
                        // The request came as a CaptureRecord: its own decode, as the full path gives.
                        request = VirtioSCSIChainDecoder.decodeAvailable(kept.segments, queue: record.queue, context: kept.context)
                    } else {
                        request = devices[i].keys[Int(record.queue)][Int(record.head)].chainDecode(queue: record.queue)
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
            devices[i].setKey(view.queue, view.head, transactionID: view.transactionID, command)
            return .request
        }
        let p = devices[i].slot(view.queue, view.head)
        let paired = p.state != Slot.empty && (p.transactionID == view.transactionID || view.transactionID == 0)
        // A request decoded in full pairs with a completion decoded in full.
        guard !paired || p.state == Slot.key, response.read(view, context: context) else { return .full }
        if paired {
            if wantsRequestKey { command = devices[i].keys[Int(view.queue)][Int(view.head)] }
            devices[i].release(view.queue, view.head)
        }
        return .completion(paired: paired)
    }

    /// `decodeFast` for a record that came as a value (the live tap): the same key fields
    /// where the file path reads them, `.full` exactly where it would fall back. The
    /// request's chain is kept until its completion (`pairedRequest` then holds it), so that
    /// a completion that needs the full decode gets the request's own decode.
    public mutating func decodeFast(_ record: CaptureRecord) -> FastDecode {
        pairedRequest = nil
        guard record.queue >= 2, record.flags.rawValue & ~Self.fastFlags == 0,
              record.kind == .available || record.kind == .used, case let .chain(segments) = record.body,
              let sides = ChainSides(segments) else { return .full }
        let i = index(of: record.deviceInstance)
        let context = devices[i].context
        if record.kind == .available {
            guard let key = CommandRequestKey(sides.readable, of: segments, queue: record.queue, context: context) else { return .full }
            command = key
            devices[i].setKey(record.queue, record.head, transactionID: record.transactionID, key)
            devices[i].chains[UInt32(record.queue) << 16 | UInt32(record.head)] = KeptChain(segments: segments, context: context)
            return .request
        }
        let p = devices[i].slot(record.queue, record.head)
        let paired = p.state != Slot.empty && (p.transactionID == record.transactionID || record.transactionID == 0)
        guard !paired || p.state == Slot.key,
              let key = CommandResponseKey(sides.writable, of: segments, queue: record.queue, usedLength: record.usedLength, context: context)
        else { return .full }
        response = key
        if paired {
            let at = UInt32(record.queue) << 16 | UInt32(record.head)
            if let kept = devices[i].chains.removeValue(forKey: at) {
                pairedRequest = (kept.segments, kept.context)
            }
            if wantsRequestKey { command = devices[i].keys[Int(record.queue)][Int(record.head)] }
            devices[i].release(record.queue, record.head)
        }
        return .completion(paired: paired)
    }

    /// After `decodeFast(_: CaptureRecord)` returned a paired completion: its request's
    /// chain and the context it was read with (nil when the request came another way).
    public private(set) var pairedRequest: (segments: ChainSegments, context: VirtioSCSIChainContext)?

    /// The context of the device of the last record decoded.
    public var context: VirtioSCSIChainContext { lastIndex >= 0 ? devices[lastIndex].context : defaultContext }

    /// The name of the device of the last record decoded.
    public var deviceName: String { lastIndex >= 0 ? devices[lastIndex].name : "" }

    /// indirect, snaplen, torn, orphan, pre-attach.
    private static let fastFlags: UInt32 = 0x7f & ~(RecordFlags.malformed.rawValue | RecordFlags.usedLengthExceeds.rawValue)

    /// Requests seen and not yet completed (for `inflight` and stuck-request reports).
    public var pendingCount: Int { devices.reduce(0) { $0 + $1.pendingCount } }
}
