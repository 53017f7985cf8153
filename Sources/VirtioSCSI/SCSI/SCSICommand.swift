import VQWire

// CONTRACT SKELETON (replaced by the SCSI work): the decoded CDB. Public API that
// virtio-scsi message decoders rely on; keep these signatures.

public enum SCSIDataDirection: Sendable, Equatable {
    case none, fromDevice, toDevice, unknown
}

public struct SCSICommand: FieldDescribable, Sendable, Equatable {
    public static let group = FieldDef("virtio_scsi.cdb", "CDB", .group)
    public static let opcodeField = FieldDef("virtio_scsi.cdb.opcode", "Opcode", .code(bits: 8))

    public let bytes: [UInt8]
    public let opcode: UInt8
    public var serviceAction: UInt16?
    public var name: String
    public var lba: UInt64?
    /// Blocks for reads, writes, verifies and write-sames.
    public var transferLength: UInt32?
    /// Bytes the initiator will accept (INQUIRY, REPORT LUNS, MODE SENSE, ...).
    public var allocationLength: UInt32?
    public var dataDirection: SCSIDataDirection

    /// Decodes a CDB. `bytes` may be longer than the command (the cdb_size field is padded).
    public init(decoding bytes: [UInt8], baseOffset: Int = 0) throws(DecodeError) {
        var r = ByteReader(bytes, baseOffset: baseOffset)
        opcode = try r.readU8("virtio_scsi.cdb.opcode")
        self.bytes = bytes
        name = Naming.unknown(UInt64(opcode))
        dataDirection = .unknown
    }

    public var summary: String { name }

    /// One group field `virtio_scsi.cdb` with the decoded CDB fields as children.
    public var fields: [Field] {
        [Field(group: Self.group, display: summary, [Field(Self.opcodeField, .code(UInt64(opcode), name: name))])]
    }
}
