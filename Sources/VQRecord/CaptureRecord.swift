import VQWire

// The capture record (DESIGN.md "Capture record"; man/vqtap-pcapng.5): one per ring event,
// carrying the raw descriptor-chain snapshot so that new decoders work on old captures.
// It is the payload of a pcapng enhanced packet block (LINKTYPE_USER0); the block carries
// the timestamp, the record everything else a reader needs (libpcap exposes neither
// interface ids nor options).
//
//   0       4   5   6       8       10      12      14      16
//   +-------+---+---+-------+-------+-------+-------+-------+
//   | magic |ver|knd|hdr len|dev typ|dev ins| queue | head  |   magic "VQRC"
//   +-------+---+---+-------+-------+-------+-------+-------+
//   16              20              24                      32
//   +---------------+---------------+-----------------------+
//   |     flags     |   used len    |    transaction id     |
//   +---------------+---------------+-----------------------+
//   32                      40      42      44      46      48
//   +-----------------------+-------+-------+-------+-------+
//   |      latency ns       |ring ix|seg cnt| error | rsvd  |
//   +-----------------------+-------+-------+-------+-------+
//   48                      56
//   +-----------------------+
//   |      error detail     |   then `segment count` segments, or a marker body
//   +-----------------------+
//
// Segment: u64 guest address, u32 descriptor length, u32 captured length, u16 descriptor
// flags (bit 15: from an indirect table), u16 reserved, then the captured bytes, padded
// with zeros to a multiple of 4.
//
// All little-endian. `hdr len` lets a newer writer append header fields that an older
// reader skips; the version byte changes with every other layout change.

public enum RecordKind: UInt8, Sendable, CaseIterable {
    /// The driver made a chain available (a request).
    case available = 1
    /// The device returned a chain (a completion).
    case used = 2
    /// Chains that went by without being captured (ring lapped between two polls).
    case drop = 3
    /// The device was attached, reset, re-attached or detached, or went away.
    case deviceState = 4

    public var name: String {
        switch self {
        case .available: "available"
        case .used: "used"
        case .drop: "drop"
        case .deviceState: "state"
        }
    }
}

public struct RecordFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The chain used an indirect descriptor table.
    public static let indirect = RecordFlags(rawValue: 1 << 0)
    /// Payload bytes were cut by the snap length (the original lengths are kept).
    public static let snaplenTruncated = RecordFlags(rawValue: 1 << 1)
    /// The driver recycled the buffers before the copy ended: contents may be mixed.
    public static let torn = RecordFlags(rawValue: 1 << 2)
    /// A completion whose request the tap never saw.
    public static let orphan = RecordFlags(rawValue: 1 << 3)
    /// The chain broke a ring rule; `error` says which.
    public static let malformed = RecordFlags(rawValue: 1 << 4)
    /// The device reported a used length beyond the chain's writable buffers.
    public static let usedLengthExceeds = RecordFlags(rawValue: 1 << 5)
    /// The request was already outstanding when the tap attached.
    public static let preAttach = RecordFlags(rawValue: 1 << 6)
    /// Copied after the device had returned the chain, later than a driver can reuse
    /// buffers: no reuse was seen and the bytes had not changed, but a reuse the driver wrote
    /// and had not posted yet cannot be ruled out. Counted as captured.
    public static let late = RecordFlags(rawValue: 1 << 7)

    static let table: [(bit: UInt64, name: String)] = [
        (1 << 0, "indirect"), (1 << 1, "snaplen"), (1 << 2, "torn"), (1 << 3, "orphan"),
        (1 << 4, "malformed"), (1 << 5, "used-len-exceeds"), (1 << 6, "pre-attach"), (1 << 7, "late"),
    ]

    public var names: [String] { Naming.flagNames(UInt64(rawValue), Self.table) }
}

/// One buffer of the chain as the tap saw it.
public struct RecordSegment: Sendable, Equatable {
    /// Descriptor flag bit 15 (unused by virtio) marks a segment read from an indirect table.
    public static let fromIndirectFlag: UInt16 = 0x8000

    public var address: UInt64
    /// The descriptor's length (the original length).
    public var length: UInt32
    /// virtq_desc flags (NEXT 1, WRITE 2, INDIRECT 4), plus `fromIndirectFlag`.
    public var flags: UInt16
    /// The bytes captured (at most `length`; fewer when cut by the snap length or, for a
    /// completion, by the used length).
    public var bytes: [UInt8]

    public init(address: UInt64, length: UInt32, flags: UInt16, bytes: [UInt8] = []) {
        self.address = address
        self.length = length
        self.flags = flags
        self.bytes = bytes
    }

    /// The device writes this buffer.
    public var isWritable: Bool { flags & 2 != 0 }
    public var isFromIndirect: Bool { flags & Self.fromIndirectFlag != 0 }
}

/// Body of a drop marker.
public struct DropMarker: Sendable, Equatable {
    public enum Reason: UInt16, Sendable {
        /// The available ring lapped between two polls: requests went by unseen.
        case availableLapped = 1
        /// The used ring lapped: completions went by unseen.
        case usedLapped = 2
    }
    public var count: UInt64
    public var reason: Reason

    public init(count: UInt64, reason: Reason) {
        self.count = count
        self.reason = reason
    }
}

/// Body of a device state marker: what a decoder needs to know about the device from here on.
public struct DeviceStateMarker: Sendable, Equatable {
    public enum State: UInt8, Sendable {
        case attached = 1
        case reset = 2
        case reattached = 3
        case detached = 4
        case gone = 5

        public var name: String {
            switch self {
            case .attached: "attached"
            case .reset: "reset"
            case .reattached: "re-attached"
            case .detached: "detached"
            case .gone: "gone"
            }
        }
    }

    public var state: State
    public var generation: UInt64
    public var features: UInt64
    public var queueSize: UInt16
    public var queueCount: UInt16
    /// Device configuration the decoders depend on (virtio-scsi: cdb_size, sense_size).
    public var cdbSize: UInt32
    public var senseSize: UInt32
    public var descAddress: UInt64
    public var availAddress: UInt64
    public var usedAddress: UInt64
    /// Device name for output (`scsi0`).
    public var deviceName: String

    public init(state: State, generation: UInt64 = 0, features: UInt64 = 0, queueSize: UInt16 = 0, queueCount: UInt16 = 0,
                cdbSize: UInt32 = 32, senseSize: UInt32 = 96, descAddress: UInt64 = 0, availAddress: UInt64 = 0,
                usedAddress: UInt64 = 0, deviceName: String = "") {
        self.state = state; self.generation = generation; self.features = features
        self.queueSize = queueSize; self.queueCount = queueCount; self.cdbSize = cdbSize; self.senseSize = senseSize
        self.descAddress = descAddress; self.availAddress = availAddress; self.usedAddress = usedAddress
        self.deviceName = deviceName
    }
}

public struct CaptureRecord: Sendable, Equatable {
    public static let magic: [UInt8] = [0x56, 0x51, 0x52, 0x43]  // "VQRC"
    public static let version: UInt8 = 1
    public static let headerLength = 56
    public static let segmentHeaderLength = 20

    public enum Body: Sendable, Equatable {
        case chain(ChainSegments)
        case drop(DropMarker)
        case deviceState(DeviceStateMarker)
    }

    public var kind: RecordKind
    /// Virtio device ID (8 = SCSI host, 2 = block).
    public var deviceType: UInt16
    /// Which of the devices the tap captures (0 for the first).
    public var deviceInstance: UInt16
    public var queue: UInt16
    /// Descriptor head (0xffff for markers).
    public var head: UInt16
    public var flags: RecordFlags
    /// Bytes the device says it wrote (used records).
    public var usedLength: UInt32
    /// Tap-assigned id pairing the available and used records of one chain.
    public var transactionID: UInt64
    /// Available to used, tap-observed (used records whose request was seen).
    public var latencyNs: UInt64
    /// The free-running ring index of the entry (avail or used ring).
    public var ringIndex: UInt16
    /// For malformed chains: the ring error code (`RingErrorCode`) and a detail value
    /// (descriptor index or address).
    public var errorCode: UInt16
    public var errorDetail: UInt64
    public var body: Body
    /// Nanoseconds since the epoch. Carried by the pcapng block, not by the record bytes.
    public var timestampNs: UInt64

    public init(kind: RecordKind, deviceType: UInt16 = 8, deviceInstance: UInt16 = 0, queue: UInt16, head: UInt16 = 0xffff,
                flags: RecordFlags = [], usedLength: UInt32 = 0, transactionID: UInt64 = 0, latencyNs: UInt64 = 0,
                ringIndex: UInt16 = 0, errorCode: UInt16 = 0, errorDetail: UInt64 = 0, body: Body, timestampNs: UInt64 = 0) {
        self.kind = kind; self.deviceType = deviceType; self.deviceInstance = deviceInstance; self.queue = queue
        self.head = head; self.flags = flags; self.usedLength = usedLength; self.transactionID = transactionID
        self.latencyNs = latencyNs; self.ringIndex = ringIndex; self.errorCode = errorCode
        self.errorDetail = errorDetail; self.body = body; self.timestampNs = timestampNs
    }

    public var segments: ChainSegments {
        if case let .chain(s) = body { return s }
        return ChainSegments()
    }
}
