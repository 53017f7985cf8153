import VQRecord

// Appendix H, "Device Operation: request queues": the key fields of a command request and
// of its response, read in place from a capture record (RecordView) with nothing
// allocated, for the outputs that need no field tree (`read -q`, `stats`, one-line text).
// Layouts as in CommandRequest.swift and CommandResponse.swift:
//
//   request  0          8          16   17   18   19             19+cdb_size
//            +----------+----------+----+----+----+---------------+-----------
//            | lun[8]   | id (le64)|attr|prio|crn | cdb[cdb_size] | data-out ...
//            +----------+----------+----+----+----+---------------+-----------
//   response 0            4           8          10     11       12                12+sense_size
//            +------------+-----------+----------+------+--------+-----------------+-----------
//            | sense_len  | residual  | status_  |status|response| sense[sense_size]| data-in ...
//            +------------+-----------+----------+------+--------+-----------------+-----------
//
// A key exists only where the full decoders (CommandRequest, CommandResponse, SCSICommand)
// would succeed and where their summary depends on nothing else than the key holds: the
// header within the first buffer of its side, no T10 PI, a conforming LUN, a few common
// CDBs (READ/WRITE(10/12/16), TEST UNIT READY, SYNCHRONIZE CACHE(10)), no sense data.
// Everything else returns nil and is decoded in full.

/// A command request's key fields.
public struct CommandRequestKey: Sendable {
    /// The 8 LUN bytes as read (little-endian), and what they address.
    public var lunBytes: UInt64
    public var target: UInt8
    public var lun: UInt16
    public var id: UInt64
    public var taskAttribute: UInt8
    public var priority: UInt8
    public var crn: UInt8
    public var opcode: UInt8
    /// LBA and blocks, when the command has them (`hasLBA`).
    public var lba: UInt64 = 0
    public var blocks: UInt32 = 0
    public var hasLBA = true
    public var direction: SCSIDataDirection
    /// Summary words after lba and len (READ/WRITE: dpo, fua) or before (SYNC CACHE: immed).
    public var dpo = false
    public var fua = false
    public var immed = false
    /// The first 32 bytes of the cdb field (`cdbSize` of them count).
    public var cdb: (UInt64, UInt64, UInt64, UInt64)
    public var cdbSize: UInt8
    /// The payload as ChainDecode counts it; without T10 PI the captured part is data-out.
    public var payloadLength: UInt64
    public var payloadCaptured: UInt64

    public init() {
        lunBytes = 0; target = 0; lun = 0; id = 0; taskAttribute = 0; priority = 0; crn = 0; opcode = 0
        direction = .unknown; cdb = (0, 0, 0, 0); cdbSize = 0; payloadLength = 0; payloadCaptured = 0
    }

    /// Reads the request of an available record on a request queue; false (and the key
    /// left as it was) when it must be decoded in full.
    public mutating func read(_ v: RecordView, context: VirtioSCSIChainContext) -> Bool {
        guard let k = Self(v, context: context) else { return false }
        self = k
        return true
    }

    /// The request of an available record on a request queue, or nil (decode it in full).
    public init?(_ v: RecordView, context: VirtioSCSIChainContext) {
        guard v.kind == .available, v.queue >= 2, !context.t10PI, context.cdbSize >= 16, context.cdbSize <= 32 else { return nil }
        let header = CommandRequest.headerSize(t10PI: false) + context.cdbSize
        // As ChainDecoder.gather: the header must be in the first readable buffer.
        let side = v.readable
        guard side.firstOffset >= 0, side.firstCaptured >= header else { return nil }
        self.init(v.bytes, at: side.firstOffset, length: side.length, gathered: side.gathered, context: context)
    }

    /// The same from the readable side of a chain that came as a value (`CaptureRecord`).
    public init?(_ side: ChainSide, of segments: ChainSegments, queue: UInt16, context: VirtioSCSIChainContext) {
        guard queue >= 2, !context.t10PI, context.cdbSize >= 16, context.cdbSize <= 32, side.first >= 0 else { return nil }
        let header = CommandRequest.headerSize(t10PI: false) + context.cdbSize
        guard side.firstCaptured >= header, side.first < segments.count else { return nil }
        guard let key = segments.withBytes(side.first, { Self($0, at: 0, length: side.length, gathered: side.gathered, context: context) })
        else { return nil }
        self = key
    }

    /// The key from the side's first buffer at `at` in `b` (its header checked to be there).
    private init?(_ b: UnsafeRawBufferPointer, at: Int, length: UInt64, gathered: UInt64, context: VirtioSCSIChainContext) {
        let header = CommandRequest.headerSize(t10PI: false) + context.cdbSize
        // VirtioSCSILUN: 01 TT 4L LL 00 00 00 00 (flat) or 01 TT 00 LL 00.. (peripheral).
        let lunBytes = RecordView.le64(b, at)
        let b2 = b[at + 2]
        guard b[at] == 1, b2 >> 6 == 1 || b2 == 0, lunBytes >> 32 == 0 else { return nil }
        self.lunBytes = lunBytes
        target = b[at + 1]
        lun = UInt16(b2 & 0x3f) << 8 | UInt16(b[at + 3])
        id = RecordView.le64(b, at + 8)
        taskAttribute = b[at + 16]
        priority = b[at + 17]
        crn = b[at + 18]
        let c = at + 19
        opcode = b[c]
        switch opcode {
        case 0x00:
            direction = .none
            hasLBA = false
        case 0x28, 0x2a, 0x88, 0x8a, 0xa8, 0xaa:
            direction = opcode & 0x0f == 0x08 ? .fromDevice : .toDevice
            dpo = b[c + 1] & 0x10 != 0
            fua = b[c + 1] & 0x08 != 0
            switch opcode >> 4 {
            case 0x2:
                lba = UInt64(RecordView.be32(b, c + 2))
                blocks = UInt32(RecordView.be16(b, c + 7))
            case 0xa:
                lba = UInt64(RecordView.be32(b, c + 2))
                blocks = RecordView.be32(b, c + 6)
            default:
                lba = RecordView.be64(b, c + 2)
                blocks = RecordView.be32(b, c + 10)
            }
        case 0x35:
            direction = .none
            immed = b[c + 1] & 0x02 != 0
            lba = UInt64(RecordView.be32(b, c + 2))
            blocks = UInt32(RecordView.be16(b, c + 7))
        default:
            return nil
        }
        // The cdb field, zero-padded to 32 bytes.
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { w in
            w.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[c..<(c + context.cdbSize)]))
        }
        cdb = words
        cdbSize = UInt8(context.cdbSize)
        payloadLength = length > UInt64(header) ? length - UInt64(header) : 0
        payloadCaptured = gathered - UInt64(header)
    }

    /// The full decode this key stands for (for an output that needs its field tree). The
    /// data-out bytes are not kept: they come back as zeros of the captured count.
    public func chainDecode(queue: UInt16) -> ChainDecode {
        let lunArray = withUnsafeBytes(of: lunBytes.littleEndian) { Array($0) }
        let cdbArray = withUnsafeBytes(of: cdb) { Array($0.prefix(Int(cdbSize))) }
        let request = CommandRequest(lun: VirtioSCSILUN(bytes: lunArray), id: id, taskAttribute: TaskAttribute(rawValue: taskAttribute),
                                     priority: priority, crn: crn, cdb: cdbArray, cdbSize: Int(cdbSize),
                                     dataOut: [UInt8](repeating: 0, count: Int(payloadCaptured)))
        return ChainDecode(role: VirtioSCSIQueueRole(queue: queue), content: .message(.commandRequest(request)), payloadLength: payloadLength,
                           payloadCaptured: payloadCaptured)
    }
}

/// A command response's key fields (responses without sense data).
public struct CommandResponseKey: Sendable {
    public var residual: UInt32
    public var statusQualifier: UInt16
    public var status: UInt8
    public var response: UInt8
    /// The payload as ChainDecode counts it; without T10 PI the captured part is data-in.
    public var payloadLength: UInt64
    public var payloadCaptured: UInt64

    public init() {
        residual = 0; statusQualifier = 0; status = 0; response = 0; payloadLength = 0; payloadCaptured = 0
    }

    /// Reads the response of a used record; false (and the key left as it was) when it
    /// must be decoded in full.
    public mutating func read(_ v: RecordView, context: VirtioSCSIChainContext) -> Bool {
        guard let k = Self(v, context: context) else { return false }
        self = k
        return true
    }

    /// The response of a used record on a request queue, or nil (decode it in full).
    public init?(_ v: RecordView, context: VirtioSCSIChainContext) {
        guard v.kind == .used, v.queue >= 2, !context.t10PI, context.senseSize >= 0 else { return nil }
        let header = CommandResponse.headerSize + context.senseSize
        // As ChainDecoder.gather: the header must be in the first writable buffer.
        let side = v.writable
        let used = min(side.gathered, UInt64(v.usedLength))
        guard side.firstOffset >= 0, side.firstCaptured >= header, used >= UInt64(header) else { return nil }
        guard let key = Self(v.bytes, at: side.firstOffset, used: used, usedLength: v.usedLength, header: header) else { return nil }
        self = key
    }

    /// The same from the writable side of a chain that came as a value (`CaptureRecord`).
    public init?(_ side: ChainSide, of segments: ChainSegments, queue: UInt16, usedLength: UInt32, context: VirtioSCSIChainContext) {
        guard queue >= 2, !context.t10PI, context.senseSize >= 0, side.first >= 0 else { return nil }
        let header = CommandResponse.headerSize + context.senseSize
        let used = min(side.gathered, UInt64(usedLength))
        guard side.firstCaptured >= header, used >= UInt64(header), side.first < segments.count else { return nil }
        guard let key = segments.withBytes(side.first, { Self($0, at: 0, used: used, usedLength: usedLength, header: header) })
        else { return nil }
        self = key
    }

    /// The key from the side's first buffer at `at` in `b` (its header checked to be there).
    private init?(_ b: UnsafeRawBufferPointer, at: Int, used: UInt64, usedLength: UInt32, header: Int) {
        guard RecordView.le32(b, at) == 0 else { return nil }  // sense_len: sense data goes the full way
        residual = RecordView.le32(b, at + 4)
        statusQualifier = RecordView.le16(b, at + 8)
        status = b[at + 10]
        response = b[at + 11]
        let usedLength = UInt64(usedLength)
        payloadLength = usedLength > UInt64(header) ? usedLength - UInt64(header) : 0
        payloadCaptured = used - UInt64(header)
    }
}
