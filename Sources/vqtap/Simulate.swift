import ArgumentParser
import CVQSys
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import VQSim
import VQWire

// `vqtap simulate`: a virtio-scsi driver and device on a shared-memory file, the device a tap
// can watch with no VM. See vqtap-simulate(1).

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run a simulated virtio-scsi driver and device on shared memory (a device to tap).",
        discussion: """
            Guest RAM is a shared-memory file; the driver and the device exchange split virtqueues in \
            it exactly as the virtio spec lays them out. --layout writes what a tap needs to find the \
            rings; --truth writes one JSON line per exchange. See vqtap-simulate(1). Exit status: 0 \
            success, 1 usage, 3 the memory went away.
            """)

    @Option(name: .long, help: ArgumentHelp("Guest RAM file (default /dev/shm/vqtap-sim-PID).", valueName: "path"))
    var memory: String?
    @Option(name: .long, help: ArgumentHelp("Guest RAM size.", valueName: "size"))
    var ramSize = "256M"
    @Option(name: .long, help: ArgumentHelp("Request queues.", valueName: "n"))
    var queues = 2
    @Option(name: .long, help: ArgumentHelp("Entries per queue (a power of 2).", valueName: "n"))
    var queueSize = 256
    @Flag(name: .long, help: "Do not negotiate VIRTIO_RING_F_INDIRECT_DESC.")
    var noIndirect = false
    @Flag(name: .long, help: "Do not negotiate VIRTIO_RING_F_EVENT_IDX.")
    var noEventIdx = false
    @Flag(name: .long, help: "Do not negotiate VIRTIO_SCSI_F_HOTPLUG.")
    var noHotplug = false
    @Flag(name: .long, help: "Do not negotiate VIRTIO_SCSI_F_CHANGE.")
    var noChange = false
    @Flag(name: .customLong("no-version-1"), help: "Do not negotiate VIRTIO_F_VERSION_1 (the layout says so; rings stay little-endian).")
    var noVersion1 = false
    @Option(name: .long, help: ArgumentHelp("1: driver and device take turns in one thread; 2: one thread each.", valueName: "n"))
    var threads = 2
    @Option(name: .long, help: ArgumentHelp("Pin the driver (and the device) to CPU N (N,M for two threads).", valueName: "list"))
    var cpu: String?
    @Option(name: .long, help: ArgumentHelp("Write the layout file (vqtap-layout(5)) here.", valueName: "file"))
    var layout: String?
    @Option(name: .long, help: ArgumentHelp("Write the ground truth (JSON lines) here.", valueName: "file"))
    var truth: String?
    @Flag(name: .long, help: "Keep the memory file at exit.")
    var keep = false
    @Option(name: .long, help: ArgumentHelp("Targets on the host.", valueName: "n"))
    var targets = 2
    @Option(name: .long, help: ArgumentHelp("LUNs per target.", valueName: "n"))
    var luns = 2
    @Option(name: .long, help: ArgumentHelp("Commands in flight per request queue.", valueName: "n"))
    var iodepth = 32
    @Option(name: .long, help: ArgumentHelp("Commands per second in total (0: as fast as possible).", valueName: "iops"))
    var rate = "20000"
    @Option(name: .long, help: ArgumentHelp("Run time after the scan (0: until SIGINT/SIGTERM).", valueName: "duration"))
    var duration = "0"
    @Option(name: .long, help: ArgumentHelp("Command mix by weight.", valueName: "read=W,write=W,other=W"))
    var mix = "read=70,write=25,other=5"
    @Option(name: .long, help: ArgumentHelp("Transfer sizes, one or weighted.", valueName: "sizes"))
    var bs = "4k:60,8k:10,64k:20,1M:10"
    @Flag(name: .long, help: "Sequential LBAs per LUN instead of random.")
    var sequential = false
    @Option(name: .long, help: ArgumentHelp("Send the next TMF or AN message (in turn) this often (0: never).", valueName: "duration"))
    var tmfEvery = "2s"
    @Option(name: .long, help: ArgumentHelp("Reset the device this often (0: never).", valueName: "duration"))
    var resetEvery = "0"
    @Option(name: .long, help: ArgumentHelp("Hot-unplug / re-plug the last LUN this often (0: never).", valueName: "duration"))
    var hotplugEvery = "0"
    @Option(name: .long, help: ArgumentHelp("Resize a LUN (PARAM_CHANGE) this often (0: never).", valueName: "duration"))
    var resizeEvery = "0"
    @Option(name: .long, help: ArgumentHelp("Capacity of each RAM-backed disk.", valueName: "size"))
    var diskSize = "64M"
    @Option(name: .long, help: ArgumentHelp("Device latency model.", valueName: "model"))
    var latency = "lognormal:median=80us,p99=2ms,stall=20ms,stall_rate=0.0005"
    @Option(name: .long, help: ArgumentHelp("Inject faults ('help' lists them).", valueName: "name=rate,..."))
    var faults: String?
    @Option(name: .long, help: ArgumentHelp("Seed of the workload and fault draws.", valueName: "n"))
    var seed: UInt64 = 0x5eed
    @Flag(name: .long, help: "Do not verify completions (data read back, lengths, responses).")
    var noVerify = false
    @Flag(name: .shortAndLong, help: "Do not print the summary on stderr.")
    var quiet = false

    /// Set by `vqtap demo` to its pid.
    static let parentVariable = "VQTAP_DEMO_PARENT"

    func validate() throws {
        if faults == "help" { return }
        do { _ = try makeConfig() } catch { throw ValidationError(error.message) }
    }

    func makeConfig() throws(SimError) -> SimConfig {
        var c = SimConfig()
        c.memoryPath = memory
        guard let ram = Units.size(ramSize) else { throw SimError("--ram-size: '\(ramSize)' is not a size (4k, 256M, 1G)") }
        c.ramSize = ram
        c.queues = queues
        c.queueSize = queueSize
        c.featureIndirect = !noIndirect
        c.featureEventIdx = !noEventIdx
        c.featureHotplug = !noHotplug
        c.featureChange = !noChange
        c.featureVersion1 = !noVersion1
        c.threads = threads
        if let cpu {
            var list: [Int] = []
            for p in cpu.split(separator: ",") {
                guard let n = Int(p), n >= 0, n < 1024 else { throw SimError("--cpu: '\(cpu)' is not a CPU number or N,M") }
                let online = sysconf(Int32(_SC_NPROCESSORS_ONLN))
                guard n < online else { throw SimError("--cpu: CPU \(n) does not exist (\(online) online)") }
                list.append(n)
            }
            c.cpus = list
        }
        c.layoutPath = layout
        c.truthPath = truth
        c.keep = keep
        c.targets = targets
        c.luns = luns
        c.iodepth = iodepth
        guard let r = Units.count(rate) else { throw SimError("--rate: '\(rate)' is not a rate (0, 100000, 100k)") }
        c.rate = r
        guard let d = Units.duration(duration) else { throw SimError("--duration: '\(duration)' is not a duration (500ms, 5s, 2m)") }
        c.durationNs = d
        switch SimConfig.Mix.parse(mix) {
        case let .success(m): c.mix = m
        case let .failure(e): throw SimError("--mix: \(e.message)")
        }
        switch SimConfig.parseBlockSizes(bs) {
        case let .success(b): c.blockSizes = b
        case let .failure(e): throw SimError("--bs: \(e.message)")
        }
        c.sequential = sequential
        for (name, text, keyPath) in [("--tmf-every", tmfEvery, \SimConfig.tmfEveryNs), ("--reset-every", resetEvery, \SimConfig.resetEveryNs),
                                      ("--hotplug-every", hotplugEvery, \SimConfig.hotplugEveryNs), ("--resize-every", resizeEvery, \SimConfig.resizeEveryNs)] {
            guard let v = Units.duration(text) else { throw SimError("\(name): '\(text)' is not a duration (500ms, 5s, 2m)") }
            c[keyPath: keyPath] = v
        }
        guard let ds = Units.size(diskSize) else { throw SimError("--disk-size: '\(diskSize)' is not a size") }
        c.diskSize = ds
        switch LatencyModel.parse(latency) {
        case let .success(m): c.latency = m
        case let .failure(e): throw SimError("--latency: \(e.message)")
        }
        if let faults {
            switch SimFault.parse(faults) {
            case let .success(f): c.faults = f
            case let .failure(e): throw SimError("--faults: \(e.message)")
            }
        }
        c.seed = seed
        c.verify = !noVerify
        if let p = c.problem { throw SimError(p) }
        return c
    }

    func run() throws {
        if faults == "help" {
            print(SimFault.helpText, terminator: "")
            return
        }
        let config: SimConfig
        do { config = try makeConfig() } catch { throw VQTapFailure(error.message) }
        signal(SIGINT) { _ in Simulator.interrupted.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in Simulator.interrupted.store(true, ordering: .relaxed) }
        // A mapping that shrinks under us faults on access: the memory went away.
        signal(SIGBUS) { _ in
            let msg = "vqtap simulate: the guest memory file went away (SIGBUS)\n"
            _ = msg.withCString { write(2, $0, strlen($0)) }
            _exit(3)
        }
        // Started by `vqtap demo`: end (and remove the memory file) when the demo does, even
        // if it is killed outright.
        if let parent = ProcessInfo.processInfo.environment[Self.parentVariable].flatMap(Int32.init),
           vq_term_with_parent(parent) != 0 {
            return
        }
        let sim: Simulator
        do { sim = try Simulator(config: config) } catch {
            throw VQTapFailure(error.message, status: ExitStatus(rawValue: error.exitCode) ?? .usageOrUnreadable)
        }
        let result = sim.run()
        if !quiet { StandardError.write(Simulator.summaryText(result, threads: config.threads)) }
        for e in result.errors.prefix(5) { StandardError.write("vqtap simulate: verify: \(e)") }
        if result.exitCode == 3 {
            throw VQTapFailure("simulate: the guest memory file \(result.memoryPath) went away", status: .deviceGone)
        }
    }
}

