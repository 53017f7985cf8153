import CVQSys
import Foundation
import Testing
import VirtioRing
@testable import VirtioTap

// Against a real QEMU (scripts/qemu-guest/run), only when VQTAP_LIVE_QMP names its QMP
// socket. Discovers the device, measures the QMP round trip, watches resets for
// VQTAP_LIVE_SECONDS (default 30) and checks that the rings it found are real: their
// indices, read from the memory file at the discovered addresses, advance as the guest
// does I/O. With VQTAP_LIVE_RECORD=DIR it also saves QEMU's raw answers there.

private let liveSocket = ProcessInfo.processInfo.environment["VQTAP_LIVE_QMP"]

@Suite(.serialized, .enabled(if: liveSocket != nil, "set VQTAP_LIVE_QMP to a QEMU QMP socket"))
struct LiveQEMUTests {
    let socket = liveSocket ?? ""
    let seconds = Double(ProcessInfo.processInfo.environment["VQTAP_LIVE_SECONDS"] ?? "") ?? 30

    func stamp() -> String { String(format: "%.6f", Double(vq_realtime_ns()) / 1e9) }

    @Test func recordsRawAnswers() throws {
        guard let dir = ProcessInfo.processInfo.environment["VQTAP_LIVE_RECORD"] else { return }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let client = try QMPClient(socketPath: socket)
        let discovery = QEMUDiscovery(client: client)
        let device = try discovery.selectDevice()
        let st = try discovery.status(of: device)
        var commands: [(String, String, QMPValue?)] = [
            ("x-query-virtio", "x-query-virtio", nil),
            ("x-query-virtio-status", "x-query-virtio-status", ["path": .string(device.path)]),
            ("qom-list-objects", "qom-list", ["path": "/objects"]),
            ("human-monitor-command-mtree", "human-monitor-command", ["command-line": "info mtree -f"]),
        ]
        for i in 0..<st.numQueues {
            commands.append(("x-query-virtio-queue-status-\(i)", "x-query-virtio-queue-status",
                             ["path": .string(device.path), "queue": .int(Int64(i))]))
        }
        for (file, command, args) in commands {
            let answer = try client.execute(command, arguments: args)
            try answer.json.write(toFile: "\(dir)/\(file).json", atomically: true, encoding: .utf8)
        }
        print("recorded \(commands.count) answers in \(dir) (status 0x\(String(st.status, radix: 16)))")
    }

    @Test func everyRegionIsMappable() throws {
        let client = try QMPClient(socketPath: socket)
        let layout = try QEMUDiscovery(client: client).discover()
        print("regions: " + layout.regions.map { "\($0.file) @0x\(String($0.offset, radix: 16)) gpa 0x\(String($0.gpa, radix: 16)) size 0x\(String($0.size, radix: 16))" }.joined(separator: "; "))
        #expect(layout.regions.isEmpty == false)
        for r in layout.regions {
            let m = try MappedFile(path: r.file, offset: r.offset, length: Int(r.size))
            #expect(m.isIntact)
        }
    }

    @Test func discoversWatchesAndSeesTheRingsMove() throws {
        let client = try QMPClient(socketPath: socket)
        print("QEMU \(client.qemuVersion ?? "?"), pid \(client.peerPID.map(String.init) ?? "?")")
        let discovery = QEMUDiscovery(client: client)
        let t0 = vq_monotonic_ns()
        let first = try discovery.discover()
        print("discovery took \(Double(vq_monotonic_ns() - t0) / 1e6) ms")
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try enc.encode(first), as: UTF8.self))
        #expect(first.device.id == 8)
        #expect(first.validationProblem == nil)

        // Round trip of the status poll the watcher uses.
        let device = try discovery.selectDevice()
        var rtts: [UInt64] = []
        for _ in 0..<200 {
            let a = vq_monotonic_ns()
            _ = try discovery.status(of: device)
            rtts.append(vq_monotonic_ns() - a)
        }
        rtts.sort()
        print("x-query-virtio-status round trip: median \(Double(rtts[100]) / 1e3) us, p90 \(Double(rtts[180]) / 1e3) us, max \(Double(rtts[199]) / 1e3) us")

        // Map each backing file whole, once.
        var maps: [String: MappedFile] = [:]
        for r in first.regions where maps[r.file] == nil {
            let end = first.regions.filter { $0.file == r.file }.map { $0.offset + $0.size }.max() ?? 0
            maps[r.file] = try MappedFile(path: r.file, length: Int(end))
        }
        func load16(_ layout: DeviceLayout, _ gpa: UInt64) -> UInt16? {
            guard let r = layout.regions.first(where: { gpa >= $0.gpa && gpa + 2 <= $0.gpa + $0.size }),
                  let m = maps[r.file] else { return nil }
            return vq_load_acquire_u16(m.base + Int(r.offset + (gpa - r.gpa)))
        }

        let watcher = try QEMUWatcher(discovery: discovery, interval: 0.001)
        var layout = watcher.layout
        print("\(stamp()) watching generation \(layout.generation) (\(layout.status.rawValue))")
        var firstIdx: [UInt16: (UInt16, UInt16)] = [:]
        var lastIdx: [UInt16: (UInt16, UInt16)] = [:]
        func report() {
            for q in layout.queues {
                guard let f = firstIdx[q.index], let l = lastIdx[q.index] else { continue }
                print("  queue \(q.index): avail.idx \(f.0) -> \(l.0), used.idx \(f.1) -> \(l.1)")
            }
        }
        var advanced = false
        func movedSinceFirst() -> Bool {
            firstIdx.contains { entry in
                guard let l = lastIdx[entry.key] else { return false }
                return l.0 != entry.value.0 || l.1 != entry.value.1
            }
        }
        let deadline = vq_monotonic_ns() + UInt64(seconds * 1e9)
        var lastSample: UInt64 = 0
        while vq_monotonic_ns() < deadline {
            if let change = try watcher.poll() {
                print(String(format: "%.6f", Double(watcher.statusSeenRealtimeNs) / 1e9) + " status answer: status 0x\(String(watcher.deviceStatus, radix: 16))")
                report()
                if movedSinceFirst() { advanced = true }
                firstIdx = [:]; lastIdx = [:]
                switch change {
                case .ready(let l):
                    layout = l
                    print("\(stamp()) ready: generation \(l.generation), \(l.queues.count) queues, features 0x\(String(l.features, radix: 16)): " +
                          l.queues.map { "q\($0.index) desc 0x\(String($0.desc, radix: 16))" }.joined(separator: ", "))
                case .reset(let l):
                    layout = l
                    print("\(stamp()) reset: generation \(l.generation)")
                case .gone(let reason):
                    print("\(stamp()) gone: \(reason)")
                }
                if watcher.isGone { break }
            }
            let now = vq_monotonic_ns()
            if layout.status == .ready, now - lastSample > 20_000_000 {
                lastSample = now
                for q in layout.queues {
                    // used.idx before avail.idx (virtio-facts.md).
                    guard let u = load16(layout, q.used + 2), let a = load16(layout, q.avail + 2) else { continue }
                    if firstIdx[q.index] == nil { firstIdx[q.index] = (a, u) }
                    lastIdx[q.index] = (a, u)
                }
            }
            usleep(1000)
        }
        report()
        if movedSinceFirst() { advanced = true }
        print("status polls: \(watcher.polls), mean round trip \(Double(watcher.meanRoundTripNs) / 1e3) us, max \(Double(watcher.maxRoundTripNs) / 1e3) us")
        #expect(advanced, "no ring index moved while watching")
    }
}
