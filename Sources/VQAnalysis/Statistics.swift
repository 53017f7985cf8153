import Histogram
import VQRecord
import VirtioSCSI

// Statistics are a listener of the matcher (DESIGN.md rule 7): counts, rates, in-flight
// depth and latency per group, over the whole run and over a sliding window. Latency
// distributions are HDR histograms (hdrhistogram-swift): whole-run ones keep three
// significant digits, the window's slots two (they are many and short-lived).

/// What a table can be grouped by (`--by queue,lun,opcode,outcome`).
public enum Dimension: String, Sendable, CaseIterable, Comparable {
    case device, queue, lun, opcode, outcome

    public static func < (a: Dimension, b: Dimension) -> Bool {
        (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0)
    }

    /// `queue,lun` -> [.queue, .lun]; nil names the first word that is not a dimension.
    public static func parseList(_ text: String) -> Result<[Dimension], ParseFailure> {
        var out: [Dimension] = []
        for word in text.split(separator: ",") {
            let w = String(word.filter { $0 != " " })
            guard let d = Dimension(rawValue: w == "target" ? "lun" : w) else { return .failure(ParseFailure(word: w)) }
            if !out.contains(d) { out.append(d) }
        }
        return .success(out.sorted())
    }

    public struct ParseFailure: Error, Sendable { public var word: String }
}

/// A row's identity: the fields of the grouping's dimensions, the others left at their
/// defaults.
public struct GroupKey: Hashable, Sendable, Comparable {
    public var device: UInt16 = 0
    public var queue: UInt16 = 0
    public var lun: LUNAddress?
    public var opcode: OpcodeKey?
    public var outcome: Outcome = .good

    public init(device: UInt16 = 0, queue: UInt16 = 0, lun: LUNAddress? = nil, opcode: OpcodeKey? = nil, outcome: Outcome = .good) {
        self.device = device
        self.queue = queue
        self.lun = lun
        self.opcode = opcode
        self.outcome = outcome
    }

    /// Three packed words instead of a dozen optional fields: this runs for every
    /// grouping of every command.
    public func hash(into h: inout Hasher) {
        let (a, b, c) = packed
        h.combine(a)
        h.combine(b)
        h.combine(c)
    }

    /// The key in three words; one-to-one for keys whose outcome is a group (no ASC/ASCQ
    /// without the other).
    @inline(__always)
    var packed: (UInt64, UInt64, UInt64) {
        (Self.whereWord(device: device, queue: queue, lun: lun), Self.whatWord(opcode), Self.howWord(outcome))
    }

    @inline(__always)
    static func whereWord(device: UInt16, queue: UInt16, lun: LUNAddress?) -> UInt64 {
        var w = UInt64(device) << 48 | UInt64(queue) << 32
        if let lun { w |= 1 << 31 | UInt64(lun.target) << 16 | UInt64(lun.lun) }
        return w
    }

    @inline(__always)
    static func whatWord(_ opcode: OpcodeKey?) -> UInt64 {
        guard let opcode else { return 0 }
        return 1 << 40 | UInt64(opcode.opcode) << 32 | UInt64(opcode.serviceAction.map { 1 << 16 | UInt32($0) } ?? 0)
    }

    @inline(__always)
    static func howWord(_ outcome: Outcome) -> UInt64 {
        var how = UInt64(outcome.status) << 8 | UInt64(outcome.response.map { 1 << 8 | UInt16($0) } ?? 0) << 16
        if let key = outcome.senseKey { how |= 1 << 40 | UInt64(key) << 32 }
        if let asc = outcome.asc, let ascq = outcome.ascq { how |= 1 << 41 | UInt64(asc) << 48 | UInt64(ascq) << 56 }
        return how
    }

    static let goodWord = howWord(.good)

    public static func < (a: GroupKey, b: GroupKey) -> Bool {
        if a.device != b.device { return a.device < b.device }
        if a.queue != b.queue { return a.queue < b.queue }
        if a.lun != b.lun { return (a.lun.map { Int($0.target) << 16 | Int($0.lun) } ?? -1) < (b.lun.map { Int($0.target) << 16 | Int($0.lun) } ?? -1) }
        if a.opcode != b.opcode { return (a.opcode.map { Int($0.opcode) << 16 | Int($0.serviceAction ?? 0) } ?? -1) < (b.opcode.map { Int($0.opcode) << 16 | Int($0.serviceAction ?? 0) } ?? -1) }
        return a.outcome < b.outcome
    }
}

/// A set of dimensions, and the key of a command in it.
public struct Grouping: Hashable, Sendable {
    public var dimensions: [Dimension]

    public init(_ dimensions: [Dimension]) { self.dimensions = dimensions.sorted() }

    public var name: String { dimensions.isEmpty ? "all" : dimensions.map(\.rawValue).joined(separator: ",") }
    /// In-flight depth has no outcome: groupings with one do not track it.
    public var tracksDepth: Bool { !dimensions.contains(.outcome) }

    @inline(__always)
    func key(device: UInt16, queue: UInt16, lun: LUNAddress?, opcode: OpcodeKey?, outcome: Outcome) -> GroupKey {
        var k = GroupKey()
        for d in dimensions {
            switch d {
            case .device: k.device = device
            case .queue: k.device = device; k.queue = queue
            case .lun: k.device = device; k.lun = lun
            case .opcode: k.opcode = opcode
            case .outcome: k.outcome = outcome.group
            }
        }
        return k
    }

    public static let device = Grouping([.device])
    public static let queue = Grouping([.queue])
    public static let lun = Grouping([.lun])
    public static let opcode = Grouping([.opcode])
    public static let outcome = Grouping([.outcome])
    public static let standard: [Grouping] = [.device, .queue, .lun, .opcode, .outcome]
}

/// Min, mean, percentiles and max of a set of latencies, in nanoseconds.
public struct LatencySummary: Sendable, Equatable {
    public var count: UInt64 = 0
    public var min: UInt64 = 0
    public var mean: UInt64 = 0
    public var p50: UInt64 = 0
    public var p90: UInt64 = 0
    public var p99: UInt64 = 0
    public var p999: UInt64 = 0
    public var max: UInt64 = 0

    public init() {}

    init<C>(_ h: Histogram<C>, exactMin: UInt64, exactMax: UInt64, sum: UInt64) {
        count = h.totalCount
        guard count > 0 else { return }
        min = exactMin
        max = exactMax
        mean = sum / count
        // A percentile is the low end of its histogram bucket (exact for values the histogram
        // holds exactly, at most 0.1% low otherwise), never beyond the exact extremes.
        func p(_ q: Double) -> UInt64 {
            Swift.min(Swift.max(h.lowestEquivalentForValue(h.valueAtPercentile(q)), exactMin), exactMax)
        }
        p50 = p(50)
        p90 = p(90)
        p99 = p(99)
        p999 = p(99.9)
    }
}

/// Queue depth over time: current, maximum and time-weighted mean.
public struct DepthGauge: Sendable, Equatable {
    public private(set) var current = 0
    public private(set) var max = 0
    private var area: Double = 0
    /// Plain words rather than optionals: a gauge changes at every command's start and end.
    private var timed = false
    private var lastNs: UInt64 = 0
    private var firstNs: UInt64 = 0

    public init(current: Int = 0, at nowNs: UInt64? = nil) {
        self.current = current
        self.max = current
        if let nowNs {
            timed = true
            lastNs = nowNs
            firstNs = nowNs
        }
    }

    @inline(__always)
    mutating func change(_ delta: Int, at nowNs: UInt64) {
        if !timed {
            timed = true
            firstNs = nowNs
            lastNs = nowNs
        } else if nowNs > lastNs {
            // Times and depths are far below 2^63: the signed conversions give the same doubles.
            area += Double(current) * Double(Int64(bitPattern: nowNs &- lastNs))
            lastNs = nowNs
        }
        current = Swift.max(0, current &+ delta)
        max = Swift.max(max, current)
    }

    public func mean(at nowNs: UInt64) -> Double {
        guard timed, nowNs > firstNs else { return Double(current) }
        let tail = nowNs > lastNs ? Double(current) * Double(nowNs - lastNs) : 0
        return (area + tail) / Double(nowNs - firstNs)
    }
}

/// Counts and latencies of one group over some time.
struct Accumulator {
    var count: UInt64 = 0
    var errors: UInt64 = 0
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    var latencySum: UInt64 = 0
    var latencyMin: UInt64 = .max
    var latencyMax: UInt64 = 0
    var histogram: Histogram<UInt64>

    static let highestLatencyNs: UInt64 = 3_600_000_000_000

    init(digits: SignificantDigits) {
        histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: Self.highestLatencyNs, numberOfSignificantValueDigits: digits)
    }

    @inline(__always)
    mutating func add(_ t: Transaction, latency: UInt64?) {
        count += 1
        if t.isError { errors += 1 }
        bytesIn &+= t.bytesIn
        bytesOut &+= t.bytesOut
        if let latency {
            // A request and its completion seen in the same poll share a timestamp: 0 is
            // the figure (returned within one poll), not 1 ns.
            let v = Swift.min(latency, Self.highestLatencyNs)
            latencySum &+= v
            latencyMin = Swift.min(latencyMin, v)
            latencyMax = Swift.max(latencyMax, v)
            _ = histogram.record(v)
        }
    }

    mutating func merge(_ o: Accumulator) {
        count += o.count
        errors += o.errors
        bytesIn &+= o.bytesIn
        bytesOut &+= o.bytesOut
        latencySum &+= o.latencySum
        latencyMin = Swift.min(latencyMin, o.latencyMin)
        latencyMax = Swift.max(latencyMax, o.latencyMax)
        histogram.add(o.histogram)
    }

    mutating func clear() {
        count = 0; errors = 0; bytesIn = 0; bytesOut = 0; latencySum = 0; latencyMin = .max; latencyMax = 0
        histogram.reset()
    }

    var latency: LatencySummary {
        LatencySummary(histogram, exactMin: latencyMin == .max ? 0 : latencyMin, exactMax: latencyMax, sum: latencySum)
    }
}

/// One group's state: whole run, window slots, depth.
struct GroupState {
    var total = Accumulator(digits: .three)
    /// Window slots, indexed by slot epoch modulo their count.
    var slots: [(epoch: UInt64, acc: Accumulator)] = []
    var firstNs: UInt64?
}

/// A row of a statistics table.
public struct GroupRow: Sendable {
    public var grouping: Grouping
    public var key: GroupKey
    public var count: UInt64
    public var errors: UInt64
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    /// Per second over the whole run.
    public var iops: Double
    public var readBytesPerSecond: Double
    public var writeBytesPerSecond: Double
    public var latency: LatencySummary
    public var inFlight: Int
    public var inFlightMax: Int
    public var inFlightMean: Double
    /// The same over the sliding window.
    public var window: WindowFigures

    public struct WindowFigures: Sendable {
        public var count: UInt64 = 0
        public var errors: UInt64 = 0
        public var iops: Double = 0
        public var readBytesPerSecond: Double = 0
        public var writeBytesPerSecond: Double = 0
        public var latency = LatencySummary()
    }

    /// `request0`, `0:1`, `Read(10)`, `GOOD`, joined by spaces for several dimensions.
    public func label(deviceNames: [UInt16: String] = [:]) -> String {
        var parts: [String] = []
        for d in grouping.dimensions {
            switch d {
            case .device: parts.append(deviceNames[key.device] ?? "dev\(key.device)")
            case .queue: parts.append(VirtioSCSIQueueRole(queue: key.queue).name)
            case .lun: parts.append(key.lun?.description ?? "(unknown)")
            case .opcode: parts.append(key.opcode?.name ?? "(unknown)")
            case .outcome: parts.append(key.outcome.name)
            }
        }
        return parts.isEmpty ? "all" : parts.joined(separator: " ")
    }
}

/// One bar of a latency histogram: values in [low, high).
public struct HistogramBucket: Sendable, Equatable {
    public var lowNs: UInt64
    public var highNs: UInt64
    public var count: UInt64
}

public struct Statistics {
    public struct Options: Sendable {
        public var groupings: [Grouping] = Grouping.standard
        public var windowNs: UInt64 = 10_000_000_000
        public var windowSlots = 10
        /// Keep the sliding window (`top`); a report over a whole file does without it
        /// (its rows' `window` figures stay zero).
        public var window = true
        /// Bounds on what the statistics keep, whatever a guest or device sends (every
        /// group costs histograms): LUNs and opcodes (with service action) beyond the first
        /// `maxLUNs` and `maxOpcodes` seen are counted as LUN `other` and opcode `other`, and
        /// combinations of device, queue, LUN, opcode and outcome beyond `maxCombinations`
        /// as LUN and opcode `other` of their device, queue and outcome.
        public var maxLUNs = 256
        public var maxOpcodes = 256
        public var maxCombinations = 2048
        public init() {}
    }

    public let options: Options
    /// Every group's state, and per grouping where its groups are in `states`.
    private var states: [GroupState] = []
    /// The in-flight depth of each group in `states` (apart: plain data, changed at every
    /// command's start and end).
    private var gauges: [DepthGauge] = []
    private var index: [[GroupKey: Int]]
    /// Per combination of device, queue, LUN, opcode and outcome group (a key with every
    /// dimension), where its group of each grouping is in `states` (-1: not made yet), at
    /// `comboSlots[offset + grouping]`: one lookup per command instead of one per grouping.
    /// The combinations as counted (LUN and opcode possibly `other`) and their offsets. A
    /// command's combination is looked up here as it is; one counted otherwise goes through
    /// `newPlacement` each time (kept, its keys would grow with every LUN a hostile guest
    /// sends).
    private var slotOffset: [GroupKey: Int] = [:]
    private var lastPlacement = Placement(offset: -1, key: GroupKey(), folded: false)
    /// Groups over every grouping, and combinations of device, queue, LUN, opcode and
    /// outcome seen (what the statistics' memory grows with; `top --bench` prints them).
    public var groupCount: Int { states.count }
    public var combinationCount: Int { slotOffset.count }
    private var comboSlots: [Int] = []
    private var lastComboWords: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private var lastComboOffset = -1
    /// The combinations of the last command started and of the last one completed.
    private var lastStartWords: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private var lastStartOffset = -1
    private var lastEndWords: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private var lastEndOffset = -1
    private var lastEndCombination = 0
    private var lastEndFolded = false
    /// Without the window, a command's totals go to its combination alone (one histogram
    /// record instead of one per grouping); `rows` merges them per group (exact: counts,
    /// sums, extremes and histogram buckets add up). Indexed by combination offset / count.
    private var comboTotals: [Accumulator] = []
    /// The LUNs and opcodes with groups of their own (kept by `reset`: a command's groups
    /// at its end must be those of its start).
    private var admittedLUNs: Set<LUNAddress> = []
    private var admittedOpcodes: Set<OpcodeKey> = []
    /// `tracksDepth` of each grouping (read per command: no copies of the groupings).
    private let tracksDepth: [Bool]
    /// The indices of the groupings that track depth.
    private let depthGroupings: [Int]
    private let slotNs: UInt64
    public private(set) var firstNs: UInt64?
    public private(set) var lastNs: UInt64 = 0

    public init(options: Options = Options()) {
        precondition(options.windowSlots > 0 && options.windowNs >= UInt64(options.windowSlots), "a window needs slots")
        self.options = options
        index = Array(repeating: [:], count: options.groupings.count)
        tracksDepth = options.groupings.map(\.tracksDepth)
        depthGroupings = options.groupings.indices.filter { options.groupings[$0].tracksDepth }
        slotNs = options.windowNs / UInt64(options.windowSlots)
    }

    @inline(__always)
    public mutating func consume(_ event: AnalysisEvent) {
        switch event {
        case let .started(c):
            started(device: c.device, queue: c.queue, lun: c.lun, opcode: c.opcode, at: c.startNs)
        case let .abandoned(c):
            depth(-1, c.device, c.queue, c.lun, c.opcode, at: lastNs)
        case let .transaction(t):
            completed(t)
        case .tmf, .event, .finding:
            break
        }
    }

    /// `consume(.started(...))` without the event.
    @inline(__always)
    mutating func started(device: UInt16, queue: UInt16, lun: LUNAddress?, opcode: OpcodeKey?, at ns: UInt64) {
        touch(ns)
        let words = (GroupKey.whereWord(device: device, queue: queue, lun: lun), GroupKey.whatWord(opcode), GroupKey.goodWord)
        let offset: Int
        if lastStartOffset >= 0 && words == lastStartWords {
            offset = lastStartOffset
        } else {
            let place = comboOffset(GroupKey(device: device, queue: queue, lun: lun, opcode: opcode, outcome: .good))
            offset = place.offset
            for g in depthGroupings where comboSlots[offset + g] < 0 { _ = stateIndex(offset, g, place.key) }
            lastStartWords = words
            lastStartOffset = offset
        }
        changeDepth(offset, +1, at: ns)
    }

    /// `consume(.transaction(t))` without the event.
    @inline(__always)
    mutating func completed(_ t: Transaction) {
        touch(t.endNs)
        let group = t.outcome.group
        let words = (GroupKey.whereWord(device: t.device, queue: t.queue, lun: t.lun), GroupKey.whatWord(t.opcode), GroupKey.howWord(group))
        let offset: Int
        let combination: Int
        let folded: Bool
        if lastEndOffset >= 0 && words == lastEndWords {
            offset = lastEndOffset
            combination = lastEndCombination
            folded = lastEndFolded
        } else {
            let place = comboOffset(GroupKey(device: t.device, queue: t.queue, lun: t.lun, opcode: t.opcode, outcome: group))
            offset = place.offset
            folded = place.folded
            // Every grouping's group of the combination exists from its first command on.
            for g in tracksDepth.indices where comboSlots[offset + g] < 0 { _ = stateIndex(offset, g, place.key) }
            combination = offset / tracksDepth.count
            lastEndWords = words
            lastEndOffset = offset
            lastEndCombination = combination
            lastEndFolded = folded
        }
        if t.startNs != nil {
            // Counted as `other` for want of room: its start may have had groups of its own.
            let depthOffset = folded ? startOffset(t.device, t.queue, t.lun, t.opcode) : offset
            changeDepth(depthOffset, -1, at: t.endNs)
        }
        // A command outstanding when the tap attached has no true start: no latency.
        let latency = t.flags.contains(.preAttach) ? nil : t.latencyNs
        if !options.window {
            comboTotals[combination].add(t, latency: latency)
            return
        }
        let epoch = t.endNs / slotNs
        for g in tracksDepth.indices {
            Self.update(&states[comboSlots[offset + g]], t, latency: latency, epoch: epoch, slotCount: options.windowSlots)
        }
    }

    private mutating func touch(_ ns: UInt64) {
        if firstNs == nil { firstNs = ns }
        if ns > lastNs { lastNs = ns }
    }

    /// Where a combination is counted: the offset of its groupings' groups in `comboSlots`,
    /// its key with LUN and opcode as counted, and whether it is counted as `other` for want
    /// of room for more combinations.
    struct Placement {
        var offset: Int
        var key: GroupKey
        var folded: Bool
    }

    /// The placement of a combination, made when first seen. The same combination always
    /// gets the same one (what was admitted stays, and once full nothing more is).
    @inline(__always)
    private mutating func comboOffset(_ combo: GroupKey) -> Placement {
        let words = combo.packed
        if lastComboOffset >= 0 && words == lastComboWords { return lastPlacement }
        let place: Placement
        if let known = slotOffset[combo] {
            place = Placement(offset: known, key: combo, folded: false)
        } else {
            place = newPlacement(combo)
        }
        lastComboWords = words
        lastComboOffset = place.offset
        lastPlacement = place
        return place
    }

    /// The rare part of `comboOffset`, out of line.
    @inline(never)
    private mutating func newPlacement(_ combo: GroupKey) -> Placement {
        var key = combo
        if let lun = key.lun, !admittedLUNs.contains(lun) {
            if admittedLUNs.count < options.maxLUNs { admittedLUNs.insert(lun) } else { key.lun = .other }
        }
        if let opcode = key.opcode, !admittedOpcodes.contains(opcode) {
            if admittedOpcodes.count < options.maxOpcodes { admittedOpcodes.insert(opcode) } else { key.opcode = .other }
        }
        if let offset = slotOffset[key] { return Placement(offset: offset, key: key, folded: false) }
        var folded = false
        if slotOffset.count >= options.maxCombinations && (key.lun != .other || key.opcode != .other) {
            key.lun = .other
            key.opcode = .other
            folded = true
            if let offset = slotOffset[key] { return Placement(offset: offset, key: key, folded: true) }
        }
        let offset = comboSlots.count
        comboSlots += Array(repeating: -1, count: options.groupings.count)
        slotOffset[key] = offset
        if !options.window { comboTotals.append(Accumulator(digits: .three)) }
        return Placement(offset: offset, key: key, folded: folded)
    }

    /// Where a command's start was counted.
    private mutating func startOffset(_ device: UInt16, _ queue: UInt16, _ lun: LUNAddress?, _ opcode: OpcodeKey?) -> Int {
        let place = comboOffset(GroupKey(device: device, queue: queue, lun: lun, opcode: opcode, outcome: .good))
        for g in depthGroupings where comboSlots[place.offset + g] < 0 { _ = stateIndex(place.offset, g, place.key) }
        return place.offset
    }

    /// The state of grouping `g`'s group for a combination, made when first needed.
    @inline(__always)
    private mutating func stateIndex(_ offset: Int, _ g: Int, _ combo: GroupKey) -> Int {
        let known = comboSlots[offset + g]
        if known >= 0 { return known }
        let key = options.groupings[g].key(device: combo.device, queue: combo.queue, lun: combo.lun, opcode: combo.opcode, outcome: combo.outcome)
        let i: Int
        if let existing = index[g][key] {
            i = existing
        } else {
            i = states.count
            states.append(GroupState())
            gauges.append(DepthGauge())
            index[g][key] = i
        }
        comboSlots[offset + g] = i
        return i
    }

    private mutating func depth(_ delta: Int, _ device: UInt16, _ queue: UInt16, _ lun: LUNAddress?, _ opcode: OpcodeKey?, at ns: UInt64) {
        changeDepth(startOffset(device, queue, lun, opcode), delta, at: ns)
    }

    /// Changes the depth of a combination's groups (all made already).
    @inline(__always)
    private mutating func changeDepth(_ offset: Int, _ delta: Int, at ns: UInt64) {
        comboSlots.withUnsafeBufferPointer { slots in
            depthGroupings.withUnsafeBufferPointer { groupings in
                gauges.withUnsafeMutableBufferPointer { g in
                    for k in groupings { g[slots[offset + k]].change(delta, at: ns) }
                }
            }
        }
    }

    private static func update(_ state: inout GroupState, _ t: Transaction, latency: UInt64?, epoch: UInt64, slotCount: Int) {
        if state.firstNs == nil { state.firstNs = t.startNs ?? t.endNs }
        state.total.add(t, latency: latency)
        guard slotCount > 0 else { return }
        if state.slots.isEmpty {
            state.slots = (0..<slotCount).map { _ in (UInt64.max, Accumulator(digits: .two)) }
        }
        let s = Int(epoch % UInt64(slotCount))
        if state.slots[s].epoch != epoch {
            state.slots[s].epoch = epoch
            state.slots[s].acc.clear()
        }
        state.slots[s].acc.add(t, latency: latency)
    }

    /// Forget everything but the commands in flight now.
    public mutating func reset(inFlight: [InFlightCommand], at nowNs: UInt64) {
        states = []
        gauges = []
        index = Array(repeating: [:], count: options.groupings.count)
        slotOffset = [:]
        comboSlots = []
        comboTotals = []
        lastComboOffset = -1
        lastStartOffset = -1
        lastEndOffset = -1
        firstNs = nowNs
        lastNs = nowNs
        // Placed as their starts were (the LUNs and opcodes admitted stay admitted), so
        // that their ends find the same groups.
        for c in inFlight { changeDepth(startOffset(c.device, c.queue, c.lun, c.opcode), +1, at: nowNs) }
    }

    /// The rows of one grouping, sorted by key. `nowNs` is the end of the window.
    public func rows(_ grouping: Grouping, at nowNs: UInt64? = nil) -> [GroupRow] {
        guard let i = options.groupings.firstIndex(of: grouping) else { return [] }
        let now = nowNs ?? lastNs
        let elapsed = Double(now > (firstNs ?? now) ? now - (firstNs ?? now) : 0) / 1e9
        let nowEpoch = now / slotNs
        let oldestEpoch = nowEpoch >= UInt64(options.windowSlots) ? nowEpoch - UInt64(options.windowSlots) + 1 : 0
        // The window is the slots it holds; at the start of a run it is as long as the run.
        let windowStart = Swift.max(oldestEpoch * slotNs, firstNs ?? now)
        let windowSeconds = Double(now > windowStart ? now - windowStart : 0) / 1e9
        var merged: [Int: Accumulator] = [:]
        for (c, acc) in comboTotals.enumerated() {
            let at = comboSlots[c * tracksDepth.count + i]
            if at >= 0 { merged[at, default: Accumulator(digits: .three)].merge(acc) }
        }
        return index[i].map { key, at -> GroupRow in
            var state = states[at]
            if !options.window { state.total = merged[at] ?? Accumulator(digits: .three) }
            var w = Accumulator(digits: .two)
            for slot in state.slots where slot.epoch != .max && slot.epoch >= oldestEpoch && slot.epoch <= nowEpoch {
                w.merge(slot.acc)
            }
            func rate(_ n: UInt64, _ seconds: Double) -> Double { seconds > 0 ? Double(n) / seconds : 0 }
            let window = GroupRow.WindowFigures(count: w.count, errors: w.errors, iops: rate(w.count, windowSeconds),
                                                readBytesPerSecond: rate(w.bytesIn, windowSeconds),
                                                writeBytesPerSecond: rate(w.bytesOut, windowSeconds), latency: w.latency)
            return GroupRow(grouping: grouping, key: key, count: state.total.count, errors: state.total.errors,
                            bytesIn: state.total.bytesIn, bytesOut: state.total.bytesOut,
                            iops: rate(state.total.count, elapsed), readBytesPerSecond: rate(state.total.bytesIn, elapsed),
                            writeBytesPerSecond: rate(state.total.bytesOut, elapsed), latency: state.total.latency,
                            inFlight: gauges[at].current, inFlightMax: gauges[at].max, inFlightMean: gauges[at].mean(at: now),
                            window: window)
        }.sorted { $0.key < $1.key }
    }

    /// All commands' latencies (the first grouping's groups merged), for the histogram.
    public func combinedHistogram(_ grouping: Grouping = .device) -> (summary: LatencySummary, buckets: [HistogramBucket]) {
        guard let i = options.groupings.firstIndex(of: grouping) else { return (LatencySummary(), []) }
        var all = Accumulator(digits: .three)
        if options.window {
            for at in index[i].values { all.merge(states[at].total) }
        } else {
            for acc in comboTotals { all.merge(acc) }
        }
        return (all.latency, Self.log2Buckets(all.histogram))
    }

    /// Power-of-two buckets from the lowest to the highest non-empty one (biolatency's
    /// layout): [1, 2), [2, 4), ... in nanoseconds.
    static func log2Buckets(_ h: Histogram<UInt64>) -> [HistogramBucket] {
        var counts = [UInt64](repeating: 0, count: 64)
        for v in h.recordedValues() {
            let value = h.lowestEquivalentForValue(v.value)
            let b = value == 0 ? 0 : 63 - value.leadingZeroBitCount
            counts[b] += v.count
        }
        guard let first = counts.firstIndex(where: { $0 > 0 }), let last = counts.lastIndex(where: { $0 > 0 }) else { return [] }
        var out: [HistogramBucket] = []
        for b in first...last {
            let low: UInt64 = b == 0 ? 0 : UInt64(1) << UInt64(b)
            let high: UInt64 = b >= 63 ? UInt64.max : UInt64(1) << UInt64(b + 1)
            out.append(HistogramBucket(lowNs: low, highNs: high, count: counts[b]))
        }
        return out
    }
}
