import VQRecord
import VQWire

// A pcapng capture file fed capture records, the sink behind `-w` (man/vqtap-pcapng.5):
// one section header, one interface per virtqueue (described lazily, before its first
// packet), one or more enhanced packet blocks per record (what an `PacketEncoder` makes of
// it: the record itself, or an iSCSI export), interface statistics at close and at every
// rotation. Rotation follows tcpdump: `-C` by size, `-G` by time (record timestamps),
// `-W` a ring of files; `-c` is the caller's business.

/// Anything records can be written to (the pcapng writer; the live capture's printers).
public protocol CaptureSink {
    mutating func write(_ record: CaptureRecord) throws
    /// Writes what is buffered (a live capture calls it every few milliseconds, so that a
    /// kill loses little).
    mutating func flush() throws
    /// Writes what is buffered and closes; the sink takes no records after it.
    mutating func close() throws
    /// What interface descriptions say about a device (from the layout file).
    mutating func describe(deviceInstance: UInt16, _ info: DeviceInfo)
}

/// What a packet encoder is told about the interface a record goes to.
public struct InterfaceKey: Hashable, Sendable {
    public var deviceInstance: UInt16
    public var queue: UInt16
    public init(deviceInstance: UInt16, queue: UInt16) {
        self.deviceInstance = deviceInstance
        self.queue = queue
    }
}

/// Turns a record into the packets of one link type.
public protocol PacketEncoder {
    var linkType: LinkType { get }
    /// Appends zero or more enhanced packet blocks for `record` (with
    /// `PcapNGBlocks.appendEnhancedPacket`) and returns how many.
    mutating func appendPackets(for record: CaptureRecord, interface: UInt32, into w: BlockBuffer) -> Int
    /// Text after the device part of an interface description (e.g. the synthetic port).
    func interfaceNote(_ key: InterfaceKey) -> String
}

extension PacketEncoder {
    public func interfaceNote(_ key: InterfaceKey) -> String { "" }
}

/// The native format: the record bytes as they are (LINKTYPE_USER0).
public struct RecordPacketEncoder: PacketEncoder {
    public init() {}
    public var linkType: LinkType { .user0 }

    public mutating func appendPackets(for record: CaptureRecord, interface: UInt32, into w: BlockBuffer) -> Int {
        var record = record
        if record.encodedLength > CaptureRecord.maxFileRecordLength { record.fit(to: CaptureRecord.maxFileRecordLength) }
        let length = record.encodedLength
        PcapNGBlocks.appendEnhancedPacket(
            into: w, interface: interface, timestampNs: record.timestampNs, dataLength: length,
            originalLength: record.originalLength, direction: record.direction) { w in record.encode(into: w) }
        return 1
    }
}

extension CaptureRecord {
    /// `encode(into: ByteWriter)` (VQRecord/RecordCoding.swift, man/vqtap-pcapng.5) straight
    /// into the block buffer: the writer's hot path. A test checks both give the same bytes
    /// for every kind of record.
    /// Needs `encodedLength` bytes reserved in `w`.
    public func encode(into w: BlockBuffer) {
        w.reserve(Self.headerLength)
        w.uncheckedLE32(0x4352_5156)  // magic "VQRC"
        w.uncheckedLE16(UInt16(Self.version) | UInt16(kind.rawValue) << 8)
        w.uncheckedLE16(UInt16(Self.headerLength))
        w.uncheckedLE16(deviceType)
        w.uncheckedLE16(deviceInstance)
        w.uncheckedLE16(queue)
        w.uncheckedLE16(head)
        w.uncheckedLE32(flags.rawValue)
        w.uncheckedLE32(usedLength)
        w.uncheckedLE64(transactionID)
        w.uncheckedLE64(latencyNs)
        w.uncheckedLE16(ringIndex)
        switch body {
        case let .chain(segments):
            let n = min(segments.count, Int(UInt16.max))
            w.uncheckedLE16(UInt16(n))
            w.uncheckedLE16(errorCode)
            w.uncheckedLE16(0)
            w.uncheckedLE64(errorDetail)
            segments.withUnsafeEntries { e in
                for i in 0..<n {
                    let bytes = e.bytes(i)
                    let captured = bytes.count
                    w.reserve(Self.segmentHeaderLength + captured + 3)
                    w.uncheckedLE64(e.address(i))
                    w.uncheckedLE32(e.length(i))
                    w.uncheckedLE32(UInt32(clamping: captured))
                    w.uncheckedLE32(UInt32(e.flags(i)))
                    w.uncheckedBytes(bytes)
                    w.uncheckedZeros(PcapNGBlocks.padding(captured))
                }
            }
        case .drop, .deviceState:
            // Markers are rare: the reference encoding from the segment count on.
            var b = ByteWriter(capacity: 128)
            encode(into: &b)
            w.bytes(b.bytes[42...])
        }
    }
}

extension CaptureRecord {
    /// libpcap and Wireshark refuse a packet longer than 262,144 bytes (their largest snap
    /// length), whatever the file says: a record written longer could not be read back.
    public static let maxFileRecordLength = 262_144

    /// Cuts captured bytes from the last segments until the encoded record fits in
    /// `maxLength` (headers come first, so payload goes first), flagged snaplen-truncated;
    /// the original lengths stay.
    public mutating func fit(to maxLength: Int) {
        guard case let .chain(chain) = body else { return }
        var segments = Array(chain)
        var excess = encodedLength - maxLength
        var k = segments.count - 1
        while excess > 0 && k >= 0 {
            let have = segments[k].bytes.count
            if have > 0 {
                // Padding shrinks with the bytes: cut to a multiple of 4 so it stays 0.
                let keep = max(0, (have - excess) & ~3)
                excess -= (have + PcapNGBlocks.padding(have)) - (keep + PcapNGBlocks.padding(keep))
                segments[k].bytes.removeLast(have - keep)
            }
            k -= 1
        }
        body = .chain(ChainSegments(segments))
        flags.insert(.snaplenTruncated)
    }

    /// `encoded.count`, without encoding.
    public var encodedLength: Int {
        switch body {
        case let .chain(segments):
            return segments.withUnsafeEntries { e in
                var n = Self.headerLength
                for i in 0..<min(e.count, Int(UInt16.max)) {
                    let c = e.captured(i)
                    n += Self.segmentHeaderLength + c + PcapNGBlocks.padding(c)
                }
                return n
            }
        case .drop: return Self.headerLength + 16
        case let .deviceState(m):
            let name = min(m.deviceName.utf8.count, 255)
            return Self.headerLength + 56 + name + PcapNGBlocks.padding(name)
        }
    }

    /// The length the record would have had with no snap length: the EPB's original length.
    public var originalLength: Int {
        guard flags.contains(.snaplenTruncated), case let .chain(segments) = body else { return encodedLength }
        let encoded = encodedLength
        return segments.withUnsafeEntries { e in
            var n = encoded
            for i in 0..<min(e.count, Int(UInt16.max)) where Int(e.length(i)) > e.captured(i) {
                let full = Int(e.length(i)), c = e.captured(i)
                n += full + PcapNGBlocks.padding(full) - c - PcapNGBlocks.padding(c)
            }
            return n
        }
    }

    /// Outbound: the driver made the chain available; inbound: the device returned it.
    public var direction: PacketDirection {
        switch kind {
        case .available: .outbound
        case .used: .inbound
        default: .unknown
        }
    }
}

/// How a capture is cut into files.
public struct RotationOptions: Sendable, Equatable {
    /// `-C`: start a new file once this many bytes are written (tcpdump: millions of bytes).
    public var maxFileBytes: UInt64?
    /// `-G`: start a new file when a record is this much later than the file's first.
    public var maxFileDurationNs: UInt64?
    /// `-W`: keep at most this many files, overwriting the oldest (names FILE0 .. FILE(N-1)).
    public var fileCount: Int?

    public init(maxFileBytes: UInt64? = nil, maxFileDurationNs: UInt64? = nil, fileCount: Int? = nil) {
        self.maxFileBytes = maxFileBytes
        self.maxFileDurationNs = maxFileDurationNs
        self.fileCount = fileCount
    }

    public var rotates: Bool { maxFileBytes != nil || maxFileDurationNs != nil }

    /// tcpdump's names: without -W the first file is FILE, then FILE1, FILE2...; with -W N
    /// the ring is FILE0 .. FILE(N-1), numbers padded to the same width.
    public func fileName(base: String, index: Int) -> String {
        if let n = fileCount {
            let width = String(max(n - 1, 0)).count
            let number = String(index % max(n, 1))
            return base + String(repeating: "0", count: max(0, width - number.count)) + number
        }
        return index == 0 ? base : base + String(index)
    }
}

/// What an interface description says about a device, from the layout or its state markers.
public struct DeviceInfo: Sendable, Equatable {
    public var name: String
    /// The device's path in its VMM (QEMU: `/machine/peripheral/scsi0/virtio-backend`).
    public var path: String
    public var features: UInt64?
    public init(name: String, path: String = "", features: UInt64? = nil) {
        self.name = name
        self.path = path
        self.features = features
    }
}

/// Section header options, snap length, rotation and buffering of a capture file.
public struct CaptureFileOptions: Sendable {
    public var hardware: String
    public var os: String
    public var userApplication: String
    public var snaplen: UInt32
    public var rotation: RotationOptions
    /// Buffered bytes that trigger a write; the caller's `flush()` writes sooner.
    public var bufferBytes: Int
    /// The name of a queue in `if_name` (`controlq`, `request0`): the caller knows the device.
    public var queueName: @Sendable (_ deviceType: UInt16, _ queue: UInt16) -> String

    public init(hardware: String = "", os: String = "", userApplication: String = "vqtap", snaplen: UInt32 = 262_144,
                rotation: RotationOptions = RotationOptions(), bufferBytes: Int = 1 << 18,
                queueName: @escaping @Sendable (UInt16, UInt16) -> String = { _, q in "queue\(q)" }) {
        self.hardware = hardware; self.os = os; self.userApplication = userApplication; self.snaplen = snaplen
        self.rotation = rotation; self.bufferBytes = bufferBytes; self.queueName = queueName
    }
}

/// Per-interface counters of the current file (ISB).
public struct CaptureInterfaceStatistics: Sendable, Equatable {
    public var records: UInt64 = 0
    public var dropped: UInt64 = 0
    public var firstNs: UInt64 = 0
    public var lastNs: UInt64 = 0
}

/// An interface of a capture file: its description block and counters. Outside the generic
/// writer so that its array needs no generic metadata at run time.
struct CaptureInterface {
    var key: InterfaceKey
    var block: [UInt8]
    var stats = CaptureInterfaceStatistics()
}


public struct CaptureFileWriter<Encoder: PacketEncoder>: CaptureSink {
    public typealias Options = CaptureFileOptions

    public typealias InterfaceStatistics = CaptureInterfaceStatistics

    public let path: String
    public let options: Options
    public private(set) var encoder: Encoder
    private var output: BlockOutput?
    private let pending: BlockBuffer
    private var interfaces: [CaptureInterface] = []
    private var interfaceIDs: [InterfaceKey: UInt32] = [:]
    private var lastInterface: (key: InterfaceKey, id: UInt32)?
    private var devices: [UInt16: DeviceInfo] = [:]
    /// What state markers said about devices the caller did not describe.
    private var learned: [UInt16: DeviceInfo] = [:]
    private var fileIndex = 0
    private var fileFirstNs: UInt64?
    /// Every file this writer created, in order (a ring reuses names).
    public private(set) var files: [String] = []
    /// Packets written over all files.
    public private(set) var packetCount: UInt64 = 0
    public private(set) var recordCount: UInt64 = 0

    public init(path: String, encoder: Encoder, options: Options = Options()) throws(PcapNGWriteError) {
        if path == "-" && options.rotation.rotates {
            throw .invalidOptions("-C and -G need a file name, not standard output")
        }
        if let n = options.rotation.fileCount, n < 1 { throw .invalidOptions("-W: at least one file") }
        if options.rotation.fileCount != nil && !options.rotation.rotates {
            throw .invalidOptions("-W goes with -C or -G")
        }
        self.path = path
        self.options = options
        self.encoder = encoder
        pending = BlockBuffer(capacity: options.bufferBytes + 4096)
        try openFile()
    }

    /// Interface descriptions use this name and path for the device (else its state markers'
    /// name, else `devN`).
    public mutating func describe(deviceInstance: UInt16, _ info: DeviceInfo) {
        devices[deviceInstance] = info
    }

    private mutating func openFile() throws(PcapNGWriteError) {
        let name = options.rotation.rotates ? options.rotation.fileName(base: path, index: fileIndex) : path
        output = try BlockOutput(path: name)
        files.append(name)
        pending.bytes(PcapNGBlocks.sectionHeader(hardware: options.hardware, os: options.os, userApplication: options.userApplication))
        // Interface ids stay the same in every file of a rotation.
        for i in interfaces.indices {
            pending.bytes(interfaces[i].block)
            interfaces[i].stats = CaptureInterfaceStatistics()
        }
        fileFirstNs = nil
        try flush()
    }

    private mutating func interfaceID(for record: CaptureRecord) -> UInt32 {
        let key = InterfaceKey(deviceInstance: record.deviceInstance, queue: record.queue)
        // Consecutive records mostly share a queue.
        if let last = lastInterface, last.key == key { return last.id }
        if let id = interfaceIDs[key] {
            lastInterface = (key, id)
            return id
        }
        let info = devices[record.deviceInstance] ?? learned[record.deviceInstance] ?? DeviceInfo(name: "dev\(record.deviceInstance)")
        let queueName = options.queueName(record.deviceType, record.queue)
        var description = "virtio device type \(record.deviceType) \(info.name)"
        if !info.path.isEmpty { description += " (\(info.path))" }
        description += ", virtqueue \(record.queue)"
        if let f = info.features { description += ", features \(Hex.short(f))" }
        let note = encoder.interfaceNote(key)
        if !note.isEmpty { description += ", \(note)" }
        let block = PcapNGBlocks.interfaceDescription(linkType: encoder.linkType, snaplen: options.snaplen,
                                                      name: "\(info.name)/\(queueName)", description: description)
        let id = UInt32(interfaces.count)
        interfaces.append(CaptureInterface(key: key, block: block))
        interfaceIDs[key] = id
        lastInterface = (key, id)
        pending.bytes(block)
        return id
    }

    // Specialized for the native encoder: an unspecialized generic call from another module
    // looks up generic metadata on every record.
    @_specialize(exported: true, where Encoder == RecordPacketEncoder)
    public mutating func write(_ record: CaptureRecord) throws(PcapNGWriteError) {
        guard output != nil else { throw .writeFailed(path: path, reason: "the writer is closed") }
        try rotateIfDue(before: record)
        if fileFirstNs == nil { fileFirstNs = record.timestampNs }
        if case let .deviceState(m) = record.body {
            learned[record.deviceInstance] = DeviceInfo(name: m.deviceName.isEmpty ? "dev\(record.deviceInstance)" : m.deviceName,
                                                        features: m.features)
        }
        let id = interfaceID(for: record)
        let n = encoder.appendPackets(for: record, interface: id, into: pending)
        packetCount += UInt64(n)
        recordCount += 1
        let i = Int(id)
        if interfaces[i].stats.records == 0 && interfaces[i].stats.dropped == 0 { interfaces[i].stats.firstNs = record.timestampNs }
        interfaces[i].stats.lastNs = record.timestampNs
        if case let .drop(d) = record.body { interfaces[i].stats.dropped &+= d.count } else { interfaces[i].stats.records += 1 }
        if pending.count >= options.bufferBytes { try flush() }
    }

    private mutating func rotateIfDue(before record: CaptureRecord) throws(PcapNGWriteError) {
        let r = options.rotation
        guard r.rotates, let output, recordCount > 0 else { return }
        var due = false
        if let max = r.maxFileBytes, output.written + UInt64(pending.count) >= max { due = true }
        if let span = r.maxFileDurationNs, let first = fileFirstNs, record.timestampNs >= first, record.timestampNs - first >= span { due = true }
        guard due else { return }
        try closeFile(at: record.timestampNs)
        fileIndex += 1
        try openFile()
    }

    /// Writes the buffered blocks.
    public mutating func flush() throws(PcapNGWriteError) {
        guard pending.count > 0, var out = output else { return }
        defer {
            output = out
            pending.removeAll()
        }
        try pending.withUnsafeBytes { raw throws(PcapNGWriteError) in try out.write(raw) }
    }

    public var statistics: [(InterfaceKey, InterfaceStatistics)] { interfaces.map { ($0.key, $0.stats) } }

    private mutating func closeFile(at endNs: UInt64) throws(PcapNGWriteError) {
        if interfaces.isEmpty {
            // libpcap refuses a section without interfaces: an empty capture gets one, so
            // that it reads as a capture of nothing.
            pending.bytes(PcapNGBlocks.interfaceDescription(linkType: encoder.linkType, snaplen: options.snaplen,
                                                            name: "none", description: "no records were captured"))
        }
        for (i, interface) in interfaces.enumerated() {
            let s = interface.stats
            pending.bytes(PcapNGBlocks.interfaceStatistics(
                interface: UInt32(i), timestampNs: max(endNs, s.lastNs), startNs: s.firstNs == 0 ? fileFirstNs ?? endNs : s.firstNs,
                endNs: max(endNs, s.lastNs), received: s.records, dropped: s.dropped))
        }
        try flush()
        output?.close()
        output = nil
    }

    /// Interface statistics, then closes. `endNs` is the capture's end (defaults to the last record).
    public mutating func close(endNs: UInt64) throws(PcapNGWriteError) {
        guard output != nil else { return }
        try closeFile(at: endNs)
    }

    public mutating func close() throws(PcapNGWriteError) {
        let last = interfaces.map(\.stats.lastNs).max() ?? 0
        try close(endNs: last)
    }
}
