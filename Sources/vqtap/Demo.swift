import ArgumentParser
import VQAnalysis
import VQTUI

/// `vqtap demo`: the live view on a busy simulated disk, no VM needed. Until the simulator
/// (`vqtap simulate`) is part of this build, the traffic comes from the built-in synthetic
/// workload; the view, keys and text mode are those of `vqtap top`.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show vqtap top on a simulated virtio-scsi disk (no VM needed).",
        discussion: """
            Several LUNs, mixed reads and writes, a long-tailed latency, a few errors, a \
            periodic ABORT_TASK and hot-plug events. Ctrl-C (or q) ends it. When standard \
            output is not a terminal the overview is printed as text once per --delay. \
            See vqtap-demo(1).
            """
    )

    @Option(help: ArgumentHelp("Commands per second.", valueName: "n"))
    var iops: Double = 5_000

    @OptionGroup var view: ViewOptions

    func validate() throws {
        guard iops > 0 && iops <= 10_000_000 else { throw ValidationError("--iops must be above 0 and at most 10000000") }
        try view.check()
    }

    func run() throws {
        var source = try SourceOptions.parse(["--synthetic"])
        source.iops = iops
        try TopSession(source: source, view: view).run()
    }
}
