// A capture record read in place (layout in CaptureRecord.swift and man/vqtap-pcapng.5):
// the header fields and the segments of a chain record, straight from the packet bytes
// that libpcap hands over, with nothing allocated. `read -q`, `stats` and the one-line
// text output go through it; anything it does not vouch for goes through
// `CaptureRecord(decoding:)`, which names the error.
//
//   0       4   5   6       8       10      12      14      16      20      24      32
//   +-------+---+---+-------+-------+-------+-------+-------+-------+-------+-------+
//   | magic |ver|knd|hdr len|dev typ|dev ins| queue | head  | flags |usedlen| tx id |
//   +-------+---+---+-------+-------+-------+-------+-------+-------+-------+-------+
//   32      40      42      44      46      48      56
//   +-------+-------+-------+-------+-------+-------+
//   |latency|ring ix|seg cnt| error | rsvd  |detail |   then the segments
//   +-------+-------+-------+-------+-------+-------+

/// One segment of a `RecordView`: where its captured bytes are in the record.
public struct RecordViewSegment {
    public var address: UInt64
    public var length: UInt32
    public var flags: UInt16
    /// Offset of the captured bytes in the record, and their count.
    public var bytesOffset: Int
    public var captured: Int

    public var isWritable: Bool { flags & 2 != 0 }
}

/// One side of a chain (the driver-readable or the device-writable buffers), as the
/// decoders gather it: the segments in order, up to the first one not captured whole.
public struct RecordViewSide {
    /// The descriptors' total length.
    public var length: UInt64 = 0
    /// Offset and captured count of the side's first segment's bytes (offset -1: none), and
    /// the bytes gathered (all within one packet: 32 bits each).
    var first: Int32 = -1
    var firstCount: Int32 = 0
    var gatheredCount: UInt32 = 0
    var complete = true

    public var firstOffset: Int { Int(first) }
    public var firstCaptured: Int { Int(firstCount) }
    public var gathered: UInt64 { UInt64(gatheredCount) }

    @inline(__always)
    mutating func add(offset: Int, length: UInt32, captured: Int) {
        if first < 0 { first = Int32(truncatingIfNeeded: offset); firstCount = Int32(truncatingIfNeeded: captured) }
        self.length &+= UInt64(length)
        guard complete else { return }
        gatheredCount &+= UInt32(truncatingIfNeeded: captured)
        if captured < Int(length) { complete = false }
    }
}

/// A chain record (available or used) whose every field and segment is within its bytes
/// and valid, as `CaptureRecord(decoding:)` would accept it. Markers and records with an
/// error are not views: the init returns nil and the caller decodes them in full.
public struct RecordView {
    public let bytes: UnsafeRawBufferPointer
    public let timestampNs: UInt64
    /// The readable and the writable side, summed up.
    public private(set) var readable = RecordViewSide()
    public private(set) var writable = RecordViewSide()

    // The header fields, read where they are (the init checked the header is all there).
    public var kind: RecordKind { bytes[5] == RecordKind.used.rawValue ? .used : .available }
    public var deviceType: UInt16 { Self.le16(bytes, 8) }
    public var deviceInstance: UInt16 { Self.le16(bytes, 10) }
    public var queue: UInt16 { Self.le16(bytes, 12) }
    public var head: UInt16 { Self.le16(bytes, 14) }
    public var flags: RecordFlags { RecordFlags(rawValue: Self.le32(bytes, 16)) }
    public var usedLength: UInt32 { Self.le32(bytes, 20) }
    public var transactionID: UInt64 { Self.le64(bytes, 24) }
    public var latencyNs: UInt64 { Self.le64(bytes, 32) }
    public var ringIndex: UInt16 { Self.le16(bytes, 40) }
    public var segmentCount: Int { Int(Self.le16(bytes, 42)) }
    public var errorCode: UInt16 { Self.le16(bytes, 44) }
    public var errorDetail: UInt64 { Self.le64(bytes, 48) }
    /// Offset of the first segment.
    public var bodyOffset: Int { Int(Self.le16(bytes, 6)) }

    /// Bounds are checked here once; the loads stay inside them.
    public init?(_ bytes: UnsafeRawBufferPointer, timestampNs: UInt64) {
        let n = bytes.count
        guard n >= CaptureRecord.headerLength,
              Self.le32(bytes, 0) == 0x4352_5156,  // "VQRC" read as a little-endian u32
              bytes[4] == CaptureRecord.version,
              bytes[5] == RecordKind.available.rawValue || bytes[5] == RecordKind.used.rawValue
        else { return nil }
        let headerLength = Int(Self.le16(bytes, 6))
        guard headerLength >= CaptureRecord.headerLength, headerLength <= n else { return nil }
        self.bytes = bytes
        self.timestampNs = timestampNs
        // Every segment header and its padded bytes must be there, each capture within
        // its buffer (the checks of CaptureRecord(decoding:), without building anything).
        // offset <= n throughout and captured < 2^32: the wrapping operations cannot wrap
        // (they only drop the overflow checks of this per-record loop).
        var offset = headerLength
        var left = Int(Self.le16(bytes, 42))
        while left > 0 {
            left &-= 1
            guard CaptureRecord.segmentHeaderLength <= n &- offset else { return nil }
            let length = Self.le32(bytes, offset &+ 8)
            let captured = Int(Self.le32(bytes, offset &+ 12))
            guard captured <= Int(length) else { return nil }
            let bytesAt = offset &+ CaptureRecord.segmentHeaderLength
            if Self.le16(bytes, offset &+ 16) & 2 != 0 {
                writable.add(offset: bytesAt, length: length, captured: captured)
            } else {
                readable.add(offset: bytesAt, length: length, captured: captured)
            }
            offset = bytesAt
            let padded = (captured &+ 3) & ~3
            guard padded <= n &- offset else { return nil }
            offset &+= padded
        }
    }

    /// The segments in chain order.
    public var segments: Segments { Segments(view: self) }

    public struct Segments: Sequence {
        let view: RecordView

        public func makeIterator() -> Iterator { Iterator(bytes: view.bytes, offset: view.bodyOffset, left: view.segmentCount) }

        public struct Iterator: IteratorProtocol {
            let bytes: UnsafeRawBufferPointer
            var offset: Int
            var left: Int

            public mutating func next() -> RecordViewSegment? {
                guard left > 0 else { return nil }
                left -= 1
                let captured = Int(RecordView.le32(bytes, offset + 12))
                let s = RecordViewSegment(address: RecordView.le64(bytes, offset), length: RecordView.le32(bytes, offset + 8),
                                          flags: RecordView.le16(bytes, offset + 16),
                                          bytesOffset: offset + CaptureRecord.segmentHeaderLength, captured: captured)
                offset += CaptureRecord.segmentHeaderLength + captured + CaptureRecord.padding(captured)
                return s
            }
        }
    }

    /// The record as a value (for the outputs that need its full decode).
    public var record: CaptureRecord {
        var total = 0
        for s in segments { total += s.captured }
        let list = ChainSegments(count: segmentCount, byteCapacity: total) { w in
            for s in segments {
                w.append(address: s.address, length: s.length, flags: s.flags,
                         bytes: UnsafeRawBufferPointer(rebasing: bytes[s.bytesOffset..<(s.bytesOffset + s.captured)]))
            }
        }
        return CaptureRecord(kind: kind, deviceType: deviceType, deviceInstance: deviceInstance, queue: queue, head: head,
                             flags: flags, usedLength: usedLength, transactionID: transactionID, latencyNs: latencyNs,
                             ringIndex: ringIndex, errorCode: errorCode, errorDetail: errorDetail, body: .chain(list),
                             timestampNs: timestampNs)
    }

    // Little-endian loads at offsets the init (or the caller) has checked.
    @inline(__always) public static func le16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }

    @inline(__always) public static func le32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }

    @inline(__always) public static func le64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self))
    }

    @inline(__always) public static func be16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(bigEndian: b.loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }

    @inline(__always) public static func be32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(bigEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }

    @inline(__always) public static func be64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(bigEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self))
    }
}
