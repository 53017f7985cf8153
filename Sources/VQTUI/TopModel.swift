import VQAnalysis
import VQRecord
import VirtioSCSI

// The model of `vqtap top`: a snapshot of the analysis taken once per refresh (values only,
// so drawing never touches the analyzer) and the view state the keys change.

/// Everything a screen draws.
public struct TopSnapshot: Sendable {
    public var source: String
    /// Time of the newest record, and of the first (the run's start).
    public var nowNs: UInt64
    public var startNs: UInt64
    public var windowNs: UInt64
    public var stuckThresholdNs: UInt64
    public var devices: [(instance: UInt16, info: TransactionMatcher.DeviceInfo)]
    public var deviceRows: [GroupRow]
    public var queueRows: [GroupRow]
    public var lunRows: [GroupRow]
    public var opcodeRows: [GroupRow]
    public var outcomeRows: [GroupRow]
    public var latency: LatencySummary
    public var buckets: [HistogramBucket]
    public var health: CaptureHealth
    public var eventq: [UInt16: EventqAccount]
    public var log: [LogEntry]
    public var recent: [Transaction]
    public var stuck: [InFlightCommand]
    public var inFlight: Int
    public var findingCounts: [Finding.Kind: UInt64]
    public var tmfCount: UInt64
    public var eventCount: UInt64
    public var errorCount: UInt64
    public var transactionCount: UInt64
    /// The source ended (a replay reached the end of its file).
    public var finished: Bool
    /// Records the view skipped because it was behind the source (not analysed).
    public var viewSkipped: UInt64 = 0

    public var deviceNames: [UInt16: String] {
        Dictionary(devices.map { ($0.instance, $0.info.name) }, uniquingKeysWith: { a, _ in a })
    }

    public init(analyzer a: Analyzer, source: String, nowNs: UInt64? = nil, finished: Bool = false, logLimit: Int = 500, recentLimit: Int = 500) {
        self.source = source
        let now = nowNs ?? a.matcher.lastNs
        self.nowNs = now
        startNs = a.statistics.firstNs ?? a.matcher.firstNs ?? now
        windowNs = a.options.statistics.windowNs
        stuckThresholdNs = a.options.stuckThresholdNs
        devices = a.matcher.devices.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        deviceRows = a.statistics.rows(.device, at: now)
        queueRows = a.statistics.rows(.queue, at: now)
        lunRows = a.statistics.rows(.lun, at: now)
        opcodeRows = a.statistics.rows(.opcode, at: now)
        outcomeRows = a.statistics.rows(.outcome, at: now)
        (latency, buckets) = a.statistics.combinedHistogram()
        health = a.matcher.health
        eventq = a.matcher.eventq
        log = Array(a.log.elements.suffix(logLimit))
        recent = Array(a.recent.elements.suffix(recentLimit))
        stuck = a.stuck(at: now)
        inFlight = a.matcher.inFlight.count
        findingCounts = a.findingCounts
        tmfCount = a.tmfs.total
        eventCount = a.events.total
        errorCount = a.errorCount
        transactionCount = a.transactionCount
        self.finished = finished
    }
}

public enum TopScreen: Int, Sendable, CaseIterable {
    case overview, luns, opcodes, latency, log, requests

    public var title: String {
        switch self {
        case .overview: "Overview"
        case .luns: "LUNs"
        case .opcodes: "Opcodes"
        case .latency: "Latency"
        case .log: "Log"
        case .requests: "Requests"
        }
    }
}

/// Keys as the terminal reports them, reduced to what `top` handles.
public enum TopKey: Sendable, Equatable {
    case character(Character)
    case tab, backTab, up, down, left, right, pageUp, pageDown, home, end, enter, escape, backspace, resize
}

public enum TopAction: Sendable, Equatable {
    case none, quit, reset, redraw
}

/// What the keys change: the screen, the selection, the sort, the filter, help, pause.
public struct ViewState: Sendable, Equatable {
    public var screen: TopScreen = .overview
    public var paused = false
    public var showHelp = false
    /// The filter text (LUN `0:1`, an opcode or outcome name, any part of it).
    public var filter = ""
    /// Text being typed after `/`; nil when not editing.
    public var editingFilter: String?
    /// Sort column index per screen (0: by key).
    public var sort: [TopScreen: Int] = [:]
    /// Selected line on the requests and log screens (0: the newest).
    public var selection = 0

    public init() {}

    public static let sortNames: [TopScreen: [String]] = [
        .luns: ["key", "count", "IOPS", "p99", "max", "errors"],
        .opcodes: ["key", "count", "IOPS", "p99", "max", "errors"],
        .requests: ["time", "latency", "LUN", "opcode"],
        .log: ["time"],
    ]

    public func sortName(_ screen: TopScreen) -> String? {
        guard let names = Self.sortNames[screen] else { return nil }
        return names[min(sort[screen] ?? 0, names.count - 1)]
    }

    public mutating func handle(_ key: TopKey) -> TopAction {
        if var text = editingFilter {
            switch key {
            case .enter: filter = text; editingFilter = nil; selection = 0
            case .escape: editingFilter = nil
            case .backspace: if !text.isEmpty { text.removeLast() }; editingFilter = text
            case let .character(c) where c.isASCII && !c.isNewline: text.append(c); editingFilter = text
            default: break
            }
            return .redraw
        }
        if showHelp {
            showHelp = false
            if key == .character("q") { return .quit }
            return .redraw
        }
        switch key {
        case .character("q"), .character("Q"): return .quit
        case .character("p"), .character(" "): paused.toggle()
        case .character("?"), .character("h"): showHelp = true
        case .character("r"): selection = 0; return .reset
        case .character("/"): editingFilter = filter
        case .escape: filter = ""
        case .character("s"):
            if let names = Self.sortNames[screen] { sort[screen] = ((sort[screen] ?? 0) + 1) % names.count }
        case .character(let c) where ("1"..."6").contains(c):
            if let n = c.wholeNumberValue, let s = TopScreen(rawValue: n - 1) { switchTo(s) }
        case .tab, .right: switchTo(TopScreen(rawValue: (screen.rawValue + 1) % TopScreen.allCases.count) ?? .overview)
        case .backTab, .left:
            switchTo(TopScreen(rawValue: (screen.rawValue + TopScreen.allCases.count - 1) % TopScreen.allCases.count) ?? .overview)
        case .up: selection = max(0, selection - 1)
        case .down: selection += 1
        case .pageUp: selection = max(0, selection - 10)
        case .pageDown: selection += 10
        case .home: selection = 0
        case .resize: return .redraw
        default: return .none
        }
        return .redraw
    }

    private mutating func switchTo(_ s: TopScreen) {
        screen = s
        selection = 0
    }

    /// Does a row or request match the filter? Empty matches everything.
    func matches(_ words: [String]) -> Bool {
        guard !filter.isEmpty else { return true }
        let f = filter.lowercased()
        return words.contains { $0.lowercased() == f || $0.lowercased().contains(f) }
    }
}
