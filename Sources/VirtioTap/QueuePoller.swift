import CVQSys
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import VQRecord
import VirtioRing

// The poller of one split virtqueue (DESIGN.md rules 3 and 4; man/vqtap-capture.1).
//
// One poll:
//   1. load used.idx, then avail.idx (acquire), then take the timestamp;
//   2. read every new avail and used entry in one pass, then reload both indices: an entry
//      whose slot the other side may already have rewritten (the ring lapped) is a drop;
//   3. walk and copy each new chain once (headers whole, payload up to the snap length),
//      keep its segments per head; read each completion's device-written bytes through the
//      saved segments of its request, clamped to the used length;
//   4. reload both indices again and decide what was recycled under the copy:
//        - an available chain whose head the driver posted again after it (up to the
//          reloaded avail.idx) is torn: its descriptors or buffers may be the new chain's;
//        - a chain whose descriptors changed between the walk and a second read is torn;
//        - a walk that failed on a chain already completed or reposted is torn (a freed
//          indirect table is scribbled by the guest), otherwise it is malformed;
//        - a chain that no used entry returned by the used.idx load right after its copy is
//          intact: the driver cannot reuse buffers the device still holds. One that may
//          have been returned unseen (used entries lost in a lap, or its return taken by
//          a stale posting of its head) counts as returned. A chain already returned is judged
//          by its request header buffer (PostingIndex): if a later posting uses the same
//          buffer and has itself been returned, or two later postings use it, torn; if one
//          uses it, torn when the copy equals what the buffer holds now (the later
//          request's bytes); if none does, torn when the buffer changed since the copy (a
//          reuse being written), flagged late when copied longer after the previous poll
//          than a driver takes to reuse buffers (a reuse written but not yet posted cannot
//          be ruled out), and otherwise held until the buffer's next posting proves the
//          copy or not ("Held verdicts": the queue's records wait behind it);
//        - a completion is torn when its request was, or when a later posting reuses the
//          buffer its device-written bytes were read from (the driver may have prepared it).
//
// Per-head state lives in flat arrays sized by the queue size; a head normally has one
// pending chain, more only while a repost and its predecessor's completion cross a poll.

/// What one queue's poller needs to know besides the ring.
public struct QueueCaptureConfig: Sendable {
    public var queue: UInt16
    public var deviceType: UInt16
    public var deviceInstance: UInt16
    /// Bytes of the device-readable part that are protocol headers (kept whole).
    public var readableHeader: Int
    /// Bytes of the device-writable part that are protocol headers (kept whole).
    public var writableHeader: Int
    /// Payload bytes kept per direction beyond the headers; 0 keeps everything.
    public var snaplen: Int
    public var limits: ChainLimits
    /// How long a driver takes at least to reuse a returned chain's buffers. A chain returned
    /// since the previous poll and copied within this time of it was copied before any reuse
    /// could start; one copied later, with no later posting of its buffers in sight, may
    /// hold a reuse the driver wrote and has not posted yet (preempted mid-post, or a post
    /// that failed for want of descriptors): it is captured and flagged `late`.
    /// 10 us: a chain copied in time was posted, returned, reaped and its header rewritten
    /// all since the previous load, and a Linux guest under QEMU's TCG goes from posting a
    /// tag's request to rewriting its header in 22-40 us during its target scan; at 20 us
    /// the margin was thin (one capture of twenty QEMU runs held content never traced).
    public var trustWindowNs: UInt64
    /// Even a copy in time can be a reuse: a driver that posts, reaps and rewrites a header
    /// faster than the trust window (the simulator at iodepth 1 reuses its one header every
    /// ~4 us) leaves the next request's bytes in the buffer before the copy, unposted. Such a
    /// chain's records are held (with every record of its queue after them, so the order
    /// stays) until its header buffer is posted again: a copy that differs from that
    /// posting's header was the request's own; one equal to it is flagged `late`. Held at
    /// most this long, then flagged `late` too: a driver preempted between rewriting the
    /// header and posting it looks the same (measured: one capture in ~1.4 M wrong after the
    /// simulator stalled 4 ms there, when this settled as intact after 1 ms). 0: never held;
    /// the trust window alone decides.
    public var holdNs: UInt64

    public init(queue: UInt16, deviceType: UInt16 = 8, deviceInstance: UInt16 = 0, readableHeader: Int = 0,
                writableHeader: Int = 0, snaplen: Int = 64, limits: ChainLimits = ChainLimits(),
                trustWindowNs: UInt64 = 10_000, holdNs: UInt64 = 10_000_000) {
        self.queue = queue; self.deviceType = deviceType; self.deviceInstance = deviceInstance
        self.readableHeader = readableHeader; self.writableHeader = writableHeader
        self.snaplen = snaplen; self.limits = limits; self.trustWindowNs = trustWindowNs; self.holdNs = holdNs
    }

    var keepReadable: Int { Self.kept(header: readableHeader, snaplen: snaplen) }
    var keepWritable: Int { Self.kept(header: writableHeader, snaplen: snaplen) }

    static func kept(header: Int, snaplen: Int) -> Int {
        guard snaplen > 0, snaplen < maxKeptPerSide, header >= 0, header < maxKeptPerSide else { return maxKeptPerSide }
        return Swift.min(header + snaplen, maxKeptPerSide)
    }

    /// Bytes kept per side of a chain at most, whatever the snap length: what a pcapng
    /// record can hold for libpcap and Wireshark (PcapNG's `maxFileRecordLength`). A
    /// hostile chain of many descriptors over all of guest RAM would otherwise be copied
    /// whole with `-s 0`.
    static let maxKeptPerSide = 262_144
}

/// A chain the tap saw made available and has not seen returned.
public struct PendingChain: Sendable {
    public var head: UInt16
    public var availIndex: UInt16
    public var transactionID: UInt64
    /// Timestamp of the available record (for a pre-attach chain: the attach time).
    public var availNs: UInt64
    /// Its buffers as the available record has them (the readable ones with their bytes).
    public var segments: ChainSegments
    public var writableBytes: UInt64
    /// indirect, preAttach, torn, malformed as the available record had them.
    public var flags: RecordFlags
    public var errorCode: UInt16
    public var errorDetail: UInt64
    /// used.idx loaded after the avail.idx that showed this chain: a completion of an
    /// older posting of the same head has a lower used index (it happened before).
    var usedBound: UInt16
    var next: Int32
    /// The available record of the current batch it came from, or -1.
    var batchPosition: Int32
    /// Its return may have gone by unseen (lost in a used-ring lap, before attach, or taken
    /// by an older such posting of its head): a completion matched to it may be a later
    /// posting's.
    var returnMayBeLost = false
}

public struct QueuePoller<Memory: GuestMemory> {
    public let config: QueueCaptureConfig
    public let layout: SplitQueueLayout
    @usableFromInline var walker: ChainWalker<Memory>
    public var memory: Memory { walker.memory }

    /// Reads through `memory` from the next poll on.
    public mutating func replaceMemory(_ memory: Memory) { walker.memory = memory }

    /// The next avail and used indices to process.
    public private(set) var lastAvail: UInt16 = 0
    public private(set) var lastUsed: UInt16 = 0
    public private(set) var counters = TapCounters()
    /// Where the records' segments are built, a few dozen records to an allocation.
    var slab = SegmentSlab()
    /// `config`'s budgets, worked out once (read twice per chain).
    let keepReadable: Int
    let keepWritable: Int
    var nextSequence: UInt64 = 1
    /// When the previous poll loaded the indices: a chain returned in this poll was returned
    /// after it.
    var previousLoadNs: UInt64 = 0
    /// False until a load after a fresh start: then nothing bounds when a chain already
    /// returned was returned.
    var previousLoadKnown = true
    /// Why records were counted torn (diagnostics).
    public internal(set) var tornReasons = TornReasons()
    /// The latest posting of each header buffer.
    var postings: PostingIndex
    /// Whether this poll's postings beyond the batch (up to the reloaded avail.idx) have
    /// been walked into `postings`.
    var laterPostingsNoted = false
    /// The first posting of this poll whose buffers the tap did not see: made available
    /// again (or its descriptors changed) before its walk could be trusted, so the walk read
    /// the next posting's descriptors. Any buffer may have been its, so no copy of a buffer
    /// from before it is proved by what follows (nil: none). `laterBuffersUnknown`: the same
    /// among the postings after the batch.
    var firstUnknownPosting: UInt16?
    var laterBuffersUnknown = false
    /// Whether the postings after the batch were all read (see `noteLaterPostings`).
    var laterPostingsKnown = false
    /// Whether this poll lost available entries to a lapped ring: the buffers they used
    /// are unknown.
    var postingsLost = false
    /// Records not handed out yet, `held[heldStart...]`: from the first whose verdict waits
    /// for the next posting of its header buffer (`QueueCaptureConfig.holdNs`) on, in order.
    /// Records and verdicts are named by serial (`heldFirst` is the serial of
    /// `held[heldStart]`), so that handing out the front moves nothing; the front is
    /// dropped now and then.
    var held: [CaptureRecord] = []
    var heldStart = 0
    var heldFirst = 0
    /// The verdicts waited for, `verdicts[verdictStart...]`, in order of their records.
    var verdicts: [HeldVerdict] = []
    var verdictStart = 0
    var verdictFirst = 0
    /// The unsettled verdict of each header buffer, by serial (one at most: a later posting
    /// of the buffer settles it).
    var verdictOfHeader: [UInt64: Int] = [:]
    /// This poll's available records whose verdict waits (positions in `out`).
    var newlyHeld: [Int] = []

    // Pending chains: a pool linked per head, oldest first.
    var pool: [PendingChain] = []
    var freeSlots: [Int32] = []
    var firstOfHead: [Int32]
    var lastOfHead: [Int32]
    var pendingCount = 0

    // Batch scratch, reused.
    var availHeads: [UInt16] = []
    var usedElements: [UsedElement] = []
    var stampEpoch: UInt32 = 0
    var availStamp: [UInt32]
    var availLatest: [UInt16]
    var usedStamp: [UInt32]
    var usedLatest: [UInt16]
    /// Per head stamped this poll: the first used entry that returned it.
    var firstReturn: [UInt16]
    /// What the batch's checks need of each available record of this poll, by position.
    var availBatch: [AvailBatchEntry] = []
    /// And of each used record.
    var usedBatch: [UsedBatchEntry] = []
    static var noBuffer: UInt64 { .max }

    public init(memory: Memory, layout: SplitQueueLayout, config: QueueCaptureConfig) {
        self.config = config
        keepReadable = config.keepReadable
        keepWritable = config.keepWritable
        self.layout = layout
        walker = ChainWalker(memory: memory, layout: layout, limits: config.limits)
        let n = Int(layout.size)
        firstOfHead = [Int32](repeating: -1, count: n)
        lastOfHead = [Int32](repeating: -1, count: n)
        availStamp = [UInt32](repeating: 0, count: n)
        availLatest = [UInt16](repeating: 0, count: n)
        usedStamp = [UInt32](repeating: 0, count: n)
        usedLatest = [UInt16](repeating: 0, count: n)
        firstReturn = [UInt16](repeating: 0, count: n)
        postings = PostingIndex(capacity: 16 * n)
        pool.reserveCapacity(n)
        availHeads.reserveCapacity(2 * n)
        usedElements.reserveCapacity(2 * n)
        availBatch.reserveCapacity(n)
        usedBatch.reserveCapacity(n)
    }

    var size: UInt16 { layout.size }

    // MARK: - Attach

    /// Starts at the ring's current indices. The chains outstanding now (the last
    /// `avail.idx - used.idx` available entries, eventq buffers included) are snapshotted as
    /// available records flagged pre-attach, so their completions decode.
    public mutating func attach(clock: TapClock, into out: inout [CaptureRecord]) throws(RingError) {
        let u = try layout.usedIdx(in: memory)
        let a = try layout.availIdx(in: memory)
        let ts = clock.now()
        previousLoadNs = ts
        let bound = try layout.usedIdx(in: memory)
        lastUsed = u
        lastAvail = a
        let outstanding = min(SplitRing.distance(from: u, to: a), size)
        guard outstanding > 0 else { return }
        let start = a &- outstanding
        availHeads.removeAll(keepingCapacity: true)
        for k in 0..<outstanding { availHeads.append(try layout.availEntry(start &+ k, in: memory)) }
        nextStamp()
        for k in 0..<Int(outstanding) { stampAvail(availHeads[k], index: start &+ UInt16(k)) }
        for k in 0..<Int(outstanding) {
            let head = availHeads[k]
            let index = start &+ UInt16(k)
            // A head listed twice: only its latest posting can still be outstanding.
            if head < size && availLatest[Int(head)] != index { continue }
            var record = snapshotAvailable(head: head, index: index, ts: ts, extraFlags: .preAttach,
                                           usedBound: bound, batchPosition: -1)
            count(record.flags)
            record.timestampNs = ts
            out.append(record)
        }
    }

    /// Starts at indices 0 without a snapshot: the device was just reset, so the ring
    /// starts fresh and every chain from now on is new.
    public mutating func startFresh() {
        lastAvail = 0
        lastUsed = 0
        previousLoadKnown = false
    }

    /// The chains made available and not yet returned, oldest first (by ring position).
    public var pending: [PendingChain] {
        var all: [PendingChain] = []
        for h in 0..<Int(size) {
            var s = firstOfHead[h]
            while s >= 0 { all.append(pool[Int(s)]); s = pool[Int(s)].next }
        }
        let base = lastAvail
        return all.sorted { SplitRing.distance(from: $0.availIndex, to: base) > SplitRing.distance(from: $1.availIndex, to: base) }
    }

    // MARK: - Poll

    /// One poll of this queue. Appends its records to `out` (drops, then available records,
    /// then used records, each in ring order), or holds them, and those after, until a held
    /// verdict settles (they come out with a later poll's). Returns whether anything new was
    /// seen or held records came out.
    @discardableResult
    @_specialize(exported: true, where Memory == MappedGuestMemory)
    public mutating func poll(clock: TapClock, into out: inout [CaptureRecord]) throws(RingError) -> Bool {
        let u = try layout.usedIdx(in: memory)
        let a = try layout.availIdx(in: memory)
        if u == lastUsed && a == lastAvail {
            previousLoadNs = clock.now()
            previousLoadKnown = true
            return heldStart < held.count && releaseHeld(now: previousLoadNs, into: &out)
        }
        let ts = clock.now()
        let pollFirst = out.count
        // No earlier load (a fresh start after a reset): what was returned before this poll
        // may have been reused at any time since the device became ready.
        let since: UInt64? = previousLoadKnown ? previousLoadNs : nil
        previousLoadKnown = true
        previousLoadNs = ts
        let n = size

        // 2. Read the new entries, at most one ring's worth each.
        let newAvail = SplitRing.distance(from: lastAvail, to: a)
        let newUsed = SplitRing.distance(from: lastUsed, to: u)
        let availRead = min(newAvail, n)
        let usedRead = min(newUsed, n)
        let availStart = a &- availRead
        let usedStart = u &- usedRead
        availHeads.removeAll(keepingCapacity: true)
        usedElements.removeAll(keepingCapacity: true)
        for k in 0..<availRead { availHeads.append(try layout.availEntry(availStart &+ k, in: memory)) }
        for k in 0..<usedRead { usedElements.append(try layout.usedEntry(usedStart &+ k, in: memory)) }
        atomicMemoryFence(ordering: .acquiring)
        let u2 = try layout.usedIdx(in: memory)
        let a2 = try layout.availIdx(in: memory)
        // An entry is intact if its slot was not reused for a later index: distance < size.
        let availSkip = Int(skipCount(start: availStart, count: availRead, reloaded: a2))
        let usedSkip = Int(skipCount(start: usedStart, count: usedRead, reloaded: u2))
        let availDropped = UInt64(newAvail - availRead) + UInt64(availSkip)
        let usedDropped = UInt64(newUsed - usedRead) + UInt64(usedSkip)
        postingsLost = availDropped > 0
        if availDropped > 0 {
            counters.dropped += availDropped
            out.append(dropRecord(count: availDropped, reason: .availableLapped, index: lastAvail, ts: ts))
        }
        if usedDropped > 0 {
            counters.dropped += usedDropped
            out.append(dropRecord(count: usedDropped, reason: .usedLapped, index: lastUsed, ts: ts))
        }

        // 3. Snapshot the new chains, then the completions, straight into `out` (the
        // verdicts below patch them in place: records are large, copies cost).
        let availFirst = out.count
        availBatch.removeAll(keepingCapacity: true)
        newlyHeld.removeAll(keepingCapacity: true)
        laterPostingsNoted = false
        // Loaded after every copy: straight from the mapping where it is mapped.
        let usedIdxPointer = memory.translate(gpa: layout.usedIdxAddress, count: 2)
        for k in availSkip..<Int(availRead) {
            let head = availHeads[k]
            let index = availStart &+ UInt16(k)
            out.append(snapshotAvailable(head: head, index: index, ts: ts, extraFlags: [],
                                         usedBound: u2, batchPosition: Int32(out.count - availFirst)))
            // The used index right after this copy: a chain not returned by then was
            // outstanding all through it, whatever the driver does with it next.
            atomicMemoryFence(ordering: .acquiring)
            let usedAfterCopy: UInt16
            if let usedIdxPointer { usedAfterCopy = UInt16(littleEndian: vq_load_acquire_u16(usedIdxPointer)) } else { usedAfterCopy = try layout.usedIdx(in: memory) }
            availBatch[availBatch.count - 1].usedAfterCopy = usedAfterCopy
        }
        if usedDropped > 0 {
            // The lost used entries may return any chain pending now, this batch's too.
            forgetReturnsOfAllPending()
            for p in availBatch.indices { availBatch[p].mayHaveReturned(at: lastUsed) }
        }
        let availCopiedNs = clock.now()
        let usedFirst = out.count
        usedBatch.removeAll(keepingCapacity: true)
        for k in usedSkip..<Int(usedRead) {
            completion(usedElements[k], index: usedStart &+ UInt16(k), ts: ts, into: &out)
        }
        // Read longer after the previous load than a driver takes to react to a completion:
        // a driver that reuses memory by range, not by buffer (SeaBIOS builds each request
        // on its stack), may have written a later request over the device's bytes.
        let completionsLate = usedFirst < out.count && availFirst < usedFirst
            && (since.map { clock.now() &- $0 > config.trustWindowNs } ?? true)


        // 4. What was recycled under the copy.
        for q in usedBatch.indices where usedBatch[q].availPos >= 0 {
            // Returned within this batch: its buffers were free before the verdict.
            availBatch[Int(usedBatch[q].availPos)].completed = true
            availBatch[Int(usedBatch[q].availPos)].completedAt = usedStart &+ UInt16(usedSkip + q)
        }
        atomicMemoryFence(ordering: .acquiring)
        let u3 = try layout.usedIdx(in: memory)
        let a3 = try layout.availIdx(in: memory)
        nextStamp()
        let moreAvail = min(SplitRing.distance(from: a, to: a3), n)
        for k in availSkip..<Int(availRead) { stampAvail(availHeads[k], index: availStart &+ UInt16(k)) }
        for k in 0..<moreAvail {
            let i = a &+ k
            stampAvail(try layout.availEntry(i, in: memory), index: i)
        }
        let moreUsed = min(SplitRing.distance(from: u, to: u3), n)
        for k in usedSkip..<Int(usedRead) { stampUsed(usedElements[k].id, index: usedStart &+ UInt16(k)) }
        for k in 0..<moreUsed {
            let i = u &+ k
            stampUsed(try layout.usedEntry(i, in: memory).id, index: i)
        }
        // Those entries were read after the loads: a ring that lapped meanwhile had others
        // in their slots by then, and nothing in this batch can be judged from them.
        var verdictReadsLapped = false
        if moreAvail > 0 || moreUsed > 0 {
            atomicMemoryFence(ordering: .acquiring)
            let u4 = try layout.usedIdx(in: memory)
            let a4 = try layout.availIdx(in: memory)
            verdictReadsLapped = SplitRing.distance(from: a, to: a4) >= n || SplitRing.distance(from: u, to: u4) >= n
        }
        // Every used entry up to u3 was read (none lapped): what they do not return was
        // outstanding when the re-read after its copy ran.
        let usedAllSeen = usedDropped == 0 && SplitRing.distance(from: u, to: u3) < n && !verdictReadsLapped

        let availCount = usedFirst - availFirst
        firstUnknownPosting = nil
        laterBuffersUnknown = false
        for p in 0..<availCount where availBatch[p].headOK {
            let index = out[availFirst + p].ringIndex
            if availBatch[p].changed || availLatest[Int(out[availFirst + p].head)] != index || SplitRing.distance(from: index, to: a3) >= n {
                firstUnknownPosting = index
                break
            }
        }
        for p in 0..<availCount {
            let o = availFirst + p
            let h = Int(out[o].head)
            if out[o].flags.contains(.malformed) && !availBatch[p].headOK {
                counters.malformed += 1
                continue
            }
            if verdictReadsLapped {
                tornReasons.count(.laterPostingsUnknown)
                out[o].flags.remove(.malformed)
                out[o].flags.insert(.torn)
                markPendingTorn(slot: availBatch[p].slot)
                count(out[o].flags)
                continue
            }
            if usedAllSeen && !availBatch[p].changed && !out[o].flags.contains(.malformed)
                && outstandingAfterCopy(p, head: h, from: usedStart) {
                count(out[o].flags)
                continue
            }
            // Reposted later, or its slot lapped by the time we looked again.
            let index = out[o].ringIndex
            let reposted = availLatest[h] != index || SplitRing.distance(from: index, to: a3) >= n
            if out[o].flags.contains(.malformed) {
                let completed = usedStamp[h] == stampEpoch
                if reposted || completed {
                    tornReasons.count(.walkFailedOnReusedChain)
                    out[o].flags.remove(.malformed)
                    out[o].flags.insert(.torn)
                    markPendingTorn(slot: availBatch[p].slot)
                }
            } else if reposted || availBatch[p].changed {
                tornReasons.count(reposted ? .headReposted : .descriptorsChanged)
                out[o].flags.insert(.torn)
                markPendingTorn(slot: availBatch[p].slot)
            } else if availBatch[p].header != Self.noBuffer, let returnedAt = returnedBeforeVerdict(p, head: h, u: u, u3: u3) {
                let inTime = since.map { Self.share(p, of: availCount, from: ts, to: availCopiedNs) &- $0 <= config.trustWindowNs } ?? false
                switch try copyVerdict(o, in: out, header: availBatch[p].header, returnedAt: returnedAt, a: a, a3: a3, inTime: inTime) {
                case .intact: break
                case .held:
                    newlyHeld.append(o)
                    availBatch[p].held = true
                case .late:
                    out[o].flags.insert(.late)
                    markPendingLate(slot: availBatch[p].slot)
                case .torn:
                    out[o].flags.insert(.torn)
                    markPendingTorn(slot: availBatch[p].slot)
                }
            }
            count(out[o].flags)
        }
        for q in 0..<(out.count - usedFirst) {
            let o = usedFirst + q
            var flags = out[o].flags
            let requestPos = usedBatch[q].availPos
            if requestPos >= 0 {
                // The request was in this batch: take its final verdict.
                let request = out[availFirst + Int(requestPos)].flags
                if request.contains(.torn) {
                    if !out[o].flags.contains(.torn) { tornReasons.count(.requestTorn) }
                    flags.insert(.torn)
                    if !request.contains(.malformed) { flags.remove(.malformed) }
                }
            }
            if requestPos >= 0 && out[availFirst + Int(requestPos)].flags.contains(.late) { flags.insert(.late) }
            if !flags.contains(.orphan) && !flags.contains(.torn) && out[o].head < n {
                if verdictReadsLapped {
                    tornReasons.count(.laterPostingsUnknown)
                    flags.insert(.torn)
                } else if SplitRing.distance(from: out[o].ringIndex, to: u3) >= n {
                    tornReasons.count(.usedLapped)
                    flags.insert(.torn)
                } else if usedBatch[q].response != Self.noBuffer,
                          case let verdict = try responseVerdict(o, q, in: out, availFirst: availFirst, u: u, u3: u3, a: a, a3: a3),
                          verdict != .intact {
                    if verdict == .late {
                        flags.insert(.late)
                    } else {
                        tornReasons.count(.responseReused)
                        flags.insert(.torn)
                    }
                } else if completionsLate && overwrittenByLaterPosting(q, requestIndex: usedBatch[q].availIndex) {
                    tornReasons.count(.responseOverwritten)
                    flags.insert(.torn)
                }
            }
            if flags.contains(.torn) { flags.remove(.late) }
            if flags.contains(.torn) && flags.contains(.usedLengthExceeds) {
                // The segments may be another chain's: the comparison means nothing.
                flags.remove(.usedLengthExceeds)
                if out[o].errorCode == RingErrorCode.usedLengthExceeds.rawValue {
                    out[o].errorCode = 0
                    out[o].errorDetail = 0
                }
            }
            if flags != out[o].flags { out[o].flags = flags }
            count(flags)
        }
        for entry in availBatch where entry.slot >= 0 && pool[Int(entry.slot)].batchPosition >= 0 {
            pool[Int(entry.slot)].batchPosition = -1
        }
        lastAvail = a
        lastUsed = u
        if heldStart < held.count || !newlyHeld.isEmpty {
            hold(&out, from: pollFirst, availFirst: availFirst, availCount: availCount, ts: ts)
            _ = releaseHeld(now: clock.now(), into: &out)
        }
        return true
    }

    // MARK: - Held verdicts

    /// A chain returned before its copy, copied in time, its header buffer not posted again
    /// yet: the copy is the request's own bytes unless the driver had already rewritten
    /// them for its next request. That request's header, once posted, tells.
    struct HeldVerdict {
        /// The serial of its available record among the held ones.
        var record: Int
        var header: UInt64
        var availIndex: UInt16
        var head: UInt16
        var transactionID: UInt64
        var deadlineNs: UInt64
        var settled = false
        /// The verdict of the buffer's previous posting, waiting on this one (its serial, or
        /// -1): its copy is judged against this copy once this one is proved.
        var dependent = -1
    }

    @inline(__always) func heldIndex(_ serial: Int) -> Int { heldStart + (serial - heldFirst) }
    @inline(__always) func verdictIndex(_ serial: Int) -> Int { verdictStart + (serial - verdictFirst) }

    /// Moves this poll's records behind those held (from its first held verdict on, when
    /// nothing was held before), settles earlier verdicts by this poll's postings and holds
    /// the verdicts of `newlyHeld`.
    mutating func hold(_ out: inout [CaptureRecord], from pollFirst: Int, availFirst: Int, availCount: Int, ts: UInt64) {
        let from = heldStart < held.count ? pollFirst : (newlyHeld.first ?? out.count)
        // The serial of out[o] once moved is firstSerial + o.
        let firstSerial = heldFirst + (held.count - heldStart) - from
        held.append(contentsOf: out[from...])
        out.removeSubrange(from...)
        if !verdictOfHeader.isEmpty {
            // An unsettled verdict's record is held, so this whole poll was moved.
            if postingsLost || firstUnknownPosting != nil {
                // The buffers' next postings may be among those lost, or among those whose
                // buffers went unseen: later ones prove nothing.
                for serial in verdictOfHeader.values { settle(verdictIndex(serial), late: true) }
                verdictOfHeader.removeAll(keepingCapacity: true)
            } else {
                for p in 0..<availCount where availBatch[p].header != Self.noBuffer {
                    guard let serial = verdictOfHeader[availBatch[p].header] else { continue }
                    let v = verdictIndex(serial)
                    guard isLater(availBatch[p].index, than: verdicts[v].availIndex) else { continue }
                    verdictOfHeader[availBatch[p].header] = nil
                    guard availFirst + p >= from else { settle(v, late: true); continue }
                    // The next posting of the buffer. Its copy is its own header when its
                    // verdict is intact: a copy equal to it may be its bytes. Torn or late, it
                    // proves nothing; held, the verdicts wait in turn.
                    let next = heldIndex(firstSerial + availFirst + p)
                    if !held[next].flags.isDisjoint(with: [.torn, .late, .malformed]) {
                        settle(v, late: true)
                    } else if availBatch[p].held {
                        availBatch[p].waitingVerdict = serial
                    } else {
                        settle(v, late: Self.sameHeader(held[heldIndex(verdicts[v].record)].segments, held[next].segments))
                    }
                }
            }
        }
        for o in newlyHeld {
            let serial = firstSerial + o
            let k = heldIndex(serial)
            let header = availBatch[o - availFirst].header
            let verdictSerial = verdictFirst + (verdicts.count - verdictStart)
            verdictOfHeader[header] = verdictSerial
            var verdict = HeldVerdict(record: serial, header: header, availIndex: held[k].ringIndex, head: held[k].head,
                                      transactionID: held[k].transactionID, deadlineNs: ts &+ config.holdNs)
            verdict.dependent = availBatch[o - availFirst].waitingVerdict
            verdicts.append(verdict)
        }
    }

    /// Settles verdict `v`, and the chain of verdicts waiting on it: each copy is judged
    /// against the proved copy of the buffer's next posting (late when equal); a late copy
    /// proves nothing, so every verdict waiting on it is late too.
    mutating func settle(_ v: Int, late: Bool) {
        var v = v, late = late
        while !verdicts[v].settled {
            verdicts[v].settled = true
            if late { flagLate(v) }
            let d = verdicts[v].dependent
            guard d >= verdictFirst else { return }
            let w = verdictIndex(d)
            if !late {
                late = Self.sameHeader(held[heldIndex(verdicts[w].record)].segments, held[heldIndex(verdicts[v].record)].segments)
            }
            v = w
        }
    }

    /// Hands out the held records up to the first unsettled verdict; a verdict whose time is
    /// up (or one too many held) settles `late`: nothing proved the copy. Returns whether
    /// any record was handed out.
    mutating func releaseHeld(now: UInt64, into out: inout [CaptureRecord]) -> Bool {
        var end = held.count
        while verdictStart < verdicts.count {
            if !verdicts[verdictStart].settled {
                guard now >= verdicts[verdictStart].deadlineNs || held.count - heldStart > Self.maxHeldRecords else {
                    end = heldIndex(verdicts[verdictStart].record)
                    break
                }
                if verdictOfHeader[verdicts[verdictStart].header] == verdictFirst { verdictOfHeader[verdicts[verdictStart].header] = nil }
                settle(verdictStart, late: true)
            }
            verdictStart += 1
            verdictFirst += 1
        }
        Self.dropFront(&verdicts, before: &verdictStart)
        guard end > heldStart else { return false }
        out.append(contentsOf: held[heldStart..<end])
        heldFirst += end - heldStart
        heldStart = end
        Self.dropFront(&held, before: &heldStart)
        return true
    }

    /// Drops `array[..<start]` (done with) when it is all of it or at least half of a large
    /// array, so that handing out the front stays cheap and memory stays bounded.
    static func dropFront<T>(_ array: inout [T], before start: inout Int) {
        if start == array.count {
            array.removeAll(keepingCapacity: true)
            start = 0
        } else if start >= 1024 && start * 2 >= array.count {
            array.removeSubrange(..<start)
            start = 0
        }
    }

    /// Hands out every held record (the capture ends or the device was reset); those still
    /// waiting for a verdict are flagged `late`.
    public mutating func releaseAllHeld(into out: inout [CaptureRecord]) {
        _ = releaseHeld(now: .max, into: &out)
        verdictOfHeader.removeAll()
    }

    /// Records held beyond this settle their verdicts at once.
    static var maxHeldRecords: Int { 16_384 }

    /// Flags verdict `v`'s available record and its completion (held, or still to come) late.
    mutating func flagLate(_ v: Int) {
        let k = heldIndex(verdicts[v].record)
        let id = verdicts[v].transactionID, head = verdicts[v].head
        held[k].flags.insert(.late)
        // Returned before its verdict, the chain's completion came in the same poll or the
        // next one, each of at most two drops and a ring's worth of entries each way.
        let horizon = min(held.count, k + 1 + 2 * (2 * Int(size) + 2))
        for c in (k + 1)..<horizon where held[c].kind == .used && held[c].transactionID == id && held[c].head == head {
            if !held[c].flags.contains(.torn) { held[c].flags.insert(.late) }
            return
        }
        guard head < size else { return }
        var slot = firstOfHead[Int(head)]
        while slot >= 0 {
            if pool[Int(slot)].transactionID == id { markPendingLate(slot: slot); return }
            slot = pool[Int(slot)].next
        }
    }

    /// Whether the first readable buffers' copied bytes of two chains are the same.
    static func sameHeader(_ a: ChainSegments, _ b: ChainSegments) -> Bool {
        a.withUnsafeEntries { ea in
            b.withUnsafeEntries { eb in
                guard let i = (0..<ea.count).first(where: { !ea.isWritable($0) }),
                      let j = (0..<eb.count).first(where: { !eb.isWritable($0) }) else { return false }
                let x = ea.bytes(i), y = eb.bytes(j)
                guard x.count > 0, x.count == y.count, let xb = x.baseAddress, let yb = y.baseAddress else { return false }
                return memcmp(xb, yb, x.count) == 0
            }
        }
    }

    /// The used index that returned the chain at batch position `p` by the time the indices
    /// were loaded again (in this batch's used entries, or among those published since), or
    /// nil when it was still outstanding.
    @inline(__always)
    func returnedBeforeVerdict(_ p: Int, head h: Int, u: UInt16, u3: UInt16) -> UInt16? {
        if availBatch[p].completed { return availBatch[p].completedAt }
        if let at = availBatch[p].perhapsReturnedAt { return at }
        if usedStamp[h] == stampEpoch && SplitRing.distance(from: u, to: usedLatest[h]) < SplitRing.distance(from: u, to: u3) {
            return usedLatest[h]
        }
        return nil
    }

    /// Whether the chain at batch position `p` was still outstanding at the load of used.idx
    /// that followed its copy: no used entry from `start` (where the last poll stopped, all
    /// read since) up to that load returns its head. Posted after the last poll's loads, it
    /// was returned by one of those if at all before that load. Counted by entries, not by
    /// matching completions to pending chains, which a stale pending chain of the same head
    /// (a completion lost in a drop, an attach snapshot) would mislead. A return of the
    /// head's previous posting there looks the same: judged by the rules after, as before.
    @inline(__always)
    func outstandingAfterCopy(_ p: Int, head h: Int, from start: UInt16) -> Bool {
        guard usedStamp[h] == stampEpoch else { return true }
        return SplitRing.distance(from: start, to: firstReturn[h]) >= SplitRing.distance(from: start, to: availBatch[p].usedAfterCopy)
    }

    enum CopyVerdict { case intact, late, torn, held }

    /// What the copy of `out[o]`, a chain the device returned (at used index `returnedAt`)
    /// before the verdict, is worth, judged by who reuses its request header buffer.
    mutating func copyVerdict(_ o: Int, in out: [CaptureRecord], header: UInt64, returnedAt: UInt16,
                              a: UInt16, a3: UInt16, inTime: Bool) throws(RingError) -> CopyVerdict {
        guard try noteLaterPostings(from: a, to: a3), let latest = postings.latest(header) else {
            tornReasons.count(.laterPostingsUnknown)
            return .torn
        }
        // A posting since whose buffers went unseen may have reused this one: proved by nothing.
        let unseenSince = unknownPostingAfter(out[o].ringIndex)
        if isLater(latest.availIndex, than: out[o].ringIndex) {
            // Reused. Twice, or by a request that was itself returned: the buffer may have
            // held either later request's bytes when copied. Otherwise the copy is the later
            // request's if it equals what the buffer holds now.
            if let previous = latest.previous, isLater(previous, than: out[o].ringIndex) {
                tornReasons.count(.headerReusedTwice)
                return .torn
            }
            let h = Int(latest.head)
            if h < Int(size) && usedStamp[h] == stampEpoch && isLater(usedLatest[h], than: returnedAt) {
                tornReasons.count(.reuseOfHeaderReturned)
                return .torn
            }
            if copiesStillMatch(out[o].segments) {
                tornReasons.count(.copyIsTheReuse)
                return .torn
            }
            return unseenSince ? .late : .intact
        }
        // Not reused: a change since the copy is a reuse being written. Copied late, a reuse
        // written before the copy and not posted yet cannot be ruled out.
        if !copiesStillMatch(out[o].segments) {
            tornReasons.count(.bufferChangedNoReuse)
            return .torn
        }
        guard inTime && !unseenSince else { return .late }
        return config.holdNs > 0 ? .held : .intact
    }

    /// What the device-written bytes of the completion `out[o]` (batch position `q`) are
    /// worth, judged by who uses its response buffer since. Drivers write a response buffer
    /// only by posting it again, and devices only by answering that posting: without a later
    /// posting the bytes stand. With one (a driver that keeps buffers per tag reposts them
    /// at once), they are torn when the device answered it (returned by the verdict), when
    /// another completion of this poll or one published since may have used the buffer, when
    /// the bytes changed since they were read, or when the posting's readable buffers (its
    /// data-out) overlap them or are unknown (posted after this batch); otherwise captured
    /// and flagged late: the device may have written its answer and not yet returned it.
    mutating func responseVerdict(_ o: Int, _ q: Int, in out: [CaptureRecord], availFirst: Int,
                                  u: UInt16, u3: UInt16, a: UInt16, a3: UInt16) throws(RingError) -> CopyVerdict {
        let response = usedBatch[q].response
        guard !postingsLost, try noteLaterPostings(from: a, to: a3), let latest = postings.latest(response) else { return .torn }
        guard isLater(latest.availIndex, than: usedBatch[q].availIndex) else {
            // A posting since whose buffers went unseen may have used this one and been
            // answered (it was returned: its head was posted again).
            guard unknownPostingAfter(usedBatch[q].availIndex) else { return .intact }
            return writtenBytesStillMatch(out[o].segments) ? .late : .torn
        }
        let h = Int(latest.head)
        if h < Int(size) && usedStamp[h] == stampEpoch && isLater(usedLatest[h], than: out[o].ringIndex) { return .torn }
        // Another answer in the same buffer since: a completion later in this batch, or one
        // published after it (its chain is still pending here).
        for later in (q + 1)..<max(q + 1, usedBatch.count) where usedBatch[later].response == response { return .torn }
        for k in 0..<min(SplitRing.distance(from: u, to: u3), size) {
            let id = try layout.usedEntry(u &+ k, in: memory).id
            guard id < UInt32(size) else { continue }
            var slot = firstOfHead[Int(id)]
            while slot >= 0 {
                let firstWritable: UInt64? = pool[Int(slot)].segments.withUnsafeEntries { e in
                    for i in 0..<e.count where e.isWritable(i) { return e.address(i) }
                    return nil
                }
                if firstWritable == response { return .torn }
                slot = pool[Int(slot)].next
            }
        }
        // Those entries were read after u3 was loaded: lapped since, they were others.
        atomicMemoryFence(ordering: .acquiring)
        guard SplitRing.distance(from: u, to: try layout.usedIdx(in: memory)) < size else { return .torn }
        let written = out[o].segments
        if !writtenBytesStillMatch(written) { return .torn }
        // The later posting's readable buffers: from this batch, or walked now if it was
        // posted since the batch was read.
        var readable: [(address: UInt64, length: UInt32)] = []
        if let p = availBatch.lastIndex(where: { $0.index == latest.availIndex }), availFirst + p < out.count {
            out[availFirst + p].segments.withUnsafeEntries { e in
                for i in 0..<e.count where !e.isWritable(i) { readable.append((e.address(i), e.length(i))) }
            }
        } else {
            guard let chain = try? walker.walk(head: latest.head) else { return .torn }
            for r in chain.segments where !r.isWritable { readable.append((r.addr, r.len)) }
        }
        let overlaps: Bool = written.withUnsafeEntries { w in
            for r in readable where r.length > 0 {
                for i in 0..<w.count where w.isWritable(i) && w.captured(i) > 0
                    && r.address < w.address(i) &+ UInt64(w.captured(i)) && w.address(i) < r.address &+ UInt64(r.length) {
                    return true
                }
            }
            return false
        }
        return overlaps ? .torn : .late
    }

    /// Whether every device-written byte copied into `segments` is still what guest memory holds.
    func writtenBytesStillMatch(_ segments: ChainSegments) -> Bool {
        segments.withUnsafeEntries { e in
            for i in 0..<e.count where e.isWritable(i) && e.captured(i) > 0 {
                let copied = e.bytes(i)
                guard let p = memory.translate(gpa: e.address(i), count: copied.count), let c = copied.baseAddress,
                      memcmp(p, c, copied.count) == 0 else { return false }
            }
            return true
        }
    }

    /// Whether the first readable buffer (the request header) of a posting of this batch
    /// later than the one at avail index `requestIndex` overlaps the bytes the completion at
    /// batch position `q` read from its first writable buffer (the response).
    func overwrittenByLaterPosting(_ q: Int, requestIndex: UInt16) -> Bool {
        let start = usedBatch[q].response, end = usedBatch[q].responseEnd
        guard start != Self.noBuffer else { return false }
        // A plain scan without bounds checks: every completion of a late poll comes here.
        return availBatch.withUnsafeBufferPointer { entries in
            // noBuffer (all ones) never starts below `end`.
            for e in entries where e.header < end && start < e.headerEnd && isLater(e.index, than: requestIndex) { return true }
            return false
        }
    }

    /// When the `k`th of `count` equal pieces of work between `start` and `end` ended.
    @inline(__always)
    static func share(_ k: Int, of count: Int, from start: UInt64, to end: UInt64) -> UInt64 {
        guard end > start, count > 0 else { return start }
        return start &+ (end &- start) / UInt64(count) &* UInt64(k + 1)
    }

    /// Whether a posting after avail index `index`, up to the poll's reload, used buffers the
    /// tap did not see (see `firstUnknownPosting`); `noteLaterPostings` ran before.
    @inline(__always)
    func unknownPostingAfter(_ index: UInt16) -> Bool {
        laterBuffersUnknown || firstUnknownPosting.map { isLater($0, than: index) } ?? false
    }

    @inline(__always)
    func isLater(_ index: UInt16, than base: UInt16) -> Bool {
        let d = SplitRing.distance(from: base, to: index)
        return d != 0 && d < 0x8000
    }

    /// Walks the chains posted after the batch (they are copied next poll) so that the
    /// buffers they use are known to this poll's verdicts. Returns false when more were
    /// posted than the ring holds: the buffers of those overwritten are unknown.
    mutating func noteLaterPostings(from a: UInt16, to a3: UInt16) throws(RingError) -> Bool {
        guard !laterPostingsNoted else { return laterPostingsKnown }
        laterPostingsNoted = true
        let later = SplitRing.distance(from: a, to: a3)
        let count = min(later, size)
        for k in 0..<count {
            let index = a3 &- count &+ k
            let head = try layout.availEntry(index, in: memory)
            // Posted again up to a3: the walk reads that later posting's descriptors.
            if head >= size || availLatest[Int(head)] != index { laterBuffersUnknown = true; continue }
            if let chain = try? walker.walk(head: head) { noteBuffers(chain.segments, availIndex: index, head: head) }
        }
        // Read after a3 was loaded: a ring that lapped meanwhile (or whose next entry,
        // written before it is published, took the first slot read) had others there.
        atomicMemoryFence(ordering: .acquiring)
        let after = try layout.availIdx(in: memory)
        laterPostingsKnown = later <= size && SplitRing.distance(from: a, to: after) < size
        return laterPostingsKnown
    }

    /// Records the first readable and the first writable buffer of a posting.
    @inline(__always)
    mutating func noteBuffers(_ segments: [Segment], availIndex: UInt16, head: UInt16) {
        var readable = false, writable = false
        for s in segments {
            if s.isWritable {
                if !writable { postings.note(s.addr, availIndex: availIndex, head: head); writable = true }
            } else if !readable {
                postings.note(s.addr, availIndex: availIndex, head: head); readable = true
            }
            if readable && writable { break }
        }
    }

    /// Whether every readable byte copied into `segments` is still what guest memory holds.
    func copiesStillMatch(_ segments: ChainSegments) -> Bool {
        segments.withUnsafeEntries { e in
            for i in 0..<e.count where !e.isWritable(i) && e.captured(i) > 0 {
                let copied = e.bytes(i)
                let same: Bool
                if let p = memory.translate(gpa: e.address(i), count: copied.count), let c = copied.baseAddress {
                    same = memcmp(p, c, copied.count) == 0
                } else if let now = try? memory.bytes(e.address(i), count: copied.count) {
                    same = now.elementsEqual(copied)
                } else {
                    same = false
                }
                if !same { return false }
            }
            return true
        }
    }

    @inline(__always)
    func skipCount(start: UInt16, count: UInt16, reloaded: UInt16) -> UInt16 {
        // Entries start, start+1, ... ; entry i is overwritten once reloaded - i >= size.
        let behind = SplitRing.distance(from: start, to: reloaded)
        if behind < size { return 0 }
        return min(behind - size + 1, count)
    }

    @inline(__always)
    mutating func count(_ flags: RecordFlags) {
        // A used length beyond the buffers is the device's fault, flagged, but the bytes
        // were captured (QEMU puts data-out in the used length of every write).
        if flags.contains(.malformed) {
            counters.malformed += 1
        } else if flags.contains(.torn) {
            counters.torn += 1
        } else if flags.contains(.orphan) {
            counters.orphan += 1
        } else {
            counters.captured += 1
        }
    }

    mutating func nextStamp() {
        if stampEpoch == UInt32.max {
            for k in availStamp.indices { availStamp[k] = 0; usedStamp[k] = 0 }
            stampEpoch = 0
        }
        stampEpoch += 1
    }

    @inline(__always)
    mutating func stampAvail(_ head: UInt16, index: UInt16) {
        guard head < size else { return }
        availStamp[Int(head)] = stampEpoch
        availLatest[Int(head)] = index
    }

    @inline(__always)
    mutating func stampUsed(_ id: UInt32, index: UInt16) {
        guard id < UInt32(size) else { return }
        // Stamped in ring order: the first stamp of a poll is its first return.
        if usedStamp[Int(id)] != stampEpoch { firstReturn[Int(id)] = index }
        usedStamp[Int(id)] = stampEpoch
        usedLatest[Int(id)] = index
    }

    /// A late copy: its completion says so too.
    mutating func markPendingLate(slot: Int32) {
        guard slot >= 0, pool[Int(slot)].batchPosition != -2 else { return }
        pool[Int(slot)].flags.insert(.late)
    }

    /// The request's verdict reaches its completion: torn (and no longer malformed when
    /// the walk failed only because the chain was recycled; the error stays, as a clue).
    mutating func markPendingTorn(slot: Int32) {
        guard slot >= 0, pool[Int(slot)].batchPosition != -2 else { return }
        pool[Int(slot)].flags.insert(.torn)
        if pool[Int(slot)].flags.contains(.malformed) {
            pool[Int(slot)].flags.remove(.malformed)
        }
    }

    // MARK: - Records

    func dropRecord(count: UInt64, reason: DropMarker.Reason, index: UInt16, ts: UInt64) -> CaptureRecord {
        CaptureRecord(kind: .drop, deviceType: config.deviceType, deviceInstance: config.deviceInstance, queue: config.queue,
                      ringIndex: index, body: .drop(DropMarker(count: count, reason: reason)), timestampNs: ts)
    }

    /// Walks and copies the chain at `head`, registers it as pending and returns its
    /// available record (flags decided so far: indirect, malformed, pre-attach).
    mutating func snapshotAvailable(head: UInt16, index: UInt16, ts: UInt64, extraFlags: RecordFlags,
                                    usedBound: UInt16, batchPosition: Int32) -> CaptureRecord {
        let txID = UInt64(config.queue) << 48 | (nextSequence & 0xffff_ffff_ffff)
        nextSequence &+= 1
        // The record's fields as locals, the record made once at the return (see `completion`).
        var flags = extraFlags
        var errorCode: UInt16 = 0, errorDetail: UInt64 = 0
        var recordSegments = ChainSegments()
        var slot: Int32 = -1
        var headOK = head < size
        var changed = false
        var header = Self.noBuffer, headerLength: UInt32 = 0
        do {
            let chain = try walker.walkKeepingSegments(head: head)
            let walked = walker.lastSegments
            if chain.usesIndirect { flags.insert(.indirect) }
            let (segments, truncated, first, firstLength) = readableSnapshot(walked)
            header = first
            headerLength = firstLength
            if truncated { flags.insert(.snaplenTruncated) }
            recordSegments = segments
            changed = !descriptorsUnchanged(chain, walked)
            noteBuffers(walked, availIndex: index, head: head)
            slot = register(PendingChain(head: head, availIndex: index, transactionID: txID, availNs: ts,
                                         segments: segments, writableBytes: chain.writableBytes,
                                         flags: flags.intersection([.indirect, .preAttach]), errorCode: 0,
                                         errorDetail: 0, usedBound: usedBound, next: -1, batchPosition: batchPosition))
        } catch {
            let (code, detail) = RingErrorCode.of(error)
            flags.insert(.malformed)
            errorCode = code.rawValue
            errorDetail = detail
            if case .headOutOfRange = error { headOK = false }
            if headOK {
                let partial = Array(walker.segmentsBeforeFailure[...])
                let (segments, truncated, _, _) = readableSnapshot(partial)
                if truncated { flags.insert(.snaplenTruncated) }
                recordSegments = segments
                var writable: UInt64 = 0
                for s in partial where s.isWritable { writable += UInt64(s.len) }
                slot = register(PendingChain(head: head, availIndex: index, transactionID: txID, availNs: ts,
                                             segments: segments, writableBytes: writable,
                                             flags: flags.intersection([.preAttach, .malformed]), errorCode: code.rawValue,
                                             errorDetail: detail, usedBound: usedBound, next: -1, batchPosition: batchPosition))
            }
        }
        if batchPosition >= 0 {
            availBatch.append(AvailBatchEntry(headOK: headOK, changed: changed, slot: slot, index: index,
                                              header: header, headerEnd: header &+ UInt64(headerLength)))
        } else if changed {
            // Pre-attach snapshot: no batch decision follows, decide here.
            tornReasons.count(.descriptorsChanged)
            flags.insert(.torn)
            markPendingTorn(slot: slot)
        }
        return CaptureRecord(kind: .available, deviceType: config.deviceType, deviceInstance: config.deviceInstance,
                             queue: config.queue, head: head, flags: flags, transactionID: txID, ringIndex: index,
                             errorCode: errorCode, errorDetail: errorDetail, body: .chain(recordSegments), timestampNs: ts)
    }

    /// Builds the used record of one completion (torn is decided after the batch).
    mutating func completion(_ element: UsedElement, index: UInt16, ts: UInt64, into out: inout [CaptureRecord]) {
        // The record's fields as locals, the record made once in the append: a record built
        // up and then appended is copied (and its arrays retained and released), measured.
        var head = UInt16(truncatingIfNeeded: element.id)
        var flags: RecordFlags = []
        var transactionID: UInt64 = 0, latencyNs: UInt64 = 0
        var errorCode: UInt16 = 0, errorDetail: UInt64 = 0
        var segments = ChainSegments()
        var availPos: Int32 = -1
        var requestIndex: UInt16 = 0
        var response = Self.noBuffer, responseTaken = 0
        if element.id >= UInt32(size) {
            head = 0xffff
            flags.insert(.malformed)
            errorCode = RingErrorCode.usedIDOutOfRange.rawValue
            errorDetail = UInt64(element.id)
        } else if let slot = pendingSlot(head: UInt16(element.id), usedIndex: index) {
            // Read in place and unlinked after: a copy of the pending chain costs more than
            // the rest of the completion (measured).
            let pendingFlags = pool[slot].flags, availNs = pool[slot].availNs, writableBytes = pool[slot].writableBytes
            transactionID = pool[slot].transactionID
            latencyNs = ts >= availNs ? ts - availNs : 0
            flags = pendingFlags.intersection([.indirect, .preAttach, .malformed, .torn, .late])
            errorCode = pool[slot].errorCode
            errorDetail = pool[slot].errorDetail
            availPos = pool[slot].batchPosition
            requestIndex = pool[slot].availIndex
            let saved = pool[slot].segments
            let (snapshot, truncated, first, firstTaken) = writableSnapshot(saved, writableBytes: writableBytes, usedLength: element.len)
            let mayBeLaters = pool[slot].returnMayBeLost || pendingFlags.contains(.preAttach)
            unlinkFirst(head: Int(element.id))
            if mayBeLaters { mayBeReturnOfLaterPostings(head: Int(element.id), at: index) }
            response = first
            responseTaken = firstTaken
            if truncated { flags.insert(.snaplenTruncated) }
            segments = snapshot
            // A chain that did not walk has an incomplete segment list: no length to compare.
            if UInt64(element.len) > writableBytes && !pendingFlags.contains(.malformed) {
                flags.insert(.usedLengthExceeds)
                if errorCode == 0 {
                    errorCode = RingErrorCode.usedLengthExceeds.rawValue
                    errorDetail = UInt64(element.len)
                }
            }
        } else {
            // Not seen made available: read what the descriptors say now, for what it is worth.
            flags.insert(.orphan)
            transactionID = UInt64(config.queue) << 48 | (nextSequence & 0xffff_ffff_ffff)
            nextSequence &+= 1
            if let chain = try? walker.walk(head: UInt16(element.id)) {
                if chain.usesIndirect { flags.insert(.indirect) }
                let now = withoutBytes(chain.segments)
                let (snapshot, truncated, _, _) = writableSnapshot(now, writableBytes: chain.writableBytes, usedLength: element.len)
                if truncated { flags.insert(.snaplenTruncated) }
                segments = snapshot
            }
        }
        out.append(CaptureRecord(kind: .used, deviceType: config.deviceType, deviceInstance: config.deviceInstance,
                                 queue: config.queue, head: head, flags: flags, usedLength: element.len, transactionID: transactionID,
                                 latencyNs: latencyNs, ringIndex: index, errorCode: errorCode, errorDetail: errorDetail,
                                 body: .chain(segments), timestampNs: ts))
        usedBatch.append(UsedBatchEntry(availPos: availPos, availIndex: requestIndex, response: response,
                                        responseEnd: response &+ UInt64(responseTaken)))
    }

    // MARK: - Copies

    /// Appends a segment with `count` bytes copied from `gpa` (none if they are not in RAM).
    /// Static, so that the closures that build a chain's storage capture the memory alone:
    /// a closure that reads `self` copied the whole poller, every array retained (measured).
    @inline(__always)
    static func append(_ w: inout ChainSegments.Writer, from memory: Memory, address: UInt64, length: UInt32, flags: UInt16,
                       copying count: Int) {
        if count > 0, let p = memory.translate(gpa: address, count: count) {
            w.append(address: address, length: length, flags: flags, bytes: UnsafeRawBufferPointer(start: p, count: count))
        } else if count > 0, let bytes = try? memory.bytes(address, count: count) {
            bytes.withUnsafeBytes { w.append(address: address, length: length, flags: flags, bytes: $0) }
        } else {
            w.append(address: address, length: length, flags: flags)
        }
    }

    @inline(__always)
    static func recordFlags(_ s: Segment) -> UInt16 {
        s.flags.rawValue | (s.fromIndirect ? RecordSegment.fromIndirectFlag : 0)
    }

    /// The walked segments as record segments without bytes.
    mutating func withoutBytes(_ segments: [Segment]) -> ChainSegments {
        ChainSegments(in: &slab, count: segments.count, byteCapacity: 0) { w in
            for s in segments { w.append(address: s.addr, length: s.len, flags: Self.recordFlags(s)) }
        }
    }

    /// Every segment; bytes of the device-readable ones, headers whole, payload to the snap
    /// length; and the address and length of the first readable segment if bytes were
    /// copied from it. One storage for them all, sized in a first pass.
    mutating func readableSnapshot(_ segments: [Segment]) -> (ChainSegments, Bool, UInt64, UInt32) {
        var budget = keepReadable
        var truncated = false
        var first = Self.noBuffer, firstLength: UInt32 = 0, seen = false
        var total = 0
        for s in segments where !s.isWritable {
            let take = min(Int(s.len), budget)
            budget -= take
            total += take
            if take < Int(s.len) { truncated = true }
            if !seen { seen = true; if take > 0 { first = s.addr; firstLength = s.len } }
        }
        budget = keepReadable
        // Out of self: the closure must not capture self (it would copy the poller).
        var slab = self.slab
        defer { self.slab = slab }
        let memory = self.memory
        let out = ChainSegments(in: &slab, count: segments.count, byteCapacity: total) { w in
            for s in segments {
                if s.isWritable {
                    w.append(address: s.addr, length: s.len, flags: Self.recordFlags(s))
                    continue
                }
                let take = min(Int(s.len), budget)
                budget -= take
                Self.append(&w, from: memory, address: s.addr, length: s.len, flags: Self.recordFlags(s), copying: take)
            }
        }
        return (out, truncated, first, firstLength)
    }

    /// Every segment; bytes of the device-writable ones the device wrote (clamped to the
    /// used length), headers whole, payload to the snap length; and the address of the
    /// first writable segment and the bytes copied from it, if any were.
    mutating func writableSnapshot(_ segments: ChainSegments, writableBytes: UInt64, usedLength: UInt32) -> (ChainSegments, Bool, UInt64, Int) {
        var slab = self.slab
        defer { self.slab = slab }
        // Locals: the closures must not capture self (it would copy the poller).
        let memory = self.memory, keep = keepWritable
        return segments.withUnsafeEntries { e in
            var written = min(UInt64(usedLength), writableBytes)
            var budget = keep
            var truncated = false
            var first = Self.noBuffer, firstTaken = 0, seen = false
            var total = 0
            for i in 0..<e.count where e.isWritable(i) {
                let here = Int(min(UInt64(e.length(i)), written))
                written -= UInt64(here)
                let take = min(here, budget)
                budget -= take
                total += take
                if take < here { truncated = true }
                if !seen { seen = true; if take > 0 { first = e.address(i); firstTaken = take } }
            }
            written = min(UInt64(usedLength), writableBytes)
            budget = keep
            let out = ChainSegments(in: &slab, count: e.count, byteCapacity: total) { w in
                for i in 0..<e.count {
                    guard e.isWritable(i) else {
                        w.append(address: e.address(i), length: e.length(i), flags: e.flags(i))
                        continue
                    }
                    let here = Int(min(UInt64(e.length(i)), written))
                    written -= UInt64(here)
                    let take = min(here, budget)
                    budget -= take
                    Self.append(&w, from: memory, address: e.address(i), length: e.length(i), flags: e.flags(i), copying: take)
                }
            }
            return (out, truncated, first, firstTaken)
        }
    }

    /// Reads the chain's descriptors a second time: a change means the driver rewrote them
    /// while we copied (the chain was recycled, or the driver breaks the rules).
    func descriptorsUnchanged(_ chain: Chain, _ segments: [Segment]) -> Bool {
        if let t = chain.indirectTable {
            guard let d = descriptor(at: layout.descAddress(t.desc)),
                  d.addr == t.addr, d.len == t.len, d.flags & DescriptorFlags.indirect.rawValue != 0 else { return false }
        }
        for s in segments {
            let gpa: UInt64
            if s.fromIndirect {
                guard let t = chain.indirectTable else { return false }
                gpa = t.addr &+ 16 &* UInt64(s.index)
            } else {
                gpa = layout.descAddress(s.index)
            }
            guard let d = descriptor(at: gpa), d.addr == s.addr, d.len == s.len, d.flags == s.flags.rawValue else { return false }
        }
        return true
    }

    /// addr, len and flags of the descriptor at `gpa`, read directly when mapped.
    @inline(__always)
    func descriptor(at gpa: UInt64) -> (addr: UInt64, len: UInt32, flags: UInt16)? {
        if let p = memory.translate(gpa: gpa, count: Descriptor.size) {
            return (UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)),
                    UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
                    UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self)))
        }
        guard let d = try? memory.readDescriptor(gpa) else { return nil }
        return (d.addr, d.len, d.flags.rawValue)
    }

    // MARK: - Pending chains

    /// Adds a chain at the end of its head's list.
    mutating func register(_ chain: PendingChain) -> Int32 {
        let h = Int(chain.head)
        let slot: Int32
        if let s = freeSlots.popLast() {
            slot = s
            pool[Int(s)] = chain
        } else {
            slot = Int32(pool.count)
            pool.append(chain)
        }
        if lastOfHead[h] >= 0 { pool[Int(lastOfHead[h])].next = slot } else { firstOfHead[h] = slot }
        lastOfHead[h] = slot
        pendingCount += 1
        return slot
    }

    /// The pool slot of the pending chain of `head` that the completion at `usedIndex`
    /// returns: the oldest, unless a newer posting of the head was seen before this
    /// completion could have happened; then the older ones lost their completions (a used
    /// ring lap, or a pre-attach guess that was already complete) and are forgotten.
    /// The caller unlinks it (`unlinkFirst`) once read.
    mutating func pendingSlot(head: UInt16, usedIndex: UInt16) -> Int? {
        let h = Int(head)
        guard firstOfHead[h] >= 0 else { return nil }
        while true {
            let next = pool[Int(firstOfHead[h])].next
            guard next >= 0 else { break }
            let bound = pool[Int(next)].usedBound
            // usedIndex at or after the newer posting's bound: not the older one's completion.
            guard SplitRing.distance(from: bound, to: usedIndex) < 0x8000 else { break }
            unlinkFirst(head: h)
        }
        return Int(firstOfHead[h])
    }

    mutating func unlinkFirst(head h: Int) {
        let s = Int(firstOfHead[h])
        firstOfHead[h] = pool[s].next
        if firstOfHead[h] < 0 { lastOfHead[h] = -1 }
        pool[s].segments = []
        pool[s].next = -1
        pool[s].batchPosition = -2
        freeSlots.append(Int32(s))
        pendingCount -= 1
    }

    /// Pending chains right now.
    public var pendingChainCount: Int { pendingCount }

    /// Used entries were lost: every pending chain may have been returned in them.
    mutating func forgetReturnsOfAllPending() {
        for h in 0..<Int(size) {
            var s = firstOfHead[h]
            while s >= 0 { pool[Int(s)].returnMayBeLost = true; s = pool[Int(s)].next }
        }
    }

    /// The completion at `index` went to a posting of `head` whose own return may have gone
    /// by unseen: it may return any later posting of the head instead. Those are judged as
    /// returned there (a chain of this batch) and their own completions trusted no more.
    mutating func mayBeReturnOfLaterPostings(head h: Int, at index: UInt16) {
        var s = firstOfHead[h]
        while s >= 0 {
            pool[Int(s)].returnMayBeLost = true
            let position = Int(pool[Int(s)].batchPosition)
            if position >= 0 && position < availBatch.count { availBatch[position].mayHaveReturned(at: index) }
            s = pool[Int(s)].next
        }
    }
}

/// One available record of a poll, as the batch's checks see it.
struct AvailBatchEntry {
    var headOK: Bool
    var changed: Bool
    var slot: Int32
    /// Its avail index.
    var index: UInt16
    /// Whether the batch also returned it, and at which used index.
    var completed = false
    var completedAt: UInt16 = 0
    /// used.idx loaded right after its copy.
    var usedAfterCopy: UInt16 = 0
    /// The earliest used index that may have returned it when no completion could be
    /// matched to it for sure (see `PendingChain.returnMayBeLost`).
    var perhapsReturnedAt: UInt16?
    /// The first readable buffer it copied bytes from (noBuffer if none), and its end.
    var header: UInt64
    var headerEnd: UInt64
    /// Whether its verdict waits for the buffer's next posting, and the serial of the
    /// earlier held verdict that waits on it (-1: none).
    var held = false
    var waitingVerdict = -1

    init(headOK: Bool, changed: Bool, slot: Int32, index: UInt16, header: UInt64, headerEnd: UInt64) {
        self.headOK = headOK; self.changed = changed; self.slot = slot; self.index = index
        self.header = header; self.headerEnd = headerEnd
    }

    /// The first such index counts: an earlier return judges the copy more strictly.
    mutating func mayHaveReturned(at index: UInt16) {
        if perhapsReturnedAt == nil { perhapsReturnedAt = index }
    }
}

/// One used record of a poll, as the batch's checks see it.
struct UsedBatchEntry {
    /// The batch position of its request (-1: not in this batch).
    var availPos: Int32
    /// The avail index of the request it returns (pending only).
    var availIndex: UInt16
    /// The first writable buffer it read (noBuffer if none), and the end of the bytes read.
    var response: UInt64
    var responseEnd: UInt64
}
