// The two sides of a chain record that came as a value (`CaptureRecord`, from the live tap),
// summed up as `RecordView` sums up those of a record read in place: the driver-readable
// and the device-writable buffers, each with its first buffer's bytes and what the decoders
// would gather (the buffers in order up to the first one not captured whole).

/// One side of a chain, from its segments.
public struct ChainSide: Sendable {
    /// The descriptors' total length.
    public var length: UInt64 = 0
    /// The index of the side's first segment in the chain (-1: the side has none), and how
    /// many bytes it holds.
    public var first = -1
    public var firstCaptured = 0
    /// The bytes gathered.
    public var gathered: UInt64 = 0
    var complete = true

    /// A segment of `segmentLength` bytes of which `captured` were captured.
    @inline(__always)
    mutating func add(length segmentLength: UInt32, captured: Int, at index: Int) {
        if first < 0 { first = index; firstCaptured = captured }
        length += UInt64(segmentLength)
        guard complete else { return }
        gathered += UInt64(captured)
        if captured < Int(segmentLength) { complete = false }
    }
}

/// Both sides of a chain.
public struct ChainSides: Sendable {
    public private(set) var readable = ChainSide()
    public private(set) var writable = ChainSide()

    /// nil when a segment holds more bytes than its descriptor's length (a record that
    /// `RecordView` would not vouch for either: it goes the full way).
    public init?(_ segments: ChainSegments) {
        let ok: Bool = segments.withUnsafeEntries { all in
            for i in 0..<all.count {
                let length = all.length(i), captured = all.captured(i)
                guard captured <= Int(length) else { return false }
                if all.isWritable(i) {
                    writable.add(length: length, captured: captured, at: i)
                } else {
                    readable.add(length: length, captured: captured, at: i)
                }
            }
            return true
        }
        if !ok { return nil }
    }
}
