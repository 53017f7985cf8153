import VQWire

// CONTRACT SKELETON (replaced by the SCSI work): sense data. Keep these signatures.

public struct SenseData: FieldDescribable, Sendable, Equatable {
    public static let group = FieldDef("virtio_scsi.sense", "Sense data", .group)
    public static let keyField = FieldDef("virtio_scsi.sense.key", "Sense key", .code(bits: 4))

    public let bytes: [UInt8]
    public var responseCode: UInt8
    public var key: UInt8
    public var asc: UInt8
    public var ascq: UInt8

    public init(decoding bytes: [UInt8], baseOffset: Int = 0) throws(DecodeError) {
        var r = ByteReader(bytes, baseOffset: baseOffset)
        responseCode = try r.readU8("virtio_scsi.sense.response_code") & 0x7f
        self.bytes = bytes
        key = 0; asc = 0; ascq = 0
    }

    public var summary: String { "sense key \(key)" }

    /// One group field `virtio_scsi.sense`.
    public var fields: [Field] {
        [Field(group: Self.group, display: summary, [Field(Self.keyField, .code(UInt64(key), name: String(key)))])]
    }
}

