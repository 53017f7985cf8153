import VQRecord
import VirtioRing

// One poller per device (issue 4): every queue of the device, polled in index order, each
// with its own state and counters. Attaching emits one device-state marker per queue (the
// marker carries that queue's ring addresses and the device's configuration), then the
// pre-attach snapshot of each queue.

public struct DevicePoller<Memory: GuestMemory> {
    public private(set) var layout: DeviceLayout
    public private(set) var memory: Memory
    public private(set) var queues: [QueuePoller<Memory>]
    public let deviceInstance: UInt16

    /// One queue poller per queue of `layout`; header lengths from `framer`.
    public init(memory: Memory, layout: DeviceLayout, framer: some ChainFramer, snaplen: Int,
                deviceInstance: UInt16 = 0, limits: ChainLimits = ChainLimits()) throws(TapError) {
        self.layout = layout
        self.memory = memory
        self.deviceInstance = deviceInstance
        var queues: [QueuePoller<Memory>] = []
        for q in layout.queues.sorted(by: { $0.index < $1.index }) {
            let ring: SplitQueueLayout
            do {
                ring = try SplitQueueLayout(q)
                try ring.check(in: memory)
            } catch {
                throw TapError("queue \(q.index): \(error)")
            }
            let config = QueueCaptureConfig(queue: q.index, deviceType: UInt16(truncatingIfNeeded: layout.device.id),
                                            deviceInstance: deviceInstance,
                                            readableHeader: framer.readableHeaderLength(queue: q.index),
                                            writableHeader: framer.writableHeaderLength(queue: q.index),
                                            snaplen: snaplen, limits: Self.limits(limits, queueSize: q.size))
            queues.append(QueuePoller(memory: memory, layout: ring, config: config))
        }
        self.queues = queues
    }

    /// Reads through `memory` from now on (guest memory was mapped again): rings, indices
    /// and chains in flight stay.
    public mutating func replaceMemory(_ memory: Memory, regions: [DeviceLayout.Region]) {
        self.memory = memory
        layout.regions = regions
        for k in queues.indices { queues[k].replaceMemory(memory) }
    }

    /// Transaction ids go on from where `old` (the previous generation) left them, so that
    /// they stay unique in a capture across resets (Wireshark pairs requests by them).
    public mutating func continueTransactionIDs(after old: DevicePoller) {
        for k in queues.indices {
            if let previous = old.queues.first(where: { $0.config.queue == queues[k].config.queue }) {
                queues[k].nextSequence = max(queues[k].nextSequence, previous.nextSequence)
            }
        }
    }

    /// No indirect table longer than the queue (2.7.5.3.1: a chain is never longer than
    /// the queue size; QEMU refuses such tables too).
    static func limits(_ limits: ChainLimits, queueSize: UInt16) -> ChainLimits {
        ChainLimits(maxIndirectEntries: min(limits.maxIndirectEntries, max(1, Int(queueSize))),
                    maxChainLength: limits.maxChainLength)
    }

    public var cdbSize: UInt32 { UInt32(clamping: layout.config["cdb_size"] ?? 32) }
    public var senseSize: UInt32 { UInt32(clamping: layout.config["sense_size"] ?? 96) }

    /// The marker of `state` for every queue.
    public func stateMarkers(_ state: DeviceStateMarker.State, timestampNs: UInt64) -> [CaptureRecord] {
        queues.map { q in
            CaptureRecord(kind: .deviceState, deviceType: q.config.deviceType, deviceInstance: deviceInstance, queue: q.config.queue,
                          body: .deviceState(DeviceStateMarker(
                              state: state, generation: layout.generation, features: layout.features, queueSize: q.layout.size,
                              queueCount: UInt16(clamping: layout.queues.count), cdbSize: cdbSize, senseSize: senseSize,
                              descAddress: q.layout.desc, availAddress: q.layout.avail, usedAddress: q.layout.used,
                              deviceName: layout.device.name)),
                          timestampNs: timestampNs)
        }
    }

    /// Emits the `state` markers and starts every queue: at the current indices with a
    /// pre-attach snapshot, or, after a reset (`fresh`), at index 0 with nothing outstanding.
    public mutating func attach(_ state: DeviceStateMarker.State, fresh: Bool, clock: TapClock,
                                into out: inout [CaptureRecord]) throws(TapError) {
        var snapshot: [CaptureRecord] = []
        for k in queues.indices {
            if fresh {
                queues[k].startFresh()
            } else {
                do { try queues[k].attach(clock: clock, into: &snapshot) } catch { throw TapError("queue \(queues[k].config.queue): \(error)") }
            }
        }
        // Stamped after every index was read: what completed before it was never the tap's to see.
        out.append(contentsOf: stateMarkers(state, timestampNs: clock.now()))
        out.append(contentsOf: snapshot)
    }

    /// Polls every queue once. Returns whether any queue had something new.
    @discardableResult
    public mutating func poll(clock: TapClock, into out: inout [CaptureRecord]) throws(TapError) -> Bool {
        var active = false
        for k in queues.indices {
            do {
                if try queues[k].poll(clock: clock, into: &out) { active = true }
            } catch {
                throw TapError("queue \(queues[k].config.queue): \(error)")
            }
        }
        return active
    }

    /// Hands out every record a queue holds back for a verdict (the capture ends, or the
    /// device was reset): those still waiting for a verdict are flagged `late`.
    public mutating func releaseAllHeld(into out: inout [CaptureRecord]) {
        for k in queues.indices { queues[k].releaseAllHeld(into: &out) }
    }

    /// Counters per queue, in queue order.
    public var queueCounters: [(queue: UInt16, counters: TapCounters)] {
        queues.map { ($0.config.queue, $0.counters) }
    }

    public var totalCounters: TapCounters {
        queues.reduce(TapCounters()) { $0 + $1.counters }
    }

    public var tornReasons: TornReasons {
        queues.reduce(TornReasons()) { $0 + $1.tornReasons }
    }

    /// Chains made available and not yet returned, per queue, oldest first.
    public var pendingChains: [(queue: UInt16, chains: [PendingChain])] {
        queues.map { ($0.config.queue, $0.pending) }
    }
}
