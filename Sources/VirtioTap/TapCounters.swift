// Loss accounting (DESIGN.md rule 4; man/vqtap-capture.1, COUNTERS). The same five names
// everywhere: output, pcapng statistics, the JSON summary. Every chain record the tap emits
// counts in exactly one of captured, torn, orphan and malformed (malformed first, then torn,
// then orphan); `dropped` counts ring entries that went by uncaptured (a ring lapped
// between two polls), each one exactly, from the ring indices.

public struct TapCounters: Sendable, Equatable {
    /// Available and used records copied intact.
    public var captured: UInt64 = 0
    /// Records whose buffers the driver (or device) recycled before the copy ended.
    public var torn: UInt64 = 0
    /// Completions whose request the tap never saw.
    public var orphan: UInt64 = 0
    /// Ring entries (available or used) that went by uncaptured.
    public var dropped: UInt64 = 0
    /// Chains or completions that broke a ring rule (the record's error says which).
    public var malformed: UInt64 = 0

    public init() {}

    public init(captured: UInt64, torn: UInt64, orphan: UInt64, dropped: UInt64, malformed: UInt64) {
        self.captured = captured; self.torn = torn; self.orphan = orphan; self.dropped = dropped; self.malformed = malformed
    }

    public static func + (a: TapCounters, b: TapCounters) -> TapCounters {
        TapCounters(captured: a.captured + b.captured, torn: a.torn + b.torn, orphan: a.orphan + b.orphan,
                    dropped: a.dropped + b.dropped, malformed: a.malformed + b.malformed)
    }

    public static func += (a: inout TapCounters, b: TapCounters) { a = a + b }

    /// `captured 10 torn 0 orphan 0 dropped 0 malformed 0`
    public var text: String {
        "captured \(captured) torn \(torn) orphan \(orphan) dropped \(dropped) malformed \(malformed)"
    }

    /// The names and values in their fixed order.
    public var fields: [(name: String, value: UInt64)] {
        [("captured", captured), ("torn", torn), ("orphan", orphan), ("dropped", dropped), ("malformed", malformed)]
    }
}

/// Why records were counted torn, for the people tuning the tap (`VQTAP_TORN_REASONS=1`
/// prints them when a capture ends). Each torn available record counts once, under the
/// first reason that applied; a torn completion counts under its own reason.
public struct TornReasons: Sendable, Equatable {
    public enum Reason: Int, CaseIterable, Sendable {
        case walkFailedOnReusedChain, headReposted, descriptorsChanged, reuseOfHeaderReturned,
             copyIsTheReuse, bufferChangedNoReuse, laterPostingsUnknown, requestTorn, usedLapped, responseReused,
             responseOverwritten, headerReusedTwice
        public var name: String {
            switch self {
            case .walkFailedOnReusedChain: "walk-failed-on-reused-chain"
            case .headReposted: "head-reposted"
            case .descriptorsChanged: "descriptors-changed"
            case .reuseOfHeaderReturned: "reuse-of-header-returned"
            case .copyIsTheReuse: "copy-is-the-reuse"
            case .bufferChangedNoReuse: "buffer-changed-no-reuse"
            case .laterPostingsUnknown: "later-postings-unknown"
            case .requestTorn: "request-torn"
            case .usedLapped: "used-lapped"
            case .responseReused: "response-reused"
            case .responseOverwritten: "response-overwritten"
            case .headerReusedTwice: "header-reused-twice"
            }
        }
    }
    public var counts = [UInt64](repeating: 0, count: Reason.allCases.count)
    public init() {}
    public mutating func count(_ r: Reason) { counts[r.rawValue] += 1 }
    public static func + (a: TornReasons, b: TornReasons) -> TornReasons {
        var s = a
        for k in s.counts.indices { s.counts[k] += b.counts[k] }
        return s
    }
    /// `head-reposted 3 buffer-changed-no-reuse 1` (reasons that occurred).
    public var text: String {
        Reason.allCases.filter { counts[$0.rawValue] > 0 }.map { "\($0.name) \(counts[$0.rawValue])" }.joined(separator: " ")
    }
}

/// Gaps between two turns of the polling loop while it does not sleep: how often the tap
/// was away (descheduled, or busy copying) long enough for a driver to reuse buffers.
public struct LoopStalls: Sendable, Equatable {
    public var turns: UInt64 = 0
    public var over20us: UInt64 = 0
    public var over100us: UInt64 = 0
    public var over1ms: UInt64 = 0
    public var longestNs: UInt64 = 0
    public init() {}
    @inline(__always)
    public mutating func note(_ gapNs: UInt64) {
        turns &+= 1
        guard gapNs > 20_000 else { return }
        over20us += 1
        if gapNs > 100_000 { over100us += 1 }
        if gapNs > 1_000_000 { over1ms += 1 }
        longestNs = max(longestNs, gapNs)
    }
    public enum Phase: Int, CaseIterable, Sendable { case poll, deliver, watch }
    /// Per phase of a turn: how often it took over 20 us, and its longest.
    public var slowPhases = [UInt64](repeating: 0, count: Phase.allCases.count)
    public var longestPhaseNs = [UInt64](repeating: 0, count: Phase.allCases.count)
    @inline(__always)
    public mutating func notePhase(_ phase: Phase, _ ns: UInt64) {
        guard ns > 20_000 else { return }
        slowPhases[phase.rawValue] += 1
        longestPhaseNs[phase.rawValue] = max(longestPhaseNs[phase.rawValue], ns)
    }
    public var text: String {
        let phases = Phase.allCases.map { "\($0)-over-20us \(slowPhases[$0.rawValue]) (longest \(longestPhaseNs[$0.rawValue] / 1000)us)" }
        return "turns \(turns) over-20us \(over20us) over-100us \(over100us) over-1ms \(over1ms) longest \(longestNs / 1000)us; "
            + phases.joined(separator: ", ")
    }
}
