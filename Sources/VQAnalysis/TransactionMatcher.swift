import VQRecord
import VirtioSCSI
import VQWire

// Decoded records in, transactions out (DESIGN.md rule 7). The record decoder has already
// paired each completion with its request's decode; the matcher adds what pairing alone
// does not know: times, the commands in flight by tag and LUN (for TMFs and tag reuse),
// the TMFs outstanding, the eventq buffers outstanding, and the conformance findings.
// Memory is bounded by the rings: one entry per descriptor head in flight.

/// What the matcher tells its listeners.
public enum AnalysisEvent: Sendable {
    /// A command was made available (it is now in flight).
    case started(InFlightCommand)
    /// A command completed (or a completion came for a request the tap never saw).
    case transaction(Transaction)
    /// A command in flight was forgotten: its queue was reset, or its head reused unseen.
    case abandoned(InFlightCommand)
    /// A TMF request was sent (`response` nil) or answered.
    case tmf(TMFTransaction)
    case event(EventRecord)
    case finding(Finding)
}

/// A command the driver made available and the device has not returned yet.
public struct InFlightCommand: Sendable {
    public var device: UInt16
    public var queue: UInt16
    public var head: UInt16
    public var id: UInt64
    public var startNs: UInt64
    public var tag: UInt64
    public var lun: LUNAddress?
    public var opcode: OpcodeKey?
    public var direction: SCSIDataDirection
    public var lba: UInt64?
    public var blocks: UInt32?
    /// Data-out bytes the descriptors carry.
    public var bytesOut: UInt64
    /// Outstanding when the tap attached: the start time is the attach time.
    public var preAttach: Bool
    public var tmfSerial: UInt64?
    public var request: ChainDecode?

    public var opcodeName: String { opcode?.name ?? "(bad cdb)" }

    public func age(at nowNs: UInt64) -> UInt64 { nowNs >= startNs ? nowNs - startNs : 0 }
}

/// Buffers on one device's eventq (virtio-scsi 0.9.4 "Device Operation: eventq"): the
/// driver should keep some posted, or the device has nowhere to put an event and sets
/// EVENTS_MISSED on the next one.
public struct EventqAccount: Sendable, Equatable {
    public var outstanding = 0
    public var maxOutstanding = 0
    public var posted: UInt64 = 0
    public var events: UInt64 = 0
    public var eventsMissed: UInt64 = 0
    /// Time with no buffer posted, after the first was seen (ended intervals).
    public var emptyNs: UInt64 = 0
    /// Start of the current interval with no buffer posted.
    public var emptySinceNs: UInt64?
    public var seenAny = false

    /// `emptyNs` plus the current interval up to `now`.
    public func emptyTotal(at nowNs: UInt64) -> UInt64 {
        guard let since = emptySinceNs, nowNs > since else { return emptyNs }
        return emptyNs + (nowNs - since)
    }
}

/// Counts of what the tap saw, for the health line.
public struct CaptureHealth: Sendable, Equatable {
    public var records: UInt64 = 0
    public var available: UInt64 = 0
    public var used: UInt64 = 0
    /// Chains the tap counted but could not capture (drop markers).
    public var dropped: UInt64 = 0
    public var torn: UInt64 = 0
    public var snaplenTruncated: UInt64 = 0
    public var orphans: UInt64 = 0
    public var malformed: UInt64 = 0
    public var undecodable: UInt64 = 0
    public var deviceResets: UInt64 = 0

    /// Chains seen plus chains dropped.
    public var chains: UInt64 { available + dropped }

    public func percent(_ n: UInt64) -> Double { chains == 0 ? 0 : Double(n) * 100 / Double(chains) }
}

public struct TransactionMatcher {
    public struct Options: Sendable {
        /// An interval with no eventq buffer longer than this is a finding.
        public var eventqEmptyThresholdNs: UInt64 = 1_000_000_000
        /// Transaction ids kept per TMF.
        public var maxNamedPerTMF = 1024
        public init() {}
    }

    struct TagKey {
        var device: UInt16
        var lun: LUNAddress?
        var tag: UInt64

        /// Device and LUN in one word (bit 63 marks a used entry of `TagTable`).
        var high: UInt64 { 1 << 63 | UInt64(device) << 32 | (lun.map { 1 << 24 | UInt64($0.target) << 16 | UInt64($0.lun) } ?? 0) }
    }

    /// The header fields of a record that the fast path reads.
    struct FastRecord {
        var device: UInt16
        var queue: UInt16
        var head: UInt16
        var flags: RecordFlags
        var id: UInt64
        var timestampNs: UInt64
        var latencyNs: UInt64
    }

    public let options: Options
    /// Commands in flight, keyed by device << 32 | queue << 16 | head.
    public var inFlight: [UInt64: InFlightCommand] {
        var out: [UInt64: InFlightCommand] = [:]
        out.reserveCapacity(inFlightCount)
        for c in inFlightCommands { out[Self.slot(c.device, c.queue, c.head)] = c }
        return out
    }
    public private(set) var inFlightCount = 0
    /// The commands in flight, per device and queue (`queueSlots`: device << 16 | queue to
    /// its index, `queueKeys` back), by descriptor head: two array accesses per command, no
    /// hashing, plain data (a request's decode, when there is one, waits in `requests`).
    private var heads: [[Flight]] = []
    private var queueKeys: [UInt32] = []
    private var queueSlots: [UInt32: Int] = [:]
    private var requests: [UInt64: ChainDecode] = [:]
    private var lastQueueKey: UInt32 = .max
    private var lastQueueSlot = 0

    /// An `InFlightCommand` as `heads` keeps it.
    private struct Flight {
        var used = false
        var hasRequest = false
        var preAttach = false
        var direction = SCSIDataDirection.unknown
        var id: UInt64 = 0
        var startNs: UInt64 = 0
        var tag: UInt64 = 0
        var bytesOut: UInt64 = 0
        var lun: LUNAddress?
        var opcode: OpcodeKey?
        var lba: UInt64?
        var blocks: UInt32?
        var tmfSerial: UInt64?
    }
    private var byTag = TagTable()
    /// Sizes of the matcher's tables (`top --bench`): tags and kept requests in flight.
    public var tableSizes: (tags: Int, requests: Int, pendingTMFs: Int) { (byTag.entryCount, requests.count, pendingTMFs.count) }
    /// TMFs sent and not answered, keyed like `inFlight`.
    public private(set) var pendingTMFs: [UInt64: TMFTransaction] = [:]
    public private(set) var eventq: [UInt16: EventqAccount] = [:]
    public private(set) var health = CaptureHealth()
    /// Time of the latest record: "now" for a replay.
    public private(set) var lastNs: UInt64 = 0
    public private(set) var firstNs: UInt64?
    private var nextTMFSerial: UInt64 = 1
    /// The device the last fast record named (its `devices` entry exists).
    private var knownDevice: UInt16?
    /// Devices seen, with their latest name, features and configuration.
    public private(set) var devices: [UInt16: DeviceInfo] = [:]

    public struct DeviceInfo: Sendable, Equatable {
        public var name: String
        public var features: UInt64 = 0
        public var queueCount: UInt16 = 0
        public var queueSize: UInt16 = 0
        public var cdbSize: UInt32 = 32
        public var senseSize: UInt32 = 96
        public var state: DeviceStateMarker.State?
    }

    public init(options: Options = Options()) {
        self.options = options
    }

    static func slot(_ device: UInt16, _ queue: UInt16, _ head: UInt16) -> UInt64 {
        UInt64(device) << 32 | UInt64(queue) << 16 | UInt64(head)
    }

    private var inFlightCommands: [InFlightCommand] {
        var out: [InFlightCommand] = []
        for q in heads.indices {
            for h in heads[q].indices where heads[q][h].used { out.append(command(q, h)) }
        }
        return out
    }

    private func command(_ q: Int, _ h: Int) -> InFlightCommand {
        let f = heads[q][h]
        let device = UInt16(truncatingIfNeeded: queueKeys[q] >> 16), queue = UInt16(truncatingIfNeeded: queueKeys[q])
        return InFlightCommand(device: device, queue: queue, head: UInt16(truncatingIfNeeded: h), id: f.id, startNs: f.startNs,
                               tag: f.tag, lun: f.lun, opcode: f.opcode, direction: f.direction, lba: f.lba, blocks: f.blocks,
                               bytesOut: f.bytesOut, preAttach: f.preAttach, tmfSerial: f.tmfSerial,
                               request: f.hasRequest ? requests[Self.slot(device, queue, UInt16(truncatingIfNeeded: h))] : nil)
    }

    @inline(__always)
    private mutating func queueSlot(_ device: UInt16, _ queue: UInt16) -> Int {
        let k = UInt32(device) << 16 | UInt32(queue)
        if k == lastQueueKey { return lastQueueSlot }
        let i: Int
        if let known = queueSlots[k] {
            i = known
        } else {
            i = heads.count
            heads.append([])
            queueKeys.append(k)
            queueSlots[k] = i
        }
        lastQueueKey = k
        lastQueueSlot = i
        return i
    }

    /// The command in flight at a slot key (`slot(device, queue, head)`).
    private func inFlightCommand(at key: UInt64) -> InFlightCommand? {
        guard let q = queueSlots[UInt32(truncatingIfNeeded: key >> 16)] else { return nil }
        let h = Int(key & 0xffff)
        return h < heads[q].count && heads[q][h].used ? command(q, h) : nil
    }

    /// Takes the command in flight at a slot out; with `id`, only the command of that
    /// transaction (or any, for id 0).
    @inline(__always)
    private mutating func take(_ device: UInt16, _ queue: UInt16, _ head: UInt16, id: UInt64? = nil) -> InFlightCommand? {
        let q = queueSlot(device, queue), h = Int(head)
        guard h < heads[q].count, heads[q][h].used else { return nil }
        if let id, heads[q][h].id != id && id != 0 { return nil }
        let c = command(q, h)
        if heads[q][h].hasRequest { requests[Self.slot(device, queue, head)] = nil }
        heads[q][h].used = false
        inFlightCount -= 1
        return c
    }

    private mutating func put(_ c: InFlightCommand) {
        let q = queueSlot(c.device, c.queue), h = Int(c.head)
        if h >= heads[q].count { heads[q] += Array(repeating: Flight(), count: max(h + 1, 256) - heads[q].count) }
        if !heads[q][h].used { inFlightCount += 1 }
        let key = Self.slot(c.device, c.queue, c.head)
        if let request = c.request {
            requests[key] = request
        } else if heads[q][h].hasRequest {
            requests[key] = nil
        }
        heads[q][h] = Flight(used: true, hasRequest: c.request != nil, preAttach: c.preAttach, direction: c.direction, id: c.id,
                             startNs: c.startNs, tag: c.tag, bytesOut: c.bytesOut, lun: c.lun, opcode: c.opcode, lba: c.lba,
                             blocks: c.blocks, tmfSerial: c.tmfSerial)
    }

    public mutating func consume(_ d: DecodedRecord, _ emit: (AnalysisEvent) -> Void) {
        let r = d.record
        health.records += 1
        if firstNs == nil { firstNs = r.timestampNs }
        if r.timestampNs > lastNs { lastNs = r.timestampNs }
        if devices[r.deviceInstance] == nil { devices[r.deviceInstance] = DeviceInfo(name: d.deviceName) }
        switch r.body {
        case let .drop(m):
            health.dropped += m.count
            return
        case let .deviceState(m):
            deviceState(r, m, emit)
            return
        case .chain:
            break
        }
        // Torn is a share of chains (`chains`), so it counts chains, not records: a torn
        // request counts once, and a torn completion only when it pairs with no request seen.
        if r.flags.contains(.torn) && (r.kind == .available || d.request == nil) { health.torn += 1 }
        if r.flags.contains(.snaplenTruncated) { health.snaplenTruncated += 1 }
        if r.flags.contains(.malformed) {
            health.malformed += 1
            emit(.finding(Finding(kind: .malformedChain, timeNs: r.timestampNs, device: r.deviceInstance, queue: r.queue,
                                  transactionID: r.transactionID, detail: "\(d.queueName) head \(r.head) ring error \(r.errorCode) detail \(Hex.u64(r.errorDetail))")))
        }
        if case .undecodable? = d.decode?.content { health.undecodable += 1 }
        if r.kind == .available {
            health.available += 1
            switch VirtioSCSIQueueRole(queue: r.queue) {
            case .request: commandStarted(d, emit)
            case .control: controlStarted(d, emit)
            case .event: eventBufferPosted(r, emit)
            }
        } else {
            health.used += 1
            if r.flags.contains(.usedLengthExceeds) {
                emit(.finding(Finding(kind: .usedLengthExceeds, timeNs: r.timestampNs, device: r.deviceInstance, queue: r.queue,
                                      transactionID: r.transactionID,
                                      detail: "\(d.queueName) head \(r.head) used length \(r.usedLength) above the writable buffers (\(writableLength(r.segments)) bytes)")))
            }
            switch VirtioSCSIQueueRole(queue: r.queue) {
            case .request: commandCompleted(d, emit)
            case .control: controlCompleted(d, emit)
            case .event: eventReturned(d, emit)
            }
        }
    }

    /// `consume` for a command or completion that `RecordDecoder.decodeFast` decoded (no
    /// field trees: the transactions it makes carry no `request`/`response` decodes, unless
    /// `detail` holds the chains to decode them from). The listeners are called directly:
    /// no `InFlightCommand` and no event is made per command.
    mutating func consumeFast(_ r: FastRecord, _ fast: FastDecode, command c: borrowing CommandRequestKey,
                              response: borrowing CommandResponseKey, decoder: borrowing RecordDecoder, detail: TransactionDetail?,
                              _ listeners: inout Analyzer.Listeners) {
        health.records += 1
        if firstNs == nil { firstNs = r.timestampNs }
        if r.timestampNs > lastNs { lastNs = r.timestampNs }
        if r.device != knownDevice {
            if devices[r.device] == nil { devices[r.device] = DeviceInfo(name: decoder.deviceName) }
            knownDevice = r.device
        }
        let flags = r.flags
        switch fast {
        case .request:
            if flags.contains(.torn) { health.torn += 1 }
            if flags.contains(.snaplenTruncated) { health.snaplenTruncated += 1 }
            health.available += 1
            fastStarted(r, c, &listeners)
        case let .completion(paired):
            if flags.contains(.torn) && !paired { health.torn += 1 }
            if flags.contains(.snaplenTruncated) { health.snaplenTruncated += 1 }
            health.used += 1
            fastCompleted(r, response, detail: detail, &listeners)
        case .full:
            break
        }
    }

    /// `commandStarted` for a request key, writing the slot in place.
    private mutating func fastStarted(_ r: FastRecord, _ c: borrowing CommandRequestKey, _ listeners: inout Analyzer.Listeners) {
        let key = Self.slot(r.device, r.queue, r.head)
        let q = queueSlot(r.device, r.queue), h = Int(r.head)
        if h >= heads[q].count { heads[q] += Array(repeating: Flight(), count: max(h + 1, 256) - heads[q].count) }
        if heads[q][h].used, let old = take(r.device, r.queue, r.head) {
            // The head came back without a completion we saw: the used record was lost.
            forgetTag(old, key: key)
            listeners.handle(.abandoned(old))
        }
        let lun = LUNAddress(target: c.target, lun: c.lun), opcode = OpcodeKey(opcode: c.opcode)
        if let otherKey = byTag.updateValue(key, forKey: TagKey(device: r.device, lun: lun, tag: c.id)),
           let other = inFlightCommand(at: otherKey) {
            listeners.handle(.finding(Finding(kind: .tagReused, timeNs: r.timestampNs, device: r.device, queue: r.queue,
                                              transactionID: r.id,
                                              detail: "tag \(Hex.u64(c.id)) on LUN \(lun.description) reused by \(opcode.name) while \(other.opcodeName) (queue \(other.queue) head \(other.head)) is in flight for \(Figures.format(other.age(at: r.timestampNs)))")))
        }
        heads[q][h] = Flight(used: true, hasRequest: false, preAttach: r.flags.contains(.preAttach), direction: c.direction, id: r.id,
                             startNs: r.timestampNs, tag: c.id, bytesOut: c.payloadLength, lun: lun, opcode: opcode,
                             lba: c.hasLBA ? c.lba : nil, blocks: c.hasLBA ? c.blocks : nil, tmfSerial: nil)
        inFlightCount += 1
        listeners.started(device: r.device, queue: r.queue, lun: lun, opcode: opcode, at: r.timestampNs)
    }

    /// `commandCompleted` for a response key, reading the slot in place.
    private mutating func fastCompleted(_ r: FastRecord, _ response: borrowing CommandResponseKey, detail: TransactionDetail?,
                                        _ listeners: inout Analyzer.Listeners) {
        let q = queueSlot(r.device, r.queue), h = Int(r.head)
        let outcome = Outcome(response: response.response, status: response.status)
        guard h < heads[q].count, heads[q][h].used, heads[q][h].id == r.id || r.id == 0 else {
            health.orphans += 1
            if !r.flags.contains(.preAttach) {
                listeners.handle(.finding(Finding(kind: .orphanCompletion, timeNs: r.timestampNs, device: r.device, queue: r.queue,
                                                  transactionID: r.id, detail: "\(VirtioSCSIQueueRole(queue: r.queue).name) head \(r.head) completed with no request seen")))
            }
            listeners.completed(Transaction(device: r.device, queue: r.queue, head: r.head, id: r.id, tag: nil, lun: nil, opcode: nil,
                                            direction: .unknown, lba: nil, blocks: nil, startNs: nil, endNs: r.timestampNs, latencyNs: nil,
                                            bytesIn: response.payloadLength, bytesOut: 0, outcome: outcome, tmfSerial: nil, flags: r.flags,
                                            detail: detail))
            return
        }
        let key = Self.slot(r.device, r.queue, r.head)
        let f = heads[q][h]
        var kept = detail
        if f.hasRequest, let request = requests.removeValue(forKey: key) { kept = TransactionDetail(request: request, response: nil) }
        heads[q][h].used = false
        inFlightCount -= 1
        byTag.removeValue(forKey: TagKey(device: r.device, lun: f.lun, tag: f.tag), ifValue: key)
        var flags = r.flags
        if f.preAttach { flags.insert(.preAttach) }
        let bytesOut = f.direction == .toDevice ? f.bytesOut - min(f.bytesOut, UInt64(response.residual)) : f.bytesOut
        if let serial = f.tmfSerial, outcome.isAbortedOrReset {
            for (k, var tmf) in pendingTMFs where tmf.serial == serial {
                tmf.aborted += 1
                pendingTMFs[k] = tmf
            }
        }
        listeners.completed(Transaction(device: r.device, queue: r.queue, head: r.head, id: r.id, tag: f.tag, lun: f.lun, opcode: f.opcode,
                                        direction: f.direction, lba: f.lba, blocks: f.blocks, startNs: f.startNs, endNs: r.timestampNs,
                                        latencyNs: r.latencyNs > 0 ? r.latencyNs : (r.timestampNs >= f.startNs ? r.timestampNs - f.startNs : 0),
                                        bytesIn: response.payloadLength, bytesOut: bytesOut, outcome: outcome, tmfSerial: f.tmfSerial,
                                        flags: flags, detail: kept))
    }

    private func writableLength(_ segments: ChainSegments) -> UInt64 {
        segments.withUnsafeEntries { e in (0..<e.count).reduce(0) { $0 + (e.isWritable($1) ? UInt64(e.length($1)) : 0) } }
    }

    private mutating func deviceState(_ r: CaptureRecord, _ m: DeviceStateMarker, _ emit: (AnalysisEvent) -> Void) {
        var info = devices[r.deviceInstance] ?? DeviceInfo(name: m.deviceName)
        if !m.deviceName.isEmpty { info.name = m.deviceName }
        info.features = m.features
        info.queueCount = m.queueCount
        info.queueSize = m.queueSize
        info.cdbSize = m.cdbSize
        info.senseSize = m.senseSize
        info.state = m.state
        devices[r.deviceInstance] = info
        guard m.state != .attached else { return }
        // As the record decoder does: after a reset nothing in flight on the queue survives.
        if r.queue == 1 || r.queue == 0xffff { eventq[r.deviceInstance] = nil }
        if m.state == .reset && (r.queue == 0 || r.queue == 0xffff) { health.deviceResets += 1 }
        let gone = inFlightCommands.filter { $0.device == r.deviceInstance && (r.queue == 0xffff || $0.queue == r.queue) }
        for command in gone {
            _ = take(command.device, command.queue, command.head)
            byTag.removeValue(forKey: TagKey(device: command.device, lun: command.lun, tag: command.tag))
            emit(.abandoned(command))
        }
        pendingTMFs = pendingTMFs.filter { !($0.value.device == r.deviceInstance && (r.queue == 0xffff || r.queue == 0)) }
    }

    // MARK: Commands

    private mutating func commandStarted(_ d: DecodedRecord, _ emit: (AnalysisEvent) -> Void) {
        let r = d.record
        var tag: UInt64?, lun: LUNAddress?, opcode: OpcodeKey?, direction = SCSIDataDirection.unknown
        var lba: UInt64?, blocks: UInt32?
        if case let .commandRequest(req)? = d.decode?.message {
            tag = req.id
            lun = LUNAddress(req.lun)
            if case let .success(c) = req.command {
                opcode = OpcodeKey(opcode: c.opcode, serviceAction: c.serviceAction)
                direction = c.dataDirection
                lba = c.lba
                blocks = c.transferLength
            }
        }
        commandStarted(device: r.deviceInstance, queue: r.queue, head: r.head, id: r.transactionID, startNs: r.timestampNs,
                       flags: r.flags, bytesOut: d.decode?.payloadLength ?? 0, request: d.decode,
                       tag: tag, lun: lun, opcode: opcode, direction: direction, lba: lba, blocks: blocks, emit)
    }

    /// A command made available; `tag` nil when the request did not decode.
    private mutating func commandStarted(device: UInt16, queue: UInt16, head: UInt16, id: UInt64, startNs: UInt64, flags: RecordFlags,
                                         bytesOut: UInt64, request: ChainDecode?, tag: UInt64?, lun: LUNAddress?, opcode: OpcodeKey?,
                                         direction: SCSIDataDirection, lba: UInt64?, blocks: UInt32?, _ emit: (AnalysisEvent) -> Void) {
        let key = Self.slot(device, queue, head)
        if let old = take(device, queue, head) {
            // The head came back without a completion we saw: the used record was lost.
            forgetTag(old, key: key)
            emit(.abandoned(old))
        }
        var command = InFlightCommand(device: device, queue: queue, head: head, id: id,
                                      startNs: startNs, tag: 0, lun: nil, opcode: nil, direction: .unknown,
                                      lba: nil, blocks: nil, bytesOut: bytesOut,
                                      preAttach: flags.contains(.preAttach), tmfSerial: nil, request: request)
        if let tag {
            command.tag = tag
            command.lun = lun
            command.opcode = opcode
            command.direction = direction
            command.lba = lba
            command.blocks = blocks
            let tagKey = TagKey(device: device, lun: lun, tag: tag)
            if let otherKey = byTag.updateValue(key, forKey: tagKey), let other = inFlightCommand(at: otherKey) {
                emit(.finding(Finding(kind: .tagReused, timeNs: startNs, device: device, queue: queue,
                                      transactionID: id,
                                      detail: "tag \(Hex.u64(tag)) on LUN \(command.lun?.description ?? "?") reused by \(command.opcodeName) while \(other.opcodeName) (queue \(other.queue) head \(other.head)) is in flight for \(Figures.format(other.age(at: startNs)))")))
            }
        }
        put(command)
        emit(.started(command))
    }

    private mutating func forgetTag(_ c: InFlightCommand, key: UInt64) {
        let tagKey = TagKey(device: c.device, lun: c.lun, tag: c.tag)
        if byTag[tagKey] == key { byTag.removeValue(forKey: tagKey) }
    }

    private mutating func commandCompleted(_ d: DecodedRecord, _ emit: (AnalysisEvent) -> Void) {
        let r = d.record
        var outcome: Outcome?, bytesIn: UInt64 = 0, residual: UInt32 = 0
        var senseExceeds: (length: UInt32, size: Int)?
        if case let .commandResponse(resp)? = d.decode?.message {
            outcome = Outcome(resp)
            bytesIn = d.decode?.payloadLength ?? 0
            residual = resp.residual
            if resp.senseLengthExceedsSize { senseExceeds = (resp.senseLength, resp.senseSize) }
        }
        commandCompleted(device: r.deviceInstance, queue: r.queue, head: r.head, id: r.transactionID, endNs: r.timestampNs,
                         flags: r.flags, latencyNs: r.latencyNs, request: d.request, response: d.decode,
                         outcome: outcome,
                         bytesIn: bytesIn, residual: residual, senseExceeds: senseExceeds, emit)
    }

    /// A command returned; `outcome` nil when the response did not decode.
    private mutating func commandCompleted(device: UInt16, queue: UInt16, head: UInt16, id: UInt64, endNs: UInt64, flags: RecordFlags,
                                           latencyNs: UInt64, request: ChainDecode?, response: ChainDecode?, outcome: Outcome?,
                                           bytesIn: UInt64, residual: UInt32, senseExceeds: (length: UInt32, size: Int)?,
                                           _ emit: (AnalysisEvent) -> Void) {
        let key = Self.slot(device, queue, head)
        var started: InFlightCommand?
        if let c = take(device, queue, head, id: id) {
            forgetTag(c, key: key)
            started = c
        }
        var t = Transaction(device: device, queue: queue, head: head, id: id, tag: started?.tag,
                            lun: started?.lun, opcode: started?.opcode, direction: started?.direction ?? .unknown,
                            lba: started?.lba, blocks: started?.blocks, startNs: started?.startNs, endNs: endNs,
                            latencyNs: nil, bytesIn: 0, bytesOut: 0, outcome: .undecodable, tmfSerial: started?.tmfSerial,
                            flags: flags, detail: TransactionDetail(request: started?.request ?? request, response: response))
        if let started {
            t.latencyNs = latencyNs > 0 ? latencyNs : started.age(at: endNs)
            if started.preAttach { t.flags.insert(.preAttach) }
        } else {
            health.orphans += 1
            if !flags.contains(.preAttach) {
                emit(.finding(Finding(kind: .orphanCompletion, timeNs: endNs, device: device, queue: queue,
                                      transactionID: id, detail: "\(VirtioSCSIQueueRole(queue: queue).name) head \(head) completed with no request seen")))
            }
        }
        if let outcome {
            t.outcome = outcome
            t.bytesIn = bytesIn
            let out = started?.bytesOut ?? 0
            t.bytesOut = started?.direction == .toDevice ? out - min(out, UInt64(residual)) : out
            if let senseExceeds {
                emit(.finding(Finding(kind: .senseLengthExceeds, timeNs: endNs, device: device, queue: queue,
                                      transactionID: id,
                                      detail: "\(t.opcodeName) tag \(t.tag.map(Hex.u64) ?? "?"): sense_len \(senseExceeds.length) > sense_size \(senseExceeds.size)")))
            }
        }
        if let serial = t.tmfSerial, t.outcome.isAbortedOrReset {
            for (k, var tmf) in pendingTMFs where tmf.serial == serial {
                tmf.aborted += 1
                pendingTMFs[k] = tmf
            }
        }
        emit(.transaction(t))
    }

    // MARK: Control queue

    private mutating func controlStarted(_ d: DecodedRecord, _ emit: (AnalysisEvent) -> Void) {
        guard case let .tmfRequest(req)? = d.decode?.message else { return }
        let r = d.record
        let lun = LUNAddress(req.lun)
        let serial = nextTMFSerial
        nextTMFSerial += 1
        var named: [UInt64] = []
        func name(_ key: UInt64) {
            guard var c = inFlightCommand(at: key) else { return }
            if named.count < options.maxNamedPerTMF { named.append(c.id) }
            if c.tmfSerial == nil || req.subtype != .queryTask && req.subtype != .queryTaskSet { c.tmfSerial = serial }
            put(c)
        }
        switch req.subtype {
        case .abortTask, .queryTask:
            if let key = byTag[TagKey(device: r.deviceInstance, lun: lun, tag: req.id)] { name(key) }
        case .abortTaskSet, .clearTaskSet, .logicalUnitReset, .queryTaskSet:
            for c in inFlightCommands where c.device == r.deviceInstance && c.lun == lun { name(Self.slot(c.device, c.queue, c.head)) }
        case .itNexusReset:
            for c in inFlightCommands where c.device == r.deviceInstance && c.lun?.target == lun?.target { name(Self.slot(c.device, c.queue, c.head)) }
        default:
            break
        }
        let tmf = TMFTransaction(serial: serial, device: r.deviceInstance, subtype: req.subtype, lun: lun, tag: req.id,
                                 startNs: r.timestampNs, endNs: nil, response: nil, named: named.sorted(), aborted: 0,
                                 outstandingAtResponse: 0)
        pendingTMFs[Self.slot(r.deviceInstance, r.queue, r.head)] = tmf
        emit(.tmf(tmf))
    }

    private mutating func controlCompleted(_ d: DecodedRecord, _ emit: (AnalysisEvent) -> Void) {
        let r = d.record
        guard case let .tmfResponse(resp)? = d.decode?.message,
              var tmf = pendingTMFs.removeValue(forKey: Self.slot(r.deviceInstance, r.queue, r.head)) else { return }
        tmf.endNs = r.timestampNs
        tmf.response = resp.response
        let stillInFlight = Set(inFlightCommands.lazy.filter { $0.tmfSerial == tmf.serial }.map(\.id))
        tmf.outstandingAtResponse = tmf.named.filter { stillInFlight.contains($0) }.count
        let completed = resp.response == .ok || resp.response == .functionSucceeded
        if tmf.aborts && completed && tmf.outstandingAtResponse > 0 {
            emit(.finding(Finding(kind: .tmfResponseBeforeAborted, timeNs: r.timestampNs, device: r.deviceInstance, queue: r.queue,
                                  transactionID: r.transactionID,
                                  detail: "\(tmf.subtype.name) \(tmf.lun?.description ?? "?") answered \(resp.response.name(in: .taskManagement)) with \(tmf.outstandingAtResponse) of \(tmf.named.count) named commands still in flight")))
        }
        emit(.tmf(tmf))
    }

    // MARK: Event queue

    private mutating func eventBufferPosted(_ r: CaptureRecord, _ emit: (AnalysisEvent) -> Void) {
        checkEventq(at: r.timestampNs, emit)
        reportedEmpty.remove(r.deviceInstance)
        var account = eventq[r.deviceInstance] ?? EventqAccount()
        account.posted += 1
        account.outstanding += 1
        account.maxOutstanding = max(account.maxOutstanding, account.outstanding)
        account.seenAny = true
        if let since = account.emptySinceNs {
            account.emptyNs += r.timestampNs >= since ? r.timestampNs - since : 0
            account.emptySinceNs = nil
        }
        eventq[r.deviceInstance] = account
    }

    /// Ends the eventq-empty interval check at `nowNs`: a finding for a device whose
    /// eventq has been empty longer than the threshold (once per interval).
    private var reportedEmpty: Set<UInt16> = []

    public mutating func checkEventq(at nowNs: UInt64, _ emit: (AnalysisEvent) -> Void) {
        for (device, account) in eventq {
            guard let since = account.emptySinceNs else { reportedEmpty.remove(device); continue }
            let length = nowNs >= since ? nowNs - since : 0
            if length >= options.eventqEmptyThresholdNs, !reportedEmpty.contains(device) {
                reportedEmpty.insert(device)
                emit(.finding(Finding(kind: .eventqEmpty, timeNs: nowNs, device: device, queue: 1,
                                      detail: "\(devices[device]?.name ?? "dev\(device)") eventq without buffers for \(Figures.format(length))")))
            }
        }
    }

    private mutating func eventReturned(_ d: DecodedRecord, _ emit: (AnalysisEvent) -> Void) {
        let r = d.record
        var account = eventq[r.deviceInstance] ?? EventqAccount()
        account.outstanding = max(0, account.outstanding - 1)
        if account.outstanding == 0 && account.seenAny { account.emptySinceNs = r.timestampNs }
        if case let .event(e)? = d.decode?.message {
            account.events += 1
            if e.eventsMissed {
                account.eventsMissed += 1
                emit(.finding(Finding(kind: .eventsMissed, timeNs: r.timestampNs, device: r.deviceInstance, queue: r.queue,
                                      transactionID: r.transactionID, detail: "\(e.type.name) with EVENTS_MISSED: the device had no eventq buffer for an event")))
            }
            eventq[r.deviceInstance] = account
            emit(.event(EventRecord(device: r.deviceInstance, timeNs: r.timestampNs, event: e)))
        } else {
            eventq[r.deviceInstance] = account
        }
    }

    /// Commands in flight longer than `thresholdNs` at `nowNs`, oldest first.
    public func stuck(at nowNs: UInt64, thresholdNs: UInt64) -> [InFlightCommand] {
        inFlightCommands.filter { $0.age(at: nowNs) >= thresholdNs }.sorted { ($0.startNs, $0.id) < ($1.startNs, $1.id) }
    }
}

/// The commands in flight by device, LUN and tag (their slot keys): open addressing with
/// linear probing and backward-shift deletion, and a multiplicative hash. It is touched twice
/// per command, where a Dictionary's SipHash costs more than the matching itself.
struct TagTable {
    private var highs: [UInt64]  // 0: free
    private var tags: [UInt64]
    private var values: [UInt64]
    private var count = 0
    private var shift: UInt64
    var entryCount: Int { count }

    init() {
        highs = Array(repeating: 0, count: 256)
        tags = highs
        values = highs
        shift = 64 - 8
    }

    private var mask: Int { highs.count - 1 }

    @inline(__always)
    private func home(_ high: UInt64, _ tag: UInt64) -> Int {
        let x = (tag ^ high &* 0xc2b2_ae3d_27d4_eb4f) &* 0x9e37_79b9_7f4a_7c15
        return Int(truncatingIfNeeded: x >> shift)
    }

    @inline(__always)
    private func find(_ high: UInt64, _ tag: UInt64) -> (index: Int, found: Bool) {
        var i = home(high, tag)
        while highs[i] != 0 {
            if highs[i] == high && tags[i] == tag { return (i, true) }
            i = (i + 1) & mask
        }
        return (i, false)
    }

    subscript(key: TransactionMatcher.TagKey) -> UInt64? {
        let (i, found) = find(key.high, key.tag)
        return found ? values[i] : nil
    }

    /// Sets the value; returns the one it replaces.
    mutating func updateValue(_ value: UInt64, forKey key: TransactionMatcher.TagKey) -> UInt64? {
        let high = key.high
        let (i, found) = find(high, key.tag)
        if found {
            defer { values[i] = value }
            return values[i]
        }
        highs[i] = high
        tags[i] = key.tag
        values[i] = value
        count += 1
        if count * 2 > highs.count { grow() }
        return nil
    }

    mutating func removeValue(forKey key: TransactionMatcher.TagKey) {
        let (i, found) = find(key.high, key.tag)
        guard found else { return }
        remove(at: i)
    }

    /// Removes the key if it maps to `value` (one probe instead of a lookup and a removal).
    mutating func removeValue(forKey key: TransactionMatcher.TagKey, ifValue value: UInt64) {
        let (i, found) = find(key.high, key.tag)
        guard found, values[i] == value else { return }
        remove(at: i)
    }

    private mutating func remove(at index: Int) {
        var i = index
        count -= 1
        // Backward shift: pull later entries of the run into the hole where their home allows.
        var j = i
        while true {
            highs[i] = 0
            while true {
                j = (j + 1) & mask
                if highs[j] == 0 { return }
                let k = home(highs[j], tags[j])
                // Entry j may move to i unless its home lies cyclically in (i, j].
                let stays = i <= j ? (i < k && k <= j) : (i < k || k <= j)
                if !stays { break }
            }
            highs[i] = highs[j]
            tags[i] = tags[j]
            values[i] = values[j]
            i = j
        }
    }

    private mutating func grow() {
        let oldHighs = highs, oldTags = tags, oldValues = values
        highs = Array(repeating: 0, count: oldHighs.count * 2)
        tags = highs
        values = highs
        shift -= 1
        count = 0
        for i in oldHighs.indices where oldHighs[i] != 0 {
            let (j, _) = find(oldHighs[i], oldTags[i])
            highs[j] = oldHighs[i]
            tags[j] = oldTags[i]
            values[j] = oldValues[i]
            count += 1
        }
    }
}
