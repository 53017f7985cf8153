import Foundation

// The layout file (man/vqtap-layout.5): everything a tap needs to find a device's rings in
// guest memory, for any VMM. The simulator writes it; a user can write one by hand; the QMP
// attach path builds the same model from QEMU's answers. Nothing in it is simulator-specific.
//
// JSON conventions (DESIGN.md): 64-bit guest addresses and the feature mask are hex strings
// ("0x..."); sizes, offsets and counts are numbers.

public struct DeviceLayout: Codable, Sendable, Equatable {
    public static let formatVersion = 1

    public enum Status: String, Codable, Sendable {
        /// The driver is (re)initialising the device: rings are not valid.
        case resetting
        /// DRIVER_OK: rings are live at the addresses given.
        case ready
    }

    public struct Device: Codable, Sendable, Equatable {
        /// `virtio-scsi` (device id 8); later `virtio-blk` (2).
        public var type: String
        public var id: UInt32
        /// A short name used in output (`scsi0`).
        public var name: String
        /// Where the device lives in its VMM (QOM path, socket), for people.
        public var path: String?

        public init(type: String, id: UInt32, name: String, path: String? = nil) {
            self.type = type; self.id = id; self.name = name; self.path = path
        }
    }

    /// A range of guest-physical memory backed by (part of) a file.
    public struct Region: Codable, Sendable, Equatable {
        public var file: String
        public var offset: UInt64
        public var gpa: UInt64
        public var size: UInt64

        public init(file: String, offset: UInt64 = 0, gpa: UInt64, size: UInt64) {
            self.file = file; self.offset = offset; self.gpa = gpa; self.size = size
        }

        enum CodingKeys: String, CodingKey { case file, offset, gpa, size }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            file = try c.decode(String.self, forKey: .file)
            offset = try c.decodeIfPresent(UInt64.self, forKey: .offset) ?? 0
            gpa = try c.decode(HexU64.self, forKey: .gpa).value
            size = try c.decode(UInt64.self, forKey: .size)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(file, forKey: .file)
            try c.encode(offset, forKey: .offset)
            try c.encode(HexU64(gpa), forKey: .gpa)
            try c.encode(size, forKey: .size)
        }
    }

    /// One split virtqueue: its index, size and the guest-physical addresses of its three parts.
    public struct Queue: Codable, Sendable, Equatable {
        public var index: UInt16
        /// `controlq`, `eventq`, `request0`, ... (for output; the index is what counts).
        public var name: String?
        public var size: UInt16
        public var desc: UInt64
        public var avail: UInt64
        public var used: UInt64

        public init(index: UInt16, name: String? = nil, size: UInt16, desc: UInt64, avail: UInt64, used: UInt64) {
            self.index = index; self.name = name; self.size = size
            self.desc = desc; self.avail = avail; self.used = used
        }

        enum CodingKeys: String, CodingKey { case index, name, size, desc, avail, used }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            index = try c.decode(UInt16.self, forKey: .index)
            name = try c.decodeIfPresent(String.self, forKey: .name)
            size = try c.decode(UInt16.self, forKey: .size)
            desc = try c.decode(HexU64.self, forKey: .desc).value
            avail = try c.decode(HexU64.self, forKey: .avail).value
            used = try c.decode(HexU64.self, forKey: .used).value
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encodeIfPresent(name, forKey: .name)
            try c.encode(size, forKey: .size)
            try c.encode(HexU64(desc), forKey: .desc)
            try c.encode(HexU64(avail), forKey: .avail)
            try c.encode(HexU64(used), forKey: .used)
        }
    }

    /// The device configuration space as the driver left it (virtio_scsi_config); keys are
    /// the spec's field names. Unknown keys are kept, so other device types fit.
    public var config: [String: UInt64]

    public var version: Int
    /// Bumped every time the file is rewritten because the device was reset or re-initialised.
    public var generation: UInt64
    public var status: Status
    /// The process serving the device: when it exits, the device is gone.
    public var pid: Int32?
    public var device: Device
    /// Negotiated feature bits.
    public var features: UInt64
    public var regions: [Region]
    public var queues: [Queue]

    public init(generation: UInt64, status: Status, pid: Int32?, device: Device, features: UInt64,
                config: [String: UInt64], regions: [Region], queues: [Queue]) {
        self.version = Self.formatVersion
        self.generation = generation; self.status = status; self.pid = pid; self.device = device
        self.features = features; self.config = config; self.regions = regions; self.queues = queues
    }

    enum CodingKeys: String, CodingKey {
        case version, generation, status, pid, device, features, config, regions, queues
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        generation = try c.decodeIfPresent(UInt64.self, forKey: .generation) ?? 0
        status = try c.decodeIfPresent(Status.self, forKey: .status) ?? .ready
        pid = try c.decodeIfPresent(Int32.self, forKey: .pid)
        device = try c.decode(Device.self, forKey: .device)
        features = try c.decode(HexU64.self, forKey: .features).value
        config = try c.decodeIfPresent([String: UInt64].self, forKey: .config) ?? [:]
        regions = try c.decode([Region].self, forKey: .regions)
        queues = try c.decode([Queue].self, forKey: .queues)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(generation, forKey: .generation)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(pid, forKey: .pid)
        try c.encode(device, forKey: .device)
        try c.encode(HexU64(features), forKey: .features)
        try c.encode(config, forKey: .config)
        try c.encode(regions, forKey: .regions)
        try c.encode(queues, forKey: .queues)
    }
}

/// A 64-bit value written as a `"0x..."` string (a plain JSON number is accepted too when
/// it is exact, for hand-written files).
public struct HexU64: Codable, Sendable, Equatable {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            let digits = s.hasPrefix("0x") || s.hasPrefix("0X") ? String(s.dropFirst(2)) : s
            let radix = s.hasPrefix("0x") || s.hasPrefix("0X") ? 16 : 10
            guard !digits.isEmpty, let v = UInt64(digits, radix: radix) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "'\(s)' is not a 64-bit number (write \"0x...\" or decimal)")
            }
            value = v
        } else {
            value = try c.decode(UInt64.self)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode("0x" + String(value, radix: 16))
    }
}

extension DeviceLayout {
    /// Reads and validates a layout file. Errors are one line naming the file and the problem.
    public static func load(path: String) throws -> DeviceLayout {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw LayoutError(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        let layout: DeviceLayout
        do { layout = try JSONDecoder().decode(DeviceLayout.self, from: data) } catch let e as DecodingError {
            throw LayoutError(path: path, reason: LayoutError.describe(e))
        } catch {
            throw LayoutError(path: path, reason: "\(error)")
        }
        if let problem = layout.validationProblem { throw LayoutError(path: path, reason: problem) }
        return layout
    }

    /// Writes the file atomically (a temporary file renamed over it), so a reader never
    /// sees half a layout.
    public func write(path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(self)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The first rule the layout breaks, or nil.
    public var validationProblem: String? {
        guard version == Self.formatVersion else { return "version \(version) is not supported (this vqtap reads version \(Self.formatVersion))" }
        for (i, r) in regions.enumerated() {
            if r.file.isEmpty { return "regions[\(i)]: file is empty" }
            if r.size == 0 { return "regions[\(i)]: size is 0" }
            if r.offset.addingReportingOverflow(r.size).overflow { return "regions[\(i)]: offset + size overflows 64 bits" }
            if r.gpa.addingReportingOverflow(r.size).overflow { return "regions[\(i)]: gpa + size overflows 64 bits" }
            for (j, o) in regions.enumerated() where j < i {
                if r.gpa < o.gpa + o.size && o.gpa < r.gpa + r.size { return "regions[\(i)] overlaps regions[\(j)] in guest-physical space" }
            }
        }
        var seen = Set<UInt16>()
        for q in queues {
            if !seen.insert(q.index).inserted { return "queue \(q.index) is listed twice" }
            if status == .ready {
                if q.size == 0 || q.size & (q.size - 1) != 0 { return "queue \(q.index): size \(q.size) is not a power of 2 (split rings need one)" }
                let ring: SplitQueueLayout
                do { ring = try SplitQueueLayout(q) } catch { return "queue \(q.index): \(error)" }
                for (area, gpa, count) in [("desc", q.desc, ring.descAreaSize), ("avail", q.avail, ring.availAreaSize),
                                           ("used", q.used, ring.usedAreaSize)] where !regionsHold(gpa: gpa, count: count) {
                    return "queue \(q.index): \(area) \(RingError.hex(gpa)) + \(count) is not inside one region"
                }
            }
        }
        return nil
    }

    /// Whether one region holds [gpa, gpa + count) (a test that cannot overflow).
    func regionsHold(gpa: UInt64, count: Int) -> Bool {
        let n = UInt64(count)
        return regions.contains { r in gpa >= r.gpa && n <= r.size && gpa - r.gpa <= r.size - n }
    }
}

public struct LayoutError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }

    static func describe(_ e: DecodingError) -> String {
        func at(_ path: [CodingKey]) -> String {
            path.isEmpty ? "top level" : path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch e {
        case let .keyNotFound(k, ctx): return "missing key '\(k.stringValue)' at \(at(ctx.codingPath))"
        case let .typeMismatch(_, ctx): return "wrong type at \(at(ctx.codingPath)): \(ctx.debugDescription)"
        case let .valueNotFound(_, ctx): return "null value at \(at(ctx.codingPath))"
        case let .dataCorrupted(ctx): return ctx.codingPath.isEmpty ? "not valid JSON: \(ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription)" : "bad value at \(at(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}
