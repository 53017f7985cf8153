import CVQSys
import Foundation
import Synchronization
import VQRecord
import VirtioRing

// A second attach source for LayoutTap: layouts that come from somewhere other than a
// layout file (QEMU over QMP). The tap's poller, records, counters and output stay one
// path; only "is the device ready, where are its rings, did it reset or go away" changes.

/// What a provider saw since it was last asked.
public enum LayoutChange: Sendable, Equatable {
    /// The rings in the layout are live (a new generation: indices start afresh).
    case ready(DeviceLayout)
    /// The driver reset the device: the rings are invalid until the next `.ready`.
    case reset(DeviceLayout)
    /// The device or its process went away; one line for the user.
    case gone(String)
    /// Guest memory is laid out differently (the firmware moved the BIOS shadow): map the
    /// layout's regions; the rings and their indices stay as they are.
    case memoryMap(DeviceLayout)
}

public protocol LayoutProvider: AnyObject {
    /// The layout now if its rings are live, else nil (not ready yet).
    func currentReadyLayout() throws(TapError) -> DeviceLayout?
    /// One look at the device: nil when nothing changed.
    func poll() throws(TapError) -> LayoutChange?
    /// How long to sleep between polls while waiting for the rings to become live.
    var setupIntervalNs: UInt64 { get }
}

/// Layouts from a running QEMU (QMP): `QEMUWatcher` polls the device status on a thread
/// of its own, because a QMP round trip takes 1 ms to tens of ms while the guest runs
/// (QEMU's main loop is busy): polled inline, it would stall the ring poller and the guest
/// would recycle buffers before the tap copies them. `poll()` only takes what it found.
public final class QMPLayoutProvider: LayoutProvider, @unchecked Sendable {
    public let watcher: QEMUWatcher
    private let initial: DeviceLayout
    private let pending = Mutex<(changes: [LayoutChange], stop: Bool)>(([], false))
    private var thread: Thread?

    /// Takes the watcher over: from now on only the watching thread touches it.
    public init(watcher: QEMUWatcher) {
        self.watcher = watcher
        initial = watcher.layout
        let t = Thread { [self] in watchLoop() }
        t.name = "vqtap-qmp"
        thread = t
        t.start()
    }

    /// Connects to `socketPath` (waiting up to `waitingSeconds` for the socket to appear)
    /// and discovers the device.
    public convenience init(socketPath: String, options: QEMUDiscoveryOptions, waitingSeconds: Double) throws(TapError) {
        do {
            let client = try QMPClient.connect(socketPath: socketPath, waiting: waitingSeconds)
            let watcher = try QEMUWatcher(discovery: QEMUDiscovery(client: client, options: options), interval: 0.005,
                                          setupInterval: 0.001)
            self.init(watcher: watcher)
        } catch {
            throw TapError("\(error)")
        }
    }

    /// Stops the watching thread (it ends after its current poll).
    public func stop() { pending.withLock { $0.stop = true } }

    private func watchLoop() {
        while !pending.withLock({ $0.stop }) {
            var change: LayoutChange?
            do {
                switch try watcher.poll() {
                case .ready(let l)?: change = .ready(l)
                case .reset(let l)?: change = .reset(l)
                case .gone(let reason)?: change = .gone(reason)
                case nil: change = nil
                }
            } catch {
                change = .gone(error.meansQEMUIsGone ? "QEMU closed the QMP connection (it exited?)" : "QMP: \(error)")
            }
            if let change {
                pending.withLock { $0.changes.append(change) }
                if case .gone = change { return }
                // Right after the ready, while the tap attaches: the map may have changed
                // since it was last read (the firmware ran since discovery).
                if case .ready = change, let moved = try? watcher.refreshMemoryMap() {
                    pending.withLock { $0.changes.append(.memoryMap(moved)) }
                }
            }
            let pause = watcher.layout.status == .ready ? watcher.interval : watcher.setupInterval
            var ts = timespec(tv_sec: 0, tv_nsec: Int(pause * 1e9))
            nanosleep(&ts, nil)
        }
    }

    public func currentReadyLayout() throws(TapError) -> DeviceLayout? {
        // Only before the first change: later layouts arrive through poll().
        initial.status == .ready && pending.withLock({ $0.changes.isEmpty }) ? initial : nil
    }

    public func poll() throws(TapError) -> LayoutChange? {
        pending.withLock { p in p.changes.isEmpty ? nil : p.changes.removeFirst() }
    }

    public var setupIntervalNs: UInt64 { 500_000 }
}

extension LayoutTap {
    /// `loadReadyLayout` for a provider: the layout once the rings are live.
    func providerReadyLayout(_ provider: any LayoutProvider, deadline: UInt64?,
                             shouldStop: () -> Bool) throws(TapError) -> DeviceLayout? {
        if let l = try provider.currentReadyLayout() { return l }
        guard options.wait else {
            throw TapError("\(options.layoutPath): the device's driver is not ready (no DRIVER_OK); --wait waits for it")
        }
        while true {
            switch try provider.poll() {
            case .ready(let l)?: return l
            case .gone(let reason)?: throw TapError(reason)
            case .reset?, .memoryMap?, nil: break
            }
            if let deadline, clock.now() >= deadline {
                throw TapError("gave up waiting: \(options.layoutPath): the device's driver is not ready")
            }
            if shouldStop() { return nil }
            var ts = timespec(tv_sec: 0, tv_nsec: Int(provider.setupIntervalNs))
            nanosleep(&ts, nil)
        }
    }

    /// `watch` for a provider: follows resets (a reset marker, then a fresh attach with new
    /// ring indices on the next ready, even at the same addresses) and notices the end.
    func watchProvider(_ provider: any LayoutProvider, shouldStop: () -> Bool,
                       deliver: RecordDelivery) throws(TapError) -> TapOutcome? {
        if let memory, !memory.isIntact {
            return gone("guest memory went away (a memory file was truncated)", deliver: deliver)
        }
        var change = try provider.poll()
        while true {
            switch change {
            case nil:
                return nil
            case .gone(let reason)?:
                return gone(reason, deliver: deliver)
            case .memoryMap(let moved)?:
                try remap(moved)
                return nil
            case .ready(let next)?:
                // Reset and re-initialised between two polls: close the old rings first.
                if !deliver(closingRecords(.reset, generation: next.generation)) { return finish(deliver: deliver) }
                var started: [CaptureRecord] = []
                try start(next, state: .reattached, fresh: true, into: &started)
                if !deliver(started) { return finish(deliver: deliver) }
                return nil
            case .reset(let l)?:
                // The chains in flight will never complete; wait for the new rings.
                if !deliver(closingRecords(.reset, generation: l.generation)) { return finish(deliver: deliver) }
                while true {
                    if shouldStop() { return finish(deliver: deliver) }
                    var ts = timespec(tv_sec: 0, tv_nsec: Int(provider.setupIntervalNs))
                    nanosleep(&ts, nil)
                    if let c = try provider.poll() {
                        if case .ready(let next) = c {
                            var started: [CaptureRecord] = []
                            try start(next, state: .reattached, fresh: true, into: &started)
                            if !deliver(started) { return finish(deliver: deliver) }
                            return nil
                        }
                        change = c
                        break
                    }
                }
            }
        }
    }
}
