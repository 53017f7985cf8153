import Foundation
import VirtioRing

// Builds a DeviceLayout from a running QEMU over QMP (QEMU 7.2+, virtio-facts.md "Attaching
// to a running QEMU"):
//   x-query-virtio                          -> the virtio devices, their QOM paths
//   x-query-virtio-status {path}            -> features, status (DRIVER_OK?), num-vqs
//   x-query-virtio-queue-status {path, i}   -> per queue: size, desc/avail/used addresses
//   qom-list /objects, qom-get mem-path/share -> the memory backends and their files
//   human-monitor-command "info mtree -f"   -> guest-physical ranges -> (backend, offset)
// Never x-query-virtio-queue-element: on a live idle queue QEMU 7.2 reads a stale
// descriptor, marks the device broken and the guest's I/O hangs.

/// One entry of `x-query-virtio`.
public struct VirtioDeviceRef: Sendable, Equatable {
    public var name: String
    public var path: String

    public init(name: String, path: String) { self.name = name; self.path = path }

    /// The short name for output: the QOM id (`/machine/peripheral/scsi0/virtio-backend` ->
    /// `scsi0`), or the anonymous slot (`device[0]`).
    public var shortName: String {
        let parts = path.split(separator: "/").map(String.init)
        if let i = parts.lastIndex(of: "virtio-backend"), i > 0 { return parts[i - 1] }
        return parts.last ?? path
    }
}

/// A memory backend object (`/objects/ID`).
public struct MemoryBackend: Sendable, Equatable {
    public var id: String
    /// `memory-backend-file`, `memory-backend-memfd`, `memory-backend-ram`, ...
    public var type: String
    /// The file guest RAM lives in, when QEMU has one (file backends) or we found it
    /// (`/proc/PID/fd/N` of a memfd).
    public var file: String?
    public var share: Bool?

    public init(id: String, type: String, file: String? = nil, share: Bool? = nil) {
        self.id = id; self.type = type; self.file = file; self.share = share
    }
}

public struct QEMUDiscoveryOptions: Sendable, Equatable {
    /// Which virtio-scsi device: its QOM path or id (`scsi0`). Needed when there are several.
    public var device: String?
    /// Guest RAM file to map instead of the backend's mem-path (e.g. a memfd's /proc path).
    public var memoryPath: String?
    /// virtio_scsi_config values QMP cannot tell (defaults 32 and 96).
    public var cdbSize: UInt32
    public var senseSize: UInt32

    public init(device: String? = nil, memoryPath: String? = nil, cdbSize: UInt32 = 32, senseSize: UInt32 = 96) {
        self.device = device; self.memoryPath = memoryPath; self.cdbSize = cdbSize; self.senseSize = senseSize
    }
}

public final class QEMUDiscovery {
    public static let virtioSCSIName = "virtio-scsi"
    public static let virtioSCSIDeviceID: UInt32 = 8

    public let client: QMPClient
    public let options: QEMUDiscoveryOptions
    /// QEMU's process id (SO_PEERCRED on the QMP socket), if known.
    public var pid: Int32? { client.peerPID }

    public init(client: QMPClient, options: QEMUDiscoveryOptions = QEMUDiscoveryOptions()) {
        self.client = client
        self.options = options
    }

    // MARK: - devices

    public func virtioDevices() throws(QMPError) -> [VirtioDeviceRef] {
        let answer = try client.execute("x-query-virtio")
        guard let list = answer.array else {
            throw QMPError(.unexpectedAnswer, "QMP: x-query-virtio: expected a list, got \(QMPClient.excerpt(answer.json))")
        }
        return list.compactMap { v in
            guard let name = v["name"]?.string, let path = v["path"]?.string else { return nil }
            return VirtioDeviceRef(name: name, path: path)
        }
    }

    /// The virtio-scsi device to tap: the one `options.device` names, or the only one.
    public func selectDevice() throws(QMPError) -> VirtioDeviceRef {
        let all = try virtioDevices()
        let scsi = all.filter { $0.name == Self.virtioSCSIName }
        let listing = all.isEmpty ? "none" : all.map { "\($0.name) \($0.path)" }.joined(separator: ", ")
        if let wanted = options.device {
            if let d = scsi.first(where: { $0.path == wanted || $0.shortName == wanted || $0.path.hasPrefix(wanted + "/") }) {
                return d
            }
            throw QMPError(.unexpectedAnswer, "QMP: no virtio-scsi device \(wanted); virtio devices: \(listing)")
        }
        guard let first = scsi.first else {
            throw QMPError(.unexpectedAnswer, "QMP: QEMU has no virtio-scsi device; virtio devices: \(listing)")
        }
        guard scsi.count == 1 else {
            throw QMPError(.unexpectedAnswer, "QMP: \(scsi.count) virtio-scsi devices, pick one with --device: \(scsi.map(\.path).joined(separator: ", "))")
        }
        return first
    }

    public func status(of device: VirtioDeviceRef) throws(QMPError) -> VirtioDeviceStatus {
        try VirtioDeviceStatus(qmp: client.execute("x-query-virtio-status", arguments: ["path": .string(device.path)]))
    }

    public func queue(_ index: Int, of device: VirtioDeviceRef) throws(QMPError) -> VirtqueueStatus {
        try VirtqueueStatus(qmp: client.execute("x-query-virtio-queue-status",
                                                arguments: ["path": .string(device.path), "queue": .int(Int64(index))]))
    }

    public func queues(of device: VirtioDeviceRef, count: Int) throws(QMPError) -> [VirtqueueStatus] {
        var out: [VirtqueueStatus] = []
        for i in 0..<count { out.append(try queue(i, of: device)) }
        return out
    }

    // MARK: - memory

    public func memoryBackends() throws(QMPError) -> [MemoryBackend] {
        let answer = try client.execute("qom-list", arguments: ["path": "/objects"])
        var out: [MemoryBackend] = []
        for entry in answer.array ?? [] {
            guard let name = entry["name"]?.string, let type = entry["type"]?.string,
                  type.hasPrefix("child<memory-backend"), type.hasSuffix(">") else { continue }
            let backendType = String(type.dropFirst("child<".count).dropLast())
            var b = MemoryBackend(id: name, type: backendType)
            let objectPath = "/objects/\(name)"
            b.share = try? client.execute("qom-get", arguments: ["path": .string(objectPath), "property": "share"]).bool
            if backendType == "memory-backend-file" {
                b.file = try client.execute("qom-get", arguments: ["path": .string(objectPath), "property": "mem-path"]).string
            }
            out.append(b)
        }
        return out
    }

    public func memoryMap() throws(QMPError) -> [FlatRange] {
        let answer = try client.execute("human-monitor-command", arguments: ["command-line": "info mtree -f"])
        guard let text = answer.string else {
            throw QMPError(.unexpectedAnswer, "QMP: info mtree -f: expected text, got \(QMPClient.excerpt(answer.json))")
        }
        let ranges = MemoryTree.flatView(text)
        guard !ranges.isEmpty else {
            throw QMPError(.unexpectedAnswer, "QMP: info mtree -f has no flat view of address space \"memory\"")
        }
        return ranges
    }

    /// Guest RAM as layout regions: every RAM range of the flat view that a memory backend
    /// serves, mapped to that backend's file.
    public func memoryRegions() throws(QMPError) -> [DeviceLayout.Region] {
        let ranges = try memoryMap()
        return MemoryTree.regions(from: ranges, files: try backendFiles(for: ranges))
    }

    /// The file of each memory backend that serves a RAM range of `ranges`, by backend id.
    public func backendFiles(for ranges: [FlatRange]) throws(QMPError) -> [String: String] {
        let backends = try memoryBackends()
        let ramNames = Set(ranges.filter(\.isRAM).map(\.name))
        let used = backends.filter { ramNames.contains($0.id) }
        guard !used.isEmpty else {
            let names = ramNames.sorted().joined(separator: ", ")
            throw QMPError(.unexpectedAnswer, "QMP: guest RAM (\(names)) is not on a memory backend; start QEMU with -object memory-backend-file,id=mem,size=SIZE,mem-path=/dev/shm/NAME,share=on -machine memory-backend=mem")
        }
        var files: [String: String] = [:]
        for b in used {
            if b.type == "memory-backend-ram" {
                throw QMPError(.unexpectedAnswer, "QMP: guest RAM is anonymous memory (\(b.type) '\(b.id)') that only QEMU can see; start QEMU with -object memory-backend-file,id=mem,size=SIZE,mem-path=/dev/shm/NAME,share=on -machine memory-backend=mem")
            }
            if b.share == false {
                throw QMPError(.unexpectedAnswer, "QMP: memory backend '\(b.id)' has share=off: QEMU keeps guest RAM private and a tap cannot see it; start QEMU with share=on on \(b.type) '\(b.id)'")
            }
            if let override = options.memoryPath {
                guard used.count == 1 else {
                    throw QMPError(.unexpectedAnswer, "QMP: --memory names one file but guest RAM is on \(used.count) backends (\(used.map(\.id).joined(separator: ", ")))")
                }
                files[b.id] = override
            } else if let file = b.file {
                files[b.id] = file
            } else if b.type == "memory-backend-memfd", let found = Self.memfdPath(pid: pid, backendCount: used.count) {
                files[b.id] = found
            } else {
                throw QMPError(.unexpectedAnswer, "QMP: memory backend '\(b.id)' (\(b.type)) has no file to map; give --memory PATH (a memfd is /proc/QEMU_PID/fd/N)")
            }
        }
        return files
    }

    /// A memfd backend has no path; QEMU's own descriptor for it does. Only when exactly one
    /// memfd is open, so the choice is not a guess.
    static func memfdPath(pid: Int32?, backendCount: Int) -> String? {
        guard let pid, backendCount == 1 else { return nil }
        let dir = "/proc/\(pid)/fd"
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return nil }
        let memfds = fds.filter { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(fd)"))?.hasPrefix("/memfd:memory-backend-memfd") ?? false
        }
        return memfds.count == 1 ? "\(dir)/\(memfds[0])" : nil
    }

    // MARK: - the layout

    /// Everything at once: the device, its status and queues, guest RAM.
    public func discover(generation: UInt64 = 1) throws(QMPError) -> DeviceLayout {
        let device = try selectDevice()
        let regions = try memoryRegions()
        return try layout(of: device, regions: regions, generation: generation)
    }

    /// The layout of `device` now (status and queues re-read), with RAM as given.
    public func layout(of device: VirtioDeviceRef, regions: [DeviceLayout.Region], generation: UInt64) throws(QMPError) -> DeviceLayout {
        try layoutAndStatus(of: device, regions: regions, generation: generation).layout
    }

    /// The layout and the status answer it was built from.
    public func layoutAndStatus(of device: VirtioDeviceRef, regions: [DeviceLayout.Region],
                                generation: UInt64) throws(QMPError) -> (layout: DeviceLayout, status: VirtioDeviceStatus) {
        let st = try status(of: device)
        let qs = st.driverOK ? try queues(of: device, count: st.numQueues) : []
        let layout = Self.layout(device: device, status: st, queues: qs, regions: regions, generation: generation,
                                 pid: pid, options: options)
        return (layout, st)
    }

    /// Assembles a layout from parsed answers (no I/O: tests build it from fixtures).
    public static func layout(device: VirtioDeviceRef, status: VirtioDeviceStatus, queues: [VirtqueueStatus],
                              regions: [DeviceLayout.Region], generation: UInt64, pid: Int32?,
                              options: QEMUDiscoveryOptions) -> DeviceLayout {
        var config: [String: UInt64] = ["cdb_size": UInt64(options.cdbSize), "sense_size": UInt64(options.senseSize)]
        if status.deviceID == virtioSCSIDeviceID, status.numQueues >= 2 {
            config["num_queues"] = UInt64(status.numQueues - 2)
        }
        // Firmware (SeaBIOS) sets up only the queues it uses: the others stay at address 0.
        let ready = status.driverOK
        let layoutQueues = ready ? queues.filter(\.isSetUp).map { q in
            DeviceLayout.Queue(index: q.index, name: queueName(q.index, deviceID: status.deviceID),
                               size: UInt16(truncatingIfNeeded: q.size), desc: q.desc, avail: q.avail, used: q.used)
        } : []
        return DeviceLayout(
            generation: generation, status: ready ? .ready : .resetting, pid: pid,
            device: DeviceLayout.Device(type: status.name, id: status.deviceID, name: device.shortName, path: device.path),
            features: status.features, config: config, regions: regions, queues: layoutQueues)
    }

    public static func queueName(_ index: UInt16, deviceID: UInt32) -> String? {
        guard deviceID == virtioSCSIDeviceID else { return nil }
        switch index {
        case 0: return "controlq"
        case 1: return "eventq"
        default: return "request\(index - 2)"
        }
    }
}
