import ArgumentParser
import Foundation
import VQTUI
import VirtioTap
#if canImport(Glibc)
import Glibc
#endif

// The live sources of `top` and `demo`: the tap on a layout file, and the simulator that
// `demo` runs as a child process for it to watch.

/// The tap on its own thread, pushing into the view's feed until the view stops it, a
/// signal arrives or the device goes away.
enum LiveProducer {
    /// How the feed's error begins when the device went away (exit status 3).
    static let deviceGone = "the device went away"

    /// The tap is made on the producer thread: the view is up while QMP connects and waits.
    static func start(_ device: DeviceAttachOptions, into feed: RecordFeed, companion: LiveCompanion? = nil) -> LiveProducerState {
        let options = UncheckedBox(device)
        let state = LiveProducerState()
        let thread = Thread {
            let tap: LayoutTap
            do {
                tap = try options.value.makeTap(pollMode: .adaptive, snaplen: 64)
            } catch {
                let failure = error as? VQTapFailure ?? VQTapFailure("\(error)")
                state.attachFailure = failure
                feed.finish(error: failure.message)
                return
            }
            state.tap = tap
            run(tap, feed: feed, companion: companion)
        }
        thread.stackSize = 8 << 20
        thread.start()
        return state
    }

    static func run(_ tap: LayoutTap, feed: RecordFeed, companion: LiveCompanion? = nil) {
        // Waiting for a device whose process is gone would last forever.
        let companionGone = { companion.map { SimulatorChild.isDead($0.pid) } ?? false }
        let shouldStop = { feed.stopRequested || TerminalSignals.received != 0 }
        // Live records never wait: when the view falls behind, the feed drops and counts them.
        let deliver: RecordDelivery = { feed.push($0, wait: false) }
        do {
            // Once attached, the layout's pid says when the device goes away.
            guard try tap.attach(shouldStop: { shouldStop() || companionGone() }, deliver: deliver) else {
                if let companion, companionGone() {
                    feed.finish(error: "\(deviceGone): \(companion.name) (pid \(companion.pid)) exited before its device was ready")
                } else {
                    feed.finish()
                }
                return
            }
            let outcome = try tap.run(durationNs: nil, shouldStop: shouldStop, deliver: deliver)
            if case let .deviceGone(why) = outcome { feed.finish(error: "\(deviceGone): \(why)") } else { feed.finish() }
        } catch {
            feed.finish(error: "\(error)")
        }
    }
}

/// The process a live device lives in, when vqtap started it (the demo's simulator).
struct LiveCompanion: Sendable {
    var name: String
    var pid: pid_t
}

/// What the producer thread leaves for the view.
final class LiveProducerState: @unchecked Sendable {
    private let lock = NSLock()
    private var failure: VQTapFailure?
    private var madeTap: LayoutTap?

    /// The attach failed before any record (a QMP socket that does not answer): the failure
    /// with its own exit status.
    var attachFailure: VQTapFailure? {
        get { lock.withLock { failure } }
        set { lock.withLock { failure = newValue } }
    }

    /// The tap, for its counters at the end (read them only once the producer finished).
    var tap: LayoutTap? {
        get { lock.withLock { madeTap } }
        set { lock.withLock { madeTap = newValue } }
    }
}

/// `vqtap simulate` as a child of `demo`, in a directory of its own named after the demo's
/// pid (`vqtap-demo-PID-XXXXXX`). `stop()` ends it with SIGTERM (on which it removes its
/// memory file) and waits for it; SIGKILL after 3 s. A demo killed outright leaves its
/// directory: the next demo removes it (`removeStale`).
final class SimulatorChild {
    static let directoryPrefix = "vqtap-demo-"
    static let pidFile = "simulator.pid"
    let directory: String
    let pid: pid_t
    var layoutPath: String { directory + "/layout" }

    init(arguments: [String]) throws {
        Self.removeStale()
        var template = Array((Self.temporaryDirectory + "/" + Self.directoryPrefix + "\(getpid())-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ buffer in buffer.baseAddress.flatMap(mkdtemp) }) else {
            throw VQTapFailure("demo: cannot make a temporary directory: \(String(cString: strerror(errno)))")
        }
        directory = String(cString: made)
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let argv = [executable, "simulate", "--layout", directory + "/layout", "--quiet"] + arguments
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group: the terminal's signals come to the demo, which ends the
        // child itself (a SIGHUP would kill it before it removed its memory file).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, s) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Its summary and messages would scribble over the view.
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, directory + "/simulate.log", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var child: pid_t = 0
        var environment = ProcessInfo.processInfo.environment
        environment[Simulate.parentVariable] = String(getpid())
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for e in cEnvironment { free(e) } }
        let e = posix_spawn(&child, executable, &actions, &attributes, cArgs, cEnvironment)
        guard e == 0 else {
            try? FileManager.default.removeItem(atPath: directory)
            throw VQTapFailure("demo: cannot start the simulator: \(String(cString: strerror(e)))")
        }
        pid = child
        try? String(child).write(toFile: directory + "/" + Self.pidFile, atomically: true, encoding: .utf8)
    }

    static var temporaryDirectory: String {
        var dir = NSTemporaryDirectory()
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        return dir
    }

    /// Whether no process runs with this pid: none has it, or a zombie not yet reaped
    /// (a pid we may not signal is alive).
    static func isDead(_ pid: pid_t) -> Bool {
        guard pid > 0 else { return false }
        if kill(pid, 0) != 0 { return errno == ESRCH }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        // "PID (comm) S ...": the state follows the last parenthesis.
        guard let close = stat.lastIndex(of: ")") else { return false }
        return stat[close...].dropFirst().trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    /// Removes what demos killed outright (SIGKILL, a crash) left behind: their directories,
    /// and the memory file of a simulator that did not get to remove it. Only when the demo
    /// that owned the directory and its simulator are both gone.
    static func removeStale(in parent: String = temporaryDirectory) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        for name in names where name.hasPrefix(directoryPrefix) {
            guard let owner = name.dropFirst(directoryPrefix.count).split(separator: "-").first.flatMap({ pid_t($0) }),
                  owner != getpid(), isDead(owner) else { continue }
            let directory = parent + "/" + name
            let text = (try? String(contentsOfFile: directory + "/" + pidFile, encoding: .utf8)) ?? ""
            if let simulator = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                guard isDead(simulator) else { continue }
                unlink("/dev/shm/vqtap-sim-\(simulator)")
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Whether it is still running (reaps it if not).
    var exitStatus: Int32? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        return r == pid ? status : nil
    }

    private var stopped = false

    func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGTERM)
        var status: Int32 = 0
        var reaped = false
        for _ in 0..<300 {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno == ECHILD) { reaped = true; break }
            usleep(10_000)
        }
        if !reaped {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
        // Killed before it could clean up (by us or by someone else): its memory file is
        // /dev/shm/vqtap-sim-PID, and no one else uses it now.
        unlink("/dev/shm/vqtap-sim-\(pid)")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The last lines it wrote on stderr (why it stopped early).
    var log: String {
        let text = (try? String(contentsOfFile: directory + "/simulate.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(3).joined(separator: "; ")
    }

    deinit { stop() }
}
