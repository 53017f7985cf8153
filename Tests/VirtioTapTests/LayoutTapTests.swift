import Foundation
import Testing
import VQRecord
import VirtioRing
@testable import VirtioTap

/// A device in this process: guest RAM in a /dev/shm file mapped read-write, a layout file
/// beside it, and a ring writer playing driver and device.
final class FileDevice: MutableGuestMemory, @unchecked Sendable {
    let memoryPath: String
    let layoutPath: String
    let size = 0x100000
    let base: UnsafeMutableRawPointer
    let mapped: MappedRegions
    var layout: DeviceLayout
    let ring: SplitQueueLayout

    init(pid: Int32? = getpid()) throws {
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        memoryPath = "/dev/shm/vqtap-test-mem-\(tag)"
        layoutPath = "/dev/shm/vqtap-test-layout-\(tag)"
        let fd = open(memoryPath, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0, ftruncate(fd, off_t(size)) == 0,
              let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw TapError("cannot make \(memoryPath)")
        }
        close(fd)
        base = p
        mapped = try MappedRegions([.init(gpa: 0, size: UInt64(size), base: UnsafeRawPointer(p))])
        ring = try SplitQueueLayout.legacy(base: 0x1000, size: 8)
        layout = DeviceLayout(generation: 1, status: .ready, pid: pid,
                              device: .init(type: "virtio-scsi", id: 8, name: "scsi9"), features: 1 << 32,
                              config: ["cdb_size": 32, "sense_size": 96],
                              regions: [.init(file: memoryPath, gpa: 0, size: UInt64(size))],
                              queues: [.init(index: 2, name: "request0", size: 8, desc: ring.desc, avail: ring.avail, used: ring.used)])
    }

    deinit {
        munmap(base, size)
        unlink(memoryPath)
        unlink(layoutPath)
    }

    var writer: SplitRingWriter<FileDevice> { SplitRingWriter(memory: self, layout: ring) }

    func writeLayout() throws { try layout.write(path: layoutPath) }

    func post(head: UInt16, request: [UInt8], responseLength: UInt32 = 16) throws {
        try writeBytes(0x10000 + UInt64(head) * 0x1000, request)
        try writer.writeDirectChain([.init(addr: 0x10000 + UInt64(head) * 0x1000, len: UInt32(request.count)),
                                     .init(addr: 0x10800 + UInt64(head) * 0x1000, len: responseLength, writable: true)],
                                    indices: [head, head + 4])
        try writer.publishAvail(head)
    }

    func complete(head: UInt16, response: [UInt8]) throws {
        try writeBytes(0x10800 + UInt64(head) * 0x1000, response)
        try writer.publishUsed(id: UInt32(head), len: UInt32(response.count))
    }

    func contains(gpa: UInt64, count: Int) -> Bool { mapped.contains(gpa: gpa, count: count) }
    func translate(gpa: UInt64, count: Int) -> UnsafeRawPointer? { mapped.translate(gpa: gpa, count: count) }
    func read(_ gpa: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(RingError) {
        try checkRange(gpa: gpa, count: buffer.count)
        guard let p = translate(gpa: gpa, count: buffer.count), let d = buffer.baseAddress else { return }
        d.copyMemory(from: p, byteCount: buffer.count)
    }
    func loadAcquire16(_ gpa: UInt64) throws(RingError) -> UInt16 { try readLE16(gpa) }
    func write(_ gpa: UInt64, from bytes: UnsafeRawBufferPointer) throws(RingError) {
        try checkRange(gpa: gpa, count: bytes.count)
        guard let p = translate(gpa: gpa, count: bytes.count), let s = bytes.baseAddress else { return }
        UnsafeMutableRawPointer(mutating: p).copyMemory(from: s, byteCount: bytes.count)
    }
    func storeRelease16(_ gpa: UInt64, _ value: UInt16) throws(RingError) { try writeLE16(gpa, value) }
}

/// Runs a tap against `device`, calling `script` with a step number on every loop turn
/// (it plays the device between polls); stops when the script returns true.
func runTap(_ device: FileDevice, options: LayoutTapOptions? = nil, maxSteps: Int = 100_000,
            script: (Int, [CaptureRecord]) throws -> Bool) throws -> (TapOutcome, [CaptureRecord], LayoutTap) {
    let tap = LayoutTap(options: options ?? LayoutTapOptions(layoutPath: device.layoutPath, pollMode: .busy, watchIntervalNs: 0))
    var records: [CaptureRecord] = []
    guard try tap.attach(deliver: { records.append(contentsOf: $0); return true }) else { throw TapError("not attached") }
    var step = 0
    var failure: Error?
    let outcome = try tap.run(shouldStop: {
        step += 1
        do { return try script(step, records) || step > maxSteps } catch { failure = error; return true }
    }, deliver: { records.append(contentsOf: $0); return true })
    if let failure { throw failure }
    return (outcome, records, tap)
}

@Suite(.serialized) struct LayoutTapTests {
    /// A receiver may keep batches a while (top's feed keeps 65,536 records): after a poll of
    /// a few records the next buffer is small too, not the 1024 records of the first one.
    @Test func theBufferAfterAHandOverIsSizedLikeIt() {
        #expect(LayoutTap.nextBuffer(after: 3).capacity < 64)
        #expect(LayoutTap.nextBuffer(after: 3).isEmpty)
        let large = LayoutTap.nextBuffer(after: 700)
        #expect(large.capacity >= 700 && large.capacity < 1024, "\(large.capacity)")
    }

    @Test func attachesCapturesAndStopsWithDetachMarkers() throws {
        let dev = try FileDevice()
        try dev.writeLayout()
        try dev.post(head: 1, request: [0xaa, 0xbb])
        let (outcome, records, tap) = try runTap(dev) { step, records in
            if step == 1 { try dev.complete(head: 1, response: [1, 2, 3]) }
            if step == 2 { try dev.post(head: 2, request: [0xcc]) }
            return records.contains { $0.kind == .available && $0.head == 2 }
        }
        #expect(outcome == .stopped)
        #expect(records.map(\.kind) == [.deviceState, .available, .used, .available, .deviceState])
        guard case let .deviceState(attached) = records[0].body else { Issue.record("no marker"); return }
        #expect(attached.state == .attached)
        #expect(attached.generation == 1)
        #expect(attached.deviceName == "scsi9")
        #expect(attached.queueSize == 8)
        #expect(attached.descAddress == dev.ring.desc)
        #expect(records[1].flags == [.preAttach])
        #expect(records[1].segments[0].bytes == [0xaa, 0xbb])
        #expect(records[2].segments[1].bytes == [1, 2, 3])
        #expect(records[2].transactionID == records[1].transactionID)
        #expect(records[3].segments[0].bytes == [0xcc])
        guard case let .deviceState(detached) = records[4].body else { Issue.record("no marker"); return }
        #expect(detached.state == .detached)
        #expect(tap.totalCounters == TapCounters(captured: 3, torn: 0, orphan: 0, dropped: 0, malformed: 0))
        #expect(tap.queueCounters.map(\.queue) == [2])
        #expect(tap.queueName(2) == "request0")
    }

    @Test func aNewGenerationIsAResetAndTheRingsStartAgainAtZero() throws {
        let dev = try FileDevice()
        try dev.writeLayout()
        try dev.post(head: 1, request: [1])
        try dev.complete(head: 1, response: [1])
        try dev.post(head: 2, request: [2])
        let (_, records, tap) = try runTap(dev) { step, records in
            if step == 2 {
                // The driver resets the device and starts again.
                try dev.writer.reset()
                dev.layout.generation = 2
                try dev.writeLayout()
                try dev.post(head: 3, request: [3])
            }
            return records.contains { $0.kind == .available && $0.head == 3 }
        }
        let states = records.compactMap { r -> (DeviceStateMarker.State, UInt64)? in
            if case let .deviceState(m) = r.body { return (m.state, m.generation) }
            return nil
        }
        #expect(states.map(\.0) == [.attached, .reset, .reattached, .detached])
        #expect(states.map(\.1) == [1, 2, 2, 2])
        let fresh = try #require(records.last { $0.kind == .available })
        #expect(fresh.head == 3)
        #expect(fresh.ringIndex == 0)
        #expect(!fresh.flags.contains(.preAttach))
        #expect(fresh.segments[0].bytes == [3])
        // Transaction ids go on across the reset: unique in the capture.
        let first = try #require(records.first { $0.kind == .available })
        #expect(fresh.transactionID == first.transactionID + 1)
        // Counters of both generations: the pre-attach request and the new one.
        #expect(tap.totalCounters.captured == 2)
    }

    /// Layouts handed over by the test, as the QMP watcher hands them to the tap.
    final class HandedLayouts: LayoutProvider {
        var ready: DeviceLayout
        var changes: [LayoutChange] = []
        init(_ ready: DeviceLayout) { self.ready = ready }
        func currentReadyLayout() throws(TapError) -> DeviceLayout? { ready }
        func poll() throws(TapError) -> LayoutChange? { changes.isEmpty ? nil : changes.removeFirst() }
        var setupIntervalNs: UInt64 { 1000 }
    }

    @Test func aNewMemoryMapIsMappedWithoutLosingTheRings() throws {
        let dev = try FileDevice()
        // Only the rings are mapped at first: the buffers at 0x10000 are outside.
        var narrow = dev.layout
        narrow.regions = [.init(file: dev.memoryPath, gpa: 0, size: 0x10000)]
        let provider = HandedLayouts(narrow)
        let tap = LayoutTap(options: LayoutTapOptions(layoutPath: "qmp", pollMode: .busy, watchIntervalNs: 0), provider: provider)
        var records: [CaptureRecord] = []
        guard try tap.attach(deliver: { records.append(contentsOf: $0); return true }) else { Issue.record("not attached"); return }
        var step = 0
        let outcome = try tap.run(shouldStop: {
            step += 1
            if step == 2 { try? dev.post(head: 1, request: [0xaa]) }
            if step == 4 { provider.changes.append(.memoryMap(dev.layout)) }
            if step == 6 { try? dev.post(head: 2, request: [0xbb]) }
            return step > 8
        }, deliver: { records.append(contentsOf: $0); return true })
        #expect(outcome == .stopped)
        let available = records.filter { $0.kind == .available }
        #expect(available.map(\.head) == [1, 2])
        #expect(available.first?.flags == [.malformed])
        #expect(available.first?.errorCode == RingErrorCode.bufferOutsideMemory.rawValue)
        #expect(available.last?.flags == [])
        #expect(available.last?.segments.first?.bytes == [0xbb])
        // Same generation: no reset or re-attach marker between the two.
        #expect(records.filter { $0.kind == .deviceState }.count == 2)
        #expect(tap.layout?.regions == dev.layout.regions)
        #expect(tap.memory?.contains(gpa: 0x12000, count: 1) == true)
        #expect(tap.totalCounters == TapCounters(captured: 1, torn: 0, orphan: 0, dropped: 0, malformed: 1))
    }

    @Test func aTruncatedMemoryFileEndsTheCaptureAsGone() throws {
        let dev = try FileDevice()
        try dev.writeLayout()
        let (outcome, records, _) = try runTap(dev) { step, _ in
            if step == 2 { #expect(truncate(dev.memoryPath, 4096) == 0) }
            return false
        }
        guard case let .deviceGone(why) = outcome else { Issue.record("not gone: \(outcome)"); return }
        #expect(why == "guest memory went away (a memory file was truncated)")
        guard case let .deviceState(m)? = records.last?.body else { Issue.record("no marker"); return }
        #expect(m.state == .gone)
    }

    @Test func theDeviceProcessExitingEndsTheCaptureAsGone() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let dev = try FileDevice(pid: child.processIdentifier)
        try dev.writeLayout()
        let tap = LayoutTap(options: LayoutTapOptions(layoutPath: dev.layoutPath))
        #expect(throws: TapError.self) { _ = try tap.attach(deliver: { _ in true }) }
        // Attached while it ran, then it exits.
        dev.layout.pid = getpid()
        try dev.writeLayout()
        let (outcome, _, _) = try runTap(dev) { step, _ in
            if step == 2 {
                dev.layout.pid = child.processIdentifier
                try dev.writeLayout()
            }
            return false
        }
        #expect(outcome == .deviceGone("the device's process \(child.processIdentifier) exited"))
    }

    @Test func aRemovedLayoutFileEndsTheCaptureAsGone() throws {
        let dev = try FileDevice()
        try dev.writeLayout()
        let (outcome, _, _) = try runTap(dev) { step, _ in
            if step == 2 { unlink(dev.layoutPath) }
            return false
        }
        #expect(outcome == .deviceGone("the layout file \(dev.layoutPath) was removed"))
    }

    @Test func waitWaitsForTheFileAndTimesOut() throws {
        let dev = try FileDevice()
        let tap = LayoutTap(options: LayoutTapOptions(layoutPath: dev.layoutPath, wait: true, waitTimeoutNs: 5_000_000_000))
        var calls = 0
        let attached = try tap.attach(shouldStop: {
            calls += 1
            if calls == 3 { try? dev.writeLayout() }
            return false
        }, deliver: { _ in true })
        #expect(attached)
        #expect(calls >= 3)
        #expect(tap.layout?.device.name == "scsi9")

        let missing = LayoutTap(options: LayoutTapOptions(layoutPath: dev.layoutPath + "-none", wait: true, waitTimeoutNs: 30_000_000))
        do {
            _ = try missing.attach(deliver: { _ in true })
            Issue.record("attached to nothing")
        } catch {
            #expect(error.description == "gave up waiting: \(dev.layoutPath)-none: no such file")
        }
        let noWait = LayoutTap(options: LayoutTapOptions(layoutPath: dev.layoutPath + "-none"))
        #expect(throws: TapError.self) { _ = try noWait.attach(deliver: { _ in true }) }
    }

    @Test func aResettingDeviceIsWaitedFor() throws {
        let dev = try FileDevice()
        dev.layout.status = .resetting
        try dev.writeLayout()
        let tap = LayoutTap(options: LayoutTapOptions(layoutPath: dev.layoutPath, wait: true, waitTimeoutNs: 5_000_000_000))
        var calls = 0
        let attached = try tap.attach(shouldStop: {
            calls += 1
            if calls == 2 {
                dev.layout.status = .ready
                try? dev.writeLayout()
            }
            return false
        }, deliver: { _ in true })
        #expect(attached)
        #expect(tap.layout?.status == .ready)
    }

    @Test func durationCountsFromTheFirstAttach() throws {
        let dev = try FileDevice()
        try dev.writeLayout()
        let tap = LayoutTap(options: LayoutTapOptions(layoutPath: dev.layoutPath, pollMode: .adaptive))
        #expect(try tap.attach(deliver: { _ in true }))
        let start = TapClock().now()
        let outcome = try tap.run(durationNs: 50_000_000, shouldStop: { false }, deliver: { _ in true })
        let elapsed = TapClock().now() - start
        #expect(outcome == .stopped)
        #expect(elapsed >= 40_000_000 && elapsed < 2_000_000_000)
    }
}
