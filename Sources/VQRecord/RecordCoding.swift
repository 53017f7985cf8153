import VQWire

// Encoding and decoding of capture records (layout in CaptureRecord.swift and
// man/vqtap-pcapng.5). Marker bodies:
//
//   drop:   u64 count, u16 reason, u16 reserved, u32 reserved                    (16 bytes)
//   state:  u8 state, u8 reserved, u16 queue size, u16 queue count, u16 name len,
//           u64 generation, u64 features, u32 cdb size, u32 sense size,
//           u64 desc, u64 avail, u64 used, name bytes (UTF-8) padded to 4          (56 + name)

extension CaptureRecord {
    public func encode(into w: inout ByteWriter) {
        w.writeBytes(Self.magic)
        w.writeU8(Self.version)
        w.writeU8(kind.rawValue)
        w.writeLE16(UInt16(Self.headerLength))
        w.writeLE16(deviceType)
        w.writeLE16(deviceInstance)
        w.writeLE16(queue)
        w.writeLE16(head)
        w.writeLE32(flags.rawValue)
        w.writeLE32(usedLength)
        w.writeLE64(transactionID)
        w.writeLE64(latencyNs)
        w.writeLE16(ringIndex)
        w.writeLE16(UInt16(clamping: segments.count))
        w.writeLE16(errorCode)
        w.writeLE16(0)
        w.writeLE64(errorDetail)
        switch body {
        case let .chain(segments):
            segments.withUnsafeEntries { e in
                for i in 0..<min(e.count, Int(UInt16.max)) {
                    let bytes = e.bytes(i)
                    w.writeLE64(e.address(i))
                    w.writeLE32(e.length(i))
                    w.writeLE32(UInt32(clamping: bytes.count))
                    w.writeLE16(e.flags(i))
                    w.writeLE16(0)
                    w.writeBytes(bytes)
                    w.writeZeros(Self.padding(bytes.count))
                }
            }
        case let .drop(d):
            w.writeLE64(d.count)
            w.writeLE16(d.reason.rawValue)
            w.writeLE16(0)
            w.writeLE32(0)
        case let .deviceState(m):
            let name = Array(m.deviceName.utf8.prefix(255))
            w.writeU8(m.state.rawValue)
            w.writeU8(0)
            w.writeLE16(m.queueSize)
            w.writeLE16(m.queueCount)
            w.writeLE16(UInt16(name.count))
            w.writeLE64(m.generation)
            w.writeLE64(m.features)
            w.writeLE32(m.cdbSize)
            w.writeLE32(m.senseSize)
            w.writeLE64(m.descAddress)
            w.writeLE64(m.availAddress)
            w.writeLE64(m.usedAddress)
            w.writeBytes(name)
            w.writeZeros(Self.padding(name.count))
        }
    }

    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: Self.headerLength + segments.count * (Self.segmentHeaderLength + 3) + segments.capturedTotal)
        encode(into: &w)
        return w.bytes
    }

    static func padding(_ n: Int) -> Int { (4 - n % 4) % 4 }

    /// Decodes one record. `timestampNs` comes from the enclosing block.
    public init(decoding r: inout ByteReader, timestampNs: UInt64 = 0) throws(DecodeError) {
        let start = r.offset
        let magic = try r.readBytes(4, "vqtap.record.magic")
        guard magic == Self.magic else {
            throw .malformed("vqtap.record.magic", at: start, "\(Hex.compact(magic)) is not a vqtap capture record (\(Hex.compact(Self.magic)))")
        }
        let versionOffset = r.offset
        let version = try r.readU8("vqtap.record.version")
        guard version == Self.version else {
            throw .unsupported("vqtap.record.version", at: versionOffset, "record version \(version); this vqtap reads version \(Self.version)")
        }
        let kindOffset = r.offset
        let rawKind = try r.readU8("vqtap.record.kind")
        let headerLengthOffset = r.offset
        let headerLength = Int(try r.readLE16("vqtap.record.header_length"))
        guard headerLength >= Self.headerLength else {
            throw .malformed("vqtap.record.header_length", at: headerLengthOffset, "\(headerLength) is shorter than the \(Self.headerLength)-byte header")
        }
        deviceType = try r.readLE16("vqtap.record.device_type")
        deviceInstance = try r.readLE16("vqtap.record.device_instance")
        queue = try r.readLE16("vqtap.record.queue")
        head = try r.readLE16("vqtap.record.head")
        flags = RecordFlags(rawValue: try r.readLE32("vqtap.record.flags"))
        usedLength = try r.readLE32("vqtap.record.used_length")
        transactionID = try r.readLE64("vqtap.record.transaction_id")
        latencyNs = try r.readLE64("vqtap.record.latency_ns")
        ringIndex = try r.readLE16("vqtap.record.ring_index")
        let segmentCount = Int(try r.readLE16("vqtap.record.segment_count"))
        errorCode = try r.readLE16("vqtap.record.error")
        try r.skip(2, "vqtap.record.reserved")
        errorDetail = try r.readLE64("vqtap.record.error_detail")
        // Header fields a newer writer added: skip them.
        try r.skip(headerLength - Self.headerLength, "vqtap.record.header_extension")
        self.timestampNs = timestampNs

        guard let kind = RecordKind(rawValue: rawKind) else {
            throw .unsupported("vqtap.record.kind", at: kindOffset, "record kind \(rawKind)")
        }
        self.kind = kind
        switch kind {
        case .available, .used:
            // First the checks (errors name the field), then the segments built at once
            // from the bytes now known to be there.
            let first = r.index
            var total = 0
            for _ in 0..<segmentCount {
                try r.skip(8, "vqtap.segment.address")
                let length = try r.readLE32("vqtap.segment.length")
                let capturedOffset = r.offset
                let captured = Int(try r.readLE32("vqtap.segment.captured_length"))
                try r.skip(4, "vqtap.segment.flags")
                guard captured <= Int(length) else {
                    throw .malformed("vqtap.segment.captured_length", at: capturedOffset, "\(captured) bytes captured of a \(length)-byte buffer")
                }
                try r.skip(captured, "vqtap.segment.bytes")
                try r.skip(Self.padding(captured), "vqtap.segment.padding")
                total += captured
            }
            let segments = r.bytes.withUnsafeBytes { all in
                ChainSegments(count: segmentCount, byteCapacity: total) { w in
                    var at = first
                    for _ in 0..<segmentCount {
                        let captured = Int(RecordView.le32(all, at + 12))
                        w.append(address: RecordView.le64(all, at), length: RecordView.le32(all, at + 8), flags: RecordView.le16(all, at + 16),
                                 bytes: UnsafeRawBufferPointer(rebasing: all[(at + Self.segmentHeaderLength)..<(at + Self.segmentHeaderLength + captured)]))
                        at += Self.segmentHeaderLength + captured + Self.padding(captured)
                    }
                }
            }
            body = .chain(segments)
        case .drop:
            let count = try r.readLE64("vqtap.drop.count")
            let reasonOffset = r.offset
            let rawReason = try r.readLE16("vqtap.drop.reason")
            try r.skip(6, "vqtap.drop.reserved")
            guard let reason = DropMarker.Reason(rawValue: rawReason) else {
                throw .unsupported("vqtap.drop.reason", at: reasonOffset, "drop reason \(rawReason)")
            }
            body = .drop(DropMarker(count: count, reason: reason))
        case .deviceState:
            let stateOffset = r.offset
            let rawState = try r.readU8("vqtap.state.state")
            try r.skip(1, "vqtap.state.reserved")
            let queueSize = try r.readLE16("vqtap.state.queue_size")
            let queueCount = try r.readLE16("vqtap.state.queue_count")
            let nameLength = Int(try r.readLE16("vqtap.state.name_length"))
            let generation = try r.readLE64("vqtap.state.generation")
            let features = try r.readLE64("vqtap.state.features")
            let cdbSize = try r.readLE32("vqtap.state.cdb_size")
            let senseSize = try r.readLE32("vqtap.state.sense_size")
            let desc = try r.readLE64("vqtap.state.desc")
            let avail = try r.readLE64("vqtap.state.avail")
            let used = try r.readLE64("vqtap.state.used")
            let name = try r.readBytes(nameLength, "vqtap.state.name")
            try r.skip(Self.padding(nameLength), "vqtap.state.padding")
            guard let state = DeviceStateMarker.State(rawValue: rawState) else {
                throw .unsupported("vqtap.state.state", at: stateOffset, "device state \(rawState)")
            }
            body = .deviceState(DeviceStateMarker(
                state: state, generation: generation, features: features, queueSize: queueSize, queueCount: queueCount,
                cdbSize: cdbSize, senseSize: senseSize, descAddress: desc, availAddress: avail, usedAddress: used,
                deviceName: String(decoding: name, as: UTF8.self)))
        }
    }

    public init(decoding bytes: [UInt8], timestampNs: UInt64 = 0) throws(DecodeError) {
        var r = ByteReader(bytes)
        try self.init(decoding: &r, timestampNs: timestampNs)
    }
}

/// Anything that yields capture records in order: the live tap, a pcapng file (DESIGN.md:
/// "live and file sources behind one interface", as libpcap does).
public protocol RecordSource {
    /// The next record, or nil at the end. A record that cannot be decoded is thrown as an
    /// error naming it; the source stays usable for the records after it where it can.
    mutating func next() throws -> CaptureRecord?
}
