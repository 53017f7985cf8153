import CVQSys

/// Where the tap's timestamps come from: the monotonic clock moved to the wall clock by an
/// offset taken once, so latencies (differences) never jump with clock adjustments and
/// records still carry nanoseconds since the epoch. Tests freeze it.
public struct TapClock: Sendable {
    let offset: UInt64
    let frozen: UInt64?

    public init() {
        let mono = vq_monotonic_ns()
        let real = vq_realtime_ns()
        offset = real &- mono
        frozen = nil
    }

    /// A clock that always reads `ns` (tests).
    public init(frozenAt ns: UInt64) {
        offset = 0
        frozen = ns
    }

    @inline(__always)
    public func now() -> UInt64 {
        if let frozen { return frozen }
        return vq_monotonic_ns() &+ offset
    }
}
