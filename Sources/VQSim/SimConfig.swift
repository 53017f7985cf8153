import Foundation
import VQWire

// Everything `vqtap simulate` can be told, with the defaults of a realistic workload
// (several LUNs, mixed sizes, a long-tailed latency). Parsers return a one-line reason on
// bad input so the CLI can name the option.

public struct SimConfig: Sendable {
    public var memoryPath: String? = nil
    public var ramSize: UInt64 = 256 << 20
    /// Guest-physical address of file offset 0 (not 0, so a tap that confuses the two fails).
    public var gpaBase: UInt64 = 0x4000_0000
    public var queues = 2
    public var queueSize = 256
    public var featureVersion1 = true
    public var featureIndirect = true
    public var featureEventIdx = true
    public var featureHotplug = true
    public var featureChange = true
    public var threads = 2
    public var cpus: [Int] = []
    public var layoutPath: String? = nil
    public var truthPath: String? = nil
    public var keep = false
    public var targets = 2
    public var luns = 2
    public var iodepth = 32
    public var rate: UInt64 = 20_000
    public var durationNs: UInt64 = 0
    public var mix = Mix(read: 70, write: 25, other: 5)
    public var blockSizes: [(bytes: UInt32, weight: UInt32)] = [(4096, 60), (8192, 10), (65536, 20), (1 << 20, 10)]
    public var sequential = false
    public var tmfEveryNs: UInt64 = 2_000_000_000
    public var resetEveryNs: UInt64 = 0
    public var hotplugEveryNs: UInt64 = 0
    public var resizeEveryNs: UInt64 = 0
    public var diskSize: UInt64 = 64 << 20
    public var latency = LatencyModel.defaultModel
    public var faults: [SimFault: Double] = [:]
    public var seed: UInt64 = 0x5eed
    /// Verify every completion (lengths, responses, data read back).
    public var verify = true
    /// Largest segment of a data buffer (Linux merges pages up to the max segment size).
    public var segmentSize = 64 << 10

    public init() {}

    public struct Mix: Sendable, Equatable {
        public var read: UInt32
        public var write: UInt32
        public var other: UInt32
        public init(read: UInt32, write: UInt32, other: UInt32) { self.read = read; self.write = write; self.other = other }

        /// `read=70,write=25,other=5` (missing kinds weigh 0).
        public static func parse(_ s: String) -> Result<Mix, SimError> {
            var m = Mix(read: 0, write: 0, other: 0)
            for part in s.split(separator: ",") {
                let kv = part.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, let v = UInt32(kv[1].trimmingCharacters()) else { return .failure(SimError("'\(part)' is not KIND=WEIGHT")) }
                switch kv[0].trimmingCharacters() {
                case "read": m.read = v
                case "write": m.write = v
                case "other": m.other = v
                default: return .failure(SimError("unknown kind '\(kv[0])' (read, write, other)"))
                }
            }
            guard m.read + m.write + m.other > 0 else { return .failure(SimError("all weights are 0")) }
            return .success(m)
        }
    }

    /// `4k` or `4k:70,64k:20,1M:10`: sizes must be multiples of 512 up to 1M.
    public static func parseBlockSizes(_ s: String) -> Result<[(bytes: UInt32, weight: UInt32)], SimError> {
        var out: [(bytes: UInt32, weight: UInt32)] = []
        for part in s.split(separator: ",") {
            let kv = part.split(separator: ":", maxSplits: 1)
            guard let size = Units.size(String(kv[0])), size >= 512, size % 512 == 0, size <= 1 << 20 else {
                return .failure(SimError("'\(kv[0])' is not a size that is a multiple of 512, at most 1M"))
            }
            var weight: UInt32 = 1
            if kv.count == 2 {
                guard let w = UInt32(kv[1].trimmingCharacters()), w > 0 else { return .failure(SimError("'\(kv[1])' is not a positive weight")) }
                weight = w
            }
            out.append((UInt32(size), weight))
        }
        guard !out.isEmpty else { return .failure(SimError("no size given")) }
        return .success(out)
    }

    public var maxBlockSize: Int { Int(blockSizes.map(\.bytes).max() ?? 4096) }

    /// The set of features the driver accepts (QEMU offers them all; each can be turned off).
    public var negotiatedFeatures: UInt64 {
        var f: UInt64 = 0
        if featureHotplug { f |= 1 << SimFeature.hotplug }
        if featureChange { f |= 1 << SimFeature.change }
        if featureIndirect { f |= 1 << SimFeature.indirectDesc }
        if featureEventIdx { f |= 1 << SimFeature.eventIdx }
        if featureVersion1 { f |= 1 << SimFeature.version1 }
        return f
    }

    /// The first rule the configuration breaks, naming the option, or nil.
    public var problem: String? {
        if queues < 1 || queues > 64 { return "--queues: must be 1 to 64" }
        if queueSize < 2 || queueSize > 32768 || queueSize & (queueSize - 1) != 0 { return "--queue-size: must be a power of 2 from 2 to 32768" }
        if threads != 1 && threads != 2 { return "--threads: must be 1 or 2" }
        if targets < 1 || targets > 255 { return "--targets: must be 1 to 255" }
        if luns < 1 || luns > 16383 { return "--luns: must be 1 to 16383" }
        if iodepth < 1 || iodepth > queueSize { return "--iodepth: must be 1 to the queue size (\(queueSize))" }
        if maxSegments > SimDevice.segMax(queueSize: queueSize) { return "--bs: \(maxBlockSize)-byte transfers need more segments than --queue-size \(queueSize) allows" }
        if !featureIndirect && queueSize < maxSegments + 2 {
            return "--queue-size: too small for a \(maxBlockSize)-byte request without INDIRECT_DESC"
        }
        if diskSize < 1 << 20 || diskSize % 512 != 0 { return "--disk-size: must be a multiple of 512, at least 1M" }
        if ramSize < 4 << 20 { return "--ram-size: must be at least 4M" }
        if ramSize < requiredRAM { return "--ram-size: \(Units.formatSize(ramSize)) is too small for this workload (needs \(Units.formatSize(requiredRAM)))" }
        return nil
    }

    /// Segments of the largest data buffer.
    var maxSegments: Int { (maxBlockSize + segmentSize - 1) / segmentSize }

    /// Guest memory the rings and buffers take (twice the rings, for resets at new addresses).
    public var requiredRAM: UInt64 {
        let (d, a, u) = RingPlace.bytes(size: queueSize)
        let ring = UInt64((d + 4095) / 4096 * 4096 + (a + 4095) / 4096 * 4096 + (u + 4095) / 4096 * 4096)
        let rings = ring * UInt64(queues + 2) * 2
        let perSlot = UInt64(maxBlockSize + 4096 + 256 + 16 * (maxSegments + 4))
        let buffers = perSlot * UInt64(iodepth * queues + 16) + (1 << 20)
        return rings + buffers + (1 << 20)
    }
}

enum SimFeature {
    static let hotplug: UInt64 = 1
    static let change: UInt64 = 2
    static let indirectDesc: UInt64 = 28
    static let eventIdx: UInt64 = 29
    static let version1: UInt64 = 32
}

/// The latency the device adds to each command: a log-normal body and occasional stalls.
public struct LatencyModel: Sendable, Equatable {
    public var medianNs: UInt64
    /// Log-normal sigma; 0 means every command takes `medianNs`.
    public var sigma: Double
    public var stallProbability: Double
    public var stallNs: UInt64

    public static let zero = LatencyModel(medianNs: 0, sigma: 0, stallProbability: 0, stallNs: 0)
    public static let defaultModel = LatencyModel(medianNs: 80_000, sigma: log(2_000_000.0 / 80_000.0) / 2.3263, stallProbability: 0.0005, stallNs: 20_000_000)

    public var isZero: Bool { medianNs == 0 && stallProbability == 0 }

    /// `0`, `fixed:100us`, `lognormal:median=80us,p99=2ms[,stall=20ms,stall_rate=0.0005]`.
    public static func parse(_ s: String) -> Result<LatencyModel, SimError> {
        if s == "0" || s == "none" { return .success(.zero) }
        let parts = s.split(separator: ":", maxSplits: 1).map(String.init)
        switch parts[0] {
        case "fixed":
            guard parts.count == 2, let ns = Units.duration(parts[1]) else { return .failure(SimError("fixed:DURATION expected")) }
            return .success(LatencyModel(medianNs: ns, sigma: 0, stallProbability: 0, stallNs: 0))
        case "lognormal":
            var median: UInt64 = 80_000, p99: UInt64 = 2_000_000, stall: UInt64 = 20_000_000, stallRate = 0.0005
            if parts.count == 2 {
                for kv in parts[1].split(separator: ",") {
                    let p = kv.split(separator: "=", maxSplits: 1).map(String.init)
                    guard p.count == 2 else { return .failure(SimError("'\(kv)' is not KEY=VALUE")) }
                    switch p[0] {
                    case "median": guard let v = Units.duration(p[1]), v > 0 else { return .failure(SimError("median: bad duration '\(p[1])'")) }; median = v
                    case "p99": guard let v = Units.duration(p[1]) else { return .failure(SimError("p99: bad duration '\(p[1])'")) }; p99 = v
                    case "stall": guard let v = Units.duration(p[1]) else { return .failure(SimError("stall: bad duration '\(p[1])'")) }; stall = v
                    case "stall_rate": guard let v = Double(p[1]), v >= 0, v <= 1 else { return .failure(SimError("stall_rate: must be 0 to 1")) }; stallRate = v
                    default: return .failure(SimError("unknown key '\(p[0])' (median, p99, stall, stall_rate)"))
                    }
                }
            }
            guard p99 >= median else { return .failure(SimError("p99 must be at least the median")) }
            return .success(LatencyModel(medianNs: median, sigma: log(Double(p99) / Double(median)) / 2.3263, stallProbability: stallRate, stallNs: stall))
        default:
            if let ns = Units.duration(s) { return .success(LatencyModel(medianNs: ns, sigma: 0, stallProbability: 0, stallNs: 0)) }
            return .failure(SimError("'\(s)' is not 0, fixed:D or lognormal:median=D,p99=D[,stall=D,stall_rate=P]"))
        }
    }

    @inline(__always) func sample(_ rng: inout SimRandom) -> UInt64 {
        if stallProbability > 0 && rng.unit() < stallProbability { return stallNs }
        if sigma == 0 { return medianNs }
        let v = Double(medianNs) * exp(sigma * rng.normal())
        return v < 1.8e19 ? UInt64(v) : UInt64.max / 2
    }
}

/// What a buggy or hostile guest or device does; each injected instance is marked in the truth.
public enum SimFault: String, CaseIterable, Sendable {
    // Driver (guest) side.
    case descLoop = "desc_loop"
    case badHead = "bad_head"
    case badAddr = "bad_addr"
    case indirectOversize = "indirect_oversize"
    case indirectNested = "indirect_nested"
    case readAfterWrite = "read_after_write"
    case duplicateTag = "duplicate_tag"
    case recycleAfterCompletion = "recycle_after_completion"
    case eventqStarve = "eventq_starve"
    // Device side.
    case senseLenOverflow = "sense_len_overflow"
    case earlyUsed = "early_used"
    case usedLenOverflow = "used_len_overflow"
    case dropEvents = "drop_events"

    public var code: UInt8 { UInt8(Self.allCases.firstIndex(of: self) ?? 0) + 1 }
    static func from(code: UInt8) -> SimFault? {
        code == 0 || Int(code) > allCases.count ? nil : allCases[Int(code) - 1]
    }

    public var summary: String {
        switch self {
        case .descLoop: return "a descriptor chain whose next points back into itself"
        case .badHead: return "an available ring entry that is not a descriptor index (>= queue size)"
        case .badAddr: return "a descriptor whose buffer lies outside guest memory"
        case .indirectOversize: return "an indirect table longer than the queue size"
        case .indirectNested: return "an indirect table that holds another INDIRECT descriptor"
        case .readAfterWrite: return "a device-readable descriptor after a device-writable one"
        case .duplicateTag: return "a command whose tag (id) is already in flight"
        case .recycleAfterCompletion: return "the driver rewrites a chain's buffers right after its completion"
        case .eventqStarve: return "the driver leaves no buffer on the eventq for a while"
        case .senseLenOverflow: return "the device writes a sense_len larger than sense_size"
        case .earlyUsed: return "the device returns a head the driver never made available"
        case .usedLenOverflow: return "the device reports a used length larger than the writable buffers"
        case .dropEvents: return "the device drops events although eventq buffers are there"
        }
    }

    /// `NAME=RATE,...` (RATE a probability per command; per event for drop_events and eventq_starve); `help` lists.
    public static func parse(_ s: String) -> Result<[SimFault: Double], SimError> {
        var out: [SimFault: Double] = [:]
        for part in s.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard let f = SimFault(rawValue: kv[0]) else {
                return .failure(SimError("unknown fault '\(kv[0])' (see --faults help)"))
            }
            var rate = 0.01
            if kv.count == 2 {
                guard let r = Double(kv[1].hasSuffix("%") ? String(kv[1].dropLast()) : kv[1]), r >= 0 else {
                    return .failure(SimError("'\(kv[1])' is not a rate"))
                }
                rate = kv[1].hasSuffix("%") ? r / 100 : r
                guard rate <= 1 else { return .failure(SimError("rate of \(kv[0]) must be at most 1")) }
            }
            out[f] = rate
        }
        return .success(out)
    }

    public static var helpText: String {
        var s = "Fault names for --faults NAME=RATE,... (RATE: probability per request, e.g. 0.01 or 1%):\n"
        for f in allCases { s += "  \(f.rawValue.padding(toLength: 26, withPad: " ", startingAt: 0))\(f.summary)\n" }
        return s
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
