import CVQSys
import Foundation
import VirtioRing

// Keeps a DeviceLayout current while the guest driver resets and re-initialises the device.
// QMP has no event for device status, so the watcher polls x-query-virtio-status (one small
// round trip) and reports transitions:
//   DRIVER_OK appears  -> re-read every queue, new generation, `.ready`
//   DRIVER_OK drops    -> new generation, no queues, `.reset` (rings are invalid)
//   socket closed, QEMU exited, device unplugged -> `.gone`
// Every reset is a new generation even when the rings come back at the same addresses: the
// ring indices restart at 0. A reset and re-initialisation that both fall between two polls
// are not seen (Linux takes far longer than a poll interval between the two).

public final class QEMUWatcher {
    public enum Change: Sendable, Equatable {
        /// The driver set DRIVER_OK: the rings in the layout are live.
        case ready(DeviceLayout)
        /// The driver reset the device: rings invalid until the next `.ready`.
        case reset(DeviceLayout)
        /// QEMU or the device went away; the reason is one line for the user.
        case gone(reason: String)
    }

    public let discovery: QEMUDiscovery
    public let device: VirtioDeviceRef
    public private(set) var layout: DeviceLayout
    /// The device status byte at the last poll.
    public private(set) var deviceStatus: UInt8
    /// Seconds between two polls in `waitForChange` while the rings are live (how soon a
    /// reset is noticed). Each x-query-virtio-status costs QEMU ~0.6 ms of CPU: polling
    /// every 2 ms keeps ~23% of a core busy in QEMU, every 5 ms ~10%, every 10 ms ~7%.
    public var interval: Double
    /// Seconds between two polls while waiting for DRIVER_OK (short: rings appear then).
    public var setupInterval: Double
    public private(set) var isGone = false
    /// The file of each memory backend serving guest RAM, by backend id (found at discovery).
    public let backendFiles: [String: String]

    /// Round-trip statistics of the status polls, in nanoseconds.
    public private(set) var polls: Int = 0
    public private(set) var totalRoundTripNs: UInt64 = 0
    public private(set) var maxRoundTripNs: UInt64 = 0
    /// Monotonic time (ns) of the poll that reported the last change.
    public private(set) var lastChangeNs: UInt64 = 0
    /// Wall clock (ns since the epoch) when the last status answer arrived: compare with
    /// QEMU's `virtio_set_status` trace to see how late a change was noticed.
    public private(set) var statusSeenRealtimeNs: UInt64 = 0

    /// Discovers the device now (generation `generation`) and prepares to watch it.
    public init(discovery: QEMUDiscovery, generation: UInt64 = 1, interval: Double = 0.005,
                setupInterval: Double = 0.002) throws(QMPError) {
        self.discovery = discovery
        self.interval = interval
        self.setupInterval = setupInterval
        device = try discovery.selectDevice()
        let ranges = try discovery.memoryMap()
        backendFiles = try discovery.backendFiles(for: ranges)
        let regions = MemoryTree.regions(from: ranges, files: backendFiles)
        var first: (layout: DeviceLayout, status: VirtioDeviceStatus)?
        // The device may reset between the status and the queue reads: retry a few times.
        for attempt in 0..<5 {
            do {
                first = try discovery.layoutAndStatus(of: device, regions: regions, generation: generation)
                break
            } catch where error.kind == .commandFailed && attempt < 4 {
                continue
            }
        }
        guard let first else { throw QMPError(.unexpectedAnswer, "QMP: cannot read the queues of \(device.path)") }
        layout = first.layout
        deviceStatus = first.status.status
    }

    public var meanRoundTripNs: UInt64 { polls == 0 ? 0 : totalRoundTripNs / UInt64(polls) }

    /// One poll: returns the change since the previous poll, or nil.
    public func poll() throws(QMPError) -> Change? {
        if isGone { return nil }
        if let gone = goneByEvent() { return markGone(gone) }
        let t0 = vq_monotonic_ns()
        let st: VirtioDeviceStatus
        do {
            st = try discovery.status(of: device)
        } catch {
            switch error.kind {
            case .closed: return markGone("QEMU closed the QMP connection (it exited?)")
            case .commandFailed: return markGone("device \(device.path) is gone: \(error.message)")
            default: throw error
            }
        }
        let rtt = vq_monotonic_ns() - t0
        statusSeenRealtimeNs = vq_realtime_ns()
        polls += 1
        totalRoundTripNs += rtt
        maxRoundTripNs = max(maxRoundTripNs, rtt)
        deviceStatus = st.status

        switch (layout.status, st.driverOK) {
        case (.ready, false):
            layout.generation += 1
            layout.status = .resetting
            layout.queues = []
            layout.features = st.features
            lastChangeNs = vq_monotonic_ns()
            return .reset(layout)
        case (.resetting, true):
            let queues: [VirtqueueStatus]
            do {
                queues = try discovery.queues(of: device, count: st.numQueues)
            } catch where error.kind == .commandFailed {
                return nil  // reset again while we read: the next poll decides
            }
            var next = QEMUDiscovery.layout(device: device, status: st, queues: queues, regions: layout.regions,
                                            generation: layout.generation + 1, pid: discovery.pid,
                                            options: discovery.options)
            next.config = layout.config.merging(next.config) { _, new in new }
            layout = next
            lastChangeNs = vq_monotonic_ns()
            return .ready(layout)
        default:
            return nil
        }
    }

    /// Reads the guest-physical memory map again: the new layout when its regions changed
    /// (the map read at discovery, before the firmware ran, lacks the shadowed BIOS area
    /// where SeaBIOS keeps its requests), nil when they did not. Called after each ready,
    /// not before it: one more round trip would delay the attach.
    public func refreshMemoryMap() throws(QMPError) -> DeviceLayout? {
        if isGone { return nil }
        let regions = MemoryTree.regions(from: try discovery.memoryMap(), files: backendFiles)
        guard !regions.isEmpty, regions != layout.regions else { return nil }
        layout.regions = regions
        return layout
    }

    /// Starts a new generation from fresh answers, whatever the status did. For a ring
    /// poller that saw an index move impossibly (more than the queue size, or backwards):
    /// a reset and re-initialisation that fell between two polls.
    public func resync() throws(QMPError) -> Change {
        if isGone { return .gone(reason: "device \(device.path) is gone") }
        let next: (layout: DeviceLayout, status: VirtioDeviceStatus)
        do {
            next = try discovery.layoutAndStatus(of: device, regions: layout.regions, generation: layout.generation + 1)
        } catch {
            switch error.kind {
            case .closed: return markGone("QEMU closed the QMP connection (it exited?)")
            case .commandFailed: return markGone("device \(device.path) is gone: \(error.message)")
            default: throw error
            }
        }
        var l = next.layout
        l.config = layout.config.merging(l.config) { _, new in new }
        layout = l
        deviceStatus = next.status.status
        lastChangeNs = vq_monotonic_ns()
        return l.status == .ready ? .ready(l) : .reset(l)
    }

    /// Polls every `interval` until a change or `timeout` seconds; nil at the timeout.
    public func waitForChange(timeout: Double) throws(QMPError) -> Change? {
        let deadline = QMPClient.deadline(after: timeout)
        while true {
            if let change = try poll() { return change }
            if isGone || vq_monotonic_ns() >= deadline { return nil }
            let pause = layout.status == .ready ? interval : setupInterval
            var ts = timespec(tv_sec: Int(pause), tv_nsec: Int((pause - pause.rounded(.down)) * 1e9))
            nanosleep(&ts, nil)
        }
    }

    /// The layout once the rings are live: now if they are, else after the next DRIVER_OK
    /// (`vqtap capture --wait`). Nil at the timeout; throws when QEMU or the device is gone.
    public func waitUntilReady(timeout: Double) throws(QMPError) -> DeviceLayout? {
        if layout.status == .ready { return layout }
        let deadline = QMPClient.deadline(after: timeout)
        while true {
            let left = Double(deadline &- min(deadline, vq_monotonic_ns())) / 1e9
            switch try waitForChange(timeout: left) {
            case .ready(let l)?: return l
            case .gone(let reason)?: throw QMPError(.closed, "QMP: \(reason)")
            case .reset?: continue
            case nil: return nil
            }
        }
    }

    private func markGone(_ reason: String) -> Change {
        isGone = true
        lastChangeNs = vq_monotonic_ns()
        return .gone(reason: reason)
    }

    /// SHUTDOWN means QEMU is exiting; DEVICE_DELETED for our device (or its proxy) means
    /// it was unplugged.
    private func goneByEvent() -> String? {
        for e in discovery.client.takeEvents() {
            switch e.name {
            case "SHUTDOWN":
                return "QEMU is shutting down"
            case "DEVICE_DELETED":
                let path = e.data["path"]?.string ?? ""
                let owner = device.path.hasSuffix("/virtio-backend") ? String(device.path.dropLast("/virtio-backend".count)) : device.path
                if !path.isEmpty && (path == device.path || path == owner) {
                    return "device \(device.path) was unplugged"
                }
            default:
                continue
            }
        }
        return nil
    }
}
