import VQRecord
import VirtioSCSI
import VQWire

// Capture records made by hand, as a tap would write them: the analysis tests, the screen
// goldens and the benchmarks build known streams with it (exact latencies, outcomes, TMFs,
// events). Payload bytes are not captured (as with a small snap length): only the
// descriptor lengths say how much data moved.

public struct RecordStreamBuilder {
    public var device: UInt16
    public var context: VirtioSCSIChainContext
    public private(set) var records: [CaptureRecord] = []
    private var nextID: UInt64 = 1
    private var open: [UInt64: (queue: UInt16, head: UInt16, startNs: UInt64, writable: [RecordSegment])] = [:]

    public init(device: UInt16 = 0, context: VirtioSCSIChainContext = VirtioSCSIChainContext()) {
        self.device = device
        self.context = context
    }

    public mutating func removeAll() { records.removeAll(keepingCapacity: true) }

    /// State markers for the controlq, eventq and `requestQueues` request queues.
    public mutating func attach(name: String, requestQueues: UInt16 = 1, features: UInt64 = 0, queueSize: UInt16 = 128,
                                state: DeviceStateMarker.State = .attached, at ns: UInt64) {
        for q in 0..<(2 + requestQueues) {
            records.append(CaptureRecord(kind: .deviceState, deviceInstance: device, queue: q, body: .deviceState(DeviceStateMarker(
                state: state, generation: 1, features: features, queueSize: queueSize, queueCount: 2 + requestQueues,
                cdbSize: UInt32(context.cdbSize), senseSize: UInt32(context.senseSize), deviceName: name)), timestampNs: ns))
        }
    }

    private mutating func available(queue: UInt16, head: UInt16, readable: [UInt8], extraReadable: UInt32, writable: [UInt32],
                                    flags: RecordFlags, at ns: UInt64) -> UInt64 {
        let id = nextID
        nextID += 1
        var segments: [RecordSegment] = []
        if !readable.isEmpty {
            segments.append(RecordSegment(address: 0x10_0000 + UInt64(head) * 0x1000, length: UInt32(readable.count), flags: 1, bytes: readable))
        }
        if extraReadable > 0 { segments.append(RecordSegment(address: 0x80_0000, length: extraReadable, flags: 1)) }
        var writableSegments: [RecordSegment] = []
        for (i, length) in writable.enumerated() where length > 0 {
            writableSegments.append(RecordSegment(address: 0x90_0000 + UInt64(i) * 0x10000, length: length, flags: 2))
        }
        records.append(CaptureRecord(kind: .available, deviceInstance: device, queue: queue, head: head, flags: flags,
                                     transactionID: id, body: .chain(ChainSegments(segments + writableSegments)), timestampNs: ns))
        open[id] = (queue, head, ns, writableSegments)
        return id
    }

    private mutating func used(_ id: UInt64, bytes: [UInt8], usedLength: UInt32, flags: RecordFlags, at ns: UInt64) {
        guard let o = open.removeValue(forKey: id) else { preconditionFailure("completion of an unknown transaction \(id)") }
        var segments = o.writable
        if !segments.isEmpty { segments[0].bytes = Array(bytes.prefix(Int(segments[0].length))) }
        records.append(CaptureRecord(kind: .used, deviceInstance: device, queue: o.queue, head: o.head, flags: flags, usedLength: usedLength,
                                     transactionID: id, latencyNs: ns >= o.startNs ? ns - o.startNs : 0,
                                     body: .chain(ChainSegments(segments)), timestampNs: ns))
    }

    /// A command request; returns its transaction id.
    @discardableResult
    public mutating func command(queue: UInt16 = 2, head: UInt16, tag: UInt64, lun: LUNAddress, cdb: [UInt8],
                                 dataOut: UInt32 = 0, dataIn: UInt32 = 0, flags: RecordFlags = [], at ns: UInt64) -> UInt64 {
        let request = CommandRequest(lun: VirtioSCSILUN(target: lun.target, lun: lun.lun), id: tag, cdb: cdb, cdbSize: context.cdbSize)
        var w = ByteWriter()
        request.encode(into: &w)
        return available(queue: queue, head: head, readable: w.bytes, extraReadable: dataOut,
                         writable: [UInt32(CommandResponse.headerSize + context.senseSize), dataIn], flags: flags, at: ns)
    }

    /// The command's response. `senseLength` defaults to the sense bytes' count.
    public mutating func complete(_ id: UInt64, status: UInt8 = 0, response: VirtioSCSIResponse = .ok, sense: [UInt8] = [],
                                  senseLength: UInt32? = nil, dataIn: UInt32 = 0, residual: UInt32 = 0,
                                  usedLength: UInt32? = nil, flags: RecordFlags = [], at ns: UInt64) {
        let r = CommandResponse(senseLength: senseLength ?? UInt32(sense.count), residual: residual, status: status, response: response,
                                sense: Array(sense.prefix(context.senseSize)), senseSize: context.senseSize)
        var w = ByteWriter()
        r.encode(into: &w)
        used(id, bytes: w.bytes, usedLength: usedLength ?? UInt32(w.count) + dataIn, flags: flags, at: ns)
    }

    /// A TMF request on the controlq; returns its transaction id.
    @discardableResult
    public mutating func tmf(head: UInt16, _ subtype: TMFSubtype, lun: LUNAddress, tag: UInt64 = 0, at ns: UInt64) -> UInt64 {
        var w = ByteWriter()
        TMFRequest(subtype: subtype, lun: VirtioSCSILUN(target: lun.target, lun: lun.lun), id: tag).encode(into: &w)
        return available(queue: 0, head: head, readable: w.bytes, extraReadable: 0, writable: [UInt32(TMFResponse.size)], flags: [], at: ns)
    }

    public mutating func tmfResponse(_ id: UInt64, _ response: VirtioSCSIResponse = .ok, at ns: UInt64) {
        var w = ByteWriter()
        TMFResponse(response: response).encode(into: &w)
        used(id, bytes: w.bytes, usedLength: UInt32(w.count), flags: [], at: ns)
    }

    /// The driver posts an eventq buffer; returns its transaction id.
    @discardableResult
    public mutating func postEventBuffer(head: UInt16, at ns: UInt64) -> UInt64 {
        available(queue: 1, head: head, readable: [], extraReadable: 0, writable: [UInt32(VirtioSCSIEvent.size)], flags: [], at: ns)
    }

    /// The device fills an eventq buffer with `event`.
    public mutating func event(_ id: UInt64, _ event: VirtioSCSIEvent, at ns: UInt64) {
        var w = ByteWriter()
        event.encode(into: &w)
        used(id, bytes: w.bytes, usedLength: UInt32(w.count), flags: [], at: ns)
    }

    public mutating func drop(_ count: UInt64, queue: UInt16 = 2, at ns: UInt64) {
        records.append(CaptureRecord(kind: .drop, deviceInstance: device, queue: queue, body: .drop(DropMarker(count: count, reason: .availableLapped)),
                                     timestampNs: ns))
    }
}
