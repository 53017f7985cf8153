import Testing
import VQRecord
import VQWire
import VirtioSCSI
@testable import VQAnalysis

/// The in-place path (RecordView, decodeFast, Analyzer.consume(view)) and the value path
/// (Analyzer.consume(CaptureRecord): decodeFast over the record's segments) against the full
/// one (consumeDecodingFully).
@Suite struct FastPathTests {
    static func workload(milliseconds: UInt64) -> [CaptureRecord] {
        var o = SyntheticWorkload.Options()
        o.tmfEvery = 2_000
        o.eventEvery = 3_000
        var w = SyntheticWorkload(options: o)
        return w.records(until: o.startNs + milliseconds * 1_000_000)
    }

    static func consumeInPlace(_ a: inout Analyzer, _ r: CaptureRecord) {
        r.encoded.withUnsafeBytes { raw in
            if let view = RecordView(raw, timestampNs: r.timestampNs) { a.consume(view) } else { a.consume(r) }
        }
    }

    static func sameRows(_ a: Analyzer, _ b: Analyzer, window: Bool) {
        for g in Grouping.standard {
            let x = a.statistics.rows(g), y = b.statistics.rows(g)
            #expect(x.count == y.count)
            for (p, q) in zip(x, y) {
                #expect(p.key == q.key)
                #expect(p.count == q.count && p.errors == q.errors && p.bytesIn == q.bytesIn && p.bytesOut == q.bytesOut)
                #expect(p.latency == q.latency)
                #expect(p.inFlight == q.inFlight && p.inFlightMax == q.inFlightMax && p.inFlightMean == q.inFlightMean)
                if window { #expect(p.window.count == q.window.count && p.window.latency == q.window.latency) }
            }
        }
        #expect(a.statistics.combinedHistogram().buckets == b.statistics.combinedHistogram().buckets)
        #expect(a.statistics.combinedHistogram().summary == b.statistics.combinedHistogram().summary)
    }

    static func sameAnalysis(_ full: Analyzer, _ fast: Analyzer) {
        #expect(full.transactionCount > 5_000)
        #expect(full.transactionCount == fast.transactionCount)
        #expect(full.errorCount == fast.errorCount)
        #expect(full.findingCounts == fast.findingCounts)
        #expect(full.tmfCounts == fast.tmfCounts)
        #expect(full.eventCounts == fast.eventCounts)
        #expect(full.slowCompletions == fast.slowCompletions)
        #expect(full.matcher.health == fast.matcher.health)
        #expect(full.matcher.inFlight.keys.sorted() == fast.matcher.inFlight.keys.sorted())
        #expect(full.decoder.pendingCount == fast.decoder.pendingCount)
        #expect(full.log.elements.map(\.text) == fast.log.elements.map(\.text))
        Self.sameRows(full, fast, window: true)
    }

    @Test func theAnalysisIsTheSameFromRecordValues() {
        let records = Self.workload(milliseconds: 400)
        var full = Analyzer(), fast = Analyzer()
        for r in records {
            full.consumeDecodingFully(r)
            fast.consume(r)
        }
        Self.sameAnalysis(full, fast)
        // The transactions a view details decode as the full path decoded them.
        let a = full.recent.elements, b = fast.recent.elements
        #expect(a.count == 1000 && a.count == b.count)
        var detailed = 0
        for (x, y) in zip(a, b) {
            #expect(x.id == y.id && x.tag == y.tag && x.outcome == y.outcome && x.bytesIn == y.bytesIn && x.bytesOut == y.bytesOut)
            #expect(x.latencyNs == y.latencyNs && x.flags == y.flags && x.lba == y.lba && x.opcode == y.opcode)
            #expect(x.request?.summary == y.request?.summary)
            #expect(x.response?.summary == y.response?.summary)
            #expect(x.request?.fields == y.request?.fields)
            #expect(x.response?.fields == y.response?.fields)
            if y.request != nil { detailed += 1 }
        }
        #expect(detailed > 900)
        // Errors keep no decodes either way.
        #expect(full.errors.elements.allSatisfy { $0.detail == nil } && fast.errors.elements.allSatisfy { $0.detail == nil })
    }

    @Test func theValuePathFallsBackWhereTheFilePathDoes() {
        var quick = RecordDecoder(), inPlace = RecordDecoder()
        var counts: [String: Int] = [:]
        for r in Self.workload(milliseconds: 300) {
            let byValue = quick.decodeFast(r)
            let byView = r.encoded.withUnsafeBytes { raw in
                RecordView(raw, timestampNs: r.timestampNs).map { inPlace.decodeFast($0) } ?? .full
            }
            #expect(byValue == byView)
            counts["\(byValue)", default: 0] += 1
            if byValue == .full {
                _ = quick.decode(r)
                _ = inPlace.decode(r)
            } else {
                #expect(quick.response.status == inPlace.response.status && quick.response.payloadLength == inPlace.response.payloadLength)
                #expect(quick.command.id == inPlace.command.id && quick.command.payloadCaptured == inPlace.command.payloadCaptured)
            }
        }
        #expect(counts["full", default: 0] > 0 && counts["request", default: 0] > 1000, "\(counts)")
        #expect(quick.pendingCount == inPlace.pendingCount)
    }

    @Test func theAnalysisIsTheSameReadInPlace() {
        let records = Self.workload(milliseconds: 400)
        var full = Analyzer(), fast = Analyzer()
        for r in records {
            full.consumeDecodingFully(r)
            Self.consumeInPlace(&fast, r)
        }
        Self.sameAnalysis(full, fast)
    }

    @Test func withoutTheWindowTheTotalsAreTheSame() {
        var o = Analyzer.Options()
        o.statistics.window = false
        var with = Analyzer(), without = Analyzer(options: o)
        for r in Self.workload(milliseconds: 200) {
            with.consumeDecodingFully(r)
            without.consume(r)
        }
        Self.sameRows(with, without, window: false)
        #expect(without.statistics.rows(.device).allSatisfy { $0.window.count == 0 })
    }

    @Test func aViewOnlyOfWhatTheFullDecodeAccepts() throws {
        let records = Self.workload(milliseconds: 5).filter { !$0.segments.isEmpty }
        let record = try #require(records.first { $0.segments.count >= 2 })
        let bytes = record.encoded
        for n in 0...bytes.count {
            let prefix = Array(bytes.prefix(n))
            let decodes = (try? CaptureRecord(decoding: prefix)) != nil
            let viewed = prefix.withUnsafeBytes { RecordView($0, timestampNs: 0) != nil }
            #expect(!viewed || decodes, "prefix \(n)")
            if n == bytes.count { #expect(viewed) }
        }
        for (offset, value) in [(0, UInt8(0x57)), (4, 2), (5, 3), (5, 9), (6, 40)] {
            var bad = bytes
            bad[offset] = value
            #expect(bad.withUnsafeBytes { RecordView($0, timestampNs: 0) } == nil, "byte \(offset) = \(value)")
        }
        // A capture longer than its buffer.
        var long = bytes
        long[56 + 12] = 0xff
        #expect(long.withUnsafeBytes { RecordView($0, timestampNs: 0) } == nil)
        // The record back from a view is the record.
        let back = bytes.withUnsafeBytes { RecordView($0, timestampNs: record.timestampNs)?.record }
        #expect(back == record)
    }

    @Test func theTagTableIsADictionary() {
        var table = TagTable()
        var reference: [UInt64: UInt64] = [:]
        var rng: UInt64 = 0x9e37_79b9
        func next() -> UInt64 {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            return rng
        }
        func key(_ k: UInt64) -> TransactionMatcher.TagKey {
            TransactionMatcher.TagKey(device: UInt16(k & 1), lun: k & 2 == 0 ? nil : LUNAddress(target: 0, lun: UInt16(k & 4)),
                                      tag: 0xffff_8880_0000_0000 | k << 12)
        }
        for _ in 0..<50_000 {
            let k = next() % 4_000
            switch next() % 3 {
            case 0, 1:
                let v = next()
                #expect(table.updateValue(v, forKey: key(k)) == reference.updateValue(v, forKey: k))
            default:
                table.removeValue(forKey: key(k))
                reference[k] = nil
            }
        }
        #expect(reference.count > 500)
        for k in 0..<UInt64(4_000) { #expect(table[key(k)] == reference[k]) }
    }
}
