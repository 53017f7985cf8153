import Histogram

// Latency over time for plots: per interval, the count, p50, p99 and max. The interval
// starts at 100 ms and doubles whenever the series would pass `maxPoints` (neighbours are
// merged: counts add, p50 is their count-weighted mean, p99 and max the larger), so memory
// stays flat however long the capture is.

public struct LatencySeries: Sendable {
    public struct Point: Sendable, Equatable {
        public var startNs: UInt64
        public var count: UInt64
        public var p50: UInt64
        public var p99: UInt64
        public var max: UInt64
    }

    public private(set) var points: [Point] = []
    public private(set) var intervalNs: UInt64
    public let maxPoints: Int
    private var originNs: UInt64?
    private var current: Histogram<UInt32>
    private var currentIndex: UInt64 = 0
    private var currentMax: UInt64 = 0

    public init(intervalNs: UInt64 = 100_000_000, maxPoints: Int = 1000) {
        precondition(intervalNs > 0 && maxPoints >= 2, "a series needs an interval and room for points")
        self.intervalNs = intervalNs
        self.maxPoints = maxPoints
        current = Histogram<UInt32>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .two)
    }

    public mutating func add(endNs: UInt64, latencyNs: UInt64) {
        if originNs == nil { originNs = endNs }
        let origin = originNs ?? endNs
        let index = endNs >= origin ? (endNs - origin) / intervalNs : 0
        if index != currentIndex { flush(); currentIndex = index }
        let v = min(max(latencyNs, 1), 3_600_000_000_000)
        _ = current.record(v)
        currentMax = Swift.max(currentMax, v)
    }

    /// Closes the interval in progress (call before reading `points` at the end).
    public mutating func flush() {
        guard current.totalCount > 0, let origin = originNs else { return }
        points.append(Point(startNs: origin + currentIndex * intervalNs, count: current.totalCount,
                            p50: current.lowestEquivalentForValue(current.valueAtPercentile(50)),
                            p99: current.lowestEquivalentForValue(current.valueAtPercentile(99)), max: currentMax))
        current.reset()
        currentMax = 0
        if points.count > maxPoints { coarsen() }
    }

    private mutating func coarsen() {
        guard let origin = originNs else { return }
        intervalNs *= 2
        var merged: [Point] = []
        for p in points {
            let start = origin + (p.startNs - origin) / intervalNs * intervalNs
            if var last = merged.last, last.startNs == start {
                let n = last.count + p.count
                last.p50 = UInt64((Double(last.p50) * Double(last.count) + Double(p.p50) * Double(p.count)) / Double(max(1, n)))
                last.p99 = Swift.max(last.p99, p.p99)
                last.max = Swift.max(last.max, p.max)
                last.count = n
                merged[merged.count - 1] = last
            } else {
                var q = p
                q.startNs = start
                merged.append(q)
            }
        }
        points = merged
        currentIndex = currentIndex / 2
    }
}
