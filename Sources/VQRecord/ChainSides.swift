// The two sides of a chain record that came as a value (`CaptureRecord`, from the live tap),
// summed up as `RecordView` sums up those of a record read in place: the driver-readable
// and the device-writable buffers, each with its first buffer's bytes and what the decoders
// would gather (the buffers in order up to the first one not captured whole).

/// One side of a chain, from its segments.
public struct ChainSide: Sendable {
    /// The descriptors' total length.
    public var length: UInt64 = 0
    /// The bytes of the side's first segment (nil: the side has none).
    public var firstBytes: [UInt8]?
    /// The bytes gathered.
    public var gathered: UInt64 = 0
    var complete = true

    mutating func add(_ s: RecordSegment) {
        if firstBytes == nil { firstBytes = s.bytes }
        length += UInt64(s.length)
        guard complete else { return }
        gathered += UInt64(s.bytes.count)
        if s.bytes.count < Int(s.length) { complete = false }
    }
}

/// Both sides of a chain.
public struct ChainSides: Sendable {
    public private(set) var readable = ChainSide()
    public private(set) var writable = ChainSide()

    /// nil when a segment holds more bytes than its descriptor's length (a record that
    /// `RecordView` would not vouch for either: it goes the full way).
    public init?(_ segments: [RecordSegment]) {
        for s in segments {
            guard s.bytes.count <= Int(s.length) else { return nil }
            if s.isWritable { writable.add(s) } else { readable.add(s) }
        }
    }
}
