// The three ways a decoder can fail (DESIGN.md rule 2), each naming the field and the offset.
// An unknown code is not an error: decoders keep it as a value (`.unknown(raw)`).

/// Why bytes could not be decoded. `offset` is relative to the start of the message the
/// reader was created for (plus its `baseOffset`), so a message says where in the pasted
/// bytes the problem is.
public struct DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The bytes end before the field does.
        case truncated(needed: Int, available: Int)
        /// The field is there but breaks a rule of the format.
        case malformed(reason: String)
        /// The field is valid but names something this decoder does not handle.
        case unsupported(reason: String)
    }

    public var kind: Kind
    /// Dotted field name (`virtio_scsi.cdb`), the one used in JSON and display filters.
    public var field: String
    /// Byte offset of the field.
    public var offset: Int

    public init(_ kind: Kind, field: String, offset: Int) {
        self.kind = kind
        self.field = field
        self.offset = offset
    }

    public static func truncated(_ field: String, at offset: Int, needed: Int, available: Int) -> DecodeError {
        DecodeError(.truncated(needed: needed, available: available), field: field, offset: offset)
    }

    public static func malformed(_ field: String, at offset: Int, _ reason: String) -> DecodeError {
        DecodeError(.malformed(reason: reason), field: field, offset: offset)
    }

    public static func unsupported(_ field: String, at offset: Int, _ reason: String) -> DecodeError {
        DecodeError(.unsupported(reason: reason), field: field, offset: offset)
    }

    public var isTruncated: Bool { if case .truncated = kind { return true } else { return false } }
    public var isMalformed: Bool { if case .malformed = kind { return true } else { return false } }
    public var isUnsupported: Bool { if case .unsupported = kind { return true } else { return false } }

    /// One line: `truncated: virtio_scsi.cdb at offset 19: needs 32 bytes, 5 available`.
    public var description: String {
        switch kind {
        case let .truncated(needed, available):
            let unit = needed == 1 ? "byte" : "bytes"
            return "truncated: \(field) at offset \(offset): needs \(needed) \(unit), \(available) available"
        case let .malformed(reason):
            return "malformed: \(field) at offset \(offset): \(reason)"
        case let .unsupported(reason):
            return "unsupported: \(field) at offset \(offset): \(reason)"
        }
    }
}
