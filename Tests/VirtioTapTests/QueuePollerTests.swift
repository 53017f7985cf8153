import Testing
import VQRecord
import VirtioRing
@testable import VirtioTap

@Suite struct QueuePollerTests {
    @Test func aRequestAndItsCompletionArePairedWithLatency() throws {
        var rig = try PollerRig()
        #expect(try rig.attach(at: 500).isEmpty)
        try rig.post(head: 3, request: bytes(8))
        let first = try rig.poll(at: 1_000)
        #expect(first.count == 1)
        let request = try #require(first.first)
        #expect(request.kind == .available)
        #expect(request.head == 3)
        #expect(request.queue == 2)
        #expect(request.ringIndex == 0)
        #expect(request.timestampNs == 1_000)
        #expect(request.flags == [.indirect])
        #expect(request.segments.map(\.length) == [8, 16])
        #expect(request.segments[0].bytes == bytes(8))
        #expect(request.segments[1].bytes == [])
        #expect(request.segments[1].flags == 2 | RecordSegment.fromIndirectFlag)
        #expect(request.segments[0].address == PollerRig.readable(3))

        try rig.complete(head: 3, response: bytes(12, from: 0x40))
        let second = try rig.poll(at: 4_500)
        #expect(second.count == 1)
        let response = try #require(second.first)
        #expect(response.kind == .used)
        #expect(response.transactionID == request.transactionID)
        #expect(response.latencyNs == 3_500)
        #expect(response.usedLength == 12)
        #expect(response.segments[0].bytes == [])
        #expect(response.segments[1].bytes == bytes(12, from: 0x40))
        #expect(rig.poller.counters == TapCounters(captured: 2, torn: 0, orphan: 0, dropped: 0, malformed: 0))
        #expect(rig.poller.pendingChainCount == 0)
    }

    @Test func nothingNewMeansNoRecords() throws {
        var rig = try PollerRig()
        _ = try rig.attach()
        #expect(try rig.poll().isEmpty)
        #expect(rig.poller.counters == TapCounters())
    }

    @Test func indicesWrapFrom65535To0() throws {
        var rig = try PollerRig()
        try rig.writer.setIndices(avail: 65534, used: 65534)
        _ = try rig.attach()
        for h: UInt16 in 0..<4 { try rig.post(head: h, request: bytes(4, from: UInt8(h * 10))) }
        let posted = try rig.poll()
        #expect(posted.map(\.ringIndex) == [65534, 65535, 0, 1])
        #expect(posted.map(\.head) == [0, 1, 2, 3])
        #expect(posted.map { $0.segments[0].bytes } == [bytes(4, from: 0), bytes(4, from: 10), bytes(4, from: 20), bytes(4, from: 30)])
        for h: UInt16 in [2, 0, 3, 1] { try rig.complete(head: h, response: [UInt8(h)]) }
        let done = try rig.poll()
        #expect(done.map(\.head) == [2, 0, 3, 1])
        #expect(done.map(\.ringIndex) == [65534, 65535, 0, 1])
        #expect(done.map { $0.segments[1].bytes } == [[2], [0], [3], [1]])
        #expect(zip(done, [posted[2], posted[0], posted[3], posted[1]]).allSatisfy { $0.transactionID == $1.transactionID })
        #expect(rig.poller.counters == TapCounters(captured: 8, torn: 0, orphan: 0, dropped: 0, malformed: 0))
        #expect(rig.poller.lastAvail == 2 && rig.poller.lastUsed == 2)
    }

    @Test func aLappedRingIsADropWithItsExactCount() throws {
        var rig = try PollerRig(size: 8)
        _ = try rig.attach()
        // 20 chains go by between two polls, each completed at once, heads in turn.
        for k: UInt16 in 0..<20 {
            let h = k % 8
            try rig.post(head: h, request: [UInt8(k)])
            try rig.complete(head: h, response: [UInt8(k)])
        }
        let records = try rig.pollReleasingHeld()
        let drops = records.filter { $0.kind == .drop }
        #expect(drops.map(\.dropReason) == [.availableLapped, .usedLapped])
        // The ring keeps 8 entries; the oldest of them shares its slot with the next write.
        #expect(drops.map(\.dropCount) == [13, 13])
        let available = records.filter { $0.kind == .available }
        let used = records.filter { $0.kind == .used }
        #expect(available.map(\.ringIndex) == Array(13..<20))
        #expect(available.map { $0.segments[0].bytes } == (13..<20).map { [UInt8($0)] })
        #expect(used.map { $0.segments[1].bytes } == (13..<20).map { [UInt8($0)] })
        #expect(zip(available, used).allSatisfy { $0.transactionID == $1.transactionID })
        // The lost postings may have reused the response buffers: completions read in the
        // same poll cannot be trusted.
        #expect(used.allSatisfy { $0.flags.contains(.torn) })
        #expect(rig.poller.counters == TapCounters(captured: 7, torn: 7, orphan: 0, dropped: 26, malformed: 0))
        // Every chain accounted for: 20 requests and 20 completions.
        let c = rig.poller.counters
        #expect(c.captured + c.dropped + c.torn == 40)
    }

    @Test func aHeadRepostedBeforeTheCopyIsTorn() throws {
        var rig = try PollerRig()
        _ = try rig.attach()
        try rig.post(head: 5, request: [1, 1, 1, 1])
        try rig.complete(head: 5, response: [0xa])
        try rig.post(head: 5, request: [2, 2, 2, 2])
        let records = try rig.poll()
        #expect(records.map(\.kind) == [.available, .available, .used])
        // Both postings read the second request's bytes: the first is torn, its completion too.
        #expect(records[0].flags.contains(.torn))
        #expect(records[0].segments[0].bytes == [2, 2, 2, 2])
        #expect(!records[1].flags.contains(.torn))
        #expect(records[1].segments[0].bytes == [2, 2, 2, 2])
        #expect(records[2].flags.contains(.torn))
        #expect(records[2].transactionID == records[0].transactionID)
        #expect(rig.poller.counters == TapCounters(captured: 1, torn: 2, orphan: 0, dropped: 0, malformed: 0))
        // The second posting stays pending and pairs with the next completion.
        try rig.complete(head: 5, response: [0xb])
        let next = try rig.poll()
        #expect(next.count == 1)
        #expect(next[0].transactionID == records[1].transactionID)
        #expect(next[0].segments[1].bytes == [0xb])
        #expect(!next[0].flags.contains(.torn))
    }

    @Test func aCompletionWhoseBuffersTheDeviceReusedIsTorn() throws {
        var rig = try PollerRig()
        _ = try rig.attach()
        try rig.post(head: 1, request: [1])
        _ = try rig.poll()
        try rig.complete(head: 1, response: [0xa])
        try rig.post(head: 1, request: [2])
        try rig.complete(head: 1, response: [0xb])
        let records = try rig.pollReleasingHeld()
        #expect(records.map(\.kind) == [.available, .used, .used])
        #expect(records[1].flags.contains(.torn))
        #expect(records[1].segments[1].bytes == [0xb])
        #expect(!records[2].flags.contains(.torn))
        // The reposting was copied intact: its head was not posted again.
        #expect(!records[0].flags.contains(.torn))
        #expect(rig.poller.counters == TapCounters(captured: 3, torn: 1, orphan: 0, dropped: 0, malformed: 0))
    }

    /// Posted and returned between two polls, no later posting uses its buffers and they
    /// still hold what was copied. 10 us after the previous poll: held until its header's
    /// next posting, which differs: intact. 100 us after: the driver may have written a reuse
    /// into the buffers and not posted it yet (preempted mid-post, or out of descriptors);
    /// nothing says it did: captured, flagged late at once, the completion too.
    @Test(arguments: [(11_000 as UInt64, false), (101_000, true)])
    func aReturnedChainWithItsBuffersUnchangedIsLateWhenCopiedLate(pollAt: UInt64, late: Bool) throws {
        var rig = try PollerRig()
        _ = try rig.attach(at: 1_000)
        try rig.post(head: 2, request: [1])
        try rig.post(head: 3, request: [1])
        try rig.complete(head: 2, response: [2])
        let first = try rig.poll(at: pollAt)
        #expect(first.count == (late ? 3 : 0))
        try rig.post(head: 2, request: [5])
        let records = first + (try rig.poll(at: pollAt + 1_000))
        #expect(records.map(\.head) == [2, 3, 2, 2])
        #expect(records.map { $0.flags.contains(.torn) } == [false, false, false, false])
        #expect(records.map { $0.flags.contains(.late) } == [late, false, late, false])
        #expect(records[0].flags.names == (late ? ["indirect", "late"] : ["indirect"]))
        #expect(records[2].segments[1].bytes == [2])
        #expect(rig.poller.counters == TapCounters(captured: 4, torn: 0, orphan: 0, dropped: 0, malformed: 0))
    }

    /// Posted, returned, reaped and its header rewritten for the driver's next request, all
    /// within the trust window and before the tap copied it: the copy holds the next
    /// request's bytes. Its records wait for that next posting; its header equals the copy,
    /// so the copy and its completion are flagged late, and the posting after is intact.
    @Test func aCopyEqualToTheNextPostingOfItsHeaderIsLate() throws {
        var rig = try PollerRig()
        _ = try rig.attach(at: 1_000)
        #expect(try rig.returnedBeforeItsCopy(head: 1, request: [1, 1, 1, 1], response: [0xa], rewrite: [2, 2, 2, 2],
                                              pollAt: 3_000).isEmpty)
        try rig.post(head: 1, request: [2, 2, 2, 2])
        let records = try rig.poll(at: 5_000)
        #expect(records.map(\.kind) == [.available, .used, .available])
        #expect(records.map { $0.flags.contains(.late) } == [true, true, false])
        #expect(records[0].segments[0].bytes == [2, 2, 2, 2])
        #expect(records[1].transactionID == records[0].transactionID)
        #expect(rig.poller.counters == TapCounters(captured: 3, torn: 0, orphan: 0, dropped: 0, malformed: 0))
    }

    /// The same, but the copy was the request's own bytes: the next posting's header differs,
    /// and nothing is flagged. Its records come out with the next posting's, in ring order.
    @Test func aCopyThatDiffersFromTheNextPostingOfItsHeaderIsIntact() throws {
        var rig = try PollerRig()
        _ = try rig.attach(at: 1_000)
        #expect(try rig.returnedBeforeItsCopy(head: 1, request: [1, 1, 1, 1], response: [0xa], pollAt: 3_000).isEmpty)
        // Held behind the first: the order of the queue's records stays.
        #expect(try rig.returnedBeforeItsCopy(head: 3, request: [3], response: [0xc], pollAt: 4_000).isEmpty)
        try rig.post(head: 1, request: [2, 2, 2, 2])
        let first = try rig.poll(at: 5_000)
        #expect(first.map(\.head) == [1, 1])
        #expect(first[0].segments[0].bytes == [1, 1, 1, 1])
        // The second chain's verdict waits for its own buffer's next posting.
        try rig.post(head: 3, request: [4])
        let rest = try rig.poll(at: 6_000)
        #expect(rest.map(\.head) == [3, 3, 1, 3])
        #expect(rest.map(\.kind) == [.available, .used, .available, .available])
        let records = first + rest
        #expect(records.allSatisfy { !$0.flags.contains(.late) && !$0.flags.contains(.torn) })
        #expect(rig.poller.counters == TapCounters(captured: 6, torn: 0, orphan: 0, dropped: 0, malformed: 0))
    }

    /// Two fast reuses in a row: each copy holds the next request's header, and the next
    /// posting's copy is itself held. Judged in turn once a copy is proved (the third
    /// posting, not yet returned): the second equals it, so it is late, and so is the first,
    /// which waited on the second. Without the chain the first would have been judged by an
    /// unproved copy (the third request's header, not the second's) and called intact.
    @Test(arguments: [true, false])
    func heldVerdictsWaitOnTheNextPostingsVerdict(rewritten: Bool) throws {
        var rig = try PollerRig()
        _ = try rig.attach(at: 1_000)
        #expect(try rig.returnedBeforeItsCopy(head: 1, request: [1, 1, 1, 1], response: [0xa],
                                              rewrite: rewritten ? [2, 2, 2, 2] : nil, pollAt: 3_000).isEmpty)
        #expect(try rig.returnedBeforeItsCopy(head: 1, request: [2, 2, 2, 2], response: [0xb],
                                              rewrite: rewritten ? [3, 3, 3, 3] : nil, pollAt: 5_000).isEmpty)
        try rig.post(head: 1, request: [3, 3, 3, 3])
        let records = try rig.poll(at: 7_000)
        #expect(records.map(\.kind) == [.available, .used, .available, .used, .available])
        #expect(records.map { $0.flags.contains(.late) } == [rewritten, rewritten, rewritten, rewritten, false])
        #expect(records.map { $0.segments[0].bytes.first } == (rewritten ? [2, nil, 3, nil, 3] : [1, nil, 2, nil, 3]))
    }

    /// A returned chain whose header buffer two later postings used before the tap looked
    /// again: its copy may hold the first reuse's bytes, which neither the buffer now nor
    /// the latest posting shows. Torn.
    @Test func aCopyOfABufferReusedTwiceIsTorn() throws {
        let rig = try PollerRig()
        try rig.post(head: 1, request: [1])
        try rig.complete(head: 1, response: [0xa])
        try rig.post(head: 2, request: [2], buffersOf: 1)
        // Right after the tap copies the first chain (the second's bytes): the second is
        // returned and the third posted in the same buffer.
        let memory = RewritingMemory(inner: rig.memory, target: PollerRig.readable(1)) {
            try rig.writer.publishUsed(id: 2, len: 1)
            try rig.post(head: 3, request: [3], buffersOf: 1)
        }
        var poller = QueuePoller(memory: memory, layout: rig.ring, config: QueueCaptureConfig(queue: 2, readableHeader: 4, writableHeader: 4))
        var out: [CaptureRecord] = []
        try poller.poll(clock: TapClock(frozenAt: 1), into: &out)
        poller.releaseAllHeld(into: &out)
        #expect(out.first?.segments[0].bytes == [2])
        #expect(out.first?.flags.contains(.torn) == true)
        #expect(poller.tornReasons.counts[TornReasons.Reason.headerReusedTwice.rawValue] == 1)
    }

    /// The buffer's next posting went by in a lapped ring: the first one seen after it is a
    /// later one, whose header differing from the copy proves nothing. Late.
    @Test func aHeldVerdictAcrossADropIsLate() throws {
        var rig = try PollerRig(size: 8)
        _ = try rig.attach(at: 1_000)
        #expect(try rig.returnedBeforeItsCopy(head: 1, request: [1, 1, 1, 1], response: [0xa], rewrite: [2, 2, 2, 2],
                                              pollAt: 3_000).isEmpty)
        try rig.post(head: 1, request: [2, 2, 2, 2])
        try rig.complete(head: 1, response: [0xb])
        for k: UInt16 in 0..<10 {
            try rig.post(head: 2 + k % 6, request: [9])
            try rig.complete(head: 2 + k % 6, response: [9])
        }
        try rig.post(head: 1, request: [3, 3, 3, 3])
        let records = try rig.poll(at: 5_000)
        #expect(records.first?.ringIndex == 0)
        #expect(records.first?.segments[0].bytes == [2, 2, 2, 2])
        #expect(records.prefix(2).map { $0.flags.contains(.late) } == [true, true])
        #expect(records.contains { $0.kind == .drop })
    }

    /// No next posting of the header within the hold time (the guest went idle, or the
    /// driver was preempted between rewriting the header and posting it): the records come
    /// out on a poll that found nothing new, flagged late: nothing proved the copy.
    @Test func aHeldVerdictSettlesLateWhenItsTimeIsUp() throws {
        var rig = try PollerRig()
        _ = try rig.attach(at: 1_000)
        #expect(try rig.returnedBeforeItsCopy(head: 1, request: [1, 1, 1, 1], response: [0xa], pollAt: 3_000).isEmpty)
        #expect(try rig.poll(at: 5_000_000).isEmpty)
        let records = try rig.poll(at: 3_000 + 10_000_000)
        #expect(records.map(\.kind) == [.available, .used])
        #expect(records.allSatisfy { $0.flags.names == ["indirect", "late"] })
        #expect(rig.poller.counters == TapCounters(captured: 2, torn: 0, orphan: 0, dropped: 0, malformed: 0))
    }

    @Test func aChainReturnedBeforeTheFirstPollOfAFreshStartIsFlaggedLate() throws {
        // After a reset the rings start at 0 and the tap attaches when it learns the driver
        // is ready, milliseconds later: what was returned by then may have been reused at
        // any time, however soon the first poll comes.
        var rig = try PollerRig()
        rig.poller.startFresh()
        try rig.post(head: 2, request: [1])
        try rig.complete(head: 2, response: [2])
        try rig.post(head: 3, request: [1])
        let records = try rig.poll(at: 1_000)
        #expect(records.map(\.head) == [2, 3, 2])
        #expect(records.map { $0.flags.contains(.late) } == [true, false, true])
        #expect(records.map { $0.flags.contains(.torn) } == [false, false, false])
        // From then on the previous poll bounds when a reuse could start.
        try rig.post(head: 4, request: [1])
        try rig.complete(head: 4, response: [3])
        #expect(try rig.poll(at: 2_000).isEmpty)
        try rig.post(head: 4, request: [2])
        #expect(try rig.poll(at: 3_000).map { $0.flags.contains(.late) } == [false, false, false])
    }

    /// SeaBIOS builds each request on its stack: the next request's header lands where the
    /// previous response was. Posts a direct chain with its buffers at `readable`/`writable`.
    func postAt(_ rig: PollerRig, head: UInt16, readable: UInt64, request: [UInt8], writable: UInt64) throws {
        try rig.memory.writeBytes(readable, request)
        try rig.writer.writeDirectChain([.init(addr: readable, len: UInt32(request.count)),
                                         .init(addr: writable, len: 16, writable: true)], indices: [head, head + 4])
        try rig.writer.publishAvail(head)
    }

    @Test(arguments: [(10_000 as UInt64, false), (100_000, true)])
    func aResponseALaterRequestWasWrittenOverIsTornWhenReadLate(after: UInt64, torn: Bool) throws {
        var rig = try PollerRig()
        _ = try rig.attach(at: 1_000)
        try postAt(rig, head: 0, readable: 0x20000, request: [1, 1, 1, 1], writable: 0x20010)
        _ = try rig.poll(at: 2_000)
        try rig.memory.writeBytes(0x20010, [0xaa, 0xaa, 0xaa, 0xaa])
        try rig.writer.publishUsed(id: 0, len: 4)
        // The driver saw the completion and built the next request over its response.
        try postAt(rig, head: 1, readable: 0x20012, request: [2, 2, 2, 2], writable: 0x20030)
        let records = try rig.poll(at: 2_000 + after)
        #expect(records.map(\.kind) == [.available, .used])
        #expect(records[1].segments[1].bytes == [0xaa, 0xaa, 2, 2])
        #expect(records[1].flags.contains(.torn) == torn)
        #expect(rig.poller.tornReasons.counts[TornReasons.Reason.responseOverwritten.rawValue] == (torn ? 1 : 0))
    }

    @Test func aReturnedChainWhoseHeaderALaterPostingRewroteIsTorn() throws {
        // Linux and the simulator reuse header buffers per tag, heads apart: head 3 carries
        // the next request in head 2's buffers before the tap copied head 2.
        var rig = try PollerRig()
        _ = try rig.attach()
        try rig.post(head: 2, request: [1])
        try rig.complete(head: 2, response: [2])
        try rig.post(head: 3, request: [9], buffersOf: 2)
        let records = try rig.poll()
        #expect(records.map(\.head) == [2, 3, 2])
        #expect(records[0].segments[0].bytes == [9])
        #expect(records.map { $0.flags.contains(.torn) } == [true, false, true])
        #expect(rig.poller.counters == TapCounters(captured: 1, torn: 2, orphan: 0, dropped: 0, malformed: 0))
    }

    @Test func aReturnedChainCopiedBeforeItsBuffersWereReusedIsIntact() throws {
        let rig = try PollerRig()
        try rig.post(head: 2, request: [1])
        try rig.complete(head: 2, response: [2])
        // Right after the tap copies head 2's header, the driver writes the next request
        // there and posts it on head 3.
        let memory = RewritingMemory(inner: rig.memory, target: PollerRig.readable(2)) {
            try rig.post(head: 3, request: [9], buffersOf: 2)
        }
        let records = try Self.pollOnce(memory, rig.ring)
        #expect(records.map(\.head) == [2, 2])
        #expect(records[0].segments[0].bytes == [1])
        // The request was copied in time; the response was read after head 3 was posted in
        // the same buffers, which the driver may have prepared: that half is torn.
        #expect(records.map { $0.flags.contains(.torn) } == [false, true])
        #expect(memory.rewrites == 1)
    }

    /// The rule every other verdict falls back from: a chain the device had not returned
    /// at the load of used.idx that follows its copy was copied whole, even when it is
    /// returned and its head reposted, with a new request in its buffer, before the poll ends.
    @Test(arguments: [(3, false), (2, true)])
    func aChainOutstandingAtTheLoadAfterItsCopyIsIntact(load: Int, torn: Bool) throws {
        let rig = try PollerRig()
        try rig.post(head: 2, request: [1])
        // Loads of used.idx in a poll: the first, the one after reading the entries, then
        // one after each chain's copy. After the third (or, torn, the second: before the
        // copy), the device answers and the driver reposts head 2 with its next request.
        let memory = ScriptedMemory(inner: rig.memory, index: rig.ring.usedIdxAddress, actions: [load: {
            try rig.complete(head: 2, response: [2])
            try rig.post(head: 2, request: [9])
        }])
        let records = try Self.pollOnce(memory, rig.ring)
        #expect(memory.ran == 1)
        #expect(records.first?.kind == .available)
        #expect(records.first?.segments[0].bytes == (torn ? [9] : [1]))
        #expect(records.first?.flags.contains(.torn) == torn)
    }

    /// A stale pending chain of the same head (its completion lost when the used ring
    /// lapped) takes the completion of the head's next posting when completions are matched
    /// to pending chains; the rule above counts the used entries themselves, so that posting,
    /// returned and reposted with the next request's bytes before the poll, is still torn.
    @Test func aChainReturnedInTheBatchIsNotOutstandingWhateverThePendingChainsSay() throws {
        var rig = try Self.aStalePostingOfHead2()
        // Posted, returned and reposted with the next request's header, all before the poll.
        try rig.post(head: 2, request: [2])
        try rig.complete(head: 2, response: [0xb])
        try rig.post(head: 2, request: [3])
        let records = try rig.pollReleasingHeld()
        let first = records.first { $0.kind == .available }
        #expect(first?.segments[0].bytes == [3])
        #expect(first?.flags.contains(.torn) == true)
    }

    /// Head 2 posted, seen, then returned while eight orphan returns lap the used ring: the
    /// return is lost and the posting stays pending, stale.
    static func aStalePostingOfHead2() throws -> PollerRig {
        var rig = try PollerRig(size: 8)
        _ = try rig.attach()
        try rig.post(head: 2, request: [1])
        _ = try rig.poll()
        try rig.complete(head: 2, response: [0xa])
        for _ in 0..<8 { try rig.writer.publishUsed(id: 5, len: 1) }
        let lapped = try rig.poll()
        #expect(lapped.contains { $0.dropReason == .usedLapped })
        return rig
    }

    @Test func aChainWhoseReturnAStalePendingChainTookIsJudgedAsReturned() throws {
        var rig = try Self.aStalePostingOfHead2()
        // Posted and returned; the driver writes the next request into its header buffer
        // and posts it with another head, all before the poll. The return of head 2 goes
        // to the stale posting: the copy of [3] must not pass as request [2].
        try rig.post(head: 2, request: [2])
        try rig.complete(head: 2, response: [0xb])
        try rig.post(head: 4, request: [3], buffersOf: 2)
        let records = try rig.pollReleasingHeld()
        let first = records.first { $0.kind == .available && $0.head == 2 }
        #expect(first?.segments[0].bytes == [3])
        #expect(first?.flags.contains(.torn) == true)
        #expect(rig.poller.tornReasons.counts[TornReasons.Reason.copyIsTheReuse.rawValue] == 1)
    }

    @Test func aChainWhoseReturnAWrongAttachGuessTookIsJudgedAsReturned() throws {
        var rig = try PollerRig(size: 8)
        // Returned out of order before attach: the attach snapshot guesses head 3, the last
        // posting, outstanding; it is head 2 that is.
        try rig.post(head: 2, request: [1])
        try rig.post(head: 3, request: [1])
        try rig.complete(head: 3, response: [0xa])
        let attached = try rig.attach()
        #expect(attached.map(\.head) == [3])
        try rig.post(head: 3, request: [2])
        try rig.complete(head: 3, response: [0xb])
        try rig.post(head: 4, request: [3], buffersOf: 3)
        let records = try rig.pollReleasingHeld()
        let first = records.first { $0.kind == .available && $0.head == 3 }
        #expect(first?.segments[0].bytes == [3])
        #expect(first?.flags.contains(.torn) == true)
    }

    /// The poll's last reads (the entries published while it copied, which say whether a
    /// chain was returned or reposted) come after its last index loads: rings lapped in
    /// between hold other entries by then, and the batch cannot be judged.
    @Test(arguments: [false, true])
    func ringsThatLapWhileTheVerdictReadsThemLeaveTheBatchTorn(lap: Bool) throws {
        let rig = try PollerRig(size: 8)
        try rig.post(head: 2, request: [1])
        let memory = ScriptedMemory(inner: rig.memory, index: rig.ring.availIdxAddress, actions: [
            // After the reload that follows the entries: returned and reposted before the copy.
            2: { try rig.complete(head: 2, response: [2]); try rig.post(head: 2, request: [9]) },
            // After the loads that close the poll: both rings lap with another head.
            3: { if lap { for _ in 0..<8 { try rig.post(head: 5, request: [5]); try rig.complete(head: 5, response: [5]) } } }])
        let records = try Self.pollOnce(memory, rig.ring)
        #expect(memory.ran == 2)
        let first = records.first { $0.kind == .available }
        #expect(first?.segments[0].bytes == [9])
        #expect(first?.flags.contains(.torn) == true)
    }

    @Test func aRingThatLapsBeforeTheLaterPostingsAreReadLeavesTheCopyTorn() throws {
        let rig = try PollerRig(size: 8)
        try rig.post(head: 2, request: [1])
        let memory = ScriptedMemory(inner: rig.memory, index: rig.ring.availIdxAddress, actions: [
            // Returned before the copy, and the next request posted in its header buffer.
            2: { try rig.complete(head: 2, response: [2]); try rig.post(head: 4, request: [9], buffersOf: 2) },
            // After the poll's last loads, before it reads who uses that buffer: a lap.
            4: { for _ in 0..<8 { try rig.post(head: 5, request: [5]); try rig.complete(head: 5, response: [5]) } }])
        var poller = QueuePoller(memory: memory, layout: rig.ring,
                                 config: QueueCaptureConfig(queue: 2, readableHeader: 4, writableHeader: 4))
        var records: [CaptureRecord] = []
        try poller.poll(clock: TapClock(frozenAt: 1), into: &records)
        #expect(memory.ran == 2)
        let first = records.first { $0.kind == .available }
        #expect(first?.segments[0].bytes == [9])
        #expect(first?.flags.contains(.torn) == true)
        #expect(poller.tornReasons.counts[TornReasons.Reason.laterPostingsUnknown.rawValue] == 1)
    }

    /// A posting reposted before the tap walked it is seen with its repost's descriptors:
    /// the buffers it really used are unknown, and one of them may be an earlier chain's
    /// header buffer, so nothing after it proves that chain's copy.
    @Test func aPostingWhoseBuffersWentUnseenProvesNoEarlierCopy() throws {
        var rig = try PollerRig(size: 8)
        _ = try rig.attach()
        // Request [1] posted and returned; the driver writes request [2] into its header
        // buffer and posts it with head 2, which is returned and reposted with another
        // buffer, all before the poll: the copy of [1] reads [2].
        try rig.post(head: 1, request: [1])
        try rig.complete(head: 1, response: [0xa])
        try rig.post(head: 2, request: [2], buffersOf: 1)
        try rig.complete(head: 2, response: [0xb])
        try rig.post(head: 2, request: [3], buffersOf: 3)
        var records = try rig.poll()
        // The header buffer's next posting that the tap sees, with other bytes.
        try rig.post(head: 1, request: [4])
        records += try rig.pollReleasingHeld()
        let first = records.first { $0.kind == .available && $0.head == 1 }
        #expect(first?.segments[0].bytes == [2])
        #expect(first?.flags.isDisjoint(with: [.torn, .late]) == false)
    }

    @Test func aChainPostedInAPollThatLostReturnsIsJudgedAsReturned() throws {
        var rig = try PollerRig(size: 8)
        _ = try rig.attach()
        // Posted and returned, eight orphan returns lap the used ring, and the driver writes
        // the next request into the header buffer and posts it with another head, all
        // before the poll: the return is lost with the lap.
        try rig.post(head: 2, request: [2])
        try rig.complete(head: 2, response: [0xb])
        for _ in 0..<8 { try rig.writer.publishUsed(id: 5, len: 1) }
        try rig.post(head: 4, request: [3], buffersOf: 2)
        let records = try rig.pollReleasingHeld()
        #expect(records.contains { $0.dropReason == .usedLapped })
        let first = records.first { $0.kind == .available && $0.head == 2 }
        #expect(first?.segments[0].bytes == [3])
        #expect(first?.flags.contains(.torn) == true)
    }

    @Test func aReturnedChainWhoseBufferChangesWithoutARepostIsTorn() throws {
        let rig = try PollerRig()
        try rig.post(head: 2, request: [1])
        try rig.complete(head: 2, response: [2])
        // The driver is writing the next request into the buffer and has not posted it.
        let memory = RewritingMemory(inner: rig.memory, target: PollerRig.readable(2)) {
            try rig.memory.writeBytes(PollerRig.readable(2), [9])
        }
        let records = try Self.pollOnce(memory, rig.ring)
        #expect(records.map(\.head) == [2, 2])
        #expect(records.map { $0.flags.contains(.torn) } == [true, true])
    }

    /// Head 1 seen posted, then returned with response [0xa], and the next request posted
    /// (head 4) in the same buffers, all before the tap looks again.
    static func aLaterPostingInTheResponseBuffer() throws -> PollerRig {
        var rig = try PollerRig()
        _ = try rig.attach()
        try rig.post(head: 1, request: [1])
        _ = try rig.poll()
        try rig.complete(head: 1, response: [0xa])
        try rig.post(head: 4, request: [2], buffersOf: 1)
        return rig
    }

    @Test func aCompletionWhoseResponseBufferALaterPostingUsesIsLateUntilTheDeviceAnswersIt() throws {
        // The device has not answered the later posting yet, so the bytes are the first
        // answer's unless the driver itself wrote there: late.
        var rig = try Self.aLaterPostingInTheResponseBuffer()
        let records = try rig.poll()
        #expect(records.map(\.kind) == [.available, .used])
        #expect(records.map { $0.flags.contains(.torn) } == [false, false])
        #expect(records.map { $0.flags.contains(.late) } == [false, true])
        #expect(records[1].segments[1].bytes == [0xa])
        #expect(rig.poller.counters == TapCounters(captured: 3, torn: 0, orphan: 0, dropped: 0, malformed: 0))
    }

    @Test func aCompletionWhoseResponseBufferTheDeviceAnsweredAgainIsTorn() throws {
        // The later posting in the same buffers was answered too before the tap looked:
        // what the buffer holds may be the second answer.
        var rig = try Self.aLaterPostingInTheResponseBuffer()
        try rig.memory.writeBytes(PollerRig.writable(1), [0xb])
        try rig.writer.publishUsed(id: 4, len: 1)
        let records = try rig.pollReleasingHeld()
        #expect(records.map(\.kind) == [.available, .used, .used])
        #expect(records.map { $0.flags.contains(.torn) } == [false, true, false])
        #expect(records[1].segments[1].bytes == [0xb])
        #expect(rig.poller.tornReasons.counts[TornReasons.Reason.responseReused.rawValue] == 1)
    }

    @Test func aCompletionWhoseBytesALaterPostingsDataOutCoversIsTorn() throws {
        var rig = try PollerRig()
        _ = try rig.attach()
        try postAt(rig, head: 0, readable: 0x20000, request: [1, 1, 1, 1], writable: 0x20100)
        _ = try rig.poll()
        try rig.memory.writeBytes(0x20100, [0xaa, 0xaa, 0xaa, 0xaa])
        try rig.writer.publishUsed(id: 0, len: 4)
        // The next request reuses the response buffer and puts its data-out over it.
        try rig.memory.writeBytes(0x20100, [3, 3, 3, 3])
        try rig.writer.writeDirectChain([.init(addr: 0x20040, len: 4), .init(addr: 0x20100, len: 4),
                                         .init(addr: 0x20100, len: 16, writable: true)], indices: [1, 5, 6])
        try rig.writer.publishAvail(1)
        let records = try rig.poll()
        #expect(records.map(\.kind) == [.available, .used])
        #expect(records[1].flags.contains(.torn))
        #expect(records[1].segments[1].bytes == [3, 3, 3, 3])
    }

    static func pollOnce<M: GuestMemory>(_ memory: M, _ ring: SplitQueueLayout) throws -> [CaptureRecord] {
        var poller = QueuePoller(memory: memory, layout: ring,
                                 config: QueueCaptureConfig(queue: 2, readableHeader: 4, writableHeader: 4))
        var out: [CaptureRecord] = []
        try poller.poll(clock: TapClock(frozenAt: 1), into: &out)
        return out
    }

    @Test func aCompletionOfAnUnseenRequestIsAnOrphan() throws {
        var rig = try PollerRig()
        _ = try rig.attach()
        try rig.writer.writeDirectChain([.init(addr: PollerRig.writable(6), len: 8, writable: true)], indices: [6])
        try rig.complete(head: 6, response: bytes(8))
        let records = try rig.poll()
        #expect(records.count == 1)
        #expect(records[0].kind == .used)
        #expect(records[0].flags == [.orphan])
        #expect(records[0].head == 6)
        #expect(records[0].latencyNs == 0)
        #expect(records[0].segments.first?.bytes == bytes(8))
        #expect(rig.poller.counters == TapCounters(captured: 0, torn: 0, orphan: 1, dropped: 0, malformed: 0))
    }

    @Test func attachingMidFlightSnapshotsWhatIsOutstanding() throws {
        var rig = try PollerRig()
        try rig.post(head: 0, request: [9])
        try rig.post(head: 1, request: [7, 7])
        try rig.postWritable(head: 2, length: 16)
        try rig.complete(head: 0, response: [1])
        let attached = try rig.attach(at: 2_000)
        // avail.idx - used.idx = 2: the last two entries, an eventq-like buffer included.
        #expect(attached.map(\.head) == [1, 2])
        #expect(attached.allSatisfy { $0.kind == .available && $0.flags.contains(.preAttach) })
        #expect(attached[0].segments[0].bytes == [7, 7])
        #expect(attached[1].segments.map(\.length) == [16])
        #expect(attached.allSatisfy { $0.timestampNs == 2_000 })
        try rig.complete(head: 2, response: bytes(16, from: 0x80))
        try rig.complete(head: 1, response: [3])
        let done = try rig.poll(at: 5_000)
        #expect(done.map(\.head) == [2, 1])
        #expect(done.allSatisfy { $0.flags.contains(.preAttach) && !$0.flags.contains(.orphan) })
        #expect(done[0].segments[0].bytes == bytes(16, from: 0x80))
        #expect(done[0].transactionID == attached[1].transactionID)
        #expect(done[0].latencyNs == 3_000)
        #expect(rig.poller.counters == TapCounters(captured: 4, torn: 0, orphan: 0, dropped: 0, malformed: 0))
    }

    @Test func snapLengthCutsPayloadOnlyAndKeepsOriginalLengths() throws {
        var rig = try PollerRig(readableHeader: 4, writableHeader: 3, snaplen: 2)
        _ = try rig.attach()
        try rig.post(head: 0, request: bytes(10), responseLength: 12)
        let posted = try rig.poll()
        #expect(posted[0].segments[0].bytes == bytes(6))
        #expect(posted[0].segments[0].length == 10)
        #expect(posted[0].flags.contains(.snaplenTruncated))
        try rig.complete(head: 0, response: bytes(12, from: 0x20), usedLength: 9)
        let done = try rig.poll()
        #expect(done[0].segments[1].bytes == bytes(5, from: 0x20))
        #expect(done[0].segments[1].length == 12)
        #expect(done[0].flags.contains(.snaplenTruncated))

        var whole = try PollerRig(readableHeader: 4, writableHeader: 3, snaplen: 0)
        _ = try whole.attach()
        try whole.post(head: 0, request: bytes(10), responseLength: 12)
        let all = try whole.poll()
        #expect(all[0].segments[0].bytes == bytes(10))
        #expect(!all[0].flags.contains(.snaplenTruncated))
    }

    /// `-s 0` keeps everything up to what a pcapng record holds: a chain of 8 descriptors
    /// over the same 1 MiB of RAM is not copied 8 times.
    @Test func everythingIsBoundedByWhatAFileRecordHolds() throws {
        var rig = try PollerRig(readableHeader: 4, writableHeader: 4, snaplen: 0,
                                memory: InMemoryGuestMemory(gpa: 0, size: 16 << 20))
        _ = try rig.attach()
        let huge = (0..<8).map { _ in SplitRingWriter<InMemoryGuestMemory>.Buffer(addr: 0x10_0000, len: 1 << 20) }
        try rig.writer.writeIndirectChain(huge, at: 0, tableAddr: PollerRig.table(0))
        try rig.writer.publishAvail(0)
        let r = try rig.poll()
        #expect(r.count == 1)
        #expect(r[0].segments.count == 8)
        #expect(r[0].segments.capturedTotal == 262_144)
        #expect(r[0].segments.captured(0) == 262_144 && r[0].segments.captured(1) == 0)
        #expect(r[0].segments.length(7) == 1 << 20)
        #expect(r[0].flags.contains(.snaplenTruncated))
        #expect(QueueCaptureConfig.kept(header: 4, snaplen: Int.max) == 262_144)
        #expect(QueueCaptureConfig.kept(header: 4, snaplen: 10) == 14)
    }

    @Test func headersAreKeptWholeAcrossSegments() throws {
        var rig = try PollerRig(readableHeader: 6, writableHeader: 0, snaplen: 1)
        _ = try rig.attach()
        try rig.memory.writeBytes(PollerRig.readable(0), bytes(4))
        try rig.memory.writeBytes(PollerRig.readable(0) + 0x100, bytes(8, from: 0x10))
        try rig.writer.writeIndirectChain([.init(addr: PollerRig.readable(0), len: 4),
                                           .init(addr: PollerRig.readable(0) + 0x100, len: 8)],
                                          at: 0, tableAddr: PollerRig.table(0))
        try rig.writer.publishAvail(0)
        let r = try rig.poll()
        #expect(r[0].segments.map(\.bytes) == [bytes(4), bytes(3, from: 0x10)])
    }

    @Test func usedLengthIsClampedAndAnExcessIsFlagged() throws {
        var rig = try PollerRig(snaplen: 0)
        _ = try rig.attach()
        try rig.post(head: 0, request: [1], responseLength: 10)
        try rig.post(head: 1, request: [1], responseLength: 10)
        _ = try rig.poll()
        try rig.complete(head: 0, response: bytes(10), usedLength: 5)
        try rig.complete(head: 1, response: bytes(10), usedLength: 20)
        let done = try rig.poll()
        #expect(done[0].segments[1].bytes == bytes(5))
        #expect(done[0].flags == [.indirect])
        #expect(done[1].segments[1].bytes == bytes(10))
        #expect(done[1].usedLength == 20)
        #expect(done[1].flags.contains(.usedLengthExceeds))
        #expect(done[1].errorCode == RingErrorCode.usedLengthExceeds.rawValue)
        #expect(done[1].errorDetail == 20)
        // Flagged, and captured: the device's length is wrong, not the copy.
        #expect(rig.poller.counters == TapCounters(captured: 4, torn: 0, orphan: 0, dropped: 0, malformed: 0))
    }

    @Test func aUsedIDOutOfRangeIsMalformed() throws {
        var rig = try PollerRig()
        _ = try rig.attach()
        try rig.writer.publishUsed(id: 4000, len: 1)
        let r = try rig.poll()
        #expect(r.count == 1)
        #expect(r[0].flags == [.malformed])
        #expect(r[0].head == 0xffff)
        #expect(r[0].errorCode == RingErrorCode.usedIDOutOfRange.rawValue)
        #expect(r[0].errorDetail == 4000)
        #expect(rig.poller.counters.malformed == 1)
    }

    @Test func aFreedIndirectTableScribbledBeforeTheCopyIsTornNotMalformed() throws {
        var rig = try PollerRig()
        _ = try rig.attach()
        try rig.post(head: 4, request: [1])
        // The device returns it and the guest allocator scribbles the freed table.
        try rig.complete(head: 4, response: [2])
        try rig.writer.writeTable([Descriptor(addr: 0xdead_0000_0000, len: 64)], at: PollerRig.table(4))
        let r = try rig.poll()
        #expect(r.map(\.kind) == [.available, .used])
        #expect(r[0].flags.contains(.torn))
        #expect(!r[0].flags.contains(.malformed))
        #expect(r[0].errorCode == RingErrorCode.bufferOutsideMemory.rawValue)
        #expect(r[1].flags.contains(.torn))
        #expect(rig.poller.counters == TapCounters(captured: 0, torn: 2, orphan: 0, dropped: 0, malformed: 0))
    }

    @Test func aBrokenChainStillOutstandingIsMalformedAndItsCompletionToo() throws {
        var rig = try PollerRig()
        _ = try rig.attach()
        try rig.writer.writeTable([Descriptor(addr: 0xdead_0000_0000, len: 64)], at: PollerRig.table(4))
        try rig.writer.writeDescriptor(Descriptor(addr: PollerRig.table(4), len: 16, flags: .indirect), at: 4)
        try rig.writer.publishAvail(4)
        let r = try rig.poll()
        #expect(r[0].flags == [.malformed])
        try rig.writer.publishUsed(id: 4, len: 0)
        let u = try rig.poll()
        #expect(u[0].flags.contains(.malformed))
        #expect(u[0].transactionID == r[0].transactionID)
        #expect(u[0].errorCode == RingErrorCode.bufferOutsideMemory.rawValue)
        #expect(rig.poller.counters == TapCounters(captured: 0, torn: 0, orphan: 0, dropped: 0, malformed: 2))
    }

    @Test func pendingChainsAreListedOldestFirst() throws {
        var rig = try PollerRig()
        _ = try rig.attach()
        try rig.post(head: 6, request: [1])
        try rig.post(head: 2, request: [1])
        try rig.post(head: 4, request: [1])
        _ = try rig.poll(at: 10)
        try rig.complete(head: 2, response: [0])
        _ = try rig.poll(at: 20)
        #expect(rig.poller.pending.map(\.head) == [6, 4])
        #expect(rig.poller.pending.map(\.availIndex) == [0, 2])
        #expect(rig.poller.pending.map(\.availNs) == [10, 10])
    }

    @Test func startingFreshAfterAResetCapturesFromIndexZero() throws {
        var rig = try PollerRig()
        try rig.post(head: 0, request: [1])
        _ = try rig.attach()
        try rig.writer.reset()
        rig.poller.startFresh()
        try rig.post(head: 3, request: [5])
        let r = try rig.poll()
        #expect(r.count == 1)
        #expect(r[0].head == 3)
        #expect(r[0].ringIndex == 0)
        #expect(!r[0].flags.contains(.preAttach))
    }
}
