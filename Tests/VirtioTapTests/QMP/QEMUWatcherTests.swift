import Foundation
import Synchronization
import Testing
import VirtioRing
@testable import VirtioTap

/// A QEMU whose x-query-virtio-status answers follow a script, one entry per call; the last
/// entry repeats. Other commands answer as the recorded QEMU does.
final class ScriptedQEMU: @unchecked Sendable {
    enum Status { case paused, linux, gone, event(String, String), close }
    private let lock = NSLock()
    private var script: [Status]
    private(set) var statusCalls = 0

    init(_ script: [Status]) { self.script = script }

    func handle(_ command: String, _ args: QMPValue?) -> [FakeQMPServer.Step] {
        guard command == "x-query-virtio-status" else { return RecordedQEMU().handle(command, args) }
        let next: Status = lock.withLock {
            statusCalls += 1
            return script.count > 1 ? script.removeFirst() : (script.first ?? .linux)
        }
        switch next {
        case .paused: return [.answer(QMPFixtures.statusPaused)]
        case .linux: return [.answer(QMPFixtures.statusLinuxReady)]
        case .gone: return [.error(#"{"class": "GenericError", "desc": "Path /machine/peripheral/scsi0/virtio-backend is not a VirtIODevice"}"#)]
        case .event(let name, let data): return [.event(name, data), .answer(QMPFixtures.statusLinuxReady)]
        case .close: return [.close]
        }
    }
}

@Suite(.serialized) struct QEMUWatcherTests {
    func watch(_ script: [ScriptedQEMU.Status], _ body: (QEMUWatcher) throws -> Void) throws {
        let qemu = ScriptedQEMU(script)
        let server = try FakeQMPServer { qemu.handle($0, $1) }
        defer { server.stop() }
        let client = try QMPClient(socketPath: server.path, timeout: 2)
        let watcher = try QEMUWatcher(discovery: QEMUDiscovery(client: client))
        try body(watcher)
    }

    @Test func everyResetIsANewGenerationEvenAtTheSameAddresses() throws {
        // The first entry answers the discovery in init.
        try watch([.paused, .paused, .linux, .linux, .paused, .paused, .linux]) { (w: QEMUWatcher) throws in
            #expect(w.layout.status == .resetting)
            #expect(w.layout.generation == 1)
            #expect(try w.poll() == nil)
            guard case .ready(let first)? = try w.poll() else { Issue.record("no ready"); return }
            #expect(first == { var l = QEMUDiscoveryTests.linuxLayout(); l.generation = 2; return l }())
            #expect(try w.poll() == nil)
            guard case .reset(let reset)? = try w.poll() else { Issue.record("no reset"); return }
            #expect(reset.generation == 3)
            #expect(reset.status == .resetting)
            #expect(reset.queues == [])
            #expect(reset.features == 0)
            #expect(reset.regions == first.regions)
            #expect(try w.poll() == nil)
            guard case .ready(let again)? = try w.poll() else { Issue.record("no second ready"); return }
            #expect(again.generation == 4)
            #expect(again.queues == first.queues)
            #expect(w.polls == 6)
            #expect(w.deviceStatus == 0x0f)
        }
    }

    @Test func resyncStartsANewGenerationAtTheSameAddresses() throws {
        try watch([.linux, .linux, .paused]) { (w: QEMUWatcher) throws in
            guard case .ready(let again) = try w.resync() else { Issue.record("not ready"); return }
            #expect(again == { var l = QEMUDiscoveryTests.linuxLayout(); l.generation = 2; return l }())
            guard case .reset(let reset) = try w.resync() else { Issue.record("not reset"); return }
            #expect(reset.generation == 3)
            #expect(reset.queues == [])
            #expect(w.deviceStatus == 0)
        }
    }

    @Test func waitUntilReady() throws {
        try watch([.paused, .paused, .paused, .linux]) { (w: QEMUWatcher) throws in
            #expect(try w.waitUntilReady(timeout: 2) == { var l = QEMUDiscoveryTests.linuxLayout(); l.generation = 2; return l }())
            #expect(try w.waitUntilReady(timeout: 0)?.generation == 2)
        }
        try watch([.paused]) { (w: QEMUWatcher) throws in
            #expect(try w.waitUntilReady(timeout: 0.05) == nil)
        }
        try watch([.paused, .close]) { (w: QEMUWatcher) throws in
            #expect(throws: QMPError(.closed, "QMP: QEMU closed the QMP connection (it exited?)")) { try w.waitUntilReady(timeout: 2) }
        }
    }

    @Test func readyAtAttachIsGenerationOne() throws {
        try watch([.linux]) { (w: QEMUWatcher) throws in
            #expect(w.layout == QEMUDiscoveryTests.linuxLayout())
            #expect(try w.waitForChange(timeout: 0.05) == nil)
            #expect(w.polls >= 2)
        }
    }

    @Test func closedSocketMeansGone() throws {
        try watch([.linux, .linux, .close]) { (w: QEMUWatcher) throws in
            #expect(try w.poll() == nil)
            #expect(try w.poll() == .gone(reason: "QEMU closed the QMP connection (it exited?)"))
            #expect(w.isGone)
            #expect(try w.poll() == nil)
        }
    }

    @Test func unpluggedDeviceIsGone() throws {
        try watch([.linux, .gone]) { (w: QEMUWatcher) throws in
            #expect(try w.waitForChange(timeout: 2) == .gone(reason: "device /machine/peripheral/scsi0/virtio-backend is gone: QMP: command x-query-virtio-status failed: Path /machine/peripheral/scsi0/virtio-backend is not a VirtIODevice"))
        }
    }

    @Test func deviceDeletedEventMeansGone() throws {
        try watch([.linux, .event("DEVICE_DELETED", #"{"path": "/machine/peripheral/hp0dev"}"#), .event("DEVICE_DELETED", #"{"device": "scsi0", "path": "/machine/peripheral/scsi0"}"#)]) { (w: QEMUWatcher) throws in
            // Another device's unplug is not ours.
            #expect(try w.poll() == nil)
            #expect(try w.poll() == nil)
            #expect(try w.poll() == .gone(reason: "device /machine/peripheral/scsi0/virtio-backend was unplugged"))
        }
    }

    @Test func theMemoryMapIsReadAgainAfterTheFirmwareMovedTheBIOSShadow() throws {
        // At discovery QEMU is stopped before the firmware: 0xc0000-0xfffff are ROMs. By
        // the time a driver is ready, SeaBIOS has shadowed them in RAM and keeps buffers there.
        let beforeFirmware = QMPFixtures.mtree256M.replacingOccurrences(
            of: "00000000000c0000-00000000000cafff (prio 0, rom): mem @00000000000c0000",
            with: "00000000000c0000-00000000000cafff (prio 1, rom): pc.rom")
        let mtreeCalls = Mutex(0)
        let server = try FakeQMPServer { command, args in
            var qemu = RecordedQEMU()
            if command == "human-monitor-command" && mtreeCalls.withLock({ $0 += 1; return $0 }) == 1 { qemu.mtree = beforeFirmware }
            return qemu.handle(command, args)
        }
        defer { server.stop() }
        let w = try QEMUWatcher(discovery: QEMUDiscovery(client: QMPClient(socketPath: server.path, timeout: 2)))
        let file = "/dev/shm/vqtap-qemu-8205"
        #expect(w.layout.regions == [.init(file: file, offset: 0, gpa: 0, size: 0xa0000),
                                     .init(file: file, offset: 0xcb000, gpa: 0xcb000, size: 0xff35000)])
        guard let moved = try w.refreshMemoryMap() else { Issue.record("the new map was not reported"); return }
        #expect(moved.regions == QEMUDiscoveryTests.linuxLayout().regions)
        #expect(moved.generation == 1)
        #expect(moved.queues == w.layout.queues)
        #expect(w.layout.regions == moved.regions)
        #expect(try w.refreshMemoryMap() == nil)
        #expect(mtreeCalls.withLock { $0 } == 3)
    }

    @Test func shutdownEventMeansGone() throws {
        try watch([.linux, .event("SHUTDOWN", #"{"guest": true, "reason": "guest-shutdown"}"#)]) { (w: QEMUWatcher) throws in
            #expect(try w.poll() == nil)
            #expect(try w.poll() == .gone(reason: "QEMU is shutting down"))
        }
    }
}

extension QEMUDiscoveryTests {
    /// The layout of the recorded Linux-ready answers, generation 1.
    static func linuxLayout() -> DeviceLayout {
        let file = "/dev/shm/vqtap-qemu-8205"
        return DeviceLayout(
            generation: 1, status: .ready, pid: getpid(),
            device: .init(type: "virtio-scsi", id: 8, name: "scsi0", path: "/machine/peripheral/scsi0/virtio-backend"),
            features: 0x101_3000_0006,
            config: ["cdb_size": 32, "sense_size": 96, "num_queues": 1],
            regions: [
                .init(file: file, offset: 0, gpa: 0, size: 0xa0000),
                .init(file: file, offset: 0xc0000, gpa: 0xc0000, size: 0xff40000),
            ],
            queues: [
                .init(index: 0, name: "controlq", size: 256, desc: 46104576, avail: 46108672, used: 46109248),
                .init(index: 1, name: "eventq", size: 256, desc: 43925504, avail: 43929600, used: 43930176),
                .init(index: 2, name: "request0", size: 256, desc: 45539328, avail: 45543424, used: 45544000),
            ])
    }
}
