import Foundation
import Testing

/// `vqtap capture` against `vqtap simulate` in a second process, compared with the
/// simulator's ground truth. Assertions are about accounting, which holds however the
/// (shared, 2-core) machine schedules the tap: every request is captured or counted.
struct SimRun {
    var truth: [[String: Any]]
    var records: [[String: Any]]
    var tapStatus: Int32
    var tapStderr: String

    var attachNs: UInt64 {
        records.first { $0["record"] as? String == "state" }.flatMap { ($0["time_ns"] as? NSNumber)?.uint64Value } ?? 0
    }

    /// Truth lines of `kind` not clearly completed before the tap attached (the tap waits for
    /// the layout, so it attaches before the simulator's first request; 1 ms of slack keeps
    /// the two processes' clocks out of the comparison). An orphan's time is its completion.
    func truthAfterAttach(kind: String) -> [[String: Any]] {
        let cut = attachNs &- 1_000_000
        return truth.filter { t in
            guard t["kind"] as? String == kind, let time = (t["time_ns"] as? NSNumber)?.uint64Value else { return false }
            guard let avail = (t["avail_ns"] as? NSNumber)?.uint64Value else { return time >= cut }
            guard let used = (t["used_ns"] as? NSNumber)?.uint64Value else { return false }
            return time &+ used &- avail >= cut
        }
    }

    func flags(_ r: [String: Any]) -> Set<String> { Set(r["flags"] as? [String] ?? []) }
}

func runSimulatorWithTap(_ simArgs: [String], tapArgs: [String] = ["-T", "json"]) throws -> SimRun {
    let dir = NSTemporaryDirectory() + "vqtap-int-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let layout = dir + "/layout", truthPath = dir + "/truth", out = dir + "/tap.out"
    #expect(FileManager.default.createFile(atPath: out, contents: nil))
    let tap = Process()
    tap.executableURL = TapBinary.url
    tap.arguments = ["capture", "--layout", layout, "--wait", "--wait-timeout", "60s"] + tapArgs
    tap.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    let tapErr = Pipe()
    tap.standardError = tapErr
    try tap.run()
    let sim = try TapBinary.run(["simulate", "--layout", layout, "--truth", truthPath, "-q"] + simArgs)
    #expect(sim.status == 0)
    let err = tapErr.fileHandleForReading.readDataToEndOfFile()
    tap.waitUntilExit()
    func lines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
    return SimRun(truth: try lines(truthPath), records: try lines(out), tapStatus: tap.terminationStatus,
                  tapStderr: String(decoding: err, as: UTF8.self))
}

/// What identifies a command in the truth and in a capture.
func commandKey(queue: Int, scsi: [String: Any], response: Any?, status: Any?) -> String {
    let lun = scsi["lun"] as? [String: Any] ?? [:]
    let cdb = scsi["cdb"] as? [String: Any] ?? [:]
    let opcode = (cdb["opcode"] as? Int) ?? -1
    // LBA and length only where the truth always gives them: READ/WRITE (10) and (16).
    let rw = [0x28, 0x2a, 0x88, 0x8a].contains(opcode)
    let length = rw ? "\(cdb["transfer_length"] ?? "-")" : "-"
    let lba = rw ? "\(cdb["lba"] ?? "-")" : "-"
    return "\(queue) \(scsi["id"] ?? "-") \(lun["target"] ?? "-"):\(lun["lun"] ?? "-") op \(opcode) lba \(lba) len \(length) resp \(response ?? "-") status \(status ?? "-")"
}

@Suite(.serialized) struct SimulatorIntegrationTests {
    @Test func everyRequestIsCapturedOrCountedAndTheExitIsDetected() throws {
        let run = try runSimulatorWithTap(["--rate", "2000", "--duration", "1", "--threads", "1"])
        #expect(run.tapStatus == 3)
        #expect(run.tapStderr.contains("the device went away: the device's process"))
        // Every completion after the attach, whatever its outcome.
        var truth: [String: Int] = [:]
        for t in run.truthAfterAttach(kind: "cmd") {
            let v = t["virtio_scsi"] as? [String: Any] ?? [:]
            truth[commandKey(queue: t["queue"] as? Int ?? -1, scsi: v, response: v["response"], status: v["status"]), default: 0] += 1
        }
        // Every used record is captured intact or counted; a lapped used ring counts its entries.
        // A capture flagged late (copied after the chain was returned, nothing proving it)
        // may hold the next request's bytes: that is what the flag says. Kept apart.
        var captured: [String: Int] = [:]
        var capturedLate: [String: Int] = [:]
        var counted = 0
        for r in run.records where (r["queue"] as? Int ?? 0) >= 2 {
            let kind = r["record"] as? String
            if kind == "drop" {
                if (r["reason"] as? String)?.hasPrefix("used") == true { counted += r["dropped"] as? Int ?? 0 }
                continue
            }
            guard kind == "used" else { continue }
            guard run.flags(r).isDisjoint(with: ["torn", "malformed", "orphan", "used-len-exceeds"]),
                  let request = (r["request"] as? [String: Any])?["virtio_scsi"] as? [String: Any] else {
                counted += 1
                continue
            }
            let resp = r["virtio_scsi"] as? [String: Any] ?? [:]
            let key = commandKey(queue: r["queue"] as? Int ?? -1, scsi: request, response: resp["response"], status: resp["status"])
            if run.flags(r).contains("late") { capturedLate[key, default: 0] += 1 } else { captured[key, default: 0] += 1 }
        }
        let total = truth.values.reduce(0, +)
        let matchedLate = truth.reduce(0) { $0 + min(max(0, $1.value - (captured[$1.key] ?? 0)), capturedLate[$1.key] ?? 0) }
        let matched = truth.reduce(0) { $0 + min($1.value, captured[$1.key] ?? 0) } + matchedLate
        let wrong = captured.filter { $0.value > (truth[$0.key] ?? 0) }.map { "\($0.key) x\($0.value - (truth[$0.key] ?? 0))" }
        let late = capturedLate.values.reduce(0, +)
        // On a loaded machine (the whole suite in parallel) hundreds are late, a few percent
        // of them wrong; the flag must stay a warning that is mostly false, not a coin toss.
        #expect((late - matchedLate) * 2 <= late + 2, "\(late - matchedLate) of \(late) late captures match no request")
        #expect(total > 500)
        #expect(matched > 0)
        // A clean record that matches nothing is a chain the driver rewrote while the tap
        // copied it and published only after the tap looked again (a driver preempted in
        // the middle of a post, on a loaded machine): rare, and it stands for exactly one
        // request of the truth.
        #expect(wrong.count * 200 <= total, "captured but in no request of the truth: \(wrong.prefix(5)); tap: \(run.tapStderr)")
        // Exact in the unit tests; here, on a shared 2-core machine with a debug build, a few
        // requests per thousand near the end of the run are still unaccounted (open issue).
        let accounted = matched + counted + wrong.count + (late - matchedLate)
        #expect(accounted <= total && (total - accounted) * 200 <= total)
    }

    @Test func ringFaultsAreFlaggedAsSuch() throws {
        let run = try runSimulatorWithTap(["--rate", "2000", "--duration", "1", "--threads", "1",
                                           "--faults", "bad_head=0.03,early_used=0.03"])
        #expect(run.tapStatus == 3)
        // Bad heads made available after the attach (the snapshot's own are left out).
        let badHeads = run.truth.filter {
            $0["fault"] as? String == "bad_head" && (($0["time_ns"] as? NSNumber)?.uint64Value ?? 0) &+ 1_000_000 >= run.attachNs
        }
        let earlyUsed = run.truthAfterAttach(kind: "orphan").filter { $0["fault"] as? String == "early_used" }
        #expect(badHeads.count > 0)
        #expect(earlyUsed.count > 0)
        // A head out of range is malformed whenever it is seen; a completion of a chain never
        // made available is an orphan.
        let outOfRange = run.records.filter {
            $0["record"] as? String == "available" && $0["error"] as? Int == 1 && !run.flags($0).contains("pre-attach")
        }
        #expect(outOfRange.count <= badHeads.count && badHeads.count - outOfRange.count <= 1)
        #expect(outOfRange.allSatisfy { run.flags($0).contains("malformed") && !run.flags($0).contains("torn") })
        let orphans = run.records.filter { $0["record"] as? String == "used" && run.flags($0).contains("orphan") }
        // Besides the injected ones, a chain outstanding at attach outside the snapshot's
        // window (the last avail.idx - used.idx entries) completes as an orphan too.
        #expect(abs(orphans.count - earlyUsed.count) <= 2)
    }

    @Test func aDriverResetIsFollowed() throws {
        let run = try runSimulatorWithTap(["--rate", "2000", "--duration", "1.2", "--threads", "1", "--reset-every", "400ms"])
        #expect(run.tapStatus == 3)
        let states = run.records.filter { $0["record"] as? String == "state" && $0["queue"] as? Int == 2 }
        let names = states.compactMap { $0["state"] as? String }
        #expect(names.first == "attached")
        #expect(names.filter { $0 == "reset" }.count >= 1)
        #expect(names.filter { $0 == "re-attached" }.count == names.filter { $0 == "reset" }.count)
        #expect(names.last == "gone")
        let generations = states.compactMap { ($0["generation"] as? NSNumber)?.intValue }
        #expect(generations == generations.sorted())
        #expect((generations.last ?? 0) > (generations.first ?? 0))
        // Requests are captured after the first re-attach, none of them pre-attach.
        let firstReattach = run.records.firstIndex { $0["state"] as? String == "re-attached" } ?? run.records.count
        let after = run.records[firstReattach...].filter { $0["record"] as? String == "available" && ($0["queue"] as? Int ?? 0) >= 2 }
        #expect(after.count > 0)
        #expect(after.allSatisfy { !run.flags($0).contains("pre-attach") })
    }
}
