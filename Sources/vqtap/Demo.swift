import ArgumentParser
import Foundation
import VQAnalysis
import VQTUI

/// `vqtap demo`: the live view on a busy simulated disk, no VM needed. The simulator
/// (`vqtap simulate`) runs as a child process on shared memory, and `top --layout` watches
/// it in this one; every way out ends the child, which removes its memory file.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show vqtap top on a simulated virtio-scsi disk (no VM needed).",
        discussion: """
            Runs vqtap simulate (two targets of three LUNs, mixed reads and writes from 4k to \
            1M, a long-tailed latency, a few injected faults, a TMF or AN message every 5s, \
            hot-plug every 20s, a resize every 30s) and watches it through its layout file. \
            Ctrl-C, SIGTERM or q end both. When standard output is not a terminal the \
            overview is printed as text once per --delay. See vqtap-demo(1).
            """
    )

    @Option(help: ArgumentHelp("Commands per second.", valueName: "n"))
    var iops: Double = 5_000

    @Flag(help: "Use the built-in synthetic workload instead of the simulator (no shared memory, no tap).")
    var synthetic = false

    @OptionGroup var view: ViewOptions

    func validate() throws {
        guard iops > 0 && iops <= 10_000_000 else { throw ValidationError("--iops must be above 0 and at most 10000000") }
        try view.check()
    }

    /// What the simulator runs: realistic enough to fill every screen.
    var simulatorArguments: [String] {
        ["--rate", String(Int(iops)), "--queues", "2", "--targets", "2", "--luns", "3", "--threads", "1",
         "--bs", "4k:50,8k:15,64k:20,256k:10,1M:5", "--mix", "read=65,write=30,other=5",
         "--latency", "lognormal:median=120us,p99=3ms,stall=40ms,stall_rate=0.0005",
         "--tmf-every", "5s", "--hotplug-every", "20s", "--resize-every", "30s",
         "--faults", "duplicate_tag=0.0002,sense_len_overflow=0.0002,used_len_overflow=0.0002"]
    }

    func run() throws {
        // --duration is the whole command's: the simulator's start and the attach count.
        let started = TopRunner.monotonicNs()
        if synthetic {
            var source = try SourceOptions.parse(["--synthetic"])
            source.iops = iops
            try TopSession(source: source, view: view, startNs: started).run()
            return
        }
        // Before the child starts: a signal from here on ends the view, then the child.
        TerminalSignals.install()
        let child = try SimulatorChild(arguments: simulatorArguments)
        defer { child.stop() }
        let source = try SourceOptions.parse(["--layout", child.layoutPath])
        do {
            // However slow the machine, the view waits for its own simulator while it runs.
            try TopSession(source: source, view: view, title: "simulate \(Int(iops)) IOPS", startNs: started,
                           companion: LiveCompanion(name: "the simulator", pid: child.pid)).run()
        } catch let failure as VQTapFailure {
            let log = child.log
            throw log.isEmpty ? failure : VQTapFailure("\(failure.message) (simulator: \(log))", status: failure.status)
        }
    }
}
