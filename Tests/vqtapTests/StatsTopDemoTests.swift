import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// `vqtap stats`, `top` and `demo` as a user runs them. The stats goldens are on capture
/// samples made with the simulator (samples/captures) and on the synthetic workload
/// (seeded, so repeatable). Regenerate with VQTAP_REGENERATE=1; a regenerating run fails.
@Suite struct StatsCLITests {
    static let dir = VQTapBinary.root.appendingPathComponent("samples/stats")

    /// A capture sample by its absolute path (the tests may run anywhere); the output names
    /// it relative to the repository.
    static func sample(_ name: String) -> String {
        VQTapBinary.root.appendingPathComponent("samples/captures/\(name)").path
    }

    static let cases: [(name: String, args: [String])] = [
        ("sim", ["stats", sample("sim.pcapng"), "--list", "5"]),
        ("sim-by-opcode-outcome", ["stats", "-r", sample("sim.pcapng"), "--by", "opcode", "--by", "outcome", "--list", "0"]),
        ("faults.json", ["stats", sample("faults.pcapng"), "-T", "json", "--list", "3"]),
        ("control", ["stats", sample("control.pcapng")]),
        ("synthetic-2s", ["stats", "--synthetic", "--duration", "2s", "--iops", "3000", "--list", "5"]),
        ("synthetic-2s-by-queue-lun", ["stats", "--synthetic", "--duration", "2s", "--iops", "3000", "--by", "queue,lun", "--by", "outcome", "--list", "3"]),
        ("synthetic-2s.json", ["stats", "--synthetic", "--duration", "2s", "--iops", "3000", "-T", "json", "--list", "3"]),
        ("synthetic-2s.csv", ["stats", "--synthetic", "--duration", "2s", "--iops", "3000", "-T", "csv", "--by", "opcode"]),
    ]

    @Test func goldens() throws {
        let regenerate = ProcessInfo.processInfo.environment["VQTAP_REGENERATE"] != nil
        for c in Self.cases {
            var run = try VQTapBinary.run(c.args)
            #expect(run.status == 0, "\(c.name): \(run.stderr)")
            run.stdout = run.stdout.replacingOccurrences(of: VQTapBinary.root.path + "/", with: "")
            let file = Self.dir.appendingPathComponent(c.name.contains(".") ? c.name : c.name + ".txt")
            if regenerate {
                try FileManager.default.createDirectory(at: Self.dir, withIntermediateDirectories: true)
                try run.stdout.write(to: file, atomically: true, encoding: .utf8)
                Issue.record("regenerated \(file.lastPathComponent); rerun without VQTAP_REGENERATE")
                continue
            }
            let want = try? String(contentsOf: file, encoding: .utf8)
            #expect(run.stdout == want, "\(c.name) differs from its golden file")
        }
    }

    @Test func everyJSONLineParsesAndHasAType() throws {
        let run = try VQTapBinary.run(["stats", "--synthetic", "--duration", "1s", "--iops", "2000", "-T", "json"])
        #expect(run.status == 0)
        var types: Set<String> = []
        for line in run.stdout.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if let t = object?["type"] as? String { types.insert(t) }
        }
        #expect(types.isSuperset(of: ["summary", "group", "histogram", "finding_count"]))
    }

    @Test func plotWritesAnSVG() throws {
        let svg = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-plot-\(getpid()).svg")
        defer { try? FileManager.default.removeItem(at: svg) }
        let run = try VQTapBinary.run(["stats", "--synthetic", "--duration", "2s", "--iops", "2000", "--plot", svg.path])
        #expect(run.status == 0)
        let text = try String(contentsOf: svg, encoding: .utf8)
        #expect(text.hasPrefix("<?xml"))
        #expect(text.contains("<polyline"))
        #expect(text.hasSuffix("</svg>\n"))
        // Well-formed XML.
        #expect(throws: Never.self) { _ = try XMLDocument(data: Data(text.utf8)) }
    }

    @Test func usageErrorsExitOne() throws {
        for args in [["stats"], ["stats", "--synthetic", "--by", "colour"], ["stats", "--synthetic", "--stuck", "soon"],
                     ["stats", "-r", "a", "b"], ["top"], ["top", "--synthetic", "--speed", "0"], ["top", "--synthetic", "--delay", "x"],
                     ["demo", "--iops", "0"]] {
            let run = try VQTapBinary.run(args)
            #expect(run.status == 1, "\(args)")
            #expect(!run.stderr.isEmpty, "\(args)")
        }
    }

    @Test func countStopsEarly() throws {
        let run = try VQTapBinary.run(["stats", "--synthetic", "-c", "100", "--list", "0"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("Records 100 over"))
    }

    /// A file is read ahead on a second thread, standard input (a pipe) directly: the same
    /// report, the same -c.
    @Test func standardInputGivesTheFilesReport() throws {
        let path = Self.sample("sim.pcapng")
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let fromFile = try VQTapBinary.run(["stats", path, "--list", "5"])
        let fromPipe = try VQTapBinary.run(["stats", "-", "--list", "5"], stdinData: data)
        #expect(fromPipe.status == 0, "\(fromPipe.stderr)")
        #expect(fromPipe.stdout.replacingOccurrences(of: "vqtap stats: -\n", with: "vqtap stats: \(path)\n") == fromFile.stdout)
        let first = try VQTapBinary.run(["stats", path, "-c", "7", "--list", "0"])
        #expect(first.stdout.contains("Records 7 over"), "\(first.stdout)")
    }

    @Test func aMissingFileSaysSo() throws {
        let run = try VQTapBinary.run(["stats", "/nonexistent/capture.pcapng"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("cannot read /nonexistent/capture.pcapng"))
    }
}

@Suite struct TopTextModeTests {
    @Test func withoutATerminalTopPrintsTheOverviewPerInterval() throws {
        let run = try VQTapBinary.run(["top", "--synthetic", "--iops", "2000", "--delay", "300ms", "--duration", "1s"])
        #expect(run.status == 0, "\(run.stderr)")
        let screens = run.stdout.components(separatedBy: "vqtap top  scsi0  synthetic 2000 IOPS")
        #expect(screens.count >= 4, "\(run.stdout)")
        #expect(run.stdout.contains("QUEUE        IOPS"))
        #expect(run.stdout.contains("request0"))
        #expect(!run.stdout.contains("q quit"))
    }

    @Test func aCaptureSampleReplaysAsFastAsPossible() throws {
        let run = try VQTapBinary.run(["top", "-r", StatsCLITests.sample("sim.pcapng"), "--speed", "max", "--delay", "200ms"])
        #expect(run.status == 0, "\(run.stderr)")
        // Printed at the end of the file, with the file's totals.
        #expect(run.stdout.contains("vqtap top  scsi0  replay sim.pcapng"))
        #expect(run.stdout.contains(" end "))
        #expect(run.stdout.contains("Totals   commands 142  errors 17  TMFs 3  events 1"))
        #expect(run.stdout.contains("request0 "))
        #expect(run.stdout.contains("request1 "))
    }

    @Test func aCaptureSampleReplaysAtRecordedSpeed() throws {
        // sim.pcapng spans 1.1 s: at speed 1 the replay takes about that long.
        let start = Date()
        let run = try VQTapBinary.run(["top", StatsCLITests.sample("sim.pcapng"), "--delay", "300ms"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(Date().timeIntervalSince(start) >= 1.0)
        #expect(run.stdout.components(separatedBy: "replay sim.pcapng").count >= 4, "\(run.stdout)")
        #expect(run.stdout.contains("Totals   commands 142"))
    }

    @Test func aBrokenCaptureFileSaysWhy() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-notpcap-\(getpid()).pcapng").path
        try "not a capture".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try VQTapBinary.run(["top", "-r", path])
        #expect(run.status == 1)
        #expect(run.stderr.contains("cannot read \(path)"))
    }

    @Test func demoRunsTheSimulatorAndPrintsWithoutATerminal() throws {
        let run = try VQTapBinary.run(["demo", "--delay", "500ms", "--duration", "2s"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("vqtap top  scsi0  simulate 5000 IOPS"))
        #expect(run.stdout.contains("Device scsi0 (attached)  queues 4 x 256"))
        #expect(run.stdout.contains("request0 "))
        #expect(run.stdout.contains("Outcomes"))
        // The first screen may come before the tap attached; the last has traffic.
        let last = run.stdout.components(separatedBy: "vqtap top  ").last ?? ""
        #expect(last.contains("Device scsi0 (attached)"), "\(last)")
        #expect(!last.contains("Totals   commands 0 "), "\(last)")
        #expect(DemoTmuxTests.nonZeroIOPS(last), "\(last)")
    }

    @Test func demoKeepsTheSyntheticWorkload() throws {
        let run = try VQTapBinary.run(["demo", "--synthetic", "--iops", "2000", "--delay", "500ms", "--duration", "1s"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("vqtap top  scsi0  synthetic 2000 IOPS"))
        #expect(run.stdout.contains("Outcomes"))
    }

    @Test func topOnALiveSimulatorEndsWithStatusThreeWhenItExits() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-toplive-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let layout = dir.appendingPathComponent("layout").path
        let simulator = Process()
        simulator.executableURL = VQTapBinary.url
        simulator.arguments = ["simulate", "--layout", layout, "--rate", "500", "--duration", "3s", "-q"]
        simulator.standardError = FileHandle.nullDevice
        try simulator.run()
        defer { if simulator.isRunning { simulator.terminate() } }
        let run = try VQTapBinary.run(["top", "--layout", layout, "--delay", "500ms", "--duration", "20s"])
        #expect(run.status == 3, "\(run.stderr)")
        #expect(run.stderr.contains("the device went away"))
        #expect(run.stdout.contains("vqtap top  scsi0  live layout"))
        #expect(DemoTmuxTests.nonZeroIOPS(run.stdout), "\(run.stdout)")
        simulator.waitUntilExit()
    }

    @Test func topWaitsForALayoutThenSaysItIsMissing() throws {
        let run = try VQTapBinary.run(["top", "--layout", "/nonexistent/layout", "--duration", "12s", "--delay", "5s"])
        #expect(run.stderr.contains("/nonexistent/layout"), "\(run.stderr)")
    }
}

/// The demo in a real terminal: tmux runs it, keys go in with send-keys, the screen comes
/// out with capture-pane (installed by `make test`).
@Suite(.serialized) struct DemoTmuxTests {
    static var tmux: String? {
        ["/usr/bin/tmux", "/usr/local/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The tmux server that `new-session` starts inherits the client's descriptors: only
    /// commands that print (capture-pane, display-message) get a pipe.
    @discardableResult
    static func tmux(_ args: [String], output: Bool = true) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tmux ?? "/usr/bin/tmux")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = output ? out : FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = output ? out.fileHandleForReading.readDataToEndOfFile() : Data()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Waits until the pane shows `text` (or `seconds` pass) and returns the pane.
    static func waitFor(_ session: String, _ text: String, seconds: Int = 10) throws -> String {
        var pane = ""
        for _ in 0..<seconds * 10 {
            pane = try tmux(["capture-pane", "-p", "-t", session]).out
            if pane.contains(text) { return pane }
            usleep(100_000)
        }
        return pane
    }

    /// The exit status the wrapper shell wrote (waiting up to 10 s for it).
    static func waitForFile(_ url: URL) -> String {
        var written = ""
        for _ in 0..<100 where written.isEmpty {
            written = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
            if written.isEmpty { usleep(100_000) }
        }
        return written
    }

    static func start(_ name: String, env: String = "", wrapper: String? = nil) throws -> String {
        let session = "vqtap-\(name)-\(getpid())"
        // The environment the test runs in may set NO_COLOR: each session says what it wants.
        // 1000 IOPS: a debug build on a loaded 2-core machine keeps up with the simulator.
        let demo = "env -u NO_COLOR \(env) \(VQTapBinary.url.path) demo --iops 1000 --delay 200ms --duration 60s"
        let command = wrapper.map { demo + $0 } ?? "exec " + demo
        // Started through system(): the server it forks would inherit the descriptor that
        // Foundation's Process watches for the client's exit, and the wait would last as
        // long as the server.
        // A server still exiting after the previous test's last session refuses at first.
        var status: Int32 = -1
        for _ in 0..<20 where status != 0 {
            status = system("\(tmux ?? "tmux") new-session -d -s \(session) -x 100 -y 30 '\(command)' </dev/null >/dev/null 2>&1")
            if status != 0 { usleep(200_000) }
        }
        #expect(status == 0)
        try tmux(["set-option", "-t", session, "remain-on-exit", "on"])
        return session
    }

    @Test func keysSwitchScreensAndQuitRestoresTheTerminal() throws {
        guard Self.tmux != nil else { Issue.record("tmux is not installed (make test-deps installs it)"); return }
        let status = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-keys-\(getpid()).status")
        try? FileManager.default.removeItem(at: status)
        defer { try? FileManager.default.removeItem(at: status) }
        let session = try Self.start("keys", wrapper: "; echo $? > \(status.path)")
        defer { _ = try? Self.tmux(["kill-session", "-t", session]) }
        // In CI, under the whole parallel suite, the simulator once took over 10 s to come up.
        let overview = try Self.waitFor(session, "request1", seconds: 30)
        #expect(overview.contains("vqtap top  scsi0  simulate 1000 IOPS"))
        #expect(overview.contains("Device scsi0 (attached)"))
        #expect(Self.nonZeroIOPS(overview), "\(overview)")
        let simulator = try Self.simulatorPid(session)
        #expect(simulator != nil)
        #expect(overview.contains("1 Overview  2 LUNs"))
        #expect(overview.contains("QUEUE        IOPS"))
        try Self.tmux(["send-keys", "-t", session, "Tab"])
        // Under load the simulator may not have reached every LUN yet: wait for the row.
        #expect(try Self.waitFor(session, "0:1 ").contains("LUN          COUNT"))
        try Self.tmux(["send-keys", "-t", session, "3"])
        #expect(try Self.waitFor(session, "Read(10)").contains("OPCODE"))
        try Self.tmux(["send-keys", "-t", session, "4"])
        #expect(try Self.waitFor(session, "distribution").contains(" -> "))
        try Self.tmux(["send-keys", "-t", session, "6"])
        // The newest request may be torn (its request not captured): its response is decoded.
        let details = try Self.waitFor(session, "Response: ")
        #expect(details.contains("Details:") && details.contains("Response: cmd-resp"), "\(details)")
        try Self.tmux(["send-keys", "-t", session, "?"])
        #expect(try Self.waitFor(session, "vqtap top keys").contains("pause the display"))
        try Self.tmux(["send-keys", "-t", session, "x"])
        try Self.tmux(["send-keys", "-t", session, "p"])
        #expect(try Self.waitFor(session, "PAUSED").contains("PAUSED"))
        try Self.tmux(["send-keys", "-t", session, "q"])
        #expect(Self.waitForFile(status) == "0\n")
        // The alternate screen is gone: the view is no longer on the terminal.
        #expect(!(try Self.tmux(["capture-pane", "-p", "-t", session]).out.contains("vqtap top")))
        // No simulator left, nor its memory file.
        if let simulator {
            #expect(kill(simulator, 0) != 0)
            #expect(!FileManager.default.fileExists(atPath: "/dev/shm/vqtap-sim-\(simulator)"))
        }
    }

    /// `top --layout` on a simulator whose workload is known (1000 reads/s of 4 KiB on LUNs
    /// 0:0 and 0:1), as a person sees it: the figures on the screen match what the simulator
    /// does, and every key answers within a bound (a debug build on a shared 2-core machine:
    /// 1.5 s; benchmarks/top measures the release build's bound).
    @Test func theViewShowsWhatTheSimulatorDoesAndKeysAnswer() throws {
        guard Self.tmux != nil else { Issue.record("tmux is not installed (make test-deps installs it)"); return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-toptmux-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let layout = dir.appendingPathComponent("layout").path
        let status = dir.appendingPathComponent("status")
        let simulator = Process()
        simulator.executableURL = VQTapBinary.url
        simulator.arguments = ["simulate", "--layout", layout, "--rate", "1000", "--targets", "1", "--luns", "2",
                               "--mix", "read=100,write=0,other=0", "--bs", "4k", "--duration", "20s", "-q"]
        simulator.standardError = FileHandle.nullDevice
        try simulator.run()
        defer {
            if simulator.isRunning { simulator.terminate() }
            simulator.waitUntilExit()
        }
        let session = "vqtap-topview-\(getpid())"
        let command = "env -u NO_COLOR \(VQTapBinary.url.path) top --layout \(layout) --delay 500ms --duration 60s; echo $? > \(status.path)"
        var started: Int32 = -1
        for _ in 0..<20 where started != 0 {
            started = system("\(Self.tmux ?? "tmux") new-session -d -s \(session) -x 100 -y 30 '\(command)' </dev/null >/dev/null 2>&1")
            if started != 0 { usleep(200_000) }
        }
        #expect(started == 0)
        defer { _ = try? Self.tmux(["kill-session", "-t", session]) }
        try Self.tmux(["set-option", "-t", session, "remain-on-exit", "on"])
        _ = try Self.waitFor(session, "request1", seconds: 30)
        // Three seconds of traffic in the window.
        usleep(3_000_000)
        let overview = try Self.tmux(["capture-pane", "-p", "-t", session]).out
        let rates = overview.split(separator: "\n").first { $0.hasPrefix("Last ") }.map(String.init) ?? ""
        let words = rates.split(separator: " ").map(String.init)
        let iops = words.firstIndex(of: "IOPS").flatMap { Double(words[$0 + 1]) } ?? 0
        #expect(iops >= 700 && iops <= 1300, "\(rates)")
        // 1000 reads of 4 KiB a second: about 3.9 MiB/s read, nothing written.
        let read = words.firstIndex(of: "read").map { words[$0 + 1] } ?? ""
        #expect(["2.", "3.", "4."].contains { read.hasPrefix($0) } && read.hasSuffix("M/s"), "\(rates)")
        #expect(rates.contains("write 0B/s"), "\(rates)")
        let commandsBefore = Self.totalCommands(overview)
        #expect(commandsBefore >= 1000, "\(overview)")

        // Each key, and how long until the screen shows its effect.
        func press(_ key: String, until text: String) throws -> (pane: String, seconds: Double) {
            let t0 = Date()
            try Self.tmux(["send-keys", "-t", session, key])
            let pane = try Self.waitFor(session, text)
            return (pane, Date().timeIntervalSince(t0))
        }
        let luns = try press("2", until: "LUN          COUNT")
        #expect(luns.seconds < 1.5, "\(luns.seconds) s")
        // Both LUNs, each with about half the reads (a torn request's LUN is unknown: "(unknown)").
        let lunCounts = luns.pane.split(separator: "\n").filter { $0.hasPrefix("0:0 ") || $0.hasPrefix("0:1 ") }
            .compactMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } }
        #expect(lunCounts.count == 2, "\(luns.pane)")
        if let low = lunCounts.min(), let high = lunCounts.max() { #expect(low * 2 > high, "\(luns.pane)") }
        let sorted = try press("s", until: "sort: count")
        #expect(sorted.seconds < 1.5, "\(sorted.seconds) s")
        let opcodes = try press("3", until: "Read(10)")
        #expect(opcodes.seconds < 1.5, "\(opcodes.seconds) s")
        #expect(!opcodes.pane.contains("Write(10)"), "\(opcodes.pane)")
        let back = try press("1", until: "QUEUE        IOPS")
        #expect(back.seconds < 1.5, "\(back.seconds) s")
        // r: the totals start again.
        // "Totals" is on screen before the key too: wait for the count to drop.
        let resetAt = Date()
        try Self.tmux(["send-keys", "-t", session, "r"])
        var afterReset = Int.max
        while Date().timeIntervalSince(resetAt) < 3 {
            usleep(100_000)
            afterReset = Self.totalCommands(try Self.tmux(["capture-pane", "-p", "-t", session]).out)
            if afterReset < commandsBefore { break }
        }
        let resetSeconds = Date().timeIntervalSince(resetAt)
        #expect(resetSeconds < 1.5 && afterReset < commandsBefore, "\(afterReset) after reset (\(resetSeconds) s), \(commandsBefore) before")
        let t0 = Date()
        try Self.tmux(["send-keys", "-t", session, "q"])
        #expect(Self.waitForFile(status) == "0\n")
        #expect(Date().timeIntervalSince(t0) < 3)
    }

    /// The "Totals   commands N" figure of an overview pane.
    static func totalCommands(_ pane: String) -> Int {
        guard let line = pane.split(separator: "\n").first(where: { $0.hasPrefix("Totals") }) else { return -1 }
        let words = line.split(separator: " ").map(String.init)
        return words.firstIndex(of: "commands").flatMap { Int(words[$0 + 1]) } ?? -1
    }

    /// The simulator the demo in `session` started (the shell, then the demo, then it).
    static func simulatorPid(_ session: String) throws -> pid_t? {
        func children(_ pid: String) -> [String] {
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? "").split(separator: " ").map(String.init)
        }
        let pane = try tmux(["display-message", "-p", "-t", session, "#{pane_pid}"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        for candidate in [pane] + children(pane) {
            for child in children(candidate) {
                let cmdline = (try? String(contentsOfFile: "/proc/\(child)/cmdline", encoding: .utf8)) ?? ""
                if cmdline.contains("simulate") { return pid_t(child) }
            }
        }
        return nil
    }

    /// Whether a queue row of the overview shows a rate above zero.
    static func nonZeroIOPS(_ pane: String) -> Bool {
        pane.split(separator: "\n").contains { line in
            let words = line.split(separator: " ")
            return words.count > 2 && words[0].hasPrefix("request") && (Int(words[1]) ?? 0) > 0
        }
    }

    @Test func coloursUnlessNoColorAndTheViewFollowsAResize() throws {
        guard Self.tmux != nil else { Issue.record("tmux is not installed (make test-deps installs it)"); return }
        let colour = try Self.start("colour")
        defer { _ = try? Self.tmux(["kill-session", "-t", colour]) }
        _ = try Self.waitFor(colour, "request1")
        let styled = try Self.tmux(["capture-pane", "-e", "-p", "-t", colour]).out
        #expect(styled.contains("\u{1b}[46m"), "a cyan title bar")
        let mono = try Self.start("mono", env: "NO_COLOR=1")
        defer { _ = try? Self.tmux(["kill-session", "-t", mono]) }
        _ = try Self.waitFor(mono, "request1")
        let plain = try Self.tmux(["capture-pane", "-e", "-p", "-t", mono]).out
        #expect(!plain.contains("\u{1b}[46m") && !plain.contains("\u{1b}[42m"), "no background colours")
        #expect(plain.contains("7m"), "reverse video instead")
        // 100x30 has no TAG column on the requests screen; 132x43 has.
        try Self.tmux(["send-keys", "-t", mono, "6"])
        #expect(!(try Self.waitFor(mono, "LATENCY").contains("TAG")))
        try Self.tmux(["resize-window", "-t", mono, "-x", "132", "-y", "43"])
        let wide = try Self.waitFor(mono, "TAG")
        #expect(wide.contains("TAG                OPCODE"))
        #expect(wide.split(separator: "\n", omittingEmptySubsequences: false).count >= 43)
    }

    @Test func sigtermRestoresTheTerminalToo() throws {
        guard Self.tmux != nil else { Issue.record("tmux is not installed (make test-deps installs it)"); return }
        // A shell runs the demo and writes its exit status where the test can read it.
        let status = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-term-\(getpid()).status")
        try? FileManager.default.removeItem(at: status)
        defer { try? FileManager.default.removeItem(at: status) }
        let session = try Self.start("term", env: "NO_COLOR=1", wrapper: "; echo $? > \(status.path)")
        defer { _ = try? Self.tmux(["kill-session", "-t", session]) }
        _ = try Self.waitFor(session, "request1", seconds: 30)
        let simulator = try Self.simulatorPid(session)
        #expect(simulator != nil)
        let shell = try Self.tmux(["display-message", "-p", "-t", session, "#{pane_pid}"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let demo = try String(contentsOfFile: "/proc/\(shell)/task/\(shell)/children", encoding: .utf8)
            .split(separator: " ").first.map(String.init) ?? ""
        let signalled = Int32(demo).map { kill($0, SIGTERM) }
        #expect(signalled == 0, "demo pid '\(demo)' under shell \(shell)")
        #expect(Self.waitForFile(status) == "0\n")
        #expect(!(try Self.tmux(["capture-pane", "-p", "-t", session]).out.contains("vqtap top")))
        if let simulator {
            #expect(kill(simulator, 0) != 0)
            #expect(!FileManager.default.fileExists(atPath: "/dev/shm/vqtap-sim-\(simulator)"))
        }
    }

}

/// `top --qmp`: attached to a simulator presented over QMP (SimulatedQEMU) as `capture --qmp`
/// attaches to QEMU, in text mode.
@Suite(.serialized) struct TopQMPTests {
    /// Runs a simulator for `seconds` and a SimulatedQEMU on it, then `body` with the socket.
    static func withSimulatedQEMU(rate: Int = 1000, seconds: Int = 8, resetAfter: Int? = nil, resetPolls: Int = 60,
                                  _ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vqtap-topqmp-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let layout = dir.appendingPathComponent("layout").path
        let simulator = Process()
        simulator.executableURL = VQTapBinary.url
        simulator.arguments = ["simulate", "--layout", layout, "--rate", String(rate), "--duration", "\(seconds)s", "-q"]
        simulator.standardError = FileHandle.nullDevice
        try simulator.run()
        defer {
            if simulator.isRunning { simulator.terminate() }
            simulator.waitUntilExit()
        }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: layout) { usleep(50_000) }
        let qemu = try SimulatedQEMU(layout: layout)
        qemu.resetAfter = resetAfter
        qemu.resetPolls = resetPolls
        defer { qemu.stop() }
        try body(qemu.path)
    }

    /// The total IOPS of the overview's "Last 10.0s  IOPS N" line of the last screen.
    static func lastIOPS(_ stdout: String) -> Double? {
        let last = stdout.components(separatedBy: "vqtap top  ").last ?? ""
        guard let line = last.split(separator: "\n").first(where: { $0.hasPrefix("Last ") }) else { return nil }
        let words = line.split(separator: " ")
        guard let i = words.firstIndex(of: "IOPS"), i + 1 < words.count else { return nil }
        return Double(words[i + 1])
    }

    @Test func topAttachesThroughQMPAndShowsTheSimulatorsRate() throws {
        try Self.withSimulatedQEMU { socket in
            let run = try VQTapBinary.run(["top", "--qmp", socket, "--delay", "500ms", "--duration", "4s", "--bench"])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("vqtap top  scsi0  live qmp.sock"), "\(run.stdout)")
            let last = run.stdout.components(separatedBy: "vqtap top  ").last ?? ""
            #expect(last.contains("Device scsi0 (attached)  queues 4 x 256  cdb 32  sense 96  features 0x130000006"), "\(last)")
            #expect(DemoTmuxTests.nonZeroIOPS(last), "\(last)")
            // The simulator runs 1000 commands/s; the window holds the seconds since attach.
            let iops = Self.lastIOPS(run.stdout) ?? 0
            #expect(iops >= 500 && iops <= 1500, "\(last)")
            // --bench: what the view analysed, and the tap's counters.
            #expect(run.stderr.contains("top: records "), "\(run.stderr)")
            #expect(run.stderr.contains("skipped 0 "), "\(run.stderr)")
            #expect(run.stderr.contains("q2 request0: captured "), "\(run.stderr)")
        }
    }

    @Test func topFollowsADriverResetSeenThroughQMP() throws {
        // The tap polls the status every 5 ms: about 1 s after attaching it drops to 0 for
        // ~0.3 s, then DRIVER_OK again.
        try Self.withSimulatedQEMU(resetAfter: 200, resetPolls: 60) { socket in
            let run = try VQTapBinary.run(["top", "--qmp", socket, "--delay", "500ms", "--duration", "5s"])
            #expect(run.status == 0, "\(run.stderr)")
            // Re-attached implies attached first; a screen of the first second is not
            // asserted: on a loaded machine (a fresh clone's parallel suite) the first
            // screen once came only at t=3 s, after the reset.
            let screens = run.stdout.components(separatedBy: "vqtap top  ")
            #expect(screens.count >= 3, "\(run.stdout)")
            let last = screens.last ?? ""
            #expect(last.contains("Device scsi0 (re-attached)"), "\(last)")
            #expect(DemoTmuxTests.nonZeroIOPS(last), "\(last)")
        }
    }

    @Test func aMissingSocketFailsAsCaptureDoes() throws {
        let socket = "/nonexistent/vqtap-qmp.sock"
        let top = try VQTapBinary.run(["top", "--qmp", socket, "--wait-timeout", "0s"])
        let capture = try VQTapBinary.run(["capture", "--qmp", socket])
        #expect(top.status == 1 && capture.status == 1)
        #expect(top.stderr.contains("vqtap: top: --qmp \(socket): QMP socket \(socket): no such file or directory"), "\(top.stderr)")
        #expect(capture.stderr.contains("--qmp \(socket): QMP socket \(socket): no such file or directory"), "\(capture.stderr)")
    }

    @Test func deviceOptionsAreCheckedAsCaptureChecksThem() throws {
        let cases: [([String], String)] = [
            (["top", "--synthetic", "--device", "scsi0"], "--device needs --qmp"),
            (["top", "--synthetic", "--memory", "/dev/shm/x"], "--memory needs --qmp"),
            (["top", "--qmp", "a", "--layout", "b"], "--layout and --qmp exclude each other"),
            (["top", "--qmp", "a", "--synthetic"], "give one source"),
            (["top", "--synthetic", "--wait"], "--wait and --wait-timeout need --layout or --qmp"),
            (["top", "--qmp", "a", "--wait-timeout", "soon"], "--wait-timeout: 'soon' is not a duration"),
            (["top", "--qmp", "a", "--cdb-size", "300"], "--cdb-size: must be 0 to 256"),
        ]
        for (args, message) in cases {
            let run = try VQTapBinary.run(args)
            #expect(run.status == 1, "\(args)")
            #expect(run.stderr.contains(message), "\(args): \(run.stderr)")
        }
    }
}

/// `demo`'s lifetime: --duration for the whole command, and its temporary directory.
@Suite(.serialized) struct DemoLifetimeTests {
    static var temporaryDirectory: String {
        var dir = NSTemporaryDirectory()
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        return dir
    }

    /// The demo directories of process `pid`.
    static func directories(of pid: pid_t) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: temporaryDirectory)) ?? []).filter { $0.hasPrefix("vqtap-demo-\(pid)-") }
    }

    /// A pid no process has: one of a child that exited and was reaped.
    static func deadPid() throws -> pid_t {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    static func waitUntil(_ condition: () -> Bool) -> Bool {
        for _ in 0..<100 {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }

    @Test func durationCountsFromTheCommandsStart() throws {
        let start = Date()
        let run = try VQTapBinary.run(["demo", "--delay", "500ms", "--duration", "2s"])
        let elapsed = Date().timeIntervalSince(start)
        #expect(run.status == 0, "\(run.stderr)")
        // The simulator's start and the attach count: the command ends after ~2 s, plus the
        // simulator's shutdown.
        #expect(elapsed >= 2.0 && elapsed < 3.5, "\(elapsed) s")
    }

    /// A demo (30 s unless told), once its directory exists: the process and its simulator's pid.
    static func startDemo(duration: String = "30s") throws -> (demo: Process, simulator: pid_t) {
        let demo = Process()
        demo.executableURL = VQTapBinary.url
        demo.arguments = ["demo", "--delay", "500ms", "--duration", duration]
        demo.standardOutput = FileHandle.nullDevice
        try demo.run()
        let pid = demo.processIdentifier
        #expect(Self.waitUntil { !Self.directories(of: pid).isEmpty })
        let directory = Self.temporaryDirectory + "/" + (Self.directories(of: pid).first ?? "")
        let simulator = pid_t((try? String(contentsOfFile: directory + "/simulator.pid", encoding: .utf8)) ?? "") ?? 0
        return (demo, simulator)
    }

    @Test func aDemoThatRunsItsCourseTakesItsSimulatorAndMemoryWithIt() throws {
        let (demo, simulator) = try Self.startDemo(duration: "2s")
        let pid = demo.processIdentifier
        #expect(simulator > 0)
        demo.waitUntilExit()
        #expect(demo.terminationStatus == 0)
        #expect(Self.directories(of: pid).isEmpty)
        #expect(kill(simulator, 0) != 0)
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/vqtap-sim-\(simulator)"))
    }

    /// The demo waits for its own simulator however long it takes to start (no 10 s limit
    /// on a loaded machine), and stops waiting, with status 3, as soon as that simulator is
    /// gone, attached or not.
    @Test func aDemoWhoseSimulatorDiesEndsAtOnceWithStatusThree() throws {
        let stderr = Pipe()
        let demo = Process()
        demo.executableURL = VQTapBinary.url
        demo.arguments = ["demo", "--delay", "500ms", "--duration", "60s"]
        demo.standardOutput = FileHandle.nullDevice
        demo.standardError = stderr
        try demo.run()
        let pid = demo.processIdentifier
        var simulator: pid_t = 0
        #expect(Self.waitUntil {
            let directory = Self.temporaryDirectory + "/" + (Self.directories(of: pid).first ?? "none")
            simulator = pid_t((try? String(contentsOfFile: directory + "/simulator.pid", encoding: .utf8)) ?? "") ?? 0
            return simulator > 0
        })
        guard simulator > 0 else { demo.terminate(); return }
        let killed = Date()
        kill(simulator, SIGKILL)
        demo.waitUntilExit()
        let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(Date().timeIntervalSince(killed) < 5, "\(message)")
        #expect(demo.terminationStatus == 3, "\(message)")
        #expect(message.contains("the device went away"), "\(message)")
        #expect(Self.directories(of: pid).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/vqtap-sim-\(simulator)"))
    }

    @Test func sigintEndsTheDemoAndRemovesItsDirectory() throws {
        let (demo, simulator) = try Self.startDemo()
        let pid = demo.processIdentifier
        #expect(simulator > 0)
        usleep(500_000)
        let signalled = Date()
        kill(pid, SIGINT)
        demo.waitUntilExit()
        #expect(Date().timeIntervalSince(signalled) < 5, "SIGINT ended the demo")
        #expect(demo.terminationStatus == 0)
        #expect(Self.directories(of: pid).isEmpty)
        #expect(kill(simulator, 0) != 0)
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/vqtap-sim-\(simulator)"))
    }

    @Test func aKilledDemosDirectoryIsRemovedByTheNextDemo() throws {
        let (demo, simulator) = try Self.startDemo()
        let pid = demo.processIdentifier
        kill(pid, SIGKILL)
        demo.waitUntilExit()
        // The simulator got SIGTERM from the kernel and removed its memory file; the
        // directory stays until the next demo (which may be another test's, running in
        // parallel: so its presence is not checked here, only its removal below).
        #expect(Self.waitUntil { kill(simulator, 0) != 0 })
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/vqtap-sim-\(simulator)"))

        // A directory whose owner is alive (this test) stays; one of a dead owner whose
        // simulator also died goes, with the memory file that simulator left.
        let live = Self.temporaryDirectory + "/vqtap-demo-\(getpid())-livetest"
        let dead = try Self.deadPid()
        let deadSimulator = try Self.deadPid()
        let stale = Self.temporaryDirectory + "/vqtap-demo-\(dead)-staletest"
        let leftMemory = "/dev/shm/vqtap-sim-\(deadSimulator)"
        for d in [live, stale] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try String(deadSimulator).write(toFile: stale + "/simulator.pid", atomically: true, encoding: .utf8)
        #expect(FileManager.default.createFile(atPath: leftMemory, contents: Data([1, 2, 3])))
        defer {
            try? FileManager.default.removeItem(atPath: live)
            try? FileManager.default.removeItem(atPath: stale)
            unlink(leftMemory)
        }
        let run = try VQTapBinary.run(["demo", "--delay", "500ms", "--duration", "1s"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(Self.directories(of: pid).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(!FileManager.default.fileExists(atPath: leftMemory))
        #expect(FileManager.default.fileExists(atPath: live))
    }
}
