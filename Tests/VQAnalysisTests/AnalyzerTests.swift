import Testing
import VQRecord
import VQWire
import VirtioSCSI
@testable import VQAnalysis

let ms: UInt64 = 1_000_000
let sec: UInt64 = 1_000_000_000
let lun01 = LUNAddress(target: 0, lun: 1)
let lun02 = LUNAddress(target: 0, lun: 2)
let lun11 = LUNAddress(target: 1, lun: 1)

func analyze(_ b: RecordStreamBuilder, options: Analyzer.Options = Analyzer.Options()) -> Analyzer {
    var a = Analyzer(options: options)
    for r in b.records { a.consume(r) }
    return a
}

func findings(_ a: Analyzer, _ kind: Finding.Kind) -> [Finding] { a.findings.elements.filter { $0.kind == kind } }

@Suite struct MatchingTests {
    @Test func latenciesGiveExactPercentiles() {
        var b = RecordStreamBuilder()
        b.attach(name: "scsi0", at: 0)
        // 100 reads, one at a time, taking 1..100 x 1024 ns (values an HDR histogram holds exactly).
        var t: UInt64 = 1000
        for k in 1...100 as ClosedRange<UInt64> {
            let id = b.command(head: UInt16(k % 8), tag: k, lun: lun01, cdb: SCSICommand.read10(lba: 0, blocks: 8), dataIn: 4096, at: t)
            t += k * 1024
            b.complete(id, dataIn: 4096, at: t)
            t += 10
        }
        let a = analyze(b)
        #expect(a.transactionCount == 100)
        let rows = a.statistics.rows(.device)
        #expect(rows.count == 1)
        let l = rows[0].latency
        #expect(l.count == 100)
        #expect(l.min == 1024)
        #expect(l.max == 102_400)
        #expect(l.mean == 51_712)
        #expect(l.p50 == 50 * 1024)
        #expect(l.p90 == 90 * 1024)
        #expect(l.p99 == 99 * 1024)
        #expect(l.p999 == 100 * 1024)
        #expect(rows[0].bytesIn == 409_600)
        #expect(rows[0].bytesOut == 0)
        #expect(rows[0].errors == 0)
        #expect(rows[0].label(deviceNames: [0: "scsi0"]) == "scsi0")
        #expect(a.matcher.inFlight.isEmpty)
    }

    @Test func aTransactionCarriesItsRequestAndOutcome() {
        var b = RecordStreamBuilder()
        let id = b.command(queue: 3, head: 5, tag: 0xdead, lun: lun02, cdb: SCSICommand.write10(lba: 2048, blocks: 16), dataOut: 8192, at: 10 * ms)
        let sense = SenseData.fixed(key: 0x03, asc: 0x11, ascq: 0x00)
        b.complete(id, status: 0x02, sense: sense, residual: 4096, at: 13 * ms)
        let a = analyze(b)
        let t = a.recent.elements
        #expect(t.count == 1)
        #expect(t[0].queue == 3)
        #expect(t[0].head == 5)
        #expect(t[0].tag == 0xdead)
        #expect(t[0].lun == lun02)
        #expect(t[0].opcode == OpcodeKey(opcode: 0x2a))
        #expect(t[0].opcodeName == "Write(10)")
        #expect(t[0].lba == 2048)
        #expect(t[0].blocks == 16)
        #expect(t[0].latencyNs == 3 * ms)
        #expect(t[0].bytesOut == 4096)
        #expect(t[0].outcome == Outcome(response: 0, status: 2, senseKey: 3, asc: 0x11, ascq: 0))
        #expect(t[0].outcome.name == "CHECK CONDITION/MEDIUM ERROR")
        #expect(t[0].outcome.detail == "CHECK CONDITION/MEDIUM ERROR 0x11/0x00 Unrecovered read error")
        #expect(t[0].isError)
        #expect(a.errors.elements.count == 1)
        #expect(a.log.elements.map(\.kind) == [.error])
    }

    @Test func outcomesGroupBySenseKeyNotASC() {
        var b = RecordStreamBuilder()
        var ns: UInt64 = 0
        func one(_ status: UInt8, _ response: VirtioSCSIResponse = .ok, _ sense: [UInt8] = []) {
            let id = b.command(head: 1, tag: 1, lun: lun01, cdb: SCSICommand.testUnitReady(), at: ns)
            ns += ms
            b.complete(id, status: status, response: response, sense: sense, at: ns)
        }
        one(0)
        one(0)
        one(2, .ok, SenseData.fixed(key: 6, asc: 0x29, ascq: 0))
        one(2, .ok, SenseData.fixed(key: 6, asc: 0x2a, ascq: 9))
        one(0x08)
        one(0, .aborted)
        let rows = analyze(b).statistics.rows(.outcome)
        #expect(rows.map { $0.label() } == ["GOOD", "CHECK CONDITION/UNIT ATTENTION", "BUSY", "ABORTED"])
        #expect(rows.map(\.count) == [2, 2, 1, 1])
        #expect(rows.map(\.errors) == [0, 2, 1, 1])
    }

    /// Every byte value of response and status (a torn completion, a hostile guest) makes
    /// at most one group more each, not 255: memory stays bounded.
    @Test func undefinedResponsesAndStatusesFoldIntoOneGroupEach() {
        var b = RecordStreamBuilder()
        var ns: UInt64 = 0
        for value in 0...255 {
            for (status, response) in [(UInt8(value), VirtioSCSIResponse.ok), (0, VirtioSCSIResponse(rawValue: UInt8(value)))] {
                let id = b.command(head: 1, tag: 1, lun: lun01, cdb: SCSICommand.testUnitReady(), at: ns)
                ns += ms
                b.complete(id, status: status, response: response, at: ns)
            }
        }
        let rows = analyze(b).statistics.rows(.outcome)
        let labels = rows.map { $0.label() }
        #expect(labels.contains("other response") && labels.contains("other status"))
        #expect(labels.contains("TASK SET FULL") && labels.contains("BAD_TARGET") && labels.contains("GOOD"))
        // 8 SAM statuses and the other one; 13 virtio responses but OK, and the other one.
        #expect(rows.count == 8 + 1 + 12 + 1, "\(labels)")
        #expect(rows.reduce(0) { $0 + $1.count } == 512)
        #expect(rows.first { $0.label() == "other response" }?.count == 256 - 13)
        #expect(rows.first { $0.label() == "other status" }?.count == 256 - 8)
    }

    @Test func groupsByQueueLUNAndOpcodeAndTheirCombination() {
        var options = Analyzer.Options()
        options.statistics.groupings = [.queue, .lun, .opcode, Grouping([.queue, .lun])]
        var b = RecordStreamBuilder()
        let a1 = b.command(queue: 2, head: 0, tag: 1, lun: lun01, cdb: SCSICommand.read10(lba: 0, blocks: 1), dataIn: 512, at: 0)
        let a2 = b.command(queue: 3, head: 0, tag: 2, lun: lun02, cdb: SCSICommand.write10(lba: 0, blocks: 1), dataOut: 512, at: 0)
        let a3 = b.command(queue: 3, head: 1, tag: 3, lun: lun01, cdb: SCSICommand.read10(lba: 8, blocks: 1), dataIn: 512, at: 0)
        b.complete(a1, dataIn: 512, at: sec)
        b.complete(a2, at: sec)
        b.complete(a3, dataIn: 512, at: 2 * sec)
        let a = analyze(b, options: options)
        #expect(a.statistics.rows(.queue).map { $0.label() } == ["request0", "request1"])
        #expect(a.statistics.rows(.queue).map(\.count) == [1, 2])
        #expect(a.statistics.rows(.lun).map { $0.label() } == ["0:1", "0:2"])
        #expect(a.statistics.rows(.opcode).map { $0.label() } == ["Read(10)", "Write(10)"])
        #expect(a.statistics.rows(.opcode).map(\.count) == [2, 1])
        let combined = a.statistics.rows(Grouping([.lun, .queue]))
        #expect(combined.map { $0.label() } == ["request0 0:1", "request1 0:1", "request1 0:2"])
        // Rates over the run (2 s): 3 commands, 1024 bytes read, 512 written.
        let lunRows = a.statistics.rows(.lun)
        #expect(lunRows[0].iops == 1.0)
        #expect(lunRows[0].readBytesPerSecond == 512)
        #expect(lunRows[1].writeBytesPerSecond == 256)
        #expect(a.statistics.rows(.device).isEmpty)
    }

    /// A guest that sends every LUN and opcode there is gets a bounded table: LUNs and
    /// opcodes past the limits count as `other`, and nothing is lost from the totals.
    @Test func lunsAndOpcodesPastTheLimitsCountAsOther() {
        var options = Analyzer.Options()
        options.statistics.maxLUNs = 2
        options.statistics.maxOpcodes = 1
        var b = RecordStreamBuilder()
        var ns: UInt64 = 0
        for lun in 0..<5 {
            let cdb = lun % 2 == 0 ? SCSICommand.testUnitReady() : SCSICommand.read10(lba: 0, blocks: 1)
            let id = b.command(head: UInt16(lun), tag: UInt64(lun), lun: LUNAddress(target: 0, lun: UInt16(lun)), cdb: cdb,
                               dataIn: lun % 2 == 0 ? 0 : 512, at: ns)
            ns += ms
            b.complete(id, dataIn: lun % 2 == 0 ? 0 : 512, at: ns)
        }
        let a = analyze(b, options: options)
        let luns = a.statistics.rows(.lun)
        #expect(luns.map { $0.label() } == ["0:0", "0:1", "other"])
        #expect(luns.map(\.count) == [1, 1, 3])
        let opcodes = a.statistics.rows(.opcode)
        #expect(opcodes.map { $0.label() } == ["Test Unit Ready", "other"])
        #expect(opcodes.map(\.count) == [3, 2])
        #expect(luns.allSatisfy { $0.inFlight == 0 })
    }

    /// Past the limit on combinations, new ones count as LUN and opcode `other`; a command
    /// whose start had groups of its own and whose end (a new outcome) did not still leaves
    /// its LUN's depth where it was.
    @Test func combinationsPastTheLimitCountAsOtherAndDepthsStayTrue() {
        var options = Analyzer.Options()
        options.statistics.maxCombinations = 2
        var b = RecordStreamBuilder()
        // Two combinations (LUN 0:1 and 0:2, GOOD) fill the table; both commands are in
        // flight when the second ends with CHECK CONDITION (a third combination).
        let x = b.command(head: 0, tag: 1, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 0)
        let y = b.command(head: 1, tag: 2, lun: lun02, cdb: SCSICommand.testUnitReady(), at: 0)
        b.complete(x, at: ms)
        b.complete(y, status: 0x02, at: 2 * ms)
        let z = b.command(head: 2, tag: 3, lun: lun11, cdb: SCSICommand.testUnitReady(), at: 3 * ms)
        b.complete(z, at: 4 * ms)
        let a = analyze(b, options: options)
        let luns = a.statistics.rows(.lun)
        #expect(luns.map { $0.label() } == ["0:1", "0:2", "other"])
        // 0:2's command was counted at its end as `other`; 1:1 has no room at all.
        #expect(luns.map(\.count) == [1, 0, 2])
        #expect(luns.map(\.inFlight) == [0, 0, 0])
        #expect(luns.map(\.inFlightMax) == [1, 1, 1])
        #expect(a.statistics.rows(.device).map(\.count) == [3])
        #expect(a.statistics.rows(.outcome).map(\.count).reduce(0, +) == 3)
    }

    /// 70,000 commands, each on a LUN of its own: the statistics stay the size of the limits.
    @Test func aHostileGuestCannotGrowTheStatistics() {
        var b = RecordStreamBuilder()
        var ns: UInt64 = 0
        for k in 0..<70_000 {
            let lun = LUNAddress(target: UInt8(k >> 14), lun: UInt16(k & 0x3fff))
            let opcode = UInt8(truncatingIfNeeded: k)
            let id = b.command(head: UInt16(k & 0x3f), tag: UInt64(k), lun: lun, cdb: [opcode] + Array(repeating: 0, count: 9), at: ns)
            ns += 1000
            b.complete(id, at: ns)
        }
        var options = Analyzer.Options()
        options.statistics.window = false
        let a = analyze(b, options: options)
        let limits = Statistics.Options()
        #expect(a.statistics.rows(.lun).count == limits.maxLUNs + 1)
        #expect(a.statistics.rows(.opcode).count <= limits.maxOpcodes + 1)
        #expect(a.statistics.combinationCount <= limits.maxCombinations + 1)
        #expect(a.statistics.rows(.device).map(\.count) == [70_000])
        #expect(a.statistics.rows(.lun).reduce(0) { $0 + $1.count } == 70_000)
    }

    @Test func inFlightDepthIsCurrentMaxAndTimeWeightedMean() {
        var b = RecordStreamBuilder()
        // 0-1 s: one command; 1-2 s: three; 2-4 s: none in flight, then one stays.
        let x = b.command(head: 0, tag: 1, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 0)
        let y = b.command(head: 1, tag: 2, lun: lun01, cdb: SCSICommand.testUnitReady(), at: sec)
        let z = b.command(head: 2, tag: 3, lun: lun01, cdb: SCSICommand.testUnitReady(), at: sec)
        b.complete(x, at: 2 * sec)
        b.complete(y, at: 2 * sec)
        b.complete(z, at: 2 * sec)
        b.command(head: 3, tag: 4, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 4 * sec)
        let a = analyze(b)
        let row = a.statistics.rows(.queue, at: 4 * sec)[0]
        #expect(row.inFlight == 1)
        #expect(row.inFlightMax == 3)
        #expect(row.inFlightMean == 1.0)  // (1 + 3 + 0 + 0) / 4
        #expect(a.statistics.rows(.queue, at: 8 * sec)[0].inFlightMean == 0.5 + 4.0 / 8)
        #expect(a.matcher.inFlight.count == 1)
    }

    @Test func theWindowHoldsOnlyRecentCompletions() {
        var options = Analyzer.Options()
        options.statistics.windowNs = 10 * sec
        options.statistics.windowSlots = 10
        var b = RecordStreamBuilder()
        for s in 0..<30 as Range<UInt64> {
            let id = b.command(head: 0, tag: s, lun: lun01, cdb: SCSICommand.read10(lba: 0, blocks: 8), dataIn: 4096, at: s * sec)
            // The first 20 take 1 ms, the last 10 take 5 ms.
            b.complete(id, dataIn: 4096, at: s * sec + (s < 20 ? ms : 5 * ms))
        }
        let a = analyze(b, options: options)
        let row = a.statistics.rows(.device)[0]
        #expect(row.count == 30)
        #expect(row.window.count == 10)
        #expect(row.window.latency.min == 5 * ms)
        #expect(row.window.latency.max == 5 * ms)
        #expect(row.latency.min == ms)
        // The window spans 20 s .. 29.005 s.
        #expect(row.window.iops > 1.10 && row.window.iops < 1.12)
        #expect(row.window.readBytesPerSecond > 4096 * 1.10 && row.window.readBytesPerSecond < 4096 * 1.12)
    }

    @Test func stuckCommandsAreThoseInFlightPastTheThreshold() {
        var b = RecordStreamBuilder()
        b.command(head: 0, tag: 1, lun: lun01, cdb: SCSICommand.read10(lba: 0, blocks: 8), at: 0)
        b.command(head: 1, tag: 2, lun: lun01, cdb: SCSICommand.read10(lba: 8, blocks: 8), at: 1500 * ms)
        let quick = b.command(head: 2, tag: 3, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 1900 * ms)
        b.complete(quick, at: 2 * sec)
        let a = analyze(b)
        let stuck = a.stuck()
        #expect(stuck.map(\.tag) == [1])
        #expect(stuck[0].age(at: 2 * sec) == 2 * sec)
        #expect(a.stuck(at: 3 * sec).map(\.tag) == [1, 2])
    }

    @Test func orphanCompletionsAreFindingsUnlessOutstandingAtAttach() {
        var b = RecordStreamBuilder()
        let pre = b.command(head: 0, tag: 1, lun: lun01, cdb: SCSICommand.testUnitReady(), flags: .preAttach, at: 0)
        b.complete(pre, at: 5 * ms)
        let lost = b.command(head: 1, tag: 2, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 0)
        b.complete(lost, at: 6 * ms)
        var records = b.records
        records.remove(at: 2)  // the second request went unseen
        var a = Analyzer()
        for r in records { a.consume(r) }
        #expect(findings(a, .orphanCompletion).count == 1)
        #expect(a.matcher.health.orphans == 1)
        let row = a.statistics.rows(.device)[0]
        #expect(row.count == 2)
        // Neither has a true latency: one started before the tap, one was never seen.
        #expect(row.latency.count == 0)
        #expect(a.recent.elements.map(\.opcodeName) == ["Test Unit Ready", "(unseen)"])
    }

    @Test func aResetAbandonsTheCommandsInFlightOnItsQueue() {
        var b = RecordStreamBuilder()
        b.attach(name: "scsi0", at: 0)
        b.command(head: 0, tag: 1, lun: lun01, cdb: SCSICommand.testUnitReady(), at: ms)
        b.command(queue: 3, head: 0, tag: 2, lun: lun01, cdb: SCSICommand.testUnitReady(), at: ms)
        var a = analyze(b)
        a.consume(CaptureRecord(kind: .deviceState, queue: 2, body: .deviceState(DeviceStateMarker(state: .reset, deviceName: "scsi0")), timestampNs: 2 * ms))
        #expect(a.matcher.inFlight.count == 1)
        #expect(a.statistics.rows(.queue).map(\.inFlight) == [0, 1])
        #expect(a.log.elements.last?.text == "scsi0 request0 reset generation 0")
    }

    @Test func captureHealthCountsDropsAndFlags() {
        var b = RecordStreamBuilder()
        let id = b.command(head: 0, tag: 1, lun: lun01, cdb: SCSICommand.testUnitReady(), flags: .torn, at: 0)
        b.complete(id, at: ms)
        b.drop(3, at: 2 * ms)
        let h = analyze(b).matcher.health
        #expect(h.records == 3)
        #expect(h.available == 1)
        #expect(h.used == 1)
        #expect(h.dropped == 3)
        #expect(h.torn == 1)
        #expect(h.chains == 4)
        #expect(h.percent(h.dropped) == 75)
    }

    @Test func resetKeepsTheCommandsInFlight() {
        var b = RecordStreamBuilder()
        let done = b.command(head: 0, tag: 1, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 0)
        b.complete(done, at: ms)
        b.command(head: 1, tag: 2, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 2 * ms)
        var a = analyze(b)
        a.reset()
        #expect(a.transactionCount == 0)
        #expect(a.recent.count == 0)
        let row = a.statistics.rows(.queue)
        #expect(row.map(\.count) == [0])
        #expect(row.map(\.inFlight) == [1])
    }
}

@Suite struct TMFTests {
    @Test func abortTaskNamesItsTagAndLinksTheAbortedCommand() {
        var b = RecordStreamBuilder()
        let victim = b.command(head: 0, tag: 0xA, lun: lun01, cdb: SCSICommand.read10(lba: 0, blocks: 8), at: 0)
        b.command(head: 1, tag: 0xB, lun: lun01, cdb: SCSICommand.read10(lba: 8, blocks: 8), at: 0)
        let tmf = b.tmf(head: 0, .abortTask, lun: lun01, tag: 0xA, at: 30 * sec)
        b.complete(victim, response: .aborted, at: 30 * sec + ms)
        b.tmfResponse(tmf, .ok, at: 30 * sec + 2 * ms)
        let a = analyze(b)
        let answered = a.tmfs.elements
        #expect(answered.count == 1)
        #expect(answered[0].subtype == .abortTask)
        #expect(answered[0].named == [victim])
        #expect(answered[0].aborted == 1)
        #expect(answered[0].outstandingAtResponse == 0)
        #expect(answered[0].latencyNs == 2 * ms)
        #expect(answered[0].summary == "ABORT_TASK 0:1 tag 0x000000000000000a named 1 aborted 1 -> FUNCTION_COMPLETE in 2.00ms")
        let t = a.recent.elements
        #expect(t.count == 1)
        #expect(t[0].tmfSerial == answered[0].serial)
        #expect(t[0].outcome.isAbortedOrReset)
        #expect(findings(a, .tmfResponseBeforeAborted).isEmpty)
        #expect(a.tmfCounts == ["ABORT_TASK sent": 1, "ABORT_TASK FUNCTION_COMPLETE": 1])
    }

    @Test func aTMFAnsweredBeforeItsCommandsIsAFinding() {
        var b = RecordStreamBuilder()
        let victim = b.command(head: 0, tag: 0xA, lun: lun01, cdb: SCSICommand.read10(lba: 0, blocks: 8), at: 0)
        let tmf = b.tmf(head: 0, .abortTask, lun: lun01, tag: 0xA, at: ms)
        b.tmfResponse(tmf, .ok, at: 2 * ms)
        b.complete(victim, response: .aborted, at: 3 * ms)
        let a = analyze(b)
        let f = findings(a, .tmfResponseBeforeAborted)
        #expect(f.count == 1)
        #expect(f.first?.detail == "ABORT_TASK 0:1 answered FUNCTION_COMPLETE with 1 of 1 named commands still in flight")
        #expect(a.tmfs.elements.first?.outstandingAtResponse == 1)
        #expect(a.findingCounts[.tmfResponseBeforeAborted] == 1)
    }

    @Test func queryTaskNamesButNeverAborts() {
        var b = RecordStreamBuilder()
        let c = b.command(head: 0, tag: 0xA, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 0)
        let tmf = b.tmf(head: 0, .queryTask, lun: lun01, tag: 0xA, at: ms)
        b.tmfResponse(tmf, .functionSucceeded, at: 2 * ms)
        b.complete(c, at: 3 * ms)
        let a = analyze(b)
        #expect(a.tmfs.elements.first?.named == [c])
        #expect(a.tmfs.elements.first?.aborts == false)
        #expect(findings(a, .tmfResponseBeforeAborted).isEmpty)
    }

    @Test func lunResetNamesItsLUNAndNexusResetItsTarget() {
        var b = RecordStreamBuilder()
        let a1 = b.command(head: 0, tag: 1, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 0)
        let a2 = b.command(head: 1, tag: 2, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 0)
        let other = b.command(head: 2, tag: 3, lun: lun02, cdb: SCSICommand.testUnitReady(), at: 0)
        let far = b.command(head: 3, tag: 4, lun: lun11, cdb: SCSICommand.testUnitReady(), at: 0)
        let lunReset = b.tmf(head: 0, .logicalUnitReset, lun: lun01, at: ms)
        b.complete(a1, response: .reset, at: 2 * ms)
        b.complete(a2, response: .reset, at: 2 * ms)
        b.tmfResponse(lunReset, .ok, at: 3 * ms)
        let nexus = b.tmf(head: 1, .itNexusReset, lun: lun01, at: 4 * ms)
        b.complete(other, response: .reset, at: 5 * ms)
        b.tmfResponse(nexus, .ok, at: 6 * ms)
        b.complete(far, at: 7 * ms)
        let a = analyze(b)
        let tmfs = a.tmfs.elements
        #expect(tmfs.map(\.subtype) == [.logicalUnitReset, .itNexusReset])
        #expect(tmfs[0].named == [a1, a2])
        #expect(tmfs[0].aborted == 2)
        #expect(tmfs[1].named == [other])
        #expect(tmfs[1].aborted == 1)
        #expect(findings(a, .tmfResponseBeforeAborted).isEmpty)
        let linked = a.recent.elements.map { $0.tmfSerial }
        #expect(linked == [tmfs[0].serial, tmfs[0].serial, tmfs[1].serial, nil])
    }
}

@Suite struct ConformanceTests {
    @Test func aTagReusedWhileInFlightIsAFinding() {
        var b = RecordStreamBuilder()
        let first = b.command(head: 0, tag: 0x77, lun: lun01, cdb: SCSICommand.read10(lba: 0, blocks: 8), at: 0)
        b.command(head: 1, tag: 0x77, lun: lun01, cdb: SCSICommand.write10(lba: 0, blocks: 8), at: ms)
        // Another LUN's tag space, and a tag reused after completion: no finding.
        b.command(head: 2, tag: 0x77, lun: lun02, cdb: SCSICommand.testUnitReady(), at: ms)
        b.complete(first, at: 2 * ms)
        b.command(head: 3, tag: 0x99, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 3 * ms)
        let a = analyze(b)
        let f = findings(a, .tagReused)
        #expect(f.count == 1)
        #expect(f.first?.detail == "tag 0x0000000000000077 on LUN 0:1 reused by Write(10) while Read(10) (queue 2 head 0) is in flight for 1.00ms")
        #expect(f.first?.transactionID == 2)
    }

    @Test func senseLengthAboveSenseSizeIsAFinding() {
        var b = RecordStreamBuilder()
        let id = b.command(head: 0, tag: 1, lun: lun01, cdb: SCSICommand.testUnitReady(), at: 0)
        b.complete(id, status: 2, sense: SenseData.fixed(key: 5, asc: 0x24, ascq: 0), senseLength: 200, at: ms)
        let a = analyze(b)
        #expect(findings(a, .senseLengthExceeds).map(\.detail) == ["Test Unit Ready tag 0x0000000000000001: sense_len 200 > sense_size 96"])
    }

    @Test func usedLengthAboveTheWritableBuffersIsAFinding() {
        var b = RecordStreamBuilder()
        let id = b.command(head: 4, tag: 1, lun: lun01, cdb: SCSICommand.read10(lba: 0, blocks: 1), dataIn: 512, at: 0)
        b.complete(id, usedLength: 9000, flags: .usedLengthExceeds, at: ms)
        let a = analyze(b)
        #expect(findings(a, .usedLengthExceeds).map(\.detail) == ["request0 head 4 used length 9000 above the writable buffers (620 bytes)"])
    }

    @Test func anEventqLeftEmptyAndEventsMissedAreFindings() {
        var b = RecordStreamBuilder()
        let e1 = b.postEventBuffer(head: 0, at: 0)
        let e2 = b.postEventBuffer(head: 1, at: 0)
        b.event(e1, VirtioSCSIEvent(type: .transportReset, lun: VirtioSCSILUN(target: 0, lun: 3), reason: 0), at: sec)
        b.event(e2, VirtioSCSIEvent(type: .transportReset, lun: VirtioSCSILUN(target: 0, lun: 4), reason: 2), at: 2 * sec)
        // 2 s .. 4.5 s with no buffer: one finding.
        let e3 = b.postEventBuffer(head: 0, at: 4500 * ms)
        b.event(e3, VirtioSCSIEvent(type: .paramChange, eventsMissed: true, lun: VirtioSCSILUN(target: 0, lun: 3), reason: 0x092a), at: 5 * sec)
        b.postEventBuffer(head: 0, at: 5200 * ms)
        let a = analyze(b)
        let account = a.matcher.eventq[0]
        #expect(account?.posted == 4)
        #expect(account?.events == 3)
        #expect(account?.eventsMissed == 1)
        #expect(account?.outstanding == 1)
        #expect(account?.maxOutstanding == 2)
        #expect(account?.emptyNs == 2500 * ms + 200 * ms)
        #expect(findings(a, .eventqEmpty).map(\.detail) == ["dev0 eventq without buffers for 2.50s"])
        #expect(findings(a, .eventsMissed).count == 1)
        #expect(a.eventCounts == ["TRANSPORT_RESET": 2, "PARAM_CHANGE": 1])
        #expect(a.events.elements.map(\.summary) == [
            "TRANSPORT_RESET 0:3 HARD", "TRANSPORT_RESET 0:4 REMOVED", "PARAM_CHANGE|EVENTS_MISSED 0:3 " + (VirtioSCSIEvent(type: .paramChange, lun: VirtioSCSILUN(target: 0, lun: 3), reason: 0x092a).reasonName ?? ""),
        ])
    }

    @Test func anEventqStillEmptyIsReportedByTick() {
        var b = RecordStreamBuilder()
        let e1 = b.postEventBuffer(head: 0, at: 0)
        b.event(e1, VirtioSCSIEvent(type: .transportReset, lun: VirtioSCSILUN(target: 0, lun: 3), reason: 0), at: sec)
        var a = analyze(b)
        a.tick(at: 1500 * ms)
        #expect(findings(a, .eventqEmpty).isEmpty)
        a.tick(at: 3 * sec)
        a.tick(at: 4 * sec)
        #expect(findings(a, .eventqEmpty).map(\.detail) == ["dev0 eventq without buffers for 2.00s"])
        #expect(a.matcher.eventq[0]?.emptyTotal(at: 4 * sec) == 3 * sec)
    }

    @Test func malformedChainsAreFindings() {
        var a = Analyzer()
        a.consume(CaptureRecord(kind: .available, queue: 2, head: 9, flags: .malformed, transactionID: 5, errorCode: 2, errorDetail: 9,
                                body: .chain([]), timestampNs: 0))
        #expect(findings(a, .malformedChain).map(\.detail) == ["request0 head 9 ring error 2 detail 0x0000000000000009"])
        #expect(a.matcher.health.malformed == 1)
    }
}

@Suite struct HelperTests {
    @Test func log2BucketsCoverTheRecordedRange() {
        var b = RecordStreamBuilder()
        for (i, l) in [1000, 1500, 3000, 70_000].enumerated() {
            let id = b.command(head: UInt16(i), tag: UInt64(i), lun: lun01, cdb: SCSICommand.testUnitReady(), at: 0)
            b.complete(id, at: UInt64(l))
        }
        let (summary, buckets) = analyze(b).statistics.combinedHistogram()
        #expect(summary.count == 4)
        #expect(buckets.first == HistogramBucket(lowNs: 512, highNs: 1024, count: 1))
        #expect(buckets.map(\.count) == [1, 1, 1, 0, 0, 0, 0, 1])
        #expect(buckets.last?.highNs == 131_072)
    }

    @Test func boundedLogKeepsTheNewest() {
        var log = BoundedLog<Int>(limit: 3)
        for i in 1...5 { log.append(i) }
        #expect(log.elements == [3, 4, 5])
        #expect(log.total == 5)
        #expect(log.dropped == 2)
    }

    @Test func figuresFormat() {
        #expect(Figures.format(850) == "850ns")
        #expect(Figures.format(12_345) == "12.3us")
        #expect(Figures.format(4_560_000) == "4.56ms")
        #expect(Figures.format(1_200_000_000) == "1.20s")
        #expect(Figures.format(180 * sec) == "3.00m")
        #expect(Figures.bytes(512) == "512B")
        #expect(Figures.bytes(4096) == "4.00k")
        #expect(Figures.bytes(3 << 20) == "3.00M")
        #expect(Figures.fixed(2.005, 1) == "2.0")
    }

    @Test func dimensionListsParse() {
        #expect((try? Dimension.parseList("opcode,queue").get()) == [.queue, .opcode])
        #expect((try? Dimension.parseList("target, lun").get()) == [.lun])
        if case let .failure(f) = Dimension.parseList("queue,colour") { #expect(f.word == "colour") } else { Issue.record("parsed") }
    }
}

@Suite struct SeriesTests {
    @Test func pointsPerIntervalThenCoarsenedToStayBounded() {
        var s = LatencySeries(intervalNs: 100 * ms, maxPoints: 4)
        // Interval k holds one value of (k + 1) x 1024 ns (held exactly at two digits).
        for k in 0..<4 as Range<UInt64> { s.add(endNs: k * 100 * ms + 1, latencyNs: (k + 1) * 1024) }
        s.flush()
        #expect(s.points.map(\.count) == [1, 1, 1, 1])
        #expect(s.points.map(\.p50) == [1024, 2048, 3072, 4096])
        #expect(s.intervalNs == 100 * ms)
        s.add(endNs: 400 * ms + 1, latencyNs: 5120)
        s.flush()
        // Five points do not fit in four: the interval doubles and neighbours merge.
        #expect(s.intervalNs == 200 * ms)
        #expect(s.points.map(\.count) == [2, 2, 1])
        #expect(s.points.map(\.max) == [2048, 4096, 5120])
        #expect(s.points.map(\.p50) == [1536, 3584, 5120])
        #expect(s.points.map(\.startNs) == [1, 200 * ms + 1, 400 * ms + 1])
    }

    @Test func theSyntheticWorkloadIsRepeatableAndInTimeOrder() {
        var a = SyntheticWorkload(), b = SyntheticWorkload()
        let end = SyntheticWorkload.Options().startNs + 500 * ms
        let ra = a.records(until: end), rb = b.records(until: end)
        #expect(ra == rb)
        #expect(ra.count > 10_000)
        #expect(zip(ra, ra.dropFirst()).allSatisfy { $0.timestampNs <= $1.timestampNs })
    }
}
