import Foundation
import Testing
import VirtioRing
@testable import VQSim

/// A short in-process run with a truth file; returns the result and the parsed truth lines.
func runSim(_ tweak: (inout SimConfig) -> Void) throws -> (SimResult, [[String: Any]], SimConfig) {
    var c = SimConfig()
    let id = UUID().uuidString.prefix(8)
    c.memoryPath = "/dev/shm/vqtap-test-\(id)"
    c.truthPath = NSTemporaryDirectory() + "vqtap-truth-\(id).jsonl"
    c.ramSize = 32 << 20
    c.diskSize = 1 << 20
    c.durationNs = 200_000_000
    c.rate = 20_000
    c.iodepth = 16
    c.blockSizes = [(4096, 70), (65536, 20), (262_144, 10)]
    c.tmfEveryNs = 20_000_000
    c.latency = .parse("lognormal:median=50us,p99=500us").value
    tweak(&c)
    let sim = try Simulator(config: c)
    let result = sim.run()
    guard c.truthPath != nil else { return (result, [], c) }
    let text = try String(contentsOfFile: c.truthPath ?? "", encoding: .utf8)
    try? FileManager.default.removeItem(atPath: c.truthPath ?? "")
    let lines = text.split(separator: "\n").compactMap { line -> [String: Any]? in
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
    return (result, lines, c)
}

extension Result {
    var value: Success {
        switch self {
        case let .success(v): return v
        case .failure: preconditionFailure("bad test input")
        }
    }
}

func vs(_ line: [String: Any]) -> [String: Any] { line["virtio_scsi"] as? [String: Any] ?? [:] }
func vs(_ line: [String: Any], _ group: String) -> [String: Any] { vs(line)[group] as? [String: Any] ?? [:] }
func num(_ any: Any?) -> Int { (any as? NSNumber)?.intValue ?? -1 }

/// Checks that hold for every run: no verification error, every command line has a response,
/// the summary is the last line and its counts match the lines.
func checkCommon(_ r: SimResult, _ lines: [[String: Any]]) {
    #expect(r.driver.verifyErrors == 0, "\(r.errors.prefix(3))")
    #expect(r.exitCode == 0)
    guard let summary = lines.last?["summary"] as? [String: Any] else { Issue.record("no summary line"); return }
    let cmds = lines.filter { $0["kind"] as? String == "cmd" }
    #expect(cmds.count == num(summary["cmd"]))
    #expect(num(summary["verify_errors"]) == 0)
    #expect(r.driver.completed > 0)
    for c in cmds where c["outcome"] as? String == "completed" {
        #expect(vs(c)["response"] != nil)
        #expect(num(c["used_ns"]) >= num(c["avail_ns"]))
    }
    let tmfs = lines.filter { $0["kind"] as? String == "tmf" }
    #expect(tmfs.count == num(summary["tmf"]))
    #expect(lines.filter { $0["kind"] as? String == "an" }.count == num(summary["an"]))
}

@Suite(.serialized) struct SimulatorTests {
    struct Combo: CustomTestStringConvertible, Sendable {
        var indirect: Bool, eventIdx: Bool, notify: Bool, queues: Int, threads: Int
        var testDescription: String { "indirect=\(indirect) event_idx=\(eventIdx) hotplug/change=\(notify) queues=\(queues) threads=\(threads)" }
    }

    static let combos: [Combo] = {
        var out: [Combo] = []
        for indirect in [true, false] {
            for eventIdx in [true, false] {
                for notify in [true, false] {
                    for (queues, threads) in [(1, 1), (4, 2)] {
                        out.append(Combo(indirect: indirect, eventIdx: eventIdx, notify: notify, queues: queues, threads: threads))
                    }
                }
            }
        }
        return out
    }()

    @Test(arguments: combos)
    func featureCombination(_ combo: Combo) throws {
        let (r, lines, c) = try runSim { c in
            c.featureIndirect = combo.indirect
            c.featureEventIdx = combo.eventIdx
            c.featureHotplug = combo.notify
            c.featureChange = combo.notify
            c.queues = combo.queues
            c.threads = combo.threads
            c.hotplugEveryNs = 30_000_000
            c.resizeEveryNs = 40_000_000
            c.durationNs = 150_000_000
        }
        checkCommon(r, lines)
        let events = lines.filter { $0["kind"] as? String == "event" && $0["outcome"] as? String == "delivered" }
        if combo.notify {
            #expect(!events.isEmpty)
            #expect(events.contains { num(vs($0, "event")["type"]) == 1 && num(vs($0, "event")["reason"]) == 2 }, "hot-unplug: TRANSPORT_RESET/REMOVED")
            #expect(events.contains { num(vs($0, "event")["type"]) == 3 && num(vs($0, "event")["asc"]) == 0x2a && num(vs($0, "event")["ascq"]) == 9 }, "resize: PARAM_CHANGE 2a/09")
        } else {
            #expect(events.isEmpty)
        }
        // Every request queue carried commands.
        let queuesSeen = Set(lines.compactMap { $0["kind"] as? String == "cmd" ? num($0["queue"]) : nil })
        #expect(queuesSeen == Set(2..<(2 + c.queues)))
    }

    @Test func diskRejectsWhatADiskRejects() throws {
        let (r, lines, _) = try runSim { c in
            c.mix = SimConfig.Mix(read: 20, write: 20, other: 60)
            c.tmfEveryNs = 0
        }
        checkCommon(r, lines)
        let cmds = lines.filter { $0["kind"] as? String == "cmd" }
        func sense(_ l: [String: Any]) -> (Int, Int, Int) {
            let s = vs(l)["sense"] as? [String: Any] ?? [:]
            return (num(s["key"]), num(s["asc"]), num(s["ascq"]))
        }
        func cdb(_ l: [String: Any]) -> [String: Any] { vs(l)["cdb"] as? [String: Any] ?? [:] }
        // LBA out of range: CHECK CONDITION, ILLEGAL REQUEST 0x21/0x00.
        let outOfRange = cmds.filter { num(cdb($0)["opcode"]) == 0x88 && num(cdb($0)["lba"]) >= 2048 }
        #expect(!outOfRange.isEmpty)
        for l in outOfRange {
            #expect(num(vs(l)["status"]) == 2)
            #expect(sense(l) == (5, 0x21, 0))
        }
        // Invalid opcode (REPORT SUPPORTED OPERATION CODES) 0x20/0x00; invalid field 0x24/0x00.
        let invalid = cmds.filter { num(cdb($0)["opcode"]) == 0xa3 }
        #expect(!invalid.isEmpty)
        for l in invalid { #expect(sense(l) == (5, 0x20, 0)) }
        // The scan's INQUIRY to the target after the last: BAD_TARGET.
        let bad = cmds.filter { ((vs($0)["lun"] as? [String: Any])?["target"] as? Int) == 2 }
        #expect(bad.count == 1)
        #expect(bad.first.map { num(vs($0)["response"]) } == 3)
        #expect(bad.first.map { vs($0)["response_name"] as? String } == "BAD_TARGET")
        // The scan saw the power-on UNIT ATTENTION 0x29/0x00 on each LUN.
        let ua = cmds.filter { sense($0) == (6, 0x29, 0) }
        #expect(ua.count >= 4)
        #expect(r.driver.verifiedBlocks > 0)
    }

    @Test func abortCompletesBeforeTheTMFAndResetsCancel() throws {
        let (r, lines, _) = try runSim { c in
            c.latency = .parse("fixed:4ms").value
            c.tmfEveryNs = 5_000_000
            c.durationNs = 300_000_000
            c.rate = 5000
        }
        checkCommon(r, lines)
        let tmfs = lines.filter { $0["kind"] as? String == "tmf" }
        let aborts = tmfs.filter { num(vs($0, "tmf")["subtype"]) == 0 }
        #expect(!aborts.isEmpty)
        let cmds = lines.filter { $0["kind"] as? String == "cmd" }
        var abortedSeen = 0
        for a in aborts {
            let id = vs(a)["id"] as? String
            #expect(num(vs(a, "tmf")["response"]) == 0)
            for c in cmds where vs(c)["id"] as? String == id && num(vs(c)["response"]) == 2 {
                // ABORTED returned no later than the TMF's response.
                if num(c["used_ns"]) <= num(a["used_ns"]) && num(c["avail_ns"]) <= num(a["avail_ns"]) { abortedSeen += 1 }
            }
        }
        #expect(abortedSeen > 0)
        #expect(r.driver.aborted > 0)
        // LOGICAL_UNIT_RESET and I_T_NEXUS_RESET cancel held commands with RESET, then UNIT ATTENTION.
        #expect(r.driver.resetResponses > 0)
        #expect(cmds.contains { num(vs($0)["response"]) == 4 })
        #expect(cmds.contains { ((vs($0)["sense"] as? [String: Any]).map { num($0["key"]) == 6 && num($0["asc"]) == 0x29 && num($0["ascq"]) == 7 }) ?? false })
        // QUERY_TASK answers FUNCTION_SUCCEEDED for a held command; AN messages answer event_actual 0.
        #expect(tmfs.contains { num(vs($0, "tmf")["subtype"]) == 6 && num(vs($0, "tmf")["response"]) == 10 })
        let ans = lines.filter { $0["kind"] as? String == "an" }
        #expect(!ans.isEmpty)
        for a in ans { #expect(num(vs(a, "an")["event_actual"]) == 0 && num(vs(a, "an")["response"]) == 0) }
    }

    @Test func eventsMissedWhenTheDriverLeftNoBuffer() throws {
        let (r, lines, _) = try runSim { c in
            c.hotplugEveryNs = 1_000_000
            c.faults = [.eventqStarve: 1]
            // Long enough for several 50 ms starvations even when the machine is busy.
            c.durationNs = 1_000_000_000
        }
        checkCommon(r, lines)
        let events = lines.filter { $0["kind"] as? String == "event" }
        #expect(events.contains { $0["outcome"] as? String == "dropped" })
        #expect(events.contains { $0["outcome"] as? String == "delivered" && vs($0, "event")["events_missed"] as? Bool == true })
        #expect(r.driver.eventsMissed > 0)
        #expect(lines.contains { $0["kind"] as? String == "event" && ($0["outcome"] as? String) == "delivered" })
    }

    @Test(arguments: SimFault.allCases)
    func faultIsInjectedAndMarked(_ fault: SimFault) throws {
        let (r, lines, _) = try runSim { c in
            c.faults = [fault: fault == .eventqStarve || fault == .dropEvents ? 0.5 : 0.02]
            if fault == .eventqStarve || fault == .dropEvents { c.hotplugEveryNs = 2_000_000 }
            c.durationNs = 150_000_000
        }
        checkCommon(r, lines)
        let injected = r.driver.injected[Int(fault.code)] + r.device.injected[Int(fault.code)]
        #expect(injected > 0)
        if fault != .eventqStarve {
            let marked = lines.filter { $0["fault"] as? String == fault.rawValue }
            #expect(!marked.isEmpty, "no truth line marked \(fault.rawValue)")
        }
        switch fault {
        case .descLoop, .badHead, .badAddr, .indirectOversize, .indirectNested, .readAfterWrite:
            // The device rejected each such chain (used length 0) and survived.
            #expect(r.device.rejectedChains == r.driver.injected[Int(fault.code)])
            for l in lines where l["fault"] as? String == fault.rawValue { #expect(l["outcome"] as? String == "rejected") }
        case .earlyUsed:
            #expect(lines.contains { $0["kind"] as? String == "orphan" })
        case .dropEvents:
            #expect(lines.contains { $0["kind"] as? String == "event" && $0["outcome"] as? String == "dropped" && $0["fault"] as? String == "drop_events" })
        default:
            break
        }
    }

    @Test func deviceResetsRewriteTheLayout() throws {
        let layoutPath = NSTemporaryDirectory() + "vqtap-layout-\(UUID().uuidString.prefix(8)).json"
        let (r, lines, _) = try runSim { c in
            c.resetEveryNs = 40_000_000
            c.layoutPath = layoutPath
            c.keep = true
            c.durationNs = 250_000_000
        }
        checkCommon(r, lines)
        #expect(r.driver.deviceResets >= 1)
        #expect(r.device.resets == r.driver.deviceResets)
        let layout = try DeviceLayout.load(path: layoutPath)
        #expect(layout.generation == 1 + 2 * r.driver.deviceResets)
        #expect(layout.status == .ready)
        unlink(layoutPath)
        unlink(r.memoryPath)
    }

    @Test func rateIsHeld() throws {
        let (r, _, _) = try runSim { c in
            c.rate = 4000
            c.threads = 1
            c.truthPath = nil
            c.tmfEveryNs = 0
            c.durationNs = 500_000_000
            c.latency = .zero
            c.blockSizes = [(4096, 1)]
        }
        #expect(abs(r.iops - 4000) / 4000 < 0.03, "\(r.iops) IOPS for --rate 4000")
    }

    @Test func badOptionsNameTheOption() {
        var c = SimConfig()
        c.queueSize = 100
        #expect(c.problem?.hasPrefix("--queue-size") == true)
        c = SimConfig(); c.iodepth = 1000
        #expect(c.problem?.hasPrefix("--iodepth") == true)
        c = SimConfig(); c.ramSize = 8 << 20
        #expect(c.problem?.hasPrefix("--ram-size") == true)
        #expect(SimConfig.Mix.parse("read=1,foo=2").failureMessage?.contains("foo") == true)
        #expect(SimConfig.parseBlockSizes("4k:70,3000:30").failureMessage?.contains("3000") == true)
        #expect(LatencyModel.parse("lognormal:median=2ms,p99=1ms").failureMessage != nil)
        #expect(SimFault.parse("nonsense=0.1").failureMessage?.contains("nonsense") == true)
        #expect((try? SimFault.parse("desc_loop=5%").get())?[.descLoop] == 0.05)
    }
}

extension Result where Failure == SimError {
    var failureMessage: String? {
        if case let .failure(e) = self { return e.message }
        return nil
    }
}

/// The truth lists every exchange: at the end, each ring's indices equal the truth's counts.
@Suite(.serialized) struct TruthCompletenessTests {
    @Test(arguments: [1, 2])
    func ringIndicesMatchTheTruth(threads: Int) throws {
        let layoutPath = NSTemporaryDirectory() + "vqtap-layout-\(UUID().uuidString.prefix(8)).json"
        let (r, lines, _) = try runSim { c in
            c.threads = threads
            c.layoutPath = layoutPath
            c.keep = true
            c.hotplugEveryNs = 20_000_000
            c.tmfEveryNs = 5_000_000
            c.faults = [.descLoop: 0.01, .earlyUsed: 0.01, .dropEvents: 0.2]
        }
        defer { unlink(layoutPath); unlink(r.memoryPath) }
        checkCommon(r, lines)
        let layout = try DeviceLayout.load(path: layoutPath)
        guard let region = layout.regions.first else { Issue.record("no region"); return }
        let m = try SimMemory(readOnly: region.file, gpaBase: region.gpa)
        for q in layout.queues {
            guard let availOff = m.offset(gpa: q.avail, length: 4), let usedOff = m.offset(gpa: q.used, length: 4) else {
                Issue.record("queue \(q.index) outside memory"); continue
            }
            let availIdx = Int(m.load16(availOff + 2)), usedIdx = Int(m.load16(usedOff + 2))
            let mine = lines.filter { num($0["queue"]) == Int(q.index) }
            switch q.index {
            case 0:
                let exchanges = mine.filter { ["tmf", "an"].contains($0["kind"] as? String ?? "") }
                #expect(exchanges.count % 65536 == availIdx)
                #expect(exchanges.filter { $0["outcome"] as? String == "completed" }.count % 65536 == usedIdx)
            case 1:
                #expect(mine.filter { $0["outcome"] as? String == "delivered" }.count % 65536 == usedIdx)
            default:
                let cmds = mine.filter { $0["kind"] as? String == "cmd" }
                let returned = cmds.filter { ["completed", "rejected"].contains($0["outcome"] as? String ?? "") }.count
                    + mine.filter { $0["kind"] as? String == "orphan" }.count
                #expect(cmds.count % 65536 == availIdx, "queue \(q.index): avail.idx \(availIdx), \(cmds.count) commands")
                #expect(returned % 65536 == usedIdx, "queue \(q.index): used.idx \(usedIdx), \(returned) returned")
            }
        }
    }
}
