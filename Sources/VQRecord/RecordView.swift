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
    /// Offset and captured count of the side's first segment's bytes (offset -1: none).
    public var firstOffset = -1
    public var firstCaptured = 0
    /// The descriptors' total length, and the bytes gathered.
    public var length: UInt64 = 0
    public var gathered: UInt64 = 0
    var complete = true

    mutating func add(offset: Int, length: UInt32, captured: Int) {
        if firstOffset < 0 { firstOffset = offset; firstCaptured = captured }
        self.length += UInt64(length)
        guard complete else { return }
        gathered += UInt64(captured)
        if captured < Int(length) { complete = false }
    }
}

/// A chain record (available or used) whose every field and segment is within its bytes
/// and valid, as `CaptureRecord(decoding:)` would accept it. Markers and records with an
/// error are not views: the init returns nil and the caller decodes them in full.
public struct RecordView {
    public let bytes: UnsafeRawBufferPointer
    public let timestampNs: UInt64
    public let kind: RecordKind
    public let deviceType: UInt16
    public let deviceInstance: UInt16
    public let queue: UInt16
    public let head: UInt16
    public let flags: RecordFlags
    public let usedLength: UInt32
    public let transactionID: UInt64
    public let latencyNs: UInt64
    public let ringIndex: UInt16
    public let segmentCount: Int
    public let errorCode: UInt16
    public let errorDetail: UInt64
    /// Offset of the first segment.
    public let bodyOffset: Int
    /// The readable and the writable side, summed up.
    public private(set) var readable = RecordViewSide()
    public private(set) var writable = RecordViewSide()

    /// Bounds are checked here once; the loads below stay inside them.
    public init?(_ bytes: UnsafeRawBufferPointer, timestampNs: UInt64) {
        let n = bytes.count
        guard n >= CaptureRecord.headerLength,
              Self.le32(bytes, 0) == 0x4352_5156,  // "VQRC" read as a little-endian u32
              bytes[4] == CaptureRecord.version,
              let kind = RecordKind(rawValue: bytes[5]), kind == .available || kind == .used
        else { return nil }
        let headerLength = Int(Self.le16(bytes, 6))
        guard headerLength >= CaptureRecord.headerLength, headerLength <= n else { return nil }
        self.bytes = bytes
        self.timestampNs = timestampNs
        self.kind = kind
        deviceType = Self.le16(bytes, 8)
        deviceInstance = Self.le16(bytes, 10)
        queue = Self.le16(bytes, 12)
        head = Self.le16(bytes, 14)
        flags = RecordFlags(rawValue: Self.le32(bytes, 16))
        usedLength = Self.le32(bytes, 20)
        transactionID = Self.le64(bytes, 24)
        latencyNs = Self.le64(bytes, 32)
        ringIndex = Self.le16(bytes, 40)
        segmentCount = Int(Self.le16(bytes, 42))
        errorCode = Self.le16(bytes, 44)
        errorDetail = Self.le64(bytes, 48)
        bodyOffset = headerLength
        // Every segment header and its padded bytes must be there, each capture within
        // its buffer (the checks of CaptureRecord(decoding:), without building anything).
        var offset = headerLength
        for _ in 0..<segmentCount {
            guard CaptureRecord.segmentHeaderLength <= n - offset else { return nil }
            let length = Self.le32(bytes, offset + 8)
            let captured = Int(Self.le32(bytes, offset + 12))
            guard captured <= Int(length) else { return nil }
            if Self.le16(bytes, offset + 16) & 2 != 0 {
                writable.add(offset: offset + CaptureRecord.segmentHeaderLength, length: length, captured: captured)
            } else {
                readable.add(offset: offset + CaptureRecord.segmentHeaderLength, length: length, captured: captured)
            }
            offset += CaptureRecord.segmentHeaderLength
            let padded = captured + CaptureRecord.padding(captured)
            guard padded <= n - offset else { return nil }
            offset += padded
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
        var list: [RecordSegment] = []
        list.reserveCapacity(segmentCount)
        for s in segments {
            list.append(RecordSegment(address: s.address, length: s.length, flags: s.flags,
                                      bytes: Array(bytes[s.bytesOffset..<(s.bytesOffset + s.captured)])))
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
