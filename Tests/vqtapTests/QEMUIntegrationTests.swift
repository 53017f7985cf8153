import Foundation
import Testing

// Issue 7: vqtap on a real device. Boots the busybox guest of scripts/qemu-guest under QEMU
// (TCG), attaches `vqtap capture --qmp` before the firmware starts, and checks the capture
// against QEMU's own trace of the device (`-trace virtio_scsi_*`): the trace has the low 32
// bits of the tag, the 14-bit LUN and the CDB's first byte, so requests are matched on those
// and on order. The guest's vCPU runs on CPU 0 and the tap on CPU 1.

/// One `virtio_scsi_cmd_req` of the trace with the response QEMU traced for it.
private struct TracedRequest {
    var timeNs: UInt64
    var tag: UInt32
    var lun: Int
    var opcode: Int
    var response: Int?
    var status: Int?
}

/// One request the tap captured (its available record, joined with its used record).
private struct CapturedRequest {
    var timeNs: UInt64
    var queue: Int
    var tag: UInt32
    var lun: Int
    var opcode: Int
    var intact: Bool
    /// Outstanding when the tap attached: QEMU may have traced it before the window.
    var preAttach: Bool
    /// Copied after QEMU had returned it, with no reuse seen (flag `late`).
    var late = false
    var response: Int?
    var status: Int?
}

@Suite(.serialized) struct QEMUIntegrationTests {
    static let root = VQTapBinary.root

    @Test(.timeLimit(.minutes(3)))
    func captureMatchesQEMUTrace() throws {
        // QEMU missing is a failure, not a skip: `make test` installs it (TEST_DEBS).
        for tool in ["qemu-system-x86_64", "qemu-img", "socat", "cpio", "taskset"] {
            guard Self.which(tool) else {
                Issue.record("\(tool) is missing: apt-get install qemu-system-x86 qemu-utils socat cpio kmod")
                return
            }
        }
        let started = Date()
        let build = try Self.shell([Self.root.appendingPathComponent("scripts/qemu-guest/build").path])
        #expect(build.status == 0, "scripts/qemu-guest/build failed: \(build.output)")
        guard build.status == 0 else { return }

        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("vqtap-it-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var memoryFile: String?
        let keep = ProcessInfo.processInfo.environment["VQTAP_IT_KEEP"] != nil
        defer {
            if let memoryFile { try? FileManager.default.removeItem(atPath: memoryFile) }
            if keep { print("QEMU integration: kept \(dir.path)") } else { try? FileManager.default.removeItem(at: dir) }
        }

        // The guest, stopped before the firmware runs, until DIR/go exists.
        let run = Process()
        run.executableURL = Self.root.appendingPathComponent("scripts/qemu-guest/run")
        run.arguments = ["--paused", "--keep", "--dir", dir.path, "--timeout", "120"]
        run.standardOutput = try FileHandle(forWritingTo: Self.create(dir.appendingPathComponent("run.out")))
        run.standardError = run.standardOutput
        try run.run()
        defer { if run.isRunning { run.terminate() } }

        let paths = dir.appendingPathComponent("paths")
        let socket = dir.appendingPathComponent("qmp.sock").path
        guard Self.waitFor(seconds: 20, { FileManager.default.fileExists(atPath: paths.path) && FileManager.default.fileExists(atPath: socket) }) else {
            Issue.record("QEMU did not start: \(Self.read(dir.appendingPathComponent("run.out")))")
            return
        }
        let vars = Self.shellVariables(Self.read(paths))
        memoryFile = vars["MEMORY_FILE"]
        guard let qemuPID = vars["QEMU_PID"], let tracePath = vars["TRACE"] else {
            Issue.record("paths file without QEMU_PID/TRACE: \(Self.read(paths))")
            return
        }
        // The guest's vCPU (all of QEMU) on CPU 0, the tap on CPU 1, and this test's own
        // threads (and the tap's other threads, which inherit it) off the tap's core: a
        // thread waking there takes it from the tap for up to a scheduler slice (~1 ms).
        _ = try Self.shell(["taskset", "-a", "-p", "-c", "0", qemuPID])
        _ = try Self.shell(["taskset", "-a", "-p", "-c", "0", String(getpid())])
        defer { _ = try? Self.shell(["taskset", "-a", "-p", "-c", "0-\(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)) - 1))", String(getpid())]) }

        let captureFile = dir.appendingPathComponent("capture.json")
        let pcapng = dir.appendingPathComponent("capture.pcapng").path
        let tapErr = dir.appendingPathComponent("capture.err")
        let tap = Process()
        // Its own core, and the highest priority there (root only; nice runs it anyway):
        // other processes on a shared host would otherwise deschedule the poll loop for
        // milliseconds, long enough for the guest to recycle the buffers it has not copied.
        tap.executableURL = URL(fileURLWithPath: "/usr/bin/nice")
        // The tap as users run it (the release build `make test` names in VQTAP_RELEASE_BINARY),
        // so that the completeness printed below is theirs; the debug build otherwise.
        let tapBinary = ProcessInfo.processInfo.environment["VQTAP_RELEASE_BINARY"] ?? VQTapBinary.url.path
        print("QEMU integration: tap binary \(tapBinary)")
        tap.arguments = ["-n", "-20", tapBinary, "capture", "--qmp", socket, "-w", pcapng, "--print", "-T", "json",
                         "--wait", "--wait-timeout", "60s",
                         "--poll", "busy", "--cpu", "1"]
        tap.environment = ProcessInfo.processInfo.environment.merging(["VQTAP_TORN_REASONS": "1"]) { _, new in new }
        tap.standardOutput = try FileHandle(forWritingTo: Self.create(captureFile))
        tap.standardError = try FileHandle(forWritingTo: Self.create(tapErr))
        try tap.run()
        defer { if tap.isRunning { tap.interrupt() } }
        usleep(500_000)  // connected and waiting for DRIVER_OK
        _ = FileManager.default.createFile(atPath: dir.appendingPathComponent("go").path, contents: nil)

        run.waitUntilExit()
        #expect(run.terminationStatus == 0, "the guest run failed: \(Self.read(dir.appendingPathComponent("run.out")))")
        // QEMU exited: the tap notices the closed socket and stops with status 3.
        let tapEnded = Self.waitFor(seconds: 10) { !tap.isRunning }
        #expect(tapEnded, "vqtap did not stop when QEMU exited")
        guard tapEnded else { return }
        let stderr = Self.read(tapErr)
        #expect(tap.terminationStatus == 3, "vqtap exit status \(tap.terminationStatus): \(stderr)")
        #expect(stderr.contains("went away"), "no 'went away' message: \(stderr)")

        for line in stderr.split(separator: "\n") where line.hasPrefix("torn reasons:") || line.hasPrefix("loop stalls:") { print("QEMU integration: \(line)") }
        let records = Self.read(captureFile).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let trace = Self.read(URL(fileURLWithPath: tracePath))
        try Self.check(records: records, trace: trace, counters: stderr)
        try Self.checkFile(pcapng, live: Self.read(captureFile), records: records.count)
        print("QEMU integration: whole test \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }

    // MARK: - the file

    /// The pcapng file written beside the live output: `vqtap read` prints it exactly as the
    /// capture printed live, and tshark with the plugin decodes every record of it.
    private static func checkFile(_ path: String, live: String, records: Int) throws {
        let read = try VQTapBinary.run(["read", "-T", "json", path])
        #expect(read.status == 0, "vqtap read: \(read.stderr)")
        let liveLines = live.split(separator: "\n"), readLines = read.stdout.split(separator: "\n")
        #expect(readLines.count == liveLines.count, "vqtap read printed \(readLines.count) records, the capture \(liveLines.count)")
        let firstDifference = zip(liveLines, readLines).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "record \((firstDifference ?? 0) + 1) differs:\n\(firstDifference.map { String(liveLines[$0]) } ?? "")\n\(firstDifference.map { String(readLines[$0]) } ?? "")")

        let lua = try ReadGoldenLuaTests.plugin()

        defer { try? FileManager.default.removeItem(atPath: lua) }
        let rows = try TShark.fields(path, ["frame.number", "virtio_scsi.record.kind", "virtio_scsi.cdb.opcode", "virtio_scsi.time"],
                                     extra: ["-2", "-X", "lua_script:\(lua)"])
        #expect(rows.count == records, "tshark read \(rows.count) frames, vqtap \(records) records")
        let decoded = rows.filter { $0.count == 4 && !$0[1].isEmpty }.count
        #expect(decoded == rows.count, "tshark decoded \(decoded) of \(rows.count) frames with the plugin")
        let commands = rows.filter { $0.count == 4 && !$0[2].isEmpty }.count
        let timed = rows.filter { $0.count == 4 && !$0[3].isEmpty }.count
        #expect(commands > 100, "tshark found \(commands) CDBs")
        #expect(timed > 100, "tshark showed \(timed) response times")
        print("QEMU integration: tshark decoded \(decoded) frames, \(commands) with a CDB, \(timed) with a response time; vqtap read matched the live output")
    }

    // MARK: - the comparison

    private static func check(records: [[String: Any]], trace: String, counters: String) throws {
        // Windows in which the tap was attached: (re-)attached marker -> reset/gone marker.
        var windows: [(from: UInt64, to: UInt64)] = []
        var openSince: UInt64?
        var markers: [(time: UInt64, state: String)] = []
        for r in records where r["record"] as? String == "state" {
            let t = u64(r["time_ns"]), state = r["state"] as? String ?? ""
            if markers.last?.time == t && markers.last?.state == state { continue }
            markers.append((t, state))
            if state == "attached" || state == "re-attached" {
                if openSince == nil { openSince = t }
            } else if let from = openSince {
                windows.append((from, t))
                openSince = nil
            }
        }
        if let from = openSince { windows.append((from, UInt64.max)) }
        #expect(!windows.isEmpty, "no attach marker in the capture")
        guard let firstAttach = windows.first?.from else { return }

        // The trace: requests with their responses, TMFs, events, status changes.
        var traced: [TracedRequest] = []
        var open: [String: [Int]] = [:]  // "tag/lun" -> indices into traced, oldest first
        var tmfSubtypes: [Int] = []
        var events: [(event: Int, reason: Int)] = []
        var driverOK: [UInt64] = []
        var lastStatus = 0
        for line in trace.split(separator: "\n") {
            guard let at = line.firstIndex(of: "@"), let colon = line[at...].firstIndex(of: ":"),
                  let seconds = Double(line[line.index(after: at)..<colon]) else { continue }
            let t = UInt64(seconds * 1e6) * 1000
            let f = fields(line)
            if line.contains("virtio_scsi_cmd_req ") {
                guard let tag = hex(f["tag"]), let lun = Int(f["lun"] ?? ""), let op = hex(f["cmd"]) else { continue }
                open["\(tag)/\(lun)", default: []].append(traced.count)
                traced.append(TracedRequest(timeNs: t, tag: UInt32(truncatingIfNeeded: tag), lun: lun, opcode: Int(op)))
            } else if line.contains("virtio_scsi_cmd_resp ") {
                guard let tag = hex(f["tag"]), let lun = Int(f["lun"] ?? ""), var list = open["\(tag)/\(lun)"], !list.isEmpty else { continue }
                let k = list.removeFirst()
                open["\(tag)/\(lun)"] = list
                traced[k].response = Int(f["response"] ?? "")
                traced[k].status = hex(f["status"]).map { Int($0) }
            } else if line.contains("virtio_scsi_tmf_req "), t >= firstAttach {
                tmfSubtypes.append(Int(f["subtype"] ?? "") ?? -1)
            } else if line.contains("virtio_scsi_event "), t >= firstAttach {
                events.append((Int(f["event"] ?? "") ?? -1, Int(f["reason"] ?? "") ?? -1))
            } else if line.contains("virtio_set_status ") {
                let val = Int(line.split(separator: " ").last ?? "") ?? 0
                if val & 4 != 0 && lastStatus & 4 == 0 { driverOK.append(t) }
                lastStatus = val
            }
        }
        let inWindow = traced.filter { r in windows.contains { r.timeNs >= $0.from && r.timeNs <= $0.to } }

        // The capture: available records of request queues (queue >= 2) joined with their used.
        var captured: [CapturedRequest] = []
        var byTransaction: [String: Int] = [:]
        var tmfDecoded: [Int] = []
        var eventNames: [String] = []
        for r in records {
            let kind = r["record"] as? String ?? "", queue = r["queue"] as? Int ?? -1
            let flags = r["flags"] as? [String] ?? []
            let scsi = r["virtio_scsi"] as? [String: Any] ?? [:]
            let key = "\(queue)/\(u64(r["transaction_id"]))"
            if queue == 0, kind == "available", let tmf = scsi["tmf"] as? [String: Any] {
                tmfDecoded.append(tmf["subtype"] as? Int ?? -1)
            }
            if queue == 1, kind == "used", let e = scsi["event"] as? [String: Any] {
                eventNames.append((e["type_name"] as? String ?? "") + "/" + (e["reason_name"] as? String ?? ""))
            }
            guard queue >= 2 else { continue }
            if kind == "available" {
                let lun = scsi["lun"] as? [String: Any] ?? [:]
                let cdb = scsi["cdb"] as? [String: Any] ?? [:]
                byTransaction[key] = captured.count
                captured.append(CapturedRequest(
                    timeNs: u64(r["time_ns"]), queue: queue, tag: UInt32(truncatingIfNeeded: hex(scsi["id"] as? String) ?? 0),
                    lun: lun["lun"] as? Int ?? -1, opcode: cdb["opcode"] as? Int ?? -1,
                    intact: !flags.contains("torn") && !flags.contains("malformed") && scsi["error"] == nil,
                    preAttach: flags.contains("pre-attach"), late: flags.contains("late")))
            } else if kind == "used", let k = byTransaction[key] {
                if flags.contains("late") { captured[k].late = true }
                captured[k].response = scsi["response"] as? Int
                captured[k].status = scsi["status"] as? Int
                if flags.contains("torn") || flags.contains("malformed") || scsi["error"] != nil { captured[k].intact = false }
            }
        }

        // Match on (tag32, lun, opcode, response, status) and order: the longest common
        // subsequence of the two lists. The trace has no target: the guest's scan sends the
        // same INQUIRY with tag 0 to every target, and only the outcome (OK, BAD_TARGET)
        // tells them apart, so it is part of the key; a greedy match would skip ahead.
        let windowed = captured.filter { c in windows.contains { c.timeNs >= $0.from && c.timeNs <= $0.to } }
        let candidates = windowed.filter { $0.intact }
        let matchedSet = longestCommonSubsequenceMatches(inWindow, candidates) { t, c in
            c.tag == t.tag && c.lun == t.lun && c.opcode == t.opcode && c.response == t.response && c.status == t.status
        }
        let matched = matchedSet.count
        // An intact capture that matches no trace line in order had another content. A late
        // one (copied after QEMU returned it, or in the first poll after a reset) may hold a
        // reuse the guest had not posted yet: that is what the flag warns of. Allowed while
        // they stay the exception among the late ones (the scan after a reset reuses one
        // header every ~25 us).
        let unmatched = candidates.indices.filter { !matchedSet.contains($0) && !candidates[$0].preAttach }
        let wrongOutcome = unmatched.filter { !candidates[$0].late }.count
        let wrongLate = unmatched.count - wrongOutcome
        let late = candidates.filter(\.late).count
        print("QEMU integration: \(late) captures flagged late, \(wrongLate) of them match no traced request")
        // The first poll after each of the two resets flags late whatever was returned
        // before it, and right after a reset those are often the next request being built:
        // up to two such, plus half of the rest.
        #expect(wrongLate <= late / 2 + 2, "\(wrongLate) of \(late) late captures match no traced request")
        let lost = requestQueueCounters(counters)
        let missing = inWindow.count - matched
        let completeness = inWindow.isEmpty ? 0 : 100 * Double(matched) / Double(inWindow.count)
        print(String(format: "QEMU integration: traced %d requests while attached (%d in all), captured with content %d (%.2f%%), torn %d, dropped %d, malformed %d, wrong outcome %d",
                     inWindow.count, traced.count, matched, completeness, lost.torn, lost.dropped, lost.malformed, wrongOutcome))
        // The same figure for the workload alone: from the first READ(10) after Linux's
        // DRIVER_OK, leaving out the firmware and the target scan (a request every 22-40 us
        // on one recycled head, the hardest case for a passive poller).
        let linuxReady = driverOK.count >= 2 ? driverOK[1] : UInt64.max
        if let start = inWindow.first(where: { $0.timeNs > linuxReady && $0.opcode == 0x28 })?.timeNs {
            let workload = inWindow.filter { $0.timeNs >= start }
            let workloadMatched = longestCommonSubsequenceMatches(workload, candidates.filter { $0.timeNs + 50_000_000 >= start }) { t, c in
                c.tag == t.tag && c.lun == t.lun && c.opcode == t.opcode && c.response == t.response && c.status == t.status
            }.count
            print(String(format: "QEMU integration: workload (after the scan) %d requests traced, %d captured with content (%.2f%%)",
                         workload.count, workloadMatched, workload.isEmpty ? 0 : 100 * Double(workloadMatched) / Double(workload.count)))
        }
        if wrongOutcome > 0 {
            // Name them: a capture whose key no traced request has at all had other content;
            // otherwise the order differs.
            let stray = candidates.filter { c in !c.preAttach && !c.late && !inWindow.contains { t in
                c.tag == t.tag && c.lun == t.lun && c.opcode == t.opcode && c.response == t.response && c.status == t.status } }
            for c in stray.prefix(5) {
                print("QEMU integration: captured intact, traced nowhere: tag \(c.tag) lun \(c.lun) opcode \(c.opcode) response \(c.response ?? -1) status \(c.status ?? -1) at \(c.timeNs)")
            }
        }
        #expect(wrongOutcome == 0, "\(wrongOutcome) requests captured intact match no traced request in order")
        #expect(missing <= lost.torn + lost.dropped + lost.malformed,
                "\(missing) traced requests neither captured nor counted (torn \(lost.torn), dropped \(lost.dropped), malformed \(lost.malformed))")
        // Completeness (captured with content / traced) is issue 7's bar, a measured figure
        // printed above and reported in the README, not asserted: how much content a passive
        // tap copies depends on how often the machine deschedules it (virtio-facts.md, "The
        // ceiling of a passive poller"). What the test asserts is that nothing is lost
        // silently: every traced request is captured or counted, and no capture is wrong.

        // The LUN reset TMF and the three events, decoded.
        #expect(tmfSubtypes.contains(5), "the trace has no LOGICAL UNIT RESET: \(tmfSubtypes)")
        #expect(tmfDecoded.contains(5), "no LOGICAL_UNIT_RESET TMF in the capture (traced \(tmfSubtypes))")
        #expect(events.count == eventNames.count, "traced events \(events), captured \(eventNames)")
        for name in ["TRANSPORT_RESET/RESCAN", "TRANSPORT_RESET/REMOVED"] {
            #expect(eventNames.contains(name), "no \(name) event in the capture: \(eventNames)")
        }
        #expect(eventNames.contains { $0.hasPrefix("PARAM_CHANGE/") }, "no PARAM_CHANGE event in the capture: \(eventNames)")

        // The driver reset followed: a reset marker, a re-attach, then requests again.
        let resets = markers.filter { $0.state == "reset" }
        let reattaches = markers.filter { $0.state == "re-attached" }
        #expect(resets.count >= 2 && reattaches.count >= 2, "markers: \(markers.map(\.state))")
        if let lastReattach = reattaches.last {
            #expect(captured.contains { $0.timeNs > lastReattach.time && $0.intact },
                    "no request captured after the last re-attach")
        }
        // Attach time: QEMU's DRIVER_OK trace line -> the tap's (re-)attach marker.
        let attachTimes = markers.filter { $0.state == "attached" || $0.state == "re-attached" }
        var delays: [Double] = []
        for m in attachTimes {
            if let ok = driverOK.last(where: { $0 <= m.time }) { delays.append(Double(m.time - ok) / 1e6) }
        }
        print("QEMU integration: driver ready -> tap attached: \(delays.map { String(format: "%.1f ms", $0) }.joined(separator: ", "))")
        // Issue 7's bar is 10 ms (3.6-9.0 ms measured); five times that catches a watcher that
        // stopped polling QMP fast, without failing on a descheduled moment.
        #expect(delays.count == attachTimes.count && delays.allSatisfy { $0 < 50 }, "attach delays \(delays) ms")
    }

    /// The length of the longest common subsequence of `a` and `b` under `same`.
    /// The indices in `b` of one longest common subsequence of `a` and `b`.
    private static func longestCommonSubsequenceMatches<A, B>(_ a: [A], _ b: [B], same: (A, B) -> Bool) -> Set<Int> {
        let n = a.count, m = b.count
        var table = [[Int32]](repeating: [Int32](repeating: 0, count: m + 1), count: n + 1)
        for i in 0..<n {
            for j in 0..<m {
                table[i + 1][j + 1] = same(a[i], b[j]) ? table[i][j] + 1 : max(table[i][j + 1], table[i + 1][j])
            }
        }
        var matches = Set<Int>()
        var i = n, j = m
        while i > 0 && j > 0 {
            if same(a[i - 1], b[j - 1]) && table[i][j] == table[i - 1][j - 1] + 1 {
                matches.insert(j - 1); i -= 1; j -= 1
            } else if table[i - 1][j] >= table[i][j - 1] {
                i -= 1
            } else {
                j -= 1
            }
        }
        return matches
    }


    /// Sums the torn, dropped and malformed counters of the request queues (stderr lines
    /// `q2 request0: captured 1 torn 2 orphan 0 dropped 3 malformed 4`).
    private static func requestQueueCounters(_ text: String) -> (torn: Int, dropped: Int, malformed: Int) {
        var sum = (torn: 0, dropped: 0, malformed: 0)
        for line in text.split(separator: "\n") where line.hasPrefix("q") && line.contains("request") {
            let words = line.split(separator: " ").map(String.init)
            func value(_ name: String) -> Int { words.firstIndex(of: name).flatMap { $0 + 1 < words.count ? Int(words[$0 + 1]) : nil } ?? 0 }
            sum.torn += value("torn")
            sum.dropped += value("dropped")
            sum.malformed += value("malformed")
        }
        return sum
    }

    private static func fields(_ line: Substring) -> [String: String] {
        var out: [String: String] = [:]
        for word in line.split(separator: " ") {
            let kv = word.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = String(kv[1]) }
        }
        return out
    }

    private static func hex(_ s: String?) -> UInt64? {
        guard var s else { return nil }
        if s.hasPrefix("0x") { s.removeFirst(2) }
        return UInt64(s, radix: 16)
    }

    private static func u64(_ v: Any?) -> UInt64 {
        if let n = v as? NSNumber { return n.uint64Value }
        if let s = v as? String { return hex(s) ?? 0 }
        return 0
    }

    // MARK: - processes and files

    private static func which(_ tool: String) -> Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
        }
    }

    private static func shell(_ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    private static func create(_ url: URL) -> URL {
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        return url
    }

    private static func read(_ url: URL) -> String {
        (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }

    private static func shellVariables(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = String(kv[1]) }
        }
        return out
    }

    private static func waitFor(seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }
}
