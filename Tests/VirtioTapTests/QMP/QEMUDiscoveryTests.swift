import Foundation
import Testing
import VirtioRing
@testable import VirtioTap

private let scsi0 = "/machine/peripheral/scsi0/virtio-backend"
private let memFile = "/dev/shm/vqtap-qemu-8205"

/// The layout the recorded Linux-ready answers describe (256M q35).
private func expectedLinuxLayout(file: String = memFile, generation: UInt64 = 1) -> DeviceLayout {
    DeviceLayout(
        generation: generation, status: .ready, pid: getpid(),
        device: .init(type: "virtio-scsi", id: 8, name: "scsi0", path: scsi0),
        features: 0x101_3000_0006,
        config: ["cdb_size": 32, "sense_size": 96, "num_queues": 1],
        regions: [
            .init(file: file, offset: 0, gpa: 0, size: 0xa0000),
            // 0xc0000-0xfffff: shadowed BIOS windows (rom) and RAM, all in the backend.
            .init(file: file, offset: 0xc0000, gpa: 0xc0000, size: 0xff40000),
        ],
        queues: [
            .init(index: 0, name: "controlq", size: 256, desc: 46104576, avail: 46108672, used: 46109248),
            .init(index: 1, name: "eventq", size: 256, desc: 43925504, avail: 43929600, used: 43930176),
            .init(index: 2, name: "request0", size: 256, desc: 45539328, avail: 45543424, used: 45544000),
        ])
}

private func answer(_ json: String) throws -> QMPValue {
    try #require(QMPValue.parse(Data(json.utf8)))
}

@Suite struct VirtioQMPAnswerTests {
    @Test func featuresAndStatusAreRebuiltFromQEMUsNames() throws {
        let st = try VirtioDeviceStatus(qmp: answer(QMPFixtures.statusLinuxReady))
        // VERSION_1, INDIRECT_DESC, EVENT_IDX, HOTPLUG, CHANGE, and RING_RESET (bit 40) that
        // QEMU 7.2 only gives as "unknown-dev-features".
        let negotiated: [UInt64] = [1, 2, 28, 29, 32, 40]
        let offered: [UInt64] = [1, 2, 24, 27, 28, 29, 30, 32, 40]
        #expect(st.features == negotiated.reduce(0) { $0 | 1 << $1 })
        #expect(st.offeredFeatures == offered.reduce(0) { $0 | 1 << $1 })
        #expect(st.status == 0x0f)
        #expect(st.driverOK)
        #expect(st.numQueues == 3)
        #expect(st.deviceID == 8)
        #expect(st.name == "virtio-scsi")
        #expect(st.broken == false)
        #expect(st.unknownNames == [])
    }

    @Test func firmwareAndPausedStatus() throws {
        let bios = try VirtioDeviceStatus(qmp: answer(QMPFixtures.statusSeaBIOS))
        #expect(bios.features == 1 << 32)
        #expect(bios.status == 0x0f)
        let paused = try VirtioDeviceStatus(qmp: answer(QMPFixtures.statusPaused))
        #expect(paused.features == 0)
        #expect(paused.status == 0)
        #expect(paused.driverOK == false)
    }

    @Test func unknownNamesAreReportedNotGuessed() throws {
        let st = try VirtioDeviceStatus(qmp: answer(#"{"device-id": 8, "num-vqs": 3, "name": "virtio-scsi", "status": {"statuses": ["VIRTIO_CONFIG_S_DRIVER_OK: ok", "VIRTIO_CONFIG_S_SOMETHING: new"]}, "guest-features": {"dev-features": ["VIRTIO_SCSI_F_FUTURE: x"], "transports": ["VIRTIO_F_RING_RESET: reset"]}}"#))
        #expect(st.features == 1 << 40)
        #expect(st.status == 4)
        #expect(st.unknownNames == ["VIRTIO_SCSI_F_FUTURE", "VIRTIO_CONFIG_S_SOMETHING"])
    }

    @Test func statusAnswerWithoutKeysIsAnError() throws {
        #expect(throws: QMPError(.unexpectedAnswer, #"QMP: x-query-virtio-status: answer has no num-vqs: {"device-id":8}"#)) {
            _ = try VirtioDeviceStatus(qmp: answer(#"{"device-id": 8}"#))
        }
    }

    @Test func queueStatus() throws {
        let q = try VirtqueueStatus(qmp: answer(QMPFixtures.queue2LinuxReady))
        #expect(q == VirtqueueStatus(index: 2, size: 256, desc: 45539328, avail: 45543424, used: 45544000,
                                     lastAvailIdx: 328, usedIdx: 328, inUse: 0))
        #expect(q.isSetUp)
        let paused = try VirtqueueStatus(qmp: answer(QMPFixtures.queue2Paused))
        #expect(paused.isSetUp == false)
        #expect(paused.desc == 0)
    }

    @Test func deviceShortNames() {
        #expect(VirtioDeviceRef(name: "virtio-scsi", path: scsi0).shortName == "scsi0")
        #expect(VirtioDeviceRef(name: "virtio-scsi", path: "/machine/peripheral-anon/device[0]/virtio-backend").shortName == "device[0]")
    }
}

@Suite struct MemoryTreeTests {
    @Test func flatView256M() {
        let ranges = MemoryTree.flatView(QMPFixtures.mtree256M)
        #expect(ranges.count == 33)
        #expect(ranges.first == FlatRange(start: 0, end: 0x9ffff, priority: 0, kind: "ram", name: "mem", offset: 0))
        #expect(ranges[2] == FlatRange(start: 0xc0000, end: 0xcafff, priority: 0, kind: "rom", name: "mem", offset: 0xc0000))
        #expect(ranges.filter(\.isRAM).map(\.name) == ["mem", "mem", "mem", "mem", "vga.vram"])
        #expect(ranges.last == FlatRange(start: 0xfffc0000, end: 0xffffffff, priority: 0, kind: "rom", name: "pc.bios"))
    }

    @Test func regions256MKeepShadowWindowsAndSkipOtherRAM() {
        let regions = MemoryTree.regions(from: MemoryTree.flatView(QMPFixtures.mtree256M), files: ["mem": "/m"])
        #expect(regions == expectedLinuxLayout(file: "/m").regions)
    }

    @Test func regions4GMapRAMAbove4GiB() {
        let regions = MemoryTree.regions(from: MemoryTree.flatView(QMPFixtures.mtree4G), files: ["mem": "/m"])
        #expect(regions == [
            .init(file: "/m", offset: 0, gpa: 0, size: 0xa0000),
            .init(file: "/m", offset: 0xc0000, gpa: 0xc0000, size: 0x7ff40000),
            .init(file: "/m", offset: 0x80000000, gpa: 0x1_0000_0000, size: 0x80000000),
        ])
    }

    @Test func plainRAMHasNoBackendFile() {
        let ranges = MemoryTree.flatView(QMPFixtures.mtreePlain)
        // Before the guest runs: no VGA BAR yet, the BIOS areas are pc.rom and pc.bios.
        #expect(ranges.filter(\.isRAM).map(\.name) == ["pc.ram", "pc.ram"])
        #expect(ranges.filter { $0.kind == "rom" }.map(\.name) == ["pc.rom", "pc.bios", "pc.bios"])
        #expect(MemoryTree.regions(from: ranges, files: ["mem": "/m"]) == [])
    }

    @Test func contiguousRangesMerge() {
        let ranges = [
            FlatRange(start: 0, end: 0xfff, kind: "ram", name: "mem"),
            FlatRange(start: 0x1000, end: 0x1fff, kind: "ram", name: "mem", offset: 0x1000),
            FlatRange(start: 0x2000, end: 0x2fff, kind: "ram", name: "mem", offset: 0x5000),
            FlatRange(start: 0x3000, end: 0x3fff, kind: "ramd", name: "mem", offset: 0x6000),
        ]
        #expect(MemoryTree.regions(from: ranges, files: ["mem": "/m"]) == [
            .init(file: "/m", offset: 0, gpa: 0, size: 0x2000),
            .init(file: "/m", offset: 0x5000, gpa: 0x2000, size: 0x1000),
        ])
    }

    @Test func rangeLines() {
        #expect(MemoryTree.parseRange("0000000000100000-000000000fffffff (prio 0, ram): mem @0000000000100000")
                == FlatRange(start: 0x100000, end: 0xfffffff, priority: 0, kind: "ram", name: "mem", offset: 0x100000))
        #expect(MemoryTree.parseRange("00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi")
                == FlatRange(start: 0xfee00000, end: 0xfeefffff, priority: 4096, kind: "i/o", name: "apic-msi"))
        #expect(MemoryTree.parseRange("00000000febd4400-00000000febd441f (prio 0, i/o): vga ioports remapped")?.name == "vga ioports remapped")
        #expect(MemoryTree.parseRange("Root memory region: system") == nil)
        #expect(MemoryTree.parseRange("0000-zzzz (prio 0, ram): mem") == nil)
        #expect(MemoryTree.parseRange("00000010-0000000f (prio 0, ram): mem") == nil)
        #expect(MemoryTree.parseRange("00000000-0000000f (prio x, ram): mem") == nil)
        #expect(MemoryTree.parseRange("00000000-0000000f (prio 0, ram): ") == nil)
    }

    @Test func anotherAddressSpace() {
        let ranges = MemoryTree.flatView(QMPFixtures.mtree256M, addressSpace: "I/O")
        #expect(ranges.isEmpty == false)
        #expect(ranges.allSatisfy { !$0.isRAM })
    }
}

@Suite(.serialized) struct QEMUDiscoveryTests {
    func discover(_ qemu: RecordedQEMU, options: QEMUDiscoveryOptions = .init()) throws -> (DeviceLayout, [String]) {
        let server = try FakeQMPServer { qemu.handle($0, $1) }
        defer { server.stop() }
        let client = try QMPClient(socketPath: server.path, timeout: 2)
        let layout = try QEMUDiscovery(client: client, options: options).discover()
        return (layout, server.requests)
    }

    func discoveryError(_ qemu: RecordedQEMU, options: QEMUDiscoveryOptions = .init()) throws -> String {
        do {
            _ = try discover(qemu, options: options)
            return "no error"
        } catch let e as QMPError {
            return e.message
        }
    }

    @Test func linuxReadyLayoutExactly() throws {
        let (layout, requests) = try discover(RecordedQEMU())
        #expect(layout == expectedLinuxLayout())
        #expect(layout.validationProblem == nil)
        #expect(requests.contains("x-query-virtio-queue-element") == false)
        #expect(requests == ["qmp_capabilities", "x-query-virtio", "human-monitor-command", "qom-list", "qom-get", "qom-get",
                             "x-query-virtio-status", "x-query-virtio-queue-status", "x-query-virtio-queue-status",
                             "x-query-virtio-queue-status"])
    }

    @Test func firmwareDrivesOnlyTheRequestQueue() throws {
        var qemu = RecordedQEMU()
        qemu.status = QMPFixtures.statusSeaBIOS
        let zero = { (i: Int) in QMPFixtures.queue2Paused.replacingOccurrences(of: #""queue-index": 2"#, with: #""queue-index": \#(i)"#) }
        qemu.queues = [zero(0), zero(1), QMPFixtures.queue2SeaBIOS]
        let (layout, _) = try discover(qemu)
        #expect(layout.status == .ready)
        #expect(layout.features == 1 << 32)
        #expect(layout.queues == [.init(index: 2, name: "request0", size: 256, desc: 0xffdd000, avail: 0xffde000, used: 0xffdf000)])
    }

    @Test func pausedGuestIsResetting() throws {
        var qemu = RecordedQEMU()
        qemu.status = QMPFixtures.statusPaused
        let (layout, requests) = try discover(qemu)
        #expect(layout.status == .resetting)
        #expect(layout.queues == [])
        #expect(layout.features == 0)
        #expect(layout.regions == expectedLinuxLayout().regions)
        #expect(requests.contains("x-query-virtio-queue-status") == false)
    }

    @Test func memoryOverrideAndCDBSizes() throws {
        let (layout, _) = try discover(RecordedQEMU(), options: .init(memoryPath: "/proc/1/fd/9", cdbSize: 16, senseSize: 32))
        #expect(layout.regions == expectedLinuxLayout(file: "/proc/1/fd/9").regions)
        #expect(layout.config == ["cdb_size": 16, "sense_size": 32, "num_queues": 1])
    }

    @Test func shareOffIsRefused() throws {
        var qemu = RecordedQEMU()
        qemu.share = "false"
        #expect(try discoveryError(qemu) == "QMP: memory backend 'mem' has share=off: QEMU keeps guest RAM private and a tap cannot see it; start QEMU with share=on on memory-backend-file 'mem'")
    }

    @Test func plainRAMIsRefused() throws {
        var qemu = RecordedQEMU()
        qemu.qomList = QMPFixtures.qomListPlain
        qemu.mtree = QMPFixtures.mtreePlain
        qemu.share = "false"
        #expect(try discoveryError(qemu) == "QMP: guest RAM is anonymous memory (memory-backend-ram 'pc.ram') that only QEMU can see; start QEMU with -object memory-backend-file,id=mem,size=SIZE,mem-path=/dev/shm/NAME,share=on -machine memory-backend=mem")
    }

    @Test func memfdNeedsItsDescriptor() throws {
        var qemu = RecordedQEMU()
        qemu.qomList = QMPFixtures.qomListMemfd
        // Our own process (the fake QEMU) has no memfd open, so there is nothing to find.
        #expect(try discoveryError(qemu) == "QMP: memory backend 'mem' (memory-backend-memfd) has no file to map; give --memory PATH (a memfd is /proc/QEMU_PID/fd/N)")
        let (layout, _) = try discover(qemu, options: .init(memoryPath: "/proc/42/fd/8"))
        #expect(layout.regions.first?.file == "/proc/42/fd/8")
    }

    @Test func noSCSIDeviceListsWhatExists() throws {
        var qemu = RecordedQEMU()
        qemu.virtio = #"[{"name": "virtio-net", "path": "/machine/peripheral/net0/virtio-backend"}]"#
        #expect(try discoveryError(qemu) == "QMP: QEMU has no virtio-scsi device; virtio devices: virtio-net /machine/peripheral/net0/virtio-backend")
        qemu.virtio = "[]"
        #expect(try discoveryError(qemu) == "QMP: QEMU has no virtio-scsi device; virtio devices: none")
    }

    @Test func severalDevicesNeedDevice() throws {
        var qemu = RecordedQEMU()
        qemu.virtio = #"[{"name": "virtio-scsi", "path": "/machine/peripheral/scsi1/virtio-backend"}, {"name": "virtio-scsi", "path": "/machine/peripheral/scsi0/virtio-backend"}]"#
        #expect(try discoveryError(qemu) == "QMP: 2 virtio-scsi devices, pick one with --device: /machine/peripheral/scsi1/virtio-backend, /machine/peripheral/scsi0/virtio-backend")
        #expect(try discover(qemu, options: .init(device: "scsi0")).0 == expectedLinuxLayout())
        #expect(try discover(qemu, options: .init(device: scsi0)).0 == expectedLinuxLayout())
        #expect(try discoveryError(qemu, options: .init(device: "scsi9")) == "QMP: no virtio-scsi device scsi9; virtio devices: virtio-scsi /machine/peripheral/scsi1/virtio-backend, virtio-scsi /machine/peripheral/scsi0/virtio-backend")
    }
}
