import Foundation
import Testing
import VQAnalysis
import VQRecord
import VirtioSCSI
@testable import VQTUI

/// A fixed analysis: 6 s of the synthetic workload (errors, an ABORT_TASK, events).
nonisolated(unsafe) let fixture: Analyzer = {
    var options = SyntheticWorkload.Options()
    options.iops = 2000
    options.tmfEvery = 4000
    options.eventEvery = 3000
    var w = SyntheticWorkload(options: options)
    var a = Analyzer()
    for r in w.records(until: options.startNs + 6_000_000_000) { a.consume(r) }
    return a
}()

let fixtureSnapshot = TopSnapshot(analyzer: fixture, source: "replay fixture.pcapng")

/// Golden screens, compared as text. Regenerate with VQTAP_REGENERATE=1 (that run fails).
func expectGolden(_ b: ScreenBuffer, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("goldens")
    let file = dir.appendingPathComponent("\(name).txt")
    let got = b.text + "\n"
    if ProcessInfo.processInfo.environment["VQTAP_REGENERATE"] != nil {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try got.write(to: file, atomically: true, encoding: .utf8)
        Issue.record("regenerated \(name).txt; rerun without VQTAP_REGENERATE", sourceLocation: sourceLocation)
        return
    }
    let want = try? String(contentsOf: file, encoding: .utf8)
    #expect(got == want, "\(name) differs from its golden screen", sourceLocation: sourceLocation)
}

@Suite struct GoldenScreenTests {
    static let sizes = [(80, 24), (132, 43)]

    @Test(arguments: TopScreen.allCases)
    func screen(_ screen: TopScreen) throws {
        for (w, h) in Self.sizes {
            var v = ViewState()
            v.screen = screen
            let b = TopView.render(fixtureSnapshot, v, width: w, height: h)
            #expect(b.width == w && b.height == h)
            try expectGolden(b, "\(screen.title.lowercased())-\(w)x\(h)")
        }
    }

    @Test func helpOverlay() throws {
        var v = ViewState()
        _ = v.handle(.character("?"))
        try expectGolden(TopView.render(fixtureSnapshot, v, width: 80, height: 24), "help-80x24")
    }

    @Test func filteredRequestsAndPause() throws {
        var v = ViewState()
        v.screen = .requests
        for k in "/write" { _ = v.handle(k == "/" ? .character("/") : .character(k)) }
        _ = v.handle(.enter)
        _ = v.handle(.character("p"))
        _ = v.handle(.down)
        let b = TopView.render(fixtureSnapshot, v, width: 80, height: 24)
        try expectGolden(b, "requests-filtered-80x24")
        #expect(b.line(0).contains("PAUSED"))
        #expect(b.line(1).contains("filter: write"))
    }

    @Test func emptyAnalysisDrawsEveryScreen() {
        let s = TopSnapshot(analyzer: Analyzer(), source: "live layout.json")
        for screen in TopScreen.allCases {
            var v = ViewState()
            v.screen = screen
            let b = TopView.render(s, v, width: 80, height: 24)
            #expect(b.line(0).hasPrefix("vqtap top  (no device yet)  live layout.json"))
            #expect(b.line(23).hasPrefix("q quit"))
        }
    }

    @Test func tinyAndHugeTerminalsDoNotTrap() {
        for (w, h) in [(0, 0), (10, 3), (20, 5), (300, 120)] {
            for screen in TopScreen.allCases {
                var v = ViewState()
                v.screen = screen
                let b = TopView.render(fixtureSnapshot, v, width: w, height: h)
                #expect(b.text.split(separator: "\n", omittingEmptySubsequences: false).count == max(1, h))
            }
        }
    }
}

@Suite struct ViewStateTests {
    @Test func keysSwitchScreensSortFilterAndQuit() {
        var v = ViewState()
        #expect(v.handle(.tab) == .redraw)
        #expect(v.screen == .luns)
        _ = v.handle(.backTab)
        _ = v.handle(.left)
        #expect(v.screen == .requests)
        _ = v.handle(.character("3"))
        #expect(v.screen == .opcodes)
        _ = v.handle(.character("s"))
        _ = v.handle(.character("s"))
        #expect(v.sortName(.opcodes) == "IOPS")
        #expect(v.handle(.character("r")) == .reset)
        _ = v.handle(.character("/"))
        #expect(v.handle(.character("q")) == .redraw)  // typed into the filter
        _ = v.handle(.backspace)
        for c in "0:1" { _ = v.handle(.character(c)) }
        _ = v.handle(.enter)
        #expect(v.filter == "0:1")
        _ = v.handle(.escape)
        #expect(v.filter.isEmpty)
        _ = v.handle(.character("?"))
        #expect(v.showHelp)
        #expect(v.handle(.character("x")) == .redraw)
        #expect(!v.showHelp)
        #expect(v.handle(.character("q")) == .quit)
    }

    @Test func sortedTablesFollowTheSortKey() {
        var v = ViewState()
        v.screen = .opcodes
        v.sort[.opcodes] = 1
        let rows = TopView.sortedRows(fixtureSnapshot.opcodeRows, v, fixtureSnapshot)
        #expect(rows.map(\.count) == rows.map(\.count).sorted(by: >))
        #expect(rows.first?.label() == "Read(10)")
    }

    @Test func overviewTextHasNoKeysOrTabs() {
        let text = TopRunner.overviewText(fixtureSnapshot, width: 100)
        #expect(text.hasPrefix("vqtap top  scsi0  replay fixture.pcapng"))
        #expect(!text.contains("q quit"))
        #expect(!text.contains("1 Overview"))
        #expect(text.contains("request0"))
    }

    @Test func theFixtureHasWhatTheScreensShow() {
        #expect(fixture.transactionCount > 10_000)
        #expect(fixture.tmfs.total == 3)
        #expect(fixture.events.total >= 3)
        #expect(fixture.errors.total > 0)
        #expect(fixture.findingCounts.isEmpty)
    }
}

@Suite struct ScreenBufferTests {
    @Test func putCutsAtTheEdgeAndTextTrims() {
        var b = ScreenBuffer(width: 6, height: 2)
        b.put(0, 2, "abcdef", .error)
        b.put(1, -2, "xyz")
        #expect(b.text == "  abcd\nz")
        #expect(b.style(0, 2) == .error)
        #expect(b.style(0, 1) == .normal)
        b.paint(1, .selected)
        #expect(b.style(1, 5) == .selected)
    }
}
