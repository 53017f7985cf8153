#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CVQSys
import Foundation

// `vqtap simulate`: builds the guest RAM, the device and the driver, runs them (two threads,
// or one taking turns), and ends on --duration, stop() or a signal, then drains what is in
// flight, writes the summary and removes the memory file unless asked to keep it.

public struct SimResult: Sendable {
    public var driver: DriverCounters
    public var device: DeviceCounters
    /// Seconds from the end of the scan to the stop.
    public var elapsed: Double
    /// Completed commands per second over `elapsed`.
    public var iops: Double
    public var errors: [String]
    /// 0 ok, 3 the memory went away.
    public var exitCode: Int32
    public var memoryPath: String
    public var truthLines: UInt64
}

public final class Simulator: @unchecked Sendable {
    /// Set by the CLI's SIGINT/SIGTERM handler.
    public static let interrupted = ManagedAtomic<Bool>(false)

    public let config: SimConfig
    public let memory: SimMemory
    let transport = SimTransport()
    let truth: TruthSink?
    let device: SimDevice
    let driver: SimDriver
    let deviceDone = ManagedAtomic<Bool>(false)
    let memoryGone = ManagedAtomic<Bool>(false)

    public init(config: SimConfig) throws(SimError) {
        if let p = config.problem { throw SimError(p) }
        self.config = config
        let path: String
        if let p = config.memoryPath {
            path = p
        } else {
            // /dev/shm is small in many containers (64M): fall back to /tmp rather than fault later.
            path = Self.freeBytes(in: "/dev/shm") >= config.ramSize ? "/dev/shm/vqtap-sim-\(getpid())" : "/tmp/vqtap-sim-\(getpid())"
        }
        let dir = path.split(separator: "/").dropLast().joined(separator: "/")
        let free = Self.freeBytes(in: dir.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : (path.hasPrefix("/") ? "/" + dir : dir))
        if free < config.requiredRAM {
            throw SimError("--memory \(path): \(free >> 20)M free there, the run needs \(config.requiredRAM >> 20)M (use --memory elsewhere or a smaller --iodepth/--bs)")
        }
        memory = try SimMemory(creating: path, size: Int(config.ramSize), gpaBase: config.gpaBase)
        do {
            truth = try config.truthPath.map { (p: String) throws(SimError) -> TruthSink in try TruthSink(path: p) }
            device = try SimDevice(config: config, memory: memory, transport: transport, truth: truth)
            driver = try SimDriver(config: config, memory: memory, transport: transport, truth: truth, device: device)
        } catch {
            if !config.keep { memory.removeFile() }
            throw error
        }
    }

    public var memoryPath: String { memory.path }

    /// Bytes an unprivileged writer may still use in the filesystem holding `dir` (max if unknown).
    static func freeBytes(in dir: String) -> UInt64 {
        var st = statvfs()
        guard statvfs(dir, &st) == 0 else { return .max }
        return UInt64(st.f_bavail) &* UInt64(st.f_frsize)
    }

    /// Asks a running simulation to stop (any thread).
    public func stop() { transport.stop.store(true, ordering: .releasing) }

    var shouldStop: Bool {
        transport.stop.load(ordering: .relaxed) || Simulator.interrupted.load(ordering: .relaxed)
    }

    /// Runs until --duration, stop() or a signal. Blocks the calling thread.
    public func run() -> SimResult {
        let pin = config.cpus
        if config.threads == 2 {
            let devThread = Thread { [self] in
                if pin.count > 1 { Self.pin(pin[1]) } else if pin.count == 1 { Self.pin(pin[0]) }
                deviceLoop()
            }
            devThread.stackSize = 1 << 20
            devThread.start()
            if let c = pin.first { Self.pin(c) }
            driverLoop(alone: false)
            while !deviceDone.load(ordering: .acquiring) { usleep(100) }
        } else {
            if let c = pin.first { Self.pin(c) }
            // Its paced sleeps (driverLoop) wake on time.
            if config.rate > 0 { _ = vq_precise_sleeps() }
            driverLoop(alone: true)
        }
        return finish()
    }

    func deviceLoop() {
        var idle = 0
        while !transport.stop.load(ordering: .relaxed) {
            let now = monotonicNs()
            if device.step(now: now) == 0 {
                idle += 1
                if idle > 4000 { usleep(20); idle = 0 }
            } else {
                idle = 0
            }
        }
        deviceDone.store(true, ordering: .releasing)
    }

    /// A paced single-thread run sleeps when nothing is due for this long, and wakes this
    /// much early (a sleep can overshoot by tens of microseconds).
    static let sleepAboveNs: UInt64 = 100_000
    static let wakeEarlyNs: UInt64 = 40_000

    func driverLoop(alone: Bool) {
        var idle = 0
        var runStart: UInt64 = 0
        var lastCheck: UInt64 = 0
        var stopping = false
        var stopAt: UInt64 = 0
        while true {
            let now = monotonicNs()
            var work = driver.step(now: now)
            if alone { work += device.step(now: now) }
            if runStart == 0 && driver.phase == .running { runStart = now; driver.completedAtRunStart = driver.counters.completed }
            if now &- lastCheck > 50_000_000 {
                lastCheck = now
                if !memory.isIntact { memoryGone.store(true, ordering: .relaxed); break }
            }
            if !stopping {
                let timeUp = config.durationNs > 0 && runStart != 0 && now &- runStart >= config.durationNs
                if timeUp || shouldStop {
                    stopping = true
                    stopAt = now
                    driver.stopIssuing(now: now)
                }
            } else if driver.inflight == 0 || now &- stopAt > 500_000_000 {
                break
            }
            if work == 0 {
                idle += 1
                if alone && config.rate > 0 {
                    // A paced run sleeps until shortly before its next command or completion
                    // (the demo's 5000 IOPS would otherwise spin a whole core); the last
                    // stretch is spun, so that times stay exact.
                    let next = min(driver.nextDueNs(), device.nextDueNs(now: now))
                    if next > now &+ Self.sleepAboveNs {
                        var ts = timespec(tv_sec: 0, tv_nsec: Int(min(next &- now &- Self.wakeEarlyNs, 2_000_000)))
                        nanosleep(&ts, nil)
                        idle = 0
                        continue
                    }
                }
                if idle > 4000 { usleep(20); idle = 0 }
            } else {
                idle = 0
            }
        }
        driver.elapsedEnd = stopAt == 0 ? monotonicNs() : stopAt
        driver.runStart = runStart
        transport.stop.store(true, ordering: .releasing)
    }

    func finish() -> SimResult {
        let now = monotonicNs()
        // The device has stopped: collect what it returned after the driver's last turn.
        for qi in 2..<driver.queueCount { _ = driver.reap(qi, now: now) }
        _ = driver.reapControl(now: now)
        _ = driver.reapEvents(now: now)
        driver.abandonInflight(now: now)
        let elapsed = driver.runStart == 0 ? 0 : Double(driver.elapsedEnd &- driver.runStart) / 1e9
        // The scan's commands come before the clock starts: they are not in the rate.
        let iops = elapsed > 0 ? Double(driver.counters.completed - driver.completedAtRunStart) / elapsed : 0
        var result = SimResult(driver: driver.counters, device: device.counters, elapsed: elapsed, iops: iops, errors: driver.errors,
                               exitCode: memoryGone.load(ordering: .relaxed) ? 3 : 0, memoryPath: memory.path, truthLines: 0)
        if let truth {
            truth.write(summaryLine(result))
            truth.flush()
            result.truthLines = truth.lines
        }
        // The layout file stays (its pid tells a tap the device is gone); the RAM does not.
        if !config.keep { memory.removeFile() }
        return result
    }

    func summaryLine(_ r: SimResult) -> JSONLine {
        var j = JSONLine()
        j.openObject()
        j.open("summary")
        j.field("cmd", r.driver.commands)
        j.field("completed", r.driver.completed)
        j.field("reads", r.driver.reads)
        j.field("writes", r.driver.writes)
        j.field("others", r.driver.others)
        j.field("tmf", r.driver.tmfs)
        j.field("an", r.driver.ans)
        j.field("event", r.driver.events)
        j.field("events_dropped", r.device.eventsDropped)
        j.field("events_missed", r.driver.eventsMissed)
        j.field("check_conditions", r.driver.checkConditions)
        j.field("unit_attentions", r.driver.unitAttentions)
        j.field("aborted", r.driver.aborted)
        j.field("reset", r.driver.resetResponses)
        j.field("bad_target", r.driver.badTarget)
        j.field("rejected", r.driver.rejected)
        j.field("orphans", r.driver.orphans)
        j.field("lost_in_reset", r.driver.lostInReset)
        j.field("device_resets", r.driver.deviceResets)
        j.field("verified_blocks", r.driver.verifiedBlocks)
        j.field("verify_errors", r.driver.verifyErrors)
        j.open("faults")
        for f in SimFault.allCases {
            let n = r.driver.injected[Int(f.code)] + r.device.injected[Int(f.code)]
            if n > 0 {
                var k = JSONLine(); k.string(f.rawValue)
                j.comma(); j.bytes += k.bytes; j.bytes.append(UInt8(ascii: ":")); j.number(n)
            }
        }
        j.close()
        j.field("threads", config.threads)
        j.field("queues", config.queues)
        j.field("duration_s", r.elapsed)
        j.field("iops", r.iops)
        j.close()
        j.close()
        return j
    }

    /// The one-line summary printed on stderr.
    public static func summaryText(_ r: SimResult, threads: Int) -> String {
        let iops = Int(r.iops.rounded())
        var s = "vqtap simulate: \(r.driver.completed) requests in \(String(format: "%.2f", r.elapsed)) s, \(iops) IOPS (\(threads) thread\(threads == 1 ? "" : "s"))"
        s += ", \(r.driver.tmfs) TMF, \(r.driver.ans) AN, \(r.driver.events) events"
        if r.driver.deviceResets > 0 { s += ", \(r.driver.deviceResets) resets" }
        s += ", \(r.driver.verifiedBlocks) blocks verified, \(r.driver.verifyErrors) errors"
        return s
    }

    static func pin(_ cpu: Int) { _ = vq_pin_thread_to_cpu(Int32(cpu)) }
}

extension SimDriver {
    var inflight: Int {
        var n = 0
        for qi in 2..<queueCount { n += queues[qi].inflight }
        return n + queues[0].inflight
    }

    /// Stops new work (workload, TMFs, resets); what is in flight completes.
    func stopIssuing(now: UInt64) {
        stopping = true
        nextTMF = .max
        nextReset = .max
    }

    /// Writes truth lines for what never completed (at most the drain timeout's stragglers).
    func abandonInflight(now: UInt64) {
        guard let truth else { return }
        for qi in 2..<queueCount {
            let q = queues + qi
            for h in 0..<qsize where q.pointee.headSlot[h] >= 0 {
                commandLine(truth, qi, q.pointee.slots + Int(q.pointee.headSlot[h]), usedLen: nil, usedIndex: nil, outcome: "in_flight_at_exit", now: now)
            }
        }
    }
}
