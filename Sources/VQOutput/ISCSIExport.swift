import PcapNG
import VQAnalysis
import VQRecord
import VQWire
import VirtioSCSI

// `--encap iscsi`: the same traffic as exported PDUs (LINKTYPE_WIRESHARK_UPPER_PDU, 252)
// tagged for Wireshark's `iscsi` dissector, so that stock Wireshark decodes every SCSI
// command and `-z scsi,srt,0` shows service response times with no plugin
// (virtio-facts.md, "pcapng as Wireshark reads it"). Virtio-only fields travel in packet
// comments.
//
// Exported PDU tags (big-endian), then one iSCSI PDU:
//
//   +--------+--------+----------------------+
//   | u16 tag| u16 len| value, padded to 4   |  12 dissector name "iscsi", 20/21 IPv4
//   +--------+--------+----------------------+  source/destination, 24 port type (2 TCP),
//                                               25/26 source/destination port, 0 end
//
// iSCSI basic header segment (RFC 7143 11.2), 48 bytes, then AHS, then data padded to 4:
//
//   0      1      2      3      4      5             8                16
//   +------+------+------+------+------+-------------+----------------+
//   |opcode|flags | opcode-specific  |AHSlen| data segment length | LUN |
//   +------+------+------+------+------+-------------+----------------+
//   16            20                                                  48
//   +-------------+---------------------------------------------------+
//   | task tag    | opcode-specific (CDB at 32 for a SCSI command)    |
//   +-------------+---------------------------------------------------+
//
// Mapping: a command request is a SCSI Command PDU (task tag = low 32 bits of the virtio
// id, data-out as immediate data, CDB bytes past 16 in an extended-CDB AHS); a good
// completion with data-in is a Data-In PDU with the S bit and the status; any other
// completion a SCSI Response PDU (sense as its data). TMFs map to Task Management Function
// request and response PDUs (task tag = low 32 bits of the transaction id). An event is an
// Asynchronous Message PDU (AsyncEvent 0, a SCSI asynchronous event: the UNIT ATTENTION a
// SCSI target would report, as sense data). NO_EVENT buffers, AN requests and responses,
// undecodable chains and markers have no iSCSI twin and are left out (counted in `skipped`).

public enum ISCSIExport {
    public static let initiatorAddress: [UInt8] = [10, 0, 0, 1]
    public static let targetAddress: [UInt8] = [10, 0, 0, 2]
    public static let targetPort: UInt32 = 3260

    /// One synthetic initiator port per device and virtqueue.
    public static func initiatorPort(deviceInstance: UInt16, queue: UInt16) -> UInt32 {
        40000 + UInt32(deviceInstance % 64) * 256 + UInt32(queue % 256)
    }

    /// The exported-PDU tag list for one direction.
    public static func tags(outbound: Bool, port: UInt32, into w: inout ByteWriter) {
        func tag(_ code: UInt16, _ value: [UInt8]) {
            let padded = (value.count + 3) & ~3
            w.writeBE16(code)
            w.writeBE16(UInt16(padded))
            w.writeBytes(value)
            w.writeZeros(padded - value.count)
        }
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
        tag(12, Array("iscsi".utf8))
        tag(20, outbound ? initiatorAddress : targetAddress)
        tag(21, outbound ? targetAddress : initiatorAddress)
        tag(24, be32(2))
        tag(25, be32(outbound ? port : targetPort))
        tag(26, be32(outbound ? targetPort : port))
        w.writeBE32(0)
    }

    /// iSCSI task attributes (RFC 7143 11.3.1): 1 simple, 2 ordered, 3 head of queue, 4 ACA.
    static func iscsiAttribute(_ a: TaskAttribute) -> UInt8 {
        switch a {
        case .simple: 1
        case .ordered: 2
        case .headOfQueue: 3
        case .aca: 4
        case .unknown: 0
        }
    }

    /// Basic header: opcode, flags, three opcode-specific bytes, AHS words, data length, LUN, tag.
    static func header(_ opcode: UInt8, flags: UInt8, b2: UInt8 = 0, b3: UInt8 = 0, ahsWords: Int = 0, dataLength: Int,
                       lun: [UInt8], tag: UInt32, into w: inout ByteWriter) {
        w.writeU8(opcode)
        w.writeU8(flags)
        w.writeU8(b2)
        w.writeU8(b3)
        w.writeU8(UInt8(clamping: ahsWords))
        w.writeBE24(UInt32(clamping: min(dataLength, 0xff_ffff)))
        w.writeBytes(lun, paddedTo: 8)
        w.writeBE32(tag)
    }

    static func data(_ bytes: [UInt8], into w: inout ByteWriter) {
        let n = min(bytes.count, 0xff_ffff)
        w.writeBytes(bytes.prefix(n))
        w.writeZeros((4 - n % 4) % 4)
    }

    /// SCSI Command PDU (opcode 0x01). `expectedLength` is 0 unless R or W is set (the
    /// dissector drops a command that breaks this rule).
    public static func command(lun: [UInt8], tag: UInt32, attribute: TaskAttribute, cdb: [UInt8], read: Bool, write: Bool,
                               expectedLength: UInt32, dataOut: [UInt8], commandSN: UInt32, into w: inout ByteWriter) {
        var cdbBytes = cdb
        // Trailing cdb_size padding is not part of the command; keep at least the 16 of the BHS.
        if let length = (try? SCSICommand(decoding: cdb))?.cdbLength, length <= cdb.count { cdbBytes = Array(cdb.prefix(length)) }
        let extra = max(0, cdbBytes.count - 16)
        let ahsWords = extra == 0 ? 0 : (4 + extra + 3) / 4
        var flags: UInt8 = 0x80 | iscsiAttribute(attribute)
        if read { flags |= 0x40 }
        if write { flags |= 0x20 }
        header(0x01, flags: flags, ahsWords: ahsWords, dataLength: dataOut.count, lun: lun, tag: tag, into: &w)
        w.writeBE32(read || write ? expectedLength : 0)
        w.writeBE32(commandSN)
        w.writeBE32(commandSN)  // ExpStatSN
        w.writeBytes(Array(cdbBytes.prefix(16)), paddedTo: 16)
        if extra > 0 {
            w.writeBE16(UInt16(extra + 1))
            w.writeU8(1)  // extended CDB
            w.writeU8(0)
            w.writeBytes(Array(cdbBytes.dropFirst(16)), paddedTo: ahsWords * 4 - 4)
        }
        data(dataOut, into: &w)
    }

    /// Data-In PDU (0x25) carrying the status (S bit): a good completion with data.
    public static func dataIn(lun: [UInt8], tag: UInt32, status: UInt8, residual: UInt32, data bytes: [UInt8], statSN: UInt32, into w: inout ByteWriter) {
        let flags: UInt8 = 0x80 | 0x01 | (residual > 0 ? 0x02 : 0)
        header(0x25, flags: flags, b3: status, dataLength: bytes.count, lun: lun, tag: tag, into: &w)
        w.writeBE32(0xffff_ffff)  // target transfer tag
        w.writeBE32(statSN)
        w.writeBE32(statSN &+ 1)
        w.writeBE32(statSN &+ 1)
        w.writeBE32(0)  // DataSN
        w.writeBE32(0)  // buffer offset
        w.writeBE32(residual)
        data(bytes, into: &w)
    }

    /// SCSI Response PDU (0x21); sense as data (u16 length, sense bytes).
    public static func response(tag: UInt32, targetFailure: Bool, status: UInt8, residual: UInt32, sense: [UInt8], statSN: UInt32, into w: inout ByteWriter) {
        let flags: UInt8 = 0x80 | (residual > 0 ? 0x02 : 0)
        var segment: [UInt8] = []
        if !sense.isEmpty {
            segment = [UInt8(truncatingIfNeeded: sense.count >> 8), UInt8(truncatingIfNeeded: sense.count)] + sense
        }
        header(0x21, flags: flags, b2: targetFailure ? 1 : 0, b3: status, dataLength: segment.count, lun: [], tag: tag, into: &w)
        w.writeBE32(0)  // SNACK tag
        w.writeBE32(statSN)
        w.writeBE32(statSN &+ 1)
        w.writeBE32(statSN &+ 1)
        w.writeBE32(0)  // ExpDataSN
        w.writeBE32(0)  // bidirectional residual
        w.writeBE32(residual)
        data(segment, into: &w)
    }

    /// The UNIT ATTENTION (sense key, ASC, ASCQ) a SCSI target reports for a virtio-scsi
    /// event: PARAM_CHANGE carries its own ASC/ASCQ; a rescan or a removal changes the
    /// reported LUNs (3F/0E); a hard reset is "power on, reset or bus device reset" (29/00);
    /// an asynchronous
    /// notification of a media change is 28/00, of a power condition 5E/00, anything else
    /// "target operating conditions have changed" (3F/00). nil for NO_EVENT.
    public static func unitAttention(for e: VirtioSCSIEvent) -> (asc: UInt8, ascq: UInt8)? {
        switch e.type {
        case .paramChange: return (e.asc ?? 0, e.ascq ?? 0)
        case .transportReset:
            return ResetReason(rawValue: e.reason ?? 0) == .hard ? (0x29, 0x00) : (0x3f, 0x0e)
        case .asyncNotify:
            let events = ANEvents(rawValue: e.reason ?? 0)
            if events.contains(.mediaChange) { return (0x28, 0x00) }
            if events.contains(.powerManagement) { return (0x5e, 0x00) }
            return (0x3f, 0x00)
        case .noEvent, .unknown: return nil
        }
    }

    /// Asynchronous Message PDU (0x32, RFC 7143 11.9), AsyncEvent 0: sense data (fixed
    /// format, UNIT ATTENTION) as the data segment, after its u16 length.
    public static func asyncMessage(lun: [UInt8], asc: UInt8, ascq: UInt8, statSN: UInt32, into w: inout ByteWriter) {
        let sense: [UInt8] = [0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0]
        let segment = [0, UInt8(sense.count)] + sense
        header(0x32, flags: 0x80, dataLength: segment.count, lun: lun, tag: 0xffff_ffff, into: &w)
        w.writeBE32(0)
        w.writeBE32(statSN)
        w.writeBE32(statSN &+ 1)
        w.writeBE32(statSN &+ 1)
        w.writeU8(0)  // AsyncEvent: SCSI asynchronous event
        w.writeU8(0)  // AsyncVCode
        w.writeZeros(6)  // Parameter1-3
        w.writeZeros(4)
        data(segment, into: &w)
    }

    /// iSCSI TMF function codes (RFC 7143 11.5.1); I_T nexus reset has no twin: TARGET WARM RESET.
    static func function(_ s: TMFSubtype) -> UInt8 {
        switch s {
        case .abortTask: 1
        case .abortTaskSet: 2
        case .clearACA: 3
        case .clearTaskSet: 4
        case .logicalUnitReset: 5
        case .itNexusReset: 6
        case .queryTask, .queryTaskSet, .unknown: 0
        }
    }

    public static func tmfRequest(_ r: TMFRequest, tag: UInt32, commandSN: UInt32, into w: inout ByteWriter) {
        header(0x02 | 0x40, flags: 0x80 | function(r.subtype), dataLength: 0, lun: r.lun.bytes, tag: tag, into: &w)
        w.writeBE32(UInt32(truncatingIfNeeded: r.id))  // referenced task tag
        w.writeBE32(commandSN)
        w.writeBE32(commandSN)
        w.writeBE32(0)  // RefCmdSN
        w.writeBE32(0)  // ExpDataSN
        w.writeZeros(8)
    }

    /// iSCSI TMF responses: 0 function complete, 1 task does not exist, 2 LUN does not exist, 5 not supported, 255 rejected.
    static func tmfResponseCode(_ r: VirtioSCSIResponse) -> UInt8 {
        switch r {
        case .ok, .functionSucceeded: 0
        case .badTarget, .incorrectLUN: 2
        case .functionRejected: 255
        default: 5
        }
    }

    public static func tmfResponse(_ r: TMFResponse, tag: UInt32, statSN: UInt32, into w: inout ByteWriter) {
        header(0x22, flags: 0x80, b2: tmfResponseCode(r.response), dataLength: 0, lun: [], tag: tag, into: &w)
        w.writeBE32(0)
        w.writeBE32(statSN)
        w.writeBE32(statSN &+ 1)
        w.writeBE32(statSN &+ 1)
        w.writeZeros(12)
    }
}

/// The `PacketEncoder` of `--encap iscsi`.
public struct ISCSIExportEncoder: PacketEncoder {
    private var decoder = RecordDecoder()
    private var sequence: [InterfaceKey: UInt32] = [:]
    /// Records with no iSCSI twin (events, AN, markers, undecodable chains).
    public private(set) var skipped = 0

    public init() {}
    public var linkType: LinkType { .wiresharkUpperPDU }

    public func interfaceNote(_ key: InterfaceKey) -> String {
        "iSCSI export: initiator port \(ISCSIExport.initiatorPort(deviceInstance: key.deviceInstance, queue: key.queue))"
    }

    /// The PDU bytes (tags included) and comment for one record, or nil when it has no twin.
    public mutating func packet(for record: CaptureRecord) -> (bytes: [UInt8], comment: String)? {
        let d = decoder.decode(record)
        guard let message = d.decode?.message else { return nil }
        let key = InterfaceKey(deviceInstance: record.deviceInstance, queue: record.queue)
        let sn = sequence[key, default: 1]
        sequence[key] = sn &+ 1
        let port = ISCSIExport.initiatorPort(deviceInstance: record.deviceInstance, queue: record.queue)
        let outbound = record.kind == .available
        var w = ByteWriter(capacity: 128 + d.record.segments.reduce(0) { $0 + $1.bytes.count })
        ISCSIExport.tags(outbound: outbound, port: port, into: &w)
        var comment = "virtio-scsi \(d.deviceName) \(d.queueName) head \(record.head) transaction \(record.transactionID)"
        switch message {
        case let .commandRequest(r):
            let direction = d.decode?.command?.dataDirection ?? .unknown
            // Data-in capacity: the writable buffers minus the response header and sense.
            let writable = record.segments.filter(\.isWritable).reduce(UInt64(0)) { $0 + UInt64($1.length) }
            let inLength = UInt32(clamping: writable > UInt64(12 + d.context.senseSize) ? writable - UInt64(12 + d.context.senseSize) : 0)
            let outLength = UInt32(clamping: d.decode?.payloadLength ?? 0)
            let read = direction == .fromDevice || (direction == .unknown && inLength > 0)
            let write = direction == .toDevice || (direction == .unknown && outLength > 0 && !read)
            ISCSIExport.command(lun: r.lun.bytes, tag: UInt32(truncatingIfNeeded: r.id), attribute: r.taskAttribute, cdb: r.cdb,
                                read: read, write: write, expectedLength: read ? inLength : outLength, dataOut: write ? r.dataOut : [],
                                commandSN: sn, into: &w)
            comment += " id \(Hex.u64(r.id))"
        case let .commandResponse(r):
            guard case let .commandRequest(req)? = d.request?.message else {
                // An orphan: its task tag is unknown, the status still decodes.
                ISCSIExport.response(tag: 0xffff_ffff, targetFailure: r.response != .ok, status: r.status, residual: r.residual,
                                     sense: Array(r.senseBuffer.prefix(Int(r.senseLength))), statSN: sn, into: &w)
                comment += " orphan response \(r.response.name(in: .command))"
                break
            }
            let tag = UInt32(truncatingIfNeeded: req.id)
            if r.response == .ok && r.status == 0 && !r.dataIn.isEmpty {
                ISCSIExport.dataIn(lun: req.lun.bytes, tag: tag, status: 0, residual: r.residual, data: r.dataIn, statSN: sn, into: &w)
            } else {
                ISCSIExport.response(tag: tag, targetFailure: r.response != .ok, status: r.status, residual: r.residual,
                                     sense: Array(r.senseBuffer.prefix(Int(r.senseLength))), statSN: sn, into: &w)
            }
            comment += " id \(Hex.u64(req.id)) response \(r.response.name(in: .command))"
        case let .tmfRequest(r):
            ISCSIExport.tmfRequest(r, tag: UInt32(truncatingIfNeeded: record.transactionID), commandSN: sn, into: &w)
            comment += " tmf \(r.subtype.name) id \(Hex.u64(r.id))"
        case let .tmfResponse(r):
            ISCSIExport.tmfResponse(r, tag: UInt32(truncatingIfNeeded: record.transactionID), statSN: sn, into: &w)
            comment += " tmf response \(r.response.name(in: .taskManagement))"
        case let .event(e):
            guard let (asc, ascq) = ISCSIExport.unitAttention(for: e) else { return nil }
            ISCSIExport.asyncMessage(lun: e.lun?.bytes ?? [], asc: asc, ascq: ascq, statSN: sn, into: &w)
            comment += " \(e.summary)"
        default:
            return nil
        }
        if !record.flags.isEmpty { comment += " flags \(record.flags.names.joined(separator: ","))" }
        return (w.bytes, comment)
    }

    public mutating func appendPackets(for record: CaptureRecord, interface: UInt32, into w: BlockBuffer) -> Int {
        guard let (bytes, comment) = packet(for: record) else {
            skipped += 1
            return 0
        }
        let text = Array(comment.utf8)
        PcapNGBlocks.appendEnhancedPacket(into: w, interface: interface, timestampNs: record.timestampNs, dataLength: bytes.count,
                                          originalLength: bytes.count, direction: record.direction, comment: text) { $0.bytes(bytes) }
        return 1
    }
}
