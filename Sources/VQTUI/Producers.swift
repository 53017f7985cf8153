import Foundation
import VQAnalysis
import VQRecord

// The producers of `top`'s feed, each on its own thread: the synthetic workload in real
// time, and a capture file replayed at its recorded pace.

/// The synthetic workload in real time: every 20 ms, the records of the 20 ms just gone.
public enum SyntheticProducer {
    public static func run(iops: Double, feed: RecordFeed) {
        var options = SyntheticWorkload.Options()
        options.iops = iops
        options.seed = TopRunner.realtimeNs()
        options.startNs = TopRunner.realtimeNs()
        // Every 20 s an ABORT_TASK of a command stuck for the last 3 s, and a hot-plug event
        // about every 45 s, whatever the rate.
        options.tmfEvery = UInt64(max(1000, iops * 20))
        options.hangCommands = UInt64(max(100, iops * 3))
        options.eventEvery = UInt64(max(1000, iops * 45))
        var workload = SyntheticWorkload(options: options)
        while !feed.stopRequested {
            usleep(20_000)
            guard feed.push(workload.records(until: TopRunner.realtimeNs()), wait: false) else { break }
        }
        feed.finish()
    }
}

/// A capture file at its recorded pace times `speed` (nil: as fast as the loop drains it).
public enum ReplayProducer {
    public static func run(_ source: inout any RecordSource, speed: Double?, feed: RecordFeed) {
        let startWall = TopRunner.monotonicNs()
        var firstRecordNs: UInt64?
        var batch: [CaptureRecord] = []
        var pausedAt: UInt64?
        var pausedTotal: UInt64 = 0
        do {
            while let record = try source.next() {
                if let speed {
                    if firstRecordNs == nil { firstRecordNs = record.timestampNs }
                    let offset = Double(record.timestampNs &- (firstRecordNs ?? 0)) / speed
                    while true {
                        if feed.stopRequested { feed.finish(); return }
                        // A paused view pauses the replay's clock too.
                        if feed.paused {
                            if pausedAt == nil { pausedAt = TopRunner.monotonicNs() }
                            usleep(20_000)
                            continue
                        }
                        if let p = pausedAt { pausedTotal += TopRunner.monotonicNs() - p; pausedAt = nil }
                        let elapsed = Double(TopRunner.monotonicNs() - startWall - pausedTotal)
                        if elapsed >= offset { break }
                        if !batch.isEmpty {
                            guard feed.push(batch) else { feed.finish(); return }
                            batch.removeAll(keepingCapacity: true)
                        }
                        usleep(UInt32(min(20_000, max(100, (offset - elapsed) / 1000))))
                    }
                }
                batch.append(record)
                if batch.count >= 4096 {
                    guard feed.push(batch) else { feed.finish(); return }
                    batch.removeAll(keepingCapacity: true)
                }
            }
            feed.push(batch)
            feed.finish()
        } catch {
            feed.push(batch)
            feed.finish(error: "\(error)")
        }
    }
}

