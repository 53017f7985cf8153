import Foundation

/// A QMP socket that presents a running `vqtap simulate` as QEMU would present its
/// virtio-scsi device: x-query-virtio, -status and -queue-status from the simulator's layout
/// file, its memory file as a shared memory-backend-file, and `info mtree -f` mapping it.
/// `vqtap capture --qmp` and `top --qmp` then attach to real rings that move. `resetAfter`
/// status polls into the run, the device reports a driver reset (status 0) for
/// `resetPolls` polls, then DRIVER_OK again with the same rings, as a guest's reboot of the
/// driver does.
final class SimulatedQEMU: @unchecked Sendable {
    let directory: String
    let path: String
    private let layoutPath: String
    private let listenFD: Int32
    private let lock = NSLock()
    private var statusPolls = 0
    private var stopped = false
    var resetAfter: Int?
    var resetPolls = 200

    init(layout: String) throws {
        layoutPath = layout
        directory = NSTemporaryDirectory() + "vqtap-simqmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let socketPath = directory + "/qmp.sock"
        path = socketPath
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in socketPath.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 4) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot listen on \(socketPath)"])
        }
        listenFD = fd
        Thread { [self] in self.serve() }.start()
    }

    deinit { stop() }

    func stop() {
        let already = lock.withLock { () -> Bool in
            defer { stopped = true }
            return stopped
        }
        if already { return }
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The simulator's layout file, as JSON.
    private func layout() -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: layoutPath),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }

    private static func number(_ value: Any?) -> UInt64 {
        if let n = value as? NSNumber { return n.uint64Value }
        if let s = value as? String { return s.hasPrefix("0x") ? UInt64(s.dropFirst(2), radix: 16) ?? 0 : UInt64(s) ?? 0 }
        return 0
    }

    private func json(_ value: Any) -> String {
        (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    /// The `return` value for one command; nil: an error answer.
    private func answer(_ command: String, _ arguments: [String: Any]) -> Any? {
        let l = layout()
        let queues = l["queues"] as? [[String: Any]] ?? []
        switch command {
        case "qmp_capabilities": return [String: Any]()
        case "x-query-virtio": return [["name": "virtio-scsi", "path": "/machine/peripheral/scsi0/virtio-backend"]]
        case "x-query-virtio-status":
            let poll = lock.withLock { () -> Int in statusPolls += 1; return statusPolls }
            let resetting = resetAfter.map { poll > $0 && poll <= $0 + resetPolls } ?? false
            // Feature bits as QEMU's "unknown" numbers; status ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK.
            let features = resetting ? 0 : Self.number(l["features"])
            return ["name": "virtio-scsi", "device-id": 8, "num-vqs": queues.count, "broken": false,
                    "status": ["statuses": [String](), "unknown-statuses": resetting ? 0 : 15],
                    "guest-features": ["dev-features": [String](), "transports": [String](), "unknown-dev-features": features],
                    "host-features": ["dev-features": [String](), "transports": [String](), "unknown-dev-features": Self.number(l["features"])]]
        case "x-query-virtio-queue-status":
            let index = Self.number(arguments["queue"])
            guard let q = queues.first(where: { Self.number($0["index"]) == index }) else { return nil }
            return ["queue-index": index, "vring-num": Self.number(q["size"]), "vring-desc": Self.number(q["desc"]),
                    "vring-avail": Self.number(q["avail"]), "vring-used": Self.number(q["used"]),
                    "last-avail-idx": 0, "used-idx": 0, "inuse": 0]
        case "qom-list": return [["name": "type", "type": "string"], ["name": "mem", "type": "child<memory-backend-file>"]]
        case "qom-get":
            switch arguments["property"] as? String {
            case "share": return true
            case "mem-path": return ((l["regions"] as? [[String: Any]])?.first?["file"] as? String) ?? ""
            default: return nil
            }
        case "human-monitor-command":
            var text = "FlatView #0\r\n AS \"memory\", root: system\r\n Root memory region: system\r\n"
            for r in l["regions"] as? [[String: Any]] ?? [] {
                let gpa = Self.number(r["gpa"]), size = Self.number(r["size"]), offset = Self.number(r["offset"])
                text += "  " + String(format: "%016llx-%016llx", gpa, gpa + size - 1) + " (prio 0, ram): mem"
                text += offset == 0 ? "\r\n" : " @" + String(format: "%016llx", offset) + "\r\n"
            }
            return text
        default: return nil
        }
    }

    private func serve() {
        let conn = accept(listenFD, nil, nil)
        guard conn >= 0 else { return }
        defer { close(conn) }
        let greeting = #"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "vqtap simulate"}, "capabilities": []}}"#
        guard send(conn, greeting + "\r\n") else { return }
        var buffer: [UInt8] = []
        while true {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(conn, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            buffer.append(contentsOf: chunk[..<n])
            while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(buffer[..<nl])
                buffer.removeSubrange(...nl)
                guard let request = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
                      let command = request["execute"] as? String else { continue }
                let id = request["id"].map { #", "id": \#(json($0))"# } ?? ""
                let reply: String
                if let value = answer(command, request["arguments"] as? [String: Any] ?? [:]) {
                    reply = #"{"return": \#(json(value))\#(id)}"#
                } else {
                    reply = #"{"error": {"class": "GenericError", "desc": "not simulated: \#(command)"}\#(id)}"#
                }
                guard send(conn, reply + "\r\n") else { return }
            }
        }
    }

    private func send(_ conn: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }
}
