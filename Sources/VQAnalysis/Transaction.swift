import VQRecord
import VirtioSCSI
import VQWire

// A transaction is one request matched to its completion (DESIGN.md rule 7: statistics,
// the live view and the reports are listeners of transactions). The matcher builds them
// from decoded records; everything here is plain values, so a transaction can be kept,
// sent to another thread or printed without the records it came from.

/// A target and LUN (I_T_L nexus as the driver addresses it).
public struct LUNAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var target: UInt8
    public var lun: UInt16

    public init(target: UInt8, lun: UInt16) {
        self.target = target
        self.lun = lun
    }

    /// nil for a well-known or nonconforming LUN.
    public init?(_ l: VirtioSCSILUN) {
        guard let target = l.target, let lun = l.lun else { return nil }
        self.init(target: target, lun: lun)
    }

    /// The group of the LUNs beyond `Statistics.Options.maxLUNs` (no LUN of 14 bits is 65535).
    public static let other = LUNAddress(target: 0xff, lun: 0xffff)

    public var description: String { self == Self.other ? "other" : "\(target):\(lun)" }

    public static func < (a: LUNAddress, b: LUNAddress) -> Bool { (a.target, a.lun) < (b.target, b.lun) }
}

/// An opcode with its service action (they name different commands: SERVICE ACTION IN(16)
/// is READ CAPACITY(16) or GET LBA STATUS).
public struct OpcodeKey: Hashable, Sendable, Comparable {
    public var opcode: UInt8
    public var serviceAction: UInt16?

    public init(opcode: UInt8, serviceAction: UInt16? = nil) {
        self.opcode = opcode
        self.serviceAction = serviceAction
    }

    /// The group of the opcodes beyond `Statistics.Options.maxOpcodes` (no command has a
    /// service action with vendor-specific opcode 0xff).
    public static let other = OpcodeKey(opcode: 0xff, serviceAction: 0xffff)

    public var name: String { self == Self.other ? "other" : SCSIOpcodes.name(opcode: opcode, serviceAction: serviceAction) }

    public static func < (a: OpcodeKey, b: OpcodeKey) -> Bool {
        (a.opcode, a.serviceAction ?? 0) < (b.opcode, b.serviceAction ?? 0)
    }
}

/// How a command ended: the virtio response, the SCSI status and, for CHECK CONDITION,
/// the sense key and additional sense code.
public struct Outcome: Hashable, Sendable, Comparable {
    /// virtio_scsi_cmd_resp.response (0 OK); nil when the response did not decode.
    public var response: UInt8?
    public var status: UInt8
    public var senseKey: UInt8?
    public var asc: UInt8?
    public var ascq: UInt8?

    public init(response: UInt8?, status: UInt8 = 0, senseKey: UInt8? = nil, asc: UInt8? = nil, ascq: UInt8? = nil) {
        self.response = response
        self.status = status
        self.senseKey = senseKey
        self.asc = asc
        self.ascq = ascq
    }

    public static let good = Outcome(response: 0, status: 0)
    public static let undecodable = Outcome(response: nil)

    public init(_ r: CommandResponse) {
        var key: UInt8?, asc: UInt8?, ascq: UInt8?
        if case let .success(sense)? = r.sense {
            key = sense.key
            asc = sense.asc
            ascq = sense.ascq
        }
        self.init(response: r.response.rawValue, status: r.status, senseKey: key, asc: asc, ascq: ascq)
    }

    /// GOOD or CONDITION MET with a virtio OK.
    public var isGood: Bool { response == 0 && (status == 0x00 || status == 0x04) }

    /// The command was ended by a TMF or a reset rather than by the device's answer.
    public var isAbortedOrReset: Bool {
        let r = response.map(VirtioSCSIResponse.init(rawValue:))
        return r == .aborted || r == .reset || (response == 0 && status == 0x40)
    }

    /// The grouping key of `--by outcome`: the sense key but not the ASC, so that a table
    /// stays short. `GOOD`, `CHECK CONDITION/MEDIUM ERROR`, `ABORTED`.
    /// Responses and statuses no standard defines fold into one `other` group each: a torn
    /// completion or a hostile guest would otherwise make a group (and its histograms) of
    /// every byte value (`top` grew by 30 MB/s on torn chains).
    public var group: Outcome {
        guard let response else { return Outcome(response: nil) }
        guard case .unknown = VirtioSCSIResponse(rawValue: response) else {
            guard response == 0 else { return Outcome(response: response) }
            let known = SAMStatus.isDefined(status)
            return Outcome(response: 0, status: known ? status : Self.other, senseKey: known ? senseKey : nil)
        }
        return Outcome(response: Self.other)
    }

    /// The response or status of the `other` groups.
    public static let other: UInt8 = 0xff

    public var name: String {
        guard let response else { return "undecodable" }
        if response == Self.other { return "other response" }
        let r = VirtioSCSIResponse(rawValue: response)
        guard r == .ok else { return r.name(in: .command) }
        if status == Self.other { return "other status" }
        var s = SAMStatus.name(status)
        if let senseKey { s += "/" + SenseKey.name(senseKey) }
        return s
    }

    /// `name` with the additional sense code and its text.
    public var detail: String {
        guard let asc, let ascq else { return name }
        return name + " " + Hex.short(UInt64(asc)) + "/" + Hex.short(UInt64(ascq)) + " " + ASCText.text(asc: asc, ascq: ascq)
    }

    public static func < (a: Outcome, b: Outcome) -> Bool {
        (a.response.map(Int.init) ?? 256, a.status, a.senseKey ?? 0, a.asc ?? 0, a.ascq ?? 0)
            < (b.response.map(Int.init) ?? 256, b.status, b.senseKey ?? 0, b.asc ?? 0, b.ascq ?? 0)
    }
}

/// One command, request to completion.
public struct Transaction: Sendable {
    public var device: UInt16
    public var queue: UInt16
    public var head: UInt16
    /// The tap's transaction id.
    public var id: UInt64
    /// The driver's tag (virtio_scsi_cmd_req.id); nil when the request was not seen.
    public var tag: UInt64?
    public var lun: LUNAddress?
    public var opcode: OpcodeKey?
    public var direction: SCSIDataDirection
    public var lba: UInt64?
    public var blocks: UInt32?
    /// Time the request was seen (nil for an orphan completion) and the completion.
    public var startNs: UInt64?
    public var endNs: UInt64
    /// Tap-observed latency; nil for an orphan completion.
    public var latencyNs: UInt64?
    /// Data moved: data-in the device wrote, data-out the driver sent (less the residual).
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    public var outcome: Outcome
    /// The serial of the TMF that named this command, when one did.
    public var tmfSerial: UInt64?
    public var flags: RecordFlags
    /// The decodes of the request and the response, or the chains to decode them from;
    /// nil when neither is kept (one reference: a transaction is copied per command).
    public var detail: TransactionDetail?

    public init(device: UInt16, queue: UInt16, head: UInt16, id: UInt64, tag: UInt64?, lun: LUNAddress?, opcode: OpcodeKey?,
                direction: SCSIDataDirection, lba: UInt64?, blocks: UInt32?, startNs: UInt64?, endNs: UInt64, latencyNs: UInt64?,
                bytesIn: UInt64, bytesOut: UInt64, outcome: Outcome, tmfSerial: UInt64?, flags: RecordFlags,
                detail: TransactionDetail?) {
        self.device = device; self.queue = queue; self.head = head; self.id = id; self.tag = tag; self.lun = lun
        self.opcode = opcode; self.direction = direction; self.lba = lba; self.blocks = blocks; self.startNs = startNs
        self.endNs = endNs; self.latencyNs = latencyNs; self.bytesIn = bytesIn; self.bytesOut = bytesOut
        self.outcome = outcome; self.tmfSerial = tmfSerial; self.flags = flags; self.detail = detail
    }

    /// The request's full decode (nil when the tap did not see it or it is not kept).
    public var request: ChainDecode? {
        get { detail?.request }
        set { detail = TransactionDetail(request: newValue, response: response) }
    }

    /// The response's full decode (nil when not kept).
    public var response: ChainDecode? {
        get { detail?.response }
        set { detail = TransactionDetail(request: request, response: newValue) }
    }

    public var opcodeName: String { opcode?.name ?? (startNs == nil ? "(unseen)" : "(bad cdb)") }

    public var isError: Bool { !outcome.isGood }
}

/// A task management function, request to response, with the commands it named.
public struct TMFTransaction: Sendable {
    public var serial: UInt64
    public var device: UInt16
    public var subtype: TMFSubtype
    public var lun: LUNAddress?
    public var tag: UInt64
    public var startNs: UInt64
    public var endNs: UInt64?
    /// virtio response (FUNCTION_COMPLETE, FUNCTION_SUCCEEDED, ...); nil while outstanding.
    public var response: VirtioSCSIResponse?
    /// Transaction ids of the commands in flight that it named when it was sent.
    public var named: [UInt64]
    /// How many of them completed ABORTED/RESET (or TASK ABORTED) after it was sent.
    public var aborted: Int
    /// How many were still in flight when its response came.
    public var outstandingAtResponse: Int

    public var latencyNs: UInt64? { endNs.map { $0 >= startNs ? $0 - startNs : 0 } }

    /// The subtypes that end the commands they name (QUERY_TASK and CLEAR_ACA do not).
    public var aborts: Bool {
        switch subtype {
        case .abortTask, .abortTaskSet, .clearTaskSet, .logicalUnitReset, .itNexusReset: true
        default: false
        }
    }

    public var summary: String {
        var s = subtype.name
        if let lun { s += " \(lun)" }
        if subtype.usesTag { s += " tag \(Hex.u64(tag))" }
        s += " named \(named.count)"
        guard let response else { return s + " sent" }
        if aborts { s += " aborted \(aborted)" }
        s += " -> \(response.name(in: .taskManagement))"
        if let latencyNs { s += " in \(Figures.format(latencyNs))" }
        return s
    }
}

/// One event the device returned on the eventq.
public struct EventRecord: Sendable {
    public var device: UInt16
    public var timeNs: UInt64
    public var event: VirtioSCSIEvent

    public var summary: String {
        var s = event.type.name
        if event.eventsMissed { s += "|EVENTS_MISSED" }
        if let lun = event.lun { s += " " + lun.summary }
        if let reason = event.reasonName { s += " " + reason }
        return s
    }
}

/// What a transaction keeps of its chains: their decodes, or the captured chains themselves
/// (the live path decodes only the key fields of each record; the few transactions a view
/// details are decoded in full when asked, exactly as the full path would have).
public final class TransactionDetail: Sendable {
    private enum Storage: Sendable {
        case decoded(request: ChainDecode?, response: ChainDecode?)
        case chains(TransactionChains)
    }

    private let storage: Storage

    /// nil when both are nil.
    public convenience init?(request: ChainDecode?, response: ChainDecode?) {
        guard request != nil || response != nil else { return nil }
        self.init(.decoded(request: request, response: response))
    }

    public convenience init(chains: TransactionChains) { self.init(.chains(chains)) }

    private init(_ storage: Storage) { self.storage = storage }

    public var request: ChainDecode? {
        switch storage {
        case let .decoded(request, _): request
        case let .chains(c): c.request
        }
    }

    public var response: ChainDecode? {
        switch storage {
        case let .decoded(_, response): response
        case let .chains(c): c.response
        }
    }
}

/// The captured chains of a transaction and the device configuration each was decoded
/// with: `VirtioSCSIChainDecoder` on them gives what the full path gives.
public struct TransactionChains: Sendable {
    public var queue: UInt16
    /// The request's segments (nil: not seen) and its context.
    public var requestSegments: ChainSegments?
    public var requestContext: VirtioSCSIChainContext
    public var responseSegments: ChainSegments
    public var usedLength: UInt32
    public var responseContext: VirtioSCSIChainContext

    public init(queue: UInt16, requestSegments: ChainSegments?, requestContext: VirtioSCSIChainContext,
                responseSegments: ChainSegments, usedLength: UInt32, responseContext: VirtioSCSIChainContext) {
        self.queue = queue
        self.requestSegments = requestSegments
        self.requestContext = requestContext
        self.responseSegments = responseSegments
        self.usedLength = usedLength
        self.responseContext = responseContext
    }

    public var request: ChainDecode? {
        requestSegments.map { VirtioSCSIChainDecoder.decodeAvailable($0, queue: queue, context: requestContext) }
    }

    public var response: ChainDecode {
        VirtioSCSIChainDecoder.decodeUsed(responseSegments, usedLength: usedLength, queue: queue, context: responseContext,
                                          request: request)
    }
}
