import Foundation
import Testing
import VQAnalysis
import VQRecord
@testable import VQTUI

struct ArraySource: RecordSource {
    var records: [CaptureRecord]
    var index = 0
    var failAtEnd = false

    mutating func next() throws -> CaptureRecord? {
        guard index < records.count else {
            if failAtEnd { throw SourceError.cutShort }
            return nil
        }
        defer { index += 1 }
        return records[index]
    }

    enum SourceError: Error { case cutShort }
}

/// One second of the synthetic workload at 2000 IOPS.
func oneSecond() -> [CaptureRecord] {
    var o = SyntheticWorkload.Options()
    o.iops = 2000
    var w = SyntheticWorkload(options: o)
    return w.records(until: o.startNs + 1_000_000_000)
}

func drainAll(_ feed: RecordFeed, timeoutNs: UInt64 = 10_000_000_000) -> (count: Int, error: String?, elapsedNs: UInt64) {
    let start = TopRunner.monotonicNs()
    var count = 0
    while TopRunner.monotonicNs() - start < timeoutNs {
        let (records, finished, error) = feed.drain()
        count += records.count
        if finished { return (count + feed.drain().records.count, error, TopRunner.monotonicNs() - start) }
        usleep(5_000)
    }
    return (count, "timed out", TopRunner.monotonicNs() - start)
}

@Suite(.serialized) struct ProducerTests {
    @Test func replayAtTenTimesTakesATenthOfTheRecordedTime() {
        let records = oneSecond()
        let feed = RecordFeed()
        let box = UncheckedSendableBox<any RecordSource>(ArraySource(records: records))
        Thread.detachNewThread { ReplayProducer.run(&box.value, speed: 10, feed: feed) }
        let (count, error, elapsed) = drainAll(feed)
        #expect(count == records.count)
        #expect(error == nil)
        // About 100 ms of wall time for 1 s of records.
        #expect(elapsed >= 90_000_000 && elapsed < 1_000_000_000, "\(elapsed) ns")
    }

    @Test func replayAsFastAsPossibleAndAnErrorAtTheEnd() {
        let records = oneSecond()
        let feed = RecordFeed()
        let box = UncheckedSendableBox<any RecordSource>(ArraySource(records: records, failAtEnd: true))
        Thread.detachNewThread { ReplayProducer.run(&box.value, speed: nil, feed: feed) }
        let (count, error, elapsed) = drainAll(feed)
        #expect(count == records.count)
        #expect(error == "cutShort")
        #expect(elapsed < 1_000_000_000)
    }

    @Test func aPausedFeedHoldsTheReplay() {
        let feed = RecordFeed()
        feed.paused = true
        let box = UncheckedSendableBox<any RecordSource>(ArraySource(records: oneSecond()))
        Thread.detachNewThread { ReplayProducer.run(&box.value, speed: 100, feed: feed) }
        usleep(200_000)
        let held = feed.drain()
        #expect(held.records.count < 100)
        #expect(!held.finished)
        feed.paused = false
        let (count, _, _) = drainAll(feed)
        #expect(count + held.records.count == oneSecond().count)
    }

    @Test func theSyntheticProducerStopsWhenAsked() {
        let feed = RecordFeed()
        Thread.detachNewThread { SyntheticProducer.run(iops: 5000, feed: feed) }
        usleep(300_000)
        let first = feed.drain()
        #expect(first.records.count > 500)
        #expect(first.records.first?.kind == .deviceState)
        feed.requestStop()
        let (_, error, elapsed) = drainAll(feed)
        #expect(error == nil)
        #expect(elapsed < 1_000_000_000)
    }

    @Test func runTextPrintsUntilTheSourceEnds() {
        let feed = RecordFeed()
        let box = UncheckedSendableBox<any RecordSource>(ArraySource(records: oneSecond()))
        Thread.detachNewThread { ReplayProducer.run(&box.value, speed: nil, feed: feed) }
        var runner = TopRunner(source: "replay test")
        runner.delayNs = 50_000_000
        var analyzer = Analyzer()
        var screens: [String] = []
        let error = runner.runText(feed: feed, analyzer: &analyzer) { screens.append($0) }
        #expect(error == nil)
        #expect(!screens.isEmpty)
        #expect(screens.last?.hasPrefix("vqtap top  scsi0  replay test") == true)
        #expect(screens.last?.contains("end  t=1.000s") == true, "\(screens.last ?? "")")
        #expect(analyzer.transactionCount > 1900)
    }
}

final class UncheckedSendableBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// The feed's bounds and the loop's slices: a live view keeps its memory and its keys
/// whatever the source does.
@Suite(.serialized) struct FeedBoundsTests {
    static func records(iops: Double, seconds: Double) -> [CaptureRecord] {
        var o = SyntheticWorkload.Options()
        o.iops = iops
        var w = SyntheticWorkload(options: o)
        return w.records(until: o.startNs + UInt64(seconds * 1e9))
    }

    @Test func aLiveProducerLosesWhatAFullFeedCannotHoldAndTheLossIsCounted() {
        let all = oneSecond()
        let feed = RecordFeed(capacity: 10)
        #expect(feed.push(Array(all[0..<8]), wait: false))
        // Below capacity: the whole batch goes in, even past it.
        #expect(feed.push(Array(all[8..<13]), wait: false))
        // Full: skipped and counted.
        #expect(feed.push(Array(all[13..<16]), wait: false))
        #expect(feed.skipped == 3)
        let first = feed.take(upTo: 4)
        #expect(first.records.map(\.transactionID) == all[0..<4].map(\.transactionID))
        #expect(first.more && !first.finished)
        // Across batches, in order.
        let second = feed.take(upTo: 6)
        #expect(second.records.map(\.transactionID) == all[4..<10].map(\.transactionID))
        feed.finish()
        let rest = feed.take(upTo: 100)
        #expect(rest.records.map(\.transactionID) == all[10..<13].map(\.transactionID))
        #expect(rest.finished && !rest.more)
        #expect(feed.take(upTo: 100).records.isEmpty)
    }

    @Test func aBacklogIsAnalysedInSlicesAndTheLoopStaysResponsive() {
        // More records than a debug build analyses in the run: the loop must still look at
        // the keyboard (here: signals) often, refresh, and end on time.
        let backlog = Self.records(iops: 40_000, seconds: 2)
        let feed = RecordFeed(capacity: 1 << 22)
        feed.push(backlog, wait: false)
        var runner = TopRunner(source: "backlog")
        // 0.4 s: a debug build analyses 160,000 records in about a second.
        runner.delayNs = 100_000_000
        runner.durationNs = 400_000_000
        var analyzer = Analyzer()
        var screens: [String] = []
        let start = TopRunner.monotonicNs()
        _ = runner.runText(feed: feed, analyzer: &analyzer) { screens.append($0) }
        let elapsed = TopRunner.monotonicNs() - start
        #expect(elapsed < 1_000_000_000, "\(elapsed) ns")
        #expect(runner.stats.records > 0 && runner.stats.records < UInt64(backlog.count), "\(runner.stats.records) of \(backlog.count)")
        #expect(runner.stats.maxKeyGapNs < 250_000_000, "\(runner.stats.maxKeyGapNs) ns")
        #expect(runner.stats.frames >= 2 && screens.count == Int(runner.stats.frames))
        #expect(screens.last?.hasPrefix("vqtap top  scsi0  backlog") == true)
    }

    @Test func theOverviewSaysWhenTheViewSkipped() {
        var analyzer = Analyzer()
        for r in oneSecond() { analyzer.consume(r) }
        var snapshot = TopSnapshot(analyzer: analyzer, source: "live test")
        #expect(!TopRunner.overviewText(snapshot).contains("view skipped"))
        snapshot.viewSkipped = 1234
        let text = TopRunner.overviewText(snapshot)
        #expect(text.split(separator: "\n").contains { $0.hasPrefix("Capture  chains ") && $0.hasSuffix("view skipped 1234 records") }, "\(text)")
    }
}
