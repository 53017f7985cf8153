// Bounded reads over a byte buffer, in the manner of tcpdump's GET_* accessors and
// swift-nio's readInteger: every read checks its bounds first (with a test that cannot
// overflow, DESIGN.md rule 1), throws a DecodeError naming the field, and consumes nothing
// when it fails.

public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    /// Index into `bytes` of the next byte to read.
    public private(set) var index: Int
    /// One past the last readable index.
    public let endIndex: Int
    /// Added to offsets in errors and in `offset`, so that a reader over a slice of a
    /// larger message reports positions in the larger message.
    public let baseOffset: Int
    private let startIndex: Int

    public init(_ bytes: [UInt8], baseOffset: Int = 0) {
        self.bytes = bytes
        self.index = 0
        self.startIndex = 0
        self.endIndex = bytes.count
        self.baseOffset = baseOffset
    }

    private init(bytes: [UInt8], start: Int, end: Int, baseOffset: Int) {
        self.bytes = bytes
        self.index = start
        self.startIndex = start
        self.endIndex = end
        self.baseOffset = baseOffset
    }

    /// Offset of the next byte, as reported in errors.
    public var offset: Int { baseOffset + (index - startIndex) }
    public var remaining: Int { endIndex - index }
    public var isAtEnd: Bool { index >= endIndex }

    @inline(__always)
    private func check(_ count: Int, _ field: String) throws(DecodeError) {
        // `count <= remaining` first, so no addition can overflow.
        guard count >= 0, count <= remaining else {
            throw .truncated(field, at: offset, needed: count, available: remaining)
        }
    }

    public mutating func readU8(_ field: String) throws(DecodeError) -> UInt8 {
        try check(1, field)
        defer { index += 1 }
        return bytes[index]
    }

    public mutating func readLE16(_ field: String) throws(DecodeError) -> UInt16 {
        try check(2, field)
        defer { index += 2 }
        return UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8
    }

    public mutating func readLE32(_ field: String) throws(DecodeError) -> UInt32 {
        try check(4, field)
        defer { index += 4 }
        return Self.le32(bytes, index)
    }

    public mutating func readLE64(_ field: String) throws(DecodeError) -> UInt64 {
        try check(8, field)
        defer { index += 8 }
        return UInt64(Self.le32(bytes, index)) | UInt64(Self.le32(bytes, index + 4)) << 32
    }

    public mutating func readBE16(_ field: String) throws(DecodeError) -> UInt16 {
        try check(2, field)
        defer { index += 2 }
        return UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
    }

    /// Big-endian 24-bit value (SCSI transfer lengths and LBAs of 6-byte CDBs).
    public mutating func readBE24(_ field: String) throws(DecodeError) -> UInt32 {
        try check(3, field)
        defer { index += 3 }
        return UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
    }

    public mutating func readBE32(_ field: String) throws(DecodeError) -> UInt32 {
        try check(4, field)
        defer { index += 4 }
        return Self.be32(bytes, index)
    }

    public mutating func readBE64(_ field: String) throws(DecodeError) -> UInt64 {
        try check(8, field)
        defer { index += 8 }
        return UInt64(Self.be32(bytes, index)) << 32 | UInt64(Self.be32(bytes, index + 4))
    }

    /// Exactly `count` bytes.
    public mutating func readBytes(_ count: Int, _ field: String) throws(DecodeError) -> [UInt8] {
        try check(count, field)
        defer { index += count }
        return Array(bytes[index..<index + count])
    }

    /// Everything that is left (possibly nothing).
    public mutating func readRest() -> [UInt8] {
        defer { index = endIndex }
        return Array(bytes[index..<endIndex])
    }

    /// A reader over the next `count` bytes, which this reader skips. Offsets in the
    /// sub-reader's errors stay relative to this reader's message.
    public mutating func readSubReader(_ count: Int, _ field: String) throws(DecodeError) -> ByteReader {
        try check(count, field)
        defer { index += count }
        return ByteReader(bytes: bytes, start: index, end: index + count, baseOffset: offset)
    }

    public mutating func skip(_ count: Int, _ field: String) throws(DecodeError) {
        try check(count, field)
        index += count
    }

    /// The next byte without consuming it, or nil at the end.
    public func peekU8() -> UInt8? {
        index < endIndex ? bytes[index] : nil
    }

    /// The byte `ahead` positions past the current one, or nil beyond the end.
    public func peekU8(ahead: Int) -> UInt8? {
        guard ahead >= 0, ahead < remaining else { return nil }
        return bytes[index + ahead]
    }

    @inline(__always)
    static func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    @inline(__always)
    static func be32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }
}
