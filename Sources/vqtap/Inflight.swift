import ArgumentParser
import Foundation
import VQRecord
import VirtioTap

// `vqtap inflight`: a one-shot answer to "why is my guest stuck": the requests, TMFs and
// eventq buffers outstanding now, oldest first, with their age and full decode.

struct Inflight: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inflight",
        abstract: "Print the chains a device has outstanding now, oldest first, then exit.",
        discussion: """
            Attaches like capture, snapshots every chain made available and not yet \
            returned, watches the rings for --observe (default 0: ages are then only known \
            to be at least the time since attach), and prints what is still outstanding, \
            per queue in ring order, decoded at -v. See vqtap-capture(1).
            """)

    @OptionGroup var attach: AttachOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: ArgumentHelp("Watch the rings this long before answering (e.g. 100ms).", valueName: "duration"))
    var observe: String?

    func validate() throws {
        if let observe, DurationText.nanoseconds(observe) == nil {
            throw ValidationError("--observe: '\(observe)' is not a duration (e.g. 100ms)")
        }
    }

    func run() throws {
        let tap = try attach.makeTap(pollMode: .busy)
        var requests: [UInt64: CaptureRecord] = [:]
        var markers: [CaptureRecord] = []
        let deliver: RecordDelivery = { records in
            for r in records where r.kind == .available { requests[r.transactionID] = r }
            for r in records where r.kind == .deviceState { markers.append(r) }
            return true
        }
        let outcome: TapOutcome
        do {
            guard try tap.attach(deliver: deliver) else { return }
            if let ns = observe.flatMap(DurationText.nanoseconds), ns > 0 {
                outcome = try tap.run(durationNs: ns, shouldStop: { false }, deliver: { records in
                    // Completed requests are forgotten; new ones are remembered.
                    for r in records where r.kind == .used { requests[r.transactionID] = nil }
                    return deliver(records)
                })
            } else {
                outcome = .stopped
            }
        } catch {
            throw VQTapFailure("inflight: \(error)")
        }
        if case let .deviceGone(why) = outcome {
            throw VQTapFailure("inflight: the device went away: \(why)", status: .deviceGone)
        }
        let now = TapClock().now()
        var presenter = RecordPresenter(verbosity: max(output.verbosity, 1), format: output.format)
        // The device's name and configuration reach the decoder through its state markers.
        for m in markers { _ = presenter.render(m) }
        var writer = LineWriter()
        var total = 0
        for (queue, chains) in tap.poller?.pendingChains ?? [] {
            for chain in chains {
                guard let r = requests[chain.transactionID] else { continue }
                total += 1
                let known = !chain.flags.contains(.preAttach)
                let age = now >= chain.availNs ? now - chain.availNs : 0
                let ageText = (known ? "age " : "age >= ") + Self.duration(age)
                switch output.format {
                case .text:
                    writer.append("q\(queue) \(tap.queueName(queue)) ring index \(chain.availIndex) head \(chain.head): \(ageText)")
                    if let text = presenter.render(r) { writer.append(text) }
                case .json:
                    if let text = presenter.render(r) {
                        // One object per chain: the record's JSON with the age in front.
                        let prefix = "{\"age_ns\":\(age),\"age_known\":\(known),"
                        writer.append(text.hasPrefix("{") ? prefix + text.dropFirst() : text)
                    }
                }
            }
        }
        if output.format == .text { writer.append("\(total) chains outstanding") }
        writer.flush()
    }

    static func duration(_ ns: UInt64) -> String {
        if ns >= 1_000_000_000 { return String(format: "%.3fs", Double(ns) / 1e9) }
        if ns >= 1_000_000 { return String(format: "%.3fms", Double(ns) / 1e6) }
        if ns >= 1_000 { return String(format: "%.1fus", Double(ns) / 1e3) }
        return "\(ns)ns"
    }
}
